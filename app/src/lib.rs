//! The console's UI: server-rendered pages that hydrate in the browser, and the server functions
//! behind them. Every form is a real `<form>` that posts to its server function, so each page also
//! works with JavaScript off.

#![recursion_limit = "256"]

pub mod auth;
pub mod codec;
pub mod data_setting;
pub mod error;
mod layout;
pub mod live;
pub mod pages;
#[cfg(feature = "ssr")]
pub mod ssr;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, HashedStylesheet, MetaTags, Title};
use leptos_router::{
    components::{ParentRoute, Route, Router, Routes},
    path, SsrMode,
};

/// The Content-Security-Policy sent with every page; the nonce admits Leptos's own inline
/// hydration script and nothing else inline.
pub fn content_security_policy(nonce: &str) -> String {
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
         style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; \
         frame-ancestors 'none'; object-src 'none'; base-uri 'none'; form-action 'self'"
    )
}

pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let (Some(nonce), Some(res)) = (
        leptos::nonce::use_nonce(),
        use_context::<leptos_axum::ResponseOptions>(),
    ) {
        if let Ok(value) = http::HeaderValue::from_str(&content_security_policy(&nonce)) {
            res.insert_header(http::header::CONTENT_SECURITY_POLICY, value);
        }
    }
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <link rel="icon" type="image/svg+xml" href="/favicon.svg" />
                <HashedStylesheet options=options.clone() id="leptos" />
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Title formatter=|page: String| format!("{page} · Pinpoint → HiBob") />
        <Router>
            <Routes fallback=|| view! { <pages::NotFound /> }>
                <Route path=path!("/login") view=pages::login::LoginPage ssr=SsrMode::Async />
                <ParentRoute path=path!("") view=layout::Console ssr=SsrMode::Async>
                    <Route path=path!("") view=pages::dashboard::DashboardPage />
                    <Route path=path!("exports") view=pages::exports::ExportsPage />
                    <Route path=path!("exports/:id") view=pages::export_detail::ExportDetailPage />
                    <Route path=path!("webhooks") view=pages::webhooks::WebhooksPage />
                    <Route path=path!("webhooks/:id") view=pages::webhooks::DeliveryPage />
                    <Route path=path!("mappings") view=pages::mappings::MappingsPage />
                    <Route path=path!("mappings/versions/:id") view=pages::mapping_version::MappingVersionPage />
                    <Route path=path!("variables") view=pages::variables::VariablesPage />
                    <Route path=path!("settings") view=pages::settings::SettingsPage />
                    <Route path=path!("users") view=pages::users::UsersPage />
                    <Route path=path!("audit") view=pages::audit::AuditPage />
                    <Route path=path!("account") view=pages::account::AccountPage />
                </ParentRoute>
            </Routes>
        </Router>
    }
}

#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(App);
    // says the page is interactive: the browser tests wait for it before clicking controls
    // whose behaviour only the hydrated page has
    if let Some(root) = leptos::prelude::document().document_element() {
        let _ = root.set_attribute("data-hydrated", "true");
    }
}

//! The signed-in frame: navigation, who is signed in, sign-out. Pages render inside it.

use leptos::prelude::*;
use leptos_router::{
    components::{Outlet, Redirect, A},
    hooks::use_location,
};

use crate::auth::{whoami, Logout, Me, MeResource};

/// The frame renders at once and the page's own content beside it: a page's data must not wait
/// inside the frame's asynchronous block, where it would be created outside the request's
/// context on the server. Signed-out browsers are redirected by the server before any of this.
#[component]
pub fn Console() -> impl IntoView {
    let me: MeResource = Resource::new(|| (), |_| whoami());
    provide_context(me);
    let location = use_location();
    focus_heading_on_each_page(location.pathname);
    view! {
        // left to the browser (not the router), which moves focus to the focusable main
        <a class="skip" href="#main" rel="external">"Skip to content"</a>
        <Suspense fallback=|| view! { <header class="topbar"><span class="brand">"Pinpoint → HiBob"</span></header> }>
            {move || Suspend::new(async move {
                match me.await {
                    Ok(Some(me)) => view! { <Frame me /> }.into_any(),
                    Ok(None) => {
                        let next = location.pathname.get_untracked();
                        let target = if next == "/" {
                            "/login".to_owned()
                        } else {
                            format!("/login?next={next}")
                        };
                        view! { <Redirect path=target /> }.into_any()
                    }
                    Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                }
            })}
        </Suspense>
        <main id="main" tabindex="-1">
            <Outlet />
        </main>
    }
}

#[component]
fn Frame(me: Me) -> impl IntoView {
    let logout = ServerAction::<Logout>::new();
    let is_admin = me.is_admin();
    let sandbox = me.sandbox;
    view! {
        {sandbox.then(|| view! {
            <div class="sandbox-banner" role="region" aria-label="Sandbox mode">
                <strong>"Sandbox"</strong>
                " — HiBob and Pinpoint are simulated on this machine; nothing is sent to the real services."
            </div>
        })}
        <header class="topbar">
            <a class="brand" href="/">
                <span class="brand-mark" aria-hidden="true">"P→B"</span>
                <span>"Pinpoint → HiBob"</span>
            </a>
            <nav aria-label="Main">
                <A href="/" exact=true>"Dashboard"</A>
                <A href="/exports">"Exports"</A>
                <A href="/webhooks">"Webhooks"</A>
                <A href="/mappings">"Mappings"</A>
                <A href="/variables">"Variables"</A>
                <A href="/settings">"Settings"</A>
                <Show when=move || is_admin>
                    <A href="/users">"Users"</A>
                    <A href="/audit">"Audit"</A>
                </Show>
            </nav>
            <div class="whoami">
                <a class="who" href="/account" title="Your account">{me.email.clone()}</a>
                <span class=format!("role role-{}", me.role)>{me.role.clone()}</span>
                <ActionForm action=logout attr:class="inline">
                    <button type="submit" class="link">"Sign out"</button>
                </ActionForm>
            </div>
        </header>
    }
}

/// Moves focus to the page's main heading when the console opens and after each move between
/// pages, as a page load would for a screen reader; the heading is made focusable for it. Only
/// the path counts: a filter changing the query string keeps the focus where it is.
fn focus_heading_on_each_page(path: Memo<String>) {
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        path.track();
        focus_heading_soon(HEADING_TICKS);
    });
    #[cfg(not(feature = "hydrate"))]
    let _ = path;
}

/// The new page replaces the old one a little after the path changes, so the heading is looked
/// for a few times, 50 ms apart; once focus is inside the page (the new heading, or wherever the
/// person moved it) it is left alone.
#[cfg(feature = "hydrate")]
const HEADING_TICKS: u8 = 20;

#[cfg(feature = "hydrate")]
fn focus_heading_soon(ticks_left: u8) {
    use wasm_bindgen::JsCast;
    let doc = document();
    let main = doc.get_element_by_id("main");
    let active = doc.active_element();
    let settled = match (&main, &active) {
        (Some(main), Some(active)) => {
            let active: &leptos::web_sys::Node = active;
            main.contains(Some(active))
        }
        _ => false,
    };
    if !settled {
        let heading = doc.query_selector("main h1").ok().flatten();
        if let Some(h1) = heading.and_then(|h| h.dyn_into::<leptos::web_sys::HtmlElement>().ok()) {
            let _ = h1.set_attribute("tabindex", "-1");
            let _ = h1.focus();
        }
    }
    if let Some(left) = ticks_left.checked_sub(1) {
        set_timeout(
            move || focus_heading_soon(left),
            std::time::Duration::from_millis(50),
        );
    }
}

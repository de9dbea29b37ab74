pub mod audit;
pub mod dashboard;
pub mod login;
pub mod pending;
pub mod settings;
pub mod users;

use leptos::prelude::*;
use leptos_meta::Title;

use crate::error::AppError;

#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(res) = use_context::<leptos_axum::ResponseOptions>() {
        res.set_status(http::StatusCode::NOT_FOUND);
    }
    view! {
        <Title text="Not found" />
        <main class="narrow" id="main">
            <h1>"Page not found"</h1>
            <p>"There is nothing at this address. " <a href="/">"Go to the dashboard"</a> "."</p>
        </main>
    }
}

/// The outcome of the last submit of a form: nothing, a success line, or the error in words.
#[component]
pub fn FormResult<T, F>(value: F, #[prop(into)] ok: String) -> impl IntoView
where
    T: 'static,
    F: Fn() -> Option<Result<T, AppError>> + Send + Sync + 'static,
{
    move || match value() {
        None => ().into_any(),
        Some(Ok(_)) => view! { <p class="notice ok" role="status">{ok.clone()}</p> }.into_any(),
        Some(Err(e)) => {
            view! { <p class="notice error" role="alert">{e.to_string()}</p> }.into_any()
        }
    }
}

/// An error from loading a page's data, in words.
pub fn load_error(e: AppError) -> AnyView {
    view! { <p class="notice error" role="alert">{e.to_string()}</p> }.into_any()
}

/// Stored times are RFC 3339 UTC with milliseconds; people read `2026-11-22 08:08 UTC`.
pub fn when(stored: &str) -> String {
    match (stored.get(..10), stored.get(11..16)) {
        (Some(day), Some(time)) if stored.len() >= 16 => format!("{day} {time} UTC"),
        _ => stored.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn when_is_readable() {
        assert_eq!(
            super::when("2026-11-22T08:08:49.899Z"),
            "2026-11-22 08:08 UTC"
        );
        assert_eq!(super::when("garbage"), "garbage");
    }
}

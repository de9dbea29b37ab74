pub mod account;
pub mod audit;
pub mod chart;
pub mod dashboard;
pub mod dashboard_changes;
pub mod data_settings;
pub mod export_changes;
pub mod export_detail;
#[cfg(any(feature = "ssr", test))]
pub mod export_timeline;
pub mod exports;
pub mod login;
pub mod mapping_form;
pub mod mapping_preview;
pub mod mapping_retry;
pub mod mapping_version;
pub mod mappings;
pub mod settings;
pub mod users;
pub mod variables;
pub mod webhooks;

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

/// False in the server's HTML and until the page has hydrated, then true. Inputs whose edits
/// only the live page keeps are disabled until then, so nothing typed early is wiped.
pub fn interactive() -> ReadSignal<bool> {
    let (live, set_live) = signal(false);
    // effects run only in the browser, after hydration
    Effect::new(move |_| set_live.set(true));
    live
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

/// The answer of an action that reports what it did in words.
pub fn outcome_notice(result: Result<String, AppError>) -> AnyView {
    match result {
        Ok(m) => view! { <p class="notice ok" role="status">{m}</p> }.into_any(),
        Err(e) => view! { <p class="notice error" role="alert">{e.to_string()}</p> }.into_any(),
    }
}

/// An error from loading a page's data, in words.
pub fn load_error(e: AppError) -> AnyView {
    view! { <p class="notice error" role="alert">{e.to_string()}</p> }.into_any()
}

/// A status or outcome as a coloured label people can read.
pub fn status_badge(status: &str) -> AnyView {
    let label = match status {
        "needs_attention" => "Needs attention".to_owned(),
        "ok" => "OK".to_owned(),
        other => {
            let mut chars = other.chars();
            chars
                .next()
                .map(|c| {
                    c.to_uppercase()
                        .chain(chars)
                        .collect::<String>()
                        .replace('_', " ")
                })
                .unwrap_or_default()
        }
    };
    view! { <span class=format!("badge status-{status}")>{label}</span> }.into_any()
}

/// The "from" and "to" day inputs of a filter form (both inclusive, UTC), grouped and labelled.
/// Typed as `YYYY-MM-DD`, like every date the console shows: a browser's own date input shows
/// the day in its locale's order (12/07/2026), which reads differently from the list beside it.
#[component]
pub fn DateRangeInputs(
    /// Prefix of the inputs' ids, unique on the page.
    id: &'static str,
    /// What the dates are of, e.g. "Created".
    legend: &'static str,
    from: Option<String>,
    to: Option<String>,
) -> impl IntoView {
    let (from_id, to_id) = (format!("{id}-from"), format!("{id}-to"));
    view! {
        <fieldset class="filter dates">
            <legend>{legend}</legend>
            <span class="date-pair">
                <label for=from_id.clone()>"From"</label>
                <input id=from_id type="text" class="day" name="from" inputmode="numeric" autocomplete="off"
                    placeholder=DAY_FORMAT pattern=DAY_PATTERN title="A day as YYYY-MM-DD" maxlength="10"
                    value=from.unwrap_or_default() />
                <label for=to_id.clone()>"To"</label>
                <input id=to_id type="text" class="day" name="to" inputmode="numeric" autocomplete="off"
                    placeholder=DAY_FORMAT pattern=DAY_PATTERN title="A day as YYYY-MM-DD" maxlength="10"
                    value=to.unwrap_or_default() />
            </span>
        </fieldset>
    }
}

/// How a day is written everywhere in the console.
pub const DAY_FORMAT: &str = "YYYY-MM-DD";
const DAY_PATTERN: &str = "[0-9]{4}-[0-9]{2}-[0-9]{2}";

/// Percent-encodes a query value for links built on the server and in the browser alike.
fn urlencode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The "older" link of a keyset-paginated list: present only when the page is full, continuing
/// after `last_id` with the same filters.
pub fn older_page_href(
    path: &str,
    shown: usize,
    page_size: i64,
    last_id: Option<i64>,
    filters: &[(&str, &Option<String>)],
) -> Option<String> {
    let last = last_id.filter(|_| i64::try_from(shown).is_ok_and(|n| n == page_size))?;
    let before = Some(last.to_string());
    let mut all = vec![("before", &before)];
    all.extend_from_slice(filters);
    Some(href_with(path, &all))
}

/// `path` with the filters that are set as its query.
pub fn href_with(path: &str, filters: &[(&str, &Option<String>)]) -> String {
    let mut href = path.to_owned();
    for (key, value) in filters {
        if let Some(value) = value {
            href.push(if href.contains('?') { '&' } else { '?' });
            href.push_str(&format!("{key}={}", urlencode(value)));
        }
    }
    href
}

/// Stored times are RFC 3339 UTC with milliseconds; people read `2026-11-22 08:08 UTC`.
pub fn when(stored: &str) -> String {
    let minutes = minute(stored);
    if minutes == stored {
        minutes
    } else {
        format!("{minutes} UTC")
    }
}

/// `2026-11-22 08:08`: [`when`] without the zone, for a column whose heading says UTC.
pub fn minute(stored: &str) -> String {
    match (stored.get(..10), stored.get(11..16)) {
        (Some(day), Some(time)) if stored.len() >= 16 => format!("{day} {time}"),
        _ => stored.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn older_link_only_for_full_pages_and_keeps_filters() {
        let search = Some("a&b %".to_owned());
        let none = None;
        assert_eq!(
            super::older_page_href(
                "/exports",
                50,
                50,
                Some(7),
                &[("search", &search), ("status", &none)]
            ),
            Some("/exports?before=7&search=a%26b%20%25".to_owned())
        );
        assert_eq!(
            super::older_page_href("/exports", 12, 50, Some(7), &[]),
            None
        );
    }

    #[test]
    fn hrefs_carry_only_the_filters_set() {
        let from = Some("2026-11-01".to_owned());
        let search = Some("=a b".to_owned());
        assert_eq!(
            super::href_with(
                "/audit.csv",
                &[("action", &None), ("from", &from), ("search", &search)]
            ),
            "/audit.csv?from=2026-11-01&search=%3Da%20b"
        );
        assert_eq!(super::href_with("/audit.csv", &[]), "/audit.csv");
    }

    #[test]
    fn when_is_readable() {
        assert_eq!(
            super::when("2026-11-22T08:08:49.899Z"),
            "2026-11-22 08:08 UTC"
        );
        assert_eq!(super::when("garbage"), "garbage");
        assert_eq!(
            super::minute("2026-11-22T08:08:49.899Z"),
            "2026-11-22 08:08"
        );
        assert_eq!(super::minute("garbage"), "garbage");
    }
}

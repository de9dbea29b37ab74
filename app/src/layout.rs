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
        <main id="main" tabindex="-1" data-console="">
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
/// the path counts: a filter changing the query string keeps the focus where it is. The path is
/// read from the browser every 100 ms (the router's own signal did not reach this frame's effect
/// on every move), one watcher per page load.
fn focus_heading_on_each_page(path: Memo<String>) {
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        let _ = path;
        if WATCHING.with(|w| w.replace(true)) {
            return;
        }
        focus_heading_soon(HEADING_TICKS);
        let _ = set_interval_with_handle(
            || {
                let now = window().location().pathname().unwrap_or_default();
                let moved = LAST_PATH.with(|last| {
                    let mut last = last.borrow_mut();
                    let moved = !last.is_empty() && *last != now;
                    *last = now;
                    moved
                });
                if moved {
                    focus_heading_soon(HEADING_TICKS);
                }
            },
            std::time::Duration::from_millis(100),
        );
    });
    #[cfg(not(feature = "hydrate"))]
    let _ = path;
}

#[cfg(feature = "hydrate")]
thread_local! {
    static WATCHING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    static LAST_PATH: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// The new page replaces the old one a little after the path changes, so its heading is looked
/// for a few times, 50 ms apart, until a heading other than the one focused last appears; it is
/// focused unless the person already moved focus into the page. Then it stops, so a later Tab or
/// click is never overridden.
#[cfg(feature = "hydrate")]
const HEADING_TICKS: u8 = 40;

#[cfg(feature = "hydrate")]
thread_local! {
    static LAST_HEADING: std::cell::RefCell<Option<leptos::web_sys::Element>> =
        const { std::cell::RefCell::new(None) };
}

#[cfg(feature = "hydrate")]
fn focus_heading_soon(ticks_left: u8) {
    use wasm_bindgen::JsCast;
    let doc = document();
    // the console's own main: the sign-in page's (with its heading) may still be leaving
    let heading = doc.query_selector("main[data-console] h1").ok().flatten();
    let fresh = heading
        .as_ref()
        .is_some_and(|h| LAST_HEADING.with(|last| last.borrow().as_ref() != Some(h)));
    if fresh {
        let main = doc.query_selector("main[data-console]").ok().flatten();
        let active = doc.active_element();
        let in_page = match (&main, &active) {
            (Some(main), Some(active)) => {
                let active: &leptos::web_sys::Node = active;
                main.contains(Some(active)) && !main.is_same_node(Some(active))
            }
            _ => false,
        };
        if let Some(h1) = heading {
            if !in_page {
                if let Some(el) = h1.dyn_ref::<leptos::web_sys::HtmlElement>() {
                    let _ = el.set_attribute("tabindex", "-1");
                    let _ = el.focus();
                }
            }
            LAST_HEADING.with(|last| *last.borrow_mut() = Some(h1));
        }
        return;
    }
    if let Some(left) = ticks_left.checked_sub(1) {
        set_timeout(
            move || focus_heading_soon(left),
            std::time::Duration::from_millis(50),
        );
    }
}

//! Live pages: in the browser, a page listens to the console's event stream (`GET /events`) and
//! reloads its data when a notice about something it shows arrives. Server-rendered pages are
//! complete without it; this only keeps an open page current.

use leptos::prelude::*;
use serde::Deserialize;

/// A change notice as the server sends it (`{"kind":"export","id":4,"status":"queued"}`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Notice {
    pub kind: String,
    #[serde(default)]
    pub id: Option<i64>,
    #[serde(default)]
    pub export_id: Option<i64>,
}

impl Notice {
    /// The export this notice is about, if any.
    pub fn export(&self) -> Option<i64> {
        match self.kind.as_str() {
            "export" => self.id,
            _ => self.export_id,
        }
    }

    /// Notices that may change any list or count: everything except a rejected or ignored
    /// delivery with no export.
    pub fn touches_exports(&self) -> bool {
        matches!(self.kind.as_str(), "export" | "bulk_retry" | "resync") || self.export().is_some()
    }

    /// Whether what the watch of exported hire `id` shows should reload.
    pub fn touches_watch(&self, id: i64) -> bool {
        self.kind == "resync" || (self.kind == "watch" && self.id == Some(id))
    }

    /// Notices that may change the list of changed hires.
    pub fn touches_watches(&self) -> bool {
        self.kind == "watch" || self.touches_exports()
    }

    /// Whether a page showing export `id` should reload. A bulk retry's notice does not list its
    /// exports, so it counts for every one.
    pub fn touches_export(&self, id: i64) -> bool {
        matches!(self.kind.as_str(), "resync" | "bulk_retry") || self.export() == Some(id)
    }
}

/// Notices close together are taken as one reload this long after the first: a bulk retry
/// sends a steady stream, and a trailing debounce would never fire during it.
#[cfg(feature = "hydrate")]
const COALESCE: std::time::Duration = std::time::Duration::from_millis(300);

/// A count that goes up when a notice `relevant` accepts arrives (and after the stream
/// reconnects, as notices may have been missed meanwhile). Read it in a resource's source to
/// refetch: a resource reruns only when its source's value changes. On the server it stays 0.
pub fn use_live(relevant: impl Fn(&Notice) -> bool + 'static) -> ArcReadSignal<u64> {
    let (version, bump) = arc_signal(0u64);
    #[cfg(feature = "hydrate")]
    listen(bump, relevant);
    #[cfg(not(feature = "hydrate"))]
    let _ = (bump, relevant);
    version
}

#[cfg(feature = "hydrate")]
fn listen(bump: ArcWriteSignal<u64>, relevant: impl Fn(&Notice) -> bool + 'static) {
    use std::{cell::Cell, rc::Rc};
    use wasm_bindgen::{closure::Closure, JsCast};

    let Ok(source) = web_sys::EventSource::new("/events") else {
        return;
    };
    let pending = Rc::new(Cell::new(false));
    let refresh = Rc::new(move || {
        if pending.replace(true) {
            return;
        }
        let pending = Rc::clone(&pending);
        let bump = bump.clone();
        set_timeout(
            move || {
                pending.set(false);
                bump.update(|v| *v += 1);
            },
            COALESCE,
        );
    });
    let on_message = {
        let refresh = Rc::clone(&refresh);
        Closure::<dyn Fn(web_sys::MessageEvent)>::new(move |event: web_sys::MessageEvent| {
            let notice = event
                .data()
                .as_string()
                .and_then(|text| serde_json::from_str::<Notice>(&text).ok());
            if notice.is_some_and(|n| relevant(&n)) {
                refresh();
            }
        })
    };
    let opened = Rc::new(Cell::new(0u32));
    let on_open = Closure::<dyn Fn()>::new(move || {
        if opened.replace(opened.get() + 1) > 0 {
            refresh();
        }
    });
    source.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    source.set_onopen(Some(on_open.as_ref().unchecked_ref()));
    let held = send_wrapper::SendWrapper::new((source, on_message, on_open));
    on_cleanup(move || {
        let (source, _, _) = &*held;
        source.close();
    });
}

#[cfg(test)]
mod tests {
    use super::Notice;

    fn notice(text: &str) -> Notice {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn notices_say_what_they_touch() {
        let export = notice(r#"{"kind":"export","id":4,"status":"queued"}"#);
        assert!(export.touches_exports() && export.touches_export(4));
        assert!(!export.touches_export(5));
        let dup = notice(r#"{"kind":"delivery","id":9,"export_id":4}"#);
        assert!(dup.touches_export(4));
        let rejected = notice(r#"{"kind":"delivery","id":10,"export_id":null}"#);
        assert!(!rejected.touches_exports());
        assert!(notice(r#"{"kind":"bulk_retry","id":2}"#).touches_export(4));
        let resync = notice(r#"{"kind":"resync"}"#);
        assert!(resync.touches_exports() && resync.touches_export(1));
    }
}

//! The relay's two halves in this process: [`Outgoing`] turns what was sent into the
//! [`Outlet`](crate::live::Outlet) into payloads for the other instances, and [`Incoming`] acts
//! on theirs: changes reach this process's open pages, a due export wakes the worker, stale
//! caches are forgotten. The engine carries the payloads (`store_postgres::peers`).
//!
//! Each payload names its sender, so an instance passes over its own notices when the engine
//! echoes them back.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::{
    alerts::Alerts,
    exports::queue::WorkerWake,
    health::Health,
    hibob::gateway::Gateway,
    live::{Cache, Change, Changes, Notice, Outbox},
    settings::credentials::Credentials,
};

/// Notices sent in one go, at most.
const BATCH: usize = 64;

#[derive(Debug, Serialize, Deserialize)]
struct Envelope {
    from: String,
    notice: Notice,
}

/// What a notice from another instance acts on here.
#[derive(Debug, Clone)]
pub struct Local {
    pub changes: Changes,
    pub worker: WorkerWake,
    pub credentials: Credentials,
    pub gateway: Gateway,
    /// Woken when another instance queued an alert, for the dispatcher if it runs here.
    pub alerts: Alerts,
    /// Told whether the notices are heard, for `/readyz` and the metrics.
    pub health: Health,
}

/// Sends what this process put into its outlet.
#[derive(Debug)]
pub struct Outgoing {
    me: String,
    outbox: Outbox,
}

/// Acts on what the other instances sent.
#[derive(Debug, Clone)]
pub struct Incoming {
    me: String,
    local: Local,
}

/// A relay for the outlet `local.changes` feeds, or `None` when one is attached to it already.
/// Named after this instance ([`crate::instance::id`]) and a count, since one process may run
/// several consoles (the tests do).
pub fn attach(local: Local) -> Option<(Outgoing, Incoming)> {
    static RELAYS: AtomicU64 = AtomicU64::new(0);
    let outbox = local.changes.outlet().attach()?;
    let n = RELAYS.fetch_add(1, Ordering::Relaxed);
    let me = format!("{}/{n}", crate::instance::id());
    Some((
        Outgoing {
            me: me.clone(),
            outbox,
        },
        Incoming { me, local },
    ))
}

impl Outgoing {
    /// The payloads to send next, waiting for at least one; `None` once the console is gone.
    pub async fn next(&mut self) -> Option<Vec<String>> {
        loop {
            let notices = self.outbox.next(BATCH).await?;
            let payloads: Vec<String> = notices
                .into_iter()
                .filter_map(|notice| {
                    let envelope = Envelope {
                        from: self.me.clone(),
                        notice,
                    };
                    serde_json::to_string(&envelope).ok()
                })
                .collect();
            if !payloads.is_empty() {
                return Some(payloads);
            }
        }
    }
}

impl Incoming {
    /// Acts on a payload heard from the engine, unless this relay sent it.
    pub fn heard(&self, payload: &str) {
        let envelope: Envelope = match serde_json::from_str(payload) {
            Ok(envelope) => envelope,
            // a newer version's notice: its pages and caches resynchronise as for a lost one
            Err(e) => {
                tracing::warn!(error = %e, "a notice from another instance could not be read");
                self.missed();
                return;
            }
        };
        if envelope.from == self.me {
            return;
        }
        match envelope.notice {
            Notice::Change(change) => self.local.changes.publish_here(change),
            Notice::Due => self.local.worker.wake(),
            Notice::Forget(Cache::Credentials) => self.local.credentials.forget_stored(),
            Notice::Forget(Cache::Catalogue) => self.local.gateway.forget_catalogue(),
            Notice::Missed => self.missed(),
            Notice::Alert => self.local.alerts.wake_here(),
        }
    }

    /// Whether the engine's connection for the notices is up: while it is not, this process's
    /// pages, worker and caches learn of the others' work only when they look themselves.
    pub fn listening(&self, listening: bool) {
        self.local.health.relay_listening(listening);
    }

    /// Notices may have been lost (the connection that carries them dropped, or a sender fell
    /// behind): open pages reload, the worker looks at the queue, and caches are read again.
    pub fn missed(&self) {
        self.local.credentials.forget_stored();
        self.local.gateway.forget_catalogue();
        self.local.worker.wake();
        self.local.alerts.wake_here();
        self.local.changes.publish_here(Change::Resync);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        hibob::gateway::GatewaySettings,
        settings::{credentials::CredentialKey, secret_box::SecretBox},
    };
    use std::{collections::HashMap, time::Duration};

    async fn console(dir: &tempfile::TempDir) -> Local {
        let pool = crate::db::open(&format!("sqlite://{}/r.db", dir.path().display()))
            .await
            .unwrap();
        let changes = Changes::new();
        let db = crate::sqlite::SqliteStore::db(pool);
        let credentials = Credentials::new(
            db.clone(),
            SecretBox::from_key_bytes(&[5; 32]),
            HashMap::new(),
        )
        .telling(changes.outlet().clone());
        let alerts = Alerts::new(db, credentials.clone(), "http://console.test")
            .telling(changes.outlet().clone());
        Local {
            gateway: Gateway::new(credentials.clone(), GatewaySettings::default()),
            alerts,
            changes,
            worker: WorkerWake::default(),
            credentials,
            health: Health::default(),
        }
    }

    /// Two consoles on one database, each with its relay attached.
    struct Pair {
        _dir: tempfile::TempDir,
        a: Local,
        b: Local,
        a_out: Outgoing,
        a_in: Incoming,
        _b_out: Outgoing,
        b_in: Incoming,
    }

    async fn pair() -> Pair {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (console(&dir).await, console(&dir).await);
        let (a_out, a_in) = attach(a.clone()).unwrap();
        let (b_out, b_in) = attach(b.clone()).unwrap();
        Pair {
            _dir: dir,
            a,
            b,
            a_out,
            a_in,
            _b_out: b_out,
            b_in,
        }
    }

    #[tokio::test]
    async fn what_one_console_sends_the_other_acts_on_and_the_sender_passes_over() {
        let Pair {
            _dir,
            a,
            b,
            mut a_out,
            a_in,
            _b_out,
            b_in,
        } = pair().await;
        assert!(attach(a.clone()).is_none(), "one relay per console");
        let mut a_pages = a.changes.subscribe();
        let mut b_pages = b.changes.subscribe();

        let change = Change::Export {
            id: 7,
            status: "queued".into(),
        };
        a.changes.publish(change.clone());
        a.changes.outlet().send(Notice::Due);
        let payloads = a_out.next().await.unwrap();
        assert_eq!(payloads.len(), 2);
        assert!(
            payloads[0].len() < 200 && payloads[0].contains(r#""status":"queued""#),
            "{payloads:?}"
        );
        for payload in &payloads {
            a_in.heard(payload);
            b_in.heard(payload);
        }
        assert_eq!(a_pages.next().await, Some(change.clone()));
        assert_eq!(b_pages.next().await, Some(change));
        tokio::time::timeout(Duration::from_secs(1), b.worker.woken())
            .await
            .unwrap();
        let echoed = tokio::time::timeout(Duration::from_millis(100), a_pages.next()).await;
        assert!(
            echoed.is_err(),
            "a console's own notice is not published twice"
        );
    }

    #[tokio::test]
    async fn an_alert_queued_on_one_console_wakes_the_dispatcher_of_the_other() {
        let Pair {
            _dir,
            a,
            b,
            mut a_out,
            _b_out,
            b_in,
            ..
        } = pair().await;
        a.alerts.queued();
        let payloads = tokio::time::timeout(Duration::from_secs(1), a_out.next())
            .await
            .expect("the other consoles are told")
            .unwrap();
        assert_eq!(payloads.len(), 1, "{payloads:?}");
        for payload in &payloads {
            b_in.heard(payload);
        }
        tokio::time::timeout(Duration::from_secs(1), b.alerts.woken())
            .await
            .expect("the other console's dispatcher looks at once");
    }

    #[tokio::test]
    async fn a_save_on_one_console_is_read_by_the_other_once_the_relay_tells_it() {
        let Pair {
            _dir,
            a,
            b,
            mut a_out,
            _b_out,
            b_in,
            ..
        } = pair().await;
        let key = CredentialKey::PluginToken;
        let actor = crate::access::users::Actor::system("test");
        let set = |v: &str| crate::settings::credentials::CredentialChange {
            key,
            value: Some(secrecy::SecretString::from(v.to_owned())),
        };
        a.credentials.save(&actor, vec![set("one")]).await.unwrap();
        let read = |c: Credentials| async move {
            use secrecy::ExposeSecret;
            c.get(key)
                .await
                .unwrap()
                .unwrap()
                .expose_secret()
                .to_owned()
        };
        assert_eq!(read(b.credentials.clone()).await, "one");
        a.credentials.save(&actor, vec![set("two")]).await.unwrap();
        for payload in a_out.next().await.unwrap() {
            b_in.heard(&payload);
        }
        assert_eq!(read(b.credentials.clone()).await, "two");
    }

    #[tokio::test]
    async fn an_unreadable_or_lost_notice_makes_pages_reload() {
        let dir = tempfile::tempdir().unwrap();
        let b = console(&dir).await;
        let (_b_out, b_in) = attach(b.clone()).unwrap();
        let mut pages = b.changes.subscribe();
        b_in.heard(r#"{"from":"elsewhere","notice":"something_new"}"#);
        assert_eq!(pages.next().await, Some(Change::Resync));
        tokio::time::timeout(Duration::from_secs(1), b.worker.woken())
            .await
            .unwrap();
    }
}

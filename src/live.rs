//! Change notices for open console pages. Whatever changes an export (the worker, the webhook
//! intake, a retry) publishes a small notice after its write is committed; the console's event
//! stream passes them to browsers, which then reload what they show. A notice carries no personal
//! data: ids and statuses only.
//!
//! Where several instances share one PostgreSQL database, what one of them publishes must reach
//! the pages open on the others, and some changes (an export due now, credentials saved) concern
//! their workers and caches too. Such [`Notice`]s leave through an [`Outlet`]: nowhere until a
//! relay is attached to it (`peers::relay`; SQLite has none), then into a bounded [`Outbox`] the
//! relay drains.

use std::sync::{
    atomic::{AtomicBool, Ordering},
    Arc, OnceLock,
};

use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc, watch, Notify};

/// Notices a slow subscriber may fall behind by before it is told to reload everything.
const BACKLOG: usize = 256;

/// Notices waiting for the relay, at most. Publishing never waits for the relay: what does not
/// fit is dropped and the others are told that they missed something.
const OUTBOX: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    /// An export was created or its status moved (so the counts moved too).
    Export { id: i64, status: String },
    /// A webhook delivery was stored, with the export it belongs to, if any.
    Delivery { id: i64, export_id: Option<i64> },
    /// A bulk retry started or was cancelled.
    BulkRetry { id: i64 },
    /// What the watch of exported hire `id` found or what was done about it changed; its
    /// export's status did not.
    Watch { id: i64 },
    /// Anything may have changed: notices were missed, or a change does not say which export
    /// (a plugin submit).
    Resync,
}

impl Change {
    /// The export this notice is about, if it is about one.
    pub fn export_id(&self) -> Option<i64> {
        match self {
            Change::Export { id, .. } => Some(*id),
            Change::Delivery { export_id, .. } => *export_id,
            Change::BulkRetry { .. } | Change::Watch { .. } | Change::Resync => None,
        }
    }
}

/// What one instance tells the others sharing its database. As small as a [`Change`]: ids,
/// statuses and names, never personal data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Notice {
    /// For open console pages.
    Change(Change),
    /// An export became due now: an idle worker should look at the queue at once.
    Due,
    /// What an instance keeps in memory of `Cache` is out of date.
    Forget(Cache),
    /// The sender dropped notices it could not relay in time: anything may have changed.
    Missed,
    /// An alert was queued: whichever instance sends alerts should look at once.
    Alert,
}

/// What an instance keeps in memory that another instance can make stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cache {
    /// The credentials and settings saved in the console.
    Credentials,
    /// HiBob's field catalogue and named lists.
    Catalogue,
}

/// Where notices leave for other instances. Cheap to clone; every clone feeds the same relay.
#[derive(Debug, Clone, Default)]
pub struct Outlet {
    relay: Arc<OnceLock<Inlet>>,
}

#[derive(Debug)]
struct Inlet {
    notices: mpsc::Sender<Notice>,
    dropped: Arc<Dropped>,
}

/// Set when a notice did not fit, and the relay woken to say so.
#[derive(Debug, Default)]
struct Dropped {
    any: AtomicBool,
    wake: Notify,
}

impl Outlet {
    /// Hands `notice` to the relay, if one is attached. Never waits: when the relay is behind,
    /// the notice is dropped and the relay sends a [`Notice::Missed`] instead.
    pub fn send(&self, notice: Notice) {
        let Some(inlet) = self.relay.get() else {
            return;
        };
        match inlet.notices.try_send(notice) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                inlet.dropped.any.store(true, Ordering::Release);
                inlet.dropped.wake.notify_one();
            }
            // the relay has stopped (shutting down): nobody is told anything any more
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    /// Attaches a relay: from now on what is sent waits in the returned outbox. Only the first
    /// call gets one; an outlet feeds one relay.
    pub fn attach(&self) -> Option<Outbox> {
        let (notices, receiver) = mpsc::channel(OUTBOX);
        let dropped = Arc::new(Dropped::default());
        self.relay
            .set(Inlet {
                notices,
                dropped: Arc::clone(&dropped),
            })
            .ok()?;
        Some(Outbox { receiver, dropped })
    }

    /// Whether a relay is attached (several instances may share the database).
    pub fn is_attached(&self) -> bool {
        self.relay.get().is_some()
    }
}

/// The relay's end of an [`Outlet`].
#[derive(Debug)]
pub struct Outbox {
    receiver: mpsc::Receiver<Notice>,
    dropped: Arc<Dropped>,
}

impl Outbox {
    /// The notices waiting, oldest first and about `most` at a time, ending with a
    /// [`Notice::Missed`] when some were dropped since the last call; waits for one. May be
    /// empty; `None` once every outlet is gone.
    pub async fn next(&mut self, most: usize) -> Option<Vec<Notice>> {
        let mut batch = Vec::new();
        tokio::select! {
            biased;
            notice = self.receiver.recv() => batch.push(notice?),
            () = self.dropped.wake.notified() => {}
        }
        while batch.len() < most.max(1) {
            match self.receiver.try_recv() {
                Ok(notice) => batch.push(notice),
                Err(_) => break,
            }
        }
        if self.dropped.any.swap(false, Ordering::AcqRel) {
            batch.push(Notice::Missed);
        }
        Some(batch)
    }
}

/// The channel of change notices, shared by everything that publishes and every open stream.
#[derive(Debug, Clone)]
pub struct Changes {
    sender: broadcast::Sender<Change>,
    closed: Arc<watch::Sender<bool>>,
    outlet: Outlet,
}

impl Default for Changes {
    fn default() -> Self {
        Self::new()
    }
}

impl Changes {
    pub fn new() -> Self {
        let (sender, _) = broadcast::channel(BACKLOG);
        let (closed, _) = watch::channel(false);
        Self {
            sender,
            closed: Arc::new(closed),
            outlet: Outlet::default(),
        }
    }

    /// Sends a notice to every subscriber, here and on the other instances; nobody listening is
    /// normal.
    pub fn publish(&self, change: Change) {
        self.outlet.send(Notice::Change(change.clone()));
        self.publish_here(change);
    }

    /// Sends a notice to this process's subscribers only: one another instance published.
    pub fn publish_here(&self, change: Change) {
        let _ = self.sender.send(change);
    }

    /// Where this console tells other instances of what changed; the workers' wake-ups and the
    /// caches send through it too, so that one relay carries all of them.
    pub fn outlet(&self) -> &Outlet {
        &self.outlet
    }

    pub fn subscribe(&self) -> Subscription {
        Subscription {
            notices: self.sender.subscribe(),
            closed: self.closed.subscribe(),
        }
    }

    /// Ends every subscription (at shutdown), so open streams do not hold the server up.
    pub fn close(&self) {
        self.closed.send_replace(true);
    }
}

/// One listener's view of the channel.
#[derive(Debug)]
pub struct Subscription {
    notices: broadcast::Receiver<Change>,
    closed: watch::Receiver<bool>,
}

impl Subscription {
    /// The next notice, or `None` once the channel is closed. A listener that fell behind gets
    /// one `Resync` in place of what it missed.
    pub async fn next(&mut self) -> Option<Change> {
        if *self.closed.borrow() {
            return None;
        }
        tokio::select! {
            biased;
            _ = self.closed.wait_for(|closed| *closed) => None,
            notice = self.notices.recv() => match notice {
                Ok(change) => Some(change),
                Err(broadcast::error::RecvError::Lagged(_)) => Some(Change::Resync),
                Err(broadcast::error::RecvError::Closed) => None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn subscribers_get_notices_published_after_they_subscribed() {
        let changes = Changes::new();
        changes.publish(Change::Resync);
        let mut sub = changes.subscribe();
        changes.publish(Change::Export {
            id: 3,
            status: "queued".into(),
        });
        let got = sub.next().await.unwrap();
        assert_eq!(got.export_id(), Some(3));
    }

    #[tokio::test]
    async fn a_lagging_subscriber_is_told_to_resync() {
        let changes = Changes::new();
        let mut sub = changes.subscribe();
        for id in 0..(BACKLOG as i64 + 10) {
            changes.publish(Change::BulkRetry { id });
        }
        assert_eq!(sub.next().await, Some(Change::Resync));
        assert!(matches!(sub.next().await, Some(Change::BulkRetry { .. })));
    }

    #[tokio::test]
    async fn close_ends_waiting_and_later_subscriptions() {
        let changes = Changes::new();
        let mut waiting = changes.subscribe();
        let task = tokio::spawn(async move { waiting.next().await });
        tokio::task::yield_now().await;
        changes.close();
        assert_eq!(task.await.unwrap(), None);
        assert_eq!(changes.subscribe().next().await, None);
    }

    #[tokio::test]
    async fn published_changes_reach_an_attached_relay_but_not_those_published_here() {
        let changes = Changes::new();
        changes.publish(Change::Resync);
        let mut outbox = changes.outlet().attach().unwrap();
        assert!(changes.outlet().attach().is_none(), "one relay per outlet");
        changes.publish(Change::BulkRetry { id: 1 });
        changes.publish_here(Change::BulkRetry { id: 2 });
        changes.outlet().send(Notice::Due);
        assert_eq!(
            outbox.next(10).await.unwrap(),
            vec![Notice::Change(Change::BulkRetry { id: 1 }), Notice::Due]
        );
        drop(changes);
        assert_eq!(outbox.next(10).await, None, "ends with the last outlet");
    }

    #[tokio::test]
    async fn a_full_outbox_drops_into_one_missed_without_waiting() {
        let outlet = Outlet::default();
        let mut outbox = outlet.attach().unwrap();
        for _ in 0..OUTBOX + 5 {
            outlet.send(Notice::Due);
        }
        let first = outbox.next(OUTBOX + 10).await.unwrap();
        assert_eq!(first.len(), OUTBOX + 1);
        assert_eq!(first.last(), Some(&Notice::Missed));
        outlet.send(Notice::Forget(Cache::Credentials));
        assert_eq!(
            outbox.next(10).await.unwrap(),
            vec![Notice::Forget(Cache::Credentials)],
            "told once"
        );
    }

    #[tokio::test]
    async fn a_relay_waiting_on_an_empty_outbox_hears_of_a_drop() {
        let outlet = Outlet::default();
        let mut outbox = outlet.attach().unwrap();
        for _ in 0..OUTBOX {
            outlet.send(Notice::Due);
        }
        assert_eq!(outbox.next(OUTBOX).await.unwrap().len(), OUTBOX);
        // dropped after the relay read the full outbox and before it looked again
        outlet
            .relay
            .get()
            .unwrap()
            .dropped
            .any
            .store(true, Ordering::Release);
        outlet.relay.get().unwrap().dropped.wake.notify_one();
        let next = tokio::time::timeout(std::time::Duration::from_secs(1), outbox.next(10));
        assert_eq!(next.await.unwrap(), Some(vec![Notice::Missed]));
    }

    #[test]
    fn notices_are_small_tagged_json() {
        let text = serde_json::to_string(&Change::Delivery {
            id: 9,
            export_id: Some(4),
        })
        .unwrap();
        assert_eq!(text, r#"{"kind":"delivery","id":9,"export_id":4}"#);
        let text = serde_json::to_string(&[
            Notice::Change(Change::Watch { id: 2 }),
            Notice::Due,
            Notice::Forget(Cache::Catalogue),
        ])
        .unwrap();
        assert_eq!(
            text,
            r#"[{"change":{"kind":"watch","id":2}},"due",{"forget":"catalogue"}]"#
        );
    }
}

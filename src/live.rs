//! Change notices for open console pages. Whatever changes an export (the worker, the webhook
//! intake, a retry) publishes a small notice after its write is committed; the console's event
//! stream passes them to browsers, which then reload what they show. A notice carries no personal
//! data: ids and statuses only.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, watch};

/// Notices a slow subscriber may fall behind by before it is told to reload everything.
const BACKLOG: usize = 256;

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

/// The channel of change notices, shared by everything that publishes and every open stream.
#[derive(Debug, Clone)]
pub struct Changes {
    sender: broadcast::Sender<Change>,
    closed: Arc<watch::Sender<bool>>,
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
        }
    }

    /// Sends a notice to every subscriber; nobody listening is normal.
    pub fn publish(&self, change: Change) {
        let _ = self.sender.send(change);
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

    #[test]
    fn notices_are_small_tagged_json() {
        let text = serde_json::to_string(&Change::Delivery {
            id: 9,
            export_id: Some(4),
        })
        .unwrap();
        assert_eq!(text, r#"{"kind":"delivery","id":9,"export_id":4}"#);
    }
}

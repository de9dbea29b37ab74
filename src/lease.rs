//! An attempt's hold on the row it works on. A worker or a plugin submit holds its export under
//! a lease it keeps renewing; when a renewal finds the lease gone (it lapsed, and another console
//! process may have taken the export over), the attempt must not reach HiBob or Pinpoint again.
//! The attempt runs inside [`Hold::scope`], and every outside call checks [`lost`] just before it
//! is sent, so the cut comes before the next call, never in the middle of one.

use std::sync::{
    atomic::{AtomicBool, Ordering},
    Arc,
};

tokio::task_local! {
    static HOLD: Hold;
}

/// Shared between the task renewing the lease and the attempt it protects.
#[derive(Debug, Clone, Default)]
pub struct Hold {
    lost: Arc<AtomicBool>,
}

impl Hold {
    pub fn new() -> Self {
        Self::default()
    }

    /// The lease is gone: no further outside call of the attempt may be sent.
    pub fn lose(&self) {
        self.lost.store(true, Ordering::SeqCst);
    }

    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    /// Runs `work` under this hold; calls made outside any hold (a test connection, a preview)
    /// are never stopped.
    pub async fn scope<F: std::future::Future>(self, work: F) -> F::Output {
        HOLD.scope(self, work).await
    }
}

/// Whether the code running now belongs to an attempt that lost its lease.
pub fn lost() -> bool {
    HOLD.try_with(Hold::is_lost).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_the_attempt_under_a_lost_hold_is_stopped() {
        let hold = Hold::new();
        let watcher = hold.clone();
        assert!(!lost(), "outside any hold nothing is stopped");
        let inside = hold
            .scope(async move {
                let before = lost();
                watcher.lose();
                (before, lost())
            })
            .await;
        assert_eq!(inside, (false, true));
        assert!(!lost());
    }
}

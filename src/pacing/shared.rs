//! Gates kept in the database, for consoles that share one (PostgreSQL): a credentials' limit
//! is the service's, whichever console calls. Each take and each end of a call locks the gate's
//! row, applies the same [`Gate`] logic as a console alone, and writes it back, in one short
//! transaction (see `crate::shared_limits`).

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};

use super::{gate::Gate, gate::Turn, Endpoint, RateLimit};
use crate::shared_limits::{update_json, Every, HoldsLimits, Key, Kind, Outage, SharedLimitsError};

/// A gate nobody has called through for this long is forgotten: longer than any wait a server
/// asks for, so a forgotten gate knew nothing still in force.
const IDLE: Duration = Duration::from_secs(24 * 3600);
/// How often this console forgets idle gates.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// Gates kept at most: credentials in use times their endpoints is far fewer.
const MAX_GATES: u32 = 10_000;

/// How a call ended, for its gate.
#[derive(Debug, Clone, Copy)]
pub(super) enum Ending {
    Answered {
        at: DateTime<Utc>,
        status: u16,
        rate: Option<RateLimit>,
    },
    Abandoned,
}

impl Ending {
    pub(super) fn apply(self, gate: &mut Gate, call: u64) {
        match self {
            Ending::Answered { at, status, rate } => gate.answered(call, at, status, rate),
            Ending::Abandoned => gate.abandon(call),
        }
    }
}

/// The store behind the shared gates, with this console's note of whether it can be reached.
#[derive(Debug)]
pub(crate) struct SharedGates {
    holder: Arc<dyn HoldsLimits>,
    pub(super) outage: Outage,
    pruning: Every,
}

impl SharedGates {
    /// Where `holder` keeps limits shared between consoles; `None` where each keeps its own.
    pub(crate) fn of(holder: Arc<dyn HoldsLimits>) -> Option<Arc<Self>> {
        holder.limits()?;
        Some(Arc::new(Self {
            holder,
            outage: Outage::default(),
            pruning: Every::new(PRUNE_EVERY),
        }))
    }

    /// Changes one gate under its row's lock, and answers what `change` answers with the gate
    /// as written back.
    async fn change<R: Send>(
        &self,
        identity: &[u8; 32],
        endpoint: Endpoint,
        now: DateTime<Utc>,
        change: impl FnOnce(&mut Gate) -> R + Send,
    ) -> Result<(R, Gate), SharedLimitsError> {
        let store = self.holder.limits().ok_or(SharedLimitsError::NotRun)?;
        let key = Key::of(Kind::RateGate, &[identity, endpoint.name.as_bytes()]);
        let expires = super::later(now, IDLE);
        let mut change = Some(change);
        let out = update_json::<Gate, _>(
            store,
            &[key],
            |_| expires,
            |rows| {
                let mut gate = rows[0]
                    .take()
                    .unwrap_or_else(|| Gate::new(endpoint.documented))
                    .documented(endpoint.documented);
                let out = change.take().map(|c| c(&mut gate));
                gate.revise();
                rows[0] = Some(gate.clone());
                out.map(|out| (out, gate))
            },
        )
        .await?;
        if self.pruning.due() {
            self.forget_idle(now);
        }
        out.ok_or(SharedLimitsError::NotRun)
    }

    /// Takes a call's place in the shared gate, or says when to look again.
    pub(super) async fn take(
        &self,
        identity: &[u8; 32],
        endpoint: Endpoint,
        now: DateTime<Utc>,
    ) -> Result<(Result<u64, Turn>, Gate), SharedLimitsError> {
        self.change(identity, endpoint, now, |gate| gate.take(now))
            .await
    }

    /// Ends a call taken from the shared gate.
    pub(super) async fn end(
        &self,
        identity: &[u8; 32],
        endpoint: Endpoint,
        call: u64,
        ending: Ending,
    ) -> Result<Gate, SharedLimitsError> {
        let now = Utc::now();
        self.change(identity, endpoint, now, |gate| {
            gate.roll(now);
            ending.apply(gate, call);
        })
        .await
        .map(|((), gate)| gate)
    }

    /// Forgets, in the background, the gates of credentials no longer used.
    fn forget_idle(&self, now: DateTime<Utc>) {
        let holder = Arc::clone(&self.holder);
        tokio::spawn(async move {
            if let Some(store) = holder.limits() {
                if let Err(e) = store.forget(Kind::RateGate, now, MAX_GATES).await {
                    tracing::warn!(error = %e, "cannot forget idle rate-limit gates");
                }
            }
        });
    }
}

/// Where a call took its place: the gate every console shares, or this console's own (where
/// gates are not shared, or the shared ones could not be reached when it was taken).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Place {
    Shared,
    Local,
}

/// The name the shared limits' log lines give the rate-limit gates.
pub(super) const WHAT: &str = "rate-limit windows";

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::{
        pacing::{Pace, Pacing, TooLong},
        shared_limits::memory::MemoryLimits,
    };

    const E: Endpoint = Endpoint::new("POST /people/search");

    /// `n` consoles whose gates `limits` keeps, each with its pace for one set of credentials.
    fn consoles(limits: &Arc<MemoryLimits>, n: usize) -> Vec<Arc<Pace>> {
        (0..n)
            .map(|_| {
                let holder: Arc<dyn HoldsLimits> = limits.clone();
                Pacing::sharing(holder).for_identity("service user")
            })
            .collect()
    }

    fn window(limit: u64, remaining: u64, secs: i64) -> Option<RateLimit> {
        let now = Utc::now();
        Some(RateLimit {
            limit: Some(limit),
            remaining: Some(remaining),
            reset_at: Some(now + chrono::Duration::seconds(secs)),
            retry_after_secs: None,
            observed_at: now,
        })
    }

    #[tokio::test]
    async fn consoles_sharing_a_database_share_one_window() {
        let limits = Arc::new(MemoryLimits::default());
        let paces = consoles(&limits, 3);
        let patient = Duration::from_secs(5);
        let probe = paces[0].admit(E, patient).await.unwrap();
        // another console waits for the first one's answer, as a call of its own would
        let waiting = tokio::spawn({
            let pace = Arc::clone(&paces[1]);
            async move { pace.admit(E, patient).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !waiting.is_finished(),
            "the first call of a gate goes alone"
        );
        probe.answered(Utc::now(), 200, window(4, 3, 30)).await;
        let second = waiting.await.unwrap().expect("seen within a poll");
        let third = paces[2].admit(E, patient).await.unwrap();
        let fourth = paces[0].admit(E, patient).await.unwrap();
        let refused = paces[1].admit(E, Duration::from_secs(1)).await.unwrap_err();
        assert!(refused.wait > Duration::from_secs(25), "{refused:?}");
        assert!(
            paces[2].admit(E, Duration::ZERO).await.is_err(),
            "four a window, whichever console calls"
        );
        for t in [second, third, fourth] {
            t.answered(Utc::now(), 200, window(4, 0, 30)).await;
        }
        assert!(paces[0].ready_in(E) > Duration::from_secs(25));
        let other = Pacing::sharing(limits.clone()).for_identity("someone else");
        assert!(
            other.admit(E, Duration::ZERO).await.is_ok(),
            "other credentials have their own"
        );
    }

    #[tokio::test]
    async fn a_429_blocks_every_console() {
        let limits = Arc::new(MemoryLimits::default());
        let paces = consoles(&limits, 2);
        let call = paces[0].admit(E, Duration::ZERO).await.unwrap();
        let mut refused = window(10, 0, 20).unwrap();
        refused.retry_after_secs = Some(20);
        call.answered(Utc::now(), 429, Some(refused)).await;
        let TooLong { wait } = paces[1].admit(E, Duration::from_secs(1)).await.unwrap_err();
        assert!(wait > Duration::from_secs(15), "{wait:?}");
    }

    #[tokio::test]
    async fn an_abandoned_call_frees_the_shared_gate() {
        let limits = Arc::new(MemoryLimits::default());
        let paces = consoles(&limits, 2);
        let call = paces[0].admit(E, Duration::ZERO).await.unwrap();
        let waiting = tokio::spawn({
            let pace = Arc::clone(&paces[1]);
            async move { pace.admit(E, Duration::from_secs(5)).await.is_ok() }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(call);
        assert!(
            waiting.await.unwrap(),
            "the dropped call ended in the shared gate"
        );
    }

    #[tokio::test]
    async fn an_unreachable_database_leaves_each_console_its_own_gate_from_what_it_saw() {
        let limits = Arc::new(MemoryLimits::default());
        let paces = consoles(&limits, 2);
        let call = paces[0].admit(E, Duration::ZERO).await.unwrap();
        call.answered(Utc::now(), 200, window(5, 0, 30)).await;
        limits.broken.store(true, Ordering::Relaxed);
        // what this console last saw still holds: the window is spent
        assert!(paces[0].admit(E, Duration::ZERO).await.is_err());
        // a console that saw nothing goes on as a console alone: one call, then its answer
        let alone = paces[1].admit(E, Duration::ZERO).await.expect("not failed");
        assert!(paces[1].admit(E, Duration::ZERO).await.is_err());
        alone.answered(Utc::now(), 200, window(5, 3, 30)).await;
        assert!(paces[1].admit(E, Duration::ZERO).await.is_ok());
        limits.broken.store(false, Ordering::Relaxed);
        assert!(
            paces[1].admit(E, Duration::ZERO).await.is_err(),
            "back on the shared gate, whose window is spent"
        );
    }
}

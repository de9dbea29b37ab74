//! Paces outbound calls by the rate limits a service announces (`X-RateLimit-Limit`,
//! `-Remaining`, `-Reset`) and the ones it documents, so that many exports in flight at once use a
//! window to its end without spending calls on certain 429s.
//!
//! Every client built for one set of credentials shares one [`Pace`], which keeps a gate per
//! endpoint, because HiBob counts per endpoint. A gate is in one of three states:
//! - it has heard nothing yet: calls go one at a time until an answer says whether the endpoint
//!   is limited, so a burst cannot overrun a limit nobody has announced yet;
//! - answers announce no limit: calls go freely, except where a limit is documented, which is
//!   counted here over a sliding period (that respects the server's window whatever its
//!   alignment);
//! - a window was announced: calls count down from the latest `Remaining`, less the calls still
//!   in flight (the server may not have counted them in it yet), until the announced reset. The
//!   first call of the next window goes alone: its answer is what shows the server has started
//!   the new window too, so a clock that runs ahead costs one 429 rather than a burst of them.
//!
//! A service's limit is per set of credentials, however many consoles use them. Where consoles
//! share a database that keeps limits for them (PostgreSQL, see `crate::shared_limits`), every
//! gate lives there (`shared`): a call takes its place in, and hands its answer to, the one gate
//! all consoles use, so three consoles together stay within the limit as one does. A call
//! waiting for another console's answer looks again every [`SHARED_ANSWER_POLL`]. When the
//! database cannot be reached at that moment, the call takes its place in this console's own
//! gate instead (started from the shared one as last seen) rather than failing the export: the
//! consoles then pace alone until it can be reached again, which is logged once each way. How
//! quickly an endpoint answers (`latency`) is always this console's own.

mod gate;
mod headers;
mod latency;
mod shared;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use tokio::sync::Notify;

use gate::{later, Gate, Turn};
use latency::Latency;
use shared::{Ending, Place, SharedGates};

pub use headers::RateLimit;
pub(crate) use headers::DEFAULT_RATE_LIMIT_WAIT;
#[cfg(test)]
pub(crate) use headers::MAX_RATE_LIMIT_WAIT;

/// Credential sets remembered at once; the least recently used is forgotten beyond this.
const MAX_CREDENTIAL_SETS: usize = 32;

/// How often a call waiting for another's answer looks again, in case that answer never comes.
const ANSWER_POLL: Duration = Duration::from_secs(1);

/// How often a call waiting for an answer looks again where another console may give it: no
/// wake-up comes from there, so this is how late such a call may notice its turn.
const SHARED_ANSWER_POLL: Duration = Duration::from_millis(200);

/// A limit a service documents, for when its answers do not announce one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Documented {
    pub calls: usize,
    pub per: Duration,
}

/// One endpoint as the service counts it: method and path with the ids left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint {
    pub name: &'static str,
    pub documented: Option<Documented>,
}

impl Endpoint {
    pub const fn new(name: &'static str) -> Self {
        Self {
            name,
            documented: None,
        }
    }

    /// An endpoint with a documented limit of `calls` per `secs` seconds.
    pub const fn documented(name: &'static str, calls: usize, secs: u64) -> Self {
        Self {
            name,
            documented: Some(Documented {
                calls,
                per: Duration::from_secs(secs),
            }),
        }
    }
}

/// One endpoint as this console keeps it.
#[derive(Debug)]
struct Local {
    /// The gate itself where gates are not shared. Where they are, the one this console falls
    /// back on while the database cannot be reached.
    gate: Gate,
    /// Where gates are shared: the shared gate as this console last read it, for
    /// [`Pace::ready_in`] (which must not wait for the database) and to start the fallback from.
    seen: Option<Gate>,
    latency: Latency,
}

impl Local {
    /// Keeps `gate` as the shared gate last seen, unless a newer write was seen already (answers
    /// to concurrent calls come back in any order).
    fn saw(&mut self, gate: Gate) {
        if self.seen.as_ref().is_none_or(|seen| gate.is_at_least(seen)) {
            self.seen = Some(gate);
        }
    }

    fn new(endpoint: Endpoint) -> Self {
        Self {
            gate: Gate::new(endpoint.documented),
            seen: None,
            latency: Latency::default(),
        }
    }

    /// The gate to go on alone with: the shared one as last seen, unless this console's own
    /// still has calls of its own out (or has already taken over from it).
    fn fallback(&mut self) -> &mut Gate {
        if let Some(seen) = self.seen.take() {
            if self.gate.open.is_empty() {
                self.gate = seen.without_open();
            }
        }
        &mut self.gate
    }
}

/// The pacing of one set of credentials: a gate per endpoint.
#[derive(Debug, Default)]
pub struct Pace {
    /// A digest of the credentials, which names their gates where they are shared.
    identity: [u8; 32],
    shared: Option<Arc<SharedGates>>,
    local: Mutex<HashMap<&'static str, Local>>,
    /// Woken whenever a call of this console ends, for calls waiting on another's answer.
    ended: Notify,
}

/// Why a call was not sent: the wait it would need is longer than the caller accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLong {
    pub wait: Duration,
}

impl Pace {
    fn new(identity: [u8; 32], shared: Option<Arc<SharedGates>>) -> Self {
        Self {
            identity,
            shared,
            ..Self::default()
        }
    }

    fn local(&self) -> MutexGuard<'_, HashMap<&'static str, Local>> {
        self.local
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn with_local<T>(&self, endpoint: Endpoint, f: impl FnOnce(&mut Local) -> T) -> T {
        let mut local = self.local();
        f(local
            .entry(endpoint.name)
            .or_insert_with(|| Local::new(endpoint)))
    }

    /// How long a call to `endpoint` would wait if it were made now (zero when it may go, or
    /// when it only waits for an answer already on its way). Where gates are shared, as this
    /// console last saw the gate.
    pub fn ready_in(&self, endpoint: Endpoint) -> Duration {
        let now = Utc::now();
        let turn = self.with_local(endpoint, |l| {
            let gate = l.seen.as_mut().unwrap_or(&mut l.gate);
            gate.roll(now);
            gate.peek(now)
        });
        match turn {
            Turn::Until(t) => (t - now).to_std().unwrap_or(Duration::ZERO),
            Turn::Go | Turn::AfterAnswer => Duration::ZERO,
        }
    }

    /// How much slower the slowest-going endpoint answers now than it can (see [`Latency`]);
    /// `None` until an endpoint has answered enough calls to say.
    pub fn slowdown(&self) -> Option<f64> {
        self.local()
            .values()
            .filter_map(|l| l.latency.slowdown())
            .reduce(f64::max)
    }

    /// Takes a call's place in the shared gate, or in this console's own where there is none
    /// or it cannot be reached.
    async fn take(&self, endpoint: Endpoint, now: DateTime<Utc>) -> (Result<u64, Turn>, Place) {
        if let Some(shared) = &self.shared {
            match shared.take(&self.identity, endpoint, now).await {
                Ok((taken, gate)) => {
                    shared.outage.worked(shared::WHAT);
                    self.with_local(endpoint, |l| l.saw(gate));
                    return (taken, Place::Shared);
                }
                Err(e) => shared.outage.failed(shared::WHAT, &e),
            }
        }
        let taken = self.with_local(endpoint, |l| {
            let gate = if self.shared.is_some() {
                l.fallback()
            } else {
                &mut l.gate
            };
            gate.take(now)
        });
        (taken, Place::Local)
    }

    /// Hands how a call ended to the gate it took its place in, and wakes the calls waiting.
    async fn end(&self, endpoint: Endpoint, place: Place, call: u64, ending: Ending) {
        match (place, &self.shared) {
            (Place::Shared, Some(shared)) => {
                match shared.end(&self.identity, endpoint, call, ending).await {
                    Ok(gate) => {
                        shared.outage.worked(shared::WHAT);
                        self.with_local(endpoint, |l| l.saw(gate));
                    }
                    // the shared gate drops the call once it has been out too long
                    Err(e) => shared.outage.failed(shared::WHAT, &e),
                }
            }
            _ => self.with_local(endpoint, |l| ending.apply(&mut l.gate, call)),
        }
        self.ended.notify_waiters();
    }

    /// Waits for the call's turn, at most `patience`. A call whose turn is further away is
    /// refused at once with the wait it would need, so the caller can come back then.
    pub async fn admit(
        self: &Arc<Self>,
        endpoint: Endpoint,
        patience: Duration,
    ) -> Result<Ticket, TooLong> {
        let deadline = later(Utc::now(), patience);
        let poll = if self.shared.is_some() {
            SHARED_ANSWER_POLL
        } else {
            ANSWER_POLL
        };
        loop {
            // registered before the gate is read, so an answer in between is not missed
            let ended = self.ended.notified();
            tokio::pin!(ended);
            ended.as_mut().enable();
            let now = Utc::now();
            let turn = match self.take(endpoint, now).await {
                (Ok(call), place) => {
                    return Ok(Ticket {
                        pace: Arc::clone(self),
                        endpoint,
                        call,
                        place,
                        open: true,
                        sent: std::time::Instant::now(),
                    })
                }
                (Err(turn), _) => turn,
            };
            match turn {
                Turn::Go => {}
                Turn::Until(t) if t > deadline => {
                    let wait = (t - now).to_std().unwrap_or(Duration::ZERO);
                    return Err(TooLong {
                        wait: wait.max(Duration::from_secs(1)),
                    });
                }
                Turn::Until(t) => {
                    tracing::debug!(
                        endpoint = endpoint.name,
                        "waiting for the rate-limit window"
                    );
                    // a hair past the instant, since resets are compared in whole seconds
                    let wait = (t - now).to_std().unwrap_or(Duration::ZERO);
                    tokio::time::sleep(wait + Duration::from_millis(2)).await;
                }
                Turn::AfterAnswer if deadline <= now => {
                    return Err(TooLong {
                        wait: Duration::from_secs(1),
                    })
                }
                Turn::AfterAnswer => {
                    let left = (deadline - now).to_std().unwrap_or(Duration::ZERO);
                    tokio::select! {
                        _ = &mut ended => {}
                        _ = tokio::time::sleep(left.min(poll)) => {}
                    }
                }
            }
        }
    }
}

/// A call's place in its endpoint's window. Dropped without [`Ticket::answered`], the call
/// counts as sent but unanswered.
#[derive(Debug)]
pub struct Ticket {
    pace: Arc<Pace>,
    endpoint: Endpoint,
    call: u64,
    place: Place,
    open: bool,
    sent: std::time::Instant,
}

impl Ticket {
    /// Hands the answer's status and rate-limit headers to the gate.
    pub async fn answered(mut self, at: DateTime<Utc>, status: u16, rate: Option<RateLimit>) {
        self.open = false;
        let took = self.sent.elapsed().as_secs_f64();
        // a refusal is quick whatever the load, and says nothing about it
        if status != 429 {
            self.pace
                .with_local(self.endpoint, |l| l.latency.observe(took));
        }
        let ending = Ending::Answered { at, status, rate };
        self.pace
            .end(self.endpoint, self.place, self.call, ending)
            .await;
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if !self.open {
            return;
        }
        let (pace, endpoint, call) = (Arc::clone(&self.pace), self.endpoint, self.call);
        match self.place {
            Place::Local => {
                pace.with_local(endpoint, |l| l.gate.abandon(call));
                pace.ended.notify_waiters();
            }
            // without a runtime to write it, the shared gate drops the call once it has been
            // out too long
            Place::Shared => {
                if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                    runtime.spawn(async move {
                        pace.end(endpoint, Place::Shared, call, Ending::Abandoned)
                            .await;
                    });
                }
            }
        }
    }
}

/// The paces of every set of credentials a console uses, found by a digest of the credentials
/// (the secrets themselves are not kept). The console's [`crate::settings::credentials::Credentials`] holds
/// one, so every client it builds for the same credentials shares its pace, however many
/// attempts and requests build clients of their own.
#[derive(Debug, Default)]
pub struct Pacing {
    sets: Mutex<Sets>,
    /// Where the gates are kept for every console on the database, if they are.
    shared: Option<Arc<SharedGates>>,
}

/// A use counter, and each set's pace with the count at its last use.
type Sets = (u64, HashMap<[u8; 32], (Arc<Pace>, u64)>);

/// A client's place in the pacing: the pace it shares and how long its calls wait for a turn.
#[derive(Debug, Clone)]
pub struct Turns {
    pace: Arc<Pace>,
    patience: Duration,
}

impl Turns {
    /// A pace of the client's own (shared by its clones only).
    pub fn own(patience: Duration) -> Self {
        Self {
            pace: Arc::default(),
            patience,
        }
    }

    /// The pace `pacing` keeps for the credentials `identity` describes.
    pub fn shared(self, pacing: &Pacing, identity: &str) -> Self {
        Self {
            pace: pacing.for_identity(identity),
            ..self
        }
    }

    pub fn with_patience(self, patience: Duration) -> Self {
        Self { patience, ..self }
    }

    /// How long a call to `endpoint` would wait for its turn if it were made now.
    pub fn ready_in(&self, endpoint: Endpoint) -> Duration {
        self.pace.ready_in(endpoint)
    }

    /// See [`Pace::slowdown`].
    pub fn slowdown(&self) -> Option<f64> {
        self.pace.slowdown()
    }

    pub(crate) fn pace(&self) -> &Arc<Pace> {
        &self.pace
    }

    pub(crate) fn patience(&self) -> Duration {
        self.patience
    }
}

impl Pacing {
    /// The pacing of a console on `db`: its gates kept in the database where `db` keeps limits
    /// for every console on it, in this process otherwise.
    pub fn over(db: &crate::Db) -> Self {
        Self::sharing(Arc::new(db.clone()))
    }

    /// The pacing of a console whose gates `holder` keeps, if it keeps any.
    pub(crate) fn sharing(holder: Arc<dyn crate::shared_limits::HoldsLimits>) -> Self {
        Self {
            sets: Mutex::default(),
            shared: SharedGates::of(holder),
        }
    }

    /// The pace for the credentials `identity` describes.
    pub fn for_identity(&self, identity: &str) -> Arc<Pace> {
        let key: [u8; 32] = Sha256::digest(identity.as_bytes()).into();
        let mut sets = self
            .sets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let (clock, map) = &mut *sets;
        *clock += 1;
        let tick = *clock;
        if let Some((pace, used)) = map.get_mut(&key) {
            *used = tick;
            return Arc::clone(pace);
        }
        if map.len() >= MAX_CREDENTIAL_SETS {
            let oldest = map
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| *k);
            if let Some(oldest) = oldest {
                map.remove(&oldest);
            }
        }
        let pace = Arc::new(Pace::new(key, self.shared.clone()));
        map.insert(key, (Arc::clone(&pace), tick));
        pace
    }
}

/// How long a call waits for its turn in a spent rate-limit window before it is given up
/// unsent; a person is usually waiting on the answer. The export worker waits longer.
pub const DEFAULT_PATIENCE: Duration = Duration::from_secs(5);

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_pace_reports_the_slowest_endpoints_slowdown() {
        let pace = Arc::new(Pace::default());
        assert_eq!(pace.slowdown(), None);
        let fast = Endpoint::new("fast");
        for _ in 0..latency::LATENCY_SAMPLES {
            let ticket = pace.admit(fast, Duration::from_secs(1)).await.unwrap();
            ticket.answered(Utc::now(), 200, None).await;
        }
        let s = pace.slowdown().unwrap();
        assert!((0.0..50.0).contains(&s), "{s}");
        pace.with_local(Endpoint::new("slow"), |l| {
            for t in [0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 1.0, 1.0, 1.0, 1.0] {
                l.latency.observe(t);
            }
        });
        assert!(pace.slowdown().unwrap() > 2.0, "the slowest counts");
    }

    #[tokio::test]
    async fn callers_share_the_window_and_the_too_patient_are_refused() {
        const E: Endpoint = Endpoint::new("POST /things");
        let pace = Arc::new(Pace::default());
        let first = pace.admit(E, Duration::ZERO).await.unwrap();
        let waiting = tokio::spawn({
            let pace = Arc::clone(&pace);
            async move { pace.admit(E, Duration::from_secs(5)).await.map(drop) }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "waits for the first answer");
        let now = Utc::now();
        let reset = now + chrono::Duration::seconds(30);
        first
            .answered(
                now,
                200,
                Some(RateLimit {
                    limit: Some(2),
                    remaining: Some(1),
                    reset_at: Some(reset),
                    retry_after_secs: None,
                    observed_at: now,
                }),
            )
            .await;
        waiting.await.unwrap().expect("the last call of the window");
        let refused = pace.admit(E, Duration::from_secs(1)).await.unwrap_err();
        assert!(refused.wait > Duration::from_secs(25), "{refused:?}");
        assert!(pace.ready_in(E) > Duration::from_secs(25));
        assert_eq!(pace.ready_in(Endpoint::new("GET /other")), Duration::ZERO);
    }

    #[tokio::test]
    async fn a_dropped_ticket_lets_the_next_call_go() {
        const E: Endpoint = Endpoint::new("GET /slow");
        let pace = Arc::new(Pace::default());
        let first = pace.admit(E, Duration::ZERO).await.unwrap();
        let second = tokio::spawn({
            let pace = Arc::clone(&pace);
            async move { pace.admit(E, Duration::from_secs(5)).await.is_ok() }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(first);
        assert!(second.await.unwrap());
    }

    #[test]
    fn one_pace_per_set_of_credentials_and_a_bounded_number_of_sets() {
        let pacing = Pacing::default();
        let a = pacing.for_identity("a");
        assert!(Arc::ptr_eq(&a, &pacing.for_identity("a")));
        assert!(!Arc::ptr_eq(&a, &pacing.for_identity("b")));
        for i in 0..100 {
            pacing.for_identity(&format!("set {i}"));
        }
        assert!(pacing.sets.lock().unwrap().1.len() <= MAX_CREDENTIAL_SETS);
    }
}

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

use std::{
    collections::{BTreeSet, HashMap, VecDeque},
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use chrono::{DateTime, TimeZone, Utc};
use reqwest::header::HeaderMap;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::Notify;

/// Credential sets remembered at once; the least recently used is forgotten beyond this.
const MAX_CREDENTIAL_SETS: usize = 32;

/// Answers whose reset lies within this of the window's end belong to that window (resets are
/// whole seconds, and servers round them differently).
const SAME_WINDOW: chrono::Duration = chrono::Duration::milliseconds(500);

/// How often a call waiting for another's answer looks again, in case that answer never comes.
const ANSWER_POLL: Duration = Duration::from_secs(1);

/// How much the quickest answer time is forgotten per answer that is not quicker: slowly, so a
/// service that slows down under load shows it, yet a lasting change is taken as the new normal
/// after a few hundred answers.
const QUICKEST_DRIFT: f64 = 1.005;
/// The weight of the latest answer in the running average of answer times.
const RECENT_WEIGHT: f64 = 0.2;
/// Fewer answers than this say nothing about whether the service slows down.
const LATENCY_SAMPLES: u32 = 8;
/// Answer times are compared from this up: an endpoint that answers in a millisecond and then in
/// twenty is not slowing an export that takes half a second, only showing a busy machine.
const LATENCY_FLOOR_SECS: f64 = 0.05;

/// How long an endpoint takes to answer once a call is sent (the wait for its turn left out): the
/// quickest recent answer and a running average of the latest. Their ratio says whether the
/// service slows down under the calls in flight, which is when more in flight stops paying.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Latency {
    quickest: f64,
    recent: f64,
    samples: u32,
}

impl Latency {
    fn observe(&mut self, secs: f64) {
        // a clock step or a cached answer must not make the quickest zero
        let secs = secs.max(0.000_1);
        if self.samples == 0 {
            self.quickest = secs;
            self.recent = secs;
        } else {
            self.quickest = (self.quickest * QUICKEST_DRIFT).min(secs);
            self.recent += RECENT_WEIGHT * (secs - self.recent);
        }
        self.samples = self.samples.saturating_add(1);
    }

    /// The latest answers' time over the quickest (or over [`LATENCY_FLOOR_SECS`], whichever is
    /// longer): 1 when nothing waits, 2 when calls take twice as long as they can.
    fn slowdown(&self) -> Option<f64> {
        (self.samples >= LATENCY_SAMPLES)
            .then(|| self.recent / self.quickest.max(LATENCY_FLOOR_SECS))
    }
}

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Known {
    Nothing,
    /// Answers carry no usable rate-limit headers.
    Unannounced,
    Window {
        limit: Option<u64>,
        left: u64,
        /// `None` once the window has turned over and no answer from the next one has arrived.
        ends: Option<DateTime<Utc>>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Turn {
    Go,
    Until(DateTime<Utc>),
    AfterAnswer,
}

#[derive(Debug)]
struct Gate {
    known: Known,
    documented: Option<Documented>,
    /// Send times within the documented period, at most its number of calls.
    sent: VecDeque<DateTime<Utc>>,
    /// The calls sent and not yet ended, by the order they were sent in.
    open: BTreeSet<u64>,
    next_call: u64,
    /// The lowest remaining count answered in the current window, and the call it answered:
    /// the server's latest count as far as is known.
    lowest: Option<(u64, u64)>,
    blocked_until: Option<DateTime<Utc>>,
    latency: Latency,
}

fn later(at: DateTime<Utc>, by: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(by)
        .ok()
        .and_then(|d| at.checked_add_signed(d))
        .unwrap_or(at)
}

impl Gate {
    fn new(documented: Option<Documented>) -> Self {
        Self {
            known: Known::Nothing,
            documented,
            sent: VecDeque::new(),
            open: BTreeSet::new(),
            next_call: 0,
            lowest: None,
            blocked_until: None,
            latency: Latency::default(),
        }
    }

    /// Forgets what time has made obsolete: a lapsed block, old sends, an ended window.
    fn roll(&mut self, now: DateTime<Utc>) {
        if self.blocked_until.is_some_and(|t| t <= now) {
            self.blocked_until = None;
        }
        if let Some(doc) = self.documented {
            while self.sent.front().is_some_and(|t| later(*t, doc.per) <= now) {
                self.sent.pop_front();
            }
        }
        match self.known {
            Known::Window {
                limit,
                ends: Some(end),
                ..
            } if end <= now => {
                self.lowest = None;
                self.known = Known::Window {
                    limit,
                    // an unknown limit still allows the one call that finds it out
                    left: limit.unwrap_or(1).max(1),
                    ends: None,
                };
            }
            // the call that was to find the new window out ended without saying: another may
            Known::Window {
                limit,
                left: 0,
                ends: None,
            } if self.open.is_empty() => {
                self.known = Known::Window {
                    limit,
                    left: 1,
                    ends: None,
                };
            }
            _ => {}
        }
    }

    fn peek(&self, now: DateTime<Utc>) -> Turn {
        if let Some(t) = self.blocked_until {
            return Turn::Until(t);
        }
        let announced = matches!(self.known, Known::Window { .. });
        if let Some(doc) = self.documented.filter(|_| !announced) {
            if self.sent.len() >= doc.calls {
                return match self.sent.front() {
                    Some(first) => Turn::Until(later(*first, doc.per)),
                    None => Turn::Go,
                };
            }
        }
        match self.known {
            Known::Nothing if self.documented.is_none() && !self.open.is_empty() => {
                Turn::AfterAnswer
            }
            Known::Nothing | Known::Unannounced => Turn::Go,
            Known::Window { ends: None, .. } if !self.open.is_empty() => Turn::AfterAnswer,
            Known::Window { left: 0, ends, .. } => {
                Turn::Until(ends.unwrap_or_else(|| later(now, ANSWER_POLL)))
            }
            Known::Window { .. } => Turn::Go,
        }
    }

    /// Takes a call's place when it may go now, numbered in sending order.
    fn take(&mut self, now: DateTime<Utc>) -> Result<u64, Turn> {
        self.roll(now);
        let turn = self.peek(now);
        if turn != Turn::Go {
            return Err(turn);
        }
        let call = self.next_call;
        self.next_call = self.next_call.wrapping_add(1);
        self.open.insert(call);
        {
            if let Some(doc) = self.documented {
                if self.sent.len() >= doc.calls {
                    self.sent.pop_front();
                }
                self.sent.push_back(now);
            }
            if let Known::Window { left, .. } = &mut self.known {
                *left = left.saturating_sub(1);
            }
        }
        Ok(call)
    }

    /// A call ended without an answer (timeout, transport error, cancelled): its place in the
    /// window stays spent, since the server may have counted it.
    fn abandon(&mut self, call: u64) {
        self.open.remove(&call);
    }

    /// Learns from the answer to `call` that arrived at `now`.
    fn answered(&mut self, call: u64, now: DateTime<Utc>, status: u16, rate: Option<RateLimit>) {
        self.abandon(call);
        let previous_limit = match self.known {
            Known::Window { limit, .. } => limit,
            _ => None,
        };
        if status == 429 {
            let wait = rate.map(|r| r.wait(now)).unwrap_or(DEFAULT_RATE_LIMIT_WAIT);
            let until = later(now, wait);
            self.blocked_until = Some(self.blocked_until.map_or(until, |t| t.max(until)));
            self.lowest = None;
            self.known = Known::Window {
                limit: rate.and_then(|r| r.limit).or(previous_limit),
                left: 0,
                ends: Some(until),
            };
            return;
        }
        let window = rate.and_then(|r| Some((r.remaining?, r.reset_at?)));
        let Some((remaining, mut reset)) = window else {
            let first_of_a_window = matches!(self.known, Known::Window { ends: None, .. });
            // a success that announces nothing, where an announcement was due: the server no
            // longer announces (a documented limit still holds); an error page may simply lack
            // the headers, so the next call asks again
            if self.known == Known::Nothing || (first_of_a_window && (200..300).contains(&status)) {
                self.known = Known::Unannounced;
            }
            return;
        };
        if reset <= now {
            // a late answer from a window that has ended, or a server clock behind ours
            if matches!(self.known, Known::Window { .. }) {
                return;
            }
            reset = later(now, Duration::from_secs(1));
        }
        let limit = rate.and_then(|r| r.limit).or(previous_limit);
        let same_window = matches!(
            self.known,
            Known::Window { ends: Some(end), .. } if reset <= end + SAME_WINDOW
        );
        // within a window the count only falls: a higher one answered an earlier-counted call
        let lowest = match self.lowest.filter(|_| same_window) {
            Some((low, low_call)) if low < remaining || (low == remaining && low_call > call) => {
                (low, low_call)
            }
            _ => (remaining, call),
        };
        self.lowest = Some(lowest);
        // calls sent after the one that gave the count, and still out, may not be in it yet
        let (low, low_call) = lowest;
        let sent_after = self.open.range(low_call.saturating_add(1)..).count();
        let left = low.saturating_sub(u64::try_from(sent_after).unwrap_or(u64::MAX));
        let ends = match self.known {
            Known::Window {
                ends: Some(end), ..
            } if same_window => end,
            _ => reset,
        };
        self.known = Known::Window {
            limit,
            left,
            ends: Some(ends),
        };
    }
}

/// The pacing of one set of credentials: a gate per endpoint.
#[derive(Debug, Default)]
pub struct Pace {
    gates: Mutex<HashMap<&'static str, Gate>>,
    /// Woken whenever a call ends, for calls waiting on another's answer.
    ended: Notify,
}

/// Why a call was not sent: the wait it would need is longer than the caller accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLong {
    pub wait: Duration,
}

impl Pace {
    fn gates(&self) -> MutexGuard<'_, HashMap<&'static str, Gate>> {
        self.gates
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn with_gate<T>(&self, endpoint: Endpoint, f: impl FnOnce(&mut Gate) -> T) -> T {
        let mut gates = self.gates();
        let gate = gates
            .entry(endpoint.name)
            .or_insert_with(|| Gate::new(endpoint.documented));
        f(gate)
    }

    /// How long a call to `endpoint` would wait if it were made now (zero when it may go, or
    /// when it only waits for an answer already on its way).
    pub fn ready_in(&self, endpoint: Endpoint) -> Duration {
        let now = Utc::now();
        match self.with_gate(endpoint, |g| {
            g.roll(now);
            g.peek(now)
        }) {
            Turn::Until(t) => (t - now).to_std().unwrap_or(Duration::ZERO),
            Turn::Go | Turn::AfterAnswer => Duration::ZERO,
        }
    }

    /// How much slower the slowest-going endpoint answers now than it can (see [`Latency`]);
    /// `None` until an endpoint has answered enough calls to say.
    pub fn slowdown(&self) -> Option<f64> {
        self.gates()
            .values()
            .filter_map(|g| g.latency.slowdown())
            .reduce(f64::max)
    }

    /// Waits for the call's turn, at most `patience`. A call whose turn is further away is
    /// refused at once with the wait it would need, so the caller can come back then.
    pub async fn admit(
        self: &Arc<Self>,
        endpoint: Endpoint,
        patience: Duration,
    ) -> Result<Ticket, TooLong> {
        let deadline = later(Utc::now(), patience);
        loop {
            // registered before the gate is read, so an answer in between is not missed
            let ended = self.ended.notified();
            tokio::pin!(ended);
            ended.as_mut().enable();
            let now = Utc::now();
            let turn = match self.with_gate(endpoint, |g| g.take(now)) {
                Ok(call) => {
                    return Ok(Ticket {
                        pace: Arc::clone(self),
                        endpoint,
                        call,
                        open: true,
                        sent: std::time::Instant::now(),
                    })
                }
                Err(turn) => turn,
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
                        _ = tokio::time::sleep(left.min(ANSWER_POLL)) => {}
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
    open: bool,
    sent: std::time::Instant,
}

impl Ticket {
    /// Hands the answer's status and rate-limit headers to the gate.
    pub fn answered(mut self, at: DateTime<Utc>, status: u16, rate: Option<RateLimit>) {
        self.open = false;
        let took = self.sent.elapsed().as_secs_f64();
        self.pace.with_gate(self.endpoint, |g| {
            // a refusal is quick whatever the load, and says nothing about it
            if status != 429 {
                g.latency.observe(took);
            }
            g.answered(self.call, at, status, rate)
        });
        self.pace.ended.notify_waiters();
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if self.open {
            let call = self.call;
            self.pace.with_gate(self.endpoint, |g| g.abandon(call));
            self.pace.ended.notify_waiters();
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
        let pace = Arc::new(Pace::default());
        map.insert(key, (Arc::clone(&pace), tick));
        pace
    }
}

/// How long a call waits for its turn in a spent rate-limit window before it is given up
/// unsent; a person is usually waiting on the answer. The export worker waits longer.
pub const DEFAULT_PATIENCE: Duration = Duration::from_secs(5);

/// Used when a 429 names no wait at all; one minute is the window both services count in.
pub(crate) const DEFAULT_RATE_LIMIT_WAIT: Duration = Duration::from_secs(60);

/// A server asking for more than this is more likely wrong than right; the queue re-checks anyway.
pub(crate) const MAX_RATE_LIMIT_WAIT: Duration = Duration::from_secs(15 * 60);

/// The rate-limit state a server last announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimit {
    /// `X-RateLimit-Limit`: calls allowed per window.
    pub limit: Option<u64>,
    /// `X-RateLimit-Remaining`: calls left in the current window.
    pub remaining: Option<u64>,
    /// `X-RateLimit-Reset`: when the window starts over.
    pub reset_at: Option<DateTime<Utc>>,
    /// `Retry-After`, converted to seconds from `observed_at` when it was an HTTP date.
    pub retry_after_secs: Option<u64>,
    pub observed_at: DateTime<Utc>,
}

impl RateLimit {
    /// `None` when the response carries none of the four headers, so that a response without
    /// them does not erase what an earlier one said.
    pub fn from_headers(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Self> {
        let text = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty())
        };
        let number = |name: &str| text(name).and_then(|v| v.parse::<u64>().ok());
        let limit = number("x-ratelimit-limit");
        let remaining = number("x-ratelimit-remaining");
        let reset_at = text("x-ratelimit-reset").and_then(|v| parse_reset(v, now));
        let retry_after_secs = text("retry-after").and_then(|v| parse_retry_after(v, now));
        if limit.is_none()
            && remaining.is_none()
            && reset_at.is_none()
            && retry_after_secs.is_none()
        {
            return None;
        }
        Some(Self {
            limit,
            remaining,
            reset_at,
            retry_after_secs,
            observed_at: now,
        })
    }

    /// How long to wait before calling again: `Retry-After` first, then the window reset,
    /// else a minute; never more than 15 minutes and never zero.
    pub fn wait(&self, now: DateTime<Utc>) -> Duration {
        let elapsed = (now - self.observed_at).num_seconds().max(0).unsigned_abs();
        let wait = if let Some(secs) = self.retry_after_secs {
            Duration::from_secs(secs.saturating_sub(elapsed).max(1))
        } else {
            match self.reset_at.map(|reset| (reset - now).num_seconds()) {
                Some(secs) if secs >= 0 => Duration::from_secs(secs.unsigned_abs().max(1)),
                // a reset in the past means a skewed clock: fall back to the plain window
                _ => DEFAULT_RATE_LIMIT_WAIT,
            }
        };
        wait.min(MAX_RATE_LIMIT_WAIT)
    }

    /// True when the window is used up and has not reset yet, so a caller can hold back
    /// instead of spending a call on a certain 429.
    pub fn is_exhausted(&self, now: DateTime<Utc>) -> bool {
        self.remaining == Some(0) && self.reset_at.is_some_and(|reset| reset > now)
    }
}

/// HiBob documents epoch seconds; gateways in front of either service sometimes send a delta
/// or epoch milliseconds instead, and the magnitude tells them apart.
fn parse_reset(value: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let n: i64 = value.parse::<f64>().ok().filter(|f| f.is_finite())? as i64;
    if n < 0 {
        None
    } else if n < 1_000_000_000 {
        now.checked_add_signed(chrono::Duration::seconds(n))
    } else if n < 100_000_000_000 {
        Utc.timestamp_opt(n, 0).single()
    } else {
        Utc.timestamp_millis_opt(n).single()
    }
}

fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<u64> {
    if let Ok(secs) = value.parse::<u64>() {
        return Some(secs);
    }
    let at = DateTime::parse_from_rfc2822(value)
        .ok()?
        .with_timezone(&Utc);
    Some((at - now).num_seconds().max(0).unsigned_abs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(ms: i64) -> DateTime<Utc> {
        Utc.timestamp_millis_opt(1_700_000_000_000 + ms).unwrap()
    }

    impl Gate {
        /// Answers the oldest call still out.
        fn answer(&mut self, now: DateTime<Utc>, status: u16, rate: Option<RateLimit>) {
            let call = self.open.first().copied().unwrap_or(u64::MAX);
            self.answered(call, now, status, rate);
        }

        fn turn(&mut self, now: DateTime<Utc>) -> Turn {
            self.take(now).map_or_else(|turn| turn, |_| Turn::Go)
        }
    }

    const SLOWED: f64 = 2.0;

    #[test]
    fn answer_times_say_when_the_service_slows_down() {
        let mut l = Latency::default();
        for _ in 0..(LATENCY_SAMPLES - 1) {
            l.observe(0.2);
        }
        assert_eq!(l.slowdown(), None, "too few answers to say");
        l.observe(0.2);
        assert!((l.slowdown().unwrap() - 1.0).abs() < 1e-9);
        for _ in 0..10 {
            l.observe(0.6);
        }
        let slowed = l.slowdown().unwrap();
        assert!(slowed > SLOWED, "three times slower shows: {slowed}");
        for _ in 0..2_000 {
            l.observe(0.6);
        }
        let settled = l.slowdown().unwrap();
        assert!(
            settled < 1.1,
            "a lasting change becomes the norm: {settled}"
        );
        l.observe(0.0);
        assert!(
            l.slowdown().unwrap().is_finite(),
            "a zero time divides nothing by zero"
        );

        let mut quick = Latency::default();
        for t in [0.001; 8].into_iter().chain([0.02; 20]) {
            quick.observe(t);
        }
        assert!(
            quick.slowdown().unwrap() < 1.0,
            "a millisecond growing to twenty is a busy machine, not a slow service"
        );
        for _ in 0..20 {
            quick.observe(0.3);
        }
        assert!(
            quick.slowdown().unwrap() > SLOWED,
            "but a quick endpoint can still slow down"
        );
    }

    #[tokio::test]
    async fn a_pace_reports_the_slowest_endpoints_slowdown() {
        let pace = Arc::new(Pace::default());
        assert_eq!(pace.slowdown(), None);
        let fast = Endpoint::new("fast");
        for _ in 0..LATENCY_SAMPLES {
            let ticket = pace.admit(fast, Duration::from_secs(1)).await.unwrap();
            ticket.answered(Utc::now(), 200, None);
        }
        let s = pace.slowdown().unwrap();
        assert!((0.0..50.0).contains(&s), "{s}");
        pace.with_gate(Endpoint::new("slow"), |g| {
            for t in [0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 1.0, 1.0, 1.0, 1.0] {
                g.latency.observe(t);
            }
        });
        assert!(pace.slowdown().unwrap() > 2.0, "the slowest counts");
    }

    fn headers(limit: u64, remaining: u64, reset_ms: i64, now_ms: i64) -> Option<RateLimit> {
        Some(RateLimit {
            limit: Some(limit),
            remaining: Some(remaining),
            reset_at: Some(at(reset_ms)),
            retry_after_secs: None,
            observed_at: at(now_ms),
        })
    }

    #[test]
    fn with_nothing_known_calls_go_one_at_a_time() {
        let mut g = Gate::new(None);
        assert_eq!(g.turn(at(0)), Turn::Go);
        assert_eq!(g.turn(at(1)), Turn::AfterAnswer);
        g.answer(at(200), 200, None);
        assert_eq!(g.known, Known::Unannounced);
        for i in 0..20 {
            assert_eq!(g.turn(at(201 + i)), Turn::Go, "no limit announced: free");
        }
    }

    #[test]
    fn an_announced_window_is_used_to_its_end_and_no_further() {
        let mut g = Gate::new(None);
        assert_eq!(g.turn(at(0)), Turn::Go);
        g.answer(at(200), 200, headers(5, 4, 2000, 200));
        let mut went = 1;
        while g.turn(at(201)) == Turn::Go {
            went += 1;
        }
        assert_eq!(went, 5, "the limit per window");
        assert_eq!(g.turn(at(202)), Turn::Until(at(2000)));
        // answers of the calls in flight only confirm the count
        for remaining in (0..4).rev() {
            g.answer(at(400), 200, headers(5, remaining, 2000, 400));
        }
        assert_eq!(g.turn(at(500)), Turn::Until(at(2000)));
        // the next window: one call finds it, then the rest follow
        assert_eq!(g.turn(at(2000)), Turn::Go);
        assert_eq!(g.turn(at(2001)), Turn::AfterAnswer);
        g.answer(at(2200), 200, headers(5, 4, 4000, 2200));
        let mut went = 1;
        while g.turn(at(2201)) == Turn::Go {
            went += 1;
        }
        assert_eq!(went, 5);
    }

    #[test]
    fn calls_in_flight_are_held_back_from_the_remaining_count() {
        let mut g = Gate::new(None);
        g.turn(at(0));
        g.answer(at(100), 200, headers(10, 9, 60_000, 100));
        for _ in 0..3 {
            assert_eq!(g.turn(at(101)), Turn::Go);
        }
        // someone else used the window meanwhile: the server says 2 are left, and 2 of ours
        // are still on their way, so none may go
        g.answer(at(150), 200, headers(10, 2, 60_000, 150));
        assert_eq!(g.turn(at(151)), Turn::Until(at(60_000)));
    }

    #[test]
    fn answers_out_of_order_do_not_waste_the_window() {
        let mut g = Gate::new(None);
        let probe = g.take(at(0)).unwrap();
        g.answered(probe, at(100), 200, headers(20, 19, 10_000, 100));
        let calls: Vec<u64> = (0..7).map(|_| g.take(at(101)).unwrap()).collect();
        // the last one sent is answered first: it was counted after all the others
        g.answered(calls[6], at(300), 200, headers(20, 12, 10_000, 300));
        for &call in &calls[..6] {
            g.answered(call, at(310), 200, headers(20, 13, 10_000, 310));
        }
        let mut went = 0;
        while g.turn(at(400)) == Turn::Go {
            went += 1;
        }
        assert_eq!(went, 12, "all that the server says are left");
    }

    #[test]
    fn a_late_answer_from_an_ended_window_changes_nothing() {
        let mut g = Gate::new(None);
        g.turn(at(0));
        g.answer(at(100), 200, headers(5, 4, 1000, 100));
        g.turn(at(101));
        assert_eq!(
            g.turn(at(1001)),
            Turn::AfterAnswer,
            "a call from the old window is still out"
        );
        g.answer(at(1100), 200, headers(5, 3, 1000, 1100));
        assert_eq!(
            g.known,
            Known::Window {
                limit: Some(5),
                left: 5,
                ends: None
            }
        );
        assert_eq!(
            g.turn(at(1101)),
            Turn::Go,
            "the first call of the new window"
        );
        assert_eq!(g.turn(at(1102)), Turn::AfterAnswer);
    }

    #[test]
    fn a_429_blocks_every_call_until_the_wait_it_names() {
        let mut g = Gate::new(None);
        g.turn(at(0));
        g.turn(at(0));
        let mut rl = headers(5, 0, 7000, 100).unwrap();
        rl.retry_after_secs = Some(3);
        g.answer(at(100), 429, Some(rl));
        assert_eq!(g.turn(at(200)), Turn::Until(at(3100)));
        // the other call's answer must not open the gate early
        g.answer(at(300), 200, headers(5, 2, 2000, 300));
        assert_eq!(g.turn(at(400)), Turn::Until(at(3100)));
        assert_eq!(g.turn(at(3100)), Turn::Go);
    }

    #[test]
    fn an_answer_without_headers_in_a_new_window_does_not_stall_the_gate() {
        let mut g = Gate::new(None);
        g.turn(at(0));
        let mut rl = headers(5, 0, 1000, 100).unwrap();
        rl.retry_after_secs = Some(1);
        g.answer(at(100), 429, Some(rl));
        assert_eq!(g.turn(at(1100)), Turn::Go, "the first call after the wait");
        g.answer(at(1200), 503, None);
        assert_eq!(
            g.turn(at(1201)),
            Turn::Go,
            "an error page says nothing: ask again"
        );
        g.answer(at(1300), 200, None);
        assert_eq!(g.known, Known::Unannounced);
        assert_eq!(g.turn(at(1301)), Turn::Go);
        assert_eq!(g.turn(at(1302)), Turn::Go);
    }

    #[test]
    fn a_documented_limit_holds_over_any_sliding_period() {
        let mut g = Gate::new(Some(Documented {
            calls: 3,
            per: Duration::from_secs(60),
        }));
        for ms in [0, 10, 20] {
            assert_eq!(g.turn(at(ms)), Turn::Go, "documented: no probing needed");
        }
        assert_eq!(g.turn(at(30)), Turn::Until(at(60_000)));
        for _ in 0..3 {
            g.answer(at(50), 200, None);
        }
        assert_eq!(g.turn(at(59_999)), Turn::Until(at(60_000)));
        assert_eq!(g.turn(at(60_000)), Turn::Go);
        assert_eq!(g.turn(at(60_001)), Turn::Until(at(60_010)));
        assert!(g.sent.len() <= 3, "bounded");
    }

    #[test]
    fn announced_headers_take_over_from_the_documented_limit() {
        let mut g = Gate::new(Some(Documented {
            calls: 2,
            per: Duration::from_secs(60),
        }));
        g.turn(at(0));
        g.answer(at(100), 200, headers(100, 99, 60_000, 100));
        for _ in 0..10 {
            assert_eq!(g.turn(at(200)), Turn::Go);
        }
    }

    #[test]
    fn a_reset_in_the_past_on_first_contact_waits_a_second() {
        let mut g = Gate::new(None);
        g.turn(at(5000));
        g.answer(at(5100), 200, headers(5, 0, 1000, 5100));
        assert_eq!(g.turn(at(5200)), Turn::Until(at(6100)));
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
        first.answered(
            now,
            200,
            Some(RateLimit {
                limit: Some(2),
                remaining: Some(1),
                reset_at: Some(reset),
                retry_after_secs: None,
                observed_at: now,
            }),
        );
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

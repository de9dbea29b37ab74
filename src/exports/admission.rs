//! How many exports the worker keeps in flight. The rate limits HiBob and Pinpoint announce are
//! kept by the pacer (`pacing`), call by call, so the number in flight does not protect them: it
//! only has to be large enough to use the budget they give. A fixed, low number wastes it; an
//! unbounded one spends memory and connections and, when a window is spent, parks exports inside
//! the pacer holding leases. So a new export starts only when all three agree:
//!
//! - **the budget**: the endpoints its first calls need have room now (Pinpoint's application
//!   read, HiBob's create). When a window is spent, the exports in flight keep their turns and
//!   no more are started until it turns over;
//! - **the latency**: while the services answer about as fast as they can, one more in flight
//!   finishes the queue sooner, so the limit grows by one per finished export (it starts at the
//!   bound). When answers take twice as long as the quickest recent ones, calls are queueing
//!   somewhere (in the service or in front of it) and more in flight would only add to the
//!   queue: the limit shrinks by a quarter, at most once a round (as many exports finished as
//!   the limit allowed), so one slow moment does not take it down to one;
//! - **the bound**: `EXPORT_CONCURRENCY`, which protects memory and connections whatever the
//!   services say.

use std::time::Duration;

/// Answers this much slower than the quickest recent ones mean more in flight would queue.
pub const SLOWED_DOWN: f64 = 2.0;
/// Below this, more in flight still pays.
const NOT_SLOWED: f64 = 1.5;
/// How often a held-back worker looks again when nothing finishes meanwhile.
pub const RECHECK: Duration = Duration::from_millis(250);

/// What the services' pacing says right now.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Pressure {
    /// How long a new export's first Pinpoint call would wait for its turn.
    pub pinpoint_wait: Duration,
    /// How long a new export's first HiBob call would wait for its turn.
    pub hibob_wait: Duration,
    /// The slowest-going service's answer time over its quickest recent one (1 = no queueing).
    pub slowdown: Option<f64>,
}

/// Why no further export is started now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Holdback {
    /// HiBob's rate-limit window has no room for another export's first call.
    HibobBudget,
    /// Pinpoint's rate-limit window has no room for another export's first call.
    PinpointBudget,
    /// The services answer slower than they can: more in flight would only queue.
    Latency,
    /// `EXPORT_CONCURRENCY` exports are in flight.
    Bound,
}

impl Holdback {
    pub const ALL: [Holdback; 4] = [
        Holdback::HibobBudget,
        Holdback::PinpointBudget,
        Holdback::Latency,
        Holdback::Bound,
    ];

    /// The label on metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Holdback::HibobBudget => "hibob_budget",
            Holdback::PinpointBudget => "pinpoint_budget",
            Holdback::Latency => "latency",
            Holdback::Bound => "bound",
        }
    }

    /// In words, for the dashboard.
    pub fn describe(self) -> &'static str {
        match self {
            Holdback::HibobBudget => "waiting for HiBob's rate-limit window to turn over",
            Holdback::PinpointBudget => "waiting for Pinpoint's rate-limit window to turn over",
            Holdback::Latency => {
                "HiBob or Pinpoint answers slower under load, so no more are started"
            }
            Holdback::Bound => "at the most in flight the console allows (EXPORT_CONCURRENCY)",
        }
    }
}

/// The worker's in-flight limit; see the module's description.
#[derive(Debug, Clone, PartialEq)]
pub struct Admission {
    bound: usize,
    limit: usize,
    /// Exports still to finish before the limit may shrink again after shrinking.
    settling: usize,
}

impl Admission {
    pub fn new(bound: usize) -> Self {
        let bound = bound.max(1);
        Self {
            bound,
            limit: bound,
            settling: 0,
        }
    }

    pub fn bound(&self) -> usize {
        self.bound
    }

    /// The most in flight the latency allows now.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Whether another export may start with `in_flight` running; when not, why, and when to
    /// look again if nothing finishes before.
    pub fn decide(
        &self,
        in_flight: usize,
        pressure: &Pressure,
    ) -> Result<(), (Holdback, Duration)> {
        if in_flight >= self.bound {
            return Err((Holdback::Bound, RECHECK));
        }
        if in_flight >= self.limit {
            return Err((Holdback::Latency, RECHECK));
        }
        // one export always runs, so an idle worker never waits on a window it could use
        if in_flight > 0 {
            if !pressure.hibob_wait.is_zero() {
                return Err((Holdback::HibobBudget, pressure.hibob_wait.min(RECHECK)));
            }
            if !pressure.pinpoint_wait.is_zero() {
                return Err((
                    Holdback::PinpointBudget,
                    pressure.pinpoint_wait.min(RECHECK),
                ));
            }
        }
        Ok(())
    }

    /// Adjusts the limit once an export has finished, by how the services answer now.
    pub fn finished(&mut self, in_flight: usize, slowdown: Option<f64>) {
        if self.settling > 0 {
            // the exports started before the last cut still reflect the load before it
            self.settling -= 1;
            return;
        }
        match slowdown {
            Some(s) if s >= SLOWED_DOWN => {
                // shrink from what is actually in flight, not from a limit never reached
                let from = self.limit.min(in_flight.max(1));
                self.limit = (from - from / 4).max(1);
                self.settling = self.limit;
            }
            Some(s) if s >= NOT_SLOWED => {}
            _ => self.limit = (self.limit + 1).min(self.bound),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calm() -> Pressure {
        Pressure {
            slowdown: Some(1.0),
            ..Pressure::default()
        }
    }

    #[test]
    fn starts_at_the_bound_and_never_passes_it() {
        let mut a = Admission::new(64);
        assert_eq!(a.decide(63, &calm()), Ok(()));
        assert_eq!(a.decide(64, &calm()).map_err(|e| e.0), Err(Holdback::Bound));
        a.finished(64, Some(1.0));
        assert_eq!(a.limit(), 64, "growing stops at the bound");
        assert_eq!(Admission::new(0).bound(), 1, "one is the least");
    }

    #[test]
    fn a_spent_window_holds_new_exports_but_never_the_first() {
        let a = Admission::new(64);
        let spent = Pressure {
            hibob_wait: Duration::from_secs(7),
            ..calm()
        };
        assert_eq!(a.decide(0, &spent), Ok(()), "an idle worker uses its turn");
        assert_eq!(
            a.decide(3, &spent),
            Err((Holdback::HibobBudget, RECHECK)),
            "looks again soon, not after the whole window"
        );
        let pinpoint = Pressure {
            pinpoint_wait: Duration::from_millis(100),
            ..calm()
        };
        assert_eq!(
            a.decide(3, &pinpoint),
            Err((Holdback::PinpointBudget, Duration::from_millis(100)))
        );
    }

    #[test]
    fn slowing_answers_shrink_the_limit_and_fast_ones_grow_it_back() {
        let mut a = Admission::new(64);
        a.finished(40, Some(3.0));
        assert_eq!(a.limit(), 30, "a quarter off what was in flight");
        assert_eq!(
            a.decide(30, &calm()).map_err(|e| e.0),
            Err(Holdback::Latency)
        );
        for _ in 0..29 {
            a.finished(30, Some(3.0));
        }
        assert_eq!(a.limit(), 30, "no second cut within the round after a cut");
        a.finished(30, Some(3.0));
        assert_eq!(
            a.limit(),
            30,
            "the round ends with the limit's worth finished"
        );
        a.finished(30, Some(3.0));
        assert_eq!(a.limit(), 23, "then it cuts again");
        for _ in 0..23 {
            a.finished(23, Some(1.7));
        }
        a.finished(23, Some(1.7));
        assert_eq!(a.limit(), 23, "between the marks it holds");
        for _ in 0..5 {
            a.finished(23, Some(1.1));
        }
        assert_eq!(a.limit(), 28, "and fast answers grow it by one an export");
        for _ in 0..1000 {
            a.finished(1, Some(10.0));
        }
        assert_eq!(a.limit(), 1, "never below one");
        a.finished(1, None);
        assert_eq!(a.limit(), 2, "nothing known yet is no reason to hold back");
    }
}

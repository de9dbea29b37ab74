//! One endpoint's gate: what is known of its window, and whose turn it is (see the module
//! documentation of `pacing`). Pure: it is told the time, and keeps no clock of its own.

use std::{
    collections::{BTreeMap, VecDeque},
    time::Duration,
};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Documented, RateLimit, ANSWER_POLL, DEFAULT_RATE_LIMIT_WAIT};

/// Answers whose reset lies within this of the window's end belong to that window (resets are
/// whole seconds, and servers round them differently).
const SAME_WINDOW: chrono::Duration = chrono::Duration::milliseconds(500);

/// Far longer than a call waits for its answer (`OUTBOUND_TIMEOUT_SECS`, 20 s unless raised): a
/// call out for longer was most likely sent by a console that stopped before its answer, and
/// would otherwise hold back the calls that wait for it for good. One that was only slow loses
/// nothing by it: its place in the window was spent when it was sent.
const OPEN_CALL_BOUND: Duration = Duration::from_secs(2 * 60);

fn later_signed(at: DateTime<Utc>, back: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(back)
        .ok()
        .and_then(|d| at.checked_sub_signed(d))
        .unwrap_or(at)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(super) enum Known {
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
pub(super) enum Turn {
    Go,
    Until(DateTime<Utc>),
    AfterAnswer,
}

/// One endpoint's window as far as is known. Where consoles share their gates it is read and
/// written as JSON, so all that it keeps is what every console may act on; how quickly the
/// endpoint answers each console stays with that console.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Gate {
    pub(super) known: Known,
    /// The endpoint's own, not stored: each console knows its endpoints.
    #[serde(skip)]
    documented: Option<Documented>,
    /// Send times within the documented period, at most its number of calls.
    sent: VecDeque<DateTime<Utc>>,
    /// The calls sent and not yet ended, by the order they were sent in, with when they were
    /// sent: a shared gate drops those of a console that stopped before it heard their answers.
    pub(super) open: BTreeMap<u64, DateTime<Utc>>,
    next_call: u64,
    /// The lowest remaining count answered in the current window, and the call it answered:
    /// the server's latest count as far as is known.
    lowest: Option<(u64, u64)>,
    blocked_until: Option<DateTime<Utc>>,
    /// How many times a shared gate has been written: answers reach a console in any order, and
    /// its view of the gate must not go back to an older one.
    #[serde(default)]
    revision: u64,
}

pub(super) fn later(at: DateTime<Utc>, by: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(by)
        .ok()
        .and_then(|d| at.checked_add_signed(d))
        .unwrap_or(at)
}

impl Gate {
    pub(super) fn new(documented: Option<Documented>) -> Self {
        Self {
            known: Known::Nothing,
            documented,
            sent: VecDeque::new(),
            open: BTreeMap::new(),
            next_call: 0,
            lowest: None,
            blocked_until: None,
            revision: 0,
        }
    }

    /// Counts a write of a shared gate.
    pub(super) fn revise(&mut self) {
        self.revision = self.revision.wrapping_add(1);
    }

    /// Whether this gate was written after `other` (or is the same write).
    pub(super) fn is_at_least(&self, other: &Gate) -> bool {
        self.revision >= other.revision
    }

    /// Gives a gate read back from a store its endpoint's documented limit.
    pub(super) fn documented(mut self, documented: Option<Documented>) -> Self {
        self.documented = documented;
        self
    }

    /// The same gate without its calls in flight: a start for a console that goes on alone,
    /// whose own calls are not among them.
    pub(super) fn without_open(mut self) -> Self {
        self.open.clear();
        self
    }

    /// Forgets what time has made obsolete: a lapsed block, old sends, an ended window, and
    /// calls out for longer than any answer takes (their console stopped before the answer).
    pub(super) fn roll(&mut self, now: DateTime<Utc>) {
        if self.blocked_until.is_some_and(|t| t <= now) {
            self.blocked_until = None;
        }
        let lost = later_signed(now, OPEN_CALL_BOUND);
        self.open.retain(|_, sent| *sent > lost);
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

    pub(super) fn peek(&self, now: DateTime<Utc>) -> Turn {
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
    pub(super) fn take(&mut self, now: DateTime<Utc>) -> Result<u64, Turn> {
        self.roll(now);
        let turn = self.peek(now);
        if turn != Turn::Go {
            return Err(turn);
        }
        let call = self.next_call;
        self.next_call = self.next_call.wrapping_add(1);
        self.open.insert(call, now);
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
    pub(super) fn abandon(&mut self, call: u64) {
        self.open.remove(&call);
    }

    /// Learns from the answer to `call` that arrived at `now`.
    pub(super) fn answered(
        &mut self,
        call: u64,
        now: DateTime<Utc>,
        status: u16,
        rate: Option<RateLimit>,
    ) {
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
            let call = self.open.keys().next().copied().unwrap_or(u64::MAX);
            self.answered(call, now, status, rate);
        }

        fn turn(&mut self, now: DateTime<Utc>) -> Turn {
            self.take(now).map_or_else(|turn| turn, |_| Turn::Go)
        }
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
    fn a_call_out_for_longer_than_any_answer_takes_stops_holding_the_gate() {
        let mut g = Gate::new(None);
        assert_eq!(g.turn(at(0)), Turn::Go);
        // its console stopped: nobody will answer it
        assert_eq!(g.turn(at(60_000)), Turn::AfterAnswer);
        assert_eq!(
            g.turn(at(120_001)),
            Turn::Go,
            "given up on after two minutes"
        );
    }

    #[test]
    fn a_gate_reads_back_what_it_wrote() {
        let mut g = Gate::new(None);
        g.turn(at(0));
        g.answer(at(100), 200, headers(5, 4, 2000, 100));
        g.turn(at(200));
        let text = serde_json::to_string(&g).unwrap();
        let mut back: Gate = serde_json::from_str(&text).unwrap();
        assert_eq!(back.known, g.known);
        assert_eq!(back.open, g.open);
        assert_eq!(back.turn(at(300)), g.turn(at(300)));
        assert_eq!(back.next_call, g.next_call);
    }

    #[test]
    fn a_reset_in_the_past_on_first_contact_waits_a_second() {
        let mut g = Gate::new(None);
        g.turn(at(5000));
        g.answer(at(5100), 200, headers(5, 0, 1000, 5100));
        assert_eq!(g.turn(at(5200)), Turn::Until(at(6100)));
    }
}

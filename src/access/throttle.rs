//! Slows down password guessing. Two limits apply at once, because attackers rotate addresses and
//! spray accounts:
//!
//! - per client address, a hard limit of failures in a sliding window;
//! - per account, growing delays: after a few failures each further attempt must wait twice as
//!   long after the last failure as the one before, up to a cap. A lockout for the whole window
//!   would let anyone who knows the admin's email keep the only admin out; a delay costs a
//!   guesser the same while letting the owner in once it has passed. The cap is half a minute:
//!   whoever fails again as soon as each delay ends, from as many addresses as they like, keeps
//!   the owner waiting at most that long, while guessing one account stays at two tries a
//!   minute. The delay only concerns signing in: sessions already signed in never see it.
//!
//! A refusal says whether it is the first for its address (or, when only the account's delay
//! holds, its account) in the window, so that what is recorded of refusals stays one entry per
//! address however many accounts a throttled address goes on to try.
//!
//! An attempt reserves its failure before the password is hashed, so parallel guesses cannot all
//! pass the check before any of them is counted; success hands the reservation back. Hashing is
//! also bounded: a few argon2 computations at a time, and callers that cannot get a turn soon
//! are told to try again rather than queueing without limit.

use std::{
    collections::{HashMap, VecDeque},
    future::Future,
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use tokio::sync::Semaphore;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Failures an account may have before each further attempt has to wait.
    pub account_free_failures: u32,
    /// The wait after the first failure beyond the free ones; it doubles with each further one.
    pub account_first_delay: Duration,
    pub account_max_delay: Duration,
    /// Failures per client address in `window`, across all accounts.
    pub per_address: usize,
    /// The address window; an account is forgiven this long after its delay has run out.
    pub window: Duration,
    /// argon2 computations at once (each takes 19 MiB and a core for tens of milliseconds).
    pub hashing_permits: usize,
    /// How long an attempt waits for a hashing turn before it is told to try again.
    pub hashing_wait: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            account_free_failures: 5,
            account_first_delay: Duration::from_secs(5),
            account_max_delay: Duration::from_secs(30),
            per_address: 20,
            window: Duration::from_secs(15 * 60),
            hashing_permits: 2,
            hashing_wait: Duration::from_secs(2),
        }
    }
}

/// Bound on remembered accounts and addresses each, so a flood of distinct emails or addresses
/// cannot grow memory without limit.
const MAX_KEYS: usize = 50_000;

#[derive(Debug, Clone, Copy)]
struct AccountState {
    failures: u32,
    last: Instant,
    /// When a refusal of this account was last reported as the first of its window.
    reported: Option<Instant>,
}

#[derive(Debug, Default)]
struct AddressState {
    failures: VecDeque<Instant>,
    /// When a refusal of this address was last reported as the first of its window.
    reported: Option<Instant>,
}

#[derive(Debug, Default)]
struct State {
    accounts: HashMap<String, AccountState>,
    addresses: HashMap<String, AddressState>,
}

/// Why an attempt may not go ahead now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// How long until one more attempt is allowed.
    pub wait: Duration,
    /// The first refusal of this address (or account) in the window: worth recording. Later
    /// ones within the window are repeats.
    pub first: bool,
}

/// Whether a refusal now, last reported at `reported`, is the first of its window; notes it.
fn first_in_window(reported: &mut Option<Instant>, now: Instant, window: Duration) -> bool {
    let first = reported.is_none_or(|at| now.saturating_duration_since(at) >= window);
    if first {
        *reported = Some(now);
    }
    first
}

#[derive(Debug, Clone)]
pub struct LoginThrottle {
    limits: Limits,
    state: Arc<Mutex<State>>,
    hashing: Arc<Semaphore>,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        Self::new(Limits::default())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HashingError {
    #[error("every password check is in use; try again in a few seconds")]
    Busy,
    #[error("the password check stopped unexpectedly: {0}")]
    Stopped(String),
}

/// One sign-in attempt that passed the limits. It holds a reserved failure until it is settled:
/// `failed` keeps it, `succeeded` forgives the account, and dropping it unsettled (the password
/// was never checked) gives the reservation back.
#[derive(Debug)]
pub struct Attempt {
    throttle: LoginThrottle,
    account: String,
    address: Option<String>,
    at: Instant,
    settled: bool,
}

impl Attempt {
    pub fn failed(mut self) {
        self.settled = true;
    }

    /// The account's failures are forgiven; the address's are not, since one good password does
    /// not excuse a spray of guesses from the same address.
    pub fn succeeded(mut self) {
        self.settled = true;
        let mut state = self.throttle.lock();
        state.accounts.remove(&self.account);
        self.take_back_address(&mut state);
    }

    fn take_back_address(&self, state: &mut State) {
        let Some(address) = &self.address else { return };
        if let Some(entry) = state.addresses.get_mut(address) {
            if let Some(i) = entry.failures.iter().rposition(|t| *t == self.at) {
                entry.failures.remove(i);
            }
            if entry.failures.is_empty() && entry.reported.is_none() {
                state.addresses.remove(address);
            }
        }
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        let mut state = self.throttle.lock();
        if let Some(account) = state.accounts.get_mut(&self.account) {
            account.failures = account.failures.saturating_sub(1);
            if account.failures == 0 {
                state.accounts.remove(&self.account);
            }
        }
        self.take_back_address(&mut state);
    }
}

impl LoginThrottle {
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            state: Arc::default(),
            hashing: Arc::new(Semaphore::new(limits.hashing_permits.max(1))),
        }
    }

    /// A panic elsewhere while holding the lock leaves counts that are still meaningful, so they
    /// are used rather than thrown away (which would let guessing start afresh).
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn account_key(email: &str) -> String {
        email.trim().to_lowercase()
    }

    /// The wait after `failures` failures, counted from the last one.
    pub fn account_delay(&self, failures: u32) -> Duration {
        let Some(beyond) = failures.checked_sub(self.limits.account_free_failures) else {
            return Duration::ZERO;
        };
        let factor = 1u32.checked_shl(beyond).unwrap_or(u32::MAX);
        self.limits
            .account_first_delay
            .saturating_mul(factor)
            .min(self.limits.account_max_delay)
    }

    /// Starts an attempt, reserving its failure; refused while a limit holds.
    pub fn begin(&self, email: &str, address: Option<&str>) -> Result<Attempt, Refusal> {
        self.begin_at(email, address, Instant::now())
    }

    fn begin_at(
        &self,
        email: &str,
        address: Option<&str>,
        now: Instant,
    ) -> Result<Attempt, Refusal> {
        let account = Self::account_key(email);
        let address = address.map(str::to_owned);
        let window = self.limits.window;
        let mut state = self.lock();

        let mut account_wait = Duration::ZERO;
        if let Some(a) = state.accounts.get(&account).copied() {
            let delay = self.account_delay(a.failures);
            if now.saturating_duration_since(a.last) >= delay + window {
                state.accounts.remove(&account);
            } else {
                account_wait = (a.last + delay).saturating_duration_since(now);
            }
        }
        let mut address_wait = Duration::ZERO;
        if let Some(address) = &address {
            if let Some(entry) = state.addresses.get_mut(address) {
                let times = &mut entry.failures;
                while times
                    .front()
                    .is_some_and(|t| now.saturating_duration_since(*t) >= window)
                {
                    times.pop_front();
                }
                if times.len() >= self.limits.per_address {
                    if let Some(oldest) = times.front() {
                        address_wait =
                            window.saturating_sub(now.saturating_duration_since(*oldest));
                    }
                }
                if !address_wait.is_zero() {
                    return Err(Refusal {
                        wait: address_wait.max(account_wait),
                        first: first_in_window(&mut entry.reported, now, window),
                    });
                }
            }
        }
        if !account_wait.is_zero() {
            let first = state
                .accounts
                .get_mut(&account)
                .is_some_and(|a| first_in_window(&mut a.reported, now, window));
            return Err(Refusal {
                wait: account_wait,
                first,
            });
        }

        self.make_room(&mut state, now);
        let entry = state
            .accounts
            .entry(account.clone())
            .or_insert(AccountState {
                failures: 0,
                last: now,
                reported: None,
            });
        entry.failures = entry.failures.saturating_add(1);
        entry.last = now;
        if let Some(address) = &address {
            let times = &mut state.addresses.entry(address.clone()).or_default().failures;
            times.push_back(now);
            while times.len() > self.limits.per_address {
                times.pop_front();
            }
        }
        drop(state);
        Ok(Attempt {
            throttle: self.clone(),
            account,
            address,
            at: now,
            settled: false,
        })
    }

    /// Forgets what no longer counts, and when that is not enough the stalest entry, so the maps
    /// stay bounded.
    fn make_room(&self, state: &mut State, now: Instant) {
        let window = self.limits.window;
        if state.accounts.len() >= MAX_KEYS {
            state.accounts.retain(|_, a| {
                now.saturating_duration_since(a.last) < self.account_delay(a.failures) + window
            });
            if state.accounts.len() >= MAX_KEYS {
                if let Some(stalest) = state
                    .accounts
                    .iter()
                    .min_by_key(|(_, a)| a.last)
                    .map(|(k, _)| k.clone())
                {
                    state.accounts.remove(&stalest);
                }
            }
        }
        if state.addresses.len() >= MAX_KEYS {
            state.addresses.retain(|_, entry| {
                entry
                    .failures
                    .back()
                    .into_iter()
                    .chain(entry.reported.as_ref())
                    .any(|t| now.saturating_duration_since(*t) < window)
            });
            if state.addresses.len() >= MAX_KEYS {
                if let Some(stalest) = state
                    .addresses
                    .iter()
                    .min_by_key(|(_, entry)| entry.failures.back().copied().max(entry.reported))
                    .map(|(k, _)| k.clone())
                {
                    state.addresses.remove(&stalest);
                }
            }
        }
    }

    /// Runs a password check while holding one of the few hashing turns, or answers `Busy` when
    /// none frees up within the wait. The check runs as a task of its own that keeps the turn
    /// until the hash is done, so a caller that goes away mid-check cannot free its turn early
    /// and start more hashes than there are turns.
    pub async fn check_password<F, T>(&self, check: F) -> Result<T, HashingError>
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let permit = tokio::time::timeout(
            self.limits.hashing_wait,
            Arc::clone(&self.hashing).acquire_owned(),
        )
        .await
        .map_err(|_| HashingError::Busy)?
        .map_err(|e| HashingError::Stopped(e.to_string()))?;
        tokio::spawn(async move {
            let out = check.await;
            drop(permit);
            out
        })
        .await
        .map_err(|e| HashingError::Stopped(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            account_free_failures: 3,
            account_first_delay: Duration::from_secs(10),
            account_max_delay: Duration::from_secs(60),
            per_address: 5,
            window: Duration::from_secs(100),
            hashing_permits: 2,
            hashing_wait: Duration::from_millis(50),
        }
    }

    fn fail(t: &LoginThrottle, email: &str, address: Option<&str>, now: Instant) {
        t.begin_at(email, address, now).expect("allowed").failed();
    }

    #[test]
    fn account_failures_grow_the_wait_instead_of_locking_out() {
        let t = LoginThrottle::new(limits());
        let start = Instant::now();
        for i in 0..3 {
            fail(&t, "A@x.io", Some(&format!("10.0.0.{i}")), start);
        }
        // the fourth attempt waits 10 s, from any address and in any case
        let wait = t
            .begin_at("a@x.io", Some("10.9.9.9"), start)
            .unwrap_err()
            .wait;
        assert_eq!(wait, Duration::from_secs(10));
        assert!(t.begin_at("b@x.io", Some("10.9.9.9"), start).is_ok());
        // once the wait has passed, one more attempt goes through, well inside the window
        let later = start + Duration::from_secs(10);
        fail(&t, "a@x.io", None, later);
        assert_eq!(
            t.begin_at("a@x.io", None, later).unwrap_err().wait,
            Duration::from_secs(20)
        );
        let mut now = later + Duration::from_secs(20);
        fail(&t, "a@x.io", None, now);
        assert_eq!(
            t.begin_at("a@x.io", None, now).unwrap_err().wait,
            Duration::from_secs(40)
        );
        // doubling stops at the cap
        for _ in 0..10 {
            now += Duration::from_secs(60);
            fail(&t, "a@x.io", None, now);
            assert_eq!(
                t.begin_at("a@x.io", None, now).unwrap_err().wait,
                Duration::from_secs(60)
            );
        }
        // a quiet account is forgiven once its wait and a window have passed
        let quiet = now + Duration::from_secs(60 + 100);
        fail(&t, "a@x.io", None, quiet);
        assert!(t.begin_at("a@x.io", None, quiet).is_ok());
    }

    #[test]
    fn delays_never_overflow() {
        let t = LoginThrottle::new(limits());
        assert_eq!(t.account_delay(0), Duration::ZERO);
        assert_eq!(t.account_delay(2), Duration::ZERO);
        assert_eq!(t.account_delay(3), Duration::from_secs(10));
        assert_eq!(t.account_delay(u32::MAX), Duration::from_secs(60));
        let d = LoginThrottle::default();
        assert_eq!(d.account_delay(100), Duration::from_secs(30));
    }

    #[test]
    fn guesses_at_every_expiry_keep_the_owner_waiting_at_most_half_a_minute() {
        let t = LoginThrottle::default();
        let start = Instant::now();
        let mut now = start;
        let mut failures = 0u64;
        // from a new address each time, failing as soon as the account lets anyone try
        for i in 0..500 {
            let address = format!("10.{}.{}.1", i / 250, i % 250);
            match t.begin_at("admin@x.io", Some(&address), now) {
                Ok(attempt) => {
                    attempt.failed();
                    failures += 1;
                    // the owner, arriving just after, from an address of their own, is never
                    // told to wait longer
                    if let Err(refused) = t.begin_at("admin@x.io", Some("192.0.2.10"), now) {
                        assert!(refused.wait <= Duration::from_secs(30), "{refused:?}");
                    }
                }
                Err(refused) => {
                    assert!(refused.wait <= Duration::from_secs(30), "{refused:?}");
                    now += refused.wait;
                }
            }
        }
        assert!(failures > 100);
        assert!(
            now.saturating_duration_since(start) >= Duration::from_secs(30 * (failures - 10)),
            "the account still costs a guesser half a minute a try"
        );
    }

    #[test]
    fn a_throttled_address_is_reported_once_per_window_whatever_it_tries() {
        let t = LoginThrottle::new(limits());
        let now = Instant::now();
        for i in 0..5 {
            fail(&t, &format!("user{i}@x.io"), Some("192.0.2.1"), now);
        }
        let firsts: Vec<bool> = (0..20)
            .map(|i| {
                t.begin_at(&format!("new{i}@x.io"), Some("192.0.2.1"), now)
                    .unwrap_err()
                    .first
            })
            .collect();
        assert_eq!(firsts.iter().filter(|f| **f).count(), 1);
        assert!(firsts[0]);
        // another window, another report
        let later = now + Duration::from_secs(100);
        for i in 0..5 {
            fail(&t, &format!("later{i}@x.io"), Some("192.0.2.1"), later);
        }
        assert!(
            t.begin_at("x@x.io", Some("192.0.2.1"), later)
                .unwrap_err()
                .first
        );
        assert!(
            !t.begin_at("y@x.io", Some("192.0.2.1"), later)
                .unwrap_err()
                .first
        );
        // an account's own delay is reported once too
        for _ in 0..3 {
            fail(&t, "acct@x.io", None, now);
        }
        assert!(t.begin_at("acct@x.io", None, now).unwrap_err().first);
        assert!(!t.begin_at("acct@x.io", None, now).unwrap_err().first);
    }

    #[test]
    fn reserved_attempts_count_before_they_are_settled() {
        let t = LoginThrottle::new(limits());
        let now = Instant::now();
        // attempts still hashing hold their reservations: only three get through
        let held: Vec<Attempt> = (0..10)
            .filter_map(|_| t.begin_at("a@x.io", None, now).ok())
            .collect();
        assert_eq!(held.len(), 3);
        drop(held);
        // unsettled attempts (never checked) give their reservations back
        assert!(t.begin_at("a@x.io", None, now).is_ok());
    }

    #[test]
    fn success_forgives_the_account_but_not_the_address() {
        let t = LoginThrottle::new(limits());
        let now = Instant::now();
        for i in 0..4 {
            fail(&t, &format!("user{i}@x.io"), Some("192.0.2.1"), now);
        }
        fail(&t, "a@x.io", None, now);
        fail(&t, "a@x.io", None, now);
        t.begin_at("a@x.io", Some("192.0.2.1"), now)
            .unwrap()
            .succeeded();
        // the successful attempt's slot went back, the four failures stay
        assert!(t.begin_at("fresh@x.io", Some("192.0.2.1"), now).is_ok());
        for _ in 0..3 {
            fail(&t, "a@x.io", None, now);
        }
        assert!(
            t.begin_at("a@x.io", None, now).is_err(),
            "counting restarted"
        );
    }

    #[test]
    fn per_address_limit_across_accounts_and_its_window() {
        let t = LoginThrottle::new(limits());
        let now = Instant::now();
        for i in 0..5 {
            fail(&t, &format!("user{i}@x.io"), Some("192.0.2.1"), now);
        }
        let wait = t
            .begin_at("fresh@x.io", Some("192.0.2.1"), now)
            .unwrap_err()
            .wait;
        assert_eq!(wait, Duration::from_secs(100));
        assert!(t.begin_at("fresh@x.io", Some("192.0.2.2"), now).is_ok());
        let later = now + Duration::from_secs(100);
        assert!(t.begin_at("fresh@x.io", Some("192.0.2.1"), later).is_ok());
    }

    #[test]
    fn memory_stays_bounded() {
        let t = LoginThrottle::new(limits());
        let now = Instant::now();
        for i in 0..(MAX_KEYS + 10) {
            fail(&t, &format!("u{i}@x.io"), Some(&format!("a{i}")), now);
        }
        let state = t.lock();
        assert!(state.accounts.len() <= MAX_KEYS);
        assert!(state.addresses.len() <= MAX_KEYS);
    }

    #[tokio::test]
    async fn hashing_is_bounded_and_the_overflow_is_told_to_retry() {
        let t = LoginThrottle::new(limits());
        let slow = || async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            true
        };
        let (a, b, c) = tokio::join!(t.check_password(slow()), t.check_password(slow()), async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            t.check_password(slow()).await
        });
        assert!(a.unwrap() && b.unwrap());
        assert!(matches!(c, Err(HashingError::Busy)));
        // turns come back once the checks are done
        assert!(t.check_password(async { 1 }).await.is_ok());
    }

    #[tokio::test]
    async fn a_caller_that_goes_away_keeps_its_turn_until_the_hash_ends() {
        let t = LoginThrottle::new(Limits {
            hashing_permits: 1,
            ..limits()
        });
        let abandoned = tokio::time::timeout(
            Duration::from_millis(20),
            t.check_password(tokio::time::sleep(Duration::from_millis(300))),
        )
        .await;
        assert!(abandoned.is_err(), "the caller gave up");
        assert!(matches!(
            t.check_password(async {}).await,
            Err(HashingError::Busy)
        ));
    }
}

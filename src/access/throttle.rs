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
//!
//! Where several consoles share a database that keeps limits for them (PostgreSQL, see
//! `crate::shared_limits`), the account's and the address's failures are rows there: an attempt
//! locks both, applies the same rules and writes them back in one transaction, so a guesser
//! spreading tries over the consoles gets no more than from one. The hashing bound stays per
//! console (it protects the console's memory and cores). When the database cannot be reached at
//! that moment the console's own counts apply, as for a console alone.

use std::{
    collections::{HashMap, VecDeque},
    future::Future,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use crate::shared_limits::{update_json, Every, HoldsLimits, Key, Kind, Outage};

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
/// cannot grow memory (or, shared, the table) without limit.
const MAX_KEYS: usize = 50_000;

/// How often a console forgets the shared rows that no longer count.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// The name the shared limits' log lines give the throttle.
const WHAT: &str = "sign-in throttle";

fn since(now: DateTime<Utc>, then: DateTime<Utc>) -> Duration {
    (now - then).to_std().unwrap_or(Duration::ZERO)
}

/// `at` plus `by`, or `at` itself past the calendar's end (nothing counts that long).
fn after(at: DateTime<Utc>, by: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(by)
        .ok()
        .and_then(|d| at.checked_add_signed(d))
        .unwrap_or(at)
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct AccountState {
    failures: u32,
    last: DateTime<Utc>,
    /// When a refusal of this account was last reported as the first of its window.
    reported: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct AddressState {
    failures: VecDeque<DateTime<Utc>>,
    /// When a refusal of this address was last reported as the first of its window.
    reported: Option<DateTime<Utc>>,
}

impl AddressState {
    /// Hands back the failure reserved at `at`; answers whether anything is left to remember.
    fn take_back(&mut self, at: DateTime<Utc>) -> bool {
        if let Some(i) = self.failures.iter().rposition(|t| *t == at) {
            self.failures.remove(i);
        }
        !(self.failures.is_empty() && self.reported.is_none())
    }

    fn last_seen(&self) -> Option<DateTime<Utc>> {
        self.failures.back().copied().max(self.reported)
    }
}

/// A shared row: an account's or an address's state.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Row {
    Account(AccountState),
    Address(AddressState),
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
fn first_in_window(
    reported: &mut Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    window: Duration,
) -> bool {
    let first = reported.is_none_or(|at| since(now, at) >= window);
    if first {
        *reported = Some(now);
    }
    first
}

/// The database that keeps the throttle for every console on it, and this console's note of
/// whether it can be reached.
#[derive(Debug)]
struct Shared {
    holder: Arc<dyn HoldsLimits>,
    outage: Outage,
    pruning: Every,
}

#[derive(Debug, Clone)]
pub struct LoginThrottle {
    limits: Limits,
    state: Arc<Mutex<State>>,
    shared: Option<Arc<Shared>>,
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

/// Where an attempt's failure was reserved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Shared,
    Local,
}

/// How an attempt was settled, for its account and address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Settled {
    /// The password was right: the account is forgiven, the address's slot handed back.
    Succeeded,
    /// The password was never checked: both reservations are handed back.
    Unchecked,
}

/// One sign-in attempt that passed the limits. It holds a reserved failure until it is settled:
/// `failed` keeps it, `succeeded` forgives the account, and dropping it unsettled (the password
/// was never checked) gives the reservation back.
#[derive(Debug)]
pub struct Attempt {
    throttle: LoginThrottle,
    account: String,
    address: Option<String>,
    at: DateTime<Utc>,
    place: Place,
    settled: bool,
}

impl Attempt {
    pub fn failed(mut self) {
        self.settled = true;
    }

    /// The account's failures are forgiven; the address's are not, since one good password does
    /// not excuse a spray of guesses from the same address.
    pub async fn succeeded(mut self) {
        self.settled = true;
        self.throttle
            .settle(
                &self.account,
                self.address.as_deref(),
                self.at,
                self.place,
                Settled::Succeeded,
            )
            .await;
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        match self.place {
            Place::Local => self.throttle.settle_local(
                &self.account,
                self.address.as_deref(),
                self.at,
                Settled::Unchecked,
            ),
            // without a runtime to write it, the reservation lapses with its window
            Place::Shared => {
                if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                    let (throttle, account, address, at) = (
                        self.throttle.clone(),
                        std::mem::take(&mut self.account),
                        self.address.take(),
                        self.at,
                    );
                    runtime.spawn(async move {
                        throttle
                            .settle(
                                &account,
                                address.as_deref(),
                                at,
                                Place::Shared,
                                Settled::Unchecked,
                            )
                            .await;
                    });
                }
            }
        }
    }
}

impl LoginThrottle {
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            state: Arc::default(),
            shared: None,
            hashing: Arc::new(Semaphore::new(limits.hashing_permits.max(1))),
        }
    }

    /// Keeps the counts in `db` where it keeps limits for every console on it (in this
    /// process otherwise, as [`LoginThrottle::new`] does).
    pub fn over(self, db: &crate::Db) -> Self {
        self.sharing(Arc::new(db.clone()))
    }

    /// Keeps the counts where `holder` keeps shared limits, if it keeps any.
    pub(crate) fn sharing(self, holder: Arc<dyn HoldsLimits>) -> Self {
        let shared = holder.limits().is_some().then(|| {
            Arc::new(Shared {
                holder,
                outage: Outage::default(),
                pruning: Every::new(PRUNE_EVERY),
            })
        });
        Self { shared, ..self }
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

    /// When an account's state stops counting.
    fn account_expiry(&self, a: &AccountState) -> DateTime<Utc> {
        after(
            a.last,
            self.account_delay(a.failures)
                .saturating_add(self.limits.window),
        )
    }

    /// When an address's state stops counting.
    fn address_expiry(&self, a: &AddressState) -> DateTime<Utc> {
        a.last_seen()
            .map_or(DateTime::UNIX_EPOCH, |t| after(t, self.limits.window))
    }

    /// The rules of one attempt over its account's state and, when it has one, its address's:
    /// refused while a limit holds (noting the report), else the failure is reserved in both.
    fn decide(
        &self,
        account: &mut Option<AccountState>,
        mut address: Option<&mut Option<AddressState>>,
        now: DateTime<Utc>,
    ) -> Result<(), Refusal> {
        let window = self.limits.window;
        let mut account_wait = Duration::ZERO;
        if let Some(a) = *account {
            let delay = self.account_delay(a.failures);
            if since(now, a.last) >= delay.saturating_add(window) {
                *account = None;
            } else {
                account_wait = since(after(a.last, delay), now);
            }
        }
        if let Some(Some(entry)) = address.as_deref_mut() {
            while entry
                .failures
                .front()
                .is_some_and(|t| since(now, *t) >= window)
            {
                entry.failures.pop_front();
            }
            if entry.failures.len() >= self.limits.per_address {
                if let Some(oldest) = entry.failures.front() {
                    let address_wait = window.saturating_sub(since(now, *oldest));
                    if !address_wait.is_zero() {
                        return Err(Refusal {
                            wait: address_wait.max(account_wait),
                            first: first_in_window(&mut entry.reported, now, window),
                        });
                    }
                }
            }
        }
        if !account_wait.is_zero() {
            let first = account
                .as_mut()
                .is_some_and(|a| first_in_window(&mut a.reported, now, window));
            return Err(Refusal {
                wait: account_wait,
                first,
            });
        }
        let entry = account.get_or_insert(AccountState {
            failures: 0,
            last: now,
            reported: None,
        });
        entry.failures = entry.failures.saturating_add(1);
        entry.last = now;
        if let Some(address) = address {
            let times = &mut address.get_or_insert_with(AddressState::default).failures;
            times.push_back(now);
            while times.len() > self.limits.per_address {
                times.pop_front();
            }
        }
        Ok(())
    }

    /// The rules of settling an attempt reserved at `at`.
    fn settle_states(
        account: &mut Option<AccountState>,
        address: Option<&mut Option<AddressState>>,
        at: DateTime<Utc>,
        how: Settled,
    ) {
        match how {
            Settled::Succeeded => *account = None,
            Settled::Unchecked => {
                if let Some(a) = account.as_mut() {
                    a.failures = a.failures.saturating_sub(1);
                    if a.failures == 0 {
                        *account = None;
                    }
                }
            }
        }
        if let Some(address) = address {
            if address.as_mut().is_some_and(|a| !a.take_back(at)) {
                *address = None;
            }
        }
    }

    /// Starts an attempt, reserving its failure; refused while a limit holds.
    pub async fn begin(&self, email: &str, address: Option<&str>) -> Result<Attempt, Refusal> {
        let now = Utc::now();
        if let Some(shared) = &self.shared {
            match self.begin_shared(shared, email, address, now).await {
                Ok(decided) => {
                    shared.outage.worked(WHAT);
                    return decided.map(|()| self.attempt(email, address, now, Place::Shared));
                }
                Err(e) => shared.outage.failed(WHAT, &e),
            }
        }
        self.begin_at(email, address, now)
    }

    fn attempt(
        &self,
        email: &str,
        address: Option<&str>,
        at: DateTime<Utc>,
        place: Place,
    ) -> Attempt {
        Attempt {
            throttle: self.clone(),
            account: Self::account_key(email),
            address: address.map(str::to_owned),
            at,
            place,
            settled: false,
        }
    }

    /// The attempt by this console's own counts.
    fn begin_at(
        &self,
        email: &str,
        address: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Attempt, Refusal> {
        let account = Self::account_key(email);
        let mut state = self.lock();
        let mut account_state = state.accounts.remove(&account);
        let mut address_state = address.and_then(|a| state.addresses.remove(a));
        let decided = self.decide(&mut account_state, address.map(|_| &mut address_state), now);
        if decided.is_ok() {
            self.make_room(&mut state, now);
        }
        if let Some(a) = account_state {
            state.accounts.insert(account, a);
        }
        if let (Some(address), Some(entry)) = (address, address_state) {
            state.addresses.insert(address.to_owned(), entry);
        }
        drop(state);
        decided.map(|()| self.attempt(email, address, now, Place::Local))
    }

    /// The rows of an attempt's account and address where they are shared.
    fn keys(account: &str, address: Option<&str>) -> Vec<Key> {
        let mut keys = vec![Key::of(Kind::LoginAccount, &[account.as_bytes()])];
        keys.extend(address.map(|a| Key::of(Kind::LoginAddress, &[a.as_bytes()])));
        keys
    }

    /// Runs `f` on the shared states of `account` and `address`, under their rows' locks.
    async fn with_shared<R: Send>(
        &self,
        shared: &Shared,
        account: &str,
        address: Option<&str>,
        f: impl FnOnce(&mut Option<AccountState>, Option<&mut Option<AddressState>>) -> R + Send,
    ) -> Result<R, crate::shared_limits::SharedLimitsError> {
        let store = shared
            .holder
            .limits()
            .ok_or(crate::shared_limits::SharedLimitsError::NotRun)?;
        let mut f = Some(f);
        let out = update_json::<Row, _>(
            store,
            &Self::keys(account, address),
            |row| match row {
                Row::Account(a) => self.account_expiry(a),
                Row::Address(a) => self.address_expiry(a),
            },
            |rows| {
                let mut account = match rows.first_mut().and_then(Option::take) {
                    Some(Row::Account(a)) => Some(a),
                    _ => None,
                };
                let mut address = match rows.get_mut(1).and_then(Option::take) {
                    Some(Row::Address(a)) => Some(a),
                    _ => None,
                };
                let has_address = rows.len() > 1;
                let out = f
                    .take()
                    .map(|f| f(&mut account, has_address.then_some(&mut address)));
                if let Some(row) = rows.first_mut() {
                    *row = account.map(Row::Account);
                }
                // an address whose failures have all lapsed has nothing left to keep
                if let Some(row) = rows.get_mut(1) {
                    *row = address
                        .filter(|a| a.last_seen().is_some())
                        .map(Row::Address);
                }
                out
            },
        )
        .await?;
        out.ok_or(crate::shared_limits::SharedLimitsError::NotRun)
    }

    async fn begin_shared(
        &self,
        shared: &Shared,
        email: &str,
        address: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Result<(), Refusal>, crate::shared_limits::SharedLimitsError> {
        let account = Self::account_key(email);
        let decided = self
            .with_shared(shared, &account, address, |account, address| {
                self.decide(account, address, now)
            })
            .await?;
        if shared.pruning.due() {
            self.forget_lapsed(shared, now);
        }
        Ok(decided)
    }

    /// Settles an attempt in the counts it was reserved in.
    async fn settle(
        &self,
        account: &str,
        address: Option<&str>,
        at: DateTime<Utc>,
        place: Place,
        how: Settled,
    ) {
        match (place, &self.shared) {
            (Place::Shared, Some(shared)) => {
                let settled = self
                    .with_shared(shared, account, address, |account, address| {
                        Self::settle_states(account, address, at, how)
                    })
                    .await;
                match settled {
                    Ok(()) => shared.outage.worked(WHAT),
                    // the reservation then lapses with its window
                    Err(e) => shared.outage.failed(WHAT, &e),
                }
            }
            _ => self.settle_local(account, address, at, how),
        }
    }

    fn settle_local(&self, account: &str, address: Option<&str>, at: DateTime<Utc>, how: Settled) {
        let mut state = self.lock();
        let mut account_state = state.accounts.remove(account);
        let mut address_state = address.and_then(|a| state.addresses.remove(a));
        Self::settle_states(
            &mut account_state,
            address.map(|_| &mut address_state),
            at,
            how,
        );
        if let Some(a) = account_state {
            state.accounts.insert(account.to_owned(), a);
        }
        if let (Some(address), Some(entry)) = (address, address_state) {
            state.addresses.insert(address.to_owned(), entry);
        }
    }

    /// Forgets, in the background, the shared rows that no longer count, and the stalest beyond
    /// [`MAX_KEYS`] of each kind.
    fn forget_lapsed(&self, shared: &Shared, now: DateTime<Utc>) {
        let holder = Arc::clone(&shared.holder);
        let keep = u32::try_from(MAX_KEYS).unwrap_or(u32::MAX);
        tokio::spawn(async move {
            let Some(store) = holder.limits() else { return };
            for kind in [Kind::LoginAccount, Kind::LoginAddress] {
                if let Err(e) = store.forget(kind, now, keep).await {
                    tracing::warn!(error = %e, "cannot forget lapsed sign-in failures");
                }
            }
        });
    }

    /// Forgets what no longer counts, and when that is not enough the stalest entry, so the maps
    /// stay bounded.
    fn make_room(&self, state: &mut State, now: DateTime<Utc>) {
        if state.accounts.len() >= MAX_KEYS {
            state.accounts.retain(|_, a| self.account_expiry(a) > now);
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
            state
                .addresses
                .retain(|_, entry| self.address_expiry(entry) > now);
            if state.addresses.len() >= MAX_KEYS {
                if let Some(stalest) = state
                    .addresses
                    .iter()
                    .min_by_key(|(_, entry)| entry.last_seen())
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

    fn fail(t: &LoginThrottle, email: &str, address: Option<&str>, now: DateTime<Utc>) {
        t.begin_at(email, address, now).expect("allowed").failed();
    }

    #[test]
    fn account_failures_grow_the_wait_instead_of_locking_out() {
        let t = LoginThrottle::new(limits());
        let start = Utc::now();
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
        let start = Utc::now();
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
            since(now, start) >= Duration::from_secs(30 * (failures - 10)),
            "the account still costs a guesser half a minute a try"
        );
    }

    #[test]
    fn a_throttled_address_is_reported_once_per_window_whatever_it_tries() {
        let t = LoginThrottle::new(limits());
        let now = Utc::now();
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
        let now = Utc::now();
        // attempts still hashing hold their reservations: only three get through
        let held: Vec<Attempt> = (0..10)
            .filter_map(|_| t.begin_at("a@x.io", None, now).ok())
            .collect();
        assert_eq!(held.len(), 3);
        drop(held);
        // unsettled attempts (never checked) give their reservations back
        assert!(t.begin_at("a@x.io", None, now).is_ok());
    }

    #[tokio::test]
    async fn success_forgives_the_account_but_not_the_address() {
        let t = LoginThrottle::new(limits());
        let now = Utc::now();
        for i in 0..4 {
            fail(&t, &format!("user{i}@x.io"), Some("192.0.2.1"), now);
        }
        fail(&t, "a@x.io", None, now);
        fail(&t, "a@x.io", None, now);
        t.begin_at("a@x.io", Some("192.0.2.1"), now)
            .unwrap()
            .succeeded()
            .await;
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
        let now = Utc::now();
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
        let now = Utc::now();
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

    /// Two consoles' throttles over one store of shared limits.
    fn two_consoles() -> (
        Arc<crate::shared_limits::memory::MemoryLimits>,
        LoginThrottle,
        LoginThrottle,
    ) {
        let store = Arc::new(crate::shared_limits::memory::MemoryLimits::default());
        let one = LoginThrottle::new(limits()).sharing(store.clone());
        let other = LoginThrottle::new(limits()).sharing(store.clone());
        (store, one, other)
    }

    #[tokio::test]
    async fn a_guesser_spread_over_consoles_is_held_as_by_one() {
        let (_, one, other) = two_consoles();
        for i in 0..3 {
            let console = if i % 2 == 0 { &one } else { &other };
            console
                .begin("a@x.io", Some("10.0.0.1"))
                .await
                .unwrap()
                .failed();
        }
        for console in [&one, &other] {
            let refused = console.begin("A@x.io", Some("10.0.0.2")).await.unwrap_err();
            assert!(refused.wait > Duration::from_secs(9), "{refused:?}");
        }
        // the address's limit too: two more failures on other accounts, and it is spent
        for (i, console) in [&one, &other].into_iter().enumerate() {
            console
                .begin(&format!("u{i}@x.io"), Some("10.0.0.1"))
                .await
                .unwrap()
                .failed();
        }
        let refused = one.begin("new@x.io", Some("10.0.0.1")).await.unwrap_err();
        assert!(refused.first, "reported once");
        assert!(
            !other
                .begin("new@x.io", Some("10.0.0.1"))
                .await
                .unwrap_err()
                .first
        );
    }

    #[tokio::test]
    async fn shared_reservations_are_handed_back_and_success_forgives() {
        let (limits, one, other) = two_consoles();
        let mut attempts = tokio::task::JoinSet::new();
        for i in 0..6 {
            let console = if i % 2 == 0 { &one } else { &other }.clone();
            attempts.spawn(async move { console.begin("a@x.io", None).await });
        }
        let held: Vec<Attempt> = attempts
            .join_all()
            .await
            .into_iter()
            .filter_map(Result::ok)
            .collect();
        assert_eq!(
            held.len(),
            3,
            "reserved before any is settled, across consoles"
        );
        drop(held);
        // unchecked attempts hand back their reservations from a task of their own
        for _ in 0..50 {
            if limits.rows.lock().unwrap().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(limits.rows.lock().unwrap().is_empty());
        one.begin("a@x.io", None).await.unwrap().failed();
        one.begin("b@x.io", Some("10.0.0.1"))
            .await
            .unwrap()
            .failed();
        other
            .begin("a@x.io", Some("10.0.0.1"))
            .await
            .unwrap()
            .succeeded()
            .await;
        let rows = limits.rows.lock().unwrap();
        assert!(
            !rows.contains_key(&Key::of(Kind::LoginAccount, &[b"a@x.io"])),
            "forgiven"
        );
        let address = &rows[&Key::of(Kind::LoginAddress, &[b"10.0.0.1"])];
        let address: Row = serde_json::from_str(&address.state).unwrap();
        assert!(
            matches!(&address, Row::Address(a) if a.failures.len() == 1),
            "b's failure stays, the success is handed back: {address:?}"
        );
    }

    #[tokio::test]
    async fn an_unreachable_database_leaves_each_console_its_own_counts() {
        let (limits, one, _) = two_consoles();
        limits
            .broken
            .store(true, std::sync::atomic::Ordering::Relaxed);
        for _ in 0..3 {
            one.begin("a@x.io", None)
                .await
                .expect("not failed")
                .failed();
        }
        assert!(one.begin("a@x.io", None).await.is_err(), "still limited");
    }

    #[tokio::test]
    async fn an_address_whose_failures_lapsed_leaves_no_row_behind() {
        let store = Arc::new(crate::shared_limits::memory::MemoryLimits::default());
        let t = LoginThrottle::new(Limits {
            window: Duration::from_millis(200),
            ..limits()
        })
        .sharing(store.clone());
        t.begin("x@x.io", Some("10.0.0.1")).await.unwrap().failed();
        tokio::time::sleep(Duration::from_millis(250)).await;
        for _ in 0..3 {
            t.begin("a@x.io", None).await.unwrap().failed();
        }
        // refused by the account's delay, while the address has nothing left
        assert!(t.begin("a@x.io", Some("10.0.0.1")).await.is_err());
        let address = Key::of(Kind::LoginAddress, &[b"10.0.0.1"]);
        assert!(!store.rows.lock().unwrap().contains_key(&address));
    }
}

//! Limits every console on one database keeps together, so that running several consoles does
//! not multiply them: HiBob's and Pinpoint's rate-limit windows (`pacing`), the sign-in throttle
//! (`access::throttle`) and the allowance of rejected webhook deliveries (`webhooks::intake`).
//!
//! Only PostgreSQL, which several consoles can share, keeps them ([`crate::Store::shared_limits`]
//! answers `None` on SQLite, whose database file one process owns): there each limit stays in
//! the process's memory, as it always was. Where a store keeps them, the rules stay here in the
//! core: a limit's state is a JSON document the core reads, changes with the same pure logic
//! as the in-memory limit, and writes back, while the store only locks, loads and stores it.
//!
//! A limit whose store cannot be reached (a network blip, a restarting server) falls back to
//! its in-memory state for that call rather than failing the sign-in, export or delivery it
//! guards: for that moment each console limits alone, as a single console always has.

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

/// What a row of shared state is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// One endpoint's rate-limit window for one set of credentials.
    RateGate,
    /// One account's sign-in failures.
    LoginAccount,
    /// One client address's sign-in failures.
    LoginAddress,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::RateGate, Kind::LoginAccount, Kind::LoginAddress];

    /// Its name in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::RateGate => "rate_gate",
            Kind::LoginAccount => "login_account",
            Kind::LoginAddress => "login_address",
        }
    }
}

/// A row of shared state: its kind and a digest of what it is about, so that neither secrets
/// (credentials) nor personal data (e-mails, addresses) are written down to find it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    pub kind: Kind,
    pub digest: [u8; 32],
}

impl Key {
    /// The key of `parts`, each length-prefixed so that no two lists of parts share a digest.
    pub fn of(kind: Kind, parts: &[&[u8]]) -> Self {
        let mut hash = Sha256::new();
        hash.update(kind.as_str().as_bytes());
        for part in parts {
            hash.update(u64::try_from(part.len()).unwrap_or(u64::MAX).to_be_bytes());
            hash.update(part);
        }
        Self {
            kind,
            digest: hash.finalize().into(),
        }
    }
}

/// A row's state: the core's JSON document and when the row may be forgotten.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept {
    pub state: String,
    pub expires_at: DateTime<Utc>,
}

/// What [`SharedLimits::update`] runs on the locked rows: their states in the order of the keys
/// (`None` where there is none), changed in place; `None` left behind removes the row.
pub type Change<'a> = &'a mut (dyn FnMut(&mut [Option<Kept>]) + Send);

#[derive(Debug, thiserror::Error)]
pub enum SharedLimitsError {
    #[error("the shared limits cannot be read or written: {0}")]
    Db(#[from] sqlx::Error),
    /// A store answered without running the change it was given.
    #[error("the shared limits' store did not run the change")]
    NotRun,
}

/// The store face of the shared limits (PostgreSQL's; see the module's documentation).
#[async_trait]
pub trait SharedLimits: Send + Sync {
    /// Locks the rows at `keys` for one short transaction, hands their states to `change`, and
    /// stores what it leaves. Concurrent updates of a row, from any console, take turns; rows
    /// are locked in one order whatever the order of `keys`, so two updates cannot deadlock.
    async fn update(&self, keys: &[Key], change: Change<'_>) -> Result<(), SharedLimitsError>;

    /// Forgets the rows of `kind` that expired by `now`, then, beyond `keep_at_most`, those
    /// that expire soonest. Answers how many went.
    async fn forget(
        &self,
        kind: Kind,
        now: DateTime<Utc>,
        keep_at_most: u32,
    ) -> Result<u64, SharedLimitsError>;

    /// Counts one rejected webhook delivery in `bucket`'s window, which lasts `window` from the
    /// first count after the previous one ended, and says whether the window has counted no more
    /// than `allowed` so far. One statement, so consoles counting at once cannot both take
    /// the last place.
    async fn take_rejection_allowance(
        &self,
        bucket: i32,
        now: DateTime<Utc>,
        window: Duration,
        allowed: u32,
    ) -> Result<bool, SharedLimitsError>;
}

/// Whatever holds the shared limits: the console's store (which may keep none), or a test's.
pub trait HoldsLimits: Send + Sync + std::fmt::Debug {
    fn limits(&self) -> Option<&dyn SharedLimits>;
}

impl HoldsLimits for crate::Db {
    fn limits(&self) -> Option<&dyn SharedLimits> {
        self.shared_limits()
    }
}

/// Whether something done now and then is due, at most once per `period` in this process.
#[derive(Debug)]
pub struct Every {
    period: Duration,
    last: Mutex<Option<Instant>>,
}

impl Every {
    pub const fn new(period: Duration) -> Self {
        Self {
            period,
            last: Mutex::new(None),
        }
    }

    /// True at the first call, then once `period` has passed since the last true.
    pub fn due(&self) -> bool {
        let now = Instant::now();
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_some_and(|at| now.saturating_duration_since(at) < self.period) {
            return false;
        }
        *last = Some(now);
        true
    }
}

/// Says once that the shared limits cannot be reached, and once that they can again, however
/// many calls meet the outage in between.
#[derive(Debug, Default)]
pub struct Outage {
    down: std::sync::atomic::AtomicBool,
}

impl Outage {
    /// Notes a failure of `what`; logged only when the store was last seen working.
    pub fn failed(&self, what: &'static str, error: &SharedLimitsError) {
        if !self.down.swap(true, std::sync::atomic::Ordering::Relaxed) {
            tracing::warn!(
                limit = what,
                error = %error,
                "the shared limits cannot be reached: this console limits alone until they can"
            );
        }
    }

    /// Notes a success; logged only after a failure.
    pub fn worked(&self, what: &'static str) {
        if self.down.swap(false, std::sync::atomic::Ordering::Relaxed) {
            tracing::info!(limit = what, "the shared limits can be reached again");
        }
    }
}

/// Runs `change` on the rows at `keys` through `store`, each row's state read and written as
/// JSON of `T`. `change` sees `None` where a row has no state (or one this version cannot read,
/// which then starts afresh), and leaves `None` where a row is to go; each state kept expires
/// when `expires` says. What `change` answers is handed back.
pub async fn update_json<T, R>(
    store: &dyn SharedLimits,
    keys: &[Key],
    expires: impl Fn(&T) -> DateTime<Utc> + Send + Sync,
    mut change: impl FnMut(&mut [Option<T>]) -> R + Send,
) -> Result<R, SharedLimitsError>
where
    T: serde::Serialize + serde::de::DeserializeOwned + Send,
    R: Send,
{
    let mut out = None;
    store
        .update(keys, &mut |rows: &mut [Option<Kept>]| {
            let mut states: Vec<Option<T>> = rows
                .iter()
                .map(|row| {
                    row.as_ref()
                        .and_then(|kept| serde_json::from_str(&kept.state).ok())
                })
                .collect();
            out = Some(change(&mut states));
            for (row, state) in rows.iter_mut().zip(states) {
                *row = state.and_then(|state| {
                    let expires_at = expires(&state);
                    serde_json::to_string(&state)
                        .ok()
                        .map(|state| Kept { state, expires_at })
                });
            }
        })
        .await?;
    out.ok_or(SharedLimitsError::NotRun)
}

#[cfg(test)]
pub(crate) mod memory {
    //! The shared limits in memory, for the core's unit tests of the shared paths.

    use std::collections::HashMap;

    use super::*;

    #[derive(Debug, Default)]
    pub struct MemoryLimits {
        pub rows: Mutex<HashMap<Key, Kept>>,
        pub allowances: Mutex<HashMap<i32, (DateTime<Utc>, u32)>>,
        /// Makes every call fail, as an unreachable database would.
        pub broken: std::sync::atomic::AtomicBool,
    }

    impl MemoryLimits {
        fn check(&self) -> Result<(), SharedLimitsError> {
            if self.broken.load(std::sync::atomic::Ordering::Relaxed) {
                return Err(SharedLimitsError::Db(sqlx::Error::PoolTimedOut));
            }
            Ok(())
        }
    }

    impl HoldsLimits for MemoryLimits {
        fn limits(&self) -> Option<&dyn SharedLimits> {
            Some(self)
        }
    }

    #[async_trait]
    impl SharedLimits for MemoryLimits {
        async fn update(&self, keys: &[Key], change: Change<'_>) -> Result<(), SharedLimitsError> {
            self.check()?;
            let mut rows = self.rows.lock().unwrap();
            let mut states: Vec<Option<Kept>> = keys.iter().map(|k| rows.get(k).cloned()).collect();
            change(&mut states);
            for (key, state) in keys.iter().zip(states) {
                match state {
                    Some(kept) => rows.insert(*key, kept),
                    None => rows.remove(key),
                };
            }
            Ok(())
        }

        async fn forget(
            &self,
            kind: Kind,
            now: DateTime<Utc>,
            keep_at_most: u32,
        ) -> Result<u64, SharedLimitsError> {
            self.check()?;
            let mut rows = self.rows.lock().unwrap();
            let before = rows.len();
            rows.retain(|k, v| k.kind != kind || v.expires_at > now);
            let mut left: Vec<(DateTime<Utc>, Key)> = rows
                .iter()
                .filter(|(k, _)| k.kind == kind)
                .map(|(k, v)| (v.expires_at, *k))
                .collect();
            left.sort();
            left.reverse();
            for (_, key) in left.iter().skip(keep_at_most as usize) {
                rows.remove(key);
            }
            Ok((before - rows.len()) as u64)
        }

        async fn take_rejection_allowance(
            &self,
            bucket: i32,
            now: DateTime<Utc>,
            window: Duration,
            allowed: u32,
        ) -> Result<bool, SharedLimitsError> {
            self.check()?;
            let mut all = self.allowances.lock().unwrap();
            let slot = all.entry(bucket).or_insert((now, 0));
            if slot.0 + chrono::Duration::from_std(window).unwrap() <= now {
                *slot = (now, 0);
            }
            slot.1 = (slot.1 + 1).min(allowed + 1);
            Ok(slot.1 <= allowed)
        }
    }
}

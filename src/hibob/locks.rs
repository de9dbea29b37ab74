//! One async lock per key: the gateway keeps one per person (by e-mail), so the exports and the
//! plugin submits that create or complete the same employee run one after another in this
//! process, and a second one sees what the first did (the employee, its CV) instead of racing it.
//!
//! When several console processes share a PostgreSQL database, the in-process lock is only the
//! first gate: [`SharedLocks`] then takes the same key in the database, so a plugin submit on one
//! process and a webhook export on another of the same person still take turns.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

/// One async lock per key, created on demand and dropped when nobody holds or waits for it, so
/// the map does not grow with every candidate ever exported.
#[derive(Default)]
pub struct KeyedLocks {
    map: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

pub struct KeyGuard<'a> {
    locks: &'a KeyedLocks,
    key: String,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl KeyedLocks {
    pub async fn lock(&self, key: &str) -> KeyGuard<'_> {
        let mutex = {
            let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
            Arc::clone(map.entry(key.to_owned()).or_default())
        };
        let guard = mutex.lock_owned().await;
        KeyGuard {
            locks: self,
            key: key.to_owned(),
            guard: Some(guard),
        }
    }

    /// How many keys are held or waited for.
    pub fn live(&self) -> usize {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

impl Drop for KeyGuard<'_> {
    fn drop(&mut self) {
        self.guard.take();
        let mut map = self.locks.map.lock().unwrap_or_else(|p| p.into_inner());
        // clones are only taken under the map lock, so one reference means nobody is waiting
        if map
            .get(&self.key)
            .is_some_and(|m| Arc::strong_count(m) == 1)
        {
            map.remove(&self.key);
        }
    }
}

/// How long an export or a submit waits for another process to finish with the same person
/// before it gives up for now (an export is tried again later; a submit tells Pinpoint to try
/// again). Longer than one attempt's calls usually take.
pub const SHARED_PATIENCE: std::time::Duration = std::time::Duration::from_secs(60);

/// Why the lock on a person could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another console process is still working on this person after {}s; trying again later",
        .0.as_secs()
    )]
    Busy(std::time::Duration),
    #[error("the database could not take the lock on this person: {0}")]
    Database(#[from] sqlx::Error),
}

/// Locks by key across every console process sharing the database.
#[async_trait::async_trait]
pub trait SharedLocks: Send + Sync {
    /// Takes `key`'s lock, waiting at most `patience` for whoever holds it. The lock is let go
    /// when the guard is dropped, or when the process holding it dies.
    async fn lock(
        &self,
        key: &str,
        patience: std::time::Duration,
    ) -> Result<SharedGuard, LockError>;
}

/// A lock held in the database; dropping it lets go.
pub struct SharedGuard(#[allow(dead_code)] Box<dyn Send + Sync>);

impl std::fmt::Debug for SharedGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedGuard")
    }
}

impl SharedGuard {
    /// Wraps whatever lets the lock go when it is dropped.
    pub fn new(held: impl Send + Sync + 'static) -> Self {
        Self(Box::new(held))
    }
}

/// A person's lock in this process and, when processes share the database, in the database too.
/// The database's is let go first (fields drop in order), then this process's.
pub struct PersonGuard<'a> {
    _shared: Option<SharedGuard>,
    _local: KeyGuard<'a>,
}

impl<'a> PersonGuard<'a> {
    pub fn new(local: KeyGuard<'a>, shared: Option<SharedGuard>) -> Self {
        Self {
            _shared: shared,
            _local: local,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{
        sync::{
            atomic::{AtomicUsize, Ordering},
            Arc,
        },
        time::Duration,
    };

    use super::KeyedLocks;

    #[tokio::test]
    async fn keyed_locks_serialise_and_clean_up() {
        let locks = Arc::new(KeyedLocks::default());
        let running = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..5 {
            let locks = Arc::clone(&locks);
            let running = Arc::clone(&running);
            tasks.push(tokio::spawn(async move {
                let _g = locks.lock("jane@example.com").await;
                assert_eq!(running.fetch_add(1, Ordering::SeqCst), 0);
                tokio::time::sleep(Duration::from_millis(5)).await;
                running.fetch_sub(1, Ordering::SeqCst);
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(locks.live(), 0);
    }
}

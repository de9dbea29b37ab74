//! One async lock per key: the gateway keeps one per person (by e-mail), so the exports and the
//! plugin submits that create or complete the same employee run one after another in this
//! process, and a second one sees what the first did (the employee, its CV) instead of racing it.

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

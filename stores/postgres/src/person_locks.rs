//! Locks by key across every console process sharing the database: PostgreSQL session advisory
//! locks, each held on a connection of its own for as long as the guard lives. A process that
//! dies closes its connections, and the server lets its locks go with them, so nobody waits on a
//! dead holder. Connections come from a pool of their own (see [`PgStore::with_lock_pool`]) so a
//! burst of exports waiting on each other cannot starve everything else of connections.

use std::time::{Duration, Instant};

use integration::hibob::locks::{LockError, SharedGuard, SharedLocks};
use sqlx::{pool::PoolConnection, PgPool, Postgres};

/// The class of the two-key advisory locks on people (a two-key lock never collides with the
/// one-key locks elsewhere); the second key is a hash of the person's key.
const PERSON_LOCK_CLASS: i32 = 0x7065_6f02;
/// The longest pause between two tries at a lock someone else holds.
const MAX_POLL: Duration = Duration::from_millis(250);

pub struct PgLocks {
    pub(crate) pool: PgPool,
}

/// A held lock: its connection, which lets the lock go when the guard is dropped.
struct Held {
    conn: Option<PoolConnection<Postgres>>,
    key: i32,
}

impl Drop for Held {
    fn drop(&mut self) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        let key = self.key;
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    let unlocked = sqlx::query_scalar!(
                        "SELECT pg_advisory_unlock($1, $2)",
                        PERSON_LOCK_CLASS,
                        key
                    )
                    .fetch_one(&mut *conn)
                    .await;
                    if !matches!(unlocked, Ok(Some(true))) {
                        // closing the session lets go of whatever it still holds
                        conn.close_on_drop();
                    }
                });
            }
            Err(_) => conn.close_on_drop(),
        }
    }
}

/// A 32-bit FNV-1a hash: two people whose keys share a hash only take turns needlessly.
fn hash32(key: &str) -> i32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in key.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    i32::from_ne_bytes(hash.to_ne_bytes())
}

#[async_trait::async_trait]
impl SharedLocks for PgLocks {
    async fn lock(&self, key: &str, patience: Duration) -> Result<SharedGuard, LockError> {
        let started = Instant::now();
        let key = hash32(key);
        let mut conn = match tokio::time::timeout(patience, self.pool.acquire()).await {
            Ok(conn) => conn?,
            Err(_) => return Err(LockError::Busy(patience)),
        };
        let mut pause = Duration::from_millis(10);
        loop {
            let held = sqlx::query_scalar!(
                r#"SELECT pg_try_advisory_lock($1, $2) AS "held!""#,
                PERSON_LOCK_CLASS,
                key
            )
            .fetch_one(&mut *conn)
            .await?;
            if held {
                return Ok(SharedGuard::new(Held {
                    conn: Some(conn),
                    key,
                }));
            }
            if started.elapsed() + pause > patience {
                return Err(LockError::Busy(patience));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(MAX_POLL);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_hash_is_stable_and_spreads() {
        assert_eq!(
            super::hash32("ada@example.com"),
            super::hash32("ada@example.com")
        );
        assert_ne!(
            super::hash32("ada@example.com"),
            super::hash32("eve@example.com")
        );
    }
}

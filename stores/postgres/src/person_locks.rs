//! Locks by key across every console process sharing the database: PostgreSQL session advisory
//! locks. A process that dies closes its connections, and the server lets their locks go with
//! them, so nobody waits on a dead holder.
//!
//! A session holds any number of advisory locks, so one console keeps a few sessions for all of
//! its locks ([`SESSIONS`], each a connection from the store's pool for locks) instead of a connection per held lock, which would cap the people it exports at once
//! at the connections it may open. A key always goes to the same session. A session takes a lock
//! it already holds again (PostgreSQL counts the holds), which is harmless here: the gateway takes
//! the person's lock in this process first, so two holders of one key in one session are only
//! ever the one letting go and the one next in line.

use std::time::{Duration, Instant};

use integration::hibob::locks::{LockError, SharedGuard, SharedLocks};
use sqlx::{pool::PoolConnection, PgPool, Postgres};
use std::sync::Arc;
use tokio::sync::Mutex;

/// The class of the two-key advisory locks on people (a two-key lock never collides with the
/// one-key locks elsewhere); the second key is a hash of the person's key.
const PERSON_LOCK_CLASS: i32 = 0x7065_6f02;
/// The longest pause between two tries at a lock someone else holds.
const MAX_POLL: Duration = Duration::from_millis(250);
/// Sessions a console's locks are spread over: more than one, so a broken connection loses
/// only part of them, and few, since a try takes a fraction of a millisecond.
pub const SESSIONS: usize = 2;

/// One session: its connection once opened, and how many times it has been opened, so a lock
/// taken on an earlier connection (lost with it) is never let go on a later one.
#[derive(Default)]
struct Session {
    conn: Option<PoolConnection<Postgres>>,
    generation: u64,
}

impl Session {
    /// Forgets a connection that failed: whatever it held is gone with it.
    fn broken(&mut self) {
        if let Some(mut conn) = self.conn.take() {
            conn.close_on_drop();
        }
        self.generation = self.generation.wrapping_add(1);
    }
}

pub struct PgLocks {
    pool: PgPool,
    sessions: Arc<[Mutex<Session>; SESSIONS]>,
}

impl PgLocks {
    pub(crate) fn new(pool: PgPool) -> Self {
        Self {
            pool,
            sessions: Arc::new(Default::default()),
        }
    }

    /// One try at `key` on its session; the session's generation when it is taken.
    async fn try_lock(&self, key: i32, patience: Duration) -> Result<Option<u64>, LockError> {
        // within the caller's patience, also while another caller opens the session
        let mut session =
            match tokio::time::timeout(patience, self.sessions[session_of(key)].lock()).await {
                Ok(session) => session,
                Err(_) => return Err(LockError::Busy(patience)),
            };
        if session.conn.is_none() {
            let conn = match tokio::time::timeout(patience, self.pool.acquire()).await {
                Ok(conn) => conn?,
                Err(_) => return Err(LockError::Busy(patience)),
            };
            session.conn = Some(conn);
        }
        let Some(conn) = session.conn.as_mut() else {
            return Err(LockError::Busy(patience));
        };
        let held = sqlx::query_scalar!(
            r#"SELECT pg_try_advisory_lock($1, $2) AS "held!""#,
            PERSON_LOCK_CLASS,
            key
        )
        .fetch_one(&mut **conn)
        .await;
        match held {
            Ok(true) => Ok(Some(session.generation)),
            Ok(false) => Ok(None),
            Err(e) => {
                session.broken();
                Err(e.into())
            }
        }
    }
}

fn session_of(key: i32) -> usize {
    usize::try_from(key.unsigned_abs()).unwrap_or(0) % SESSIONS
}

/// A held lock, let go on its session when the guard is dropped.
struct Held {
    sessions: Arc<[Mutex<Session>; SESSIONS]>,
    key: i32,
    generation: u64,
}

impl Drop for Held {
    fn drop(&mut self) {
        let (sessions, key, generation) = (Arc::clone(&self.sessions), self.key, self.generation);
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            // no runtime to let go in: closing the session lets go of everything it holds
            if let Ok(mut session) = sessions[session_of(key)].try_lock() {
                session.broken();
            }
            return;
        };
        runtime.spawn(async move {
            let mut session = sessions[session_of(key)].lock().await;
            if session.generation != generation {
                return;
            }
            let Some(conn) = session.conn.as_mut() else {
                return;
            };
            let unlocked =
                sqlx::query_scalar!("SELECT pg_advisory_unlock($1, $2)", PERSON_LOCK_CLASS, key)
                    .fetch_one(&mut **conn)
                    .await;
            if !matches!(unlocked, Ok(Some(true))) {
                // a session that cannot say it let go is closed, which lets go of everything
                session.broken();
            }
        });
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
        let mut pause = Duration::from_millis(10);
        loop {
            let left = patience.saturating_sub(started.elapsed());
            // a wait that ran out says how long the caller was willing to wait in all
            let tried = match self.try_lock(key, left).await {
                Err(LockError::Busy(_)) => return Err(LockError::Busy(patience)),
                tried => tried?,
            };
            if let Some(generation) = tried {
                return Ok(SharedGuard::new(Held {
                    sessions: Arc::clone(&self.sessions),
                    key,
                    generation,
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

    #[test]
    fn every_key_has_a_session() {
        for key in [i32::MIN, -1, 0, 1, i32::MAX] {
            assert!(super::session_of(key) < super::SESSIONS);
        }
    }
}

//! The session store keeps a hash of each session id, never the id itself: the id is what the
//! cookie carries, so whoever could read the database file (a backup, a copied disk) would
//! otherwise be able to sign in as anyone with an open session. A hash cannot be turned back
//! into a cookie. Sessions stored before this (under their plain id) are no longer found, so
//! everyone signs in again once after the upgrade.

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use tower_sessions::{
    session::{Id, Record},
    session_store::{self, ExpiredDeletion, SessionStore},
};
use tower_sessions_sqlx_store::{PostgresStore, SqliteStore};

/// Session ids are 128 random bits, so an unkeyed hash is enough: there is nothing to guess
/// that a key would protect. The first 128 bits of SHA-256 make the stored id.
fn stored_id(id: &Id) -> Id {
    let digest = Sha256::digest(id.0.to_le_bytes());
    let mut first = [0u8; 16];
    for (to, from) in first.iter_mut().zip(digest.iter()) {
        *to = *from;
    }
    Id(i128::from_le_bytes(first))
}

/// The record as stored: under the hashed id, which the serialised record repeats.
fn stored_record(record: &Record) -> Record {
    Record {
        id: stored_id(&record.id),
        ..record.clone()
    }
}

/// The sessions' table in the console's own database, whichever engine holds it. On
/// PostgreSQL the table is created by the console's migrations (the store's own `migrate`
/// treats a concurrent creation as success, and ours run under the migrator's lock).
#[derive(Debug, Clone)]
pub enum EngineStore {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
}

#[async_trait]
impl SessionStore for EngineStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        match self {
            Self::Sqlite(s) => s.create(record).await,
            Self::Postgres(s) => s.create(record).await,
        }
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        match self {
            Self::Sqlite(s) => s.save(record).await,
            Self::Postgres(s) => s.save(record).await,
        }
    }

    async fn load(&self, session_id: &Id) -> session_store::Result<Option<Record>> {
        match self {
            Self::Sqlite(s) => s.load(session_id).await,
            Self::Postgres(s) => s.load(session_id).await,
        }
    }

    async fn delete(&self, session_id: &Id) -> session_store::Result<()> {
        match self {
            Self::Sqlite(s) => s.delete(session_id).await,
            Self::Postgres(s) => s.delete(session_id).await,
        }
    }
}

#[async_trait]
impl ExpiredDeletion for EngineStore {
    async fn delete_expired(&self) -> session_store::Result<()> {
        match self {
            Self::Sqlite(s) => s.delete_expired().await,
            Self::Postgres(s) => s.delete_expired().await,
        }
    }
}

/// Deletes expired sessions every `period`, starting now, until `stop` turns true. One instance
/// of a database is enough (the leader); a failed run is logged and the next one tries again.
pub async fn purge_expired(
    store: EngineStore,
    period: std::time::Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        if let Err(e) = store.delete_expired().await {
            tracing::warn!(error = %e, "expired sessions could not be deleted");
        }
        tokio::select! {
            _ = tokio::time::sleep(period) => {}
            _ = stop.wait_for(|stopped| *stopped) => return,
        }
    }
}

/// Wraps the engine's store so that it only ever sees hashed ids.
#[derive(Debug, Clone)]
pub struct HashedIdStore {
    inner: EngineStore,
}

impl HashedIdStore {
    pub fn new(inner: EngineStore) -> Self {
        Self { inner }
    }
}

#[async_trait]
impl SessionStore for HashedIdStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        // The inner store would settle a collision by choosing another id for the row, which
        // would no longer be the hash of any cookie; so a taken hash is settled here, with a new
        // cookie id, before anything is written.
        while self.inner.load(&stored_id(&record.id)).await?.is_some() {
            record.id = Id::default();
        }
        self.inner.save(&stored_record(record)).await
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        self.inner.save(&stored_record(record)).await
    }

    async fn load(&self, session_id: &Id) -> session_store::Result<Option<Record>> {
        Ok(self
            .inner
            .load(&stored_id(session_id))
            .await?
            .map(|record| Record {
                id: *session_id,
                ..record
            }))
    }

    async fn delete(&self, session_id: &Id) -> session_store::Result<()> {
        self.inner.delete(&stored_id(session_id)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower_sessions::cookie::time::{Duration, OffsetDateTime};

    fn record(id: i128, who: &str) -> Record {
        Record {
            id: Id(id),
            data: [("who".to_owned(), serde_json::json!(who))].into(),
            expiry_date: OffsetDateTime::now_utc() + Duration::hours(1),
        }
    }

    #[tokio::test]
    async fn a_taken_hash_gives_the_new_session_another_id_and_keeps_the_old_one() {
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .connect("sqlite::memory:")
            .await
            .unwrap();
        let inner = SqliteStore::new(pool);
        inner.migrate().await.unwrap();
        let store = HashedIdStore::new(EngineStore::Sqlite(inner.clone()));
        let mut first = record(1, "first");
        store.create(&mut first).await.unwrap();
        assert_eq!(first.id, Id(1));
        let mut second = record(1, "second");
        store.create(&mut second).await.unwrap();
        assert_ne!(second.id, Id(1));
        let loaded = store.load(&Id(1)).await.unwrap().unwrap();
        assert_eq!(
            (loaded.id, &loaded.data["who"]),
            (Id(1), &serde_json::json!("first"))
        );
        let loaded = store.load(&second.id).await.unwrap().unwrap();
        assert_eq!(loaded.data["who"], "second");
        // the inner store knows neither cookie id
        assert!(inner.load(&Id(1)).await.unwrap().is_none());
        assert!(inner.load(&second.id).await.unwrap().is_none());
        store.delete(&Id(1)).await.unwrap();
        assert!(store.load(&Id(1)).await.unwrap().is_none());
        assert!(store.load(&second.id).await.unwrap().is_some());
    }

    #[test]
    fn the_stored_id_is_fixed_and_unlike_the_cookie() {
        let id = Id(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
        assert_eq!(stored_id(&id), stored_id(&id));
        assert_ne!(stored_id(&id), id);
        assert_ne!(stored_id(&id), stored_id(&Id(id.0 + 1)));
    }
}

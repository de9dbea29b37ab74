//! The session store keeps a hash of each session id, never the id itself: the id is what the
//! cookie carries, so whoever could read the database file (a backup, a copied disk) would
//! otherwise be able to sign in as anyone with an open session. A hash cannot be turned back
//! into a cookie. Sessions stored before this (under their plain id) are no longer found, so
//! everyone signs in again once after the upgrade.

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use tower_sessions::{
    session::{Id, Record},
    session_store::{self, SessionStore},
};
use tower_sessions_sqlx_store::SqliteStore;

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

/// Wraps the SQLite store so that it only ever sees hashed ids.
#[derive(Debug, Clone)]
pub struct HashedIdStore {
    inner: SqliteStore,
}

impl HashedIdStore {
    pub fn new(inner: SqliteStore) -> Self {
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
    use super::stored_id;
    use tower_sessions::session::Id;

    #[test]
    fn the_stored_id_is_fixed_and_unlike_the_cookie() {
        let id = Id(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
        assert_eq!(stored_id(&id), stored_id(&id));
        assert_ne!(stored_id(&id), id);
        assert_ne!(stored_id(&id), stored_id(&Id(id.0 + 1)));
    }
}

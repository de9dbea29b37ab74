use super::SqliteStore;
use crate::{
    access::users::Actor,
    settings::{
        credentials::{CredentialStore, SealedWrite, StoredCredential},
        stored,
    },
};

#[async_trait::async_trait]
impl CredentialStore for SqliteStore {
    async fn sealed(&self, key: &str) -> Result<Option<String>, sqlx::Error> {
        stored::sealed(&self.pool, key).await
    }

    async fn stored(&self) -> Result<Vec<StoredCredential>, sqlx::Error> {
        stored::stored(&self.pool).await
    }

    async fn write(
        &self,
        actor: &Actor,
        writes: &[SealedWrite],
    ) -> Result<Vec<String>, sqlx::Error> {
        stored::write(&self.pool, actor, writes).await
    }
}

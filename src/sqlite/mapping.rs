use super::SqliteStore;
use crate::{
    access::audit::Actor,
    mapping::{
        storage::MappingStore,
        store::{self, StoreError, Version, VersionSummary},
        MappingDocument,
    },
};

#[async_trait::async_trait]
impl MappingStore for SqliteStore {
    async fn current(&self) -> Result<Version, StoreError> {
        store::current(&self.pool).await
    }

    async fn current_id(&self) -> Result<i64, sqlx::Error> {
        store::current_id(&self.pool).await
    }

    async fn get(&self, id: i64) -> Result<Version, StoreError> {
        store::get(&self.pool, id).await
    }

    async fn versions(&self, limit: i64) -> Result<Vec<VersionSummary>, sqlx::Error> {
        store::list(&self.pool, limit).await
    }

    async fn save(
        &self,
        actor: &Actor,
        document: &MappingDocument,
        note: &str,
        edited: i64,
    ) -> Result<Version, StoreError> {
        store::save(&self.pool, actor, document, note, edited).await
    }

    async fn restore(&self, actor: &Actor, id: i64) -> Result<Version, StoreError> {
        store::restore(&self.pool, actor, id).await
    }

    async fn export_hire(&self, export_id: i64) -> Result<Option<(String, String)>, sqlx::Error> {
        store::export_hire(&self.pool, export_id).await
    }
}

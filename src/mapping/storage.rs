//! What mappings need from the database, whichever engine holds it.

use super::{
    store::{StoreError, Version, VersionSummary},
    MappingDocument,
};
use crate::access::audit::Actor;

/// The mapping's saved versions; the newest is in force.
#[async_trait::async_trait]
pub trait MappingStore: Send + Sync {
    /// The mapping in force: the newest version (the migration stores version 1).
    async fn current(&self) -> Result<Version, StoreError>;
    async fn current_id(&self) -> Result<i64, sqlx::Error>;
    async fn get(&self, id: i64) -> Result<Version, StoreError>;
    /// Newest first.
    async fn versions(&self, limit: i64) -> Result<Vec<VersionSummary>, sqlx::Error>;
    /// Appends a version. `edited` is the version the editor started from; if another was saved
    /// since, the save is refused rather than overwriting that work. The caller lints first.
    async fn save(
        &self,
        actor: &Actor,
        document: &MappingDocument,
        note: &str,
        edited: i64,
    ) -> Result<Version, StoreError>;
    /// Makes an old version current again, as a new version (history is never rewritten).
    async fn restore(&self, actor: &Actor, id: i64) -> Result<Version, StoreError>;
    /// The Pinpoint application an export was made for and the day it came in, for previewing the
    /// mapping on that hire. Read here rather than through the export queue, which builds on the
    /// mapping.
    async fn export_hire(&self, export_id: i64) -> Result<Option<(String, String)>, sqlx::Error>;
}

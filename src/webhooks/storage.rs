//! What webhook intake and the delivery log need from the database, whichever engine holds it.

use super::{
    deliveries::DeliveryRow,
    intake::{Outcome, Record},
    log::{DeliveryDetail, DeliveryFilter, LogLine, ReprocessError, ReprocessReport},
};
use crate::access::{audit::Actor, users::Role};

/// Deliveries: stored with their export in one transaction, listed, and re-processed.
#[async_trait::async_trait]
pub trait WebhookStore: Send + Sync {
    async fn write_all(&self, records: &[&Record]) -> Result<Vec<Outcome>, sqlx::Error>;
    /// Deletes the oldest rejected deliveries beyond the newest `kept`.
    async fn prune_rejected(&self, kept: u32) -> Result<u64, sqlx::Error>;
    /// The newest deliveries first, for the webhook log; `outcome` narrows to one kind.
    async fn recent(
        &self,
        outcome: Option<&str>,
        before_id: Option<i64>,
        limit: i64,
    ) -> Result<Vec<DeliveryRow>, sqlx::Error>;
    /// The deliveries that named this export, and those whose re-processing made or named it (a
    /// refused delivery run through intake again), oldest first, for its timeline.
    async fn for_export(&self, export_id: i64) -> Result<Vec<DeliveryRow>, sqlx::Error>;
    /// Newest first (by receipt, then id), a page at a time after the last delivery shown.
    async fn log(&self, filter: &DeliveryFilter) -> Result<Vec<LogLine>, sqlx::Error>;
    async fn delivery(&self, id: i64) -> Result<Option<DeliveryDetail>, sqlx::Error>;
    /// Runs delivery `id` through intake again on behalf of `actor` (whose role is `role`), as a
    /// fresh delivery would be: the export is created if the hire has none; if it has one that
    /// stopped, it is retried; otherwise its state is reported. `confirmed` is the admin's
    /// confirmation for a delivery whose signature did not verify. Audited.
    async fn reprocess(
        &self,
        actor: &Actor,
        role: Role,
        id: i64,
        confirmed: bool,
    ) -> Result<ReprocessReport, ReprocessError>;
}

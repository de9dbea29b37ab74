use super::SqliteStore;
use crate::{
    access::{audit::Actor, users::Role},
    webhooks::{
        deliveries::{self, DeliveryRow},
        intake::{self as webhook_intake, Outcome, Record},
        log::{self, DeliveryDetail, DeliveryFilter, LogLine, ReprocessError, ReprocessReport},
        storage::WebhookStore,
    },
};

#[async_trait::async_trait]
impl WebhookStore for SqliteStore {
    async fn write_all(&self, records: &[&Record]) -> Result<Vec<Outcome>, sqlx::Error> {
        webhook_intake::write_all(&self.pool, records).await
    }

    async fn prune_rejected(&self, kept: u32) -> Result<u64, sqlx::Error> {
        webhook_intake::prune_rejected(&self.pool, kept).await
    }

    async fn recent(
        &self,
        outcome: Option<&str>,
        before_id: Option<i64>,
        limit: i64,
    ) -> Result<Vec<DeliveryRow>, sqlx::Error> {
        deliveries::recent(&self.pool, outcome, before_id, limit).await
    }

    async fn for_export(&self, export_id: i64) -> Result<Vec<DeliveryRow>, sqlx::Error> {
        deliveries::for_export(&self.pool, export_id).await
    }

    async fn log(&self, filter: &DeliveryFilter) -> Result<Vec<LogLine>, sqlx::Error> {
        log::list(&self.pool, filter).await
    }

    async fn delivery(&self, id: i64) -> Result<Option<DeliveryDetail>, sqlx::Error> {
        log::find(&self.pool, id).await
    }

    async fn reprocess(
        &self,
        actor: &Actor,
        role: Role,
        id: i64,
        confirmed: bool,
    ) -> Result<ReprocessReport, ReprocessError> {
        let done = log::reprocess(&self.pool, actor, role, id, confirmed).await?;
        log::follow_up(self, actor, done).await
    }
}

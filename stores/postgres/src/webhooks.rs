//! Webhook deliveries on PostgreSQL: the face intake and the log use. Intake's writes are in
//! `intake`, the delivery log and re-processing in `webhook_log`.

use integration::{
    access::{audit::Actor, users::Role},
    webhooks::{
        deliveries::{recent_bounds, DeliveryRow},
        intake::{Outcome, Record},
        log::{DeliveryDetail, DeliveryFilter, LogLine, ReprocessError, ReprocessReport},
        storage::WebhookStore,
    },
};

use crate::{
    conflict::{aborted, again_on_conflict},
    intake, webhook_log, PgStore,
};

#[async_trait::async_trait]
impl WebhookStore for PgStore {
    async fn write_all(&self, records: &[&Record]) -> Result<Vec<Outcome>, sqlx::Error> {
        // the exports a batch creates each take the status counter of `queued` until it commits,
        // so two batches naming the same hires in another order can deadlock
        again_on_conflict(aborted, || intake::write_all(&self.pool, records)).await
    }

    async fn prune_rejected(&self, kept: u32) -> Result<u64, sqlx::Error> {
        let kept = i64::from(kept);
        let done = sqlx::query!(
            "DELETE FROM webhook_deliveries
             WHERE outcome = 'rejected' AND id <= (
                 SELECT id FROM webhook_deliveries WHERE outcome = 'rejected'
                 ORDER BY id DESC LIMIT 1 OFFSET $1)",
            kept
        )
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    async fn recent(
        &self,
        outcome: Option<&str>,
        before_id: Option<i64>,
        limit: i64,
    ) -> Result<Vec<DeliveryRow>, sqlx::Error> {
        let (outcome, before, limit) = recent_bounds(outcome, before_id, limit);
        sqlx::query_as!(
            DeliveryRow,
            "SELECT id, received_at, outcome, reason, event, application_id, export_id
             FROM webhook_deliveries
             WHERE id < $1 AND ($2::text IS NULL OR outcome = $2)
             ORDER BY id DESC LIMIT $3",
            before,
            outcome,
            limit
        )
        .fetch_all(&self.pool)
        .await
    }

    async fn for_export(&self, export_id: i64) -> Result<Vec<DeliveryRow>, sqlx::Error> {
        sqlx::query_as!(
            DeliveryRow,
            "SELECT id, received_at, outcome, reason, event, application_id, export_id
             FROM webhook_deliveries
             WHERE export_id = $1
                OR id IN (SELECT reprocessed_from FROM webhook_deliveries
                          WHERE export_id = $1 AND reprocessed_from IS NOT NULL)
             ORDER BY id",
            export_id
        )
        .fetch_all(&self.pool)
        .await
    }

    async fn log(&self, filter: &DeliveryFilter) -> Result<Vec<LogLine>, sqlx::Error> {
        webhook_log::list(&self.pool, filter).await
    }

    async fn delivery(&self, id: i64) -> Result<Option<DeliveryDetail>, sqlx::Error> {
        webhook_log::find(&self.pool, id).await
    }

    async fn reprocess(
        &self,
        actor: &Actor,
        role: Role,
        id: i64,
        confirmed: bool,
    ) -> Result<ReprocessReport, ReprocessError> {
        webhook_log::reprocess(self, actor, role, id, confirmed).await
    }
}

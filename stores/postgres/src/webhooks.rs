//! Webhook deliveries on PostgreSQL: intake's writes (each delivery with its export, in one
//! transaction per batch), and the lists intake and the export page read. The delivery log and
//! re-processing are in `webhook_log`.

use integration::{
    access::{audit::Actor, users::Role},
    db,
    exports::queue::{Enqueued, Source},
    webhooks::{
        intake::{
            recent_bounds, write_record, DeliveryRow, DeliveryWriter, NewDelivery, Outcome, Record,
        },
        log::{DeliveryDetail, DeliveryFilter, LogLine, ReprocessError, ReprocessReport},
        storage::WebhookStore,
    },
};
use sqlx::{PgConnection, PgPool};

use crate::{
    conflict::{aborted, again_on_conflict},
    webhook_log, PgStore,
};

/// Intake's questions answered inside a PostgreSQL transaction.
pub(crate) struct PgWriter<'c>(pub(crate) &'c mut PgConnection);

#[async_trait::async_trait]
impl DeliveryWriter for PgWriter<'_> {
    async fn enqueue(&mut self, key: &str, application_id: &str) -> Result<Enqueued, sqlx::Error> {
        // Looked up first: an insert that meets the key takes a number from the id sequence all
        // the same, and every repeated delivery would leave a gap in the export numbers.
        if let Some(export_id) = existing(self.0, key).await? {
            return Ok(Enqueued {
                export_id,
                created: false,
            });
        }
        // A transaction inserting the same key waits here for the one that did first, then
        // finds its row: the key is unique, so a hire has one export however many deliveries.
        let inserted = sqlx::query_scalar!(
            "INSERT INTO exports (source, idempotency_key, pinpoint_application_id)
             VALUES ($1, $2, $3)
             ON CONFLICT (idempotency_key) DO NOTHING
             RETURNING id",
            Source::Webhook.as_str(),
            key,
            application_id
        )
        .fetch_optional(&mut *self.0)
        .await?;
        match inserted {
            Some(export_id) => Ok(Enqueued {
                export_id,
                created: true,
            }),
            None => Ok(Enqueued {
                export_id: existing(self.0, key)
                    .await?
                    .ok_or(sqlx::Error::RowNotFound)?,
                created: false,
            }),
        }
    }

    async fn replays(&mut self, hash: &str, export_id: i64) -> Result<bool, sqlx::Error> {
        sqlx::query_scalar!(
            r#"SELECT EXISTS (SELECT 1 FROM webhook_deliveries
                              WHERE body_sha256 = $1 AND export_id = $2) AS "found!""#,
            hash,
            export_id
        )
        .fetch_one(&mut *self.0)
        .await
    }

    async fn check_soon(&mut self, export_id: i64) -> Result<bool, sqlx::Error> {
        let now = db::now_text();
        let done = sqlx::query!(
            "UPDATE hire_watches SET next_check_at = $1, updated_at = $1
             WHERE export_id = $2 AND stopped_at IS NULL AND next_check_at > $1",
            now,
            export_id
        )
        .execute(&mut *self.0)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn insert(&mut self, row: &NewDelivery<'_>) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar!(
            "INSERT INTO webhook_deliveries
                 (received_at, outcome, reason, event, application_id, body_sha256, body, headers,
                  client_ip, export_id, body_size)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             RETURNING id",
            row.received_at,
            row.outcome,
            row.reason,
            row.event,
            row.application_id,
            row.body_sha256,
            row.body,
            row.headers,
            row.client_ip,
            row.export_id,
            row.body_size
        )
        .fetch_one(&mut *self.0)
        .await
    }
}

/// The export a hire already has under `key`.
async fn existing(conn: &mut PgConnection, key: &str) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar!("SELECT id FROM exports WHERE idempotency_key = $1", key)
        .fetch_optional(conn)
        .await
}

async fn write_all(pool: &PgPool, records: &[&Record]) -> Result<Vec<Outcome>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let mut outcomes = Vec::with_capacity(records.len());
    for record in records {
        outcomes.push(write_record(&mut PgWriter(&mut tx), record).await?);
    }
    tx.commit().await?;
    Ok(outcomes)
}

#[async_trait::async_trait]
impl WebhookStore for PgStore {
    async fn write_all(&self, records: &[&Record]) -> Result<Vec<Outcome>, sqlx::Error> {
        // the exports a batch creates each take the status counter of `queued` until it commits,
        // so two batches naming the same hires in another order can deadlock
        again_on_conflict(aborted, || write_all(&self.pool, records)).await
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

//! Intake's writes on PostgreSQL: each delivery with its export, a batch in one transaction.
//! The classification of a delivery is the core's (`write_record`); this answers its questions
//! in PostgreSQL's SQL.

use integration::{
    db,
    exports::queue::{Enqueued, Source},
    webhooks::intake::{write_record, DeliveryWriter, NewDelivery, Outcome, Record},
};
use sqlx::{PgConnection, PgPool};

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

pub(crate) async fn write_all(
    pool: &PgPool,
    records: &[&Record],
) -> Result<Vec<Outcome>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let mut outcomes = Vec::with_capacity(records.len());
    for record in records {
        outcomes.push(write_record(&mut PgWriter(&mut tx), record).await?);
    }
    tx.commit().await?;
    Ok(outcomes)
}

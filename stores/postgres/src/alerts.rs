//! The alerts outbox on PostgreSQL.

use chrono::{DateTime, Utc};
use integration::{
    alerts::{self, AlertOutbox, NewAlert, Pending},
    db,
};

use crate::PgStore;

/// Serialises recovery notes: "queue one unless one follows the last stop" reads the outbox
/// before writing to it, and two at once would both find none.
const RECOVERED_LOCK: i64 = 0x7065_6f70_6c65_0002;

#[async_trait::async_trait]
impl AlertOutbox for PgStore {
    async fn start_date(&self, export_id: i64) -> Result<Option<String>, sqlx::Error> {
        Ok(sqlx::query_scalar!(
            "SELECT COALESCE(w.start_date, e.start_date) FROM exports e
             LEFT JOIN hire_watches w ON w.export_id = e.id WHERE e.id = $1",
            export_id
        )
        .fetch_optional(&self.pool)
        .await?
        .flatten())
    }

    async fn queue(&self, alert: &NewAlert<'_>) -> Result<(), sqlx::Error> {
        let now = db::now_text();
        sqlx::query!(
            "INSERT INTO alerts (kind, export_id, urgent, created_at, webhook_done, email_done,
                                 next_try_at, detail)
             VALUES ($1, $2, $3, $4, $5, $6, $4, $7)",
            alert.kind,
            alert.export_id,
            alert.urgent,
            now,
            alert.webhook_done,
            alert.email_done,
            alert.detail
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn stops_unreported(&self) -> Result<bool, sqlx::Error> {
        sqlx::query_scalar!(
            r#"SELECT EXISTS (SELECT 1 FROM alerts WHERE kind = 'stopped'
                   AND id > COALESCE((SELECT MAX(id) FROM alerts WHERE kind = 'recovered'), 0))
               AS "unreported!""#
        )
        .fetch_one(&self.pool)
        .await
    }

    async fn queue_recovered(
        &self,
        webhook_done: bool,
        email_done: bool,
    ) -> Result<bool, sqlx::Error> {
        let now = db::now_text();
        let mut tx = self.pool.begin().await?;
        sqlx::query!("SELECT pg_advisory_xact_lock($1)", RECOVERED_LOCK)
            .execute(&mut *tx)
            .await?;
        let queued = sqlx::query!(
            "INSERT INTO alerts (kind, urgent, created_at, webhook_done, email_done, next_try_at)
             SELECT 'recovered', true, $1, $2, $3, $1
             WHERE EXISTS (
                 SELECT 1 FROM alerts
                 WHERE kind = 'stopped'
                   AND id > COALESCE((SELECT MAX(id) FROM alerts WHERE kind = 'recovered'), 0))",
            now,
            webhook_done,
            email_done
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(queued.rows_affected() > 0)
    }

    async fn pending(
        &self,
        webhook: bool,
        now: DateTime<Utc>,
    ) -> Result<Vec<Pending>, sqlx::Error> {
        let now = db::time_text(now);
        sqlx::query_as!(
            Pending,
            r#"SELECT a.id, a.kind, a.urgent, a.created_at, a.export_id,
                      e.candidate_name AS "candidate?",
                      e.pinpoint_application_id AS "application_id?",
                      e.status AS "status?", e.start_date AS "start_date?",
                      e.last_error AS "reason?", a.detail
               FROM alerts a LEFT JOIN exports e ON e.id = a.export_id
               WHERE NOT CASE WHEN $1 THEN a.webhook_done ELSE a.email_done END
                 AND a.next_try_at <= $2
               ORDER BY a.id LIMIT 1000"#,
            webhook,
            now
        )
        .fetch_all(&self.pool)
        .await
    }

    async fn mark(
        &self,
        webhook: bool,
        ids: &[i64],
        error: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), sqlx::Error> {
        // each UPDATE locks its alert; nothing read here is decided on elsewhere
        let mut tx = self.pool.begin().await?;
        for id in ids {
            match error {
                None => {
                    sqlx::query!(
                        "UPDATE alerts
                         SET webhook_done = CASE WHEN $1 THEN true ELSE webhook_done END,
                             email_done = CASE WHEN $1 THEN email_done ELSE true END
                         WHERE id = $2",
                        webhook,
                        id
                    )
                    .execute(&mut *tx)
                    .await?;
                }
                Some(error) => {
                    let error = alerts::error_text(error);
                    let tries = sqlx::query_scalar!(
                        r#"UPDATE alerts
                           SET webhook_attempts = webhook_attempts + CASE WHEN $1 THEN 1 ELSE 0 END,
                               email_attempts = email_attempts + CASE WHEN $1 THEN 0 ELSE 1 END,
                               last_error = $2
                           WHERE id = $3
                           RETURNING CASE WHEN $1 THEN webhook_attempts ELSE email_attempts END
                               AS "tries!""#,
                        webhook,
                        error,
                        id
                    )
                    .fetch_one(&mut *tx)
                    .await?;
                    let next = alerts::retry_at(tries, now);
                    sqlx::query!(
                        "UPDATE alerts SET next_try_at = GREATEST(next_try_at, $1) WHERE id = $2",
                        next,
                        id
                    )
                    .execute(&mut *tx)
                    .await?;
                }
            }
        }
        tx.commit().await
    }
}

//! The alerts outbox on SQLite.

use chrono::{DateTime, Utc};
use sqlx::SqlitePool;

use super::{NewAlert, Pending};
use crate::db;

pub async fn start_date(pool: &SqlitePool, export_id: i64) -> Result<Option<String>, sqlx::Error> {
    Ok(sqlx::query_scalar!(
        "SELECT COALESCE(w.start_date, e.start_date) FROM exports e
             LEFT JOIN hire_watches w ON w.export_id = e.id WHERE e.id = ?",
        export_id
    )
    .fetch_optional(pool)
    .await?
    .flatten())
}

pub async fn queue(pool: &SqlitePool, alert: &NewAlert<'_>) -> Result<(), sqlx::Error> {
    let now = db::now_text();
    let mut tx = db::begin_write(pool).await?;
    sqlx::query!(
        "INSERT INTO alerts (kind, export_id, urgent, created_at, webhook_done, email_done,
                                 next_try_at, detail)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?4, ?7)",
        alert.kind,
        alert.export_id,
        alert.urgent,
        now,
        alert.webhook_done,
        alert.email_done,
        alert.detail
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

pub async fn stops_unreported(pool: &SqlitePool) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM alerts WHERE kind = 'stopped'
                   AND id > COALESCE((SELECT MAX(id) FROM alerts WHERE kind = 'recovered'), 0))
               AS "unreported!: bool""#
    )
    .fetch_one(pool)
    .await
}

pub async fn queue_recovered(
    pool: &SqlitePool,
    webhook_done: bool,
    email_done: bool,
) -> Result<bool, sqlx::Error> {
    let now = db::now_text();
    let mut tx = db::begin_write(pool).await?;
    let queued = sqlx::query!(
        "INSERT INTO alerts (kind, urgent, created_at, webhook_done, email_done, next_try_at)
             SELECT 'recovered', 1, ?1, ?2, ?3, ?1
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

pub async fn pending(
    pool: &SqlitePool,
    webhook: bool,
    now: DateTime<Utc>,
) -> Result<Vec<Pending>, sqlx::Error> {
    let now = db::time_text(now);
    sqlx::query_as!(
        Pending,
        r#"SELECT a.id, a.kind, a.urgent AS "urgent: bool", a.created_at, a.export_id,
                  e.candidate_name AS "candidate?", e.pinpoint_application_id AS "application_id?",
                  e.status AS "status?", e.start_date AS "start_date?",
                  e.last_error AS "reason?", a.detail
           FROM alerts a LEFT JOIN exports e ON e.id = a.export_id
           WHERE CASE WHEN ?1 THEN a.webhook_done ELSE a.email_done END = 0
             AND a.next_try_at <= ?2
           ORDER BY a.id LIMIT 1000"#,
        webhook,
        now
    )
    .fetch_all(pool)
    .await
}

/// Marks a batch sent on `channel`, or counts a failed try and sets when to try again.
pub async fn mark(
    pool: &SqlitePool,
    webhook: bool,
    ids: &[i64],
    error: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let mut tx = db::begin_write(pool).await?;
    for id in ids {
        match error {
            None => {
                sqlx::query!(
                    "UPDATE alerts
                     SET webhook_done = CASE WHEN ?1 THEN 1 ELSE webhook_done END,
                         email_done = CASE WHEN ?1 THEN email_done ELSE 1 END
                     WHERE id = ?2",
                    webhook,
                    id
                )
                .execute(&mut *tx)
                .await?;
            }
            Some(error) => {
                let error = super::error_text(error);
                let tries = sqlx::query_scalar!(
                    r#"UPDATE alerts
                       SET webhook_attempts = webhook_attempts + CASE WHEN ?1 THEN 1 ELSE 0 END,
                           email_attempts = email_attempts + CASE WHEN ?1 THEN 0 ELSE 1 END,
                           last_error = ?2
                       WHERE id = ?3
                       RETURNING CASE WHEN ?1 THEN webhook_attempts ELSE email_attempts END
                           AS "tries!: i64""#,
                    webhook,
                    error,
                    id
                )
                .fetch_one(&mut *tx)
                .await?;
                let next = super::retry_at(tries, now);
                sqlx::query!(
                    "UPDATE alerts SET next_try_at = MAX(next_try_at, ?1) WHERE id = ?2",
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

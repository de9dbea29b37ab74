//! The plugin's hold on its export row: a submit takes the row over (one per e-mail) and writes
//! its result, so resubmits share the employee, the CV and the timeline of earlier ones.

use sqlx::SqlitePool;

use super::queue::Status;
use crate::db;

/// Where a plugin submit stands when it takes over its export row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginAttempt {
    pub export_id: i64,
    /// This submit's attempt number, for its steps.
    pub attempt: i64,
    /// The row's status before this submit, `None` for a new row.
    pub previous_status: Option<String>,
    /// Known from an earlier submit: the employee must be reused, never created again.
    pub hibob_employee_id: Option<String>,
    pub cv_uploaded: bool,
}

/// Opens (or reopens) the plugin export under `idempotency_key` for one submit.
///
/// The row is marked `running` without a lease: the worker claims only queued rows and running
/// rows whose lease lapsed, so a plugin export, which the submit itself carries out while
/// Pinpoint waits, is never picked up and run through the webhook pipeline.
pub async fn begin(
    pool: &SqlitePool,
    idempotency_key: &str,
    application_id: &str,
) -> Result<PluginAttempt, sqlx::Error> {
    let mut tx = db::begin_write(pool).await?;
    let existing = sqlx::query!(
        r#"SELECT id AS "id!", status, attempts, hibob_employee_id,
                  cv_uploaded AS "cv_uploaded: bool"
           FROM exports WHERE idempotency_key = ?"#,
        idempotency_key
    )
    .fetch_optional(&mut *tx)
    .await?;
    let now = db::now_text();
    let attempt = match existing {
        Some(row) => {
            sqlx::query!(
                "UPDATE exports
                 SET status = 'running', attempts = attempts + 1, lease_owner = NULL,
                     lease_until = NULL, next_attempt_at = ?1, updated_at = ?1,
                     pinpoint_application_id = CASE WHEN ?2 <> '' THEN ?2
                                                    ELSE pinpoint_application_id END
                 WHERE id = ?3",
                now,
                application_id,
                row.id
            )
            .execute(&mut *tx)
            .await?;
            PluginAttempt {
                export_id: row.id,
                attempt: row.attempts + 1,
                previous_status: Some(row.status),
                hibob_employee_id: row.hibob_employee_id,
                cv_uploaded: row.cv_uploaded,
            }
        }
        None => {
            let export_id = sqlx::query_scalar!(
                r#"INSERT INTO exports (source, idempotency_key, pinpoint_application_id, status,
                                        attempts, max_attempts)
                   VALUES ('plugin', ?, ?, 'running', 1, 1)
                   RETURNING id AS "id!""#,
                idempotency_key,
                application_id
            )
            .fetch_one(&mut *tx)
            .await?;
            PluginAttempt {
                export_id,
                attempt: 1,
                previous_status: None,
                hibob_employee_id: None,
                cv_uploaded: false,
            }
        }
    };
    tx.commit().await?;
    Ok(attempt)
}

/// Ends a plugin submit's attempt with the result Pinpoint was given.
pub async fn finish(
    pool: &SqlitePool,
    id: i64,
    status: Status,
    error: Option<&str>,
) -> Result<(), sqlx::Error> {
    let now = db::now_text();
    let status = status.as_str();
    sqlx::query!(
        "UPDATE exports
         SET status = ?1, last_error = ?2, lease_owner = NULL, lease_until = NULL,
             next_attempt_at = ?3, updated_at = ?3
         WHERE id = ?4",
        status,
        error,
        now,
        id
    )
    .execute(pool)
    .await?;
    Ok(())
}

//! A plugin submit's hold on its export row, on PostgreSQL.

use integration::{
    db,
    exports::{
        plugin_attempt::{self as core, PluginAttempt, CUT_OFF},
        queue::{Status, SUBMIT_LEASE_OWNERS},
        storage::PluginAttempts,
    },
};
use sqlx::PgConnection;

use super::queue::millis;
use crate::PgStore;

struct Existing {
    id: i64,
    status: String,
    attempts: i64,
    hibob_employee_id: Option<String>,
    cv_uploaded: bool,
}

/// The export under `idempotency_key`, locked until the caller's transaction ends.
async fn locked(
    conn: &mut PgConnection,
    idempotency_key: &str,
) -> Result<Option<Existing>, sqlx::Error> {
    sqlx::query_as!(
        Existing,
        "SELECT id, status, attempts, hibob_employee_id, cv_uploaded
         FROM exports WHERE idempotency_key = $1
         FOR UPDATE",
        idempotency_key
    )
    .fetch_optional(conn)
    .await
}

#[async_trait::async_trait]
impl PluginAttempts for PgStore {
    async fn begin(
        &self,
        idempotency_key: &str,
        application_id: &str,
    ) -> Result<PluginAttempt, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let (owner, lease) = (core::owner(), millis(core::LEASE));
        // the row is locked from the read of its attempts to their update, so two submits of one
        // key count two attempts; a row that is not there yet is inserted unless a concurrent
        // submit inserted it first, which ON CONFLICT waits for and the second read then finds
        let mut existing = locked(&mut tx, idempotency_key).await?;
        if existing.is_none() {
            let inserted = sqlx::query_scalar!(
                "INSERT INTO exports (source, idempotency_key, pinpoint_application_id, status,
                                      attempts, max_attempts, lease_owner, lease_until)
                 VALUES ('plugin', $1, $2, 'running', 1, 1, $3, time_text_after($4))
                 ON CONFLICT (idempotency_key) DO NOTHING
                 RETURNING id",
                idempotency_key,
                application_id,
                owner,
                lease
            )
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(export_id) = inserted {
                tx.commit().await?;
                return Ok(PluginAttempt {
                    export_id,
                    attempt: 1,
                    previous_status: None,
                    hibob_employee_id: None,
                    cv_uploaded: false,
                });
            }
            existing = locked(&mut tx, idempotency_key).await?;
        }
        let Some(row) = existing else {
            return Err(sqlx::Error::RowNotFound);
        };
        sqlx::query!(
            "UPDATE exports
             SET status = 'running', attempts = attempts + 1, lease_owner = $3,
                 lease_until = time_text_after($4), next_attempt_at = now_text(),
                 updated_at = now_text(),
                 pinpoint_application_id = CASE WHEN $1 <> '' THEN $1
                                                ELSE pinpoint_application_id END
             WHERE id = $2",
            application_id,
            row.id,
            owner,
            lease
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(PluginAttempt {
            export_id: row.id,
            attempt: row.attempts + 1,
            previous_status: Some(row.status),
            hibob_employee_id: row.hibob_employee_id,
            cv_uploaded: row.cv_uploaded,
        })
    }

    async fn finish(
        &self,
        id: i64,
        status: Status,
        error: Option<&str>,
    ) -> Result<(), sqlx::Error> {
        let now = db::now_text();
        let status = status.as_str();
        sqlx::query!(
            "UPDATE exports
             SET status = $1, last_error = $2, lease_owner = NULL, lease_until = NULL,
                 next_attempt_at = $3, updated_at = $3
             WHERE id = $4",
            status,
            error,
            now,
            id
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn settle_cut_off(&self, _at_start: bool) -> Result<Vec<i64>, sqlx::Error> {
        // other console processes may share this database, their submits mid-way: a submit's
        // row is cut off only once its lease lapsed, at start-up too
        // asked before every claim: a plain read first, so the usual answer (none) costs no write
        let any = sqlx::query_scalar!(
            r#"SELECT EXISTS (SELECT 1 FROM exports
                              WHERE status = 'running' AND lease_owner LIKE $1
                                AND lease_until < now_text()) AS "any!""#,
            SUBMIT_LEASE_OWNERS
        )
        .fetch_one(&self.pool)
        .await?;
        if !any {
            return Ok(Vec::new());
        }
        // one statement: a row a submit is finishing or renewing meanwhile is read again once
        // that commits, and left alone if it no longer qualifies
        sqlx::query_scalar!(
            "UPDATE exports
             SET status = 'needs_attention', last_error = $2, lease_owner = NULL,
                 lease_until = NULL, next_attempt_at = now_text(), updated_at = now_text()
             WHERE status = 'running' AND lease_owner LIKE $1 AND lease_until < now_text()
             RETURNING id",
            SUBMIT_LEASE_OWNERS,
            CUT_OFF
        )
        .fetch_all(&self.pool)
        .await
    }

    async fn renew(&self, id: i64) -> Result<bool, sqlx::Error> {
        let owner = core::owner();
        let done = sqlx::query!(
            "UPDATE exports SET lease_until = time_text_after($1)
             WHERE id = $2 AND lease_owner = $3 AND status = 'running'",
            millis(core::LEASE),
            id,
            owner
        )
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

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
        let (owner, until) = (core::owner(), core::lease_until());
        // the row is locked from the read of its attempts to their update, so two submits of one
        // key count two attempts; a row that is not there yet is inserted unless a concurrent
        // submit inserted it first, which ON CONFLICT waits for and the second read then finds
        let mut existing = locked(&mut tx, idempotency_key).await?;
        if existing.is_none() {
            let inserted = sqlx::query_scalar!(
                "INSERT INTO exports (source, idempotency_key, pinpoint_application_id, status,
                                      attempts, max_attempts, lease_owner, lease_until)
                 VALUES ('plugin', $1, $2, 'running', 1, 1, $3, $4)
                 ON CONFLICT (idempotency_key) DO NOTHING
                 RETURNING id",
                idempotency_key,
                application_id,
                owner,
                until
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
        let now = db::now_text();
        sqlx::query!(
            "UPDATE exports
             SET status = 'running', attempts = attempts + 1, lease_owner = $4,
                 lease_until = $5, next_attempt_at = $1, updated_at = $1,
                 pinpoint_application_id = CASE WHEN $2 <> '' THEN $2
                                                ELSE pinpoint_application_id END
             WHERE id = $3",
            now,
            application_id,
            row.id,
            owner,
            until
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

    async fn settle_cut_off(&self, at_start: bool) -> Result<Vec<i64>, sqlx::Error> {
        let now = db::now_text();
        let own = if at_start { Some(core::owner()) } else { None };
        // asked before every claim: a plain read first, so the usual answer (none) costs no write
        let any = sqlx::query_scalar!(
            r#"SELECT EXISTS (SELECT 1 FROM exports
                              WHERE status = 'running' AND lease_owner LIKE $1
                                AND (lease_until < $2 OR lease_owner <> $3)) AS "any!""#,
            SUBMIT_LEASE_OWNERS,
            now,
            own
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
             SET status = 'needs_attention', last_error = $4, lease_owner = NULL,
                 lease_until = NULL, next_attempt_at = $2, updated_at = $2
             WHERE status = 'running' AND lease_owner LIKE $1
               AND (lease_until < $2 OR lease_owner <> $3)
             RETURNING id",
            SUBMIT_LEASE_OWNERS,
            now,
            own,
            CUT_OFF
        )
        .fetch_all(&self.pool)
        .await
    }

    async fn renew(&self, id: i64) -> Result<(), sqlx::Error> {
        let until = core::lease_until();
        let owner = core::owner();
        sqlx::query!(
            "UPDATE exports SET lease_until = $1
             WHERE id = $2 AND lease_owner = $3 AND status = 'running'",
            until,
            id,
            owner
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

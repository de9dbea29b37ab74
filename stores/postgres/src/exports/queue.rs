//! The durable queue of exports on PostgreSQL. Claims take the oldest due row with
//! `FOR UPDATE SKIP LOCKED`, so workers claiming at once each get a different export without
//! waiting on one another; every end of an attempt is conditional on the lease still being the
//! caller's, so an attempt whose lease lapsed and was taken over cannot overwrite the newer one.

use std::time::Duration;

use integration::{
    access::audit::Actor,
    db,
    exports::{
        queue::{
            self as core, Export, Invitation, MappingChoice, QueueError, Status, Step, StepRecord,
            SUBMIT_LEASE_OWNERS,
        },
        storage::ExportQueue,
    },
};
use serde_json::Value;
use sqlx::{PgConnection, PgExecutor};

use crate::{audit, PgStore};

/// A span in the milliseconds `time_text_after()` takes. Lease and due times are worked out on
/// the database's clock, the one clock every console process sharing the database agrees on.
pub(crate) fn millis(span: Duration) -> i64 {
    i64::try_from(span.as_millis()).unwrap_or(i64::MAX)
}

pub(super) async fn find<'c>(
    conn: impl PgExecutor<'c>,
    id: i64,
) -> Result<Option<Export>, sqlx::Error> {
    sqlx::query_as!(
        Export,
        r#"SELECT id, source, idempotency_key, pinpoint_application_id, status, attempts,
                  max_attempts, earlier_attempts, next_attempt_at, candidate_name, candidate_email,
                  start_date, hibob_employee_id, cv_uploaded, comment_posted, last_error,
                  created_at, updated_at, mapping_version
           FROM exports WHERE id = $1"#,
        id
    )
    .fetch_optional(conn)
    .await
}

/// Ends running exports (`(id, attempts)`) as dead for having had all their attempts.
async fn make_dead(conn: &mut PgConnection, exhausted: &[(i64, i64)]) -> Result<(), sqlx::Error> {
    for (id, attempts) in exhausted {
        let reason = core::exhausted_reason(*attempts);
        sqlx::query!(
            "UPDATE exports
             SET status = 'dead', last_error = $1, lease_owner = NULL, lease_until = NULL,
                 updated_at = now_text()
             WHERE id = $2 AND status = 'running'",
            reason,
            id
        )
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// A newer retry of this export (single or bulk) takes it over from any earlier bulk run, whose
/// cancel must then leave it alone.
pub(super) async fn supersede(conn: &mut PgConnection, export_id: i64) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE bulk_retry_members SET superseded = true WHERE export_id = $1 AND NOT superseded",
        export_id
    )
    .execute(conn)
    .await?;
    Ok(())
}

#[async_trait::async_trait]
impl ExportQueue for PgStore {
    async fn bury_exhausted(&self, max_attempts: i64) -> Result<Vec<i64>, sqlx::Error> {
        // asked before every claim: a plain read first, so the usual answer (none) costs no commit
        let any = sqlx::query_scalar!(
            r#"SELECT EXISTS (SELECT 1 FROM exports
                              WHERE status = 'running' AND lease_until < now_text()
                                AND attempts >= $1 AND lease_owner NOT LIKE $2) AS "any!""#,
            max_attempts,
            SUBMIT_LEASE_OWNERS
        )
        .fetch_one(&self.pool)
        .await?;
        if !any {
            return Ok(Vec::new());
        }
        let mut tx = self.pool.begin().await?;
        // locked in id order so that two sweeps wait for each other rather than deadlock, and a
        // row a late owner is finishing meanwhile is read again once it is done (and left alone)
        let exhausted = sqlx::query!(
            r#"SELECT id, attempts FROM exports
               WHERE status = 'running' AND lease_until < now_text() AND attempts >= $1
                 AND lease_owner NOT LIKE $2
               ORDER BY id
               FOR UPDATE"#,
            max_attempts,
            SUBMIT_LEASE_OWNERS
        )
        .fetch_all(&mut *tx)
        .await?;
        let exhausted: Vec<(i64, i64)> =
            exhausted.into_iter().map(|r| (r.id, r.attempts)).collect();
        make_dead(&mut tx, &exhausted).await?;
        tx.commit().await?;
        Ok(exhausted.into_iter().map(|(id, _)| id).collect())
    }

    async fn claim(
        &self,
        owner: &str,
        lease: Duration,
        max_attempts: i64,
    ) -> Result<Option<Export>, sqlx::Error> {
        // SKIP LOCKED: concurrent claims pass over a row another claim is taking instead of
        // queueing behind it and then finding it gone, so each gets a different export at once
        sqlx::query_as!(
            Export,
            r#"WITH next AS (
                   SELECT id FROM exports
                   WHERE (status = 'queued' AND next_attempt_at <= now_text())
                      OR (status = 'running' AND lease_until < now_text() AND attempts < $3
                          AND lease_owner NOT LIKE $4)
                   ORDER BY next_attempt_at, id
                   LIMIT 1
                   FOR UPDATE SKIP LOCKED)
               UPDATE exports e
               SET status = 'running', attempts = e.attempts + 1, lease_owner = $1,
                   lease_until = time_text_after($2), updated_at = now_text(),
                   max_attempts = GREATEST($3, e.attempts + 1)
               FROM next WHERE e.id = next.id
               RETURNING e.id AS "id!", e.source AS "source!", e.idempotency_key AS "idempotency_key!",
                         e.pinpoint_application_id AS "pinpoint_application_id!",
                         e.status AS "status!", e.attempts AS "attempts!",
                         e.max_attempts AS "max_attempts!",
                         e.earlier_attempts AS "earlier_attempts!",
                         e.next_attempt_at AS "next_attempt_at!",
                         e.candidate_name AS "candidate_name?",
                         e.candidate_email AS "candidate_email?", e.start_date AS "start_date?",
                         e.hibob_employee_id AS "hibob_employee_id?",
                         e.cv_uploaded AS "cv_uploaded!", e.comment_posted AS "comment_posted!",
                         e.last_error AS "last_error?", e.created_at AS "created_at!",
                         e.updated_at AS "updated_at!", e.mapping_version AS "mapping_version?""#,
            owner,
            millis(lease),
            max_attempts,
            SUBMIT_LEASE_OWNERS
        )
        .fetch_optional(&self.pool)
        .await
    }

    async fn next_due(&self) -> Result<Option<String>, sqlx::Error> {
        sqlx::query_scalar!(
            r#"SELECT MIN(CASE WHEN status = 'queued' THEN next_attempt_at ELSE lease_until END)
                   AS "due?"
               FROM exports WHERE status IN ('queued', 'running')"#
        )
        .fetch_one(&self.pool)
        .await
    }

    async fn find(&self, id: i64) -> Result<Option<Export>, sqlx::Error> {
        find(&self.pool, id).await
    }

    async fn steps(&self, export_id: i64) -> Result<Vec<Step>, sqlx::Error> {
        sqlx::query_as!(
            Step,
            "SELECT id, attempt, step, outcome, detail, exchanges, started_at, duration_ms
             FROM export_steps WHERE export_id = $1 ORDER BY id",
            export_id
        )
        .fetch_all(&self.pool)
        .await
    }

    async fn record_step(&self, export_id: i64, r: &StepRecord<'_>) -> Result<(), sqlx::Error> {
        sqlx::query!(
            "INSERT INTO export_steps
                 (export_id, attempt, step, outcome, detail, exchanges, duration_ms)
             VALUES ($1, $2 + COALESCE((SELECT earlier_attempts FROM exports WHERE id = $1), 0),
                     $3, $4, $5, $6, $7)",
            export_id,
            r.attempt,
            r.step,
            r.outcome,
            r.detail,
            r.exchanges_json,
            r.duration_ms
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn set_candidate(
        &self,
        id: i64,
        name: Option<&str>,
        email: Option<&str>,
        start_date: Option<&str>,
    ) -> Result<(), sqlx::Error> {
        let now = db::now_text();
        sqlx::query!(
            "UPDATE exports SET candidate_name = $1, candidate_email = $2, start_date = $3,
                    updated_at = $4
             WHERE id = $5",
            name,
            email,
            start_date,
            now,
            id
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn set_employee_id(&self, id: i64, employee_id: &str) -> Result<(), sqlx::Error> {
        let now = db::now_text();
        sqlx::query!(
            "UPDATE exports SET hibob_employee_id = $1, updated_at = $2 WHERE id = $3",
            employee_id,
            now,
            id
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn set_mapping_version(&self, id: i64, version: i64) -> Result<(), sqlx::Error> {
        sqlx::query!(
            "UPDATE exports SET mapping_version = $1 WHERE id = $2",
            version,
            id
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn mark_cv_uploaded(&self, id: i64) -> Result<(), sqlx::Error> {
        let now = db::now_text();
        sqlx::query!(
            "UPDATE exports SET cv_uploaded = true, updated_at = $1 WHERE id = $2",
            now,
            id
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn create_sent(&self, id: i64) -> Result<bool, sqlx::Error> {
        let sent = sqlx::query_scalar!("SELECT create_sent_at FROM exports WHERE id = $1", id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(sent.flatten().is_some())
    }

    async fn mark_create_sent(&self, id: i64) -> Result<(), sqlx::Error> {
        let now = db::now_text();
        sqlx::query!(
            "UPDATE exports SET create_sent_at = $1, updated_at = $1 WHERE id = $2",
            now,
            id
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn clear_create_sent(&self, id: i64) -> Result<(), sqlx::Error> {
        sqlx::query!("UPDATE exports SET create_sent_at = NULL WHERE id = $1", id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn invitation(&self, id: i64) -> Result<Invitation, sqlx::Error> {
        let row = sqlx::query!(
            "SELECT invite_started_at, invited_at FROM exports WHERE id = $1",
            id
        )
        .fetch_optional(&self.pool)
        .await?
        .map(|r| (r.invite_started_at, r.invited_at));
        Ok(Invitation::from_marks(row))
    }

    async fn clear_invite_started(&self, id: i64) -> Result<(), sqlx::Error> {
        sqlx::query!(
            "UPDATE exports SET invite_started_at = NULL WHERE id = $1 AND invited_at IS NULL",
            id
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn mark_invited(&self, id: i64) -> Result<(), sqlx::Error> {
        let now = db::now_text();
        sqlx::query!(
            "UPDATE exports SET invited_at = $1, updated_at = $1 WHERE id = $2",
            now,
            id
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn start_comment(&self, id: i64) -> Result<bool, sqlx::Error> {
        let now = db::now_text();
        let earlier = sqlx::query_scalar!(
            r#"UPDATE exports SET comment_started_at = COALESCE(comment_started_at, $1)
               WHERE id = $2
               RETURNING comment_started_at IS DISTINCT FROM $1 AS "earlier!""#,
            now,
            id
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(earlier.unwrap_or(false))
    }

    async fn clear_comment_started(&self, id: i64) -> Result<(), sqlx::Error> {
        sqlx::query!(
            "UPDATE exports SET comment_started_at = NULL WHERE id = $1 AND NOT comment_posted",
            id
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn mark_comment_posted(&self, id: i64) -> Result<(), sqlx::Error> {
        let now = db::now_text();
        sqlx::query!(
            "UPDATE exports SET comment_posted = true, updated_at = $1 WHERE id = $2",
            now,
            id
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn succeed(&self, id: i64, owner: &str) -> Result<bool, sqlx::Error> {
        self.end_attempt(id, owner, Status::Succeeded, Duration::ZERO, None)
            .await
    }

    async fn retry_later(
        &self,
        id: i64,
        owner: &str,
        delay: Duration,
        error: &str,
    ) -> Result<bool, sqlx::Error> {
        self.end_attempt(id, owner, Status::Queued, delay, Some(error))
            .await
    }

    async fn needs_attention(
        &self,
        id: i64,
        owner: &str,
        error: &str,
    ) -> Result<bool, sqlx::Error> {
        self.end_attempt(
            id,
            owner,
            Status::NeedsAttention,
            Duration::ZERO,
            Some(error),
        )
        .await
    }

    async fn dead(&self, id: i64, owner: &str, error: &str) -> Result<bool, sqlx::Error> {
        self.end_attempt(id, owner, Status::Dead, Duration::ZERO, Some(error))
            .await
    }

    async fn recover_abandoned(&self, owner: &str, max_attempts: i64) -> Result<u64, sqlx::Error> {
        // other console processes may share this database and be mid-export: only a lease that
        // lapsed (its holder stopped renewing it) is a dead process's
        let mut tx = self.pool.begin().await?;
        // the rows to bury are locked (in id order, as every sweep takes them) before the requeue
        // below, so a late owner finishing one meanwhile is waited for and then left alone
        let exhausted = sqlx::query!(
            r#"SELECT id, attempts FROM exports
               WHERE status = 'running' AND lease_until < now_text() AND lease_owner NOT LIKE $3
                 AND lease_owner <> $1 AND attempts >= $2
               ORDER BY id
               FOR UPDATE"#,
            owner,
            max_attempts,
            SUBMIT_LEASE_OWNERS
        )
        .fetch_all(&mut *tx)
        .await?;
        let exhausted: Vec<(i64, i64)> =
            exhausted.into_iter().map(|r| (r.id, r.attempts)).collect();
        make_dead(&mut tx, &exhausted).await?;
        let done = sqlx::query!(
            "UPDATE exports
             SET status = 'queued', lease_owner = NULL, lease_until = NULL,
                 next_attempt_at = now_text(), updated_at = now_text()
             WHERE id IN (SELECT id FROM exports
                          WHERE status = 'running' AND lease_until < now_text()
                            AND lease_owner NOT LIKE $2 AND lease_owner <> $1
                          ORDER BY id
                          FOR UPDATE SKIP LOCKED)",
            owner,
            SUBMIT_LEASE_OWNERS
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    async fn renew(&self, id: i64, owner: &str, lease: Duration) -> Result<bool, sqlx::Error> {
        let done = sqlx::query!(
            "UPDATE exports SET lease_until = time_text_after($1)
             WHERE id = $2 AND status = 'running' AND lease_owner = $3",
            millis(lease),
            id,
            owner
        )
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn release(&self, id: i64, owner: &str) -> Result<(), sqlx::Error> {
        self.release_until(id, owner, Duration::ZERO).await
    }

    async fn release_until(
        &self,
        id: i64,
        owner: &str,
        delay: Duration,
    ) -> Result<(), sqlx::Error> {
        sqlx::query!(
            "UPDATE exports
             SET status = 'queued', attempts = GREATEST(attempts - 1, 0), lease_owner = NULL,
                 lease_until = NULL, next_attempt_at = time_text_after($1), updated_at = now_text()
             WHERE id = $2 AND status = 'running' AND lease_owner = $3",
            millis(delay),
            id,
            owner
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn retry(&self, actor: &Actor, id: i64) -> Result<Export, QueueError> {
        self.retry_with(actor, id, MappingChoice::Current).await
    }

    async fn retry_with(
        &self,
        actor: &Actor,
        id: i64,
        mapping: MappingChoice,
    ) -> Result<Export, QueueError> {
        let mut tx = self.pool.begin().await?;
        // the row stays locked from the check to the requeue, so a claim, a resolution or another
        // retry cannot change the status the refusal was decided on; erased_at is read under the
        // same lock, so an erasure committed meanwhile is seen
        let row = sqlx::query!(
            "SELECT status, source, pinpoint_application_id, erased_at FROM exports
             WHERE id = $1 FOR UPDATE",
            id
        )
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(QueueError::NotFound(id))?;
        let status = row.status;
        core::refuse_retry(
            id,
            &status,
            &row.source,
            &row.pinpoint_application_id,
            row.erased_at.is_some(),
        )?;
        let current = mapping == MappingChoice::Current;
        // unpinning lets the next attempt take, and pin, the version then in force
        let pinned = sqlx::query_scalar!(
            "UPDATE exports SET status = 'queued', earlier_attempts = earlier_attempts + attempts,
                    attempts = 0, next_attempt_at = now_text(), updated_at = now_text(),
                    mapping_version = CASE WHEN $2 THEN NULL ELSE mapping_version END
             WHERE id = $1 RETURNING mapping_version",
            id,
            current
        )
        .fetch_one(&mut *tx)
        .await?;
        supersede(&mut tx, id).await?;
        audit::record(
            &mut tx,
            actor,
            "export.retried",
            Some(&format!("export {id}")),
            &core::retried_detail(&status, mapping, pinned),
        )
        .await?;
        tx.commit().await?;
        find(&self.pool, id).await?.ok_or(QueueError::NotFound(id))
    }

    async fn counts(&self) -> Result<Vec<(String, i64)>, sqlx::Error> {
        let rows =
            sqlx::query!("SELECT status, n FROM export_status_counts WHERE n > 0 ORDER BY status")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(|r| (r.status, r.n)).collect())
    }

    async fn keep_sent(&self, export_id: i64, body: &Value) -> Result<(), sqlx::Error> {
        let text = body.to_string();
        let now = db::now_text();
        sqlx::query!(
            "UPDATE exports SET sent_body = $1, updated_at = $2
             WHERE id = $3 AND sent_body IS NULL",
            text,
            now,
            export_id
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn sent_body(&self, export_id: i64) -> Result<Option<Value>, sqlx::Error> {
        let text = sqlx::query_scalar!("SELECT sent_body FROM exports WHERE id = $1", export_id)
            .fetch_optional(&self.pool)
            .await?
            .flatten();
        Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
    }
}

impl PgStore {
    /// Ends the attempt. Only the lease holder may: a worker whose lease lapsed and was taken
    /// over must not overwrite the newer attempt's result. One conditional UPDATE: it waits for a
    /// claim taking the row over and then finds the lease no longer the caller's.
    async fn end_attempt(
        &self,
        id: i64,
        owner: &str,
        status: Status,
        next_attempt_in: Duration,
        error: Option<&str>,
    ) -> Result<bool, sqlx::Error> {
        let status = status.as_str();
        let done = sqlx::query!(
            "UPDATE exports
             SET status = $1, next_attempt_at = time_text_after($2), last_error = $3,
                 lease_owner = NULL, lease_until = NULL, updated_at = now_text()
             WHERE id = $4 AND status = 'running' AND lease_owner = $5",
            status,
            millis(next_attempt_in),
            error,
            id,
            owner
        )
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

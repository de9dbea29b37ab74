//! The watched hires on PostgreSQL.

use chrono::{DateTime, NaiveDate, Utc};
use integration::{
    access::audit::Actor,
    db,
    watch::{
        storage::{Settled, WatchStore},
        store::{self, Checked, Flagged, FlaggedRow, Unwatched, Watch, WatchRow},
    },
};

use crate::{audit, PgStore};

#[async_trait::async_trait]
impl WatchStore for PgStore {
    async fn unwatched(&self, limit: i64) -> Result<Vec<Unwatched>, sqlx::Error> {
        sqlx::query_as!(
            Unwatched,
            r#"SELECT e.id AS export_id, e.hibob_employee_id AS "employee_id!",
                      e.mapping_version AS "mapping_version!", e.source, e.start_date,
                      e.created_at, e.sent_body AS "sent_body!"
               FROM exports e
               WHERE e.status = 'succeeded' AND e.sent_body IS NOT NULL
                 AND e.hibob_employee_id IS NOT NULL AND e.mapping_version IS NOT NULL
                 AND e.erased_at IS NULL AND trim(e.pinpoint_application_id) <> ''
                 AND NOT EXISTS (SELECT 1 FROM hire_watches w WHERE w.export_id = e.id)
               ORDER BY e.id LIMIT $1"#,
            limit
        )
        .fetch_all(&self.pool)
        .await
    }

    async fn begin(
        &self,
        from: &Unwatched,
        baseline: Option<&str>,
        until: NaiveDate,
        first_check: DateTime<Utc>,
    ) -> Result<(), sqlx::Error> {
        let now = db::now_text();
        let until = until.to_string();
        let first = db::time_text(first_check);
        sqlx::query!(
            "INSERT INTO hire_watches (export_id, employee_id, mapping_version, baseline,
                                       start_date, watch_until, next_check_at, created_at,
                                       updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)
             ON CONFLICT (export_id) DO NOTHING",
            from.export_id,
            from.employee_id,
            from.mapping_version,
            baseline,
            from.start_date,
            until,
            first,
            now
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        lease: std::time::Duration,
    ) -> Result<Option<i64>, sqlx::Error> {
        let now_text = db::time_text(now);
        let until = store::lease_end(now, lease);
        // SKIP LOCKED: a second checker passes over the watch being claimed and takes the next
        // due one, instead of waiting and then taking the same one
        sqlx::query_scalar!(
            "UPDATE hire_watches SET lease_until = $2
             WHERE export_id = (
                 SELECT export_id FROM hire_watches
                 WHERE stopped_at IS NULL AND next_check_at <= $1
                   AND (lease_until IS NULL OR lease_until < $1)
                 ORDER BY next_check_at LIMIT 1
                 FOR UPDATE SKIP LOCKED)
             RETURNING export_id",
            now_text,
            until
        )
        .fetch_optional(&self.pool)
        .await
    }

    async fn exports_waiting(&self, now: DateTime<Utc>) -> Result<bool, sqlx::Error> {
        let now = db::time_text(now);
        sqlx::query_scalar!(
            r#"SELECT EXISTS (SELECT 1 FROM exports
                              WHERE status = 'running'
                                 OR (status = 'queued' AND next_attempt_at <= $1))
                   AS "waiting!""#,
            now
        )
        .fetch_one(&self.pool)
        .await
    }

    async fn due_count(&self, now: DateTime<Utc>) -> Result<i64, sqlx::Error> {
        let now = db::time_text(now);
        sqlx::query_scalar!(
            r#"SELECT COUNT(*) AS "n!" FROM hire_watches
               WHERE stopped_at IS NULL AND next_check_at <= $1"#,
            now
        )
        .fetch_one(&self.pool)
        .await
    }

    async fn check_failed(
        &self,
        export_id: i64,
        error: &str,
        next: DateTime<Utc>,
    ) -> Result<(), sqlx::Error> {
        let now = db::now_text();
        let next = db::time_text(next);
        let error = store::check_error_text(error);
        sqlx::query!(
            "UPDATE hire_watches
             SET check_error = $1, next_check_at = $2, checked_at = $3, lease_until = NULL,
                 updated_at = $3
             WHERE export_id = $4",
            error,
            next,
            now,
            export_id
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn flagged(&self, limit: i64) -> Result<Vec<Flagged>, sqlx::Error> {
        // unknown start dates last, as SQLite's `start_date IS NULL` (false before true) sorts
        let rows = sqlx::query_as!(
            FlaggedRow,
            "SELECT w.export_id, e.candidate_name, w.start_date, w.change_count, w.changes,
                    w.hired, w.hire_note
             FROM hire_watches w JOIN exports e ON e.id = w.export_id
             WHERE (w.change_count > 0 OR (NOT w.hired AND w.decision IS NULL))
               AND w.stopped_at IS NULL
             ORDER BY w.start_date IS NULL, w.start_date, w.export_id
             LIMIT $1",
            limit
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(Flagged::from).collect())
    }

    async fn ended(&self, today: NaiveDate) -> Result<Vec<i64>, sqlx::Error> {
        let today = today.to_string();
        // in id order, as SQLite's scan of its rowid table answers
        sqlx::query_scalar!(
            "SELECT export_id FROM hire_watches
             WHERE stopped_at IS NULL AND watch_until < $1 ORDER BY export_id LIMIT 500",
            today
        )
        .fetch_all(&self.pool)
        .await
    }

    async fn find(&self, export_id: i64) -> Result<Option<Watch>, sqlx::Error> {
        let row = sqlx::query_as!(
            WatchRow,
            "SELECT w.export_id, w.employee_id, w.mapping_version,
                    e.pinpoint_application_id AS application_id, e.source,
                    e.created_at AS export_created_at, w.baseline, w.start_date, w.watch_until,
                    w.next_check_at, w.checked_at, w.check_error, w.changes,
                    w.hired, w.hire_note, w.decision, w.decided_by, w.decided_at,
                    w.stopped_at
             FROM hire_watches w JOIN exports e ON e.id = w.export_id
             WHERE w.export_id = $1",
            export_id
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(Watch::from))
    }

    async fn save_check(&self, export_id: i64, found: &Checked<'_>) -> Result<(), sqlx::Error> {
        let now = db::now_text();
        let baseline = found.baseline.to_string();
        let (changes, count) = store::changes_text(found.changes);
        let next = db::time_text(found.next_check_at);
        // CASE reads `hired` from the row version this UPDATE locks, so a decision is dropped
        // only against the state it was made on
        let mut tx = self.pool.begin().await?;
        sqlx::query!(
            "UPDATE hire_watches
             SET baseline = $1, changes = $2, change_count = $3,
                 start_date = COALESCE($4, start_date), watch_until = COALESCE($10, watch_until),
                 hired = $5, hire_note = $6,
                 decision = CASE WHEN $5 = hired THEN decision END,
                 decided_by = CASE WHEN $5 = hired THEN decided_by END,
                 decided_at = CASE WHEN $5 = hired THEN decided_at END,
                 next_check_at = $7, checked_at = $8, check_error = NULL, lease_until = NULL,
                 updated_at = $8
             WHERE export_id = $9",
            baseline,
            changes,
            count,
            found.start_date,
            found.hired,
            found.hire_note,
            next,
            now,
            export_id,
            found.watch_until
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }

    async fn settle(&self, export_id: i64, settled: &Settled<'_>) -> Result<(), sqlx::Error> {
        let now = db::now_text();
        let baseline = settled.baseline.to_string();
        let (left, count) = store::changes_text(settled.left);
        let sent = settled.sent.to_string();
        let mut tx = self.pool.begin().await?;
        sqlx::query!(
            "UPDATE hire_watches SET baseline = $1, changes = $2, change_count = $3,
                                     updated_at = $4
             WHERE export_id = $5",
            baseline,
            left,
            count,
            now,
            export_id
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query!(
            "UPDATE exports SET sent_body = $1 WHERE id = $2",
            sent,
            export_id
        )
        .execute(&mut *tx)
        .await?;
        if let Some(day) = settled.moved_start {
            sqlx::query!(
                "UPDATE exports SET start_date = $1 WHERE id = $2",
                day,
                export_id
            )
            .execute(&mut *tx)
            .await?;
        }
        let target = format!("export {export_id}");
        audit::record(
            &mut tx,
            settled.actor,
            settled.action,
            Some(&target),
            settled.detail,
        )
        .await?;
        tx.commit().await
    }

    async fn decide(
        &self,
        export_id: i64,
        decision: &str,
        actor: &Actor,
        words: &str,
    ) -> Result<bool, sqlx::Error> {
        let now = db::now_text();
        let mut tx = self.pool.begin().await?;
        // the UPDATE locks the row and re-checks `hired` on its newest version, so a check
        // that found the hire again in the meantime wins
        let done = sqlx::query!(
            "UPDATE hire_watches SET decision = $1, decided_by = $2, decided_at = $3,
                                     updated_at = $3
             WHERE export_id = $4 AND NOT hired",
            decision,
            actor.email,
            now,
            export_id
        )
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        let target = format!("export {export_id}");
        audit::record(
            &mut tx,
            actor,
            "export.fall_through_decided",
            Some(&target),
            words,
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn check_soon(&self, export_id: i64) -> Result<bool, sqlx::Error> {
        let now = db::now_text();
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query!(
            "UPDATE hire_watches SET next_check_at = $1, updated_at = $1
             WHERE export_id = $2 AND stopped_at IS NULL AND next_check_at > $1",
            now,
            export_id
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    async fn stop(&self, export_id: i64) -> Result<(), sqlx::Error> {
        let now = db::now_text();
        let mut tx = self.pool.begin().await?;
        sqlx::query!(
            "UPDATE hire_watches
             SET stopped_at = $1, baseline = NULL, changes = '[]', change_count = 0,
                 lease_until = NULL, updated_at = $1
             WHERE export_id = $2",
            now,
            export_id
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query!(
            "UPDATE exports SET sent_body = NULL WHERE id = $1",
            export_id
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }
}

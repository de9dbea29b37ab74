//! How long the console keeps what it stores, and the pruning that enforces it.
//!
//! Windows (days, counted from when a thing was stored):
//! - webhook delivery bodies and headers: blanked, the row (time, outcome, reason, body hash and
//!   size, the export it started) stays, so the log still says what arrived and what became of it;
//! - step call records (the requests and answers JSON): cleared, the step row with its outcome,
//!   detail and duration stays;
//! - rejected deliveries: deleted (a stranger's data, kept only to diagnose a bad secret);
//! - finished exports: a succeeded export created longer ago loses its step rows and its
//!   candidate's e-mail and start date. It keeps the name, the application and HiBob employee ids,
//!   status and times: enough to answer "was this person exported, when, as which employee", which
//!   people ask for years, while the contact details HiBob now holds are not duplicated here.
//!   A plugin export's key is its candidate's e-mail, so it becomes `plugin:expired:<id>`: a later
//!   submit for the same person then opens a new export, which finds the employee in HiBob by
//!   e-mail rather than by this row. Exports that need attention or are dead are never pruned:
//!   they are unfinished work;
//! - the audit log: entries deleted, with a window of its own, longer than the rest.
//!
//! Sessions expire by themselves and the session store deletes expired ones every 15 minutes.
//!
//! Pruning runs in small batches, each its own short `BEGIN IMMEDIATE` transaction with a pause
//! after it, so webhook intake waits at most one batch for the write lock. Freed pages are then
//! handed back to the file system with `PRAGMA incremental_vacuum` (the database is kept in
//! `auto_vacuum=INCREMENTAL`, see `db`).

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::SqlitePool;

use crate::db;

/// Rows changed per transaction (a tenth as many exports when their steps are deleted: an export
/// has a handful of steps per attempt).
pub const BATCH: i64 = 500;
/// Pages handed back per transaction of the incremental vacuum.
const VACUUM_PAGES: i64 = 2000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub webhook_bodies_days: u32,
    pub call_records_days: u32,
    pub rejected_days: u32,
    pub finished_exports_days: u32,
    pub audit_days: u32,
    /// The pause between two batches, for other writers.
    pub pause: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            webhook_bodies_days: 90,
            call_records_days: 90,
            rejected_days: 30,
            finished_exports_days: 365,
            audit_days: 730,
            pause: Duration::from_millis(50),
        }
    }
}

/// What one run pruned, in rows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pruned {
    pub rejected_deleted: u64,
    pub bodies_blanked: u64,
    pub call_records_cleared: u64,
    pub finished_exports_trimmed: u64,
    pub audit_deleted: u64,
    pub pages_freed: i64,
}

impl Pruned {
    pub fn rows(&self) -> u64 {
        self.rejected_deleted
            + self.bodies_blanked
            + self.call_records_cleared
            + self.finished_exports_trimmed
            + self.audit_deleted
    }
}

/// The stored time `days` before `now`: what is older is pruned.
pub fn cutoff(now: DateTime<Utc>, days: u32) -> String {
    db::time_text(now - chrono::Duration::days(i64::from(days)))
}

/// Runs `sql` (one batch, binding the cutoff and the batch size) until it changes nothing. A
/// batch that changed fewer rows than [`BATCH`] may not be the last (a batch of exports deletes
/// their steps), so only an empty one ends it.
async fn in_batches(
    pool: &SqlitePool,
    sql: &str,
    cutoff: &str,
    pause: Duration,
) -> Result<u64, sqlx::Error> {
    let mut total = 0;
    loop {
        let mut tx = db::begin_write(pool).await?;
        let n = sqlx::query(sql)
            .bind(cutoff)
            .bind(BATCH)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        total += n;
        if n == 0 {
            return Ok(total);
        }
        tokio::time::sleep(pause).await;
    }
}

/// Prunes everything older than the policy's windows, then returns freed pages to the file
/// system.
pub async fn prune(
    pool: &SqlitePool,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Result<Pruned, sqlx::Error> {
    let p = policy.pause;
    let mut out = Pruned {
        rejected_deleted: in_batches(
            pool,
            "DELETE FROM webhook_deliveries WHERE id IN (
                 SELECT id FROM webhook_deliveries
                 WHERE outcome = 'rejected' AND received_at < ?1 LIMIT ?2)",
            &cutoff(now, policy.rejected_days),
            p,
        )
        .await?,
        bodies_blanked: in_batches(
            pool,
            "UPDATE webhook_deliveries SET body = '', headers = '{}' WHERE id IN (
                 SELECT id FROM webhook_deliveries
                 WHERE (body != '' OR headers != '{}') AND received_at < ?1 LIMIT ?2)",
            &cutoff(now, policy.webhook_bodies_days),
            p,
        )
        .await?,
        call_records_cleared: in_batches(
            pool,
            "UPDATE export_steps SET exchanges = '[]' WHERE id IN (
                 SELECT id FROM export_steps
                 WHERE exchanges != '[]' AND started_at < ?1 LIMIT ?2)",
            &cutoff(now, policy.call_records_days),
            p,
        )
        .await?,
        ..Pruned::default()
    };
    let finished = cutoff(now, policy.finished_exports_days);
    out.finished_exports_trimmed = in_batches(
        pool,
        "DELETE FROM export_steps WHERE export_id IN (
             SELECT id FROM exports WHERE status = 'succeeded' AND created_at < ?1
             AND EXISTS (SELECT 1 FROM export_steps s WHERE s.export_id = exports.id)
             LIMIT ?2 / 10)",
        &finished,
        p,
    )
    .await?;
    out.finished_exports_trimmed += in_batches(
        pool,
        "UPDATE exports SET candidate_email = NULL, start_date = NULL,
                idempotency_key = CASE WHEN source = 'plugin' AND instr(idempotency_key, '@') > 0
                                       THEN 'plugin:expired:' || id ELSE idempotency_key END
         WHERE id IN (
             SELECT id FROM exports WHERE status = 'succeeded' AND created_at < ?1
             AND (candidate_email IS NOT NULL OR start_date IS NOT NULL
                  OR (source = 'plugin' AND instr(idempotency_key, '@') > 0))
             LIMIT ?2)",
        &finished,
        p,
    )
    .await?;
    out.audit_deleted = in_batches(
        pool,
        "DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log WHERE at < ?1 LIMIT ?2)",
        &cutoff(now, policy.audit_days),
        p,
    )
    .await?;
    out.pages_freed = reclaim(pool, p).await?;
    Ok(out)
}

/// Hands the database's free pages back to the file system, a few thousand per transaction.
/// Returns how many pages were free before.
pub async fn reclaim(pool: &SqlitePool, pause: Duration) -> Result<i64, sqlx::Error> {
    let free_before: i64 = sqlx::query_scalar("PRAGMA freelist_count")
        .fetch_one(pool)
        .await?;
    let mut free = free_before;
    while free > 0 {
        let mut tx = db::begin_write(pool).await?;
        sqlx::query(&format!("PRAGMA incremental_vacuum({VACUUM_PAGES})"))
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        let now_free: i64 = sqlx::query_scalar("PRAGMA freelist_count")
            .fetch_one(pool)
            .await?;
        // not in auto_vacuum=INCREMENTAL (nothing is handed back): stop rather than spin
        if now_free >= free {
            break;
        }
        free = now_free;
        tokio::time::sleep(pause).await;
    }
    Ok(free_before)
}

/// Retention, whichever engine holds the data.
#[async_trait::async_trait]
pub trait Retention: Send + Sync {
    /// Prunes everything older than the policy's windows, then returns freed pages to the file
    /// system.
    async fn prune(&self, policy: &Policy, now: DateTime<Utc>) -> Result<Pruned, sqlx::Error>;
    /// Hands the database's free pages back to the file system, a few thousand per transaction.
    /// Returns how many pages were free before.
    async fn reclaim(&self, pause: Duration) -> Result<i64, sqlx::Error>;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A year of deliveries, a few KB each, a day apart in groups; then the pruning keeps the
    /// windows, and the file shrinks.
    #[tokio::test]
    async fn a_year_of_data_is_pruned_to_the_windows_and_the_file_shrinks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.db");
        let pool = db::open(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        let now = Utc::now();
        let body = "x".repeat(4096);
        let per_day = 10;
        let mut tx = pool.begin().await.unwrap();
        for day in 0..400i64 {
            let at = db::time_text(now - chrono::Duration::days(day) - chrono::Duration::hours(1));
            for i in 0..per_day {
                let export: i64 = sqlx::query_scalar(
                    "INSERT INTO exports (source, idempotency_key, pinpoint_application_id, status,
                                          candidate_name, candidate_email, start_date, created_at)
                     VALUES ('webhook', ?, ?, ?, 'A Person', 'a@example.com', '2027-01-04', ?)
                     RETURNING id",
                )
                .bind(format!("k{day}-{i}"))
                .bind(format!("{day}{i}"))
                .bind(if i == 0 { "dead" } else { "succeeded" })
                .bind(&at)
                .fetch_one(&mut *tx)
                .await
                .unwrap();
                let outcome = if i % 2 == 0 { "rejected" } else { "accepted" };
                sqlx::query(
                    "INSERT INTO webhook_deliveries (received_at, outcome, body_sha256, body, headers, export_id)
                     VALUES (?, ?, 'h', ?, '{\"x\":\"y\"}', ?)",
                )
                .bind(&at)
                .bind(outcome)
                .bind(&body)
                .bind(export)
                .execute(&mut *tx)
                .await
                .unwrap();
                sqlx::query(
                    "INSERT INTO export_steps (export_id, attempt, step, outcome, exchanges, started_at)
                     VALUES (?, 1, 'create_employee', 'ok', ?, ?)",
                )
                .bind(export)
                .bind(format!("[\"{body}\"]"))
                .bind(&at)
                .execute(&mut *tx)
                .await
                .unwrap();
                sqlx::query("INSERT INTO audit_log (at, action, detail) VALUES (?, 'x', '')")
                    .bind(&at)
                    .execute(&mut *tx)
                    .await
                    .unwrap();
            }
        }
        tx.commit().await.unwrap();
        let size = |pool: SqlitePool, path: std::path::PathBuf| async move {
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&pool)
                .await
                .unwrap();
            std::fs::metadata(&path).unwrap().len()
        };
        let before = size(pool.clone(), path.clone()).await;

        let policy = Policy {
            pause: Duration::ZERO,
            ..Policy::default()
        };
        let pruned = prune(&pool, &policy, now).await.unwrap();
        let after = size(pool.clone(), path.clone()).await;
        let count = |sql: &'static str| {
            let pool = pool.clone();
            async move {
                sqlx::query_scalar::<_, i64>(sql)
                    .fetch_one(&pool)
                    .await
                    .unwrap()
            }
        };
        let per = i64::from(per_day);
        assert_eq!(
            count("SELECT COUNT(*) FROM webhook_deliveries WHERE outcome = 'rejected'").await,
            30 * per / 2,
            "rejected: 30 days"
        );
        assert_eq!(
            count("SELECT COUNT(*) FROM webhook_deliveries WHERE body != ''").await,
            30 * per / 2 + 90 * per / 2,
            "bodies: rejected ones of 30 days, accepted ones of 90"
        );
        assert_eq!(
            count("SELECT COUNT(*) FROM webhook_deliveries WHERE outcome = 'accepted'").await,
            400 * per / 2,
            "accepted rows all stay"
        );
        assert_eq!(
            count("SELECT COUNT(*) FROM export_steps WHERE exchanges != '[]'").await,
            90 * per
        );
        assert_eq!(
            count("SELECT COUNT(*) FROM export_steps").await,
            365 * per + 35,
            "succeeded exports beyond a year lose their steps; dead ones keep them"
        );
        assert_eq!(
            count("SELECT COUNT(*) FROM exports WHERE candidate_email IS NULL").await,
            35 * (per - 1)
        );
        assert_eq!(
            count("SELECT COUNT(*) FROM exports WHERE candidate_name IS NULL").await,
            0,
            "names stay"
        );
        assert_eq!(count("SELECT COUNT(*) FROM audit_log").await, 400 * per);
        assert!(pruned.pages_freed > 0);
        assert!(
            after * 2 < before,
            "the file shrinks: {before} bytes before, {after} after ({pruned:?})"
        );
        eprintln!("retention: {before} bytes before, {after} after; {pruned:?}");
        let again = prune(&pool, &policy, now).await.unwrap();
        assert_eq!(again.rows(), 0, "a second run has nothing to do");
    }

    #[tokio::test]
    async fn the_audit_log_has_its_own_window() {
        let dir = tempfile::tempdir().unwrap();
        let pool = db::open(&format!("sqlite://{}/a.db", dir.path().display()))
            .await
            .unwrap();
        let now = Utc::now();
        for days in [10, 700, 740, 1000] {
            sqlx::query("INSERT INTO audit_log (at, action) VALUES (?, 'x')")
                .bind(db::time_text(now - chrono::Duration::days(days)))
                .execute(&pool)
                .await
                .unwrap();
        }
        let pruned = prune(&pool, &Policy::default(), now).await.unwrap();
        assert_eq!(pruned.audit_deleted, 2);
    }

    /// A plugin export's key is its candidate's e-mail: past the window it goes with the e-mail
    /// column, for succeeded exports only.
    #[tokio::test]
    async fn a_succeeded_plugin_export_loses_the_e_mail_from_its_key_too() {
        let dir = tempfile::tempdir().unwrap();
        let pool = db::open(&format!("sqlite://{}/p.db", dir.path().display()))
            .await
            .unwrap();
        let now = Utc::now();
        for (email, status, days) in [
            ("old@example.com", "succeeded", 400),
            ("new@example.com", "succeeded", 10),
            ("stuck@example.com", "needs_attention", 400),
        ] {
            sqlx::query(
                "INSERT INTO exports (source, idempotency_key, pinpoint_application_id, status,
                                      candidate_name, candidate_email, created_at)
                 VALUES ('plugin', 'plugin:' || ?1, '', ?2, 'A Person', ?1, ?3)",
            )
            .bind(email)
            .bind(status)
            .bind(db::time_text(now - chrono::Duration::days(days)))
            .execute(&pool)
            .await
            .unwrap();
        }
        let policy = Policy {
            pause: Duration::ZERO,
            ..Policy::default()
        };
        prune(&pool, &policy, now).await.unwrap();
        let rows: Vec<(String, Option<String>)> =
            sqlx::query_as("SELECT idempotency_key, candidate_email FROM exports ORDER BY id")
                .fetch_all(&pool)
                .await
                .unwrap();
        assert_eq!(rows[0].1, None);
        assert!(!rows[0].0.contains("old@"), "{rows:?}");
        assert!(rows[0].0.starts_with("plugin:"), "{rows:?}");
        assert_eq!(rows[1].0, "plugin:new@example.com", "within the window");
        assert_eq!(rows[2].0, "plugin:stuck@example.com", "unfinished work");
        assert_eq!(
            prune(&pool, &policy, now).await.unwrap().rows(),
            0,
            "a second run has nothing to do"
        );
    }
}

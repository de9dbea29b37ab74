//! Bulk retries: every stopped export a retry can finish (webhook exports, and plugin ones that
//! name their application) matching the exports list's filters is queued again as one recorded
//! run. The run keeps who started it and each member's status before, so the
//! operator can follow its progress (read from the members' exports, never stored twice) and
//! cancel it, which puts the members the worker has not started yet back as they were.

use serde::{Deserialize, Serialize};
use sqlx::{SqliteConnection, SqlitePool};

// still reachable by its old name, for the resolutions that call it from here
pub use crate::exports::queue::supersede;
use crate::{
    access::audit,
    access::users::Actor,
    db,
    exports::queue as export_queue,
    exports::search::{self, ExportFilter},
};

#[derive(Debug, thiserror::Error)]
pub enum BulkError {
    #[error("no stopped exports match these filters (someone may have retried them already)")]
    NothingToRetry,
    #[error("there is no bulk retry {0}")]
    NotFound(i64),
    #[error("bulk retry {0} was already cancelled")]
    AlreadyCancelled(i64),
    #[error(
        "bulk retry {0} has nothing left to cancel: the worker has started every export in it"
    )]
    NothingToCancel(i64),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// An export a bulk retry would take, as it is now.
struct Candidate {
    id: i64,
    status: String,
    attempts: i64,
}

/// The one definition of what a bulk retry takes, used by the preview and the retry alike so the
/// number promised is the number queued.
async fn matching(
    conn: &mut SqliteConnection,
    filter: &ExportFilter,
) -> Result<Vec<Candidate>, sqlx::Error> {
    Ok(search::stopped_matching(conn, filter)
        .await?
        .into_iter()
        .map(|(id, status, attempts)| Candidate {
            id,
            status,
            attempts,
        })
        .collect())
}

/// How many exports a bulk retry with these filters would queue right now.
pub async fn preview(pool: &SqlitePool, filter: &ExportFilter) -> Result<usize, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    Ok(matching(&mut conn, filter).await?.len())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    pub run_id: i64,
    pub export_ids: Vec<i64>,
}

/// Queues every matching stopped export again, with a fresh allowance of attempts, as one run.
/// One write transaction: two operators starting the same retry at once get one run each for
/// disjoint exports (the second finds the first's already queued), never an export twice.
pub async fn start(
    pool: &SqlitePool,
    actor: &Actor,
    filter: &ExportFilter,
) -> Result<Started, BulkError> {
    let mut tx = db::begin_write(pool).await?;
    let members = matching(&mut tx, filter).await?;
    if members.is_empty() {
        return Err(BulkError::NothingToRetry);
    }
    let filter_json = shown_filter(filter);
    let now = db::now_text();
    let run_id = sqlx::query_scalar!(
        r#"INSERT INTO bulk_retries (actor_id, actor_email, filter, created_at)
           VALUES (?, ?, ?, ?) RETURNING id AS "id!""#,
        actor.id,
        actor.email,
        filter_json,
        now
    )
    .fetch_one(&mut *tx)
    .await?;
    for m in &members {
        export_queue::supersede(&mut tx, m.id).await?;
        sqlx::query!(
            "INSERT INTO bulk_retry_members
                 (bulk_retry_id, export_id, previous_status, previous_attempts, previous_mapping_version)
             SELECT ?1, id, ?2, ?3, mapping_version FROM exports WHERE id = ?4",
            run_id,
            m.status,
            m.attempts,
            m.id
        )
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query!(
        "UPDATE exports SET status = 'queued', earlier_attempts = earlier_attempts + attempts,
                attempts = 0, next_attempt_at = ?1, updated_at = ?1, mapping_version = NULL
         WHERE id IN (SELECT export_id FROM bulk_retry_members WHERE bulk_retry_id = ?2)",
        now,
        run_id
    )
    .execute(&mut *tx)
    .await?;
    let export_ids: Vec<i64> = members.iter().map(|m| m.id).collect();
    audit::record(
        &mut tx,
        actor,
        STARTED_ACTION,
        Some(&run_target(run_id)),
        &started_detail(&export_ids),
    )
    .await?;
    tx.commit().await?;
    Ok(Started { run_id, export_ids })
}

/// Cancels a run: its members still waiting for their first attempt go back to the status they
/// had; the one the worker is on, and those already done, are left to finish as they are.
/// Returns the exports put back.
pub async fn cancel(pool: &SqlitePool, actor: &Actor, run_id: i64) -> Result<Vec<i64>, BulkError> {
    let mut tx = db::begin_write(pool).await?;
    let cancelled_at =
        sqlx::query_scalar!("SELECT cancelled_at FROM bulk_retries WHERE id = ?", run_id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(BulkError::NotFound(run_id))?;
    if cancelled_at.is_some() {
        return Err(BulkError::AlreadyCancelled(run_id));
    }
    // queued with no attempt spent: claimed never, or handed back uncounted (HiBob's rate limit)
    let restored = sqlx::query_scalar!(
        r#"UPDATE bulk_retry_members SET cancelled = 1
           WHERE bulk_retry_id = ?1 AND superseded = 0 AND cancelled = 0
             AND export_id IN (SELECT id FROM exports WHERE status = 'queued' AND attempts = 0)
           RETURNING export_id AS "export_id!""#,
        run_id
    )
    .fetch_all(&mut *tx)
    .await?;
    if restored.is_empty() {
        return Err(BulkError::NothingToCancel(run_id));
    }
    let now = db::now_text();
    sqlx::query!(
        "UPDATE exports
         SET status = m.previous_status, attempts = m.previous_attempts,
             earlier_attempts = MAX(exports.earlier_attempts - m.previous_attempts, 0),
             mapping_version = m.previous_mapping_version, updated_at = ?1
         FROM bulk_retry_members AS m
         WHERE m.bulk_retry_id = ?2 AND m.export_id = exports.id AND m.cancelled = 1
           AND exports.status = 'queued' AND exports.attempts = 0",
        now,
        run_id
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "UPDATE bulk_retries SET cancelled_at = ?, cancelled_by = ? WHERE id = ?",
        now,
        actor.email,
        run_id
    )
    .execute(&mut *tx)
    .await?;
    let mut restored = restored;
    restored.sort_unstable();
    audit::record(
        &mut tx,
        actor,
        CANCELLED_ACTION,
        Some(&run_target(run_id)),
        &cancelled_detail(&restored),
    )
    .await?;
    tx.commit().await?;
    Ok(restored)
}

/// The audit actions of a run's start and cancel.
pub const STARTED_ACTION: &str = "export.bulk_retried";
pub const CANCELLED_ACTION: &str = "export.bulk_retry_cancelled";

/// The filters as the operator saw them in the preview, as the run keeps them (JSON).
pub fn shown_filter(filter: &ExportFilter) -> String {
    let shown = ExportFilter {
        before_id: None,
        limit: None,
        ..filter.clone()
    };
    serde_json::to_string(&shown).unwrap_or_else(|_| "{}".to_owned())
}

/// A run as the audit log names it.
pub fn run_target(run_id: i64) -> String {
    format!("bulk retry {run_id}")
}

/// The audit detail of a started run.
pub fn started_detail(export_ids: &[i64]) -> String {
    format!(
        "{} exports queued again: {}",
        export_ids.len(),
        id_list(export_ids)
    )
}

/// The audit detail of a cancel, with the exports it put back (in id order).
pub fn cancelled_detail(restored: &[i64]) -> String {
    format!(
        "{} exports not yet started put back: {}",
        restored.len(),
        id_list(restored)
    )
}

fn id_list(ids: &[i64]) -> String {
    ids.iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Where a run stands, from its members' exports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub id: i64,
    pub actor_email: Option<String>,
    pub created_at: String,
    pub cancelled_at: Option<String>,
    pub total: i64,
    pub succeeded: i64,
    /// Stopped again (needs attention or dead).
    pub failed: i64,
    /// Queued or running.
    pub pending: i64,
    /// Put back by the cancel before they were started.
    pub cancelled: i64,
    /// Taken over by a later retry.
    pub superseded: i64,
}

impl Progress {
    /// Members with nothing more to happen in this run.
    pub fn done(&self) -> i64 {
        self.total - self.pending
    }

    pub fn finished(&self) -> bool {
        self.pending == 0
    }

    /// "12 of 40 done: 9 succeeded, 3 stopped again", with the cancelled and taken-over ones
    /// when there are.
    pub fn summary(&self) -> String {
        let mut parts = vec![format!("{} succeeded", self.succeeded)];
        if self.failed > 0 {
            parts.push(format!("{} stopped again", self.failed));
        }
        if self.cancelled > 0 {
            parts.push(format!("{} cancelled", self.cancelled));
        }
        if self.superseded > 0 {
            parts.push(format!("{} retried again separately", self.superseded));
        }
        format!(
            "{} of {} done: {}",
            self.done(),
            self.total,
            parts.join(", ")
        )
    }
}

/// The exports run `run_id` retried that stopped again (needs attention or dead) and are still
/// its own (not cancelled, not retried again since), oldest first.
pub async fn stopped_again(pool: &SqlitePool, run_id: i64) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT e.id AS "id!" FROM bulk_retry_members AS m
           JOIN exports AS e ON e.id = m.export_id
           WHERE m.bulk_retry_id = ? AND m.superseded = 0 AND m.cancelled = 0
             AND e.status IN ('needs_attention', 'dead')
           ORDER BY e.id"#,
        run_id
    )
    .fetch_all(pool)
    .await
}

/// How many runs the list of recent ones shows, for `asked`.
pub fn recent_limit(asked: i64) -> i64 {
    asked.clamp(1, 50)
}

/// The newest runs first.
pub async fn recent(pool: &SqlitePool, limit: i64) -> Result<Vec<Progress>, sqlx::Error> {
    let limit = recent_limit(limit);
    sqlx::query_as!(
        Progress,
        r#"SELECT r.id AS "id!", r.actor_email, r.created_at AS "created_at!", r.cancelled_at,
                  COUNT(*) AS "total!: i64",
                  SUM(m.superseded = 0 AND m.cancelled = 0 AND e.status = 'succeeded') AS "succeeded!: i64",
                  SUM(m.superseded = 0 AND m.cancelled = 0
                      AND e.status IN ('needs_attention', 'dead')) AS "failed!: i64",
                  SUM(m.superseded = 0 AND m.cancelled = 0
                      AND e.status IN ('queued', 'running')) AS "pending!: i64",
                  SUM(m.cancelled) AS "cancelled!: i64",
                  SUM(m.superseded = 1 AND m.cancelled = 0) AS "superseded!: i64"
           FROM (SELECT * FROM bulk_retries ORDER BY id DESC LIMIT ?) AS r
           JOIN bulk_retry_members AS m ON m.bulk_retry_id = r.id
           JOIN exports AS e ON e.id = m.export_id
           GROUP BY r.id
           ORDER BY r.id DESC"#,
        limit
    )
    .fetch_all(pool)
    .await
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::exports::queue::{self as export_queue, Source, Status};

    async fn pool() -> (tempfile::TempDir, SqlitePool) {
        let dir = tempfile::tempdir().unwrap();
        let pool = db::open(&format!("sqlite://{}/b.db", dir.path().display()))
            .await
            .unwrap();
        (dir, pool)
    }

    /// A webhook export that stopped with `status` after one attempt.
    async fn stopped(pool: &SqlitePool, key: &str, status: Status) -> i64 {
        let mut tx = db::begin_write(pool).await.unwrap();
        let e = export_queue::enqueue(&mut tx, Source::Webhook, key, "7")
            .await
            .unwrap();
        tx.commit().await.unwrap();
        export_queue::claim(pool, "w", Duration::from_secs(60), 8)
            .await
            .unwrap()
            .unwrap();
        match status {
            Status::Dead => export_queue::dead(pool, e.export_id, "w", "gave up").await,
            Status::Succeeded => export_queue::succeed(pool, e.export_id, "w").await,
            _ => export_queue::needs_attention(pool, e.export_id, "w", "bad site").await,
        }
        .unwrap();
        e.export_id
    }

    fn status(s: &str) -> ExportFilter {
        ExportFilter {
            status: Some(s.into()),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn takes_only_stopped_retryable_exports_matching_the_filter() {
        let (_d, pool) = pool().await;
        let a = stopped(&pool, "a", Status::NeedsAttention).await;
        let b = stopped(&pool, "b", Status::Dead).await;
        stopped(&pool, "c", Status::Succeeded).await;
        let actor = Actor::system("tester");
        assert_eq!(preview(&pool, &status("dead")).await.unwrap(), 1);
        assert_eq!(preview(&pool, &status("succeeded")).await.unwrap(), 0);
        let plugin = ExportFilter {
            source: Some("plugin".into()),
            ..Default::default()
        };
        assert_eq!(preview(&pool, &plugin).await.unwrap(), 0);
        // a stopped Send to HiBob is taken when it names its application, as a single retry does
        for (key, application) in [
            ("plugin:p@example.com", "77"),
            ("plugin:q@example.com", " "),
        ] {
            sqlx::query(
                "INSERT INTO exports (source, idempotency_key, pinpoint_application_id, status)
                 VALUES ('plugin', ?, ?, 'needs_attention')",
            )
            .bind(key)
            .bind(application)
            .execute(&pool)
            .await
            .unwrap();
        }
        assert_eq!(preview(&pool, &plugin).await.unwrap(), 1);
        sqlx::query("DELETE FROM exports WHERE source = 'plugin'")
            .execute(&pool)
            .await
            .unwrap();
        let run = start(&pool, &actor, &status("dead")).await.unwrap();
        assert_eq!(run.export_ids, vec![b]);
        assert_eq!(preview(&pool, &ExportFilter::default()).await.unwrap(), 1);
        let all = start(&pool, &actor, &ExportFilter::default())
            .await
            .unwrap();
        assert_eq!(all.export_ids, vec![a], "the queued and succeeded are left");
        assert!(matches!(
            start(&pool, &actor, &ExportFilter::default()).await,
            Err(BulkError::NothingToRetry)
        ));
        let audit = audit::list(&pool, &Default::default()).await.unwrap();
        assert_eq!(
            audit
                .iter()
                .filter(|a| a.action == "export.bulk_retried")
                .count(),
            2
        );
    }

    #[tokio::test]
    async fn progress_follows_the_members_and_cancel_puts_back_the_unstarted() {
        let (_d, pool) = pool().await;
        let ids = [
            stopped(&pool, "a", Status::NeedsAttention).await,
            stopped(&pool, "b", Status::Dead).await,
            stopped(&pool, "c", Status::NeedsAttention).await,
        ];
        let actor = Actor::system("tester");
        let run = start(&pool, &actor, &ExportFilter::default())
            .await
            .unwrap();
        let p = &recent(&pool, 5).await.unwrap()[0];
        assert_eq!((p.total, p.pending, p.done()), (3, 3, 0));

        // the worker takes the first and it succeeds; the second is running when the cancel comes
        let first = export_queue::claim(&pool, "w", Duration::from_secs(60), 8)
            .await
            .unwrap()
            .unwrap();
        export_queue::succeed(&pool, first.id, "w").await.unwrap();
        let second = export_queue::claim(&pool, "w", Duration::from_secs(60), 8)
            .await
            .unwrap()
            .unwrap();
        let restored = cancel(&pool, &actor, run.run_id).await.unwrap();
        assert_eq!(restored, vec![ids[2]]);
        let back = export_queue::find(&pool, ids[2]).await.unwrap().unwrap();
        assert_eq!(
            (back.status.as_str(), back.attempts, back.earlier_attempts),
            ("needs_attention", 1, 0),
            "as it was, its attempt counted once"
        );
        assert_eq!(back.last_error.as_deref(), Some("bad site"));
        export_queue::needs_attention(&pool, second.id, "w", "still bad")
            .await
            .unwrap();
        let p = &recent(&pool, 5).await.unwrap()[0];
        assert!(p.finished());
        assert!(p.cancelled_at.is_some());
        assert_eq!(
            p.summary(),
            "3 of 3 done: 1 succeeded, 1 stopped again, 1 cancelled"
        );
        assert_eq!(
            stopped_again(&pool, run.run_id).await.unwrap(),
            vec![second.id]
        );
        assert!(matches!(
            cancel(&pool, &actor, run.run_id).await,
            Err(BulkError::AlreadyCancelled(_))
        ));
        assert!(matches!(
            cancel(&pool, &actor, 99).await,
            Err(BulkError::NotFound(99))
        ));
    }

    #[tokio::test]
    async fn a_later_single_retry_takes_the_export_out_of_the_runs_cancel() {
        let (_d, pool) = pool().await;
        let a = stopped(&pool, "a", Status::NeedsAttention).await;
        let b = stopped(&pool, "b", Status::NeedsAttention).await;
        let actor = Actor::system("tester");
        let run = start(&pool, &actor, &ExportFilter::default())
            .await
            .unwrap();
        let job = export_queue::claim(&pool, "w", Duration::from_secs(60), 8)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(job.id, a);
        export_queue::needs_attention(&pool, a, "w", "again")
            .await
            .unwrap();
        export_queue::retry(&pool, &actor, a).await.unwrap();
        assert_eq!(cancel(&pool, &actor, run.run_id).await.unwrap(), vec![b]);
        let a_now = export_queue::find(&pool, a).await.unwrap().unwrap();
        assert_eq!(a_now.status, "queued", "the single retry stands");
        let p = &recent(&pool, 5).await.unwrap()[0];
        assert_eq!((p.superseded, p.cancelled, p.pending), (1, 1, 0));
    }

    #[test]
    fn summary_reads_well() {
        let p = Progress {
            id: 1,
            actor_email: None,
            created_at: String::new(),
            cancelled_at: None,
            total: 40,
            succeeded: 9,
            failed: 3,
            pending: 28,
            cancelled: 0,
            superseded: 0,
        };
        assert_eq!(p.summary(), "12 of 40 done: 9 succeeded, 3 stopped again");
        assert!(!p.finished());
    }
}

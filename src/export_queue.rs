//! The durable queue of exports. SQLite has no `SKIP LOCKED`, so a job is claimed by one
//! `UPDATE … RETURNING` inside `BEGIN IMMEDIATE`, with a lease: a worker that dies leaves a job
//! whose lease runs out, and the next claim takes it again.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::{SqliteConnection, SqlitePool};

use crate::{audit, db, users::Actor};

/// Wakes the worker when an export becomes due now (a new hire, a retry) instead of at its next
/// poll.
#[derive(Debug, Clone, Default)]
pub struct WorkerWake(std::sync::Arc<tokio::sync::Notify>);

impl WorkerWake {
    pub fn wake(&self) {
        self.0.notify_one();
    }

    pub async fn woken(&self) {
        self.0.notified().await;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Queued,
    Running,
    Succeeded,
    NeedsAttention,
    Dead,
}

impl Status {
    pub const ALL: [Status; 5] = [
        Status::Queued,
        Status::Running,
        Status::Succeeded,
        Status::NeedsAttention,
        Status::Dead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::Running => "running",
            Status::Succeeded => "succeeded",
            Status::NeedsAttention => "needs_attention",
            Status::Dead => "dead",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    pub fn label(self) -> &'static str {
        match self {
            Status::Queued => "Queued",
            Status::Running => "Running",
            Status::Succeeded => "Succeeded",
            Status::NeedsAttention => "Needs attention",
            Status::Dead => "Dead",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Webhook,
    Plugin,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Webhook => "webhook",
            Source::Plugin => "plugin",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Export {
    pub id: i64,
    pub source: String,
    pub idempotency_key: String,
    pub pinpoint_application_id: String,
    pub status: String,
    pub attempts: i64,
    pub max_attempts: i64,
    pub next_attempt_at: String,
    pub candidate_name: Option<String>,
    pub candidate_email: Option<String>,
    pub start_date: Option<String>,
    pub hibob_employee_id: Option<String>,
    pub cv_uploaded: bool,
    pub comment_posted: bool,
    pub last_error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// The mapping version its body was built with (or will be, when `None`: the current one).
    pub mapping_version: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub id: i64,
    pub attempt: i64,
    pub step: String,
    pub outcome: String,
    pub detail: String,
    pub exchanges: String,
    pub started_at: String,
    pub duration_ms: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("no export with id {0}")]
    NotFound(i64),
    #[error("export {id} is {status}: {why}")]
    NotRetryable {
        id: i64,
        status: String,
        why: &'static str,
    },
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// What `enqueue` found: a new export, or the one this hire already has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Enqueued {
    pub export_id: i64,
    pub created: bool,
}

/// Creates the export for a hire unless one exists under the same key; runs inside the caller's
/// transaction so the delivery and its export commit together.
pub async fn enqueue(
    tx: &mut SqliteConnection,
    source: Source,
    idempotency_key: &str,
    application_id: &str,
) -> Result<Enqueued, sqlx::Error> {
    let source = source.as_str();
    let inserted = sqlx::query_scalar!(
        r#"INSERT INTO exports (source, idempotency_key, pinpoint_application_id)
           VALUES (?, ?, ?)
           ON CONFLICT (idempotency_key) DO NOTHING
           RETURNING id AS "id!""#,
        source,
        idempotency_key,
        application_id
    )
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(export_id) = inserted {
        return Ok(Enqueued {
            export_id,
            created: true,
        });
    }
    let export_id = sqlx::query_scalar!(
        r#"SELECT id AS "id!" FROM exports WHERE idempotency_key = ?"#,
        idempotency_key
    )
    .fetch_one(&mut *tx)
    .await?;
    Ok(Enqueued {
        export_id,
        created: false,
    })
}

/// Takes the next due export (or one whose lease expired) for `owner`, counting the attempt.
pub async fn claim(
    pool: &SqlitePool,
    owner: &str,
    lease: Duration,
) -> Result<Option<Export>, sqlx::Error> {
    let now = chrono::Utc::now();
    let now_text = db::time_text(now);
    let lease_until = db::time_text(now + chrono::Duration::from_std(lease).unwrap_or_default());
    let mut tx = db::begin_write(pool).await?;
    let claimed = sqlx::query_scalar!(
        r#"UPDATE exports
           SET status = 'running', attempts = attempts + 1, lease_owner = ?1, lease_until = ?2,
               updated_at = ?3
           WHERE id = (
               SELECT id FROM exports
               WHERE (status = 'queued' AND next_attempt_at <= ?3)
                  OR (status = 'running' AND lease_until < ?3)
               ORDER BY next_attempt_at, id
               LIMIT 1)
           RETURNING id AS "id!""#,
        owner,
        lease_until,
        now_text
    )
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    match claimed {
        Some(id) => find(pool, id).await,
        None => Ok(None),
    }
}

/// When the next export falls due, so an idle worker can sleep until then.
pub async fn next_due(pool: &SqlitePool) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT MIN(CASE WHEN status = 'queued' THEN next_attempt_at ELSE lease_until END) AS "due?: String"
           FROM exports WHERE status IN ('queued', 'running')"#
    )
    .fetch_one(pool)
    .await
}

pub async fn find(pool: &SqlitePool, id: i64) -> Result<Option<Export>, sqlx::Error> {
    sqlx::query_as!(
        Export,
        r#"SELECT id AS "id!", source, idempotency_key, pinpoint_application_id, status, attempts,
                  max_attempts, next_attempt_at, candidate_name, candidate_email, start_date,
                  hibob_employee_id, cv_uploaded AS "cv_uploaded: bool",
                  comment_posted AS "comment_posted: bool", last_error, created_at, updated_at,
                  mapping_version
           FROM exports WHERE id = ?"#,
        id
    )
    .fetch_optional(pool)
    .await
}

pub async fn steps(pool: &SqlitePool, export_id: i64) -> Result<Vec<Step>, sqlx::Error> {
    sqlx::query_as!(
        Step,
        r#"SELECT id AS "id!", attempt, step, outcome, detail, exchanges, started_at, duration_ms
           FROM export_steps WHERE export_id = ? ORDER BY id"#,
        export_id
    )
    .fetch_all(pool)
    .await
}

/// One finished step of an attempt, as it will be shown on the export's timeline.
#[derive(Debug, Clone)]
pub struct StepRecord<'a> {
    pub attempt: i64,
    pub step: &'a str,
    pub outcome: &'a str,
    pub detail: &'a str,
    pub exchanges_json: &'a str,
    pub duration_ms: i64,
}

pub async fn record_step(
    pool: &SqlitePool,
    export_id: i64,
    r: &StepRecord<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO export_steps (export_id, attempt, step, outcome, detail, exchanges, duration_ms)
         VALUES (?, ?, ?, ?, ?, ?, ?)",
        export_id,
        r.attempt,
        r.step,
        r.outcome,
        r.detail,
        r.exchanges_json,
        r.duration_ms
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// What the export learned about the candidate, for lists and searches.
pub async fn set_candidate(
    pool: &SqlitePool,
    id: i64,
    name: Option<&str>,
    email: Option<&str>,
    start_date: Option<&str>,
) -> Result<(), sqlx::Error> {
    let now = db::now_text();
    sqlx::query!(
        "UPDATE exports SET candidate_name = ?, candidate_email = ?, start_date = ?, updated_at = ?
         WHERE id = ?",
        name,
        email,
        start_date,
        now,
        id
    )
    .execute(pool)
    .await?;
    Ok(())
}

pub async fn set_employee_id(
    pool: &SqlitePool,
    id: i64,
    employee_id: &str,
) -> Result<(), sqlx::Error> {
    let now = db::now_text();
    sqlx::query!(
        "UPDATE exports SET hibob_employee_id = ?, updated_at = ? WHERE id = ?",
        employee_id,
        now,
        id
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Pins the mapping version the export's body was built with.
pub async fn set_mapping_version(
    pool: &SqlitePool,
    id: i64,
    version: i64,
) -> Result<(), sqlx::Error> {
    let mut tx = db::begin_write(pool).await?;
    sqlx::query!(
        "UPDATE exports SET mapping_version = ? WHERE id = ?",
        version,
        id
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

pub async fn mark_cv_uploaded(pool: &SqlitePool, id: i64) -> Result<(), sqlx::Error> {
    let now = db::now_text();
    sqlx::query!(
        "UPDATE exports SET cv_uploaded = 1, updated_at = ? WHERE id = ?",
        now,
        id
    )
    .execute(pool)
    .await?;
    Ok(())
}

pub async fn mark_comment_posted(pool: &SqlitePool, id: i64) -> Result<(), sqlx::Error> {
    let now = db::now_text();
    sqlx::query!(
        "UPDATE exports SET comment_posted = 1, updated_at = ? WHERE id = ?",
        now,
        id
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Ends the attempt. Only the lease holder may: a worker whose lease expired and was taken over
/// must not overwrite the newer attempt's result.
async fn finish(
    pool: &SqlitePool,
    id: i64,
    owner: &str,
    status: Status,
    next_attempt_at: Option<String>,
    error: Option<&str>,
) -> Result<bool, sqlx::Error> {
    let now = db::now_text();
    let status = status.as_str();
    let next = next_attempt_at.unwrap_or_else(|| now.clone());
    let done = sqlx::query!(
        "UPDATE exports
         SET status = ?, next_attempt_at = ?, last_error = ?, lease_owner = NULL, lease_until = NULL,
             updated_at = ?
         WHERE id = ? AND status = 'running' AND lease_owner = ?",
        status,
        next,
        error,
        now,
        id,
        owner
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn succeed(pool: &SqlitePool, id: i64, owner: &str) -> Result<bool, sqlx::Error> {
    finish(pool, id, owner, Status::Succeeded, None, None).await
}

pub async fn retry_later(
    pool: &SqlitePool,
    id: i64,
    owner: &str,
    delay: Duration,
    error: &str,
) -> Result<bool, sqlx::Error> {
    let at = chrono::Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default();
    finish(
        pool,
        id,
        owner,
        Status::Queued,
        Some(db::time_text(at)),
        Some(error),
    )
    .await
}

pub async fn needs_attention(
    pool: &SqlitePool,
    id: i64,
    owner: &str,
    error: &str,
) -> Result<bool, sqlx::Error> {
    finish(pool, id, owner, Status::NeedsAttention, None, Some(error)).await
}

pub async fn dead(
    pool: &SqlitePool,
    id: i64,
    owner: &str,
    error: &str,
) -> Result<bool, sqlx::Error> {
    finish(pool, id, owner, Status::Dead, None, Some(error)).await
}

/// At start-up: exports left running by a process that is gone (killed, crashed) are queued
/// again at once instead of waiting for their lease to lapse. One console process serves a
/// database, so any lease not held by `owner` is a dead process's. Returns how many.
pub async fn recover_abandoned(pool: &SqlitePool, owner: &str) -> Result<u64, sqlx::Error> {
    let now = db::now_text();
    let done = sqlx::query!(
        "UPDATE exports
         SET status = 'queued', lease_owner = NULL, lease_until = NULL, next_attempt_at = ?1,
             updated_at = ?1
         WHERE status = 'running' AND source = 'webhook' AND lease_owner IS NOT NULL
           AND lease_owner <> ?2",
        now,
        owner
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// Gives a job back without counting the attempt, e.g. when the worker stops mid-job.
pub async fn release(pool: &SqlitePool, id: i64, owner: &str) -> Result<(), sqlx::Error> {
    release_until(pool, id, owner, Duration::ZERO).await
}

/// Gives a job back uncounted, due again after `delay` (HiBob asked us to wait).
pub async fn release_until(
    pool: &SqlitePool,
    id: i64,
    owner: &str,
    delay: Duration,
) -> Result<(), sqlx::Error> {
    let now = chrono::Utc::now();
    let due = db::time_text(now + chrono::Duration::from_std(delay).unwrap_or_default());
    let now = db::time_text(now);
    sqlx::query!(
        "UPDATE exports
         SET status = 'queued', attempts = MAX(attempts - 1, 0), lease_owner = NULL,
             lease_until = NULL, next_attempt_at = ?1, updated_at = ?2
         WHERE id = ?3 AND status = 'running' AND lease_owner = ?4",
        due,
        now,
        id,
        owner
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Which mapping version a retried export builds its employee with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MappingChoice {
    /// The version the export used before (its pinned one).
    Original,
    /// The version in force when the attempt runs (typically: the one just fixed).
    Current,
}

/// Queues a stopped export again with the current mapping; see [`retry_with`].
pub async fn retry(pool: &SqlitePool, actor: &Actor, id: i64) -> Result<Export, QueueError> {
    retry_with(pool, actor, id, MappingChoice::Current).await
}

/// Queues a stopped export again, now, with a fresh allowance of attempts. What it already did
/// (employee id, CV, comment) is kept, so a retry never repeats a finished step.
pub async fn retry_with(
    pool: &SqlitePool,
    actor: &Actor,
    id: i64,
    mapping: MappingChoice,
) -> Result<Export, QueueError> {
    let mut tx = db::begin_write(pool).await?;
    let row = sqlx::query!("SELECT status, source FROM exports WHERE id = ?", id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(QueueError::NotFound(id))?;
    let status = row.status;
    let why = match Status::parse(&status) {
        // the worker runs the webhook pipeline; a plugin export is redone from Pinpoint's form
        _ if row.source == "plugin" => {
            Some("it came from Pinpoint's Send to HiBob form: submit the form again there")
        }
        Some(Status::NeedsAttention | Status::Dead) => None,
        Some(Status::Succeeded) => Some("it already succeeded"),
        Some(Status::Queued) => Some("it is already waiting for its next attempt"),
        Some(Status::Running) => Some("it is running right now"),
        None => Some("its status is unknown"),
    };
    if let Some(why) = why {
        return Err(QueueError::NotRetryable { id, status, why });
    }
    let now = db::now_text();
    let current = mapping == MappingChoice::Current;
    // unpinning lets the next attempt take, and pin, the version then in force
    let pinned = sqlx::query_scalar!(
        "UPDATE exports SET status = 'queued', attempts = 0, next_attempt_at = ?1, updated_at = ?1,
                mapping_version = CASE WHEN ?3 THEN NULL ELSE mapping_version END
         WHERE id = ?2 RETURNING mapping_version AS \"mapping_version?: i64\"",
        now,
        id,
        current
    )
    .fetch_one(&mut *tx)
    .await?;
    let with = match (current, pinned) {
        (true, _) => "the current mapping".to_owned(),
        (false, Some(v)) => format!("its original mapping v{v}"),
        (false, None) => "the current mapping (it had none yet)".to_owned(),
    };
    crate::bulk_retry::supersede(&mut tx, id).await?;
    audit::record(
        &mut tx,
        actor,
        "export.retried",
        Some(&format!("export {id}")),
        &format!("was {status}; retried with {with}"),
    )
    .await?;
    tx.commit().await?;
    find(pool, id).await?.ok_or(QueueError::NotFound(id))
}

/// Counts per status, for the dashboard and metrics.
pub async fn counts(pool: &SqlitePool) -> Result<Vec<(String, i64)>, sqlx::Error> {
    let rows = sqlx::query!(r#"SELECT status, COUNT(*) AS "n!: i64" FROM exports GROUP BY status"#)
        .fetch_all(pool)
        .await?;
    Ok(rows.into_iter().map(|r| (r.status, r.n)).collect())
}

/// Filters of the exports list. Every field is optional; text is matched literally.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ExportFilter {
    pub status: Option<String>,
    pub source: Option<String>,
    /// Candidate name or email, Pinpoint application id or HiBob employee id.
    pub search: Option<String>,
    /// Keyset pagination: only exports older than this id.
    pub before_id: Option<i64>,
    pub limit: Option<i64>,
}

/// One line of the exports list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportSummary {
    pub id: i64,
    pub source: String,
    pub status: String,
    pub pinpoint_application_id: String,
    pub candidate_name: Option<String>,
    pub candidate_email: Option<String>,
    pub start_date: Option<String>,
    pub hibob_employee_id: Option<String>,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// Newest first, by id, so the next page starts after the last id shown and stays fast however
/// many exports there are.
pub async fn list(
    pool: &SqlitePool,
    filter: &ExportFilter,
) -> Result<Vec<ExportSummary>, sqlx::Error> {
    let before = filter.before_id.unwrap_or(i64::MAX);
    let limit = filter.limit.unwrap_or(50).clamp(1, 200);
    let status = filter
        .status
        .as_deref()
        .and_then(Status::parse)
        .map(Status::as_str);
    let source = filter
        .source
        .as_deref()
        .filter(|s| matches!(*s, "webhook" | "plugin"));
    let search = filter
        .search
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(db::like_pattern);
    sqlx::query_as!(
        ExportSummary,
        r#"SELECT id AS "id!", source, status, pinpoint_application_id, candidate_name,
                  candidate_email, start_date, hibob_employee_id, attempts, last_error, created_at,
                  updated_at
           FROM exports
           WHERE id < ?1
             AND (?2 IS NULL OR status = ?2)
             AND (?3 IS NULL OR source = ?3)
             AND (?4 IS NULL OR candidate_name LIKE ?4 ESCAPE '\' OR candidate_email LIKE ?4 ESCAPE '\'
                  OR pinpoint_application_id LIKE ?4 ESCAPE '\' OR hibob_employee_id LIKE ?4 ESCAPE '\')
           ORDER BY id DESC
           LIMIT ?5"#,
        before,
        status,
        source,
        search,
        limit
    )
    .fetch_all(pool)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn pool() -> (tempfile::TempDir, SqlitePool) {
        let dir = tempfile::tempdir().unwrap();
        let pool = db::open(&format!("sqlite://{}/q.db", dir.path().display()))
            .await
            .unwrap();
        (dir, pool)
    }

    async fn add(pool: &SqlitePool, key: &str) -> Enqueued {
        let mut tx = db::begin_write(pool).await.unwrap();
        let e = enqueue(&mut tx, Source::Webhook, key, "7").await.unwrap();
        tx.commit().await.unwrap();
        e
    }

    #[tokio::test]
    async fn enqueue_is_idempotent_per_key() {
        let (_d, pool) = pool().await;
        let first = add(&pool, "application_hired:7").await;
        let second = add(&pool, "application_hired:7").await;
        assert!(first.created);
        assert!(!second.created);
        assert_eq!(first.export_id, second.export_id);
    }

    #[tokio::test]
    async fn claim_leases_and_a_lapsed_lease_is_taken_again() {
        let (_d, pool) = pool().await;
        let e = add(&pool, "k1").await;
        let job = claim(&pool, "w1", Duration::from_millis(50))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(job.id, e.export_id);
        assert_eq!(job.attempts, 1);
        assert!(claim(&pool, "w2", Duration::from_secs(60))
            .await
            .unwrap()
            .is_none());
        tokio::time::sleep(Duration::from_millis(80)).await;
        let again = claim(&pool, "w2", Duration::from_secs(60))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(again.attempts, 2);
        // the first worker's lease is gone: its late result is ignored
        assert!(!succeed(&pool, e.export_id, "w1").await.unwrap());
        assert!(succeed(&pool, e.export_id, "w2").await.unwrap());
        assert_eq!(
            find(&pool, e.export_id).await.unwrap().unwrap().status,
            "succeeded"
        );
    }

    #[tokio::test]
    async fn retry_later_waits_and_retry_refuses_what_is_not_stopped() {
        let (_d, pool) = pool().await;
        let e = add(&pool, "k2").await;
        claim(&pool, "w", Duration::from_secs(60))
            .await
            .unwrap()
            .unwrap();
        retry_later(
            &pool,
            e.export_id,
            "w",
            Duration::from_secs(3600),
            "HiBob 500",
        )
        .await
        .unwrap();
        assert!(
            claim(&pool, "w", Duration::from_secs(60))
                .await
                .unwrap()
                .is_none(),
            "not due yet"
        );
        let actor = Actor::system("tester");
        let err = retry(&pool, &actor, e.export_id).await.unwrap_err();
        assert!(err.to_string().contains("already waiting"), "{err}");

        let e3 = add(&pool, "k3").await;
        claim(&pool, "w", Duration::from_secs(60)).await.unwrap();
        needs_attention(&pool, e3.export_id, "w", "HiBob 400: invalid site")
            .await
            .unwrap();
        let retried = retry(&pool, &actor, e3.export_id).await.unwrap();
        assert_eq!(retried.status, "queued");
        assert_eq!(retried.attempts, 0);
        assert!(matches!(
            retry(&pool, &actor, 999).await,
            Err(QueueError::NotFound(999))
        ));
        let audit = audit::list(&pool, &Default::default()).await.unwrap();
        assert!(audit.iter().any(|a| a.action == "export.retried"));
    }

    #[tokio::test]
    async fn a_dead_process_lease_is_recovered_at_start_up() {
        let (_d, pool) = pool().await;
        let e = add(&pool, "k5").await;
        claim(&pool, "old-process", Duration::from_secs(300))
            .await
            .unwrap();
        assert!(claim(&pool, "new", Duration::from_secs(60))
            .await
            .unwrap()
            .is_none());
        assert_eq!(recover_abandoned(&pool, "new").await.unwrap(), 1);
        let job = claim(&pool, "new", Duration::from_secs(60))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((job.id, job.attempts), (e.export_id, 2));
    }

    #[tokio::test]
    async fn release_gives_the_attempt_back() {
        let (_d, pool) = pool().await;
        let e = add(&pool, "k4").await;
        claim(&pool, "w", Duration::from_secs(60)).await.unwrap();
        release(&pool, e.export_id, "w").await.unwrap();
        let job = find(&pool, e.export_id).await.unwrap().unwrap();
        assert_eq!((job.status.as_str(), job.attempts), ("queued", 0));
        assert!(next_due(&pool).await.unwrap().is_some());
    }
}

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
pub async fn begin_plugin_attempt(
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
pub async fn finish_plugin_attempt(
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

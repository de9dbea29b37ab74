//! The durable queue of exports. SQLite has no `SKIP LOCKED`, so a job is claimed by one
//! `UPDATE … RETURNING` inside `BEGIN IMMEDIATE`, with a lease: a worker that dies leaves a job
//! whose lease runs out, and the next claim takes it again.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::{SqliteConnection, SqlitePool};

use crate::{access::audit, access::users::Actor, db};

pub use super::marks::Invitation;
pub use super::status::{Source, Status};

/// The lease owners of plugin submits (a `LIKE` pattern): a submit holds its own row while
/// Pinpoint waits (`plugin_attempt`), so the worker never takes such a row over, and one whose
/// lease lapsed is settled as cut off rather than run again.
pub const SUBMIT_LEASE_OWNERS: &str = "plugin-submit:%";

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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Export {
    pub id: i64,
    pub source: String,
    pub idempotency_key: String,
    pub pinpoint_application_id: String,
    pub status: String,
    /// Attempts of the allowance in force: a retry starts it again from 0.
    pub attempts: i64,
    pub max_attempts: i64,
    /// Attempts spent before the latest retry: `earlier_attempts + attempts` in all.
    pub earlier_attempts: i64,
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

/// What an export whose attempts all ended mid-way is left saying.
pub fn exhausted_reason(attempts: i64) -> String {
    format!(
        "stopped without finishing in each of its {attempts} attempts (the process was killed or \
         ran out of memory mid-export); it is not tried again until someone retries it"
    )
}

/// Exports whose lease lapsed after their last allowed attempt: each attempt ended without a
/// result (the process died mid-export), so taking them again could crash again forever. They
/// become dead with that reason. Returns their ids, for open pages.
pub async fn bury_exhausted(pool: &SqlitePool, max_attempts: i64) -> Result<Vec<i64>, sqlx::Error> {
    let now = db::now_text();
    // asked before every claim: a plain read first, so the usual answer (none) costs no commit
    let any = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM exports
                          WHERE status = 'running' AND lease_until < ?1 AND attempts >= ?2
                            AND lease_owner NOT LIKE ?3) AS "any!: bool""#,
        now,
        max_attempts,
        SUBMIT_LEASE_OWNERS
    )
    .fetch_one(pool)
    .await?;
    if !any {
        return Ok(Vec::new());
    }
    let mut tx = db::begin_write(pool).await?;
    let exhausted = sqlx::query!(
        r#"SELECT id AS "id!", attempts FROM exports
           WHERE status = 'running' AND lease_until < ?1 AND attempts >= ?2
             AND lease_owner NOT LIKE ?3"#,
        now,
        max_attempts,
        SUBMIT_LEASE_OWNERS
    )
    .fetch_all(&mut *tx)
    .await?;
    let exhausted: Vec<(i64, i64)> = exhausted.into_iter().map(|r| (r.id, r.attempts)).collect();
    make_dead(&mut tx, &exhausted, &now).await?;
    tx.commit().await?;
    Ok(exhausted.into_iter().map(|(id, _)| id).collect())
}

/// Ends running exports (`(id, attempts)`) as dead for having had all their attempts.
async fn make_dead(
    conn: &mut SqliteConnection,
    exhausted: &[(i64, i64)],
    now: &str,
) -> Result<(), sqlx::Error> {
    for (id, attempts) in exhausted {
        let reason = exhausted_reason(*attempts);
        sqlx::query!(
            "UPDATE exports
             SET status = 'dead', last_error = ?1, lease_owner = NULL, lease_until = NULL,
                 updated_at = ?2
             WHERE id = ?3 AND status = 'running'",
            reason,
            now,
            id
        )
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Takes the next due export (or one whose lease expired while attempts remain) for `owner`,
/// counting the attempt. `max_attempts` is the setting in force, recorded on the export.
pub async fn claim(
    pool: &SqlitePool,
    owner: &str,
    lease: Duration,
    max_attempts: i64,
) -> Result<Option<Export>, sqlx::Error> {
    let now = chrono::Utc::now();
    let now_text = db::time_text(now);
    let lease_until = db::time_text(now + chrono::Duration::from_std(lease).unwrap_or_default());
    let mut tx = db::begin_write(pool).await?;
    let claimed = sqlx::query_scalar!(
        r#"UPDATE exports
           SET status = 'running', attempts = attempts + 1, lease_owner = ?1, lease_until = ?2,
               updated_at = ?3, max_attempts = MAX(?4, attempts + 1)
           WHERE id = (
               SELECT id FROM exports
               WHERE (status = 'queued' AND next_attempt_at <= ?3)
                  OR (status = 'running' AND lease_until < ?3 AND attempts < ?4
                      AND lease_owner NOT LIKE ?5)
               ORDER BY next_attempt_at, id
               LIMIT 1)
           RETURNING id AS "id!""#,
        owner,
        lease_until,
        now_text,
        max_attempts,
        SUBMIT_LEASE_OWNERS
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
                  max_attempts, earlier_attempts, next_attempt_at, candidate_name, candidate_email,
                  start_date, hibob_employee_id, cv_uploaded AS "cv_uploaded: bool",
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
    /// The attempt of the allowance in force; stored counted across retries.
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
         VALUES (?1, ?2 + COALESCE((SELECT earlier_attempts FROM exports WHERE id = ?1), 0),
                 ?3, ?4, ?5, ?6, ?7)",
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
/// database, so any lease not held by `owner` is a dead process's. Returns how many. Rows held
/// by plugin submits are not exports to resume: start-up settles those
/// (`plugin_attempt::settle_cut_off`).
/// Those that already had their last allowed attempt become dead instead: a hire that kills the
/// process would otherwise be taken again at every start.
pub async fn recover_abandoned(
    pool: &SqlitePool,
    owner: &str,
    max_attempts: i64,
) -> Result<u64, sqlx::Error> {
    let now = db::now_text();
    let mut tx = db::begin_write(pool).await?;
    let exhausted = sqlx::query!(
        r#"SELECT id AS "id!", attempts FROM exports
           WHERE status = 'running' AND lease_owner IS NOT NULL AND lease_owner NOT LIKE ?3
             AND lease_owner <> ?1 AND attempts >= ?2"#,
        owner,
        max_attempts,
        SUBMIT_LEASE_OWNERS
    )
    .fetch_all(&mut *tx)
    .await?;
    let exhausted: Vec<(i64, i64)> = exhausted.into_iter().map(|r| (r.id, r.attempts)).collect();
    make_dead(&mut tx, &exhausted, &now).await?;
    let done = sqlx::query!(
        "UPDATE exports
         SET status = 'queued', lease_owner = NULL, lease_until = NULL, next_attempt_at = ?1,
             updated_at = ?1
         WHERE status = 'running' AND lease_owner IS NOT NULL AND lease_owner NOT LIKE ?3
           AND lease_owner <> ?2",
        now,
        owner,
        SUBMIT_LEASE_OWNERS
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(done.rows_affected())
}

/// Moves the lease of running export `id` on while `owner` still holds it; false when it no
/// longer does.
pub async fn renew(
    pool: &SqlitePool,
    id: i64,
    owner: &str,
    lease: Duration,
) -> Result<bool, sqlx::Error> {
    let until =
        db::time_text(chrono::Utc::now() + chrono::Duration::from_std(lease).unwrap_or_default());
    let done = sqlx::query!(
        "UPDATE exports SET lease_until = ?1
         WHERE id = ?2 AND status = 'running' AND lease_owner = ?3",
        until,
        id,
        owner
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
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
    let row = sqlx::query!(
        "SELECT status, source, pinpoint_application_id FROM exports WHERE id = ?",
        id
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(QueueError::NotFound(id))?;
    let status = row.status;
    let erased = crate::erasure::erased_at_in(&mut tx, id).await?.is_some();
    refuse_retry(
        id,
        &status,
        &row.source,
        &row.pinpoint_application_id,
        erased,
    )?;
    let now = db::now_text();
    let current = mapping == MappingChoice::Current;
    // unpinning lets the next attempt take, and pin, the version then in force
    let pinned = sqlx::query_scalar!(
        "UPDATE exports SET status = 'queued', earlier_attempts = earlier_attempts + attempts,
                attempts = 0, next_attempt_at = ?1, updated_at = ?1,
                mapping_version = CASE WHEN ?3 THEN NULL ELSE mapping_version END
         WHERE id = ?2 RETURNING mapping_version AS \"mapping_version?: i64\"",
        now,
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
        &retried_detail(&status, mapping, pinned),
    )
    .await?;
    tx.commit().await?;
    find(pool, id).await?.ok_or(QueueError::NotFound(id))
}

/// Refuses to retry export `id` unless it stopped (needs attention, dead, resolved) and another
/// attempt has something to start from. `status` and `source` are stored codes, `erased` whether
/// its candidate's personal data was erased.
pub fn refuse_retry(
    id: i64,
    status: &str,
    source: &str,
    application_id: &str,
    erased: bool,
) -> Result<(), QueueError> {
    let why = match Status::parse(status) {
        // another attempt would fetch the erased person from Pinpoint again
        _ if erased => Some("its candidate's personal data was erased"),
        // the worker runs the webhook pipeline, which starts from the Pinpoint application: a
        // plugin export that names one is finished that way (keeping the employee and CV it
        // already has); one that names none has nothing to start from
        _ if source == "plugin" && application_id.trim().is_empty() => Some(
            "it came from Pinpoint's Send to HiBob form without naming an application, so the \
             console has nothing to read it from: submit the form again in Pinpoint",
        ),
        Some(Status::NeedsAttention | Status::Dead | Status::Resolved) => None,
        Some(Status::Succeeded) => Some("it already succeeded"),
        Some(Status::Queued) => Some("it is already waiting for its next attempt"),
        Some(Status::Running) => Some("it is running right now"),
        None => Some("its status is unknown"),
    };
    match why {
        Some(why) => Err(QueueError::NotRetryable {
            id,
            status: Status::words(status),
            why,
        }),
        None => Ok(()),
    }
}

/// The audit entry's detail for a retry of an export that was `status`, with `mapping` chosen
/// and `pinned` the version it kept (when it kept its own).
pub fn retried_detail(status: &str, mapping: MappingChoice, pinned: Option<i64>) -> String {
    let with = match (mapping == MappingChoice::Current, pinned) {
        (true, _) => "the current mapping".to_owned(),
        (false, Some(v)) => format!("its original mapping v{v}"),
        (false, None) => "the current mapping (it had none yet)".to_owned(),
    };
    format!("was {}; retried with {with}", Status::words(status))
}

/// A newer retry of this export (single or bulk) takes it over from any earlier bulk run, whose
/// cancel must then leave it alone. Beside the single retry that calls it: bulk retries build on
/// this queue, not the other way round.
pub async fn supersede(conn: &mut SqliteConnection, export_id: i64) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE bulk_retry_members SET superseded = 1 WHERE export_id = ? AND superseded = 0",
        export_id
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Counts per status, for the dashboard and metrics. Read from the counters the database keeps
/// beside the exports, so the answer costs the same at ten exports or ten million.
pub async fn counts(pool: &SqlitePool) -> Result<Vec<(String, i64)>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"SELECT status, n AS "n!: i64" FROM export_status_counts WHERE n > 0 ORDER BY status"#
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|r| (r.status, r.n)).collect())
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
        let job = claim(&pool, "w1", Duration::from_millis(50), 8)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(job.id, e.export_id);
        assert_eq!(job.attempts, 1);
        assert!(claim(&pool, "w2", Duration::from_secs(60), 8)
            .await
            .unwrap()
            .is_none());
        tokio::time::sleep(Duration::from_millis(80)).await;
        let again = claim(&pool, "w2", Duration::from_secs(60), 8)
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
    async fn a_lease_that_keeps_lapsing_is_taken_at_most_max_attempts_times() {
        let (_d, pool) = pool().await;
        let e = add(&pool, "k-crashy").await;
        for attempt in 1..=3 {
            let job = claim(&pool, "w", Duration::from_millis(20), 3)
                .await
                .unwrap()
                .expect("claimed while attempts remain");
            assert_eq!(job.attempts, attempt);
            assert_eq!(job.max_attempts, 3, "the setting in force is recorded");
            // the attempt never reports back: the process died
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
        assert!(claim(&pool, "w", Duration::from_secs(60), 3)
            .await
            .unwrap()
            .is_none());
        assert_eq!(bury_exhausted(&pool, 3).await.unwrap(), vec![e.export_id]);
        let dead = find(&pool, e.export_id).await.unwrap().unwrap();
        assert_eq!(dead.status, "dead");
        assert!(
            dead.last_error
                .as_deref()
                .is_some_and(|m| m.contains("3 attempts")),
            "{dead:?}"
        );
        assert!(bury_exhausted(&pool, 3).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_restart_does_not_resume_an_export_that_had_its_last_attempt() {
        let (_d, pool) = pool().await;
        let e = add(&pool, "k-killer").await;
        claim(&pool, "old-process", Duration::from_secs(300), 1)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(recover_abandoned(&pool, "new", 1).await.unwrap(), 0);
        assert_eq!(
            find(&pool, e.export_id).await.unwrap().unwrap().status,
            "dead"
        );
    }

    #[tokio::test]
    async fn retry_later_waits_and_retry_refuses_what_is_not_stopped() {
        let (_d, pool) = pool().await;
        let e = add(&pool, "k2").await;
        claim(&pool, "w", Duration::from_secs(60), 8)
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
            claim(&pool, "w", Duration::from_secs(60), 8)
                .await
                .unwrap()
                .is_none(),
            "not due yet"
        );
        let actor = Actor::system("tester");
        let err = retry(&pool, &actor, e.export_id).await.unwrap_err();
        assert!(err.to_string().contains("already waiting"), "{err}");

        let e3 = add(&pool, "k3").await;
        claim(&pool, "w", Duration::from_secs(60), 8).await.unwrap();
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
        let retried = audit.iter().find(|a| a.action == "export.retried").unwrap();
        assert!(
            retried
                .detail
                .starts_with("was needs attention; retried with"),
            "statuses in words, never codes: {}",
            retried.detail
        );
        assert_eq!(Status::words("needs_attention"), "needs attention");
        assert_eq!(Status::words("something_new"), "something new");
    }

    #[tokio::test]
    async fn a_dead_process_lease_is_recovered_at_start_up() {
        let (_d, pool) = pool().await;
        let e = add(&pool, "k5").await;
        claim(&pool, "old-process", Duration::from_secs(300), 8)
            .await
            .unwrap();
        assert!(claim(&pool, "new", Duration::from_secs(60), 8)
            .await
            .unwrap()
            .is_none());
        assert_eq!(recover_abandoned(&pool, "new", 8).await.unwrap(), 1);
        let job = claim(&pool, "new", Duration::from_secs(60), 8)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((job.id, job.attempts), (e.export_id, 2));
    }

    #[tokio::test]
    async fn release_gives_the_attempt_back() {
        let (_d, pool) = pool().await;
        let e = add(&pool, "k4").await;
        claim(&pool, "w", Duration::from_secs(60), 8).await.unwrap();
        release(&pool, e.export_id, "w").await.unwrap();
        let job = find(&pool, e.export_id).await.unwrap().unwrap();
        assert_eq!((job.status.as_str(), job.attempts), ("queued", 0));
        assert!(next_due(&pool).await.unwrap().is_some());
    }
    #[tokio::test]
    async fn steps_number_attempts_across_retries() {
        let (_d, pool) = pool().await;
        let e = add(&pool, "k6").await;
        let step = |attempt| StepRecord {
            attempt,
            step: "map",
            outcome: "failed",
            detail: "",
            exchanges_json: "[]",
            duration_ms: 1,
        };
        let job = claim(&pool, "w", Duration::from_secs(60), 8)
            .await
            .unwrap()
            .unwrap();
        record_step(&pool, e.export_id, &step(job.attempts))
            .await
            .unwrap();
        needs_attention(&pool, e.export_id, "w", "surname is empty")
            .await
            .unwrap();
        let retried = retry(&pool, &Actor::system("tester"), e.export_id)
            .await
            .unwrap();
        assert_eq!((retried.attempts, retried.earlier_attempts), (0, 1));
        let job = claim(&pool, "w", Duration::from_secs(60), 8)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(job.attempts, 1, "a fresh allowance");
        record_step(&pool, e.export_id, &step(job.attempts))
            .await
            .unwrap();
        let numbers: Vec<i64> = steps(&pool, e.export_id)
            .await
            .unwrap()
            .iter()
            .map(|s| s.attempt)
            .collect();
        assert_eq!(numbers, [1, 2], "the attempt after the retry is the second");
    }
}

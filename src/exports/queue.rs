//! The durable queue of exports. SQLite has no `SKIP LOCKED`, so a job is claimed by one
//! `UPDATE … RETURNING` inside `BEGIN IMMEDIATE`, with a lease: a worker that dies leaves a job
//! whose lease runs out, and the next claim takes it again.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection, SqlitePool};

use crate::{
    access::audit,
    access::users::Actor,
    db,
    filters::{self, DateRange, FilterError},
};

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
    /// Stopped, then cleared by a person or by a later successful submit: nothing to do.
    Resolved,
}

impl Status {
    pub const ALL: [Status; 6] = [
        Status::Queued,
        Status::Running,
        Status::Succeeded,
        Status::NeedsAttention,
        Status::Dead,
        Status::Resolved,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::Running => "running",
            Status::Succeeded => "succeeded",
            Status::NeedsAttention => "needs_attention",
            Status::Dead => "dead",
            Status::Resolved => "resolved",
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
            Status::Resolved => "Resolved",
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

/// What an export whose attempts all ended mid-way is left saying.
fn exhausted_reason(attempts: i64) -> String {
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
    let any: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM exports
                        WHERE status = 'running' AND lease_until < ?1 AND attempts >= ?2)",
    )
    .bind(&now)
    .bind(max_attempts)
    .fetch_one(pool)
    .await?;
    if !any {
        return Ok(Vec::new());
    }
    let mut tx = db::begin_write(pool).await?;
    let exhausted = sqlx::query!(
        r#"SELECT id AS "id!", attempts FROM exports
           WHERE status = 'running' AND lease_until < ?1 AND attempts >= ?2"#,
        now,
        max_attempts
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
                  OR (status = 'running' AND lease_until < ?3 AND attempts < ?4)
               ORDER BY next_attempt_at, id
               LIMIT 1)
           RETURNING id AS "id!""#,
        owner,
        lease_until,
        now_text,
        max_attempts
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

/// Whether an earlier attempt sent HiBob the create and may have been cut off before it heard
/// the answer or saved the employee id: the next attempt looks the e-mail up first.
pub async fn create_sent(pool: &SqlitePool, id: i64) -> Result<bool, sqlx::Error> {
    let sent: Option<Option<String>> =
        sqlx::query_scalar("SELECT create_sent_at FROM exports WHERE id = ?")
            .bind(id)
            .fetch_optional(pool)
            .await?;
    Ok(sent.flatten().is_some())
}

/// Written just before HiBob is asked to create the employee (see [`create_sent`]).
pub async fn mark_create_sent(pool: &SqlitePool, id: i64) -> Result<(), sqlx::Error> {
    let now = db::now_text();
    sqlx::query("UPDATE exports SET create_sent_at = ?1, updated_at = ?1 WHERE id = ?2")
        .bind(now)
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

/// HiBob answered the create with a refusal, so it created nobody.
pub async fn clear_create_sent(pool: &SqlitePool, id: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE exports SET create_sent_at = NULL WHERE id = ?")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

/// Where the export's onboarding invitation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invitation {
    NotSent,
    /// An attempt asked HiBob and was cut off before it heard back.
    Interrupted,
    Settled,
}

pub async fn invitation(pool: &SqlitePool, id: i64) -> Result<Invitation, sqlx::Error> {
    let row: Option<(Option<String>, Option<String>)> =
        sqlx::query_as("SELECT invite_started_at, invited_at FROM exports WHERE id = ?")
            .bind(id)
            .fetch_optional(pool)
            .await?;
    Ok(match row {
        Some((_, Some(_))) => Invitation::Settled,
        Some((Some(_), None)) => Invitation::Interrupted,
        _ => Invitation::NotSent,
    })
}

/// Written just before HiBob is asked to invite (see [`Invitation::Interrupted`]).
pub async fn mark_invite_started(pool: &SqlitePool, id: i64) -> Result<(), sqlx::Error> {
    let now = db::now_text();
    sqlx::query("UPDATE exports SET invite_started_at = ?1, updated_at = ?1 WHERE id = ?2")
        .bind(now)
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

/// HiBob answered the invitation with an error: nothing was sent, so a later attempt may ask again.
pub async fn clear_invite_started(pool: &SqlitePool, id: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE exports SET invite_started_at = NULL WHERE id = ? AND invited_at IS NULL")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

pub async fn mark_invited(pool: &SqlitePool, id: i64) -> Result<(), sqlx::Error> {
    let now = db::now_text();
    sqlx::query("UPDATE exports SET invited_at = ?1, updated_at = ?1 WHERE id = ?2")
        .bind(now)
        .bind(id)
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
           WHERE status = 'running' AND source = 'webhook' AND lease_owner IS NOT NULL
             AND lease_owner <> ?1 AND attempts >= ?2"#,
        owner,
        max_attempts
    )
    .fetch_all(&mut *tx)
    .await?;
    let exhausted: Vec<(i64, i64)> = exhausted.into_iter().map(|r| (r.id, r.attempts)).collect();
    make_dead(&mut tx, &exhausted, &now).await?;
    let done = sqlx::query!(
        "UPDATE exports
         SET status = 'queued', lease_owner = NULL, lease_until = NULL, next_attempt_at = ?1,
             updated_at = ?1
         WHERE status = 'running' AND source = 'webhook' AND lease_owner IS NOT NULL
           AND lease_owner <> ?2",
        now,
        owner
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
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
    let erased = crate::erasure::erased_at_in(&mut tx, id).await?.is_some();
    let why = match Status::parse(&status) {
        // another attempt would fetch the erased person from Pinpoint again
        _ if erased => Some("its candidate's personal data was erased"),
        // the worker runs the webhook pipeline; a plugin export is redone from Pinpoint's form
        _ if row.source == "plugin" => {
            Some("it came from Pinpoint's Send to HiBob form: submit the form again there")
        }
        Some(Status::NeedsAttention | Status::Dead | Status::Resolved) => None,
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
    supersede(&mut tx, id).await?;
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

/// Filters of the exports list. Every field is optional; text is matched literally (quotes,
/// `%` and `_` mean themselves). [`ExportFilter::check`] explains what is wrong with a filter;
/// the list and the bulk retry treat an invalid filter as matching nothing.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ExportFilter {
    pub status: Option<String>,
    pub source: Option<String>,
    /// Candidate name or email, Pinpoint application id or HiBob employee id. Three characters
    /// or more are found anywhere in those; shorter text must equal an application or employee
    /// id (a one- or two-letter fragment of a name would match too much to be useful).
    pub search: Option<String>,
    /// Created on or after this day (`YYYY-MM-DD`, UTC).
    pub created_from: Option<String>,
    /// Created on or before this day (`YYYY-MM-DD`, UTC).
    pub created_to: Option<String>,
    /// Keyset pagination: only exports listed after this one.
    pub before_id: Option<i64>,
    pub limit: Option<i64>,
}

/// Stopped webhook exports (needs attention or dead) that the list's filter matches, oldest
/// first, as (id, status, attempts): what a bulk retry takes. A filter the list would refuse
/// matches nothing, and so does one naming another status or the plugin source.
pub async fn stopped_matching(
    conn: &mut SqliteConnection,
    filter: &ExportFilter,
) -> Result<Vec<(i64, String, i64)>, sqlx::Error> {
    let Ok(criteria) = filter.criteria() else {
        return Ok(Vec::new());
    };
    let mut q = QueryBuilder::<Sqlite>::new(
        "SELECT e.id, e.status, e.attempts FROM exports AS e
         WHERE e.source = 'webhook' AND e.status IN ('needs_attention', 'dead')
           AND e.erased_at IS NULL",
    );
    criteria.push_conditions(&mut q);
    q.push(" ORDER BY e.id");
    q.build_query_as::<(i64, String, i64)>()
        .fetch_all(conn)
        .await
}

/// Search text shorter than this matches ids exactly: a trigram index needs three characters.
pub const MIN_SUBSTRING_CHARS: usize = 3;

/// Up to this many trigram candidates are fetched and sorted; past it, the list walks its index
/// in order, checking each export, and then meets a match soon. Sorting c candidates costs about
/// c row reads; the walk reads about page × total ÷ matches, so the two cost the same near
/// c = √(page × total): the threshold follows the table's size, within these bounds.
const FTS_CANDIDATES: (i64, i64) = (500, 10_000);

fn candidate_threshold(total: i64, page: i64) -> i64 {
    let balanced = ((page.max(1) as f64) * (total.max(0) as f64)).sqrt() as i64;
    balanced.clamp(FTS_CANDIDATES.0, FTS_CANDIDATES.1)
}

const SOURCES: [&str; 2] = ["webhook", "plugin"];

/// A filter checked and reduced to what the queries bind.
#[derive(Debug)]
struct Criteria {
    status: Option<&'static str>,
    source: Option<&'static str>,
    dates: DateRange,
    search: Option<Search>,
}

#[derive(Debug)]
enum Search {
    /// Found anywhere in the four columns: `like` decides; the trigrams (quoted for FTS5) only
    /// narrow the candidates.
    Text { trigrams: Vec<String>, like: String },
    /// Equal to the application id or the employee id.
    Id(String),
}

impl ExportFilter {
    /// Whether the filter makes sense, and if not, why, in words for the person who typed it.
    pub fn check(&self) -> Result<(), FilterError> {
        self.criteria().map(|_| ())
    }

    fn criteria(&self) -> Result<Criteria, FilterError> {
        let statuses = Status::ALL.map(Status::as_str);
        let search = filters::search_term(self.search.as_deref())?.map(|term| {
            if term.chars().count() < MIN_SUBSTRING_CHARS {
                Search::Id(term)
            } else {
                Search::Text {
                    trigrams: trigram_cover(&term),
                    like: db::like_pattern(&term),
                }
            }
        });
        Ok(Criteria {
            status: filters::choice("status", self.status.as_deref(), &statuses)?,
            source: filters::choice("source", self.source.as_deref(), &SOURCES)?,
            dates: DateRange::parse(self.created_from.as_deref(), self.created_to.as_deref())?,
            search,
        })
    }
}

impl Criteria {
    /// ` AND …` for every filter, on the exports table aliased `e`.
    fn push_conditions(&self, q: &mut QueryBuilder<'_, Sqlite>) {
        if let Some(status) = self.status {
            q.push(" AND e.status = ").push_bind(status);
        }
        if let Some(source) = self.source {
            q.push(" AND e.source = ").push_bind(source);
        }
        if let Some(start) = &self.dates.start {
            q.push(" AND e.created_at >= ").push_bind(start.clone());
        }
        if let Some(end) = &self.dates.end_exclusive {
            q.push(" AND e.created_at < ").push_bind(end.clone());
        }
        match &self.search {
            None => {}
            Some(Search::Id(id)) => {
                q.push(" AND (e.pinpoint_application_id = ")
                    .push_bind(id.clone())
                    .push(" OR e.hibob_employee_id = ")
                    .push_bind(id.clone())
                    .push(")");
            }
            Some(Search::Text { like, .. }) => {
                let columns = [
                    "e.candidate_name",
                    "e.candidate_email",
                    "e.pinpoint_application_id",
                    "e.hibob_employee_id",
                ];
                q.push(" AND (");
                for (i, column) in columns.into_iter().enumerate() {
                    if i > 0 {
                        q.push(" OR ");
                    }
                    q.push(column)
                        .push(" LIKE ")
                        .push_bind(like.clone())
                        .push(" ESCAPE '\\'");
                }
                q.push(")");
            }
        }
    }
}

/// The trigrams of a cover of the text (positions 0, 3, 6, … and the last), each quoted so that
/// nothing in it is FTS5 query syntax. Every export containing the text contains all of them.
fn trigram_cover(term: &str) -> Vec<String> {
    let chars: Vec<char> = term.chars().collect();
    let last = chars.len().saturating_sub(MIN_SUBSTRING_CHARS);
    let mut starts: Vec<usize> = (0..=last).step_by(MIN_SUBSTRING_CHARS).collect();
    if starts.last() != Some(&last) {
        starts.push(last);
    }
    let mut terms: Vec<String> = Vec::new();
    for start in starts {
        let trigram: String = chars[start..(start + MIN_SUBSTRING_CHARS).min(chars.len())]
            .iter()
            .collect();
        let quoted = format!("\"{}\"", trigram.replace('"', "\"\""));
        if !terms.contains(&quoted) {
            terms.push(quoted);
        }
    }
    terms
}

/// How many trigrams the index is asked for at most. Any subset still finds every match (the
/// LIKE re-check removes the rest), and each common trigram costs a walk of a posting list as
/// long as the table: ids share long runs of digits, emails share their domain.
const TRIGRAMS_ASKED: usize = 3;

/// The newest exports in which each trigram's frequency is sampled.
const TRIGRAM_SAMPLE: i64 = 5_000;

/// The newest export's id, which counts the exports closely enough (ids are handed out in order
/// and exports are seldom deleted) at the cost of one index lookup.
async fn newest_id(pool: &SqlitePool) -> Result<i64, sqlx::Error> {
    Ok(
        sqlx::query_scalar!(r#"SELECT MAX(id) AS "id?: i64" FROM exports"#)
            .fetch_one(pool)
            .await?
            .unwrap_or(0),
    )
}

/// The FTS5 query for `trigrams`: the rarest few of them, judged by how often each occurs among
/// the newest exports (a bounded, index-only count per trigram).
async fn selective_query(pool: &SqlitePool, trigrams: &[String]) -> Result<String, sqlx::Error> {
    if trigrams.len() <= TRIGRAMS_ASKED {
        return Ok(trigrams.join(" AND "));
    }
    let since = newest_id(pool).await? - TRIGRAM_SAMPLE;
    let mut counted = Vec::with_capacity(trigrams.len());
    for (position, trigram) in trigrams.iter().enumerate() {
        let n = sqlx::query_scalar!(
            r#"SELECT COUNT(*) AS "n!: i64" FROM export_search
               WHERE export_search MATCH ?1 AND rowid > ?2"#,
            trigram,
            since
        )
        .fetch_one(pool)
        .await?;
        counted.push((n, position));
    }
    counted.sort();
    let mut chosen: Vec<usize> = counted
        .into_iter()
        .take(TRIGRAMS_ASKED)
        .map(|(_, p)| p)
        .collect();
    chosen.sort();
    Ok(chosen
        .into_iter()
        .map(|p| trigrams[p].as_str())
        .collect::<Vec<_>>()
        .join(" AND "))
}

/// One line of the exports list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
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

/// Where the next page starts: the creation time of the last export shown (or, if that export
/// is gone, of the nearest older one).
async fn page_anchor(pool: &SqlitePool, before_id: i64) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar!(
        "SELECT created_at FROM exports WHERE id <= ? ORDER BY id DESC LIMIT 1",
        before_id
    )
    .fetch_optional(pool)
    .await
}

/// Newest first (by creation time, then id), a page at a time: the next page starts after the
/// last export shown, so every page costs the same however many exports there are. Each filter
/// walks its own index in list order (see the `export_search` migration); text search first asks
/// the trigram index how many exports could match, and sorts those few, or, when they are many,
/// walks the list in order checking each until the page is full.
pub async fn list(
    pool: &SqlitePool,
    filter: &ExportFilter,
) -> Result<Vec<ExportSummary>, sqlx::Error> {
    list_with(pool, filter, None).await
}

async fn list_with(
    pool: &SqlitePool,
    filter: &ExportFilter,
    threshold: Option<i64>,
) -> Result<Vec<ExportSummary>, sqlx::Error> {
    let Ok(criteria) = filter.criteria() else {
        return Ok(Vec::new());
    };
    let limit = filter.limit.unwrap_or(50).clamp(1, 200);
    let anchor = match filter.before_id {
        None => None,
        Some(before) => match page_anchor(pool, before).await? {
            Some(created_at) => Some((created_at, before)),
            None => return Ok(Vec::new()),
        },
    };
    let candidates = match &criteria.search {
        Some(Search::Text { trigrams, .. }) => {
            let fts = selective_query(pool, trigrams).await?;
            let fts_candidates = match threshold {
                Some(t) => t,
                None => candidate_threshold(newest_id(pool).await?, limit),
            };
            let n = sqlx::query_scalar!(
                r#"SELECT COUNT(*) AS "n!: i64" FROM (
                       SELECT 1 FROM export_search WHERE export_search MATCH ?1 LIMIT ?2)"#,
                fts,
                fts_candidates
            )
            .fetch_one(pool)
            .await?;
            if n == 0 {
                return Ok(Vec::new());
            }
            (n < fts_candidates).then_some(fts)
        }
        _ => None,
    };
    list_query("", &criteria, candidates.as_deref(), anchor, limit)
        .build_query_as::<ExportSummary>()
        .fetch_all(pool)
        .await
}

/// The list's query: over the trigram index's `candidates` (an FTS5 query) when they are few,
/// else along the filters' index. `prefix` lets tests ask for its plan.
fn list_query(
    prefix: &str,
    criteria: &Criteria,
    candidates: Option<&str>,
    anchor: Option<(String, i64)>,
    limit: i64,
) -> QueryBuilder<'static, Sqlite> {
    let mut q = QueryBuilder::<Sqlite>::new(prefix);
    q.push(
        "SELECT e.id, e.source, e.status, e.pinpoint_application_id, e.candidate_name, \
         e.candidate_email, e.start_date, e.hibob_employee_id, e.attempts, e.last_error, \
         e.created_at, e.updated_at FROM ",
    );
    match candidates {
        // CROSS JOIN keeps the candidates as the outer loop: the planner would otherwise walk the
        // whole list in order to avoid a sort, probing the candidates for each export
        Some(fts) => {
            q.push("(SELECT rowid AS id FROM export_search WHERE export_search MATCH ")
                .push_bind(fts.to_owned())
                .push(") AS m CROSS JOIN exports AS e ON e.id = m.id WHERE TRUE");
        }
        None => {
            q.push("exports AS e WHERE TRUE");
        }
    }
    criteria.push_conditions(&mut q);
    if let Some((created_at, before)) = anchor {
        q.push(" AND e.created_at <= ")
            .push_bind(created_at.clone())
            .push(" AND (e.created_at < ")
            .push_bind(created_at)
            .push(" OR e.id < ")
            .push_bind(before)
            .push(")");
    }
    q.push(" ORDER BY e.created_at DESC, e.id DESC LIMIT ")
        .push_bind(limit);
    q
}

/// What a bulk retry with this filter queues (none when nothing matches), for tests of the
/// filter semantics the list and the bulk retry share.
#[cfg(test)]
async fn retry_matching(
    pool: &SqlitePool,
    actor: &Actor,
    filter: &ExportFilter,
) -> Result<Vec<i64>, crate::exports::bulk_retry::BulkError> {
    match crate::exports::bulk_retry::start(pool, actor, filter).await {
        Ok(started) => Ok(started.export_ids),
        Err(crate::exports::bulk_retry::BulkError::NothingToRetry) => Ok(Vec::new()),
        Err(e) => Err(e),
    }
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
        assert!(audit.iter().any(|a| a.action == "export.retried"));
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

#[cfg(test)]
mod list_tests {
    use super::*;

    struct Row {
        name: &'static str,
        email: &'static str,
        app: &'static str,
        employee: Option<&'static str>,
        status: &'static str,
        source: &'static str,
        created: &'static str,
    }

    const ROWS: [Row; 8] = [
        Row {
            name: "Jane Doe",
            email: "jane.doe@example.org",
            app: "1001",
            employee: Some("3332883884017713238"),
            status: "succeeded",
            source: "webhook",
            created: "2026-10-01T09:00:00.000Z",
        },
        Row {
            name: "Liam O'Brien",
            email: "liam@example.org",
            app: "1002",
            employee: None,
            status: "needs_attention",
            source: "webhook",
            created: "2026-10-15T09:00:00.000Z",
        },
        Row {
            name: "Ava 50%_off",
            email: "ava@shop.example",
            app: "7",
            employee: None,
            status: "dead",
            source: "webhook",
            created: "2026-10-31T23:59:59.999Z",
        },
        Row {
            name: "Noah Smith",
            email: "noah@example.org",
            app: "1004",
            employee: Some("77"),
            status: "succeeded",
            source: "plugin",
            created: "2026-11-01T00:00:00.000Z",
        },
        Row {
            name: "Émile Zola",
            email: "emile@example.fr",
            app: "1005",
            employee: None,
            status: "queued",
            source: "webhook",
            created: "2026-11-01T00:00:00.000Z",
        },
        Row {
            name: "janet smith",
            email: "janet@example.org",
            app: "71",
            employee: None,
            status: "succeeded",
            source: "webhook",
            created: "2026-11-20T12:00:00.000Z",
        },
        Row {
            name: "Back\\slash",
            email: "bs@example.org",
            app: "1007",
            employee: None,
            status: "dead",
            source: "plugin",
            created: "2026-11-21T12:00:00.000Z",
        },
        Row {
            name: "Olivia \"Liv\" Brown",
            email: "liv@example.org",
            app: "1008",
            employee: None,
            status: "succeeded",
            source: "webhook",
            created: "2026-11-22T12:00:00.000Z",
        },
    ];

    async fn seeded() -> (tempfile::TempDir, SqlitePool) {
        let dir = tempfile::tempdir().unwrap();
        let pool = db::open(&format!("sqlite://{}/l.db", dir.path().display()))
            .await
            .unwrap();
        for (i, r) in ROWS.iter().enumerate() {
            sqlx::query(
                "INSERT INTO exports (source, idempotency_key, pinpoint_application_id, status,
                                      candidate_name, candidate_email, hibob_employee_id, created_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(r.source)
            .bind(format!("k{i}"))
            .bind(r.app)
            .bind(r.status)
            .bind(r.name)
            .bind(r.email)
            .bind(r.employee)
            .bind(r.created)
            .execute(&pool)
            .await
            .unwrap();
        }
        (dir, pool)
    }

    /// The apps of the matching exports, in list order, by both search strategies.
    async fn apps(pool: &SqlitePool, filter: ExportFilter) -> Vec<String> {
        let by_index = list_with(pool, &filter, Some(1_000)).await.unwrap();
        let by_walk = list_with(pool, &filter, Some(1)).await.unwrap();
        assert_eq!(list(pool, &filter).await.unwrap(), by_index);
        assert_eq!(
            by_index, by_walk,
            "both search strategies agree for {filter:?}"
        );
        by_index
            .into_iter()
            .map(|e| e.pinpoint_application_id)
            .collect()
    }

    fn search(text: &str) -> ExportFilter {
        ExportFilter {
            search: Some(text.into()),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn newest_first_with_every_filter() {
        let (_d, pool) = seeded().await;
        assert_eq!(
            apps(&pool, ExportFilter::default()).await,
            ["1008", "1007", "71", "1005", "1004", "7", "1002", "1001"]
        );
        let by = |status: Option<&str>, source: Option<&str>| ExportFilter {
            status: status.map(Into::into),
            source: source.map(Into::into),
            ..Default::default()
        };
        assert_eq!(apps(&pool, by(Some("dead"), None)).await, ["1007", "7"]);
        assert_eq!(
            apps(&pool, by(None, Some("plugin"))).await,
            ["1007", "1004"]
        );
        assert_eq!(apps(&pool, by(Some("dead"), Some("webhook"))).await, ["7"]);
        let october = ExportFilter {
            created_from: Some("2026-10-15".into()),
            created_to: Some("2026-10-31".into()),
            ..Default::default()
        };
        assert_eq!(
            apps(&pool, october).await,
            ["7", "1002"],
            "both days included"
        );
        let from_november = ExportFilter {
            created_from: Some("2026-11-01".into()),
            status: Some("succeeded".into()),
            ..Default::default()
        };
        assert_eq!(apps(&pool, from_november).await, ["1008", "71", "1004"]);
    }

    #[tokio::test]
    async fn search_is_literal_and_case_blind() {
        let (_d, pool) = seeded().await;
        assert_eq!(apps(&pool, search("JANE")).await, ["71", "1001"]);
        assert_eq!(apps(&pool, search("example.org")).await.len(), 6);
        assert_eq!(apps(&pool, search("o'brien")).await, ["1002"]);
        assert_eq!(apps(&pool, search("50%_")).await, ["7"]);
        assert_eq!(apps(&pool, search("0%_o")).await, ["7"]);
        assert!(apps(&pool, search("50%x")).await.is_empty());
        assert!(
            apps(&pool, search("a_a")).await.is_empty(),
            "_ is not a wildcard"
        );
        assert_eq!(apps(&pool, search("\"Liv\"")).await, ["1008"]);
        assert_eq!(apps(&pool, search("k\\s")).await, ["1007"]);
        assert_eq!(apps(&pool, search("mile zo")).await, ["1005"]);
        assert_eq!(
            apps(&pool, search("8840177")).await,
            ["1001"],
            "employee id"
        );
        assert_eq!(apps(&pool, search("100")).await.len(), 6, "application ids");
        assert!(
            apps(&pool, search("NEAR(a b)")).await.is_empty(),
            "no query syntax"
        );
        assert!(apps(&pool, search("\" OR \"")).await.is_empty());
        // shorter than three characters: an id exactly
        assert_eq!(apps(&pool, search("7")).await, ["7"]);
        assert_eq!(apps(&pool, search("77")).await, ["1004"]);
        assert!(apps(&pool, search("%")).await.is_empty());
        assert!(apps(&pool, search("_")).await.is_empty());
        let dead_smith = ExportFilter {
            status: Some("dead".into()),
            search: Some("smith".into()),
            ..Default::default()
        };
        assert!(apps(&pool, dead_smith).await.is_empty());
    }

    #[test]
    fn the_candidate_threshold_follows_the_table() {
        assert_eq!(candidate_threshold(0, 50), 500);
        assert_eq!(candidate_threshold(100_000, 50), 2_236);
        assert_eq!(candidate_threshold(1_000_000, 50), 7_071);
        assert_eq!(candidate_threshold(100_000_000, 50), 10_000);
    }

    #[tokio::test]
    async fn long_texts_ask_the_index_for_their_rarest_trigrams() {
        let (_d, pool) = seeded().await;
        let cover = trigram_cover("3332883884017713238");
        assert_eq!(cover.len(), 7);
        let asked = selective_query(&pool, &cover).await.unwrap();
        assert_eq!(
            asked.matches(" AND ").count(),
            TRIGRAMS_ASKED - 1,
            "{asked}"
        );
        assert_eq!(
            selective_query(&pool, &trigram_cover("jane"))
                .await
                .unwrap(),
            "\"jan\" AND \"ane\""
        );
        assert_eq!(trigram_cover("a\"b\"c"), ["\"a\"\"b\"", "\"b\"\"c\""]);
        assert_eq!(apps(&pool, search("3332883884017713238")).await, ["1001"]);
    }

    #[tokio::test]
    async fn pages_continue_where_the_last_ended() {
        let (_d, pool) = seeded().await;
        for filter in [ExportFilter::default(), search("example.org")] {
            let everything = apps(&pool, filter.clone()).await;
            let mut paged = Vec::new();
            let mut before = None;
            loop {
                let page = list_with(
                    &pool,
                    &ExportFilter {
                        before_id: before,
                        limit: Some(3),
                        ..filter.clone()
                    },
                    None,
                )
                .await
                .unwrap();
                let Some(last) = page.last() else { break };
                before = Some(last.id);
                paged.extend(page.into_iter().map(|e| e.pinpoint_application_id));
            }
            assert_eq!(paged, everything, "{filter:?}");
        }
        // the export a page ended on was deleted: the next page still follows on
        sqlx::query("DELETE FROM exports WHERE pinpoint_application_id = '1005'")
            .execute(&pool)
            .await
            .unwrap();
        let after = list(
            &pool,
            &ExportFilter {
                before_id: Some(5),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let after: Vec<_> = after
            .into_iter()
            .map(|e| e.pinpoint_application_id)
            .collect();
        assert_eq!(after, ["1004", "7", "1002", "1001"]);
        assert!(
            apps(&pool, search("zola")).await.is_empty(),
            "the index forgot it"
        );
    }

    #[tokio::test]
    async fn invalid_filters_are_explained_and_match_nothing() {
        let (_d, pool) = seeded().await;
        for (filter, says) in [
            (search(&"x".repeat(10 * 1024)), "at most 200"),
            (
                ExportFilter {
                    created_from: Some("31/12/2026".into()),
                    ..Default::default()
                },
                "YYYY-MM-DD",
            ),
            (
                ExportFilter {
                    created_from: Some("2026-12-01".into()),
                    created_to: Some("2026-11-01".into()),
                    ..Default::default()
                },
                "after the to date",
            ),
            (
                ExportFilter {
                    status: Some("lost".into()),
                    ..Default::default()
                },
                "needs_attention",
            ),
        ] {
            let err = filter.check().unwrap_err().to_string();
            assert!(err.contains(says), "{err}");
            assert!(list(&pool, &filter).await.unwrap().is_empty());
            let actor = Actor::system("t");
            assert!(retry_matching(&pool, &actor, &filter)
                .await
                .unwrap()
                .is_empty());
        }
    }

    #[tokio::test]
    async fn bulk_retry_uses_the_same_filter_semantics() {
        let (_d, pool) = seeded().await;
        let actor = Actor::system("t");
        let plugin = ExportFilter {
            source: Some("plugin".into()),
            ..Default::default()
        };
        assert!(retry_matching(&pool, &actor, &plugin)
            .await
            .unwrap()
            .is_empty());
        let succeeded = ExportFilter {
            status: Some("succeeded".into()),
            ..Default::default()
        };
        assert!(retry_matching(&pool, &actor, &succeeded)
            .await
            .unwrap()
            .is_empty());
        let october = ExportFilter {
            created_to: Some("2026-10-20".into()),
            ..Default::default()
        };
        assert_eq!(retry_matching(&pool, &actor, &october).await.unwrap(), [2]);
        assert_eq!(
            retry_matching(&pool, &actor, &search("50%_off"))
                .await
                .unwrap(),
            [3]
        );
        let counts = counts(&pool).await.unwrap();
        assert_eq!(
            counts,
            [
                ("dead".to_owned(), 1),
                ("queued".to_owned(), 3),
                ("succeeded".to_owned(), 4)
            ],
            "the counters follow every change"
        );
    }

    /// Every list query walks an index in list order or sorts only trigram candidates; none
    /// reads the whole table, and none sorts what an index could have given in order.
    #[tokio::test]
    async fn every_filter_has_an_index() {
        let (_d, pool) = seeded().await;
        let anchor = Some(("2026-11-01T00:00:00.000Z".to_owned(), 5));
        let days = |from: &str, to: &str| ExportFilter {
            created_from: Some(from.into()),
            created_to: Some(to.into()),
            ..Default::default()
        };
        let cases = [
            ExportFilter::default(),
            ExportFilter {
                status: Some("dead".into()),
                ..Default::default()
            },
            ExportFilter {
                source: Some("plugin".into()),
                ..Default::default()
            },
            ExportFilter {
                status: Some("queued".into()),
                source: Some("plugin".into()),
                ..Default::default()
            },
            days("2026-01-01", "2026-01-31"),
            ExportFilter {
                status: Some("dead".into()),
                ..days("2026-01-01", "2026-01-31")
            },
            ExportFilter {
                source: Some("webhook".into()),
                ..days("2026-01-01", "2026-01-31")
            },
            search("77"),
            search("example.org"),
            ExportFilter {
                status: Some("dead".into()),
                ..search("example.org")
            },
        ];
        for filter in cases {
            let criteria = filter.criteria().unwrap();
            for few in [false, true] {
                if few && !matches!(criteria.search, Some(Search::Text { .. })) {
                    continue;
                }
                for anchor in [None, anchor.clone()] {
                    let candidates = match (&criteria.search, few) {
                        (Some(Search::Text { trigrams, .. }), true) => Some(trigrams.join(" AND ")),
                        _ => None,
                    };
                    let plan: Vec<(i64, i64, i64, String)> = list_query(
                        "EXPLAIN QUERY PLAN ",
                        &criteria,
                        candidates.as_deref(),
                        anchor,
                        50,
                    )
                    .build_query_as()
                    .fetch_all(&pool)
                    .await
                    .unwrap();
                    let plan: Vec<String> = plan.into_iter().map(|r| r.3).collect();
                    let text = plan.join(" | ");
                    assert!(
                        !plan.iter().any(|l| l == "SCAN e"),
                        "{filter:?} reads every export: {text}"
                    );
                    let sorts = text.contains("TEMP B-TREE");
                    let id_lookup = matches!(criteria.search, Some(Search::Id(_)));
                    assert_eq!(sorts, few || id_lookup, "{filter:?}: {text}");
                    if few {
                        assert!(
                            text.starts_with("SCAN export_search VIRTUAL TABLE"),
                            "{text}"
                        );
                    }
                }
            }
        }
    }
}

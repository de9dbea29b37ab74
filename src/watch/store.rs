//! The watched hires (`hire_watches`): which are due, what the last check found, and what people
//! decided.

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;
use sqlx::{SqliteConnection, SqlitePool};

use super::Change;
use crate::db;

/// A watch as the checks and the pages read it.
#[derive(Debug, Clone, PartialEq)]
pub struct Watch {
    pub export_id: i64,
    pub employee_id: String,
    pub mapping_version: i64,
    pub application_id: String,
    pub source: String,
    pub export_created_at: String,
    pub baseline: Option<Value>,
    pub start_date: Option<String>,
    pub watch_until: String,
    pub next_check_at: String,
    pub checked_at: Option<String>,
    pub check_error: Option<String>,
    pub changes: Vec<Change>,
    pub hired: bool,
    pub hire_note: Option<String>,
    pub decision: Option<String>,
    pub decided_by: Option<String>,
    pub decided_at: Option<String>,
    pub stopped_at: Option<String>,
}

/// A succeeded export that kept what it sent and is not watched yet.
#[derive(Debug, Clone)]
pub struct Unwatched {
    pub export_id: i64,
    pub employee_id: String,
    pub mapping_version: i64,
    pub source: String,
    pub start_date: Option<String>,
    pub created_at: String,
    pub sent_body: String,
}

pub async fn unwatched(pool: &SqlitePool, limit: i64) -> Result<Vec<Unwatched>, sqlx::Error> {
    sqlx::query_as!(
        Unwatched,
        r#"SELECT e.id AS "export_id!", e.hibob_employee_id AS "employee_id!",
                  e.mapping_version AS "mapping_version!", e.source, e.start_date,
                  e.created_at, e.sent_body AS "sent_body!"
           FROM exports e
           WHERE e.status = 'succeeded' AND e.sent_body IS NOT NULL
             AND e.hibob_employee_id IS NOT NULL AND e.mapping_version IS NOT NULL
             AND e.erased_at IS NULL AND trim(e.pinpoint_application_id) <> ''
             AND NOT EXISTS (SELECT 1 FROM hire_watches w WHERE w.export_id = e.id)
           ORDER BY e.id LIMIT ?"#,
        limit
    )
    .fetch_all(pool)
    .await
}

/// Starts watching: `baseline` is what the mapping made of the application at the export, when
/// that is what was sent.
pub async fn begin(
    pool: &SqlitePool,
    from: &Unwatched,
    baseline: Option<&str>,
    until: NaiveDate,
    first_check: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let now = db::now_text();
    let until = until.to_string();
    let first = db::time_text(first_check);
    sqlx::query!(
        "INSERT INTO hire_watches (export_id, employee_id, mapping_version, baseline, start_date,
                                   watch_until, next_check_at, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)
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
    .execute(pool)
    .await?;
    Ok(())
}

/// A watch as its columns hold it (the baseline and the changes as JSON text).
pub struct WatchRow {
    pub export_id: i64,
    pub employee_id: String,
    pub mapping_version: i64,
    pub application_id: String,
    pub source: String,
    pub export_created_at: String,
    pub baseline: Option<String>,
    pub start_date: Option<String>,
    pub watch_until: String,
    pub next_check_at: String,
    pub checked_at: Option<String>,
    pub check_error: Option<String>,
    pub changes: String,
    pub hired: bool,
    pub hire_note: Option<String>,
    pub decision: Option<String>,
    pub decided_by: Option<String>,
    pub decided_at: Option<String>,
    pub stopped_at: Option<String>,
}

impl From<WatchRow> for Watch {
    fn from(r: WatchRow) -> Self {
        Watch {
            export_id: r.export_id,
            employee_id: r.employee_id,
            mapping_version: r.mapping_version,
            application_id: r.application_id,
            source: r.source,
            export_created_at: r.export_created_at,
            baseline: r.baseline.and_then(|b| serde_json::from_str(&b).ok()),
            start_date: r.start_date,
            watch_until: r.watch_until,
            next_check_at: r.next_check_at,
            checked_at: r.checked_at,
            check_error: r.check_error,
            changes: serde_json::from_str(&r.changes).unwrap_or_default(),
            hired: r.hired,
            hire_note: r.hire_note,
            decision: r.decision,
            decided_by: r.decided_by,
            decided_at: r.decided_at,
            stopped_at: r.stopped_at,
        }
    }
}

pub async fn find(
    conn: &mut SqliteConnection,
    export_id: i64,
) -> Result<Option<Watch>, sqlx::Error> {
    let row = sqlx::query_as!(
        WatchRow,
        r#"SELECT w.export_id, w.employee_id, w.mapping_version,
                  e.pinpoint_application_id AS application_id, e.source,
                  e.created_at AS export_created_at, w.baseline, w.start_date, w.watch_until,
                  w.next_check_at, w.checked_at, w.check_error, w.changes,
                  w.hired AS "hired: bool", w.hire_note, w.decision, w.decided_by, w.decided_at,
                  w.stopped_at
           FROM hire_watches w JOIN exports e ON e.id = w.export_id
           WHERE w.export_id = ?"#,
        export_id
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(Watch::from))
}

/// When a lease of `lease` taken at `now` ends, as stored.
pub fn lease_end(now: DateTime<Utc>, lease: std::time::Duration) -> String {
    db::time_text(now + chrono::Duration::from_std(lease).unwrap_or_default())
}

/// Open changes as stored: the JSON list and how many.
pub fn changes_text(changes: &[Change]) -> (String, i64) {
    (
        serde_json::to_string(changes).unwrap_or_else(|_| "[]".into()),
        i64::try_from(changes.len()).unwrap_or(i64::MAX),
    )
}

/// A failed check's error as stored: at most 500 characters.
pub fn check_error_text(error: &str) -> String {
    error.chars().take(500).collect()
}

/// Takes the watch that has been due longest, under a lease so no other check runs it at once.
pub async fn claim_due(
    pool: &SqlitePool,
    now: DateTime<Utc>,
    lease: std::time::Duration,
) -> Result<Option<i64>, sqlx::Error> {
    let now_text = db::time_text(now);
    let until = lease_end(now, lease);
    let mut tx = db::begin_write(pool).await?;
    let due = sqlx::query_scalar!(
        r#"SELECT export_id AS "export_id!" FROM hire_watches
           WHERE stopped_at IS NULL AND next_check_at <= ?1
             AND (lease_until IS NULL OR lease_until < ?1)
           ORDER BY next_check_at LIMIT 1"#,
        now_text
    )
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(id) = due {
        sqlx::query!(
            "UPDATE hire_watches SET lease_until = ? WHERE export_id = ?",
            until,
            id
        )
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(due)
}

/// Whether an export is due or running: checks wait for them.
pub async fn exports_waiting(pool: &SqlitePool, now: DateTime<Utc>) -> Result<bool, sqlx::Error> {
    let now = db::time_text(now);
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM exports
                          WHERE status = 'running'
                             OR (status = 'queued' AND next_attempt_at <= ?)) AS "waiting!: bool""#,
        now
    )
    .fetch_one(pool)
    .await
}

/// How many watches are due now (for the dashboard and the metrics).
pub async fn due_count(pool: &SqlitePool, now: DateTime<Utc>) -> Result<i64, sqlx::Error> {
    let now = db::time_text(now);
    sqlx::query_scalar!(
        r#"SELECT COUNT(*) AS "n!: i64" FROM hire_watches
           WHERE stopped_at IS NULL AND next_check_at <= ?"#,
        now
    )
    .fetch_one(pool)
    .await
}

/// What one check found.
#[derive(Debug, Clone)]
pub struct Checked<'a> {
    pub baseline: &'a Value,
    pub changes: &'a [Change],
    pub start_date: Option<&'a str>,
    /// The last day to watch, moved with the start date.
    pub watch_until: Option<&'a str>,
    pub hired: bool,
    pub hire_note: Option<&'a str>,
    pub next_check_at: DateTime<Utc>,
}

pub async fn save_check(
    conn: &mut SqliteConnection,
    export_id: i64,
    found: &Checked<'_>,
) -> Result<(), sqlx::Error> {
    let now = db::now_text();
    let baseline = found.baseline.to_string();
    let (changes, count) = changes_text(found.changes);
    let next = db::time_text(found.next_check_at);
    sqlx::query!(
        "UPDATE hire_watches
         SET baseline = ?1, changes = ?2, change_count = ?3,
             start_date = COALESCE(?4, start_date), watch_until = COALESCE(?10, watch_until),
             hired = ?5, hire_note = ?6,
             decision = CASE WHEN ?5 = hired THEN decision END,
             decided_by = CASE WHEN ?5 = hired THEN decided_by END,
             decided_at = CASE WHEN ?5 = hired THEN decided_at END,
             next_check_at = ?7, checked_at = ?8, check_error = NULL, lease_until = NULL,
             updated_at = ?8
         WHERE export_id = ?9",
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
    .execute(conn)
    .await?;
    Ok(())
}

/// A check that could not finish: tried again at `next`.
pub async fn check_failed(
    pool: &SqlitePool,
    export_id: i64,
    error: &str,
    next: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let now = db::now_text();
    let next = db::time_text(next);
    let error = check_error_text(error);
    sqlx::query!(
        "UPDATE hire_watches
         SET check_error = ?1, next_check_at = ?2, checked_at = ?3, lease_until = NULL,
             updated_at = ?3
         WHERE export_id = ?4",
        error,
        next,
        now,
        export_id
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// The open changes and the baseline after some were applied or set aside.
pub async fn settle(
    conn: &mut SqliteConnection,
    export_id: i64,
    baseline: &Value,
    changes: &[Change],
) -> Result<(), sqlx::Error> {
    let now = db::now_text();
    let baseline = baseline.to_string();
    let (left, count) = changes_text(changes);
    sqlx::query!(
        "UPDATE hire_watches SET baseline = ?1, changes = ?2, change_count = ?3, updated_at = ?4
         WHERE export_id = ?5",
        baseline,
        left,
        count,
        now,
        export_id
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Asks for a check as soon as the pacing allows (a repeated hire webhook, "Check now").
pub async fn check_soon(conn: &mut SqliteConnection, export_id: i64) -> Result<bool, sqlx::Error> {
    let now = db::now_text();
    let done = sqlx::query!(
        "UPDATE hire_watches SET next_check_at = ?1, updated_at = ?1
         WHERE export_id = ?2 AND stopped_at IS NULL AND next_check_at > ?1",
        now,
        export_id
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Records a person's decision about a hire that fell through.
pub async fn decide(
    conn: &mut SqliteConnection,
    export_id: i64,
    decision: &str,
    by: &str,
) -> Result<bool, sqlx::Error> {
    let now = db::now_text();
    let done = sqlx::query!(
        "UPDATE hire_watches SET decision = ?1, decided_by = ?2, decided_at = ?3, updated_at = ?3
         WHERE export_id = ?4 AND hired = 0",
        decision,
        by,
        now,
        export_id
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Ends watching: no more checks, and the copies of the record it kept are dropped.
pub async fn stop(conn: &mut SqliteConnection, export_id: i64) -> Result<(), sqlx::Error> {
    let now = db::now_text();
    sqlx::query!(
        "UPDATE hire_watches
         SET stopped_at = ?1, baseline = NULL, changes = '[]', change_count = 0,
             lease_until = NULL, updated_at = ?1
         WHERE export_id = ?2",
        now,
        export_id
    )
    .execute(&mut *conn)
    .await?;
    crate::exports::sent::forget(conn, export_id).await
}

/// A hire the dashboard lists: changed since export, or no longer hired and undecided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flagged {
    pub export_id: i64,
    pub candidate_name: Option<String>,
    pub start_date: Option<String>,
    pub change_count: i64,
    pub summary: String,
    pub hired: bool,
    pub hire_note: Option<String>,
}

/// The flagged hires, those starting soonest first (unknown start dates last).
pub async fn flagged(pool: &SqlitePool, limit: i64) -> Result<Vec<Flagged>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"SELECT w.export_id AS "export_id!", e.candidate_name, w.start_date, w.change_count,
                  w.changes,
                  w.hired AS "hired: bool", w.hire_note
           FROM hire_watches w JOIN exports e ON e.id = w.export_id
           WHERE (w.change_count > 0 OR (w.hired = 0 AND w.decision IS NULL))
             AND w.stopped_at IS NULL
           ORDER BY w.start_date IS NULL, w.start_date, w.export_id
           LIMIT ?"#,
        limit
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            Flagged::from(FlaggedRow {
                export_id: r.export_id,
                candidate_name: r.candidate_name,
                start_date: r.start_date,
                change_count: r.change_count,
                changes: r.changes,
                hired: r.hired,
                hire_note: r.hire_note,
            })
        })
        .collect())
}

/// A flagged hire as its columns hold it (the changes as JSON text).
pub struct FlaggedRow {
    pub export_id: i64,
    pub candidate_name: Option<String>,
    pub start_date: Option<String>,
    pub change_count: i64,
    pub changes: String,
    pub hired: bool,
    pub hire_note: Option<String>,
}

impl From<FlaggedRow> for Flagged {
    fn from(r: FlaggedRow) -> Self {
        let changes: Vec<Change> = serde_json::from_str(&r.changes).unwrap_or_default();
        Flagged {
            export_id: r.export_id,
            candidate_name: r.candidate_name,
            start_date: r.start_date,
            change_count: r.change_count,
            summary: super::summary(&changes),
            hired: r.hired,
            hire_note: r.hire_note,
        }
    }
}

/// Watches past their last day, to stop.
pub async fn ended(pool: &SqlitePool, today: NaiveDate) -> Result<Vec<i64>, sqlx::Error> {
    let today = today.to_string();
    sqlx::query_scalar!(
        r#"SELECT export_id AS "export_id!" FROM hire_watches
           WHERE stopped_at IS NULL AND watch_until < ? LIMIT 500"#,
        today
    )
    .fetch_all(pool)
    .await
}

/// The export of an application, if its hire is watched.
pub async fn for_application(
    conn: &mut SqliteConnection,
    application_id: &str,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT w.export_id AS "export_id!" FROM hire_watches w
           JOIN exports e ON e.id = w.export_id
           WHERE e.pinpoint_application_id = ? AND w.stopped_at IS NULL
           ORDER BY w.export_id DESC LIMIT 1"#,
        application_id
    )
    .fetch_optional(conn)
    .await
}

//! The plugin's hold on its export row: a submit takes the row over (one per e-mail) and writes
//! its result, so resubmits share the employee, the CV and the timeline of earlier ones.
//!
//! A submit holds its row under a lease, as the worker holds a claimed export, renewed while it
//! runs ([`hold`]). A submit cut off (the process killed, the request abandoned) stops renewing:
//! its row is settled as needing attention once the lease lapses, or at once when the next
//! process starts ([`settle_cut_off`]). The worker never claims a row a submit holds.

use std::{sync::OnceLock, time::Duration};

use sqlx::SqlitePool;

use super::queue::{Status, SUBMIT_LEASE_OWNERS};
use crate::db;

/// How long a submit's hold lasts without renewal. Longer than a submit's calls take with the
/// clients' timeouts, and renewed four times in it while the submit runs.
pub const LEASE: Duration = Duration::from_secs(120);

/// What a row left by a cut-off submit says.
pub const CUT_OFF: &str = "the submit was cut off before it finished (the console stopped, or \
                           the request was abandoned), so what reached HiBob is not known: \
                           retry it here to finish it from the Pinpoint application, or submit \
                           the form in Pinpoint again";

/// The lease owner of every submit this process runs: the process's name, told apart from the
/// worker's leases by its prefix.
pub fn owner() -> &'static str {
    static OWNER: OnceLock<String> = OnceLock::new();
    OWNER.get_or_init(|| {
        let prefix = SUBMIT_LEASE_OWNERS.trim_end_matches('%');
        format!("{prefix}{}", crate::instance::id())
    })
}

pub use crate::instance::random_suffix;

/// When a hold taken or renewed now lapses.
pub fn lease_until() -> String {
    db::time_text(chrono::Utc::now() + chrono::Duration::from_std(LEASE).unwrap_or_default())
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
/// The row is marked `running` under this process's submit lease ([`owner`]); the worker does
/// not claim rows held by a submit, lapsed or not, so a plugin export, which the submit itself
/// carries out while Pinpoint waits, is never run twice at once.
pub async fn begin(
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
    let (owner, until) = (owner(), lease_until());
    let attempt = match existing {
        Some(row) => {
            sqlx::query!(
                "UPDATE exports
                 SET status = 'running', attempts = attempts + 1, lease_owner = ?4,
                     lease_until = ?5, next_attempt_at = ?1, updated_at = ?1,
                     pinpoint_application_id = CASE WHEN ?2 <> '' THEN ?2
                                                    ELSE pinpoint_application_id END
                 WHERE id = ?3",
                now,
                application_id,
                row.id,
                owner,
                until
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
                                        attempts, max_attempts, lease_owner, lease_until)
                   VALUES ('plugin', ?, ?, 'running', 1, 1, ?, ?)
                   RETURNING id AS "id!""#,
                idempotency_key,
                application_id,
                owner,
                until
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
pub async fn finish(
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

/// Runs `work` (a submit's steps on row `id`) while renewing the row's lease, so a long submit
/// keeps its row and one that is cut off (dropped with this future) lets it lapse. A renewal
/// that fails is tried again at the next tick; once the lease is known to be gone (the row was
/// settled as cut off) or cannot have been renewed in time, the submit makes no further outside
/// call (see [`crate::lease`]), and at worst its row is settled as cut off before the submit
/// writes its real result over that.
pub async fn hold<F: std::future::Future>(
    attempts: &dyn super::PluginAttempts,
    id: i64,
    work: F,
) -> F::Output {
    let hold = crate::lease::Hold::new();
    let work = hold.clone().scope(work);
    tokio::pin!(work);
    let mut renew = tokio::time::interval(LEASE / 4);
    // the first tick is at once, and the lease was just taken
    renew.tick().await;
    let mut renewed = std::time::Instant::now();
    loop {
        tokio::select! {
            done = &mut work => return done,
            _ = renew.tick() => {
                match attempts.renew(id).await {
                    Ok(true) => renewed = std::time::Instant::now(),
                    Ok(false) => {
                        tracing::warn!(export_id = id, "a plugin submit lost its lease; it sends nothing more");
                        hold.lose();
                    }
                    Err(e) => {
                        tracing::warn!(export_id = id, error = %e, "could not renew a plugin submit's lease");
                        if renewed.elapsed() + LEASE / 4 >= LEASE {
                            hold.lose();
                        }
                    }
                }
            }
        }
    }
}

/// Moves a running submit's lease on, while this process still holds it.
pub async fn renew(pool: &SqlitePool, id: i64) -> Result<bool, sqlx::Error> {
    let until = lease_until();
    let owner = owner();
    let done = sqlx::query!(
        "UPDATE exports SET lease_until = ? WHERE id = ? AND lease_owner = ?
           AND status = 'running'",
        until,
        id,
        owner
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Settles the rows of submits that were cut off: those whose lease lapsed and, at start-up
/// (`at_start`), every row held by another process's submits, since one console process serves a
/// database. They need attention with [`CUT_OFF`] as the reason. Returns their ids.
pub async fn settle_cut_off(pool: &SqlitePool, at_start: bool) -> Result<Vec<i64>, sqlx::Error> {
    let now = db::now_text();
    let own = if at_start { Some(owner()) } else { None };
    // asked before every claim: a plain read first, so the usual answer (none) costs no commit
    let any = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM exports
                          WHERE status = 'running' AND lease_owner LIKE ?1
                            AND (lease_until < ?2 OR lease_owner <> ?3)) AS "any!: bool""#,
        SUBMIT_LEASE_OWNERS,
        now,
        own
    )
    .fetch_one(pool)
    .await?;
    if !any {
        return Ok(Vec::new());
    }
    let mut tx = db::begin_write(pool).await?;
    let settled = sqlx::query_scalar!(
        r#"UPDATE exports
           SET status = 'needs_attention', last_error = ?4, lease_owner = NULL,
               lease_until = NULL, next_attempt_at = ?2, updated_at = ?2
           WHERE status = 'running' AND lease_owner LIKE ?1
             AND (lease_until < ?2 OR lease_owner <> ?3)
           RETURNING id AS "id!""#,
        SUBMIT_LEASE_OWNERS,
        now,
        own,
        CUT_OFF
    )
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(settled)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::exports::queue;

    async fn pool() -> (tempfile::TempDir, SqlitePool) {
        let dir = tempfile::tempdir().unwrap();
        let pool = db::open(&format!("sqlite://{}/p.db", dir.path().display()))
            .await
            .unwrap();
        (dir, pool)
    }

    async fn lapse(pool: &SqlitePool, id: i64) {
        sqlx::query("UPDATE exports SET lease_until = '2000-01-01T00:00:00.000Z' WHERE id = ?")
            .bind(id)
            .execute(pool)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_submit_holds_its_row_and_a_lapsed_hold_is_settled_not_claimed() {
        let (_d, pool) = pool().await;
        let held = begin(&pool, "plugin:ada@example.com", "7").await.unwrap();
        let row: (Option<String>, Option<String>) =
            sqlx::query_as("SELECT lease_owner, lease_until FROM exports WHERE id = ?")
                .bind(held.export_id)
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(row.0.as_deref(), Some(owner()));
        assert!(row.1.is_some());
        // a live hold is nobody's to settle
        assert!(settle_cut_off(&pool, false).await.unwrap().is_empty());
        assert!(settle_cut_off(&pool, true).await.unwrap().is_empty());

        lapse(&pool, held.export_id).await;
        assert!(
            queue::claim(&pool, "worker", Duration::from_secs(60), 8)
                .await
                .unwrap()
                .is_none(),
            "the worker never runs a submit's row"
        );
        assert!(queue::bury_exhausted(&pool, 1).await.unwrap().is_empty());
        assert_eq!(
            settle_cut_off(&pool, false).await.unwrap(),
            vec![held.export_id]
        );
        let row = queue::find(&pool, held.export_id).await.unwrap().unwrap();
        assert_eq!(row.status, "needs_attention");
        assert_eq!(row.last_error.as_deref(), Some(CUT_OFF));
    }

    #[tokio::test]
    async fn at_start_the_rows_of_another_process_submits_are_settled_at_once() {
        let (_d, pool) = pool().await;
        let held = begin(&pool, "plugin:ada@example.com", "").await.unwrap();
        sqlx::query("UPDATE exports SET lease_owner = 'plugin-submit:pid-1-gone'")
            .execute(&pool)
            .await
            .unwrap();
        assert!(settle_cut_off(&pool, false).await.unwrap().is_empty());
        assert_eq!(
            queue::recover_abandoned(&pool, "worker", 8).await.unwrap(),
            0,
            "not an export to resume"
        );
        assert_eq!(
            settle_cut_off(&pool, true).await.unwrap(),
            vec![held.export_id]
        );
        // without an application there is nothing for the worker to start from
        let actor = crate::access::users::Actor::system("tester");
        let refused = queue::retry(&pool, &actor, held.export_id)
            .await
            .unwrap_err();
        assert!(
            refused
                .to_string()
                .contains("without naming an application"),
            "{refused}"
        );
    }
}

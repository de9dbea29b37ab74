//! Bulk retries on PostgreSQL: queuing every stopped export a filter selects as one run,
//! cancelling what of it the worker has not started, and following it.

use integration::{
    access::audit::Actor,
    db,
    exports::{
        bulk_retry::{
            cancelled_detail, recent_limit, run_target, shown_filter, started_detail, BulkError,
            Progress, Started, CANCELLED_ACTION, STARTED_ACTION,
        },
        search::ExportFilter,
        storage::BulkRetries,
    },
};
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder};

use crate::{
    audit,
    conflict::{aborted, again_on_conflict},
    search::{push_conditions, Text},
    PgStore,
};

/// The transaction lock of bulk runs ("bulkrtry" in ASCII).
const BULK_RUNS_LOCK: i64 = 0x6275_6c6b_7274_7279;

/// An export a bulk retry would take, as it is now.
#[derive(Debug, sqlx::FromRow)]
struct Candidate {
    id: i64,
    status: String,
    attempts: i64,
}

/// Stopped exports (needs attention or dead) that the list's filter matches and a retry can
/// finish, oldest first: every webhook export and every plugin export that names its Pinpoint
/// application, unless erased. A filter the list would refuse matches nothing. With `lock`, the
/// exports are locked for the transaction, in id order, and one changed meanwhile by another
/// transaction is taken only if it still matches once that one committed.
async fn stopped_matching(
    conn: &mut PgConnection,
    filter: &ExportFilter,
    lock: bool,
) -> Result<Vec<Candidate>, sqlx::Error> {
    let Ok(criteria) = filter.criteria() else {
        return Ok(Vec::new());
    };
    let mut q = QueryBuilder::<Postgres>::new(
        "SELECT e.id, e.status, e.attempts FROM exports AS e
         WHERE (e.source = 'webhook' OR trim(e.pinpoint_application_id) <> '')
           AND e.status IN ('needs_attention', 'dead') AND e.erased_at IS NULL",
    );
    push_conditions(&criteria, Text::Indexed, &mut q);
    q.push(" ORDER BY e.id");
    if lock {
        // a run changes what it reads here; in id order, so that runs and other writers of
        // several exports wait for each other instead of deadlocking
        q.push(" FOR UPDATE");
    }
    q.build_query_as::<Candidate>().fetch_all(conn).await
}

/// Takes the lock of bulk runs for the rest of the transaction.
async fn lock_runs(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    // start and cancel each read a run's many members and then change them: one run at a time
    sqlx::query!("SELECT pg_advisory_xact_lock($1)", BULK_RUNS_LOCK)
        .execute(conn)
        .await?;
    Ok(())
}

/// Locks the status counters of `statuses` (those that exist), in status order.
async fn lock_counters(conn: &mut PgConnection, statuses: &[String]) -> Result<(), sqlx::Error> {
    // The counter trigger locks two counters per changed export; over many exports of two
    // statuses it would take them out of order against a single update running at once.
    sqlx::query!(
        "SELECT status FROM export_status_counts WHERE status = ANY($1) ORDER BY status
         FOR UPDATE",
        statuses
    )
    .fetch_all(conn)
    .await?;
    Ok(())
}

/// The statuses `exports` leave and `queued`, without repeats.
fn touched(mut statuses: Vec<String>) -> Vec<String> {
    statuses.push("queued".to_owned());
    statuses.sort();
    statuses.dedup();
    statuses
}

fn bulk_aborted(e: &BulkError) -> bool {
    matches!(e, BulkError::Db(e) if aborted(e))
}

async fn start(pool: &PgPool, actor: &Actor, filter: &ExportFilter) -> Result<Started, BulkError> {
    let mut tx = pool.begin().await?;
    lock_runs(&mut tx).await?;
    let members = stopped_matching(&mut tx, filter, true).await?;
    if members.is_empty() {
        return Err(BulkError::NothingToRetry);
    }
    lock_counters(
        &mut tx,
        &touched(members.iter().map(|m| m.status.clone()).collect()),
    )
    .await?;
    let filter_json = shown_filter(filter);
    let now = db::now_text();
    let run_id = sqlx::query_scalar!(
        "INSERT INTO bulk_retries (actor_id, actor_email, filter, created_at)
         VALUES ($1, $2, $3, $4) RETURNING id",
        actor.id,
        actor.email,
        filter_json,
        now
    )
    .fetch_one(&mut *tx)
    .await?;
    let export_ids: Vec<i64> = members.iter().map(|m| m.id).collect();
    let statuses: Vec<String> = members.iter().map(|m| m.status.clone()).collect();
    let attempts: Vec<i64> = members.iter().map(|m| m.attempts).collect();
    // this run takes them over from any earlier one (as a single retry does)
    sqlx::query!(
        "UPDATE bulk_retry_members SET superseded = true
         WHERE export_id = ANY($1) AND NOT superseded",
        &export_ids
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "INSERT INTO bulk_retry_members
             (bulk_retry_id, export_id, previous_status, previous_attempts, previous_mapping_version)
         SELECT $1, e.id, m.status, m.attempts, e.mapping_version
         FROM unnest($2::bigint[], $3::text[], $4::bigint[]) AS m (id, status, attempts)
         JOIN exports AS e ON e.id = m.id",
        run_id,
        &export_ids,
        &statuses,
        &attempts
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "UPDATE exports SET status = 'queued', earlier_attempts = earlier_attempts + attempts,
                attempts = 0, next_attempt_at = $1, updated_at = $1, mapping_version = NULL
         WHERE id IN (SELECT export_id FROM bulk_retry_members WHERE bulk_retry_id = $2)",
        now,
        run_id
    )
    .execute(&mut *tx)
    .await?;
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

async fn cancel(pool: &PgPool, actor: &Actor, run_id: i64) -> Result<Vec<i64>, BulkError> {
    let mut tx = pool.begin().await?;
    lock_runs(&mut tx).await?;
    let cancelled_at = sqlx::query_scalar!(
        "SELECT cancelled_at FROM bulk_retries WHERE id = $1",
        run_id
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(BulkError::NotFound(run_id))?;
    if cancelled_at.is_some() {
        return Err(BulkError::AlreadyCancelled(run_id));
    }
    // queued with no attempt spent: claimed never, or handed back uncounted (HiBob's rate
    // limit). Locked so that the worker cannot take one between this check and its put-back.
    let waiting = sqlx::query!(
        r#"SELECT e.id, m.previous_status FROM bulk_retry_members AS m
           JOIN exports AS e ON e.id = m.export_id
           WHERE m.bulk_retry_id = $1 AND NOT m.superseded AND m.cancelled = 0
             AND e.status = 'queued' AND e.attempts = 0
           ORDER BY e.id
           FOR UPDATE OF e"#,
        run_id
    )
    .fetch_all(&mut *tx)
    .await?;
    if waiting.is_empty() {
        return Err(BulkError::NothingToCancel(run_id));
    }
    let restored: Vec<i64> = waiting.iter().map(|w| w.id).collect();
    lock_counters(
        &mut tx,
        &touched(waiting.into_iter().map(|w| w.previous_status).collect()),
    )
    .await?;
    sqlx::query!(
        "UPDATE bulk_retry_members SET cancelled = 1
         WHERE bulk_retry_id = $1 AND export_id = ANY($2)",
        run_id,
        &restored
    )
    .execute(&mut *tx)
    .await?;
    let now = db::now_text();
    sqlx::query!(
        "UPDATE exports
         SET status = m.previous_status, attempts = m.previous_attempts,
             earlier_attempts = GREATEST(exports.earlier_attempts - m.previous_attempts, 0),
             mapping_version = m.previous_mapping_version, updated_at = $1
         FROM bulk_retry_members AS m
         WHERE m.bulk_retry_id = $2 AND m.export_id = exports.id AND exports.id = ANY($3)",
        now,
        run_id,
        &restored
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "UPDATE bulk_retries SET cancelled_at = $1, cancelled_by = $2 WHERE id = $3",
        now,
        actor.email,
        run_id
    )
    .execute(&mut *tx)
    .await?;
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

#[async_trait::async_trait]
impl BulkRetries for PgStore {
    async fn preview(&self, filter: &ExportFilter) -> Result<usize, sqlx::Error> {
        let mut conn = self.pool.acquire().await?;
        Ok(stopped_matching(&mut conn, filter, false).await?.len())
    }

    async fn start(&self, actor: &Actor, filter: &ExportFilter) -> Result<Started, BulkError> {
        again_on_conflict(bulk_aborted, || start(&self.pool, actor, filter)).await
    }

    async fn cancel(&self, actor: &Actor, run_id: i64) -> Result<Vec<i64>, BulkError> {
        again_on_conflict(bulk_aborted, || cancel(&self.pool, actor, run_id)).await
    }

    async fn stopped_again(&self, run_id: i64) -> Result<Vec<i64>, sqlx::Error> {
        sqlx::query_scalar!(
            "SELECT e.id FROM bulk_retry_members AS m
             JOIN exports AS e ON e.id = m.export_id
             WHERE m.bulk_retry_id = $1 AND NOT m.superseded AND m.cancelled = 0
               AND e.status IN ('needs_attention', 'dead')
             ORDER BY e.id",
            run_id
        )
        .fetch_all(&self.pool)
        .await
    }

    async fn recent(&self, limit: i64) -> Result<Vec<Progress>, sqlx::Error> {
        let limit = recent_limit(limit);
        sqlx::query_as!(
            Progress,
            r#"SELECT r.id AS "id!", r.actor_email AS "actor_email?",
                      r.created_at AS "created_at!", r.cancelled_at AS "cancelled_at?",
                      COUNT(*) AS "total!",
                      COUNT(*) FILTER (WHERE NOT m.superseded AND m.cancelled = 0
                                         AND e.status = 'succeeded') AS "succeeded!",
                      COUNT(*) FILTER (WHERE NOT m.superseded AND m.cancelled = 0
                                         AND e.status IN ('needs_attention', 'dead')) AS "failed!",
                      COUNT(*) FILTER (WHERE NOT m.superseded AND m.cancelled = 0
                                         AND e.status IN ('queued', 'running')) AS "pending!",
                      SUM(m.cancelled)::bigint AS "cancelled!",
                      COUNT(*) FILTER (WHERE m.superseded AND m.cancelled = 0) AS "superseded!"
               FROM (SELECT * FROM bulk_retries ORDER BY id DESC LIMIT $1) AS r
               JOIN bulk_retry_members AS m ON m.bulk_retry_id = r.id
               JOIN exports AS e ON e.id = m.export_id
               GROUP BY r.id, r.actor_email, r.created_at, r.cancelled_at
               ORDER BY r.id DESC"#,
            limit
        )
        .fetch_all(&self.pool)
        .await
    }
}

//! The webhook log on PostgreSQL: deliveries filtered and paged, one in full, and re-processing
//! one through intake again.

use integration::{
    access::{audit::Actor, users::Role},
    webhooks::{
        intake::{write_record, Record},
        log::{
            audit_detail, delivery_target, eligibility, follow_up, note, permission,
            search_patterns, shown_headers, written, DeliveryDetail, DeliveryFilter, LogLine,
            ReprocessError, ReprocessReport, Reprocessed, REPROCESSED_ACTION,
        },
    },
};
use sqlx::{PgPool, Postgres, QueryBuilder};

use crate::{
    audit,
    conflict::{aborted, again_on_conflict},
    intake::PgWriter,
    PgStore,
};

/// Newest first (by receipt, then id), a page at a time after the last delivery shown.
pub(crate) async fn list(
    pool: &PgPool,
    filter: &DeliveryFilter,
) -> Result<Vec<LogLine>, sqlx::Error> {
    let Ok(c) = filter.criteria() else {
        return Ok(Vec::new());
    };
    let limit = filter.page_size();
    let anchor = match filter.before_id {
        None => None,
        Some(before) => {
            let at = sqlx::query_scalar!(
                "SELECT received_at FROM webhook_deliveries WHERE id <= $1
                 ORDER BY id DESC LIMIT 1",
                before
            )
            .fetch_optional(pool)
            .await?;
            match at {
                Some(at) => Some((at, before)),
                None => return Ok(Vec::new()),
            }
        }
    };
    let mut q = QueryBuilder::<Postgres>::new(
        "SELECT id, received_at, outcome, reason, event, application_id, body_sha256, export_id \
         FROM webhook_deliveries WHERE TRUE",
    );
    if let Some(outcome) = c.outcome {
        q.push(" AND outcome = ").push_bind(outcome);
    }
    if let Some(event) = c.event {
        q.push(" AND event = ").push_bind(event);
    }
    if let Some(start) = c.dates.start {
        q.push(" AND received_at >= ").push_bind(start);
    }
    if let Some(end) = c.dates.end_exclusive {
        q.push(" AND received_at < ").push_bind(end);
    }
    if let Some(term) = c.search {
        let (hash_prefix, reason) = search_patterns(&term);
        // case-blind as SQLite's LIKE: lower() under "C" folds ASCII letters only, as it does
        q.push(" AND (application_id = ")
            .push_bind(term)
            .push(" OR lower(body_sha256) LIKE lower(")
            .push_bind(hash_prefix)
            .push(" COLLATE \"C\") ESCAPE '\\' OR lower(reason) LIKE lower(")
            .push_bind(reason)
            .push(" COLLATE \"C\") ESCAPE '\\')");
    }
    if let Some((at, before)) = anchor {
        q.push(" AND received_at <= ")
            .push_bind(at.clone())
            .push(" AND (received_at < ")
            .push_bind(at)
            .push(" OR id < ")
            .push_bind(before)
            .push(")");
    }
    q.push(" ORDER BY received_at DESC, id DESC LIMIT ")
        .push_bind(limit);
    q.build_query_as::<LogLine>().fetch_all(pool).await
}

pub(crate) async fn find(pool: &PgPool, id: i64) -> Result<Option<DeliveryDetail>, sqlx::Error> {
    let Some(row) = sqlx::query!(
        r#"SELECT d.id, d.received_at, d.outcome, d.reason, d.event, d.application_id,
                  d.body_sha256, d.body, d.headers, d.client_ip, d.export_id,
                  d.reprocessed_from, e.status AS "export_status?"
           FROM webhook_deliveries d LEFT JOIN exports e ON e.id = d.export_id
           WHERE d.id = $1"#,
        id
    )
    .fetch_optional(pool)
    .await?
    else {
        return Ok(None);
    };
    let reprocess = eligibility(&row.outcome, &row.reason, row.body.as_bytes());
    let reprocessed_as = sqlx::query!(
        "SELECT id, export_id FROM webhook_deliveries WHERE reprocessed_from = $1 ORDER BY id",
        id
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|r| (r.id, r.export_id))
    .collect();
    Ok(Some(DeliveryDetail {
        reprocessed_from: row.reprocessed_from,
        reprocessed_as,
        id: row.id,
        received_at: row.received_at,
        outcome: row.outcome,
        reason: row.reason,
        event: row.event,
        application_id: row.application_id,
        body_sha256: row.body_sha256,
        body: row.body,
        headers: shown_headers(&row.headers),
        client_ip: row.client_ip,
        export_id: row.export_id,
        export_status: row.export_status,
        reprocess,
    }))
}

fn reprocess_aborted(e: &ReprocessError) -> bool {
    matches!(e, ReprocessError::Db(e) if aborted(e))
}

/// The new delivery row of a re-processing, its link to the one it re-processed and the audit
/// entry, in one transaction.
async fn record(
    pool: &PgPool,
    actor: &Actor,
    id: i64,
    body: &str,
    unverified: bool,
) -> Result<Reprocessed, ReprocessError> {
    let mut tx = pool.begin().await?;
    let record = Record::reprocessed(body.as_bytes(), note(id, actor), actor.client_ip.clone());
    let outcome = write_record(&mut PgWriter(&mut tx), &record).await?;
    let done = written(id, outcome)?;
    sqlx::query!(
        "UPDATE webhook_deliveries SET reprocessed_from = $1 WHERE id = $2",
        id,
        done.delivery_id
    )
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        actor,
        REPROCESSED_ACTION,
        Some(&delivery_target(id)),
        &audit_detail(&done, unverified),
    )
    .await?;
    tx.commit().await?;
    Ok(done)
}

pub(crate) async fn reprocess(
    store: &PgStore,
    actor: &Actor,
    role: Role,
    id: i64,
    confirmed: bool,
) -> Result<ReprocessReport, ReprocessError> {
    let pool = store.pool();
    let row = sqlx::query!(
        "SELECT outcome, reason, body FROM webhook_deliveries WHERE id = $1",
        id
    )
    .fetch_optional(pool)
    .await?
    .ok_or(ReprocessError::NotFound(id))?;
    let unverified = permission(id, &row.outcome, &row.reason, &row.body, role, confirmed)?;
    let done = again_on_conflict(reprocess_aborted, || {
        record(pool, actor, id, &row.body, unverified)
    })
    .await?;
    // a stopped export is retried as an operator's retry is, through the queue
    follow_up(store, actor, done).await
}

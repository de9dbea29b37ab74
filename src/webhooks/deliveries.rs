//! The webhook log's rows as lists show them: the newest deliveries first, and the deliveries
//! behind one export (for its timeline).

use serde::Serialize;
use sqlx::SqlitePool;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct DeliveryRow {
    pub id: i64,
    pub received_at: String,
    pub outcome: String,
    pub reason: String,
    pub event: Option<String>,
    pub application_id: Option<String>,
    pub export_id: Option<i64>,
}

/// What [`recent`] asks for: the outcome when it is one (anything else is no filter), the id
/// the page starts below, and how many (1 to 200).
pub fn recent_bounds(
    outcome: Option<&str>,
    before_id: Option<i64>,
    limit: i64,
) -> (Option<&str>, i64, i64) {
    let outcome =
        outcome.filter(|o| matches!(*o, "accepted" | "duplicate" | "ignored" | "rejected"));
    (outcome, before_id.unwrap_or(i64::MAX), limit.clamp(1, 200))
}

/// The newest deliveries first, for the webhook log; `outcome` narrows to one kind.
pub async fn recent(
    pool: &SqlitePool,
    outcome: Option<&str>,
    before_id: Option<i64>,
    limit: i64,
) -> Result<Vec<DeliveryRow>, sqlx::Error> {
    let (outcome, before, limit) = recent_bounds(outcome, before_id, limit);
    sqlx::query_as!(
        DeliveryRow,
        r#"SELECT id AS "id!", received_at, outcome, reason, event, application_id, export_id
           FROM webhook_deliveries
           WHERE id < ?1 AND (?2 IS NULL OR outcome = ?2)
           ORDER BY id DESC LIMIT ?3"#,
        before,
        outcome,
        limit
    )
    .fetch_all(pool)
    .await
}

/// The deliveries that named this export, and those whose re-processing made or named it (a
/// refused delivery run through intake again), oldest first, for its timeline.
pub async fn for_export(
    pool: &SqlitePool,
    export_id: i64,
) -> Result<Vec<DeliveryRow>, sqlx::Error> {
    sqlx::query_as!(
        DeliveryRow,
        r#"SELECT id AS "id!", received_at, outcome, reason, event, application_id, export_id
           FROM webhook_deliveries
           WHERE export_id = ?1
              OR id IN (SELECT reprocessed_from FROM webhook_deliveries
                        WHERE export_id = ?1 AND reprocessed_from IS NOT NULL)
           ORDER BY id"#,
        export_id
    )
    .fetch_all(pool)
    .await
}

//! What an export sent to HiBob: the employee body, kept while the hire is watched so the console
//! can say what changed since (see `watch`). Written once, when the export first reaches HiBob's
//! create (or finds the person there), and never overwritten by a later attempt, since HiBob kept
//! the first.

use serde_json::Value;
use sqlx::SqlitePool;

use crate::db;

pub async fn keep(pool: &SqlitePool, export_id: i64, body: &Value) -> Result<(), sqlx::Error> {
    let text = body.to_string();
    let now = db::now_text();
    sqlx::query!(
        "UPDATE exports SET sent_body = ?1, updated_at = ?2 WHERE id = ?3 AND sent_body IS NULL",
        text,
        now,
        export_id
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// The body, if it was kept and is still readable.
pub async fn body(pool: &SqlitePool, export_id: i64) -> Result<Option<Value>, sqlx::Error> {
    let text = sqlx::query_scalar!("SELECT sent_body FROM exports WHERE id = ?", export_id)
        .fetch_optional(pool)
        .await?
        .flatten();
    Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
}

/// Replaces the body after the console changed fields of the employee in HiBob.
pub async fn replace(
    conn: &mut sqlx::SqliteConnection,
    export_id: i64,
    body: &Value,
) -> Result<(), sqlx::Error> {
    let text = body.to_string();
    sqlx::query!(
        "UPDATE exports SET sent_body = ?1 WHERE id = ?2",
        text,
        export_id
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Forgets the body: watching ended, and the console keeps no copy of the record beyond it.
pub async fn forget(conn: &mut sqlx::SqliteConnection, export_id: i64) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE exports SET sent_body = NULL WHERE id = ?",
        export_id
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The export's start date after the console moved it in HiBob, so lists and urgency follow the
/// day the hire now starts.
pub async fn moved_start(
    conn: &mut sqlx::SqliteConnection,
    export_id: i64,
    day: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE exports SET start_date = ?1 WHERE id = ?2",
        day,
        export_id
    )
    .execute(conn)
    .await?;
    Ok(())
}

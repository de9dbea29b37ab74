//! Clearing an export that stopped without sending it again: a person resolves it with a note
//! (someone fixed the employee in HiBob by hand, the hire was cancelled), or a later successful
//! "Send to HiBob" for the same application supersedes the failed submits before it. Either way
//! the export leaves the attention lists as *resolved*, never as *succeeded*, and says by whom.

use sqlx::{SqliteConnection, SqlitePool};

use crate::{
    access::audit,
    access::users::Actor,
    db,
    exports::queue::{self as export_queue, Export, Status},
};

/// The longest note a resolution keeps.
pub const MAX_NOTE: usize = 500;
/// Who `supersede_plugin_failures` says resolved an export.
pub const SUPERSEDED_BY: &str = "Send to HiBob";

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("no export with id {0}")]
    NotFound(i64),
    #[error(
        "export {id} is {status}: only an export that needs attention or is dead can be resolved"
    )]
    NotStopped { id: i64, status: String },
    #[error("say in a few words why it needs nothing more (at most {MAX_NOTE} characters)")]
    Note,
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// The operator's note, trimmed, if it says something and is not too long.
pub fn checked_note(note: &str) -> Result<&str, ResolveError> {
    let note = note.trim();
    if note.is_empty() || note.chars().count() > MAX_NOTE {
        return Err(ResolveError::Note);
    }
    Ok(note)
}

/// Only an export that stopped (needs attention or dead) can be resolved; `status` is its code.
pub fn refuse_unless_stopped(id: i64, status: &str) -> Result<(), ResolveError> {
    if matches!(
        Status::parse(status),
        Some(Status::NeedsAttention | Status::Dead)
    ) {
        return Ok(());
    }
    Err(ResolveError::NotStopped {
        id,
        status: Status::words(status),
    })
}

/// The audit entry's detail for an export that was `status`, resolved with `note`.
pub fn resolved_detail(status: &str, note: &str) -> String {
    format!("was {}: {note}", Status::words(status))
}

/// What a failed plugin submit superseded by export `succeeded` is resolved with.
pub fn superseded_note(succeeded: i64) -> String {
    format!("superseded by export {succeeded}, sent from Pinpoint's form and succeeded")
}

/// Marks a stopped export resolved with the operator's `note`, in the audit log too.
pub async fn resolve(
    pool: &SqlitePool,
    actor: &Actor,
    id: i64,
    note: &str,
) -> Result<Export, ResolveError> {
    let note = checked_note(note)?;
    let mut tx = db::begin_write(pool).await?;
    let status = sqlx::query_scalar!("SELECT status FROM exports WHERE id = ?", id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(ResolveError::NotFound(id))?;
    refuse_unless_stopped(id, &status)?;
    mark_resolved(&mut tx, id, &actor.email, note).await?;
    // a bulk retry's undo must not put a resolved export back where it was
    crate::exports::bulk_retry::supersede(&mut tx, id).await?;
    audit::record(
        &mut tx,
        actor,
        "export.resolved",
        Some(&format!("export {id}")),
        &resolved_detail(&status, note),
    )
    .await?;
    tx.commit().await?;
    export_queue::find(pool, id)
        .await?
        .ok_or(ResolveError::NotFound(id))
}

/// After export `succeeded` (a plugin submit) reached HiBob: the earlier failed plugin submits for
/// the same application are resolved by it (a submit that named no application resolves none). Returns their ids, for open pages to hear of.
pub async fn supersede_plugin_failures(
    pool: &SqlitePool,
    succeeded: i64,
) -> Result<Vec<i64>, sqlx::Error> {
    let mut tx = db::begin_write(pool).await?;
    let stale = sqlx::query_scalar!(
        r#"SELECT old.id AS "id!" FROM exports old
           JOIN exports new ON new.id = ?1
           WHERE old.source = 'plugin' AND old.id <> new.id
             AND new.pinpoint_application_id <> ''
             AND old.pinpoint_application_id = new.pinpoint_application_id
             AND old.status IN ('needs_attention', 'dead')"#,
        succeeded
    )
    .fetch_all(&mut *tx)
    .await?;
    let note = superseded_note(succeeded);
    for id in &stale {
        mark_resolved(&mut tx, *id, SUPERSEDED_BY, &note).await?;
        crate::exports::bulk_retry::supersede(&mut tx, *id).await?;
        audit::record(
            &mut tx,
            &Actor::system(SUPERSEDED_BY),
            "export.resolved",
            Some(&format!("export {id}")),
            &note,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(stale)
}

async fn mark_resolved(
    conn: &mut SqliteConnection,
    id: i64,
    by: &str,
    note: &str,
) -> Result<(), sqlx::Error> {
    let now = db::now_text();
    sqlx::query!(
        "UPDATE exports SET status = 'resolved', resolved_at = ?1, resolved_by = ?2,
                resolution = ?3, lease_owner = NULL, lease_until = NULL, updated_at = ?1
         WHERE id = ?4",
        now,
        by,
        note,
        id
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Who resolved an export, when and why, if it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    pub at: String,
    pub by: String,
    pub note: String,
}

impl Resolution {
    /// From the export's `resolved_at`, `resolved_by` and `resolution`: none unless it was resolved.
    pub fn from_columns(
        at: Option<String>,
        by: Option<String>,
        note: Option<String>,
    ) -> Option<Self> {
        Some(Resolution {
            at: at?,
            by: by.unwrap_or_default(),
            note: note.unwrap_or_default(),
        })
    }
}

pub async fn resolution(pool: &SqlitePool, id: i64) -> Result<Option<Resolution>, sqlx::Error> {
    let row = sqlx::query!(
        "SELECT resolved_at, resolved_by, resolution FROM exports WHERE id = ?",
        id
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.and_then(|r| Resolution::from_columns(r.resolved_at, r.resolved_by, r.resolution)))
}

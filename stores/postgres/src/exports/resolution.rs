//! Clearing a stopped export without sending it again, on PostgreSQL.

use integration::{
    access::audit::Actor,
    db,
    exports::{
        queue::Export,
        resolution::{self as core, Resolution, ResolveError, SUPERSEDED_BY},
        storage::Resolutions,
    },
};
use sqlx::PgConnection;

use super::queue::{find, supersede};
use crate::{audit, PgStore};

async fn mark_resolved(
    conn: &mut PgConnection,
    id: i64,
    by: &str,
    note: &str,
) -> Result<(), sqlx::Error> {
    let now = db::now_text();
    sqlx::query!(
        "UPDATE exports SET status = 'resolved', resolved_at = $1, resolved_by = $2,
                resolution = $3, lease_owner = NULL, lease_until = NULL, updated_at = $1
         WHERE id = $4",
        now,
        by,
        note,
        id
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[async_trait::async_trait]
impl Resolutions for PgStore {
    async fn resolve(&self, actor: &Actor, id: i64, note: &str) -> Result<Export, ResolveError> {
        let note = core::checked_note(note)?;
        let mut tx = self.pool.begin().await?;
        // locked from the status check to the write, so a retry or a claim cannot move the export
        // on in between and have its new state overwritten as resolved
        let status = sqlx::query_scalar!("SELECT status FROM exports WHERE id = $1 FOR UPDATE", id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(ResolveError::NotFound(id))?;
        core::refuse_unless_stopped(id, &status)?;
        mark_resolved(&mut tx, id, &actor.email, note).await?;
        // a bulk retry's undo must not put a resolved export back where it was
        supersede(&mut tx, id).await?;
        audit::record(
            &mut tx,
            actor,
            "export.resolved",
            Some(&format!("export {id}")),
            &core::resolved_detail(&status, note),
        )
        .await?;
        tx.commit().await?;
        find(&self.pool, id)
            .await?
            .ok_or(ResolveError::NotFound(id))
    }

    async fn supersede_plugin_failures(&self, succeeded: i64) -> Result<Vec<i64>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        // the stopped submits are locked (in id order, so two runs wait rather than deadlock)
        // until they are resolved: one retried meanwhile is read again and left to its retry
        let stale = sqlx::query_scalar!(
            "SELECT old.id FROM exports old
             JOIN exports new ON new.id = $1
             WHERE old.source = 'plugin' AND old.id <> new.id
               AND new.pinpoint_application_id <> ''
               AND old.pinpoint_application_id = new.pinpoint_application_id
               AND old.status IN ('needs_attention', 'dead')
             ORDER BY old.id
             FOR UPDATE OF old",
            succeeded
        )
        .fetch_all(&mut *tx)
        .await?;
        let note = core::superseded_note(succeeded);
        for id in &stale {
            mark_resolved(&mut tx, *id, SUPERSEDED_BY, &note).await?;
            supersede(&mut tx, *id).await?;
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

    async fn resolution(&self, id: i64) -> Result<Option<Resolution>, sqlx::Error> {
        let row = sqlx::query!(
            "SELECT resolved_at, resolved_by, resolution FROM exports WHERE id = $1",
            id
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.and_then(|r| Resolution::from_columns(r.resolved_at, r.resolved_by, r.resolution)))
    }
}

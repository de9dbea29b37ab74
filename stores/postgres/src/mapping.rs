//! Saved mapping versions on PostgreSQL.

use integration::{
    access::audit::Actor,
    mapping::{
        storage::MappingStore,
        store::{self, StoreError, Version, VersionSummary},
        MappingDocument,
    },
};
use sqlx::PgPool;

use crate::{audit, PgStore};

/// Appends versions one at a time: a save decides on the newest version (stale edit, nothing
/// changed) and numbers the next one from it, so a second save must wait until the first
/// committed and then see its version.
const MAPPING_APPEND_LOCK: i64 = 0x7065_6f70_6c65_0003;

async fn get(pool: &PgPool, id: i64) -> Result<Version, StoreError> {
    let row = sqlx::query!(
        "SELECT id, document, note, author, restored_from, created_at
         FROM mapping_versions WHERE id = $1",
        id
    )
    .fetch_optional(pool)
    .await?
    .ok_or(StoreError::NotFound(id))?;
    Ok(Version {
        document: store::parse(row.id, &row.document)?,
        id: row.id,
        note: row.note,
        author: row.author,
        restored_from: row.restored_from,
        created_at: row.created_at,
    })
}

async fn append(
    pool: &PgPool,
    actor: &Actor,
    document: &MappingDocument,
    note: &str,
    edited: Option<i64>,
    restored_from: Option<i64>,
) -> Result<Version, StoreError> {
    let note = store::clean_note(note);
    let json = store::encode(document)?;
    let mut tx = pool.begin().await?;
    sqlx::query!("SELECT pg_advisory_xact_lock($1)", MAPPING_APPEND_LOCK)
        .execute(&mut *tx)
        .await?;
    let latest = sqlx::query!("SELECT id, document FROM mapping_versions ORDER BY id DESC LIMIT 1")
        .fetch_optional(&mut *tx)
        .await?;
    let previous = match &latest {
        Some(row) => Some((row.id, store::parse(row.id, &row.document)?)),
        None => None,
    };
    store::check_append(edited, previous.as_ref(), document)?;
    // numbered here rather than by the identity, which a rolled-back insert would leave with a
    // gap: versions are v1, v2, … with none missing, as on SQLite
    let next = previous.as_ref().map_or(1, |(id, _)| id + 1);
    let author = actor.email.clone();
    let created_at = sqlx::query_scalar!(
        "INSERT INTO mapping_versions (id, document, note, author_id, author, restored_from)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING created_at",
        next,
        json,
        note,
        actor.id,
        author,
        restored_from
    )
    .fetch_one(&mut *tx)
    .await?;
    let (action, detail) = store::audit_entry(
        previous.as_ref().map(|(_, before)| before),
        document,
        &note,
        restored_from,
    );
    audit::record(
        &mut tx,
        actor,
        action,
        Some(&store::audit_target(next)),
        &detail,
    )
    .await?;
    tx.commit().await?;
    Ok(Version {
        id: next,
        document: document.clone(),
        note,
        author,
        restored_from,
        created_at,
    })
}

#[async_trait::async_trait]
impl MappingStore for PgStore {
    async fn current(&self) -> Result<Version, StoreError> {
        let row = sqlx::query!(
            "SELECT id, document, note, author, restored_from, created_at
             FROM mapping_versions ORDER BY id DESC LIMIT 1"
        )
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound(1))?;
        Ok(Version {
            document: store::parse(row.id, &row.document)?,
            id: row.id,
            note: row.note,
            author: row.author,
            restored_from: row.restored_from,
            created_at: row.created_at,
        })
    }

    async fn current_id(&self) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar!(r#"SELECT MAX(id) AS "id!" FROM mapping_versions"#)
            .fetch_one(&self.pool)
            .await
    }

    async fn get(&self, id: i64) -> Result<Version, StoreError> {
        get(&self.pool, id).await
    }

    async fn versions(&self, limit: i64) -> Result<Vec<VersionSummary>, sqlx::Error> {
        let limit = limit.clamp(1, 500);
        sqlx::query_as!(
            VersionSummary,
            r#"SELECT v.id, v.note, v.author, v.restored_from, v.created_at,
                      (SELECT COUNT(*) FROM exports e WHERE e.mapping_version = v.id)
                          AS "exports!"
               FROM mapping_versions v ORDER BY v.id DESC LIMIT $1"#,
            limit
        )
        .fetch_all(&self.pool)
        .await
    }

    async fn save(
        &self,
        actor: &Actor,
        document: &MappingDocument,
        note: &str,
        edited: i64,
    ) -> Result<Version, StoreError> {
        append(&self.pool, actor, document, note, Some(edited), None).await
    }

    async fn restore(&self, actor: &Actor, id: i64) -> Result<Version, StoreError> {
        let old = get(&self.pool, id).await?;
        append(
            &self.pool,
            actor,
            &old.document,
            &store::restored_note(id),
            None,
            Some(id),
        )
        .await
    }

    async fn export_hire(&self, export_id: i64) -> Result<Option<(String, String)>, sqlx::Error> {
        let row = sqlx::query!(
            "SELECT pinpoint_application_id, created_at FROM exports WHERE id = $1",
            export_id
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| (r.pinpoint_application_id, r.created_at)))
    }
}

//! Saved mapping versions: immutable rows (the database refuses updates and deletes), the newest
//! being the mapping in force. Saving and restoring append a version and audit it in the same
//! transaction.

use serde::{Deserialize, Serialize};
use sqlx::SqlitePool;

use crate::{
    access::audit,
    access::users::Actor,
    db,
    mapping::{self, MappingDocument},
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version {
    pub id: i64,
    pub document: MappingDocument,
    pub note: String,
    pub author: String,
    pub restored_from: Option<i64>,
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionSummary {
    pub id: i64,
    pub note: String,
    pub author: String,
    pub restored_from: Option<i64>,
    pub created_at: String,
    /// How many exports were built with it.
    pub exports: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("mapping version {0} does not exist")]
    NotFound(i64),
    /// Someone saved while this person was editing: saving now would silently undo their work.
    #[error("version {current} was saved while you were editing version {edited}: reload to see it, then make your change again")]
    Conflict { edited: i64, current: i64 },
    #[error("nothing changed: the mapping is the same as version {0}")]
    Unchanged(i64),
    #[error("stored mapping version {id} cannot be read: {problem}")]
    Corrupt { id: i64, problem: String },
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

const NOTE_MAX: usize = 500;

/// A stored version's document.
pub fn parse(id: i64, document: &str) -> Result<MappingDocument, StoreError> {
    serde_json::from_str(document).map_err(|e| StoreError::Corrupt {
        id,
        problem: e.to_string(),
    })
}

/// The mapping in force: the newest version (the migration stores version 1).
pub async fn current(pool: &SqlitePool) -> Result<Version, StoreError> {
    let row = sqlx::query!(
        r#"SELECT id AS "id!", document, note, author, restored_from, created_at
           FROM mapping_versions ORDER BY id DESC LIMIT 1"#
    )
    .fetch_optional(pool)
    .await?
    .ok_or(StoreError::NotFound(1))?;
    Ok(Version {
        document: parse(row.id, &row.document)?,
        id: row.id,
        note: row.note,
        author: row.author,
        restored_from: row.restored_from,
        created_at: row.created_at,
    })
}

pub async fn current_id(pool: &SqlitePool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar!(r#"SELECT MAX(id) AS "id!: i64" FROM mapping_versions"#)
        .fetch_one(pool)
        .await
}

pub async fn get(pool: &SqlitePool, id: i64) -> Result<Version, StoreError> {
    let row = sqlx::query!(
        r#"SELECT id AS "id!", document, note, author, restored_from, created_at
           FROM mapping_versions WHERE id = ?"#,
        id
    )
    .fetch_optional(pool)
    .await?
    .ok_or(StoreError::NotFound(id))?;
    Ok(Version {
        document: parse(row.id, &row.document)?,
        id: row.id,
        note: row.note,
        author: row.author,
        restored_from: row.restored_from,
        created_at: row.created_at,
    })
}

/// Newest first.
pub async fn list(pool: &SqlitePool, limit: i64) -> Result<Vec<VersionSummary>, sqlx::Error> {
    let limit = limit.clamp(1, 500);
    sqlx::query_as!(
        VersionSummary,
        r#"SELECT v.id AS "id!", v.note, v.author, v.restored_from, v.created_at,
                  (SELECT COUNT(*) FROM exports e WHERE e.mapping_version = v.id) AS "exports!: i64"
           FROM mapping_versions v ORDER BY v.id DESC LIMIT ?"#,
        limit
    )
    .fetch_all(pool)
    .await
}

/// Appends a version. `edited` is the version the editor started from; if another was saved
/// since, the save is refused rather than overwriting that work. The caller lints first.
pub async fn save(
    pool: &SqlitePool,
    actor: &Actor,
    document: &MappingDocument,
    note: &str,
    edited: i64,
) -> Result<Version, StoreError> {
    append(pool, actor, document, note, Some(edited), None).await
}

/// Makes an old version current again, as a new version (history is never rewritten).
pub async fn restore(pool: &SqlitePool, actor: &Actor, id: i64) -> Result<Version, StoreError> {
    let old = get(pool, id).await?;
    append(
        pool,
        actor,
        &old.document,
        &restored_note(id),
        None,
        Some(id),
    )
    .await
}

/// A version's note as it is stored: trimmed, and at most `NOTE_MAX` characters.
pub fn clean_note(note: &str) -> String {
    note.trim().chars().take(NOTE_MAX).collect()
}

/// A document as it is stored.
pub fn encode(document: &MappingDocument) -> Result<String, StoreError> {
    serde_json::to_string(document).map_err(|e| StoreError::Corrupt {
        id: 0,
        problem: e.to_string(),
    })
}

/// Whether `document` may be appended after `latest` (the newest version and its document):
/// refused when the editor started from an older version than the newest (`edited`; a restore
/// names none), or when nothing changed.
pub fn check_append(
    edited: Option<i64>,
    latest: Option<&(i64, MappingDocument)>,
    document: &MappingDocument,
) -> Result<(), StoreError> {
    if let (Some(edited), Some((current, _))) = (edited, latest) {
        if edited != *current {
            return Err(StoreError::Conflict {
                edited,
                current: *current,
            });
        }
    }
    if let Some((current, doc)) = latest {
        if doc == document {
            return Err(StoreError::Unchanged(*current));
        }
    }
    Ok(())
}

/// The audit action and detail of appending `document` after `previous`: the note, then what
/// changed.
pub fn audit_entry(
    previous: Option<&MappingDocument>,
    document: &MappingDocument,
    note: &str,
    restored_from: Option<i64>,
) -> (&'static str, String) {
    let changes = previous
        .map(|before| mapping::diff(before, document))
        .unwrap_or_default();
    let mut detail = changes
        .iter()
        .map(|c| format!("{} {:?}", c.subject, c.change).to_lowercase())
        .collect::<Vec<_>>()
        .join(", ");
    if !note.is_empty() {
        detail = format!("{note} — {detail}");
    }
    let action = if restored_from.is_some() {
        "mapping.restored"
    } else {
        "mapping.saved"
    };
    (action, detail)
}

/// The audit entries' name of version `id`.
pub fn audit_target(id: i64) -> String {
    format!("mapping v{id}")
}

/// The note of a version that restores version `id`.
pub fn restored_note(id: i64) -> String {
    format!("Restored version {id}")
}

async fn append(
    pool: &SqlitePool,
    actor: &Actor,
    document: &MappingDocument,
    note: &str,
    edited: Option<i64>,
    restored_from: Option<i64>,
) -> Result<Version, StoreError> {
    let note = clean_note(note);
    let json = encode(document)?;
    let mut tx = db::begin_write(pool).await?;
    let latest = sqlx::query!(
        r#"SELECT id AS "id!", document FROM mapping_versions ORDER BY id DESC LIMIT 1"#
    )
    .fetch_optional(&mut *tx)
    .await?;
    let previous = match &latest {
        Some(row) => Some((row.id, parse(row.id, &row.document)?)),
        None => None,
    };
    check_append(edited, previous.as_ref(), document)?;
    let author = actor.email.clone();
    let id = sqlx::query_scalar!(
        r#"INSERT INTO mapping_versions (document, note, author_id, author, restored_from)
           VALUES (?, ?, ?, ?, ?) RETURNING id AS "id!: i64""#,
        json,
        note,
        actor.id,
        author,
        restored_from
    )
    .fetch_one(&mut *tx)
    .await?;
    let (action, detail) = audit_entry(
        previous.as_ref().map(|(_, before)| before),
        document,
        &note,
        restored_from,
    );
    audit::record(&mut tx, actor, action, Some(&audit_target(id)), &detail).await?;
    let created_at =
        sqlx::query_scalar!("SELECT created_at FROM mapping_versions WHERE id = ?", id)
            .fetch_one(&mut *tx)
            .await?;
    tx.commit().await?;
    Ok(Version {
        id,
        document: document.clone(),
        note,
        author,
        restored_from,
        created_at,
    })
}

/// The Pinpoint application an export was made for and the day it came in, for previewing the
/// mapping on that hire. Read here rather than through the export queue, which builds on the
/// mapping.
pub async fn export_hire(
    pool: &SqlitePool,
    export_id: i64,
) -> Result<Option<(String, String)>, sqlx::Error> {
    let row = sqlx::query!(
        "SELECT pinpoint_application_id, created_at FROM exports WHERE id = ?",
        export_id
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| (r.pinpoint_application_id, r.created_at)))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn pool() -> (tempfile::TempDir, SqlitePool) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let pool = db::open(&url).await.unwrap();
        (dir, pool)
    }

    fn admin() -> Actor {
        Actor {
            id: None,
            email: "ops@example.com".into(),
            client_ip: None,
        }
    }

    #[tokio::test]
    async fn version_one_is_the_built_in_mapping() {
        let (_d, pool) = pool().await;
        let v = current(&pool).await.unwrap();
        assert_eq!(v.id, 1);
        assert_eq!(v.document, mapping::default_document());
        assert_eq!(v.author, "built-in");
    }

    #[tokio::test]
    async fn saves_append_and_refuse_stale_or_empty_edits() {
        let (_d, pool) = pool().await;
        let mut doc = mapping::default_document();
        doc.fields[1]
            .sources
            .push("{{ candidate_first_name }}".into());
        let v2 = save(&pool, &admin(), &doc, "surname falls back", 1)
            .await
            .unwrap();
        assert_eq!(v2.id, 2);
        assert_eq!(current(&pool).await.unwrap().document, doc);
        // a second editor who started from v1 does not overwrite v2
        let mut other = mapping::default_document();
        other.fields[0].sources = vec!["{{ candidate_preferred_name }}".into()];
        let e = save(&pool, &admin(), &other, "", 1).await.unwrap_err();
        assert!(
            matches!(
                e,
                StoreError::Conflict {
                    edited: 1,
                    current: 2
                }
            ),
            "{e}"
        );
        let e = save(&pool, &admin(), &doc, "", 2).await.unwrap_err();
        assert!(matches!(e, StoreError::Unchanged(2)), "{e}");

        let v3 = restore(&pool, &admin(), 1).await.unwrap();
        assert_eq!((v3.id, v3.restored_from), (3, Some(1)));
        assert_eq!(
            current(&pool).await.unwrap().document,
            mapping::default_document()
        );
        let listed = list(&pool, 10).await.unwrap();
        assert_eq!(listed.iter().map(|v| v.id).collect::<Vec<_>>(), [3, 2, 1]);

        let audit: Vec<(String, String)> = sqlx::query_as(
            "SELECT action, detail FROM audit_log WHERE action LIKE 'mapping.%' ORDER BY id",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        assert_eq!(audit[0].0, "mapping.saved");
        assert!(
            audit[0].1.contains("surname falls back")
                && audit[0].1.contains("root.surname changed"),
            "{audit:?}"
        );
        assert_eq!(audit[1].0, "mapping.restored");
    }

    #[tokio::test]
    async fn versions_cannot_be_changed_or_deleted() {
        let (_d, pool) = pool().await;
        let e = sqlx::query("UPDATE mapping_versions SET note = 'x' WHERE id = 1")
            .execute(&pool)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("immutable"), "{e}");
        assert!(sqlx::query("DELETE FROM mapping_versions")
            .execute(&pool)
            .await
            .is_err());
    }
}

//! Stored credentials on SQLite.

use sqlx::SqlitePool;

use super::credentials::{SealedWrite, StoredCredential};
use crate::{
    access::{audit, users::Actor},
    db,
};

pub async fn sealed(pool: &SqlitePool, key: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar!("SELECT ciphertext FROM credentials WHERE key = ?", key)
        .fetch_optional(pool)
        .await
}

pub async fn stored(pool: &SqlitePool) -> Result<Vec<StoredCredential>, sqlx::Error> {
    sqlx::query_as!(
        StoredCredential,
        "SELECT c.key, c.ciphertext, c.updated_at, u.email AS \"updated_by?\"
             FROM credentials c LEFT JOIN users u ON u.id = c.updated_by"
    )
    .fetch_all(pool)
    .await
}

pub async fn write(
    pool: &SqlitePool,
    actor: &Actor,
    writes: &[SealedWrite],
) -> Result<Vec<String>, sqlx::Error> {
    let mut tx = db::begin_write(pool).await?;
    let now = db::now_text();
    let mut changed = Vec::new();
    for w in writes {
        let name = w.key;
        match &w.ciphertext {
            Some(ciphertext) => {
                sqlx::query!(
                    "INSERT INTO credentials (key, ciphertext, updated_at, updated_by)
                         VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (key) DO UPDATE SET ciphertext = ?2, updated_at = ?3, updated_by = ?4",
                    name,
                    ciphertext,
                    now,
                    actor.id
                )
                .execute(&mut *tx)
                .await?;
                changed.push(w.done.clone());
            }
            None => {
                let removed = sqlx::query!("DELETE FROM credentials WHERE key = ?", name)
                    .execute(&mut *tx)
                    .await?;
                if removed.rows_affected() > 0 {
                    changed.push(w.done.clone());
                }
            }
        }
    }
    if !changed.is_empty() {
        audit::record(
            &mut tx,
            actor,
            "settings.credentials_saved",
            None,
            &changed.join(", "),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(changed)
}

//! Credentials stored in the console, on PostgreSQL.

use integration::{
    access::audit::Actor,
    db,
    settings::credentials::{CredentialStore, SealedWrite, StoredCredential},
};

use crate::{audit, PgStore};

#[async_trait::async_trait]
impl CredentialStore for PgStore {
    async fn sealed(&self, key: &str) -> Result<Option<String>, sqlx::Error> {
        sqlx::query_scalar!("SELECT ciphertext FROM credentials WHERE key = $1", key)
            .fetch_optional(&self.pool)
            .await
    }

    async fn stored(&self) -> Result<Vec<StoredCredential>, sqlx::Error> {
        sqlx::query_as!(
            StoredCredential,
            r#"SELECT c.key, c.ciphertext, c.updated_at, u.email AS "updated_by?"
               FROM credentials c LEFT JOIN users u ON u.id = c.updated_by
               ORDER BY c.key"#
        )
        .fetch_all(&self.pool)
        .await
    }

    async fn write(
        &self,
        actor: &Actor,
        writes: &[SealedWrite],
    ) -> Result<Vec<String>, sqlx::Error> {
        // each write is one statement on one row (an upsert or a delete), so what the audit entry
        // lists is what this transaction itself changed, whoever else writes at once
        let mut tx = self.pool.begin().await?;
        let now = db::now_text();
        let mut changed = Vec::new();
        for w in writes {
            let name = w.key;
            match &w.ciphertext {
                Some(ciphertext) => {
                    sqlx::query!(
                        "INSERT INTO credentials (key, ciphertext, updated_at, updated_by)
                         VALUES ($1, $2, $3, $4)
                         ON CONFLICT (key) DO UPDATE
                         SET ciphertext = $2, updated_at = $3, updated_by = $4",
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
                    let removed = sqlx::query!("DELETE FROM credentials WHERE key = $1", name)
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
}

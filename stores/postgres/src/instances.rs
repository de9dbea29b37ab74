//! The console processes sharing this database, each kept alive by its heartbeat.

use std::time::Duration;

use integration::instance::{Instances, Member};

use crate::{exports::millis, PgStore};

/// Rows of processes not seen for this long are forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

#[async_trait::async_trait]
impl Instances for PgStore {
    async fn beat(&self, id: &str, version: &str) -> Result<(), sqlx::Error> {
        sqlx::query!(
            "INSERT INTO instances (id, version, started_at, seen_at)
             VALUES ($1, $2, now_text(), now_text())
             ON CONFLICT (id) DO UPDATE SET seen_at = now_text(), version = EXCLUDED.version",
            id,
            version
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn alive(&self, within: Duration) -> Result<Vec<Member>, sqlx::Error> {
        sqlx::query!(
            "DELETE FROM instances WHERE seen_at < time_text_after(-$1::bigint)",
            millis(FORGET_AFTER)
        )
        .execute(&self.pool)
        .await?;
        sqlx::query_as!(
            Member,
            "SELECT id, version, started_at, seen_at FROM instances
             WHERE seen_at >= time_text_after(-$1::bigint)
             ORDER BY started_at, id",
            millis(within)
        )
        .fetch_all(&self.pool)
        .await
    }

    async fn leave(&self, id: &str) -> Result<(), sqlx::Error> {
        sqlx::query!("DELETE FROM instances WHERE id = $1", id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

use chrono::{DateTime, Utc};

use super::SqliteStore;
use crate::alerts::{outbox, AlertOutbox, NewAlert, Pending};

#[async_trait::async_trait]
impl AlertOutbox for SqliteStore {
    async fn start_date(&self, export_id: i64) -> Result<Option<String>, sqlx::Error> {
        outbox::start_date(&self.pool, export_id).await
    }

    async fn queue(&self, alert: &NewAlert<'_>) -> Result<(), sqlx::Error> {
        outbox::queue(&self.pool, alert).await
    }

    async fn stops_unreported(&self) -> Result<bool, sqlx::Error> {
        outbox::stops_unreported(&self.pool).await
    }

    async fn queue_recovered(
        &self,
        webhook_done: bool,
        email_done: bool,
    ) -> Result<bool, sqlx::Error> {
        outbox::queue_recovered(&self.pool, webhook_done, email_done).await
    }

    async fn pending(
        &self,
        webhook: bool,
        now: DateTime<Utc>,
    ) -> Result<Vec<Pending>, sqlx::Error> {
        outbox::pending(&self.pool, webhook, now).await
    }

    async fn mark(
        &self,
        webhook: bool,
        ids: &[i64],
        error: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), sqlx::Error> {
        outbox::mark(&self.pool, webhook, ids, error, now).await
    }
}

//! The engine-wide faces of SQLite: the dashboard's reads, erasure, retention, backups and the
//! health probes.

use std::{path::Path, time::Duration};

use chrono::{DateTime, NaiveDate, Utc};

use super::SqliteStore;
use crate::{
    access::audit::Actor,
    backup::{self, BackupError, Backups, Checked, Scheduled},
    dashboard::{self, Attention, DashboardReads, DayCount, LastCalls, Refusals, Silence},
    db,
    erasure::{self, EraseError, Erased, Erasure},
    health::Probes,
    retention::{self, Policy, Pruned, Retention},
};

#[async_trait::async_trait]
impl DashboardReads for SqliteStore {
    async fn needing_attention(
        &self,
        today: NaiveDate,
        limit: i64,
    ) -> Result<Vec<Attention>, sqlx::Error> {
        dashboard::needing_attention(&self.pool, today, limit).await
    }

    async fn per_day(&self, today: NaiveDate, days: u32) -> Result<Vec<DayCount>, sqlx::Error> {
        dashboard::per_day(&self.pool, today, days).await
    }

    async fn last_calls(&self, steps: &[&str]) -> Result<LastCalls, sqlx::Error> {
        dashboard::last_calls(&self.pool, steps).await
    }

    async fn oldest_queued_since(&self) -> Result<Option<String>, sqlx::Error> {
        dashboard::oldest_queued_since(&self.pool).await
    }

    async fn refusals_since(&self, since: &str) -> Result<Vec<Refusals>, sqlx::Error> {
        dashboard::refusals_since(&self.pool, since).await
    }

    async fn delivery_silence(
        &self,
        now: chrono::DateTime<Utc>,
    ) -> Result<Option<Silence>, sqlx::Error> {
        dashboard::delivery_silence(&self.pool, now).await
    }
}

#[async_trait::async_trait]
impl Erasure for SqliteStore {
    async fn erased_at(&self, id: i64) -> Result<Option<String>, sqlx::Error> {
        erasure::erased_at(&self.pool, id).await
    }

    async fn erase_candidate(
        &self,
        actor: &Actor,
        id: i64,
        confirmation: &str,
    ) -> Result<Erased, EraseError> {
        erasure::erase_candidate(&self.pool, actor, id, confirmation).await
    }
}

#[async_trait::async_trait]
impl Retention for SqliteStore {
    async fn prune(&self, policy: &Policy, now: DateTime<Utc>) -> Result<Pruned, sqlx::Error> {
        retention::prune(&self.pool, policy, now).await
    }

    async fn reclaim(&self, pause: Duration) -> Result<i64, sqlx::Error> {
        retention::reclaim(&self.pool, pause).await
    }
}

#[async_trait::async_trait]
impl Backups for SqliteStore {
    async fn backup(&self, output: &Path, replace: bool) -> Result<Checked, BackupError> {
        backup::backup(&self.pool, output, replace).await
    }

    async fn scheduled_backup(
        &self,
        dir: &Path,
        keep: usize,
        now: DateTime<Utc>,
    ) -> Result<Scheduled, BackupError> {
        backup::scheduled_backup(&self.pool, dir, keep, now).await
    }
}

#[async_trait::async_trait]
impl Probes for SqliteStore {
    async fn readiness(&self) -> Result<(), String> {
        db::readiness(&self.pool).await
    }

    async fn schema_readiness(&self) -> Result<(), String> {
        db::schema_readiness(&self.pool).await
    }

    async fn write_probe(&self) -> Result<(), String> {
        db::write_probe(&self.pool).await
    }
}

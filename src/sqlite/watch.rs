use chrono::{DateTime, NaiveDate, Utc};

use super::SqliteStore;
use crate::{
    access::audit::{self, Actor},
    db,
    exports::sent,
    watch::{
        storage::{Settled, WatchStore},
        store::{self, Checked, Flagged, Unwatched, Watch},
    },
};

#[async_trait::async_trait]
impl WatchStore for SqliteStore {
    async fn unwatched(&self, limit: i64) -> Result<Vec<Unwatched>, sqlx::Error> {
        store::unwatched(&self.pool, limit).await
    }

    async fn begin(
        &self,
        from: &Unwatched,
        baseline: Option<&str>,
        until: NaiveDate,
        first_check: DateTime<Utc>,
    ) -> Result<(), sqlx::Error> {
        store::begin(&self.pool, from, baseline, until, first_check).await
    }

    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        lease: std::time::Duration,
    ) -> Result<Option<i64>, sqlx::Error> {
        store::claim_due(&self.pool, now, lease).await
    }

    async fn exports_waiting(&self, now: DateTime<Utc>) -> Result<bool, sqlx::Error> {
        store::exports_waiting(&self.pool, now).await
    }

    async fn due_count(&self, now: DateTime<Utc>) -> Result<i64, sqlx::Error> {
        store::due_count(&self.pool, now).await
    }

    async fn check_failed(
        &self,
        export_id: i64,
        error: &str,
        next: DateTime<Utc>,
    ) -> Result<(), sqlx::Error> {
        store::check_failed(&self.pool, export_id, error, next).await
    }

    async fn flagged(&self, limit: i64) -> Result<Vec<Flagged>, sqlx::Error> {
        store::flagged(&self.pool, limit).await
    }

    async fn ended(&self, today: NaiveDate) -> Result<Vec<i64>, sqlx::Error> {
        store::ended(&self.pool, today).await
    }

    async fn find(&self, export_id: i64) -> Result<Option<Watch>, sqlx::Error> {
        let mut conn = self.pool.acquire().await?;
        store::find(&mut conn, export_id).await
    }

    async fn save_check(&self, export_id: i64, found: &Checked<'_>) -> Result<(), sqlx::Error> {
        let mut tx = db::begin_write(&self.pool).await?;
        store::save_check(&mut tx, export_id, found).await?;
        tx.commit().await
    }

    async fn settle(&self, export_id: i64, settled: &Settled<'_>) -> Result<(), sqlx::Error> {
        let mut tx = db::begin_write(&self.pool).await?;
        store::settle(&mut tx, export_id, settled.baseline, settled.left).await?;
        sent::replace(&mut tx, export_id, settled.sent).await?;
        if let Some(day) = settled.moved_start {
            sent::moved_start(&mut tx, export_id, day).await?;
        }
        let target = format!("export {export_id}");
        audit::record(
            &mut tx,
            settled.actor,
            settled.action,
            Some(&target),
            settled.detail,
        )
        .await?;
        tx.commit().await
    }

    async fn decide(
        &self,
        export_id: i64,
        decision: &str,
        actor: &Actor,
        words: &str,
    ) -> Result<bool, sqlx::Error> {
        let mut tx = db::begin_write(&self.pool).await?;
        if !store::decide(&mut tx, export_id, decision, &actor.email).await? {
            return Ok(false);
        }
        let target = format!("export {export_id}");
        audit::record(
            &mut tx,
            actor,
            "export.fall_through_decided",
            Some(&target),
            words,
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn check_soon(&self, export_id: i64) -> Result<bool, sqlx::Error> {
        let mut tx = db::begin_write(&self.pool).await?;
        let moved = store::check_soon(&mut tx, export_id).await?;
        tx.commit().await?;
        Ok(moved)
    }

    async fn stop(&self, export_id: i64) -> Result<(), sqlx::Error> {
        let mut tx = db::begin_write(&self.pool).await?;
        store::stop(&mut tx, export_id).await?;
        tx.commit().await
    }
}

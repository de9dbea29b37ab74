//! What keeping HiBob in step needs from the database, whichever engine holds it.

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;

use super::{
    store::{Checked, Flagged, Unwatched, Watch},
    Change,
};
use crate::access::audit::Actor;

/// Changes settled by one action: the watch's new baseline and what is left, the body HiBob now
/// holds, and the audit entry, written together.
#[derive(Debug, Clone)]
pub struct Settled<'a> {
    pub baseline: &'a Value,
    pub left: &'a [Change],
    pub sent: &'a Value,
    /// The start date HiBob was moved to, which the export's own start date follows.
    pub moved_start: Option<&'a str>,
    pub actor: &'a Actor,
    pub action: &'a str,
    pub detail: &'a str,
}

/// The watched hires.
#[async_trait::async_trait]
pub trait WatchStore: Send + Sync {
    async fn unwatched(&self, limit: i64) -> Result<Vec<Unwatched>, sqlx::Error>;
    /// Starts watching: `baseline` is what the mapping made of the application at the export, when
    /// that is what was sent.
    async fn begin(
        &self,
        from: &Unwatched,
        baseline: Option<&str>,
        until: NaiveDate,
        first_check: DateTime<Utc>,
    ) -> Result<(), sqlx::Error>;
    /// Takes the watch that has been due longest, under a lease so no other check runs it at once.
    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        lease: std::time::Duration,
    ) -> Result<Option<i64>, sqlx::Error>;
    /// Whether an export is due or running: checks wait for them.
    async fn exports_waiting(&self, now: DateTime<Utc>) -> Result<bool, sqlx::Error>;
    /// How many watches are due now (for the dashboard and the metrics).
    async fn due_count(&self, now: DateTime<Utc>) -> Result<i64, sqlx::Error>;
    /// A check that could not finish: tried again at `next`.
    async fn check_failed(
        &self,
        export_id: i64,
        error: &str,
        next: DateTime<Utc>,
    ) -> Result<(), sqlx::Error>;
    /// The flagged hires, those starting soonest first (unknown start dates last).
    async fn flagged(&self, limit: i64) -> Result<Vec<Flagged>, sqlx::Error>;
    /// Watches past their last day, to stop.
    async fn ended(&self, today: NaiveDate) -> Result<Vec<i64>, sqlx::Error>;
    /// The watch of one export, stopped or not.
    async fn find(&self, export_id: i64) -> Result<Option<Watch>, sqlx::Error>;
    /// Records what a check found and when the next is due.
    async fn save_check(&self, export_id: i64, found: &Checked<'_>) -> Result<(), sqlx::Error>;
    /// Writes what one action settled (see [`Settled`]).
    async fn settle(&self, export_id: i64, settled: &Settled<'_>) -> Result<(), sqlx::Error>;
    /// Records a person's decision about a hire that fell through, with its audit entry; false
    /// when the hire is not flagged as fallen through (any more).
    async fn decide(
        &self,
        export_id: i64,
        decision: &str,
        actor: &Actor,
        words: &str,
    ) -> Result<bool, sqlx::Error>;
    /// Makes a watch due at once; false when it is not watched.
    async fn check_soon(&self, export_id: i64) -> Result<bool, sqlx::Error>;
    /// Stops watching a hire, forgetting the body its export sent.
    async fn stop(&self, export_id: i64) -> Result<(), sqlx::Error>;
}

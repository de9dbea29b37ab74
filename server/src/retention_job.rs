//! The hourly retention job: prunes what is older than its window (`integration::retention`).

use integration::Db;
use std::time::Duration;
use tokio::sync::watch;

use integration::retention::Policy;

use crate::config::Config;

pub fn policy(config: &Config) -> Policy {
    Policy {
        webhook_bodies_days: config.retain_webhook_bodies_days,
        call_records_days: config.retain_call_records_days,
        rejected_days: config.retain_rejected_days,
        finished_exports_days: config.retain_finished_exports_days,
        audit_days: config.retain_audit_days,
        ..Policy::default()
    }
}

/// Prunes once an hour, the first time a minute after it starts (not in the way of start-up's own
/// work), until `stop` turns true. A failed run is logged and the next one tries again; it never
/// stops the console.
pub async fn run_hourly(db: Db, policy: Policy, mut stop: watch::Receiver<bool>) {
    let mut pause = Duration::from_secs(60);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = stop.wait_for(|stopped| *stopped) => return,
        }
        pause = Duration::from_secs(3600);
        match db.retention().prune(&policy, chrono::Utc::now()).await {
            Ok(done) if done.rows() > 0 || done.pages_freed > 0 => {
                tracing::info!(
                    rejected_deleted = done.rejected_deleted,
                    bodies_blanked = done.bodies_blanked,
                    call_records_cleared = done.call_records_cleared,
                    finished_exports_trimmed = done.finished_exports_trimmed,
                    audit_deleted = done.audit_deleted,
                    pages_freed = done.pages_freed,
                    "retention pruned old data"
                )
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "retention run failed"),
        }
    }
}

//! The background job that keeps HiBob in step after the export (`integration::watch`): starts
//! watching newly exported hires, stops watches past their last day, and checks the due ones,
//! one at a time and at most `per_minute` a minute. New exports come first: no check starts while
//! an export is due or running, so watching never takes HiBob's or Pinpoint's rate-limit room from
//! a hire that has not reached HiBob yet.
//!
//! It runs on the leader only. Its claims would be safe on every instance (a due watch is taken
//! `FOR UPDATE SKIP LOCKED` under a lease, adoption inserts `ON CONFLICT DO NOTHING`, retiring is
//! idempotent), but `per_minute` is the database's budget of checks, not each instance's.

use std::time::Duration;

use chrono::Utc;
use integration::watch::check::Watcher;
use tokio::sync::watch;

/// How often new exports are adopted and ended watches stopped.
const HOUSEKEEPING: Duration = Duration::from_secs(30);
/// A claimed check not finished in this long may be claimed again.
const LEASE: Duration = Duration::from_secs(120);
/// The sleep between looks at the queue when nothing is due.
const IDLE: Duration = Duration::from_secs(5);
/// The sleep while exports are due or running, so checks resume soon after they are done.
const GIVING_WAY: Duration = Duration::from_secs(1);

enum Turn {
    Checked,
    GaveWay,
    NothingDue,
}

/// Runs until `shutdown` turns true. With `per_minute` 0, watching is off.
pub async fn run(watcher: Watcher, per_minute: u32, mut shutdown: watch::Receiver<bool>) {
    if per_minute == 0 {
        tracing::info!("watching exported hires is off (WATCH_CHECKS_PER_MINUTE=0)");
        return;
    }
    let gap = Duration::from_secs_f64(60.0 / f64::from(per_minute));
    let mut housekept: Option<tokio::time::Instant> = None;
    loop {
        if housekept.is_none_or(|at| at.elapsed() >= HOUSEKEEPING) {
            housekeep(&watcher).await;
            housekept = Some(tokio::time::Instant::now());
        }
        let pause = match next(&watcher).await {
            Ok(Turn::Checked) => gap,
            Ok(Turn::GaveWay) => GIVING_WAY.max(gap),
            Ok(Turn::NothingDue) => IDLE.max(gap),
            Err(e) => {
                tracing::warn!(error = %e, "the watch of exported hires could not read its queue");
                IDLE
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
    }
}

async fn housekeep(watcher: &Watcher) {
    let now = Utc::now();
    // in batches until none is left, so a backlog (an upgrade, a burst) is taken up at once
    let mut adopted = 0;
    loop {
        match watcher.adopt(now).await {
            Ok(0) => break,
            Ok(n) => adopted += n,
            Err(e) => {
                tracing::warn!(error = %e, "exported hires could not be adopted for watching");
                break;
            }
        }
    }
    if adopted > 0 {
        tracing::info!(watches = adopted, "watching newly exported hires");
    }
    match watcher.retire(now.date_naive()).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(watches = n, "stopped watching hires past their last day"),
        Err(e) => tracing::warn!(error = %e, "ended watches could not be stopped"),
    }
}

/// Runs one due check, if exports leave room.
async fn next(watcher: &Watcher) -> Result<Turn, sqlx::Error> {
    let now = Utc::now();
    if watcher.db().watches().exports_waiting(now).await? {
        return Ok(Turn::GaveWay);
    }
    let Some(export_id) = watcher.db().watches().claim_due(now, LEASE).await? else {
        return Ok(Turn::NothingDue);
    };
    match watcher.check(export_id).await {
        Ok(found) => {
            metrics::counter!("hire_checks_total", "result" => "done").increment(1);
            if !found.changes.is_empty() || !found.hired {
                tracing::info!(
                    export_id,
                    changes = found.changes.len(),
                    hired = found.hired,
                    applied = found.applied.len(),
                    "a watched hire differs from HiBob"
                );
            }
        }
        Err(e) => {
            metrics::counter!("hire_checks_total", "result" => "failed").increment(1);
            // the services' own words may quote the candidate: they stay on the export's page
            match e {
                integration::watch::WatchError::Db(e) => {
                    tracing::warn!(export_id, error = %e, "a watched hire could not be checked")
                }
                _ => tracing::warn!(
                    export_id,
                    "a watched hire could not be checked; the reason is on its export page"
                ),
            }
        }
    }
    Ok(Turn::Checked)
}

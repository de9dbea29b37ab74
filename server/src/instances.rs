//! This process's heartbeat on a database several processes share: it keeps the process in the
//! database's list of console processes and reads the list back for `/readyz`, `/metrics` and
//! the dashboard. Where one process serves the database (SQLite) there is nothing to do.

use std::time::Duration;

use integration::{health::Health, Db};
use tokio::sync::watch;

/// How often the process says it is alive.
pub const BEAT: Duration = Duration::from_secs(5);
/// A process not heard from for this long is counted as gone.
pub const GONE_AFTER: Duration = Duration::from_secs(20);

/// Beats until `shutdown`, then leaves the list.
pub async fn run(db: Db, health: Health, mut shutdown: watch::Receiver<bool>) {
    let Some(instances) = db.instances() else {
        return;
    };
    let id = integration::instance::id();
    let version = env!("CARGO_PKG_VERSION");
    tracing::info!(
        instance = id,
        "this console process joins the database's list"
    );
    let mut tick = tokio::time::interval(BEAT);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => break,
        }
        if *shutdown.borrow() {
            break;
        }
        let seen = match instances.beat(id, version).await {
            Ok(()) => instances.alive(GONE_AFTER).await,
            Err(e) => Err(e),
        };
        match seen {
            Ok(alive) => {
                if failing {
                    tracing::info!("the heartbeat reaches the database again");
                    failing = false;
                }
                metrics::gauge!("console_instances_alive").set(alive.len() as f64);
                health.instances(alive.into_iter().map(|m| m.id).collect());
            }
            Err(e) => {
                if !failing {
                    tracing::warn!(error = %e, "cannot record this process's heartbeat");
                    failing = true;
                }
            }
        }
    }
    if let Err(e) = instances.leave(id).await {
        tracing::warn!(error = %e, "could not leave the list of console processes");
    }
}

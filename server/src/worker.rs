//! The export worker: claims due exports one at a time and runs them. SQLite serialises writers
//! anyway and HiBob limits requests per minute, so one worker is the right amount of concurrency.

use std::time::Duration;

use integration::{
    export_pipeline::{AttemptOutcome, Pipeline},
    export_queue::{self, WorkerWake},
    live::{Change, Changes},
};
use sqlx::SqlitePool;
use tokio::sync::watch;

/// A claimed job is given back if the worker has not finished it this long after shutdown began.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Longer than any single attempt can take with the clients' timeouts.
pub const LEASE: Duration = Duration::from_secs(300);
const IDLE_POLL: Duration = Duration::from_secs(30);

pub struct Worker {
    pub pool: SqlitePool,
    pub pipeline: Pipeline,
    pub wake: WorkerWake,
    pub owner: String,
    /// Open pages hear of every claim and every attempt's result.
    pub changes: Changes,
}

impl Worker {
    /// Runs until `shutdown` turns true.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        tracing::info!(owner = %self.owner, "export worker started");
        match export_queue::recover_abandoned(&self.pool, &self.owner).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(
                exports = n,
                "resuming exports a previous process left running"
            ),
            Err(e) => tracing::error!(error = %e, "cannot look for abandoned exports"),
        }
        loop {
            if *shutdown.borrow() {
                break;
            }
            match export_queue::claim(&self.pool, &self.owner, LEASE).await {
                Ok(Some(job)) => {
                    let id = job.id;
                    self.publish(id, export_queue::Status::Running);
                    let work = self.pipeline.run(&job);
                    tokio::pin!(work);
                    let outcome = tokio::select! {
                        outcome = &mut work => Some(outcome),
                        _ = shutdown.changed() => {
                            tokio::time::timeout(SHUTDOWN_GRACE, &mut work).await.ok()
                        }
                    };
                    match outcome {
                        Some(outcome) => self.settle(&job, outcome).await,
                        None => {
                            tracing::warn!(
                                export_id = id,
                                "stopping mid-export: giving the job back"
                            );
                            match export_queue::release(&self.pool, id, &self.owner).await {
                                Ok(()) => self.publish(id, export_queue::Status::Queued),
                                Err(e) => {
                                    tracing::error!(export_id = id, error = %e, "could not release the job; its lease will lapse");
                                }
                            }
                        }
                    }
                }
                Ok(None) => {
                    let sleep = self.idle_time().await;
                    tokio::select! {
                        _ = self.wake.woken() => {}
                        _ = tokio::time::sleep(sleep) => {}
                        _ = shutdown.changed() => {}
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot claim exports");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                        _ = shutdown.changed() => {}
                    }
                }
            }
        }
        tracing::info!("export worker stopped");
    }

    async fn idle_time(&self) -> Duration {
        let due = export_queue::next_due(&self.pool).await.ok().flatten();
        due.and_then(|d| chrono::DateTime::parse_from_rfc3339(&d).ok())
            .map(|d| {
                (d.with_timezone(&chrono::Utc) - chrono::Utc::now())
                    .to_std()
                    .unwrap_or(Duration::ZERO)
            })
            .map(|d| d.min(IDLE_POLL))
            .unwrap_or(IDLE_POLL)
    }

    /// Claims and runs one due export, for tests that drive the queue step by step.
    pub async fn run_once(&self) -> Result<Option<(i64, AttemptOutcome)>, sqlx::Error> {
        let Some(job) = export_queue::claim(&self.pool, &self.owner, LEASE).await? else {
            return Ok(None);
        };
        self.publish(job.id, export_queue::Status::Running);
        let outcome = self.pipeline.run(&job).await;
        self.settle(&job, outcome.clone()).await;
        Ok(Some((job.id, outcome)))
    }

    fn publish(&self, id: i64, status: export_queue::Status) {
        self.changes.publish(Change::Export {
            id,
            status: status.as_str().to_owned(),
        });
    }

    async fn settle(&self, job: &export_queue::Export, outcome: AttemptOutcome) {
        let id = job.id;
        let result = match &outcome {
            AttemptOutcome::Deferred { delay } => {
                export_queue::release_until(&self.pool, id, &self.owner, *delay)
                    .await
                    .map(|()| true)
            }
            AttemptOutcome::Succeeded => export_queue::succeed(&self.pool, id, &self.owner).await,
            AttemptOutcome::NeedsAttention(error) => {
                export_queue::needs_attention(&self.pool, id, &self.owner, error).await
            }
            AttemptOutcome::RetryLater { error, .. } if job.attempts >= job.max_attempts => {
                let error = format!("gave up after {} attempts: {error}", job.attempts);
                export_queue::dead(&self.pool, id, &self.owner, &error).await
            }
            AttemptOutcome::RetryLater { delay, error } => {
                export_queue::retry_later(&self.pool, id, &self.owner, *delay, error).await
            }
        };
        use export_queue::Status;
        let (label, status) = match &outcome {
            AttemptOutcome::Deferred { .. } => ("deferred", Status::Queued),
            AttemptOutcome::Succeeded => ("succeeded", Status::Succeeded),
            AttemptOutcome::NeedsAttention(_) => ("needs_attention", Status::NeedsAttention),
            AttemptOutcome::RetryLater { .. } if job.attempts >= job.max_attempts => {
                ("dead", Status::Dead)
            }
            AttemptOutcome::RetryLater { .. } => ("retry", Status::Queued),
        };
        metrics::counter!("export_attempts_total", "outcome" => label).increment(1);
        match result {
            Ok(true) => {
                self.publish(id, status);
                tracing::info!(
                    export_id = id,
                    attempt = job.attempts,
                    outcome = label,
                    "export attempt finished"
                )
            }
            Ok(false) => tracing::warn!(
                export_id = id,
                "lease lost before the result was saved; another attempt owns it"
            ),
            Err(e) => {
                tracing::error!(export_id = id, error = %e, "cannot save the export result; the lease will lapse and it will run again")
            }
        }
    }
}

//! The export worker: claims due exports and runs as many at once as HiBob's and Pinpoint's
//! pacing has room for, up to `concurrency` (see `exports::admission`; each is still claimed
//! once, under its own lease), every attempt in a task of its own, so a panic inside one export
//! becomes that export's "needs attention" instead of the end of every export. Exports in flight
//! share the outbound clients' rate-limit pacing, so running many at once fills HiBob's windows
//! instead of overrunning them. A supervisor starts the worker
//! again if its loop ever ends unexpectedly and reports the state through [`Health`].

use integration::Db;
use std::time::Duration;

use futures_util::FutureExt;
use integration::{
    alerts::Alerts,
    exports::admission::{Admission, Holdback},
    exports::pipeline::{AttemptOutcome, Pipeline},
    exports::queue::{self as export_queue, WorkerWake},
    health::{Drain, Health},
    lease::Hold,
    live::{Change, Changes},
};
use tokio::{sync::watch, task::JoinSet};

/// A claimed job is given back if the worker has not finished it this long after shutdown began.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
const IDLE_POLL: Duration = Duration::from_secs(30);
/// The shortest idle pause: an export this process's clock calls due may not be due yet on the
/// database's clock, which claims go by, and the worker must not spin until the two agree.
const MIN_IDLE: Duration = Duration::from_millis(50);
/// How long to wait after a failed claim (the database refused) before trying again.
const CLAIM_RETRY: Duration = Duration::from_secs(2);
/// The longest pause between restarts of a worker that keeps ending.
const MAX_RESTART_DELAY: Duration = Duration::from_secs(30);
/// The first pause before saving a result the database refused again; it doubles up to
/// [`MAX_SAVE_RETRY`].
const FIRST_SAVE_RETRY: Duration = Duration::from_millis(200);
const MAX_SAVE_RETRY: Duration = Duration::from_secs(10);
/// A result not saved a quarter of the lease before it runs out is left to the lease: the
/// export may then be claimed again, and a late save must not land on that newer attempt. The
/// same margin ends an attempt's outside calls when renewals keep failing.
const MARGIN_DIVISOR: u32 = 4;

#[derive(Clone)]
pub struct Worker {
    pub db: Db,
    pub pipeline: Pipeline,
    pub wake: WorkerWake,
    pub owner: String,
    /// How long a claim holds an export without renewal; renewed every third of it while the
    /// attempt runs.
    pub lease: Duration,
    /// Open pages hear of every claim and every attempt's result.
    pub changes: Changes,
    /// Attempts an export gets before it is dead (a setting).
    pub max_attempts: i64,
    /// The most exports in flight at once (a setting, at least 1); the pacing decides how many
    /// within it.
    pub concurrency: usize,
    pub health: Health,
    /// Told of every stop and every success, to alert people (in its own task).
    pub alerts: Alerts,
}

/// The text of a panic's payload, when it is text.
fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".to_owned())
}

/// Runs the worker until `shutdown` turns true, starting it again whenever it ends (or panics)
/// before that, with a growing pause between restarts.
pub async fn supervise(worker: Worker, shutdown: watch::Receiver<bool>) {
    let (health, changes) = (worker.health.clone(), worker.changes.clone());
    let runs = std::sync::atomic::AtomicU64::new(0);
    supervise_with(health, changes, shutdown, move |stop| {
        // each run leases under a name of its own: the exports a run that ended left running
        // (their tasks ended with it) are then abandoned ones the next run takes back (at once on
        // SQLite, once their leases lapse where other processes may share the database)
        let n = runs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut run = worker.clone();
        if n > 0 {
            run.owner = format!("{}-restart-{n}", worker.owner);
        }
        run.run(stop)
    })
    .await
}

/// [`supervise`] for any loop `start` makes: each run in a task of its own.
pub async fn supervise_with<F, Fut>(
    health: Health,
    changes: Changes,
    shutdown: watch::Receiver<bool>,
    start: F,
) where
    F: Fn(watch::Receiver<bool>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let mut delay = Duration::from_millis(500);
    loop {
        health.worker_running();
        let run = tokio::spawn(start(shutdown.clone()));
        let cause = match run.await {
            Ok(()) if *shutdown.borrow() => return,
            Ok(()) => "its loop ended".to_owned(),
            Err(e) if e.is_panic() => format!("it panicked: {}", panic_text(&*e.into_panic())),
            Err(e) => format!("its task ended: {e}"),
        };
        tracing::error!(
            restart_in_ms = delay.as_millis() as u64,
            "export worker stopped; starting it again"
        );
        health.worker_stopped(&cause);
        // open dashboards reload and show why exports stopped
        changes.publish(Change::Resync);
        metrics::counter!("export_worker_restarts_total").increment(1);
        let mut shutdown = shutdown.clone();
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.changed() => return,
        }
        delay = (delay * 2).min(MAX_RESTART_DELAY);
    }
}

impl Worker {
    /// Runs until `shutdown` turns true, then lets the exports in flight finish (each within
    /// its grace) before it returns.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let limit = self.concurrency.max(1);
        tracing::info!(owner = %self.owner, concurrency = limit, "export worker started");
        match self
            .db
            .queue()
            .recover_abandoned(&self.owner, self.max_attempts)
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::warn!(
                exports = n,
                "resuming exports a previous process left running"
            ),
            Err(e) => tracing::error!(error = %e, "cannot look for abandoned exports"),
        }
        // submits a previous process was carrying out when it stopped cannot be resumed
        self.settle_cut_off_submits(true).await;
        let mut running = JoinSet::new();
        let mut admission = Admission::new(limit);
        let mut held: Option<Holdback> = None;
        loop {
            if *shutdown.borrow() {
                break;
            }
            while let Some(ended) = running.try_join_next() {
                self.ended(&mut admission, running.len(), ended);
            }
            let decision = admission.decide(running.len(), &self.pipeline.pressure());
            if let Err((why, recheck)) = decision {
                // only worth saying when something is actually waiting
                let waiting = self.something_due().await.then_some(why);
                self.report_drain(&admission, running.len(), waiting, &mut held);
                tokio::select! {
                    Some(ended) = running.join_next() => {
                        self.ended(&mut admission, running.len(), ended);
                    }
                    _ = tokio::time::sleep(recheck) => {}
                    _ = shutdown.changed() => {}
                }
                continue;
            }
            self.report_drain(&admission, running.len(), None, &mut held);
            match self.claim().await {
                Ok(Some(job)) => {
                    running.spawn(self.clone().drive(job, shutdown.clone()));
                    self.report_drain(&admission, running.len(), None, &mut held);
                }
                Ok(None) => {
                    let sleep = self.idle_time().await;
                    tokio::select! {
                        _ = self.wake.woken() => {}
                        _ = tokio::time::sleep(sleep) => {}
                        // a finished export may have changed when the next one is due
                        Some(ended) = running.join_next() => {
                            self.ended(&mut admission, running.len(), ended);
                        }
                        _ = shutdown.changed() => {}
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot claim exports");
                    self.health.worker_failing(&e.to_string());
                    tokio::select! {
                        _ = tokio::time::sleep(CLAIM_RETRY) => {}
                        _ = shutdown.changed() => {}
                    }
                }
            }
        }
        while let Some(ended) = running.join_next().await {
            self.ended(&mut admission, running.len(), ended);
        }
        self.report_drain(&admission, 0, None, &mut held);
        tracing::info!("export worker stopped");
    }

    /// One export's task ended: the latency it saw adjusts how many run at once.
    fn ended(
        &self,
        admission: &mut Admission,
        in_flight: usize,
        ended: Result<(), tokio::task::JoinError>,
    ) {
        reap(ended);
        admission.finished(in_flight + 1, self.pipeline.pressure().slowdown);
    }

    /// Whether an export is due now (so a held-back worker is keeping someone waiting).
    async fn something_due(&self) -> bool {
        let due = self.db.queue().next_due().await.ok().flatten();
        due.and_then(|d| chrono::DateTime::parse_from_rfc3339(&d).ok())
            .is_some_and(|d| d <= chrono::Utc::now())
    }

    /// Tells the dashboard and `/metrics` how many exports are in flight and what holds the
    /// rest back; a change of reason is logged once.
    fn report_drain(
        &self,
        admission: &Admission,
        in_flight: usize,
        why: Option<Holdback>,
        held: &mut Option<Holdback>,
    ) {
        if *held != why {
            if let Some(why) = why {
                tracing::debug!(reason = why.as_str(), in_flight, "due exports held back");
            }
            *held = why;
        }
        metrics::gauge!("exports_in_flight").set(in_flight as f64);
        metrics::gauge!("export_in_flight_limit").set(admission.limit() as f64);
        metrics::gauge!("export_in_flight_bound").set(admission.bound() as f64);
        for reason in Holdback::ALL {
            let on = if why == Some(reason) { 1.0 } else { 0.0 };
            metrics::gauge!("exports_held_back", "reason" => reason.as_str()).set(on);
        }
        self.health.drain(Drain {
            in_flight,
            limit: admission.limit(),
            bound: admission.bound(),
            held_by: why,
        });
    }

    /// Runs one claimed export's attempt to its end, renewing its lease meanwhile, and saves the
    /// result; on shutdown the attempt gets [`SHUTDOWN_GRACE`] to finish, else the job is given
    /// back uncounted.
    async fn drive(self, job: export_queue::Export, mut shutdown: watch::Receiver<bool>) {
        let id = job.id;
        self.publish(id, export_queue::Status::Running);
        let hold = Hold::new();
        let mut renewed = std::time::Instant::now();
        let mut attempt = self.spawn_attempt(&job, hold.clone());
        let outcome = {
            let held = self.renewing(id, &hold, &mut attempt, &mut renewed);
            tokio::pin!(held);
            tokio::select! {
                outcome = &mut held => Some(outcome),
                _ = async {
                    // already stopping when this export was claimed: the grace starts at once
                    if !*shutdown.borrow_and_update() {
                        let _ = shutdown.changed().await;
                    }
                } => {
                    tokio::time::timeout(SHUTDOWN_GRACE, &mut held).await.ok()
                }
            }
        };
        let save_by = renewed + self.lease.saturating_sub(self.margin());
        match outcome {
            Some(outcome) => self.settle(&job, outcome, save_by, Some(&shutdown)).await,
            None => {
                attempt.abort();
                tracing::warn!(export_id = id, "stopping mid-export: giving the job back");
                match self.db.queue().release(id, &self.owner).await {
                    Ok(()) => self.publish(id, export_queue::Status::Queued),
                    Err(e) => {
                        tracing::error!(export_id = id, error = %e, "could not release the job; its lease will lapse");
                    }
                }
            }
        }
    }

    fn margin(&self) -> Duration {
        self.lease / MARGIN_DIVISOR
    }

    /// Awaits the attempt while renewing its lease every third of it. When a renewal finds the
    /// lease taken over, or renewals fail until it may have lapsed, the attempt's [`Hold`] is
    /// lost: it sends nothing more, and its result will not be saved over the newer attempt's.
    /// `renewed` is when the lease was last known to be this worker's.
    async fn renewing(
        &self,
        id: i64,
        hold: &Hold,
        attempt: &mut Attempt,
        renewed: &mut std::time::Instant,
    ) -> AttemptOutcome {
        let every = (self.lease / 3).max(Duration::from_millis(100));
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                outcome = &mut *attempt => return outcome,
                _ = tick.tick() => {
                    match self.db.queue().renew(id, &self.owner, self.lease).await {
                        Ok(true) => *renewed = std::time::Instant::now(),
                        Ok(false) => {
                            if !hold.is_lost() {
                                tracing::warn!(export_id = id, "lease taken over by another attempt; this one sends nothing more");
                                metrics::counter!("export_leases_lost_total").increment(1);
                            }
                            hold.lose();
                        }
                        Err(e) => {
                            tracing::warn!(export_id = id, error = %e, "could not renew an export's lease");
                            if renewed.elapsed() + every + self.margin() >= self.lease && !hold.is_lost() {
                                tracing::warn!(export_id = id, "the lease may lapse before it can be renewed; this attempt sends nothing more");
                                metrics::counter!("export_leases_lost_total").increment(1);
                                hold.lose();
                            }
                        }
                    }
                }
            }
        }
    }

    /// Settles the rows of plugin submits that were cut off: those of a previous process at
    /// start-up, and any whose lease lapsed (a submit abandoned mid-way) later.
    async fn settle_cut_off_submits(&self, at_start: bool) {
        match self.db.plugin_attempts().settle_cut_off(at_start).await {
            Ok(ids) => {
                for id in ids {
                    tracing::warn!(
                        export_id = id,
                        "a plugin submit was cut off: needs attention"
                    );
                    self.publish(id, export_queue::Status::NeedsAttention);
                    self.alert(id, export_queue::Status::NeedsAttention).await;
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot look for cut-off plugin submits"),
        }
    }

    /// Buries exports whose every attempt died mid-way, settles cut-off plugin submits, then
    /// claims the next due one.
    async fn claim(&self) -> Result<Option<export_queue::Export>, sqlx::Error> {
        for id in self.db.queue().bury_exhausted(self.max_attempts).await? {
            tracing::warn!(export_id = id, "export stopped mid-attempt too often: dead");
            metrics::counter!("export_attempts_total", "outcome" => "dead").increment(1);
            self.publish(id, export_queue::Status::Dead);
            self.alert(id, export_queue::Status::Dead).await;
        }
        self.settle_cut_off_submits(false).await;
        let job = self
            .db
            .queue()
            .claim(&self.owner, self.lease, self.max_attempts)
            .await?;
        self.health.worker_claimed();
        Ok(job)
    }

    /// Runs one attempt in its own task, under `hold`; a panic in it becomes the attempt's
    /// outcome.
    fn spawn_attempt(&self, job: &export_queue::Export, hold: Hold) -> Attempt {
        let pipeline = self.pipeline.clone();
        let job = job.clone();
        Attempt(tokio::spawn(async move {
            hold.scope(std::panic::AssertUnwindSafe(pipeline.run(&job)).catch_unwind())
                .await
                .unwrap_or_else(|payload| panicked(&*payload))
        }))
    }

    async fn idle_time(&self) -> Duration {
        let due = self.db.queue().next_due().await.ok().flatten();
        due.and_then(|d| chrono::DateTime::parse_from_rfc3339(&d).ok())
            .map(|d| {
                (d.with_timezone(&chrono::Utc) - chrono::Utc::now())
                    .to_std()
                    .unwrap_or(Duration::ZERO)
            })
            .map(|d| d.clamp(MIN_IDLE, IDLE_POLL))
            .unwrap_or(IDLE_POLL)
    }

    /// Claims and runs one due export, for tests that drive the queue step by step.
    pub async fn run_once(&self) -> Result<Option<(i64, AttemptOutcome)>, sqlx::Error> {
        let Some(job) = self.claim().await? else {
            return Ok(None);
        };
        self.publish(job.id, export_queue::Status::Running);
        let hold = Hold::new();
        let mut renewed = std::time::Instant::now();
        let mut attempt = self.spawn_attempt(&job, hold.clone());
        let outcome = self
            .renewing(job.id, &hold, &mut attempt, &mut renewed)
            .await;
        let save_by = renewed + self.lease.saturating_sub(self.margin());
        self.settle(&job, outcome.clone(), save_by, None).await;
        Ok(Some((job.id, outcome)))
    }

    /// Queues the alert a stop calls for, or the recovery note a success may. An alert that
    /// cannot be queued is logged; the export's own result is already saved.
    async fn alert(&self, id: i64, status: export_queue::Status) {
        use export_queue::Status;
        let queued = match status {
            Status::NeedsAttention | Status::Dead => self.alerts.stopped(id).await,
            Status::Succeeded => self.alerts.succeeded().await,
            _ => Ok(()),
        };
        if let Err(e) = queued {
            tracing::warn!(export_id = id, error = %e, "cannot queue an alert");
        }
    }

    fn publish(&self, id: i64, status: export_queue::Status) {
        self.changes.publish(Change::Export {
            id,
            status: status.as_str().to_owned(),
        });
    }

    /// Saves the attempt's result. A database that refuses the write (a full disk) is asked
    /// again with a growing pause until `save_by`, so the export is settled as soon as writes
    /// work again rather than when its lease lapses; the result is held in memory meanwhile. A
    /// worker that is `stopping` does not wait: the next start resumes the export.
    async fn settle(
        &self,
        job: &export_queue::Export,
        outcome: AttemptOutcome,
        save_by: std::time::Instant,
        stopping: Option<&watch::Receiver<bool>>,
    ) {
        let mut pause = FIRST_SAVE_RETRY;
        let result = loop {
            let stopping = stopping.is_some_and(|s| *s.borrow());
            match self.save(job, &outcome).await {
                Err(e) if !stopping && std::time::Instant::now() + pause < save_by => {
                    tracing::warn!(export_id = job.id, error = %e, retry_in_ms = pause.as_millis() as u64, "cannot save the export result yet; trying again");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(MAX_SAVE_RETRY);
                }
                result => break result,
            }
        };
        self.report(job, &outcome, result).await;
    }

    /// Writes the attempt's result; `Ok(false)` when the lease was lost to another attempt.
    async fn save(
        &self,
        job: &export_queue::Export,
        outcome: &AttemptOutcome,
    ) -> Result<bool, sqlx::Error> {
        let id = job.id;
        match outcome {
            AttemptOutcome::Deferred { delay } => self
                .db
                .queue()
                .release_until(id, &self.owner, *delay)
                .await
                .map(|()| true),
            AttemptOutcome::Succeeded => self.db.queue().succeed(id, &self.owner).await,
            AttemptOutcome::NeedsAttention(error) => {
                self.db
                    .queue()
                    .needs_attention(id, &self.owner, error)
                    .await
            }
            AttemptOutcome::RetryLater { error, .. } if job.attempts >= self.max_attempts => {
                let error = format!("gave up after {} attempts: {error}", job.attempts);
                self.db.queue().dead(id, &self.owner, &error).await
            }
            AttemptOutcome::RetryLater { delay, error } => {
                self.db
                    .queue()
                    .retry_later(id, &self.owner, *delay, error)
                    .await
            }
        }
    }

    /// Counts, publishes, alerts and logs the attempt's saved (or unsaved) result.
    async fn report(
        &self,
        job: &export_queue::Export,
        outcome: &AttemptOutcome,
        result: Result<bool, sqlx::Error>,
    ) {
        let id = job.id;
        use export_queue::Status;
        let (label, status) = match outcome {
            AttemptOutcome::Deferred { .. } => ("deferred", Status::Queued),
            AttemptOutcome::Succeeded => ("succeeded", Status::Succeeded),
            AttemptOutcome::NeedsAttention(_) => ("needs_attention", Status::NeedsAttention),
            AttemptOutcome::RetryLater { .. } if job.attempts >= self.max_attempts => {
                ("dead", Status::Dead)
            }
            AttemptOutcome::RetryLater { .. } => ("retry", Status::Queued),
        };
        metrics::counter!("export_attempts_total", "outcome" => label).increment(1);
        match result {
            Ok(true) => {
                self.publish(id, status);
                self.alert(id, status).await;
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

/// What an attempt that panicked is left saying. The panic's own text is kept for the export's
/// page (it may quote candidate data, so it is not logged).
fn panicked(payload: &(dyn std::any::Any + Send)) -> AttemptOutcome {
    tracing::error!("an export attempt panicked; the export needs attention");
    metrics::counter!("export_attempt_panics_total").increment(1);
    let text: String = panic_text(payload).chars().take(300).collect();
    AttemptOutcome::NeedsAttention(format!(
        "the export stopped on an internal error ({text}); other exports are not affected. \
         Retry it once the cause is fixed"
    ))
}

/// The end of one export's task in the worker. The attempt inside it has its own task and
/// catches its own panics, so a panic here is in saving the result: the lease lapses and the
/// export runs again.
fn reap(ended: Result<(), tokio::task::JoinError>) {
    if let Err(e) = ended {
        if e.is_panic() {
            tracing::error!(
                "saving an export's result panicked; it runs again when its lease lapses"
            );
            metrics::counter!("export_attempt_panics_total").increment(1);
        }
    }
}

/// One attempt's task: awaiting it gives the outcome, whether the task ended, panicked or was
/// cancelled. Dropping it stops the attempt, so a worker that ends mid-export leaves no attempt
/// running unwatched.
struct Attempt(tokio::task::JoinHandle<AttemptOutcome>);

impl Attempt {
    fn abort(&self) {
        self.0.abort();
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl std::future::Future for Attempt {
    type Output = AttemptOutcome;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0).poll(cx).map(|r| match r {
            Ok(outcome) => outcome,
            Err(e) if e.is_panic() => panicked(&*e.into_panic()),
            Err(e) => AttemptOutcome::RetryLater {
                delay: Duration::from_secs(10),
                error: format!("the attempt was stopped: {e}"),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use integration::health::WorkerState;
    use std::sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    };

    #[tokio::test]
    async fn a_worker_that_panics_is_started_again_and_reported() {
        let health = Health::default();
        let starts = Arc::new(AtomicUsize::new(0));
        let (stop, shutdown) = watch::channel(false);
        let supervisor = tokio::spawn({
            let (health, starts) = (health.clone(), starts.clone());
            supervise_with(health, Changes::default(), shutdown, move |mut stop| {
                let n = starts.fetch_add(1, Ordering::SeqCst);
                async move {
                    if n == 0 {
                        panic!("claim loop broke");
                    }
                    let _ = stop.changed().await;
                }
            })
        });
        for _ in 0..100 {
            if starts.load(Ordering::SeqCst) >= 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(
            starts.load(Ordering::SeqCst),
            2,
            "started again after the panic"
        );
        let snapshot = health.snapshot();
        assert_eq!(snapshot.worker, WorkerState::Running);
        assert_eq!(snapshot.worker_restarts, 1, "and the restart is counted");
        stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(5), supervisor)
            .await
            .expect("stops on shutdown")
            .unwrap();
    }

    #[tokio::test]
    async fn while_it_is_down_the_cause_is_reported() {
        let health = Health::default();
        let (_stop, shutdown) = watch::channel(false);
        let supervisor = tokio::spawn(supervise_with(
            health.clone(),
            Changes::default(),
            shutdown,
            |_| async { panic!("always") },
        ));
        tokio::time::sleep(Duration::from_millis(100)).await;
        let reason = health.snapshot().exports_stopped().unwrap_or_default();
        assert!(reason.contains("it panicked: always"), "{reason}");
        supervisor.abort();
    }

    #[tokio::test]
    async fn a_panicking_attempt_is_that_attempts_outcome() {
        fn buggy(input: &str) -> AttemptOutcome {
            panic!("a bug in one export: {input}")
        }
        let attempt = Attempt(tokio::spawn(async { buggy("x") }));
        match attempt.await {
            AttemptOutcome::NeedsAttention(why) => {
                assert!(
                    why.contains("internal error (a bug in one export: x)"),
                    "{why}"
                )
            }
            other => panic!("{other:?}"),
        }
    }
}

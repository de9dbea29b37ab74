//! What the process knows about its own moving parts, for `/readyz`, `/metrics` and the
//! dashboard: whether the export worker runs (and why not), and whether the webhook intake could
//! store its last deliveries. Held in memory: it describes this process, not the database.

use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::exports::admission::Holdback;

/// How the worker drains the queue right now: how many exports are in flight and, when it could
/// start more but does not, why.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drain {
    pub in_flight: usize,
    /// The most in flight the services' latency allows now.
    pub limit: usize,
    /// `EXPORT_CONCURRENCY`; 0 when no worker runs in this process.
    pub bound: usize,
    /// Set while due exports wait for room.
    pub held_by: Option<Holdback>,
}

impl Drain {
    /// In words, for the dashboard's queue panel.
    pub fn describe(&self) -> String {
        let base = format!(
            "{} in flight (up to {} now, at most {})",
            self.in_flight, self.limit, self.bound
        );
        match self.held_by {
            Some(why) => format!("{base}; more are due: {}", why.describe()),
            None => base,
        }
    }
}

/// The export worker's state as its supervisor and its loop report it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum WorkerState {
    /// No worker in this process (tests that drive the queue by hand, or before start-up).
    NotStarted,
    Running,
    /// The worker ended unexpectedly; the supervisor starts it again shortly.
    Restarting {
        cause: String,
        since: String,
    },
    /// The worker runs but cannot claim exports (the database refuses).
    Failing {
        cause: String,
        since: String,
    },
}

/// A copy of everything the process knows, taken at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub worker: WorkerState,
    /// How often the supervisor has had to start the worker again since the process started.
    pub worker_restarts: u64,
    /// Set while the webhook intake's latest write failed: deliveries are answered 503.
    pub intake_failing: Option<String>,
    #[serde(default)]
    pub drain: Drain,
    /// The console processes the database last saw alive, this one among them once its first
    /// heartbeat is in; empty where one process serves the database (SQLite).
    #[serde(default)]
    pub instances: Vec<String>,
    /// Whether this process hears the other consoles' notices (their changes for open pages,
    /// exports due, caches to forget); `None` where no other console can share the database.
    #[serde(default)]
    pub relay_listening: Option<bool>,
}

impl Snapshot {
    /// Why exports are not running, in words for the dashboard, when they are not.
    pub fn exports_stopped(&self) -> Option<String> {
        match &self.worker {
            WorkerState::NotStarted | WorkerState::Running => None,
            WorkerState::Restarting { cause, since } => Some(format!(
                "The export worker stopped at {since} ({cause}) and is being started again."
            )),
            WorkerState::Failing { cause, since } => {
                Some(format!("Exports cannot be claimed since {since}: {cause}"))
            }
        }
    }
}

#[derive(Debug)]
struct Inner {
    worker: WorkerState,
    worker_restarts: u64,
    intake_failing: Option<String>,
    /// When the last readiness write probe succeeded.
    write_ok_at: Option<std::time::Instant>,
    drain: Drain,
    instances: Vec<String>,
    relay_listening: Option<bool>,
}

/// Shared by the worker's supervisor, the worker loop, the intake and the HTTP handlers.
#[derive(Debug, Clone)]
pub struct Health {
    inner: Arc<Mutex<Inner>>,
}

impl Default for Health {
    fn default() -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner {
                worker: WorkerState::NotStarted,
                worker_restarts: 0,
                intake_failing: None,
                write_ok_at: None,
                drain: Drain::default(),
                instances: Vec::new(),
                relay_listening: None,
            })),
        }
    }
}

/// Error texts are cut to this many characters: they are shown, not stored.
const CAUSE_CHARS: usize = 300;

fn short(cause: &str) -> String {
    cause.chars().take(CAUSE_CHARS).collect()
}

impl Health {
    fn update(&self, change: impl FnOnce(&mut Inner)) {
        // a poisoned lock only means a panic elsewhere while holding it; the data is still
        // a whole value, so keep using it
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        change(&mut inner);
    }

    pub fn snapshot(&self) -> Snapshot {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        Snapshot {
            worker: inner.worker.clone(),
            worker_restarts: inner.worker_restarts,
            intake_failing: inner.intake_failing.clone(),
            drain: inner.drain.clone(),
            instances: inner.instances.clone(),
            relay_listening: inner.relay_listening,
        }
    }

    /// Whether the connection carrying the other consoles' notices is up.
    pub fn relay_listening(&self, listening: bool) {
        self.update(|inner| inner.relay_listening = Some(listening));
    }

    /// The console processes the database saw alive at the latest heartbeat.
    pub fn instances(&self, alive: Vec<String>) {
        self.update(|inner| inner.instances = alive);
    }

    /// The worker's latest count of exports in flight and what holds the rest back.
    pub fn drain(&self, drain: Drain) {
        self.update(|i| i.drain = drain);
    }

    pub fn worker_running(&self) {
        self.update(|i| i.worker = WorkerState::Running);
    }

    /// The worker ended without being asked to; the supervisor will start it again.
    pub fn worker_stopped(&self, cause: &str) {
        self.update(|i| {
            i.worker = WorkerState::Restarting {
                cause: short(cause),
                since: crate::db::now_text(),
            };
            i.worker_restarts = i.worker_restarts.saturating_add(1);
        });
    }

    /// A claim failed; the first failure's time is kept until a claim succeeds again.
    pub fn worker_failing(&self, cause: &str) {
        self.update(|i| {
            let since = match &i.worker {
                WorkerState::Failing { since, .. } => since.clone(),
                _ => crate::db::now_text(),
            };
            i.worker = WorkerState::Failing {
                cause: short(cause),
                since,
            };
        });
    }

    /// A claim succeeded (or found nothing to do).
    pub fn worker_claimed(&self) {
        self.update(|i| {
            if matches!(i.worker, WorkerState::Failing { .. }) {
                i.worker = WorkerState::Running;
            }
        });
    }

    /// Whether a write probe succeeded less than `max_age` ago. Failures are not remembered, so
    /// a database that can write again is seen at the next check.
    pub fn wrote_within(&self, max_age: std::time::Duration) -> bool {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.write_ok_at.is_some_and(|at| at.elapsed() < max_age)
    }

    pub fn write_probe_succeeded(&self) {
        self.update(|i| i.write_ok_at = Some(std::time::Instant::now()));
    }

    pub fn intake_stored(&self) {
        self.update(|i| i.intake_failing = None);
    }

    pub fn intake_failed(&self, cause: &str) {
        self.update(|i| i.intake_failing = Some(short(cause)));
    }
}

/// The database checks `/readyz` and the dashboard make, whichever engine holds it.
#[async_trait::async_trait]
pub trait Probes: Send + Sync {
    /// Readiness: the database answers, takes a write, and every migration this binary knows is
    /// applied.
    async fn readiness(&self) -> Result<(), String>;
    /// The reading half of [`readiness`]: the database answers and every migration is applied.
    async fn schema_readiness(&self) -> Result<(), String>;
    /// One small write, as any delivery or export needs: a full disk or a read-only file fails it.
    /// Each is a commit (an fsync), so frequent callers should not run it on every request.
    async fn write_probe(&self) -> Result<(), String>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_move_as_the_worker_reports() {
        let health = Health::default();
        assert_eq!(health.snapshot().exports_stopped(), None);
        health.worker_running();
        health.worker_failing("disk I/O error");
        let first = health.snapshot();
        health.worker_failing("disk I/O error again");
        let WorkerState::Failing { since, cause } = health.snapshot().worker else {
            panic!("failing");
        };
        assert!(matches!(first.worker, WorkerState::Failing { since: ref s, .. } if *s == since));
        assert_eq!(cause, "disk I/O error again");
        assert!(health
            .snapshot()
            .exports_stopped()
            .is_some_and(|t| t.contains("cannot be claimed")));
        health.worker_claimed();
        assert_eq!(health.snapshot().worker, WorkerState::Running);
        health.worker_stopped(&"x".repeat(1000));
        let snap = health.snapshot();
        assert_eq!(snap.worker_restarts, 1);
        assert!(snap.exports_stopped().is_some_and(|t| t.len() < 500));
        health.intake_failed("database or disk is full");
        assert!(health.snapshot().intake_failing.is_some());
        health.intake_stored();
        assert_eq!(health.snapshot().intake_failing, None);
        assert!(!health.wrote_within(std::time::Duration::from_secs(5)));
        health.write_probe_succeeded();
        assert!(health.wrote_within(std::time::Duration::from_secs(5)));
        assert!(!health.wrote_within(std::time::Duration::ZERO));
    }
}

//! Waking the export workers when an export becomes due now (a new hire, a retry), instead of at
//! their next poll: this process's at once, and where several instances share the database,
//! theirs through the relay, so that whichever is idle claims it.

use super::queue::WorkerWake;
use crate::live::{Notice, Outlet};

#[derive(Debug, Clone, Default)]
pub struct WakeWorkers {
    here: WorkerWake,
    elsewhere: Outlet,
}

impl WakeWorkers {
    /// Wakes `here`, and the workers the relay behind `elsewhere` reaches.
    pub fn new(here: WorkerWake, elsewhere: Outlet) -> Self {
        Self { here, elsewhere }
    }

    pub fn wake(&self) {
        self.here.wake();
        self.elsewhere.send(Notice::Due);
    }

    /// This process's worker alone: what it waits on, and what the relay wakes.
    pub fn here(&self) -> &WorkerWake {
        &self.here
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_wake_reaches_the_worker_here_and_the_relay() {
        let outlet = Outlet::default();
        let mut outbox = outlet.attach().unwrap();
        let wake = WakeWorkers::new(WorkerWake::default(), outlet);
        let here = wake.here().clone();
        wake.wake();
        tokio::time::timeout(Duration::from_secs(1), here.woken())
            .await
            .unwrap();
        assert_eq!(outbox.next(10).await, Some(vec![Notice::Due]));
    }
}

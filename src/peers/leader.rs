//! Which instance runs the jobs meant to run once per database (the alerts dispatcher, the watch
//! of exported hires, retention, the purge of expired sessions). The engine elects
//! (`store_postgres::peers::elect`); [`Leadership`] is what the rest of the process reads, and
//! [`while_leader`] runs a job for as long as this process leads.

use std::{future::Future, sync::Arc};

use tokio::sync::watch;

/// Whether this process leads now, and a way to wait for that to change. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Leadership {
    state: Arc<watch::Sender<bool>>,
}

impl Leadership {
    /// A process alone on its database (SQLite): it always leads.
    pub fn alone() -> Self {
        Self {
            state: Arc::new(watch::channel(true).0),
        }
    }

    /// A process sharing its database: it leads once an election says so.
    pub fn contested() -> Self {
        Self {
            state: Arc::new(watch::channel(false).0),
        }
    }

    pub fn is_leader(&self) -> bool {
        *self.state.borrow()
    }

    /// For whoever shows or waits on it.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.state.subscribe()
    }

    /// The election's verdict; said only when it changes.
    pub fn set(&self, leading: bool) {
        self.state
            .send_if_modified(|now| std::mem::replace(now, leading) != leading);
    }
}

/// Runs `job` while this process leads, until `stop` turns true (a `stop` whose sender is gone
/// never does): started when leadership is won, told to stop (its receiver turns true) when it is
/// lost and awaited, and started again on the next win. A job that ends by itself is not started
/// again until leadership is lost and won.
pub async fn while_leader<F, Fut>(
    leadership: Leadership,
    mut stop: watch::Receiver<bool>,
    mut job: F,
) where
    F: FnMut(watch::Receiver<bool>) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut leading = leadership.subscribe();
    loop {
        tokio::select! {
            won = leading.wait_for(|leads| *leads) => if won.is_err() { return },
            () = stopped(&mut stop) => return,
        }
        let (halt, halted) = watch::channel(false);
        let run = job(halted);
        tokio::pin!(run);
        let ended_by_itself = tokio::select! {
            () = &mut run => true,
            _ = leading.wait_for(|leads| !*leads) => false,
            () = stopped(&mut stop) => false,
        };
        if !ended_by_itself {
            halt.send_replace(true);
            run.await;
        } else {
            tokio::select! {
                _ = leading.wait_for(|leads| !*leads) => {}
                () = stopped(&mut stop) => return,
            }
        }
        if *stop.borrow() {
            return;
        }
    }
}

async fn stopped(stop: &mut watch::Receiver<bool>) {
    if stop.wait_for(|stopped| *stopped).await.is_err() {
        std::future::pending::<()>().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::{
        sync::atomic::{AtomicUsize, Ordering},
        time::Duration,
    };

    /// A job that counts its runs and how many run at once, until told to stop.
    fn counting(
        started: Arc<AtomicUsize>,
        running: Arc<AtomicUsize>,
    ) -> impl FnMut(watch::Receiver<bool>) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>>
    {
        move |mut halted| {
            let (started, running) = (Arc::clone(&started), Arc::clone(&running));
            Box::pin(async move {
                started.fetch_add(1, Ordering::SeqCst);
                running.fetch_add(1, Ordering::SeqCst);
                let _ = halted.wait_for(|h| *h).await;
                running.fetch_sub(1, Ordering::SeqCst);
            })
        }
    }

    async fn settle() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    #[tokio::test]
    async fn a_job_runs_only_while_leading_and_stops_when_leadership_is_lost() {
        let leadership = Leadership::contested();
        let (stop, stopped) = watch::channel(false);
        let (started, running) = (Arc::default(), Arc::<AtomicUsize>::default());
        let task = tokio::spawn(while_leader(
            leadership.clone(),
            stopped,
            counting(Arc::clone(&started), Arc::clone(&running)),
        ));
        settle().await;
        assert_eq!(started.load(Ordering::SeqCst), 0, "not before leading");
        leadership.set(true);
        settle().await;
        assert_eq!(running.load(Ordering::SeqCst), 1);
        leadership.set(false);
        settle().await;
        assert_eq!(running.load(Ordering::SeqCst), 0, "stopped with leadership");
        leadership.set(true);
        settle().await;
        assert_eq!(
            started.load(Ordering::SeqCst),
            2,
            "started again on a new win"
        );
        stop.send_replace(true);
        tokio::time::timeout(Duration::from_secs(1), task)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(running.load(Ordering::SeqCst), 0, "stopped at shutdown");
    }

    #[tokio::test]
    async fn a_job_that_ends_by_itself_waits_for_the_next_term() {
        let leadership = Leadership::alone();
        // no one will ever say stop
        let stopped = watch::channel(false).1;
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&runs);
        tokio::spawn(while_leader(leadership.clone(), stopped, move |_| {
            counted.fetch_add(1, Ordering::SeqCst);
            async {}
        }));
        settle().await;
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        settle().await;
        assert_eq!(runs.load(Ordering::SeqCst), 1, "not run in a loop");
        leadership.set(false);
        settle().await;
        leadership.set(true);
        settle().await;
        assert_eq!(runs.load(Ordering::SeqCst), 2, "run again in the next term");
    }
}

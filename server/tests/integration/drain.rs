//! How many exports run at once: HiBob's and Pinpoint's pacing decides, not a fixed number, and
//! the dashboard and `/metrics` say what holds the rest back.

use std::time::Duration;

use crate::{
    common::{
        fakes::{simulator_args, simulators},
        process::Tally,
        TestApp,
    },
    webhooks::{all_succeed, deliver_all_at_once},
};
use integration::exports::admission::Holdback;

/// Runs the worker until `hires` exports succeeded, sampling what it reports as it goes: the most
/// in flight at once, and every reason it gave for holding exports back. One hire goes first, so
/// the burst meets a worker that has heard the services' windows and answer times, as it does in
/// production (the very first burst after start-up would otherwise race that first answer).
async fn drain(app: &TestApp, hires: usize) -> (usize, Vec<Holdback>) {
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(server::worker::supervise(app.worker.clone(), shutdown));
    deliver_all_at_once(app, &[1], 1).await;
    assert!(all_succeed(app, 1, Duration::from_secs(30)).await);
    let health = app.worker.health.clone();
    let (done, mut finished) = tokio::sync::watch::channel(false);
    let sampler = tokio::spawn(async move {
        let (mut most, mut reasons) = (0, Vec::new());
        loop {
            let drain = health.snapshot().drain;
            most = most.max(drain.in_flight);
            if let Some(why) = drain.held_by {
                if !reasons.contains(&why) {
                    reasons.push(why);
                }
            }
            if *finished.borrow_and_update() && drain.in_flight == 0 && drain.held_by.is_none() {
                return (most, reasons);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    let ids: Vec<usize> = (2..=hires).collect();
    deliver_all_at_once(app, &ids, 1).await;
    assert!(
        all_succeed(app, hires as i64, Duration::from_secs(120)).await,
        "{:?}",
        app.sql
            .rows::<(String, Option<String>)>(
                "SELECT status, last_error FROM exports WHERE status <> 'succeeded'",
                &[]
            )
            .await
    );
    let _ = done.send(true);
    let seen = tokio::time::timeout(Duration::from_secs(10), sampler)
        .await
        .expect("the worker reports the queue drained")
        .unwrap();
    let _ = stop.send(true);
    let _ = worker.await;
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_room_at_hibob_far_more_than_eight_run_at_once() {
    let sims = simulators().await;
    // a distant HiBob that announces no limit: only latency limits the drain
    sims.state.set_call_delay(Duration::from_millis(200));
    sims.state.set_rate_limits_announced(false);
    let app = TestApp::spawn_with(&simulator_args(&sims, &[] as &[&str])).await;
    const HIRES: usize = 60;
    let (most, reasons) = drain(&app, HIRES).await;
    // with a fixed eight this is eight; how far above depends on how fast the hires arrive and
    // on the machine's load (answers slowed by a busy machine cut the limit too)
    assert!(
        most > 8,
        "the pacing, not a fixed eight, limits exports in flight: at most {most} ran at once, \
         held back by {reasons:?}"
    );
    let tally = Tally::of(&sims.state, HIRES);
    assert!(tally.exactly_once(HIRES), "{tally:?}");

    let admin = app.admin().await;
    let metrics = app.page(&admin, "/metrics").await;
    for gauge in [
        "exports_in_flight",
        "export_in_flight_limit",
        r#"exports_held_back{reason="hibob_budget"}"#,
    ] {
        assert!(metrics.contains(gauge), "{gauge} missing from {metrics}");
    }
    let dashboard = app.page(&admin, "/").await;
    assert!(
        dashboard.contains("0 in flight (up to"),
        "the queue panel says what is in flight: {dashboard}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_window_holds_new_exports_back_with_at_most_one_429_a_window() {
    let sims = simulators().await;
    // 3 calls per endpoint per 2 s, 429 beyond, every answer announcing the window: well under
    // the pace the burst would go at unhindered, on either engine (a PostgreSQL console's own
    // calls are a little slower, as each takes its place in a gate kept in the database)
    sims.state.set_rate_window(3, 2);
    sims.state.set_call_delay(Duration::from_millis(50));
    let app = TestApp::spawn_with(&simulator_args(&sims, &[] as &[&str])).await;
    const HIRES: usize = 18;
    let (_, reasons) = drain(&app, HIRES).await;
    let windows = sims.state.rate_limited_windows();
    assert!(
        windows.iter().all(|(_, _, n)| *n <= 1),
        "at most one 429 per window however many may be in flight: {windows:?}"
    );
    assert!(
        reasons.contains(&Holdback::HibobBudget) || reasons.contains(&Holdback::PinpointBudget),
        "the worker said it waited for a window: {reasons:?}"
    );
    let tally = Tally::of(&sims.state, HIRES);
    assert!(tally.exactly_once(HIRES), "{tally:?}");
}

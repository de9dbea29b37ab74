//! Kill -9 in the middle of exports, restart, and check that nothing acknowledged is lost and
//! nothing is done twice: the real binary, a real SQLite file, the sandbox's stateful fakes.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use crate::common::{
    fakes::simulators,
    process::{self, Tally},
    webhook::SECRET,
};
use server::sandbox::SimState;

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_pinpoint-hibob"))
}

struct Scenario {
    hires: usize,
    /// `EXPORT_CONCURRENCY`.
    concurrency: usize,
    /// The kill comes once HiBob has seen this many creates.
    kill_after_creates: usize,
    /// Deliver every hire at once rather than one after another.
    burst: bool,
    /// How the simulators behave.
    setup: fn(&SimState),
}

/// Delivers the hires, kills the console mid-export, starts it again and waits until every
/// export has succeeded; returns what HiBob and Pinpoint hold then.
async fn kill_mid_export_then_restart(scenario: Scenario) -> Tally {
    let hires = scenario.hires;
    let sims = simulators().await;
    (scenario.setup)(&sims.state);

    let dir = tempfile::tempdir().unwrap();
    let port = process::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let database = format!("sqlite://{}/crash.db", dir.path().display());
    let mut env = process::environment(&sims, &database, port, SECRET);
    env.insert("EXPORT_CONCURRENCY", scenario.concurrency.to_string());

    let mut child = process::spawn(binary(), &env);
    process::wait_ready(&base, "/readyz").await;
    let client = reqwest::Client::new();
    let acknowledged: Vec<bool> = if scenario.burst {
        let sends: Vec<_> = (1..=hires)
            .map(|id| {
                let (client, base) = (client.clone(), base.clone());
                tokio::spawn(async move { process::deliver(&client, &base, SECRET, id).await })
            })
            .collect();
        let mut acknowledged = Vec::new();
        for send in sends {
            acknowledged.push(send.await.unwrap());
        }
        acknowledged
    } else {
        let mut acknowledged = Vec::new();
        for id in 1..=hires {
            acknowledged.push(process::deliver(&client, &base, SECRET, id).await);
        }
        acknowledged
    };
    assert!(acknowledged.iter().all(|a| *a), "every hire acknowledged");
    // let the worker get part of the way through, then pull the plug
    let deadline = Instant::now() + Duration::from_secs(30);
    while sims.state.create_calls() < scenario.kill_after_creates && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    child.kill().expect("SIGKILL");
    child.wait().ok();
    assert!(
        sims.state.employees().len() < hires,
        "the kill came too late to test anything"
    );

    let mut child = process::spawn(binary(), &env);
    process::wait_ready(&base, "/readyz").await;
    let sql =
        store_postgres::test_sql::Sql::Sqlite(integration::db::open(&database).await.unwrap());
    process::wait_until_succeeded(&sql, hires, Duration::from_secs(90)).await;
    child.kill().ok();
    child.wait().ok();

    for id in 1..=hires {
        let stored: i64 = sql.scalar("SELECT COUNT(*) FROM webhook_deliveries WHERE application_id = ? AND outcome = 'accepted'", &[id.to_string().into()]).await;
        assert_eq!(
            stored, 1,
            "acknowledged delivery for application {id} is stored"
        );
    }
    let statuses: Vec<(String, String)> = sql
        .rows(
            "SELECT pinpoint_application_id, status FROM exports ORDER BY id",
            &[],
        )
        .await;
    assert_eq!(statuses.len(), hires);
    assert!(
        statuses.iter().all(|(_, s)| s == "succeeded"),
        "{statuses:?}"
    );
    let tally = Tally::of(&sims.state, hires);
    assert_eq!(
        (
            tally.employees,
            tally.duplicate_employees,
            tally.wrong_cvs,
            tally.missing_comments
        ),
        (hires, 0, 0, 0),
        "one employee, one CV and a comment per hire: {tally:?}"
    );
    tally
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_export_then_restart_loses_nothing_and_repeats_nothing() {
    let tally = kill_mid_export_then_restart(Scenario {
        hires: 24,
        concurrency: 1,
        kill_after_creates: 8,
        burst: false,
        // creates take a while, so the kill lands while one is in flight
        setup: |state| state.set_create_delay(Duration::from_millis(150)),
    })
    .await;
    // A comment acknowledged by Pinpoint in the instant before the kill, but not yet recorded, is
    // posted again: Pinpoint offers no way to look comments up. One export in flight at the kill
    // can cause at most one.
    assert!(tally.second_comments <= 1, "{tally:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_burst_of_parallel_paced_exports_then_restart_repeats_nothing() {
    const CONCURRENCY: usize = 8;
    let tally = kill_mid_export_then_restart(Scenario {
        hires: 40,
        concurrency: CONCURRENCY,
        kill_after_creates: 16,
        burst: true,
        // every call slow and every endpoint limited, so the kill finds several exports in
        // flight, some of them waiting for their turn in a window
        setup: |state| {
            state.set_call_delay(Duration::from_millis(100));
            state.set_rate_window(10, 2);
        },
    })
    .await;
    // as above, for each export in flight at the kill
    assert!(tally.second_comments <= CONCURRENCY, "{tally:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_with_dozens_in_flight_at_the_default_bound_repeats_nothing() {
    // the pacing, not a fixed number, decides how many run: with room at HiBob and slow answers,
    // the kill finds dozens of exports mid-way
    const BOUND: usize = 64;
    let tally = kill_mid_export_then_restart(Scenario {
        hires: 60,
        concurrency: BOUND,
        kill_after_creates: 20,
        burst: true,
        setup: |state| {
            state.set_call_delay(Duration::from_millis(200));
            state.set_rate_limits_announced(false);
        },
    })
    .await;
    assert!(tally.second_comments <= BOUND, "{tally:?}");
}

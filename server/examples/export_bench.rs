//! Export throughput, bounded in count and time, on loopback only:
//!
//!   cargo run --release -p server --example export_bench -- [concurrency] [delay_ms] [run]
//!
//! Runs the real `pinpoint-hibob` binary (from the same target directory, so build it with the
//! same profile first) against the sandbox's simulators, with every HiBob call held back
//! `delay_ms` (default 200) like a distant server, and `EXPORT_CONCURRENCY=concurrency` (default
//! the binary's own). Three runs, each with a fresh database and fresh simulators:
//! - `sequential`: 20 hires delivered one after another; the time until all 20 employees exist;
//! - `burst`: 200 hires delivered at once, HiBob announcing no limit; exports per second;
//! - `burst at limit`: the same while HiBob announces and enforces 20 calls per endpoint per
//!   10 s window; exports per second and the most 429s any one window saw.
//!
//! Every run checks that each hire has exactly one employee, one CV and one comment.
//!
//! `BENCH_INSTANCES=n` (PostgreSQL only, with `BENCH_POSTGRES`) runs `n` console processes on
//! the one database and spreads the deliveries over them in turn.

#[path = "support/bench_db.rs"]
mod bench_db;
#[path = "../tests/common/process.rs"]
mod process;

use std::time::{Duration, Instant};

use server::sandbox::{self, SandboxCredentials};

const SECRET: &str = "bench-secret";
const TIME_LIMIT: Duration = Duration::from_secs(300);
const WINDOW_CALLS: u32 = 20;
const WINDOW_SECS: u64 = 10;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Delivery {
    OneAfterAnother,
    AllAtOnce,
}

struct Run {
    name: &'static str,
    hires: usize,
    delivery: Delivery,
    window: Option<(u32, u64)>,
}

async fn run(spec: &Run, concurrency: Option<&str>, delay: Duration, instances: usize) {
    let sims = sandbox::start(
        "127.0.0.1:0".parse().expect("address"),
        SandboxCredentials::generate(),
    )
    .await
    .expect("simulators");
    sims.state.set_call_delay(delay);
    match spec.window {
        Some((calls, secs)) => sims.state.set_rate_window(calls, secs),
        None => sims.state.set_rate_limits_announced(false),
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let database = bench_db::fresh(dir.path()).await.expect("database");
    let log_path = dir.path().join("console.log");
    let mut children = Vec::new();
    let mut bases = Vec::new();
    for _ in 0..instances {
        let port = process::free_port();
        let mut env = process::environment(&sims, &database, port, SECRET);
        env.insert("RUST_LOG", "warn".to_owned());
        if let Some(n) = concurrency {
            env.insert("EXPORT_CONCURRENCY", n.to_owned());
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .expect("log file");
        children.push(process::spawn_logging(
            &process::built_binary(),
            &env,
            log.into(),
        ));
        let base = format!("http://127.0.0.1:{port}");
        process::wait_ready(&base, "/readyz").await;
        bases.push(base);
    }
    let base_of = |id: usize| bases[id % bases.len()].clone();
    let sql = bench_db::open(&database).await.expect("database");
    let client = reqwest::Client::new();

    let started = Instant::now();
    match spec.delivery {
        Delivery::OneAfterAnother => {
            for id in 1..=spec.hires {
                assert!(process::deliver(&client, &base_of(id), SECRET, id).await);
            }
        }
        Delivery::AllAtOnce => {
            let sends: Vec<_> = (1..=spec.hires)
                .map(|id| {
                    let (client, base) = (client.clone(), base_of(id));
                    tokio::spawn(async move { process::deliver(&client, &base, SECRET, id).await })
                })
                .collect();
            for send in sends {
                assert!(send.await.expect("delivery task"));
            }
        }
    }
    let delivered = started.elapsed();
    let mut employees_at = None;
    let finished = loop {
        if employees_at.is_none() && sims.state.employees().len() >= spec.hires {
            employees_at = Some(started.elapsed());
        }
        let done: i64 = sql
            .scalar(
                "SELECT COUNT(*) FROM exports WHERE status = 'succeeded'",
                &[],
            )
            .await;
        if usize::try_from(done).unwrap_or(0) >= spec.hires {
            break Some(started.elapsed());
        }
        if started.elapsed() > TIME_LIMIT {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    for mut child in children {
        let _ = child.kill();
        let _ = child.wait();
    }
    if finished.is_none() {
        let open: Vec<(i64, String, i64, Option<String>)> = sql
            .rows(
                "SELECT id, status, attempts, last_error FROM exports WHERE status != 'succeeded'",
                &[],
            )
            .await;
        eprintln!("{}: not finished in time: {open:?}", spec.name);
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        eprintln!("the console's warnings and errors:\n{log}");
    }

    let tally = process::Tally::of(&sims.state, spec.hires);
    let worst_window = sims
        .state
        .rate_limited_windows()
        .into_iter()
        .map(|(_, _, n)| n)
        .max()
        .unwrap_or(0);
    let calls = sims.state.hibob_calls();
    let secs =
        |d: Option<Duration>| d.map_or("—".to_owned(), |d| format!("{:.2}", d.as_secs_f64()));
    let rate = finished.map_or("—".to_owned(), |d| {
        format!("{:.2}", spec.hires as f64 / d.as_secs_f64())
    });
    println!(
        "{} instances={} {:<15} concurrency={:<7} hires={:<4} delivered in {:.2} s; all employees after {} s; all succeeded after {} s; {} exports/s; {:.2} HiBob calls per export; most 429s in one window: {}; {}",
        bench_db::engine(),
        instances,
        spec.name,
        concurrency.unwrap_or("default"),
        spec.hires,
        delivered.as_secs_f64(),
        secs(employees_at),
        secs(finished),
        rate,
        calls as f64 / spec.hires as f64,
        worst_window,
        if tally.exactly_once(spec.hires) {
            "each hire exactly once".to_owned()
        } else {
            format!("NOT EXACTLY ONCE: {tally:?}")
        }
    );
    sims.shutdown().await;
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let concurrency = args.next().filter(|a| a != "default");
    let delay = Duration::from_millis(args.next().and_then(|a| a.parse().ok()).unwrap_or(200));
    // a run's name, to run that one alone
    let only = args.next();
    let instances = std::env::var("BENCH_INSTANCES")
        .ok()
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let runs = [
        Run {
            name: "sequential",
            hires: 20,
            delivery: Delivery::OneAfterAnother,
            window: None,
        },
        Run {
            name: "burst",
            hires: 200,
            delivery: Delivery::AllAtOnce,
            window: None,
        },
        Run {
            name: "burst at limit",
            hires: 200,
            delivery: Delivery::AllAtOnce,
            window: Some((WINDOW_CALLS, WINDOW_SECS)),
        },
    ];
    for spec in runs
        .iter()
        .filter(|r| only.as_deref().is_none_or(|o| o == r.name))
    {
        run(spec, concurrency.as_deref(), delay, instances).await;
    }
}

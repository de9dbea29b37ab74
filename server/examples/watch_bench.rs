//! Keeping HiBob in step, at scale, on loopback only:
//!
//!   cargo run --release -p server --example watch_bench -- [watched] [checks_per_minute] [delay_ms]
//!
//! Runs the real `pinpoint-hibob` binary (from the same target directory, so build it with the
//! same profile first) against the sandbox's simulators, with every HiBob call held back
//! `delay_ms` (default 200) like a distant server:
//! 1. `watched` hires (default 1000) are exported and taken up for watching;
//! 2. a burst of 20 new hires is timed with no check due (the baseline);
//! 3. every watch is made due at once, and the checks are counted for 60 s against
//!    `WATCH_CHECKS_PER_MINUTE` (default 600);
//! 4. while most watches are still due, another burst of 20 new hires is timed.
//!
//! The two bursts show what watching costs new exports; every hire is checked exactly once.

#[path = "../tests/common/process.rs"]
mod process;

use std::time::{Duration, Instant};

use server::sandbox::{self, SandboxCredentials};
use sqlx::SqlitePool;

const SECRET: &str = "bench-secret";
const BURST: usize = 20;
const LIMIT: Duration = Duration::from_secs(600);

async fn count(pool: &SqlitePool, sql: &str) -> usize {
    let n: i64 = sqlx::query_scalar(sql)
        .fetch_one(pool)
        .await
        .expect("count");
    usize::try_from(n).unwrap_or(0)
}

/// Delivers hires `from..from + n` at once; the time until all are exported.
async fn burst(pool: &SqlitePool, base: &str, from: usize, n: usize) -> Duration {
    let client = reqwest::Client::new();
    let before = count(
        pool,
        "SELECT COUNT(*) FROM exports WHERE status = 'succeeded'",
    )
    .await;
    let started = Instant::now();
    let sends: Vec<_> = (from..from + n)
        .map(|id| {
            let (client, base) = (client.clone(), base.to_owned());
            tokio::spawn(async move { process::deliver(&client, &base, SECRET, id).await })
        })
        .collect();
    for send in sends {
        assert!(send.await.expect("delivery task"), "a delivery was refused");
    }
    loop {
        let done = count(
            pool,
            "SELECT COUNT(*) FROM exports WHERE status = 'succeeded'",
        )
        .await;
        if done >= before + n {
            return started.elapsed();
        }
        assert!(started.elapsed() < LIMIT, "the burst did not finish");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let watched: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let per_minute: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(600);
    let delay = Duration::from_millis(args.next().and_then(|a| a.parse().ok()).unwrap_or(200));

    let sims = sandbox::start(
        "127.0.0.1:0".parse().expect("address"),
        SandboxCredentials::generate(),
    )
    .await
    .expect("simulators");
    sims.state.set_call_delay(delay);
    sims.state.set_rate_limits_announced(false);
    let dir = tempfile::tempdir().expect("tempdir");
    let port = process::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let database = format!("sqlite://{}/bench.db", dir.path().display());
    let mut env = process::environment(&sims, &database, port, SECRET);
    env.insert("WATCH_CHECKS_PER_MINUTE", per_minute.to_string());
    let log = std::fs::File::create(dir.path().join("console.log")).expect("log file");
    let mut child = process::spawn_logging(&process::built_binary(), &env, log.into());
    process::wait_ready(&base, "/readyz").await;
    let pool = integration::db::open(&database).await.expect("database");

    let took = burst(&pool, &base, 1, watched).await;
    println!("{watched} hires exported in {:.1} s", took.as_secs_f64());
    let started = Instant::now();
    while count(&pool, "SELECT COUNT(*) FROM hire_watches").await < watched {
        assert!(started.elapsed() < LIMIT, "the hires were not taken up");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "all {watched} watched after {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let quiet = burst(&pool, &base, watched + 1, BURST).await;
    println!(
        "burst of {BURST} with no check due: {:.2} s",
        quiet.as_secs_f64()
    );

    let reads_before = sims.state.hibob_calls();
    sqlx::query("UPDATE hire_watches SET next_check_at = '2000-01-01T00:00:00.000Z'")
        .execute(&pool)
        .await
        .expect("make every watch due");
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(60)).await;
    let checked = count(
        &pool,
        "SELECT COUNT(*) FROM hire_watches WHERE checked_at IS NOT NULL",
    )
    .await;
    let minute = started.elapsed().as_secs_f64() / 60.0;
    println!(
        "{checked} checks in {:.1} s = {:.0}/min (WATCH_CHECKS_PER_MINUTE={per_minute}); {} HiBob calls",
        started.elapsed().as_secs_f64(),
        checked as f64 / minute,
        sims.state.hibob_calls() - reads_before
    );

    let busy = burst(&pool, &base, watched + BURST + 1, BURST).await;
    let still_due = count(
        &pool,
        "SELECT COUNT(*) FROM hire_watches WHERE checked_at IS NULL AND next_check_at < '2001-01-01'",
    )
    .await;
    println!(
        "burst of {BURST} with {still_due} checks due: {:.2} s",
        busy.as_secs_f64()
    );
    let failed = count(
        &pool,
        "SELECT COUNT(*) FROM hire_watches WHERE check_error IS NOT NULL",
    )
    .await;
    let why: Option<String> = sqlx::query_scalar(
        "SELECT check_error FROM hire_watches WHERE check_error IS NOT NULL LIMIT 1",
    )
    .fetch_optional(&pool)
    .await
    .expect("error");
    println!("checks that could not finish: {failed} {why:?}");
    let changed = count(
        &pool,
        "SELECT COUNT(*) FROM hire_watches WHERE change_count > 0",
    )
    .await;
    println!("watches with a change found: {changed} (sample 1002 moves its start after the hire; nothing else moved)");
    let tally = process::Tally::of(&sims.state, watched + 2 * BURST);
    println!(
        "{}",
        if tally.exactly_once(watched + 2 * BURST) {
            "each hire exactly once".to_owned()
        } else {
            format!("NOT EXACTLY ONCE: {tally:?}")
        }
    );
    let _ = child.kill();
    let _ = child.wait();
    sims.shutdown().await;
}

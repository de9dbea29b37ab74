//! Load generator for signed webhook ingest, bounded in count and time, on loopback only.
//!
//!   cargo run --release -p server --example ingest_bench -- [deliveries] [concurrency] [flood]
//!
//! It starts the real router on 127.0.0.1 with a fresh SQLite file (WAL, synchronous=FULL), sends
//! `deliveries` signed `application_hired` webhooks (distinct applications) from `concurrency`
//! keep-alive connections, and reports throughput and acknowledgement latency. Every delivery
//! acknowledged is then counted in the database. For comparison it also measures the seed
//! Lambda's design, where the export runs before the answer: each delivery is followed inline by
//! the export against local fakes of Pinpoint and HiBob that answer instantly, a lower bound for
//! that design.
//!
//! `BENCH_INSTANCES=n` (PostgreSQL only, with `BENCH_POSTGRES`) serves the webhook from `n`
//! consoles on the one database, each with its own pool and state (in this process, so they share
//! its two cores as processes on one machine would), and spreads the deliveries over them.

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

#[path = "support/bench_db.rs"]
mod bench_db;

use clap::Parser as _;
use serde_json::json;
use server::{config::Cli, console, startup};
use tokio::sync::Semaphore;
use wiremock::{
    matchers::{method, path, path_regex},
    Mock, MockServer, ResponseTemplate,
};

const SECRET: &str = "bench-secret";
const TIME_LIMIT: Duration = Duration::from_secs(120);

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn report(name: &str, n: usize, wall: Duration, mut lat: Vec<Duration>) {
    lat.sort();
    println!(
        "{name}: {n} deliveries in {:.2} s = {:.0}/s; ack latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        wall.as_secs_f64(),
        n as f64 / wall.as_secs_f64(),
        percentile(&lat, 0.50).as_secs_f64() * 1e3,
        percentile(&lat, 0.99).as_secs_f64() * 1e3,
        lat.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
}

fn body(id: usize) -> String {
    format!(
        r#"{{"event":"application_hired","triggeredAt":1614687278,"data":{{"application":{{"id":{id}}},"job":{{"id":1}}}}}}"#
    )
}

/// A console on database `db`, serving on a port of its own: its webhook URL and its worker.
async fn console_on(
    db: &str,
    pinpoint: &MockServer,
    hibob: &MockServer,
) -> anyhow::Result<(String, server::worker::Worker)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (site, pp, hb) = (
        addr.to_string(),
        format!("{}/api/v1", pinpoint.uri()),
        format!("{}/v1", hibob.uri()),
    );
    let config = Cli::try_parse_from([
        "pinpoint-hibob",
        "--database-url",
        db,
        "--site-addr",
        &site,
        "--secret-key",
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
        "--admin-email",
        "bench@example.com",
        "--admin-password",
        "bench password 123",
        "--pinpoint-webhook-secret",
        SECRET,
        "--pinpoint-api-base-url",
        &pp,
        "--pinpoint-api-key",
        "k",
        "--hibob-api-base-url",
        &hb,
        "--hibob-service-user-id",
        "s",
        "--hibob-service-user-token",
        "t",
        "--hibob-default-site",
        "London",
    ])?
    .config;
    let database = startup::open_database(&config).await?;
    let sealer = startup::secret_box(&config)?;
    startup::ensure_first_admin(&database.db, &config).await?;
    let state = startup::console_state(&config, database.db.clone(), sealer);
    let worker = startup::export_worker(&config, &state);
    let app = console::router(&config, state, &database).await?;
    tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await;
    });
    Ok((format!("http://{addr}/webhooks/pinpoint"), worker))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let deliveries = args.first().copied().unwrap_or(20_000).min(200_000);
    let concurrency = args.get(1).copied().unwrap_or(32).clamp(1, 512);

    let hibob = MockServer::start().await;
    let pinpoint = MockServer::start().await;
    Mock::given(method("GET")).and(path_regex("^/api/v1/applications/[0-9]+$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {"id": "1", "type": "applications",
            "attributes": {"first_name": "Jane", "last_name": "Doe", "email": "jane@example.com", "attachments": []}}})))
        .mount(&pinpoint).await;
    Mock::given(method("POST"))
        .and(path("/api/v1/comments"))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(json!({"data": {"id": "1", "type": "comments"}})),
        )
        .mount(&pinpoint)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/people/search"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"employees": []})))
        .mount(&hibob)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/people"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "1"})))
        .mount(&hibob)
        .await;

    let dir = tempfile::tempdir()?;
    let db = bench_db::fresh(dir.path()).await?;
    let instances = std::env::var("BENCH_INSTANCES")
        .ok()
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let mut urls = Vec::new();
    let mut workers = Vec::new();
    for _ in 0..instances {
        let (url, worker) = console_on(&db, &pinpoint, &hibob).await?;
        urls.push(url);
        workers.push(worker);
    }
    let (url, worker) = (urls[0].clone(), workers.swap_remove(0));
    let sql = bench_db::open(&db).await?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;

    // warm-up: connections and the first statements
    for i in 0..concurrency {
        let b = body(1_000_000 + i);
        client
            .post(&urls[i % urls.len()])
            .header(
                "PINPOINT-HMAC-SHA256",
                integration::pinpoint::signature::sign(SECRET.as_bytes(), b.as_bytes()),
            )
            .body(b)
            .send()
            .await?;
    }

    let started = Instant::now();
    let gate = Arc::new(Semaphore::new(concurrency));
    let mut tasks = Vec::with_capacity(deliveries);
    for i in 0..deliveries {
        let permit = gate.clone().acquire_owned().await?;
        if started.elapsed() > TIME_LIMIT {
            break;
        }
        let (client, url) = (client.clone(), urls[i % urls.len()].clone());
        tasks.push(tokio::spawn(async move {
            let b = body(i + 1);
            let sig = integration::pinpoint::signature::sign(SECRET.as_bytes(), b.as_bytes());
            let t = Instant::now();
            let ok = client
                .post(url)
                .header("PINPOINT-HMAC-SHA256", sig)
                .body(b)
                .send()
                .await
                .map(|r| r.status().is_success())
                .unwrap_or(false);
            drop(permit);
            (ok, t.elapsed())
        }));
    }
    let mut lat = Vec::with_capacity(tasks.len());
    let mut acked = 0;
    for t in tasks {
        let (ok, d) = t.await?;
        acked += usize::from(ok);
        lat.push(d);
    }
    let wall = started.elapsed();
    let stored: i64 = sql.scalar("SELECT COUNT(*) FROM webhook_deliveries WHERE outcome = 'accepted' AND CAST(application_id AS BIGINT) < 1000000", &[]).await;
    let exports: i64 = sql.scalar("SELECT COUNT(*) FROM exports", &[]).await;
    report(
        &format!(
            "{}: durable ingest ({concurrency} connections, {instances} console(s))",
            bench_db::engine()
        ),
        lat.len(),
        wall,
        lat,
    );
    println!("acknowledged {acked}, stored as accepted {stored}, exports queued {exports}");
    anyhow::ensure!(
        acked as i64 <= stored,
        "an acknowledged delivery is missing"
    );

    // The seed design: the answer waits for the export. Sequential, as one Lambda per delivery
    // would be from Pinpoint's point of view for a single hire.
    sql.execute("DELETE FROM exports", &[]).await;
    let sync_n = 300.min(deliveries);
    let mut lat = Vec::with_capacity(sync_n);
    let started = Instant::now();
    for i in 0..sync_n {
        let b = body(2_000_000 + i);
        let sig = integration::pinpoint::signature::sign(SECRET.as_bytes(), b.as_bytes());
        let t = Instant::now();
        client
            .post(&url)
            .header("PINPOINT-HMAC-SHA256", sig)
            .body(b)
            .send()
            .await?;
        worker.run_once().await?;
        lat.push(t.elapsed());
    }
    report(
        "synchronous export before the answer (seed design, instant fakes)",
        sync_n,
        started.elapsed(),
        lat,
    );
    flood(
        &sql,
        &client,
        &url,
        dir.path(),
        args.get(2).copied().unwrap_or(10_000),
    )
    .await
}

/// A stranger posts `n` unsigned 60 KiB bodies from 16 connections while Pinpoint sends signed
/// hires one at a time: how long the signed ones wait, and how much the flood costs on disk.
async fn flood(
    sql: &bench_db::Sql,
    client: &reqwest::Client,
    url: &str,
    dir: &std::path::Path,
    n: usize,
) -> anyhow::Result<()> {
    let n = n.min(100_000);
    let before = bench_db::size(sql, dir).await;
    let junk = format!(
        r#"{{"event":"application_hired","data":{{"application":{{"id":1}}}},"pad":"{}"}}"#,
        "x".repeat(60 * 1024)
    );
    let started = Instant::now();
    let gate = Arc::new(Semaphore::new(16));
    let flooding = {
        let (client, url) = (client.clone(), url.to_owned());
        tokio::spawn(async move {
            let mut tasks = Vec::with_capacity(n);
            let mut answers: std::collections::BTreeMap<u16, usize> = Default::default();
            for _ in 0..n {
                let Ok(permit) = gate.clone().acquire_owned().await else {
                    break;
                };
                if started.elapsed() > TIME_LIMIT {
                    break;
                }
                let (client, url, junk) = (client.clone(), url.clone(), junk.clone());
                tasks.push(tokio::spawn(async move {
                    let status = client
                        .post(url)
                        .header("PINPOINT-HMAC-SHA256", "forged")
                        .body(junk)
                        .send()
                        .await
                        .map(|r| r.status().as_u16())
                        .unwrap_or(0);
                    drop(permit);
                    status
                }));
            }
            for t in tasks {
                *answers.entry(t.await.unwrap_or(0)).or_default() += 1;
            }
            answers
        })
    };
    let mut lat = Vec::new();
    let mut signed_ok = 0;
    let mut i = 0;
    while !flooding.is_finished() && started.elapsed() < TIME_LIMIT {
        let b = body(3_000_000 + i);
        i += 1;
        let sig = integration::pinpoint::signature::sign(SECRET.as_bytes(), b.as_bytes());
        let t = Instant::now();
        let ok = client
            .post(url)
            .header("PINPOINT-HMAC-SHA256", sig)
            .body(b)
            .send()
            .await
            .map(|r| r.status().is_success())
            .unwrap_or(false);
        lat.push(t.elapsed());
        signed_ok += usize::from(ok);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let answers = flooding.await?;
    let wall = started.elapsed();
    let grown = bench_db::size(sql, dir).await.saturating_sub(before);
    let rejected: i64 = sql
        .scalar(
            "SELECT COUNT(*) FROM webhook_deliveries WHERE outcome = 'rejected'",
            &[],
        )
        .await;
    println!(
        "flood: {n} unsigned 60 KiB deliveries in {:.2} s ({:.0}/s), answers {answers:?}; {rejected} stored as rejected; database grew by {:.2} MB",
        wall.as_secs_f64(),
        n as f64 / wall.as_secs_f64(),
        grown as f64 / 1e6
    );
    let signed = lat.len();
    report("signed hires during the flood", signed, wall, lat);
    println!("signed hires acknowledged: {signed_ok} of {signed}");
    anyhow::ensure!(
        signed_ok == signed,
        "a signed hire was refused during the flood"
    );
    Ok(())
}

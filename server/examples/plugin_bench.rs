//! Latency of the plugin's action meta (the "Send to HiBob" form) and submit, on loopback.
//!
//!   cargo run --release -p server --example plugin_bench -- [requests]
//!
//! The real router talks to the sandbox's HiBob simulator over HTTP. Action meta is measured with
//! the named lists already cached (the state Pinpoint meets after the first form of the day);
//! submit creates a new employee per request (create, CV by URL). A third run asks for the form
//! of a named application, which the console reads from the Pinpoint simulator.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use clap::Parser as _;
use serde_json::json;
use server::{config::Cli, sandbox, startup};

const TOKEN: &str = "bench-plugin-token";

fn report(name: &str, mut lat: Vec<Duration>, wall: Duration) {
    lat.sort();
    let pick = |p: f64| lat[((lat.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1e3;
    println!(
        "{name}: {} requests in {:.2} s; p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        lat.len(),
        wall.as_secs_f64(),
        pick(0.5),
        pick(0.9),
        pick(0.99),
        pick(1.0)
    );
}

/// HiBob refuses digits in names, so each bench person gets a name spelled in letters.
fn letters(mut i: usize) -> String {
    let mut out = String::from("Person");
    loop {
        out.push(char::from(b'a' + (i % 26) as u8));
        i /= 26;
        if i == 0 {
            return out;
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let requests = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2_000usize)
        .min(50_000);
    let creds = sandbox::SandboxCredentials::generate();
    let sims = sandbox::start("127.0.0.1:0".parse()?, creds.clone()).await?;
    // the benchmark measures the console, not HiBob's per-minute quota
    sims.state.set_rate_limit_per_minute(Some(1_000_000));

    let dir = tempfile::tempdir()?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let db = format!("sqlite://{}/bench.db", dir.path().display());
    let site = addr.to_string();
    let config = Cli::try_parse_from([
        "pinpoint-hibob",
        "--database-url",
        &db,
        "--site-addr",
        &site,
        "--sandbox",
        "off",
        "--secret-key",
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
        "--admin-email",
        "bench@example.com",
        "--admin-password",
        "bench password 123",
        "--plugin-token",
        TOKEN,
        "--hibob-api-base-url",
        &sims.hibob_base_url,
        "--hibob-service-user-id",
        &creds.hibob_service_user_id,
        "--hibob-service-user-token",
        &creds.hibob_token,
        "--hibob-default-site",
        "London",
        "--pinpoint-api-base-url",
        &sims.pinpoint_base_url,
        "--pinpoint-api-key",
        &creds.pinpoint_api_key,
    ])?
    .config;
    // built as `main` builds it; the worker is not started, so only the plugin reaches HiBob
    let app = startup::build(&config).await?.router;
    tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await;
    });
    let client = reqwest::Client::new();
    let meta_url = format!("http://{addr}/export-candidate/meta");
    // the first call fills the list cache
    let first = client
        .post(&meta_url)
        .header("X-Plugin-Token", TOKEN)
        .body("{}")
        .send()
        .await?;
    anyhow::ensure!(
        first.status().is_success(),
        "action meta answered {}",
        first.status()
    );

    let mut lat = Vec::with_capacity(requests);
    let started = Instant::now();
    for _ in 0..requests {
        let t = Instant::now();
        let res = client
            .post(&meta_url)
            .header("X-Plugin-Token", TOKEN)
            .body("{}")
            .send()
            .await?;
        anyhow::ensure!(res.status().is_success());
        res.bytes().await?;
        lat.push(t.elapsed());
    }
    report("action meta (lists cached)", lat, started.elapsed());

    // a call naming the application: the form reads it from Pinpoint (the simulator, on loopback)
    let with_application = (requests / 10).max(10);
    let mut lat = Vec::with_capacity(with_application);
    let started = Instant::now();
    for _ in 0..with_application {
        let t = Instant::now();
        let res = client
            .post(&meta_url)
            .header("X-Plugin-Token", TOKEN)
            .json(&json!({"applicationId": 1001}))
            .send()
            .await?;
        anyhow::ensure!(res.status().is_success());
        let form: serde_json::Value = res.json().await?;
        anyhow::ensure!(
            form.to_string().contains("Margaret"),
            "the form was not prefilled from the application: {form}"
        );
        lat.push(t.elapsed());
    }
    report(
        "action meta (application read from Pinpoint)",
        lat,
        started.elapsed(),
    );

    let submit_url = format!("http://{addr}/export-candidate/submit");
    let submits = (requests / 10).max(10);
    let mut lat = Vec::with_capacity(submits);
    let started = Instant::now();
    for i in 0..submits {
        let body = json!({"formFields": [
            {"key": "firstName", "value": "Bench"}, {"key": "lastName", "value": letters(i)},
            {"key": "email", "value": format!("bench{i}@example.com")},
            {"key": "startDate", "value": "2027-01-04"}, {"key": "site", "value": "London"},
            {"key": "cvDocument", "value": {"url": "https://files.example.com/cv.pdf", "name": "CV.pdf"}},
        ]});
        let t = Instant::now();
        let res = client
            .post(&submit_url)
            .header("X-Plugin-Token", TOKEN)
            .json(&body)
            .send()
            .await?;
        let answer: serde_json::Value = res.json().await?;
        anyhow::ensure!(answer["success"] == true, "submit failed: {answer}");
        lat.push(t.elapsed());
    }
    report("submit (create, CV by URL)", lat, started.elapsed());
    anyhow::ensure!(
        sims.state.employees().len() == submits,
        "one employee per submit"
    );
    Ok(())
}

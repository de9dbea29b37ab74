//! The real `pinpoint-hibob` binary as a child process, configured against the sandbox's
//! simulators, for the tests and benchmarks that kill it or time it from outside, and the signed
//! hires they deliver to it. The examples include this file on its own, so it stands alone; the
//! in-process tests take their hires from here too (through `common::webhook`).

#![allow(dead_code)]

use std::{
    collections::HashMap,
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use integration::pinpoint::signature as webhook_signature;
use server::sandbox::Simulators;

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// What the console needs to export hires to the simulators: its database, its port, the
/// webhook secret, and the simulators' addresses and credentials.
pub fn environment(
    sims: &Simulators,
    database: &str,
    port: u16,
    secret: &str,
) -> HashMap<&'static str, String> {
    let creds = &sims.credentials;
    [
        ("DATABASE_URL", database.to_owned()),
        ("LEPTOS_SITE_ADDR", format!("127.0.0.1:{port}")),
        ("LEPTOS_OUTPUT_NAME", "pinpoint-hibob".to_owned()),
        (
            "SECRET_KEY",
            "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f".to_owned(),
        ),
        ("ADMIN_EMAIL", "admin@example.com".to_owned()),
        ("ADMIN_PASSWORD", "admin password 123".to_owned()),
        ("PINPOINT_WEBHOOK_SECRET", secret.to_owned()),
        ("PINPOINT_API_BASE_URL", sims.pinpoint_base_url.clone()),
        ("PINPOINT_API_KEY", creds.pinpoint_api_key.clone()),
        ("HIBOB_API_BASE_URL", sims.hibob_base_url.clone()),
        ("HIBOB_SERVICE_USER_ID", creds.hibob_service_user_id.clone()),
        ("HIBOB_SERVICE_USER_TOKEN", creds.hibob_token.clone()),
        ("HIBOB_DEFAULT_SITE", "London".to_owned()),
        ("OUTBOUND_TIMEOUT_SECS", "5".to_owned()),
        ("RUST_LOG", "warn".to_owned()),
    ]
    .into_iter()
    .collect()
}

/// The console binary next to a running example: `target/<profile>/examples/x` is beside
/// `target/<profile>/pinpoint-hibob`, so build the binary with the same profile first.
pub fn built_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("own path");
    let dir = exe
        .parent()
        .and_then(|p| p.parent())
        .expect("target directory");
    dir.join("pinpoint-hibob")
}

/// Starts `binary` with exactly `env` (and `PATH`), its output discarded.
pub fn spawn(binary: &Path, env: &HashMap<&str, String>) -> Child {
    spawn_logging(binary, env, Stdio::null())
}

/// [`spawn`], with the log (standard error) going to `log`.
pub fn spawn_logging(binary: &Path, env: &HashMap<&str, String>, log: Stdio) -> Child {
    let mut cmd = Command::new(binary);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdout(Stdio::null())
        .stderr(log);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().expect("start the binary")
}

/// Waits until `base` answers `path` with a 2xx.
pub async fn wait_ready(base: &str, path: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(r) = reqwest::get(format!("{base}{path}")).await {
            if r.status().is_success() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the console did not become ready");
}

/// Waits (at most `patience`) until `hires` exports have succeeded in the database `sql` reads.
pub async fn wait_until_succeeded(
    sql: &store_postgres::test_sql::Sql,
    hires: usize,
    patience: Duration,
) {
    let deadline = Instant::now() + patience;
    loop {
        let done: i64 = sql
            .scalar(
                "SELECT COUNT(*) FROM exports WHERE status = 'succeeded'",
                &[],
            )
            .await;
        if done as usize == hires || Instant::now() > deadline {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Pinpoint's notice that application `id` was hired, as its webhook sends it.
pub fn hired(id: impl std::fmt::Display) -> String {
    format!(
        r#"{{"event":"application_hired","triggeredAt":1614687278,"data":{{"application":{{"id":{id}}},"job":{{"id":1}}}}}}"#
    )
}

/// Posts application `id`'s hire, signed with `secret`, to the webhook of the console at `base`.
pub async fn post_hire(
    client: &reqwest::Client,
    base: &str,
    secret: &str,
    id: impl std::fmt::Display,
) -> reqwest::Result<reqwest::Response> {
    let body = hired(id);
    let sig = webhook_signature::sign(secret.as_bytes(), body.as_bytes());
    client
        .post(format!("{base}/webhooks/pinpoint"))
        .header("content-type", "application/json")
        .header("PINPOINT-HMAC-SHA256", sig)
        .body(body)
        .send()
        .await
}

/// Delivers application `id`'s hire, signed; true when the console acknowledged it.
pub async fn deliver(client: &reqwest::Client, base: &str, secret: &str, id: usize) -> bool {
    post_hire(client, base, secret, id)
        .await
        .is_ok_and(|r| r.status().is_success())
}

/// What HiBob and Pinpoint hold for hires `1..=hires` after a run.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub employees: usize,
    /// Employees that share their e-mail with another.
    pub duplicate_employees: usize,
    /// Employees without exactly one document.
    pub wrong_cvs: usize,
    pub missing_comments: usize,
    /// Applications with more than one comment.
    pub second_comments: usize,
}

impl Tally {
    pub fn of(state: &server::sandbox::SimState, hires: usize) -> Self {
        let employees = state.employees();
        let mut tally = Self {
            employees: employees.len(),
            ..Self::default()
        };
        for e in &employees {
            if state.employee_count_with_email(&e.email) != 1 {
                tally.duplicate_employees += 1;
            }
            if state.documents_of(&e.id).len() != 1 {
                tally.wrong_cvs += 1;
            }
        }
        for id in 1..=hires {
            match state.comments_on(&id.to_string()).len() {
                0 => tally.missing_comments += 1,
                1 => {}
                _ => tally.second_comments += 1,
            }
        }
        tally
    }

    /// Exactly one employee, CV and comment for each of `hires`.
    pub fn exactly_once(&self, hires: usize) -> bool {
        *self
            == Self {
                employees: hires,
                ..Self::default()
            }
    }
}

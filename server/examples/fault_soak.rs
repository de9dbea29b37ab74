//! Fault soak, bounded in count and time, on loopback only:
//!
//!   cargo run --release -p server --example fault_soak -- [hires] [kills] [both-every] [plugin-only]
//!
//! Builds nothing itself: it runs the real `pinpoint-hibob` binary (from the same target
//! directory, so `cargo build --release -p server` first) against the sandbox's stateful
//! simulators of HiBob and Pinpoint, delivers `hires` signed `application_hired` webhooks, and
//! meanwhile makes HiBob and Pinpoint misbehave at random (500s, 429s with a short wait, answers
//! lost after the employee was stored, creates slower than the client's timeout, slow replies),
//! while the process is SIGKILLed `kills` times and started again. Every `both-every`th hire also
//! comes in through the plugin's "Send to HiBob" at the same moment (the form read first, then
//! submitted with the e-mail left blank, as a Stage Action without a person sends it), and
//! `plugin-only` more hires come in through the plugin alone; a submit that fails or is cut off is
//! submitted again, as the person would. New employees are invited to a welcome wizard. At the
//! end every export must have succeeded, with exactly one employee and one CV per hire and at
//! most one invitation per employee, and the number of hires that got a second comment is
//! reported (Pinpoint offers no way to look comments up, so a comment posted in the instant
//! before a kill is posted again).

#[path = "../tests/common/process.rs"]
mod process;

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use integration::pinpoint::signature as webhook_signature;
use server::sandbox::{self, SandboxCredentials};

const SECRET: &str = "soak-secret";
const PLUGIN_TOKEN: &str = "soak-plugin-token";
const TIME_LIMIT: Duration = Duration::from_secs(1500);

/// A tiny deterministic generator: the soak's faults repeat from run to run.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let hires: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(2000);
    let kills: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(4);
    let both_every: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(3);
    let plugin_only: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(hires / 10);
    let started = Instant::now();

    let creds = SandboxCredentials::generate();
    let sims = sandbox::start("127.0.0.1:0".parse().unwrap(), creds.clone())
        .await
        .expect("simulators");
    sims.state.set_rate_limit_per_minute(Some(1_000_000));
    let dir = tempfile::tempdir().unwrap();
    let port = process::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let database = format!("sqlite://{}/soak.db", dir.path().display());
    let mut env = process::environment(&sims, &database, port, SECRET);
    env.insert("OUTBOUND_TIMEOUT_SECS", "2".to_owned());
    // the soak's faults are all passing ones; give them room
    env.insert("EXPORT_MAX_ATTEMPTS", "30".to_owned());
    env.insert("RUST_LOG", "error".to_owned());
    env.insert("PLUGIN_TOKEN", PLUGIN_TOKEN.to_owned());
    env.insert("HIBOB_WELCOME_WIZARD_ID", "1".to_owned());

    // faults, at random, for as long as the soak runs
    let chaos = {
        let state = sims.state.clone();
        tokio::spawn(async move {
            let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
            let mut injected: HashMap<&str, usize> = HashMap::new();
            let mut creates_seen = 0;
            loop {
                tokio::time::sleep(Duration::from_millis(200 + rng.below(400))).await;
                // faults in proportion to the traffic (about one in four exports meets one):
                // injected failures wait in a queue for the next call, and must not pile up
                // while the queue is quiet
                let creates = state.create_calls();
                if creates < creates_seen + 4 {
                    continue;
                }
                creates_seen = creates;
                let kind = match rng.below(6) {
                    0 => {
                        state.fail_next_creates(1 + rng.below(2) as usize, 500);
                        "hibob 500"
                    }
                    1 => {
                        state.rate_limit_next(1 + rng.below(2) as usize, 1);
                        "hibob 429"
                    }
                    2 => {
                        state.fail_next_creates_after_store(1, 502);
                        "answer lost after store"
                    }
                    3 => {
                        state.fail_next_pinpoint(1, 503);
                        "pinpoint 503"
                    }
                    4 => {
                        // slower than OUTBOUND_TIMEOUT_SECS: the create times out after storing
                        state.set_create_delay(Duration::from_millis(2500));
                        tokio::time::sleep(Duration::from_millis(300)).await;
                        state.set_create_delay(Duration::ZERO);
                        "timeout"
                    }
                    _ => {
                        state.set_create_delay(Duration::from_millis(50 + rng.below(300)));
                        tokio::time::sleep(Duration::from_millis(1000)).await;
                        state.set_create_delay(Duration::ZERO);
                        "slow"
                    }
                };
                *injected.entry(kind).or_default() += 1;
                if injected.values().sum::<usize>() % 200 == 0 {
                    eprintln!("faults so far: {injected:?}");
                }
            }
        })
    };

    let mut child = process::spawn(&process::built_binary(), &env);
    process::wait_ready(&base, "/healthz").await;
    let client = reqwest::Client::new();
    let mut acknowledged = 0usize;
    let kill_every = hires / (kills + 1);
    let mut killed = 0usize;
    let mut submits = Vec::new();
    for id in 1..=hires {
        if both_every > 0 && id % both_every == 0 {
            submits.push(tokio::spawn(send_with_plugin(
                client.clone(),
                base.clone(),
                id,
            )));
        }
        let body = process::hired(id);
        let sig = webhook_signature::sign(SECRET.as_bytes(), body.as_bytes());
        // Pinpoint retries what is not acknowledged; so does this loop, across restarts
        loop {
            let answer = client
                .post(format!("{base}/webhooks/pinpoint"))
                .header("PINPOINT-HMAC-SHA256", &sig)
                .body(body.clone())
                .send()
                .await;
            if answer.is_ok_and(|r| r.status().is_success()) {
                acknowledged += 1;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            if child.try_wait().ok().flatten().is_some() {
                child = process::spawn(&process::built_binary(), &env);
                process::wait_ready(&base, "/healthz").await;
            }
        }
        if killed < kills && id % kill_every.max(1) == 0 {
            child.kill().expect("SIGKILL");
            child.wait().ok();
            killed += 1;
            eprintln!("SIGKILL {killed} after {id} hires delivered");
            child = process::spawn(&process::built_binary(), &env);
            process::wait_ready(&base, "/healthz").await;
        }
        if started.elapsed() > TIME_LIMIT {
            panic!("time limit reached while delivering");
        }
    }
    eprintln!(
        "{acknowledged} hires acknowledged in {:?}",
        started.elapsed()
    );
    for id in hires + 1..=hires + plugin_only {
        submits.push(tokio::spawn(send_with_plugin(
            client.clone(),
            base.clone(),
            id,
        )));
    }
    let mut plugin_tries = 0usize;
    for submit in submits {
        plugin_tries += submit.await.unwrap_or(0);
    }
    eprintln!("plugin submits done in {:?}", started.elapsed());

    // let the queue drain
    let pool = integration::db::open(&database).await.unwrap();
    let drained_at = loop {
        let open: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM exports WHERE status IN ('queued', 'running')",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        if open == 0 {
            break started.elapsed();
        }
        if started.elapsed() > TIME_LIMIT {
            panic!("time limit reached with {open} exports still open");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    chaos.abort();
    child.kill().ok();
    child.wait().ok();

    let statuses: Vec<(String, i64)> = sqlx::query_as(
        "SELECT status, COUNT(*) FROM exports WHERE source = 'webhook' GROUP BY status",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let plugin_statuses: Vec<(String, i64)> = sqlx::query_as(
        "SELECT status, COUNT(*) FROM exports WHERE source = 'plugin' GROUP BY status",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let attempts: (i64, i64) = sqlx::query_as("SELECT SUM(attempts), MAX(attempts) FROM exports")
        .fetch_one(&pool)
        .await
        .unwrap();
    let tally = process::Tally::of(&sims.state, hires);
    let people = hires + plugin_only;
    let both = hires.checked_div(both_every).unwrap_or(0);
    let invitations: Vec<usize> = sims
        .state
        .employees()
        .iter()
        .map(|e| sims.state.invitations_of(&e.id))
        .collect();
    let invited_twice = invitations.iter().filter(|n| **n > 1).count();
    let not_invited = invitations.iter().filter(|n| **n == 0).count();
    // why each employee without an invitation has none, as its exports' timelines say
    for e in sims.state.employees() {
        if sims.state.invitations_of(&e.id) > 0 {
            continue;
        }
        let steps: Vec<(String, String)> = sqlx::query_as(
            "SELECT s.outcome, s.detail FROM export_steps s JOIN exports x ON x.id = s.export_id
             WHERE x.hibob_employee_id = ? AND s.step = 'invite' ORDER BY s.id",
        )
        .bind(&e.id)
        .fetch_all(&pool)
        .await
        .unwrap_or_default();
        let steps: Vec<String> = steps
            .iter()
            .map(|(o, d)| format!("{o}: {}", d.chars().take(90).collect::<String>()))
            .collect();
        println!("not invited: employee {} ({steps:?})", e.id);
    }
    println!("hires: {hires} by webhook ({both} of them by the plugin too), {plugin_only} by the plugin only; SIGKILLs: {killed}, drained after {drained_at:?}");
    println!(
        "webhook exports by status: {statuses:?}; attempts in all {}, most for one {}",
        attempts.0, attempts.1
    );
    println!("plugin exports by status: {plugin_statuses:?}; submits sent {plugin_tries}");
    println!(
        "invitations: employees invited more than once {invited_twice}, not invited {not_invited}"
    );
    println!(
        "employees: {} (duplicates {}), employees without exactly one CV: {}",
        tally.employees, tally.duplicate_employees, tally.wrong_cvs
    );
    println!(
        "comments: missing {}, hires with a second comment {}",
        tally.missing_comments, tally.second_comments
    );
    let ok = statuses == vec![("succeeded".to_owned(), hires as i64)]
        && plugin_statuses
            .iter()
            .all(|(s, _)| s == "succeeded" || s == "resolved")
        && invited_twice == 0
        && tally.employees == people
        && tally.duplicate_employees == 0
        && tally.wrong_cvs == 0
        && tally.missing_comments == 0;
    println!("{}", if ok { "PASS" } else { "FAIL" });
    if !ok {
        std::process::exit(1);
    }
}

/// Sends hire `id` through the plugin as Pinpoint does: reads the form for its application, then
/// submits it with the e-mail left blank (the console fills it from the application). A submit
/// that fails or is cut off by a kill is sent again, as the person would; returns how many were
/// sent. The CV link is a public one named like the application's CV, since the plugin refuses
/// links to loopback addresses such as the simulator's.
async fn send_with_plugin(client: reqwest::Client, base: String, id: usize) -> usize {
    let started = Instant::now();
    let mut sent = 0;
    while started.elapsed() < TIME_LIMIT {
        sent += 1;
        if submit_once(&client, &base, id).await.unwrap_or(false) {
            return sent;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    panic!("time limit reached while submitting hire {id} through the plugin");
}

async fn submit_once(client: &reqwest::Client, base: &str, id: usize) -> reqwest::Result<bool> {
    let form: serde_json::Value = client
        .post(format!("{base}/export-candidate/meta"))
        .header("X-Plugin-Token", PLUGIN_TOKEN)
        .json(&serde_json::json!({ "applicationId": id }))
        .send()
        .await?
        .json()
        .await?;
    let value = |key: &str| {
        form["formFields"]
            .as_array()
            .and_then(|fields| fields.iter().find(|f| f["key"] == key))
            .and_then(|f| f["value"].as_str())
            .unwrap_or_default()
            .to_owned()
    };
    let (first, last) = (value("firstName"), value("lastName"));
    if first.is_empty() {
        // the form could not read the application (an injected failure): load it again
        return Ok(false);
    }
    let cv = serde_json::json!({
        "url": format!("https://files.example.com/cv/{id}.pdf"),
        "filename": sandbox::samples::cv_filename(&first, &last),
    });
    let answer: serde_json::Value = client
        .post(format!("{base}/export-candidate/submit"))
        .header("X-Plugin-Token", PLUGIN_TOKEN)
        .json(&serde_json::json!({ "applicationId": id, "formFields": [
            {"key": "email", "value": ""},
            {"key": "cvDocument", "value": cv},
        ]}))
        .send()
        .await?
        .json()
        .await?;
    Ok(answer["success"] == true)
}

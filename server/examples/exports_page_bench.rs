//! Server time of the exports list at scale: a fresh SQLite file filled with a million exports,
//! then the list's server function (the exports page's data: one page plus the status counts)
//! called over loopback for the first page, filtered pages and searches.
//!
//!   cargo run --release -p server --example exports_page_bench -- [exports] [repeats]
//!
//! Exports are written the way the console writes them (every index and trigger live), in
//! transactions of 50,000, with a realistic mix: mostly webhooks, mostly succeeded, a few percent
//! stopped, creation times spread evenly over three years, names from common first and last
//! names. Target: every case ≤ 50 ms.
//!
//! With `BENCH_POSTGRES` set (see `support/bench_db.rs`) the same database is then copied into a
//! fresh PostgreSQL database with `migrate-db`'s copy (timed), analysed as autovacuum would, and
//! measured again there.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

#[path = "support/bench_db.rs"]
mod bench_db;

use clap::Parser as _;
use server::{config::Cli, console, startup};

const ADMIN: &str = "bench@example.com";
const VIEWER: &str = "viewer@example.com";
const PASSWORD: &str = "bench password 123";
/// Seconds between two exports' creation: a million exports span three years.
const SPACING_SECS: i64 = 95;
const START: &str = "2023-09-01T00:00:00Z";
const BATCH: i64 = 50_000;

const FIRST: [&str; 16] = [
    "Jane", "Liam", "Olivia", "Noah", "Emma", "Ava", "Sophia", "Lucas", "Mia", "Ethan", "Amara",
    "Kenji", "Priya", "Mateo", "Chloé", "Omar",
];
const LAST: [&str; 16] = [
    "Smith", "Johnson", "Williams", "Brown", "Garcia", "Miller", "Davis", "Martinez", "Okafor",
    "Nguyen", "Kowalski", "O'Brien", "Müller", "Rossi", "Tanaka", "Haddad",
];

/// Fills `exports` in SQL (a recursive row generator joined with name tables), so the cost is
/// SQLite's own: rows, the four list indexes, the trigram index and the status counters.
async fn fill(pool: &sqlx::SqlitePool, rows: i64) -> anyhow::Result<()> {
    let mut conn = pool.acquire().await?;
    for (table, names) in [("bench_first", FIRST), ("bench_last", LAST)] {
        sqlx::query(&format!(
            "CREATE TEMP TABLE {table} (k INTEGER PRIMARY KEY, name TEXT NOT NULL)"
        ))
        .execute(&mut *conn)
        .await?;
        for (k, name) in names.iter().enumerate() {
            sqlx::query(&format!("INSERT INTO {table} (k, name) VALUES (?, ?)"))
                .bind(k as i64)
                .bind(*name)
                .execute(&mut *conn)
                .await?;
        }
    }
    let mut done = 0;
    while done < rows {
        let upto = (done + BATCH).min(rows);
        let started = Instant::now();
        sqlx::query(
            "WITH RECURSIVE n(i) AS (SELECT ?1 + 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?2),
             g(i, status) AS (
                 SELECT i, CASE WHEN ?5 - i < 20 THEN 'queued'
                                WHEN ?5 - i < 25 THEN 'running'
                                WHEN (i * 2654435761) % 4294967296 % 100 < 2 THEN 'needs_attention'
                                WHEN (i * 2654435761) % 4294967296 % 100 < 3 THEN 'dead'
                                ELSE 'succeeded' END
                 FROM n)
             INSERT INTO exports (id, source, idempotency_key, pinpoint_application_id, status,
                                  attempts, candidate_name, candidate_email, start_date,
                                  hibob_employee_id, last_error, created_at, updated_at)
             SELECT i,
                    CASE WHEN i % 5 = 0 THEN 'plugin' ELSE 'webhook' END,
                    'application_hired:' || (2000000 + i),
                    CAST(2000000 + i AS TEXT),
                    status, 1,
                    f.name || ' ' || l.name,
                    lower(f.name) || '.' || lower(replace(l.name, '''', '')) || (i % 997) || '@'
                      || CASE i % 3 WHEN 0 THEN 'example.com' WHEN 1 THEN 'mail.example' ELSE 'acme.io' END,
                    date(?3, '+' || (i * ?4 / 86400 + 30) || ' days'),
                    CASE WHEN status = 'succeeded' THEN CAST(3332883884017000000 + i AS TEXT) END,
                    CASE status WHEN 'needs_attention' THEN 'HiBob 400: Site does not exist'
                                WHEN 'dead' THEN 'HiBob 503 after 8 attempts' END,
                    strftime('%Y-%m-%dT%H:%M:%fZ', ?3, '+' || (i * ?4) || ' seconds'),
                    strftime('%Y-%m-%dT%H:%M:%fZ', ?3, '+' || (i * ?4 + 60) || ' seconds')
             FROM g
             JOIN bench_first f ON f.k = (i * 7919) % 16
             JOIN bench_last l ON l.k = (i * 104729 / 16) % 16",
        )
        .bind(done)
        .bind(upto)
        .bind(START)
        .bind(SPACING_SECS)
        .bind(rows)
        .execute(&mut *conn)
        .await?;
        done = upto;
        eprintln!(
            "  {done} exports ({:.1} s for the last {BATCH})",
            started.elapsed().as_secs_f64()
        );
    }
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&mut *conn)
        .await?;
    Ok(())
}

struct Case {
    name: &'static str,
    form: Vec<(&'static str, String)>,
}

fn case(name: &'static str, form: &[(&'static str, &str)]) -> Case {
    Case {
        name,
        form: form.iter().map(|(k, v)| (*k, (*v).to_owned())).collect(),
    }
}

fn pick(lat: &[Duration], p: f64) -> f64 {
    lat[((lat.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1e3
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let rows: i64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000)
        .clamp(1_000, 5_000_000);
    let repeats: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(30)
        .clamp(3, 1_000);

    let dir = tempfile::tempdir()?;
    let file = dir.path().join("bench.db");
    let db = format!("sqlite://{}", file.display());
    let pool = integration::db::open(&db).await?;
    eprintln!("filling {rows} exports…");
    let started = Instant::now();
    fill(&pool, rows).await?;
    let fill_secs = started.elapsed().as_secs_f64();
    pool.close().await;
    let size_mb = std::fs::metadata(&file)?.len() as f64 / 1e6;
    println!("filled {rows} exports in {fill_secs:.1} s; database {size_mb:.0} MB");

    measure(&db, rows, repeats).await?;
    if std::env::var_os("BENCH_POSTGRES").is_some() {
        let pg = bench_db::fresh(dir.path()).await?;
        let started = Instant::now();
        let copied = store_postgres::from_sqlite::copy(&db, &pg).await?;
        println!(
            "migrate-db copied {} rows in {:.1} s",
            copied.rows(),
            started.elapsed().as_secs_f64()
        );
        // a bulk load leaves the planner without statistics until autovacuum's analyse runs
        bench_db::open(&pg)
            .await?
            .execute("VACUUM ANALYZE", &[])
            .await;
        measure(&pg, rows, repeats).await?;
    }
    Ok(())
}

/// The exports page's server function on a console serving `db`, case by case.
async fn measure(db: &str, rows: i64, repeats: usize) -> anyhow::Result<()> {
    println!(
        "{}:",
        if db.starts_with("postgres") {
            "PostgreSQL"
        } else {
            "SQLite"
        }
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let site = addr.to_string();
    let config = Cli::try_parse_from([
        "pinpoint-hibob",
        "--database-url",
        db,
        "--site-addr",
        &site,
        "--sandbox",
        "off",
        "--secret-key",
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
        "--admin-email",
        ADMIN,
        "--admin-password",
        PASSWORD,
    ])?
    .config;
    let database = startup::open_database(&config).await?;
    let sealer = startup::secret_box(&config)?;
    startup::ensure_first_admin(&database.db, &config).await?;
    let state = startup::console_state(&config, database.db.clone(), sealer);
    let app = console::router(&config, state, &database).await?;
    tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await;
    });
    // a viewer is not shown how many a bulk retry would take, so their page is the list and
    // its status counts alone
    let known = database.db.users().list().await?;
    if !known.iter().any(|u| u.email == VIEWER) {
        database
            .db
            .users()
            .create(
                &integration::access::audit::Actor::system("bench"),
                VIEWER,
                secrecy::SecretString::from(PASSWORD.to_owned()),
                integration::access::users::Role::Viewer,
            )
            .await?;
    }
    let base = format!("http://{addr}");
    let client = signed_in(&base, ADMIN).await?;
    let viewer = signed_in(&base, VIEWER).await?;

    let middle_id = (rows / 2).to_string();
    let cases = [
        case("first page", &[]),
        case(
            "page in the middle (before = half way)",
            &[("before", &middle_id)],
        ),
        case("status needs attention", &[("status", "needs_attention")]),
        case(
            "status dead, source plugin",
            &[("status", "dead"), ("source", "plugin")],
        ),
        case(
            "status queued, source plugin (none)",
            &[("status", "queued"), ("source", "plugin")],
        ),
        case(
            "created in June 2025",
            &[("from", "2025-06-01"), ("to", "2025-06-30")],
        ),
        case(
            "succeeded, webhook, June 2025",
            &[
                ("status", "succeeded"),
                ("source", "webhook"),
                ("from", "2025-06-01"),
                ("to", "2025-06-30"),
            ],
        ),
        case("search name \"okafor\" (common)", &[("search", "okafor")]),
        case("search \"o'brien\" (quote)", &[("search", "o'brien")]),
        case(
            "search full email",
            &[("search", "priya.tanaka312@acme.io")],
        ),
        case("search application id", &[("search", "2512345")]),
        case(
            "search HiBob employee id",
            &[("search", "3332883884017654321")],
        ),
        case("search short id \"42\" (exact)", &[("search", "42")]),
        case("search \"50%\" (no match)", &[("search", "50%")]),
        case("search \"zqxj\" (no match)", &[("search", "zqxj")]),
        case(
            "search \"example.com\" (a third)",
            &[("search", "example.com")],
        ),
        case(
            "search \"smith\", dead, 2024",
            &[
                ("search", "smith"),
                ("status", "dead"),
                ("from", "2024-01-01"),
                ("to", "2024-12-31"),
            ],
        ),
    ];
    println!("| case | rows | p50 | p95 | max | p95 as a viewer |");
    println!("|---|---|---|---|---|---|");
    let mut worst: f64 = 0.0;
    for c in &cases {
        let call = |client: reqwest::Client| {
            let url = format!("{base}/api/exports");
            async move {
                let res = client
                    .post(url)
                    .header("Sec-Fetch-Site", "same-origin")
                    .form(&c.form)
                    .send()
                    .await?;
                anyhow::ensure!(res.status().is_success(), "{}: {}", c.name, res.status());
                let body: serde_json::Value = res.json().await?;
                Ok::<_, anyhow::Error>(body["rows"].as_array().map(Vec::len).unwrap_or(0))
            }
        };
        // warm-up: the first call also reads pages into the cache
        let shown = call(client.clone()).await?;
        let mut lat = Vec::with_capacity(repeats);
        let mut as_viewer = Vec::with_capacity(repeats);
        for _ in 0..repeats {
            let t = Instant::now();
            call(client.clone()).await?;
            lat.push(t.elapsed());
            let t = Instant::now();
            call(viewer.clone()).await?;
            as_viewer.push(t.elapsed());
        }
        lat.sort();
        as_viewer.sort();
        worst = worst.max(pick(&lat, 0.95));
        println!(
            "| {} | {shown} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms |",
            c.name,
            pick(&lat, 0.5),
            pick(&lat, 0.95),
            pick(&lat, 1.0),
            pick(&as_viewer, 0.95)
        );
    }
    println!(
        "worst p95 {worst:.1} ms: target ≤ 50 ms {}",
        if worst <= 50.0 { "met" } else { "NOT met" }
    );
    // the console lets go of a SQLite file, so that migrate-db may take it
    if let startup::Pool::Sqlite(pool) = &database.pool {
        pool.close().await;
    }
    Ok(())
}

async fn signed_in(base: &str, email: &str) -> anyhow::Result<reqwest::Client> {
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let login = client
        .post(format!("{base}/api/login"))
        .header("Sec-Fetch-Site", "same-origin")
        .form(&[("email", email), ("password", PASSWORD)])
        .send()
        .await?;
    anyhow::ensure!(
        login.status().is_success() || login.status().is_redirection(),
        "sign-in answered {}",
        login.status()
    );
    Ok(client)
}

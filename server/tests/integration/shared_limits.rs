//! Several consoles on one PostgreSQL database keep one set of limits: HiBob's rate-limit window,
//! the sign-in throttle and the allowance of rejected deliveries are not multiplied by the number
//! of consoles. Each test stands up its consoles on one fresh database; on SQLite, where one
//! console owns the database file, they return early.

use std::time::{Duration, Instant};

use integration::{hibob, outbound::CallLog, pacing::Pacing, Db};
use secrecy::SecretString;
use server::{
    database::{Database, Pool},
    startup,
};

use crate::common::{
    console_config,
    fakes::{simulators, Fakes},
    on_postgres, serve,
    webhook::hired,
    TestApp, ADMIN_EMAIL, ADMIN_PASSWORD,
};

/// `n` consoles' stores on one fresh PostgreSQL database, each over a pool of its own, as
/// separate processes would have.
async fn stores_on_one_database(n: usize) -> (String, Vec<Db>) {
    let url = store_postgres::testing::fresh_database()
        .await
        .expect("a PostgreSQL database");
    let mut stores = Vec::new();
    for _ in 0..n {
        let pool = store_postgres::open(&url, 4).await.expect("postgres");
        stores.push(store_postgres::PgStore::db(pool));
    }
    (url, stores)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_consoles_stay_within_one_hibob_window_together() {
    if !on_postgres() {
        return;
    }
    const CONSOLES: usize = 3;
    const CALLS_EACH: usize = 8;
    const LIMIT: u32 = 6;
    let sims = simulators().await;
    // 6 calls per endpoint per 2 s, every answer announcing the window, 429 beyond it
    sims.state.set_rate_window(LIMIT, 2);
    sims.state.set_call_delay(Duration::from_millis(30));
    let (_, stores) = stores_on_one_database(CONSOLES).await;
    let creds = &sims.credentials;
    let mut calls = Vec::new();
    for db in &stores {
        // each console's own pacing, as `Credentials` builds it, over the shared database
        let pacing = std::sync::Arc::new(Pacing::over(db));
        for i in 0..CALLS_EACH {
            let client = hibob::Client::new(
                &sims.hibob_base_url,
                &creds.hibob_service_user_id,
                SecretString::from(creds.hibob_token.clone()),
            )
            .unwrap()
            .paced_by(&pacing)
            .with_patience(Duration::from_secs(30));
            calls.push(tokio::spawn(async move {
                let mut log = CallLog::new();
                // a refusal would come back as an error: each call gets a few tries, as the
                // worker would give it later
                for _ in 0..5 {
                    if client
                        .search_by_email(&format!("nobody{i}@example.com"), &mut log)
                        .await
                        .is_ok()
                    {
                        return true;
                    }
                }
                false
            }));
        }
    }
    let started = Instant::now();
    for call in calls {
        assert!(call.await.unwrap(), "every call is answered in the end");
    }
    let took = started.elapsed();
    let windows = sims.state.rate_limited_windows();
    assert!(
        windows.iter().all(|(_, _, n)| *n <= 1),
        "at most one 429 per window, however many consoles call: {windows:?}"
    );
    let sent = sims.state.hibob_calls();
    let answered = CONSOLES * CALLS_EACH;
    assert!(sent >= answered, "{sent} calls for {answered} answers");
    // the windows the calls needed, and no fewer: the limit was used, not halved
    let windows_needed = u32::try_from(sent).unwrap().div_ceil(LIMIT);
    assert!(
        took < Duration::from_secs(u64::from(windows_needed + 2) * 2),
        "{sent} calls took {took:?}"
    );
    eprintln!(
        "{sent} HiBob calls from {CONSOLES} consoles in {took:?}; 429s by window: {windows:?}"
    );
}

/// Another console on `first`'s database, with `extra` arguments, serving on a port of its own:
/// put together as start-up puts one together, without the lock that keeps a second console
/// from starting on the database. Answers its base URL.
async fn another_console(first: &TestApp, extra: &[String]) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let site = listener.local_addr().unwrap();
    let config = console_config(&first.database_url, &listener, extra);
    let pool = store_postgres::open(&first.database_url, 4).await.unwrap();
    let database = Database {
        db: store_postgres::PgStore::db(pool.clone()),
        pool: Pool::Postgres(pool),
    };
    let sealer = startup::secret_box(&config).unwrap();
    let state = startup::console_state(&config, database.db.clone(), sealer);
    let router = server::console::router(&config, state, &database)
        .await
        .unwrap();
    serve(listener, router, &config);
    format!("http://{site}")
}

async fn sign_in(base: &str, from: &str, email: &str, password: &str) -> u16 {
    TestApp::client()
        .post(format!("{base}/api/login"))
        .header("Sec-Fetch-Site", "same-origin")
        .header("X-Forwarded-For", from)
        .form(&[("email", email), ("password", password)])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_guesser_spread_over_two_consoles_is_throttled_as_on_one() {
    if !on_postgres() {
        return;
    }
    let trusting = ["--trusted-proxies", "127.0.0.1"];
    let first = TestApp::spawn_with(&trusting).await;
    let consoles = [
        first.base.clone(),
        another_console(&first, &trusting.map(String::from)).await,
    ];
    // five failures are free per account, whichever console hears them, from new addresses
    for i in 0..5 {
        let status = sign_in(
            &consoles[i % 2],
            &format!("198.51.100.{i}"),
            ADMIN_EMAIL,
            "wrong password!",
        )
        .await;
        assert_eq!(status, 422, "guess {i}");
    }
    for (i, console) in consoles.iter().enumerate() {
        let status = sign_in(console, "198.51.100.99", ADMIN_EMAIL, ADMIN_PASSWORD).await;
        assert_eq!(status, 429, "console {i} holds the account back too");
    }
    // an address's twenty failures across accounts, split over the consoles
    for i in 0..20 {
        let status = sign_in(
            &consoles[i % 2],
            "203.0.113.7",
            &format!("guess{i}@example.com"),
            "wrong password!",
        )
        .await;
        assert_eq!(status, 422, "guess {i}");
    }
    for console in &consoles {
        assert_eq!(
            sign_in(console, "203.0.113.7", "more@example.com", "x").await,
            429
        );
    }
    assert_eq!(
        first
            .scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'login.failed'")
            .await,
        25
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_deliveries_are_limited_once_across_consoles() {
    if !on_postgres() {
        return;
    }
    let fakes = Fakes::start().await;
    let args = fakes.args(&["--rejected-deliveries-per-minute", "4"]);
    let first = TestApp::spawn_with(&args).await;
    let consoles = [first.base.clone(), another_console(&first, &args).await];
    let mut statuses = Vec::new();
    for i in 0..10u64 {
        let status = reqwest::Client::new()
            .post(format!("{}/webhooks/pinpoint", consoles[(i % 2) as usize]))
            .header("content-type", "application/json")
            .header("PINPOINT-HMAC-SHA256", "bad")
            .body(hired(i))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        statuses.push(status);
    }
    assert_eq!(
        statuses,
        [401, 401, 401, 401, 429, 429, 429, 429, 429, 429],
        "four stored a minute from one address, whichever console they reach"
    );
    assert_eq!(
        first
            .scalar("SELECT COUNT(*) FROM webhook_deliveries WHERE outcome = 'rejected'")
            .await,
        4
    );
}

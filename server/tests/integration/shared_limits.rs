//! Several consoles on one PostgreSQL database keep one set of limits: HiBob's rate-limit window,
//! the sign-in throttle and the allowance of rejected deliveries are not multiplied by the number
//! of consoles. Each test stands up its consoles on one fresh database; on SQLite, where one
//! console owns the database file, they return early.

use std::time::{Duration, Instant};

use integration::{hibob, outbound::CallLog, pacing::Pacing, Db};
use secrecy::SecretString;

use crate::common::{fakes::simulators, on_postgres};

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

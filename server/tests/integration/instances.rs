//! Several consoles serving one PostgreSQL database, as instances of one deployment do: what one
//! publishes reaches the pages, the idle worker and the caches of another, one of them leads the
//! jobs that run once per database and another takes over when it is gone, and two starting
//! together on an empty database make one admin. On SQLite, where one process serves a
//! database, the console always leads.

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use clap::Parser;
use integration::{
    live::Change,
    peers::leader::{while_leader, Leadership},
};
use serde_json::Value;
use server::{config::Cli, startup};
use wiremock::{
    matchers::{basic_auth, method},
    Mock, MockServer, ResponseTemplate,
};

use crate::common::{fakes::Fakes, on_postgres, TestApp, ADMIN_PASSWORD, SECRET_KEY};

/// Waits until `b`'s relay hears what `a` publishes, so that a test's own notices are not sent
/// before `b` listens.
async fn relaying(a: &TestApp, b: &TestApp) {
    let mut heard = b.changes.subscribe();
    let probe = Change::BulkRetry { id: -1 };
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            a.changes.publish(probe.clone());
            let next = tokio::time::timeout(Duration::from_millis(200), heard.next()).await;
            if next == Ok(Some(probe.clone())) {
                return;
            }
        }
    })
    .await
    .expect("the second console hears the first");
}

/// Two consoles on one database, each connected to the same fakes of Pinpoint and HiBob (where
/// every hire succeeds), the second hearing the first.
async fn two_consoles_exporting() -> (Fakes, TestApp, TestApp) {
    let fakes = Fakes::start().await;
    fakes.every_hire_succeeds().await;
    let a = fakes.app().await;
    let b = TestApp::spawn_beside(&a, &fakes.args(&[])).await;
    relaying(&a, &b).await;
    (fakes, a, b)
}

/// Waits up to `within` for `done`.
async fn eventually(within: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    done()
}

#[tokio::test]
async fn a_change_on_one_instance_reaches_the_pages_open_on_another() {
    if !on_postgres() {
        return;
    }
    let (_fakes, a, b) = two_consoles_exporting().await;
    let viewer = b.user_with_role("viewer").await;
    let mut events = viewer.get(b.url("/events")).send().await.unwrap();
    assert_eq!(events.status(), 200);

    let export = a.hire(1).await;
    let mut seen = String::new();
    let wanted = format!(r#"data: {{"kind":"export","id":{export},"status":"queued"}}"#);
    tokio::time::timeout(Duration::from_secs(10), async {
        while !seen.contains(&wanted) {
            let chunk = events
                .chunk()
                .await
                .unwrap()
                .expect("the stream stays open");
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!("the hire on the first console did not reach the second's page; got {seen:?}")
    });
    assert!(!seen.contains("Jane"), "notices carry no personal data");
    assert!(!seen.contains("due"), "a worker's wake-up is not for pages");
}

#[tokio::test]
async fn a_hire_stored_on_one_instance_wakes_the_idle_worker_of_another() {
    if !on_postgres() {
        return;
    }
    let (_fakes, a, b) = two_consoles_exporting().await;
    // only the second console's worker runs; idle, it would look again in 30 s
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(server::worker::supervise(b.worker.clone(), stopped));
    tokio::time::sleep(Duration::from_millis(300)).await;

    let export = a.hire(1).await;
    let status = || async {
        a.sql
            .scalar::<String>("SELECT status FROM exports WHERE id = ?", &[export.into()])
            .await
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while status().await != "succeeded" && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        status().await,
        "succeeded",
        "the idle worker of the second console took the first's hire at once"
    );
    stop.send_replace(true);
    worker.await.unwrap();
    // nothing was left for the first console's worker
    assert!(a.worker.run_once().await.unwrap().is_none());
}

#[tokio::test]
async fn credentials_saved_on_one_instance_are_used_by_the_next_call_of_another() {
    if !on_postgres() {
        return;
    }
    let hibob = MockServer::start().await;
    let accepts = |token: &str| {
        Mock::given(method("GET"))
            .and(basic_auth("SERVICE-1", token))
            .respond_with(ResponseTemplate::new(200).set_body_string("[]"))
    };
    accepts("token-one").mount(&hibob).await;
    let base = format!("{}/v1", hibob.uri());
    let args = ["--hibob-api-base-url", base.as_str()];
    let a = TestApp::spawn_with(&args).await;
    let b = TestApp::spawn_beside(&a, &args).await;
    relaying(&a, &b).await;
    let (on_a, on_b) = (a.admin().await, b.admin().await);
    let save = |token: &'static str| async {
        let form = [
            ("values[hibob_service_user_id]", "SERVICE-1"),
            ("values[hibob_service_user_token]", token),
        ];
        crate::common::assert_ok(a.call(&on_a, "save_settings", &form).await).await
    };
    let test_on_b = || async {
        let answer: Value = b
            .call_json(&on_b, "test_connection", &[("service", "hibob")])
            .await;
        answer["ok"] == true
    };
    save("token-one").await;
    assert!(
        test_on_b().await,
        "the second console reads the first's save"
    );

    hibob.reset().await;
    accepts("token-two").mount(&hibob).await;
    save("token-two").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut ok = test_on_b().await;
    while !ok && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        ok = test_on_b().await;
    }
    assert!(
        ok,
        "the second console still calls HiBob with the old token"
    );
}

/// Ends the connections the consoles on `app`'s database listen for each other's notices on, and
/// says how many there were.
async fn cut_relays(app: &TestApp) -> i64 {
    app.sql
        .scalar(
            "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity
             WHERE application_name = 'pinpoint-hibob relay' AND datname = current_database()",
            &[],
        )
        .await
}

#[tokio::test]
async fn an_instance_whose_relay_lost_its_connection_reloads_its_pages_and_hears_again() {
    if !on_postgres() {
        return;
    }
    let a = TestApp::spawn().await;
    let b = TestApp::spawn_beside(&a, &[] as &[&str]).await;
    relaying(&a, &b).await;
    let mut pages = b.changes.subscribe();
    let ended = cut_relays(&a).await;
    assert_eq!(ended, 2, "each console listens on a connection of its own");
    // what was sent while it was gone is lost: its pages reload everything
    let told = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if pages.next().await == Some(Change::Resync) {
                return;
            }
        }
    })
    .await;
    assert!(told.is_ok(), "the pages were not told to reload");
    relaying(&a, &b).await;
}

/// What `/readyz` says of the relay, once it says `want` (within 20 s).
async fn relay_says(app: &TestApp, want: &str) -> Value {
    let client = TestApp::client();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let ready: Value =
            crate::common::json_of(client.get(app.url("/readyz")).send().await.expect("readyz"))
                .await;
        if ready["relay"] == want || tokio::time::Instant::now() > deadline {
            assert_eq!(ready["relay"], want, "{ready}");
            return ready;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn readiness_says_while_an_instance_cannot_hear_the_others() {
    let app = TestApp::spawn().await;
    if !on_postgres() {
        // one process per database: there is nobody to hear
        let ready: Value = crate::common::json_of(
            TestApp::client()
                .get(app.url("/readyz"))
                .send()
                .await
                .expect("readyz"),
        )
        .await;
        assert_eq!(ready["relay"], Value::Null, "{ready}");
        return;
    }
    relay_says(&app, "listening").await;
    // the relay's connection is cut and the database takes no new ones for a while
    let database: String = app.sql.scalar("SELECT current_database()", &[]).await;
    // a database cannot refuse connections from within itself: from the cluster's own
    let store_postgres::test_sql::Sql::Postgres(pool) = &app.sql else {
        unreachable!("on PostgreSQL")
    };
    let cluster =
        sqlx::PgPool::connect_with((*pool.connect_options()).clone().database("postgres"))
            .await
            .expect("the cluster's own database");
    let refuse = format!("ALTER DATABASE \"{database}\" ALLOW_CONNECTIONS false");
    sqlx::raw_sql(&refuse)
        .execute(&cluster)
        .await
        .expect("refuse");
    let ended = cut_relays(&app).await;
    assert_eq!(ended, 1);
    // still ready (its pool's connections are open), and it says what it is missing
    relay_says(&app, "reconnecting").await;
    let metrics = app.page(&TestApp::client(), "/metrics").await;
    assert!(metrics.contains("console_relay_listening 0"), "{metrics}");
    let allow = format!("ALTER DATABASE \"{database}\" ALLOW_CONNECTIONS true");
    sqlx::raw_sql(&allow)
        .execute(&cluster)
        .await
        .expect("allow");
    relay_says(&app, "listening").await;
}

/// Runs a job on `leadership` that counts, in `running`, while it runs.
fn leader_job(leadership: &Leadership, running: &Arc<AtomicUsize>) {
    let running = Arc::clone(running);
    tokio::spawn(while_leader(
        leadership.clone(),
        tokio::sync::watch::channel(false).1,
        move |mut halted| {
            let running = Arc::clone(&running);
            async move {
                running.fetch_add(1, Ordering::SeqCst);
                let _ = halted.wait_for(|h| *h).await;
                running.fetch_sub(1, Ordering::SeqCst);
            }
        },
    ));
}

#[tokio::test]
async fn one_of_two_instances_leads_and_the_other_takes_over_when_its_connection_is_gone() {
    let a = TestApp::spawn().await;
    if !on_postgres() {
        assert!(a.leadership.is_leader(), "a SQLite console always leads");
        return;
    }
    let b = TestApp::spawn_beside(&a, &[] as &[&str]).await;
    let (on_a, on_b) = (Arc::default(), Arc::<AtomicUsize>::default());
    leader_job(&a.leadership, &on_a);
    leader_job(&b.leadership, &on_b);
    let one_leads = || a.leadership.is_leader() != b.leadership.is_leader();
    assert!(
        eventually(Duration::from_secs(10), one_leads).await,
        "a leader within seconds"
    );
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(one_leads(), "never both, never neither");
        let jobs = (on_a.load(Ordering::SeqCst), on_b.load(Ordering::SeqCst));
        let expected = if a.leadership.is_leader() {
            (1, 0)
        } else {
            (0, 1)
        };
        assert_eq!(jobs, expected, "the leader alone runs the job");
    }
    let (leader, follower, leader_jobs, follower_jobs) = if a.leadership.is_leader() {
        (&a, &b, &on_a, &on_b)
    } else {
        (&b, &a, &on_b, &on_a)
    };

    // the leader's connection is gone, as when its machine or its network fails
    let ended: i64 = a
        .sql
        .scalar(
            "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_locks
             WHERE locktype = 'advisory' AND granted
               AND classid = (?1::bigint >> 32)::oid
               AND objid = (?1::bigint & 4294967295)::oid AND objsubid = 1",
            &[store_postgres::peers::LEADER_KEY.into()],
        )
        .await;
    assert_eq!(ended, 1, "one connection holds the leader's lock");
    assert!(
        eventually(Duration::from_secs(10), || follower.leadership.is_leader()).await,
        "the other console takes over within seconds"
    );
    assert!(
        !leader.leadership.is_leader(),
        "the old leader stepped down"
    );
    assert!(
        eventually(Duration::from_secs(1), || {
            (
                leader_jobs.load(Ordering::SeqCst),
                follower_jobs.load(Ordering::SeqCst),
            ) == (0, 1)
        })
        .await,
        "the job moved with the lead"
    );
}

#[tokio::test]
async fn two_instances_starting_together_on_an_empty_database_make_one_admin() {
    if !on_postgres() {
        return;
    }
    let url = store_postgres::testing::fresh_database().await.unwrap();
    let start = |email: &'static str| {
        let url = url.clone();
        async move {
            let config = Cli::try_parse_from([
                "pinpoint-hibob",
                "--database-url",
                &url,
                "--site-addr",
                "127.0.0.1:0",
                "--secret-key",
                SECRET_KEY,
                "--admin-email",
                email,
                "--admin-password",
                ADMIN_PASSWORD,
                "--sandbox",
                "off",
            ])
            .unwrap()
            .config;
            let pool = store_postgres::open(&url, 3).await.unwrap();
            let database = startup::Database {
                db: store_postgres::PgStore::db(pool.clone()),
                pool: startup::Pool::Postgres(pool),
            };
            startup::build_on(&config, database).await.unwrap()
        }
    };
    // different addresses, so that no unique e-mail can settle it
    let (first, second) = tokio::join!(start("first@example.com"), start("second@example.com"));
    let made: Vec<_> = [&first.first_admin, &second.first_admin]
        .into_iter()
        .filter(|made| matches!(made, startup::FirstAdmin::FromEnvironment(_)))
        .collect();
    assert_eq!(
        made.len(),
        1,
        "{:?}",
        (first.first_admin, second.first_admin)
    );
    assert_eq!(first.state.db.users().count().await.unwrap(), 1);
}

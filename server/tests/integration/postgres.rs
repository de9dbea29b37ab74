//! What only PostgreSQL has: a SQLite console's database moved over with `migrate-db`, and
//! consoles sharing one database while `migrate-db` keeps out of it. Both run in the PostgreSQL
//! pass of the suite.

use clap::Parser;
use integration::exports::pipeline::AttemptOutcome;
use server::{config::Cli, startup};

use crate::common::{fakes::Fakes, on_postgres, TestApp, ADMIN_EMAIL, ADMIN_PASSWORD, SECRET_KEY};

const EXPORTS: i64 = 100_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_console_moves_to_postgres_and_keeps_exporting_once_per_hire() {
    if !on_postgres() {
        return;
    }
    let fakes = Fakes::start().await;
    fakes.every_hire_succeeds().await;
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}/old.db", dir.path().display());
    let old = TestApp::spawn_with_database(dir, &sqlite, &fakes.args(&[])).await;
    let first = old.hire(1).await;
    let (_, outcome) = old.worker.run_once().await.unwrap().unwrap();
    assert_eq!(outcome, AttemptOutcome::Succeeded);
    // a hundred thousand earlier exports, each with a step, written as SQLite's own SQL
    old.sql
        .execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
             INSERT INTO exports (source, idempotency_key, pinpoint_application_id, status,
                                  candidate_name, candidate_email, hibob_employee_id)
             SELECT 'webhook', 'application_hired:' || (500000 + i), CAST(500000 + i AS TEXT),
                    'succeeded', 'Person ' || i, 'person' || i || '@example.com',
                    CAST(900000 + i AS TEXT)
             FROM n",
            &[EXPORTS.into()],
        )
        .await;
    old.sql
        .execute(
            "INSERT INTO export_steps (export_id, attempt, step, outcome, detail, exchanges)
             SELECT id, 1, 'create_employee', 'ok', 'created', '[]' FROM exports WHERE id > ?",
            &[first.into()],
        )
        .await;
    let mut before: Vec<(String, i64)> = old
        .sql
        .rows(
            "SELECT 'exports', COUNT(*) FROM exports UNION ALL
             SELECT 'export_steps', COUNT(*) FROM export_steps UNION ALL
             SELECT 'webhook_deliveries', COUNT(*) FROM webhook_deliveries UNION ALL
             SELECT 'audit_log', COUNT(*) FROM audit_log UNION ALL
             SELECT 'users', COUNT(*) FROM users",
            &[],
        )
        .await;
    before.sort();
    // the console stops
    old.sql.close().await;

    let postgres = store_postgres::testing::empty_database().await.unwrap();
    let copied = store_postgres::from_sqlite::copy(&sqlite, &postgres)
        .await
        .expect("migrate-db");
    for (table, n) in &before {
        assert_eq!(copied.tables.get(table), Some(n), "{table}: {copied}");
    }

    let dir = tempfile::tempdir().unwrap();
    let new = TestApp::spawn_with_database(dir, &postgres, &fakes.args(&[])).await;
    let mut after: Vec<(String, i64)> = new
        .sql
        .rows(
            "SELECT 'exports', COUNT(*) FROM exports UNION ALL
             SELECT 'export_steps', COUNT(*) FROM export_steps UNION ALL
             SELECT 'webhook_deliveries', COUNT(*) FROM webhook_deliveries UNION ALL
             SELECT 'audit_log', COUNT(*) FROM audit_log UNION ALL
             SELECT 'users', COUNT(*) FROM users",
            &[],
        )
        .await;
    after.sort();
    assert_eq!(after, before, "the console on the copy sees every row");
    // the hire exported on SQLite is known by its key: Pinpoint's redelivery starts nothing
    let again = crate::common::json_of(new.deliver_hire(1).await).await;
    assert_eq!(again["status"], "duplicate", "{again}");
    assert_eq!(again["export_id"], first);
    // the admin signs in with the password set on SQLite
    let admin = new.admin().await;
    let page = new.page(&admin, "/exports").await;
    assert!(page.contains("Exports"), "the exports page renders");
    // and a new hire exports, numbered after the copied ones
    let next = new.hire(2).await;
    assert_eq!(next, EXPORTS + 2);
    let (_, outcome) = new.worker.run_once().await.unwrap().unwrap();
    assert_eq!(outcome, AttemptOutcome::Succeeded);
    let succeeded = new
        .scalar("SELECT COUNT(*) FROM exports WHERE status = 'succeeded'")
        .await;
    assert_eq!(succeeded, EXPORTS + 2);
}

#[tokio::test]
async fn a_second_console_starts_beside_the_first_and_migrate_db_refuses_their_database() {
    if !on_postgres() {
        return;
    }
    let first = TestApp::spawn().await;
    let args = [
        "pinpoint-hibob",
        "--database-url",
        &first.database_url,
        "--secret-key",
        SECRET_KEY,
        "--admin-email",
        ADMIN_EMAIL,
        "--admin-password",
        ADMIN_PASSWORD,
        "--sandbox",
        "off",
    ];
    let config = Cli::try_parse_from(args).unwrap().config;
    let second = startup::build(&config)
        .await
        .expect("a second console starts on the same database");
    // both serve the same users
    let admin = first.admin().await;
    first.page(&admin, "/").await;
    assert_eq!(
        second.state.db.users().list().await.expect("users").len(),
        1,
        "the second console sees the first's admin, and made no second one"
    );
    // a copy into a database consoles are using is refused, whichever console holds it
    let dir = tempfile::tempdir().unwrap();
    let source = format!("sqlite://{}/source.db", dir.path().display());
    integration::db::open(&source)
        .await
        .expect("a SQLite source");
    let refused = store_postgres::from_sqlite::copy(&source, &first.database_url).await;
    assert!(
        matches!(
            refused,
            Err(store_postgres::from_sqlite::CopyError::TargetInUse)
        ),
        "{refused:?}"
    );
}

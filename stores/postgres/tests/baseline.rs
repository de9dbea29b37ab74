//! The baseline's translations of SQLite behaviour, checked by behaviour: each test that can runs
//! the same statements on a SQLite database built by the SQLite migrations and on a PostgreSQL
//! one built by the baseline, and compares what happened.

use std::{str::FromStr, time::Duration};

use sqlx::{
    postgres::PgPoolOptions,
    sqlite::{SqliteConnectOptions, SqliteConnection},
    Connection, PgConnection, PgPool,
};
use store_postgres::testing::fresh_database;

async fn sqlite() -> SqliteConnection {
    let options = SqliteConnectOptions::from_str("sqlite::memory:")
        .unwrap()
        .foreign_keys(false);
    let mut conn = SqliteConnection::connect_with(&options).await.unwrap();
    sqlx::migrate!("../../migrations")
        .run(&mut conn)
        .await
        .unwrap();
    conn
}

async fn postgres() -> PgConnection {
    PgConnection::connect(&fresh_database().await.unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn mapping_version_one_is_sqlites_and_the_next_is_two() {
    let mut lite = sqlite().await;
    let mut pg = postgres().await;
    let query = "SELECT id, document, note, author FROM mapping_versions ORDER BY id";
    let on_sqlite: Vec<(i64, String, String, String)> =
        sqlx::query_as(query).fetch_all(&mut lite).await.unwrap();
    let on_postgres: Vec<(i64, String, String, String)> =
        sqlx::query_as(query).fetch_all(&mut pg).await.unwrap();
    assert_eq!(on_postgres, on_sqlite);
    assert_eq!(on_postgres.len(), 1);

    let next: i64 = sqlx::query_scalar(
        "INSERT INTO mapping_versions (document, author) VALUES ('{}', 'x') RETURNING id",
    )
    .fetch_one(&mut pg)
    .await
    .unwrap();
    assert_eq!(next, 2);
}

#[tokio::test]
async fn mapping_versions_cannot_be_changed_or_deleted() {
    let mut pg = postgres().await;
    let update = sqlx::query("UPDATE mapping_versions SET note = 'x' WHERE id = 1")
        .execute(&mut pg)
        .await
        .unwrap_err();
    assert!(
        update
            .to_string()
            .contains("mapping versions are immutable: save a new version"),
        "{update}"
    );
    let delete = sqlx::query("DELETE FROM mapping_versions WHERE id = 1")
        .execute(&mut pg)
        .await
        .unwrap_err();
    assert!(
        delete
            .to_string()
            .contains("mapping versions are immutable"),
        "{delete}"
    );
}

#[tokio::test]
async fn mapping_documents_must_be_json_as_on_sqlite() {
    let mut lite = sqlite().await;
    let mut pg = postgres().await;
    let documents = [
        r#"{"fields":[],"variables":[]}"#,
        "[]",
        "1",
        r#""text""#,
        " {} ",
        r#"{"a":"\u0000"}"#,
        r#"{"a":1,"a":2}"#,
        "",
        "{",
        "{a:1}",
        "{'a':1}",
        r#"{"a":1,}"#,
        "[1,]",
        "NaN",
        "// comment\n{}",
    ];
    for document in documents {
        let insert = "INSERT INTO mapping_versions (document, author) VALUES ($1, 'x')";
        let on_sqlite = sqlx::query(insert)
            .bind(document)
            .execute(&mut lite)
            .await
            .is_ok();
        let on_postgres = sqlx::query(insert)
            .bind(document)
            .execute(&mut pg)
            .await
            .is_ok();
        assert_eq!(on_postgres, on_sqlite, "{document:?}");
    }
}

#[tokio::test]
async fn emails_are_unique_ignoring_ascii_case_only_as_with_nocase() {
    let mut lite = sqlite().await;
    let mut pg = postgres().await;
    let emails = [
        "Ada@Example.com",
        "ada@example.COM",
        "ADA@EXAMPLE.COM",
        "édith@example.com",
        "Édith@example.com",
        "ÉDITH@example.com",
        "édith@example.com",
        "zoe@example.com",
    ];
    for email in emails {
        let insert = "INSERT INTO users (email, password_hash, role) VALUES ($1, 'h', 'viewer')";
        let on_sqlite = sqlx::query(insert)
            .bind(email)
            .execute(&mut lite)
            .await
            .is_ok();
        let on_postgres = sqlx::query(insert)
            .bind(email)
            .execute(&mut pg)
            .await
            .is_ok();
        assert_eq!(on_postgres, on_sqlite, "{email}");
    }
}

#[tokio::test]
async fn default_times_are_written_as_sqlite_writes_them() {
    let mut lite = sqlite().await;
    let mut pg = postgres().await;
    let now = "SELECT strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";
    let before: String = sqlx::query_scalar(now).fetch_one(&mut lite).await.unwrap();
    let written: String =
        sqlx::query_scalar("INSERT INTO audit_log (action) VALUES ('test') RETURNING at")
            .fetch_one(&mut pg)
            .await
            .unwrap();
    let after: String = sqlx::query_scalar(now).fetch_one(&mut lite).await.unwrap();
    // same form (so text order is time order across engines and with db::time_text) and the
    // same clock, in UTC
    let shape = |t: &str| t.replace(|c: char| c.is_ascii_digit(), "d");
    assert_eq!(shape(&written), "dddd-dd-ddTdd:dd:dd.dddZ");
    assert_eq!(shape(&before), shape(&written));
    assert!(
        before <= written && written <= after,
        "{before} {written} {after}"
    );
}

/// SQLite's search: the four columns, each with LIKE (ASCII letters in any case), as
/// exports::search does.
const SQLITE_SEARCH: &str = "SELECT id FROM exports
    WHERE candidate_name LIKE $1 ESCAPE '\\' OR candidate_email LIKE $1 ESCAPE '\\'
       OR pinpoint_application_id LIKE $1 ESCAPE '\\' OR hibob_employee_id LIKE $1 ESCAPE '\\'
    ORDER BY id";
/// PostgreSQL's: the one generated column, which the trigram index serves. The pattern is
/// lower-cased as the column is, under "C" (ASCII letters only): a bound text takes the
/// database's collation, under which lower() would fold every letter.
const POSTGRES_SEARCH: &str =
    "SELECT id FROM exports WHERE search_text LIKE lower($1 COLLATE \"C\") ESCAPE '\\' ORDER BY id";

/// db::like_pattern
fn like_pattern(text: &str) -> String {
    let mut out = String::from("%");
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

#[tokio::test]
async fn the_search_column_finds_what_sqlites_like_finds() {
    let mut lite = sqlite().await;
    let mut pg = postgres().await;
    let exports = [
        (
            Some("Jane O'Neil"),
            Some("Jane.Doe@Example.COM"),
            "AB-100%",
            Some("emp_1"),
        ),
        (Some("Ünal Çelik"), Some("unal@example.com"), "2001", None),
        (None, None, "3003", Some("E-77\\x")),
        (
            Some("Mary Jane"),
            Some("doe@elsewhere.org"),
            "4004",
            Some("emp1"),
        ),
    ];
    for (i, (name, email, application, employee)) in exports.iter().enumerate() {
        let insert = "INSERT INTO exports (source, idempotency_key, pinpoint_application_id,
                                           candidate_name, candidate_email, hibob_employee_id)
                      VALUES ('webhook', $1, $2, $3, $4, $5)";
        for result in [
            sqlx::query(insert)
                .bind(i.to_string())
                .bind(application)
                .bind(name)
                .bind(email)
                .bind(employee)
                .execute(&mut lite)
                .await
                .map(|_| ()),
            sqlx::query(insert)
                .bind(i.to_string())
                .bind(application)
                .bind(name)
                .bind(email)
                .bind(employee)
                .execute(&mut pg)
                .await
                .map(|_| ()),
        ] {
            result.unwrap();
        }
    }
    let searches = [
        "jane",
        "JANE",
        "o'neil",
        "example.com",
        "EXAMPLE",
        "100%",
        "00%",
        "b-1",
        "mp_1",
        "emp",
        "ünal",
        "Ünal",
        "ÜNAL",
        "çelik",
        "Çelik",
        "e-77\\",
        "\\x",
        "neil jane",
        "jane doe",
        "jane mary",
        "2001",
        "mary jane",
        "doe@",
        "com ab",
        "zzz",
    ];
    for search in searches {
        let pattern = like_pattern(search);
        let on_sqlite: Vec<i64> = sqlx::query_scalar(SQLITE_SEARCH)
            .bind(&pattern)
            .fetch_all(&mut lite)
            .await
            .unwrap();
        let on_postgres: Vec<i64> = sqlx::query_scalar(POSTGRES_SEARCH)
            .bind(&pattern)
            .fetch_all(&mut pg)
            .await
            .unwrap();
        assert_eq!(on_postgres, on_sqlite, "{search:?}");
    }

    // the trigram index can answer it (the planner picks it on a table of any size once
    // sequential scans are ruled out)
    sqlx::query("SET enable_seqscan = off")
        .execute(&mut pg)
        .await
        .unwrap();
    let plan: Vec<String> = sqlx::query_scalar(&format!("EXPLAIN {POSTGRES_SEARCH}"))
        .bind(like_pattern("jane"))
        .fetch_all(&mut pg)
        .await
        .unwrap();
    assert!(
        plan.iter().any(|line| line.contains("exports_search_trgm")),
        "{plan:#?}"
    );
}

async fn counts(pg: &mut PgConnection) -> (Vec<(String, i64)>, Vec<(String, i64)>) {
    let kept =
        sqlx::query_as("SELECT status, n FROM export_status_counts WHERE n > 0 ORDER BY status")
            .fetch_all(&mut *pg)
            .await
            .unwrap();
    let real =
        sqlx::query_as("SELECT status, COUNT(*) AS n FROM exports GROUP BY status ORDER BY status")
            .fetch_all(&mut *pg)
            .await
            .unwrap();
    (kept, real)
}

#[tokio::test]
async fn status_counts_follow_inserts_status_changes_and_deletes() {
    let mut pg = postgres().await;
    for i in 0..4 {
        sqlx::query(
            "INSERT INTO exports (source, idempotency_key, pinpoint_application_id)
             VALUES ('webhook', $1, $1)",
        )
        .bind(format!("k{i}"))
        .execute(&mut pg)
        .await
        .unwrap();
    }
    for change in [
        "UPDATE exports SET status = 'running' WHERE idempotency_key IN ('k0', 'k1')",
        "UPDATE exports SET status = 'succeeded' WHERE idempotency_key = 'k0'",
        // not a change of status: counts stay
        "UPDATE exports SET status = 'running', attempts = 1 WHERE idempotency_key = 'k1'",
        "UPDATE exports SET attempts = 2",
        "DELETE FROM exports WHERE idempotency_key = 'k2'",
    ] {
        sqlx::query(change).execute(&mut pg).await.unwrap();
        let (kept, real) = counts(&mut pg).await;
        assert_eq!(kept, real, "after {change}");
    }
    let (kept, _) = counts(&mut pg).await;
    assert_eq!(
        kept,
        [
            ("queued".to_owned(), 1),
            ("running".to_owned(), 1),
            ("succeeded".to_owned(), 1)
        ]
    );
}

/// Claims (queued → running) and releases (running → queued) of different exports at once: the
/// counter trigger takes both counter rows in one order, so none of them is aborted as a
/// deadlock, and the counts stay right.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_and_releases_at_once_do_not_deadlock() {
    const EXPORTS: i64 = 8;
    const FLIPS: usize = 60;
    let url = fresh_database().await.unwrap();
    let pool: PgPool = PgPoolOptions::new()
        .max_connections(EXPORTS as u32)
        .acquire_timeout(Duration::from_secs(30))
        .connect(&url)
        .await
        .unwrap();
    for i in 0..EXPORTS {
        sqlx::query(
            "INSERT INTO exports (id, source, idempotency_key, pinpoint_application_id, status)
             VALUES ($1, 'webhook', $1::text, $1::text, $2)",
        )
        .bind(i)
        .bind(if i % 2 == 0 { "queued" } else { "running" })
        .execute(&pool)
        .await
        .unwrap();
    }
    let tasks: Vec<_> = (0..EXPORTS)
        .map(|id| {
            let pool = pool.clone();
            tokio::spawn(async move {
                for _ in 0..FLIPS {
                    sqlx::query(
                        "UPDATE exports SET status = CASE status WHEN 'queued' THEN 'running'
                                                                 ELSE 'queued' END
                         WHERE id = $1",
                    )
                    .bind(id)
                    .execute(&pool)
                    .await?;
                }
                Ok::<_, sqlx::Error>(())
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let mut conn = pool.acquire().await.unwrap();
    let (kept, real) = counts(&mut conn).await;
    assert_eq!(kept, real);
}

#[tokio::test]
async fn text_columns_compare_bytewise_as_on_sqlite() {
    let mut pg = postgres().await;
    let other: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname || '.' || a.attname
         FROM pg_attribute a
         JOIN pg_class c ON c.oid = a.attrelid
         JOIN pg_namespace n ON n.oid = c.relnamespace
         JOIN pg_collation l ON l.oid = a.attcollation
         WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relname <> '_sqlx_migrations'
           AND a.attnum > 0 AND NOT a.attisdropped AND l.collname <> 'C'
         ORDER BY 1",
    )
    .fetch_all(&mut pg)
    .await
    .unwrap();
    assert!(
        other.is_empty(),
        "text columns without COLLATE \"C\": {other:?}"
    );
    // so that times order as text, whatever the database's locale
    let ordered: Vec<String> = sqlx::query_scalar(
        "SELECT t FROM (VALUES ('a'), ('B'), ('_'), ('Z')) AS v (t) ORDER BY t COLLATE \"C\"",
    )
    .fetch_all(&mut pg)
    .await
    .unwrap();
    assert_eq!(ordered, ["B", "Z", "_", "a"]);
}

#[tokio::test]
async fn the_session_store_works_on_the_baselines_table_without_its_migrate() {
    use tower_sessions::{
        cookie::time::{Duration as Span, OffsetDateTime},
        session::{Id, Record},
        ExpiredDeletion, SessionStore,
    };
    use tower_sessions_sqlx_store::PostgresStore;

    let pool = store_postgres::open(&fresh_database().await.unwrap(), 2)
        .await
        .unwrap();
    let store = PostgresStore::new(pool.clone());
    let mut live = Record {
        id: Id(1),
        data: Default::default(),
        expiry_date: OffsetDateTime::now_utc() + Span::hours(1),
    };
    store.create(&mut live).await.unwrap();
    let expired = Record {
        id: Id(2),
        data: Default::default(),
        expiry_date: OffsetDateTime::now_utc() - Span::minutes(1),
    };
    store.save(&expired).await.unwrap();
    assert_eq!(store.load(&live.id).await.unwrap(), Some(live.clone()));
    assert_eq!(store.load(&expired.id).await.unwrap(), None);

    store.delete_expired().await.unwrap();
    let left: Vec<String> = sqlx::query_scalar("SELECT id FROM tower_sessions.session")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(left, [live.id.to_string()]);
    store.delete(&live.id).await.unwrap();
    assert_eq!(store.load(&live.id).await.unwrap(), None);
}

//! `migrate-db`: a SQLite database copied into PostgreSQL keeps every row and id, and the copy
//! refuses what it must.

use store_postgres::{
    from_sqlite::{copy, CopyError},
    test_sql::Sql,
    testing,
};

/// A SQLite database with a few of every kind of row the console writes.
async fn source(dir: &std::path::Path, exports: i64) -> String {
    let url = format!("sqlite://{}/console.db", dir.display());
    let pool = integration::db::open(&url).await.expect("sqlite");
    let sql = Sql::Sqlite(pool.clone());
    sql.execute(
        "INSERT INTO users (email, password_hash, role) VALUES ('ada@example.com', 'x', 'admin')",
        &[],
    )
    .await;
    sql.execute(
        "INSERT INTO mapping_versions (document, note, author)
         SELECT document, 'second', 'ada@example.com' FROM mapping_versions WHERE id = 1",
        &[],
    )
    .await;
    let mut seed = Vec::new();
    for n in 0..exports {
        let status = ["succeeded", "queued", "needs_attention", "dead"][(n % 4) as usize];
        seed.push((
            "INSERT INTO exports (source, idempotency_key, pinpoint_application_id, status,
                                  candidate_name, candidate_email, cv_uploaded, mapping_version)
             VALUES ('webhook', ?, ?, ?, ?, ?, ?, 2)",
            vec![
                format!("webhook:{n}").into(),
                n.to_string().into(),
                status.into(),
                format!("Person\t{n} \\ \"q\"\n").into(),
                format!("p{n}@example.com").into(),
                (n % 2 == 0).into(),
            ],
        ));
        seed.push((
            "INSERT INTO export_steps (export_id, attempt, step, outcome, detail, exchanges)
             VALUES ((SELECT id FROM exports WHERE idempotency_key = ?), 1, 'create_employee',
                     'ok', 'done', '[]')",
            vec![format!("webhook:{n}").into()],
        ));
    }
    sql.batch(&seed).await;
    sql.execute(
        "INSERT INTO webhook_deliveries (outcome, reason, body, body_sha256, headers, body_size)
         VALUES ('accepted', '', '{}', 'h1', '{}', 2)",
        &[],
    )
    .await;
    sql.execute(
        "INSERT INTO webhook_deliveries (outcome, reason, body, body_sha256, headers, body_size,
                                         reprocessed_from)
         VALUES ('accepted', '', '{}', 'h2', '{}', 2, 1)",
        &[],
    )
    .await;
    pool.close().await;
    url
}

#[tokio::test]
async fn everything_is_copied_with_its_ids_and_new_rows_continue_after_them() {
    let dir = tempfile::tempdir().unwrap();
    let from = source(dir.path(), 500).await;
    let to = testing::empty_database().await.unwrap();
    let copied = copy(&from, &to).await.expect("copy");
    assert_eq!(copied.tables["exports"], 500, "{copied}");
    assert_eq!(copied.tables["export_steps"], 500);
    assert_eq!(copied.tables["mapping_versions"], 2);
    assert_eq!(copied.tables["webhook_deliveries"], 2);

    let pg = Sql::Postgres(store_postgres::open(&to, 2).await.unwrap());
    let name: String = pg
        .scalar(
            "SELECT candidate_name FROM exports WHERE idempotency_key = 'webhook:7'",
            &[],
        )
        .await;
    assert_eq!(name, "Person\t7 \\ \"q\"\n", "text survives COPY's escapes");
    let flags: Vec<(bool, String)> = pg
        .rows(
            "SELECT cv_uploaded, status FROM exports ORDER BY id LIMIT 2",
            &[],
        )
        .await;
    assert_eq!(
        flags,
        vec![(true, "succeeded".to_owned()), (false, "queued".to_owned())]
    );
    let counts: Vec<(String, i64)> = pg
        .rows(
            "SELECT status, n FROM export_status_counts WHERE n > 0 ORDER BY status",
            &[],
        )
        .await;
    assert_eq!(
        counts,
        vec![
            ("dead".to_owned(), 125),
            ("needs_attention".to_owned(), 125),
            ("queued".to_owned(), 125),
            ("succeeded".to_owned(), 125),
        ],
        "the status counts are rebuilt from the copied exports"
    );
    pg.execute(
        "INSERT INTO exports (source, idempotency_key, pinpoint_application_id) VALUES ('webhook', 'new', 'x')",
        &[],
    )
    .await;
    let new_id: i64 = pg
        .scalar("SELECT id FROM exports WHERE idempotency_key = 'new'", &[])
        .await;
    assert_eq!(new_id, 501, "ids continue after the copied ones");
    let queued: i64 = pg
        .scalar(
            "SELECT n FROM export_status_counts WHERE status = 'queued'",
            &[],
        )
        .await;
    assert_eq!(queued, 126, "the counts follow new exports again");

    // a second copy finds the target in use by data
    match copy(&from, &to).await {
        Err(CopyError::TargetNotEmpty(what)) => assert!(what.contains("exports"), "{what}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn a_source_in_use_is_refused_and_the_target_is_left_empty() {
    let dir = tempfile::tempdir().unwrap();
    let from = source(dir.path(), 3).await;
    // a console holding the database open
    let running = integration::db::open(&from).await.unwrap();
    let to = testing::empty_database().await.unwrap();
    let refused = copy(&from, &to).await;
    assert!(
        matches!(refused, Err(CopyError::SourceInUse(_))),
        "{refused:?}"
    );
    running.close().await;
    let pg = Sql::Postgres(store_postgres::open(&to, 2).await.unwrap());
    assert_eq!(
        pg.scalar::<i64>("SELECT COUNT(*) FROM exports", &[]).await,
        0
    );
    assert!(copy(&from, &to).await.is_ok(), "once the console stopped");
}

//! Erasure, retention, backups and the health probes.

use std::time::Duration;

use chrono::Utc;
use integration::{
    access::audit::Actor,
    backup::{BackupError, Backups},
    db,
    erasure::{EraseError, Erasure},
    health::Probes,
    retention::{Policy, Pruned, Retention},
};

use crate::common::{Both, Engine};

fn erasure<'a>(e: &Engine<'a>) -> &'a dyn Erasure {
    e.face(|s| s as &dyn Erasure, |p| p as &dyn Erasure)
}

fn retention<'a>(e: &Engine<'a>) -> &'a dyn Retention {
    e.face(|s| s as &dyn Retention, |p| p as &dyn Retention)
}

async fn export(
    e: &Engine<'_>,
    key: &str,
    app: &str,
    name: &str,
    email: &str,
    status: &str,
) -> i64 {
    e.sql
        .scalar(
            "INSERT INTO exports (source, idempotency_key, pinpoint_application_id, status,
                                  candidate_name, candidate_email, start_date, last_error)
             VALUES ('webhook', ?, ?, ?, ?, ?, '2027-01-04', 'HiBob 400 for ' || ?) RETURNING id",
            &[
                key.into(),
                app.into(),
                status.into(),
                name.into(),
                email.into(),
                email.into(),
            ],
        )
        .await
}

/// A plugin export as the plugin stores it: keyed by its e-mail, with the application the form
/// named ('' when none).
async fn plugin_export(e: &Engine<'_>, app: &str, name: &str, email: &str) -> i64 {
    e.sql
        .scalar(
            "INSERT INTO exports (source, idempotency_key, pinpoint_application_id, status,
                                  candidate_name, candidate_email)
             VALUES ('plugin', 'plugin:' || lower(?), ?, 'succeeded', ?, ?) RETURNING id",
            &[email.into(), app.into(), name.into(), email.into()],
        )
        .await
}

async fn person(e: &Engine<'_>, id: i64) -> (Option<String>, Option<String>, bool) {
    let (name, email, erased): (Option<String>, Option<String>, Option<String>) = e
        .sql
        .row(
            "SELECT candidate_name, candidate_email, erased_at FROM exports WHERE id = ?",
            &[id.into()],
        )
        .await;
    (name, email, erased.is_some())
}

/// Every text column of every table that holds `needle` (in any case), as `table.column`.
async fn mentions(e: &Engine<'_>, needle: &str) -> Vec<String> {
    let columns: Vec<(String, String)> = if e.sql.is_sqlite() {
        e.sql
            .rows(
                "SELECT m.name, c.name FROM sqlite_master m, pragma_table_info(m.name) c
                 WHERE m.type = 'table' ORDER BY 1, 2",
                &[],
            )
            .await
    } else {
        e.sql
            .rows(
                "SELECT table_name::text, column_name::text FROM information_schema.columns
                 WHERE table_schema = 'public' ORDER BY 1, 2",
                &[],
            )
            .await
    };
    let pattern = format!("%{}%", needle.to_lowercase());
    let mut found = Vec::new();
    for (table, column) in columns {
        let n: i64 = e
            .sql
            .scalar(
                &format!(
                    "SELECT COUNT(*) FROM \"{table}\"
                     WHERE lower(CAST(\"{column}\" AS TEXT)) LIKE ?"
                ),
                &[pattern.clone().into()],
            )
            .await;
        if n > 0 {
            found.push(format!("{table}.{column}"));
        }
    }
    found
}

#[tokio::test]
async fn a_person_is_erased_across_exports_and_others_are_kept() {
    let both = Both::new().await;
    let mut answers = Vec::new();
    for (name, e) in both.each() {
        let store = erasure(&e);
        let actor = Actor::system("test");
        let a = export(
            &e,
            "k1",
            "11",
            "Ada Quill",
            "ada@example.com",
            "needs_attention",
        )
        .await;
        let b = export(&e, "k2", "12", "Ada Quill", "ADA@example.com", "succeeded").await;
        let other = export(&e, "k3", "13", "Bo Rivers", "bo@example.com", "succeeded").await;
        e.sql
            .batch(&[
                (
                    "INSERT INTO export_steps (export_id, attempt, step, outcome, detail, exchanges)
                     VALUES (?, 1, 'map', 'failed', 'surname empty for Ada Quill',
                             '[{\"email\":\"ada@example.com\"}]')",
                    vec![a.into()],
                ),
                (
                    "INSERT INTO export_steps (export_id, attempt, step, outcome, exchanges)
                     VALUES (?, 1, 'search_employee', 'ok', '[{\"q\":\"ada@example.com\"}]')",
                    vec![other.into()],
                ),
                (
                    "INSERT INTO export_steps (export_id, attempt, step, outcome, exchanges)
                     VALUES (?, 1, 'search_employee', 'ok', '[{\"q\":\"bo@example.com\"}]')",
                    vec![other.into()],
                ),
                (
                    "INSERT INTO bulk_retries (filter) VALUES ('{\"search\":\"ada@example.com\"}')",
                    vec![],
                ),
                (
                    "INSERT INTO webhook_deliveries (outcome, application_id, body_sha256, body,
                                                     headers, export_id)
                     VALUES ('accepted', '12', 'h', '{\"id\":12}', '{\"x\":\"y\"}', NULL),
                            ('rejected', NULL, 'h', '{\"email\":\"ada@example.com\"}', '{}', NULL),
                            ('accepted', '13', 'h', '{\"id\":13}', '{}', ?)",
                    vec![other.into()],
                ),
                (
                    "INSERT INTO hire_watches (export_id, employee_id, mapping_version,
                                               watch_until, next_check_at, created_at, updated_at)
                     VALUES (?, 'emp', 1, '2027-06-01', 'x', 'x', 'x')",
                    vec![b.into()],
                ),
                (
                    "INSERT INTO alerts (kind, export_id, created_at, next_try_at, detail)
                     VALUES ('changed', ?, 'x', 'x', 'Ada Quill moved'),
                            ('stopped', ?, 'x', 'x', NULL)",
                    vec![b.into(), a.into()],
                ),
                (
                    "INSERT INTO audit_log (action, target, detail)
                     VALUES ('export.resolved', 'export 1', 'Ada Quill phoned: ada@example.com'),
                            ('export.resolved', 'export 3', 'Bo Rivers phoned')",
                    vec![],
                ),
            ])
            .await;

        let refused = store.erase_candidate(&actor, a, "yes").await;
        assert!(matches!(refused, Err(EraseError::NotConfirmed)), "{name}");
        let missing = store.erase_candidate(&actor, 9999, "ERASE").await;
        assert!(matches!(missing, Err(EraseError::NotFound(9999))), "{name}");
        let done = store
            .erase_candidate(&actor, a, " ERASE ")
            .await
            .unwrap_or_else(|err| panic!("{name}: {err}"));
        assert_eq!(
            done.exports,
            vec![a, b],
            "{name}: the same e-mail in any case"
        );
        assert_eq!(
            done.steps, 2,
            "{name}: its own, and another holding the e-mail"
        );
        assert_eq!(done.deliveries, 2, "{name}");
        if !e.sql.is_sqlite() {
            assert!(!done.wal_truncated, "PostgreSQL has no WAL to truncate");
        }
        assert!(store.erased_at(a).await.unwrap().is_some(), "{name}");
        assert!(store.erased_at(other).await.unwrap().is_none(), "{name}");
        assert_eq!(store.erased_at(9999).await.unwrap(), None, "{name}");
        for needle in ["ada@example.com", "Ada Quill", "Quill"] {
            assert_eq!(
                mentions(&e, needle).await,
                Vec::<String>::new(),
                "{name}: {needle}"
            );
        }
        assert_eq!(
            person(&e, other).await,
            (
                Some("Bo Rivers".to_owned()),
                Some("bo@example.com".to_owned()),
                false
            ),
            "{name}"
        );
        let left: (i64, i64, i64, i64) = e
            .sql
            .row(
                "SELECT (SELECT COUNT(*) FROM hire_watches),
                        (SELECT COUNT(*) FROM alerts),
                        (SELECT COUNT(*) FROM webhook_deliveries WHERE body <> ''),
                        (SELECT COUNT(*) FROM export_steps WHERE exchanges <> '[]')",
                &[],
            )
            .await;
        assert_eq!(
            left,
            (0, 1, 1, 1),
            "{name}: the watch and its change alert go; the stop alert, Bo's delivery and step stay"
        );
        let again = store.erase_candidate(&actor, b, "ERASE").await;
        assert!(
            matches!(again, Err(EraseError::AlreadyErased(id)) if id == b),
            "{name}"
        );
        let trail: Vec<(String, Option<String>, String)> = e
            .sql
            .rows(
                "SELECT action, target, detail FROM audit_log ORDER BY id",
                &[],
            )
            .await;
        answers.push((
            (
                done.exports,
                done.steps,
                done.deliveries,
                done.other_mentions,
            ),
            trail,
        ));
    }
    assert_eq!(answers[0], answers[1]);
}

#[tokio::test]
async fn an_export_in_progress_is_not_erased() {
    let both = Both::new().await;
    for (name, e) in both.each() {
        let store = erasure(&e);
        let actor = Actor::system("test");
        let a = export(&e, "k1", "11", "Ada Quill", "ada@example.com", "succeeded").await;
        let b = export(&e, "k2", "12", "Ada Quill", "ada@example.com", "running").await;
        let refused = store.erase_candidate(&actor, a, "ERASE").await;
        assert!(
            matches!(refused, Err(EraseError::InProgress { id, ref status }) if id == b && status == "running"),
            "{name}: {refused:?}"
        );
        let queued = export(&e, "k3", "13", "Cy", "cy@example.com", "queued").await;
        let refused = store.erase_candidate(&actor, queued, "ERASE").await;
        assert!(
            matches!(refused, Err(EraseError::InProgress { ref status, .. }) if status == "queued"),
            "{name}"
        );
        assert_eq!(
            person(&e, a).await,
            (
                Some("Ada Quill".to_owned()),
                Some("ada@example.com".to_owned()),
                false
            ),
            "{name}: nothing was erased"
        );
    }
}

#[tokio::test]
async fn a_blank_application_or_e_mail_links_nobody() {
    let both = Both::new().await;
    for (name, e) in both.each() {
        let store = erasure(&e);
        let actor = Actor::system("test");
        let erin = plugin_export(&e, "", "Erin Quarry", "erin@example.com").await;
        let bob = plugin_export(&e, "", "Bob Stone", "bob@example.com").await;
        let blank = plugin_export(&e, " ", "Cy Blank", "cy@example.com").await;
        let dee = export(&e, "k1", "31", "Dee Nomail", "n/a", "succeeded").await;
        let eve = export(&e, "k2", "32", "Eve Nomail", "n/a", "succeeded").await;
        let fay = export(&e, "k3", "33", "Fay Space", "  ", "succeeded").await;
        let gus = export(&e, "k4", "34", "Gus Space", "  ", "succeeded").await;
        e.sql
            .execute(
                "INSERT INTO audit_log (action, target, detail)
                 VALUES ('export.resolved', 'export 2', 'was dead: Bob Stone phoned')",
                &[],
            )
            .await;

        let done = store.erase_candidate(&actor, erin, "ERASE").await.unwrap();
        assert_eq!(done.exports, vec![erin], "{name}");
        assert_eq!(
            person(&e, bob).await,
            (
                Some("Bob Stone".to_owned()),
                Some("bob@example.com".to_owned()),
                false
            ),
            "{name}"
        );
        assert!(!person(&e, blank).await.2, "{name}");
        let audit: String = e
            .sql
            .scalar(
                "SELECT detail FROM audit_log WHERE action = 'export.resolved'",
                &[],
            )
            .await;
        assert_eq!(audit, "was dead: Bob Stone phoned", "{name}");
        let key: String = e
            .sql
            .scalar(
                "SELECT idempotency_key FROM exports WHERE id = ?",
                &[erin.into()],
            )
            .await;
        assert_eq!(key, format!("plugin:erased:{erin}"), "{name}");

        for (erased, kept) in [(dee, eve), (fay, gus)] {
            let done = store
                .erase_candidate(&actor, erased, "ERASE")
                .await
                .unwrap();
            assert_eq!(done.exports, vec![erased], "{name}: no e-mail to share");
            assert!(!person(&e, kept).await.2, "{name}");
        }
    }
}

#[tokio::test]
async fn erasure_leaves_no_key_or_note_anywhere() {
    let both = Both::new().await;
    for (name, e) in both.each() {
        let store = erasure(&e);
        let actor = Actor::system("test");
        let erin = plugin_export(&e, "41", "Erin Quarry", "Erin@Example.com").await;
        let other = plugin_export(&e, "42", "Bob Stone", "bob@example.com").await;
        e.sql
            .batch(&[
                (
                    "UPDATE exports SET status = 'resolved', resolved_by = 'op@example.com',
                            resolution = 'Erin Quarry was added by hand', last_error = 'HiBob 500'
                     WHERE id = ?",
                    vec![erin.into()],
                ),
                (
                    "INSERT INTO alerts (kind, export_id, created_at, next_try_at, last_error)
                     VALUES ('stopped', ?, 'now', 'now', 'mail refused: erin@example.com unknown')",
                    vec![erin.into()],
                ),
                (
                    "INSERT INTO webhook_deliveries (outcome, reason, body_sha256, body)
                     VALUES ('rejected', 'bad signature from Erin Quarry', 'h',
                             '{\"email\":\"erin@example.com\"}')",
                    vec![],
                ),
                (
                    "INSERT INTO export_steps (export_id, attempt, step, outcome, exchanges)
                     VALUES (?, 1, 'search_employee', 'ok', '[{\"q\":\"erin@example.com\"}]')",
                    vec![other.into()],
                ),
            ])
            .await;
        for needle in ["erin@example.com", "Erin Quarry"] {
            assert!(!mentions(&e, needle).await.is_empty(), "{name}: {needle}");
        }
        store.erase_candidate(&actor, erin, "ERASE").await.unwrap();
        for needle in ["erin@example.com", "Erin Quarry", "Quarry"] {
            assert_eq!(
                mentions(&e, needle).await,
                Vec::<String>::new(),
                "{name}: {needle}"
            );
        }
        assert_eq!(
            person(&e, other).await.1.as_deref(),
            Some("bob@example.com"),
            "{name}"
        );
        // her key is free again: a later submit for her is a new export
        let again = plugin_export(&e, "41", "Erin Quarry", "erin@example.com").await;
        assert_ne!(again, erin, "{name}");
        let done = store.erase_candidate(&actor, again, "ERASE").await.unwrap();
        assert_eq!(
            done.exports,
            vec![again],
            "{name}: the erased one is not erased twice"
        );
    }
}

/// A year of deliveries, steps, exports and audit entries, two a day; pruning keeps the windows.
#[tokio::test]
async fn a_year_of_data_is_pruned_to_the_same_windows() {
    let both = Both::new().await;
    let now = Utc::now();
    let body = "x".repeat(2000);
    let per_day = 2i64;
    let mut answers = Vec::new();
    for (name, e) in both.each() {
        let mut seed = Vec::new();
        for day in 0..400i64 {
            let at = db::time_text(now - chrono::Duration::days(day) - chrono::Duration::hours(1));
            for i in 0..per_day {
                let id = day * per_day + i + 1;
                seed.push((
                    "INSERT INTO exports (id, source, idempotency_key, pinpoint_application_id,
                                          status, candidate_name, candidate_email, start_date,
                                          created_at)
                     VALUES (?, 'webhook', ?, ?, ?, 'A Person', 'a@example.com', '2027-01-04', ?)",
                    vec![
                        id.into(),
                        format!("k{id}").into(),
                        format!("{id}").into(),
                        if i == 0 { "dead" } else { "succeeded" }.into(),
                        at.clone().into(),
                    ],
                ));
                seed.push((
                    "INSERT INTO webhook_deliveries (received_at, outcome, body_sha256, body,
                                                     headers, export_id)
                     VALUES (?, ?, 'h', ?, '{\"x\":\"y\"}', ?)",
                    vec![
                        at.clone().into(),
                        if i % 2 == 0 { "rejected" } else { "accepted" }.into(),
                        body.clone().into(),
                        id.into(),
                    ],
                ));
                seed.push((
                    "INSERT INTO export_steps (export_id, attempt, step, outcome, exchanges,
                                               started_at)
                     VALUES (?, 1, 'create_employee', 'ok', ?, ?)",
                    vec![id.into(), format!("[\"{body}\"]").into(), at.clone().into()],
                ));
                seed.push((
                    "INSERT INTO audit_log (at, action, detail) VALUES (?, 'x', '')",
                    vec![at.clone().into()],
                ));
            }
        }
        e.sql.batch(&seed).await;
        let policy = Policy {
            pause: Duration::ZERO,
            ..Policy::default()
        };
        let pruned = retention(&e).prune(&policy, now).await.unwrap();
        if e.sql.is_sqlite() {
            assert!(pruned.pages_freed > 0, "{name}: {pruned:?}");
        } else {
            assert!(pruned.pages_freed >= 0, "{name}: {pruned:?}");
        }
        let counts: Vec<i64> = {
            let mut counts = Vec::new();
            for sql in [
                "SELECT COUNT(*) FROM webhook_deliveries WHERE outcome = 'rejected'",
                "SELECT COUNT(*) FROM webhook_deliveries WHERE body <> ''",
                "SELECT COUNT(*) FROM webhook_deliveries WHERE outcome = 'accepted'",
                "SELECT COUNT(*) FROM export_steps WHERE exchanges <> '[]'",
                "SELECT COUNT(*) FROM export_steps",
                "SELECT COUNT(*) FROM exports WHERE candidate_email IS NULL",
                "SELECT COUNT(*) FROM exports WHERE candidate_name IS NULL",
                "SELECT COUNT(*) FROM audit_log",
            ] {
                counts.push(e.sql.scalar(sql, &[]).await);
            }
            counts
        };
        let per = per_day;
        assert_eq!(
            counts,
            [
                30 * per / 2,
                30 * per / 2 + 90 * per / 2,
                400 * per / 2,
                90 * per,
                365 * per + 35,
                35 * (per - 1),
                0,
                400 * per
            ],
            "{name}: {pruned:?}"
        );
        let again = retention(&e).prune(&policy, now).await.unwrap();
        assert_eq!(again.rows(), 0, "{name}: a second run has nothing to do");
        answers.push(Pruned {
            pages_freed: 0,
            ..pruned
        });
    }
    assert_eq!(answers[0], answers[1]);
}

#[tokio::test]
async fn the_audit_log_has_its_own_window() {
    let both = Both::new().await;
    let now = Utc::now();
    for (name, e) in both.each() {
        for days in [10, 700, 740, 1000] {
            e.sql
                .execute(
                    "INSERT INTO audit_log (at, action) VALUES (?, 'x')",
                    &[db::time_text(now - chrono::Duration::days(days)).into()],
                )
                .await;
        }
        let pruned = retention(&e).prune(&Policy::default(), now).await.unwrap();
        assert_eq!(pruned.audit_deleted, 2, "{name}");
        assert_eq!(pruned.rows(), 2, "{name}");
    }
}

/// A plugin export's key is its candidate's e-mail: past the window it goes with the e-mail
/// column, for succeeded exports only.
#[tokio::test]
async fn a_succeeded_plugin_export_loses_the_e_mail_from_its_key_too() {
    let both = Both::new().await;
    let now = Utc::now();
    let mut answers = Vec::new();
    for (name, e) in both.each() {
        for (email, status, days) in [
            ("old@example.com", "succeeded", 400),
            ("new@example.com", "succeeded", 10),
            ("stuck@example.com", "needs_attention", 400),
        ] {
            e.sql
                .execute(
                    "INSERT INTO exports (source, idempotency_key, pinpoint_application_id,
                                          status, candidate_name, candidate_email, created_at)
                     VALUES ('plugin', 'plugin:' || ?, '', ?, 'A Person', ?, ?)",
                    &[
                        email.into(),
                        status.into(),
                        email.into(),
                        db::time_text(now - chrono::Duration::days(days)).into(),
                    ],
                )
                .await;
        }
        let policy = Policy {
            pause: Duration::ZERO,
            ..Policy::default()
        };
        let pruned = retention(&e).prune(&policy, now).await.unwrap();
        assert_eq!(pruned.finished_exports_trimmed, 1, "{name}");
        let rows: Vec<(String, Option<String>)> = e
            .sql
            .rows(
                "SELECT idempotency_key, candidate_email FROM exports ORDER BY id",
                &[],
            )
            .await;
        assert_eq!(rows[0], ("plugin:expired:1".to_owned(), None), "{name}");
        assert_eq!(
            rows[1].0, "plugin:new@example.com",
            "{name}: within the window"
        );
        assert_eq!(
            rows[2].0, "plugin:stuck@example.com",
            "{name}: unfinished work"
        );
        assert_eq!(
            retention(&e).prune(&policy, now).await.unwrap().rows(),
            0,
            "{name}: a second run has nothing to do"
        );
        answers.push(rows);
    }
    assert_eq!(answers[0], answers[1]);
}

/// Pruned space goes back: SQLite counts its free pages, PostgreSQL the pages VACUUM cut off the
/// tables' ends.
#[tokio::test]
async fn reclaim_hands_back_what_the_pruned_tables_no_longer_hold() {
    let both = Both::new().await;
    for (name, e) in both.each() {
        if !e.sql.is_sqlite() {
            // nothing else may vacuum the table between the delete and the reclaim
            e.sql
                .execute(
                    "ALTER TABLE audit_log SET (autovacuum_enabled = false)",
                    &[],
                )
                .await;
        }
        // whatever the migrations left free first
        retention(&e).reclaim(Duration::ZERO).await.unwrap();
        let detail = "d".repeat(3000);
        let seed: Vec<_> = (0..1500)
            .map(|_| {
                (
                    "INSERT INTO audit_log (at, action, detail) VALUES ('2020-01-01', 'x', ?)",
                    vec![detail.clone().into()],
                )
            })
            .collect();
        e.sql.batch(&seed).await;
        assert_eq!(
            retention(&e).reclaim(Duration::ZERO).await.unwrap(),
            0,
            "{name}: nothing was freed yet"
        );
        e.sql.execute("DELETE FROM audit_log", &[]).await;
        let freed = retention(&e).reclaim(Duration::ZERO).await.unwrap();
        assert!(freed > 0, "{name}: {freed}");
    }
}

#[tokio::test]
async fn backups_are_taken_on_sqlite_and_left_to_pg_dump_on_postgresql() {
    let both = Both::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, e) in both.each() {
        let backups = e.face(|s| s as &dyn Backups, |p| p as &dyn Backups);
        let output = dir.path().join(format!("{name}.db"));
        let taken = backups.backup(&output, false).await;
        let scheduled = backups
            .scheduled_backup(&dir.path().join(format!("{name}-scheduled")), 3, Utc::now())
            .await;
        if e.sql.is_sqlite() {
            assert!(taken.is_ok(), "{name}: {taken:?}");
            assert!(scheduled.is_ok(), "{name}: {scheduled:?}");
        } else {
            for err in [taken.unwrap_err(), scheduled.unwrap_err()] {
                assert!(matches!(err, BackupError::Unsupported(_)), "{err:?}");
                let text = err.to_string();
                assert!(
                    text.contains("pg_dump") && text.contains("pg_restore"),
                    "{text}"
                );
            }
            assert!(!output.exists(), "nothing is written");
        }
    }
}

#[tokio::test]
async fn the_probes_answer_alike() {
    let both = Both::new().await;
    for (name, e) in both.each() {
        let probes = e.face(|s| s as &dyn Probes, |p| p as &dyn Probes);
        probes
            .readiness()
            .await
            .unwrap_or_else(|err| panic!("{name}: {err}"));
        probes
            .schema_readiness()
            .await
            .unwrap_or_else(|err| panic!("{name}: {err}"));
        probes
            .write_probe()
            .await
            .unwrap_or_else(|err| panic!("{name}: {err}"));
        probes
            .write_probe()
            .await
            .unwrap_or_else(|err| panic!("{name}: {err}"));
        let rows: Vec<(i64, String)> = e
            .sql
            .rows("SELECT id, checked_at FROM health_probe", &[])
            .await;
        assert_eq!(rows.len(), 1, "{name}");
        assert!(rows[0].1.ends_with('Z'), "{name}: {rows:?}");

        let newest: i64 = e
            .sql
            .scalar("SELECT MAX(version) FROM _sqlx_migrations", &[])
            .await;
        e.sql
            .execute(
                "DELETE FROM _sqlx_migrations WHERE version = ?",
                &[newest.into()],
            )
            .await;
        let missing = probes.schema_readiness().await.unwrap_err();
        assert_eq!(
            missing,
            format!("migrations not applied: [{newest}]"),
            "{name}"
        );
        assert!(probes.readiness().await.is_err(), "{name}");
        probes
            .write_probe()
            .await
            .unwrap_or_else(|err| panic!("{name}: {err}"));
    }
}

//! Webhook deliveries: intake's writes and what becomes of each delivery, the lists, the log,
//! one delivery in full, and re-processing, alike on both engines.

use integration::{
    access::{audit::Actor, users::Role},
    webhooks::{
        intake::{Outcome, Record},
        log::DeliveryFilter,
        storage::WebhookStore,
    },
};
use store_postgres::test_sql::Sql;

use crate::common::Both;

const HIRED: &str =
    r#"{"event":"application_hired","triggeredAt":1614687278,"data":{"application":{"id":1}}}"#;
/// The same hire delivered again later: another body.
const HIRED_AGAIN: &str =
    r#"{"event":"application_hired","triggeredAt":1614690000,"data":{"application":{"id":"1"}}}"#;
const HIRED_TWO: &str = r#"{"event":"application_hired","data":{"application":{"id":2}}}"#;
const HIRED_THREE: &str = r#"{"event":"application_hired","data":{"application":{"id":3}}}"#;
const CREATED: &str = r#"{"event":"application_created","data":{"application":{"id":5}}}"#;
const NO_ID: &str = r#"{"event":"application_hired","data":{}}"#;

/// A body run through intake as a delivery whose signature verified.
fn record(body: &str) -> Record {
    Record::reprocessed(
        body.as_bytes(),
        "test delivery".to_owned(),
        Some("192.0.2.1".to_owned()),
    )
}

async fn write(store: &dyn WebhookStore, bodies: &[&str]) -> Vec<Outcome> {
    let records: Vec<Record> = bodies.iter().map(|b| record(b)).collect();
    let refs: Vec<&Record> = records.iter().collect();
    store.write_all(&refs).await.unwrap()
}

type Stored = (
    i64,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    String,
    Option<String>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
);

/// Every stored delivery, without its time.
async fn stored(sql: &Sql) -> Vec<Stored> {
    sql.rows(
        "SELECT id, outcome, reason, event, application_id, body_sha256, headers, client_ip,
                export_id, body_size, reprocessed_from
         FROM webhook_deliveries ORDER BY id",
        &[],
    )
    .await
}

async fn watch(sql: &Sql, export_id: i64) {
    sql.execute(
        "INSERT INTO hire_watches (export_id, employee_id, mapping_version, watch_until,
                                   next_check_at, created_at, updated_at)
         VALUES (?, 'emp', 1, '2099-01-01', '2099-01-01T00:00:00.000Z',
                 '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z')",
        &[export_id.into()],
    )
    .await;
}

#[tokio::test]
async fn each_delivery_comes_to_the_same_outcome() {
    let both = Both::new().await;
    let mut seen = Vec::new();
    for (name, e) in both.each() {
        let store = e.face(|s| s as &dyn WebhookStore, |p| p as &dyn WebhookStore);
        let first = write(store, &[HIRED]).await;
        let [Outcome::Accepted { export_id, .. }] = first[..] else {
            panic!("{name}: {first:?}")
        };
        let replay = write(store, &[HIRED]).await;
        assert!(
            matches!(replay[..], [Outcome::Duplicate { export_id: x, exact_replay: true, .. }] if x == export_id),
            "{name}: {replay:?}"
        );
        // the hire is watched: Pinpoint marking it hired again makes its check due at once
        watch(e.sql, export_id).await;
        let again = write(store, &[HIRED_AGAIN]).await;
        assert!(
            matches!(
                again[..],
                [Outcome::Duplicate {
                    exact_replay: false,
                    ..
                }]
            ),
            "{name}: {again:?}"
        );
        let due: String = e
            .sql
            .scalar(
                "SELECT next_check_at FROM hire_watches WHERE export_id = ?",
                &[export_id.into()],
            )
            .await;
        assert!(due.as_str() < "2099", "{name}: {due}");
        // already due: nothing moves, and the reason does not say it does
        let again_due = write(
            store,
            &[r#"{"event":"application_hired","triggeredAt":1,"data":{"application":{"id":1}}}"#],
        )
        .await;
        assert!(
            matches!(
                again_due[..],
                [Outcome::Duplicate {
                    exact_replay: false,
                    ..
                }]
            ),
            "{name}: {again_due:?}"
        );
        // a batch: one transaction, each record as it would be alone
        let batch = write(store, &[HIRED_TWO, CREATED, "not json", NO_ID, HIRED_TWO]).await;
        assert!(
            matches!(
                batch[..],
                [
                    Outcome::Accepted { .. },
                    Outcome::Ignored { .. },
                    Outcome::Rejected {
                        http_status: 400,
                        ..
                    },
                    Outcome::Rejected {
                        http_status: 400,
                        ..
                    },
                    Outcome::Duplicate {
                        exact_replay: true,
                        ..
                    }
                ]
            ),
            "{name}: {batch:?}"
        );
        let exports: i64 = e.sql.scalar("SELECT COUNT(*) FROM exports", &[]).await;
        assert_eq!(exports, 2, "{name}");
        let recent = store.recent(None, None, 50).await.unwrap();
        let recent: Vec<_> = recent
            .into_iter()
            .map(|d| {
                (
                    d.id,
                    d.outcome,
                    d.reason,
                    d.event,
                    d.application_id,
                    d.export_id,
                )
            })
            .collect();
        seen.push((
            first,
            replay,
            again,
            again_due,
            batch,
            stored(e.sql).await,
            recent,
        ));
    }
    assert_eq!(seen[1], seen[0]);
    let reasons: Vec<&String> = seen[0].5.iter().map(|d| &d.2).collect();
    assert_eq!(reasons[0], "test delivery");
    assert_eq!(
        reasons[1],
        "test delivery: exact replay of a delivery for export 1"
    );
    assert_eq!(
        reasons[2],
        "test delivery: application already hired: export 1; its HiBob record is checked again"
    );
    assert_eq!(
        reasons[3],
        "test delivery: application already hired: export 1"
    );
}

#[tokio::test]
async fn deliveries_of_one_hire_at_once_make_one_export() {
    let both = Both::new().await;
    for (name, e) in both.each() {
        let store = e.face(|s| s as &dyn WebhookStore, |p| p as &dyn WebhookStore);
        let bodies: Vec<String> = (0..8)
            .map(|i| {
                format!(
                    r#"{{"event":"application_hired","triggeredAt":{i},"data":{{"application":{{"id":9}}}}}}"#
                )
            })
            .collect();
        let records: Vec<Record> = bodies.iter().map(|b| record(b)).collect();
        let one = |i: usize| {
            let r = &records[i];
            async move { store.write_all(&[r]).await.unwrap().remove(0) }
        };
        let (a, b, c, d, f, g, h, k) = tokio::join!(
            one(0),
            one(1),
            one(2),
            one(3),
            one(4),
            one(5),
            one(6),
            one(7)
        );
        let outcomes = [a, b, c, d, f, g, h, k];
        let accepted = outcomes
            .iter()
            .filter(|o| matches!(o, Outcome::Accepted { .. }))
            .count();
        assert_eq!(accepted, 1, "{name}: {outcomes:?}");
        let exports: Vec<i64> = outcomes
            .iter()
            .filter_map(|o| match o {
                Outcome::Accepted { export_id, .. } | Outcome::Duplicate { export_id, .. } => {
                    Some(*export_id)
                }
                _ => None,
            })
            .collect();
        assert_eq!(exports.len(), 8, "{name}");
        assert!(
            exports.iter().all(|x| *x == exports[0]),
            "{name}: {exports:?}"
        );
        let n: i64 = e.sql.scalar("SELECT COUNT(*) FROM exports", &[]).await;
        assert_eq!(n, 1, "{name}");
    }
}

#[tokio::test]
async fn rejected_deliveries_are_pruned_and_the_lists_agree() {
    let both = Both::new().await;
    let mut seen = Vec::new();
    for (name, e) in both.each() {
        let store = e.face(|s| s as &dyn WebhookStore, |p| p as &dyn WebhookStore);
        let junk: Vec<String> = (0..5).map(|i| format!("junk {i}")).collect();
        let bodies: Vec<&str> = junk.iter().map(String::as_str).collect();
        write(store, &bodies).await;
        write(store, &[HIRED, CREATED, "more junk"]).await;
        assert_eq!(store.prune_rejected(2).await.unwrap(), 4, "{name}");
        assert_eq!(store.prune_rejected(2).await.unwrap(), 0, "{name}");
        let ids = |rows: Vec<integration::webhooks::deliveries::DeliveryRow>| {
            rows.into_iter().map(|r| r.id).collect::<Vec<_>>()
        };
        let lists = (
            ids(store.recent(None, None, 50).await.unwrap()),
            ids(store.recent(Some("rejected"), None, 50).await.unwrap()),
            ids(store.recent(Some("bogus"), None, 50).await.unwrap()),
            ids(store.recent(None, Some(8), 1).await.unwrap()),
            ids(store.recent(None, None, 0).await.unwrap()),
            ids(store.for_export(1).await.unwrap()),
            ids(store.for_export(99).await.unwrap()),
        );
        assert_eq!(
            lists,
            (
                vec![8, 7, 6, 5],
                vec![8, 5],
                vec![8, 7, 6, 5],
                vec![7],
                vec![8],
                vec![6],
                vec![]
            ),
            "{name}"
        );
        seen.push(stored(e.sql).await);
    }
    assert_eq!(seen[1], seen[0]);
}

#[tokio::test]
async fn the_log_filters_and_pages_alike() {
    let both = Both::new().await;
    let mut seen = Vec::new();
    for (name, e) in both.each() {
        let store = e.face(|s| s as &dyn WebhookStore, |p| p as &dyn WebhookStore);
        for (i, (outcome, event, app, reason, at)) in [
            (
                "accepted",
                "application_hired",
                "1",
                "",
                "2026-11-01T10:00:00.000Z",
            ),
            (
                "rejected",
                "",
                "",
                "bad signature: 100% wrong",
                "2026-11-02T10:00:00.000Z",
            ),
            (
                "duplicate",
                "application_hired",
                "1",
                "application already hired",
                "2026-11-03T10:00:00.000Z",
            ),
            (
                "ignored",
                "application_created",
                "2",
                "not acted on",
                "2026-11-04T10:00:00.000Z",
            ),
            (
                "rejected",
                "",
                "",
                "Bad Signature: it_s o'clock",
                "2026-11-04T10:00:00.000Z",
            ),
        ]
        .into_iter()
        .enumerate()
        {
            let event = (!event.is_empty()).then_some(event);
            let app = (!app.is_empty()).then_some(app);
            let hash = if i == 4 {
                "FFEE00".to_owned()
            } else {
                format!("{i:02}abcdef")
            };
            e.sql
                .execute(
                    "INSERT INTO webhook_deliveries
                         (received_at, outcome, reason, event, application_id, body_sha256, body,
                          headers)
                     VALUES (?, ?, ?, ?, ?, ?, '{}', ?)",
                    &[
                        at.into(),
                        outcome.into(),
                        reason.into(),
                        event.into(),
                        app.into(),
                        hash.into(),
                        r#"{"user-agent":"Pinpoint","x-signature":"abc"}"#.into(),
                    ],
                )
                .await;
        }
        let f = |filter: DeliveryFilter| async move {
            store
                .log(&filter)
                .await
                .unwrap()
                .into_iter()
                .map(|l| l.id)
                .collect::<Vec<_>>()
        };
        let search = |text: &str| DeliveryFilter {
            search: Some(text.into()),
            ..Default::default()
        };
        let answers = vec![
            f(DeliveryFilter::default()).await,
            f(DeliveryFilter {
                outcome: Some("rejected".into()),
                ..Default::default()
            })
            .await,
            f(DeliveryFilter {
                event: Some("application_hired".into()),
                ..Default::default()
            })
            .await,
            f(search("2")).await,
            f(search("02ABC")).await,
            f(search("ffee")).await,
            f(search("100%")).await,
            f(search("%")).await,
            f(search("bad signature")).await,
            f(search("it_s")).await,
            f(search("o_clock")).await,
            f(search("O'CLOCK")).await,
            f(DeliveryFilter {
                received_from: Some("2026-11-02".into()),
                received_to: Some("2026-11-03".into()),
                ..Default::default()
            })
            .await,
            f(DeliveryFilter {
                before_id: Some(3),
                limit: Some(1),
                ..Default::default()
            })
            .await,
            f(DeliveryFilter {
                before_id: Some(5),
                ..Default::default()
            })
            .await,
            f(DeliveryFilter {
                outcome: Some("lost".into()),
                ..Default::default()
            })
            .await,
        ];
        assert_eq!(
            answers,
            vec![
                vec![5, 4, 3, 2, 1],
                vec![5, 2],
                vec![3, 1],
                vec![4],
                vec![3],
                vec![5],
                vec![2],
                vec![2],
                vec![5, 2],
                vec![5],
                vec![],
                vec![5],
                vec![3, 2],
                vec![2],
                vec![4, 3, 2, 1],
                vec![],
            ],
            "{name}"
        );
        let detail = store.delivery(2).await.unwrap().unwrap();
        assert!(
            detail
                .headers
                .contains(&("x-signature".to_owned(), "[redacted]".to_owned())),
            "{name}: {detail:?}"
        );
        assert!(store.delivery(99).await.unwrap().is_none(), "{name}");
        let mut detail = detail;
        detail.received_at.clear();
        seen.push((answers, detail));
    }
    assert_eq!(seen[1], seen[0]);
}

/// Action, target, detail, actor and address of an audit entry.
type AuditRow = (
    String,
    Option<String>,
    String,
    Option<String>,
    Option<String>,
);

fn person(email: &str) -> Actor {
    Actor {
        id: None,
        email: email.to_owned(),
        client_ip: Some("10.0.0.1".to_owned()),
    }
}

#[tokio::test]
async fn reprocessing_follows_the_same_rules_and_leaves_the_same_trail() {
    let both = Both::new().await;
    let admin = person("admin@example.com");
    let operator = person("op@example.com");
    let mut seen = Vec::new();
    for (name, e) in both.each() {
        let store = e.face(|s| s as &dyn WebhookStore, |p| p as &dyn WebhookStore);
        let seed = "INSERT INTO webhook_deliveries (outcome, reason, event, application_id,
                                                    body_sha256, body)
                    VALUES (?, ?, ?, ?, 'h', ?)";
        for (outcome, reason, event, app, body) in [
            (
                "rejected",
                "bad signature: signature does not match the body",
                Some("application_hired"),
                Some("3"),
                HIRED_THREE,
            ),
            (
                "ignored",
                "not an event this console acts on",
                Some("application_created"),
                Some("5"),
                CREATED,
            ),
            ("rejected", "body too large", None, None, ""),
        ] {
            e.sql
                .execute(
                    seed,
                    &[
                        outcome.into(),
                        reason.into(),
                        event.into(),
                        app.into(),
                        body.into(),
                    ],
                )
                .await;
        }
        let mut answers: Vec<String> = Vec::new();
        let mut note = |r: Result<integration::webhooks::log::ReprocessReport, _>| {
            let text = match r {
                Ok(report) => format!("{report:?}"),
                Err(e) => format!("refused: {e}"),
            };
            answers.push(text.clone());
            text
        };
        note(store.reprocess(&operator, Role::Viewer, 1, true).await);
        note(store.reprocess(&operator, Role::Operator, 1, true).await);
        note(store.reprocess(&admin, Role::Admin, 1, false).await);
        let created = note(store.reprocess(&admin, Role::Admin, 1, true).await);
        assert!(
            created.contains("export_created: true"),
            "{name}: {created}"
        );
        // the new delivery verified: an operator may run it again; its export is queued
        let queued = note(store.reprocess(&operator, Role::Operator, 4, false).await);
        assert!(
            queued.contains("nothing was started again"),
            "{name}: {queued}"
        );
        note(store.reprocess(&operator, Role::Viewer, 4, false).await);
        e.sql
            .execute(
                "UPDATE exports SET status = 'dead', attempts = 3 WHERE id = 1",
                &[],
            )
            .await;
        let retried = note(store.reprocess(&operator, Role::Operator, 4, false).await);
        assert!(retried.contains("retried: true"), "{name}: {retried}");
        let export: (String, i64, i64) = e
            .sql
            .row(
                "SELECT status, attempts, earlier_attempts FROM exports WHERE id = 1",
                &[],
            )
            .await;
        assert_eq!(export, ("queued".to_owned(), 0, 3), "{name}");
        e.sql
            .execute(
                "UPDATE exports SET status = 'dead', erased_at = '2026-11-01T00:00:00.000Z'
                 WHERE id = 1",
                &[],
            )
            .await;
        let erased = note(store.reprocess(&operator, Role::Operator, 4, false).await);
        assert!(
            erased.contains("was not retried because its candidate"),
            "{name}: {erased}"
        );
        note(store.reprocess(&admin, Role::Admin, 2, true).await);
        note(store.reprocess(&admin, Role::Admin, 3, true).await);
        note(store.reprocess(&admin, Role::Admin, 99, true).await);
        let audit: Vec<AuditRow> = e
            .sql
            .rows(
                "SELECT action, target, detail, actor_email, client_ip FROM audit_log ORDER BY id",
                &[],
            )
            .await;
        let mut first = store.delivery(1).await.unwrap().unwrap();
        first.received_at.clear();
        let timeline: Vec<i64> = store
            .for_export(1)
            .await
            .unwrap()
            .into_iter()
            .map(|d| d.id)
            .collect();
        assert_eq!(
            timeline,
            [1, 4, 5, 6, 7],
            "{name}: the refused delivery, and its re-runs"
        );
        seen.push((answers, audit, stored(e.sql).await, first, timeline));
    }
    assert_eq!(seen[1], seen[0]);
    let answers = &seen[0].0;
    assert!(answers[0].contains("only an admin"), "{}", answers[0]);
    assert!(
        answers[2].contains("tick the confirmation"),
        "{}",
        answers[2]
    );
    assert!(
        answers[5].contains("your role does not allow"),
        "{}",
        answers[5]
    );
    assert!(answers.last().unwrap().contains("no webhook delivery 99"));
    assert_eq!(seen[0].3.reprocessed_as, [(4, Some(1))]);
}

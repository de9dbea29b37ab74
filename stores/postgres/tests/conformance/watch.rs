//! Watched hires: started, claimed under a lease, checked, settled, decided, stopped, listed.

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use integration::{
    access::audit::Actor,
    watch::{
        storage::{Settled, WatchStore},
        store::{Checked, Watch},
        Change, Route,
    },
};
use serde_json::json;

use crate::{
    at_once::join_all,
    common::{Both, Engine},
};

fn watches<'a>(e: &Engine<'a>) -> &'a dyn WatchStore {
    e.face(|s| s as &dyn WatchStore, |p| p as &dyn WatchStore)
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0)
        .single()
        .expect("a time")
}

fn day(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("a day")
}

fn change(field: &str, sent: &str, now: &str) -> Change {
    Change {
        field: field.into(),
        label: "Start date".into(),
        sent: sent.into(),
        pinpoint: now.into(),
        hibob: Some(sent.into()),
        edited_in_hibob: false,
        route: Route::StartDate,
        value: json!(now),
    }
}

/// An export as the pipeline leaves it; `status`, the body kept and the application vary.
async fn export(
    e: &Engine<'_>,
    app: &str,
    status: &str,
    start: Option<&str>,
    sent_body: Option<&str>,
) -> i64 {
    e.sql
        .scalar(
            "INSERT INTO exports (source, idempotency_key, pinpoint_application_id, status,
                                  candidate_name, start_date, hibob_employee_id, mapping_version,
                                  sent_body, created_at)
             VALUES ('webhook', ?, ?, ?, ?, ?, ?, 1, ?, '2026-11-30T10:00:00.000Z') RETURNING id",
            &[
                format!("hired:{app}").into(),
                app.into(),
                status.into(),
                format!("Candidate {app}").into(),
                start.into(),
                format!("emp-{app}").into(),
                sent_body.into(),
            ],
        )
        .await
}

/// A watch as both engines must show it, without the times they wrote at different moments.
fn shown(watch: Option<Watch>) -> String {
    format!(
        "{:?}",
        watch.map(|w| Watch {
            checked_at: w.checked_at.map(|_| "set".into()),
            decided_at: w.decided_at.map(|_| "set".into()),
            stopped_at: w.stopped_at.map(|_| "set".into()),
            ..w
        })
    )
}

#[tokio::test]
async fn a_watch_is_begun_claimed_checked_and_stopped_alike() {
    let both = Both::new().await;
    let body = r#"{"firstName":"Jane","work":{"startDate":"2027-01-04"}}"#;
    let mut answers = Vec::new();
    for (name, e) in both.each() {
        let store = watches(&e);
        let jane = export(&e, "101", "succeeded", Some("2027-01-04"), Some(body)).await;
        let kim = export(&e, "102", "succeeded", None, Some(body)).await;
        let erased = export(&e, "103", "succeeded", None, Some(body)).await;
        e.sql
            .execute(
                "UPDATE exports SET erased_at = '2026-12-01T00:00:00.000Z' WHERE id = ?",
                &[erased.into()],
            )
            .await;
        export(&e, "  ", "succeeded", None, Some(body)).await;
        export(&e, "105", "needs_attention", None, Some(body)).await;
        export(&e, "106", "succeeded", None, None).await;

        let unwatched = store.unwatched(10).await.unwrap();
        let found: Vec<i64> = unwatched.iter().map(|u| u.export_id).collect();
        assert_eq!(found, [jane, kim], "{name}");
        assert_eq!(store.unwatched(1).await.unwrap().len(), 1, "{name}");
        let mut seen = vec![format!("{unwatched:?}")];

        store
            .begin(&unwatched[0], Some(body), day("2027-01-18"), t0())
            .await
            .unwrap();
        store
            .begin(
                &unwatched[1],
                None,
                day("2027-03-01"),
                t0() + Duration::hours(1),
            )
            .await
            .unwrap();
        // a second start changes nothing
        store
            .begin(&unwatched[0], None, day("2030-01-01"), t0())
            .await
            .unwrap();
        assert!(store.unwatched(10).await.unwrap().is_empty(), "{name}");
        let watch = store.find(jane).await.unwrap().expect("watched");
        assert_eq!(watch.watch_until, "2027-01-18", "{name}");
        assert_eq!(watch.baseline, Some(serde_json::from_str(body).unwrap()));
        seen.push(shown(Some(watch)));
        assert_eq!(store.find(9999).await.unwrap(), None, "{name}");

        // due in the order they became due, each under a lease
        let later = t0() + Duration::hours(2);
        let lease = std::time::Duration::from_secs(60);
        assert_eq!(store.due_count(t0()).await.unwrap(), 1, "{name}");
        assert_eq!(store.due_count(later).await.unwrap(), 2, "{name}");
        assert_eq!(store.claim_due(later, lease).await.unwrap(), Some(jane));
        assert_eq!(store.claim_due(later, lease).await.unwrap(), Some(kim));
        assert_eq!(store.claim_due(later, lease).await.unwrap(), None, "{name}");
        let lapsed = later + Duration::seconds(61);
        assert_eq!(store.claim_due(lapsed, lease).await.unwrap(), Some(jane));

        // a failed check: the error kept (cut short), the lease given back, tried later
        store
            .check_failed(jane, &"e".repeat(600), t0() + Duration::days(1))
            .await
            .unwrap();
        let failed = store.find(jane).await.unwrap().expect("watched");
        assert_eq!(failed.check_error.map(|t| t.len()), Some(500), "{name}");
        assert_eq!(failed.next_check_at, "2026-12-02T09:00:00.000Z", "{name}");
        // Kim's lease lapsed too
        assert_eq!(store.claim_due(lapsed, lease).await.unwrap(), Some(kim));
        assert_eq!(
            store.claim_due(lapsed, lease).await.unwrap(),
            None,
            "{name}"
        );

        // Kim's hire fell through and her start moved
        let moved = [change("work.startDate", "", "2027-02-01")];
        let baseline = json!({"firstName": "Kim"});
        store
            .save_check(
                kim,
                &Checked {
                    baseline: &baseline,
                    changes: &moved,
                    start_date: Some("2027-02-01"),
                    watch_until: Some("2027-02-15"),
                    hired: false,
                    hire_note: Some("withdrawn"),
                    next_check_at: t0() + Duration::hours(6),
                },
            )
            .await
            .unwrap();
        let checked = store.find(kim).await.unwrap().expect("watched");
        assert_eq!(
            (
                checked.hired,
                checked.start_date.as_deref(),
                checked.watch_until.as_str(),
                checked.changes.len()
            ),
            (false, Some("2027-02-01"), "2027-02-15", 1),
            "{name}"
        );
        assert!(checked.checked_at.is_some(), "{name}");
        let flagged = store.flagged(10).await.unwrap();
        assert_eq!(flagged.len(), 1, "{name}");
        assert_eq!(flagged[0].summary, "Start date — → 2027-02-01", "{name}");
        seen.push(format!("{flagged:?}"));

        let by = Actor::system("ops@example.com");
        assert!(
            !store
                .decide(jane, "keep", &by, "still hired")
                .await
                .unwrap(),
            "{name}: only a hire that fell through is decided"
        );
        assert!(
            store
                .decide(kim, "keep", &by, "kept in HiBob")
                .await
                .unwrap(),
            "{name}"
        );
        let decided = store.find(kim).await.unwrap().expect("watched");
        assert_eq!(
            (decided.decision.as_deref(), decided.decided_by.as_deref()),
            (Some("keep"), Some("ops@example.com")),
            "{name}"
        );
        // still not hired, no change left: the decision stands and nothing is flagged
        let check = |hired: bool| Checked {
            baseline: &baseline,
            changes: &[],
            start_date: None,
            watch_until: None,
            hired,
            hire_note: None,
            next_check_at: t0() + Duration::hours(12),
        };
        store.save_check(kim, &check(false)).await.unwrap();
        let kept = store.find(kim).await.unwrap().expect("watched");
        assert_eq!(kept.decision.as_deref(), Some("keep"), "{name}");
        assert_eq!(kept.start_date.as_deref(), Some("2027-02-01"), "{name}");
        assert!(store.flagged(10).await.unwrap().is_empty(), "{name}");
        // hired again: the decision no longer applies
        store.save_check(kim, &check(true)).await.unwrap();
        let rehired = store.find(kim).await.unwrap().expect("watched");
        assert_eq!(
            (rehired.hired, rehired.decision, rehired.decided_at),
            (true, None, None),
            "{name}"
        );

        // Jane's change applied in HiBob
        let sent = json!({"firstName": "Jane", "work": {"startDate": "2027-01-11"}});
        store
            .settle(
                jane,
                &Settled {
                    baseline: &sent,
                    left: &[],
                    sent: &sent,
                    moved_start: Some("2027-01-11"),
                    actor: &by,
                    action: "export.changes_applied",
                    detail: "Start date 2027-01-04 → 2027-01-11",
                },
            )
            .await
            .unwrap();
        let (kept_body, start): (Option<String>, Option<String>) = e
            .sql
            .row(
                "SELECT sent_body, start_date FROM exports WHERE id = ?",
                &[jane.into()],
            )
            .await;
        assert_eq!(
            kept_body.map(|b| serde_json::from_str::<serde_json::Value>(&b).unwrap()),
            Some(sent.clone()),
            "{name}"
        );
        assert_eq!(start.as_deref(), Some("2027-01-11"), "{name}");
        seen.push(shown(store.find(jane).await.unwrap()));

        // "check now": due at once, once
        store
            .check_failed(jane, "later", Utc::now() + Duration::days(1))
            .await
            .unwrap();
        assert!(store.check_soon(jane).await.unwrap(), "{name}");
        assert!(
            !store.check_soon(jane).await.unwrap(),
            "{name}: already due"
        );
        assert!(!store.check_soon(9999).await.unwrap(), "{name}");

        assert_eq!(store.ended(day("2027-02-15")).await.unwrap(), [jane]);
        let mut ended = store.ended(day("2027-03-02")).await.unwrap();
        ended.sort_unstable();
        assert_eq!(ended, [jane, kim], "{name}");
        store.stop(jane).await.unwrap();
        let stopped = store.find(jane).await.unwrap().expect("kept");
        assert!(stopped.stopped_at.is_some(), "{name}");
        assert_eq!(
            (stopped.baseline, stopped.changes.len()),
            (None, 0),
            "{name}"
        );
        let body_left: Option<String> = e
            .sql
            .scalar("SELECT sent_body FROM exports WHERE id = ?", &[jane.into()])
            .await;
        assert_eq!(body_left, None, "{name}: the copy is forgotten");
        assert!(!store.check_soon(jane).await.unwrap(), "{name}");
        assert_eq!(store.ended(day("2027-03-02")).await.unwrap(), [kim]);
        let far = t0() + Duration::days(400);
        assert_eq!(store.claim_due(far, lease).await.unwrap(), Some(kim));
        assert_eq!(store.claim_due(far, lease).await.unwrap(), None, "{name}");

        let trail: Vec<(Option<String>, String, Option<String>, String)> = e
            .sql
            .rows(
                "SELECT actor_email, action, target, detail FROM audit_log ORDER BY id",
                &[],
            )
            .await;
        assert_eq!(trail.len(), 2, "{name}: {trail:?}");
        answers.push((seen, trail));
    }
    assert_eq!(answers[0], answers[1]);
}

#[tokio::test]
async fn exports_at_work_hold_the_checks_back_alike() {
    let both = Both::new().await;
    for (name, e) in both.each() {
        let store = watches(&e);
        let now = t0();
        export(&e, "1", "succeeded", None, None).await;
        export(&e, "2", "needs_attention", None, None).await;
        assert!(!store.exports_waiting(now).await.unwrap(), "{name}");
        let queued = export(&e, "3", "queued", None, None).await;
        e.sql
            .execute(
                "UPDATE exports SET next_attempt_at = '2026-12-01T09:00:00.001Z' WHERE id = ?",
                &[queued.into()],
            )
            .await;
        assert!(
            !store.exports_waiting(now).await.unwrap(),
            "{name}: queued for later"
        );
        assert!(
            store
                .exports_waiting(now + Duration::milliseconds(1))
                .await
                .unwrap(),
            "{name}: due"
        );
        e.sql
            .execute(
                "UPDATE exports SET status = 'running', next_attempt_at = '2030-01-01' WHERE id = ?",
                &[queued.into()],
            )
            .await;
        assert!(store.exports_waiting(now).await.unwrap(), "{name}: running");
    }
}

/// Starting soonest first, unknown start dates last, then by export.
#[tokio::test]
async fn flagged_hires_are_listed_in_the_same_order() {
    let both = Both::new().await;
    let changes = serde_json::to_string(&[change("work.startDate", "2027-01-04", "2027-01-11")])
        .expect("json");
    let mut answers = Vec::new();
    for (name, e) in both.each() {
        let store = watches(&e);
        let mut ids = Vec::new();
        for (start, count, hired, decision) in [
            (Some("2027-03-01"), 1, true, None),
            (None, 1, true, None),
            (Some("2027-01-01"), 0, false, None),
            (Some("2027-03-01"), 1, true, None),
            (None, 0, false, None),
            // neither changed nor undecided: not flagged
            (Some("2027-01-02"), 0, false, Some("keep")),
            (Some("2027-01-03"), 0, true, None),
        ] {
            let id = export(&e, &format!("{}", ids.len() + 1), "succeeded", start, None).await;
            e.sql
                .execute(
                    "INSERT INTO hire_watches (export_id, employee_id, mapping_version, start_date,
                                               watch_until, next_check_at, changes, change_count,
                                               hired, decision, created_at, updated_at)
                     VALUES (?, 'emp', 1, ?, '2027-06-01', '2026-12-01T00:00:00.000Z', ?, ?, ?,
                             ?, 'x', 'x')",
                    &[
                        id.into(),
                        start.into(),
                        if count > 0 {
                            changes.clone()
                        } else {
                            "[]".to_owned()
                        }
                        .into(),
                        i64::from(count).into(),
                        hired.into(),
                        decision.into(),
                    ],
                )
                .await;
            ids.push(id);
        }
        let listed: Vec<i64> = store
            .flagged(10)
            .await
            .unwrap()
            .iter()
            .map(|f| f.export_id)
            .collect();
        assert_eq!(listed, [ids[2], ids[0], ids[3], ids[1], ids[4]], "{name}");
        assert_eq!(store.flagged(2).await.unwrap().len(), 2, "{name}");
        answers.push(format!("{:?}", store.flagged(10).await.unwrap()));
    }
    assert_eq!(answers[0], answers[1]);
}

/// Checkers claiming at once never take the same watch.
#[tokio::test]
async fn concurrent_claims_take_distinct_watches() {
    let both = Both::new().await;
    for (name, e) in both.each() {
        let store = watches(&e);
        let mut due = Vec::new();
        for i in 0..6 {
            let id = export(&e, &format!("{i}"), "succeeded", None, None).await;
            e.sql
                .execute(
                    "INSERT INTO hire_watches (export_id, employee_id, mapping_version,
                                               watch_until, next_check_at, created_at, updated_at)
                     VALUES (?, 'emp', 1, '2027-06-01', ?, 'x', 'x')",
                    &[id.into(), format!("2026-12-01T08:00:0{i}.000Z").into()],
                )
                .await;
            due.push(id);
        }
        let lease = std::time::Duration::from_secs(300);
        for round in 0..2 {
            let at = t0() + Duration::seconds(round * 301);
            let claims = (0..12).map(|_| store.claim_due(at, lease)).collect();
            let mut taken: Vec<i64> = join_all(claims)
                .await
                .into_iter()
                .filter_map(|c| c.unwrap_or_else(|err| panic!("{name}: {err}")))
                .collect();
            taken.sort_unstable();
            assert_eq!(taken, due, "{name}, round {round}: each once");
        }
    }
}

//! The alerts outbox: queued, listed per channel, marked sent or retried later, alike.

use chrono::{Duration, Utc};
use integration::alerts::{AlertOutbox, NewAlert, Pending};

use crate::{
    at_once::join_all,
    common::{Both, Engine},
};

fn outbox<'a>(e: &Engine<'a>) -> &'a dyn AlertOutbox {
    e.face(|s| s as &dyn AlertOutbox, |p| p as &dyn AlertOutbox)
}

async fn export(e: &Engine<'_>, app: &str, name: &str, start: Option<&str>) -> i64 {
    e.sql
        .scalar(
            "INSERT INTO exports (source, idempotency_key, pinpoint_application_id, status,
                                  candidate_name, start_date, last_error)
             VALUES ('webhook', ?, ?, 'needs_attention', ?, ?, 'HiBob: 503') RETURNING id",
            &[
                format!("hired:{app}").into(),
                app.into(),
                name.into(),
                start.into(),
            ],
        )
        .await
}

/// What a channel lists, without the times the engines wrote at different moments.
fn listed(pending: &[Pending]) -> Vec<String> {
    pending
        .iter()
        .map(|p| {
            let mut p = p.clone();
            p.created_at = String::new();
            format!("{p:?}")
        })
        .collect()
}

fn ids(pending: &[Pending]) -> Vec<i64> {
    pending.iter().map(|p| p.id).collect()
}

#[tokio::test]
async fn alerts_are_queued_listed_and_marked_alike() {
    let both = Both::new().await;
    let now = Utc::now() + Duration::seconds(5);
    let mut answers = Vec::new();
    for (name, e) in both.each() {
        let alerts = outbox(&e);
        let ada = export(&e, "11", "Ada Quill", Some("2027-01-04")).await;
        let bo = export(&e, "12", "Bo Rivers", None).await;
        assert_eq!(
            alerts.start_date(ada).await.unwrap().as_deref(),
            Some("2027-01-04"),
            "{name}"
        );
        assert_eq!(alerts.start_date(bo).await.unwrap(), None, "{name}");
        assert_eq!(alerts.start_date(9999).await.unwrap(), None, "{name}");
        e.sql
            .execute(
                "INSERT INTO hire_watches (export_id, employee_id, mapping_version, start_date,
                                           watch_until, next_check_at, created_at, updated_at)
                 VALUES (?, 'emp-1', 1, '2027-02-01', '2027-03-01', 'x', 'x', 'x')",
                &[ada.into()],
            )
            .await;
        assert_eq!(
            alerts.start_date(ada).await.unwrap().as_deref(),
            Some("2027-02-01"),
            "{name}: the watch's start date first"
        );

        assert!(!alerts.stops_unreported().await.unwrap(), "{name}");
        assert!(
            !alerts.queue_recovered(false, false).await.unwrap(),
            "{name}"
        );
        for alert in [
            NewAlert {
                kind: "stopped",
                export_id: Some(ada),
                urgent: true,
                webhook_done: false,
                email_done: false,
                detail: None,
            },
            NewAlert {
                kind: "changed",
                export_id: Some(bo),
                urgent: false,
                webhook_done: false,
                email_done: true,
                detail: Some("Start date 2027-01-04 → 2027-01-11"),
            },
        ] {
            alerts.queue(&alert).await.unwrap();
        }
        assert!(alerts.stops_unreported().await.unwrap(), "{name}");
        let webhook = alerts.pending(true, now).await.unwrap();
        let email = alerts.pending(false, now).await.unwrap();
        assert_eq!(webhook.len(), 2, "{name}");
        assert_eq!(
            email.len(),
            1,
            "{name}: e-mail was not set up for the change"
        );
        assert!(webhook[0].urgent && !webhook[1].urgent, "{name}");
        let mut seen = vec![listed(&webhook), listed(&email)];

        assert!(alerts.queue_recovered(false, true).await.unwrap(), "{name}");
        assert!(
            !alerts.queue_recovered(false, true).await.unwrap(),
            "{name}: once per stop"
        );
        assert!(!alerts.stops_unreported().await.unwrap(), "{name}");

        // sent on the webhook: gone from its list, still due by e-mail
        let first = ids(&webhook);
        let stop = first[0];
        alerts.mark(true, &first, None, now).await.unwrap();
        let webhook = alerts.pending(true, now).await.unwrap();
        assert_eq!(webhook.len(), 1, "{name}: only the recovery note is left");
        assert_eq!(webhook[0].kind, "recovered", "{name}");
        assert_eq!(
            ids(&alerts.pending(false, now).await.unwrap()),
            [stop],
            "{name}"
        );

        // a failed e-mail: tried again after the core's retry delay, which grows
        let long_error = "x".repeat(400);
        alerts
            .mark(false, &[stop], Some(&long_error), now)
            .await
            .unwrap();
        assert!(
            alerts.pending(false, now).await.unwrap().is_empty(),
            "{name}"
        );
        let after = |secs| now + Duration::seconds(secs);
        assert!(
            alerts.pending(false, after(29)).await.unwrap().is_empty(),
            "{name}"
        );
        assert_eq!(
            ids(&alerts.pending(false, after(30)).await.unwrap()),
            [stop],
            "{name}"
        );
        alerts
            .mark(false, &[stop], Some("refused"), after(30))
            .await
            .unwrap();
        assert!(
            alerts.pending(false, after(89)).await.unwrap().is_empty(),
            "{name}"
        );
        assert_eq!(
            ids(&alerts.pending(false, after(90)).await.unwrap()),
            [stop],
            "{name}"
        );
        // a failure reported with an earlier clock never brings the next try forward
        alerts
            .mark(false, &[stop], Some("late"), now - Duration::hours(1))
            .await
            .unwrap();
        assert!(
            alerts.pending(false, after(89)).await.unwrap().is_empty(),
            "{name}"
        );
        let row: (i64, i64, Option<String>, String) = e
            .sql
            .row(
                "SELECT webhook_attempts, email_attempts, last_error, next_try_at
                 FROM alerts WHERE id = ?",
                &[stop.into()],
            )
            .await;
        assert_eq!((row.0, row.1), (0, 3), "{name}");
        assert_eq!(row.2.as_deref(), Some("late"), "{name}");
        let failed = alerts.pending(false, after(3600)).await.unwrap();
        seen.push(listed(&failed));
        seen.push(vec![row.3]);

        // every channel marked: nothing pending anywhere
        let all: Vec<i64> = ids(&alerts.pending(true, after(3600)).await.unwrap());
        alerts.mark(true, &all, None, now).await.unwrap();
        alerts.mark(false, &[stop], None, now).await.unwrap();
        assert!(
            alerts.pending(true, after(3600)).await.unwrap().is_empty(),
            "{name}"
        );
        assert!(
            alerts.pending(false, after(3600)).await.unwrap().is_empty(),
            "{name}"
        );
        answers.push(seen);
    }
    assert_eq!(answers[0], answers[1]);
}

#[tokio::test]
async fn one_recovery_note_however_many_ask_at_once() {
    let both = Both::new().await;
    for (name, e) in both.each() {
        let alerts = outbox(&e);
        let ada = export(&e, "11", "Ada Quill", None).await;
        for round in 0..3 {
            alerts
                .queue(&NewAlert {
                    kind: "stopped",
                    export_id: Some(ada),
                    urgent: false,
                    webhook_done: true,
                    email_done: true,
                    detail: None,
                })
                .await
                .unwrap();
            let asked = (0..6).map(|_| alerts.queue_recovered(true, true)).collect();
            let queued = join_all(asked)
                .await
                .into_iter()
                .filter(|r| matches!(r, Ok(true)))
                .count();
            assert_eq!(queued, 1, "{name}, round {round}");
        }
    }
}

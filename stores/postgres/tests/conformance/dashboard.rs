//! The dashboard's numbers from the same rows, whichever engine holds them.

use chrono::{NaiveDate, TimeZone, Utc};
use integration::dashboard::{DashboardReads, RefusalCause, HIBOB_STEPS, PINPOINT_STEPS};
use store_postgres::test_sql::{Bind, Sql};

use crate::common::Both;

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 22).unwrap()
}

async fn seed(sql: &Sql) {
    let export = "INSERT INTO exports (source, idempotency_key, pinpoint_application_id, status,
                                       candidate_name, start_date, last_error, created_at,
                                       updated_at)
                  VALUES ('webhook', ?, ?, ?, ?, ?, ?, ?, ?)";
    let rows: [(&str, Option<&str>, &str, &str); 14] = [
        // status, start date, created, updated
        (
            "needs_attention",
            Some("2026-11-25"),
            "2026-11-22T23:59:59.999Z",
            "2026-11-22T10:00:00.000Z",
        ),
        (
            "dead",
            Some("2026-12-30"),
            "2026-11-22T00:00:00.000Z",
            "2026-11-22T11:00:00.000Z",
        ),
        (
            "dead",
            None,
            "2026-11-21T23:59:59.999Z",
            "2026-11-21T12:00:00.000Z",
        ),
        (
            "needs_attention",
            Some("2026-11-20"),
            "2026-11-15T08:00:00.000Z",
            "2026-11-15T08:00:00.000Z",
        ),
        (
            "dead",
            Some("2026-11-29T00:00:00Z"),
            "2026-11-09T00:00:00.000Z",
            "2026-11-10T00:00:00.000Z",
        ),
        (
            "needs_attention",
            Some("soon"),
            "2026-11-08T23:59:59.999Z",
            "2026-11-09T00:00:00.000Z",
        ),
        (
            "succeeded",
            Some("2026-11-23"),
            "2026-11-22T09:00:00.000Z",
            "2026-11-22T09:30:00.000Z",
        ),
        (
            "succeeded",
            None,
            "2026-11-09T00:00:00.000Z",
            "2026-11-09T01:00:00.000Z",
        ),
        (
            "succeeded",
            None,
            "2026-11-01T00:00:00.000Z",
            "2026-11-01T01:00:00.000Z",
        ),
        (
            "queued",
            None,
            "2026-11-21T08:00:00.000Z",
            "2026-11-21T08:00:00.000Z",
        ),
        (
            "queued",
            None,
            "2026-11-20T08:00:00.000Z",
            "2026-11-20T08:00:00.000Z",
        ),
        (
            "running",
            None,
            "2026-11-20T09:00:00.000Z",
            "2026-11-20T09:00:00.000Z",
        ),
        (
            "resolved",
            None,
            "2026-11-18T09:00:00.000Z",
            "2026-11-18T09:00:00.000Z",
        ),
        (
            "dead",
            Some("2026-11-25"),
            "2026-11-19T09:00:00.000Z",
            "2026-11-19T09:00:00.000Z",
        ),
    ];
    let mut statements: Vec<(&str, Vec<Bind>)> = rows
        .iter()
        .enumerate()
        .map(|(i, (status, start, created, updated))| {
            (
                export,
                vec![
                    format!("k{i}").into(),
                    format!("{}", 100 + i).into(),
                    (*status).into(),
                    format!("Person {i}").into(),
                    start.map(str::to_owned).into(),
                    format!("error {i}").into(),
                    (*created).into(),
                    (*updated).into(),
                ],
            )
        })
        .collect();
    let step = "INSERT INTO export_steps (export_id, attempt, step, outcome, detail, started_at)
                VALUES (1, 1, ?, ?, ?, ?)";
    let long = "x".repeat(400);
    for (name, outcome, detail, at) in [
        (
            "search_employee",
            "ok",
            "found none",
            "2026-11-22T10:00:00.000Z",
        ),
        (
            "create_employee",
            "ok",
            "created 1",
            "2026-11-22T10:00:00.000Z",
        ),
        (
            "create_employee",
            "ok",
            "created 2",
            "2026-11-22T10:00:00.000Z",
        ),
        (
            "upload_cv",
            "failed",
            long.as_str(),
            "2026-11-22T09:00:00.000Z",
        ),
        (
            "create_employee",
            "failed",
            "refused",
            "2026-11-21T09:00:00.000Z",
        ),
        (
            "fetch_application",
            "ok",
            "read",
            "2026-11-22T08:00:00.000Z",
        ),
        ("comment", "ok", "posted", "2026-11-22T07:00:00.000Z"),
        ("comment", "skipped", "already", "2026-11-22T12:00:00.000Z"),
    ] {
        statements.push((
            step,
            vec![name.into(), outcome.into(), detail.into(), at.into()],
        ));
    }
    let delivery = "INSERT INTO webhook_deliveries (received_at, outcome, reason, application_id,
                                                    body_sha256, body)
                    VALUES (?, ?, ?, ?, ?, '{}')";
    let mismatch = "bad signature: signature does not match the body (wrong signing secret, or the body was altered)";
    for (at, outcome, reason, app, hash) in [
        (
            "2026-11-20T10:00:00.000Z",
            "rejected",
            "bad signature: the signature header is malformed: not base64",
            None,
            "h1",
        ),
        (
            "2026-11-20T11:00:00.000Z",
            "rejected",
            "bad signature: no PINPOINT-HMAC-SHA256 signature header on the request",
            None,
            "h2",
        ),
        (
            "2026-11-20T12:00:00.000Z",
            "rejected",
            mismatch,
            Some("7"),
            "h3",
        ),
        (
            "2026-11-20T13:00:00.000Z",
            "rejected",
            mismatch,
            Some("8"),
            "h4",
        ),
        (
            "2026-11-21T13:00:00.000Z",
            "rejected",
            "no webhook signing secret is configured",
            None,
            "h5",
        ),
        (
            "2026-11-21T14:00:00.000Z",
            "rejected",
            "body too large",
            None,
            "h6",
        ),
        (
            "2026-11-21T15:00:00.000Z",
            "rejected",
            "unparseable: not JSON",
            None,
            "h7",
        ),
        (
            "2026-11-10T15:00:00.000Z",
            "rejected",
            "unparseable: too old to count",
            None,
            "h8",
        ),
        // the malformed one re-processed, and hire 8 delivered again once the secret was fixed
        ("2026-11-21T16:00:00.000Z", "accepted", "", Some("5"), "h1"),
        ("2026-11-21T17:00:00.000Z", "accepted", "", Some("8"), "h9"),
    ] {
        statements.push((
            delivery,
            vec![
                at.into(),
                outcome.into(),
                reason.into(),
                app.into(),
                hash.into(),
            ],
        ));
    }
    // accepted hires every six hours, the last thirty hours before the dashboard looks
    for i in 0..10 {
        let at =
            Utc.with_ymd_and_hms(2026, 11, 21, 0, 0, 0).unwrap() - chrono::Duration::hours(i * 6);
        statements.push((
            delivery,
            vec![
                integration::db::time_text(at).into(),
                "accepted".into(),
                "".into(),
                Some(format!("{}", 200 + i)).into(),
                format!("r{i}").into(),
            ],
        ));
    }
    sql.batch(&statements).await;
}

#[tokio::test]
async fn the_dashboard_reads_the_same_numbers() {
    let both = Both::new().await;
    let now = Utc.with_ymd_and_hms(2026, 11, 22, 20, 0, 0).unwrap();
    let mut seen = Vec::new();
    for (name, e) in both.each() {
        let dashboard = e.face(|s| s as &dyn DashboardReads, |p| p as &dyn DashboardReads);
        assert_eq!(
            dashboard.oldest_queued_since().await.unwrap(),
            None,
            "{name}"
        );
        assert!(
            dashboard.delivery_silence(now).await.unwrap().is_none(),
            "{name}"
        );
        seed(e.sql).await;
        let attention = dashboard.needing_attention(today(), 50).await.unwrap();
        let ids: Vec<i64> = attention.iter().map(|a| a.id).collect();
        assert_eq!(
            ids,
            [4, 1, 14, 5, 2, 3, 6],
            "{name}: urgent first, unknown starts last"
        );
        let soonest = dashboard.needing_attention(today(), 2).await.unwrap();
        let ids: Vec<i64> = soonest.iter().map(|a| a.id).collect();
        assert_eq!(ids, [4, 1], "{name}: the limit keeps the soonest starts");
        let per_day = dashboard.per_day(today(), 14).await.unwrap();
        assert_eq!(per_day.len(), 14, "{name}");
        assert_eq!(per_day[0].day, "2026-11-09", "{name}");
        assert_eq!(
            (per_day[0].succeeded, per_day[0].failed, per_day[0].other),
            (1, 1, 0),
            "{name}: the first day from its first millisecond"
        );
        assert_eq!(
            (per_day[13].succeeded, per_day[13].failed, per_day[13].other),
            (1, 2, 0),
            "{name}: today to its last millisecond"
        );
        let one_day = dashboard.per_day(today(), 1).await.unwrap();
        let no_day = dashboard.per_day(today(), 0).await.unwrap();
        assert_eq!(one_day.len(), 1, "{name}");
        assert!(no_day.is_empty(), "{name}");
        let hibob = dashboard.last_calls(&HIBOB_STEPS).await.unwrap();
        let ok = hibob.ok.clone().unwrap();
        assert_eq!(
            (ok.step.as_str(), ok.detail.as_str()),
            ("create_employee", "created 2"),
            "{name}: at one moment the later step, and of one step the later row"
        );
        let failed = hibob.failed.clone().unwrap();
        assert_eq!(failed.detail.chars().count(), 300, "{name}");
        let pinpoint = dashboard.last_calls(&PINPOINT_STEPS).await.unwrap();
        assert_eq!(
            pinpoint.ok.as_ref().map(|c| c.step.as_str()),
            Some("fetch_application")
        );
        assert!(pinpoint.failed.is_none(), "{name}");
        let since = dashboard.oldest_queued_since().await.unwrap();
        assert_eq!(since.as_deref(), Some("2026-11-20T08:00:00.000Z"), "{name}");
        let refusals = dashboard
            .refusals_since("2026-11-15T00:00:00.000Z")
            .await
            .unwrap();
        let causes: Vec<(RefusalCause, i64, &str)> = refusals
            .iter()
            .map(|r| (r.cause, r.count, r.last_at.as_str()))
            .collect();
        assert_eq!(
            causes,
            [
                (RefusalCause::MissingHeader, 1, "2026-11-20T11:00:00.000Z"),
                (RefusalCause::BadSignature, 1, "2026-11-20T12:00:00.000Z"),
                (RefusalCause::TooLarge, 1, "2026-11-21T14:00:00.000Z"),
                (RefusalCause::NoSecret, 1, "2026-11-21T13:00:00.000Z"),
                (RefusalCause::Malformed, 1, "2026-11-21T15:00:00.000Z"),
            ],
            "{name}: equal counts in the order of their reasons"
        );
        let silence = dashboard.delivery_silence(now).await.unwrap();
        let quiet = silence.clone().unwrap();
        assert_eq!(quiet.last_at, "2026-11-21T17:00:00.000Z", "{name}");
        seen.push((
            attention,
            soonest,
            per_day,
            one_day,
            hibob,
            pinpoint,
            since,
            refusals,
            silence,
            dashboard
                .delivery_silence(now + chrono::Duration::hours(200))
                .await
                .unwrap(),
        ));
    }
    assert_eq!(seen[1], seen[0]);
}

//! Live console features over real HTTP, against wiremock fakes of Pinpoint and HiBob: the event
//! stream, recorded bulk retries (preview, progress, cancel, concurrency) and the dashboard.

use std::time::Duration;

use crate::common::{
    fakes::{self, Fakes},
    json_of, TestApp,
};
use integration::pinpoint::signature as webhook_signature;
use serde_json::{json, Value};

/// Pinpoint knows every application as Jane Doe; HiBob refuses the first `refusals` creates
/// (so those exports stop and need attention) and accepts the rest.
async fn hibob_refusing_first(refusals: u64) -> Fakes {
    let fakes = Fakes::start().await;
    fakes.every_hire_succeeds().await;
    if refusals > 0 {
        fakes::create(fakes::site_not_found())
            .up_to_n_times(refusals)
            .with_priority(1)
            .mount(&fakes.hibob)
            .await;
    }
    fakes
}

/// Runs the worker until nothing is due.
async fn drain(app: &TestApp) -> usize {
    let mut n = 0;
    while app.worker.run_once().await.unwrap().is_some() {
        n += 1;
    }
    n
}

/// `n` hires whose exports stopped (needs attention), with a fresh worker pass each.
async fn stopped_hires(app: &TestApp, n: u64) {
    for id in 1..=n {
        app.hire(id).await;
    }
    drain(app).await;
    assert_eq!(status_count(app, "needs_attention").await, n as i64);
}

async fn status_count(app: &TestApp, status: &str) -> i64 {
    app.sql
        .scalar(
            "SELECT COUNT(*) FROM exports WHERE status = ?",
            &[status.into()],
        )
        .await
}

/// Reads the raw event stream until `done` accepts what arrived, within a few seconds.
async fn read_until(res: &mut reqwest::Response, done: impl Fn(&str) -> bool) -> String {
    let mut seen = String::new();
    tokio::time::timeout(Duration::from_secs(10), async {
        while !done(&seen) {
            let chunk = res.chunk().await.unwrap().expect("the stream stays open");
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no such notice in time; got {seen:?}"));
    seen
}

#[tokio::test]
async fn the_event_stream_is_refused_without_a_session() {
    let app = TestApp::spawn().await;
    let res = TestApp::client()
        .get(app.url("/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert!(res.text().await.unwrap().contains("sign in"));
}

#[tokio::test]
async fn the_event_stream_tells_a_viewer_when_an_export_changes_and_ends_on_shutdown() {
    let fakes = hibob_refusing_first(0).await;
    let app = fakes.app().await;
    let viewer = app.user_with_role("viewer").await;
    let mut events = viewer.get(app.url("/events")).send().await.unwrap();
    assert_eq!(events.status(), 200);
    assert_eq!(events.headers()["content-type"], "text/event-stream");

    app.hire(1).await;
    let seen = read_until(&mut events, |s| s.contains(r#""kind":"delivery""#)).await;
    assert!(
        seen.contains(r#"data: {"kind":"export","id":1,"status":"queued"}"#),
        "{seen}"
    );
    assert!(seen.contains(r#""export_id":1"#), "{seen}");
    assert!(!seen.contains("Jane"), "notices carry no personal data");

    drain(&app).await;
    let seen = read_until(&mut events, |s| s.contains(r#""status":"succeeded""#)).await;
    assert!(seen.contains(r#""status":"running""#), "{seen}");

    app.changes.close();
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        while events.chunk().await.unwrap().is_some() {}
    })
    .await;
    assert!(end.is_ok(), "the stream ends when the server shuts down");
}

#[tokio::test]
async fn a_bulk_retry_queues_what_its_preview_counted_and_reports_progress() {
    let fakes = hibob_refusing_first(3).await;
    let app = fakes.app().await;
    stopped_hires(&app, 3).await;
    app.hire(4).await;
    drain(&app).await;
    assert_eq!(status_count(&app, "succeeded").await, 1);

    let operator = app.user_with_role("operator").await;
    let list = json_of(
        app.call(&operator, "exports", &[("status", "needs_attention")])
            .await,
    )
    .await;
    assert_eq!(list["retryable"], 3, "{list}");
    let all = json_of(app.call(&operator, "exports", &[]).await).await;
    assert_eq!(
        all["retryable"], 3,
        "only the stopped ones, whatever the list shows"
    );
    let succeeded = json_of(
        app.call(&operator, "exports", &[("status", "succeeded")])
            .await,
    )
    .await;
    assert_eq!(succeeded["retryable"], 0);

    let mut stream = operator.get(app.url("/events")).send().await.unwrap();
    let started = json_of(
        app.call(
            &operator,
            "retry_matching_exports",
            &[("status", "needs_attention"), ("expected", "3")],
        )
        .await,
    )
    .await;
    assert_eq!(started["count"], 3, "{started}");
    assert_eq!(status_count(&app, "queued").await, 3);
    read_until(&mut stream, |s| s.contains(r#""kind":"bulk_retry""#)).await;

    let runs = json_of(app.call(&operator, "bulk_retries", &[]).await).await;
    assert_eq!(runs[0]["total"], 3);
    assert_eq!(runs[0]["done"], 0);
    assert_eq!(runs[0]["finished"], false);

    assert_eq!(drain(&app).await, 3);
    let runs = json_of(app.call(&operator, "bulk_retries", &[]).await).await;
    assert_eq!(runs[0]["summary"], "3 of 3 done: 3 succeeded", "{runs}");
    assert_eq!(runs[0]["finished"], true);
    assert_eq!(runs[0]["stopped"], serde_json::json!([]), "{runs}");
    assert_eq!(status_count(&app, "succeeded").await, 4);

    // a viewer may watch but not act
    let viewer = app.user_with_role("viewer").await;
    assert_eq!(app.call(&viewer, "bulk_retries", &[]).await.status(), 200);
    for (endpoint, form) in [
        (
            "retry_matching_exports",
            vec![("status", "needs_attention")],
        ),
        ("cancel_bulk_retry", vec![("id", "1")]),
    ] {
        assert_eq!(app.call(&viewer, endpoint, &form).await.status(), 403);
    }
}

#[tokio::test]
async fn the_status_chips_count_what_the_filters_select() {
    let fakes = hibob_refusing_first(2).await;
    let app = fakes.app().await;
    stopped_hires(&app, 2).await;
    app.hire(3).await;
    drain(&app).await;
    let viewer = app.user_with_role("viewer").await;
    let counts = |form: Vec<(&'static str, &'static str)>| {
        let (app, viewer) = (&app, &viewer);
        async move { json_of(app.call(viewer, "exports", &form).await).await["counts"].clone() }
    };
    assert_eq!(
        counts(vec![]).await,
        json!([["needs_attention", 2], ["succeeded", 1]])
    );
    // a search selects one export: the chips count it alone, whatever status is chosen
    assert_eq!(
        counts(vec![("search", "3")]).await,
        json!([["succeeded", 1]])
    );
    assert_eq!(
        counts(vec![("search", "1"), ("status", "succeeded")]).await,
        json!([["needs_attention", 1]])
    );
    assert_eq!(counts(vec![("source", "plugin")]).await, json!([]));
    assert_eq!(
        counts(vec![("from", "2001-01-01"), ("to", "2001-12-31")]).await,
        json!([])
    );
}

#[tokio::test]
async fn cancel_puts_back_only_the_exports_not_yet_started_and_is_audited() {
    let fakes = hibob_refusing_first(4).await;
    let app = fakes.app().await;
    stopped_hires(&app, 3).await;
    let operator = app.user_with_role("operator").await;
    // as a browser without script sends it: a plain form post, answered with a way back
    let posted = operator
        .post(app.url("/api/retry_matching_exports"))
        .header("Sec-Fetch-Site", "same-origin")
        .header("Accept", "text/html")
        .header("Referer", app.url("/exports?status=needs_attention"))
        .form(&[
            ("status", ""),
            ("source", ""),
            ("search", ""),
            ("expected", "3"),
        ])
        .send()
        .await
        .unwrap();
    assert!(posted.status().is_redirection(), "{}", posted.status());
    let runs = json_of(app.call(&operator, "bulk_retries", &[]).await).await;
    let run_id = runs[0]["id"].as_i64().unwrap().to_string();
    assert_eq!(status_count(&app, "queued").await, 3);
    // the worker gets through one (HiBob refuses it again) before the cancel
    app.worker.run_once().await.unwrap().unwrap();
    let cancelled = app
        .call(&operator, "cancel_bulk_retry", &[("id", &run_id)])
        .await;
    let text = json_of(cancelled).await;
    assert!(
        text.as_str()
            .unwrap()
            .contains("2 not yet started exports are back"),
        "{text}"
    );
    assert_eq!(status_count(&app, "needs_attention").await, 3);
    assert_eq!(status_count(&app, "queued").await, 0);
    let attempts: Vec<i64> = app
        .sql
        .scalars("SELECT attempts FROM exports ORDER BY id", &[])
        .await;
    assert_eq!(attempts, [1, 1, 1], "the put-back ones keep their count");
    assert!(app.worker.run_once().await.unwrap().is_none());

    let runs = json_of(app.call(&operator, "bulk_retries", &[]).await).await;
    assert_eq!(
        runs[0]["summary"], "3 of 3 done: 0 succeeded, 1 stopped again, 2 cancelled",
        "{runs}"
    );
    assert!(runs[0]["cancelled_at"].is_string());
    // the one HiBob refused again is linked from the finished run
    let stopped = runs[0]["stopped"].as_array().unwrap();
    assert_eq!(stopped.len(), 1, "{runs}");
    let again = app
        .call(&operator, "cancel_bulk_retry", &[("id", &run_id)])
        .await;
    assert_eq!(again.status(), 422);
    assert!(again.text().await.unwrap().contains("already cancelled"));

    let audit: Vec<(String, String)> = app.sql.rows("SELECT action, actor_email FROM audit_log WHERE action LIKE 'export.bulk%' ORDER BY id", &[]).await;
    assert_eq!(
        audit,
        [
            (
                "export.bulk_retried".to_owned(),
                "operator@example.com".to_owned()
            ),
            (
                "export.bulk_retry_cancelled".to_owned(),
                "operator@example.com".to_owned()
            ),
        ]
    );
}

#[tokio::test]
async fn concurrent_retries_never_queue_an_export_twice_and_say_why() {
    let fakes = hibob_refusing_first(5).await;
    let app = fakes.app().await;
    stopped_hires(&app, 5).await;
    let first = app.user_with_role("operator").await;
    let second = app.admin().await;
    let form = [("status", "needs_attention"), ("expected", "5")];
    let (a, b) = tokio::join!(
        app.call(&first, "retry_matching_exports", &form),
        app.call(&second, "retry_matching_exports", &form),
    );
    let mut statuses = [a.status().as_u16(), b.status().as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 422], "one wins, the other is told");
    let loser = if a.status() == 422 { a } else { b };
    assert!(loser
        .text()
        .await
        .unwrap()
        .contains("someone may have retried them already"));
    let members: i64 = app
        .sql
        .scalar("SELECT COUNT(*) FROM bulk_retry_members", &[])
        .await;
    assert_eq!(members, 5);
    assert_eq!(status_count(&app, "queued").await, 5);

    // a single retry of what is queued, running or done is refused in words, never a 5xx
    let queued = app.call(&first, "retry_export", &[("id", "1")]).await;
    assert_eq!(queued.status(), 422);
    assert!(queued.text().await.unwrap().contains("already waiting"));
    drain(&app).await;
    assert_eq!(status_count(&app, "succeeded").await, 5);
    let done = app.call(&first, "retry_export", &[("id", "1")]).await;
    assert_eq!(done.status(), 422);
    assert!(done.text().await.unwrap().contains("already succeeded"));
    let nothing = app
        .call(&first, "retry_matching_exports", &[("expected", "5")])
        .await;
    assert_eq!(nothing.status(), 422);

    // a partial overlap: the answer names how many someone else took
    app.sql
        .execute("UPDATE exports SET status = 'dead' WHERE id IN (1, 2)", &[])
        .await;
    let partial = json_of(
        app.call(&first, "retry_matching_exports", &[("expected", "4")])
            .await,
    )
    .await;
    assert_eq!(partial["count"], 2);
    assert!(
        partial["message"]
            .as_str()
            .unwrap()
            .contains("2 of the 4 shown were retried by someone else"),
        "{partial}"
    );
}

#[tokio::test]
async fn the_dashboard_lists_failures_by_urgency_and_counts_fourteen_days() {
    let app = TestApp::spawn().await;
    let today = chrono::Utc::now().date_naive();
    let day = |offset: i64| {
        (today + chrono::Duration::days(offset))
            .format("%Y-%m-%d")
            .to_string()
    };
    let at = |offset: i64| format!("{}T00:00:00.000Z", day(offset));
    // (key, status, start date, created)
    let rows: [(&str, &str, Option<String>, String); 7] = [
        ("far", "needs_attention", Some(day(30)), at(0)),
        ("unknown", "dead", None, at(0)),
        ("soon", "needs_attention", Some(day(3)), at(-2)),
        ("past", "dead", Some(day(-1)), at(-2)),
        ("ok", "succeeded", Some(day(1)), at(-2)),
        ("waiting", "queued", None, at(-13)),
        ("old", "succeeded", None, at(-20)),
    ];
    for (key, status, start, created) in &rows {
        app.sql
            .execute(
                "INSERT INTO exports (source, idempotency_key, pinpoint_application_id, status,
                                  start_date, created_at, updated_at, candidate_name)
             VALUES ('webhook', ?, ?, ?, ?, ?, ?, ?)",
                &[
                    key.into(),
                    key.into(),
                    status.into(),
                    start.into(),
                    created.into(),
                    created.into(),
                    format!("Candidate {key}").into(),
                ],
            )
            .await;
    }
    let viewer = app.user_with_role("viewer").await;
    let o = json_of(app.call(&viewer, "dashboard", &[]).await).await;
    let order: Vec<&str> = o["attention"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["application_id"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["past", "soon", "far", "unknown"]);
    let urgent: Vec<bool> = o["attention"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["urgent"].as_bool().unwrap())
        .collect();
    assert_eq!(urgent, [true, true, false, false]);
    assert_eq!(o["counts"][0][0], "needs_attention", "failures first");
    assert_eq!(o["stopped"], 4);

    let days = o["days"].as_array().unwrap();
    assert_eq!(days.len(), 14);
    assert_eq!(days[13]["day"], day(0));
    assert_eq!(days[0]["day"], day(-13));
    let n = |d: &Value, k: &str| d[k].as_i64().unwrap();
    assert_eq!((n(&days[13], "failed"), n(&days[13], "succeeded")), (2, 0));
    assert_eq!((n(&days[11], "failed"), n(&days[11], "succeeded")), (2, 1));
    assert_eq!(n(&days[0], "other"), 1);
    let empty = days
        .iter()
        .filter(|d| n(d, "succeeded") + n(d, "failed") + n(d, "other") == 0)
        .count();
    assert_eq!(empty, 11, "empty days are there, with zeros");
    assert_eq!(
        days.iter().map(|d| n(d, "succeeded")).sum::<i64>(),
        1,
        "the 20-day-old export is outside the chart"
    );
    assert_eq!(o["queued"], 1);
    assert_eq!(o["oldest_queued"], "13 days");
    assert_eq!(o["services"][0]["name"], "HiBob");
    assert_eq!(o["services"][0]["last_ok"], Value::Null);

    // the page itself renders the chart as SVG with its numbers in a table
    let html = app.page(&viewer, "/").await;
    assert!(html.contains(r#"role="img" aria-labelledby="chart-title chart-desc" class="bars""#));
    // (the text may be followed by a hydration marker comment, which is not text)
    assert!(html.contains("<title id=\"chart-title\">Exports per day, last 14 days"));
    assert!(
        html.contains("<th scope=\"row\">"),
        "the numbers as a table"
    );
    assert!(html.contains("Urgent"));
    assert!(html.contains("oldest queued: 13 days"));
    assert!(!html.contains("style="), "no inline styles under the CSP");
}

#[tokio::test]
async fn the_dashboard_knows_the_last_calls_to_each_service() {
    let fakes = hibob_refusing_first(1).await;
    let app = fakes.app().await;
    app.hire(1).await;
    drain(&app).await;
    app.hire(2).await;
    drain(&app).await;
    let admin = app.admin().await;
    let o = json_of(app.call(&admin, "dashboard", &[]).await).await;
    let hibob = &o["services"][0];
    assert_eq!(hibob["configured"], true);
    assert_eq!(
        hibob["last_ok"]["what"], "Create the employee in HiBob",
        "{o}"
    );
    assert!(hibob["last_failed"]["detail"]
        .as_str()
        .unwrap()
        .contains("Site London does not exist"));
    let pinpoint = &o["services"][1];
    assert_eq!(
        pinpoint["last_ok"]["what"],
        "Comment on the Pinpoint application"
    );
    assert_eq!(pinpoint["last_failed"], Value::Null);
}

#[tokio::test]
async fn the_dashboard_and_readiness_say_when_exports_are_not_running() {
    let app = TestApp::spawn().await;
    let viewer = app.user_with_role("viewer").await;
    let o = json_of(app.call(&viewer, "dashboard", &[]).await).await;
    assert_eq!(o["exports_stopped"], Value::Null);
    assert_eq!(
        reqwest::get(app.url("/readyz")).await.unwrap().status(),
        200
    );

    app.worker
        .health
        .worker_stopped("it panicked: claim loop broke");
    let o = json_of(app.call(&viewer, "dashboard", &[]).await).await;
    let why = o["exports_stopped"].as_str().unwrap_or_default();
    assert!(why.contains("claim loop broke"), "{o}");
    let ready = reqwest::get(app.url("/readyz")).await.unwrap();
    assert_eq!(ready.status(), 503);
    assert!(ready.text().await.unwrap().contains("claim loop broke"));

    app.worker.health.worker_running();
    let o = json_of(app.call(&viewer, "dashboard", &[]).await).await;
    assert_eq!(o["exports_stopped"], Value::Null);
    assert_eq!(
        reqwest::get(app.url("/readyz")).await.unwrap().status(),
        200
    );
}

#[tokio::test]
async fn deliveries_refused_for_a_wrong_secret_raise_a_dashboard_alert_with_the_fix() {
    let app = TestApp::spawn_with(&["--pinpoint-webhook-secret", "the-right-secret"]).await;
    let viewer = app.user_with_role("viewer").await;
    let o = json_of(app.call(&viewer, "dashboard", &[]).await).await;
    assert_eq!(o["refusals"], json!([]), "nothing refused yet");

    let body = r#"{"event":"application_hired","data":{"application":{"id":5}}}"#;
    let stale = webhook_signature::sign(b"a-stale-secret", body.as_bytes());
    for _ in 0..3 {
        let res = app.deliver(body, Some(&stale)).await;
        assert_eq!(res.status(), 401);
    }
    let signed = webhook_signature::sign(b"the-right-secret", b"{oops");
    let res = app.deliver("{oops", Some(&signed)).await;
    assert_eq!(res.status(), 400);

    let o = json_of(app.call(&viewer, "dashboard", &[]).await).await;
    let refusals = o["refusals"].as_array().cloned().unwrap_or_default();
    assert_eq!(refusals.len(), 2, "{o}");
    assert_eq!(refusals[0]["cause"], "bad_signature");
    assert_eq!(refusals[0]["count"], 3);
    // a viewer cannot change Settings: the fix is to ask an admin, who is told what to change
    let advice = refusals[0]["advice"].as_str().unwrap_or_default();
    assert!(advice.contains("Ask an admin to copy"), "{o}");
    let admin = app.admin().await;
    let o = json_of(app.call(&admin, "dashboard", &[]).await).await;
    let advice = o["refusals"][0]["advice"].as_str().unwrap_or_default();
    assert!(advice.contains("signing secret in Settings"), "{o}");
    assert!(!advice.contains("Ask an admin"), "{o}");
    assert_eq!(refusals[1]["cause"], "malformed");

    // a header that is not a signature is named as such, not blamed on the secret
    let res = app
        .deliver(
            r#"{"event":"application_hired","data":{"application":{"id":6}}}"#,
            Some("not base64 at all!"),
        )
        .await;
    assert_eq!(res.status(), 401);
    // the same hire delivered again, signed with the right secret: its refusals are dealt with
    let good = webhook_signature::sign(b"the-right-secret", body.as_bytes());
    assert_eq!(app.deliver(body, Some(&good)).await.status(), 200);
    let o = json_of(app.call(&viewer, "dashboard", &[]).await).await;
    let causes: Vec<(String, i64)> = o["refusals"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|r| {
            (
                r["cause"].as_str().unwrap_or_default().to_owned(),
                r["count"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        causes,
        [
            ("malformed_header".to_owned(), 1),
            ("malformed".to_owned(), 1)
        ],
        "{o}"
    );
    let advice = o["refusals"][0]["advice"].as_str().unwrap_or_default();
    assert!(
        advice.contains("not a signature") && !advice.contains("Settings"),
        "{advice}"
    );
}

#[tokio::test]
async fn hires_stopping_for_longer_than_usual_raise_a_dashboard_alert() {
    let app = TestApp::spawn().await;
    let viewer = app.user_with_role("viewer").await;
    // one clock for every row, so the gaps between them are exact
    let now = chrono::Utc::now();
    let accepted_hours_ago = |hours: &[i64]| {
        let sql = app.sql.clone();
        let hours = hours.to_vec();
        async move {
            sql.execute("DELETE FROM webhook_deliveries", &[]).await;
            for h in hours {
                let at = integration::db::time_text(now - chrono::Duration::hours(h));
                sql.execute(
                    "INSERT INTO webhook_deliveries (received_at, outcome, body_sha256, body)
                     VALUES (?, 'accepted', 'h', '{}')",
                    &[at.into()],
                )
                .await;
            }
        }
    };
    // hires about every four hours, and the last one two hours ago: all is well
    accepted_hours_ago(&[2, 6, 10, 14, 18, 22]).await;
    let o = json_of(app.call(&viewer, "dashboard", &[]).await).await;
    assert_eq!(o["silence"], Value::Null, "{o}");
    // the same rhythm, but nothing for two days
    accepted_hours_ago(&[48, 52, 56, 60, 64, 68]).await;
    let o = json_of(app.call(&viewer, "dashboard", &[]).await).await;
    assert_eq!(o["silence"][0], "2 days", "{o}");
    assert_eq!(o["silence"][1], "4 h", "{o}");
    let html = app.page(&viewer, "/").await;
    assert!(
        html.contains("No hire has arrived from Pinpoint for 2 days"),
        "{html}"
    );
}

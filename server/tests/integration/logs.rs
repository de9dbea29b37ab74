//! The logs over real HTTP: the webhook log (filters, detail with redacted headers, re-processing
//! and who may do it), the audit log and its CSV download, and the exports list's date range and
//! literal search on a few thousand exports.

use crate::common::{
    fakes::{Fakes, EMPLOYEE_ID},
    json_of,
    webhook::{hired, sign},
    TestApp, ADMIN_EMAIL,
};
use integration::{exports::pipeline::AttemptOutcome, pinpoint::signature as webhook_signature};
use serde_json::Value;

/// A console whose exports of any hire succeed.
async fn connected() -> (Fakes, TestApp) {
    let fakes = Fakes::start().await;
    fakes.every_hire_succeeds().await;
    let app = fakes.app().await;
    (fakes, app)
}

fn ids(list: &Value) -> Vec<i64> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn the_webhook_log_filters_and_shows_a_delivery_without_its_secrets() {
    let (_fakes, app) = connected().await;
    let body = hired(1);
    let good = sign(&body);
    let res = app
        .deliver_with_headers(
            &body,
            Some(&good),
            &[
                ("cookie", "session=cookie-value-1234"),
                ("authorization", "Bearer bearer-value-1234"),
                ("x-api-key", "api-key-value-1234"),
                ("user-agent", "Pinpoint-Webhooks/1.0"),
            ],
        )
        .await;
    assert_eq!(res.status(), 200);
    let forged = webhook_signature::sign(b"not the secret", hired(424242).as_bytes());
    assert_eq!(
        app.deliver(&hired(424242), Some(&forged)).await.status(),
        401
    );
    assert_eq!(app.deliver(&body, Some(&good)).await.status(), 200);
    let other = r#"{"event":"application_created","data":{"application":{"id":3}}}"#;
    assert_eq!(app.deliver(other, Some(&sign(other))).await.status(), 200);
    let junk = "{not json";
    assert_eq!(app.deliver(junk, Some(&sign(junk))).await.status(), 400);

    let viewer = app.user_with_role("viewer").await;
    let list = |form: Vec<(&'static str, String)>| {
        let (app, viewer) = (&app, &viewer);
        async move {
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            app.call(viewer, "webhook_deliveries", &form).await
        }
    };
    assert_eq!(ids(&json_of(list(vec![]).await).await), [5, 4, 3, 2, 1]);
    let rejected = json_of(list(vec![("outcome", "rejected".into())]).await).await;
    assert_eq!(ids(&rejected), [5, 2]);
    assert!(rejected[1]["reason"]
        .as_str()
        .unwrap()
        .starts_with("bad signature"));
    assert_eq!(
        rejected[1]["application_id"], "424242",
        "a refused delivery is labelled with the application it names"
    );
    let created = list(vec![("event", "application_created".into())]).await;
    assert_eq!(ids(&json_of(created).await), [4]);
    let by_application = list(vec![("search", "424242".into())]).await;
    assert_eq!(ids(&json_of(by_application).await), [2]);
    let hash = webhook_signature::body_hash(body.as_bytes());
    let by_hash = list(vec![("search", hash[..12].to_uppercase())]).await;
    assert_eq!(ids(&json_of(by_hash).await), [3, 1]);
    let by_reason = list(vec![("search", "not valid JSON".into())]).await;
    assert_eq!(ids(&json_of(by_reason).await), [5]);
    let today = chrono::Utc::now().date_naive();
    let tomorrow = today.succ_opt().unwrap().to_string();
    let today = today.to_string();
    let ranged = list(vec![("from", today.clone()), ("to", today.clone())]).await;
    assert_eq!(ids(&json_of(ranged).await).len(), 5);
    let future = list(vec![("from", tomorrow)]).await;
    assert!(ids(&json_of(future).await).is_empty());
    let paged = list(vec![("before", "3".into())]).await;
    assert_eq!(ids(&json_of(paged).await), [2, 1]);
    for (form, says) in [
        (vec![("from", "yesterday".to_owned())], "YYYY-MM-DD"),
        (vec![("outcome", "lost".to_owned())], "Unknown outcome"),
        (vec![("search", "y".repeat(10 * 1024))], "at most 200"),
    ] {
        let res = list(form).await;
        assert_eq!(res.status(), 422);
        assert!(res.text().await.unwrap().contains(says), "{says}");
    }

    let detail = json_of(app.call(&viewer, "webhook_delivery", &[("id", "1")]).await).await;
    let shown = detail.to_string();
    for secret in [
        good.as_str(),
        "cookie-value-1234",
        "bearer-value-1234",
        "api-key-value-1234",
    ] {
        assert!(!shown.contains(secret), "{secret} shown: {shown}");
    }
    let headers: Vec<(String, String)> = serde_json::from_value(detail["headers"].clone()).unwrap();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    assert_eq!(header("user-agent"), "Pinpoint-Webhooks/1.0");
    assert_eq!(header("cookie"), "[redacted]");
    assert_eq!(header("authorization"), "[redacted]");
    assert!(header("pinpoint-hmac-sha256").starts_with("[redacted"));
    assert!(detail["body"]
        .as_str()
        .unwrap()
        .contains("\n  \"event\": \"application_hired\""));
    assert_eq!(detail["export_id"], 1);
    assert_eq!(detail["export_status"], "queued");
    assert_eq!(detail["rule"], "Verified");
    let forged_detail = json_of(app.call(&viewer, "webhook_delivery", &[("id", "2")]).await).await;
    assert_eq!(forged_detail["rule"], "Unverified");
    assert!(!forged_detail.to_string().contains(&forged));

    let page = app.page(&viewer, "/webhooks/1").await;
    assert!(page.contains("Delivery 1"), "{page}");
    assert!(page.contains("Pinpoint-Webhooks/1.0"));
    for secret in [good.as_str(), "cookie-value-1234", "bearer-value-1234"] {
        assert!(!page.contains(secret), "{secret} on the page");
    }
    let missing = app
        .call(&viewer, "webhook_delivery", &[("id", "999")])
        .await;
    assert_eq!(missing.status(), 422);
    assert!(missing
        .text()
        .await
        .unwrap()
        .contains("no webhook delivery 999"));
    let anonymous = TestApp::client();
    assert_eq!(
        app.call(&anonymous, "webhook_deliveries", &[])
            .await
            .status(),
        401
    );
    assert_eq!(
        app.call(&anonymous, "webhook_delivery", &[("id", "1")])
            .await
            .status(),
        401
    );
    let signed_out = anonymous.get(app.url("/webhooks/1")).send().await.unwrap();
    assert!(signed_out.status().is_redirection());
}

#[tokio::test]
async fn reprocessing_reports_retries_or_recreates_the_export() {
    let (_fakes, app) = connected().await;
    assert_eq!(app.deliver_hire(1).await.status(), 200);
    let viewer = app.user_with_role("viewer").await;
    let operator = app.user_with_role("operator").await;
    let reprocess = |client: &reqwest::Client, id: &'static str| {
        let (app, client) = (&app, client.clone());
        async move { app.call(&client, "reprocess_delivery", &[("id", id)]).await }
    };
    assert_eq!(reprocess(&viewer, "1").await.status(), 403);

    // the export is still waiting: reported, nothing new
    let report = json_of(reprocess(&operator, "1").await).await;
    assert_eq!(report["export_id"], 1);
    assert!(
        report["message"]
            .as_str()
            .unwrap()
            .contains("which is queued"),
        "{report}"
    );
    assert_eq!(app.scalar("SELECT COUNT(*) FROM exports").await, 1);

    // the export stopped: it is retried
    app.sql
        .execute(
            "UPDATE exports SET status = 'needs_attention', last_error = 'HiBob 400'",
            &[],
        )
        .await;
    let report = json_of(reprocess(&operator, "1").await).await;
    assert!(
        report["message"]
            .as_str()
            .unwrap()
            .contains("queued for another attempt"),
        "{report}"
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM exports WHERE status = 'queued'")
            .await,
        1
    );

    // the export was lost: re-processing creates it again, and it runs to the end
    app.sql.execute("DELETE FROM exports", &[]).await;
    let detail = json_of(app.call(&viewer, "webhook_delivery", &[("id", "1")]).await).await;
    assert_eq!(detail["export_id"], Value::Null);
    let report = json_of(reprocess(&operator, "1").await).await;
    let new_export = report["export_id"].as_i64().unwrap();
    assert!(report["message"].as_str().unwrap().contains("was created"));
    let (_, outcome) = app.worker.run_once().await.unwrap().unwrap();
    assert_eq!(outcome, AttemptOutcome::Succeeded);
    let (status, employee): (String, String) = app
        .sql
        .row(
            "SELECT status, hibob_employee_id FROM exports WHERE id = ?",
            &[new_export.into()],
        )
        .await;
    assert_eq!(
        (status.as_str(), employee.as_str()),
        ("succeeded", EMPLOYEE_ID)
    );
    let run = json_of(
        app.call(
            &viewer,
            "webhook_delivery",
            &[("id", &report["delivery_id"].to_string())],
        )
        .await,
    )
    .await;
    assert_eq!(run["outcome"], "accepted");
    assert_eq!(
        run["reason"],
        "re-processed from delivery 1 by operator@example.com"
    );

    let audit: Vec<(String, String, String)> = app
        .sql
        .rows(
            "SELECT actor_email, action, detail FROM audit_log
         WHERE action IN ('webhook.reprocessed', 'export.retried') ORDER BY id",
            &[],
        )
        .await;
    let actions: Vec<&str> = audit.iter().map(|a| a.1.as_str()).collect();
    assert_eq!(
        actions,
        [
            "webhook.reprocessed",
            "webhook.reprocessed",
            "export.retried",
            "webhook.reprocessed"
        ]
    );
    assert!(audit.iter().all(|a| a.0 == "operator@example.com"));
    assert!(audit[3].2.contains("created"), "{audit:?}");
}

#[tokio::test]
async fn a_badly_signed_delivery_needs_an_admin_who_confirms() {
    let (_fakes, app) = connected().await;
    let body = hired(1);
    let forged = webhook_signature::sign(b"guessed secret", body.as_bytes());
    assert_eq!(app.deliver(&body, Some(&forged)).await.status(), 401);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM exports").await, 0);

    let operator = app.user_with_role("operator").await;
    let admin = app.admin().await;
    let refused = app
        .call(&operator, "reprocess_delivery", &[("id", "1")])
        .await;
    assert_eq!(refused.status(), 403);
    let unconfirmed = app.call(&admin, "reprocess_delivery", &[("id", "1")]).await;
    assert_eq!(unconfirmed.status(), 422);
    let message = unconfirmed.text().await.unwrap();
    assert!(
        message.contains("was not signed") && message.contains("confirmation"),
        "{message}"
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM exports").await,
        0,
        "a click alone makes no export"
    );
    let done = json_of(
        app.call(
            &admin,
            "reprocess_delivery",
            &[("id", "1"), ("confirm", "yes")],
        )
        .await,
    )
    .await;
    assert_eq!(done["export_id"], 1, "{done}");
    // the refused delivery, its re-processing and the export it made link to one another
    let refused = json_of(app.call(&admin, "webhook_delivery", &[("id", "1")]).await).await;
    assert_eq!(
        refused["reprocessed_as"],
        serde_json::json!([[2, 1]]),
        "{refused}"
    );
    let again = json_of(app.call(&admin, "webhook_delivery", &[("id", "2")]).await).await;
    assert_eq!(
        (&again["export_id"], &again["reprocessed_from"]),
        (&serde_json::json!(1), &serde_json::json!(1)),
        "{again}"
    );
    let export = json_of(app.call(&admin, "export", &[("id", "1")]).await).await;
    let links: Vec<&str> = export["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["link"].as_str())
        .collect();
    assert_eq!(links, ["/webhooks/1", "/webhooks/2"], "{export}");
    let detail: String = app
        .sql
        .scalar(
            "SELECT detail FROM audit_log WHERE action = 'webhook.reprocessed'",
            &[],
        )
        .await;
    assert!(detail.contains("signature not verified"), "{detail}");

    // what can never be re-processed says why
    let other = r#"{"event":"application_created","data":{"application":{"id":3}}}"#;
    app.deliver(other, Some(&sign(other))).await;
    let junk = "{not json";
    app.deliver(junk, Some(&sign(junk))).await;
    let huge = format!("{{\"pad\":\"{}\"}}", "x".repeat(300 * 1024));
    app.deliver(&huge, Some(&sign(&huge))).await;
    let ids: Vec<i64> = app
        .sql
        .scalars(
            "SELECT id FROM webhook_deliveries WHERE id > 2 ORDER BY id",
            &[],
        )
        .await;
    assert_eq!(ids.len(), 3);
    for (id, says) in ids
        .iter()
        .zip(["does not act on", "not valid JSON", "over the size limit"])
    {
        let res = app
            .call(
                &admin,
                "reprocess_delivery",
                &[("id", &id.to_string()), ("confirm", "yes")],
            )
            .await;
        assert_eq!(res.status(), 422, "{id}");
        let text = res.text().await.unwrap();
        assert!(text.contains(says), "{id}: {text}");
    }
    let missing = app
        .call(&admin, "reprocess_delivery", &[("id", "999")])
        .await;
    assert_eq!(missing.status(), 422);
}

#[tokio::test]
async fn the_audit_log_records_what_people_do_and_downloads_as_safe_csv() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    // failed sign-ins under names a spreadsheet would run, or that need quoting
    for email in [
        "=HYPERLINK(\"http://evil\",\"x\")",
        "+1-2@x.io",
        "a,\"b\"@x.io",
        ";=SUM(1)@x.io",
    ] {
        let res = app
            .login(&TestApp::client(), email, "wrong password 123")
            .await;
        assert_eq!(res.status(), 422);
    }
    for _ in 0..7 {
        app.login(
            &TestApp::client(),
            "victim@example.com",
            "wrong password 123",
        )
        .await;
    }
    let operator = app.user_with_role("operator").await;
    let res = app
        .call(
            &admin,
            "save_settings",
            &[("values[plugin_token]", "a plugin token")],
        )
        .await;
    assert_eq!(res.status(), 200);
    let actions: Vec<String> = app
        .sql
        .scalars("SELECT DISTINCT action FROM audit_log ORDER BY action", &[])
        .await;
    for expected in [
        "login.failed",
        "login.succeeded",
        "login.throttled",
        "settings.credentials_saved",
        "user.created",
    ] {
        assert!(
            actions.iter().any(|a| a == expected),
            "{expected}: {actions:?}"
        );
    }
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'login.throttled'")
            .await,
        1,
        "repeated refusals are listed once"
    );

    let res = admin
        .get(app.url("/audit.csv?action=login&to=2999-12-31"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/csv; charset=utf-8");
    let disposition = res.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        disposition.starts_with("attachment; filename=\"audit-") && disposition.ends_with(".csv\""),
        "{disposition}"
    );
    assert_eq!(res.headers()["cache-control"], "no-store");
    let csv = res.text().await.unwrap();
    let mut lines = csv.split("\r\n");
    assert_eq!(
        lines.next(),
        Some("\"id\",\"at\",\"actor\",\"action\",\"target\",\"detail\",\"client_ip\"")
    );
    assert!(
        csv.contains(",\"'=HYPERLINK(\"\"http://evil\"\",\"\"x\"\")\","),
        "{csv}"
    );
    assert!(csv.contains(",\"'+1-2@x.io\","), "{csv}");
    assert!(csv.contains(",\"a,\"\"b\"\"@x.io\","), "{csv}");
    // quoted, a semicolon cannot start a cell of its own in a spreadsheet that splits on it
    assert!(csv.contains(",\";=SUM(1)@x.io\","), "{csv}");
    assert!(csv.contains(&format!(",\"{ADMIN_EMAIL}\",\"login.succeeded\",")));
    assert!(!csv.contains("settings.credentials_saved"), "filtered");
    assert!(
        csv.lines()
            .filter(|l| !l.is_empty())
            .all(|l| l.starts_with('"') && l.ends_with('"')),
        "every cell is quoted"
    );
    let exported: String = app
        .sql
        .scalar(
            "SELECT detail FROM audit_log WHERE action = 'audit.exported'",
            &[],
        )
        .await;
    assert!(exported.contains("action \"login\""), "{exported}");

    let refused = operator.get(app.url("/audit.csv")).send().await.unwrap();
    assert_eq!(refused.status(), 403);
    assert!(refused.text().await.unwrap().contains("Only admins"));
    let signed_out = TestApp::client()
        .get(app.url("/audit.csv"))
        .send()
        .await
        .unwrap();
    assert!(signed_out.status().is_redirection());
    assert!(signed_out.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with("/login"));
    let bad = admin
        .get(app.url("/audit.csv?from=22.11.2026"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);
    assert!(bad.text().await.unwrap().contains("YYYY-MM-DD"));
    let page = app.page(&admin, "/audit?action=login").await;
    assert!(
        page.contains("href=\"/audit.csv?action=login\""),
        "CSV link keeps the filters"
    );
}

/// A few thousand exports over two years, with names that need literal matching.
async fn seed_exports(app: &TestApp, n: i64) {
    let mut seed = Vec::new();
    let start = chrono::DateTime::parse_from_rfc3339("2025-01-01T00:00:00Z").unwrap();
    for i in 1..=n {
        let created = (start + chrono::Duration::hours(6 * i)).with_timezone(&chrono::Utc);
        let name = match i {
            100 => "Liam O'Brien".to_owned(),
            200 => "Ava 50% Off".to_owned(),
            300 => "snake_case Person".to_owned(),
            _ => format!("Person {i}"),
        };
        let status = [
            "succeeded",
            "succeeded",
            "succeeded",
            "needs_attention",
            "dead",
        ][i as usize % 5];
        seed.push((
            "INSERT INTO exports (source, idempotency_key, pinpoint_application_id, status,
                                  candidate_name, candidate_email, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            vec![
                (if i % 4 == 0 { "plugin" } else { "webhook" }).into(),
                format!("k{i}").into(),
                (10_000 + i).to_string().into(),
                status.into(),
                name.into(),
                format!("person{i}@example.com").into(),
                integration::db::time_text(created).into(),
                integration::db::time_text(created).into(),
            ],
        ));
    }
    app.sql.batch(&seed).await;
}

#[tokio::test]
async fn exports_filter_by_dates_and_search_literally_at_a_few_thousand() {
    let app = TestApp::spawn().await;
    seed_exports(&app, 3000).await;
    let viewer = app.user_with_role("viewer").await;
    let list = |form: Vec<(&'static str, String)>| {
        let (app, viewer) = (&app, &viewer);
        async move {
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            app.call(viewer, "exports", &form).await
        }
    };
    let apps = |v: &Value| -> Vec<String> {
        v["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["application_id"].as_str().unwrap().to_owned())
            .collect()
    };
    // a date range is both days included, newest first, and pages on to its end
    let march = vec![
        ("from", "2025-03-01".to_owned()),
        ("to", "2025-03-31".to_owned()),
    ];
    let expected: Vec<String> = app
        .sql
        .scalars(
            "SELECT pinpoint_application_id FROM exports
         WHERE created_at >= '2025-03-01' AND created_at < '2025-04-01'
         ORDER BY created_at DESC, id DESC",
            &[],
        )
        .await;
    assert_eq!(expected.len(), 124);
    let mut seen = Vec::new();
    let mut before: Option<String> = None;
    loop {
        let mut form = march.clone();
        if let Some(b) = &before {
            form.push(("before", b.clone()));
        }
        let page = json_of(list(form).await).await;
        let rows = page["rows"].as_array().unwrap().clone();
        if rows.is_empty() {
            break;
        }
        before = rows.last().map(|r| r["id"].to_string());
        seen.extend(apps(&page));
    }
    assert_eq!(seen, expected);
    let dead_plugin_march = json_of(
        list(vec![
            ("status", "dead".into()),
            ("source", "plugin".into()),
            ("from", "2025-03-01".into()),
            ("to", "2025-03-31".into()),
        ])
        .await,
    )
    .await;
    assert!(dead_plugin_march["rows"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["status"] == "dead" && r["source"] == "plugin"));
    assert_eq!(apps(&dead_plugin_march).len(), 6);

    for (term, expected) in [
        ("o'brien", vec!["10100"]),
        ("50%", vec!["10200"]),
        ("e_c", vec!["10300"]),
        ("person2999@", vec!["12999"]),
        ("54321", vec![]),
        ("10007", vec!["10007"]),
        ("%", vec![]),
        ("_", vec![]),
        ("\"", vec![]),
    ] {
        let page = json_of(list(vec![("search", term.to_owned())]).await).await;
        assert_eq!(apps(&page), expected, "{term}");
    }
    let everyone = json_of(list(vec![("search", "example.com".to_owned())]).await).await;
    assert_eq!(apps(&everyone).len(), 50, "a common term fills the page");

    for (form, says) in [
        (vec![("search", "x".repeat(10 * 1024))], "at most 200"),
        (vec![("from", "2025-13-01".to_owned())], "YYYY-MM-DD"),
        (
            vec![
                ("from", "2025-04-01".to_owned()),
                ("to", "2025-03-01".to_owned()),
            ],
            "after the to date",
        ),
        (vec![("status", "gone".to_owned())], "Unknown status"),
    ] {
        let res = list(form).await;
        assert_eq!(res.status(), 422, "{says}");
        assert!(res.text().await.unwrap().contains(says), "{says}");
    }
    let long = "y".repeat(10 * 1024);
    let page = viewer
        .get(app.url(&format!("/exports?search={long}")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        page.status(),
        422,
        "the page explains, with a client-error status"
    );
    assert!(page.text().await.unwrap().contains("use at most 200"));
    let page = app
        .page(&viewer, "/exports?from=2025-03-01&to=2025-03-02")
        .await;
    assert!(
        page.contains("value=\"2025-03-01\""),
        "the form keeps the dates"
    );
}

/// The database file and its WAL, as anyone copying them would see them.
pub(crate) fn holds(bytes: &[u8], needle: &str) -> bool {
    bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// An admin erases a candidate: afterwards neither their name nor their e-mail is anywhere in
/// the database file or its WAL (not in free pages either), the export itself and an anonymous
/// audit entry remain, and operators and viewers are refused.
#[tokio::test]
async fn erasing_a_candidate_leaves_no_trace_in_the_database_file() {
    let (_fakes, app) = connected().await;
    assert_eq!(app.deliver_hire(1).await.status(), 200);
    let (_, outcome) = app.worker.run_once().await.unwrap().unwrap();
    assert_eq!(outcome, AttemptOutcome::Succeeded);
    let id = app.scalar("SELECT id FROM exports").await.to_string();
    let name: String = app
        .sql
        .scalar("SELECT candidate_name FROM exports", &[])
        .await;
    let traces = [
        name.as_str(),
        "jane.doe@example.com",
        "jane.doe",
        "Jane",
        "\"Doe\"",
    ];
    let before = app.stored_bytes().await;
    for t in traces {
        assert!(
            holds(&before, t),
            "the test needs {t:?} stored to begin with"
        );
    }

    let viewer = app.user_with_role("viewer").await;
    let operator = app.user_with_role("operator").await;
    let admin = app.admin().await;
    let confirmed = [("id", id.as_str()), ("confirmation", "ERASE")];
    for (role, client) in [("viewer", &viewer), ("operator", &operator)] {
        let res = app.call(client, "erase_candidate", &confirmed).await;
        assert_eq!(res.status(), 403, "{role}");
    }
    let res = app
        .call(
            &admin,
            "erase_candidate",
            &[("id", id.as_str()), ("confirmation", "jane.doe")],
        )
        .await;
    assert_eq!(res.status(), 422, "not confirmed");
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM exports WHERE candidate_email IS NOT NULL")
            .await,
        1
    );
    let res = app.call(&admin, "erase_candidate", &confirmed).await;
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("not changed"));

    let after = app.stored_bytes().await;
    for t in traces {
        assert!(!holds(&after, t), "{t:?} is still in the database file");
    }
    let export = json_of(app.call(&admin, "export", &[("id", id.as_str())]).await).await;
    assert_eq!(export["status"], "succeeded", "{export}");
    assert_eq!(export["employee_id"], EMPLOYEE_ID);
    assert_eq!(export["candidate"], "");
    assert!(export["erased_at"].is_string());
    let audit: Vec<(String, String, String)> = app
        .sql
        .rows(
            "SELECT actor_email, target, detail FROM audit_log WHERE action = 'candidate.erased'",
            &[],
        )
        .await;
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].0, ADMIN_EMAIL);
    assert_eq!(audit[0].1, format!("export {id}"));
    assert!(!audit[0].2.contains("Jane") && !audit[0].2.contains("jane"));
    let again = app.call(&admin, "erase_candidate", &confirmed).await;
    assert_eq!(again.status(), 422, "already erased");
}

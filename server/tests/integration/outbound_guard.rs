//! What the console sends out and keeps of the answers: secrets an upstream repeats are scrubbed,
//! a webhook's hire is held to the plugin's rules before HiBob is called, alert texts cannot
//! carry Slack markup, and alert destinations are held to the rules once the sandbox is over.

use std::time::Duration;

use crate::common::{
    fakes::{self, search_finds_nobody, Fakes, Slack, HIBOB_TOKEN},
    TestApp, SECRET_KEY,
};
use integration::exports::pipeline::AttemptOutcome;
use serde_json::{json, Value};
use wiremock::{
    matchers::{body_partial_json, method, path, path_regex},
    Mock, Request, ResponseTemplate,
};

/// Whatever `text` holds of the HiBob token or of the Basic header HiBob was sent.
fn leaks(text: &str, basic: &str) -> bool {
    text.contains(HIBOB_TOKEN) || (!basic.is_empty() && text.contains(basic))
}

#[tokio::test]
async fn credentials_hibob_repeats_in_an_error_reach_no_record_and_no_page() {
    let fakes = Fakes::start().await;
    fakes::application(1, fakes::jane())
        .mount(&fakes.pinpoint)
        .await;
    search_finds_nobody().mount(&fakes.hibob).await;
    // a HiBob that quotes the credentials it was sent back in its refusal
    Mock::given(method("POST"))
        .and(path("/v1/people"))
        .respond_with(|req: &Request| {
            let auth = req
                .headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            ResponseTemplate::new(400).set_body_json(json!({
                "key": "invalid_credentials",
                "error": format!("token {HIBOB_TOKEN} not valid here (header: {auth})"),
            }))
        })
        .expect(1)
        .mount(&fakes.hibob)
        .await;
    let app = fakes.app().await;
    let id = app.hire(1).await;
    let (_, outcome) = app.worker.run_once().await.unwrap().unwrap();
    assert!(
        matches!(outcome, AttemptOutcome::NeedsAttention(_)),
        "{outcome:?}"
    );
    let sent = fakes.hibob.received_requests().await.unwrap();
    let basic = sent
        .iter()
        .find(|r| r.url.path() == "/v1/people")
        .and_then(|r| r.headers.get("authorization"))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .unwrap()
        .to_owned();

    let last_error: String = app
        .sql
        .scalar("SELECT last_error FROM exports WHERE id = ?", &[id.into()])
        .await;
    assert!(!leaks(&last_error, &basic), "{last_error}");
    assert!(last_error.contains("[redacted]"), "{last_error}");
    let steps: Vec<(String, String)> = app
        .sql
        .rows(
            "SELECT detail, exchanges FROM export_steps WHERE export_id = ?",
            &[id.into()],
        )
        .await;
    assert!(!steps.is_empty());
    for (detail, exchanges) in &steps {
        assert!(!leaks(detail, &basic), "{detail}");
        assert!(!leaks(exchanges, &basic), "{exchanges}");
    }
    assert!(
        steps.iter().any(|(_, ex)| ex.contains("[redacted]")),
        "the recorded answer is kept, scrubbed: {steps:?}"
    );
    let admin = app.admin().await;
    let page = app.page(&admin, &format!("/exports/{id}")).await;
    assert!(!leaks(&page, &basic), "the export page");
    let dashboard = app.page(&admin, "/").await;
    assert!(!leaks(&dashboard, &basic), "the dashboard");
}

/// Jane, with `attributes` over hers.
fn jane_with(attributes: Value) -> Value {
    let mut jane = fakes::jane();
    if let (Some(jane), Some(extra)) = (jane.as_object_mut(), attributes.as_object()) {
        for (k, v) in extra {
            jane.insert(k.clone(), v.clone());
        }
    }
    jane
}

fn cv(url: &str) -> Value {
    json!({"attachments": [{"context": "pdf_cv", "filename": "cv.pdf", "url": url}]})
}

#[tokio::test]
async fn a_webhook_hire_is_held_to_the_plugins_rules_before_hibob_is_called() {
    let fakes = Fakes::start().await;
    let cases = [
        (
            1,
            jane_with(cv("javascript:alert(document.cookie)")),
            "CV link",
        ),
        (
            2,
            jane_with(cv("data:application/pdf;base64,JVBERi0xLjQK")),
            "CV link",
        ),
        (
            3,
            jane_with(json!({"first_name": "<img src=x onerror=alert(1)>"})),
            "does not accept \"<\" in the first name",
        ),
        (
            4,
            jane_with(json!({"email": "<b>jane</b>@example.com"})),
            "not a valid email address",
        ),
    ];
    for (id, attributes, _) in &cases {
        fakes::application(*id, attributes.clone())
            .mount(&fakes.pinpoint)
            .await;
    }
    search_finds_nobody().mount(&fakes.hibob).await;
    Mock::given(method("POST"))
        .and(path_regex("^/v1/(people|docs/.*)$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "1"})))
        .expect(0)
        .mount(&fakes.hibob)
        .await;
    let app = fakes.app().await;
    for (id, _, reason) in &cases {
        app.hire(*id).await;
        let (_, outcome) = app.worker.run_once().await.unwrap().unwrap();
        match outcome {
            AttemptOutcome::NeedsAttention(why) => {
                assert!(why.contains(reason), "application {id}: {why}")
            }
            other => panic!("application {id}: {other:?}"),
        }
    }
    let attention = app
        .scalar("SELECT COUNT(*) FROM exports WHERE status = 'needs_attention'")
        .await;
    assert_eq!(attention, 4);
    let created = fakes
        .hibob
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method.as_str() == "POST" && !r.url.path().ends_with("/search"))
        .count();
    assert_eq!(created, 0, "HiBob was never asked to create or upload");
}

#[tokio::test]
async fn a_cv_served_by_the_configured_pinpoint_is_accepted() {
    let fakes = Fakes::start().await;
    let link = format!("{}/files/7/cv.pdf", fakes.pinpoint.uri());
    fakes::application(1, jane_with(cv(&link)))
        .mount(&fakes.pinpoint)
        .await;
    fakes.every_hire_succeeds().await;
    Mock::given(method("POST"))
        .and(path(format!(
            "/v1/docs/people/{}/shared",
            fakes::EMPLOYEE_ID
        )))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .expect(1)
        .mount(&fakes.hibob)
        .await;
    let app = fakes.app().await;
    app.hire(1).await;
    let (_, outcome) = app.worker.run_once().await.unwrap().unwrap();
    assert_eq!(outcome, AttemptOutcome::Succeeded);
}

#[tokio::test]
async fn a_plugin_submit_takes_a_cv_from_the_configured_pinpoint_as_a_webhook_export_does() {
    let fakes = Fakes::start().await;
    fakes.every_hire_succeeds().await;
    fakes::named_lists(crate::plugin::named_lists())
        .mount(&fakes.hibob)
        .await;
    let link = format!("{}/files/7/cv.pdf", fakes.pinpoint.uri());
    Mock::given(method("POST"))
        .and(path(format!(
            "/v1/docs/people/{}/shared",
            fakes::EMPLOYEE_ID
        )))
        .and(body_partial_json(json!({"documentUrl": link})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .expect(1)
        .mount(&fakes.hibob)
        .await;
    let app = fakes
        .app_with(&["--plugin-token", crate::plugin::TOKEN])
        .await;
    let submit = |cv: String| {
        let body = crate::plugin::form(&[
            ("firstName", json!("Jane")),
            ("lastName", json!("Doe")),
            ("email", json!("jane.doe@example.com")),
            ("startDate", json!("2027-01-04")),
            ("site", json!("London")),
            (
                "cvDocument",
                json!({"url": cv, "filename": "Jane_Doe_CV.pdf"}),
            ),
        ]);
        let app = &app;
        async move { crate::plugin::call(app, "/export-candidate/submit", body).await }
    };
    // a plain-http link anywhere else is refused on this path as on the webhook's
    let (_, refused) = submit("http://files.example.com/cv.pdf".to_owned()).await;
    assert_eq!(refused["success"], false, "{refused}");
    assert!(
        refused["errors"]
            .as_array()
            .is_some_and(|e| e.iter().any(|e| e["key"] == "cvDocument")),
        "{refused}"
    );
    // where Pinpoint keeps attachments, the link is taken as Pinpoint itself is
    let (status, answer) = submit(link.clone()).await;
    assert_eq!(
        (status, &answer["success"]),
        (200, &json!(true)),
        "{answer}"
    );
}

#[tokio::test]
async fn slack_markup_in_a_candidates_name_is_escaped_in_the_alert() {
    let fakes = Fakes::start().await;
    let name = "<!channel> <https://evil.example|Fix> &";
    fakes::application(1, jane_with(json!({"first_name": name})))
        .mount(&fakes.pinpoint)
        .await;
    let slack = Slack::start().await;
    Slack::answers(200).expect(1).mount(&slack.server).await;
    let hook = slack.hook();
    let app = fakes.app_with(&["--alert-webhook-url", &hook]).await;
    app.hire(1).await;
    let (_, outcome) = app.worker.run_once().await.unwrap().unwrap();
    assert!(
        matches!(outcome, AttemptOutcome::NeedsAttention(_)),
        "{outcome:?}"
    );
    // stopped before its start date was known: it goes with the next digest
    let digest_due = chrono::Utc::now() + chrono::Duration::minutes(31);
    assert_eq!(app.worker.alerts.dispatch(digest_due).await.unwrap(), 1);
    let texts = slack.texts().await;
    let text = texts.first().unwrap();
    assert!(
        text.contains("&lt;!channel&gt; &lt;https://evil.example|Fix&gt; &amp;"),
        "{text}"
    );
    assert!(
        !text.contains("<!channel>") && !text.contains("<https://evil"),
        "{text}"
    );
}

/// The console's settings as a map from key to row.
async fn settings_row(app: &TestApp, admin: &reqwest::Client, key: &str) -> Value {
    let settings = app.call_json(admin, "settings", &[]).await;
    settings["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == key)
        .cloned()
        .unwrap()
}

#[tokio::test]
async fn an_alert_webhook_saved_in_the_sandbox_is_not_used_once_it_is_over() {
    let data = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/console.db", data.path().display());
    let slack = Slack::start().await;
    Slack::answers(200).mount(&slack.server).await;
    let hook = slack.hook();

    let sandbox = TestApp::spawn_with_database(
        tempfile::tempdir().unwrap(),
        &db,
        &["--sandbox", "on", "--secret-key", SECRET_KEY],
    )
    .await;
    let admin = sandbox.admin().await;
    let res = sandbox
        .call(
            &admin,
            "save_settings",
            &[("values[alert_webhook_url]", hook.as_str())],
        )
        .await;
    assert_eq!(res.status(), 200, "the sandbox takes an http hook");
    drop(sandbox);

    // real credentials arrive: the sandbox is over
    let fakes = Fakes::start().await;
    let real =
        TestApp::spawn_with_database(tempfile::tempdir().unwrap(), &db, &fakes.args(&[])).await;
    let admin = real.admin().await;
    let row = settings_row(&real, &admin, "alert_webhook_url").await;
    let problem = row["problem"].as_str().unwrap_or_default();
    assert!(problem.contains("https://"), "{row}");
    let page = real.page(&admin, "/settings").await;
    assert!(page.contains("credential-problem"), "shown in Settings");

    let operator = real.user_with_role("operator").await;
    let results = real.call_json(&operator, "send_test_alert", &[]).await;
    let webhook = results
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["service"] == "Slack webhook")
        .cloned()
        .unwrap();
    assert_eq!(webhook["ok"], json!(false), "{webhook}");
    assert!(
        webhook["summary"].as_str().unwrap().contains("https://"),
        "{webhook}"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        slack.server.received_requests().await.unwrap().is_empty(),
        "nothing was sent to it"
    );
}

#[tokio::test]
async fn a_mail_server_in_clear_stops_start_up_and_a_local_one_is_refused_in_settings() {
    use clap::Parser;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/console.db", dir.path().display());
    let config = server::config::Cli::try_parse_from([
        "pinpoint-hibob",
        "--database-url",
        &url,
        "--secret-key",
        SECRET_KEY,
        "--sandbox",
        "off",
        "--smtp-url",
        "smtp://alerts:mail-password@mail.example.com:587",
    ])
    .unwrap()
    .config;
    let err = match server::startup::build(&config).await {
        Ok(_) => panic!("started with a cleartext mail server"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        err.contains("SMTP_URL") && err.contains("tls=required"),
        "{err}"
    );
    assert!(!err.contains("mail-password"), "{err}");

    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    for (smtp, says) in [
        ("smtps://alerts:pw@localhost:2525", "private or local"),
        ("smtp://alerts:pw@mail.example.com:587", "tls=required"),
    ] {
        let res = app
            .call(&admin, "save_settings", &[("values[smtp_url]", smtp)])
            .await;
        assert_eq!(res.status(), 422, "{smtp}");
        let body: Value = res.json().await.unwrap();
        let message = body["Invalid"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{smtp}: {message}");
        assert!(!message.contains("pw@"), "{message}");
    }
}

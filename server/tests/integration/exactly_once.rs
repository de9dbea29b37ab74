//! Each thing done once, whichever way a hire comes in and whatever cuts an attempt short: one
//! employee, one CV and at most one invitation per person when a plugin submit and a webhook
//! export meet; no invitation for someone HiBob already had; a comment that may have been posted
//! twice says so; a plugin submit cut off by a crash settles; a result that could not be saved is
//! saved as soon as writes work again.

use std::{
    path::Path,
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use crate::common::{
    fakes::{self, comment_posted, simulators, Fakes, EMPLOYEE_ID},
    process,
    webhook::SECRET,
    TestApp,
};
use integration::exports::pipeline::AttemptOutcome;
use serde_json::{json, Value};
use wiremock::{
    matchers::{method, path},
    Mock, Request, ResponseTemplate,
};

const TOKEN: &str = "plugin-token-exactly-once";
const EMAIL: &str = "jane.doe@example.com";
const CV_NAME: &str = "Jane_Doe_CV.pdf";
const CV_URL: &str = "https://files.example.com/cv/jane.pdf";

/// What the stateful HiBob fake has been asked to do.
#[derive(Default)]
struct Seen {
    creates: AtomicUsize,
    exists: AtomicBool,
    /// The search sees nobody, as for a service user that may not see everyone.
    hidden: AtomicBool,
    uploads: AtomicUsize,
    uploaded: AtomicBool,
    invitations: AtomicUsize,
}

/// Pinpoint holds application 1, Jane Doe with her CV; HiBob creates one employee for her e-mail
/// (slowly, so two attempts overlap), refuses the e-mail as taken afterwards, finds her once she
/// exists, lists the CV once it was uploaded and takes invitations, counting every call.
async fn one_person_world(extra: &[&str]) -> (Fakes, TestApp, Arc<Seen>) {
    let fakes = Fakes::start().await;
    let mut jane = fakes::jane();
    jane["attachments"] = json!([{"context": "pdf_cv", "filename": CV_NAME, "url": CV_URL}]);
    fakes::application(1, jane).mount(&fakes.pinpoint).await;
    comment_posted().mount(&fakes.pinpoint).await;
    fakes::named_lists(json!([{"name": "site", "items": [
        {"id": 2510068, "value": "London", "name": "London", "archived": false, "children": []}
    ]}]))
    .mount(&fakes.hibob)
    .await;
    let seen = Arc::new(Seen::default());
    let s = Arc::clone(&seen);
    Mock::given(method("POST"))
        .and(path("/v1/people"))
        .respond_with(move |_: &Request| {
            s.creates.fetch_add(1, Ordering::SeqCst);
            if s.exists.swap(true, Ordering::SeqCst) {
                ResponseTemplate::new(400).set_body_json(
                    json!({"key": "validations.email.alreadyexists", "error": "Email already exists"}),
                )
            } else {
                fakes::created().set_delay(Duration::from_millis(300))
            }
        })
        .mount(&fakes.hibob)
        .await;
    let s = Arc::clone(&seen);
    Mock::given(method("POST"))
        .and(path("/v1/people/search"))
        .respond_with(move |_: &Request| {
            let visible = !s.hidden.load(Ordering::SeqCst);
            let found = match visible && s.exists.load(Ordering::SeqCst) {
                true => json!([{"id": EMPLOYEE_ID, "email": EMAIL, "displayName": "Jane Doe"}]),
                false => json!([]),
            };
            ResponseTemplate::new(200).set_body_json(json!({ "employees": found }))
        })
        .mount(&fakes.hibob)
        .await;
    let s = Arc::clone(&seen);
    Mock::given(method("GET"))
        .and(path(format!("/v1/docs/people/{EMPLOYEE_ID}")))
        .respond_with(move |_: &Request| {
            let documents = match s.uploaded.load(Ordering::SeqCst) {
                true => json!([{"documentName": CV_NAME}]),
                false => json!([]),
            };
            ResponseTemplate::new(200).set_body_json(json!({ "documents": documents }))
        })
        .mount(&fakes.hibob)
        .await;
    let s = Arc::clone(&seen);
    Mock::given(method("POST"))
        .and(path(format!("/v1/docs/people/{EMPLOYEE_ID}/shared")))
        .respond_with(move |_: &Request| {
            s.uploads.fetch_add(1, Ordering::SeqCst);
            s.uploaded.store(true, Ordering::SeqCst);
            ResponseTemplate::new(200)
                .set_body_json(json!({"id": 1, "name": CV_NAME}))
                .set_delay(Duration::from_millis(200))
        })
        .mount(&fakes.hibob)
        .await;
    let s = Arc::clone(&seen);
    Mock::given(method("POST"))
        .and(path(format!("/v1/employees/{EMPLOYEE_ID}/invitations")))
        .respond_with(move |_: &Request| {
            s.invitations.fetch_add(1, Ordering::SeqCst);
            ResponseTemplate::new(200)
        })
        .mount(&fakes.hibob)
        .await;
    let mut args = vec!["--hibob-welcome-wizard-id", "7", "--plugin-token", TOKEN];
    args.extend_from_slice(extra);
    let app = fakes.app_with(&args).await;
    (fakes, app, seen)
}

/// The plugin's submit for application 1 with the e-mail left blank, as a Stage Action sends it
/// when no person is present: the mapping fills it in from the application.
async fn submit_without_email(app: &TestApp) -> Value {
    let body = json!({"applicationId": 1, "formFields": [
        {"key": "firstName", "value": "Jane"},
        {"key": "lastName", "value": "Doe"},
        {"key": "email", "value": ""},
        {"key": "cvDocument", "value": {"url": CV_URL, "filename": CV_NAME}},
    ]});
    let res = reqwest::Client::new()
        .post(app.url("/export-candidate/submit"))
        .header("X-Plugin-Token", TOKEN)
        .json(&body)
        .send()
        .await
        .expect("submit");
    assert_eq!(res.status(), 200);
    res.json().await.expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blank_email_submit_and_the_webhook_export_of_one_hire_do_everything_once() {
    let (_fakes, app, seen) = one_person_world(&[]).await;
    app.deliver_hire(1).await;
    let worker = app.worker.clone();
    let webhook = tokio::spawn(async move { worker.run_once().await.unwrap() });
    let answer = submit_without_email(&app).await;
    let (_, outcome) = webhook.await.unwrap().expect("the webhook export ran");
    assert_eq!(answer["success"], true, "{answer}");
    assert_eq!(outcome, AttemptOutcome::Succeeded);

    assert_eq!(seen.uploads.load(Ordering::SeqCst), 1, "one CV upload");
    assert_eq!(seen.invitations.load(Ordering::SeqCst), 1, "one invitation");
    let employees: Vec<(String, Option<String>)> = app
        .sql
        .rows(
            "SELECT idempotency_key, hibob_employee_id FROM exports WHERE source = 'plugin'",
            &[],
        )
        .await;
    assert_eq!(
        employees,
        [(format!("plugin:{EMAIL}"), Some(EMPLOYEE_ID.to_owned()))],
        "the plugin's row is keyed by the e-mail sent to HiBob"
    );
    // a second blank submit finds the same row, the employee and the CV
    let again = submit_without_email(&app).await;
    assert_eq!(again["success"], true, "{again}");
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM exports WHERE source = 'plugin'")
            .await,
        1
    );
    assert_eq!(seen.uploads.load(Ordering::SeqCst), 1);
    assert_eq!(seen.invitations.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_employee_hibob_already_had_is_not_invited() {
    let (_fakes, app, seen) = one_person_world(&[]).await;
    // someone created Jane in HiBob before the console heard of her
    seen.exists.store(true, Ordering::SeqCst);
    app.deliver_hire(1).await;
    let (_, outcome) = app.worker.run_once().await.unwrap().unwrap();
    assert_eq!(outcome, AttemptOutcome::Succeeded);
    assert_eq!(seen.uploads.load(Ordering::SeqCst), 1);
    assert_eq!(seen.invitations.load(Ordering::SeqCst), 0, "not invited");
    let note: String = app
        .sql
        .scalar(
            "SELECT detail FROM export_steps WHERE step = 'invite' AND outcome = 'skipped'",
            &[],
        )
        .await;
    assert!(note.contains("not created by the console"), "{note}");
}

/// Makes every waiting export due now.
async fn make_due(app: &TestApp) {
    app.sql.execute("UPDATE exports SET next_attempt_at = '2000-01-01T00:00:00.000Z' WHERE status = 'queued'", &[]).await;
}

async fn comment_steps(app: &TestApp) -> Vec<(String, String)> {
    app.sql
        .rows(
            "SELECT outcome, detail FROM export_steps WHERE step = 'comment' ORDER BY id",
            &[],
        )
        .await
}

fn comment_posts(requests: &[Request]) -> usize {
    requests
        .iter()
        .filter(|r| r.method.as_str() == "POST" && r.url.path() == "/api/v1/comments")
        .count()
}

#[tokio::test]
async fn a_comment_that_timed_out_is_posted_again_and_the_timeline_says_it_may_be_twice() {
    let (fakes, app, _) = one_person_world(&[]).await;
    // Pinpoint stores the comment but answers after the client gave up (its timeout is 1 s)
    Mock::given(method("POST"))
        .and(path("/api/v1/comments"))
        .respond_with(ResponseTemplate::new(201).set_delay(Duration::from_millis(1500)))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&fakes.pinpoint)
        .await;
    app.deliver_hire(1).await;
    let (_, outcome) = app.worker.run_once().await.unwrap().unwrap();
    assert!(
        matches!(outcome, AttemptOutcome::RetryLater { .. }),
        "{outcome:?}"
    );
    make_due(&app).await;
    let (_, outcome) = app.worker.run_once().await.unwrap().unwrap();
    assert_eq!(outcome, AttemptOutcome::Succeeded);
    let requests = fakes.pinpoint.received_requests().await.unwrap();
    assert_eq!(comment_posts(&requests), 2);
    let steps = comment_steps(&app).await;
    assert_eq!(steps.len(), 2, "{steps:?}");
    assert_eq!(steps[1].0, "ok");
    assert!(steps[1].1.contains("may show it twice"), "{steps:?}");
}

#[tokio::test]
async fn a_comment_pinpoint_refused_is_posted_again_without_a_warning() {
    let (fakes, app, _) = one_person_world(&[]).await;
    Mock::given(method("POST"))
        .and(path("/api/v1/comments"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&fakes.pinpoint)
        .await;
    app.deliver_hire(1).await;
    app.worker.run_once().await.unwrap().unwrap();
    make_due(&app).await;
    let (_, outcome) = app.worker.run_once().await.unwrap().unwrap();
    assert_eq!(outcome, AttemptOutcome::Succeeded);
    let steps = comment_steps(&app).await;
    assert_eq!(steps.len(), 2, "{steps:?}");
    assert!(!steps[1].1.contains("twice"), "{steps:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_that_could_not_be_saved_is_saved_once_writes_work_again() {
    let (_fakes, app, _) = one_person_world(&[]).await;
    // the disk is full: every status change but the claim's fails
    if app.sql.is_sqlite() {
        app.sql
            .execute(
                "CREATE TRIGGER disk_full BEFORE UPDATE OF status ON exports
                 WHEN NEW.status <> 'running'
                 BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END",
                &[],
            )
            .await;
    } else {
        app.sql
            .execute(
                "CREATE FUNCTION disk_full() RETURNS trigger LANGUAGE plpgsql AS
                 $$ BEGIN RAISE EXCEPTION 'could not extend file: No space left on device'; END $$",
                &[],
            )
            .await;
        app.sql
            .execute(
                "CREATE TRIGGER disk_full BEFORE UPDATE OF status ON exports FOR EACH ROW
                 WHEN (NEW.status <> 'running') EXECUTE FUNCTION disk_full()",
                &[],
            )
            .await;
    }
    app.deliver_hire(1).await;
    let worker = app.worker.clone();
    let run = tokio::spawn(async move { worker.run_once().await });
    // the attempt finishes its steps and meets the full disk
    let deadline = Instant::now() + Duration::from_secs(10);
    while app
        .scalar("SELECT COUNT(*) FROM export_steps WHERE step = 'comment'")
        .await
        == 0
    {
        assert!(
            Instant::now() < deadline,
            "the attempt never reached its end"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    let drop = if app.sql.is_sqlite() {
        "DROP TRIGGER disk_full"
    } else {
        "DROP TRIGGER disk_full ON exports"
    };
    app.sql.execute(drop, &[]).await;
    let freed = Instant::now();
    let _ = tokio::time::timeout(Duration::from_secs(15), run).await;
    let status: String = app.sql.scalar("SELECT status FROM exports", &[]).await;
    assert_eq!(status, "succeeded", "settled once writes work again");
    assert!(freed.elapsed() < Duration::from_secs(15));
}

#[tokio::test]
async fn a_stopped_plugin_export_with_an_application_is_retried_through_the_webhook_pipeline() {
    let (_fakes, app, seen) = one_person_world(&[]).await;
    seen.exists.store(true, Ordering::SeqCst);
    // HiBob says the e-mail is taken but nobody is visible: the submit stops
    seen.hidden.store(true, Ordering::SeqCst);
    let answer = submit_without_email(&app).await;
    assert_eq!(answer["success"], false, "{answer}");
    seen.hidden.store(false, Ordering::SeqCst);
    let id: i64 = app
        .scalar("SELECT id FROM exports WHERE source = 'plugin' AND status = 'needs_attention'")
        .await;
    let admin = app.admin().await;
    let res = app
        .call(&admin, "retry_export", &[("id", &id.to_string())])
        .await;
    assert_eq!(
        res.status(),
        200,
        "{}",
        res.text().await.unwrap_or_default()
    );
    let (ran, outcome) = app.worker.run_once().await.unwrap().expect("queued");
    let steps: Vec<(i64, String, String, String)> = app.sql.rows("SELECT attempt, step, outcome, detail FROM export_steps WHERE export_id = ? ORDER BY id", &[id.into()]).await;
    assert_eq!(
        (ran, outcome),
        (id, AttemptOutcome::Succeeded),
        "{steps:#?}"
    );
    assert_eq!(seen.uploads.load(Ordering::SeqCst), 1);
}

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_pinpoint-hibob"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_submit_cut_off_by_sigkill_settles_after_the_restart() {
    let sims = simulators().await;
    // HiBob takes its time creating, so the kill lands while the submit waits for it
    sims.state.set_create_delay(Duration::from_secs(3));
    let dir = tempfile::tempdir().unwrap();
    let port = process::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let database = format!("sqlite://{}/cut.db", dir.path().display());
    let mut env = process::environment(&sims, &database, port, SECRET);
    env.insert("PLUGIN_TOKEN", TOKEN.to_owned());

    let mut child = process::spawn(binary(), &env);
    process::wait_ready(&base, "/readyz").await;
    let submit = tokio::spawn({
        let url = format!("{base}/export-candidate/submit");
        async move {
            let body = json!({"formFields": [
                {"key": "firstName", "value": "Ada"}, {"key": "lastName", "value": "Lovelace"},
                {"key": "email", "value": "ada@example.com"}, {"key": "site", "value": "London"},
                {"key": "startDate", "value": "2027-01-04"}]});
            reqwest::Client::new()
                .post(url)
                .header("X-Plugin-Token", TOKEN)
                .json(&body)
                .send()
                .await
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while sims.state.create_calls() == 0 {
        assert!(Instant::now() < deadline, "the submit never reached HiBob");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    child.kill().expect("SIGKILL");
    child.wait().ok();
    assert!(submit.await.unwrap().is_err(), "the submit was cut off");

    let mut child = process::spawn(binary(), &env);
    process::wait_ready(&base, "/readyz").await;
    let sql =
        store_postgres::test_sql::Sql::Sqlite(integration::db::open(&database).await.unwrap());
    let deadline = Instant::now() + Duration::from_secs(20);
    let settled = loop {
        let row: (String, Option<String>, Option<String>) = sql
            .row(
                "SELECT status, last_error, lease_until FROM exports WHERE source = 'plugin'",
                &[],
            )
            .await;
        if row.0 != "running" || Instant::now() > deadline {
            break row;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    child.kill().ok();
    child.wait().ok();
    assert_eq!(settled.0, "needs_attention", "{settled:?}");
    assert!(
        settled.1.as_deref().is_some_and(|e| e.contains("cut off")),
        "{settled:?}"
    );
    assert_eq!(settled.2, None, "no lease left behind");
}

/// An attempt whose lease is taken over while it waits on HiBob (its renewal finds another owner)
/// sends nothing more once HiBob answers: no CV lookup, no comment. Its result is not saved over
/// the new owner's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attempt_that_lost_its_lease_makes_no_further_outside_call() {
    let fakes = Fakes::start().await;
    // the create takes longer than a renewal period, so the renewal finds the lease gone first
    fakes::create(fakes::created().set_delay(Duration::from_millis(2500)))
        .with_priority(1)
        .expect(1)
        .mount(&fakes.hibob)
        .await;
    fakes.every_hire_succeeds().await;
    let app = fakes
        .app_with(&["--export-lease-secs", "3", "--outbound-timeout-secs", "10"])
        .await;
    let export = app.hire(1).await;
    let worker = app.worker.clone();
    let attempt = tokio::spawn(async move { worker.run_once().await });
    // the attempt is under way: another process takes the export over
    let deadline = Instant::now() + Duration::from_secs(5);
    while fakes
        .hibob
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .all(|r| r.method.as_str() != "POST")
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    app.sql
        .execute(
            "UPDATE exports SET lease_owner = 'another-process' WHERE id = ?",
            &[export.into()],
        )
        .await;
    let (id, outcome) = attempt.await.unwrap().unwrap().expect("claimed");
    assert_eq!(id, export);
    assert!(
        matches!(&outcome, AttemptOutcome::RetryLater { error, .. } if error.contains("lost its hold")),
        "{outcome:?}"
    );
    let after_create: Vec<String> = fakes
        .hibob
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .map(|r| format!("{} {}", r.method, r.url.path()))
        .collect();
    assert_eq!(
        after_create.last().map(String::as_str),
        Some("POST /v1/people"),
        "nothing after the create: {after_create:?}"
    );
    let comments = fakes
        .pinpoint
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.method.as_str() == "POST")
        .count();
    assert_eq!(
        comments, 0,
        "no comment from the attempt that lost its lease"
    );
    // the new owner's hold stands
    let owner: String = app
        .sql
        .scalar(
            "SELECT lease_owner FROM exports WHERE id = ?",
            &[export.into()],
        )
        .await;
    assert_eq!(owner, "another-process");
}

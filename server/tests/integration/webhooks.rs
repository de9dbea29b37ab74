//! Webhook intake and the export pipeline over real HTTP, against wiremock fakes of Pinpoint and
//! HiBob: signatures, duplicates, retries, rate limits, refusals and timeouts.

use futures_util::StreamExt;
use std::time::Duration;

use crate::common::{
    error_message,
    fakes::{
        self, comment_posted, created, search_finds_nobody, simulator_args, simulators,
        site_not_found, Fakes, Slack, EMPLOYEE_ID, HIBOB_TOKEN, PINPOINT_API_KEY,
    },
    process::{self, Tally},
    webhook::{hired, sign, SECRET},
    TestApp,
};
use integration::{exports::pipeline::AttemptOutcome, pinpoint::signature as webhook_signature};
use serde_json::{json, Value};
use wiremock::{
    matchers::{body_partial_json, method, path},
    Mock, ResponseTemplate,
};

/// Fakes in which Pinpoint holds application 1, Jane Doe with a CV, and HiBob answers only what
/// each test mounts.
async fn jane_applied() -> Fakes {
    let fakes = Fakes::start().await;
    let mut jane = fakes::jane();
    jane["attachments"] = json!([{"context": "pdf_cv", "filename": "Jane_Doe_CV.pdf",
                                  "url": "https://files.example.com/cv.pdf?sig=abc"}]);
    fakes::application(1, jane).mount(&fakes.pinpoint).await;
    fakes
}

/// HiBob answers `times` creates of Jane at the default site with `response`.
async fn create(fakes: &Fakes, response: ResponseTemplate, times: u64) {
    Mock::given(method("POST"))
        .and(path("/v1/people"))
        .and(body_partial_json(
            json!({"firstName": "Jane", "surname": "Doe", "work": {"site": "London"}}),
        ))
        .respond_with(response)
        .expect(times)
        .mount(&fakes.hibob)
        .await;
}

/// HiBob takes `times` uploads of Jane's CV.
async fn cv_ok(fakes: &Fakes, times: u64) {
    fakes::no_documents().mount(&fakes.hibob).await;
    Mock::given(method("POST"))
        .and(path(format!("/v1/docs/people/{EMPLOYEE_ID}/shared")))
        .and(body_partial_json(
            json!({"documentName": "Jane_Doe_CV.pdf"}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .expect(times)
        .mount(&fakes.hibob)
        .await;
}

/// HiBob finds nobody, then creates Jane and takes her CV, once each; Pinpoint takes one comment.
async fn one_export_succeeds(fakes: &Fakes) {
    search_finds_nobody().mount(&fakes.hibob).await;
    create(fakes, created(), 1).await;
    cv_ok(fakes, 1).await;
    comment_posted().expect(1).mount(&fakes.pinpoint).await;
}

/// Makes every waiting export due now, so a test need not sit out the backoff.
async fn make_due(app: &TestApp) {
    app.sql.execute("UPDATE exports SET next_attempt_at = '2000-01-01T00:00:00.000Z' WHERE status = 'queued'", &[]).await;
}

async fn export(app: &TestApp) -> Value {
    let row: (String, i64, Option<String>, bool, bool, Option<String>, String) = app.sql.row("SELECT status, attempts, hibob_employee_id, cv_uploaded, comment_posted, last_error, next_attempt_at FROM exports", &[]).await;
    json!({"status": row.0, "attempts": row.1, "employee": row.2, "cv": row.3, "comment": row.4, "error": row.5, "next": row.6})
}

#[tokio::test]
async fn the_signature_table() {
    let fakes = jane_applied().await;
    let app = fakes.app().await;
    let body = hired(1);
    let good = sign(&body);

    let mut flipped = body.clone().into_bytes();
    flipped[10] ^= 1;
    let flipped = String::from_utf8(flipped).unwrap();
    let reserialised =
        serde_json::to_string_pretty(&serde_json::from_str::<Value>(&body).unwrap()).unwrap();
    let wrong_secret = webhook_signature::sign(b"another secret", body.as_bytes());

    let cases: [(&str, &str, Option<&str>, u16); 6] = [
        ("valid", &body, Some(&good), 200),
        ("flipped byte", &flipped, Some(&good), 401),
        ("re-serialised body", &reserialised, Some(&good), 401),
        ("wrong secret", &body, Some(&wrong_secret), 401),
        ("missing header", &body, None, 401),
        ("not base64", &body, Some("%%% not base64 %%%"), 401),
    ];
    for (name, body, sig, status) in cases {
        let res = app.deliver(body, sig).await;
        assert_eq!(res.status().as_u16(), status, "{name}");
        let json: Value = res.json().await.unwrap();
        if status == 401 {
            assert!(error_message(&json).contains("signature"), "{name}: {json}");
        } else {
            assert_eq!(json["status"], "accepted");
        }
    }
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM webhook_deliveries WHERE outcome = 'rejected'")
            .await,
        5
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM webhook_deliveries WHERE outcome = 'accepted'")
            .await,
        1
    );
    assert_eq!(app.scalar("SELECT COUNT(*) FROM exports").await, 1);
    let headers: String = app
        .sql
        .scalar(
            "SELECT headers FROM webhook_deliveries WHERE outcome = 'accepted'",
            &[],
        )
        .await;
    assert!(
        !headers.contains(&good),
        "the signature is not stored: {headers}"
    );
}

#[tokio::test]
async fn malformed_and_unknown_deliveries_are_stored_and_answered_4xx_or_2xx() {
    let fakes = jane_applied().await;
    let app = fakes.app().await;
    let junk = "{not json";
    let res = app.deliver(junk, Some(&sign(junk))).await;
    assert_eq!(res.status(), 400);
    let other = r#"{"event":"application_stage_changed","data":{"application":{"id":9}}}"#;
    let res = app.deliver(other, Some(&sign(other))).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["status"], "ignored");
    let huge = format!(
        "{{\"event\":\"application_hired\",\"pad\":\"{}\"}}",
        "x".repeat(300 * 1024)
    );
    let res = app.deliver(&huge, Some(&sign(&huge))).await;
    assert_eq!(res.status(), 413);
    let reasons: Vec<String> = app
        .sql
        .scalars("SELECT reason FROM webhook_deliveries ORDER BY id", &[])
        .await;
    assert_eq!(reasons.len(), 3);
    assert!(reasons[0].starts_with("unparseable"), "{reasons:?}");
    assert!(reasons[2].contains("too large"), "{reasons:?}");
}

#[tokio::test]
async fn duplicate_deliveries_sequential_and_concurrent_make_one_employee() {
    let fakes = jane_applied().await;
    one_export_succeeds(&fakes).await;
    let app = fakes.app().await;
    for _ in 0..5 {
        assert_eq!(app.deliver_hire(1).await.status(), 200);
    }
    let concurrent: Vec<_> = (0..10)
        .map(|_| {
            let base = app.base.clone();
            tokio::spawn(async move {
                process::post_hire(&reqwest::Client::new(), &base, SECRET, 1)
                    .await
                    .unwrap()
                    .status()
            })
        })
        .collect();
    for handle in concurrent {
        assert_eq!(handle.await.unwrap(), 200);
    }
    assert_eq!(app.scalar("SELECT COUNT(*) FROM exports").await, 1);
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM webhook_deliveries WHERE outcome = 'duplicate'")
            .await,
        14
    );

    let (_, outcome) = app.worker.run_once().await.unwrap().unwrap();
    assert_eq!(outcome, AttemptOutcome::Succeeded);
    assert!(
        app.worker.run_once().await.unwrap().is_none(),
        "nothing left to do"
    );
    let e = export(&app).await;
    assert_eq!(e["status"], "succeeded");
    assert_eq!(e["employee"], EMPLOYEE_ID);
    assert_eq!(
        (e["cv"].as_bool(), e["comment"].as_bool()),
        (Some(true), Some(true))
    );
    let exchanges: Vec<String> = app
        .sql
        .scalars("SELECT exchanges FROM export_steps", &[])
        .await;
    let all = exchanges.join("\n");
    assert!(
        !all.contains(HIBOB_TOKEN) && !all.contains(PINPOINT_API_KEY),
        "no credentials in step records"
    );
    let steps: Vec<String> = app
        .sql
        .scalars("SELECT step FROM export_steps ORDER BY id", &[])
        .await;
    assert_eq!(
        steps,
        [
            "fetch_application",
            "map",
            "create_employee",
            "upload_cv",
            "comment"
        ],
        "create first: no search, and no document list for an employee just created"
    );
}

#[tokio::test]
async fn server_errors_are_retried_until_hibob_accepts() {
    let fakes = jane_applied().await;
    one_export_succeeds(&fakes).await;
    fakes::create(ResponseTemplate::new(500).set_body_string("oops"))
        .up_to_n_times(2)
        .with_priority(1)
        .expect(2)
        .mount(&fakes.hibob)
        .await;
    let app = fakes.app().await;
    app.deliver_hire(1).await;
    for expected_attempt in 1..=2 {
        let (_, outcome) = app.worker.run_once().await.unwrap().unwrap();
        assert!(
            matches!(outcome, AttemptOutcome::RetryLater { .. }),
            "attempt {expected_attempt}: {outcome:?}"
        );
        let e = export(&app).await;
        assert_eq!(e["status"], "queued");
        assert!(e["error"].as_str().unwrap().contains("500"));
        assert!(
            app.worker.run_once().await.unwrap().is_none(),
            "backoff: not due yet"
        );
        make_due(&app).await;
    }
    let (_, outcome) = app.worker.run_once().await.unwrap().unwrap();
    assert_eq!(outcome, AttemptOutcome::Succeeded);
    let e = export(&app).await;
    assert_eq!(
        (e["status"].as_str(), e["attempts"].as_i64()),
        (Some("succeeded"), Some(3))
    );
}

#[tokio::test]
async fn rate_limits_are_waited_out() {
    let fakes = jane_applied().await;
    search_finds_nobody().mount(&fakes.hibob).await;
    create(
        &fakes,
        ResponseTemplate::new(429).insert_header("Retry-After", "7"),
        1,
    )
    .await;
    let app = fakes.app().await;
    app.deliver_hire(1).await;
    let (_, outcome) = app.worker.run_once().await.unwrap().unwrap();
    let AttemptOutcome::RetryLater { delay, .. } = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(delay, Duration::from_secs(7));
    let next = export(&app).await["next"].as_str().unwrap().to_owned();
    let next = chrono::DateTime::parse_from_rfc3339(&next).unwrap();
    let wait = (next.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_milliseconds();
    assert!((5_000..=7_500).contains(&wait), "next attempt in {wait} ms");
}

#[tokio::test]
async fn validation_errors_need_attention_and_a_retry_does_not_create_twice() {
    let fakes = jane_applied().await;
    one_export_succeeds(&fakes).await;
    // the comment is refused once (bad request), then accepted after the operator's retry
    Mock::given(method("POST"))
        .and(path("/api/v1/comments"))
        .respond_with(
            ResponseTemplate::new(422)
                .set_body_json(json!({"errors": [{"detail": "commentable is invalid"}]})),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&fakes.pinpoint)
        .await;
    let app = fakes.app().await;
    app.deliver_hire(1).await;
    let (id, outcome) = app.worker.run_once().await.unwrap().unwrap();
    assert!(
        matches!(outcome, AttemptOutcome::NeedsAttention(_)),
        "{outcome:?}"
    );
    let e = export(&app).await;
    assert_eq!(e["status"], "needs_attention");
    assert_eq!(e["employee"], EMPLOYEE_ID, "the employee id is kept");
    assert!(
        app.worker.run_once().await.unwrap().is_none(),
        "never retried blindly"
    );

    let actor = integration::access::users::Actor::system("test operator");
    app.db.queue().retry(&actor, id).await.unwrap();
    let (_, outcome) = app.worker.run_once().await.unwrap().unwrap();
    assert_eq!(outcome, AttemptOutcome::Succeeded);
    // wiremock checks on drop: one create, one CV upload, one accepted comment
}

#[tokio::test]
async fn hibob_400_names_the_problem() {
    let fakes = jane_applied().await;
    search_finds_nobody().mount(&fakes.hibob).await;
    create(&fakes, site_not_found(), 1).await;
    let app = fakes.app().await;
    app.deliver_hire(1).await;
    let (_, outcome) = app.worker.run_once().await.unwrap().unwrap();
    let AttemptOutcome::NeedsAttention(message) = outcome else {
        panic!("{outcome:?}")
    };
    assert!(message.contains("Site London does not exist"), "{message}");
    assert_eq!(export(&app).await["status"], "needs_attention");
}

#[tokio::test]
async fn a_hung_hibob_times_out_and_the_next_attempt_succeeds() {
    let fakes = jane_applied().await;
    one_export_succeeds(&fakes).await;
    fakes::create(created().set_delay(Duration::from_secs(3)))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&fakes.hibob)
        .await;
    let app = fakes.app().await;
    app.deliver_hire(1).await;
    let (_, outcome) = app.worker.run_once().await.unwrap().unwrap();
    let AttemptOutcome::RetryLater { error, .. } = outcome else {
        panic!("{outcome:?}")
    };
    assert!(error.to_lowercase().contains("time"), "{error}");
    make_due(&app).await;
    let (_, outcome) = app.worker.run_once().await.unwrap().unwrap();
    assert_eq!(outcome, AttemptOutcome::Succeeded);
}

#[tokio::test]
async fn refused_credentials_are_never_retried() {
    let fakes = jane_applied().await;
    fakes::create(ResponseTemplate::new(401))
        .expect(1)
        .mount(&fakes.hibob)
        .await;
    let app = fakes.app().await;
    app.deliver_hire(1).await;
    let (_, outcome) = app.worker.run_once().await.unwrap().unwrap();
    assert!(
        matches!(outcome, AttemptOutcome::NeedsAttention(_)),
        "{outcome:?}"
    );
    make_due(&app).await;
    assert!(app.worker.run_once().await.unwrap().is_none());
}

#[tokio::test]
async fn the_console_lists_shows_and_retries_exports_by_role() {
    let fakes = jane_applied().await;
    search_finds_nobody().mount(&fakes.hibob).await;
    create(&fakes, site_not_found(), 2).await;
    let app = fakes.app().await;
    app.deliver_hire(1).await;
    app.deliver_hire(1).await;
    app.worker.run_once().await.unwrap().unwrap();

    let viewer = app.user_with_role("viewer").await;
    let list = app
        .call_json(&viewer, "exports", &[("search", "jane")])
        .await;
    assert_eq!(list["rows"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list["rows"][0]["status"], "needs_attention");
    for literal in ["%", "_", "\\", "'; DROP TABLE exports; --"] {
        let res = app.call(&viewer, "exports", &[("search", literal)]).await;
        assert_eq!(res.status(), 200, "{literal}");
        let v: Value = res.json().await.unwrap();
        assert_eq!(
            v["rows"].as_array().unwrap().len(),
            0,
            "{literal} is matched literally"
        );
    }
    let huge = app
        .call(&viewer, "exports", &[("search", &"x".repeat(5000))])
        .await;
    assert_eq!(
        huge.status(),
        422,
        "an over-long search is refused in words"
    );
    assert!(huge.text().await.unwrap().contains("at most 200"));
    let detail = app.call_json(&viewer, "export", &[("id", "1")]).await;
    let titles: Vec<&str> = detail["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["title"].as_str().unwrap())
        .collect();
    assert!(
        titles[0].starts_with("Webhook application_hired received"),
        "{titles:?}"
    );
    assert!(
        titles.iter().any(|t| t.contains("Create the employee")),
        "{titles:?}"
    );
    assert_eq!(detail["retryable"], true);
    let missing = app.call(&viewer, "export", &[("id", "999")]).await;
    assert_eq!(missing.status(), 422);

    assert_eq!(
        app.call(&viewer, "retry_export", &[("id", "1")])
            .await
            .status(),
        403
    );
    let operator = app.user_with_role("operator").await;
    assert_eq!(
        app.call(&operator, "retry_export", &[("id", "1")])
            .await
            .status(),
        200
    );
    let again = app.call(&operator, "retry_export", &[("id", "1")]).await;
    assert_eq!(again.status(), 422, "already queued");
    assert!(again.text().await.unwrap().contains("already waiting"));
    app.worker.run_once().await.unwrap().unwrap();
    let forbidden = app
        .call(
            &viewer,
            "retry_matching_exports",
            &[("status", "needs_attention")],
        )
        .await;
    assert_eq!(forbidden.status(), 403);
    let bulk = app
        .call_json(
            &operator,
            "retry_matching_exports",
            &[("status", "needs_attention"), ("search", "jane")],
        )
        .await;
    assert_eq!(
        bulk["count"],
        json!(1),
        "it failed again, and the bulk retry queues it again"
    );
    let audit: Vec<String> = app
        .sql
        .scalars(
            "SELECT actor_email FROM audit_log WHERE action = 'export.retried'",
            &[],
        )
        .await;
    assert_eq!(audit, ["operator@example.com"]);

    let deliveries = app
        .call_json(&viewer, "webhook_deliveries", &[("outcome", "duplicate")])
        .await;
    assert_eq!(deliveries.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_spent_rate_limit_window_defers_the_next_export_without_using_an_attempt() {
    let fakes = jane_applied().await;
    // longer than an attempt waits for its turn
    let reset = chrono::Utc::now().timestamp() + 120;
    create(
        &fakes,
        created()
            .insert_header("X-RateLimit-Limit", "50")
            .insert_header("X-RateLimit-Remaining", "0")
            .insert_header("X-RateLimit-Reset", reset.to_string().as_str()),
        1,
    )
    .await;
    cv_ok(&fakes, 1).await;
    comment_posted().expect(1).mount(&fakes.pinpoint).await;
    let app = fakes.app().await;
    for id in [1, 2] {
        app.deliver_hire(id).await;
    }
    let (_, first) = app.worker.run_once().await.unwrap().unwrap();
    assert_eq!(first, AttemptOutcome::Succeeded);
    let (second_id, second) = app.worker.run_once().await.unwrap().unwrap();
    let AttemptOutcome::Deferred { delay } = second else {
        panic!("{second:?}")
    };
    assert!(
        delay > Duration::from_secs(100) && delay <= Duration::from_secs(121),
        "{delay:?}"
    );
    let (status, attempts): (String, i64) = app
        .sql
        .row(
            "SELECT status, attempts FROM exports WHERE id = ?",
            &[second_id.into()],
        )
        .await;
    assert_eq!(
        (status.as_str(), attempts),
        ("queued", 0),
        "no attempt was spent"
    );
    let steps: i64 = app
        .sql
        .scalar(
            "SELECT COUNT(*) FROM export_steps WHERE export_id = ?",
            &[second_id.into()],
        )
        .await;
    assert_eq!(steps, 0, "and nothing was called");
    assert!(
        app.worker.run_once().await.unwrap().is_none(),
        "not due before the reset"
    );
}

/// Backups are of a SQLite file; on PostgreSQL the console names the tools to use instead.
async fn backups_are_refused_on_postgres(app: &TestApp) {
    let file = app.dir.path().join("backup.db");
    for refused in [
        app.db.backups().backup(&file, false).await.err(),
        app.db
            .backups()
            .scheduled_backup(app.dir.path(), 3, chrono::Utc::now())
            .await
            .err(),
    ] {
        let why = refused.expect("a refusal").to_string();
        assert!(why.contains("pg_dump"), "{why}");
    }
    assert!(!file.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_unsigned_deliveries_costs_little_and_signed_hires_pass() {
    let fakes = jane_applied().await;
    let app = fakes.app().await;
    let before = app.stored_size().await;
    let junk = format!(
        r#"{{"event":"application_hired","data":{{"application":{{"id":1}}}},"pad":"{}"}}"#,
        "x".repeat(60 * 1024)
    );
    let client = reqwest::Client::new();
    let url = app.url("/webhooks/pinpoint");
    const FLOOD: usize = 2000;
    let flood = futures_util::stream::iter(0..FLOOD)
        .map(|_| {
            let (client, url, junk) = (client.clone(), url.clone(), junk.clone());
            async move {
                client
                    .post(url)
                    .header("PINPOINT-HMAC-SHA256", "not-a-signature")
                    .body(junk)
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0)
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<u16>>();
    let signed = async {
        let mut answers = Vec::new();
        for id in 100..120 {
            answers.push(app.deliver_hire(id).await.status().as_u16());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        answers
    };
    let (flooded, signed) = tokio::join!(flood, signed);
    assert!(signed.iter().all(|s| *s == 200), "signed hires: {signed:?}");
    assert!(
        flooded.iter().all(|s| matches!(s, 401 | 429)),
        "{:?}",
        &flooded[..10]
    );
    let limited = flooded.iter().filter(|s| **s == 429).count();
    assert!(limited > FLOOD / 2, "{limited} of {FLOOD} were not stored");

    let stored = app
        .scalar("SELECT COUNT(*) FROM webhook_deliveries WHERE outcome = 'rejected'")
        .await;
    assert!(
        stored as usize <= FLOOD - limited && stored <= 60,
        "{stored} rejected rows"
    );
    let longest = app
        .scalar("SELECT CAST(MAX(length(body)) AS BIGINT) FROM webhook_deliveries WHERE outcome = 'rejected'")
        .await;
    assert!(
        longest <= 256,
        "a stranger's body is kept as a short prefix: {longest}"
    );
    let (reason, size): (String, i64) = app
        .sql
        .row(
            "SELECT reason, body_size FROM webhook_deliveries WHERE outcome = 'rejected' LIMIT 1",
            &[],
        )
        .await;
    assert!(
        reason.contains("only the start of its body was kept"),
        "{reason}"
    );
    assert!(size > 60 * 1024);
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM exports").await,
        20,
        "every signed hire has its export"
    );
    let grown = app.stored_size().await.saturating_sub(before);
    assert!(
        grown < 4 * 1024 * 1024,
        "the database grew by {grown} bytes"
    );
}

#[tokio::test]
async fn rejected_deliveries_beyond_the_kept_count_are_pruned() {
    let fakes = jane_applied().await;
    let app = fakes
        .app_with(&[
            "--rejected-deliveries-per-minute",
            "100000",
            "--rejected-deliveries-kept",
            "50",
        ])
        .await;
    for i in 0..300 {
        let res = app.deliver(&hired(i), Some("bad")).await;
        assert_eq!(res.status(), 401);
    }
    let kept = app
        .scalar("SELECT COUNT(*) FROM webhook_deliveries WHERE outcome = 'rejected'")
        .await;
    assert!((50..=50 + 64).contains(&kept), "{kept} kept");
    let newest = app
        .scalar("SELECT MAX(CAST(application_id AS BIGINT)) FROM webhook_deliveries")
        .await;
    assert_eq!(newest, 299, "the newest are the ones kept");
}

/// The database on a small file system that fills up: intake answers 503 while it cannot store,
/// and once space is back, every acknowledged hire reaches HiBob and new hires are taken, with
/// no restart. Needs root to mount the file system (CI runs as root).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_heals_by_itself_once_space_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("small");
    std::fs::create_dir(&mnt).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=6m", "tmpfs"])
        .arg(&mnt)
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("skipped: mounting a small tmpfs needs root");
        return;
    }
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&self.0)
                .status();
        }
    }
    let _unmount = Unmount(mnt.clone());

    let fakes = jane_applied().await;
    fakes.every_hire_succeeds().await;
    let db = format!("sqlite://{}/console.db", mnt.display());
    let app =
        TestApp::spawn_with_database(dir, &db, &fakes.args(&["--outbound-timeout-secs", "2"]))
            .await;

    for id in 900..903 {
        assert_eq!(app.deliver_hire(id).await.status(), 200);
    }
    // fill the disk, then deliver hires until intake refuses them
    let ballast = mnt.join("ballast");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&ballast).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.sync_all();
    }
    let mut acknowledged = 3;
    let mut refused = 0;
    for id in 1000..1400 {
        match app.deliver_hire(id).await.status().as_u16() {
            200 => acknowledged += 1,
            503 => refused += 1,
            other => panic!("answered {other}"),
        }
        if refused >= 20 {
            break;
        }
    }
    assert!(
        refused >= 20,
        "the disk never filled ({acknowledged} stored)"
    );
    let res = reqwest::get(app.url("/readyz")).await.unwrap();
    let ready_while_full = res.status();

    // space comes back; nothing is restarted
    std::fs::remove_file(&ballast).unwrap();
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(server::worker::supervise(app.worker.clone(), shutdown));
    for id in 2000..2005 {
        let res = app.deliver_hire(id).await;
        assert_eq!(res.status(), 200, "new hires are taken again");
    }
    let expected = acknowledged + 5;
    let mut succeeded = 0;
    for _ in 0..600 {
        succeeded = app
            .scalar("SELECT COUNT(*) FROM exports WHERE status = 'succeeded'")
            .await;
        if succeeded == expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        succeeded,
        expected,
        "every acknowledged hire reaches HiBob ({} exports in all)",
        app.scalar("SELECT COUNT(*) FROM exports").await
    );
    let res = reqwest::get(app.url("/readyz")).await.unwrap();
    assert_eq!(
        res.status(),
        200,
        "ready again (was {ready_while_full} while full)"
    );
    let _ = stop.send(true);
    let _ = worker.await;
}

#[tokio::test]
async fn a_stopped_export_starting_soon_posts_one_slack_message_naming_the_candidate() {
    let fakes = jane_applied().await;
    search_finds_nobody().mount(&fakes.hibob).await;
    fakes::create(
        ResponseTemplate::new(400)
            .set_body_json(json!({"key": "invalid_field", "error": "work.site: unknown site"})),
    )
    .mount(&fakes.hibob)
    .await;
    let slack = Slack::start().await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .expect(1)
        .mount(&slack.server)
        .await;
    let hook = slack.hook();
    let app = fakes
        .app_with(&["--alert-webhook-url", &hook, "--default-start-days", "3"])
        .await;
    app.deliver_hire(1).await;
    let (id, outcome) = app.worker.run_once().await.unwrap().unwrap();
    assert!(
        matches!(outcome, AttemptOutcome::NeedsAttention(_)),
        "{outcome:?}"
    );

    let now = chrono::Utc::now();
    assert_eq!(app.worker.alerts.dispatch(now).await.unwrap(), 1);
    assert_eq!(
        app.worker.alerts.dispatch(now).await.unwrap(),
        0,
        "sent once"
    );
    let texts = slack.texts().await;
    assert_eq!(texts.len(), 1);
    let text = &texts[0];
    assert!(
        text.contains("Jane Doe") && text.contains("URGENT"),
        "{text}"
    );
    assert!(text.contains("unknown site"), "the reason: {text}");
    assert!(text.contains(&format!("/exports/{id}")), "a link: {text}");
    assert!(
        !text.contains(HIBOB_TOKEN) && !text.contains(PINPOINT_API_KEY),
        "{text}"
    );
}

#[tokio::test]
async fn fifty_exports_stopped_by_an_outage_are_one_digest_then_one_recovery_note() {
    let fakes = jane_applied().await;
    fakes.every_hire_succeeds().await;
    // the outage: every create fails until fifty have
    fakes::create(ResponseTemplate::new(503).set_body_string("down"))
        .up_to_n_times(50)
        .with_priority(1)
        .mount(&fakes.hibob)
        .await;
    let slack = Slack::start().await;
    Slack::answers(200).expect(2).mount(&slack.server).await;
    let hook = slack.hook();
    let app = fakes
        .app_with(&["--alert-webhook-url", &hook, "--export-max-attempts", "1"])
        .await;
    for id in 1..=50 {
        assert_eq!(app.deliver_hire(id).await.status(), 200);
        app.worker.run_once().await.unwrap().unwrap();
    }
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM exports WHERE status = 'dead'")
            .await,
        50
    );
    let now = chrono::Utc::now();
    assert_eq!(
        app.worker.alerts.dispatch(now).await.unwrap(),
        0,
        "none starts within a week: they wait for the digest"
    );
    let later = now + chrono::Duration::minutes(31);
    assert_eq!(app.worker.alerts.dispatch(later).await.unwrap(), 1);
    // HiBob is back: the next hire succeeds, and people hear it once
    app.deliver_hire(51).await;
    let (_, outcome) = app.worker.run_once().await.unwrap().unwrap();
    assert_eq!(outcome, AttemptOutcome::Succeeded);
    app.deliver_hire(52).await;
    app.worker.run_once().await.unwrap().unwrap();
    assert_eq!(app.worker.alerts.dispatch(later).await.unwrap(), 1);
    assert_eq!(app.worker.alerts.dispatch(later).await.unwrap(), 0);
    let texts = slack.texts().await;
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert!(texts[0].starts_with("50 exports"), "{}", texts[0]);
    assert!(texts[0].contains("…and 30 more"), "{}", texts[0]);
    assert!(texts[1].contains("running again"), "{}", texts[1]);
}

/// A minimal SMTP server: accepts every message and hands its text over.
async fn smtp_sink() -> (u16, tokio::sync::mpsc::UnboundedReceiver<String>) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read).lines();
                let _ = write.write_all(b"220 sink ESMTP\r\n").await;
                let mut data: Option<String> = None;
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(message) = data.as_mut() {
                        if line == "." {
                            let _ = tx.send(std::mem::take(message));
                            data = None;
                            let _ = write.write_all(b"250 queued\r\n").await;
                        } else {
                            message.push_str(&line);
                            message.push('\n');
                        }
                        continue;
                    }
                    let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                    let answer: &[u8] = match verb.as_str() {
                        "EHLO" => b"250-sink\r\n250 8BITMIME\r\n",
                        "DATA" => {
                            data = Some(String::new());
                            b"354 go on\r\n"
                        }
                        "QUIT" => {
                            let _ = write.write_all(b"221 bye\r\n").await;
                            break;
                        }
                        _ => b"250 ok\r\n",
                    };
                    let _ = write.write_all(answer).await;
                }
            });
        }
    });
    (port, rx)
}

#[tokio::test]
async fn a_stopped_export_is_emailed_through_an_smtp_server() {
    let fakes = jane_applied().await;
    search_finds_nobody().mount(&fakes.hibob).await;
    fakes::create(ResponseTemplate::new(400).set_body_json(json!({"error": "bad email"})))
        .mount(&fakes.hibob)
        .await;
    let (port, mut inbox) = smtp_sink().await;
    let smtp = format!("smtp://127.0.0.1:{port}");
    let app = fakes
        .app_with(&[
            "--smtp-url",
            &smtp,
            "--alert-email-from",
            "Console <alerts@example.com>",
            "--alert-email-to",
            "ops@example.com, lead@example.com",
            "--default-start-days",
            "2",
        ])
        .await;
    app.deliver_hire(1).await;
    app.worker.run_once().await.unwrap().unwrap();
    assert_eq!(
        app.worker
            .alerts
            .dispatch(chrono::Utc::now())
            .await
            .unwrap(),
        1
    );
    let mail = tokio::time::timeout(Duration::from_secs(5), inbox.recv())
        .await
        .expect("a message")
        .unwrap();
    assert!(
        mail.contains("To: ops@example.com, lead@example.com"),
        "{mail}"
    );
    assert!(mail.contains("Subject: [Pinpoint"), "{mail}");
    assert!(mail.contains("Jane Doe"), "{mail}");
    assert!(mail.contains("bad email"), "{mail}");
}

#[tokio::test]
async fn a_failing_alert_channel_is_retried_and_never_holds_an_export_up() {
    let fakes = jane_applied().await;
    search_finds_nobody().mount(&fakes.hibob).await;
    fakes::create(ResponseTemplate::new(400).set_body_json(json!({"error": "nope"})))
        .mount(&fakes.hibob)
        .await;
    let slack = Slack::start().await;
    Slack::answers(500)
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&slack.server)
        .await;
    Slack::answers(200).mount(&slack.server).await;
    let hook = slack.hook();
    let app = fakes
        .app_with(&["--alert-webhook-url", &hook, "--default-start-days", "1"])
        .await;
    app.deliver_hire(1).await;
    let (_, outcome) = app.worker.run_once().await.unwrap().unwrap();
    assert!(matches!(outcome, AttemptOutcome::NeedsAttention(_)));
    let now = chrono::Utc::now();
    assert_eq!(app.worker.alerts.dispatch(now).await.unwrap(), 0, "refused");
    assert_eq!(
        app.worker.alerts.dispatch(now).await.unwrap(),
        0,
        "waits before trying again"
    );
    let later = now + chrono::Duration::minutes(2);
    assert_eq!(app.worker.alerts.dispatch(later).await.unwrap(), 1);
    assert_eq!(slack.texts().await.len(), 2);
}

async fn invitation_world(answer: ResponseTemplate, times: u64) -> (Fakes, TestApp) {
    let fakes = jane_applied().await;
    search_finds_nobody().mount(&fakes.hibob).await;
    create(&fakes, created(), 1).await;
    cv_ok(&fakes, 1).await;
    Mock::given(method("POST"))
        .and(path(format!("/v1/employees/{EMPLOYEE_ID}/invitations")))
        .and(body_partial_json(json!({"welcomeWizardId": 7})))
        .respond_with(answer)
        .expect(times)
        .mount(&fakes.hibob)
        .await;
    let app = fakes.app_with(&["--hibob-welcome-wizard-id", "7"]).await;
    (fakes, app)
}

async fn invite_steps(app: &TestApp) -> Vec<(String, String)> {
    app.sql
        .rows(
            "SELECT outcome, detail FROM export_steps WHERE step = 'invite' ORDER BY id",
            &[],
        )
        .await
}

#[tokio::test]
async fn the_new_employee_is_invited_to_the_welcome_wizard_once() {
    let (fakes, app) = invitation_world(ResponseTemplate::new(200), 1).await;
    // the comment fails once: the retry must not invite again
    Mock::given(method("POST"))
        .and(path("/api/v1/comments"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&fakes.pinpoint)
        .await;
    comment_posted().expect(1).mount(&fakes.pinpoint).await;
    app.deliver_hire(1).await;
    let (_, outcome) = app.worker.run_once().await.unwrap().unwrap();
    assert!(
        matches!(outcome, AttemptOutcome::RetryLater { .. }),
        "{outcome:?}"
    );
    make_due(&app).await;
    let (_, outcome) = app.worker.run_once().await.unwrap().unwrap();
    assert_eq!(outcome, AttemptOutcome::Succeeded);
    let steps = invite_steps(&app).await;
    assert_eq!(steps.len(), 1, "{steps:?}");
    assert_eq!(steps[0].0, "ok");
    assert!(steps[0].1.contains("welcome wizard 7"), "{steps:?}");
}

#[tokio::test]
async fn without_permission_to_invite_the_step_is_skipped_with_a_note() {
    let (fakes, app) = invitation_world(
        ResponseTemplate::new(403).set_body_json(json!({"error": "Forbidden"})),
        1,
    )
    .await;
    comment_posted().expect(1).mount(&fakes.pinpoint).await;
    app.deliver_hire(1).await;
    let (_, outcome) = app.worker.run_once().await.unwrap().unwrap();
    assert_eq!(outcome, AttemptOutcome::Succeeded, "the export goes on");
    let steps = invite_steps(&app).await;
    assert_eq!(steps.len(), 1);
    assert_eq!(steps[0].0, "skipped");
    assert!(
        steps[0].1.contains("403") && steps[0].1.contains("by hand"),
        "{steps:?}"
    );
}

#[tokio::test]
async fn an_attempt_cut_off_while_inviting_does_not_invite_again() {
    let (fakes, app) = invitation_world(ResponseTemplate::new(200), 0).await;
    comment_posted().expect(1).mount(&fakes.pinpoint).await;
    app.deliver_hire(1).await;
    // as a process killed between asking HiBob and hearing back leaves it
    app.sql
        .execute(
            "UPDATE exports SET invite_started_at = '2026-12-01T00:00:00.000Z'",
            &[],
        )
        .await;
    let (_, outcome) = app.worker.run_once().await.unwrap().unwrap();
    assert_eq!(outcome, AttemptOutcome::Succeeded);
    let steps = invite_steps(&app).await;
    assert_eq!(steps.len(), 1);
    assert_eq!(steps[0].0, "skipped");
    assert!(steps[0].1.contains("not asked twice"), "{steps:?}");
}

#[tokio::test]
async fn send_test_alert_reaches_every_channel_and_says_how_each_went() {
    let fakes = jane_applied().await;
    let slack = Slack::start().await;
    Slack::answers(200).expect(1).mount(&slack.server).await;
    let (port, mut inbox) = smtp_sink().await;
    let hook = slack.hook();
    let smtp = format!("smtp://127.0.0.1:{port}");
    let app = fakes
        .app_with(&[
            "--alert-webhook-url",
            &hook,
            "--smtp-url",
            &smtp,
            "--alert-email-from",
            "alerts@example.com",
            "--alert-email-to",
            "ops@example.com",
        ])
        .await;
    let viewer = app.user_with_role("viewer").await;
    assert_eq!(
        app.call(&viewer, "send_test_alert", &[]).await.status(),
        403
    );
    let operator = app.user_with_role("operator").await;
    let res = app.call(&operator, "send_test_alert", &[]).await;
    assert_eq!(res.status(), 200);
    let results: Value = res.json().await.unwrap();
    assert_eq!(results.as_array().map(Vec::len), Some(2), "{results}");
    assert!(
        results
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["ok"] == json!(true)),
        "{results}"
    );
    assert!(slack.texts().await[0].contains("Test alert"));
    let mail = tokio::time::timeout(Duration::from_secs(5), inbox.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(mail.contains("Test alert"), "{mail}");
}

fn config_for(database: &std::path::Path) -> server::config::Config {
    use clap::Parser;
    let url = format!("sqlite://{}", database.display());
    server::config::Cli::try_parse_from(["pinpoint-hibob", "--database-url", &url])
        .unwrap()
        .config
}

/// A backup taken while signed hires keep arriving is a consistent database that holds every
/// delivery acknowledged before it started; restored into an empty place it passes the checks.
/// Restoring over the running console's database is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_during_intake_keeps_every_acknowledged_hire() {
    use std::sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    };
    let fakes = jane_applied().await;
    let app = fakes.app().await;
    if crate::common::on_postgres() {
        return backups_are_refused_on_postgres(&app).await;
    }
    let live = app.dir.path().join("console.db");
    let acked: Arc<Mutex<Vec<u64>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let senders: Vec<_> = (0..4u64)
        .map(|k| {
            let (base, acked, stop) = (app.base.clone(), acked.clone(), stop.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let id = 10_000 + k * 1_000_000 + i;
                    i += 1;
                    let res = process::post_hire(&client, &base, SECRET, id)
                        .await
                        .unwrap();
                    assert_eq!(res.status(), 200);
                    acked.lock().unwrap().push(id);
                }
            })
        })
        .collect();
    while acked.lock().unwrap().len() < 60 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("backup.db");
    let before: Vec<u64> = acked.lock().unwrap().clone();
    let checked = server::backups::backup_command(&config_for(&live), &file, false)
        .await
        .unwrap();
    let during_backup = acked.lock().unwrap().len() - before.len();
    // keep intake going a little past the backup, then stop
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    for s in senders {
        s.await.unwrap();
    }
    let total = acked.lock().unwrap().len();
    assert!(
        checked.exports as usize >= before.len() && (checked.exports as usize) < total,
        "a snapshot between the first and the last delivery: {checked} of {total}"
    );
    eprintln!(
        "backup: {checked}; {} deliveries before it, {during_backup} while it ran, {total} in all",
        before.len()
    );

    let again = server::backups::backup_command(&config_for(&live), &file, false).await;
    assert!(
        again.unwrap_err().to_string().contains("already exists"),
        "an existing file is not overwritten"
    );
    server::backups::backup_command(&config_for(&live), &file, true)
        .await
        .unwrap();
    let in_use = server::backups::restore_command(&config_for(&live), &file).await;
    assert!(
        in_use.unwrap_err().to_string().contains("in use"),
        "the running console's database is not replaced"
    );

    let fresh = tempfile::tempdir().unwrap();
    let restored_file = fresh.path().join("data").join("restored.db");
    let restored = server::backups::restore_command(&config_for(&restored_file), &file)
        .await
        .unwrap();
    assert!(restored.kept.is_none(), "there was nothing to keep");
    integration::backup::check(&restored_file).await.unwrap();
    let pool = integration::db::open(&format!("sqlite://{}", restored_file.display()))
        .await
        .unwrap();
    let sql = store_postgres::test_sql::Sql::Sqlite(pool.clone());
    let integrity: String = sql.scalar("PRAGMA integrity_check", &[]).await;
    assert_eq!(integrity, "ok");
    for id in &before {
        let stored: i64 = sql
            .scalar(
                "SELECT COUNT(*) FROM webhook_deliveries d JOIN exports e ON e.id = d.export_id
             WHERE d.application_id = ? AND d.outcome = 'accepted'",
                &[id.to_string().into()],
            )
            .await;
        assert_eq!(stored, 1, "hire {id} was acknowledged before the backup");
    }
    pool.close().await;
}

/// The scheduled backup task writes a checked backup into an empty BACKUP_DIR at once, then waits
/// for the interval.
#[tokio::test]
async fn scheduled_backups_start_with_an_empty_directory() {
    let app = TestApp::spawn().await;
    if crate::common::on_postgres() {
        return backups_are_refused_on_postgres(&app).await;
    }
    let dir = app.dir.path().join("backups");
    let task = tokio::spawn(server::backups::run_schedule(
        app.db.clone(),
        server::backups::Schedule {
            dir: dir.clone(),
            interval: Duration::from_secs(3600),
            keep: 2,
        },
    ));
    let mut written = Vec::new();
    for _ in 0..100 {
        written = std::fs::read_dir(&dir)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        if !written.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    task.abort();
    assert_eq!(written.len(), 1, "{written:?}");
    assert!(integration::backup::scheduled_time(&written[0]).is_some());
    integration::backup::check(&dir.join(&written[0]))
        .await
        .unwrap();
}

/// Delivers each hire `copies` times, all at once.
pub(crate) async fn deliver_all_at_once(app: &TestApp, ids: &[usize], copies: usize) {
    let sends: Vec<_> = ids
        .iter()
        .flat_map(|id| std::iter::repeat_n(*id, copies))
        .map(|id| {
            let base = app.base.clone();
            tokio::spawn(async move {
                process::post_hire(&reqwest::Client::new(), &base, SECRET, id)
                    .await
                    .map(|r| r.status().as_u16())
            })
        })
        .collect();
    for send in sends {
        assert_eq!(send.await.unwrap().unwrap(), 200);
    }
}

/// Waits until `n` exports have succeeded; false after `limit`.
pub(crate) async fn all_succeed(app: &TestApp, n: i64, limit: Duration) -> bool {
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if app
            .scalar("SELECT COUNT(*) FROM exports WHERE status = 'succeeded'")
            .await
            >= n
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_runs_at_hibobs_announced_limit_with_at_most_one_429_a_window() {
    let sims = simulators().await;
    // 5 calls per endpoint per 2 s, 429 beyond, every answer with X-RateLimit-*
    sims.state.set_rate_window(5, 2);
    sims.state.set_call_delay(Duration::from_millis(50));
    let app = TestApp::spawn_with(&simulator_args(&sims, &["--export-concurrency", "8"])).await;
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(server::worker::supervise(app.worker.clone(), shutdown));
    const HIRES: usize = 16;
    let ids: Vec<usize> = (1..=HIRES).collect();
    let started = std::time::Instant::now();
    deliver_all_at_once(&app, &ids, 1).await;
    assert!(
        all_succeed(&app, HIRES as i64, Duration::from_secs(60)).await,
        "{:?}",
        app.sql
            .rows::<(String, Option<String>)>("SELECT status, last_error FROM exports", &[])
            .await
    );
    let took = started.elapsed();
    let _ = stop.send(true);
    let _ = worker.await;
    let windows = sims.state.rate_limited_windows();
    assert!(
        windows.iter().all(|(_, _, n)| *n <= 1),
        "at most one 429 per window: {windows:?}"
    );
    // 16 creates and 16 CVs at 5 per window are four windows of each: paced, not serial
    assert!(took >= Duration::from_secs(3), "{took:?}");
    let tally = Tally::of(&sims.state, HIRES);
    assert!(tally.exactly_once(HIRES), "{tally:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_person_hired_twice_at_once_gets_one_employee_and_one_cv() {
    let sims = simulators().await;
    // HiBob takes a while to fetch the first export's CV, so the others (told the e-mail is
    // taken) find the employee and list its documents before the CV is there: unserialised,
    // each of them uploads it too
    sims.state.set_call_delay(Duration::from_millis(50));
    sims.state.set_upload_delay(Duration::from_millis(600));
    for id in 201..=204 {
        let id = id.to_string();
        sims.state.put_application(
            id.clone(),
            json!({"first_name": "Grace", "last_name": "Hopper", "email": "grace@example.com",
                   "attachments": [{"context": "pdf_cv", "filename": "Grace_Hopper_CV.pdf",
                                    "url": sims.cv_url(&id)}]}),
        );
    }
    let app = TestApp::spawn_with(&simulator_args(&sims, &["--export-concurrency", "8"])).await;
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(server::worker::supervise(app.worker.clone(), shutdown));
    deliver_all_at_once(&app, &[201, 202, 203, 204], 4).await;
    assert!(all_succeed(&app, 4, Duration::from_secs(60)).await);
    let _ = stop.send(true);
    let _ = worker.await;

    assert_eq!(sims.state.employee_count_with_email("grace@example.com"), 1);
    let employee = &sims.state.employees()[0];
    assert_eq!(
        sims.state.documents_of(&employee.id),
        vec!["Grace_Hopper_CV.pdf".to_owned()],
        "one CV however many of her exports ran at once"
    );
    for id in 201..=204 {
        assert_eq!(sims.state.comments_on(&id.to_string()).len(), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_duplicates_with_exports_in_flight_make_one_employee_each() {
    let sims = simulators().await;
    sims.state.set_call_delay(Duration::from_millis(100));
    // four applications of one person, no CV: their exports race to create the same employee
    for id in 101..=104 {
        sims.state.put_application(
            id.to_string(),
            json!({"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"}),
        );
    }
    let app = TestApp::spawn_with(&simulator_args(&sims, &["--export-concurrency", "8"])).await;
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(server::worker::supervise(app.worker.clone(), shutdown));
    let ids: Vec<usize> = (1..=10).chain(101..=104).collect();
    deliver_all_at_once(&app, &ids, 5).await;
    assert_eq!(app.scalar("SELECT COUNT(*) FROM exports").await, 14);
    assert!(all_succeed(&app, 14, Duration::from_secs(60)).await);
    let _ = stop.send(true);
    let _ = worker.await;

    let tally = Tally::of(&sims.state, 10);
    assert_eq!(tally.employees, 11, "{tally:?}");
    // Ada's applications carry no CV, so her employee is the one without a document
    assert_eq!(
        (
            tally.duplicate_employees,
            tally.wrong_cvs,
            tally.missing_comments,
            tally.second_comments
        ),
        (0, 1, 0, 0),
        "{tally:?}"
    );
    assert_eq!(sims.state.employee_count_with_email("ada@example.com"), 1);
    let ada: Vec<String> = app.sql.scalars("SELECT DISTINCT hibob_employee_id FROM exports WHERE CAST(pinpoint_application_id AS BIGINT) > 100", &[]).await;
    assert_eq!(ada.len(), 1, "all four point at the one employee: {ada:?}");
    for id in 101..=104 {
        assert_eq!(sims.state.comments_on(&id.to_string()).len(), 1);
    }
}

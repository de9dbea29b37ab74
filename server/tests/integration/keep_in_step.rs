//! Keeping HiBob in step after the export: a hire changed in Pinpoint after it reached HiBob is
//! found, shown, and sent to HiBob with one click or by policy, exactly once; a value someone
//! changed in HiBob is shown and never overwritten unasked; a hire that falls through is flagged
//! for a decision; a repeated hire webhook asks for a check; and watching many hires keeps to its
//! pace and gives way to new exports.

use std::time::{Duration, Instant};

use crate::common::{
    fakes::{self, Fakes, EMPLOYEE_ID},
    json_of, webhook, TestApp,
};
use chrono::Utc;
use integration::watch::Route;
use serde_json::{json, Value};
use wiremock::{
    matchers::{method, path, path_regex},
    Mock, ResponseTemplate,
};

const APPLICATION: u64 = 501;
const FIRST_DAY: &str = "2027-01-04";
const MOVED_DAY: &str = "2027-01-11";

/// Jane Doe's application with one accepted offer starting on `start`, and extra attributes.
fn application(start: &str, extra: Value) -> Mock {
    let mut attributes = fakes::jane();
    if let (Some(a), Some(more)) = (attributes.as_object_mut(), extra.as_object()) {
        a.extend(more.clone());
    }
    let document = json!({
        "data": {"id": APPLICATION.to_string(), "type": "applications", "attributes": attributes,
                 "relationships": {"offers": {"data": [{"type": "offers", "id": "9"}]}}},
        "included": [{"type": "offers", "id": "9",
                      "attributes": {"status": "accepted", "start_date": start}}]
    });
    Mock::given(method("GET"))
        .and(path(format!("/api/v1/applications/{APPLICATION}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(document))
}

/// HiBob's read of the employee, holding `start` as the start date.
fn hibob_holds(start: &str) -> Mock {
    Mock::given(method("POST"))
        .and(path(format!("/v1/people/{EMPLOYEE_ID}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": EMPLOYEE_ID, "firstName": "Jane", "surname": "Doe",
            "email": "jane.doe@example.com", "work": {"startDate": start, "site": "London"}
        })))
}

fn start_date_call() -> Mock {
    Mock::given(method("POST"))
        .and(path(format!("/v1/employees/{EMPLOYEE_ID}/start-date")))
        .respond_with(ResponseTemplate::new(200))
}

/// A console whose hire of Jane has been exported and is watched; Pinpoint and HiBob both say
/// she starts on the first day.
async fn exported_and_watched(extra: &[&str]) -> (Fakes, TestApp, i64) {
    let fakes = Fakes::start().await;
    application(FIRST_DAY, json!({}))
        .mount(&fakes.pinpoint)
        .await;
    fakes.every_hire_succeeds().await;
    let app = fakes.app_with(extra).await;
    let export = app.hire(APPLICATION).await;
    let (id, outcome) = app
        .worker
        .run_once()
        .await
        .expect("run")
        .expect("an export");
    assert_eq!(id, export);
    assert_eq!(
        outcome,
        integration::exports::pipeline::AttemptOutcome::Succeeded
    );
    assert_eq!(app.watcher.adopt(Utc::now()).await.expect("adopt"), 1);
    (fakes, app, export)
}

/// How many fields differ at a check now.
async fn differing(app: &TestApp, export: i64) -> usize {
    app.watcher
        .check(export)
        .await
        .expect("check")
        .changes
        .len()
}

/// Pinpoint now says the hire starts a week later, over the first answer.
async fn start_moves(fakes: &Fakes) {
    application(MOVED_DAY, json!({}))
        .with_priority(1)
        .mount(&fakes.pinpoint)
        .await;
}

async fn calls_to(server: &wiremock::MockServer, method_name: &str, suffix: &str) -> Vec<Value> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.method.as_str() == method_name && r.url.path().ends_with(suffix))
        .map(|r| serde_json::from_slice(&r.body).unwrap_or(Value::Null))
        .collect()
}

#[tokio::test]
async fn a_start_date_moved_in_pinpoint_is_shown_and_one_click_updates_hibob_once() {
    let (fakes, app, export) = exported_and_watched(&[]).await;
    hibob_holds(FIRST_DAY).mount(&fakes.hibob).await;
    start_date_call().mount(&fakes.hibob).await;

    let unchanged = app.watcher.check(export).await.expect("check");
    assert!(unchanged.changes.is_empty(), "{unchanged:?}");

    start_moves(&fakes).await;
    let found = app.watcher.check(export).await.expect("check");
    assert_eq!(found.changes.len(), 1, "{found:?}");
    let change = &found.changes[0];
    assert_eq!(change.route, Route::StartDate);
    assert_eq!(
        (change.sent.as_str(), change.pinpoint.as_str()),
        (FIRST_DAY, MOVED_DAY)
    );
    assert_eq!(change.hibob.as_deref(), Some(FIRST_DAY));
    assert!(
        calls_to(&fakes.hibob, "POST", "/start-date")
            .await
            .is_empty(),
        "nothing is sent before someone decides"
    );
    let until: String = app
        .sql
        .scalar("SELECT watch_until FROM hire_watches", &[])
        .await;
    assert_eq!(
        until, "2027-01-25",
        "watched until 14 days after the moved start"
    );

    // what the export page shows, as a viewer sees it
    let viewer = app.user_with_role("viewer").await;
    let export_text = export.to_string();
    let shown = app
        .call_json(&viewer, "export_watch", &[("id", &export_text)])
        .await;
    assert_eq!(shown["changes"][0]["pinpoint"], MOVED_DAY, "{shown}");
    assert_eq!(shown["changes"][0]["hibob"], FIRST_DAY, "{shown}");
    let refused = app
        .call(&viewer, "update_hibob", &[("id", &export_text)])
        .await;
    assert_eq!(refused.status(), 403, "a viewer cannot update HiBob");

    let operator = app.user_with_role("operator").await;
    let answer = app
        .call_json(
            &operator,
            "update_hibob",
            &[("id", &export_text), ("field", "work.startDate")],
        )
        .await;
    assert!(
        answer.as_str().unwrap_or_default().contains(MOVED_DAY),
        "{answer}"
    );
    let sent = calls_to(&fakes.hibob, "POST", "/start-date").await;
    assert_eq!(sent.len(), 1, "exactly one start-date call: {sent:?}");
    assert_eq!(sent[0]["startDate"], MOVED_DAY);
    let start: String = app
        .sql
        .scalar(
            "SELECT start_date FROM exports WHERE id = ?",
            &[export.into()],
        )
        .await;
    assert_eq!(start, MOVED_DAY, "the export now says when the hire starts");
    let comments = calls_to(&fakes.pinpoint, "POST", "/comments").await;
    assert!(
        comments.iter().any(|c| c["data"]["attributes"]["body_text"]
            .as_str()
            .is_some_and(|t| t.contains("Updated in HiBob") && t.contains(MOVED_DAY))),
        "{comments:?}"
    );
    let shown = app
        .call_json(&viewer, "export_watch", &[("id", &export_text)])
        .await;
    assert_eq!(shown["changes"], json!([]), "{shown}");
    assert_eq!(
        app.scalar(&format!(
            "SELECT COUNT(*) FROM export_steps WHERE export_id = {export} AND step = 'update_hibob' AND outcome = 'ok'"
        ))
        .await,
        1
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'export.hibob_updated'")
            .await,
        1
    );

    // a second click has nothing left to send; a later check with HiBob in step finds nothing
    let again = app
        .call(
            &operator,
            "update_hibob",
            &[("id", &export_text), ("field", "work.startDate")],
        )
        .await;
    assert_eq!(again.status(), 422);
    hibob_holds(MOVED_DAY)
        .with_priority(1)
        .mount(&fakes.hibob)
        .await;
    let later = app.watcher.check(export).await.expect("check");
    assert!(later.changes.is_empty(), "{later:?}");
    assert_eq!(calls_to(&fakes.hibob, "POST", "/start-date").await.len(), 1);
}

#[tokio::test]
async fn an_automatic_policy_applies_the_start_date_without_a_click() {
    let (fakes, app, export) =
        exported_and_watched(&["--watch-auto-fields", "work.startDate"]).await;
    hibob_holds(FIRST_DAY).mount(&fakes.hibob).await;
    start_date_call().mount(&fakes.hibob).await;
    start_moves(&fakes).await;

    let found = app.watcher.check(export).await.expect("check");
    assert_eq!(
        found.applied,
        vec!["work.startDate".to_owned()],
        "{found:?}"
    );
    assert!(found.changes.is_empty(), "{found:?}");
    let sent = calls_to(&fakes.hibob, "POST", "/start-date").await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["startDate"], MOVED_DAY);
    assert_eq!(
        app.scalar(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'export.hibob_updated'
             AND actor_email = 'keep-in-step policy'"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn a_value_edited_in_hibob_by_hand_is_shown_not_overwritten() {
    let (fakes, app, export) =
        exported_and_watched(&["--watch-auto-fields", "work.startDate"]).await;
    // HR moved the start date in HiBob themselves
    hibob_holds("2027-02-01").mount(&fakes.hibob).await;
    start_date_call().mount(&fakes.hibob).await;
    start_moves(&fakes).await;

    let found = app.watcher.check(export).await.expect("check");
    assert!(
        found.applied.is_empty(),
        "the policy leaves a hand edit alone"
    );
    assert_eq!(found.changes.len(), 1);
    assert!(found.changes[0].edited_in_hibob);
    assert_eq!(found.changes[0].hibob.as_deref(), Some("2027-02-01"));
    assert!(calls_to(&fakes.hibob, "POST", "/start-date")
        .await
        .is_empty());

    let operator = app.user_with_role("operator").await;
    let export_text = export.to_string();
    let refused = app
        .call(
            &operator,
            "update_hibob",
            &[("id", &export_text), ("field", "work.startDate")],
        )
        .await;
    assert_eq!(refused.status(), 422);
    let text = refused.text().await.unwrap_or_default();
    assert!(
        text.contains("2027-02-01") && text.contains("changed it in HiBob"),
        "{text}"
    );
    assert!(calls_to(&fakes.hibob, "POST", "/start-date")
        .await
        .is_empty());

    let confirmed = app
        .call(
            &operator,
            "update_hibob",
            &[
                ("id", &export_text),
                ("field", "work.startDate"),
                ("overwrite", "yes"),
            ],
        )
        .await;
    json_of(confirmed).await;
    assert_eq!(calls_to(&fakes.hibob, "POST", "/start-date").await.len(), 1);
}

#[tokio::test]
async fn keeping_hibobs_value_sets_the_change_aside_for_good() {
    let (fakes, app, export) = exported_and_watched(&[]).await;
    hibob_holds(FIRST_DAY).mount(&fakes.hibob).await;
    start_moves(&fakes).await;
    assert_eq!(differing(&app, export).await, 1);
    let operator = app.user_with_role("operator").await;
    let export_text = export.to_string();
    app.call_json(
        &operator,
        "keep_hibob_value",
        &[("id", &export_text), ("field", "work.startDate")],
    )
    .await;
    let later = app.watcher.check(export).await.expect("check");
    assert!(later.changes.is_empty(), "not raised again: {later:?}");
    assert!(calls_to(&fakes.hibob, "POST", "/start-date")
        .await
        .is_empty());
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'export.change_set_aside'")
            .await,
        1
    );
}

#[tokio::test]
async fn a_hire_moved_out_of_hired_is_flagged_and_nobody_is_terminated() {
    let (fakes, app, export) = exported_and_watched(&[]).await;
    hibob_holds(FIRST_DAY).mount(&fakes.hibob).await;
    application(FIRST_DAY, json!({"stage_name": "Offer withdrawn"}))
        .with_priority(1)
        .mount(&fakes.pinpoint)
        .await;
    let found = app.watcher.check(export).await.expect("check");
    assert!(!found.hired);
    assert!(
        found
            .hire_note
            .as_deref()
            .unwrap_or_default()
            .contains("Offer withdrawn"),
        "{found:?}"
    );

    let viewer = app.user_with_role("viewer").await;
    let listed = app.call_json(&viewer, "changed_hires", &[]).await;
    assert_eq!(listed[0]["export_id"], export, "{listed}");
    assert!(listed[0]["fell_through"].is_string(), "{listed}");

    let operator = app.user_with_role("operator").await;
    let export_text = export.to_string();
    app.call_json(
        &operator,
        "decide_fall_through",
        &[("id", &export_text), ("decision", "handled_in_hibob")],
    )
    .await;
    let listed = app.call_json(&viewer, "changed_hires", &[]).await;
    assert_eq!(listed, json!([]), "decided, so no longer asked");
    let requests = fakes.hibob.received_requests().await.unwrap_or_default();
    assert!(
        requests
            .iter()
            .all(|r| !r.url.path().contains("terminate") && r.method.as_str() != "DELETE"),
        "the console terminates nobody"
    );
}

#[tokio::test]
async fn a_deleted_application_counts_as_fallen_through() {
    let (fakes, app, export) = exported_and_watched(&[]).await;
    hibob_holds(FIRST_DAY).mount(&fakes.hibob).await;
    Mock::given(method("GET"))
        .and(path(format!("/api/v1/applications/{APPLICATION}")))
        .respond_with(
            ResponseTemplate::new(404)
                .set_body_json(json!({"errors": [{"title": "Record not found"}]})),
        )
        .with_priority(1)
        .mount(&fakes.pinpoint)
        .await;
    let found = app.watcher.check(export).await.expect("check");
    assert!(!found.hired);
    assert!(found
        .hire_note
        .as_deref()
        .unwrap_or_default()
        .contains("no longer has"));
}

#[tokio::test]
async fn a_redelivered_hire_asks_for_a_check_at_once() {
    let (_fakes, app, export) = exported_and_watched(&[]).await;
    let due_later = app
        .scalar(&format!(
            "SELECT COUNT(*) FROM hire_watches WHERE export_id = {export}
             AND next_check_at > {}",
            app.now_sql()
        ))
        .await;
    assert_eq!(
        due_later, 1,
        "the first check waits a while after the export"
    );
    // Pinpoint marks the hire again: a new event, not a replay of the first delivery
    let body = format!(
        r#"{{"event":"application_hired","triggeredAt":{},"data":{{"application":{{"id":{APPLICATION}}}}}}}"#,
        Utc::now().timestamp() + 60
    );
    let signature = webhook::sign(&body);
    let answer = app.deliver(&body, Some(&signature)).await;
    assert!(answer.status().is_success());
    let due_now = app
        .scalar(&format!(
            "SELECT COUNT(*) FROM hire_watches WHERE export_id = {export}
             AND next_check_at <= {}",
            app.now_sql()
        ))
        .await;
    assert_eq!(due_now, 1, "the repeated hire makes the check due");
    let reason: String = app.sql.scalar("SELECT reason FROM webhook_deliveries WHERE outcome = 'duplicate' ORDER BY id DESC LIMIT 1", &[]).await;
    assert!(reason.contains("checked again"), "{reason}");
}

/// HiBob's reads of one employee so far.
async fn reads(fakes: &Fakes) -> usize {
    fakes
        .hibob
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| {
            r.method.as_str() == "POST"
                && r.url.path().starts_with("/v1/people/")
                && r.url.path() != "/v1/people/search"
        })
        .count()
}

/// Many watched hires, all due at once: the job checks them at its pace, one HiBob read per
/// check, and not one while an export is waiting.
#[tokio::test]
async fn a_thousand_watched_hires_keep_to_the_pace_and_new_exports_go_first() {
    let fakes = Fakes::start().await;
    application(FIRST_DAY, json!({}))
        .mount(&fakes.pinpoint)
        .await;
    fakes::any_application(fakes::jane())
        .mount(&fakes.pinpoint)
        .await;
    fakes.every_hire_succeeds().await;
    Mock::given(method("POST"))
        .and(path_regex(r"^/v1/people/[0-9]+$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "firstName": "Jane", "surname": "Doe", "email": "jane.doe@example.com",
            "work": {"startDate": FIRST_DAY, "site": "London"}
        })))
        .mount(&fakes.hibob)
        .await;
    let app = fakes.app().await;
    let mapping: i64 = app.scalar("SELECT MAX(id) FROM mapping_versions").await;
    // a thousand hires exported earlier, all due for a check now
    let mut seed = Vec::new();
    for n in 0..1000_i64 {
        let body = json!({"firstName": "Jane", "work": {"startDate": FIRST_DAY}}).to_string();
        let employee = format!("{}", 1_000_000_000_000_000_000_i64 + n);
        seed.push((
            "INSERT INTO exports (source, idempotency_key, pinpoint_application_id, status,
                                  hibob_employee_id, mapping_version, sent_body, start_date)
             VALUES ('webhook', ?1, ?2, 'succeeded', ?3, ?4, ?5, ?6)",
            vec![
                format!("webhook:{}", 10_000 + n).into(),
                (10_000 + n).to_string().into(),
                employee.clone().into(),
                mapping.into(),
                body.clone().into(),
                FIRST_DAY.into(),
            ],
        ));
        seed.push((
            "INSERT INTO hire_watches (export_id, employee_id, mapping_version, baseline,
                                       start_date, watch_until, next_check_at, created_at,
                                       updated_at)
             VALUES ((SELECT id FROM exports WHERE idempotency_key = ?1), ?2, ?3, ?4, ?5,
                     '2027-02-01', '2026-01-01T00:00:00.000Z',
                     '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z')",
            vec![
                format!("webhook:{}", 10_000 + n).into(),
                employee.into(),
                mapping.into(),
                body.into(),
                FIRST_DAY.into(),
            ],
        ));
    }
    app.sql.batch(&seed).await;

    // a hire waiting to be exported: no check starts
    app.hire(APPLICATION).await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let per_minute = 600;
    let job = tokio::spawn(server::watch_job::run(
        app.watcher.clone(),
        per_minute,
        stopped,
    ));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(reads(&fakes).await, 0, "no check while an export is due");

    let (_, outcome) = app.worker.run_once().await.expect("run").expect("export");
    assert_eq!(
        outcome,
        integration::exports::pipeline::AttemptOutcome::Succeeded
    );
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let elapsed = started.elapsed().as_secs_f64();
    let _ = stop.send(true);
    let _ = job.await;
    let done = reads(&fakes).await;
    let allowed = (f64::from(per_minute) / 60.0 * elapsed).ceil() as usize + 1;
    assert!(done >= 5, "checks ran once the export was done: {done}");
    assert!(
        done <= allowed,
        "{done} reads in {elapsed:.1} s, pace allows {allowed}"
    );
    let checked = app
        .scalar("SELECT COUNT(*) FROM hire_watches WHERE checked_at IS NOT NULL")
        .await;
    assert_eq!(
        usize::try_from(checked).unwrap_or_default(),
        done,
        "one read per check"
    );
}

/// Jane's application with her offer and a job titled `title`.
fn application_with_job(title: &str) -> Mock {
    let document = json!({
        "data": {"id": APPLICATION.to_string(), "type": "applications", "attributes": fakes::jane(),
                 "relationships": {"offers": {"data": [{"type": "offers", "id": "9"}]},
                                   "job": {"data": {"type": "jobs", "id": "3"}}}},
        "included": [
            {"type": "offers", "id": "9", "attributes": {"status": "accepted", "start_date": FIRST_DAY}},
            {"type": "jobs", "id": "3", "attributes": {"title": title}}
        ]
    });
    Mock::given(method("GET"))
        .and(path(format!("/api/v1/applications/{APPLICATION}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(document))
}

#[tokio::test]
async fn a_changed_job_title_is_written_into_the_work_entry_in_force_whole() {
    let fakes = Fakes::start().await;
    application_with_job("Engineer")
        .mount(&fakes.pinpoint)
        .await;
    fakes.every_hire_succeeds().await;
    let app = fakes.app().await;
    // the mapping also sends the job's title
    let mut document: Value = serde_json::from_str(
        &app.sql
            .scalar::<String>("SELECT document FROM mapping_versions WHERE id = 1", &[])
            .await,
    )
    .expect("json");
    document["fields"]
        .as_array_mut()
        .expect("fields")
        .push(json!({"target": "work.title", "sources": ["{{ job_title }}"]}));
    app.sql.execute("INSERT INTO mapping_versions (id, document, note, author) VALUES (2, ?, 'title', 'test')", &[document.to_string().into()]).await;
    let export = app.hire(APPLICATION).await;
    app.worker
        .run_once()
        .await
        .expect("run")
        .expect("an export");
    assert_eq!(app.watcher.adopt(Utc::now()).await.expect("adopt"), 1);

    Mock::given(method("POST"))
        .and(path(format!("/v1/people/{EMPLOYEE_ID}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "firstName": "Jane", "surname": "Doe", "email": "jane.doe@example.com",
            "work": {"startDate": FIRST_DAY, "site": "London", "title": "Engineer"}
        })))
        .mount(&fakes.hibob)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v1/people/{EMPLOYEE_ID}/work")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"values": [
            {"id": 9, "effectiveDate": FIRST_DAY, "site": "London", "siteId": 2510068,
             "title": "Engineer", "department": "R&D", "isCurrent": false,
             "workChangeType": "hire"}
        ]})))
        .mount(&fakes.hibob)
        .await;
    Mock::given(method("PUT"))
        .and(path(format!("/v1/people/{EMPLOYEE_ID}/work/9")))
        .respond_with(ResponseTemplate::new(200))
        .mount(&fakes.hibob)
        .await;
    application_with_job("Staff engineer")
        .with_priority(1)
        .mount(&fakes.pinpoint)
        .await;

    let found = app.watcher.check(export).await.expect("check");
    assert_eq!(found.changes.len(), 1, "{found:?}");
    assert_eq!(found.changes[0].route, Route::WorkEntry);
    let operator = app.user_with_role("operator").await;
    app.call_json(&operator, "update_hibob", &[("id", &export.to_string())])
        .await;
    let written = calls_to(&fakes.hibob, "PUT", "/work/9").await;
    assert_eq!(written.len(), 1, "{written:?}");
    let entry = &written[0];
    assert_eq!(entry["title"], "Staff engineer");
    // the rest of the entry goes back as it was, or HiBob would clear it
    assert_eq!(
        (
            &entry["effectiveDate"],
            &entry["site"],
            &entry["siteId"],
            &entry["department"]
        ),
        (
            &json!(FIRST_DAY),
            &json!("London"),
            &json!(2510068),
            &json!("R&D")
        )
    );
    assert!(
        entry.get("workChangeType").is_none(),
        "only what the update takes"
    );
    assert!(
        calls_to(&fakes.hibob, "PUT", &format!("/people/{EMPLOYEE_ID}"))
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn two_clicks_at_once_send_the_change_once() {
    let (fakes, app, export) = exported_and_watched(&[]).await;
    hibob_holds(FIRST_DAY).mount(&fakes.hibob).await;
    Mock::given(method("POST"))
        .and(path(format!("/v1/employees/{EMPLOYEE_ID}/start-date")))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_millis(300)))
        .mount(&fakes.hibob)
        .await;
    start_moves(&fakes).await;
    assert_eq!(differing(&app, export).await, 1);
    let operator = app.user_with_role("operator").await;
    let export_text = export.to_string();
    let form = [("id", export_text.as_str()), ("field", "work.startDate")];
    let (a, b) = tokio::join!(
        app.call(&operator, "update_hibob", &form),
        app.call(&operator, "update_hibob", &form)
    );
    let mut statuses = [a.status().as_u16(), b.status().as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 422], "the second finds the change settled");
    assert_eq!(calls_to(&fakes.hibob, "POST", "/start-date").await.len(), 1);
}

#[tokio::test]
async fn a_change_is_alerted_once_with_what_changed_and_a_link() {
    let slack = fakes::Slack::start().await;
    fakes::Slack::answers(200).mount(&slack.server).await;
    let hook = slack.hook();
    let (fakes, app, export) = exported_and_watched(&["--alert-webhook-url", &hook]).await;
    hibob_holds(FIRST_DAY).mount(&fakes.hibob).await;
    start_moves(&fakes).await;
    app.watcher.check(export).await.expect("check");
    // the same change found again is not news
    app.watcher.check(export).await.expect("check");
    // the start is weeks away: the change waits for the digest
    let now = Utc::now();
    assert_eq!(app.worker.alerts.dispatch(now).await.expect("dispatch"), 0);
    let later = now + chrono::Duration::hours(1);
    assert_eq!(
        app.worker.alerts.dispatch(later).await.expect("dispatch"),
        1
    );
    let texts = slack.texts().await;
    assert_eq!(texts.len(), 1, "{texts:?}");
    let text = &texts[0];
    assert!(text.contains("changed in Pinpoint"), "{text}");
    assert!(
        text.contains(&format!("{FIRST_DAY} → {MOVED_DAY}")),
        "{text}"
    );
    assert!(text.contains("Jane Doe"), "{text}");
    assert!(text.contains(&format!("/exports/{export}")), "{text}");
    assert_eq!(
        app.worker.alerts.dispatch(later).await.expect("dispatch"),
        0
    );
}

#[tokio::test]
async fn watching_ends_by_itself_after_its_last_day_and_drops_its_copies() {
    let (_fakes, app, export) = exported_and_watched(&[]).await;
    let sent = |app: &TestApp| {
        let sql = app.sql.clone();
        async move {
            sql.scalar::<Option<String>>(
                "SELECT sent_body FROM exports WHERE id = ?",
                &[export.into()],
            )
            .await
        }
    };
    assert!(
        sent(&app).await.is_some(),
        "what was sent is kept while watched"
    );
    let today = Utc::now().date_naive();
    assert_eq!(
        app.watcher.retire(today).await.expect("retire"),
        0,
        "not yet"
    );
    let after_last_day = chrono::NaiveDate::from_ymd_opt(2027, 1, 19).expect("day");
    assert_eq!(app.watcher.retire(after_last_day).await.expect("retire"), 1);
    assert_eq!(sent(&app).await, None);
    let (baseline, stopped): (Option<String>, Option<String>) = app
        .sql
        .row(
            "SELECT baseline, stopped_at FROM hire_watches WHERE export_id = ?",
            &[export.into()],
        )
        .await;
    assert!(baseline.is_none() && stopped.is_some());
    let refused = app.watcher.check(export).await.expect_err("ended");
    assert!(refused.to_string().contains("ended"), "{refused}");
}

#[tokio::test]
async fn erasing_a_watched_candidate_ends_the_watch_with_everything_it_kept() {
    let slack = fakes::Slack::start().await;
    fakes::Slack::answers(200).mount(&slack.server).await;
    let hook = slack.hook();
    let (fakes, app, export) = exported_and_watched(&["--alert-webhook-url", &hook]).await;
    hibob_holds(FIRST_DAY).mount(&fakes.hibob).await;
    start_moves(&fakes).await;
    assert_eq!(differing(&app, export).await, 1);
    // another hire's change alert that quotes her address
    app.sql
        .execute(
            "INSERT INTO exports (source, idempotency_key, pinpoint_application_id, status)
         VALUES ('webhook', 'webhook:other', '999', 'succeeded')",
            &[],
        )
        .await;
    app.sql
        .execute(
            "INSERT INTO alerts (kind, export_id, created_at, next_try_at, detail)
         SELECT 'changed', id, '2026-12-07T00:00:00.000Z', '2026-12-07T00:00:00.000Z',
                'Email jane.doe@example.com → j.doe@example.com'
         FROM exports WHERE idempotency_key = 'webhook:other'",
            &[],
        )
        .await;
    let admin = app.admin().await;
    let export_text = export.to_string();
    app.call_json(
        &admin,
        "erase_candidate",
        &[("id", export_text.as_str()), ("confirmation", "ERASE")],
    )
    .await;
    assert_eq!(app.scalar("SELECT COUNT(*) FROM hire_watches").await, 0);
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM exports WHERE sent_body IS NOT NULL")
            .await,
        0
    );
    let hers = format!("SELECT COUNT(*) FROM alerts WHERE export_id = {export}");
    assert_eq!(
        app.scalar(&hers).await,
        0,
        "the queued change alert named her"
    );
    let quoting = "SELECT COUNT(*) FROM alerts WHERE detail LIKE '%jane.doe@example.com%'";
    assert_eq!(
        app.scalar(quoting).await,
        0,
        "another alert quoting her is scrubbed"
    );
    let viewer = app.user_with_role("viewer").await;
    let shown = app
        .call_json(&viewer, "export_watch", &[("id", &export_text)])
        .await;
    assert_eq!(shown, Value::Null);
}

/// A Send to HiBob export is watched too. What the recruiter chose on the form is theirs: the
/// first check takes the mapping's own rendering as the baseline, so only a later change in
/// Pinpoint is raised, beside the value the form sent.
#[tokio::test]
async fn a_send_to_hibob_export_is_watched_from_what_the_mapping_made_at_its_first_check() {
    let fakes = Fakes::start().await;
    application(FIRST_DAY, json!({}))
        .mount(&fakes.pinpoint)
        .await;
    fakes.every_hire_succeeds().await;
    fakes::named_lists(crate::plugin::named_lists())
        .mount(&fakes.hibob)
        .await;
    let app = fakes
        .app_with(&["--plugin-token", crate::plugin::TOKEN])
        .await;
    let chosen = "2027-01-05";
    let mut body = crate::plugin::form(&[
        ("firstName", json!("Jane")),
        ("lastName", json!("Doe")),
        ("email", json!("jane.doe@example.com")),
        ("startDate", json!(chosen)),
        ("site", json!("London")),
    ]);
    body["applicationId"] = json!(APPLICATION.to_string());
    let (status, answer) = crate::plugin::call(&app, "/export-candidate/submit", body).await;
    assert_eq!(
        (status, &answer["success"]),
        (200, &json!(true)),
        "{answer}"
    );
    assert_eq!(app.watcher.adopt(Utc::now()).await.expect("adopt"), 1);
    let export: i64 = app.scalar("SELECT export_id FROM hire_watches").await;
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM hire_watches WHERE baseline IS NULL")
            .await,
        1
    );
    hibob_holds(chosen).mount(&fakes.hibob).await;

    let first = app.watcher.check(export).await.expect("check");
    assert!(
        first.changes.is_empty(),
        "the recruiter's own choice is not a change: {first:?}"
    );
    start_moves(&fakes).await;
    let later = app.watcher.check(export).await.expect("check");
    assert_eq!(later.changes.len(), 1, "{later:?}");
    let change = &later.changes[0];
    assert_eq!(
        (change.sent.as_str(), change.pinpoint.as_str()),
        (chosen, MOVED_DAY)
    );
    assert!(
        change.safe_to_apply(),
        "HiBob still holds what the form sent"
    );
}

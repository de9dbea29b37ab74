//! Personal data over the real router: erasing a candidate who came through Pinpoint's form
//! touches nobody else and leaves none of their bytes in the database, and they can be sent again
//! (and erased again) afterwards.

use serde_json::{json, Value};
use wiremock::{MockServer, ResponseTemplate};

use crate::{
    common::{fakes, TestApp},
    logs::holds,
    plugin::{app_with, call, form, named_lists, TOKEN},
};

const ERIN: &str = "erin.quarry@example.com";
const BOB: &str = "bob.stone@example.com";

/// A HiBob that knows nobody and creates everyone, after refusing the first `failures` creates.
async fn hibob(failures: u64) -> MockServer {
    let server = MockServer::start().await;
    fakes::named_lists(named_lists()).mount(&server).await;
    fakes::search_finds_nobody().mount(&server).await;
    if failures > 0 {
        fakes::create(ResponseTemplate::new(500).set_body_json(json!({"error": "Internal error"})))
            .up_to_n_times(failures)
            .with_priority(1)
            .mount(&server)
            .await;
    }
    fakes::create(fakes::created()).mount(&server).await;
    server
}

async fn console(hibob: &MockServer) -> TestApp {
    app_with(&format!("{}/v1", hibob.uri()), Some(TOKEN)).await
}

/// Pinpoint's form sent for one person, for `application` or (like a form opened outside an
/// application) for none.
async fn submit(
    app: &TestApp,
    first: &str,
    last: &str,
    email: &str,
    application: Option<&str>,
) -> Value {
    let mut body = form(&[
        ("firstName", json!(first)),
        ("lastName", json!(last)),
        ("email", json!(email)),
        ("startDate", json!("2026-03-02")),
        ("site", json!("London")),
    ]);
    if let Some(application) = application {
        body["applicationId"] = json!(application);
    }
    let (status, answer) = call(app, "/export-candidate/submit", body).await;
    assert_eq!(status, 200, "{answer}");
    answer
}

async fn export_of(app: &TestApp, email: &str) -> i64 {
    app.sql
        .scalar(
            "SELECT id FROM exports WHERE candidate_email = ?",
            &[email.into()],
        )
        .await
}

async fn erase(app: &TestApp, admin: &reqwest::Client, id: i64) -> u16 {
    let id = id.to_string();
    app.call(
        admin,
        "erase_candidate",
        &[("id", id.as_str()), ("confirmation", "ERASE")],
    )
    .await
    .status()
    .as_u16()
}

/// Two submits that named no application store the same empty application id: erasing Erin's
/// export must not erase Bob's.
#[tokio::test]
async fn erasing_a_submit_without_an_application_leaves_other_candidates_alone() {
    let hibob = hibob(0).await;
    let app = console(&hibob).await;
    for (first, last, email) in [("Erin", "Quarry", ERIN), ("Bob", "Stone", BOB)] {
        let answer = submit(&app, first, last, email, None).await;
        assert_eq!(answer["success"], true, "{answer}");
    }
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM exports WHERE pinpoint_application_id = ''")
            .await,
        2,
        "both submits named no application"
    );
    let erin = export_of(&app, ERIN).await;
    let admin = app.admin().await;
    assert_eq!(erase(&app, &admin, erin).await, 200);

    let bob: (Option<String>, Option<String>, Option<String>, String) = app
        .sql
        .row(
            "SELECT candidate_name, candidate_email, erased_at, status FROM exports
         WHERE idempotency_key = ?",
            &[format!("plugin:{BOB}").into()],
        )
        .await;
    assert_eq!(
        bob,
        (
            Some("Bob Stone".to_owned()),
            Some(BOB.to_owned()),
            None,
            "succeeded".to_owned()
        )
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM exports WHERE erased_at IS NOT NULL")
            .await,
        1,
        "only Erin's export"
    );
    let erased: Vec<i64> = app
        .sql
        .scalars("SELECT id FROM exports WHERE erased_at IS NOT NULL", &[])
        .await;
    assert_eq!(erased, vec![erin]);
}

/// A failed submit, resolved by an operator with a note naming her, then erased: neither her
/// e-mail nor her name is anywhere in the database file or its WAL, the key included. Sent again
/// from Pinpoint's form she gets a new export (the erased one stays erased and empty), which can
/// be erased in turn.
#[tokio::test]
async fn an_erased_plugin_candidate_leaves_no_bytes_and_a_new_submit_starts_a_new_export() {
    let hibob = hibob(1).await;
    let app = console(&hibob).await;
    let failed = submit(&app, "Erin", "Quarry", ERIN, Some("app-51")).await;
    assert_eq!(failed["success"], false, "{failed}");
    let first = export_of(&app, ERIN).await;
    let operator = app.user_with_role("operator").await;
    let note = format!("Erin Quarry ({ERIN}) was added in HiBob by hand");
    let id = first.to_string();
    let res = app
        .call(&operator, "resolve_export", &[("id", &id), ("note", &note)])
        .await;
    assert_eq!(res.status(), 200);

    let traces = [ERIN, "Quarry"];
    let before = app.stored_bytes().await;
    for t in traces {
        assert!(
            holds(&before, t),
            "the test needs {t:?} stored to begin with"
        );
    }
    let admin = app.admin().await;
    assert_eq!(erase(&app, &admin, first).await, 200);
    let after = app.stored_bytes().await;
    for t in traces {
        assert!(!holds(&after, t), "{t:?} is still in the database file");
    }

    let again = submit(&app, "Erin", "Quarry", ERIN, Some("app-51")).await;
    assert_eq!(again["success"], true, "{again}");
    let rows: Vec<(i64, String, Option<String>, Option<String>)> = app
        .sql
        .rows(
            "SELECT id, idempotency_key, candidate_email, erased_at FROM exports ORDER BY id",
            &[],
        )
        .await;
    assert_eq!(rows.len(), 2, "a new export: {rows:?}");
    assert_eq!(rows[0].0, first);
    assert!(!rows[0].1.contains('@'), "{rows:?}");
    assert_eq!(rows[0].2, None, "the erased export stays empty");
    assert!(rows[0].3.is_some());
    assert_eq!(rows[1].1, format!("plugin:{ERIN}"));
    assert_eq!(rows[1].2.as_deref(), Some(ERIN));
    assert_eq!(rows[1].3, None);

    assert_eq!(erase(&app, &admin, rows[1].0).await, 200);
    let after = app.stored_bytes().await;
    for t in traces {
        assert!(!holds(&after, t), "{t:?} is back in the database file");
    }
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM exports WHERE erased_at IS NULL")
            .await,
        0
    );
}

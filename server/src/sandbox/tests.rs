//! The simulators driven by the real HiBob and Pinpoint clients, over real HTTP.

use std::time::Duration;

use integration::{
    hibob::{self, DocFolder, HibobError},
    outbound::CallLog,
    pinpoint::{self, PinpointError},
};
use secrecy::SecretString;
use serde_json::{json, Value};

use super::*;

async fn sims() -> Simulators {
    start(
        "127.0.0.1:0".parse().unwrap(),
        SandboxCredentials::generate(),
    )
    .await
    .unwrap()
}

fn hibob_client(s: &Simulators) -> hibob::Client {
    hibob::Client::new(
        &s.hibob_base_url,
        &s.credentials.hibob_service_user_id,
        SecretString::from(s.credentials.hibob_token.clone()),
    )
    .unwrap()
}

fn pinpoint_client(s: &Simulators) -> pinpoint::Client {
    pinpoint::Client::new(
        &s.pinpoint_base_url,
        SecretString::from(s.credentials.pinpoint_api_key.clone()),
    )
    .unwrap()
}

fn person(email: &str) -> Value {
    json!({
        "firstName": "Grace",
        "surname": "Hopper",
        "email": email,
        "work": {"site": "London", "startDate": "2026-02-02"}
    })
}

fn with(mut body: Value, pointer: &str, value: Value) -> Value {
    if let Some(slot) = body.pointer_mut(pointer) {
        *slot = value;
    }
    body
}

#[tokio::test]
async fn connection_checks_pass_and_wrong_credentials_are_refused() {
    let s = sims().await;
    let check = hibob_client(&s).check_connection().await;
    assert!(check.ok, "{check:?}");
    let check = pinpoint_client(&s).check_connection().await;
    assert!(check.ok, "{check:?}");

    let wrong = hibob::Client::new(
        &s.hibob_base_url,
        &s.credentials.hibob_service_user_id,
        SecretString::from("not-the-token".to_owned()),
    )
    .unwrap();
    let check = wrong.check_connection().await;
    assert!(!check.ok);
    assert_eq!(check.http_status, Some(401));
    let err = wrong
        .create_employee(&person("a@example.com"), &mut CallLog::new())
        .await
        .unwrap_err();
    assert!(
        matches!(err, HibobError::Unauthorized { status: 401, .. }),
        "{err:?}"
    );
    assert_eq!(s.state.create_calls(), 0);
    // a 401 still carries the rate-limit headers, as observed on HiBob
    assert!(wrong.rate_limit().and_then(|r| r.limit).is_some());

    let wrong =
        pinpoint::Client::new(&s.pinpoint_base_url, SecretString::from("nope".to_owned())).unwrap();
    assert_eq!(wrong.check_connection().await.http_status, Some(401));
    let err = wrong
        .get_application("1", &mut CallLog::new())
        .await
        .unwrap_err();
    assert_eq!(
        err,
        PinpointError::Unauthorized {
            status: 401,
            message: "Unauthorized: Invalid API key".into()
        }
    );

    // 401 bodies are empty, like HiBob's
    let raw = reqwest::Client::new()
        .get(format!("{}/company/people/fields", s.hibob_base_url))
        .basic_auth("someone", Some("else"))
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 401);
    assert!(raw.headers().contains_key("x-ratelimit-reset"));
    assert!(raw.bytes().await.unwrap().is_empty());
    s.shutdown().await;
}

#[tokio::test]
async fn create_then_search_then_duplicate() {
    let s = sims().await;
    let c = hibob_client(&s);
    let mut log = CallLog::new();
    let id = c
        .create_employee(&person("Grace.Hopper@Example.com"), &mut log)
        .await
        .unwrap();
    assert_eq!(id.len(), 19, "{id}");
    assert!(id.bytes().all(|b| b.is_ascii_digit()));
    assert_eq!(log.last().unwrap().status, Some(200));

    let found = c
        .search_by_email("grace.hopper@example.com", &mut log)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, id);
    assert_eq!(found.email.as_deref(), Some("Grace.Hopper@Example.com"));
    assert_eq!(found.display_name.as_deref(), Some("Grace Hopper"));
    assert!(c
        .search_by_email("nobody@example.com", &mut log)
        .await
        .unwrap()
        .is_none());

    let err = c
        .create_employee(&person("grace.hopper@EXAMPLE.com"), &mut log)
        .await
        .unwrap_err();
    assert!(err.is_email_taken(), "{err:?}");
    assert_eq!(err.field(), Some("email"));
    assert!(!err.is_retryable());

    assert_eq!(
        s.state
            .employee_count_with_email("GRACE.HOPPER@example.com"),
        1
    );
    assert_eq!(s.state.create_calls(), 2);
    let stored = s.state.employees();
    assert_eq!(stored.len(), 1);
    assert_eq!(
        (
            stored[0].id.as_str(),
            stored[0].first_name.as_str(),
            stored[0].surname.as_str(),
            stored[0].site.as_str(),
            stored[0].start_date.as_str()
        ),
        (id.as_str(), "Grace", "Hopper", "London", "2026-02-02")
    );
    s.shutdown().await;
}

#[tokio::test]
async fn invalid_fields_are_rejected_with_the_field_named() {
    let s = sims().await;
    let c = hibob_client(&s);
    let mut log = CallLog::new();
    let base = person("ada@example.com");
    let cases = [
        (
            with(base.clone(), "/work/site", json!("Londn")),
            "work.site",
        ),
        (
            with(base.clone(), "/work/site", json!("Old office")),
            "work.site",
        ),
        (with(base.clone(), "/work/site", json!("")), "work.site"),
        (
            with(base.clone(), "/work/startDate", json!("02/02/2026")),
            "work.startDate",
        ),
        (
            with(base.clone(), "/work/startDate", json!("2026-02-31")),
            "work.startDate",
        ),
        (with(base.clone(), "/surname", json!(" ")), "surname"),
        (
            with(base.clone(), "/firstName", json!("R2-D2")),
            "firstName",
        ),
        (
            with(base.clone(), "/email", json!("ada.example.com")),
            "email",
        ),
        (
            json!({"firstName": "Ada", "surname": "L", "email": "ada@example.com"}),
            "work.site",
        ),
        (
            with(
                base.clone(),
                "/work",
                json!({"site": "London", "startDate": "2026-02-02", "department": "Catering"}),
            ),
            "work.department",
        ),
    ];
    for (body, field) in cases {
        let err = c.create_employee(&body, &mut log).await.unwrap_err();
        assert!(
            matches!(&err, HibobError::Rejected { status: 400, .. }),
            "{body} → {err:?}"
        );
        assert_eq!(err.field(), Some(field), "{body} → {err:?}");
    }
    assert!(s.state.employees().is_empty());

    // a site by id, and list fields by id or name, are accepted
    let ok = with(
        base,
        "/work",
        json!({"site": "2510072", "startDate": "2026-02-02", "department": "Engineering",
               "title": "209834711"}),
    );
    let id = c.create_employee(&ok, &mut log).await.unwrap();
    assert_eq!(s.state.employee(&id).unwrap().site, "Berlin");

    // malformed JSON is a 400 with a message, not a field
    let raw = reqwest::Client::new()
        .post(format!("{}/people", s.hibob_base_url))
        .basic_auth(
            &s.credentials.hibob_service_user_id,
            Some(&s.credentials.hibob_token),
        )
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 400);
    let body: Value = raw.json().await.unwrap();
    assert_eq!(body["key"], "validations.request.invalid");
    s.shutdown().await;
}

#[tokio::test]
async fn documents_upload_from_a_url_and_as_a_file() {
    let s = sims().await;
    let c = hibob_client(&s);
    let mut log = CallLog::new();
    let id = c
        .create_employee(&person("docs@example.com"), &mut log)
        .await
        .unwrap();
    let cv_url = s.cv_url("884321");
    c.upload_document_from_url(
        &id,
        DocFolder::Shared,
        "Grace_Hopper_CV.pdf",
        &cv_url,
        &mut log,
    )
    .await
    .unwrap();
    let pdf = samples::cv_pdf("Grace Hopper", "Backend Engineer");
    c.upload_document_file(
        &id,
        DocFolder::Confidential,
        "Offer letter.pdf",
        pdf.clone(),
        "application/pdf",
        &mut log,
    )
    .await
    .unwrap();
    assert_eq!(
        s.state.documents_of(&id),
        vec![
            "Grace_Hopper_CV.pdf".to_owned(),
            "Offer letter.pdf".to_owned()
        ]
    );

    // the listing HiBob documents, with working links
    let http = reqwest::Client::new();
    let listing: Value = http
        .get(format!("{}/docs/people/{id}", s.hibob_base_url))
        .basic_auth(
            &s.credentials.hibob_service_user_id,
            Some(&s.credentials.hibob_token),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let docs = listing["documents"].as_array().unwrap();
    assert_eq!(docs.len(), 2);
    assert_eq!(docs[0]["documentName"], "Grace_Hopper_CV.pdf");
    assert_eq!(docs[0]["downloadLink"], cv_url.as_str());
    let link = docs[1]["downloadLink"].as_str().unwrap();
    let fetched = http.get(link).send().await.unwrap();
    assert_eq!(fetched.headers()["content-type"], "application/pdf");
    assert_eq!(fetched.bytes().await.unwrap().to_vec(), pdf);

    let err = c
        .upload_document_from_url(
            &id,
            DocFolder::Shared,
            "x.pdf",
            "ftp://files/x.pdf",
            &mut log,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, HibobError::Rejected { status: 400, .. }),
        "{err:?}"
    );
    let err = c
        .upload_document_from_url(
            "1234567890123456789",
            DocFolder::Shared,
            "x.pdf",
            &cv_url,
            &mut log,
        )
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
    let err = c
        .upload_document_file(
            "1234567890123456789",
            DocFolder::Shared,
            "x.pdf",
            vec![1, 2, 3],
            "application/pdf",
            &mut log,
        )
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
    assert_eq!(s.state.documents().len(), 2);
    s.shutdown().await;
}

#[tokio::test]
async fn metadata_parses_with_the_real_client() {
    let s = sims().await;
    let c = hibob_client(&s);
    let mut log = CallLog::new();
    let fields = c.people_fields(&mut log).await.unwrap();
    let site = fields.iter().find(|f| f.id == "work.site").unwrap();
    assert_eq!(site.list_name.as_deref(), Some("site"));
    assert!(site.is_list && site.historical);
    assert_eq!(site.category_name.as_deref(), Some("Work"));
    let start = fields.iter().find(|f| f.id == "work.startDate").unwrap();
    assert_eq!(start.field_type, "date");
    for id in [
        "root.firstName",
        "root.surname",
        "root.email",
        "work.department",
        "work.title",
        "payroll.employment.type",
    ] {
        assert!(fields.iter().any(|f| f.id == id), "{id}");
    }
    let first = fields.iter().find(|f| f.id == "root.firstName").unwrap();
    assert_eq!(first.json_path, "firstName");

    let lists = c.named_lists(&mut log).await.unwrap();
    let sites = lists.iter().find(|l| l.name == "site").unwrap();
    assert_eq!(sites.find("London").map(|i| i.id.as_str()), Some("2510068"));
    assert!(sites.find("Old office").is_some_and(|i| i.archived));
    // every list a field names exists
    for f in fields.iter().filter_map(|f| f.list_name.as_deref()) {
        assert!(lists.iter().any(|l| l.name == f), "{f}");
        c.named_list(f, &mut log).await.unwrap();
    }
    let title = c.named_list("title", &mut log).await.unwrap();
    assert!(title.find("Backend Engineer").is_some());
    let err = c.named_list("nope", &mut log).await.unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
    s.shutdown().await;
}

#[tokio::test]
async fn injected_server_errors_then_success() {
    let s = sims().await;
    let c = hibob_client(&s);
    let mut log = CallLog::new();
    s.state.fail_next_creates(2, 500);
    for _ in 0..2 {
        let err = c
            .create_employee(&person("retry@example.com"), &mut log)
            .await
            .unwrap_err();
        assert!(
            matches!(err, HibobError::Server { status: 500, .. }),
            "{err:?}"
        );
        assert!(err.is_retryable());
        assert_eq!(err.field(), None);
    }
    assert!(s.state.employees().is_empty());
    c.create_employee(&person("retry@example.com"), &mut log)
        .await
        .unwrap();
    assert_eq!(s.state.employee_count_with_email("retry@example.com"), 1);
    assert_eq!(s.state.create_calls(), 3);
    s.shutdown().await;
}

#[tokio::test]
async fn a_lost_answer_leaves_the_employee_behind() {
    let s = sims().await;
    let mut log = CallLog::new();
    // the client gives up while the simulator is still "working"
    s.state.set_create_delay(Duration::from_secs(2));
    let impatient = hibob_client(&s)
        .with_timeout(Duration::from_millis(300))
        .unwrap();
    let err = impatient
        .create_employee(&person("lost@example.com"), &mut log)
        .await
        .unwrap_err();
    assert_eq!(err, HibobError::Timeout);
    assert_eq!(s.state.employee_count_with_email("lost@example.com"), 1);
    s.state.set_create_delay(Duration::ZERO);

    // or the simulator stores it and answers 502 anyway
    s.state.fail_next_creates_after_store(1, 502);
    let c = hibob_client(&s);
    let err = c
        .create_employee(&person("twice@example.com"), &mut log)
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert_eq!(s.state.employee_count_with_email("twice@example.com"), 1);

    // either way the retry sees the duplicate and the search resolves it
    for email in ["lost@example.com", "twice@example.com"] {
        let err = c
            .create_employee(&person(email), &mut log)
            .await
            .unwrap_err();
        assert!(err.is_email_taken(), "{err:?}");
        let found = c.search_by_email(email, &mut log).await.unwrap().unwrap();
        assert_eq!(
            Some(found.id),
            s.state
                .employees()
                .into_iter()
                .find(|e| e.email == email)
                .map(|e| e.id)
        );
    }
    assert_eq!(s.state.employees().len(), 2);
    s.shutdown().await;
}

#[tokio::test]
async fn concurrent_duplicates_store_one_employee() {
    let s = sims().await;
    let c = hibob_client(&s);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move {
                c.create_employee(&person("race@example.com"), &mut CallLog::new())
                    .await
            })
        })
        .collect();
    let mut created = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => created += 1,
            Err(e) => assert!(e.is_email_taken(), "{e:?}"),
        }
    }
    assert_eq!(created, 1);
    assert_eq!(s.state.employee_count_with_email("race@example.com"), 1);
    s.shutdown().await;
}

#[tokio::test]
async fn rate_limits_answer_429_with_the_wait() {
    let s = sims().await;
    let c = hibob_client(&s);
    let mut log = CallLog::new();
    s.state.rate_limit_next(1, 2);
    let err = c
        .create_employee(&person("slow@example.com"), &mut log)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        HibobError::RateLimited {
            wait: Duration::from_secs(2)
        }
    );
    let seen = c.rate_limit().unwrap();
    assert_eq!(seen.remaining, Some(0));
    assert_eq!(seen.retry_after_secs, Some(2));
    assert!(s.state.employees().is_empty());
    // the client waits out the two seconds before it asks again
    c.create_employee(&person("slow@example.com"), &mut log)
        .await
        .unwrap();
    let seen = c.rate_limit().unwrap();
    assert_eq!(seen.limit, Some(100));
    assert_eq!(seen.remaining, Some(99));

    // the ordinary per-minute window runs out too, and the client sees it spent without asking
    s.state.set_rate_limit_per_minute(Some(2));
    c.people_fields(&mut log).await.unwrap();
    c.people_fields(&mut log).await.unwrap();
    let err = c.people_fields(&mut log).await.unwrap_err();
    let wait = err.retry_after().unwrap();
    assert!(
        wait >= Duration::from_secs(1) && wait <= Duration::from_secs(60),
        "{wait:?}"
    );
    // other endpoints have their own window
    c.named_list("site", &mut log).await.unwrap();
    s.shutdown().await;
}

#[tokio::test]
async fn applications_parse_with_cv_and_offer_start_date() {
    let s = sims().await;
    let p = pinpoint_client(&s);
    let mut log = CallLog::new();
    let app = p.get_application("884321", &mut log).await.unwrap();
    let (first, last) = samples::candidate_names(884_321);
    assert_eq!(app.id, "884321");
    assert_eq!(app.first_name.as_deref(), Some(first));
    assert_eq!(app.last_name.as_deref(), Some(last));
    assert_eq!(
        app.email,
        Some(format!("{first}.{last}+884321@example.com").to_lowercase())
    );
    assert!(app.phone.is_some());
    let cv = app.cv().unwrap();
    assert_eq!(cv.context.as_deref(), Some("pdf_cv"));
    assert_eq!(
        cv.filename.as_deref(),
        Some(format!("{first}_{last}_CV.pdf").as_str())
    );
    assert_eq!(cv.url, s.cv_url("884321"));
    let job = app.job.as_ref().unwrap();
    assert!(job.title.is_some());
    assert_eq!(app.offers.len(), 1);
    let start = app.offers[0].start_date.as_deref().unwrap();
    let start = chrono::NaiveDate::parse_from_str(start, "%Y-%m-%d").unwrap();
    assert!(start > chrono::Utc::now().date_naive());
    // deterministic
    assert_eq!(
        p.get_application("884321", &mut log).await.unwrap().email,
        app.email
    );

    // the CV link needs no key and is a real PDF
    let file = reqwest::get(&cv.url).await.unwrap();
    assert_eq!(file.status(), 200);
    assert_eq!(file.headers()["content-type"], "application/pdf");
    let bytes = file.bytes().await.unwrap();
    assert!(bytes.starts_with(b"%PDF-1.4"));

    // a registered application, here without a last name or CV
    s.state.put_application(
        "no-surname",
        json!({"first_name": "Cher", "email": "cher@example.com"}),
    );
    let odd = p.get_application("no-surname", &mut log).await.unwrap();
    assert_eq!(odd.first_name.as_deref(), Some("Cher"));
    assert_eq!(odd.last_name, None);
    assert!(odd.cv().is_none());
    assert!(!odd.offers.is_empty());

    let err = p.get_application("abc", &mut log).await.unwrap_err();
    assert!(matches!(err, PinpointError::NotFound { .. }), "{err:?}");

    s.state.fail_next_pinpoint(1, 503);
    let err = p.get_application("1", &mut log).await.unwrap_err();
    assert!(
        matches!(err, PinpointError::Server { status: 503, .. }),
        "{err:?}"
    );
    s.shutdown().await;
}

#[tokio::test]
async fn comments_are_stored() {
    let s = sims().await;
    let p = pinpoint_client(&s);
    let mut log = CallLog::new();
    let text = "Exported to HiBob, employee ID 3332883884017713238";
    let id = p.post_comment("884321", text, &mut log).await.unwrap();
    assert!(id.parse::<u64>().is_ok(), "{id}");
    assert_eq!(log.last().unwrap().status, Some(201));
    let second = p.post_comment("884321", "again", &mut log).await.unwrap();
    assert_ne!(id, second);
    assert_eq!(
        s.state.comments_on("884321"),
        vec![text.to_owned(), "again".to_owned()]
    );
    assert!(s.state.comments_on("1").is_empty());

    let err = p.post_comment("884321", "  ", &mut log).await.unwrap_err();
    assert!(
        matches!(err, PinpointError::Rejected { status: 422, .. }),
        "{err:?}"
    );
    let err = p.post_comment("unknown", "hi", &mut log).await.unwrap_err();
    assert!(matches!(err, PinpointError::NotFound { .. }), "{err:?}");
    assert_eq!(s.state.comments().len(), 2);
    s.shutdown().await;
}

#[tokio::test]
async fn jobs_are_listed_as_json_api() {
    let s = sims().await;
    let page: Value = reqwest::Client::new()
        .get(format!(
            "{}/jobs?page[size]=2&page[number]=2",
            s.pinpoint_base_url
        ))
        .header("x-api-key", &s.credentials.pinpoint_api_key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let data = page["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(data[0]["type"], "jobs");
    assert!(data[0]["attributes"]["title"].is_string());
    s.shutdown().await;
}

#[tokio::test]
async fn the_router_serves_on_a_callers_listener_and_shutdown_stops_start() {
    let creds = SandboxCredentials::generate();
    let state = SimState::new(creds.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        axum::serve(listener, router(state)).await.unwrap();
    });
    let p = pinpoint::Client::new(
        &format!("http://{addr}/pinpoint/api/v1"),
        SecretString::from(creds.pinpoint_api_key.clone()),
    )
    .unwrap();
    let app = p.get_application("7", &mut CallLog::new()).await.unwrap();
    // without a configured base, links follow the Host the client used
    assert_eq!(
        app.cv().unwrap().url,
        format!("http://{addr}/pinpoint/files/7/cv.pdf")
    );
    server.abort();

    let s = sims().await;
    let base = s.hibob_base_url.clone();
    let client = hibob_client(&s);
    assert!(client.check_connection().await.ok);
    s.shutdown().await;
    let fresh = hibob::Client::new(&base, "x", SecretString::from("y".to_owned())).unwrap();
    assert!(!fresh.check_connection().await.ok);
}

#[test]
fn credentials_are_random_and_never_printed() {
    let a = SandboxCredentials::generate();
    let b = SandboxCredentials::generate();
    assert_ne!(a, b);
    let shown = format!("{a:?}");
    for secret in [
        &a.hibob_service_user_id,
        &a.hibob_token,
        &a.pinpoint_api_key,
    ] {
        assert!(!shown.contains(secret.as_str()), "{shown}");
    }
    assert!(constant_time_eq(b"abc", b"abc"));
    assert!(!constant_time_eq(b"abc", b"abd"));
    assert!(!constant_time_eq(b"abc", b"ab"));
}

#[tokio::test]
async fn welcome_wizards_are_listed_and_invitations_checked() {
    let s = sims().await;
    let c = hibob_client(&s);
    let mut log = CallLog::new();
    let wizards = c.wizards(&mut log).await.unwrap();
    assert_eq!(wizards.first(), Some(&(1, "New starter".to_owned())));
    let id = c
        .create_employee(&person("ada@example.com"), &mut log)
        .await
        .unwrap();
    c.invite(&id, 1, &mut log).await.unwrap();
    let unknown = c.invite(&id, 99, &mut log).await.unwrap_err();
    assert!(
        unknown.to_string().contains("no welcome wizard 99"),
        "{unknown}"
    );
    assert!(c.invite("1234", 1, &mut log).await.is_err());
}

#[tokio::test]
async fn an_employee_is_read_back_and_changed_after_creation_as_hibob_documents() {
    let s = sims().await;
    let client = hibob_client(&s);
    let mut log = CallLog::new();
    let mut body = person("grace@example.com");
    body["work"]["title"] = json!("Backend Engineer");
    let id = client.create_employee(&body, &mut log).await.unwrap();
    let fields = ["root.surname".to_owned(), "work.startDate".to_owned()];
    let read = client.read_employee(&id, &fields, &mut log).await.unwrap();
    assert_eq!(
        read.as_ref().map(|e| e["surname"].clone()),
        Some(json!("Hopper"))
    );
    assert_eq!(
        client
            .read_employee("404", &fields, &mut log)
            .await
            .unwrap(),
        None
    );

    client
        .update_employee(&id, &json!({"surname": "Hopper-Murray"}), &mut log)
        .await
        .unwrap();
    // the same values again change nothing: HiBob's 304, which counts as done
    client
        .update_employee(&id, &json!({"surname": "Hopper-Murray"}), &mut log)
        .await
        .unwrap();
    client
        .set_start_date(&id, "2026-03-02", "moved", &mut log)
        .await
        .unwrap();
    let entries = client.work_entries(&id, &mut log).await.unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["effectiveDate"], "2026-03-02");
    assert_eq!(entries[0]["title"], "Backend Engineer");
    let mut entry = entries[0].clone();
    entry["title"] = json!("Engineering Manager");
    client
        .update_work_entry(&id, 1, &entry, &mut log)
        .await
        .unwrap();
    let mut unknown = entries[0].clone();
    unknown["title"] = json!("Astronaut");
    let refused = client
        .update_work_entry(&id, 1, &unknown, &mut log)
        .await
        .unwrap_err();
    assert!(
        matches!(refused, HibobError::Rejected { status: 400, .. }),
        "{refused:?}"
    );
    let refused = client
        .update_work_entry(&id, 1, &json!({"title": "x"}), &mut log)
        .await
        .unwrap_err();
    assert!(
        matches!(refused, HibobError::Rejected { status: 400, .. }),
        "{refused:?}"
    );

    let employee = s.state.employee(&id).unwrap();
    assert_eq!(employee.surname, "Hopper-Murray");
    assert_eq!(employee.start_date, "2026-03-02");
    assert_eq!(employee.body["work"]["title"], "Engineering Manager");
}

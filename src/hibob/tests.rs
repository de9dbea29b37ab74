use std::time::Duration;

use base64::Engine as _;
use serde_json::json;
use wiremock::{
    matchers::{body_json, header, method, path, query_param},
    Mock, MockServer, Request, ResponseTemplate,
};

use super::*;

const USER: &str = "SERVICE-1";
const TOKEN: &str = "tok-very-secret-42";

fn client(server: &MockServer) -> Client {
    Client::new(
        &format!("{}/v1/", server.uri()),
        USER,
        SecretString::from(TOKEN.to_owned()),
    )
    .unwrap()
}

fn basic() -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{TOKEN}"));
    format!("Basic {encoded}")
}

/// The log must never hold the credentials, in any spelling.
fn assert_no_secrets(log: &CallLog) {
    let text = serde_json::to_string(log).unwrap();
    assert!(!text.contains(TOKEN), "{text}");
    assert!(!text.contains(&basic()[6..]), "{text}");
    assert!(!text.contains("Basic "), "{text}");
    assert!(
        !text.to_ascii_lowercase().contains("authorization"),
        "{text}"
    );
}

fn create_body() -> Value {
    json!({
        "firstName": "Grace",
        "surname": "Hopper",
        "email": "grace.hopper@example.com",
        "work": {"site": "London", "startDate": "2026-02-02"}
    })
}

async fn create_answering(
    template: ResponseTemplate,
) -> (MockServer, Result<String, HibobError>, CallLog) {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/people"))
        .respond_with(template)
        .expect(1)
        .mount(&server)
        .await;
    let mut log = CallLog::new();
    let result = client(&server)
        .create_employee(&create_body(), &mut log)
        .await;
    (server, result, log)
}

#[test]
fn error_text_reads_hibob_shape() {
    assert_eq!(
        error_text(r#"{"key":"validations.email.alreadyexists","error":"Email exists"}"#)
            .as_deref(),
        Some("Email exists (validations.email.alreadyexists)")
    );
    assert_eq!(error_text("<html>"), None);
}

#[tokio::test]
async fn check_sends_basic_auth_and_reports_status() {
    let server = MockServer::start().await;
    // base64("SERVICE-1:tok")
    Mock::given(method("GET"))
        .and(path("/v1/company/people/fields"))
        .and(header("authorization", "Basic U0VSVklDRS0xOnRvaw=="))
        .respond_with(ResponseTemplate::new(200).set_body_string("[]"))
        .expect(1)
        .mount(&server)
        .await;
    let client = Client::new(
        &format!("{}/v1/", server.uri()),
        "SERVICE-1",
        SecretString::from("tok".to_owned()),
    )
    .unwrap();
    let check = client.check_connection().await;
    assert!(check.ok, "{check:?}");
    assert_eq!(check.http_status, Some(200));

    let bad = Client::new(
        &format!("{}/v1", server.uri()),
        "SERVICE-1",
        SecretString::from("wrong".to_owned()),
    )
    .unwrap();
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&server)
        .await;
    let check = bad.check_connection().await;
    assert!(!check.ok);
    assert!(check.summary.contains("401"), "{}", check.summary);
}

#[tokio::test]
async fn unreachable_host_is_explained() {
    let client = Client::new(
        "http://127.0.0.1:9/v1",
        "id",
        SecretString::from("t".to_owned()),
    )
    .unwrap();
    let check = client.check_connection().await;
    assert!(!check.ok);
    assert!(
        check.summary.contains("Could not connect"),
        "{}",
        check.summary
    );
}

#[tokio::test]
async fn create_employee_posts_the_body_and_returns_the_id() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/people"))
        .and(header("authorization", basic().as_str()))
        .and(header("accept", "application/json"))
        .and(header("content-type", "application/json"))
        .and(body_json(create_body()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "3391735226064306262",
            "firstName": "Grace",
            "companyId": 636192,
            "work": {"site": "London", "siteId": 2510068}
        })))
        .expect(1)
        .mount(&server)
        .await;
    let mut log = CallLog::new();
    let id = client(&server)
        .create_employee(&create_body(), &mut log)
        .await
        .unwrap();
    assert_eq!(id, "3391735226064306262");
    let entries = log.clone().into_vec();
    assert_eq!(entries.len(), 1);
    let ex = &entries[0];
    assert_eq!(ex.service, "HiBob");
    assert_eq!(ex.method, "POST");
    assert_eq!(ex.path, "/people");
    assert_eq!(ex.status, Some(200));
    assert_eq!(ex.request_body.as_ref(), Some(&create_body()));
    assert!(ex
        .response_body
        .as_deref()
        .unwrap()
        .contains("3391735226064306262"));
    assert_eq!(ex.error, None);
    assert_no_secrets(&log);
}

#[tokio::test]
async fn create_employee_accepts_201_and_numeric_ids() {
    // 19 digits: above 2^53, so a float parse would corrupt it
    let (_s, result, _log) = create_answering(
        ResponseTemplate::new(201)
            .set_body_raw(r#"{"id": 3391735226064306262}"#, "application/json"),
    )
    .await;
    assert_eq!(result.unwrap(), "3391735226064306262");
}

#[tokio::test]
async fn create_employee_without_id_is_a_decode_error() {
    let (_s, result, log) =
        create_answering(ResponseTemplate::new(200).set_body_json(json!({"firstName": "Grace"})))
            .await;
    let err = result.unwrap_err();
    assert!(matches!(err, HibobError::Decode(_)), "{err:?}");
    assert!(!err.is_retryable());
    assert!(log.last().unwrap().error.is_some());
}

#[tokio::test]
async fn duplicate_email_is_rejected_with_its_key_and_field() {
    let (_s, result, log) = create_answering(ResponseTemplate::new(400).set_body_json(json!({
        "key": "validations.email.alreadyexists",
        "error": "Email already exists"
    })))
    .await;
    let err = result.unwrap_err();
    assert_eq!(
        err,
        HibobError::Rejected {
            status: 400,
            key: Some("validations.email.alreadyexists".into()),
            message: "Email already exists".into(),
            field: Some("email".into()),
        }
    );
    assert!(err.is_email_taken());
    assert!(!err.is_retryable());
    let ex = log.last().unwrap();
    assert_eq!(ex.status, Some(400));
    assert!(ex
        .error
        .as_deref()
        .unwrap()
        .contains("validations.email.alreadyexists"));
    assert_no_secrets(&log);
}

#[tokio::test]
async fn invalid_site_names_work_site() {
    let (_s, result, _log) = create_answering(ResponseTemplate::new(400).set_body_json(json!({
        "key": "validations.value.invalid",
        "error": "Invalid value 'Londn' for field work.site"
    })))
    .await;
    let err = result.unwrap_err();
    assert_eq!(err.field(), Some("work.site"), "{err:?}");
    assert_eq!(err.key(), Some("validations.value.invalid"));
    assert_eq!(err.status(), Some(400));
}

#[tokio::test]
async fn unauthorized_is_not_retried() {
    let (server, result, log) = create_answering(ResponseTemplate::new(401)).await;
    let err = result.unwrap_err();
    assert!(
        matches!(err, HibobError::Unauthorized { status: 401, .. }),
        "{err:?}"
    );
    assert!(!err.is_retryable());
    assert_eq!(err.retry_after(), None);
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
    assert_eq!(log.len(), 1);
}

#[tokio::test]
async fn forbidden_carries_hibobs_text() {
    let (_s, result, _log) = create_answering(ResponseTemplate::new(403).set_body_json(json!({
        "key": "permissions.denied",
        "error": "Service user lacks permission"
    })))
    .await;
    assert_eq!(
        result.unwrap_err(),
        HibobError::Unauthorized {
            status: 403,
            message: "Service user lacks permission".into()
        }
    );
}

#[tokio::test]
async fn not_found_list_is_rejected_404() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/company/named-lists/nosuch"))
        .respond_with(ResponseTemplate::new(404))
        .expect(1)
        .mount(&server)
        .await;
    let mut log = CallLog::new();
    let err = client(&server)
        .named_list("nosuch", &mut log)
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
    assert!(!err.is_retryable());
    assert_eq!(log.last().unwrap().status, Some(404));
}

#[tokio::test]
async fn rate_limit_reset_sets_the_wait() {
    let reset = chrono::Utc::now().timestamp() + 30;
    let (server, result, _log) = create_answering(
        ResponseTemplate::new(429)
            .insert_header("X-RateLimit-Limit", "50")
            .insert_header("X-RateLimit-Remaining", "0")
            .insert_header("X-RateLimit-Reset", reset.to_string().as_str()),
    )
    .await;
    let err = result.unwrap_err();
    assert!(err.is_retryable());
    let wait = err.retry_after().unwrap();
    assert!((28..=30).contains(&wait.as_secs()), "{wait:?}");
    drop(server);
}

#[tokio::test]
async fn rate_limit_is_remembered_across_clones() {
    let server = MockServer::start().await;
    let reset = chrono::Utc::now().timestamp() + 40;
    Mock::given(method("GET"))
        .and(path("/v1/company/people/fields"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!([]))
                .insert_header("X-RateLimit-Limit", "50")
                .insert_header("X-RateLimit-Remaining", "49")
                .insert_header("X-RateLimit-Reset", reset.to_string().as_str()),
        )
        .mount(&server)
        .await;
    let c = client(&server);
    let shared = c.clone();
    assert!(c.rate_limit().is_none());
    c.people_fields(&mut CallLog::new()).await.unwrap();
    let rl = shared.rate_limit().unwrap();
    assert_eq!((rl.limit, rl.remaining), (Some(50), Some(49)));
    assert_eq!(rl.reset_at.map(|r| r.timestamp()), Some(reset));
}

#[tokio::test]
async fn retry_after_sets_the_wait() {
    let (_s, result, _log) =
        create_answering(ResponseTemplate::new(429).insert_header("Retry-After", "12")).await;
    assert_eq!(
        result.unwrap_err(),
        HibobError::RateLimited {
            wait: Duration::from_secs(12)
        }
    );
    let (_s, result, _log) = create_answering(ResponseTemplate::new(429)).await;
    assert_eq!(
        result.unwrap_err().retry_after(),
        Some(Duration::from_secs(60))
    );
}

#[tokio::test]
async fn server_errors_are_retryable() {
    let (_s, result, _log) = create_answering(
        ResponseTemplate::new(500).set_body_json(json!({"key": "internal", "error": "Oops"})),
    )
    .await;
    let err = result.unwrap_err();
    assert_eq!(
        err,
        HibobError::Server {
            status: 500,
            message: "Oops".into()
        }
    );
    assert!(err.is_retryable());
    assert_eq!(err.retry_after(), None);
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/people"))
        .respond_with(
            ResponseTemplate::new(302).insert_header("Location", "https://evil.example/steal"),
        )
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server)
        .create_employee(&create_body(), &mut CallLog::new())
        .await
        .unwrap_err();
    assert!(
        matches!(err, HibobError::Rejected { status: 302, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_hung_server_times_out() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(10)))
        .mount(&server)
        .await;
    let c = client(&server)
        .with_timeout(Duration::from_millis(300))
        .unwrap();
    let mut log = CallLog::new();
    let err = c
        .create_employee(&create_body(), &mut log)
        .await
        .unwrap_err();
    assert_eq!(err, HibobError::Timeout);
    assert!(err.is_retryable());
    let ex = log.last().unwrap();
    assert_eq!(ex.status, None);
    assert!(ex.error.as_deref().unwrap().contains("did not answer"));
}

#[tokio::test]
async fn connection_failures_are_transport_errors() {
    let c = Client::new(
        "http://127.0.0.1:9/v1",
        USER,
        SecretString::from(TOKEN.to_owned()),
    )
    .unwrap();
    let mut log = CallLog::new();
    let err = c.people_fields(&mut log).await.unwrap_err();
    assert!(matches!(err, HibobError::Transport(_)), "{err:?}");
    assert!(err.is_retryable());
    assert_no_secrets(&log);
}

#[tokio::test]
async fn search_by_email_sends_the_filter_and_finds_the_match() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/people/search"))
        .and(header("authorization", basic().as_str()))
        .and(body_json(json!({
            "fields": ["root.id", "root.email", "root.displayName"],
            "filters": [{
                "fieldPath": "root.email",
                "operator": "equals",
                "values": ["Grace.Hopper@Example.com", "grace.hopper@example.com"]
            }],
            "showInactive": true
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "employees": [
                {"id": "1", "email": "someone.else@example.com"},
                {
                    "id": "3391735226064306262",
                    "email": "grace.hopper@example.com",
                    "displayName": "Grace Hopper",
                    "/root/id": {"value": "3391735226064306262"}
                }
            ]
        })))
        .expect(1)
        .mount(&server)
        .await;
    let mut log = CallLog::new();
    let found = client(&server)
        .search_by_email(" Grace.Hopper@Example.com ", &mut log)
        .await
        .unwrap();
    assert_eq!(
        found,
        Some(EmployeeSummary {
            id: "3391735226064306262".into(),
            email: Some("grace.hopper@example.com".into()),
            display_name: Some("Grace Hopper".into()),
        })
    );
    assert_eq!(log.last().unwrap().path, "/people/search");
    assert_no_secrets(&log);
}

#[tokio::test]
async fn search_by_email_with_no_match_is_none() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/people/search"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"employees": []})))
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server);
    let mut log = CallLog::new();
    assert_eq!(
        c.search_by_email("nobody@example.com", &mut log)
            .await
            .unwrap(),
        None
    );
    // an empty address matches nobody and costs no call
    assert_eq!(c.search_by_email("  ", &mut log).await.unwrap(), None);
    assert_eq!(log.len(), 1);
}

#[tokio::test]
async fn search_ignores_people_with_another_email() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/people/search"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "employees": [{"id": "1", "email": "a@example.com"}, {"id": "2", "email": "b@example.com"}]
        })))
        .mount(&server)
        .await;
    let found = client(&server)
        .search_by_email("c@example.com", &mut CallLog::new())
        .await
        .unwrap();
    assert_eq!(found, None);
}

#[tokio::test]
async fn people_fields_are_parsed() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/company/people/fields"))
        .and(header("authorization", basic().as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            {
                "id": "root.firstName", "categoryId": "root", "categoryDisplayName": "Basic info",
                "category": "root", "name": "First name", "description": null,
                "jsonPath": "firstName", "type": "text", "typeData": {}, "historical": false
            },
            {
                "id": "work.site", "categoryId": "work", "categoryDisplayName": "Work",
                "name": "Site", "jsonPath": "work.site", "type": "list",
                "typeData": {"listId": "site"}, "historical": true, "unknownKey": 1
            }
        ])))
        .expect(1)
        .mount(&server)
        .await;
    let mut log = CallLog::new();
    let fields = client(&server).people_fields(&mut log).await.unwrap();
    assert_eq!(
        fields[0],
        FieldMeta {
            id: "root.firstName".into(),
            name: "First name".into(),
            category: "root".into(),
            category_name: Some("Basic info".into()),
            field_type: "text".into(),
            json_path: "firstName".into(),
            is_list: false,
            list_name: None,
            historical: false,
            description: None,
        }
    );
    assert!(fields[1].is_list);
    assert_eq!(fields[1].list_name.as_deref(), Some("site"));
    assert_eq!(log.last().unwrap().method, "GET");
}

#[tokio::test]
async fn named_lists_are_parsed_with_string_ids() {
    let server = MockServer::start().await;
    let site = json!({
        "name": "site",
        "items": [
            {"id": 2510068, "value": "London", "name": "London", "archived": false, "children": []},
            {"id": 2510071, "value": "Old office", "name": "Old office", "archived": true, "children": []}
        ]
    });
    Mock::given(method("GET"))
        .and(path("/v1/company/named-lists"))
        .and(query_param("includeArchived", "true"))
        .and(header("authorization", basic().as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([site.clone()])))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/company/named-lists/site"))
        .and(query_param("includeArchived", "true"))
        .respond_with(ResponseTemplate::new(200).set_body_json(site))
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server);
    let mut log = CallLog::new();
    let lists = c.named_lists(&mut log).await.unwrap();
    assert_eq!(lists.len(), 1);
    assert_eq!(lists[0].items[0].id, "2510068");
    assert!(lists[0].items[1].archived);
    let one = c.named_list("site", &mut log).await.unwrap();
    assert_eq!(one, lists[0]);
    assert_eq!(
        one.items[0],
        ListItem {
            id: "2510068".into(),
            name: "London".into(),
            archived: false,
            children: vec![],
        }
    );
    let paths: Vec<&str> = log.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/company/named-lists?includeArchived=true",
            "/company/named-lists/site?includeArchived=true"
        ]
    );
}

#[tokio::test]
async fn document_from_url_goes_to_the_folder() {
    let server = MockServer::start().await;
    let url = "https://files.example.com/cv/abc123.pdf?signature=s3cr3t";
    Mock::given(method("POST"))
        .and(path("/v1/docs/people/3391735226064306262/shared"))
        .and(header("authorization", basic().as_str()))
        .and(header("content-type", "application/json"))
        .and(body_json(
            json!({"documentName": "Grace_Hopper_CV.pdf", "documentUrl": url}),
        ))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"id": 15587714, "name": "Grace_Hopper_CV.pdf"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/docs/people/3391735226064306262/confidential"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 15587715})))
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server);
    let mut log = CallLog::new();
    c.upload_document_from_url(
        "3391735226064306262",
        DocFolder::Shared,
        "Grace_Hopper_CV.pdf",
        url,
        &mut log,
    )
    .await
    .unwrap();
    c.upload_document_from_url(
        "3391735226064306262",
        DocFolder::Confidential,
        "cv.pdf",
        url,
        &mut log,
    )
    .await
    .unwrap();
    let first = &log.iter().next().unwrap().clone();
    assert_eq!(first.path, "/docs/people/3391735226064306262/shared");
    assert_eq!(
        first.request_body.as_ref().unwrap()["documentUrl"],
        "https://files.example.com/cv/abc123.pdf?[redacted]"
    );
    let text = serde_json::to_string(&log).unwrap();
    assert!(!text.contains("s3cr3t"), "{text}");
    assert_no_secrets(&log);
}

#[tokio::test]
async fn document_file_is_sent_as_multipart() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/docs/people/3391735226064306262/shared/upload"))
        .and(header("authorization", basic().as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 15587715})))
        .expect(1)
        .mount(&server)
        .await;
    let mut log = CallLog::new();
    client(&server)
        .upload_document_file(
            "3391735226064306262",
            DocFolder::Shared,
            "Grace_Hopper_CV.pdf",
            b"%PDF-1.7 fake".to_vec(),
            "application/pdf",
            &mut log,
        )
        .await
        .unwrap();
    let requests: Vec<Request> = server.received_requests().await.unwrap();
    let req = &requests[0];
    let content_type = req.headers.get("content-type").unwrap().to_str().unwrap();
    assert!(
        content_type.starts_with("multipart/form-data; boundary="),
        "{content_type}"
    );
    let body = String::from_utf8_lossy(&req.body);
    assert!(
        body.contains(r#"name="file"; filename="Grace_Hopper_CV.pdf""#),
        "{body}"
    );
    assert!(body.contains("Content-Type: application/pdf"), "{body}");
    assert!(body.contains("%PDF-1.7 fake"), "{body}");
    let ex = log.last().unwrap();
    assert_eq!(ex.path, "/docs/people/3391735226064306262/shared/upload");
    assert_eq!(ex.request_body.as_ref().unwrap()["file"]["bytes"], 13);
    assert!(!serde_json::to_string(&log).unwrap().contains("%PDF"));
    assert_no_secrets(&log);
}

#[tokio::test]
async fn oversized_files_are_refused_without_a_request() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&server)
        .await;
    let mut log = CallLog::new();
    let err = client(&server)
        .upload_document_file(
            "1",
            DocFolder::Confidential,
            "huge.pdf",
            vec![0u8; MAX_DOCUMENT_BYTES + 1],
            "application/pdf",
            &mut log,
        )
        .await
        .unwrap_err();
    assert_eq!(
        err,
        HibobError::TooLarge {
            limit: MAX_DOCUMENT_BYTES
        }
    );
    assert!(!err.is_retryable());
    assert!(server.received_requests().await.unwrap().is_empty());
    let ex = log.last().unwrap();
    assert_eq!(ex.status, None);
    assert_eq!(ex.path, "/docs/people/1/confidential/upload");
    assert!(ex.error.is_some());
}

#[tokio::test]
async fn ids_cannot_escape_their_path_segment() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/docs/people/..%2F..%2Fpeople/shared"))
        .respond_with(ResponseTemplate::new(404))
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server)
        .upload_document_from_url(
            "../../people",
            DocFolder::Shared,
            "x",
            "https://x",
            &mut CallLog::new(),
        )
        .await
        .unwrap_err();
    assert!(err.is_not_found());
}

#[tokio::test]
async fn every_call_is_logged_without_secrets() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/people"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "9"})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/people/search"))
        .respond_with(ResponseTemplate::new(500).set_body_string("x".repeat(10_000)))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/company/people/fields"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&server)
        .await;
    let c = client(&server);
    let mut log = CallLog::new();
    c.create_employee(&create_body(), &mut log).await.unwrap();
    c.search_by_email("grace.hopper@example.com", &mut log)
        .await
        .unwrap_err();
    c.people_fields(&mut log).await.unwrap_err();
    assert_eq!(log.len(), 3);
    let statuses: Vec<Option<u16>> = log.iter().map(|e| e.status).collect();
    assert_eq!(statuses, [Some(200), Some(500), Some(401)]);
    let long = log.iter().nth(1).unwrap().response_body.clone().unwrap();
    assert!(
        long.len() < 4300 && long.contains("truncated, 10000 bytes"),
        "{}",
        long.len()
    );
    assert_no_secrets(&log);
}

/// A base URL whose name resolved to a public address when it was saved, and resolves to this
/// machine (where the fake HiBob listens) when the call is made: the connection is refused, and
/// the credentials never leave.
#[tokio::test]
async fn a_name_that_turns_local_after_it_was_saved_gets_nothing() {
    use crate::destination::{tests::Scripted, Guard};
    use std::sync::atomic::Ordering;
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(&server)
        .await;
    let port = server.address().port();
    let script = Scripted::new(&["93.184.215.14", "127.0.0.1"]);
    let guard = Guard::strict().with_lookup(script.clone());
    // when saved: public
    assert!(guard.resolve("hibob.example").await.is_ok());
    // when called: this machine
    let rebound = Client::new(
        &format!("http://hibob.example:{port}/v1"),
        USER,
        SecretString::from(TOKEN.to_owned()),
    )
    .unwrap()
    .with_guard(guard)
    .unwrap();
    let mut log = CallLog::new();
    let err = rebound.people_fields(&mut log).await.unwrap_err();
    assert!(
        matches!(&err, HibobError::Destination(m) if m.contains("private or local address")),
        "{err:?}"
    );
    assert_eq!(script.asked.load(Ordering::SeqCst), 2);
    assert!(
        !err.is_retryable(),
        "sending again cannot help: a person must look"
    );
    assert!(server.received_requests().await.unwrap().is_empty());
    assert_eq!(log.len(), 1);
    assert_eq!(log.last().unwrap().status, None);
    let check = rebound.check_connection().await;
    assert!(
        !check.ok && check.summary.contains("private or local"),
        "{check:?}"
    );
    assert!(server.received_requests().await.unwrap().is_empty());

    // a literal address is refused too, though no resolver sees it
    let literal = client(&server).with_guard(Guard::strict()).unwrap();
    let err = literal.people_fields(&mut log).await.unwrap_err();
    assert!(
        matches!(&err, HibobError::Destination(m) if m.contains("127.0.0.1")),
        "{err:?}"
    );
    assert!(server.received_requests().await.unwrap().is_empty());

    // the operator may allow private destinations
    let allowed = Guard::strict()
        .allowing_private(true)
        .with_lookup(Scripted::new(&["127.0.0.1"]));
    let rebound = rebound.with_guard(allowed).unwrap();
    assert!(rebound.people_fields(&mut log).await.unwrap().is_empty());
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

/// Whatever HiBob repeats of the credentials, in the error or the body, is scrubbed before it is
/// read, recorded or shown.
#[tokio::test]
async fn credentials_echoed_by_hibob_are_scrubbed() {
    let echoed = format!(
        r#"{{"error": "token {TOKEN} is not valid for {USER}:{TOKEN} ({})", "key": "x"}}"#,
        basic()
    );
    let (_server, result, log) =
        create_answering(ResponseTemplate::new(400).set_body_string(echoed)).await;
    let err = result.unwrap_err().to_string();
    assert!(
        !err.contains(TOKEN) && !err.contains(&basic()[6..]),
        "{err}"
    );
    assert!(err.contains("[redacted]"), "{err}");
    let text = serde_json::to_string(&log).unwrap();
    assert!(
        !text.contains(TOKEN) && !text.contains(&basic()[6..]),
        "{text}"
    );
}

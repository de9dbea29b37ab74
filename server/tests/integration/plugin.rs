//! The Pinpoint plugin over real HTTP, against a wiremock HiBob answering as its OpenAPI file
//! describes: meta, tokens, the form and its lists, submits that succeed, meet an existing
//! employee, are refused, rate limited, fail or time out, concurrent submits, and bad input.

use std::time::Duration;

use crate::common::{
    error_message,
    fakes::{self, EMPLOYEE_ID},
    TestApp,
};
use serde_json::{json, Value};
use wiremock::{
    matchers::{body_partial_json, method, path},
    Mock, MockServer, ResponseTemplate,
};

pub(crate) const TOKEN: &str = "plugin-token-for-tests";
const EXISTING_ID: &str = "3391735226064306262";
const EMAIL: &str = "jane.doe@example.com";
const CV_URL: &str = "https://files.example.com/cv/jane.pdf?signature=abc";

pub(crate) fn named_lists() -> Value {
    json!([
        {"name": "site", "items": [
            {"id": 2510068, "value": "London", "name": "London", "archived": false, "children": []},
            {"id": 2510070, "value": "New York", "name": "New York", "archived": false, "children": []},
            {"id": 2510071, "value": "Old office", "name": "Old office", "archived": true, "children": []}
        ]},
        {"name": "department", "items": [
            {"id": 101, "value": "Engineering", "name": "Engineering", "archived": false, "children": []},
            {"id": 102, "value": "Sales", "name": "Sales", "archived": false, "children": []}
        ]},
        {"name": "title", "items": [
            {"id": 201, "value": "Engineering", "name": "Engineering", "archived": false, "children": [
                {"id": 211, "value": "Backend engineer", "name": "Backend engineer", "archived": false, "children": []},
                {"id": 212, "value": "SRE", "name": "SRE", "archived": false, "children": []}
            ]},
            {"id": 202, "value": "Sales", "name": "Sales", "archived": false, "children": [
                {"id": 221, "value": "Account executive", "name": "Account executive", "archived": false, "children": []}
            ]}
        ]},
        {"name": "payrollEmploymentType", "items": [
            {"id": "permanent", "value": "Permanent", "name": "Permanent", "archived": false, "children": []},
            {"id": "contractor", "value": "Contractor", "name": "Contractor", "archived": false, "children": []}
        ]}
    ])
}

struct Hibob {
    server: MockServer,
}

impl Hibob {
    async fn start() -> Self {
        Self {
            server: MockServer::start().await,
        }
    }

    fn base(&self) -> String {
        format!("{}/v1", self.server.uri())
    }

    async fn lists(&self, times: u64) {
        fakes::named_lists(named_lists())
            .expect(times)
            .mount(&self.server)
            .await;
    }

    async fn search_finds_nobody(&self) {
        fakes::search_finds_nobody().mount(&self.server).await;
    }

    async fn search_finds(&self, id: &str) {
        fakes::search_finds(json!([{"id": id, "email": EMAIL, "displayName": "Jane Doe"}]))
            .mount(&self.server)
            .await;
    }

    async fn create(&self, response: ResponseTemplate, times: u64) {
        Mock::given(method("POST"))
            .and(path("/v1/people"))
            .and(body_partial_json(json!({
                "firstName": "Jane", "surname": "Doe", "email": EMAIL,
                "work": {"site": "London", "startDate": "2026-03-02"}
            })))
            .respond_with(response)
            .expect(times)
            .mount(&self.server)
            .await;
    }

    async fn cv(&self, employee: &str, times: u64) {
        Mock::given(method("POST"))
            .and(path(format!("/v1/docs/people/{employee}/shared")))
            .and(body_partial_json(
                json!({"documentName": "Jane_Doe_CV.pdf", "documentUrl": CV_URL}),
            ))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "id": 15587714, "employeeId": employee, "name": "Jane_Doe_CV.pdf"
            })))
            .expect(times)
            .mount(&self.server)
            .await;
    }

    async fn app(&self) -> TestApp {
        app_with(&self.base(), Some(TOKEN)).await
    }
}

fn created(id: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "id": id, "firstName": "Jane", "surname": "Doe", "email": EMAIL,
        "work": {"site": "London", "siteId": 2510068, "startDate": "2026-03-02"}
    }))
}

pub(crate) async fn app_with(hibob_base: &str, token: Option<&str>) -> TestApp {
    let extra = match token {
        Some(token) => vec!["--plugin-token", token],
        None => vec![],
    };
    TestApp::spawn_with(&fakes::hibob_args(hibob_base, &extra)).await
}

async fn send(app: &TestApp, route: &str, body: String, token: Option<&str>) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(app.url(route))
        .header("content-type", "application/json")
        .body(body);
    if let Some(token) = token {
        req = req.header("X-Plugin-Token", token);
    }
    let res = req.send().await.expect("request");
    let status = res.status().as_u16();
    let text = res.text().await.expect("body");
    let json =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"));
    (status, json)
}

pub(crate) async fn call(app: &TestApp, route: &str, body: Value) -> (u16, Value) {
    send(app, route, body.to_string(), Some(TOKEN)).await
}

pub(crate) fn form(pairs: &[(&str, Value)]) -> Value {
    let fields: Vec<Value> = pairs
        .iter()
        .map(|(k, v)| json!({"key": k, "value": v}))
        .collect();
    json!({ "formFields": fields })
}

fn jane() -> Vec<(&'static str, Value)> {
    vec![
        ("firstName", json!("Jane")),
        ("lastName", json!("Doe")),
        ("email", json!(EMAIL)),
        ("startDate", json!("2026-03-02")),
        ("site", json!("London")),
        (
            "cvDocument",
            json!({"url": CV_URL, "filename": "Jane_Doe_CV.pdf"}),
        ),
    ]
}

fn with(
    mut fields: Vec<(&'static str, Value)>,
    key: &'static str,
    value: Value,
) -> Vec<(&'static str, Value)> {
    fields.retain(|(k, _)| *k != key);
    fields.push((key, value));
    fields
}

/// Every submit succeeded with the one employee.
async fn one_employee_for_all(tasks: Vec<tokio::task::JoinHandle<Value>>) {
    for task in tasks {
        let answer = task.await.unwrap();
        assert_eq!(answer["success"], true, "{answer}");
        assert_eq!(answer["externalIdentifier"], EMPLOYEE_ID);
    }
}

/// Pinpoint's submit of `body` to the plugin route at `url`, which must answer 200; its JSON.
async fn submitted_to(url: String, body: Value) -> Value {
    let res = reqwest::Client::new()
        .post(url)
        .header("X-Plugin-Token", TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json::<Value>().await.unwrap()
}

async fn submit(app: &TestApp, fields: &[(&str, Value)]) -> Value {
    let (status, json) = call(app, "/export-candidate/submit", form(fields)).await;
    assert_eq!(status, 200, "{json}");
    json
}

fn toast(answer: &Value) -> String {
    answer["toast"]["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn field_error<'a>(answer: &'a Value, key: &str) -> Option<&'a str> {
    answer["errors"]
        .as_array()?
        .iter()
        .find(|e| e["key"] == key)
        .and_then(|e| e["error"].as_str())
}

#[derive(Debug, sqlx::FromRow)]
struct ExportRow {
    id: i64,
    source: String,
    key: String,
    status: String,
    attempts: i64,
    employee: Option<String>,
    cv: bool,
    error: Option<String>,
    email: Option<String>,
}

async fn exports(app: &TestApp) -> Vec<ExportRow> {
    app.sql
        .rows(
            "SELECT id, source, idempotency_key AS key, status, attempts,
                hibob_employee_id AS employee, cv_uploaded AS cv, last_error AS error,
                candidate_email AS email
         FROM exports ORDER BY id",
            &[],
        )
        .await
}

async fn steps(app: &TestApp, export_id: i64) -> Vec<(i64, String, String, String, String)> {
    app.sql.rows("SELECT attempt, step, outcome, detail, exchanges FROM export_steps WHERE export_id = ? ORDER BY id", &[export_id.into()]).await
}

fn step_names(steps: &[(i64, String, String, String, String)], attempt: i64) -> Vec<String> {
    steps
        .iter()
        .filter(|s| s.0 == attempt)
        .map(|s| format!("{}:{}", s.1, s.2))
        .collect()
}

// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn meta_is_public_and_the_console_page_still_answers_get() {
    let app = app_with("http://127.0.0.1:9/v1", None).await;
    for body in [
        "",
        r#"{"configurationValues":[{"key":"pluginToken","value":"x"}]}"#,
    ] {
        let (status, meta) = send(&app, "/", body.to_owned(), None).await;
        assert_eq!(status, 200, "{meta}");
        assert_eq!(meta["version"], "1.0.0");
        assert_eq!(meta["name"], "HiBob");
        assert!(meta["logoBase64"]
            .as_str()
            .unwrap()
            .starts_with("data:image/svg+xml;base64,"));
        let action = &meta["actions"][0];
        assert_eq!(action["key"], "exportCandidate");
        assert_eq!(action["label"], "Send to HiBob");
        assert_eq!(action["metaEndpoint"], "/export-candidate/meta");
        assert!(action["iconSvgBase64"]
            .as_str()
            .unwrap()
            .starts_with("data:image/svg+xml;base64,"));
        let keys: Vec<&str> = action["mappings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["key"].as_str().unwrap())
            .collect();
        assert_eq!(
            keys,
            ["firstName", "lastName", "email", "startDate", "cvDocument"]
        );
        assert_eq!(action["mappings"][4]["value"], "{{candidate_cv}}");
        let token = &meta["configurationFormFields"][0];
        assert_eq!(
            (
                token["key"].as_str(),
                token["sensitive"].as_bool(),
                token["required"].as_bool(),
                token["useAsHttpHeader"].as_str()
            ),
            (
                Some("pluginToken"),
                Some(true),
                Some(true),
                Some("X-Plugin-Token")
            )
        );
        let lists: Vec<&str> = meta["listEndpoints"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["endpoint"].as_str().unwrap())
            .collect();
        assert_eq!(
            lists,
            [
                "/lists/sites",
                "/lists/departments",
                "/lists/titles",
                "/lists/employmentTypes"
            ]
        );
    }

    let page = TestApp::client().get(app.url("/")).send().await.unwrap();
    assert!(
        page.status().is_redirection(),
        "GET / is the console: {}",
        page.status()
    );
    assert_eq!(page.headers()["location"], "/login");
}

#[tokio::test]
async fn plugin_calls_need_the_token() {
    let hibob = Hibob::start().await;
    hibob.lists(1).await;
    let unconfigured = app_with(&hibob.base(), None).await;
    for route in [
        "/export-candidate/meta",
        "/export-candidate/submit",
        "/lists/sites",
    ] {
        let (status, json) = send(&unconfigured, route, "{}".into(), Some("anything")).await;
        assert_eq!(status, 503, "{route}: {json}");
        assert!(error_message(&json).contains("not configured"), "{json}");
    }

    let app = hibob.app().await;
    let meta = "/export-candidate/meta";
    for (name, body, header, expected) in [
        ("no token", json!({}), None, 401),
        ("wrong header", json!({}), Some("wrong"), 401),
        (
            "wrong value",
            json!({"configurationValues": [{"key": "pluginToken", "value": "nope"}]}),
            None,
            401,
        ),
        ("header", json!({}), Some(TOKEN), 200),
        (
            "configuration array",
            json!({"configurationValues": [{"key": "pluginToken", "value": TOKEN}]}),
            None,
            200,
        ),
        (
            "configuration object",
            json!({"configurationValues": {"pluginToken": TOKEN}}),
            None,
            200,
        ),
    ] {
        let (status, json) = send(&app, meta, body.to_string(), header).await;
        assert_eq!(status, expected, "{name}: {json}");
        if expected == 401 {
            assert!(error_message(&json).contains("plugin token"), "{json}");
        }
    }
    let (status, _) = send(&app, "/lists/sites", "{}".into(), None).await;
    assert_eq!(status, 401);
    let (status, _) = send(
        &app,
        "/export-candidate/submit",
        form(&jane()).to_string(),
        Some("wrong"),
    )
    .await;
    assert_eq!(status, 401);
    assert!(
        exports(&app).await.is_empty(),
        "refused calls write nothing"
    );
}

#[tokio::test]
async fn action_meta_builds_the_form_from_cached_lists() {
    let hibob = Hibob::start().await;
    hibob.lists(1).await;
    let app = hibob.app().await;

    let (status, first) = call(
        &app,
        "/export-candidate/meta",
        json!({
            "configurationValues": [{"key": "pluginToken", "value": TOKEN}],
            "formFields": [
                {"key": "firstName", "value": "Jane"},
                {"key": "lastName", "value": "Doe"},
                {"key": "email", "value": EMAIL},
                {"key": "startDate", "value": "2026-03-02"},
                {"key": "cvDocument", "value": CV_URL}
            ]
        }),
    )
    .await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["key"], "exportCandidate");
    assert_eq!(first["submitEndpoint"], "/export-candidate/submit");
    let fields = first["formFields"].as_array().unwrap();
    let keys: Vec<&str> = fields.iter().map(|f| f["key"].as_str().unwrap()).collect();
    assert_eq!(
        keys,
        [
            "heading",
            "firstName",
            "lastName",
            "email",
            "site",
            "startDate",
            "moreHeading",
            "department",
            "title",
            "employmentType",
            "divider",
            "cvDocument"
        ]
    );
    let field = |key: &str| fields.iter().find(|f| f["key"] == key).unwrap().clone();
    assert_eq!(field("heading")["type"], "heading");
    assert_eq!(field("firstName")["value"], "Jane");
    assert_eq!(field("firstName")["required"], true);
    assert_eq!(field("email")["value"], EMAIL);
    assert_eq!(field("startDate")["type"], "date");
    assert_eq!(field("startDate")["value"], "2026-03-02");
    let site = field("site");
    assert_eq!(site["required"], true);
    assert_eq!(site["value"], "London", "the default site");
    assert_eq!(site["singleSelectOptionsListKey"], "sites");
    assert_eq!(
        site["singleSelectOptions"],
        json!([{"label": "London", "value": "London"}, {"label": "New York", "value": "New York"}])
    );
    let department = field("department");
    assert_eq!(department["required"], false);
    assert_eq!(
        department["performRefetchOnChange"], true,
        "titles are grouped, so a department narrows them"
    );
    assert_eq!(department["includeValueInRefetch"], true);
    assert_eq!(
        field("title")["singleSelectOptions"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
    assert_eq!(
        field("employmentType")["singleSelectOptions"][0],
        json!({"label": "Permanent", "value": "permanent"})
    );
    assert_eq!(field("cvDocument")["type"], "file");
    assert_eq!(field("cvDocument")["value"], CV_URL);
    assert_eq!(first["listEndpoints"].as_array().unwrap().len(), 4);

    // a refetch after the department changed: titles narrow, values come back
    let (status, refetched) = call(
        &app,
        "/export-candidate/meta",
        json!({"formFields": [
            {"key": "firstName", "value": "Jane"}, {"key": "department", "value": "101"}
        ]}),
    )
    .await;
    assert_eq!(status, 200);
    let fields = refetched["formFields"].as_array().unwrap();
    let field = |key: &str| fields.iter().find(|f| f["key"] == key).unwrap().clone();
    assert_eq!(field("department")["value"], "101");
    let titles: Vec<String> = field("title")["singleSelectOptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["value"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(titles, ["211", "212"]);
    assert_eq!(field("firstName")["value"], "Jane");

    let (status, list) = call(&app, "/lists/sites", json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(
        list,
        json!({"key": "sites", "options": [{"label": "London", "value": "London"}, {"label": "New York", "value": "New York"}]})
    );
    let (status, list) = call(&app, "/lists/titles", json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(
        list["options"][1],
        json!({"label": "Engineering › Backend engineer", "value": "211"})
    );
    let (status, list) = call(&app, "/lists/employmentTypes", json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(list["options"].as_array().unwrap().len(), 2);
    // four forms and lists above, one named-lists call (checked by `.expect(1)`)
    hibob.server.verify().await;
}

#[tokio::test]
async fn action_meta_explains_what_to_fix_when_hibob_cannot_be_used() {
    // not configured
    let app = TestApp::spawn_with(&["--plugin-token", TOKEN]).await;
    let (status, form) = call(&app, "/export-candidate/meta", json!({})).await;
    assert_eq!(status, 200);
    let fields = form["formFields"].as_array().unwrap();
    assert_eq!(fields.len(), 1, "{form}");
    assert_eq!(fields[0]["type"], "callout");
    assert_eq!(fields[0]["intent"], "danger");
    assert!(
        fields[0]["description"]
            .as_str()
            .unwrap()
            .contains("HiBob service user ID and token"),
        "{form}"
    );
    let (status, json) = call(&app, "/lists/sites", json!({})).await;
    assert_eq!(status, 503, "{json}");
    let answer = submit(&app, &jane()).await;
    assert_eq!(answer["success"], false);
    assert!(
        toast(&answer).contains("not configured")
            || toast(&answer).contains("no HiBob service user"),
        "{answer}"
    );

    // unreachable
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let app = app_with(&format!("http://127.0.0.1:{closed}/v1"), Some(TOKEN)).await;
    let (_, form) = call(&app, "/export-candidate/meta", json!({})).await;
    let callout = &form["formFields"][0];
    assert_eq!(callout["intent"], "danger", "{form}");
    assert_eq!(callout["label"], "HiBob cannot be reached");
    assert!(
        callout["description"]
            .as_str()
            .unwrap()
            .contains("HiBob API base URL"),
        "{form}"
    );
    let (status, _) = call(&app, "/lists/departments", json!({})).await;
    assert_eq!(status, 502);

    // refused credentials
    let hibob = Hibob::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/company/named-lists"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(json!({"key": "unauthorized", "error": "Unauthorized"})),
        )
        .mount(&hibob.server)
        .await;
    let app = hibob.app().await;
    let (_, form) = call(&app, "/export-candidate/meta", json!({})).await;
    assert_eq!(form["formFields"].as_array().unwrap().len(), 1);
    assert!(
        form["formFields"][0]["description"]
            .as_str()
            .unwrap()
            .contains("credentials"),
        "{form}"
    );
}

#[tokio::test]
async fn submit_creates_the_employee_attaches_the_cv_and_records_everything() {
    let hibob = Hibob::start().await;
    hibob.lists(1).await;
    hibob.search_finds_nobody().await;
    hibob.create(created(EMPLOYEE_ID), 1).await;
    hibob.cv(EMPLOYEE_ID, 1).await;
    let app = hibob.app().await;

    let fields = with(
        with(jane(), "department", json!("Engineering")),
        "employmentType",
        json!("permanent"),
    );
    let answer = submit(&app, &fields).await;
    assert_eq!(answer["success"], true, "{answer}");
    assert_eq!(answer["key"], "exportCandidate");
    assert_eq!(answer["resultVersion"], "1.0.0");
    assert!(
        answer["message"].as_str().unwrap().contains(EMPLOYEE_ID),
        "{answer}"
    );
    assert_eq!(answer["externalIdentifier"], EMPLOYEE_ID);

    let create = hibob
        .server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.url.path() == "/v1/people")
        .unwrap();
    let body: Value = serde_json::from_slice(&create.body).unwrap();
    assert_eq!(
        body["work"]["department"], "101",
        "list fields take the item id"
    );
    assert_eq!(body["payroll"]["employment"]["type"], "permanent");

    let rows = exports(&app).await;
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(
        (row.source.as_str(), row.key.as_str(), row.status.as_str()),
        ("plugin", "plugin:jane.doe@example.com", "succeeded")
    );
    assert_eq!(row.employee.as_deref(), Some(EMPLOYEE_ID));
    assert!(row.cv);
    assert_eq!(row.email.as_deref(), Some(EMAIL));
    let recorded = steps(&app, row.id).await;
    assert_eq!(
        step_names(&recorded, 1),
        ["validate:ok", "create_employee:ok", "upload_cv:ok"]
    );
    let all = serde_json::to_string(&recorded).unwrap();
    assert!(
        !all.contains("hb-token") && !all.contains("signature=abc"),
        "no secrets in the record: {all}"
    );
    let create_step = recorded.iter().find(|s| s.1 == "create_employee").unwrap();
    let exchanges: Value = serde_json::from_str(&create_step.4).unwrap();
    assert_eq!(exchanges[0]["status"], 200);
    assert_eq!(exchanges[0]["request_body"]["email"], EMAIL);

    // the same candidate again: same row, same employee, nothing created or uploaded twice
    let again = submit(&app, &fields).await;
    assert_eq!(again["success"], true, "{again}");
    assert_eq!(again["externalIdentifier"], EMPLOYEE_ID);
    let rows = exports(&app).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].attempts, 2);
    let recorded = steps(&app, rows[0].id).await;
    assert_eq!(
        step_names(&recorded, 2),
        [
            "validate:ok",
            "search_employee:skipped",
            "upload_cv:skipped"
        ]
    );
    hibob.server.verify().await;
}

#[tokio::test]
async fn a_duplicate_email_reuses_the_existing_employee() {
    let hibob = Hibob::start().await;
    hibob.lists(1).await;
    // the create meets the person HiBob already has, and the search after it finds them
    hibob.search_finds(EXISTING_ID).await;
    hibob
        .create(
            ResponseTemplate::new(400).set_body_json(
                json!({"key": "validations.email.alreadyexists", "error": "Email already exists"}),
            ),
            1,
        )
        .await;
    hibob.cv(EXISTING_ID, 1).await;
    let app = hibob.app().await;

    let answer = submit(&app, &jane()).await;
    assert_eq!(answer["success"], true, "{answer}");
    assert_eq!(answer["externalIdentifier"], EXISTING_ID);
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("already in HiBob"),
        "{answer}"
    );
    let again = submit(&app, &jane()).await;
    assert_eq!(again["externalIdentifier"], EXISTING_ID);
    let rows = exports(&app).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].employee.as_deref(), Some(EXISTING_ID));
    assert_eq!(
        step_names(&steps(&app, rows[0].id).await, 1),
        [
            "validate:ok",
            "create_employee:failed",
            "search_employee:ok",
            "upload_cv:ok"
        ]
    );
    hibob.server.verify().await;
}

#[tokio::test]
async fn an_invalid_site_is_a_field_error() {
    let hibob = Hibob::start().await;
    hibob.lists(1).await;
    hibob.search_finds_nobody().await;
    let app = hibob.app().await;

    // not in HiBob's site list: refused before HiBob is asked to create anything
    let answer = submit(&app, &with(jane(), "site", json!("Paris"))).await;
    assert_eq!(answer["success"], false);
    assert!(
        field_error(&answer, "site").unwrap().contains("Paris"),
        "{answer}"
    );
    assert!(!toast(&answer).is_empty());
    let archived = submit(&app, &with(jane(), "site", json!("Old office"))).await;
    assert!(
        field_error(&archived, "site").unwrap().contains("archived"),
        "{archived}"
    );

    // in the list, but HiBob refuses it
    fakes::create(ResponseTemplate::new(400).set_body_json(
        json!({"key": "validations.work.site.invalid", "error": "Site is not active"}),
    ))
    .expect(1)
    .mount(&hibob.server)
    .await;
    let answer = submit(&app, &with(jane(), "site", json!("New York"))).await;
    assert_eq!(answer["success"], false);
    assert_eq!(
        field_error(&answer, "site"),
        Some("HiBob: Site is not active"),
        "{answer}"
    );
    let rows = exports(&app).await;
    assert_eq!(rows.len(), 1, "all three were the same candidate");
    assert_eq!(rows[0].status, "needs_attention");
    assert!(
        rows[0]
            .error
            .as_deref()
            .unwrap()
            .contains("validations.work.site.invalid"),
        "{:?}",
        rows[0]
    );
    hibob.server.verify().await;
}

#[tokio::test]
async fn a_short_rate_limit_is_waited_out_and_a_long_one_is_a_toast() {
    let hibob = Hibob::start().await;
    hibob.lists(1).await;
    hibob.search_finds_nobody().await;
    fakes::create(
        ResponseTemplate::new(429)
            .insert_header("Retry-After", "1")
            .set_body_json(json!({"key": "rate", "error": "Too many requests"})),
    )
    .up_to_n_times(1)
    .expect(1)
    .mount(&hibob.server)
    .await;
    hibob.create(created(EMPLOYEE_ID), 1).await;
    hibob.cv(EMPLOYEE_ID, 1).await;
    let app = hibob.app().await;
    let answer = submit(&app, &jane()).await;
    assert_eq!(answer["success"], true, "{answer}");
    assert_eq!(answer["externalIdentifier"], EMPLOYEE_ID);
    let rows = exports(&app).await;
    let recorded = steps(&app, rows[0].id).await;
    let create: Value = serde_json::from_str(
        &recorded
            .iter()
            .find(|s| s.1 == "create_employee")
            .unwrap()
            .4,
    )
    .unwrap();
    assert_eq!(
        create.as_array().unwrap().len(),
        2,
        "both calls are in the record"
    );
    hibob.server.verify().await;

    let hibob = Hibob::start().await;
    hibob.lists(1).await;
    hibob.search_finds_nobody().await;
    hibob
        .create(
            ResponseTemplate::new(429).insert_header("Retry-After", "30"),
            1,
        )
        .await;
    let app = hibob.app().await;
    let answer = submit(&app, &jane()).await;
    assert_eq!(answer["success"], false);
    assert!(
        toast(&answer).contains("Try again in 30 seconds"),
        "{answer}"
    );
    hibob.server.verify().await;
}

#[tokio::test]
async fn hibob_failures_become_toasts() {
    // 500
    let hibob = Hibob::start().await;
    hibob.lists(1).await;
    hibob.search_finds_nobody().await;
    hibob
        .create(
            ResponseTemplate::new(500)
                .set_body_json(json!({"key": "internal", "error": "Internal error"})),
            1,
        )
        .await;
    let app = hibob.app().await;
    let answer = submit(&app, &jane()).await;
    assert_eq!(answer["success"], false);
    assert!(answer.get("errors").is_none(), "{answer}");
    assert!(
        toast(&answer).contains("server error (HTTP 500)"),
        "{answer}"
    );
    let rows = exports(&app).await;
    assert_eq!(rows[0].status, "needs_attention");
    assert!(rows[0].error.as_deref().unwrap().contains("500"));
    hibob.server.verify().await;

    // timeout
    let hibob = Hibob::start().await;
    hibob.lists(1).await;
    hibob.search_finds_nobody().await;
    hibob
        .create(created(EMPLOYEE_ID).set_delay(Duration::from_secs(3)), 1)
        .await;
    let app = hibob.app().await;
    let answer = submit(&app, &jane()).await;
    assert_eq!(answer["success"], false);
    assert!(
        toast(&answer).contains("did not answer in time"),
        "{answer}"
    );
    let rows = exports(&app).await;
    assert_eq!(
        step_names(&steps(&app, rows[0].id).await, 1),
        ["validate:ok", "create_employee:failed"]
    );
    hibob.server.verify().await;

    // 401
    let hibob = Hibob::start().await;
    hibob.lists(1).await;
    hibob
        .create(
            ResponseTemplate::new(401)
                .set_body_json(json!({"key": "unauthorized", "error": "Unauthorized"})),
            1,
        )
        .await;
    let app = hibob.app().await;
    let answer = submit(&app, &jane()).await;
    assert_eq!(answer["success"], false);
    let text = toast(&answer);
    assert!(
        text.contains("admin") && text.contains("credentials"),
        "{answer}"
    );
    hibob.server.verify().await;
}

#[tokio::test]
async fn the_cv_link_is_checked_and_a_refused_cv_can_be_retried() {
    let hibob = Hibob::start().await;
    hibob.lists(1).await;
    hibob.search_finds_nobody().await;
    hibob.create(created(EMPLOYEE_ID), 1).await;
    Mock::given(method("POST"))
        .and(path(format!("/v1/docs/people/{EMPLOYEE_ID}/shared")))
        .respond_with(ResponseTemplate::new(400).set_body_json(
            json!({"key": "docs.download.failed", "error": "Could not download the document"}),
        ))
        .up_to_n_times(1)
        .mount(&hibob.server)
        .await;
    hibob.cv(EMPLOYEE_ID, 1).await;
    let app = hibob.app().await;

    let answer = submit(
        &app,
        &with(
            jane(),
            "cvDocument",
            json!("http://files.example.com/cv.pdf"),
        ),
    )
    .await;
    assert!(
        field_error(&answer, "cvDocument")
            .unwrap()
            .contains("https"),
        "{answer}"
    );
    let answer = submit(
        &app,
        &with(
            jane(),
            "cvDocument",
            json!("https://169.254.169.254/latest"),
        ),
    )
    .await;
    assert!(
        field_error(&answer, "cvDocument")
            .unwrap()
            .contains("private"),
        "{answer}"
    );

    let answer = submit(&app, &jane()).await;
    assert_eq!(answer["success"], false);
    assert!(
        field_error(&answer, "cvDocument")
            .unwrap()
            .contains("Could not download"),
        "{answer}"
    );
    assert!(toast(&answer).contains(EMPLOYEE_ID), "{answer}");
    let rows = exports(&app).await;
    assert_eq!(
        (
            rows[0].status.as_str(),
            rows[0].employee.as_deref(),
            rows[0].cv
        ),
        ("needs_attention", Some(EMPLOYEE_ID), false)
    );

    let answer = submit(&app, &jane()).await;
    assert_eq!(answer["success"], true, "{answer}");
    let rows = exports(&app).await;
    assert_eq!((rows[0].status.as_str(), rows[0].cv), ("succeeded", true));
    hibob.server.verify().await;
}

#[tokio::test]
async fn the_form_is_validated_before_anything_is_sent() {
    let hibob = Hibob::start().await;
    hibob.lists(1).await;
    hibob.create(created(EMPLOYEE_ID), 0).await;
    let app = hibob.app().await;

    let answer = submit(
        &app,
        &[
            ("firstName", json!("J".repeat(51))),
            ("lastName", json!("Doe\u{7}")),
            ("email", json!(EMAIL)),
            ("startDate", json!("02/03/2026")),
            ("site", json!("London")),
            ("title", json!("Astronaut")),
        ],
    )
    .await;
    assert_eq!(answer["success"], false);
    assert!(
        field_error(&answer, "firstName").unwrap().contains("50"),
        "{answer}"
    );
    assert!(
        field_error(&answer, "lastName")
            .unwrap()
            .contains("control"),
        "{answer}"
    );
    assert!(
        field_error(&answer, "startDate")
            .unwrap()
            .contains("YYYY-MM-DD"),
        "{answer}"
    );
    assert!(field_error(&answer, "title").is_some(), "{answer}");
    assert!(!toast(&answer).is_empty());

    let answer = submit(
        &app,
        &[
            ("firstName", json!("Jane")),
            ("email", json!("not-an-email")),
        ],
    )
    .await;
    assert!(
        field_error(&answer, "email")
            .unwrap()
            .contains("not a valid email"),
        "{answer}"
    );
    assert!(
        field_error(&answer, "lastName")
            .unwrap()
            .contains("required"),
        "{answer}"
    );
    assert!(
        field_error(&answer, "startDate").is_none() && field_error(&answer, "site").is_none(),
        "the mapping's default site and start date fill in what the submit leaves out: {answer}"
    );

    let rows = exports(&app).await;
    assert_eq!(rows.len(), 2, "both attempts are recorded: {rows:?}");
    assert_eq!(rows[0].key, "plugin:jane.doe@example.com");
    assert!(rows[1].key.starts_with("plugin:unkeyed:"));
    for row in &rows {
        assert_eq!(row.status, "needs_attention");
        assert_eq!(
            step_names(&steps(&app, row.id).await, 1),
            ["validate:failed"]
        );
    }
    hibob.server.verify().await;
}

#[tokio::test]
async fn five_concurrent_submits_create_one_employee() {
    let hibob = Hibob::start().await;
    hibob.lists(1).await;
    // the search never sees the new employee (HiBob's read lag), so only our own lock and
    // record can stop a second create
    hibob.search_finds_nobody().await;
    // whichever spelling of the e-mail takes the lock first is the one HiBob is sent
    Mock::given(method("POST"))
        .and(path("/v1/people"))
        .respond_with(created(EMPLOYEE_ID).set_delay(Duration::from_millis(200)))
        .expect(1)
        .mount(&hibob.server)
        .await;
    hibob.cv(EMPLOYEE_ID, 1).await;
    let app = hibob.app().await;

    let mut tasks = Vec::new();
    for i in 0..5 {
        let url = app.url("/export-candidate/submit");
        // the same person, spelled in different cases
        let email = if i % 2 == 0 {
            EMAIL.to_owned()
        } else {
            EMAIL.to_uppercase()
        };
        let body = form(&with(jane(), "email", json!(email)));
        tasks.push(tokio::spawn(submitted_to(url, body)));
    }
    one_employee_for_all(tasks).await;
    let rows = exports(&app).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].attempts, rows[0].status.as_str()),
        (5, "succeeded")
    );
    hibob.server.verify().await;
}

/// Two console processes share one PostgreSQL database: submits of one person sent to both at
/// once still make one employee, because the person's lock is held in the database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_submits_of_one_person_to_two_consoles_create_one_employee() {
    if !crate::common::on_postgres() {
        return;
    }
    let hibob = Hibob::start().await;
    // each console reads and caches the lists for itself
    fakes::named_lists(named_lists()).mount(&hibob.server).await;
    // the search never sees the new employee (HiBob's read lag), so only the lock and the
    // record the first submit left can stop a second create
    hibob.search_finds_nobody().await;
    Mock::given(method("POST"))
        .and(path("/v1/people"))
        .respond_with(created(EMPLOYEE_ID).set_delay(Duration::from_millis(300)))
        .expect(1)
        .mount(&hibob.server)
        .await;
    hibob.cv(EMPLOYEE_ID, 1).await;
    let first = hibob.app().await;
    let second = TestApp::spawn_with_database(
        tempfile::tempdir().unwrap(),
        &first.database_url,
        &fakes::hibob_args(&hibob.base(), &["--plugin-token", TOKEN]),
    )
    .await;

    let mut tasks = Vec::new();
    for i in 0..6 {
        let app = if i % 2 == 0 { &first } else { &second };
        let url = app.url("/export-candidate/submit");
        let body = form(&jane());
        tasks.push(tokio::spawn(submitted_to(url, body)));
    }
    one_employee_for_all(tasks).await;
    let rows = exports(&first).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].attempts, rows[0].status.as_str()),
        (6, "succeeded")
    );
    hibob.server.verify().await;
}

#[tokio::test]
async fn bad_input_gets_a_json_4xx_and_is_recorded_when_it_can_be() {
    let hibob = Hibob::start().await;
    // nothing malformed reaches HiBob
    hibob.lists(0).await;
    let app = hibob.app().await;

    for (route, body, expected, says) in [
        ("/", "{not json", 400, "not valid JSON"),
        (
            "/export-candidate/meta",
            "{\"formFields\": [",
            400,
            "not valid JSON",
        ),
        (
            "/export-candidate/submit",
            "{\"formFields\": [{\"key\": \"x\"}",
            400,
            "not valid JSON",
        ),
        (
            "/export-candidate/submit",
            "[1, 2, 3]",
            400,
            "must be a JSON object",
        ),
        ("/export-candidate/submit", "", 400, "the body is empty"),
        (
            "/export-candidate/submit",
            "{}",
            400,
            "formFields is missing",
        ),
        (
            "/export-candidate/submit",
            r#"{"formFields": "Jane"}"#,
            400,
            "formFields must be an array",
        ),
        (
            "/export-candidate/meta",
            r#"{"configurationValues": 5}"#,
            400,
            "configurationValues must be",
        ),
        (
            "/lists/sites",
            r#"{"formFields": [7]}"#,
            400,
            "formFields[0]",
        ),
        ("/lists/salaries", "{}", 404, "unknown list"),
    ] {
        let (status, json) = send(&app, route, body.to_owned(), Some(TOKEN)).await;
        assert_eq!(status, expected, "{route} {body}: {json}");
        let message = json["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{route} {body}: {json}");
        assert!(json["error"]["request_id"].is_string());
    }

    let wrong_type = form(&with(jane(), "firstName", json!({"text": "Jane"})));
    let (status, json) = call(&app, "/export-candidate/submit", wrong_type).await;
    assert_eq!(status, 400);
    assert!(
        error_message(&json).contains("\"firstName\" must be text"),
        "{json}"
    );

    let huge =
        json!({"formFields": [{"key": "notes", "value": "x".repeat(300 * 1024)}]}).to_string();
    for route in ["/", "/export-candidate/submit"] {
        let (status, json) = send(&app, route, huge.clone(), Some(TOKEN)).await;
        assert_eq!(status, 413, "{route}: {json}");
        assert!(error_message(&json).contains("larger than"));
    }

    // the submits that were authenticated and JSON are in the exports table
    let rows = exports(&app).await;
    assert!(
        rows.iter().any(|r| r.key == "plugin:jane.doe@example.com"),
        "{rows:?}"
    );
    assert_eq!(
        rows.len(),
        5,
        "[1,2,3], empty, {{}}, formFields string, wrong type: {rows:?}"
    );
    for row in &rows {
        let recorded = steps(&app, row.id).await;
        assert_eq!(recorded.len(), 1);
        assert!(
            recorded[0].3.starts_with("malformed request"),
            "{recorded:?}"
        );
    }
}

#[tokio::test]
async fn a_failed_submit_is_superseded_by_a_later_success_or_resolved_by_an_operator() {
    let hibob = Hibob::start().await;
    hibob.lists(1).await;
    hibob.search_finds_nobody().await;
    // HiBob fails the first create only
    fakes::create(ResponseTemplate::new(500).set_body_json(json!({"error": "Internal error"})))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&hibob.server)
        .await;
    fakes::create(created(EMPLOYEE_ID))
        .mount(&hibob.server)
        .await;
    hibob.cv(EMPLOYEE_ID, 1).await;
    let app = hibob.app().await;
    let for_application = |fields: &[(&str, Value)], application: &str| {
        let mut body = form(fields);
        body["applicationId"] = json!(application);
        body
    };

    let (_, failed) = call(
        &app,
        "/export-candidate/submit",
        for_application(&jane(), "app-77"),
    )
    .await;
    assert_eq!(failed["success"], false, "{failed}");
    // the recruiter fixes the email and sends again: a new export (keyed by email) that succeeds
    let fixed = with(jane(), "email", json!("jane@work.example"));
    let (_, sent) = call(
        &app,
        "/export-candidate/submit",
        for_application(&fixed, "app-77"),
    )
    .await;
    assert_eq!(sent["success"], true, "{sent}");
    let rows = exports(&app).await;
    assert_eq!(rows.len(), 2);
    assert_eq!(
        (rows[0].status.as_str(), rows[1].status.as_str()),
        ("resolved", "succeeded")
    );
    let (by, note): (String, String) = app
        .sql
        .row(
            "SELECT resolved_by, resolution FROM exports WHERE id = ?",
            &[rows[0].id.into()],
        )
        .await;
    assert_eq!(by, "Send to HiBob");
    assert!(note.contains(&format!("export {}", rows[1].id)), "{note}");

    // a failed submit for another application stays until an operator resolves it
    fakes::create(ResponseTemplate::new(500).set_body_json(json!({"error": "Internal error"})))
        .with_priority(1)
        .mount(&hibob.server)
        .await;
    let other = with(jane(), "email", json!("sam@example.com"));
    let (_, failed) = call(
        &app,
        "/export-candidate/submit",
        for_application(&other, "app-88"),
    )
    .await;
    assert_eq!(failed["success"], false, "{failed}");
    let stuck = exports(&app).await.pop().unwrap();
    assert_eq!(stuck.status, "needs_attention");
    let id = stuck.id.to_string();

    // a viewer may not resolve, and a resolution needs a reason
    let operator = app.user_with_role("operator").await;
    let viewer = app.user_with_role("viewer").await;
    let res = app
        .call(&viewer, "resolve_export", &[("id", &id), ("note", "done")])
        .await;
    assert_eq!(res.status(), 403);
    let res = app
        .call(&operator, "resolve_export", &[("id", &id), ("note", "  ")])
        .await;
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("why"));
    let res = app
        .call(
            &operator,
            "resolve_export",
            &[("id", &id), ("note", "created in HiBob by hand")],
        )
        .await;
    assert!(res.status().is_success(), "{}", res.status());
    let stuck = exports(&app).await.pop().unwrap();
    assert_eq!(stuck.status, "resolved");
    let (actor, detail): (String, String) = app.sql.row("SELECT actor_email, detail FROM audit_log WHERE action = 'export.resolved' AND target = ?", &[format!("export {id}").into()]).await;
    assert_eq!(actor, "operator@example.com");
    assert!(detail.contains("created in HiBob by hand"), "{detail}");
    // resolved once is enough
    let res = app
        .call(
            &operator,
            "resolve_export",
            &[("id", &id), ("note", "again")],
        )
        .await;
    assert_eq!(res.status(), 422);

    // the export's page says who resolved it and why, and offers no second resolve; it names its
    // application, so like a webhook export it may still be retried
    let page = app.page(&operator, &format!("/exports/{id}")).await;
    assert!(page.contains("Resolved by operator@example.com"), "{page}");
    assert!(!page.contains("Mark resolved"), "{page}");
    assert!(page.contains("Retry export"), "{page}");
}

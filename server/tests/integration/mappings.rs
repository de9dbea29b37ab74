//! Mappings over the real router: versions saved through the console's server functions, lint
//! refusals, the dry-run preview, and exports that record (and on retry choose) the version their
//! HiBob body was built with. Pinpoint and HiBob are wiremock fakes reached over HTTP.

use crate::common::{
    assert_ok,
    fakes::{self, created, Fakes, EMPLOYEE_ID},
    json_of, TestApp,
};
use serde_json::{json, Value};
use wiremock::{
    matchers::{body_partial_json, method, path},
    Mock, MockServer, ResponseTemplate,
};

const PLUGIN_TOKEN: &str = "plugin-token-mapping-tests";

struct World {
    hibob: MockServer,
    pinpoint: MockServer,
    app: TestApp,
}

/// HiBob's field catalogue: the required fields, a mobile phone, and `extra`.
fn fields(extra: &[Value]) -> Value {
    let mut all = vec![
        json!({"id": "root.firstName", "name": "First name", "type": "text", "category": "root", "jsonPath": "firstName", "typeData": {}}),
        json!({"id": "root.surname", "name": "Last name", "type": "text", "category": "root", "jsonPath": "surname", "typeData": {}}),
        json!({"id": "root.email", "name": "Email", "type": "text", "category": "root", "jsonPath": "email", "typeData": {}}),
        json!({"id": "work.site", "name": "Site", "type": "list", "category": "work", "jsonPath": "work.site", "typeData": {"listId": "site"}}),
        json!({"id": "work.startDate", "name": "Start date", "type": "date", "category": "work", "jsonPath": "work.startDate", "typeData": {}}),
        json!({"id": "home.mobilePhone", "name": "Personal mobile", "type": "text", "category": "personalContact", "jsonPath": "home.mobilePhone", "typeData": {}}),
    ];
    all.extend_from_slice(extra);
    Value::Array(all)
}

/// HiBob's named lists: one site, and `extra`.
fn lists(extra: &[Value]) -> Value {
    let mut all = vec![json!(
        {"name": "site", "items": [{"id": 1, "value": "London", "name": "London", "archived": false, "children": []}]}
    )];
    all.extend_from_slice(extra);
    Value::Array(all)
}

/// A hire whose application has no last name: the built-in mapping cannot build it.
/// A call to the plugin's routes with the token.
fn plugin_call(
    app: &TestApp,
    path: &str,
    body: Value,
) -> impl std::future::Future<Output = reqwest::Result<reqwest::Response>> {
    reqwest::Client::new()
        .post(app.url(path))
        .header("X-Plugin-Token", PLUGIN_TOKEN)
        .json(&body)
        .send()
}

/// The bodies of the employees HiBob was asked to create.
async fn create_bodies(hibob: &MockServer) -> Vec<Value> {
    hibob
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method.as_str() == "POST" && r.url.path() == "/v1/people")
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

async fn world() -> World {
    let fakes = Fakes::start().await;
    fakes::application(
        7,
        json!({"first_name": "Cher", "last_name": "", "email": "cher@example.com",
               "phone": "07700 900123"}),
    )
    .mount(&fakes.pinpoint)
    .await;
    fakes::comment_posted().mount(&fakes.pinpoint).await;
    Mock::given(method("GET"))
        .and(path("/v1/company/people/fields"))
        .respond_with(ResponseTemplate::new(200).set_body_json(fields(&[])))
        .mount(&fakes.hibob)
        .await;
    fakes::named_lists(lists(&[])).mount(&fakes.hibob).await;
    fakes::no_documents().mount(&fakes.hibob).await;
    let app = fakes
        .app_with(&[
            "--outbound-timeout-secs",
            "2",
            "--plugin-token",
            PLUGIN_TOKEN,
        ])
        .await;
    let Fakes { pinpoint, hibob } = fakes;
    World {
        hibob,
        pinpoint,
        app,
    }
}

impl World {
    async fn search_returns(&self, employees: Value) {
        fakes::search_finds(employees).mount(&self.hibob).await;
    }

    /// HiBob creates every employee asked for, `times` times in all.
    async fn creates(&self, times: u64) {
        fakes::create(created())
            .expect(times)
            .mount(&self.hibob)
            .await;
    }

    async fn export(&self, id: i64) -> (String, Option<i64>, Option<String>) {
        self.app
            .sql
            .row(
                "SELECT status, mapping_version, last_error FROM exports WHERE id = ?",
                &[id.into()],
            )
            .await
    }
}

type Row = (String, String, String);

/// The built-in mapping with the surname falling back to the first name, and a phone.
fn rows() -> Vec<Row> {
    [
        ("root.firstName", "{{ candidate_first_name }}"),
        (
            "root.surname",
            "{{ candidate_last_name }}\n{{ candidate_first_name }}",
        ),
        ("root.email", "{{ candidate_email }}"),
        ("work.site", "{{ default_site }}"),
        (
            "work.startDate",
            "{{ candidate_start_date }}\n{{ default_start_date }}",
        ),
        (
            "home.mobilePhone",
            "{{ candidate_telephone_number | phone('+44') }}",
        ),
    ]
    .iter()
    .map(|(t, s)| ((*t).to_owned(), (*s).to_owned(), String::new()))
    .collect()
}

fn form(rows: &[Row]) -> Vec<(String, String)> {
    let mut form = Vec::new();
    for (i, (target, sources, fixed)) in rows.iter().enumerate() {
        form.push((format!("rows[{i}][target]"), target.clone()));
        form.push((format!("rows[{i}][sources]"), sources.clone()));
        form.push((format!("rows[{i}][fixed]"), fixed.clone()));
    }
    form
}

fn fixed_rows() -> Vec<(String, String)> {
    form(&rows())
}

async fn call(
    app: &TestApp,
    client: &reqwest::Client,
    endpoint: &str,
    form: &[(String, String)],
) -> reqwest::Response {
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    app.call(client, endpoint, &pairs).await
}

/// Saves `rows` as `client`, as edited from version `edited`.
async fn save_mapping(
    w: &World,
    client: &reqwest::Client,
    rows: &[Row],
    edited: &str,
) -> reqwest::Response {
    let mut form = form(rows);
    form.push(("edited".into(), edited.into()));
    form.push(("note".into(), "a change under test".into()));
    call(&w.app, client, "save_mapping", &form).await
}

/// [`call`], which must answer 200; its JSON.
async fn call_json(
    app: &TestApp,
    client: &reqwest::Client,
    endpoint: &str,
    form: &[(String, String)],
) -> Value {
    json_of(call(app, client, endpoint, form).await).await
}

#[tokio::test]
async fn an_export_records_its_version_and_a_retry_chooses_original_or_current() {
    let w = world().await;
    w.search_returns(json!([])).await;
    Mock::given(method("POST"))
        .and(path("/v1/people"))
        .and(body_partial_json(json!({
            "firstName": "Cher", "surname": "Cher", "email": "cher@example.com",
            "work": {"site": "London"}, "home": {"mobilePhone": "+447700900123"}
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": EMPLOYEE_ID})))
        .expect(1)
        .mount(&w.hibob)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/people"))
        .respond_with(ResponseTemplate::new(500))
        .with_priority(10)
        .expect(0)
        .mount(&w.hibob)
        .await;

    let id = w.app.hire(7).await;
    w.app.worker.run_once().await.unwrap();
    let (status, version, error) = w.export(id).await;
    assert_eq!((status.as_str(), version), ("needs_attention", Some(1)));
    let error = error.unwrap();
    assert!(
        error.contains("Mapping version 1") && error.contains("Last name (root.surname)"),
        "{error}"
    );
    assert!(error.contains("(candidate_last_name is empty)"), "{error}");

    // an operator fixes the mapping: version 2
    let operator = w.app.user_with_role("operator").await;
    let mut form = fixed_rows();
    form.push(("note".into(), "surname falls back to the first name".into()));
    form.push(("edited".into(), "1".into()));
    let res = call(&w.app, &operator, "save_mapping", &form).await;
    assert_eq!(json_of(res).await, json!(2));

    // retried with its original mapping it fails the same way, and stays on version 1
    let retry = |mapping: &'static str| {
        let id = id.to_string();
        vec![
            ("id".to_owned(), id),
            ("mapping".to_owned(), mapping.to_owned()),
        ]
    };
    let res = call(&w.app, &operator, "retry_export", &retry("original")).await;
    assert_ok(res).await;
    w.app.worker.run_once().await.unwrap();
    let (status, version, _) = w.export(id).await;
    assert_eq!((status.as_str(), version), ("needs_attention", Some(1)));

    // with the current mapping it succeeds, and says which version built it
    let res = call(&w.app, &operator, "retry_export", &retry("current")).await;
    assert_eq!(res.status(), 200);
    w.app.worker.run_once().await.unwrap();
    let (status, version, _) = w.export(id).await;
    assert_eq!((status.as_str(), version), ("succeeded", Some(2)));

    let retried: Vec<String> = w
        .app
        .sql
        .scalars(
            "SELECT detail FROM audit_log WHERE action = 'export.retried' ORDER BY id",
            &[],
        )
        .await;
    assert!(retried[0].contains("original mapping v1"), "{retried:?}");
    assert!(retried[1].contains("current mapping"), "{retried:?}");
    let saved: String = w
        .app
        .sql
        .scalar(
            "SELECT detail FROM audit_log WHERE action = 'mapping.saved' AND target = 'mapping v2'",
            &[],
        )
        .await;
    assert!(saved.contains("surname falls back"), "{saved}");

    // the export page names the version
    let admin = w.app.admin().await;
    let view = call_json(&w.app, &admin, "export", &[("id".into(), id.to_string())]).await;
    assert_eq!(view["mapping_version"], json!(2));
    let steps = view["timeline"].to_string();
    assert!(steps.contains("mapping v2"), "{steps}");

    // attempts are counted across both retries, on the page and on the timeline
    assert_eq!(
        view["attempts_text"],
        json!("3 in all; 1 of 8 since the last retry"),
        "{view}"
    );
    let timeline = view["timeline"].as_array().unwrap();
    let entry = |title: &str| {
        timeline
            .iter()
            .find(|t| t["title"] == title)
            .unwrap_or_else(|| panic!("no {title:?} in {steps}"))
    };
    assert_eq!(
        entry("Attempt 1: Build the HiBob employee")["outcome"],
        "failed"
    );
    assert_eq!(
        entry("Attempt 2: Build the HiBob employee")["outcome"],
        "failed"
    );
    // the attempt after the fix shows the body it built and the body HiBob got
    let built = entry("Attempt 3: Build the HiBob employee");
    assert_eq!(built["detail"], "mapping v2", "{built}");
    assert!(
        built["body"][1]
            .as_str()
            .unwrap()
            .contains("\"surname\": \"Cher\""),
        "{built}"
    );
    let sent = entry("Attempt 3: Create the employee in HiBob");
    assert_eq!(sent["body"][0], "Body sent to HiBob", "{sent}");
    assert!(
        sent["body"][1]
            .as_str()
            .unwrap()
            .contains("\"surname\": \"Cher\""),
        "{sent}"
    );
}

#[tokio::test]
async fn a_constant_site_hibob_lacks_or_a_missing_note_is_refused_and_recent_hires_are_counted() {
    let w = world().await;
    let admin = w.app.admin().await;
    let versions = || async {
        w.app
            .sql
            .scalar::<i64>("SELECT COUNT(*) FROM mapping_versions", &[])
            .await
    };

    // the site typed as a template line: every hire would stop on it, so it is not saved
    let mut hq = rows();
    hq[3].1 = "London HQ".into();
    let issues = call_json(&w.app, &admin, "lint_mapping", &form(&hq)).await;
    let site = issues
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["field"] == json!(3))
        .cloned()
        .unwrap_or_default();
    assert_eq!(site["error"], json!(true), "{issues}");
    assert!(
        site["text"]
            .as_str()
            .unwrap_or_default()
            .contains("Did you mean London?"),
        "{site}"
    );
    let res = save_mapping(&w, &admin, &hq, "1").await;
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("Did you mean London?"));

    // a good mapping without a note: the version list would get a blank line
    let mut unnoted = form(&rows());
    unnoted.push(("edited".into(), "1".into()));
    unnoted.push(("note".into(), "   ".into()));
    let res = call(&w.app, &admin, "save_mapping", &unnoted).await;
    assert_eq!(res.status(), 422);
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("say what changed and why"));
    assert_eq!(versions().await, 1);

    // before saving over warnings: what the mapping would have done to the recent hire (no
    // last name), read again from Pinpoint
    w.app.hire(7).await;
    let mut no_fallback = rows();
    no_fallback[1].1 = "{{ candidate_last_name }}".into();
    let answer = call_json(&w.app, &admin, "mapping_effect", &form(&no_fallback)).await;
    assert_eq!(
        answer,
        json!("1 hire in the last 30 days would have needed attention.")
    );
    let answer = call_json(&w.app, &admin, "mapping_effect", &form(&rows())).await;
    assert_eq!(
        answer,
        json!("None of the 1 hire(s) checked from the last 30 days would have needed attention.")
    );
    let viewer = w.app.user_with_role("viewer").await;
    assert_eq!(
        call(&w.app, &viewer, "mapping_effect", &form(&rows()))
            .await
            .status(),
        403
    );
}

#[tokio::test]
async fn saving_is_linted_guarded_against_stale_edits_and_refused_to_viewers() {
    let w = world().await;
    let admin = w.app.admin().await;

    // an unknown variable and a syntax error: nothing saved, and lint says where
    let mut bad = rows();
    bad[0].1 = "{{ candidat_first_name }}".into();
    bad[4].1 = "{{ candidate_start_date | }}".into();
    let issues = call_json(&w.app, &admin, "lint_mapping", &form(&bad)).await;
    let text = issues.to_string();
    assert!(
        text.contains("Did you mean candidate_first_name?"),
        "{text}"
    );
    assert!(
        text.contains("syntax error") && text.contains("line 1, column"),
        "{text}"
    );
    assert_eq!(issues[0]["field"], json!(0), "{text}");
    let res = save_mapping(&w, &admin, &bad, "1").await;
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("not saved"));
    let versions: i64 = w
        .app
        .sql
        .scalar("SELECT COUNT(*) FROM mapping_versions", &[])
        .await;
    assert_eq!(versions, 1);

    // a field HiBob does not have, and a site outside HiBob's list
    let mut wrong = rows();
    wrong[5].0 = "work.nonsense".into();
    wrong[3].2 = "Mars".into();
    let res = save_mapping(&w, &admin, &wrong, "1").await;
    let text = res.text().await.unwrap();
    assert!(text.contains("HiBob has no field with this id"), "{text}");
    assert!(text.contains("not in HiBob's site list"), "{text}");

    // two editors from version 1: the second is told, not overwritten
    assert_eq!(save_mapping(&w, &admin, &rows(), "1").await.status(), 200);
    let mut other = rows();
    other[0].1 = "{{ candidate_preferred_name }}".into();
    let res = save_mapping(&w, &admin, &other, "1").await;
    assert_eq!(res.status(), 422);
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("saved while you were editing"));

    // the version page shows the diff; restoring version 1 makes version 3
    let v2 = call_json(
        &w.app,
        &admin,
        "mapping_version",
        &[("id".into(), "2".into())],
    )
    .await;
    let diff = v2["diff"].to_string();
    assert!(
        diff.contains("root.surname") && diff.contains("home.mobilePhone"),
        "{diff}"
    );
    let res = call(
        &w.app,
        &admin,
        "restore_mapping",
        &[("id".into(), "1".into())],
    )
    .await;
    assert_eq!(res.json::<i64>().await.unwrap(), 3);
    let restored = call_json(
        &w.app,
        &admin,
        "mapping_version",
        &[("id".into(), "3".into())],
    )
    .await;
    assert_eq!(restored["restored_from"], json!(1));

    // viewers read but do not write
    let viewer = w.app.user_with_role("viewer").await;
    let view = call_json(&w.app, &viewer, "mapping_editor", &[]).await;
    assert_eq!(view["can_edit"], json!(false));
    assert_eq!(view["version"], json!(3));
    assert_eq!(save_mapping(&w, &viewer, &rows(), "3").await.status(), 403);
    assert_eq!(
        call(
            &w.app,
            &viewer,
            "restore_mapping",
            &[("id".into(), "2".into())]
        )
        .await
        .status(),
        403
    );
    let vars = vec![
        ("variables[0][name]".to_owned(), "x".to_owned()),
        ("variables[0][template]".to_owned(), "y".to_owned()),
        ("edited".to_owned(), "3".to_owned()),
    ];
    assert_eq!(
        call(&w.app, &viewer, "save_variables", &vars)
            .await
            .status(),
        403
    );
}

#[tokio::test]
async fn custom_variables_are_saved_with_the_mapping_and_cycles_refused() {
    let w = world().await;
    let admin = w.app.admin().await;
    let var = |i: usize, name: &str, template: &str| {
        vec![
            (format!("variables[{i}][name]"), name.to_owned()),
            (format!("variables[{i}][template]"), template.to_owned()),
        ]
    };
    let mut cycle = var(0, "a", "{{ b }}");
    cycle.extend(var(1, "b", "{{ a }}"));
    cycle.push(("edited".into(), "1".into()));
    let res = call(&w.app, &admin, "save_variables", &cycle).await;
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("a → b → a"));

    let mut ok = var(0, "company_name", "Analytical Engines");
    ok.extend(var(
        1,
        "work_email",
        "{{ candidate_first_name | lower }}@example.org",
    ));
    ok.push(("edited".into(), "1".into()));
    ok.push(("note".into(), "a company name and work e-mail".into()));
    let res = call(&w.app, &admin, "save_variables", &ok).await;
    assert_ok(res).await;
    let view = call_json(&w.app, &admin, "mapping_editor", &[]).await;
    assert_eq!(view["variables"][1]["name"], json!("work_email"));
    assert_eq!(view["rows"].as_array().unwrap().len(), 5, "fields are kept");
}

#[tokio::test]
async fn the_preview_renders_a_real_application_and_compares_with_hibob() {
    let w = world().await;
    w.search_returns(json!([{"id": "111", "email": "cher@example.com", "displayName": "Cher",
                             "firstName": "Cher", "surname": "", "home": {"mobilePhone": "+447700900123"}}]))
        .await;
    let id = w.app.hire(7).await;
    let operator = w.app.user_with_role("operator").await;
    let mut form = fixed_rows();
    form.push(("source".into(), format!("export:{id}")));
    form.push(("compare".into(), "true".into()));
    let res = call(&w.app, &operator, "preview_mapping", &form).await;
    let p = json_of(res).await;
    assert!(
        p["candidate"].as_str().unwrap().contains("application 7"),
        "{p}"
    );
    assert!(p["errors"].as_array().unwrap().is_empty(), "{p}");
    let body: Value = serde_json::from_str(p["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["surname"], json!("Cher"));
    assert_eq!(body["home"]["mobilePhone"], json!("+447700900123"));
    let surname = p["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["target"] == "root.surname")
        .unwrap();
    assert_eq!(surname["came_from"], json!("fallback: template 2"));
    let comparison = &p["comparison"];
    assert!(
        comparison["message"].as_str().unwrap().contains("111"),
        "{comparison}"
    );
    let lines = comparison["lines"].to_string();
    assert!(lines.contains("root.surname"), "{lines}");

    // the built-in mapping on the same candidate: the failure is named, nothing is sent
    let res = call(
        &w.app,
        &operator,
        "preview_mapping",
        &[("source".into(), "sample".into())],
    )
    .await;
    let p: Value = res.json().await.unwrap();
    assert!(
        p["errors"]
            .to_string()
            .contains("HiBob requires this field"),
        "{p}"
    );
    let creates = w
        .hibob
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.method.as_str() == "POST" && r.url.path() == "/v1/people")
        .count();
    assert_eq!(creates, 0, "a preview never creates anyone");

    // a viewer may not preview (it calls Pinpoint and HiBob)
    let viewer = w.app.user_with_role("viewer").await;
    assert_eq!(
        call(
            &w.app,
            &viewer,
            "preview_mapping",
            &[("source".into(), "sample".into())]
        )
        .await
        .status(),
        403
    );
    let _ = &w.pinpoint;
}

#[tokio::test]
async fn the_comparison_reads_the_candidates_own_record_and_only_mappable_fields() {
    let w = world().await;
    w.search_returns(
        json!([{"id": "111", "email": "cher@example.com", "displayName": "Cher",
                             "firstName": "Cher", "surname": ""}]),
    )
    .await;
    let id = w.app.hire(7).await;
    let operator = w.app.user_with_role("operator").await;
    // the mapped email is someone else's, and one row names a field no mapping may set
    let mut rows = rows();
    rows[2] = ("root.email".into(), String::new(), "ceo@example.com".into());
    rows.push((
        "payroll.salary.base".into(),
        "{{ candidate_first_name }}".into(),
        String::new(),
    ));
    rows.push((
        "root.fullName".into(),
        "{{ candidate_full_name }}".into(),
        String::new(),
    ));
    let mut form = form(&rows);
    form.push(("source".into(), format!("export:{id}")));
    form.push(("compare".into(), "true".into()));
    let res = call(&w.app, &operator, "preview_mapping", &form).await;
    let p = json_of(res).await;
    assert!(
        p["comparison"]["message"].as_str().unwrap().contains("111"),
        "{p}"
    );
    let lines = p["comparison"]["lines"].to_string();
    assert!(lines.contains("root.firstName"), "{lines}");
    assert!(!lines.contains("payroll"), "{lines}");
    assert!(!lines.contains("fullName"), "{lines}");

    let searches: Vec<Value> = w
        .hibob
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.url.path() == "/v1/people/search")
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    assert_eq!(searches.len(), 1, "{searches:?}");
    let search = searches[0].to_string();
    assert!(search.contains("cher@example.com"), "{search}");
    assert!(!search.contains("ceo@example.com"), "{search}");
    let fields: Vec<&str> = searches[0]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(fields.contains(&"root.firstName"), "{fields:?}");
    assert!(
        fields
            .iter()
            .all(|f| !f.contains("payroll") && *f != "root.fullName"),
        "{fields:?}"
    );
}

#[tokio::test]
async fn the_plugin_meta_follows_the_mapping_in_force() {
    let w = world().await;
    let admin = w.app.admin().await;
    let mut changed = rows();
    changed[0].1 = "{{ candidate_preferred_name | default(candidate_first_name) | title }}".into();
    assert_eq!(save_mapping(&w, &admin, &changed, "1").await.status(), 200);
    let meta = json_of(
        reqwest::Client::new()
            .post(w.app.url("/"))
            .json(&json!({}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let mappings = meta["actions"][0]["mappings"].to_string();
    assert!(
        mappings.contains("{{candidate_preferred_name}}"),
        "{mappings}"
    );
    assert!(mappings.contains("{{candidate_email}}"), "{mappings}");
}

#[tokio::test]
async fn the_plugin_form_is_prefilled_through_the_mapping() {
    let w = world().await;
    let admin = w.app.admin().await;
    let mut changed = rows();
    changed[0].1 = "{{ candidate_first_name | title }}".into();
    changed[1].1 = "{{ candidate_last_name | upper }}\n{{ candidate_first_name }}".into();
    changed[3].1 = String::new();
    changed[3].2 = "London".into();
    changed[4].1 =
        "{{ candidate_start_date | next_weekday('monday') }}\n{{ default_start_date }}".into();
    let res = save_mapping(&w, &admin, &changed, "1").await;
    assert_ok(res).await;

    let res = reqwest::Client::new()
        .post(w.app.url("/export-candidate/meta"))
        .header("X-Plugin-Token", PLUGIN_TOKEN)
        .json(&json!({"formFields": [
            {"key": "firstName", "value": "ada"},
            {"key": "lastName", "value": "lovelace"},
            {"key": "email", "value": "ada@example.com"},
            {"key": "startDate", "value": "2026-12-03"}
        ]}))
        .send()
        .await
        .unwrap();
    let meta = json_of(res).await;
    let fields = meta["formFields"].as_array().unwrap();
    let value = |key: &str| {
        fields
            .iter()
            .find(|f| f["key"] == key)
            .map(|f| f["value"].clone())
    };
    assert_eq!(value("firstName"), Some(json!("Ada")), "{meta}");
    assert_eq!(value("lastName"), Some(json!("LOVELACE")));
    assert_eq!(value("email"), Some(json!("ada@example.com")));
    // Thursday 3 December 2026 → the Monday after
    assert_eq!(value("startDate"), Some(json!("2026-12-07")));
    assert_eq!(
        value("site"),
        Some(json!("London")),
        "the mapping's fixed site is preselected"
    );
}

#[tokio::test]
async fn a_bulk_retry_uses_the_current_mapping_and_a_cancel_restores_the_pinned_one() {
    let w = world().await;
    w.search_returns(json!([])).await;
    fakes::create(created()).mount(&w.hibob).await;
    let id = w.app.hire(7).await;
    w.app.worker.run_once().await.unwrap();
    assert_eq!(w.export(id).await.1, Some(1));
    let admin = w.app.admin().await;
    assert_eq!(save_mapping(&w, &admin, &rows(), "1").await.status(), 200);

    let page = call_json(&w.app, &admin, "exports", &[]).await;
    assert_eq!(
        page["mapping_version"],
        json!(2),
        "the preview names the version in force"
    );

    let bulk = [
        ("status".to_owned(), "needs_attention".to_owned()),
        ("expected".to_owned(), "1".to_owned()),
    ];
    let started = call_json(&w.app, &admin, "retry_matching_exports", &bulk).await;
    assert_eq!(
        w.export(id).await.1,
        None,
        "unpinned: the next attempt takes the current version"
    );
    let run = started["run_id"].to_string();
    let res = call(&w.app, &admin, "cancel_bulk_retry", &[("id".into(), run)]).await;
    assert_ok(res).await;
    let (status, version, _) = w.export(id).await;
    assert_eq!(
        (status.as_str(), version),
        ("needs_attention", Some(1)),
        "a cancel restores the pinned version"
    );

    call(&w.app, &admin, "retry_matching_exports", &bulk).await;
    w.app.worker.run_once().await.unwrap();
    let (status, version, _) = w.export(id).await;
    assert_eq!((status.as_str(), version), ("succeeded", Some(2)));
}

/// A hire with complete names whose application carries `created_at` (application `id`), or not.
/// The names tell hires apart in letters only, as HiBob's rules for names ask.
async fn mount_application(w: &World, id: u32, created_at: Option<&str>) {
    let surname: String = id
        .to_string()
        .chars()
        .filter_map(|d| d.to_digit(10))
        .map(|d| char::from(b'a' + d as u8))
        .collect();
    let mut attributes = json!({"first_name": "Ada", "last_name": format!("Lovelace {surname}"),
                                "email": format!("ada{id}@example.com")});
    if let Some(at) = created_at {
        attributes["created_at"] = json!(at);
    }
    fakes::application(id, attributes).mount(&w.pinpoint).await;
}

#[tokio::test]
async fn a_template_that_fails_on_one_hire_stops_only_that_export() {
    let w = world().await;
    w.search_returns(json!([])).await;
    fakes::create(created()).expect(2).mount(&w.hibob).await;
    mount_application(&w, 21, Some("2026-11-30T09:15:00.000Z")).await;
    mount_application(&w, 22, None).await;
    let admin = w.app.admin().await;

    // a start date written with a time: refused when saved now, and said why
    let template = "{{ application.created_at | date(\"%d/%m/%Y %H:%M\") }}";
    let mut with_time = rows();
    with_time[4].1 = format!("{template}\n{{{{ default_start_date }}}}");
    let res = save_mapping(&w, &admin, &with_time, "1").await;
    assert_eq!(res.status(), 422);
    let issues = call_json(&w.app, &admin, "lint_mapping", &form(&with_time)).await;
    assert!(
        issues.to_string().contains("more than a date has"),
        "{issues}"
    );

    // a version saved before that check existed still runs, and fails only where it must
    let mut document = integration::mapping::default_document();
    let start = document
        .fields
        .iter_mut()
        .find(|f| f.target == "work.startDate")
        .unwrap();
    start.sources.insert(0, template.to_owned());
    w.app
        .db
        .mappings()
        .save(
            &integration::access::users::Actor::system("an older release"),
            &document,
            "start date with a time",
            1,
        )
        .await
        .unwrap();

    let first = w.app.hire(21).await;
    let second = w.app.hire(22).await;
    let (_, outcome) = w.app.worker.run_once().await.unwrap().unwrap();
    assert!(
        matches!(
            outcome,
            integration::exports::pipeline::AttemptOutcome::NeedsAttention(_)
        ),
        "{outcome:?}"
    );
    let (status, version, error) = w.export(first).await;
    assert_eq!((status.as_str(), version), ("needs_attention", Some(2)));
    let error = error.unwrap_or_default();
    assert!(
        error.contains("work.startDate") && error.contains("more than a date has"),
        "{error}"
    );
    // the next hire is not held up by the first
    w.app.worker.run_once().await.unwrap().unwrap();
    assert_eq!(w.export(second).await.0, "succeeded");

    // restore version 1 and retry: it succeeds
    let res = call(
        &w.app,
        &admin,
        "restore_mapping",
        &[("id".into(), "1".into())],
    )
    .await;
    assert_ok(res).await;
    let res = call(
        &w.app,
        &admin,
        "retry_export",
        &[
            ("id".into(), first.to_string()),
            ("mapping".into(), "current".into()),
        ],
    )
    .await;
    assert_eq!(res.status(), 200);
    w.app.worker.run_once().await.unwrap().unwrap();
    let (status, version, _) = w.export(first).await;
    assert_eq!((status.as_str(), version), ("succeeded", Some(3)));
}

#[tokio::test]
async fn hostile_templates_get_a_lint_error_fast_and_the_process_stays_up() {
    let w = world().await;
    let operator = w.app.user_with_role("operator").await;
    for hostile in [
        "{% set ns = namespace(s=\"xxxxxxxx\") %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}",
        "{{ 'x' * 99999999999 }}",
        "{{ 'xxxxxxxx' | replace('', 'xxxxxxxx') | replace('', 'xxxxxxxx') | replace('', 'xxxxxxxx') | replace('', 'xxxxxxxx') }}",
    ] {
        let mut r = rows();
        r[0].1 = hostile.to_owned();
        for endpoint in ["lint_mapping", "preview_mapping"] {
            let mut f = form(&r);
            f.push(("source".into(), "sample".into()));
            let res = call(&w.app, &operator, endpoint, &f).await;
            let text = res.text().await.unwrap_or_default();
            assert!(
                text.contains("not available")
                    || text.contains("grew past")
                    || text.contains("more than 16 KiB"),
                "{endpoint} {hostile}: {text}"
            );
        }
    }
    let res = reqwest::get(w.app.url("/healthz")).await.unwrap();
    assert_eq!(res.status(), 200);
}

/// One mapping, two ways in: a hire by webhook and the same hire sent with the plugin's form
/// reach HiBob with the same body, every extra field included and encoded alike.
#[tokio::test]
async fn a_webhook_hire_and_a_plugin_submit_send_the_same_mapped_body() {
    let w = world().await;
    // the catalogue with a list field and a custom field beside the usual ones
    Mock::given(method("GET"))
        .and(path("/v1/company/people/fields"))
        .respond_with(ResponseTemplate::new(200).set_body_json(fields(&[
            json!({"id": "work.department", "name": "Department", "type": "list", "category": "work", "jsonPath": "work.department", "typeData": {"listId": "department"}}),
            json!({"id": "work.custom.field_9", "name": "Hiring wave", "type": "text", "category": "work", "jsonPath": "work.custom.field_9", "typeData": {}}),
        ])))
        .with_priority(1)
        .mount(&w.hibob)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/company/named-lists"))
        .respond_with(ResponseTemplate::new(200).set_body_json(lists(&[json!(
            {"name": "department", "items": [
                {"id": 101, "value": "Engineering", "name": "Engineering", "archived": false, "children": []},
                {"id": 102, "value": "Sales", "name": "Sales", "archived": false, "children": []}
            ]}
        )])))
        .with_priority(1)
        .mount(&w.hibob)
        .await;
    w.creates(2).await;

    let admin = w.app.admin().await;
    let mut extended = rows();
    extended.push((
        "work.custom.field_9".into(),
        String::new(),
        "Wave 12".into(),
    ));
    extended.push((
        "work.department".into(),
        String::new(),
        "Engineering".into(),
    ));
    let mut save = form(&extended);
    save.push(("edited".into(), "1".into()));
    save.push(("note".into(), "a team and a department".into()));
    let res = call(&w.app, &admin, "save_mapping", &save).await;
    assert_eq!(
        res.status(),
        200,
        "{}",
        res.text().await.unwrap_or_default()
    );

    // by webhook
    let id = w.app.hire(7).await;
    w.app.worker.run_once().await.unwrap();
    assert_eq!(w.export(id).await.0, "succeeded");

    // by the plugin: the form Pinpoint gets for the same candidate, sent back as prefilled
    let plugin = |path: &str, body: Value| plugin_call(&w.app, path, body);
    let meta: Value = plugin("/", json!({})).await.unwrap().json().await.unwrap();
    let declared = meta["actions"][0]["mappings"].to_string();
    assert!(
        declared.contains(r#""key":"home_mobilePhone""#)
            && declared.contains("{{candidate_telephone_number}}"),
        "{declared}"
    );
    // the call names the application: the console reads it from Pinpoint as the webhook path does
    let form: Value = plugin("/export-candidate/meta", json!({"applicationId": 7}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let fields = form["formFields"].as_array().unwrap();
    let field = |key: &str| fields.iter().find(|f| f["key"] == key).cloned();
    for key in ["home_mobilePhone", "work_custom_field_9", "department"] {
        assert!(field(key).is_some(), "the form offers {key}: {form}");
    }
    let department = field("department").unwrap();
    assert_eq!(department["value"], "101", "{department}");
    assert_eq!(
        department["singleSelectOptions"].as_array().unwrap().len(),
        2
    );
    assert!(field("email").unwrap()["description"]
        .as_str()
        .unwrap()
        .contains("work address"));
    let sent: Vec<Value> = fields
        .iter()
        .filter(|f| f.get("value").is_some_and(|v| !v.is_null()))
        .map(|f| json!({"key": f["key"], "value": f["value"]}))
        .collect();
    assert_eq!(field("home_mobilePhone").unwrap()["value"], "+447700900123");
    let answer: Value = plugin(
        "/export-candidate/submit",
        json!({ "applicationId": 7, "formFields": sent }),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(answer["success"], true, "{answer}");

    let bodies = create_bodies(&w.hibob).await;
    assert_eq!(bodies.len(), 2);
    assert_eq!(bodies[0], bodies[1], "both ways in send the same body");
    let body = &bodies[0];
    assert_eq!(body["home"]["mobilePhone"], "+447700900123");
    assert_eq!(body["work"]["custom"]["field_9"], "Wave 12");
    assert_eq!(body["work"]["department"], "101");
    assert_eq!(body["surname"], "Cher");
    w.hibob.verify().await;
}

/// The submit fills what it leaves out with the values its form showed, from the copy the form
/// read: the application is read from Pinpoint once for the form and its submit.
#[tokio::test]
async fn a_submit_reuses_the_application_its_form_read() {
    let w = world().await;
    fakes::create(fakes::created()).mount(&w.hibob).await;
    let plugin = |path: &str, body: Value| plugin_call(&w.app, path, body);
    let form = plugin("/export-candidate/meta", json!({"applicationId": 7}))
        .await
        .unwrap();
    assert!(form.status().is_success());
    // a submit that sends only the names: the e-mail comes from the mapping and the application
    let answer: Value = plugin(
        "/export-candidate/submit",
        json!({"applicationId": 7, "formFields": [
            {"key": "firstName", "value": "Cher"}, {"key": "lastName", "value": "Sarkisian"}]}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(answer["success"], true, "{answer}");
    let reads = w
        .pinpoint
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method.as_str() == "GET" && r.url.path() == "/api/v1/applications/7")
        .count();
    assert_eq!(reads, 1, "one read for the form and its submit");
    let created = create_bodies(&w.hibob).await;
    assert_eq!(created.len(), 1);
    assert_eq!(created[0]["email"], "cher@example.com");
    assert_eq!(created[0]["surname"], "Sarkisian");
}

/// A form for a named application carries the application's CV link, so the recruiter does not
/// attach the file again.
#[tokio::test]
async fn the_form_of_a_named_application_carries_its_cv() {
    let w = world().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/applications/8"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": {"id": "8", "type": "applications",
                     "attributes": {"first_name": "Grace", "last_name": "Hopper", "email": "grace@example.com",
                                    "attachments": [{"context": "pdf_cv", "url": "https://files.example.com/cv/8.pdf", "filename": "cv.pdf"}]}}
        })))
        .mount(&w.pinpoint)
        .await;
    let form: Value = reqwest::Client::new()
        .post(w.app.url("/export-candidate/meta"))
        .header("X-Plugin-Token", PLUGIN_TOKEN)
        .json(&json!({"applicationId": 8}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let fields = form["formFields"].as_array().unwrap();
    let value = |key: &str| {
        fields
            .iter()
            .find(|f| f["key"] == key)
            .map(|f| f["value"].clone())
    };
    assert_eq!(value("lastName"), Some(json!("Hopper")), "{form}");
    assert_eq!(
        value("cvDocument"),
        Some(json!("https://files.example.com/cv/8.pdf"))
    );
}

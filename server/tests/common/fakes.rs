//! Stand-ins for the services the console calls: wiremock servers for Pinpoint, HiBob and an
//! alert hook, the answers the tests keep mounting on them, and the sandbox's stateful
//! simulators.

use serde_json::{json, Value};
use server::sandbox::{self, SandboxCredentials, Simulators};
use wiremock::{
    matchers::{body_partial_json, header, method, path, path_regex},
    Mock, MockServer, Request, ResponseTemplate,
};

use super::{arguments, webhook, TestApp};

pub const PINPOINT_API_KEY: &str = "pp-key";
pub const HIBOB_SERVICE_USER_ID: &str = "SERVICE-1";
pub const HIBOB_TOKEN: &str = "hb-token";
/// The id HiBob gives the employee it creates.
pub const EMPLOYEE_ID: &str = "3332883884017713238";

/// Pinpoint and HiBob, each on its own port, answering only what a test mounts.
pub struct Fakes {
    pub pinpoint: MockServer,
    pub hibob: MockServer,
}

impl Fakes {
    pub async fn start() -> Self {
        Self {
            pinpoint: MockServer::start().await,
            hibob: MockServer::start().await,
        }
    }

    pub fn pinpoint_base(&self) -> String {
        format!("{}/api/v1", self.pinpoint.uri())
    }

    pub fn hibob_base(&self) -> String {
        format!("{}/v1", self.hibob.uri())
    }

    /// Console arguments that connect it to both fakes, with webhooks signed by
    /// [`webhook::SECRET`], then `extra`, which replaces the defaults it names.
    pub fn args(&self, extra: &[&str]) -> Vec<String> {
        let (pinpoint, hibob) = (self.pinpoint_base(), self.hibob_base());
        let mut defaults = vec![
            ("--pinpoint-webhook-secret", webhook::SECRET),
            ("--pinpoint-api-base-url", pinpoint.as_str()),
            ("--pinpoint-api-key", PINPOINT_API_KEY),
        ];
        defaults.extend(hibob_defaults(&hibob));
        arguments(&defaults, extra)
    }

    /// Pinpoint holds every application as Jane Doe without a CV and takes comments; HiBob finds
    /// nobody and creates whoever it is sent. A test's own mocks of a particular application, or
    /// of a create with a higher priority, come first.
    pub async fn every_hire_succeeds(&self) {
        any_application(jane()).mount(&self.pinpoint).await;
        comment_posted().mount(&self.pinpoint).await;
        search_finds_nobody().mount(&self.hibob).await;
        create(created()).mount(&self.hibob).await;
        no_documents().mount(&self.hibob).await;
    }

    /// A console connected to both fakes.
    pub async fn app(&self) -> TestApp {
        self.app_with(&[]).await
    }

    /// A console connected to both fakes, with `extra` arguments.
    pub async fn app_with(&self, extra: &[&str]) -> TestApp {
        TestApp::spawn_with(&self.args(extra)).await
    }
}

/// The arguments for HiBob at `base`, with a timeout short enough that a test of a HiBob that
/// hangs does not wait long.
fn hibob_defaults(base: &str) -> [(&'static str, &str); 5] {
    [
        ("--hibob-api-base-url", base),
        ("--hibob-service-user-id", HIBOB_SERVICE_USER_ID),
        ("--hibob-service-user-token", HIBOB_TOKEN),
        ("--hibob-default-site", "London"),
        ("--outbound-timeout-secs", "1"),
    ]
}

/// Console arguments that connect it to HiBob at `base` alone, then `extra`, which replaces the
/// defaults it names.
pub fn hibob_args(base: &str, extra: &[&str]) -> Vec<String> {
    arguments(&hibob_defaults(base), extra)
}

/// Jane Doe, as Pinpoint's attributes of her application (without a CV).
pub fn jane() -> Value {
    json!({"first_name": "Jane", "last_name": "Doe", "email": "jane.doe@example.com"})
}

fn application_document(id: &str, attributes: &Value) -> Value {
    json!({
        "data": {"id": id, "type": "applications", "attributes": attributes, "relationships": {}}
    })
}

/// Pinpoint's application `id`, with `attributes`, to a caller with the API key.
pub fn application(id: impl std::fmt::Display, attributes: Value) -> Mock {
    let id = id.to_string();
    Mock::given(method("GET"))
        .and(path(format!("/api/v1/applications/{id}")))
        .and(header("x-api-key", PINPOINT_API_KEY))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(application_document(&id, &attributes)),
        )
}

/// Every application Pinpoint is asked for, with `attributes`, to a caller with the API key;
/// one mounted for a particular id comes first.
pub fn any_application(attributes: Value) -> Mock {
    Mock::given(method("GET"))
        .and(path_regex(r"^/api/v1/applications/\d+$"))
        .and(header("x-api-key", PINPOINT_API_KEY))
        .respond_with(move |request: &Request| {
            let id = request.url.path().rsplit('/').next().unwrap_or_default();
            ResponseTemplate::new(200).set_body_json(application_document(id, &attributes))
        })
        .with_priority(10)
}

/// Pinpoint takes a comment on an application.
pub fn comment_posted() -> Mock {
    Mock::given(method("POST"))
        .and(path("/api/v1/comments"))
        .and(body_partial_json(json!({"data": {"type": "comments"}})))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(json!({"data": {"id": "77", "type": "comments"}})),
        )
}

/// HiBob's people search finds `employees`.
pub fn search_finds(employees: Value) -> Mock {
    Mock::given(method("POST"))
        .and(path("/v1/people/search"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "employees": employees })))
}

pub fn search_finds_nobody() -> Mock {
    search_finds(json!([]))
}

/// HiBob answers every create with `response`.
pub fn create(response: ResponseTemplate) -> Mock {
    Mock::given(method("POST"))
        .and(path("/v1/people"))
        .respond_with(response)
}

/// HiBob's answer to a create it accepted: the new employee's id.
pub fn created() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({ "id": EMPLOYEE_ID }))
}

/// HiBob's refusal of a create at a site it does not have (it says "Site London does not exist").
pub fn site_not_found() -> ResponseTemplate {
    ResponseTemplate::new(400).set_body_json(
        json!({"key": "validations.site.notfound", "error": "Site London does not exist"}),
    )
}

/// HiBob holds no documents for the employee it created.
pub fn no_documents() -> Mock {
    Mock::given(method("GET"))
        .and(path(format!("/v1/docs/people/{EMPLOYEE_ID}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"documents": []})))
}

/// HiBob's named lists (sites, departments…).
pub fn named_lists(lists: Value) -> Mock {
    Mock::given(method("GET"))
        .and(path("/v1/company/named-lists"))
        .respond_with(ResponseTemplate::new(200).set_body_json(lists))
}

/// An alert webhook in Slack's manner, on its own port, answering what a test mounts.
pub struct Slack {
    pub server: MockServer,
}

impl Slack {
    pub async fn start() -> Self {
        Self {
            server: MockServer::start().await,
        }
    }

    /// The URL to give the console as its alert webhook.
    pub fn hook(&self) -> String {
        format!("{}/hook", self.server.uri())
    }

    /// Answers every message with `status`.
    pub fn answers(status: u16) -> Mock {
        Mock::given(method("POST")).respond_with(ResponseTemplate::new(status))
    }

    /// The text of every message it was sent, in order.
    pub async fn texts(&self) -> Vec<String> {
        self.server
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .map(|r| {
                let body: Value = serde_json::from_slice(&r.body).unwrap_or_default();
                body["text"].as_str().unwrap_or_default().to_owned()
            })
            .collect()
    }
}

/// The sandbox's simulators of Pinpoint and HiBob, on a free loopback port.
pub async fn simulators() -> Simulators {
    sandbox::start(
        "127.0.0.1:0".parse().expect("address"),
        SandboxCredentials::generate(),
    )
    .await
    .expect("simulators")
}

/// Console arguments that connect it to the simulators, with webhooks signed by
/// [`webhook::SECRET`], then `extra`, which replaces the defaults it names.
pub fn simulator_args(sims: &Simulators, extra: &[&str]) -> Vec<String> {
    let creds = &sims.credentials;
    let defaults = [
        ("--pinpoint-webhook-secret", webhook::SECRET),
        ("--pinpoint-api-base-url", sims.pinpoint_base_url.as_str()),
        ("--pinpoint-api-key", creds.pinpoint_api_key.as_str()),
        ("--hibob-api-base-url", sims.hibob_base_url.as_str()),
        (
            "--hibob-service-user-id",
            creds.hibob_service_user_id.as_str(),
        ),
        ("--hibob-service-user-token", creds.hibob_token.as_str()),
        ("--hibob-default-site", "London"),
        ("--outbound-timeout-secs", "5"),
    ];
    arguments(&defaults, extra)
}

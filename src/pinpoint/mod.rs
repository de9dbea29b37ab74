//! The Pinpoint REST API client (JSON:API, `X-API-KEY`).
//!
//! Like the HiBob client it never retries and records every call in the caller's [`CallLog`].
//! Responses are read leniently: Pinpoint sends ids as numbers or strings, documents few
//! attributes, and hides fields on anonymised jobs, so anything missing becomes `None`/empty
//! rather than an error.

pub mod plugin_contract;
pub mod plugin_request;
pub mod plugin_vocabulary;
pub mod signature;

use std::time::Duration;

use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

// `outbound` is private to the crate; callers name these through the client modules.
pub use crate::outbound::{CallLog, Exchange, RateLimit};
use crate::{
    destination::Guard,
    outbound::{
        self, id_string, text_value, ConnectionCheck, Failure, Outgoing, Paced, RateLimitCell,
        Reply, Safeguards, Secrets, Transport,
    },
    pacing::{Endpoint, Pacing, Turns},
    settings::credentials::{CredentialError, CredentialKey, Credentials},
};

pub const JSON_API: &str = "application/vnd.api+json";

/// Every job visibility, so hires on confidential jobs are not silently missing: Pinpoint leaves
/// confidential jobs out unless the filter names them alongside the others. Pinpoint does not
/// publish the value list; these four are the ones seen in working third-party clients.
pub const DEFAULT_JOB_VISIBILITY: &[&str] =
    &["confidential", "external", "internal", "private_job"];

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

/// The attachment context Pinpoint gives its own PDF rendering of the CV, preferred over uploads.
const CV_CONTEXT: &str = "pdf_cv";
const CV_EXTENSIONS: &[&str] = &[".pdf", ".doc", ".docx"];

/// Offer attributes that may hold the agreed start date; Pinpoint does not document the name.
const OFFER_START_KEYS: &[&str] = &[
    "start_date",
    "starts_on",
    "start_on",
    "proposed_start_date",
    "employment_start_date",
];

#[derive(Clone)]
pub struct Client {
    transport: Transport,
    base_url: String,
    api_key: SecretString,
    rate: RateLimitCell,
    /// Shared by clones, and by every client paced by the same [`Pacing`] for this key.
    turns: Turns,
    job_visibility: Vec<String>,
}

/// Pinpoint publishes no limits; these are paced by what its answers announce.
pub mod endpoint {
    use crate::pacing::Endpoint;

    pub const APPLICATION: Endpoint = Endpoint::new("GET /applications/{id}");
    pub const COMMENTS: Endpoint = Endpoint::new("POST /comments");
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("pinpoint::Client")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot build the HTTP client: {0}")]
    Build(#[from] reqwest::Error),
    #[error(transparent)]
    Credentials(#[from] CredentialError),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PinpointError {
    /// 401/403: the key is wrong, disabled, or lacks the resource permission.
    #[error("Pinpoint refused the API key (HTTP {status}): {message}")]
    Unauthorized { status: u16, message: String },
    #[error("Pinpoint rate limit reached; try again in {} s", wait.as_secs())]
    RateLimited { wait: Duration },
    /// 404: the record does not exist or is hidden from this key (e.g. a confidential job).
    #[error("Pinpoint has no such record: {message}")]
    NotFound { message: String },
    #[error("Pinpoint rejected the request (HTTP {status}): {message}")]
    Rejected { status: u16, message: String },
    #[error("Pinpoint had a server error (HTTP {status}): {message}")]
    Server { status: u16, message: String },
    #[error("Pinpoint did not answer in time")]
    Timeout,
    #[error("{0}")]
    Transport(String),
    /// Not sent: Pinpoint's address is private or local and the operator did not allow that.
    #[error("{0}")]
    Destination(String),
    #[error("Pinpoint's answer could not be read: {0}")]
    Decode(String),
}

impl PinpointError {
    /// Whether the caller's queue may try the same call again later.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Server { .. } | Self::RateLimited { .. } | Self::Timeout | Self::Transport(_)
        )
    }

    /// The wait Pinpoint asked for; `None` leaves the backoff to the caller.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { wait } => Some(*wait),
            _ => None,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Unauthorized { status, .. }
            | Self::Rejected { status, .. }
            | Self::Server { status, .. } => Some(*status),
            Self::RateLimited { .. } => Some(429),
            Self::NotFound { .. } => Some(404),
            _ => None,
        }
    }
}

/// A job application with what the export needs, plus every raw attribute for templates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Application {
    pub id: String,
    /// The application's attributes exactly as Pinpoint sent them.
    pub attributes: Map<String, Value>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub attachments: Vec<Attachment>,
    pub job: Option<Job>,
    pub offers: Vec<Offer>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// What the file is for; `pdf_cv` marks the CV Pinpoint rendered as PDF.
    pub context: Option<String>,
    pub filename: Option<String>,
    /// Usually a signed, short-lived link: use it soon and do not store it.
    pub url: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub id: String,
    pub title: Option<String>,
    pub attributes: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Offer {
    pub id: String,
    /// The first of the likely start-date attributes that is set, as Pinpoint wrote it.
    pub start_date: Option<String>,
    pub attributes: Map<String, Value>,
}

impl Application {
    /// Reads a JSON:API document (`data` + `included`) for one application.
    pub fn from_document(document: &Value) -> Result<Self, String> {
        let data = document
            .get("data")
            .filter(|d| d.is_object())
            .ok_or("the document has no data object")?;
        let id = data
            .get("id")
            .and_then(id_string)
            .ok_or("the application has no id")?;
        let attributes = object(data.get("attributes"));
        let included: &[Value] = document
            .get("included")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let job = related(data, included, "job", "jobs")
            .into_iter()
            .next()
            .map(|(id, resource)| {
                let attributes = resource
                    .map(|r| object(r.get("attributes")))
                    .unwrap_or_default();
                Job {
                    id,
                    title: text_value(attributes.get("title"))
                        .or_else(|| text_value(attributes.get("name"))),
                    attributes,
                }
            });
        let offers = related(data, included, "offers", "offers")
            .into_iter()
            .map(|(id, resource)| {
                let attributes = resource
                    .map(|r| object(r.get("attributes")))
                    .unwrap_or_default();
                Offer {
                    id,
                    start_date: OFFER_START_KEYS
                        .iter()
                        .find_map(|k| text_value(attributes.get(*k))),
                    attributes,
                }
            })
            .collect();
        let attachments = attributes
            .get("attachments")
            .and_then(Value::as_array)
            .map(|list| list.iter().filter_map(Attachment::from_json).collect())
            .unwrap_or_default();
        Ok(Self {
            id,
            first_name: text_value(attributes.get("first_name")),
            last_name: text_value(attributes.get("last_name")),
            email: text_value(attributes.get("email")),
            phone: text_value(attributes.get("phone")),
            attachments,
            job,
            offers,
            attributes,
        })
    }

    /// The CV to hand to HiBob: Pinpoint's PDF rendering when there is one, else the first
    /// attachment that looks like a PDF or Word document.
    pub fn cv(&self) -> Option<&Attachment> {
        self.attachments
            .iter()
            .find(|a| a.context.as_deref() == Some(CV_CONTEXT))
            .or_else(|| self.attachments.iter().find(|a| a.is_document()))
    }

    /// A raw attribute, for templates and fields this struct does not name.
    pub fn attribute(&self, name: &str) -> Option<&Value> {
        self.attributes.get(name)
    }
}

impl Attachment {
    fn from_json(value: &Value) -> Option<Self> {
        Some(Self {
            url: text_value(value.get("url"))?,
            context: text_value(value.get("context")),
            filename: text_value(value.get("filename"))
                .or_else(|| text_value(value.get("file_name")))
                .or_else(|| text_value(value.get("name"))),
        })
    }

    /// Judged by the file name, or by the URL's path when there is no name.
    pub fn is_document(&self) -> bool {
        let name = match &self.filename {
            Some(name) => name.to_ascii_lowercase(),
            None => {
                let path = self.url.split(['?', '#']).next().unwrap_or_default();
                path.to_ascii_lowercase()
            }
        };
        CV_EXTENSIONS.iter().any(|ext| name.ends_with(ext))
    }
}

fn object(value: Option<&Value>) -> Map<String, Value> {
    value
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

/// Resolves a relationship to `(id, included resource)` pairs. Without linkage data (some
/// servers omit it when the include is present) every included resource of that type counts.
fn related<'a>(
    data: &Value,
    included: &'a [Value],
    relationship: &str,
    resource_type: &str,
) -> Vec<(String, Option<&'a Value>)> {
    let find = |id: &str| {
        included.iter().find(|r| {
            r.get("type").and_then(Value::as_str) == Some(resource_type)
                && r.get("id").and_then(id_string).as_deref() == Some(id)
        })
    };
    let linkage = data
        .get("relationships")
        .and_then(|r| r.get(relationship))
        .and_then(|r| r.get("data"));
    let ids: Vec<String> = match linkage {
        Some(Value::Object(one)) => one.get("id").and_then(id_string).into_iter().collect(),
        Some(Value::Array(many)) => many
            .iter()
            .filter_map(|r| r.get("id").and_then(id_string))
            .collect(),
        // explicit `null` means "no related resource"
        Some(Value::Null) => Vec::new(),
        _ => {
            return included
                .iter()
                .filter(|r| r.get("type").and_then(Value::as_str) == Some(resource_type))
                .filter_map(|r| r.get("id").and_then(id_string).map(|id| (id, Some(r))))
                .collect();
        }
    };
    ids.into_iter()
        .map(|id| {
            let resource = find(&id);
            (id, resource)
        })
        .collect()
}

impl Client {
    /// A client for `base_url`, whose host is trusted as the caller's own configuration (see
    /// [`crate::destination`]); [`Client::from_credentials`] checks a URL saved in the console.
    pub fn new(base_url: &str, api_key: SecretString) -> Result<Self, ClientError> {
        let guard = Guard::strict().trusting_host_of(base_url);
        Ok(Self {
            transport: Transport::new(
                DEFAULT_TIMEOUT,
                Safeguards {
                    guard,
                    secrets: Secrets::new([api_key.expose_secret()]),
                },
            )?,
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key,
            rate: RateLimitCell::default(),
            turns: Turns::own(crate::pacing::DEFAULT_PATIENCE),
            job_visibility: DEFAULT_JOB_VISIBILITY
                .iter()
                .map(|v| (*v).to_owned())
                .collect(),
        })
    }

    /// Shares the pace `pacing` keeps for this base URL and key, instead of this client's own.
    pub fn paced_by(mut self, pacing: &Pacing) -> Self {
        let identity = format!("{}\0{}", self.base_url, self.api_key.expose_secret());
        self.turns = self.turns.shared(pacing, &identity);
        self
    }

    /// Replaces how long a call waits for its turn in a spent rate-limit window.
    pub fn with_patience(mut self, patience: Duration) -> Self {
        self.turns = self.turns.with_patience(patience);
        self
    }

    /// Its place in the pacing, to ask when an endpoint's next turn comes.
    pub fn turns(&self) -> &Turns {
        &self.turns
    }

    /// Replaces the whole-request timeout (connect timeout is capped by it too).
    pub fn with_timeout(mut self, timeout: Duration) -> Result<Self, ClientError> {
        self.transport = self.transport.with_timeout(timeout)?;
        Ok(self)
    }

    /// Replaces where this client may connect (see [`crate::destination::Guard`]).
    pub fn with_guard(mut self, guard: Guard) -> Result<Self, ClientError> {
        self.transport = self.transport.with_guard(guard)?;
        Ok(self)
    }

    /// Replaces the `filter[job_visibility]` values sent when fetching an application, in case
    /// a tenant's Pinpoint rejects one of the defaults. An empty list omits the filter.
    pub fn with_job_visibility<I, S>(mut self, values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.job_visibility = values.into_iter().map(Into::into).collect();
        self
    }

    pub async fn from_credentials(creds: &Credentials) -> Result<Option<Self>, ClientError> {
        let base = creds.get(CredentialKey::PinpointApiBaseUrl).await?;
        let key = creds.get(CredentialKey::PinpointApiKey).await?;
        match (base, key) {
            (Some(base), Some(key)) => Ok(Some(
                Self::new(base.expose_secret(), key)?
                    .with_guard(creds.guard_for(CredentialKey::PinpointApiBaseUrl))?
                    .paced_by(creds.pacing()),
            )),
            _ => Ok(None),
        }
    }

    /// The rate-limit headers of the latest response that had any, shared by all clones.
    pub fn rate_limit(&self) -> Option<RateLimit> {
        self.rate.get()
    }

    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.transport
            .http
            .get(format!("{}{path}", self.base_url))
            .header("X-API-KEY", self.api_key.expose_secret())
            .header(reqwest::header::ACCEPT, JSON_API)
    }

    /// Lists one job: the cheapest authenticated read the API offers.
    pub async fn check_connection(&self) -> ConnectionCheck {
        let request = self.get("/jobs").query(&[("page[size]", "1")]);
        outbound::check("Pinpoint", request, &self.transport.safeguards, |status, _body| match status {
            401 => "Pinpoint refused the API key (HTTP 401). Check the key and that the API is enabled under Settings → API & Webhooks.".to_owned(),
            403 => "The API key lacks permission (HTTP 403). Give it application read and comment write.".to_owned(),
            404 => "Pinpoint answered 404: the base URL is probably wrong (it should end in /api/v1).".to_owned(),
            s => format!("Pinpoint answered HTTP {s}."),
        })
        .await
    }

    /// Fetches one application with its attachments (CV links), its job and its offers,
    /// including applications on confidential jobs (see [`DEFAULT_JOB_VISIBILITY`]).
    pub async fn get_application(
        &self,
        id: &str,
        log: &mut CallLog,
    ) -> Result<Application, PinpointError> {
        let path = format!("/applications/{}", outbound::encode_segment(id.trim()));
        let visibility = self.job_visibility.join(",");
        let mut query = vec![
            ("extra_fields[applications]", "attachments"),
            ("include", "job,offers"),
        ];
        if !visibility.is_empty() {
            query.push(("filter[job_visibility]", visibility.as_str()));
        }
        self.send(
            Method::GET,
            &path,
            endpoint::APPLICATION,
            &query,
            None,
            log,
            |reply| {
                let document = parse_json(reply)?;
                Application::from_document(&document).map_err(PinpointError::Decode)
            },
        )
        .await
    }

    /// Adds a plain-text comment to the application (shown as written by the company's system
    /// user) and returns the comment's id.
    pub async fn post_comment(
        &self,
        application_id: &str,
        body_text: &str,
        log: &mut CallLog,
    ) -> Result<String, PinpointError> {
        let body = json!({
            "data": {
                "type": "comments",
                "attributes": {"body_text": body_text},
                "relationships": {
                    "commentable": {"data": {"type": "applications", "id": application_id.trim()}}
                }
            }
        });
        self.send(
            Method::POST,
            "/comments",
            endpoint::COMMENTS,
            &[],
            Some(body),
            log,
            |reply| {
                let document = parse_json(reply)?;
                document
                    .get("data")
                    .and_then(|d| d.get("id"))
                    .and_then(id_string)
                    .ok_or_else(|| {
                        PinpointError::Decode(format!(
                            "Pinpoint accepted the comment (HTTP {}) but sent no comment id",
                            reply.status
                        ))
                    })
            },
        )
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn send<T>(
        &self,
        method: Method,
        path: &str,
        endpoint: Endpoint,
        query: &[(&str, &str)],
        body: Option<Value>,
        log: &mut CallLog,
        parse: impl FnOnce(&Reply) -> Result<T, PinpointError>,
    ) -> Result<T, PinpointError> {
        let mut request = self
            .transport
            .http
            .request(method.clone(), format!("{}{path}", self.base_url))
            .header("X-API-KEY", self.api_key.expose_secret())
            .header(reqwest::header::ACCEPT, JSON_API);
        if !query.is_empty() {
            request = request.query(query);
        }
        if let Some(body) = &body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, JSON_API)
                .body(body.to_string());
        }
        let outgoing = Outgoing {
            service: outbound::PINPOINT,
            method,
            path: outbound::with_query(path, query),
            logged_body: body,
        };
        outbound::exchange(
            outgoing,
            request,
            &self.rate,
            Paced {
                pace: self.turns.pace(),
                endpoint,
                patience: self.turns.patience(),
            },
            &self.transport.safeguards,
            log,
            |outcome| match outcome {
                Err(failure) => Err(from_failure(failure)),
                Ok(reply) if reply.is_success() => parse(&reply),
                Ok(reply) => Err(from_reply(&reply)),
            },
        )
        .await
    }
}

pub async fn check_configured(creds: &Credentials) -> Result<ConnectionCheck, ClientError> {
    Ok(match Client::from_credentials(creds).await? {
        Some(client) => client.check_connection().await,
        None => ConnectionCheck::not_configured("set the Pinpoint API base URL and API key"),
    })
}

fn parse_json(reply: &Reply) -> Result<Value, PinpointError> {
    serde_json::from_slice(&reply.body).map_err(|e| PinpointError::Decode(e.to_string()))
}

fn from_failure(failure: Failure) -> PinpointError {
    match failure {
        Failure::Timeout => PinpointError::Timeout,
        Failure::Transport(message) => PinpointError::Transport(message),
        Failure::Refused(message) => PinpointError::Destination(message),
        Failure::BodyTooLarge { limit } => {
            PinpointError::Decode(format!("the response is larger than {limit} bytes"))
        }
        Failure::Paced { wait } => PinpointError::RateLimited { wait },
    }
}

fn from_reply(reply: &Reply) -> PinpointError {
    let status = reply.status;
    let message =
        error_message(&reply.text()).unwrap_or_else(|| format!("HTTP {status} without details"));
    match status {
        401 | 403 => PinpointError::Unauthorized { status, message },
        404 => PinpointError::NotFound { message },
        429 => PinpointError::RateLimited {
            wait: reply.rate_limit_wait(),
        },
        500..=599 => PinpointError::Server { status, message },
        300..=399 => PinpointError::Rejected {
            status,
            message: "Pinpoint answered with a redirect, which is not followed: check the base \
                      URL (https://<subdomain>.pinpointhq.com/api/v1)"
                .to_owned(),
        },
        _ => PinpointError::Rejected { status, message },
    }
}

/// Pinpoint does not document its error body; JSON:API `errors[]` is the likely shape, with a
/// plain `error`/`message` and raw text as fallbacks.
fn error_message(text: &str) -> Option<String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return None;
    }
    if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(trimmed) {
        if let Some(errors) = map.get("errors").and_then(Value::as_array) {
            let parts: Vec<String> = errors
                .iter()
                .filter_map(|e| {
                    if let Some(s) = e.as_str() {
                        return Some(s.to_owned());
                    }
                    let title = text_value(e.get("title"));
                    let detail = text_value(e.get("detail"));
                    match (title, detail) {
                        (Some(t), Some(d)) if t != d => Some(format!("{t}: {d}")),
                        (Some(t), _) => Some(t),
                        (None, Some(d)) => Some(d),
                        (None, None) => None,
                    }
                })
                .collect();
            if !parts.is_empty() {
                return Some(parts.join("; "));
            }
        }
        if let Some(m) = text_value(map.get("error")).or_else(|| text_value(map.get("message"))) {
            return Some(m);
        }
    }
    Some(trimmed.chars().take(300).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use wiremock::{
        matchers::{body_json, header, method, path, query_param},
        Mock, MockServer, ResponseTemplate,
    };

    const KEY: &str = "pp-key-very-secret-7";

    fn client(server: &MockServer) -> Client {
        Client::new(
            &format!("{}/api/v1/", server.uri()),
            SecretString::from(KEY.to_owned()),
        )
        .unwrap()
    }

    fn assert_no_secrets(log: &CallLog) {
        let text = serde_json::to_string(log).unwrap();
        assert!(!text.contains(KEY), "{text}");
        assert!(!text.to_ascii_lowercase().contains("x-api-key"), "{text}");
    }

    fn application_document() -> Value {
        json!({
            "data": {
                "id": 884321,
                "type": "applications",
                "attributes": {
                    "first_name": "Grace",
                    "last_name": "Hopper",
                    "email": "grace.hopper@example.com",
                    "phone": "02033189441",
                    "phone_iso2": "GB",
                    "linkedin_url": null,
                    "custom_thing": {"nested": true},
                    "attachments": [
                        {"context": "cover_letter", "filename": "letter.pdf",
                         "url": "https://files.example.com/letter.pdf?sig=a"},
                        {"context": "pdf_cv", "filename": "Grace_Hopper_CV.pdf",
                         "url": "https://files.example.com/cv.pdf?sig=b"},
                        {"context": "broken"}
                    ]
                },
                "relationships": {
                    "job": {"data": {"type": "jobs", "id": 42}},
                    "offers": {"data": [{"type": "offers", "id": 7}]},
                    "stage": {"meta": {"included": false}}
                }
            },
            "included": [
                {"id": "42", "type": "jobs", "attributes": {"title": "Rear Admiral", "department": "Navy"}},
                {"id": 7, "type": "offers", "attributes": {"start_date": "2026-02-02", "salary": 1}},
                {"id": 8, "type": "offers", "attributes": {}}
            ],
            "meta": {"anything": 1}
        })
    }

    #[tokio::test]
    async fn check_sends_the_api_key() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/api/v1/jobs"))
            .and(query_param("page[size]", "1"))
            .and(header("x-api-key", "key-1"))
            .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"data":[]}"#))
            .expect(1)
            .mount(&server)
            .await;
        let client = Client::new(
            &format!("{}/api/v1", server.uri()),
            SecretString::from("key-1".to_owned()),
        )
        .unwrap();
        assert!(client.check_connection().await.ok);
    }

    #[tokio::test]
    async fn refused_key_is_explained() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(401))
            .mount(&server)
            .await;
        let client = Client::new(&server.uri(), SecretString::from("bad".to_owned())).unwrap();
        let check = client.check_connection().await;
        assert!(!check.ok);
        assert!(check.summary.contains("refused the API key"));
    }

    #[tokio::test]
    async fn get_application_asks_for_attachments_job_offers_and_confidential_jobs() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/api/v1/applications/884321"))
            .and(query_param("extra_fields[applications]", "attachments"))
            .and(query_param("include", "job,offers"))
            .and(query_param(
                "filter[job_visibility]",
                "confidential,external,internal,private_job",
            ))
            .and(header("x-api-key", KEY))
            .and(header("accept", JSON_API))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_raw(application_document().to_string(), JSON_API),
            )
            .expect(1)
            .mount(&server)
            .await;
        let mut log = CallLog::new();
        let app = client(&server)
            .get_application("884321", &mut log)
            .await
            .unwrap();
        assert_eq!(app.id, "884321");
        assert_eq!(app.first_name.as_deref(), Some("Grace"));
        assert_eq!(app.last_name.as_deref(), Some("Hopper"));
        assert_eq!(app.email.as_deref(), Some("grace.hopper@example.com"));
        assert_eq!(app.phone.as_deref(), Some("02033189441"));
        assert_eq!(
            app.attribute("custom_thing"),
            Some(&json!({"nested": true}))
        );
        assert_eq!(app.attributes["linkedin_url"], Value::Null);
        assert_eq!(app.attachments.len(), 2);
        let cv = app.cv().unwrap();
        assert_eq!(cv.filename.as_deref(), Some("Grace_Hopper_CV.pdf"));
        assert_eq!(cv.url, "https://files.example.com/cv.pdf?sig=b");
        let job = app.job.as_ref().unwrap();
        assert_eq!(job.id, "42");
        assert_eq!(job.title.as_deref(), Some("Rear Admiral"));
        assert_eq!(job.attributes["department"], "Navy");
        assert_eq!(app.offers.len(), 1);
        assert_eq!(app.offers[0].id, "7");
        assert_eq!(app.offers[0].start_date.as_deref(), Some("2026-02-02"));

        let ex = log.last().unwrap();
        assert_eq!(ex.service, "Pinpoint");
        assert_eq!(ex.method, "GET");
        assert!(ex
            .path
            .starts_with("/applications/884321?extra_fields[applications]=attachments"));
        assert_eq!(ex.status, Some(200));
        // signed CV links are not kept in the record
        let text = serde_json::to_string(&log).unwrap();
        assert!(!text.contains("sig=b"), "{text}");
        assert_no_secrets(&log);
    }

    #[test]
    fn sparse_documents_parse_to_empty_pieces() {
        let app = Application::from_document(&json!({"data": {"id": "5", "type": "applications"}}))
            .unwrap();
        assert_eq!(app.id, "5");
        assert!(app.attachments.is_empty() && app.offers.is_empty());
        assert_eq!((app.job, app.first_name, app.email), (None, None, None));

        // linkage without the included resource still yields the id
        let app = Application::from_document(&json!({
            "data": {"id": 5, "attributes": {"first_name": "  "},
                     "relationships": {"job": {"data": {"type": "jobs", "id": 9}}}}
        }))
        .unwrap();
        assert_eq!(app.job.map(|j| (j.id, j.title)), Some(("9".into(), None)));
        assert_eq!(app.first_name, None);

        // included resources without linkage are still found
        let app = Application::from_document(&json!({
            "data": {"id": 5},
            "included": [{"type": "jobs", "id": 3, "attributes": {"title": "Cook"}}]
        }))
        .unwrap();
        assert_eq!(app.job.and_then(|j| j.title).as_deref(), Some("Cook"));

        assert!(Application::from_document(&json!({"data": []})).is_err());
        assert!(Application::from_document(&json!({"data": {"type": "applications"}})).is_err());
    }

    #[test]
    fn cv_falls_back_to_a_document_attachment() {
        let attachment = |context: Option<&str>, filename: Option<&str>, url: &str| Attachment {
            context: context.map(Into::into),
            filename: filename.map(Into::into),
            url: url.into(),
        };
        let mut app = Application::from_document(&json!({"data": {"id": 1}})).unwrap();
        app.attachments = vec![
            attachment(Some("photo"), Some("me.png"), "https://x/me.png"),
            attachment(Some("other"), Some("Resume.DOCX"), "https://x/r"),
        ];
        assert_eq!(app.cv().unwrap().filename.as_deref(), Some("Resume.DOCX"));
        app.attachments = vec![attachment(None, None, "https://x/cv.pdf?sig=1")];
        assert!(app.cv().is_some());
        app.attachments = vec![attachment(None, Some("notes.txt"), "https://x/a.pdf")];
        assert!(app.cv().is_none());
    }

    #[tokio::test]
    async fn unauthorized_and_not_found_are_typed() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/api/v1/applications/1"))
            .respond_with(ResponseTemplate::new(401).set_body_json(json!({
                "errors": [{"status": "401", "title": "Unauthorized", "detail": "Invalid API key"}]
            })))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/api/v1/applications/2"))
            .respond_with(ResponseTemplate::new(404).set_body_json(json!({
                "errors": [{"status": "404", "title": "Record not found"}]
            })))
            .expect(1)
            .mount(&server)
            .await;
        let c = client(&server);
        let mut log = CallLog::new();
        let err = c.get_application("1", &mut log).await.unwrap_err();
        assert_eq!(
            err,
            PinpointError::Unauthorized {
                status: 401,
                message: "Unauthorized: Invalid API key".into()
            }
        );
        assert!(!err.is_retryable());
        let err = c.get_application("2", &mut log).await.unwrap_err();
        assert_eq!(
            err,
            PinpointError::NotFound {
                message: "Record not found".into()
            }
        );
        assert!(!err.is_retryable());
        assert_eq!(err.status(), Some(404));
        assert_eq!(log.len(), 2);
        assert!(log.iter().all(|e| e.error.is_some()));
        assert_no_secrets(&log);
    }

    #[tokio::test]
    async fn rate_limits_server_errors_and_timeouts_are_retryable() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/api/v1/applications/1"))
            .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "5"))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/api/v1/applications/2"))
            .respond_with(ResponseTemplate::new(503))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/api/v1/applications/3"))
            .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(10)))
            .mount(&server)
            .await;
        let c = client(&server)
            .with_timeout(Duration::from_millis(300))
            .unwrap();
        let mut log = CallLog::new();
        let err = c.get_application("1", &mut log).await.unwrap_err();
        assert_eq!(err.retry_after(), Some(Duration::from_secs(5)));
        assert_eq!(c.rate_limit().and_then(|r| r.retry_after_secs), Some(5));
        let err = c.get_application("2", &mut log).await.unwrap_err();
        assert!(
            matches!(err, PinpointError::Server { status: 503, .. }),
            "{err:?}"
        );
        assert!(err.is_retryable());
        let err = c.get_application("3", &mut log).await.unwrap_err();
        assert_eq!(err, PinpointError::Timeout);
        assert!(err.is_retryable());
    }

    #[tokio::test]
    async fn empty_visibility_omits_the_filter() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/api/v1/applications/1"))
            .and(wiremock::matchers::query_param_is_missing(
                "filter[job_visibility]",
            ))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {"id": 1}})))
            .expect(1)
            .mount(&server)
            .await;
        let c = client(&server).with_job_visibility(Vec::<String>::new());
        assert_eq!(
            c.get_application("1", &mut CallLog::new())
                .await
                .unwrap()
                .id,
            "1"
        );
    }

    #[tokio::test]
    async fn post_comment_sends_the_json_api_body() {
        let server = MockServer::start().await;
        let text = "Exported to HiBob, employee ID 3332883884017713238";
        Mock::given(method("POST"))
            .and(path("/api/v1/comments"))
            .and(header("x-api-key", KEY))
            .and(header("content-type", JSON_API))
            .and(header("accept", JSON_API))
            .and(body_json(json!({
                "data": {
                    "type": "comments",
                    "attributes": {"body_text": text},
                    "relationships": {
                        "commentable": {"data": {"type": "applications", "id": "884321"}}
                    }
                }
            })))
            .respond_with(ResponseTemplate::new(201).set_body_json(json!({
                "data": {"id": 77, "type": "comments", "attributes": {"body_text": text}}
            })))
            .expect(1)
            .mount(&server)
            .await;
        let mut log = CallLog::new();
        let id = client(&server)
            .post_comment("884321", text, &mut log)
            .await
            .unwrap();
        assert_eq!(id, "77");
        let ex = log.last().unwrap();
        assert_eq!(
            (ex.method.as_str(), ex.path.as_str(), ex.status),
            ("POST", "/comments", Some(201))
        );
        assert_eq!(
            ex.request_body.as_ref().unwrap()["data"]["attributes"]["body_text"],
            text
        );
        assert_no_secrets(&log);
    }

    #[tokio::test]
    async fn rejected_comment_carries_the_message() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/api/v1/comments"))
            .respond_with(ResponseTemplate::new(422).set_body_json(json!({
                "errors": [{"title": "Invalid", "detail": "body_text can't be blank"}]
            })))
            .mount(&server)
            .await;
        let err = client(&server)
            .post_comment("1", "", &mut CallLog::new())
            .await
            .unwrap_err();
        assert_eq!(
            err,
            PinpointError::Rejected {
                status: 422,
                message: "Invalid: body_text can't be blank".into()
            }
        );
        assert!(!err.is_retryable());
    }

    #[test]
    fn error_messages_fall_back_to_text() {
        assert_eq!(error_message(""), None);
        assert_eq!(
            error_message(r#"{"error":"nope"}"#).as_deref(),
            Some("nope")
        );
        assert_eq!(
            error_message("<h1>Bad gateway</h1>").as_deref(),
            Some("<h1>Bad gateway</h1>")
        );
    }

    /// A Pinpoint that repeats the key it was sent, in its error and its answer: neither the
    /// error nor the recorded answer keeps it.
    #[tokio::test]
    async fn a_key_echoed_by_pinpoint_is_scrubbed() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(422).set_body_json(json!({
                "errors": [{"detail": format!("the key {KEY} may not read this")}]
            })))
            .mount(&server)
            .await;
        let mut log = CallLog::new();
        let err = client(&server)
            .get_application("1", &mut log)
            .await
            .unwrap_err()
            .to_string();
        assert!(!err.contains(KEY), "{err}");
        assert!(err.contains("[redacted]"), "{err}");
        assert_no_secrets(&log);
        let recorded = serde_json::to_string(&log).unwrap();
        assert!(recorded.contains("[redacted]"), "{recorded}");
    }
}

//! The HiBob API client: Basic auth with a service user, JSON, typed errors.
//!
//! The client never retries. The export queue owns retries, so it can space them out across
//! restarts and never hammer HiBob with bad credentials (its WAF blocks a credential after about
//! fifty 401/403 answers in ten seconds). Every method appends what it sent and received to the
//! caller's [`CallLog`], which becomes part of the export record.

mod error;
pub mod gateway;
pub mod locks;
mod model;
pub mod schema;
#[cfg(test)]
mod tests;
mod update;

use std::time::Duration;

use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};

pub use self::{
    error::{field_for_error, HibobError, EMAIL_TAKEN_KEY},
    model::{EmployeeSummary, FieldMeta, ListItem, NamedList},
};
// `outbound` is private to the crate; callers name these through the client modules.
pub use crate::outbound::{CallLog, Exchange, RateLimit};
use crate::{
    destination::Guard,
    outbound::{
        self, ConnectionCheck, Outgoing, Paced, RateLimitCell, Reply, Safeguards, Secrets,
        Transport,
    },
    pacing::{Endpoint, Pacing, Turns},
    settings::credentials::{CredentialError, CredentialKey, Credentials},
};

/// HiBob's documented per-file cap for the shared and confidential folders.
pub const MAX_DOCUMENT_BYTES: usize = 5 * 1024 * 1024;

/// Reqwest's whole-request timeout; a create or search that takes longer is treated as lost.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

/// Fields asked of the search: enough to identify the person, and few enough that a service
/// user with only the default categories can see them all.
const SEARCH_FIELDS: &[&str] = &["root.id", "root.email", "root.displayName"];

pub use crate::pacing::DEFAULT_PATIENCE;

/// HiBob's endpoints as its rate limits count them (per endpoint, per minute), with the limits
/// it documents or that were measured (see hibob-api.md §6.1); the rest announce theirs.
pub mod endpoint {
    use crate::pacing::Endpoint;

    pub const CREATE: Endpoint = Endpoint::new("POST /people");
    pub const SEARCH: Endpoint = Endpoint::documented("POST /people/search", 50, 60);
    pub const FIELDS: Endpoint = Endpoint::documented("GET /company/people/fields", 50, 60);
    pub const NAMED_LISTS: Endpoint = Endpoint::new("GET /company/named-lists");
    pub const NAMED_LIST: Endpoint = Endpoint::new("GET /company/named-lists/{name}");
    pub const DOCUMENTS: Endpoint = Endpoint::new("GET /docs/people/{id}");
    pub const SHARED_FROM_URL: Endpoint = Endpoint::new("POST /docs/people/{id}/shared");
    pub const CONFIDENTIAL_FROM_URL: Endpoint =
        Endpoint::new("POST /docs/people/{id}/confidential");
    pub const SHARED_UPLOAD: Endpoint = Endpoint::new("POST /docs/people/{id}/shared/upload");
    pub const CONFIDENTIAL_UPLOAD: Endpoint =
        Endpoint::new("POST /docs/people/{id}/confidential/upload");
    pub const INVITE: Endpoint = Endpoint::new("POST /employees/{id}/invitations");
    pub const WIZARDS: Endpoint = Endpoint::new("GET /onboarding/wizards");
    pub const READ_ONE: Endpoint = Endpoint::new("POST /people/{id}");
    pub const UPDATE: Endpoint = Endpoint::new("PUT /people/{id}");
    pub const START_DATE: Endpoint = Endpoint::new("POST /employees/{id}/start-date");
    pub const WORK: Endpoint = Endpoint::new("GET /people/{id}/work");
    pub const WORK_ENTRY: Endpoint = Endpoint::new("PUT /people/{id}/work/{entry_id}");
}

#[derive(Clone)]
pub struct Client {
    transport: Transport,
    base_url: String,
    service_user_id: String,
    token: SecretString,
    rate: RateLimitCell,
    /// Shared by clones, and by every client paced by the same [`Pacing`] for these credentials.
    turns: Turns,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("hibob::Client")
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

/// HiBob's usual error body: `{"key": "...", "error": "..."}`.
#[derive(Debug, serde::Deserialize)]
struct ErrorBody {
    key: Option<String>,
    error: Option<String>,
}

pub(crate) fn error_text(body: &str) -> Option<String> {
    let parsed: ErrorBody = serde_json::from_str(body).ok()?;
    match (parsed.key, parsed.error) {
        (Some(k), Some(e)) => Some(format!("{e} ({k})")),
        (None, Some(e)) => Some(e),
        (Some(k), None) => Some(k),
        (None, None) => None,
    }
}

/// Which system folder a document goes to. Custom folders have other paths and a 1 MB cap and
/// are not used by the exporter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocFolder {
    /// Visible to admins and the employee.
    Shared,
    /// Visible to admins and authorised managers only.
    Confidential,
}

impl DocFolder {
    fn segment(self) -> &'static str {
        match self {
            Self::Shared => "shared",
            Self::Confidential => "confidential",
        }
    }

    /// The endpoint that has HiBob fetch a document from a URL into this folder.
    pub fn from_url_endpoint(self) -> Endpoint {
        match self {
            Self::Shared => endpoint::SHARED_FROM_URL,
            Self::Confidential => endpoint::CONFIDENTIAL_FROM_URL,
        }
    }

    fn upload_endpoint(self) -> Endpoint {
        match self {
            Self::Shared => endpoint::SHARED_UPLOAD,
            Self::Confidential => endpoint::CONFIDENTIAL_UPLOAD,
        }
    }
}

enum Payload<'a> {
    Empty,
    Json(&'a Value),
    Multipart(reqwest::multipart::Form),
}

impl Client {
    /// A client for `base_url`, whose host is trusted as the caller's own configuration (see
    /// [`crate::destination`]); [`Client::from_credentials`] checks a URL saved in the console.
    pub fn new(
        base_url: &str,
        service_user_id: &str,
        token: SecretString,
    ) -> Result<Self, ClientError> {
        let guard = Guard::strict().trusting_host_of(base_url);
        Ok(Self {
            transport: Transport::new(
                DEFAULT_TIMEOUT,
                Safeguards {
                    guard,
                    secrets: Secrets::basic(service_user_id, token.expose_secret()),
                },
            )?,
            base_url: base_url.trim_end_matches('/').to_owned(),
            service_user_id: service_user_id.to_owned(),
            token,
            rate: RateLimitCell::default(),
            turns: Turns::own(DEFAULT_PATIENCE),
        })
    }

    /// Shares the pace `pacing` keeps for these credentials, instead of this client's own.
    pub fn paced_by(mut self, pacing: &Pacing) -> Self {
        let identity = self.identity();
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

    /// A client from the credentials in force, or `None` when HiBob is not configured. Its
    /// connections are checked as [`Credentials::guard_for`] says for the base URL's source.
    pub async fn from_credentials(creds: &Credentials) -> Result<Option<Self>, ClientError> {
        let base = creds.get(CredentialKey::HibobApiBaseUrl).await?;
        let id = creds.get(CredentialKey::HibobServiceUserId).await?;
        let token = creds.get(CredentialKey::HibobServiceUserToken).await?;
        match (base, id, token) {
            (Some(base), Some(id), Some(token)) => Ok(Some(
                Self::new(base.expose_secret(), id.expose_secret(), token)?
                    .with_guard(creds.guard_for(CredentialKey::HibobApiBaseUrl))?
                    .paced_by(creds.pacing()),
            )),
            _ => Ok(None),
        }
    }

    /// Base URL, service user and token, for telling credential sets apart (hash it; never show
    /// or log it).
    pub(crate) fn identity(&self) -> String {
        format!(
            "{}\0{}\0{}",
            self.base_url,
            self.service_user_id,
            self.token.expose_secret()
        )
    }

    /// The rate-limit headers of the latest response that had any, shared by all clones, so a
    /// scheduler can hold back before spending a call on a certain 429.
    pub fn rate_limit(&self) -> Option<RateLimit> {
        self.rate.get()
    }

    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.transport
            .http
            .get(format!("{}{path}", self.base_url))
            .basic_auth(&self.service_user_id, Some(self.token.expose_secret()))
            .header(reqwest::header::ACCEPT, "application/json")
    }

    /// Reads the people-fields catalogue, which needs no permission beyond a valid service user.
    pub async fn check_connection(&self) -> ConnectionCheck {
        outbound::check("HiBob", self.get("/company/people/fields"), &self.transport.safeguards, |status, body| {
            let detail = error_text(body)
                .map(|t| format!(" HiBob said: {t}."))
                .unwrap_or_default();
            match status {
                401 => format!("HiBob refused the service user ID and token (HTTP 401). Check both values.{detail}"),
                403 => format!("The service user lacks permission (HTTP 403). Add it to a permission group in Bob.{detail}"),
                404 => format!("HiBob answered 404: the base URL is probably wrong (it should end in /v1).{detail}"),
                429 => format!("HiBob is rate limiting this service user (HTTP 429). Try again in a minute.{detail}"),
                s => format!("HiBob answered HTTP {s}.{detail}"),
            }
        })
        .await
    }

    /// Creates the employee and returns HiBob's id for them.
    ///
    /// Any 2xx counts: HiBob's reference says 200, its generic docs 201. A timeout or 5xx here is
    /// ambiguous (the employee may exist); the caller resolves that by retrying and, on
    /// [`HibobError::is_email_taken`], looking the person up with [`Client::search_by_email`].
    pub async fn create_employee(
        &self,
        body: &Value,
        log: &mut CallLog,
    ) -> Result<String, HibobError> {
        self.send(
            Method::POST,
            "/people",
            endpoint::CREATE,
            &[],
            Payload::Json(body),
            Some(body.clone()),
            log,
            |reply| {
                let answer = parse_json(reply, "the create answer")?;
                answer
                    .get("id")
                    .and_then(outbound::id_string)
                    .or_else(|| {
                        answer
                            .get("/root/id")
                            .and_then(|w| w.get("value"))
                            .and_then(outbound::id_string)
                    })
                    .ok_or_else(|| {
                        HibobError::Decode(format!(
                            "HiBob accepted the employee (HTTP {}) but sent no employee id",
                            reply.status
                        ))
                    })
            },
        )
        .await
    }

    /// Finds the employee, active or not, who holds `email`.
    ///
    /// HiBob's comparison may be case-sensitive, so the address is sent both as given and in
    /// lower case in the one filter the search allows. Only an employee whose e-mail matches is
    /// returned, so a filter HiBob ignored cannot hand back a stranger; the exception is a single
    /// result whose e-mail the service user may not see.
    pub async fn search_by_email(
        &self,
        email: &str,
        log: &mut CallLog,
    ) -> Result<Option<EmployeeSummary>, HibobError> {
        let wanted = email.trim();
        if wanted.is_empty() {
            return Ok(None);
        }
        let lower = wanted.to_lowercase();
        let found = self.search_email(wanted, SEARCH_FIELDS, log).await?;
        let mut found: Vec<EmployeeSummary> =
            found.iter().filter_map(model::summary_from_json).collect();
        let matching = found.iter().position(|e| {
            e.email
                .as_deref()
                .is_some_and(|m| m.trim().to_lowercase() == lower)
        });
        Ok(match matching {
            Some(i) => Some(found.swap_remove(i)),
            None if found.len() == 1 && found[0].email.is_none() => found.pop(),
            None => None,
        })
    }

    /// The employee with this e-mail as HiBob returns it, with the given fields (for comparing
    /// a mapping's body with what HiBob holds). Same matching rules as [`Self::search_by_email`].
    pub async fn employee_by_email(
        &self,
        email: &str,
        fields: &[String],
        log: &mut CallLog,
    ) -> Result<Option<Value>, HibobError> {
        let wanted = email.trim();
        if wanted.is_empty() {
            return Ok(None);
        }
        let lower = wanted.to_lowercase();
        let mut fields: Vec<&str> = fields.iter().map(String::as_str).collect();
        fields.extend(SEARCH_FIELDS.iter().copied());
        fields.sort_unstable();
        fields.dedup();
        let mut found = self.search_email(wanted, &fields, log).await?;
        let matching = found.iter().position(|e| {
            model::summary_from_json(e)
                .and_then(|s| s.email)
                .is_some_and(|m| m.trim().to_lowercase() == lower)
        });
        Ok(matching.map(|i| found.swap_remove(i)))
    }

    /// HiBob's comparison may be case-sensitive, so the address is sent both as given and in
    /// lower case in the one filter the search allows.
    async fn search_email(
        &self,
        wanted: &str,
        fields: &[&str],
        log: &mut CallLog,
    ) -> Result<Vec<Value>, HibobError> {
        let lower = wanted.to_lowercase();
        let mut values = vec![wanted.to_owned()];
        if lower != wanted {
            values.push(lower);
        }
        let body = json!({
            "fields": fields,
            "filters": [{"fieldPath": "root.email", "operator": "equals", "values": values}],
            "showInactive": true,
        });
        self.send(
            Method::POST,
            "/people/search",
            endpoint::SEARCH,
            &[],
            Payload::Json(&body),
            Some(body.clone()),
            log,
            |reply| {
                let answer = parse_json(reply, "the search answer")?;
                answer
                    .get("employees")
                    .and_then(Value::as_array)
                    .cloned()
                    .ok_or_else(|| {
                        HibobError::Decode("the search answer has no employees list".into())
                    })
            },
        )
        .await
    }

    /// The whole field catalogue, custom fields included.
    pub async fn people_fields(&self, log: &mut CallLog) -> Result<Vec<FieldMeta>, HibobError> {
        self.send(
            Method::GET,
            "/company/people/fields",
            endpoint::FIELDS,
            &[],
            Payload::Empty,
            None,
            log,
            |reply| {
                let answer = parse_json(reply, "the field list")?;
                let fields = answer
                    .as_array()
                    .ok_or_else(|| HibobError::Decode("the field list is not an array".into()))?;
                Ok(fields.iter().filter_map(FieldMeta::from_json).collect())
            },
        )
        .await
    }

    /// Every company list, archived items included and flagged (see [`ListItem::archived`]).
    pub async fn named_lists(&self, log: &mut CallLog) -> Result<Vec<NamedList>, HibobError> {
        self.send(
            Method::GET,
            "/company/named-lists",
            endpoint::NAMED_LISTS,
            &[("includeArchived", "true")],
            Payload::Empty,
            None,
            log,
            |reply| {
                let answer = parse_json(reply, "the named lists")?;
                match &answer {
                    Value::Array(lists) => {
                        Ok(lists.iter().filter_map(NamedList::from_json).collect())
                    }
                    Value::Object(_) => Ok(NamedList::from_json(&answer).into_iter().collect()),
                    _ => Err(HibobError::Decode(
                        "the named lists are not an array".into(),
                    )),
                }
            },
        )
        .await
    }

    /// One company list by its name (a field's `list_name`). An unknown list is a
    /// [`HibobError::Rejected`] with status 404 (see [`HibobError::is_not_found`]).
    pub async fn named_list(&self, name: &str, log: &mut CallLog) -> Result<NamedList, HibobError> {
        let path = format!("/company/named-lists/{}", outbound::encode_segment(name));
        self.send(
            Method::GET,
            &path,
            endpoint::NAMED_LIST,
            &[("includeArchived", "true")],
            Payload::Empty,
            None,
            log,
            |reply| {
                let answer = parse_json(reply, "the named list")?;
                NamedList::from_json(&answer)
                    .ok_or_else(|| HibobError::Decode("the named list has no name".into()))
            },
        )
        .await
    }

    /// Has HiBob download the document from `document_url` into the employee's folder. The URL
    /// must be reachable from HiBob; Pinpoint's signed attachment links expire, so call this
    /// soon after fetching the application. The query string is not kept in the call log.
    pub async fn upload_document_from_url(
        &self,
        employee_id: &str,
        folder: DocFolder,
        document_name: &str,
        document_url: &str,
        log: &mut CallLog,
    ) -> Result<(), HibobError> {
        let path = format!(
            "/docs/people/{}/{}",
            outbound::encode_segment(employee_id.trim()),
            folder.segment()
        );
        let body = json!({"documentName": document_name, "documentUrl": document_url});
        self.send(
            Method::POST,
            &path,
            folder.from_url_endpoint(),
            &[],
            Payload::Json(&body),
            Some(body.clone()),
            log,
            |_| Ok(()),
        )
        .await
    }

    /// Invites the employee to a welcome wizard (`POST /employees/{id}/invitations`).
    pub async fn invite(
        &self,
        employee_id: &str,
        wizard_id: u64,
        log: &mut CallLog,
    ) -> Result<(), HibobError> {
        let path = format!(
            "/employees/{}/invitations",
            outbound::encode_segment(employee_id.trim())
        );
        let body = json!({ "welcomeWizardId": wizard_id });
        self.send(
            Method::POST,
            &path,
            endpoint::INVITE,
            &[],
            Payload::Json(&body),
            Some(body.clone()),
            log,
            |_| Ok(()),
        )
        .await
    }

    /// The company's onboarding wizards (`GET /onboarding/wizards`), as id and name.
    pub async fn wizards(&self, log: &mut CallLog) -> Result<Vec<(u64, String)>, HibobError> {
        self.send(
            Method::GET,
            "/onboarding/wizards",
            endpoint::WIZARDS,
            &[],
            Payload::Empty,
            None,
            log,
            |reply| {
                let value: Value = serde_json::from_slice(&reply.body)
                    .map_err(|e| HibobError::Decode(e.to_string()))?;
                Ok(value
                    .get("wizards")
                    .and_then(Value::as_array)
                    .map(|list| {
                        list.iter()
                            .filter_map(|w| {
                                let id = w.get("id").and_then(Value::as_u64)?;
                                let name = w.get("name").and_then(Value::as_str).unwrap_or("");
                                Some((id, name.to_owned()))
                            })
                            .collect()
                    })
                    .unwrap_or_default())
            },
        )
        .await
    }

    /// The names of the employee's documents, so an upload interrupted after HiBob stored the
    /// file is not repeated.
    pub async fn document_names(
        &self,
        employee_id: &str,
        log: &mut CallLog,
    ) -> Result<Vec<String>, HibobError> {
        let path = format!(
            "/docs/people/{}",
            outbound::encode_segment(employee_id.trim())
        );
        self.send(
            Method::GET,
            &path,
            endpoint::DOCUMENTS,
            &[],
            Payload::Empty,
            None,
            log,
            |reply| {
                let answer = parse_json(reply, "the documents list")?;
                Ok(answer
                    .get("documents")
                    .and_then(Value::as_array)
                    .map(|docs| {
                        docs.iter()
                            .filter_map(|d| d.get("documentName").and_then(Value::as_str))
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default())
            },
        )
        .await
    }

    /// Uploads the document's bytes as the multipart part `file`; HiBob names the document after
    /// `file_name`. Files over [`MAX_DOCUMENT_BYTES`] are refused before anything is sent.
    pub async fn upload_document_file(
        &self,
        employee_id: &str,
        folder: DocFolder,
        file_name: &str,
        bytes: Vec<u8>,
        content_type: &str,
        log: &mut CallLog,
    ) -> Result<(), HibobError> {
        let path = format!(
            "/docs/people/{}/{}/upload",
            outbound::encode_segment(employee_id.trim()),
            folder.segment()
        );
        let summary = json!({
            "file": {"fileName": file_name, "contentType": content_type, "bytes": bytes.len()}
        });
        if bytes.len() > MAX_DOCUMENT_BYTES {
            let err = HibobError::TooLarge {
                limit: MAX_DOCUMENT_BYTES,
            };
            outbound::record_refusal(
                log,
                Outgoing {
                    service: outbound::HIBOB,
                    method: Method::POST,
                    path,
                    logged_body: Some(summary),
                },
                &err,
            );
            return Err(err);
        }
        // an unusable type is left for HiBob to judge from the file name
        let content_type = if reqwest::multipart::Part::text("")
            .mime_str(content_type)
            .is_ok()
        {
            content_type
        } else {
            "application/octet-stream"
        };
        let part = reqwest::multipart::Part::bytes(bytes)
            .file_name(file_name.to_owned())
            .mime_str(content_type)
            .map_err(|e| HibobError::Transport(format!("cannot build the upload: {e}")))?;
        let form = reqwest::multipart::Form::new().part("file", part);
        self.send(
            Method::POST,
            &path,
            folder.upload_endpoint(),
            &[],
            Payload::Multipart(form),
            Some(summary),
            log,
            |_| Ok(()),
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
        payload: Payload<'_>,
        logged_body: Option<Value>,
        log: &mut CallLog,
        parse: impl FnOnce(&Reply) -> Result<T, HibobError>,
    ) -> Result<T, HibobError> {
        let mut request = self
            .transport
            .http
            .request(method.clone(), format!("{}{path}", self.base_url))
            .basic_auth(&self.service_user_id, Some(self.token.expose_secret()))
            .header(reqwest::header::ACCEPT, "application/json");
        if !query.is_empty() {
            request = request.query(query);
        }
        request = match payload {
            Payload::Empty => request,
            Payload::Json(body) => request.json(body),
            Payload::Multipart(form) => request.multipart(form),
        };
        let outgoing = Outgoing {
            service: outbound::HIBOB,
            method,
            path: outbound::with_query(path, query),
            logged_body,
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
                Err(failure) => Err(error::from_failure(failure)),
                Ok(reply) if reply.is_success() => parse(&reply),
                Ok(reply) => Err(error::from_reply(&reply)),
            },
        )
        .await
    }
}

/// "Test connection" for the credentials in force.
pub async fn check_configured(creds: &Credentials) -> Result<ConnectionCheck, ClientError> {
    Ok(match Client::from_credentials(creds).await? {
        Some(client) => client.check_connection().await,
        None => ConnectionCheck::not_configured("set the HiBob service user ID and token"),
    })
}

fn parse_json(reply: &Reply, what: &str) -> Result<Value, HibobError> {
    serde_json::from_slice(&reply.body).map_err(|e| error::decode_error(what, e))
}

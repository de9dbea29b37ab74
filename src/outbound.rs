//! What the HiBob and Pinpoint clients share: one way to build an HTTP client, one way to
//! describe the outcome of a connection check in words an admin can act on, one record format
//! for the calls an export makes, and one reading of rate-limit headers.

use std::{
    borrow::Cow,
    fmt::Display,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::destination::{Guard, Refused};
pub use crate::pacing::RateLimit;
#[cfg(test)]
use crate::pacing::MAX_RATE_LIMIT_WAIT;
use crate::pacing::{Endpoint, Pace, TooLong, DEFAULT_RATE_LIMIT_WAIT};

pub(crate) const USER_AGENT: &str = concat!("pinpoint-hibob/", env!("CARGO_PKG_VERSION"));

/// Bodies above this are refused while reading, so a misbehaving server cannot exhaust memory.
/// It is far above anything these APIs legitimately return (the largest is HiBob's field list).
pub(crate) const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// Export records keep only the start of a response: enough to read an error, not a data dump.
pub(crate) const LOGGED_BODY_BYTES: usize = 4096;

/// What a connection check reads of an answer: its error sentence shows 500 characters at most.
pub(crate) const CHECK_BODY_BYTES: usize = 8 * 1024;

/// A client whose every connection goes through `guard`: names are resolved and checked by it,
/// and no proxy stands between the checked address and the connection.
pub(crate) fn http_client(
    timeout: Duration,
    guard: &Guard,
) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .connect_timeout(Duration::from_secs(5).min(timeout))
        .timeout(timeout)
        // A credentialed call must never follow a redirect to a host we did not configure.
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .dns_resolver(guard.clone())
        .build()
}

/// The secrets a client sends, in every form an upstream might repeat them in, so that what is
/// read back is scrubbed of them before it is parsed, stored or shown.
#[derive(Clone, Default)]
pub(crate) struct Secrets(Arc<Vec<Vec<u8>>>);

/// What replaces a secret in stored and shown text.
pub(crate) const REDACTED: &str = "[redacted]";

/// Secrets shorter than this are not scrubbed: replacing a few characters everywhere would garble
/// every answer, and no real token is that short.
const MIN_SECRET_CHARS: usize = 6;

impl Secrets {
    /// Each of `values` as given, JSON-escaped (`/` as `\/`) and percent-encoded.
    pub(crate) fn new<'a>(values: impl IntoIterator<Item = &'a str>) -> Self {
        let mut forms: Vec<Vec<u8>> = Vec::new();
        for value in values {
            if value.trim().chars().count() < MIN_SECRET_CHARS {
                continue;
            }
            for form in [
                value.to_owned(),
                value.replace('/', "\\/"),
                encode_segment(value),
            ] {
                let form = form.into_bytes();
                if !forms.contains(&form) {
                    forms.push(form);
                }
            }
        }
        // longest first, so a secret inside a longer one does not leave the rest behind
        forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
        Self(Arc::new(forms))
    }

    /// HiBob's service user: the token, `id:token`, and the Basic header's base64 of it.
    pub(crate) fn basic(user: &str, token: &str) -> Self {
        use base64::Engine as _;
        let pair = format!("{user}:{token}");
        let encoded = base64::engine::general_purpose::STANDARD.encode(pair.as_bytes());
        Self::new([token, pair.as_str(), encoded.as_str()])
    }

    pub(crate) fn scrub_bytes(&self, bytes: Vec<u8>) -> Vec<u8> {
        let mut out = bytes;
        for secret in self.0.iter() {
            out = replace_all(&out, secret, REDACTED.as_bytes());
        }
        out
    }

    pub(crate) fn scrub(&self, text: &str) -> String {
        String::from_utf8_lossy(&self.scrub_bytes(text.as_bytes().to_vec())).into_owned()
    }
}

fn replace_all(haystack: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return haystack.to_vec();
    }
    let mut out = Vec::with_capacity(haystack.len());
    let mut rest = haystack;
    while !rest.is_empty() {
        if rest.starts_with(needle) {
            out.extend_from_slice(with);
            rest = rest.get(needle.len()..).unwrap_or_default();
        } else if let Some((first, tail)) = rest.split_first() {
            out.push(*first);
            rest = tail;
        }
    }
    out
}

/// What a credentialed client checks on every call: where it may connect, and which of its
/// secrets must not come back into what is stored or shown.
#[derive(Clone, Default)]
pub(crate) struct Safeguards {
    pub guard: Guard,
    pub secrets: Secrets,
}

/// A credentialed client's connection: an HTTP client built for one timeout and one guard, and
/// what it checks on every call. Changing the timeout or the guard builds the HTTP client again,
/// since reqwest fixes both when it is built.
#[derive(Clone)]
pub(crate) struct Transport {
    pub http: reqwest::Client,
    pub timeout: Duration,
    pub safeguards: Safeguards,
}

impl Transport {
    pub fn new(timeout: Duration, safeguards: Safeguards) -> Result<Self, reqwest::Error> {
        Ok(Self {
            http: http_client(timeout, &safeguards.guard)?,
            timeout,
            safeguards,
        })
    }

    /// The same, with the whole-request timeout replaced (the connect timeout is capped by it).
    pub fn with_timeout(self, timeout: Duration) -> Result<Self, reqwest::Error> {
        Self::new(timeout, self.safeguards)
    }

    /// The same, connecting only where `guard` allows.
    pub fn with_guard(self, guard: Guard) -> Result<Self, reqwest::Error> {
        Self::new(
            self.timeout,
            Safeguards {
                guard,
                ..self.safeguards
            },
        )
    }
}

/// Sends `request` after checking a literal IP address in its URL (names are checked by the
/// client's resolver as they are resolved).
pub(crate) async fn send_checked(
    guard: &Guard,
    request: reqwest::RequestBuilder,
) -> Result<reqwest::Response, SendError> {
    if crate::lease::lost() {
        return Err(SendError::LeaseLost);
    }
    let (client, request) = request.build_split();
    let request = request.map_err(SendError::Http)?;
    guard
        .check_literal(request.url())
        .map_err(SendError::Refused)?;
    client.execute(request).await.map_err(SendError::Http)
}

pub(crate) enum SendError {
    Refused(Refused),
    Http(reqwest::Error),
    /// The attempt lost its lease (see [`crate::lease`]); nothing was sent.
    LeaseLost,
}

impl SendError {
    pub(crate) fn describe(&self, service: &str) -> String {
        match self {
            SendError::Refused(refused) => refused_text(service, refused),
            SendError::Http(e) => describe_transport_error(service, e),
            SendError::LeaseLost => format!(
                "Not sent to {service}: this attempt lost its hold on the export (the console \
                 could not renew it in time), so another attempt carries it on"
            ),
        }
    }
}

fn refused_text(service: &str, refused: &Refused) -> String {
    format!("Not sent to {service}: {refused}")
}

/// The result of a "Test connection" button.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionCheck {
    pub ok: bool,
    /// One sentence: what happened and, on failure, what to fix.
    pub summary: String,
    pub http_status: Option<u16>,
    pub elapsed_ms: u64,
}

impl ConnectionCheck {
    pub(crate) fn not_configured(what: &str) -> Self {
        Self {
            ok: false,
            summary: format!("Not configured: {what}."),
            http_status: None,
            elapsed_ms: 0,
        }
    }
}

/// Describes a transport failure without echoing the URL's query or any header.
pub(crate) fn describe_transport_error(service: &str, err: &reqwest::Error) -> String {
    if let Some(refused) = Refused::find_in(err) {
        refused_text(service, refused)
    } else if err.is_timeout() {
        format!("{service} did not answer in time (timeout)")
    } else if err.is_connect() {
        format!("Could not connect to {service}: check the base URL and that the host is reachable")
    } else if err.is_builder() {
        format!("The {service} base URL is not usable")
    } else {
        let cause = std::error::Error::source(err)
            .map(|c| c.to_string())
            .unwrap_or_else(|| "unknown cause".to_owned());
        format!("The request to {service} failed: {cause}")
    }
}

/// Runs one GET-style check and turns its outcome into a `ConnectionCheck`.
pub(crate) async fn check(
    service: &str,
    request: reqwest::RequestBuilder,
    safeguards: &Safeguards,
    explain_status: impl Fn(u16, &str) -> String,
) -> ConnectionCheck {
    let started = Instant::now();
    let outcome = send_checked(&safeguards.guard, request).await;
    let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    match outcome {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let ok = resp.status().is_success();
            // this text only feeds an error sentence, so only its start is read
            let mut resp = resp;
            let body = read_at_most(&mut resp, CHECK_BODY_BYTES)
                .await
                .map(|(bytes, _)| {
                    String::from_utf8_lossy(&safeguards.secrets.scrub_bytes(bytes)).into_owned()
                })
                .unwrap_or_default();
            let body: String = body.chars().take(500).collect();
            ConnectionCheck {
                ok,
                summary: if ok {
                    format!("Connected to {service} (HTTP {status}, {elapsed_ms} ms).")
                } else {
                    explain_status(status, &body)
                },
                http_status: Some(status),
                elapsed_ms,
            }
        }
        Err(e) => ConnectionCheck {
            ok: false,
            summary: format!("{}.", e.describe(service)),
            http_status: None,
            elapsed_ms,
        },
    }
}

// ---------------------------------------------------------------------------------------------
// Call records
// ---------------------------------------------------------------------------------------------

/// One HTTP call as an operator sees it in an export record.
///
/// Headers are never kept, so neither the HiBob Basic credentials nor the Pinpoint API key can
/// end up here. Signed URLs (CV links) lose their query string, because the query is what
/// grants access to the file. Response bodies keep only their first few kilobytes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Exchange {
    pub service: &'static str,
    pub method: String,
    /// Relative to the configured base URL, with the query string when there is one.
    pub path: String,
    pub request_body: Option<Value>,
    /// `None` when no answer arrived (timeout, connection failure, refused before sending).
    pub status: Option<u16>,
    pub response_body: Option<String>,
    pub duration_ms: u64,
    /// What the client concluded, when the call did not succeed.
    pub error: Option<String>,
}

/// The owned form records are read back through: service names are compile-time constants, so
/// stored names map back onto them instead of leaking memory for a `&'static str`.
#[derive(Deserialize)]
struct StoredExchange {
    service: String,
    method: String,
    path: String,
    #[serde(default)]
    request_body: Option<Value>,
    #[serde(default)]
    status: Option<u16>,
    #[serde(default)]
    response_body: Option<String>,
    #[serde(default)]
    duration_ms: u64,
    #[serde(default)]
    error: Option<String>,
}

impl<'de> Deserialize<'de> for Exchange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        StoredExchange::deserialize(d).map(Self::from)
    }
}

impl From<StoredExchange> for Exchange {
    fn from(s: StoredExchange) -> Self {
        let service = match s.service.as_str() {
            n if n.eq_ignore_ascii_case(HIBOB) => HIBOB,
            n if n.eq_ignore_ascii_case(PINPOINT) => PINPOINT,
            _ => "other",
        };
        Self {
            service,
            method: s.method,
            path: s.path,
            request_body: s.request_body,
            status: s.status,
            response_body: s.response_body,
            duration_ms: s.duration_ms,
            error: s.error,
        }
    }
}

pub(crate) const HIBOB: &str = "HiBob";
pub(crate) const PINPOINT: &str = "Pinpoint";

/// Every HTTP call an operation made, in order, successful or not.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CallLog(Vec<Exchange>);

impl CallLog {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, exchange: Exchange) {
        self.0.push(exchange);
    }

    pub fn into_vec(self) -> Vec<Exchange> {
        self.0
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Exchange> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn last(&self) -> Option<&Exchange> {
        self.0.last()
    }
}

impl<'a> IntoIterator for &'a CallLog {
    type Item = &'a Exchange;
    type IntoIter = std::slice::Iter<'a, Exchange>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl IntoIterator for CallLog {
    type Item = Exchange;
    type IntoIter = std::vec::IntoIter<Exchange>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl From<CallLog> for Vec<Exchange> {
    fn from(log: CallLog) -> Self {
        log.0
    }
}

/// At most `max` bytes of `text`, ending on a character boundary.
pub(crate) fn prefix_within(text: &str, max: usize) -> &str {
    let mut end = max.min(text.len());
    while end > 0 && !text.is_char_boundary(end) {
        end -= 1;
    }
    text.get(..end).unwrap_or_default()
}

/// Cuts `text` to at most `max` bytes on a character boundary and says how much was dropped.
pub(crate) fn truncate_for_log(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    format!(
        "{}… [truncated, {} bytes in total]",
        prefix_within(text, max),
        text.len()
    )
}

/// Drops the query and fragment of an http(s) URL: on signed download links that is the secret.
pub(crate) fn redact_url(text: &str) -> Cow<'_, str> {
    let lower = text
        .get(..8)
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) {
        return Cow::Borrowed(text);
    }
    match text.find(['?', '#']) {
        Some(cut) => Cow::Owned(format!("{}?[redacted]", &text[..cut])),
        None => Cow::Borrowed(text),
    }
}

/// Applies [`redact_url`] to every string in a JSON document.
pub(crate) fn redact_json(value: &mut Value) {
    match value {
        Value::String(s) => {
            if let Cow::Owned(redacted) = redact_url(s) {
                *s = redacted;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_json),
        Value::Object(map) => map.values_mut().for_each(redact_json),
        _ => {}
    }
}

fn response_for_log(body: &[u8]) -> Option<String> {
    if body.is_empty() {
        return None;
    }
    let text = match serde_json::from_slice::<Value>(body) {
        Ok(mut json) => {
            redact_json(&mut json);
            json.to_string()
        }
        Err(_) => String::from_utf8_lossy(body).into_owned(),
    };
    Some(truncate_for_log(&text, LOGGED_BODY_BYTES))
}

// ---------------------------------------------------------------------------------------------
// Rate limits
// ---------------------------------------------------------------------------------------------

/// The last rate-limit state seen by a client, shared by all its clones.
#[derive(Debug, Clone, Default)]
pub(crate) struct RateLimitCell(Arc<Mutex<Option<RateLimit>>>);

impl RateLimitCell {
    pub(crate) fn get(&self) -> Option<RateLimit> {
        *self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn record(&self, value: RateLimit) {
        *self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(value);
    }
}

// ---------------------------------------------------------------------------------------------
// Sending
// ---------------------------------------------------------------------------------------------

/// What the caller wants recorded about a request it is about to send.
pub(crate) struct Outgoing {
    pub service: &'static str,
    pub method: reqwest::Method,
    pub path: String,
    /// Stored as given after URL redaction; pass a summary for binary bodies.
    pub logged_body: Option<Value>,
}

/// A response read in full (up to [`MAX_RESPONSE_BYTES`]).
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
    pub rate_limit: Option<RateLimit>,
    pub received_at: DateTime<Utc>,
}

impl Reply {
    pub(crate) fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub(crate) fn text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }

    /// The wait a 429 asks for, with the one-minute fallback.
    pub(crate) fn rate_limit_wait(&self) -> Duration {
        self.rate_limit
            .map(|r| r.wait(self.received_at))
            .unwrap_or(DEFAULT_RATE_LIMIT_WAIT)
    }
}

/// Why no usable response arrived.
#[derive(Debug)]
pub(crate) enum Failure {
    Timeout,
    Transport(String),
    /// Not sent: the destination is, or now resolves to, a private or local address the
    /// operator did not allow. Sending again cannot help; a person must look at the setting.
    Refused(String),
    BodyTooLarge {
        limit: usize,
    },
    /// Not sent: the endpoint's rate-limit window is spent for longer than the caller waits.
    Paced {
        wait: Duration,
    },
}

/// Where a call waits its turn: the pace of its credentials, its endpoint as the service counts
/// it, and how long the caller is willing to wait before giving up without sending.
pub(crate) struct Paced<'a> {
    pub pace: &'a Arc<Pace>,
    pub endpoint: Endpoint,
    pub patience: Duration,
}

/// Waits for the call's turn in its endpoint's window, sends it, records it in `log` whatever
/// happens, remembers any rate-limit headers, and lets the caller turn the raw outcome into its
/// own result type. A call whose turn is further away than the caller waits is not sent.
pub(crate) async fn exchange<T, E: Display>(
    outgoing: Outgoing,
    request: reqwest::RequestBuilder,
    rate: &RateLimitCell,
    paced: Paced<'_>,
    safeguards: &Safeguards,
    log: &mut CallLog,
    interpret: impl FnOnce(Result<Reply, Failure>) -> Result<T, E>,
) -> Result<T, E> {
    let ticket = match paced.pace.admit(paced.endpoint, paced.patience).await {
        Ok(ticket) => ticket,
        Err(TooLong { wait }) => {
            let result = interpret(Err(Failure::Paced { wait }));
            if let Err(e) = &result {
                record_refusal(log, outgoing, e);
            }
            return result;
        }
    };
    let started = Instant::now();
    let outcome = send_and_read(outgoing.service, request, safeguards).await;
    let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    match &outcome {
        Ok(reply) => {
            if let Some(rl) = reply.rate_limit {
                rate.record(rl);
            }
            ticket
                .answered(reply.received_at, reply.status, reply.rate_limit)
                .await;
        }
        Err(_) => drop(ticket),
    }
    let (status, response_body) = match &outcome {
        Ok(reply) => (Some(reply.status), response_for_log(&reply.body)),
        Err(_) => (None, None),
    };
    tracing::debug!(
        service = outgoing.service,
        method = %outgoing.method,
        path = %outgoing.path,
        status = ?status,
        duration_ms,
        "outbound call"
    );
    let result = interpret(outcome);
    let mut request_body = outgoing.logged_body;
    if let Some(body) = request_body.as_mut() {
        redact_json(body);
    }
    log.push(Exchange {
        service: outgoing.service,
        method: outgoing.method.to_string(),
        path: outgoing.path,
        request_body,
        status,
        response_body,
        duration_ms,
        // the reply was scrubbed before it was read; this catches what a caller added
        error: result
            .as_ref()
            .err()
            .map(|e| safeguards.secrets.scrub(&e.to_string())),
    });
    result
}

/// Records a call that was refused before anything was sent, so the export record still shows
/// what was attempted and why it stopped.
pub(crate) fn record_refusal(log: &mut CallLog, outgoing: Outgoing, error: &impl Display) {
    let mut request_body = outgoing.logged_body;
    if let Some(body) = request_body.as_mut() {
        redact_json(body);
    }
    log.push(Exchange {
        service: outgoing.service,
        method: outgoing.method.to_string(),
        path: outgoing.path,
        request_body,
        status: None,
        response_body: None,
        duration_ms: 0,
        error: Some(error.to_string()),
    });
}

/// Sends the request and reads its answer, with every secret of the client scrubbed from the
/// body before anyone parses, stores or shows it.
async fn send_and_read(
    service: &str,
    request: reqwest::RequestBuilder,
    safeguards: &Safeguards,
) -> Result<Reply, Failure> {
    let classify = |e: reqwest::Error| match Refused::find_in(&e) {
        Some(refused @ Refused::Internal { .. }) => {
            Failure::Refused(refused_text(service, refused))
        }
        _ if e.is_timeout() => Failure::Timeout,
        _ => Failure::Transport(describe_transport_error(service, &e)),
    };
    let mut response = match send_checked(&safeguards.guard, request).await {
        Ok(response) => response,
        Err(SendError::Http(e)) => return Err(classify(e)),
        Err(SendError::Refused(refused @ Refused::Internal { .. })) => {
            return Err(Failure::Refused(refused_text(service, &refused)))
        }
        Err(refused) => return Err(Failure::Transport(refused.describe(service))),
    };
    let received_at = Utc::now();
    let status = response.status().as_u16();
    let rate_limit = RateLimit::from_headers(response.headers(), received_at);
    if response
        .content_length()
        .is_some_and(|len| len > MAX_RESPONSE_BYTES as u64)
    {
        return Err(Failure::BodyTooLarge {
            limit: MAX_RESPONSE_BYTES,
        });
    }
    let (body, cut) = read_at_most(&mut response, MAX_RESPONSE_BYTES)
        .await
        .map_err(classify)?;
    if cut {
        return Err(Failure::BodyTooLarge {
            limit: MAX_RESPONSE_BYTES,
        });
    }
    Ok(Reply {
        status,
        body: safeguards.secrets.scrub_bytes(body),
        rate_limit,
        received_at,
    })
}

/// Reads a body chunk by chunk up to `limit` bytes and stops there, so a server cannot make the
/// console hold more than it will use, nor wait for the end of an answer it will not read. The
/// flag says whether the body went on beyond the limit.
pub(crate) async fn read_at_most(
    response: &mut reqwest::Response,
    limit: usize,
) -> Result<(Vec<u8>, bool), reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = limit - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            return Ok((body, true));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, false))
}

/// The path as an export record shows it: query left readable, since it never carries secrets.
pub(crate) fn with_query(path: &str, query: &[(&str, &str)]) -> String {
    if query.is_empty() {
        return path.to_owned();
    }
    let pairs: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{path}?{}", pairs.join("&"))
}

/// Percent-encodes one path segment, so ids and list names cannot change the path.
pub(crate) fn encode_segment(segment: &str) -> String {
    // `.` and `..` would be resolved away by URL normalisation
    if segment == "." || segment == ".." {
        return segment.replace('.', "%2E");
    }
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Ids arrive as JSON numbers or strings depending on the endpoint; callers only want text.
pub(crate) fn id_string(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A non-empty, trimmed string, treating `null`, `""` and non-strings as absent.
pub(crate) fn text_value(value: Option<&Value>) -> Option<String> {
    value
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use reqwest::header::{HeaderMap, HeaderValue};

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(secs, 0).unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    #[tokio::test]
    async fn bodies_are_read_only_up_to_the_limit() {
        use wiremock::{matchers::any, Mock, MockServer, ResponseTemplate};
        let server = MockServer::start().await;
        let big = "x".repeat(CHECK_BODY_BYTES * 8);
        Mock::given(any())
            .respond_with(ResponseTemplate::new(401).set_body_string(big))
            .mount(&server)
            .await;
        let client = http_client(
            Duration::from_secs(5),
            &Guard::strict().allowing_private(true),
        )
        .unwrap();
        let mut resp = client.get(server.uri()).send().await.unwrap();
        let (body, cut) = read_at_most(&mut resp, CHECK_BODY_BYTES).await.unwrap();
        assert_eq!(body.len(), CHECK_BODY_BYTES);
        assert!(cut);
        let mut resp = client.get(server.uri()).send().await.unwrap();
        let (body, cut) = read_at_most(&mut resp, CHECK_BODY_BYTES * 8).await.unwrap();
        assert_eq!((body.len(), cut), (CHECK_BODY_BYTES * 8, false));

        let open = Safeguards {
            guard: Guard::strict().allowing_private(true),
            secrets: Secrets::default(),
        };
        let checked = check("HiBob", client.get(server.uri()), &open, |status, body| {
            format!("{status}: {} characters", body.chars().count())
        })
        .await;
        assert_eq!(checked.summary, "401: 500 characters");
    }

    /// An answer that announces a huge body and never finishes it: a check that read the whole
    /// body would wait for the timeout and show nothing.
    #[tokio::test]
    async fn a_check_does_not_wait_for_the_rest_of_an_endless_answer() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 4096];
            let _ = socket.read(&mut request).await;
            let head = "HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\ncontent-length: 104857600\r\n\r\n";
            socket.write_all(head.as_bytes()).await.unwrap();
            let start = format!("no access{}", " ".repeat(CHECK_BODY_BYTES * 2));
            socket.write_all(start.as_bytes()).await.unwrap();
            // the rest never comes
            tokio::time::sleep(Duration::from_secs(30)).await;
        });
        let client = http_client(
            Duration::from_secs(10),
            &Guard::strict().allowing_private(true),
        )
        .unwrap();
        let started = Instant::now();
        let open = Safeguards {
            guard: Guard::strict().allowing_private(true),
            secrets: Secrets::default(),
        };
        let checked = check(
            "HiBob",
            client.get(format!("http://{addr}/")),
            &open,
            |status, body| format!("{status} {}", body.trim()),
        )
        .await;
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(checked.summary, "403 no access");
    }

    #[test]
    fn rate_limit_headers_are_read() {
        let now = at(1_700_000_000);
        let rl = RateLimit::from_headers(
            &headers(&[
                ("x-ratelimit-limit", "50"),
                ("x-ratelimit-remaining", "0"),
                ("x-ratelimit-reset", "1700000030"),
            ]),
            now,
        )
        .unwrap();
        assert_eq!(rl.limit, Some(50));
        assert_eq!(rl.remaining, Some(0));
        assert_eq!(rl.reset_at, Some(at(1_700_000_030)));
        assert!(rl.is_exhausted(now));
        assert_eq!(rl.wait(now), Duration::from_secs(30));
        assert!(RateLimit::from_headers(&HeaderMap::new(), now).is_none());
    }

    #[test]
    fn retry_after_wins_and_accepts_http_dates() {
        let now = at(1_445_412_470); // 2015-10-21T07:27:50Z
        let rl = RateLimit::from_headers(
            &headers(&[
                ("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT"),
                ("x-ratelimit-reset", "1445413000"),
            ]),
            now,
        )
        .unwrap();
        assert_eq!(rl.retry_after_secs, Some(10));
        assert_eq!(rl.wait(now), Duration::from_secs(10));
        let rl = RateLimit::from_headers(&headers(&[("retry-after", "7")]), now).unwrap();
        assert_eq!(rl.wait(now), Duration::from_secs(7));
    }

    #[test]
    fn waits_fall_back_and_are_capped() {
        let now = at(1_700_000_000);
        let past =
            RateLimit::from_headers(&headers(&[("x-ratelimit-reset", "1600000000")]), now).unwrap();
        assert_eq!(past.wait(now), DEFAULT_RATE_LIMIT_WAIT);
        let far = RateLimit::from_headers(&headers(&[("retry-after", "86400")]), now).unwrap();
        assert_eq!(far.wait(now), MAX_RATE_LIMIT_WAIT);
        let delta = RateLimit::from_headers(&headers(&[("x-ratelimit-reset", "12")]), now).unwrap();
        assert_eq!(delta.wait(now), Duration::from_secs(12));
        let millis =
            RateLimit::from_headers(&headers(&[("x-ratelimit-reset", "1700000005000")]), now)
                .unwrap();
        assert_eq!(millis.wait(now), Duration::from_secs(5));
    }

    #[test]
    fn truncation_respects_characters() {
        let text = "é".repeat(3000); // 6000 bytes
        let cut = truncate_for_log(&text, LOGGED_BODY_BYTES);
        assert!(cut.len() < LOGGED_BODY_BYTES + 64);
        assert!(cut.ends_with("[truncated, 6000 bytes in total]"), "{cut}");
        assert_eq!(truncate_for_log("short", 10), "short");
    }

    #[test]
    fn signed_urls_lose_their_query() {
        let mut body = serde_json::json!({
            "documentUrl": "https://files.example.com/cv.pdf?X-Amz-Signature=abc",
            "nested": [{"url": "HTTPS://x.example/a#frag"}],
            "plain": "what? no url"
        });
        redact_json(&mut body);
        assert_eq!(
            body["documentUrl"],
            "https://files.example.com/cv.pdf?[redacted]"
        );
        assert_eq!(body["nested"][0]["url"], "HTTPS://x.example/a?[redacted]");
        assert_eq!(body["plain"], "what? no url");
    }

    #[test]
    fn exchange_round_trips_through_json() {
        let ex = Exchange {
            service: HIBOB,
            method: "GET".into(),
            path: "/company/people/fields".into(),
            request_body: None,
            status: Some(200),
            response_body: Some("[]".into()),
            duration_ms: 3,
            error: None,
        };
        let mut log = CallLog::new();
        log.push(ex.clone());
        let json = serde_json::to_string(&log).unwrap();
        let back: CallLog = serde_json::from_str(&json).unwrap();
        assert_eq!(back.into_vec(), vec![ex]);
    }

    #[test]
    fn segments_are_encoded() {
        assert_eq!(encode_segment("3391735226064306262"), "3391735226064306262");
        assert_eq!(encode_segment("a/b c?"), "a%2Fb%20c%3F");
        assert_eq!(encode_segment(".."), "%2E%2E");
    }

    #[test]
    fn every_form_of_a_secret_is_scrubbed() {
        let secrets = Secrets::basic("SERVICE-1", "tok/en+secret=1");
        let basic = {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.encode("SERVICE-1:tok/en+secret=1")
        };
        let text = format!(
            r#"{{"error":"bad token tok/en+secret=1 or tok\/en+secret=1 or tok%2Fen%2Bsecret%3D1, Basic {basic}, pair SERVICE-1:tok/en+secret=1"}}"#
        );
        let scrubbed = secrets.scrub(&text);
        assert!(!scrubbed.contains("secret"), "{scrubbed}");
        assert!(!scrubbed.contains(&basic), "{scrubbed}");
        assert_eq!(scrubbed.matches(REDACTED).count(), 5, "{scrubbed}");
        // too short to scrub without garbling every answer
        assert_eq!(Secrets::new(["abc"]).scrub("abcabc"), "abcabc");
        assert_eq!(Secrets::default().scrub("as is"), "as is");
    }
}

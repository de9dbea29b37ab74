//! What the simulators remember between requests, and the knobs tests turn.
//!
//! One mutex guards everything: the simulators are small, and a single lock makes "check the
//! e-mail is free, then store the employee" atomic, which is the property duplicate-delivery
//! tests rely on. The lock is never held across an `.await`.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

use super::SandboxCredentials;

/// Windows whose 429s are counted; later ones are not, so a long-running sandbox stays small.
const MAX_LIMITED_WINDOWS: usize = 1000;

/// An employee the HiBob simulator created.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimEmployee {
    /// HiBob-style 19-digit id.
    pub id: String,
    pub email: String,
    pub first_name: String,
    pub surname: String,
    /// The site's name, even when the create named it by id.
    pub site: String,
    pub start_date: String,
    /// The create body as received, for tests of field mapping.
    pub body: Value,
    pub created_at: DateTime<Utc>,
}

/// A document attached to a simulated employee.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimDocument {
    pub id: u64,
    pub employee_id: String,
    /// `shared` or `confidential`.
    pub folder: String,
    pub name: String,
    /// Set for uploads from a URL; the simulator does not download it.
    pub source_url: Option<String>,
    pub tags: Vec<String>,
    pub content_type: Option<String>,
    /// Set for multipart uploads, so the download link can serve them back.
    #[serde(skip)]
    pub bytes: Option<Vec<u8>>,
    pub created_at: DateTime<Utc>,
}

/// A comment the Pinpoint simulator accepted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimComment {
    pub id: String,
    /// `applications` or `job_seekers`.
    pub commentable_type: String,
    pub commentable_id: String,
    pub body_text: String,
    pub created_at: DateTime<Utc>,
}

/// Per-minute windows, one per endpoint group, as HiBob counts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Bucket {
    Create,
    Search,
    ReadOne,
    Fields,
    Lists,
    Docs,
    Other,
}

impl Bucket {
    /// Search and fields are HiBob's documented or measured limits; the create and list
    /// figures are not published, so they are set high enough for a demo; documents are
    /// "unlimited for now", modelled as a ceiling nobody reaches.
    fn default_limit(self) -> u32 {
        match self {
            Self::Search | Self::Fields => 50,
            Self::ReadOne | Self::Create | Self::Lists | Self::Other => 100,
            Self::Docs => 1000,
        }
    }

    /// Classifies by path suffix, so it works whether or not the router stripped the prefix.
    pub(crate) fn of(method: &axum::http::Method, path: &str) -> Self {
        let path = path.trim_end_matches('/');
        if path.contains("/docs/") {
            Self::Docs
        } else if path.ends_with("/people/search") {
            Self::Search
        } else if path.ends_with("/people") && method == axum::http::Method::POST {
            Self::Create
        } else if path.contains("/people/") && !path.contains("/company/") {
            Self::ReadOne
        } else if path.ends_with("/company/people/fields") {
            Self::Fields
        } else if path.contains("/company/named-lists") {
            Self::Lists
        } else {
            Self::Other
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Window {
    started: u64,
    used: u32,
}

/// What the gate tells a HiBob response to carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RateHeaders {
    pub limit: u32,
    pub remaining: u32,
    /// Unix epoch seconds, as HiBob documents `X-RateLimit-Reset`.
    pub reset: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    Allowed,
    Limited { retry_after: u64 },
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct InjectedFailure {
    pub status: StatusCode,
    /// Store the employee first, then fail: the ambiguous 5xx a client must survive.
    pub after_store: bool,
}

/// Where a Pinpoint application comes from.
pub(crate) enum ApplicationSource {
    Sample(u64),
    Custom {
        seed: u64,
        attributes: Map<String, Value>,
    },
}

#[derive(Default)]
struct Inner {
    employees: Vec<SimEmployee>,
    documents: Vec<SimDocument>,
    comments: Vec<SimComment>,
    /// The employee id of every invitation sent, in order.
    invitations: Vec<String>,
    applications: HashMap<String, Map<String, Value>>,
    create_calls: usize,
    create_delay: Duration,
    upload_delay: Duration,
    create_failures: VecDeque<InjectedFailure>,
    forced_rate_limits: usize,
    forced_retry_after: u64,
    limit_override: Option<u32>,
    /// Seconds per rate-limit window; HiBob's is a minute.
    window_secs: Option<u64>,
    /// When set, HiBob answers carry no `X-RateLimit-*` headers and nothing is limited.
    limits_unannounced: bool,
    /// 429s answered, per endpoint group and window start (bounded, see [`MAX_LIMITED_WINDOWS`]).
    limited: HashMap<(Bucket, u64), u32>,
    call_delay: Duration,
    hibob_calls: usize,
    windows: HashMap<Bucket, Window>,
    pinpoint_failures: VecDeque<StatusCode>,
    next_document_id: u64,
    next_comment_id: u64,
    public_base: Option<String>,
    started_on: chrono::NaiveDate,
}

/// The simulators' shared memory: cheap to clone, every clone sees the same state.
#[derive(Clone)]
pub struct SimState {
    inner: Arc<Mutex<Inner>>,
    credentials: Arc<SandboxCredentials>,
}

impl std::fmt::Debug for SimState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimState").finish_non_exhaustive()
    }
}

fn epoch_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

fn status_or_500(status: u16) -> StatusCode {
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

impl SimState {
    pub fn new(credentials: SandboxCredentials) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner {
                next_document_id: 15_587_714,
                next_comment_id: 5_001,
                started_on: Utc::now().date_naive(),
                ..Inner::default()
            })),
            credentials: Arc::new(credentials),
        }
    }

    /// A panic in one handler must not take the whole simulator down with a poisoned lock; the
    /// state it guards stays consistent because every update is a single push or counter.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn credentials(&self) -> &SandboxCredentials {
        &self.credentials
    }

    /// The origin (`http://127.0.0.1:PORT`) links in answers point at. Without it the request's
    /// `Host` header is used, which is right for a test serving [`super::router`] itself.
    pub fn set_public_base_url(&self, origin: &str) {
        self.lock().public_base = Some(origin.trim_end_matches('/').to_owned());
    }

    pub(crate) fn origin(&self, headers: &HeaderMap) -> String {
        if let Some(base) = self.lock().public_base.clone() {
            return base;
        }
        let host = headers
            .get(axum::http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .filter(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_graphic()))
            .unwrap_or("127.0.0.1");
        format!("http://{host}")
    }

    // -- inspection ---------------------------------------------------------------------------

    pub fn employees(&self) -> Vec<SimEmployee> {
        self.lock().employees.clone()
    }

    pub fn employee(&self, id: &str) -> Option<SimEmployee> {
        self.lock().employees.iter().find(|e| e.id == id).cloned()
    }

    /// Changes the employee with this id (or e-mail) in place; `None` when there is none.
    pub(crate) fn change_employee<T>(
        &self,
        identifier: &str,
        change: impl FnOnce(&mut SimEmployee) -> T,
    ) -> Option<T> {
        let mut inner = self.lock();
        inner
            .employees
            .iter_mut()
            .find(|e| e.id == identifier || e.email.eq_ignore_ascii_case(identifier))
            .map(change)
    }

    /// Whether HiBob has someone with this e-mail (case-insensitively).
    pub(crate) fn has_employee_with_email(&self, email: &str) -> bool {
        self.employee_count_with_email(email) > 0
    }

    /// The day the simulators started: sample start dates count from it, so they stay put
    /// while the console runs instead of moving with the calendar.
    pub(crate) fn started_on(&self) -> chrono::NaiveDate {
        self.lock().started_on
    }

    /// Case-insensitive, like the duplicate check.
    pub fn employee_count_with_email(&self, email: &str) -> usize {
        let wanted = email.trim().to_lowercase();
        self.lock()
            .employees
            .iter()
            .filter(|e| e.email.to_lowercase() == wanted)
            .count()
    }

    /// Names of the employee's documents, in upload order, across both folders.
    pub fn documents_of(&self, employee_id: &str) -> Vec<String> {
        self.lock()
            .documents
            .iter()
            .filter(|d| d.employee_id == employee_id)
            .map(|d| d.name.clone())
            .collect()
    }

    pub fn documents(&self) -> Vec<SimDocument> {
        self.lock().documents.clone()
    }

    /// `body_text` of the comments on one application, oldest first.
    pub fn comments_on(&self, application_id: &str) -> Vec<String> {
        self.lock()
            .comments
            .iter()
            .filter(|c| c.commentable_type == "applications" && c.commentable_id == application_id)
            .map(|c| c.body_text.clone())
            .collect()
    }

    pub fn comments(&self) -> Vec<SimComment> {
        self.lock().comments.clone()
    }

    /// Invitations sent to the employee.
    pub fn invitations_of(&self, employee_id: &str) -> usize {
        self.lock()
            .invitations
            .iter()
            .filter(|id| *id == employee_id)
            .count()
    }

    pub(crate) fn record_invitation(&self, employee_id: &str) {
        self.lock().invitations.push(employee_id.to_owned());
    }

    /// Authenticated `POST /people` requests received, whatever their outcome (injected
    /// failures, validation errors and duplicates included).
    pub fn create_calls(&self) -> usize {
        self.lock().create_calls
    }

    // -- knobs --------------------------------------------------------------------------------

    /// Holds every successful create answer back this long after the employee is stored, so a
    /// client that times out or is killed mid-request leaves the employee behind.
    pub fn set_create_delay(&self, delay: Duration) {
        self.lock().create_delay = delay;
    }

    /// Makes HiBob take this long to fetch a document from its URL before it is stored, as a
    /// large CV does.
    pub fn set_upload_delay(&self, delay: Duration) {
        self.lock().upload_delay = delay;
    }

    pub(crate) fn upload_delay(&self) -> Duration {
        self.lock().upload_delay
    }

    /// Answers the next `n` creates with `status` (an invalid code becomes 500) without storing.
    pub fn fail_next_creates(&self, n: usize, status: u16) {
        let status = status_or_500(status);
        self.lock().create_failures.extend(std::iter::repeat_n(
            InjectedFailure {
                status,
                after_store: false,
            },
            n,
        ));
    }

    /// Stores the next `n` valid creates and then answers `status` anyway: the lost answer a
    /// retrying client has to resolve through the duplicate-e-mail path.
    pub fn fail_next_creates_after_store(&self, n: usize, status: u16) {
        let status = status_or_500(status);
        self.lock().create_failures.extend(std::iter::repeat_n(
            InjectedFailure {
                status,
                after_store: true,
            },
            n,
        ));
    }

    /// Answers the next `n` authenticated HiBob calls, whatever the endpoint, with 429,
    /// `Retry-After: retry_after_secs` and an exhausted `X-RateLimit-*` set.
    pub fn rate_limit_next(&self, n: usize, retry_after_secs: u64) {
        let mut inner = self.lock();
        inner.forced_rate_limits = n;
        inner.forced_retry_after = retry_after_secs;
    }

    /// Replaces every HiBob per-minute limit (`None` restores the defaults). End-to-end suites
    /// that reload metadata pages often may want more than HiBob's 50 a minute.
    pub fn set_rate_limit_per_minute(&self, limit: Option<u32>) {
        let mut inner = self.lock();
        inner.limit_override = limit;
        inner.window_secs = None;
        inner.windows.clear();
    }

    /// Makes every authenticated HiBob call take at least `delay`, like a distant server.
    pub fn set_call_delay(&self, delay: Duration) {
        self.lock().call_delay = delay;
    }

    /// Counts every HiBob limit in windows of `secs` seconds of `limit` calls each.
    pub fn set_rate_window(&self, limit: u32, secs: u64) {
        let mut inner = self.lock();
        inner.limit_override = Some(limit);
        inner.window_secs = Some(secs.max(1));
        inner.windows.clear();
    }

    /// `false` makes HiBob announce no rate limits and enforce none, as some gateways do.
    pub fn set_rate_limits_announced(&self, announced: bool) {
        self.lock().limits_unannounced = !announced;
    }

    /// 429s the HiBob simulator answered because a window was spent (forced ones aside), as
    /// (endpoint group, window start in epoch seconds, count).
    pub fn rate_limited_windows(&self) -> Vec<(String, u64, u32)> {
        let mut seen: Vec<(String, u64, u32)> = self
            .lock()
            .limited
            .iter()
            .map(|((bucket, start), n)| (format!("{bucket:?}"), *start, *n))
            .collect();
        seen.sort();
        seen
    }

    /// Authenticated HiBob calls received, whatever their outcome.
    pub fn hibob_calls(&self) -> usize {
        self.lock().hibob_calls
    }

    /// Counts an authenticated HiBob call and says how long to hold its answer back.
    pub(crate) fn begin_call(&self) -> Duration {
        let mut inner = self.lock();
        inner.hibob_calls += 1;
        inner.call_delay
    }

    /// Answers the next `n` authenticated Pinpoint API calls with `status` and a JSON:API error.
    pub fn fail_next_pinpoint(&self, n: usize, status: u16) {
        let status = status_or_500(status);
        self.lock()
            .pinpoint_failures
            .extend(std::iter::repeat_n(status, n));
    }

    /// Serves `attributes` (JSON:API `data.attributes`) for application `id` instead of a
    /// generated sample; the job and offer are still generated. Attachments are whatever the
    /// attributes say, so an application without a CV is just one without `attachments`.
    pub fn put_application(&self, id: impl Into<String>, attributes: Value) {
        let attributes = match attributes {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        self.lock()
            .applications
            .insert(id.into().trim().to_owned(), attributes);
    }

    // -- used by the handlers -----------------------------------------------------------------

    /// Counts the call against its window; `None` when limits are not announced.
    pub(crate) fn admit(&self, bucket: Bucket, consume: bool) -> Option<(Admission, RateHeaders)> {
        if self.lock().limits_unannounced {
            return None;
        }
        Some(self.admit_counted(bucket, consume))
    }

    fn admit_counted(&self, bucket: Bucket, consume: bool) -> (Admission, RateHeaders) {
        let now = epoch_secs();
        let mut inner = self.lock();
        let span = inner.window_secs.unwrap_or(60);
        let limit = inner.limit_override.unwrap_or(bucket.default_limit());
        let forced = consume && inner.forced_rate_limits > 0;
        if forced {
            inner.forced_rate_limits -= 1;
            let wait = inner.forced_retry_after;
            return (
                Admission::Limited { retry_after: wait },
                RateHeaders {
                    limit,
                    remaining: 0,
                    reset: now + wait,
                },
            );
        }
        let window = inner.windows.entry(bucket).or_insert(Window {
            started: now,
            used: 0,
        });
        if now >= window.started + span {
            *window = Window {
                started: now,
                used: 0,
            };
        }
        let reset = window.started + span;
        if consume && window.used >= limit {
            let started = window.started;
            let counted = inner.limited.len() < MAX_LIMITED_WINDOWS
                || inner.limited.contains_key(&(bucket, started));
            if counted {
                *inner.limited.entry((bucket, started)).or_default() += 1;
            }
            return (
                Admission::Limited {
                    retry_after: reset.saturating_sub(now).max(1),
                },
                RateHeaders {
                    limit,
                    remaining: 0,
                    reset,
                },
            );
        }
        if consume {
            window.used += 1;
        }
        (
            Admission::Allowed,
            RateHeaders {
                limit,
                remaining: limit.saturating_sub(window.used),
                reset,
            },
        )
    }

    /// Counts the call and hands back a failure queued to happen before anything is stored.
    pub(crate) fn begin_create(&self) -> Option<InjectedFailure> {
        let mut inner = self.lock();
        inner.create_calls += 1;
        if inner
            .create_failures
            .front()
            .is_some_and(|f| !f.after_store)
        {
            return inner.create_failures.pop_front();
        }
        None
    }

    /// Stores the employee unless the e-mail is taken (case-insensitively); check and insert
    /// happen under one lock so concurrent duplicates cannot both get in (the error is the
    /// holder's id). Returns the delay to wait and any failure queued to follow the store.
    pub(crate) fn insert_employee(
        &self,
        employee: SimEmployee,
    ) -> Result<(Duration, Option<InjectedFailure>), String> {
        let mut inner = self.lock();
        let wanted = employee.email.to_lowercase();
        if let Some(existing) = inner
            .employees
            .iter()
            .find(|e| e.email.to_lowercase() == wanted)
        {
            return Err(existing.id.clone());
        }
        inner.employees.push(employee);
        let failure = if inner.create_failures.front().is_some_and(|f| f.after_store) {
            inner.create_failures.pop_front()
        } else {
            None
        };
        Ok((inner.create_delay, failure))
    }

    /// A HiBob-style id: 19 digits, below 2^63, unique in this simulator.
    pub(crate) fn new_employee_id(&self) -> String {
        const LOW: u64 = 1_000_000_000_000_000_000;
        const SPAN: u64 = i64::MAX as u64 - LOW;
        let inner = self.lock();
        loop {
            let random = uuid::Uuid::new_v4().as_u64_pair().0;
            let id = (LOW + random % SPAN).to_string();
            if !inner.employees.iter().any(|e| e.id == id) {
                return id;
            }
        }
    }

    pub(crate) fn add_document(&self, mut document: SimDocument) -> SimDocument {
        let mut inner = self.lock();
        document.id = inner.next_document_id;
        inner.next_document_id += 1;
        inner.documents.push(document.clone());
        document
    }

    pub(crate) fn documents_for(&self, employee_id: &str) -> Vec<SimDocument> {
        self.lock()
            .documents
            .iter()
            .filter(|d| d.employee_id == employee_id)
            .cloned()
            .collect()
    }

    pub(crate) fn document(&self, id: u64) -> Option<SimDocument> {
        self.lock().documents.iter().find(|d| d.id == id).cloned()
    }

    pub(crate) fn take_pinpoint_failure(&self) -> Option<StatusCode> {
        self.lock().pinpoint_failures.pop_front()
    }

    /// Custom applications first; any other all-digit id is a generated sample.
    pub(crate) fn application(&self, id: &str) -> Option<ApplicationSource> {
        let id = id.trim();
        if let Some(attributes) = self.lock().applications.get(id) {
            return Some(ApplicationSource::Custom {
                seed: super::samples::seed_of(id),
                attributes: attributes.clone(),
            });
        }
        if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) {
            return id.parse().ok().map(ApplicationSource::Sample);
        }
        None
    }

    pub(crate) fn add_comment(
        &self,
        commentable_type: &str,
        commentable_id: &str,
        body_text: &str,
    ) -> SimComment {
        let mut inner = self.lock();
        let comment = SimComment {
            id: inner.next_comment_id.to_string(),
            commentable_type: commentable_type.to_owned(),
            commentable_id: commentable_id.to_owned(),
            body_text: body_text.to_owned(),
            created_at: Utc::now(),
        };
        inner.next_comment_id += 1;
        inner.comments.push(comment.clone());
        comment
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> SimState {
        SimState::new(SandboxCredentials::generate())
    }

    #[test]
    fn buckets_follow_the_path() {
        use axum::http::Method;
        assert_eq!(
            Bucket::of(&Method::POST, "/hibob/v1/people"),
            Bucket::Create
        );
        assert_eq!(Bucket::of(&Method::POST, "/people"), Bucket::Create);
        assert_eq!(Bucket::of(&Method::POST, "/people/search"), Bucket::Search);
        assert_eq!(Bucket::of(&Method::POST, "/people/123"), Bucket::ReadOne);
        assert_eq!(
            Bucket::of(&Method::GET, "/company/people/fields"),
            Bucket::Fields
        );
        assert_eq!(
            Bucket::of(&Method::GET, "/company/named-lists/site"),
            Bucket::Lists
        );
        assert_eq!(
            Bucket::of(&Method::POST, "/docs/people/1/shared"),
            Bucket::Docs
        );
    }

    #[test]
    fn windows_count_down_and_refuse_when_spent() {
        let s = state();
        s.set_rate_limit_per_minute(Some(2));
        let (a, h) = s.admit_counted(Bucket::Search, true);
        assert_eq!((a, h.limit, h.remaining), (Admission::Allowed, 2, 1));
        // a peek (unauthenticated call) does not spend anything
        assert_eq!(s.admit_counted(Bucket::Search, false).1.remaining, 1);
        assert_eq!(s.admit_counted(Bucket::Search, true).1.remaining, 0);
        let (a, h) = s.admit_counted(Bucket::Search, true);
        assert!(matches!(a, Admission::Limited { retry_after } if (1..=60).contains(&retry_after)));
        assert_eq!(h.remaining, 0);
        // other endpoints count separately
        assert_eq!(s.admit_counted(Bucket::Create, true).0, Admission::Allowed);
        s.rate_limit_next(1, 9);
        assert_eq!(
            s.admit_counted(Bucket::Docs, true).0,
            Admission::Limited { retry_after: 9 }
        );
        assert_eq!(s.admit_counted(Bucket::Docs, true).0, Admission::Allowed);
    }

    #[test]
    fn ids_look_like_hibob_ids() {
        let s = state();
        for _ in 0..50 {
            let id = s.new_employee_id();
            assert_eq!(id.len(), 19, "{id}");
            assert!(id.parse::<i64>().is_ok(), "{id}");
        }
    }

    #[test]
    fn applications_resolve() {
        let s = state();
        assert!(matches!(
            s.application("884321"),
            Some(ApplicationSource::Sample(884_321))
        ));
        assert!(s.application("abc").is_none());
        assert!(s.application("").is_none());
        s.put_application("abc", serde_json::json!({"first_name": "Solo"}));
        assert!(matches!(
            s.application("abc"),
            Some(ApplicationSource::Custom { .. })
        ));
    }
}

//! The one way into HiBob: a client per set of credentials (one connection pool and one
//! rate-limit memory, whoever calls), and one cache of HiBob's field catalogue and named lists
//! that the plugin's dropdowns, the mapping editor's field picker and the export encoder all
//! read. "Refresh HiBob fields" in the console forgets that cache for all of them at once, and on
//! the other instances sharing the database.
//!
//! The catalogue is served stale while a background read replaces it, so a form never waits on
//! HiBob after the first time. When the service user may not read the field catalogue (403, or
//! 404 where the module is missing), the lists and the built-in knowledge of the required fields
//! are used, and that answer is kept like a good one for a while: asking again on every export
//! would spend HiBob's 50-a-minute allowance on that endpoint and cap the exports with it.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use super::{
    locks::{KeyedLocks, LockError, PersonGuard, SharedLocks, SHARED_PATIENCE},
    schema::Schema,
    CallLog, Client, HibobError,
};
use crate::{
    live::{Cache, Notice},
    settings::credentials::{CredentialKey, Credentials},
};

/// Fields and list items change rarely (an admin adds a site or a department), and HiBob
/// counts calls per minute, so ten minutes of staleness is a fair price; the Mappings page can
/// refresh at once.
pub const DEFAULT_TTL: Duration = Duration::from_secs(10 * 60);

/// A form waiting longer than this for HiBob is worse than a callout saying HiBob is slow.
pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(8);

/// After a failed background read, or when only part of the catalogue may be read, the answer
/// in hand is used this much longer before HiBob is asked again.
const RETRY_AFTER: Duration = Duration::from_secs(60);

/// Callers that queued behind a failed read get its error instead of repeating the call.
const FAILURE_REUSE: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy)]
pub struct GatewaySettings {
    /// Whole-request timeout of the client.
    pub timeout: Duration,
    pub ttl: Duration,
    pub fetch_timeout: Duration,
}

impl Default for GatewaySettings {
    fn default() -> Self {
        Self {
            timeout: super::DEFAULT_TIMEOUT,
            ttl: DEFAULT_TTL,
            fetch_timeout: DEFAULT_FETCH_TIMEOUT,
        }
    }
}

/// Why no client can be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    #[error("HiBob is not configured")]
    NotConfigured,
    /// The settings could not be read from the store (logged where it happened).
    #[error("the HiBob settings could not be read")]
    Unreadable,
    /// The settings are there but no client can be built from them (a malformed base URL).
    #[error("the HiBob settings cannot be used: {0}")]
    Unusable(String),
}

/// HiBob's catalogue as last read, with what could not be read of it.
#[derive(Debug, Clone)]
pub struct Catalogue {
    pub schema: Arc<Schema>,
    /// Why only the built-in field knowledge is in use, when it is.
    pub note: Option<String>,
}

#[derive(Clone)]
struct Cached {
    fingerprint: String,
    catalogue: Catalogue,
    stale_at: Instant,
}

struct FailedRead {
    fingerprint: String,
    at: Instant,
    error: HibobError,
}

struct Inner {
    credentials: Credentials,
    settings: GatewaySettings,
    client: Mutex<Option<(String, Client)>>,
    cached: Mutex<Option<Cached>>,
    /// Held while reading, so concurrent first calls make one read; remembers the last failure
    /// for the callers queued behind it.
    reading: tokio::sync::Mutex<Option<FailedRead>>,
    refreshing: AtomicBool,
    /// Bumped by `refresh`, so a read that started before it does not store an old answer.
    generation: std::sync::atomic::AtomicU64,
    /// One lock per person (lower-cased e-mail) whose employee is being created or completed.
    employees: KeyedLocks,
    /// The same locks in the database, when processes share one (see [`Gateway::share_locks`]).
    shared_employees: std::sync::OnceLock<Arc<dyn SharedLocks>>,
}

/// Cheap to clone; every clone shares the client and the catalogue.
#[derive(Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn fingerprint_of(client: &Client) -> String {
    hex(&Sha256::digest(client.identity().as_bytes()))
}

/// Clears the "refresh running" flag even if the refresh task panics.
struct RefreshFlag(Arc<Inner>);

impl Drop for RefreshFlag {
    fn drop(&mut self) {
        self.0.refreshing.store(false, Ordering::Release);
    }
}

/// Reads the catalogue. The lists are needed (every employee needs a site); the fields only
/// sharpen the types, so a service user that may not read them gets the built-in knowledge.
async fn read(client: &Client) -> Result<Catalogue, HibobError> {
    let mut log = CallLog::new();
    read_into(client, &mut log).await
}

async fn read_into(client: &Client, log: &mut CallLog) -> Result<Catalogue, HibobError> {
    let fields = client.people_fields(log).await;
    let (fields, note) = match fields {
        Ok(fields) => (Some(fields), None),
        Err(e) if is_forbidden(&e) => (None, Some(e.to_string())),
        Err(e) => return Err(e),
    };
    let lists = client.named_lists(log).await?;
    let schema = match fields {
        Some(fields) => Schema::from_parts(fields, lists),
        None => Schema::builtin_with_lists(lists),
    };
    Ok(Catalogue {
        schema: Arc::new(schema),
        note,
    })
}

/// A refusal that asking again will not change.
fn is_forbidden(e: &HibobError) -> bool {
    matches!(e, HibobError::Unauthorized { status: 403, .. }) || e.is_not_found()
}

impl Gateway {
    pub fn new(credentials: Credentials, settings: GatewaySettings) -> Self {
        Self {
            inner: Arc::new(Inner {
                credentials,
                settings,
                client: Mutex::new(None),
                cached: Mutex::new(None),
                reading: tokio::sync::Mutex::new(None),
                refreshing: AtomicBool::new(false),
                generation: std::sync::atomic::AtomicU64::new(0),
                employees: KeyedLocks::default(),
                shared_employees: std::sync::OnceLock::new(),
            }),
        }
    }

    /// Holds off every other export and plugin submit for the same person (by e-mail, case
    /// ignored) in this process until the guard is dropped. HiBob lets one e-mail have one
    /// employee, and whether a CV is already attached is only known by listing the documents,
    /// so two attempts for one person must not interleave. When processes share the database
    /// the lock is taken there too, waiting at most [`SHARED_PATIENCE`].
    pub async fn employee_lock(&self, email: &str) -> Result<PersonGuard<'_>, LockError> {
        let key = email.trim().to_lowercase();
        let local = self.inner.employees.lock(&key).await;
        let shared = match self.inner.shared_employees.get() {
            Some(locks) => Some(locks.lock(&key, SHARED_PATIENCE).await?),
            None => None,
        };
        Ok(PersonGuard::new(local, shared))
    }

    /// Makes [`Gateway::employee_lock`] take each person's lock in the database as well, for
    /// every clone of this gateway. Set once, at start-up; a second call is ignored.
    pub fn share_locks(&self, locks: Arc<dyn SharedLocks>) {
        let _ = self.inner.shared_employees.set(locks);
    }

    /// How many per-person locks are alive; lets tests prove the map does not leak.
    pub fn live_employee_locks(&self) -> usize {
        self.inner.employees.live()
    }

    pub fn credentials(&self) -> &Credentials {
        &self.inner.credentials
    }

    /// The client for the credentials in force, built again only when they change.
    pub async fn client(&self) -> Result<Client, AccessError> {
        let creds = &self.inner.credentials;
        let read = async {
            Ok::<_, crate::settings::credentials::CredentialError>((
                creds.get(CredentialKey::HibobApiBaseUrl).await?,
                creds.get(CredentialKey::HibobServiceUserId).await?,
                creds.get(CredentialKey::HibobServiceUserToken).await?,
            ))
        };
        let (base, id, token) = match read.await {
            Ok((Some(base), Some(id), Some(token))) => (base, id, token),
            Ok(_) => return Err(AccessError::NotConfigured),
            Err(e) => {
                tracing::error!(error = %e, "cannot read the HiBob settings");
                return Err(AccessError::Unreadable);
            }
        };
        let mut hasher = Sha256::new();
        for part in [&base, &id, &token] {
            hasher.update(part.expose_secret().as_bytes());
            hasher.update([0u8]);
        }
        let fingerprint = hex(&hasher.finalize());
        let mut cached = self.inner.client.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, client)) = cached.as_ref().filter(|(fp, _)| *fp == fingerprint) {
            return Ok(client.clone());
        }
        let client = Client::new(
            base.expose_secret(),
            id.expose_secret(),
            SecretString::from(token.expose_secret().to_owned()),
        )
        .and_then(|c| c.with_guard(creds.guard_for(CredentialKey::HibobApiBaseUrl)))
        .and_then(|c| c.with_timeout(self.inner.settings.timeout))
        .map(|c| c.paced_by(creds.pacing()))
        .map_err(|e| AccessError::Unusable(e.to_string()))?;
        *cached = Some((fingerprint, client.clone()));
        Ok(client)
    }

    fn peek(&self, fingerprint: &str) -> Option<Cached> {
        let slot = self.inner.cached.lock().unwrap_or_else(|p| p.into_inner());
        slot.as_ref()
            .filter(|c| c.fingerprint == fingerprint)
            .cloned()
    }

    fn store(inner: &Inner, generation: u64, fingerprint: &str, catalogue: Catalogue) {
        if inner.generation.load(Ordering::Acquire) != generation {
            return;
        }
        // a partial answer is asked about again sooner than a whole one
        let ttl = match catalogue.note {
            Some(_) => RETRY_AFTER.min(inner.settings.ttl),
            None => inner.settings.ttl,
        };
        *inner.cached.lock().unwrap_or_else(|p| p.into_inner()) = Some(Cached {
            fingerprint: fingerprint.to_owned(),
            catalogue,
            stale_at: Instant::now() + ttl,
        });
    }

    /// HiBob's catalogue for `client`'s credentials: cached, stale while a background read
    /// replaces it, or read now when there is nothing to serve (those calls go into `log`).
    pub async fn catalogue(
        &self,
        client: &Client,
        log: &mut CallLog,
    ) -> Result<Catalogue, HibobError> {
        let fingerprint = fingerprint_of(client);
        if let Some(cached) = self.peek(&fingerprint) {
            if Instant::now() >= cached.stale_at {
                self.refresh_in_background(client.clone(), fingerprint);
            }
            return Ok(cached.catalogue);
        }
        let mut last_failure = self.inner.reading.lock().await;
        if let Some(cached) = self.peek(&fingerprint) {
            return Ok(cached.catalogue);
        }
        if let Some(failed) = last_failure
            .as_ref()
            .filter(|f| f.fingerprint == fingerprint && f.at.elapsed() < FAILURE_REUSE)
        {
            return Err(failed.error.clone());
        }
        let generation = self.inner.generation.load(Ordering::Acquire);
        let fetched =
            tokio::time::timeout(self.inner.settings.fetch_timeout, read_into(client, log))
                .await
                .unwrap_or(Err(HibobError::Timeout));
        match fetched {
            Ok(catalogue) => {
                Self::store(&self.inner, generation, &fingerprint, catalogue.clone());
                *last_failure = None;
                Ok(catalogue)
            }
            Err(error) => {
                tracing::warn!(error = %error, "HiBob's fields and lists could not be read");
                *last_failure = Some(FailedRead {
                    fingerprint,
                    at: Instant::now(),
                    error: error.clone(),
                });
                Err(error)
            }
        }
    }

    /// The catalogue, or the built-in knowledge with the reason when HiBob cannot be asked.
    pub async fn catalogue_or_builtin(&self, client: Option<&Client>) -> Catalogue {
        let builtin = |note: String| Catalogue {
            schema: Arc::new(Schema::builtin()),
            note: Some(note),
        };
        let Some(client) = client else {
            return builtin("HiBob is not configured".to_owned());
        };
        match self.catalogue(client, &mut CallLog::new()).await {
            Ok(catalogue) => catalogue,
            Err(e) => builtin(e.to_string()),
        }
    }

    fn refresh_in_background(&self, client: Client, fingerprint: String) {
        if self.inner.refreshing.swap(true, Ordering::AcqRel) {
            return;
        }
        let flag = RefreshFlag(Arc::clone(&self.inner));
        let generation = self.inner.generation.load(Ordering::Acquire);
        tokio::spawn(async move {
            let inner = &flag.0;
            let fetched = tokio::time::timeout(inner.settings.fetch_timeout, read(&client))
                .await
                .unwrap_or(Err(HibobError::Timeout));
            match fetched {
                Ok(catalogue) => Self::store(inner, generation, &fingerprint, catalogue),
                Err(error) => {
                    tracing::warn!(error = %error, "refreshing HiBob's fields and lists failed; the cached ones stay in use");
                    let mut slot = inner.cached.lock().unwrap_or_else(|p| p.into_inner());
                    if let Some(c) = slot.as_mut().filter(|c| c.fingerprint == fingerprint) {
                        c.stale_at = Instant::now() + RETRY_AFTER.min(inner.settings.ttl);
                    }
                }
            }
            drop(flag);
        });
    }

    /// Whatever catalogue was last read, fresh or not, without calling HiBob.
    pub fn cached(&self) -> Option<Catalogue> {
        self.inner
            .cached
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|c| c.catalogue.clone())
    }

    /// Forgets the catalogue, so the next use reads HiBob again, here and on the other instances
    /// sharing the database.
    pub fn refresh(&self) {
        self.forget_catalogue();
        self.inner
            .credentials
            .others()
            .send(Notice::Forget(Cache::Catalogue));
    }

    /// Forgets the catalogue in this process only: another instance refreshed it, or notices
    /// from the others may have been missed.
    pub fn forget_catalogue(&self) {
        self.inner.generation.fetch_add(1, Ordering::AcqRel);
        *self.inner.cached.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use wiremock::{
        matchers::{method, path},
        Mock, MockServer, ResponseTemplate,
    };

    fn lists_body() -> serde_json::Value {
        json!([{"name": "site", "items": [{"id": 1, "value": "London", "name": "London", "archived": false, "children": []}]}])
    }

    async fn gateway(ttl: Duration) -> Gateway {
        let dir = tempfile::tempdir().unwrap();
        let pool = crate::db::open(&format!("sqlite://{}/g.db", dir.path().display()))
            .await
            .unwrap();
        // the pool keeps the file open; the directory may go
        std::mem::forget(dir);
        let sealer = crate::settings::secret_box::SecretBox::from_key_bytes(&[5; 32]);
        Gateway::new(
            Credentials::new(
                crate::sqlite::SqliteStore::db(pool),
                sealer,
                Default::default(),
            ),
            GatewaySettings {
                ttl,
                ..GatewaySettings::default()
            },
        )
    }

    async fn answer(server: &MockServer, to: &str, with: ResponseTemplate) {
        Mock::given(method("GET"))
            .and(path(to))
            .respond_with(with)
            .mount(server)
            .await;
    }

    fn client(server: &MockServer, user: &str) -> Client {
        Client::new(&server.uri(), user, SecretString::from("t".to_owned())).unwrap()
    }

    async fn calls(server: &MockServer, to: &str) -> usize {
        server
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .filter(|r| r.url.path() == to)
            .count()
    }

    async fn settled(gateway: &Gateway) {
        for _ in 0..100 {
            if !gateway.inner.refreshing.load(Ordering::Acquire) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn the_catalogue_is_read_once_and_refreshed_in_the_background() {
        let server = MockServer::start().await;
        answer(
            &server,
            "/company/named-lists",
            ResponseTemplate::new(200).set_body_json(lists_body()),
        )
        .await;
        answer(
            &server,
            "/company/people/fields",
            ResponseTemplate::new(200).set_body_json(json!([])),
        )
        .await;
        let gateway = gateway(Duration::from_millis(150)).await;
        let hibob = client(&server, "S");
        let (mut a, mut b, mut c) = (CallLog::new(), CallLog::new(), CallLog::new());
        let (x, y, z) = tokio::join!(
            gateway.catalogue(&hibob, &mut a),
            gateway.catalogue(&hibob, &mut b),
            gateway.catalogue(&hibob, &mut c)
        );
        assert!(x.is_ok() && y.is_ok() && z.is_ok());
        let lists = "/company/named-lists";
        assert_eq!(
            calls(&server, lists).await,
            1,
            "concurrent first calls share one read"
        );
        gateway.catalogue(&hibob, &mut a).await.unwrap();
        assert_eq!(
            calls(&server, lists).await,
            1,
            "a fresh catalogue is not read again"
        );

        tokio::time::sleep(Duration::from_millis(200)).await;
        let stale = gateway.catalogue(&hibob, &mut a).await.unwrap();
        assert!(
            stale.schema.lists.contains_key("site"),
            "the stale catalogue is served at once"
        );
        settled(&gateway).await;
        assert_eq!(calls(&server, lists).await, 2, "one background refresh");
        gateway.catalogue(&hibob, &mut a).await.unwrap();
        assert_eq!(calls(&server, lists).await, 2);

        gateway
            .catalogue(&client(&server, "OTHER"), &mut a)
            .await
            .unwrap();
        assert_eq!(
            calls(&server, lists).await,
            3,
            "new credentials read their own"
        );

        gateway.refresh();
        gateway.catalogue(&hibob, &mut a).await.unwrap();
        assert_eq!(
            calls(&server, lists).await,
            4,
            "refresh forgets it for everyone"
        );
    }

    #[tokio::test]
    async fn a_failed_refresh_keeps_the_stale_catalogue_and_a_failed_first_read_is_an_error() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/company/named-lists"))
            .respond_with(ResponseTemplate::new(200).set_body_json(lists_body()))
            .up_to_n_times(1)
            .mount(&server)
            .await;
        answer(&server, "/company/named-lists", ResponseTemplate::new(500)).await;
        answer(
            &server,
            "/company/people/fields",
            ResponseTemplate::new(200).set_body_json(json!([])),
        )
        .await;
        let gateway = gateway(Duration::from_millis(20)).await;
        let hibob = client(&server, "S");
        let mut log = CallLog::new();
        gateway.catalogue(&hibob, &mut log).await.unwrap();
        tokio::time::sleep(Duration::from_millis(40)).await;
        gateway.catalogue(&hibob, &mut log).await.unwrap();
        settled(&gateway).await;
        let kept = gateway.catalogue(&hibob, &mut log).await.unwrap();
        assert!(kept.schema.lists.contains_key("site"));

        let err = gateway
            .catalogue(&client(&server, "NEW"), &mut log)
            .await
            .unwrap_err();
        assert!(
            matches!(err, HibobError::Server { status: 500, .. }),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_field_list_the_service_user_may_not_read_is_not_asked_for_again_at_once() {
        let server = MockServer::start().await;
        answer(&server, "/company/named-lists", ResponseTemplate::new(200).set_body_json(json!([
                {"name": "site", "items": [{"id": 1, "name": "London", "archived": false, "children": []}]},
                {"name": "department", "items": [{"id": 7, "name": "Engineering", "archived": false, "children": []}]}
            ]))).await;
        answer(
            &server,
            "/company/people/fields",
            ResponseTemplate::new(403).set_body_json(json!({"key": "forbidden", "error": "No"})),
        )
        .await;
        let gateway = gateway(DEFAULT_TTL).await;
        let hibob = client(&server, "S");
        for _ in 0..5 {
            let found = gateway
                .catalogue(&hibob, &mut CallLog::new())
                .await
                .unwrap();
            assert!(
                found.note.as_deref().is_some_and(|n| n.contains("403")),
                "{:?}",
                found.note
            );
            let department = found.schema.field("work.department").unwrap();
            assert_eq!(department.list_name.as_deref(), Some("department"));
        }
        assert_eq!(calls(&server, "/company/people/fields").await, 1);
    }

    #[tokio::test]
    async fn a_refresh_tells_the_other_instances_and_their_forgetting_reads_hibob_again() {
        let server = MockServer::start().await;
        let lists = "/company/named-lists";
        answer(
            &server,
            "/company/people/fields",
            ResponseTemplate::new(200).set_body_json(json!([])),
        )
        .await;
        answer(
            &server,
            lists,
            ResponseTemplate::new(200).set_body_json(lists_body()),
        )
        .await;
        let outlet = crate::live::Outlet::default();
        let mut told = outlet.attach().unwrap();
        let here = gateway(Duration::from_secs(600)).await;
        let here = Gateway::new(
            here.credentials().clone().telling(outlet),
            GatewaySettings::default(),
        );
        let there = gateway(Duration::from_secs(600)).await;
        let hibob = client(&server, "SERVICE-1");
        let mut log = CallLog::new();
        there.catalogue(&hibob, &mut log).await.unwrap();
        there.forget_catalogue();
        there.catalogue(&hibob, &mut log).await.unwrap();
        assert_eq!(calls(&server, lists).await, 2, "forgotten, so read again");
        here.refresh();
        assert_eq!(
            told.next(10).await.unwrap(),
            vec![Notice::Forget(Cache::Catalogue)]
        );
    }
}

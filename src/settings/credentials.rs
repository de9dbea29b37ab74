//! The credentials the console needs to reach Pinpoint and HiBob and to authenticate Pinpoint's
//! calls. Each comes from the environment (then read-only) or is saved in the console, sealed with
//! the secret box. Secret values never leave this module except as `SecretString`.

use std::{
    collections::HashMap,
    fmt,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
};

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

pub use crate::settings::mail_url::{
    is_loopback_host, smtp_security, smtp_url_problem, SmtpSecurity,
};
use crate::Db;
use crate::{
    access::users::Actor,
    live::{Cache, Notice, Outlet},
    settings::secret_box::{SecretBox, SecretBoxError},
};

pub use super::keys::{CredentialKey, DEFAULT_HIBOB_API_BASE_URL};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// Pointed at the sandbox's simulated services.
    Sandbox,
    Environment,
    Console,
    Default,
    Unset,
}

/// What the console may show of one credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialView {
    pub key: CredentialKey,
    pub label: String,
    pub help: String,
    pub env_var: String,
    pub secret: bool,
    pub source: Source,
    /// The value for non-secrets; a mask such as `••••••••7f3a` for secrets.
    pub display: Option<String>,
    pub updated_at: Option<String>,
    pub updated_by: Option<String>,
    /// Why the value in force is not used (see [`Credentials::destination_problem`]).
    #[serde(default)]
    pub problem: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("{0} is set by the environment variable {1} and cannot be changed here")]
    SetByEnvironment(CredentialKey, &'static str),
    #[error("{0}: {1}")]
    Invalid(CredentialKey, String),
    #[error(transparent)]
    Sealed(#[from] SecretBoxError),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// One requested change. `None` clears a console-set value; an empty string means "keep".
#[derive(Debug, Clone)]
pub struct CredentialChange {
    pub key: CredentialKey,
    pub value: Option<SecretString>,
}

/// A credential as stored: sealed, with who set it last.
#[derive(Debug, Clone)]
pub struct StoredCredential {
    pub key: String,
    pub ciphertext: String,
    pub updated_at: String,
    pub updated_by: Option<String>,
}

/// One stored credential to set (`ciphertext`) or clear (`None`), and the words the audit entry
/// uses when that changed something.
#[derive(Debug, Clone)]
pub struct SealedWrite {
    pub key: &'static str,
    pub ciphertext: Option<String>,
    pub done: String,
}

/// What credentials need from the database, whichever engine holds it.
#[async_trait::async_trait]
pub trait CredentialStore: Send + Sync {
    /// The sealed value stored under `key`.
    async fn sealed(&self, key: &str) -> Result<Option<String>, sqlx::Error>;
    async fn stored(&self) -> Result<Vec<StoredCredential>, sqlx::Error>;
    /// Writes the changes in one transaction, audited as one entry listing what changed;
    /// answers what changed (a clear of something not stored changes nothing).
    async fn write(
        &self,
        actor: &Actor,
        writes: &[SealedWrite],
    ) -> Result<Vec<String>, sqlx::Error>;
}

#[derive(Clone)]
pub struct Credentials {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    sealer: SecretBox,
    from_env: HashMap<CredentialKey, SecretString>,
    sandbox: HashMap<CredentialKey, SecretString>,
    /// Whether base URLs saved in the console may point at private or local addresses.
    allow_private_destinations: bool,
    /// Decrypted console values, so the webhook and plugin hot paths do not read and decrypt a
    /// row per request. Filled on first use, emptied by `save` here and by a save on another
    /// instance of the same database (through `others`).
    stored_cache: std::sync::Mutex<HashMap<CredentialKey, Option<SecretString>>>,
    /// Bumped whenever the cache is emptied, so a read that began before does not put back the
    /// value it read.
    generation: AtomicU64,
    /// Where a save is told to the other instances.
    others: Outlet,
    /// The rate-limit pacing of every client built from these credentials, so all exports,
    /// plugin calls and console reads with one set of credentials share one memory of HiBob's
    /// and Pinpoint's windows: in the database where consoles share it (see `pacing`).
    pacing: Arc<crate::pacing::Pacing>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("from_env", &self.inner.from_env.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

pub fn mask(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    if chars.len() >= 16 {
        let tail: String = chars[chars.len() - 4..].iter().collect();
        format!("••••••••{tail}")
    } else {
        "••••••••".to_owned()
    }
}

/// `http_allowed`: in the sandbox (its simulators speak http), and for the operator's own URLs
/// to this machine.
fn validate(
    key: CredentialKey,
    value: &str,
    http_allowed: bool,
) -> Result<String, CredentialError> {
    let value = value.trim();
    if value.len() > 4096 {
        return Err(CredentialError::Invalid(
            key,
            "the value is too long".into(),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(CredentialError::Invalid(
            key,
            "the value contains control characters".into(),
        ));
    }
    if key == CredentialKey::DefaultStartDays {
        return match value.parse::<u16>() {
            Ok(days) if days <= 365 => Ok(days.to_string()),
            _ => Err(CredentialError::Invalid(
                key,
                "enter a whole number of days from 0 to 365".into(),
            )),
        };
    }
    match key {
        CredentialKey::WatchDaysAfterStart => {
            return match value.parse::<u16>() {
                Ok(days) if days <= 365 => Ok(days.to_string()),
                _ => Err(CredentialError::Invalid(
                    key,
                    "enter a whole number of days from 0 to 365".into(),
                )),
            }
        }
        CredentialKey::WatchAutoFields => {
            let fields: Vec<&str> = value
                .split([',', ';', '\n', ' '])
                .map(str::trim)
                .filter(|f| !f.is_empty())
                .collect();
            return match fields.iter().find(|f| {
                !f.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_')
            }) {
                Some(bad) => Err(CredentialError::Invalid(
                    key,
                    format!("\"{bad}\" is not a HiBob field id (such as work.startDate)"),
                )),
                None => Ok(fields.join(", ")),
            };
        }
        CredentialKey::AlertDigestMinutes => {
            return match value.parse::<u16>() {
                Ok(minutes) if (1..=1440).contains(&minutes) => Ok(minutes.to_string()),
                _ => Err(CredentialError::Invalid(
                    key,
                    "enter a whole number of minutes from 1 to 1440".into(),
                )),
            }
        }
        CredentialKey::HibobWelcomeWizardId => {
            return match value.parse::<u64>() {
                Ok(id) => Ok(id.to_string()),
                Err(_) => Err(CredentialError::Invalid(
                    key,
                    "enter the wizard's number, as Bob lists it".into(),
                )),
            }
        }
        CredentialKey::SmtpUrl => {
            return match smtp_url_problem(value) {
                Some(why) => Err(CredentialError::Invalid(key, why)),
                None => Ok(value.to_owned()),
            };
        }
        CredentialKey::AlertEmailFrom | CredentialKey::AlertEmailTo => {
            let addresses: Vec<&str> = value.split([',', ';']).map(str::trim).collect();
            if addresses.iter().any(|a| !a.contains('@')) {
                return Err(CredentialError::Invalid(
                    key,
                    "enter e-mail addresses, comma-separated".into(),
                ));
            }
            return Ok(value.to_owned());
        }
        _ => {}
    }
    if key.is_url() {
        let url = url::Url::parse(value).map_err(|e| {
            CredentialError::Invalid(key, format!("not a URL ({e}); include https://"))
        })?;
        if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
            return Err(CredentialError::Invalid(
                key,
                "use an https:// URL with a host".into(),
            ));
        }
        // the token travels with every request, so it must not cross the network in clear
        if url.scheme() != "https" && !http_allowed {
            return Err(CredentialError::Invalid(
                key,
                "use an https:// URL: credentials are sent to it".into(),
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(CredentialError::Invalid(
                key,
                "do not put credentials in the URL".into(),
            ));
        }
        return Ok(value.trim_end_matches('/').to_owned());
    }
    Ok(value.to_owned())
}

/// Why a value given by environment or flags cannot be used, checked at start-up with the rules
/// of the console, except that the operator may use http to this machine (see the README's
/// configuration table).
pub fn env_value_problem(key: CredentialKey, value: &str) -> Option<String> {
    if value.trim().is_empty() {
        return None;
    }
    let local = url::Url::parse(value.trim()).is_ok_and(|u| is_loopback_host(&u));
    match validate(key, value, local) {
        Ok(_) => None,
        Err(CredentialError::Invalid(_, why)) => Some(why),
        Err(other) => Some(other.to_string()),
    }
}

impl Credentials {
    /// `from_env` holds the values given by environment variables or flags; they win over stored
    /// ones and cannot be edited in the console.
    pub fn new(db: Db, sealer: SecretBox, from_env: HashMap<CredentialKey, SecretString>) -> Self {
        let from_env = from_env
            .into_iter()
            .filter(|(_, v)| !v.expose_secret().trim().is_empty())
            .collect();
        let pacing = Arc::new(crate::pacing::Pacing::over(&db));
        Self {
            inner: Arc::new(Inner {
                db,
                sealer,
                from_env,
                sandbox: HashMap::new(),
                allow_private_destinations: false,
                stored_cache: Default::default(),
                generation: AtomicU64::new(0),
                others: Outlet::default(),
                pacing,
            }),
        }
    }

    /// Lets base URLs saved in the console point at private and local addresses (the operator's
    /// `ALLOW_PRIVATE_DESTINATIONS`).
    pub fn allow_private_destinations(self, allow: bool) -> Self {
        self.rebuilt(|inner| inner.allow_private_destinations = allow)
    }

    fn rebuilt(self, change: impl FnOnce(&mut Inner)) -> Self {
        let mut inner = Inner {
            db: self.inner.db.clone(),
            sealer: self.inner.sealer.clone(),
            from_env: self.inner.from_env.clone(),
            sandbox: self.inner.sandbox.clone(),
            allow_private_destinations: self.inner.allow_private_destinations,
            stored_cache: Default::default(),
            generation: AtomicU64::new(0),
            others: self.inner.others.clone(),
            pacing: Arc::clone(&self.inner.pacing),
        };
        change(&mut inner);
        Self {
            inner: Arc::new(inner),
        }
    }

    /// Tells the instances behind `others` when a save here makes their cache stale.
    pub fn telling(self, others: Outlet) -> Self {
        self.rebuilt(|inner| inner.others = others)
    }

    /// Where this console tells the other instances sharing its database what changed (nowhere
    /// when it is alone).
    pub fn others(&self) -> &Outlet {
        &self.inner.others
    }

    /// Forgets the values read from the store, so the next use reads them again: another
    /// instance saved some, or notices from the others may have been missed.
    pub fn forget_stored(&self) {
        self.inner.generation.fetch_add(1, Ordering::AcqRel);
        if let Ok(mut cache) = self.inner.stored_cache.lock() {
            cache.clear();
        }
    }

    /// Sandbox mode: these values (the simulators' URLs and credentials) win over everything and
    /// are read-only, so nothing can reach a real service by accident.
    pub fn with_sandbox(self, values: HashMap<CredentialKey, SecretString>) -> Self {
        self.rebuilt(|inner| inner.sandbox = values)
    }

    /// The pacing clients built from these credentials share (see [`crate::pacing`]).
    pub fn pacing(&self) -> &crate::pacing::Pacing {
        &self.inner.pacing
    }

    pub fn is_sandbox(&self) -> bool {
        !self.inner.sandbox.is_empty()
    }

    /// Set outside the console (environment or sandbox), hence read-only here.
    pub fn is_from_env(&self, key: CredentialKey) -> bool {
        self.inner.from_env.contains_key(&key) || self.inner.sandbox.contains_key(&key)
    }

    async fn stored(&self, key: CredentialKey) -> Result<Option<SecretString>, CredentialError> {
        if let Some(cached) = self
            .inner
            .stored_cache
            .lock()
            .ok()
            .and_then(|c| c.get(&key).cloned())
        {
            return Ok(cached);
        }
        let generation = self.inner.generation.load(Ordering::Acquire);
        let name = key.as_str();
        let row = self.inner.db.credentials().sealed(name).await?;
        let value = match row {
            Some(sealed) => Some(SecretString::from(self.inner.sealer.open(name, &sealed)?)),
            None => None,
        };
        if let Ok(mut cache) = self.inner.stored_cache.lock() {
            // checked under the lock `forget_stored` clears under
            if self.inner.generation.load(Ordering::Acquire) == generation {
                cache.insert(key, value.clone());
            }
        }
        Ok(value)
    }

    /// The value in force: environment, then console, then the built-in default.
    pub async fn get(&self, key: CredentialKey) -> Result<Option<SecretString>, CredentialError> {
        if let Some(v) = self.inner.sandbox.get(&key) {
            return Ok(Some(v.clone()));
        }
        if let Some(v) = self.inner.from_env.get(&key) {
            return Ok(Some(v.clone()));
        }
        if let Some(v) = self.stored(key).await? {
            return Ok(Some(v));
        }
        Ok(key
            .default_value()
            .map(|d| SecretString::from(d.to_owned())))
    }

    pub async fn view(&self) -> Result<Vec<CredentialView>, CredentialError> {
        let rows = self.inner.db.credentials().stored().await?;
        let mut out = Vec::new();
        for key in CredentialKey::ALL {
            let row = rows.iter().find(|r| r.key == key.as_str());
            let (source, value) = if let Some(v) = self.inner.sandbox.get(&key) {
                (Source::Sandbox, Some(v.expose_secret().to_owned()))
            } else if let Some(v) = self.inner.from_env.get(&key) {
                (Source::Environment, Some(v.expose_secret().to_owned()))
            } else if let Some(r) = row {
                (
                    Source::Console,
                    Some(self.inner.sealer.open(key.as_str(), &r.ciphertext)?),
                )
            } else if let Some(d) = key.default_value() {
                (Source::Default, Some(d.to_owned()))
            } else {
                (Source::Unset, None)
            };
            let problem = match (&value, source) {
                (Some(v), Source::Environment | Source::Console) => {
                    self.problem_with(key, v, source)
                }
                _ => None,
            };
            let display = value.map(|v| if key.is_secret() { mask(&v) } else { v });
            let stored_meta = row.filter(|_| source == Source::Console);
            out.push(CredentialView {
                key,
                label: key.label().to_owned(),
                help: key.help().to_owned(),
                env_var: key.env_var().to_owned(),
                secret: key.is_secret(),
                source,
                display,
                updated_at: stored_meta.map(|r| r.updated_at.clone()),
                updated_by: stored_meta.and_then(|r| r.updated_by.clone()),
                problem,
            });
        }
        Ok(out)
    }

    /// Applies the changes in one transaction and records which credentials changed (never their
    /// values). Returns the labels of the credentials that changed.
    ///
    /// A base URL that changes where requests go takes the credentials sent there with it: the
    /// stored ones are cleared unless the same save enters new ones, so a changed URL never
    /// receives the old service's secrets. A new URL must be https and, unless the operator
    /// allowed it, reach only public addresses.
    pub async fn save(
        &self,
        actor: &Actor,
        changes: Vec<CredentialChange>,
    ) -> Result<Vec<String>, CredentialError> {
        let mut wanted: Vec<(CredentialKey, Option<String>)> = Vec::new();
        for change in changes {
            let keep = change
                .value
                .as_ref()
                .is_some_and(|v| v.expose_secret().trim().is_empty());
            if keep {
                continue;
            }
            if self.is_from_env(change.key) {
                return Err(CredentialError::SetByEnvironment(
                    change.key,
                    change.key.env_var(),
                ));
            }
            let clean = match change.value {
                Some(v) => Some(validate(change.key, v.expose_secret(), self.is_sandbox())?),
                None => None,
            };
            wanted.retain(|(k, _)| *k != change.key);
            wanted.push((change.key, clean));
        }
        let mut also_cleared = Vec::new();
        for (key, value) in &wanted {
            if let (CredentialKey::SmtpUrl, Some(url)) = (key, value) {
                self.check_destination(*key, url).await?;
            }
        }
        for (key, value) in wanted.clone() {
            if !key.is_url() {
                continue;
            }
            let before = self.get(key).await?;
            let after = match &value {
                Some(v) => Some(v.clone()),
                None => key.default_value().map(str::to_owned),
            };
            if before
                .as_ref()
                .map(|b| b.expose_secret().trim_end_matches('/'))
                == after.as_deref().map(|a| a.trim_end_matches('/'))
            {
                continue;
            }
            if let Some(url) = value.as_deref() {
                self.check_destination(key, url).await?;
            }
            for dependent in key.sent_to() {
                let re_entered = wanted.iter().any(|(k, v)| k == dependent && v.is_some());
                if re_entered {
                    continue;
                }
                if self.inner.from_env.contains_key(dependent) {
                    return Err(CredentialError::Invalid(
                        key,
                        format!(
                            "{} is set by {}, so this URL can only change there too ({})",
                            dependent.label(),
                            dependent.env_var(),
                            key.env_var()
                        ),
                    ));
                }
                if !wanted.iter().any(|(k, _)| k == dependent) {
                    also_cleared.push(*dependent);
                }
            }
        }
        for key in &also_cleared {
            if !wanted.iter().any(|(k, _)| k == key) {
                wanted.push((*key, None));
            }
        }
        let mut sealed_changes = Vec::new();
        for (key, clean) in wanted {
            let sealed = match clean {
                Some(v) => Some(self.inner.sealer.seal(key.as_str(), &v)?),
                None => None,
            };
            sealed_changes.push((key, sealed));
        }
        if sealed_changes.is_empty() {
            return Ok(Vec::new());
        }
        let writes: Vec<SealedWrite> = sealed_changes
            .into_iter()
            .map(|(key, ciphertext)| {
                let done = match (&ciphertext, also_cleared.contains(&key)) {
                    (Some(_), _) => format!("{} set", key.label()),
                    (None, true) => format!("{} cleared (its base URL changed)", key.label()),
                    (None, false) => format!("{} cleared", key.label()),
                };
                SealedWrite {
                    key: key.as_str(),
                    ciphertext,
                    done,
                }
            })
            .collect();
        let changed = self.inner.db.credentials().write(actor, &writes).await?;
        self.forget_stored();
        self.inner.others.send(Notice::Forget(Cache::Credentials));
        Ok(changed)
    }

    async fn check_destination(
        &self,
        key: CredentialKey,
        url: &str,
    ) -> Result<(), CredentialError> {
        if self.inner.allow_private_destinations || self.is_sandbox() {
            return Ok(());
        }
        let parsed =
            url::Url::parse(url).map_err(|e| CredentialError::Invalid(key, e.to_string()))?;
        crate::destination::check_public(&parsed)
            .await
            .map_err(|why| CredentialError::Invalid(key, format!("this URL cannot be used: {why}")))
    }

    /// The operator's `ALLOW_PRIVATE_DESTINATIONS`.
    pub fn allows_private_destinations(&self) -> bool {
        self.inner.allow_private_destinations
    }

    /// Where a client sending to the URL of `key` may connect: public addresses, or private ones
    /// when the operator allowed them; the URL's own host is trusted when the operator gave it
    /// (environment or flags) or the sandbox did. A URL saved in the console, or the built-in
    /// default, is checked on every connection.
    pub fn guard_for(&self, key: CredentialKey) -> crate::destination::Guard {
        let guard = crate::destination::Guard::strict()
            .allowing_private(self.inner.allow_private_destinations);
        let given = self
            .inner
            .sandbox
            .get(&key)
            .or_else(|| self.inner.from_env.get(&key));
        match given {
            Some(url) => guard.trusting_host_of(url.expose_secret()),
            None => guard,
        }
    }

    /// Why the destination in force for `key` may not be used now, if it may not. The sandbox
    /// lets http URLs be saved for its simulators; once it is over, what was saved then is held
    /// to the rules again, and a destination that fails them is not used (alerts say why in
    /// Settings). Only the alert channels are judged; other values are `None`.
    pub async fn destination_problem(
        &self,
        key: CredentialKey,
    ) -> Result<Option<String>, CredentialError> {
        if self.inner.sandbox.contains_key(&key) {
            return Ok(None);
        }
        let source = if self.inner.from_env.contains_key(&key) {
            Source::Environment
        } else {
            Source::Console
        };
        Ok(match self.get(key).await? {
            Some(value) => self.problem_with(key, value.expose_secret(), source),
            None => None,
        })
    }

    fn problem_with(&self, key: CredentialKey, value: &str, source: Source) -> Option<String> {
        // the base URLs cannot be saved while the sandbox gives them; the alert channels can
        let alert_channel = matches!(key, CredentialKey::AlertWebhookUrl | CredentialKey::SmtpUrl);
        if !alert_channel || self.is_sandbox() {
            return None;
        }
        let problem = match source {
            Source::Environment => env_value_problem(key, value),
            _ => match validate(key, value, false) {
                Ok(_) => None,
                Err(CredentialError::Invalid(_, why)) => Some(why),
                Err(other) => Some(other.to_string()),
            },
        };
        problem.map(|why| format!("not used: {why}"))
    }

    /// Whether every credential needed to call HiBob is present.
    pub async fn hibob_configured(&self) -> Result<bool, CredentialError> {
        Ok(self.get(CredentialKey::HibobServiceUserId).await?.is_some()
            && self
                .get(CredentialKey::HibobServiceUserToken)
                .await?
                .is_some())
    }

    /// Whether every credential needed to call Pinpoint's REST API is present.
    pub async fn pinpoint_configured(&self) -> Result<bool, CredentialError> {
        Ok(self.get(CredentialKey::PinpointApiBaseUrl).await?.is_some()
            && self.get(CredentialKey::PinpointApiKey).await?.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{access::audit, db};
    use sqlx::SqlitePool;

    async fn setup(env: &[(CredentialKey, &str)]) -> (tempfile::TempDir, SqlitePool, Credentials) {
        let dir = tempfile::tempdir().unwrap();
        let pool = db::open(&format!("sqlite://{}/c.db", dir.path().display()))
            .await
            .unwrap();
        let env = env
            .iter()
            .map(|(k, v)| (*k, SecretString::from(v.to_string())))
            .collect();
        let creds = Credentials::new(
            crate::sqlite::SqliteStore::db(pool.clone()),
            SecretBox::from_key_bytes(&[3; 32]),
            env,
        );
        (dir, pool, creds)
    }

    fn set(key: CredentialKey, v: &str) -> CredentialChange {
        CredentialChange {
            key,
            value: Some(SecretString::from(v.to_owned())),
        }
    }

    #[tokio::test]
    async fn stored_secrets_are_sealed_masked_and_audited_without_values() {
        let (_d, pool, creds) = setup(&[]).await;
        let sentinel = "SENTINEL-token-5f1e2d3c4b5a6978";
        let actor = Actor::system("tester");
        let changed = creds
            .save(
                &actor,
                vec![set(CredentialKey::HibobServiceUserToken, sentinel)],
            )
            .await
            .unwrap();
        assert_eq!(changed, vec!["HiBob service user token set"]);
        let raw: String = sqlx::query_scalar("SELECT ciphertext FROM credentials")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert!(!raw.contains("SENTINEL"));
        let got = creds
            .get(CredentialKey::HibobServiceUserToken)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.expose_secret(), sentinel);
        let view = creds.view().await.unwrap();
        let token = view
            .iter()
            .find(|v| v.key == CredentialKey::HibobServiceUserToken)
            .unwrap();
        assert_eq!(token.source, Source::Console);
        assert_eq!(token.display.as_deref(), Some("••••••••6978"));
        let audit = audit::list(&pool, &Default::default()).await.unwrap();
        assert!(audit.iter().all(|e| !e.detail.contains("SENTINEL")));
        assert!(audit
            .iter()
            .any(|e| e.action == "settings.credentials_saved"));
    }

    #[tokio::test]
    async fn a_save_tells_the_others_whose_cache_then_reads_the_store_again() {
        let (_d, pool, here) = setup(&[]).await;
        let outlet = Outlet::default();
        let mut told = outlet.attach().unwrap();
        let here = here.telling(outlet);
        // another instance of the same database, with a cache of its own
        let there = Credentials::new(
            crate::sqlite::SqliteStore::db(pool.clone()),
            SecretBox::from_key_bytes(&[3; 32]),
            HashMap::new(),
        );
        let key = CredentialKey::HibobServiceUserToken;
        let actor = Actor::system("tester");
        here.save(&actor, vec![set(key, "token-one")])
            .await
            .unwrap();
        assert_eq!(
            there.get(key).await.unwrap().unwrap().expose_secret(),
            "token-one"
        );
        here.save(&actor, vec![set(key, "token-two")])
            .await
            .unwrap();
        assert_eq!(
            told.next(10).await.unwrap(),
            vec![Notice::Forget(Cache::Credentials); 2]
        );
        assert_eq!(
            there.get(key).await.unwrap().unwrap().expose_secret(),
            "token-one",
            "cached until told"
        );
        there.forget_stored();
        assert_eq!(
            there.get(key).await.unwrap().unwrap().expose_secret(),
            "token-two"
        );
    }

    #[tokio::test]
    async fn empty_keeps_none_clears_and_env_is_read_only() {
        let (_d, _pool, creds) = setup(&[(CredentialKey::PluginToken, "from-env")]).await;
        let actor = Actor::system("tester");
        let err = creds
            .save(&actor, vec![set(CredentialKey::PluginToken, "other")])
            .await
            .unwrap_err();
        assert!(matches!(err, CredentialError::SetByEnvironment(..)));
        // read (and cache) the absence first: a save must not leave the cache stale
        assert!(creds
            .get(CredentialKey::HibobServiceUserId)
            .await
            .unwrap()
            .is_none());
        creds
            .save(
                &actor,
                vec![set(CredentialKey::HibobServiceUserId, "SERVICE-1")],
            )
            .await
            .unwrap();
        let kept = creds
            .save(&actor, vec![set(CredentialKey::HibobServiceUserId, "  ")])
            .await
            .unwrap();
        assert!(kept.is_empty());
        assert!(creds
            .get(CredentialKey::HibobServiceUserId)
            .await
            .unwrap()
            .is_some());
        creds
            .save(
                &actor,
                vec![CredentialChange {
                    key: CredentialKey::HibobServiceUserId,
                    value: None,
                }],
            )
            .await
            .unwrap();
        assert!(creds
            .get(CredentialKey::HibobServiceUserId)
            .await
            .unwrap()
            .is_none());
        let base = creds
            .get(CredentialKey::HibobApiBaseUrl)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(base.expose_secret(), DEFAULT_HIBOB_API_BASE_URL);
    }

    #[tokio::test]
    async fn urls_are_validated() {
        let (_d, _pool, creds) = setup(&[]).await;
        // no DNS in this test: the destination check has its own
        let creds = creds.allow_private_destinations(true);
        let actor = Actor::system("tester");
        for bad in [
            "acme.pinpointhq.com",
            "ftp://x.y",
            "https://user:pw@x.y/api",
            "http://acme.pinpointhq.com/api/v1",
        ] {
            let err = creds
                .save(&actor, vec![set(CredentialKey::PinpointApiBaseUrl, bad)])
                .await
                .unwrap_err();
            assert!(matches!(err, CredentialError::Invalid(..)), "{bad}");
        }
        creds
            .save(
                &actor,
                vec![set(
                    CredentialKey::PinpointApiBaseUrl,
                    "https://acme.pinpointhq.com/api/v1/",
                )],
            )
            .await
            .unwrap();
        let v = creds
            .get(CredentialKey::PinpointApiBaseUrl)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(v.expose_secret(), "https://acme.pinpointhq.com/api/v1");
    }

    #[tokio::test]
    async fn console_urls_must_not_reach_local_or_private_hosts() {
        let (_d, pool, creds) = setup(&[]).await;
        let actor = Actor::system("tester");
        for bad in [
            "https://127.0.0.1:8443/v1",
            "https://localhost/v1",
            "https://[::ffff:10.0.0.1]/v1",
            "https://169.254.169.254/v1",
        ] {
            let err = creds
                .save(&actor, vec![set(CredentialKey::HibobApiBaseUrl, bad)])
                .await
                .unwrap_err();
            assert!(err.to_string().contains("private or local"), "{bad}: {err}");
        }
        let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM credentials")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(stored, 0, "nothing was saved");
        // the operator may allow it
        let allowed = creds.allow_private_destinations(true);
        allowed
            .save(
                &actor,
                vec![set(
                    CredentialKey::HibobApiBaseUrl,
                    "https://127.0.0.1:8443/v1",
                )],
            )
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_new_base_url_takes_the_credentials_sent_to_it_with_it() {
        let (_d, pool, creds) = setup(&[]).await;
        let creds = creds.allow_private_destinations(true);
        let actor = Actor::system("tester");
        let secrets = || {
            vec![
                set(CredentialKey::HibobServiceUserId, "SERVICE-1"),
                set(CredentialKey::HibobServiceUserToken, "token-one"),
                set(CredentialKey::PinpointApiKey, "pinpoint-key"),
            ]
        };
        creds.save(&actor, secrets()).await.unwrap();
        // saving the URL in force again is no change
        let same = creds
            .save(
                &actor,
                vec![set(
                    CredentialKey::HibobApiBaseUrl,
                    DEFAULT_HIBOB_API_BASE_URL,
                )],
            )
            .await
            .unwrap();
        assert_eq!(same, vec!["HiBob API base URL set"]);
        assert!(creds.hibob_configured().await.unwrap());

        let changed = creds
            .save(
                &actor,
                vec![set(CredentialKey::HibobApiBaseUrl, "https://10.1.1.1/v1")],
            )
            .await
            .unwrap();
        assert!(
            changed.contains(&"HiBob service user token cleared (its base URL changed)".to_owned()),
            "{changed:?}"
        );
        assert!(creds
            .get(CredentialKey::HibobServiceUserToken)
            .await
            .unwrap()
            .is_none());
        assert!(creds
            .get(CredentialKey::HibobServiceUserId)
            .await
            .unwrap()
            .is_none());
        // the other service's key stays
        assert!(creds
            .get(CredentialKey::PinpointApiKey)
            .await
            .unwrap()
            .is_some());

        // entered again in the same save, they are kept
        let mut both = vec![set(CredentialKey::HibobApiBaseUrl, "https://10.2.2.2/v1")];
        both.extend(secrets().into_iter().take(2));
        creds.save(&actor, both).await.unwrap();
        let token = creds
            .get(CredentialKey::HibobServiceUserToken)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(token.expose_secret(), "token-one");

        // clearing the URL goes back to the default host: also a change of destination
        creds
            .save(
                &actor,
                vec![CredentialChange {
                    key: CredentialKey::HibobApiBaseUrl,
                    value: None,
                }],
            )
            .await
            .unwrap();
        assert!(!creds.hibob_configured().await.unwrap());
        let audit = audit::list(&pool, &Default::default()).await.unwrap();
        assert!(audit
            .iter()
            .any(|e| e.detail.contains("token cleared (its base URL changed)")));
    }

    #[tokio::test]
    async fn a_url_cannot_move_away_from_a_secret_the_environment_gives() {
        let (_d, _pool, creds) = setup(&[(CredentialKey::PinpointApiKey, "from-env")]).await;
        let creds = creds.allow_private_destinations(true);
        let err = creds
            .save(
                &Actor::system("tester"),
                vec![set(
                    CredentialKey::PinpointApiBaseUrl,
                    "https://evil.example/api/v1",
                )],
            )
            .await
            .unwrap_err();
        assert!(err.to_string().contains("PINPOINT_API_KEY"), "{err}");
    }
}

//! Server-only glue between server functions and the integration core: the shared state and the
//! signed-in person. Core errors become `AppError`s in `crate::error`.

use std::{net::SocketAddr, time::Duration};

use axum::extract::ConnectInfo;
use http::{header, request::Parts, HeaderValue};
use integration::{
    access::throttle::LoginThrottle,
    access::users::{Actor, Role, User},
    client_addr::ClientAddr,
    settings::credentials::Credentials,
};
use leptos::prelude::*;
use leptos_axum::ResponseOptions;
use tower_sessions::Session;

use crate::error::{fail, internal, AppError};

/// Everything a server function may use, provided as context by the server.
#[derive(Clone, Debug)]
pub struct ConsoleState {
    /// The console's database, whichever engine holds it.
    pub db: integration::Db,
    pub credentials: Credentials,
    pub throttle: LoginThrottle,
    /// Sessions end after this long regardless of activity.
    pub absolute_session_limit: Duration,
    /// Wakes the export workers, this process's and, through the relay, the other instances'.
    pub wake_worker: integration::exports::wake::WakeWorkers,
    /// Whether this process runs the jobs that run once per database.
    pub leadership: integration::peers::leader::Leadership,
    /// This process's own webhook URL on loopback, for sandbox test deliveries.
    pub own_webhook_url: String,
    /// Mapping versions, lint and preview; shared with the worker and the plugin.
    pub mappings: integration::mapping::service::MappingService,
    /// Change notices for open pages; publish after a write that changes exports commits.
    pub changes: integration::live::Changes,
    /// The export worker's and the intake's state, for the dashboard and `/readyz`.
    pub health: integration::health::Health,
    /// Alerts about stopped exports (Slack webhook, e-mail); Settings sends a test through it.
    pub alerts: integration::alerts::Alerts,
    /// Backup and retention settings as the Settings page shows them (fixed at start-up).
    pub data_settings: Vec<crate::data_setting::DataSetting>,
    /// Watches exported hires; the export page checks and applies changes through it.
    pub watcher: integration::watch::check::Watcher,
}

pub const SESSION_USER: &str = "uid";
pub const SESSION_AUTH_VERSION: &str = "auth_version";
pub const SESSION_STARTED: &str = "started_at";

pub fn state() -> Result<ConsoleState, AppError> {
    use_context::<ConsoleState>().ok_or_else(|| internal("console state missing from context"))
}

pub async fn session() -> Result<Session, AppError> {
    leptos_axum::extract::<Session>()
        .await
        .map_err(|e| internal(format!("session layer missing: {e}")))
}

/// The client's address as the server's middleware worked it out (through trusted proxies), or
/// the TCP peer when the middleware did not run.
pub async fn client_ip() -> Option<String> {
    if let Some(addr) =
        use_context::<Parts>().and_then(|p| p.extensions.get::<ClientAddr>().copied())
    {
        return Some(addr.to_string());
    }
    leptos_axum::extract::<ConnectInfo<SocketAddr>>()
        .await
        .ok()
        .map(|ConnectInfo(addr)| addr.ip().to_canonical().to_string())
}

/// The signed-in person, or `None`.
pub async fn current_user() -> Result<Option<User>, AppError> {
    session_user(&state()?, &session().await?)
        .await
        .map_err(internal)
}

/// The person a session belongs to. A session whose user was disabled, demoted or given a new
/// password since sign-in (its `auth_version` moved on), or that outlived the absolute limit, is
/// ended here. Usable outside a Leptos context (the server's page guard calls it).
pub async fn session_user(
    st: &ConsoleState,
    session: &Session,
) -> Result<Option<User>, Box<dyn std::error::Error + Send + Sync>> {
    let uid: Option<i64> = session.get(SESSION_USER).await?;
    let Some(uid) = uid else { return Ok(None) };
    let version: Option<i64> = session.get(SESSION_AUTH_VERSION).await?;
    let started: Option<i64> = session.get(SESSION_STARTED).await?;
    let now = chrono::Utc::now().timestamp();
    let limit = i64::try_from(st.absolute_session_limit.as_secs()).unwrap_or(i64::MAX);
    let too_old = started.is_none_or(|s| now.saturating_sub(s) > limit);
    match st.db.users().find(uid).await? {
        Some(u) if !u.disabled && Some(u.auth_version) == version && !too_old => Ok(Some(u)),
        _ => {
            session.flush().await?;
            Ok(None)
        }
    }
}

/// The signed-in person if their role allows `needed`; the right error otherwise.
pub async fn require(needed: Role) -> Result<User, AppError> {
    match current_user().await? {
        None => Err(fail(AppError::Unauthenticated)),
        Some(u) if !u.role.allows(needed) => Err(fail(AppError::Forbidden)),
        Some(u) => Ok(u),
    }
}

pub async fn actor(user: &User) -> Actor {
    Actor::user(user, client_ip().await)
}

/// No caching of pages that show account data.
pub fn no_store() {
    if let Some(res) = use_context::<ResponseOptions>() {
        res.insert_header(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

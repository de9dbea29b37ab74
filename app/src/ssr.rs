//! Server-only glue between server functions and the integration core: the shared state, the
//! signed-in person, and turning core errors into `AppError`s.

use std::{net::SocketAddr, time::Duration};

use axum::extract::ConnectInfo;
use http::{header, request::Parts, HeaderValue, StatusCode};
use integration::{
    client_addr::ClientAddr,
    credentials::Credentials,
    login_throttle::LoginThrottle,
    users::{self, Actor, Role, User},
};
use leptos::prelude::*;
use leptos_axum::ResponseOptions;
use sqlx::SqlitePool;
use tower_sessions::Session;

use crate::error::AppError;

/// Everything a server function may use, provided as context by the server.
#[derive(Clone, Debug)]
pub struct ConsoleState {
    pub pool: SqlitePool,
    pub credentials: Credentials,
    pub throttle: LoginThrottle,
    /// Sessions end after this long regardless of activity.
    pub absolute_session_limit: Duration,
    pub wake_worker: integration::export_queue::WorkerWake,
    /// This process's own webhook URL on loopback, for sandbox test deliveries.
    pub own_webhook_url: String,
    /// Mapping versions, lint and preview; shared with the worker and the plugin.
    pub mappings: integration::mapping_service::MappingService,
    /// Change notices for open pages; publish after a write that changes exports commits.
    pub changes: integration::live::Changes,
    /// The export worker's and the intake's state, for the dashboard and `/readyz`.
    pub health: integration::health::Health,
    /// Alerts about stopped exports (Slack webhook, e-mail); Settings sends a test through it.
    pub alerts: integration::alerts::Alerts,
    /// Backup and retention settings as the Settings page shows them (fixed at start-up).
    pub data_settings: Vec<crate::pages::data_settings::DataSetting>,
}

pub const SESSION_USER: &str = "uid";
pub const SESSION_AUTH_VERSION: &str = "auth_version";
pub const SESSION_STARTED: &str = "started_at";

pub fn state() -> Result<ConsoleState, AppError> {
    use_context::<ConsoleState>().ok_or_else(|| internal("console state missing from context"))
}

pub fn request_id() -> String {
    use_context::<Parts>()
        .and_then(|p| {
            p.headers
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Logs the cause and hands the browser only the request id.
pub fn internal(cause: impl std::fmt::Display) -> AppError {
    let id = request_id();
    tracing::error!(request_id = %id, error = %cause, "server function failed");
    AppError::Internal(id)
}

/// Sets the HTTP status of a failed server-function call made by `fetch`. A plain HTML form post
/// is answered with a redirect back to the page (the error travels in the URL), so its status is
/// left alone.
pub fn fail(err: AppError) -> AppError {
    if let (Some(parts), Some(res)) = (use_context::<Parts>(), use_context::<ResponseOptions>()) {
        let is_form_post = parts
            .headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/html"))
            && parts.uri.path().starts_with("/api/");
        if !is_form_post {
            if let Ok(status) = StatusCode::from_u16(err.status()) {
                res.set_status(status);
            }
        }
    }
    err
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
    match users::find(&st.pool, uid).await? {
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

impl From<users::UserError> for AppError {
    fn from(e: users::UserError) -> Self {
        match e {
            users::UserError::Invalid(m) => fail(AppError::Invalid(m)),
            users::UserError::Duplicate
            | users::UserError::NotFound
            | users::UserError::LastAdmin => fail(AppError::Invalid(e.to_string())),
            other => fail(internal(other)),
        }
    }
}

impl From<integration::credentials::CredentialError> for AppError {
    fn from(e: integration::credentials::CredentialError) -> Self {
        use integration::credentials::CredentialError as E;
        match e {
            E::SetByEnvironment(..) | E::Invalid(..) => fail(AppError::Invalid(e.to_string())),
            other => fail(internal(other)),
        }
    }
}

impl From<integration::filters::FilterError> for AppError {
    fn from(e: integration::filters::FilterError) -> Self {
        fail(AppError::Invalid(e.to_string()))
    }
}

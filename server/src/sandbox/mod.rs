//! Sandbox mode: simulated HiBob and Pinpoint REST APIs over real HTTP.
//!
//! A new user gets a working console without any HiBob or Pinpoint account, and the crash and
//! end-to-end tests get stateful fakes that the real clients talk to unchanged. Both services
//! share one listener, told apart by path:
//!
//! * `/hibob/v1/...` — HiBob (Basic auth with the sandbox service user);
//! * `/pinpoint/api/v1/...` — Pinpoint (`X-API-KEY`);
//! * `/pinpoint/files/{id}/cv.pdf` and `/hibob/files/{id}` — unauthenticated file links, standing
//!   in for the services' signed download URLs.
//!
//! Everything the simulators remember is in [`SimState`], which tests inspect and steer.

mod hibob_answers;
mod hibob_docs;
mod hibob_onboarding;
mod hibob_sim;
mod hibob_updates;
mod multipart;
mod pinpoint_sim;
pub mod samples;
mod state;
#[cfg(test)]
mod tests;

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    time::Duration,
};

use anyhow::Context;
use axum::{extract::DefaultBodyLimit, routing::get, Router};
use tokio::{sync::oneshot, task::JoinHandle};

pub use self::state::{SimComment, SimDocument, SimEmployee, SimState};

/// Room for HiBob's 5 MB document cap plus multipart framing; larger bodies get axum's 413.
const MAX_BODY_BYTES: usize = 6 * 1024 * 1024;

/// How long [`Simulators::shutdown`] lets in-flight requests (a delayed create) finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

pub const HIBOB_PREFIX: &str = "/hibob/v1";
pub const PINPOINT_PREFIX: &str = "/pinpoint/api/v1";

/// The credentials the simulators accept. Random per start, so a sandbox console never shares
/// secrets with another instance, and printed nowhere by this module.
#[derive(Clone, PartialEq, Eq)]
pub struct SandboxCredentials {
    pub hibob_service_user_id: String,
    pub hibob_token: String,
    pub pinpoint_api_key: String,
}

impl SandboxCredentials {
    pub fn generate() -> Self {
        Self {
            hibob_service_user_id: format!("SANDBOX-{}", uuid::Uuid::new_v4().simple()),
            hibob_token: uuid::Uuid::new_v4().simple().to_string(),
            pinpoint_api_key: uuid::Uuid::new_v4().simple().to_string(),
        }
    }
}

impl std::fmt::Debug for SandboxCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxCredentials")
            .field("hibob_service_user_id", &"[redacted]")
            .field("hibob_token", &"[redacted]")
            .field("pinpoint_api_key", &"[redacted]")
            .finish()
    }
}

/// Both simulators, running on a spawned task until [`Simulators::shutdown`] or drop.
pub struct Simulators {
    /// `http://HOST:PORT/hibob/v1`, the value for the HiBob base-URL setting.
    pub hibob_base_url: String,
    /// `http://HOST:PORT/pinpoint/api/v1`, the value for the Pinpoint base-URL setting.
    pub pinpoint_base_url: String,
    /// `http://HOST:PORT`.
    pub origin: String,
    pub local_addr: SocketAddr,
    pub credentials: SandboxCredentials,
    pub state: SimState,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Simulators {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulators")
            .field("hibob_base_url", &self.hibob_base_url)
            .field("pinpoint_base_url", &self.pinpoint_base_url)
            .finish_non_exhaustive()
    }
}

impl Simulators {
    /// The signed-link stand-in for application `id`'s CV, as the sample attachments carry it.
    pub fn cv_url(&self, application_id: &str) -> String {
        samples::cv_url(&self.origin, application_id)
    }

    /// Stops accepting connections, lets in-flight requests finish for a few seconds, then
    /// cuts off whatever is left.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut task) = self.task.take() {
            if tokio::time::timeout(SHUTDOWN_GRACE, &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
    }
}

impl Drop for Simulators {
    /// Dropping signals a graceful stop without waiting for it, so a test that forgets
    /// `shutdown` does not leave the port serving.
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Serves both simulators on one listener bound to `bind` (port 0 picks a free port).
pub async fn start(bind: SocketAddr, creds: SandboxCredentials) -> anyhow::Result<Simulators> {
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("cannot bind the sandbox simulators to {bind}"))?;
    let bound = listener
        .local_addr()
        .context("cannot read the sandbox simulators' address")?;
    // a wildcard bind is reachable on loopback; links must name an address clients can dial
    let host = match bound.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let origin = format!("http://{}", SocketAddr::new(host, bound.port()));
    let state = SimState::new(creds.clone());
    state.set_public_base_url(&origin);
    let app = router(state.clone());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                // a dropped sender counts as the signal too
                let _ = stopped.await;
            })
            .await;
        if let Err(e) = served {
            tracing::warn!(error = %e, "the sandbox simulators stopped with an error");
        }
    });
    tracing::info!(address = %bound, "sandbox HiBob and Pinpoint simulators listening");
    Ok(Simulators {
        hibob_base_url: format!("{origin}{HIBOB_PREFIX}"),
        pinpoint_base_url: format!("{origin}{PINPOINT_PREFIX}"),
        origin,
        local_addr: bound,
        credentials: creds,
        state,
        stop: Some(stop),
        task: Some(task),
    })
}

/// Both simulators as one router, for callers that serve it on their own listener.
pub fn router(state: SimState) -> Router {
    Router::new()
        .nest(HIBOB_PREFIX, hibob_sim::routes(state.clone()))
        .nest(PINPOINT_PREFIX, pinpoint_sim::routes(state.clone()))
        .route("/pinpoint/files/{id}/cv.pdf", get(pinpoint_sim::cv_file))
        .route("/hibob/files/{id}", get(hibob_docs::download))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// Compares secrets without stopping at the first differing byte.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

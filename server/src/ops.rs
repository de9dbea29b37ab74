//! Liveness, readiness and Prometheus metrics.

use std::sync::{Arc, OnceLock};

use app::ssr::ConsoleState;
use axum::{
    extract::State,
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::IntoResponse,
    Json,
};
use integration::health::{Snapshot, WorkerState};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde_json::json;

use crate::middleware::json_error;

/// The process-wide metrics recorder; installed once, however many routers a test process builds.
pub fn metrics_handle() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(&[
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                ])
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            Some(handle)
        })
        .clone()
}

pub async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// Ready when the database answers and takes a write, the migrations are applied, and the export
/// worker (when this process runs one) is running and able to claim.
pub async fn readyz(State(console): State<ConsoleState>) -> axum::response::Response {
    let health = console.health.snapshot();
    publish_health(&health, console.leadership.is_leader());
    let reason = match console.db.probes().schema_readiness().await {
        Err(reason) => Some(reason),
        Ok(()) => write_probe(&console)
            .await
            .err()
            .or(health.exports_stopped()),
    };
    match reason {
        None => Json(json!({
            "status": "ready",
            "worker": health.worker,
            "database": match console.db.engine() {
                integration::Engine::Sqlite => "sqlite",
                integration::Engine::Postgres => "postgres",
            },
            // which process answered, and how many share the database (where several may)
            "instance": integration::instance::id(),
            "instances": health.instances.len().max(1),
            // whether the other consoles' notices are heard (absent where none can share)
            "relay": health.relay_listening.map(|l| if l { "listening" } else { "reconnecting" }),
        }))
        .into_response(),
        Some(reason) => {
            tracing::warn!(%reason, "not ready");
            json_error(StatusCode::SERVICE_UNAVAILABLE, reason)
        }
    }
}

/// How long a successful write probe stands: readiness may be polled every second, and each
/// probe is a commit (an fsync) competing with webhook intake for the write lock.
const WRITE_PROBE_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

async fn write_probe(console: &ConsoleState) -> Result<(), String> {
    if console.health.wrote_within(WRITE_PROBE_EVERY) {
        return Ok(());
    }
    console.db.probes().write_probe().await?;
    console.health.write_probe_succeeded();
    Ok(())
}

/// The process's own state as gauges, read on every scrape.
fn publish_health(health: &Snapshot, leads: bool) {
    let running = matches!(
        health.worker,
        WorkerState::Running | WorkerState::NotStarted
    );
    metrics::gauge!("export_worker_up").set(if running { 1.0 } else { 0.0 });
    metrics::gauge!("export_worker_restarts").set(health.worker_restarts as f64);
    metrics::gauge!("webhook_intake_storing").set(if health.intake_failing.is_some() {
        0.0
    } else {
        1.0
    });
    // where several instances share a database, one of them says 1
    metrics::gauge!("console_leads").set(if leads { 1.0 } else { 0.0 });
    if let Some(listening) = health.relay_listening {
        metrics::gauge!("console_relay_listening").set(if listening { 1.0 } else { 0.0 });
    }
}

/// Who may scrape `/metrics`: anyone, or whoever presents `METRICS_TOKEN` as a bearer token.
#[derive(Clone, Default)]
pub struct MetricsAccess {
    pub token: Option<Arc<str>>,
}

pub async fn metrics(
    State(access): State<MetricsAccess>,
    State(console): State<ConsoleState>,
    headers: HeaderMap,
) -> axum::response::Response {
    if let Some(token) = &access.token {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if !integration::bearer::matches(presented, token) {
            let mut res = json_error(
                StatusCode::UNAUTHORIZED,
                "the metrics need Authorization: Bearer with the METRICS_TOKEN",
            );
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return res;
        }
    }
    publish_health(&console.health.snapshot(), console.leadership.is_leader());
    match metrics_handle() {
        Some(handle) => (
            [(
                axum::http::header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            handle.render(),
        )
            .into_response(),
        None => json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics recorder could not be installed",
        ),
    }
}

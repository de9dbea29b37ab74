//! Liveness, readiness and Prometheus metrics.

use std::sync::{Arc, OnceLock};

use axum::{
    extract::State,
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::IntoResponse,
    Json,
};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde_json::json;
use sqlx::SqlitePool;

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

pub async fn readyz(State(pool): State<SqlitePool>) -> axum::response::Response {
    match integration::db::readiness(&pool).await {
        Ok(()) => Json(json!({ "status": "ready" })).into_response(),
        Err(reason) => {
            tracing::warn!(%reason, "not ready");
            json_error(StatusCode::SERVICE_UNAVAILABLE, reason)
        }
    }
}

/// Who may scrape `/metrics`: anyone, or whoever presents `METRICS_TOKEN` as a bearer token.
#[derive(Clone, Default)]
pub struct MetricsAccess {
    pub token: Option<Arc<str>>,
}

pub async fn metrics(
    State(access): State<MetricsAccess>,
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

//! The Pinpoint plugin routes: read the body within a limit, parse it leniently, check the
//! plugin token, and hand over to the core's plugin service.
//!
//! Business failures (a bad field, HiBob refusing) are answered 200 with `success: false`, as
//! Pinpoint's samples do, so Pinpoint shows them on the form. Only requests Pinpoint could not
//! have meant (bad JSON, wrong structure, too large, no token) get a 4xx, always with a JSON body.

use axum::{
    body::Body,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
    Json, Router,
};
use integration::pinpoint::plugin_contract::PluginRequest;
use integration::plugin::service::{
    self as plugin_service, check_shape, AuthError, ListError, PluginService, TOKEN_HEADER,
};

use crate::middleware::json_error;

/// Pinpoint's calls carry a form's worth of text (a CV comes as a link, not bytes); anything
/// near this is not from Pinpoint.
pub const MAX_PLUGIN_BODY_BYTES: usize = 256 * 1024;

/// The four plugin routes with their service; merged into the main router.
pub fn router(service: PluginService) -> Router {
    Router::new()
        .route("/", post(meta))
        .route(plugin_service::ACTION_META_PATH, post(action_meta))
        .route(plugin_service::SUBMIT_PATH, post(submit))
        .route("/lists/{list_key}", post(list))
        .with_state(service)
}

/// Reads and parses the body. The log line names the route and the kind of problem only: the
/// body holds candidate data and configuration values.
async fn read_request(route: &'static str, body: Body) -> Result<PluginRequest, Response> {
    let bytes = match axum::body::to_bytes(body, MAX_PLUGIN_BODY_BYTES).await {
        Ok(bytes) => bytes,
        Err(_) => {
            tracing::warn!(
                route,
                limit = MAX_PLUGIN_BODY_BYTES,
                "plugin call refused: body too large"
            );
            return Err(json_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "the request body is larger than {} KiB",
                    MAX_PLUGIN_BODY_BYTES / 1024
                ),
            ));
        }
    };
    PluginRequest::from_slice(&bytes).map_err(|e| {
        let problem = match e.classify() {
            serde_json::error::Category::Eof => "it ends too early",
            serde_json::error::Category::Syntax => "syntax error",
            serde_json::error::Category::Data => "unexpected data",
            serde_json::error::Category::Io => "unreadable",
        };
        tracing::warn!(
            route,
            bytes = bytes.len(),
            problem,
            "plugin call refused: body is not JSON"
        );
        json_error(
            StatusCode::BAD_REQUEST,
            format!(
                "the body is not valid JSON ({problem} at line {}, column {})",
                e.line(),
                e.column()
            ),
        )
    })
}

fn bad_request(route: &'static str, message: &str) -> Response {
    tracing::warn!(
        route,
        problem = message,
        "plugin call refused: malformed request"
    );
    json_error(StatusCode::BAD_REQUEST, message)
}

async fn authorized(
    route: &'static str,
    service: &PluginService,
    headers: &HeaderMap,
    req: &PluginRequest,
) -> Result<(), Response> {
    let header = headers.get(TOKEN_HEADER).and_then(|v| v.to_str().ok());
    service.authorize(header, req).await.map_err(|e| {
        let status = match e {
            AuthError::Refused => StatusCode::UNAUTHORIZED,
            AuthError::NotConfigured | AuthError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        };
        tracing::warn!(
            route,
            status = status.as_u16(),
            "plugin call refused: token"
        );
        json_error(status, e.to_string())
    })
}

/// Public: Pinpoint reads it at registration, before a token can be configured.
async fn meta(State(service): State<PluginService>, body: Body) -> Response {
    let req = match read_request("/", body).await {
        Ok(req) => req,
        Err(res) => return res,
    };
    if let Err(bad) = check_shape(&req) {
        return bad_request("/", &bad.message);
    }
    Json(service.meta().await).into_response()
}

async fn action_meta(
    State(service): State<PluginService>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    const ROUTE: &str = plugin_service::ACTION_META_PATH;
    let req = match read_request(ROUTE, body).await {
        Ok(req) => req,
        Err(res) => return res,
    };
    if let Err(res) = authorized(ROUTE, &service, &headers, &req).await {
        return res;
    }
    if let Err(bad) = check_shape(&req) {
        return bad_request(ROUTE, &bad.message);
    }
    Json(service.action_meta(&req).await).into_response()
}

async fn submit(State(service): State<PluginService>, headers: HeaderMap, body: Body) -> Response {
    const ROUTE: &str = plugin_service::SUBMIT_PATH;
    let req = match read_request(ROUTE, body).await {
        Ok(req) => req,
        Err(res) => return res,
    };
    if let Err(res) = authorized(ROUTE, &service, &headers, &req).await {
        return res;
    }
    // Run to completion even if Pinpoint hangs up or the request times out: the export record
    // and HiBob must not be left half-way because a connection dropped.
    let work = tokio::spawn(async move { service.submit(&req).await });
    match work.await {
        Ok(Ok(result)) => Json(result).into_response(),
        Ok(Err(bad)) => bad_request(ROUTE, &bad.message),
        Err(e) => {
            tracing::error!(error = %e, "the plugin submit task failed");
            json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the submit failed on our side; the details are in the server log",
            )
        }
    }
}

async fn list(
    State(service): State<PluginService>,
    Path(list_key): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    const ROUTE: &str = "/lists/{list_key}";
    let req = match read_request(ROUTE, body).await {
        Ok(req) => req,
        Err(res) => return res,
    };
    if let Err(res) = authorized(ROUTE, &service, &headers, &req).await {
        return res;
    }
    if let Err(bad) = check_shape(&req) {
        return bad_request(ROUTE, &bad.message);
    }
    match service.list_options(&list_key).await {
        Ok(list) => Json(list).into_response(),
        Err(e) => {
            let status = match e {
                ListError::UnknownList(_) => StatusCode::NOT_FOUND,
                ListError::NotConfigured => StatusCode::SERVICE_UNAVAILABLE,
                ListError::Unavailable(_) => StatusCode::BAD_GATEWAY,
            };
            json_error(status, e.to_string())
        }
    }
}

//! Cross-cutting HTTP concerns: request ids, the client's address, JSON errors, CSRF refusal,
//! security headers and request metrics.

use std::{net::SocketAddr, sync::Arc, time::Instant};

use axum::{
    extract::{ConnectInfo, MatchedPath, Request, State},
    http::{header, Extensions, HeaderValue, Method, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
    Json,
};
use integration::client_addr::{self, ClientAddr, TrustedProxies};
use serde_json::json;

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being handled, for error bodies and logs.
pub fn current_request_id() -> String {
    REQUEST_ID
        .try_with(Clone::clone)
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// Makes the request id (set by `SetRequestIdLayer`) available to handlers and error bodies.
pub async fn scope_request_id(req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("unknown")
        .to_owned();
    REQUEST_ID.scope(id, next.run(req)).await
}

/// Works out once per request who the client is (see `integration::client_addr`) and leaves it
/// in the request's extensions as a `ClientAddr`, for throttling, the audit log and the webhook
/// log alike.
pub async fn resolve_client_addr(
    State(trusted): State<Arc<TrustedProxies>>,
    mut req: Request,
    next: Next,
) -> Response {
    if let Some(peer) = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
    {
        let forwarded = req
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .map(|v| v.to_str().ok());
        let addr = client_addr::resolve(peer.ip(), forwarded, &trusted);
        req.extensions_mut().insert(addr);
    }
    next.run(req).await
}

/// The client's address from a request's extensions: the resolved one, else the TCP peer.
pub fn client_ip(extensions: &Extensions) -> Option<String> {
    extensions
        .get::<ClientAddr>()
        .map(ToString::to_string)
        .or_else(|| {
            extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(peer)| peer.ip().to_canonical().to_string())
        })
}

/// A JSON error body in one shape everywhere: `{"error": {"status", "message", "request_id"}}`.
pub fn json_error(status: StatusCode, message: impl Into<String>) -> Response {
    let body = json!({
        "error": {
            "status": status.as_u16(),
            "message": message.into(),
            "request_id": current_request_id(),
        }
    });
    (status, Json(body)).into_response()
}

/// Gives the bare errors produced by layers (body too large, timeout, panic) a JSON body that
/// says what is wrong, so no client ever has to parse an empty or plain-text 4xx/5xx.
pub async fn explain_bare_errors(req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    let status = res.status();
    let has_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json") || v.contains("html"));
    if has_json || !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let message = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "the request body is too large".to_owned(),
        StatusCode::REQUEST_TIMEOUT => "the request took too long and was stopped".to_owned(),
        StatusCode::INTERNAL_SERVER_ERROR => {
            "something went wrong on our side; the details are in the server log".to_owned()
        }
        StatusCode::METHOD_NOT_ALLOWED => "this method is not allowed here".to_owned(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "send the body as JSON".to_owned(),
        s => s
            .canonical_reason()
            .unwrap_or("the request was refused")
            .to_lowercase(),
    };
    let mut out = json_error(status, message);
    for name in [header::ALLOW, header::RETRY_AFTER] {
        if let Some(v) = res.headers().get(&name) {
            out.headers_mut().insert(name, v.clone());
        }
    }
    out
}

/// Routes that Pinpoint calls server-to-server. They carry no cookies and authenticate with the
/// plugin token or the webhook signature, so the browser-oriented CSRF check does not apply.
fn is_server_to_server(method: &Method, path: &str) -> bool {
    (method == Method::POST && path == "/")
        || path.starts_with("/export-candidate/")
        || path.starts_with("/lists/")
        || path.starts_with("/webhooks/")
}

#[derive(Clone)]
pub struct CsrfConfig {
    pub public_origin: String,
}

/// Refuses state-changing browser requests from other sites: `Sec-Fetch-Site` must be
/// same-origin (or none: typed by the user); without it, `Origin` must be `PUBLIC_URL`'s. The
/// `Host` header proves nothing: behind a proxy it is whatever the proxy (or the caller) chose.
/// Requests with neither header come from non-browser clients, which cannot ride a person's
/// cookies.
pub async fn refuse_cross_site(
    State(cfg): State<CsrfConfig>,
    req: Request,
    next: Next,
) -> Response {
    let method = req.method().clone();
    if matches!(method, Method::GET | Method::HEAD | Method::OPTIONS)
        || is_server_to_server(&method, req.uri().path())
    {
        return next.run(req).await;
    }
    let headers = req.headers();
    let fetch_site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let allowed = match (fetch_site, origin) {
        (Some(site), _) => site == "same-origin" || site == "none",
        (None, Some(origin)) => origin == cfg.public_origin,
        (None, None) => true,
    };
    if allowed {
        next.run(req).await
    } else {
        tracing::warn!(path = %req.uri().path(), "cross-site request refused");
        json_error(
            StatusCode::FORBIDDEN,
            "cross-site request refused: submit the form from the console itself",
        )
    }
}

pub const SECURITY_HEADERS: [(&str, &str); 4] = [
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "same-origin"),
    (
        "permissions-policy",
        "camera=(), microphone=(), geolocation=()",
    ),
];

/// One year, without `includeSubDomains`: the console may share its domain with sites this
/// operator does not run over https.
pub const STRICT_TRANSPORT_SECURITY: &str = "max-age=31536000";

#[derive(Clone, Copy)]
pub struct HeaderConfig {
    /// `PUBLIC_URL` is https: browsers are told never to use plain http for it.
    pub strict_transport: bool,
}

/// Adds the security headers, and a strict CSP to HTML that did not set its own (Leptos pages
/// set one with the page's nonce).
pub async fn security_headers(
    State(cfg): State<HeaderConfig>,
    req: Request,
    next: Next,
) -> Response {
    let mut res = next.run(req).await;
    let headers = res.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if cfg.strict_transport {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(STRICT_TRANSPORT_SECURITY),
        );
    }
    let is_html = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if is_html && !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; script-src 'self'; style-src 'self'; frame-ancestors 'none'; \
                 object-src 'none'; base-uri 'none'; form-action 'self'",
            ),
        );
    }
    res
}

/// Counts requests and their latency per route template (never per raw path, which would let
/// clients mint unbounded label values).
pub async fn record_metrics(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().as_str().to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| {
            if req.uri().path().starts_with("/pkg/") {
                "/pkg/*".to_owned()
            } else {
                "other".to_owned()
            }
        });
    let res = next.run(req).await;
    let status = res.status().as_u16().to_string();
    let labels = [("method", method), ("route", route), ("status", status)];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    res
}

#[cfg(test)]
mod tests {
    use super::is_server_to_server;
    use axum::http::Method;

    #[test]
    fn only_pinpoint_routes_skip_csrf() {
        assert!(is_server_to_server(&Method::POST, "/"));
        assert!(is_server_to_server(&Method::POST, "/webhooks/pinpoint"));
        assert!(is_server_to_server(
            &Method::POST,
            "/export-candidate/submit"
        ));
        assert!(is_server_to_server(&Method::POST, "/lists/sites"));
        assert!(!is_server_to_server(&Method::POST, "/api/login"));
        assert!(!is_server_to_server(&Method::POST, "/api/save_settings"));
    }
}

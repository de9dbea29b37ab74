//! The HTTP router: Leptos pages and server functions, operations endpoints, and the middleware
//! every request passes through.

use std::{sync::Arc, time::Duration};

use app::{shell, ssr::ConsoleState, App};
use axum::{
    body::Body,
    extract::{FromRef, Request, State},
    http::{HeaderName, StatusCode},
    middleware::{from_fn, from_fn_with_state},
    response::IntoResponse,
    routing::{get, post},
    Router,
};
use leptos::prelude::*;
use leptos_axum::{generate_route_list, handle_server_fns_with_context, LeptosRoutes};
use tower_http::{
    catch_panic::CatchPanicLayer,
    limit::RequestBodyLimitLayer,
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    timeout::TimeoutLayer,
    trace::TraceLayer,
};
use tower_sessions::{cookie::SameSite, Expiry, SessionManagerLayer};
use tower_sessions_sqlx_store::SqliteStore;

use crate::sessions::EngineStore;

use crate::{
    config::Config,
    middleware::{self, CsrfConfig},
    ops, webhooks,
};

#[derive(Clone, FromRef)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub console: ConsoleState,
    pub intake: integration::webhooks::intake::WebhookIntake,
    pub metrics: ops::MetricsAccess,
}

pub const SESSION_COOKIE: &str = "pphb_session";
pub const SECURE_SESSION_COOKIE: &str = "__Host-pphb_session";

async fn server_fns(State(state): State<AppState>, req: Request<Body>) -> impl IntoResponse {
    let console = state.console.clone();
    handle_server_fns_with_context(move || provide_context(console.clone()), req).await
}

/// Paths a signed-out browser may load: the sign-in page, server functions (which check roles
/// themselves) and static assets.
fn is_public_page(path: &str) -> bool {
    path == "/login"
        || path.starts_with("/api/")
        || path.starts_with("/pkg/")
        || path == "/favicon.svg"
        || path == "/favicon.ico"
}

/// Sends signed-out browsers to the sign-in page before any console page renders, keeping where
/// they were going.
async fn require_sign_in(
    State(console): State<ConsoleState>,
    session: tower_sessions::Session,
    req: Request<Body>,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let path = req.uri().path();
    if !matches!(
        *req.method(),
        axum::http::Method::GET | axum::http::Method::HEAD
    ) || is_public_page(path)
    {
        return next.run(req).await;
    }
    match app::ssr::session_user(&console, &session).await {
        Ok(Some(_)) => next.run(req).await,
        // a stream, not a page: there is nowhere to send it back to after signing in
        Ok(None) if path == crate::live::EVENTS_PATH => {
            middleware::json_error(StatusCode::UNAUTHORIZED, "sign in to receive live updates")
        }
        Ok(None) => {
            let target = if path == "/" {
                "/login".to_owned()
            } else {
                let next_path: String =
                    url::form_urlencoded::byte_serialize(path.as_bytes()).collect();
                format!("/login?next={next_path}")
            };
            axum::response::Redirect::to(&target).into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "session check failed");
            middleware::json_error(StatusCode::INTERNAL_SERVER_ERROR, "session check failed")
        }
    }
}

/// How often expired sessions are deleted.
const SESSION_PURGE: Duration = Duration::from_secs(15 * 60);

/// Builds the whole application. Also starts the task that purges expired sessions (on the
/// leader).
pub async fn router(
    config: &Config,
    console: ConsoleState,
    database: &crate::database::Database,
) -> anyhow::Result<Router> {
    let store = match &database.pool {
        crate::database::Pool::Sqlite(pool) => {
            let store = SqliteStore::new(pool.clone());
            store.migrate().await?;
            EngineStore::Sqlite(store)
        }
        crate::database::Pool::Postgres(pool) => {
            EngineStore::Postgres(tower_sessions_sqlx_store::PostgresStore::new(pool.clone()))
        }
    };
    tokio::spawn(integration::peers::leader::while_leader(
        console.leadership.clone(),
        // until the process ends
        tokio::sync::watch::channel(false).1,
        {
            let store = store.clone();
            move |stop| crate::sessions::purge_expired(store.clone(), SESSION_PURGE, stop)
        },
    ));
    let secure = config.secure_cookies();
    let sessions = SessionManagerLayer::new(crate::sessions::HashedIdStore::new(store))
        .with_name(if secure {
            SECURE_SESSION_COOKIE
        } else {
            SESSION_COOKIE
        })
        .with_secure(secure)
        .with_http_only(true)
        .with_same_site(SameSite::Strict)
        .with_path("/")
        .with_expiry(Expiry::OnInactivity(
            tower_sessions::cookie::time::Duration::minutes(i64::from(config.session_idle_minutes)),
        ));

    let mut leptos_options = leptos::config::get_configuration(None)?.leptos_options;
    leptos_options.site_addr = config.site_addr;
    leptos_options.hash_files = crate::assets::hashed_names(&leptos_options);
    let routes = generate_route_list(App);
    let state = AppState {
        leptos_options: leptos_options.clone(),
        console: console.clone(),
        intake: integration::webhooks::intake::WebhookIntake::start_with(
            console.db.clone(),
            integration::webhooks::intake::IntakeLimits {
                rejected_per_minute: config.rejected_deliveries_per_minute,
                rejected_kept: config.rejected_deliveries_kept,
            },
            console.health.clone(),
        ),
        metrics: ops::MetricsAccess {
            token: config.metrics_token().map(Arc::from),
        },
    };

    let page_state = console.clone();
    let app = Router::new()
        .route("/api/{*fn_name}", get(server_fns).post(server_fns))
        .route(crate::live::EVENTS_PATH, get(crate::live::events))
        .route("/audit.csv", get(crate::audit_csv::download))
        .leptos_routes_with_context(
            &state,
            routes,
            move || provide_context(page_state.clone()),
            {
                let options = leptos_options.clone();
                move || shell(options.clone())
            },
        )
        .nest(
            &format!("/{}", leptos_options.site_pkg_dir),
            crate::assets::pkg_router(&leptos_options),
        )
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        .layer(from_fn_with_state(console.clone(), require_sign_in))
        .layer(sessions)
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .with_state(state.clone());
    let webhook_state = state;
    // Pinpoint's plugin calls share the console's store and credentials; `POST /` joins the
    // console page's `GET /` as another method on the same path.
    let plugin = crate::plugin_routes::router(integration::plugin::service::PluginService::new(
        console.db.clone(),
        console.mappings.clone(),
    ))
    .layer(from_fn_with_state(
        console.changes.clone(),
        crate::live::after_plugin_submit,
    ));

    ops::metrics_handle();
    let request_id = HeaderName::from_static("x-request-id");
    let csrf = CsrfConfig {
        public_origin: config.public_origin(),
    };
    // Outermost last: the request id exists before anything logs, and every error below the
    // JSON-explaining layer gets a JSON body. The webhook and plugin routes read their bodies
    // within their own limits (so an oversized call still gets its own answer and log line),
    // hence they join after the general limit.
    Ok(app
        .layer(from_fn_with_state(csrf, middleware::refuse_cross_site))
        .layer(RequestBodyLimitLayer::new(config.max_body_kib * 1024))
        .merge(
            Router::new()
                .route("/webhooks/pinpoint", post(webhooks::receive_pinpoint))
                .with_state(webhook_state),
        )
        .merge(plugin)
        .layer(crate::assets::compression())
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(30),
        ))
        .layer(CatchPanicLayer::new())
        .layer(from_fn(middleware::explain_bare_errors))
        .layer(from_fn_with_state(
            middleware::HeaderConfig {
                strict_transport: config.strict_transport(),
            },
            middleware::security_headers,
        ))
        .layer(from_fn(middleware::record_metrics))
        .layer(from_fn_with_state(
            Arc::new(config.trusted_proxies.clone().unwrap_or_default()),
            middleware::resolve_client_addr,
        ))
        .layer(from_fn(middleware::scope_request_id))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request<Body>| {
                // the path only: query strings and headers may carry personal data or tokens
                let id = req
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
            }),
        )
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid)))
}

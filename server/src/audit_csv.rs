//! `GET /audit.csv`: the audit log, filtered as on the audit page, as a download that opens
//! safely in a spreadsheet. Admins only, like the page; the download itself is audited.

use app::ssr::ConsoleState;
use axum::{
    extract::{Query, State},
    http::{header, Extensions, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use integration::{
    access::audit::AuditFilter,
    access::users::{Actor, Role},
};
use serde::Deserialize;

use crate::middleware::json_error;

/// The audit page's filters, under the same names.
#[derive(Debug, Default, Deserialize)]
pub struct Params {
    action: Option<String>,
    search: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

pub async fn download(
    State(console): State<ConsoleState>,
    extensions: Extensions,
    session: tower_sessions::Session,
    Query(params): Query<Params>,
) -> Response {
    // the page guard sends signed-out browsers to the sign-in page before this runs
    let user = match app::ssr::session_user(&console, &session).await {
        Ok(Some(user)) => user,
        Ok(None) => return json_error(StatusCode::UNAUTHORIZED, "Please sign in to continue."),
        Err(e) => {
            tracing::error!(error = %e, "session check failed");
            return json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the session could not be checked; please try again",
            );
        }
    };
    if !user.role.allows(Role::Admin) {
        return json_error(
            StatusCode::FORBIDDEN,
            "Only admins may download the audit log.",
        );
    }
    let filter = AuditFilter {
        action: params.action,
        search: params.search,
        from: params.from,
        to: params.to,
        before_id: None,
        limit: None,
    };
    if let Err(e) = filter.check() {
        return json_error(StatusCode::UNPROCESSABLE_ENTITY, e.to_string());
    }
    let (body, rows, cut) = match console.db.audit().csv(&filter).await {
        Ok(done) => done,
        Err(e) => {
            tracing::error!(error = %e, "audit CSV failed");
            return json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the audit log could not be read; please try again",
            );
        }
    };
    let actor = Actor::user(&user, crate::middleware::client_ip(&extensions));
    let detail = format!(
        "{rows} entries{}{}",
        if cut {
            " (cut at the per-file limit)"
        } else {
            ""
        },
        describe(&filter)
    );
    let recorded = console
        .db
        .audit()
        .record(&actor, "audit.exported", None, &detail)
        .await
        .map_err(|e| e.to_string());
    if let Err(e) = recorded {
        // a download nobody can trace must not happen
        tracing::error!(error = %e, "audit CSV download not recorded");
        return json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the download could not be recorded; please try again",
        );
    }
    let filename = format!("audit-{}.csv", chrono::Utc::now().format("%Y%m%d-%H%M%S"));
    let mut res = (StatusCode::OK, body).into_response();
    let headers = res.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    if cut {
        headers.insert(
            "x-audit-truncated",
            HeaderValue::from_static("narrow the dates for the rest"),
        );
    }
    res
}

/// The filters in words, for the audit entry of the download.
fn describe(filter: &AuditFilter) -> String {
    let parts: Vec<String> = [
        ("action", &filter.action),
        ("search", &filter.search),
        ("from", &filter.from),
        ("to", &filter.to),
    ]
    .into_iter()
    .filter_map(|(name, value)| {
        value
            .as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(|v| format!("{name} {v:?}"))
    })
    .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("; {}", parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_described_for_the_audit_entry() {
        let f = AuditFilter {
            action: Some("login".into()),
            to: Some("2026-11-22".into()),
            search: Some(" ".into()),
            ..Default::default()
        };
        assert_eq!(describe(&f), "; action \"login\", to \"2026-11-22\"");
        assert_eq!(describe(&AuditFilter::default()), "");
    }
}

//! The Pinpoint simulator, served under `/pinpoint/api/v1`: JSON:API documents, `X-API-KEY`.
//!
//! Any all-digit application id is a generated sample candidate, so demos and tests can invent
//! ids freely; tests that need something odd register it with [`SimState::put_application`].
//! Like Pinpoint, attachments come only with `extra_fields[applications]=attachments` and
//! related resources only when `include` names them.

use std::collections::HashMap;

use axum::{
    body::Bytes,
    extract::{Path, Query, Request, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
    Router,
};
use serde_json::{json, Map, Value};

use super::{
    samples,
    state::{ApplicationSource, SimState},
};

pub const JSON_API: &str = "application/vnd.api+json";

pub(crate) fn routes(state: SimState) -> Router<SimState> {
    Router::new()
        .route("/applications/{id}", get(get_application))
        .route("/comments", post(create_comment))
        .route("/jobs", get(list_jobs))
        .route_layer(middleware::from_fn_with_state(state, gate))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "Not found", "No such endpoint") })
}

fn document(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static(JSON_API))],
        body.to_string(),
    )
        .into_response()
}

fn error(status: StatusCode, title: &str, detail: &str) -> Response {
    document(
        status,
        json!({"errors": [{"status": status.as_u16().to_string(), "title": title, "detail": detail}]}),
    )
}

fn invalid(detail: &str, pointer: &str) -> Response {
    document(
        StatusCode::UNPROCESSABLE_ENTITY,
        json!({"errors": [{
            "status": "422",
            "title": "Invalid",
            "detail": detail,
            "source": {"pointer": pointer},
        }]}),
    )
}

async fn gate(State(state): State<SimState>, request: Request, next: Next) -> Response {
    let given = request
        .headers()
        .get("x-api-key")
        .map(HeaderValue::as_bytes)
        .unwrap_or_default();
    let expected = state.credentials().pinpoint_api_key.as_bytes();
    if !super::constant_time_eq(given, expected) {
        return error(StatusCode::UNAUTHORIZED, "Unauthorized", "Invalid API key");
    }
    if let Some(status) = state.take_pinpoint_failure() {
        return error(
            status,
            status.canonical_reason().unwrap_or("Error"),
            "Simulated failure requested through the sandbox controls",
        );
    }
    next.run(request).await
}

fn listed(query: &HashMap<String, String>, key: &str, wanted: &str) -> bool {
    query
        .get(key)
        .is_some_and(|v| v.split(',').any(|item| item.trim() == wanted))
}

fn text(attributes: &Map<String, Value>, key: &str) -> String {
    attributes
        .get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .unwrap_or_default()
        .to_owned()
}

/// Names and job title for the CV file, from whichever source the application has.
fn cv_identity(source: &ApplicationSource) -> (String, String, String) {
    match source {
        ApplicationSource::Sample(seed) => {
            let (first, last) = samples::candidate_names(*seed);
            (
                first.to_owned(),
                last.to_owned(),
                samples::job_of(*seed).1.to_owned(),
            )
        }
        ApplicationSource::Custom { seed, attributes } => (
            text(attributes, "first_name"),
            text(attributes, "last_name"),
            samples::job_of(*seed).1.to_owned(),
        ),
    }
}

async fn get_application(
    State(state): State<SimState>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let id = id.trim().to_owned();
    let Some(source) = state.application(&id) else {
        return error(
            StatusCode::NOT_FOUND,
            "Record not found",
            "No application with that id",
        );
    };
    let today = state.started_on();
    let (seed, mut attributes) = match source {
        ApplicationSource::Sample(seed) => {
            let mut attributes = samples::application_attributes(&id, seed, today);
            let (first, last) = samples::candidate_names(seed);
            attributes.insert(
                "attachments".into(),
                json!([samples::cv_attachment(
                    &state.origin(&headers),
                    &id,
                    first,
                    last
                )]),
            );
            (seed, attributes)
        }
        ApplicationSource::Custom { seed, attributes } => (seed, attributes),
    };
    if !listed(&query, "extra_fields[applications]", "attachments") {
        attributes.remove("attachments");
    }
    let job = samples::job_resource(seed);
    let mut offer = samples::offer_resource(seed, today);
    if id == samples::MOVES_AFTER_HIRE {
        let email = attributes
            .get("email")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if state.has_employee_with_email(email) {
            samples::move_start(&mut offer, 7);
        }
    }
    let mut included = Vec::new();
    if listed(&query, "include", "job") {
        included.push(job.clone());
    }
    if listed(&query, "include", "offers") {
        included.push(offer.clone());
    }
    let origin = state.origin(&headers);
    let body = json!({
        "data": {
            "id": id,
            "type": "applications",
            "attributes": attributes,
            "relationships": {
                "job": {"data": {"type": "jobs", "id": job["id"]}},
                "offers": {"data": [{"type": "offers", "id": offer["id"]}]},
            },
            "links": {"self": format!("{origin}/pinpoint/api/v1/applications/{id}")},
        },
        "included": included,
    });
    document(StatusCode::OK, body)
}

async fn create_comment(State(state): State<SimState>, body: Bytes) -> Response {
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "Bad request",
            "The body is not valid JSON",
        );
    };
    let data = body.get("data").filter(|d| d.is_object());
    let Some(data) = data else {
        return invalid("data must be an object", "/data");
    };
    if data.get("type").and_then(Value::as_str) != Some("comments") {
        return invalid("data.type must be comments", "/data/type");
    }
    let body_text = data
        .get("attributes")
        .and_then(|a| a.get("body_text"))
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let Some(body_text) = body_text else {
        return invalid("body_text can't be blank", "/data/attributes/body_text");
    };
    let target = data
        .get("relationships")
        .and_then(|r| r.get("commentable"))
        .and_then(|c| c.get("data"));
    let kind = target.and_then(|t| t.get("type")).and_then(Value::as_str);
    let target_id = target.and_then(|t| t.get("id")).and_then(|id| match id {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    });
    let (Some(kind), Some(target_id)) = (kind, target_id) else {
        return invalid(
            "commentable must name an application or a job seeker",
            "/data/relationships/commentable",
        );
    };
    match kind {
        "applications" if state.application(&target_id).is_none() => {
            return error(
                StatusCode::NOT_FOUND,
                "Record not found",
                "No application with that id",
            )
        }
        "applications" | "job_seekers" => {}
        _ => {
            return invalid(
                "commentable must be of type applications or job_seekers",
                "/data/relationships/commentable/data/type",
            )
        }
    }
    let comment = state.add_comment(kind, &target_id, body_text);
    document(
        StatusCode::CREATED,
        json!({
            "data": {
                "id": comment.id,
                "type": "comments",
                "attributes": {
                    "body_text": comment.body_text,
                    "created_at": comment.created_at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
                },
                "relationships": {
                    "commentable": {"data": {"type": kind, "id": target_id}},
                },
            }
        }),
    )
}

async fn list_jobs(
    State(state): State<SimState>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let all = samples::jobs();
    let size = query
        .get("page[size]")
        .and_then(|s| s.trim().parse::<usize>().ok())
        .unwrap_or(100)
        .clamp(1, 1000);
    let number = query
        .get("page[number]")
        .and_then(|s| s.trim().parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let page: Vec<Value> = all
        .iter()
        .skip((number - 1).saturating_mul(size))
        .take(size)
        .cloned()
        .collect();
    let last = all.len().div_ceil(size).max(1);
    let origin = state.origin(&headers);
    let link =
        |n: usize| format!("{origin}/pinpoint/api/v1/jobs?page[number]={n}&page[size]={size}");
    document(
        StatusCode::OK,
        json!({
            "data": page,
            "meta": {"count": all.len()},
            "links": {"self": link(number), "first": link(1), "last": link(last)},
        }),
    )
}

/// `GET /pinpoint/files/{id}/cv.pdf`: no key needed, as with Pinpoint's signed links.
pub(crate) async fn cv_file(State(state): State<SimState>, Path(id): Path<String>) -> Response {
    let Some(source) = state.application(&id) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let (first, last, job) = cv_identity(&source);
    let name = format!("{first} {last}");
    let disposition = format!(
        "inline; filename=\"{}\"",
        samples::cv_filename(&first, &last)
    );
    let mut response = (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/pdf"),
        )],
        samples::cv_pdf(name.trim(), &job),
    )
        .into_response();
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        response
            .headers_mut()
            .insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

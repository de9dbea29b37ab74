//! The HiBob simulator's documents: uploads from a link or as a file, and the folder listing.

use axum::{
    body::Bytes,
    extract::{Path, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use chrono::Utc;
use serde_json::{json, Value};

use super::state::{SimDocument, SimState};

use super::hibob_answers::*;

fn folder_of(segment: &str) -> Option<&'static str> {
    match segment {
        "shared" => Some("shared"),
        "confidential" => Some("confidential"),
        _ => None,
    }
}

pub(super) async fn upload_from_url(
    State(state): State<SimState>,
    Path((employee_id, folder)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let Some(folder) = folder_of(&folder) else {
        return unknown_path().await;
    };
    if state.employee(&employee_id).is_none() {
        return employee_not_found(&employee_id);
    }
    let body = match parse_object(&body, false) {
        Ok(body) => body,
        Err(failure) => return failure.into_response(),
    };
    let url_text = body
        .get("documentUrl")
        .and_then(Value::as_str)
        .map(str::trim)
        .unwrap_or_default();
    let parsed = url::Url::parse(url_text)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
    let Some(parsed) = parsed else {
        return Failure::invalid(
            "validations.documentUrl.invalid",
            "documentUrl must be an http or https URL",
        )
        .into_response();
    };
    let tags = match body.get("tags") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(tags)) if tags.iter().all(Value::is_string) => tags
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Some(_) => {
            return Failure::invalid(
                "validations.tags.invalid",
                "tags must be an array of strings",
            )
            .into_response()
        }
    };
    // the SPEC marks no key required; without a name the URL's last segment stands in
    let name = body
        .get("documentName")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .or_else(|| {
            parsed
                .path_segments()
                .and_then(|mut s| s.next_back())
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "document".to_owned());
    let content_type = guess_type(&name);
    let fetching = state.upload_delay();
    if !fetching.is_zero() {
        tokio::time::sleep(fetching).await;
    }
    let stored = state.add_document(SimDocument {
        id: 0,
        employee_id: employee_id.clone(),
        folder: folder.to_owned(),
        name: name.clone(),
        source_url: Some(url_text.to_owned()),
        tags: tags.clone(),
        content_type: Some(content_type.to_owned()),
        bytes: None,
        created_at: Utc::now(),
    });
    let service_user = state.credentials().hibob_service_user_id.clone();
    Json(json!({
        "id": stored.id,
        "employeeId": employee_id,
        "uploadedById": service_user,
        "name": name,
        "documentName": name,
        "creationDate": stored.created_at.format("%Y-%m-%dT%H:%M:%S%.3f").to_string(),
        "status": "approved",
        "tags": tags,
        "folderId": folder_id(folder),
        "mimeType": content_type,
        "fileId": stored.id + 84_300_000,
        "owner": {"id": employee_id},
        "actionRequestDate": null,
        "actionCompleteDate": null,
    }))
    .into_response()
}

fn folder_id(folder: &str) -> u64 {
    if folder == "shared" {
        1012
    } else {
        1013
    }
}

fn guess_type(name: &str) -> &'static str {
    let lower = name.to_ascii_lowercase();
    if lower.ends_with(".pdf") {
        "application/pdf"
    } else if lower.ends_with(".docx") {
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    } else if lower.ends_with(".doc") {
        "application/msword"
    } else {
        "application/octet-stream"
    }
}

pub(super) async fn upload_file(
    State(state): State<SimState>,
    Path((employee_id, folder)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(folder) = folder_of(&folder) else {
        return unknown_path().await;
    };
    if state.employee(&employee_id).is_none() {
        return employee_not_found(&employee_id);
    }
    let boundary = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(super::multipart::boundary);
    let Some(boundary) = boundary else {
        return Failure::invalid(
            "validations.request.invalid",
            "Expected a multipart/form-data body",
        )
        .into_response();
    };
    let Some(parts) = super::multipart::parse(&body, &boundary) else {
        return Failure::invalid(
            "validations.request.invalid",
            "The multipart body could not be read",
        )
        .into_response();
    };
    let Some(file) = parts.into_iter().find(|p| p.name == "file") else {
        return Failure::invalid(
            "validations.file.required",
            "The multipart part 'file' is required",
        )
        .into_response();
    };
    if file.data.len() > MAX_DOCUMENT_BYTES {
        return Failure::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "docs.upload.tooLarge",
            format!("Uploads are limited to {MAX_DOCUMENT_BYTES} bytes"),
        )
        .into_response();
    }
    let name = file
        .filename
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| "file".to_owned());
    let content_type = file
        .content_type
        .unwrap_or_else(|| guess_type(&name).to_owned());
    let stored = state.add_document(SimDocument {
        id: 0,
        employee_id,
        folder: folder.to_owned(),
        name,
        source_url: None,
        tags: Vec::new(),
        content_type: Some(content_type),
        bytes: Some(file.data),
        created_at: Utc::now(),
    });
    Json(json!({ "id": stored.id })).into_response()
}

pub(super) async fn list_documents(
    State(state): State<SimState>,
    Path(employee_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if state.employee(&employee_id).is_none() {
        return employee_not_found(&employee_id);
    }
    let origin = state.origin(&headers);
    let documents: Vec<Value> = state
        .documents_for(&employee_id)
        .into_iter()
        .map(|d| {
            let link = match &d.source_url {
                Some(url) => url.clone(),
                None => format!("{origin}/hibob/files/{}", d.id),
            };
            json!({"id": d.id, "documentName": d.name, "downloadLink": link})
        })
        .collect();
    Json(json!({ "documents": documents })).into_response()
}

/// `GET /hibob/files/{id}`, outside the API prefix and without auth: it stands for the signed
/// download link HiBob hands out for an uploaded file.
pub(crate) async fn download(State(state): State<SimState>, Path(id): Path<String>) -> Response {
    let document = id.parse::<u64>().ok().and_then(|id| state.document(id));
    match document {
        Some(SimDocument {
            bytes: Some(bytes),
            content_type,
            ..
        }) => {
            let content_type = content_type
                .and_then(|t| HeaderValue::from_str(&t).ok())
                .unwrap_or_else(|| HeaderValue::from_static("application/octet-stream"));
            ([(header::CONTENT_TYPE, content_type)], bytes).into_response()
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

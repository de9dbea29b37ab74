//! How the HiBob simulator answers what it refuses: HiBob's error body, and the answers its
//! employee and document endpoints share.

use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};
use serde_json::{json, Map, Value};

/// HiBob's documented cap for the shared and confidential folders.
pub(super) const MAX_DOCUMENT_BYTES: usize = 5 * 1024 * 1024;

/// HiBob's default error body.
pub(super) struct Failure {
    status: StatusCode,
    pub(super) key: String,
    message: String,
}

impl Failure {
    pub(super) fn new(
        status: StatusCode,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            key: key.into(),
            message: message.into(),
        }
    }

    pub(super) fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, key, message)
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({"key": self.key, "error": self.message})),
        )
            .into_response()
    }
}

pub(super) async fn unknown_path() -> Response {
    Failure::new(
        StatusCode::NOT_FOUND,
        "general.notFound",
        "No such endpoint in the HiBob sandbox",
    )
    .into_response()
}

pub(super) fn parse_object(body: &[u8], allow_empty: bool) -> Result<Map<String, Value>, Failure> {
    if allow_empty && body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(Failure::invalid(
            "validations.request.invalid",
            "The request body must be a JSON object",
        )),
        Err(e) => Err(Failure::invalid(
            "validations.request.invalid",
            format!("The request body is not valid JSON: {e}"),
        )),
    }
}

pub(super) fn employee_not_found(id: &str) -> Response {
    Failure::new(
        StatusCode::NOT_FOUND,
        "employee.notFound",
        format!(
            "Employee {} was not found",
            id.chars().take(80).collect::<String>()
        ),
    )
    .into_response()
}

//! The simulated HiBob's onboarding: a fixed list of welcome wizards and invitations to them,
//! checked the way HiBob's reference describes (`welcomeWizardId` required, a known employee).

use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};
use serde_json::{json, Value};

use super::state::SimState;

/// The wizards every sandbox company has.
pub(crate) const WIZARDS: [(u64, &str); 2] = [(1, "New starter"), (2, "Engineering onboarding")];

fn refusal(status: StatusCode, key: &str, message: String) -> Response {
    (status, Json(json!({ "key": key, "error": message }))).into_response()
}

/// `GET /onboarding/wizards`.
pub(crate) async fn wizards() -> Response {
    let wizards: Vec<Value> = WIZARDS
        .iter()
        .map(|(id, name)| json!({ "id": id, "name": name }))
        .collect();
    Json(json!({ "wizards": wizards })).into_response()
}

/// `POST /employees/{id}/invitations`.
pub(crate) async fn invite(
    State(state): State<SimState>,
    Path(employee_id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    if state.employee(&employee_id).is_none() {
        let id: String = employee_id.chars().take(80).collect();
        return refusal(
            StatusCode::NOT_FOUND,
            "employee.notFound",
            format!("Employee {id} was not found"),
        );
    }
    let wizard = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("welcomeWizardId").and_then(Value::as_u64));
    match wizard {
        Some(id) if WIZARDS.iter().any(|(w, _)| *w == id) => {
            state.record_invitation(&employee_id);
            StatusCode::OK.into_response()
        }
        Some(id) => refusal(
            StatusCode::BAD_REQUEST,
            "onboarding.wizardNotFound",
            format!("There is no welcome wizard {id}"),
        ),
        None => refusal(
            StatusCode::BAD_REQUEST,
            "general.invalidRequest",
            "welcomeWizardId is required and must be a number".to_owned(),
        ),
    }
}

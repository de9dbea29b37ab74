//! The simulated HiBob's changes after creation: `PUT /people/{identifier}` (applied like a
//! PATCH, 304 when nothing changes) and `POST /employees/{id}/start-date`, checked the way
//! HiBob's reference describes them.

use axum::{
    body::Bytes,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::{Map, Value};

use super::{
    hibob_answers::{employee_not_found, parse_object, Failure},
    state::SimState,
};

/// Puts `patch` into `target`, object into object, as HiBob's update merges fields.
fn merge(target: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (key, value) in patch {
        match (target.get_mut(key), value) {
            (Some(Value::Object(inner)), Value::Object(more)) => merge(inner, more),
            _ => {
                target.insert(key.clone(), value.clone());
            }
        }
    }
}

fn text<'a>(body: &'a Map<String, Value>, path: &[&str]) -> Option<&'a str> {
    let (last, parents) = path.split_last()?;
    let mut here = body;
    for part in parents {
        here = here.get(*part)?.as_object()?;
    }
    here.get(*last)?.as_str()
}

fn is_day(text: &str) -> bool {
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").is_ok()
}

/// `PUT /people/{identifier}`.
pub(crate) async fn update(
    State(state): State<SimState>,
    Path(identifier): Path<String>,
    body: Bytes,
) -> Response {
    let patch = match parse_object(&body, false) {
        Ok(patch) if !patch.is_empty() => patch,
        Ok(_) => {
            return Failure::invalid("validations.request.invalid", "Nothing to update")
                .into_response()
        }
        Err(failure) => return failure.into_response(),
    };
    if let Some(day) = text(&patch, &["work", "startDate"]).filter(|d| !is_day(d)) {
        return Failure::invalid(
            "validations.date.invalid",
            format!("work.startDate {day:?} is not a date (YYYY-MM-DD)"),
        )
        .into_response();
    }
    let changed = state.change_employee(identifier.trim(), |employee| {
        let mut body = employee.body.as_object().cloned().unwrap_or_default();
        let before = body.clone();
        merge(&mut body, &patch);
        if let Some(first) = text(&patch, &["firstName"]) {
            employee.first_name = first.to_owned();
        }
        if let Some(surname) = text(&patch, &["surname"]) {
            employee.surname = surname.to_owned();
        }
        if let Some(day) = text(&patch, &["work", "startDate"]) {
            employee.start_date = day.to_owned();
        }
        let changed = body != before;
        employee.body = Value::Object(body);
        changed
    });
    match changed {
        None => employee_not_found(&identifier),
        Some(true) => StatusCode::OK.into_response(),
        Some(false) => StatusCode::NOT_MODIFIED.into_response(),
    }
}

/// `POST /employees/{employeeId}/start-date`.
pub(crate) async fn start_date(
    State(state): State<SimState>,
    Path(employee_id): Path<String>,
    body: Bytes,
) -> Response {
    let body = match parse_object(&body, false) {
        Ok(body) => body,
        Err(failure) => return failure.into_response(),
    };
    let Some(day) = text(&body, &["startDate"]).filter(|d| is_day(d)) else {
        return Failure::invalid(
            "validations.startDate.required",
            "startDate is required, as YYYY-MM-DD",
        )
        .into_response();
    };
    let found = state.change_employee(employee_id.trim(), |employee| {
        employee.start_date = day.to_owned();
        let mut body = employee.body.as_object().cloned().unwrap_or_default();
        let mut patch = Map::new();
        patch.insert("work".into(), serde_json::json!({ "startDate": day }));
        merge(&mut body, &patch);
        employee.body = Value::Object(body);
        true
    });
    match found {
        None => employee_not_found(&employee_id),
        Some(_) => StatusCode::OK.into_response(),
    }
}

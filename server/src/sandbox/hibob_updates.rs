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

/// The one work-history entry the create made, on the start date.
const ENTRY_ID: i64 = 1;

/// `GET /people/{id}/work`: the employee's work history, as HiBob's employee tables list it.
pub(crate) async fn work_history(
    State(state): State<SimState>,
    Path(identifier): Path<String>,
) -> Response {
    let Some(employee) = state
        .employees()
        .into_iter()
        .find(|e| e.id == identifier.trim())
    else {
        return employee_not_found(&identifier);
    };
    let work = employee.body.get("work").cloned().unwrap_or_default();
    let site_id = super::samples::list(super::samples::SITE_LIST)
        .and_then(|l| l.lookup(&serde_json::json!(employee.site)))
        .map(|i| i.id);
    let current = chrono::NaiveDate::parse_from_str(&employee.start_date, "%Y-%m-%d")
        .is_ok_and(|d| d <= chrono::Utc::now().date_naive());
    let mut entry = serde_json::json!({
        "id": ENTRY_ID,
        "effectiveDate": employee.start_date,
        "isCurrent": current,
        "site": employee.site,
        "siteId": site_id,
        "title": work.get("title"),
        "department": work.get("department"),
        "customColumns": {},
    });
    if let Some(manager) = work.get("reportsTo").filter(|m| !m.is_null()) {
        entry["reportsTo"] = serde_json::json!({ "id": manager });
    }
    axum::Json(serde_json::json!({ "values": [entry] })).into_response()
}

/// `PUT /people/{id}/work/{entry_id}`: replaces the entry whole, as HiBob documents it: a column
/// the body leaves out is cleared.
pub(crate) async fn update_work_entry(
    State(state): State<SimState>,
    Path((identifier, entry_id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let entry = match parse_object(&body, false) {
        Ok(entry) => entry,
        Err(failure) => return failure.into_response(),
    };
    if entry_id.trim() != ENTRY_ID.to_string() {
        return Failure::new(
            StatusCode::NOT_FOUND,
            "employee.work.notFound",
            "No such work entry",
        )
        .into_response();
    }
    if !text(&entry, &["effectiveDate"]).is_some_and(is_day) {
        return Failure::invalid(
            "validations.effectiveDate.required",
            "effectiveDate is required, as YYYY-MM-DD",
        )
        .into_response();
    }
    for column in ["title", "department"] {
        let Some(value) = entry.get(column).filter(|v| !v.is_null()) else {
            continue;
        };
        let known = super::samples::list(column).is_none_or(|l| l.lookup(value).is_some());
        if !known {
            return Failure::invalid(
                format!("validations.work.{column}.invalid"),
                format!("{column}: {value} is not an item of the list '{column}'"),
            )
            .into_response();
        }
    }
    let site = text(&entry, &["site"]).map(str::to_owned).or_else(|| {
        entry.get("siteId").and_then(|id| {
            super::samples::list(super::samples::SITE_LIST)
                .and_then(|l| l.lookup(id))
                .map(|i| i.name.to_owned())
        })
    });
    let Some(site) = site else {
        return Failure::invalid(
            "validations.site.required",
            "A work entry needs its site or siteId",
        )
        .into_response();
    };
    let changed = state.change_employee(identifier.trim(), |employee| {
        let mut body = employee.body.as_object().cloned().unwrap_or_default();
        let mut work = body
            .get("work")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        for column in ["title", "department"] {
            match entry.get(column).filter(|v| !v.is_null()) {
                Some(v) => work.insert(column.to_owned(), v.clone()),
                None => work.remove(column),
            };
        }
        match entry.get("reportsTo").and_then(|r| r.get("id")) {
            Some(id) => work.insert("reportsTo".into(), id.clone()),
            None => work.remove("reportsTo"),
        };
        work.insert("site".into(), Value::String(site.clone()));
        employee.site = site.clone();
        body.insert("work".into(), Value::Object(work));
        employee.body = Value::Object(body);
    });
    match changed {
        None => employee_not_found(&identifier),
        Some(()) => StatusCode::OK.into_response(),
    }
}

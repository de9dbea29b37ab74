//! The HiBob simulator, served under `/hibob/v1`.
//!
//! It enforces what HiBob documents (required create fields, e-mail uniqueness, site from the
//! `site` list, `YYYY-MM-DD` dates, one search filter on `root.id`/`root.email`, Basic auth with
//! the service user, per-minute limits with `X-RateLimit-*` headers). Where HiBob publishes no
//! error key, the simulator answers `validations.<field path>.<reason>`, the form the client's
//! `field_for_error` reads back to the field.

use axum::{
    body::Bytes,
    extract::{Path, Query, Request, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use chrono::{NaiveDate, Utc};
use serde_json::{json, Map, Value};
use std::collections::HashMap;

use super::{
    hibob_answers::{employee_not_found, parse_object, unknown_path, Failure},
    hibob_docs::{list_documents, upload_file, upload_from_url},
    samples::{self, FieldSpec, COMPANY_ID, FIELDS, SITE_LIST},
    state::{Admission, Bucket, SimEmployee, SimState},
};

/// HiBob's documented cap on `fields` in a search.
const MAX_SEARCH_FIELDS: usize = 400;

const MAX_NAME_CHARS: usize = 50;

/// Beside letters, the only characters HiBob's reference allows in names. The space is not in
/// the published list; it is allowed here because double first names are common and the list
/// reads as "punctuation allowed", not "spaces forbidden".
const NAME_PUNCTUATION: &[char] = &[
    '\u{b4}', '\u{300}', '_', '-', ';', ',', '\u{329}', '.', '/', '\'', '\u{2019}', '"', '(', ')',
    '`', ' ',
];

pub(crate) fn routes(state: SimState) -> Router<SimState> {
    Router::new()
        .route("/people", post(create_employee))
        .route("/people/search", post(search))
        .route(
            "/people/{identifier}",
            post(read_one).put(super::hibob_updates::update),
        )
        .route(
            "/employees/{id}/start-date",
            post(super::hibob_updates::start_date),
        )
        .route(
            "/people/{identifier}/work",
            get(super::hibob_updates::work_history),
        )
        .route(
            "/people/{identifier}/work/{entry_id}",
            axum::routing::put(super::hibob_updates::update_work_entry),
        )
        .route("/company/people/fields", get(people_fields))
        .route("/company/named-lists", get(named_lists))
        .route("/company/named-lists/{name}", get(named_list))
        .route("/docs/people/{id}", get(list_documents))
        .route("/docs/people/{id}/{folder}", post(upload_from_url))
        .route("/docs/people/{id}/{folder}/upload", post(upload_file))
        .route("/onboarding/wizards", get(super::hibob_onboarding::wizards))
        .route(
            "/employees/{id}/invitations",
            post(super::hibob_onboarding::invite),
        )
        .route_layer(middleware::from_fn_with_state(state, gate))
        .fallback(unknown_path)
}

// ---------------------------------------------------------------------------------------------
// Auth and rate limits
// ---------------------------------------------------------------------------------------------

/// Authenticates the service user, then counts the call against its endpoint's minute. A
/// refused call is not counted (the limits are per service user, and it has none) but still
/// carries the headers, as observed on HiBob's 401s.
async fn gate(State(state): State<SimState>, request: Request, next: Next) -> Response {
    let bucket = Bucket::of(request.method(), request.uri().path());
    let authorised = service_user_matches(request.headers(), &state);
    let gated = state.admit(bucket, authorised);
    let admission = gated.map_or(Admission::Allowed, |(admission, _)| admission);
    let mut response = if !authorised {
        StatusCode::UNAUTHORIZED.into_response()
    } else {
        match admission {
            Admission::Allowed => {
                let delay = state.begin_call();
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                next.run(request).await
            }
            Admission::Limited { retry_after } => {
                let mut limited = Failure::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "general.rateLimitExceeded",
                    format!("Too many requests; try again in {retry_after} seconds"),
                )
                .into_response();
                limited
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
                limited
            }
        }
    };
    if let Some((_, rate)) = gated {
        let headers = response.headers_mut();
        headers.insert("x-ratelimit-limit", HeaderValue::from(rate.limit));
        headers.insert("x-ratelimit-remaining", HeaderValue::from(rate.remaining));
        headers.insert("x-ratelimit-reset", HeaderValue::from(rate.reset));
    }
    response
}

fn service_user_matches(headers: &HeaderMap, state: &SimState) -> bool {
    let Some((user, password)) = basic_credentials(headers) else {
        return false;
    };
    let expected = state.credentials();
    // both halves are always compared, so timing does not tell which one was wrong
    let user_ok =
        super::constant_time_eq(user.as_bytes(), expected.hibob_service_user_id.as_bytes());
    let token_ok = super::constant_time_eq(password.as_bytes(), expected.hibob_token.as_bytes());
    user_ok & token_ok
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(decode_base64(encoded.trim())?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// Standard-alphabet base64, padding optional. The server crate has no base64 dependency and
/// this is the only place that needs one.
pub(crate) fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for c in text.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((acc >> bits) & 0xff).ok()?);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

// ---------------------------------------------------------------------------------------------
// Employees
// ---------------------------------------------------------------------------------------------

async fn create_employee(State(state): State<SimState>, body: Bytes) -> Response {
    if let Some(failure) = state.begin_create() {
        return injected(failure.status);
    }
    let body = match parse_object(&body, false) {
        Ok(body) => body,
        Err(failure) => return failure.into_response(),
    };
    let employee = match validate_create(&state, &body) {
        Ok(employee) => employee,
        Err(failure) => return failure.into_response(),
    };
    let (delay, failure) = match state.insert_employee(employee.clone()) {
        Ok(outcome) => outcome,
        Err(_existing) => {
            return Failure::invalid(
                integration::hibob::EMAIL_TAKEN_KEY,
                "An employee with this email already exists in the company",
            )
            .into_response()
        }
    };
    tracing::debug!(employee_id = %employee.id, "sandbox HiBob created an employee");
    if !delay.is_zero() {
        // stored already: a caller that gives up now leaves the employee behind, as with HiBob
        tokio::time::sleep(delay).await;
    }
    if let Some(failure) = failure {
        return injected(failure.status);
    }
    (StatusCode::OK, Json(employee_document(&employee))).into_response()
}

/// The key and message avoid field names on purpose, so the client cannot pin the failure on a
/// field of the create body.
fn injected(status: StatusCode) -> Response {
    Failure::new(
        status,
        "sandbox.injectedFailure",
        "Simulated failure requested through the sandbox controls",
    )
    .into_response()
}

fn validate_create(state: &SimState, body: &Map<String, Value>) -> Result<SimEmployee, Failure> {
    let first_name = check_name(body, "firstName", "First name")?;
    let surname = check_name(body, "surname", "Surname")?;
    let email = match body.get("email") {
        None | Some(Value::Null) => {
            return Err(Failure::invalid(
                "validations.email.required",
                "Email is required",
            ))
        }
        Some(Value::String(s)) if s.trim().is_empty() => {
            return Err(Failure::invalid(
                "validations.email.required",
                "Email is required",
            ))
        }
        Some(Value::String(s)) if is_email(s.trim()) => s.trim().to_owned(),
        Some(other) => {
            return Err(Failure::invalid(
                "validations.email.invalid",
                format!("{} is not a valid email address", short(other)),
            ))
        }
    };
    let work = match body.get("work") {
        None | Some(Value::Null) => None,
        Some(Value::Object(work)) => Some(work),
        Some(_) => {
            return Err(Failure::invalid(
                "validations.work.invalid",
                "work must be an object",
            ))
        }
    };
    let site_value = work.and_then(|w| w.get("site")).filter(|v| !is_blank(v));
    let Some(site_value) = site_value else {
        return Err(Failure::invalid(
            "validations.work.site.required",
            "work.site is required",
        ));
    };
    let site = list_item("work.site", SITE_LIST, site_value)?;
    let start_value = work
        .and_then(|w| w.get("startDate"))
        .filter(|v| !is_blank(v));
    let Some(start_value) = start_value else {
        return Err(Failure::invalid(
            "validations.work.startDate.required",
            "work.startDate is required",
        ));
    };
    let start_date = check_date("work.startDate", start_value)?;
    // the other catalogue fields a create may carry, checked by type
    for field in FIELDS {
        if matches!(field.id, "work.site" | "work.startDate") {
            continue;
        }
        if let Some(value) = value_at(body, field).filter(|v| !v.is_null()) {
            check_field(field, value)?;
        }
    }
    Ok(SimEmployee {
        id: state.new_employee_id(),
        email,
        first_name,
        surname,
        site: site.name.to_owned(),
        start_date,
        body: Value::Object(body.clone()),
        created_at: Utc::now(),
    })
}

fn is_blank(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        _ => false,
    }
}

fn short(value: &Value) -> String {
    let text = match value {
        Value::String(s) => format!("'{s}'"),
        other => other.to_string(),
    };
    text.chars().take(80).collect()
}

fn check_name(body: &Map<String, Value>, key: &str, label: &str) -> Result<String, Failure> {
    let text = match body.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.trim()),
        Some(_) => {
            return Err(Failure::invalid(
                format!("validations.{key}.invalid"),
                format!("{label} must be text"),
            ))
        }
    };
    let Some(text) = text.filter(|t| !t.is_empty()) else {
        return Err(Failure::invalid(
            format!("validations.{key}.required"),
            format!("{label} is required"),
        ));
    };
    if text.chars().count() > MAX_NAME_CHARS {
        return Err(Failure::invalid(
            format!("validations.{key}.maxLength"),
            format!("{label} must be at most {MAX_NAME_CHARS} characters"),
        ));
    }
    if !text
        .chars()
        .all(|c| c.is_alphabetic() || NAME_PUNCTUATION.contains(&c))
    {
        return Err(Failure::invalid(
            format!("validations.{key}.pattern"),
            format!("{label} may contain only letters and ´ ̀ _ - ; , ̩ . / ' ’ \" ( ) `"),
        ));
    }
    Ok(text.to_owned())
}

/// Syntax only, roughly what a form validator accepts: one `@`, a non-empty local part, and a
/// dotted domain of letters, digits and hyphens.
fn is_email(text: &str) -> bool {
    let Some((local, domain)) = text.split_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c));
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        && labels
            .last()
            .is_some_and(|tld| tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic()));
    local_ok && domain_ok
}

fn check_date(path: &str, value: &Value) -> Result<String, Failure> {
    let text = value.as_str().map(str::trim).unwrap_or_default();
    let shaped = text.len() == 10
        && text.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    if shaped && NaiveDate::parse_from_str(text, "%Y-%m-%d").is_ok() {
        return Ok(text.to_owned());
    }
    Err(Failure::invalid(
        format!("validations.{path}.invalid"),
        format!(
            "{path} must be a date in YYYY-MM-DD format, got {}",
            short(value)
        ),
    ))
}

fn list_item(
    path: &str,
    list_name: &str,
    value: &Value,
) -> Result<&'static samples::ItemSpec, Failure> {
    let Some(list) = samples::list(list_name) else {
        return Err(Failure::invalid(
            format!("validations.{path}.invalid"),
            format!("{path}: the list '{list_name}' does not exist"),
        ));
    };
    match list.lookup(value) {
        Some(item) if !item.archived => Ok(item),
        Some(item) => Err(Failure::invalid(
            format!("validations.{path}.invalid"),
            format!(
                "{path}: '{}' is archived in the list '{list_name}'",
                item.name
            ),
        )),
        None => Err(Failure::invalid(
            format!("validations.{path}.invalid"),
            format!(
                "{path}: {} is not an item of the list '{list_name}'",
                short(value)
            ),
        )),
    }
}

/// Where a field's value sits in a create body: `root.` fields at the top level, the rest
/// nested by the dotted id.
fn value_at<'a>(body: &'a Map<String, Value>, field: &FieldSpec) -> Option<&'a Value> {
    let path = field.id.strip_prefix("root.").unwrap_or(field.id);
    let mut segments = path.split('.');
    let mut current = body.get(segments.next()?)?;
    for segment in segments {
        current = current.as_object()?.get(segment)?;
    }
    Some(current)
}

fn check_field(field: &FieldSpec, value: &Value) -> Result<(), Failure> {
    let path = field.id.strip_prefix("root.").unwrap_or(field.id);
    match (field.field_type, field.list) {
        (_, Some(list)) => list_item(path, list, value).map(|_| ()),
        ("date", None) => check_date(path, value).map(|_| ()),
        ("number", None) if !value.is_number() => Err(Failure::invalid(
            format!("validations.{path}.invalid"),
            format!("{path} must be a number"),
        )),
        ("text", None) if !value.is_string() => Err(Failure::invalid(
            format!("validations.{path}.invalid"),
            format!("{path} must be text"),
        )),
        _ => Ok(()),
    }
}

/// The employee as HiBob reads it back: the create body with the computed fields filled in,
/// the site by name with its id beside it.
fn employee_document(employee: &SimEmployee) -> Value {
    let mut doc = employee.body.as_object().cloned().unwrap_or_default();
    let full_name = format!("{} {}", employee.first_name, employee.surname);
    doc.insert("id".into(), json!(employee.id));
    doc.insert("firstName".into(), json!(employee.first_name));
    doc.insert("surname".into(), json!(employee.surname));
    doc.insert("email".into(), json!(employee.email));
    doc.insert("displayName".into(), json!(full_name));
    doc.insert("fullName".into(), json!(full_name));
    doc.insert("companyId".into(), json!(COMPANY_ID));
    doc.insert(
        "creationDateTime".into(),
        json!(employee
            .created_at
            .format("%Y-%m-%dT%H:%M:%S%.6f")
            .to_string()),
    );
    let mut work = doc
        .get("work")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let site_id = samples::list(SITE_LIST)
        .and_then(|l| l.lookup(&json!(employee.site)))
        .map(|i| i.id);
    work.insert("site".into(), json!(employee.site));
    work.insert("siteId".into(), json!(site_id));
    work.insert("startDate".into(), json!(employee.start_date));
    doc.insert("work".into(), Value::Object(work));
    let starts_later = NaiveDate::parse_from_str(&employee.start_date, "%Y-%m-%d")
        .is_ok_and(|d| d > Utc::now().date_naive());
    let mut internal = doc
        .get("internal")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    internal.insert(
        "lifecycleStatus".into(),
        json!(if starts_later { "hired" } else { "employed" }),
    );
    doc.insert("internal".into(), Value::Object(internal));
    Value::Object(doc)
}

/// Keeps only the asked-for fields, the way HiBob does: plain keys nested by path, plus the
/// `/root/...` wrapped form for basics. Unknown ids are silently left out.
fn project(doc: &Value, fields: &[String]) -> Value {
    let mut out = Map::new();
    for field in fields {
        let path = field.strip_prefix("root.").unwrap_or(field);
        let mut current = Some(doc);
        for segment in path.split('.') {
            current = current.and_then(|v| v.get(segment));
        }
        let Some(value) = current else { continue };
        let segments: Vec<&str> = path.split('.').collect();
        insert_nested(&mut out, &segments, value.clone());
        if let Some(name) = field.strip_prefix("root.") {
            out.insert(format!("/root/{name}"), json!({"value": value}));
        }
    }
    Value::Object(out)
}

fn insert_nested(map: &mut Map<String, Value>, segments: &[&str], value: Value) {
    match segments {
        [] => {}
        [last] => {
            map.insert((*last).to_owned(), value);
        }
        [first, rest @ ..] => {
            let entry = map
                .entry((*first).to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            if !entry.is_object() {
                *entry = Value::Object(Map::new());
            }
            if let Value::Object(inner) = entry {
                insert_nested(inner, rest, value);
            }
        }
    }
}

fn requested_fields(body: &Map<String, Value>) -> Result<Option<Vec<String>>, Failure> {
    let Some(fields) = body.get("fields").filter(|f| !f.is_null()) else {
        return Ok(None);
    };
    let list = fields
        .as_array()
        .filter(|l| l.iter().all(Value::is_string))
        .ok_or_else(|| {
            Failure::invalid(
                "validations.fields.invalid",
                "fields must be an array of field ids",
            )
        })?;
    if list.len() > MAX_SEARCH_FIELDS {
        return Err(Failure::invalid(
            "validations.fields.tooMany",
            format!("fields may name at most {MAX_SEARCH_FIELDS} ids"),
        ));
    }
    Ok(Some(
        list.iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
    ))
}

fn shape(employee: &SimEmployee, fields: Option<&[String]>) -> Value {
    let doc = employee_document(employee);
    match fields {
        Some(fields) => project(&doc, fields),
        None => doc,
    }
}

async fn search(State(state): State<SimState>, body: Bytes) -> Response {
    match run_search(&state, &body) {
        Ok(employees) => Json(json!({ "employees": employees })).into_response(),
        Err(failure) => failure.into_response(),
    }
}

fn run_search(state: &SimState, body: &[u8]) -> Result<Vec<Value>, Failure> {
    let body = parse_object(body, true)?;
    let fields = requested_fields(&body)?;
    let filter = match body.get("filters") {
        None | Some(Value::Null) => None,
        Some(Value::Array(filters)) if filters.len() == 1 => Some(read_filter(&filters[0])?),
        Some(Value::Array(filters)) if filters.is_empty() => {
            return Err(Failure::invalid(
                "validations.filters.empty",
                "filters must not be an empty array; omit it to search everyone",
            ))
        }
        Some(Value::Array(_)) => {
            return Err(Failure::invalid(
                "validations.filters.tooMany",
                "Only one filter is supported",
            ))
        }
        Some(_) => {
            return Err(Failure::invalid(
                "validations.filters.invalid",
                "filters must be an array",
            ))
        }
    };
    // every simulated employee is active, so `showInactive` changes nothing; it is still
    // type-checked like the other keys
    if body
        .get("showInactive")
        .is_some_and(|v| !v.is_boolean() && !v.is_null())
    {
        return Err(Failure::invalid(
            "validations.showInactive.invalid",
            "showInactive must be a boolean",
        ));
    }
    Ok(state
        .employees()
        .iter()
        .filter(|e| match &filter {
            None => true,
            Some((FilterField::Id, values)) => values.iter().any(|v| v.trim() == e.id),
            Some((FilterField::Email, values)) => values
                .iter()
                .any(|v| v.trim().eq_ignore_ascii_case(&e.email)),
        })
        .map(|e| shape(e, fields.as_deref()))
        .collect())
}

enum FilterField {
    Id,
    Email,
}

fn read_filter(filter: &Value) -> Result<(FilterField, Vec<String>), Failure> {
    let bad = |message: &str| Failure::invalid("validations.filters.invalid", message);
    let field = match filter.get("fieldPath").and_then(Value::as_str) {
        Some("root.id") => FilterField::Id,
        Some("root.email") => FilterField::Email,
        _ => return Err(bad("filters[0].fieldPath must be root.id or root.email")),
    };
    if filter.get("operator").and_then(Value::as_str) != Some("equals") {
        return Err(bad("filters[0].operator must be equals"));
    }
    let values: Vec<String> = filter
        .get("values")
        .and_then(Value::as_array)
        .filter(|v| !v.is_empty() && v.iter().all(Value::is_string))
        .ok_or_else(|| bad("filters[0].values must be a non-empty array of strings"))?
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect();
    Ok((field, values))
}

/// `POST /people/{identifier}`: the identifier is the employee id or their e-mail.
async fn read_one(
    State(state): State<SimState>,
    Path(identifier): Path<String>,
    body: Bytes,
) -> Response {
    let body = match parse_object(&body, true) {
        Ok(body) => body,
        Err(failure) => return failure.into_response(),
    };
    let fields = match requested_fields(&body) {
        Ok(fields) => fields,
        Err(failure) => return failure.into_response(),
    };
    let wanted = identifier.trim();
    let found = state
        .employees()
        .into_iter()
        .find(|e| e.id == wanted || e.email.eq_ignore_ascii_case(wanted));
    match found {
        Some(employee) => Json(shape(&employee, fields.as_deref())).into_response(),
        None => employee_not_found(wanted),
    }
}

// ---------------------------------------------------------------------------------------------
// Metadata
// ---------------------------------------------------------------------------------------------

async fn people_fields() -> Response {
    Json(samples::fields_json()).into_response()
}

fn include_archived(query: &HashMap<String, String>) -> bool {
    query
        .get("includeArchived")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

async fn named_lists(Query(query): Query<HashMap<String, String>>) -> Response {
    let archived = include_archived(&query);
    Json(Value::Array(
        samples::LISTS.iter().map(|l| l.to_json(archived)).collect(),
    ))
    .into_response()
}

async fn named_list(
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    match samples::list(&name) {
        Some(list) => Json(list.to_json(include_archived(&query))).into_response(),
        None => Failure::new(
            StatusCode::NOT_FOUND,
            "namedList.notFound",
            format!(
                "The list '{}' does not exist",
                name.chars().take(80).collect::<String>()
            ),
        )
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_decodes_with_and_without_padding() {
        assert_eq!(decode_base64("dXNlcjpwYXNz").unwrap(), b"user:pass");
        assert_eq!(decode_base64("YQ==").unwrap(), b"a");
        assert_eq!(decode_base64("YQ").unwrap(), b"a");
        assert_eq!(decode_base64("YWI=").unwrap(), b"ab");
        assert!(decode_base64("a b").is_none());
        assert_eq!(decode_base64("").unwrap(), b"");
    }

    #[test]
    fn emails() {
        for good in [
            "grace.hopper@example.com",
            "a+1@sub.example.co.uk",
            "O'Neil@example.org",
        ] {
            assert!(is_email(good), "{good}");
        }
        for bad in [
            "no-at.example.com",
            "@example.com",
            "a@b",
            "a@@b.com",
            "a b@example.com",
            "a@-x.com",
            "a..b@example.com",
            "a@example.c0m",
        ] {
            assert!(!is_email(bad), "{bad}");
        }
    }

    #[test]
    fn names_follow_the_published_rule() {
        let body = |v: Value| {
            let mut m = Map::new();
            m.insert("firstName".into(), v);
            m
        };
        assert_eq!(
            check_name(&body(json!(" Zoë-Ann O'Brien ")), "firstName", "First name").ok(),
            Some("Zoë-Ann O'Brien".to_owned())
        );
        let key = |v: Value| {
            check_name(&body(v), "firstName", "First name")
                .err()
                .map(|f| f.key)
        };
        assert_eq!(
            key(json!("R2D2")).as_deref(),
            Some("validations.firstName.pattern")
        );
        assert_eq!(
            key(json!("   ")).as_deref(),
            Some("validations.firstName.required")
        );
        assert_eq!(
            key(json!(null)).as_deref(),
            Some("validations.firstName.required")
        );
        assert_eq!(
            key(json!(7)).as_deref(),
            Some("validations.firstName.invalid")
        );
        assert_eq!(
            key(json!("a".repeat(51))).as_deref(),
            Some("validations.firstName.maxLength")
        );
    }

    #[test]
    fn dates_must_be_iso_days() {
        assert!(check_date("work.startDate", &json!("2026-02-02")).is_ok());
        for bad in [
            json!("2026-2-2"),
            json!("02/02/2026"),
            json!("2026-02-30"),
            json!("2026-02-02T00:00:00Z"),
            json!(20260202),
        ] {
            assert!(check_date("work.startDate", &bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn our_keys_map_back_to_their_fields() {
        use integration::hibob::field_for_error;
        for (key, field) in [
            ("validations.firstName.required", "firstName"),
            ("validations.surname.pattern", "surname"),
            ("validations.email.invalid", "email"),
            ("validations.work.site.invalid", "work.site"),
            ("validations.work.site.required", "work.site"),
            ("validations.work.startDate.invalid", "work.startDate"),
            ("validations.work.department.invalid", "work.department"),
            (
                "validations.payroll.employment.type.invalid",
                "payroll.employment.type",
            ),
        ] {
            assert_eq!(
                field_for_error(Some(key), "anything").as_deref(),
                Some(field),
                "{key}"
            );
        }
        assert_eq!(
            field_for_error(
                Some("sandbox.injectedFailure"),
                "Simulated failure requested through the sandbox controls"
            ),
            None
        );
    }

    #[test]
    fn projection_keeps_what_was_asked() {
        let doc = json!({"id": "1", "email": "a@b.co", "work": {"site": "London", "startDate": "2026-01-01"}});
        let out = project(
            &doc,
            &[
                "root.id".into(),
                "root.email".into(),
                "work.site".into(),
                "work.nothing".into(),
            ],
        );
        assert_eq!(
            out,
            json!({
                "id": "1", "/root/id": {"value": "1"},
                "email": "a@b.co", "/root/email": {"value": "a@b.co"},
                "work": {"site": "London"}
            })
        );
    }
}

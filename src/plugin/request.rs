//! What every plugin call must carry: the shared token, and a body of the structure the contract
//! describes (the lenient parser would read a wrong one as empty).

use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::form::{
    F_DEPARTMENT, F_EMAIL, F_EMPLOYMENT_TYPE, F_FIRST_NAME, F_LAST_NAME, F_SITE, F_START_DATE,
    F_TITLE,
};
use crate::pinpoint::plugin_contract::PluginRequest;

/// The configuration value Pinpoint may carry the token in, beside the header.
pub const TOKEN_CONFIG_KEY: &str = "pluginToken";

/// Fields whose submitted value must be text; anything else is a malformed request.
const TEXT_FIELDS: [&str; 8] = [
    F_FIRST_NAME,
    F_LAST_NAME,
    F_EMAIL,
    F_START_DATE,
    F_SITE,
    F_DEPARTMENT,
    F_TITLE,
    F_EMPLOYMENT_TYPE,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No token is configured, so no call can be trusted yet (answered 503: the console is not
    /// ready, not the caller wrong).
    #[error("the plugin token is not configured yet: set PLUGIN_TOKEN or the Plugin token under Settings in the console")]
    NotConfigured,
    /// Missing or wrong token (answered 401).
    #[error("missing or wrong plugin token: send the token from the console's Settings as the X-Plugin-Token header or the pluginToken configuration value")]
    Refused,
    /// The configured token could not be read (answered 503 so Pinpoint's user tries later).
    #[error("the console could not read its plugin token; try again shortly")]
    Unavailable,
}

/// Both sides are hashed first so the comparison takes the same time whatever the lengths, and
/// then compared without early exit.
fn same_secret(presented: &str, expected: &str) -> bool {
    let a = Sha256::digest(presented.as_bytes());
    let b = Sha256::digest(expected.as_bytes());
    bool::from(a.as_slice().ct_eq(b.as_slice()))
}

/// Accepts the call when any presented token (header or configuration value) matches; both are
/// always compared so the timing does not say which one was checked.
pub fn check_token(
    expected: Option<&str>,
    header: Option<&str>,
    req: &PluginRequest,
) -> Result<(), AuthError> {
    let Some(expected) = expected.map(str::trim).filter(|t| !t.is_empty()) else {
        return Err(AuthError::NotConfigured);
    };
    let candidates = [
        header.map(str::trim).filter(|t| !t.is_empty()),
        req.config_value(TOKEN_CONFIG_KEY),
    ];
    let mut matched = false;
    for candidate in candidates.into_iter().flatten() {
        matched |= same_secret(candidate, expected);
    }
    if matched {
        Ok(())
    } else {
        Err(AuthError::Refused)
    }
}

// ---------------------------------------------------------------------------------------------
// Request shape
// ---------------------------------------------------------------------------------------------

/// A request Pinpoint could not have meant: answered 4xx with this message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct BadRequest {
    pub message: String,
}

impl BadRequest {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The structure every plugin call must have. The contract parser is lenient and would quietly
/// read a wrong structure as an empty request; this says what is wrong instead.
pub fn check_shape(req: &PluginRequest) -> Result<(), BadRequest> {
    let map = match &req.raw {
        Value::Null => return Ok(()),
        Value::Object(map) => map,
        other => {
            return Err(BadRequest::new(format!(
                "the body must be a JSON object, not {}",
                kind(other)
            )))
        }
    };
    for key in ["formFields", "configurationValues"] {
        match map.get(key) {
            None | Some(Value::Null) | Some(Value::Object(_)) => {}
            Some(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    let keyed = item
                        .get("key")
                        .is_some_and(|k| k.is_string() || k.is_number());
                    if !keyed {
                        return Err(BadRequest::new(format!(
                            "{key}[{i}] must be an object with a \"key\" and a \"value\", not {}",
                            kind(item)
                        )));
                    }
                }
            }
            Some(other) => {
                return Err(BadRequest::new(format!(
                    "{key} must be an array of {{\"key\", \"value\"}} objects, not {}",
                    kind(other)
                )))
            }
        }
    }
    Ok(())
}

pub(crate) fn check_submit_shape(req: &PluginRequest) -> Result<(), BadRequest> {
    check_shape(req)?;
    if req.raw.is_null() {
        return Err(BadRequest::new(
            "the body is empty: a submit must be a JSON object carrying formFields",
        ));
    }
    let has_fields = req
        .raw
        .get("formFields")
        .is_some_and(|f| f.is_array() || f.is_object());
    if !has_fields {
        return Err(BadRequest::new(
            "formFields is missing: a submit must carry the form's values",
        ));
    }
    for key in TEXT_FIELDS {
        if let Some(value) = req.form_value(key) {
            if value.is_array() || value.is_object() {
                return Err(BadRequest::new(format!(
                    "formFields \"{key}\" must be text, not {}",
                    kind(value)
                )));
            }
        }
    }
    Ok(())
}

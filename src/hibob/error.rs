//! How HiBob's answers become typed errors, and which create-body field an error is about.

use std::time::Duration;

use serde_json::Value;

use crate::outbound::{Failure, Reply};

/// The key HiBob answers with when the work e-mail is already used by someone in the company.
pub const EMAIL_TAKEN_KEY: &str = "validations.email.alreadyexists";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HibobError {
    /// 401/403. Never retried: HiBob's WAF blocks a credential after ~50 such answers in 10 s.
    #[error("HiBob refused the service user (HTTP {status}): {message}")]
    Unauthorized { status: u16, message: String },
    #[error("HiBob rate limit reached; try again in {} s", wait.as_secs())]
    RateLimited { wait: Duration },
    /// The request itself is wrong (400, 404, 409, 422, …). Resending it unchanged cannot help.
    #[error("HiBob rejected the request (HTTP {status}{}): {message}", key.as_deref().map(|k| format!(", {k}")).unwrap_or_default())]
    Rejected {
        status: u16,
        key: Option<String>,
        message: String,
        /// The create-body path the error is about (`email`, `work.site`, …), when it says.
        field: Option<String>,
    },
    #[error("HiBob had a server error (HTTP {status}): {message}")]
    Server { status: u16, message: String },
    #[error("HiBob did not answer in time")]
    Timeout,
    #[error("{0}")]
    Transport(String),
    /// Not sent: HiBob's address is private or local and the operator did not allow that.
    /// Never retried: the setting (or the name's DNS) must change first.
    #[error("{0}")]
    Destination(String),
    #[error("HiBob's answer could not be read: {0}")]
    Decode(String),
    #[error("the file is larger than HiBob accepts ({limit} bytes)")]
    TooLarge { limit: usize },
}

impl HibobError {
    /// Whether the caller's queue may try the same call again later.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Server { .. } | Self::RateLimited { .. } | Self::Timeout | Self::Transport(_)
        )
    }

    /// The wait HiBob asked for; `None` leaves the backoff to the caller.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { wait } => Some(*wait),
            _ => None,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Unauthorized { status, .. }
            | Self::Rejected { status, .. }
            | Self::Server { status, .. } => Some(*status),
            Self::RateLimited { .. } => Some(429),
            _ => None,
        }
    }

    pub fn key(&self) -> Option<&str> {
        match self {
            Self::Rejected { key, .. } => key.as_deref(),
            _ => None,
        }
    }

    pub fn field(&self) -> Option<&str> {
        match self {
            Self::Rejected { field, .. } => field.as_deref(),
            _ => None,
        }
    }

    /// The duplicate-e-mail answer to a create, after which the caller should look the person
    /// up by e-mail instead of failing the export.
    pub fn is_email_taken(&self) -> bool {
        matches!(self, Self::Rejected { key: Some(k), .. } if k.eq_ignore_ascii_case(EMAIL_TAKEN_KEY))
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Rejected { status: 404, .. })
    }
}

/// Maps a transport outcome that did not produce a usable response.
pub(crate) fn from_failure(failure: Failure) -> HibobError {
    match failure {
        Failure::Timeout => HibobError::Timeout,
        Failure::Transport(message) => HibobError::Transport(message),
        Failure::Refused(message) => HibobError::Destination(message),
        Failure::BodyTooLarge { limit } => {
            HibobError::Decode(format!("the response is larger than {limit} bytes"))
        }
        Failure::Paced { wait } => HibobError::RateLimited { wait },
    }
}

/// Maps a non-2xx response.
pub(crate) fn from_reply(reply: &Reply) -> HibobError {
    let status = reply.status;
    let text = reply.text();
    let (key, message) = parse_error_body(&text);
    match status {
        401 => HibobError::Unauthorized {
            status,
            message: message.unwrap_or_else(|| {
                "the service user ID or token is wrong, or the service user was deleted".to_owned()
            }),
        },
        403 => HibobError::Unauthorized {
            status,
            message: message.unwrap_or_else(|| {
                "the service user's permission group does not allow this action".to_owned()
            }),
        },
        429 => HibobError::RateLimited {
            wait: reply.rate_limit_wait(),
        },
        500..=599 => HibobError::Server {
            status,
            message: message.unwrap_or_else(|| format!("HTTP {status} without details")),
        },
        300..=399 => HibobError::Rejected {
            status,
            key,
            message: "HiBob answered with a redirect, which is not followed: check the base URL \
                      (https://api.hibob.com/v1 or https://api.sandbox.hibob.com/v1)"
                .to_owned(),
            field: None,
        },
        _ => {
            let message = message.unwrap_or_else(|| format!("HTTP {status} without details"));
            let field = field_for_error(key.as_deref(), &message);
            HibobError::Rejected {
                status,
                key,
                message,
                field,
            }
        }
    }
}

/// A 2xx whose body is not what the endpoint documents.
pub(crate) fn decode_error(what: &str, err: impl std::fmt::Display) -> HibobError {
    HibobError::Decode(format!("{what}: {err}"))
}

/// Reads HiBob's `{"key","error"}` body, tolerating the richer `message`/`errors` shapes some
/// modules use and bodies that are not JSON at all.
pub(crate) fn parse_error_body(text: &str) -> (Option<String>, Option<String>) {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return (None, None);
    }
    if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(trimmed) {
        let get = |name: &str| {
            map.get(name)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let key = get("key").or_else(|| get("code"));
        let message = get("error")
            .or_else(|| get("message"))
            .or_else(|| get("detail"))
            .or_else(|| {
                map.get("errors").and_then(Value::as_array).map(|errors| {
                    errors
                        .iter()
                        .filter_map(|e| {
                            e.as_str().map(str::to_owned).or_else(|| {
                                e.get("message")
                                    .or_else(|| e.get("error"))
                                    .and_then(Value::as_str)
                                    .map(str::to_owned)
                            })
                        })
                        .collect::<Vec<_>>()
                        .join("; ")
                })
            })
            .filter(|m| !m.is_empty());
        let key = key.or_else(|| message.as_deref().and_then(validation_token));
        let message = message.or_else(|| key.clone());
        return (key, message);
    }
    // not JSON: keep a short excerpt, and still find a validation key inside it
    let key = validation_token(trimmed);
    let excerpt: String = trimmed.chars().take(300).collect();
    (key, Some(excerpt))
}

/// The first `validations.…` token in free text.
fn validation_token(text: &str) -> Option<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '_'))
        .map(|t| t.trim_matches('.'))
        .find(|t| {
            t.len() > "validations.".len() && t.to_ascii_lowercase().starts_with("validations.")
        })
        .map(str::to_owned)
}

/// Top-level names of HiBob's field categories, which is how a dotted token is recognised as a
/// field path rather than, say, the domain of an e-mail address.
const CATEGORIES: &[&str] = &[
    "root",
    "about",
    "work",
    "personal",
    "home",
    "address",
    "employment",
    "payroll",
    "internal",
    "custom",
    "financial",
    "identification",
];

/// Words that sometimes follow `validations.` but do not name a field.
const NOT_FIELDS: &[&str] = &[
    "request",
    "body",
    "json",
    "field",
    "fields",
    "input",
    "value",
    "values",
    "data",
    "employee",
    "employees",
    "people",
    "person",
    "general",
    "unknown",
];

/// Which create-body path (`email`, `firstName`, `work.site`, `work.custom.field_1`, …) an
/// error is about.
///
/// HiBob publishes no catalogue of validation keys; the only one evidenced is
/// `validations.email.alreadyexists`. So the key is read as `validations.<field path>.<reason>`,
/// and when it names nothing the message is searched for a field path (`work.site`,
/// `/work/startDate`) and then for the few field words a create can get wrong (site, start
/// date, e-mail, names, department, title).
pub fn field_for_error(key: Option<&str>, message: &str) -> Option<String> {
    key.and_then(field_from_key)
        .or_else(|| field_from_text(message))
        .or_else(|| key.and_then(field_from_text))
}

fn field_from_key(key: &str) -> Option<String> {
    let lower = key.to_ascii_lowercase();
    let rest = if lower.starts_with("validations.") {
        &key["validations.".len()..]
    } else if lower.starts_with("validation.") {
        &key["validation.".len()..]
    } else {
        let first = key.split('.').next().unwrap_or_default();
        if !CATEGORIES.contains(&first) {
            return None;
        }
        key
    };
    let segments: Vec<&str> = rest.split('.').collect();
    if segments.is_empty() || segments.iter().any(|s| !is_identifier(s)) {
        return None;
    }
    let n = segments.len();
    let keep = if CATEGORIES.contains(&segments[0]) {
        // `work.site.invalid`: a trailing lower-case word after a full path is the reason
        if n >= 3 && segments[n - 1].bytes().all(|b| b.is_ascii_lowercase()) {
            n - 1
        } else {
            n
        }
    } else if n >= 2 {
        // `email.alreadyexists`
        n - 1
    } else {
        n
    };
    let path = segments[..keep].join(".");
    if NOT_FIELDS.contains(&path.to_ascii_lowercase().as_str()) {
        return None;
    }
    Some(normalise(&path))
}

fn field_from_text(text: &str) -> Option<String> {
    let tokens: Vec<&str> = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '/' | '_' | '-')))
        .map(|t| t.trim_matches(|c| matches!(c, '.' | '/' | '-')))
        .filter(|t| !t.is_empty())
        .collect();
    // an explicit path wins over a loose word
    for token in &tokens {
        if token.to_ascii_lowercase().starts_with("validations.") {
            if let Some(field) = field_from_key(token) {
                return Some(field);
            }
            continue;
        }
        if token.contains(['.', '/']) {
            let path = token.replace('/', ".");
            let segments: Vec<&str> = path.split('.').collect();
            if segments.len() >= 2
                && segments.iter().all(|s| is_identifier(s))
                && CATEGORIES.contains(&segments[0])
            {
                return Some(normalise(&path));
            }
        }
    }
    let words: Vec<String> = tokens
        .iter()
        .flat_map(|t| t.split(['.', '/', '_']))
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    for (i, word) in words.iter().enumerate() {
        let next = words.get(i + 1).map(String::as_str);
        let field = match (word.as_str(), next) {
            ("site" | "sites" | "siteid", _) => "work.site",
            ("startdate", _) | ("start", Some("date")) => "work.startDate",
            ("email" | "e-mail" | "emails" | "mail", _) => "email",
            ("firstname", _) | ("first", Some("name")) => "firstName",
            ("surname" | "lastname", _) | ("last", Some("name")) => "surname",
            ("department", _) => "work.department",
            ("title", _) => "work.title",
            _ => continue,
        };
        return Some(field.to_owned());
    }
    None
}

fn is_identifier(segment: &str) -> bool {
    let mut chars = segment.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Spells a path the way the create body nests it: `root.` fields sit at the top level, and the
/// bare names HiBob uses in keys map to their full path.
fn normalise(path: &str) -> String {
    let path = path.strip_prefix("root.").unwrap_or(path);
    match path.to_ascii_lowercase().as_str() {
        "site" | "siteid" => "work.site".to_owned(),
        "startdate" => "work.startDate".to_owned(),
        "department" => "work.department".to_owned(),
        "title" => "work.title".to_owned(),
        "email" | "e-mail" | "mail" => "email".to_owned(),
        "firstname" => "firstName".to_owned(),
        "surname" | "lastname" => "surname".to_owned(),
        _ => path.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(key: Option<&str>, message: &str) -> Option<String> {
        field_for_error(key, message)
    }

    #[test]
    fn keys_name_their_field() {
        assert_eq!(
            field(Some(EMAIL_TAKEN_KEY), "Email already exists").as_deref(),
            Some("email")
        );
        assert_eq!(
            field(Some("validations.work.site.invalid"), "").as_deref(),
            Some("work.site")
        );
        assert_eq!(
            field(Some("validations.site.notFound"), "").as_deref(),
            Some("work.site")
        );
        assert_eq!(
            field(Some("validations.firstName.pattern"), "").as_deref(),
            Some("firstName")
        );
        assert_eq!(
            field(
                Some("validations.work.custom.field_1680187492413.invalid"),
                ""
            )
            .as_deref(),
            Some("work.custom.field_1680187492413")
        );
        assert_eq!(field(Some("root.email"), "").as_deref(), Some("email"));
        assert_eq!(
            field(Some("validations.startDate.format"), "").as_deref(),
            Some("work.startDate")
        );
    }

    #[test]
    fn messages_name_their_field_when_keys_do_not() {
        assert_eq!(
            field(
                Some("validations.request.invalid"),
                "Invalid value for work.site: Londn"
            )
            .as_deref(),
            Some("work.site")
        );
        assert_eq!(
            field(None, "Site 'Londn' does not exist").as_deref(),
            Some("work.site")
        );
        assert_eq!(
            field(Some("bad.request"), "Field /work/startDate must be a date").as_deref(),
            Some("work.startDate")
        );
        assert_eq!(
            field(None, "Invalid start date 2026-13-01").as_deref(),
            Some("work.startDate")
        );
        assert_eq!(
            field(None, "grace.hopper@example.com is not a valid e-mail").as_deref(),
            Some("email")
        );
        assert_eq!(
            field(None, "Last name is too long").as_deref(),
            Some("surname")
        );
        assert_eq!(
            field(None, "Unknown field custom.category_1.field_2").as_deref(),
            Some("custom.category_1.field_2")
        );
    }

    #[test]
    fn unrelated_text_names_nothing() {
        assert_eq!(field(None, "Something went wrong"), None);
        assert_eq!(field(None, "Our website is down"), None);
        assert_eq!(field(Some("general.error"), "Please contact support"), None);
        assert_eq!(field(Some("validations.request.invalid"), "Bad JSON"), None);
    }

    #[test]
    fn error_bodies_are_read_in_every_shape() {
        assert_eq!(
            parse_error_body(r#"{"key":"validations.email.alreadyexists","error":"Email exists"}"#),
            (
                Some(EMAIL_TAKEN_KEY.to_owned()),
                Some("Email exists".to_owned())
            )
        );
        assert_eq!(
            parse_error_body(r#"{"statusCode":400,"message":"Bad site","timestamp":"x"}"#),
            (None, Some("Bad site".to_owned()))
        );
        assert_eq!(
            parse_error_body("Bad Request: validations.email.alreadyexists."),
            (
                Some(EMAIL_TAKEN_KEY.to_owned()),
                Some("Bad Request: validations.email.alreadyexists.".to_owned())
            )
        );
        assert_eq!(parse_error_body("  "), (None, None));
        assert_eq!(
            parse_error_body(r#"{"key":"only.key"}"#),
            (Some("only.key".to_owned()), Some("only.key".to_owned()))
        );
    }

    #[test]
    fn retry_classification() {
        assert!(HibobError::Timeout.is_retryable());
        assert!(HibobError::Transport("x".into()).is_retryable());
        assert!(HibobError::Server {
            status: 502,
            message: String::new()
        }
        .is_retryable());
        let limited = HibobError::RateLimited {
            wait: Duration::from_secs(9),
        };
        assert!(limited.is_retryable());
        assert_eq!(limited.retry_after(), Some(Duration::from_secs(9)));
        assert!(!HibobError::Unauthorized {
            status: 401,
            message: String::new()
        }
        .is_retryable());
        assert!(!HibobError::TooLarge { limit: 1 }.is_retryable());
        assert!(!HibobError::Decode("x".into()).is_retryable());
        let dup = HibobError::Rejected {
            status: 400,
            key: Some(EMAIL_TAKEN_KEY.into()),
            message: "exists".into(),
            field: Some("email".into()),
        };
        assert!(!dup.is_retryable());
        assert!(dup.is_email_taken());
        assert_eq!(dup.retry_after(), None);
        assert_eq!(
            dup.to_string(),
            "HiBob rejected the request (HTTP 400, validations.email.alreadyexists): exists"
        );
    }
}

//! Filter inputs shared by the console's lists (exports, webhook deliveries, audit): date ranges
//! typed as days and free-text search terms, checked once with messages a person can act on.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// Longest search text accepted. Every searched value (names, emails, ids, reasons) is shorter,
/// so a longer term could only ever match nothing, slowly.
pub const MAX_SEARCH_CHARS: usize = 200;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum FilterError {
    #[error("The search text is {chars} characters long; use at most {MAX_SEARCH_CHARS}.")]
    SearchTooLong { chars: usize },
    #[error("The {field} date {value:?} is not a date; use the form YYYY-MM-DD, e.g. 2026-11-22.")]
    BadDate { field: &'static str, value: String },
    #[error("The from date ({from}) is after the to date ({to}).")]
    Reversed { from: String, to: String },
    #[error("{0}")]
    Unknown(String),
}

/// An inclusive range of whole days in UTC, as the stored text bounds it:
/// `start <= at < end_exclusive`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DateRange {
    pub start: Option<String>,
    pub end_exclusive: Option<String>,
}

impl DateRange {
    /// Parses the two optional day inputs of a filter form (blank means open-ended).
    pub fn parse(from: Option<&str>, to: Option<&str>) -> Result<Self, FilterError> {
        let day =
            |field: &'static str, value: Option<&str>| -> Result<Option<NaiveDate>, FilterError> {
                match value.map(str::trim).filter(|v| !v.is_empty()) {
                    None => Ok(None),
                    Some(v) => NaiveDate::parse_from_str(v, "%Y-%m-%d")
                        .ok()
                        .filter(|d| (2000..=9998).contains(&chrono::Datelike::year(d)))
                        .map(Some)
                        .ok_or_else(|| FilterError::BadDate {
                            field,
                            value: v.chars().take(40).collect(),
                        }),
                }
            };
        let from = day("from", from)?;
        let to = day("to", to)?;
        if let (Some(f), Some(t)) = (from, to) {
            if f > t {
                return Err(FilterError::Reversed {
                    from: f.to_string(),
                    to: t.to_string(),
                });
            }
        }
        let stored = |d: NaiveDate| format!("{}T00:00:00.000Z", d.format("%Y-%m-%d"));
        Ok(Self {
            start: from.map(stored),
            end_exclusive: to.and_then(|t| t.succ_opt()).map(stored),
        })
    }

    pub fn is_open(&self) -> bool {
        self.start.is_none() && self.end_exclusive.is_none()
    }
}

/// The trimmed search text, `None` when blank; refused when longer than [`MAX_SEARCH_CHARS`].
/// Control characters cannot be typed into a search box and no searched value holds one, and
/// SQLite's full-text index takes a NUL for the end of its query; so line breaks and tabs
/// become spaces and the others are dropped.
pub fn search_term(text: Option<&str>) -> Result<Option<String>, FilterError> {
    let cleaned: Option<String> = text.map(|t| {
        t.chars()
            .filter_map(|c| match c {
                c if !c.is_control() => Some(c),
                c if c.is_whitespace() => Some(' '),
                _ => None,
            })
            .collect()
    });
    match cleaned.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(t) => {
            let chars = t.chars().count();
            if chars > MAX_SEARCH_CHARS {
                Err(FilterError::SearchTooLong { chars })
            } else {
                Ok(Some(t.to_owned()))
            }
        }
    }
}

/// `text` with LIKE's wildcards and the escape character escaped, for patterns built around it
/// (use with `ESCAPE '\'`).
pub fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A value chosen from a fixed list (a status, a source); blank means any, anything else is an
/// error naming the choices.
pub fn choice(
    what: &str,
    value: Option<&str>,
    allowed: &[&'static str],
) -> Result<Option<&'static str>, FilterError> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => allowed
            .iter()
            .find(|a| **a == v)
            .copied()
            .map(Some)
            .ok_or_else(|| {
                FilterError::Unknown(format!(
                    "Unknown {what} {:?}; choose one of: {}.",
                    v.chars().take(40).collect::<String>(),
                    allowed.join(", ")
                ))
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_leave_the_search_text() {
        assert_eq!(
            search_term(Some("Love\0lace")).unwrap().as_deref(),
            Some("Lovelace")
        );
        assert_eq!(
            search_term(Some("\tada\r\nlove\u{1}lace\u{7f} "))
                .unwrap()
                .as_deref(),
            Some("ada  lovelace")
        );
        assert_eq!(search_term(Some("\0\0")).unwrap(), None);
    }

    #[test]
    fn days_become_inclusive_stored_bounds() {
        let r = DateRange::parse(Some("2026-11-01"), Some(" 2026-11-30 ")).unwrap();
        assert_eq!(r.start.as_deref(), Some("2026-11-01T00:00:00.000Z"));
        assert_eq!(r.end_exclusive.as_deref(), Some("2026-12-01T00:00:00.000Z"));
        assert!(DateRange::parse(None, Some("")).unwrap().is_open());
        let same_day = DateRange::parse(Some("2026-02-28"), Some("2026-02-28")).unwrap();
        assert_eq!(
            same_day.end_exclusive.as_deref(),
            Some("2026-03-01T00:00:00.000Z")
        );
    }

    #[test]
    fn bad_and_reversed_dates_are_explained() {
        let err = DateRange::parse(Some("22/11/2026"), None).unwrap_err();
        assert!(err.to_string().contains("YYYY-MM-DD"), "{err}");
        assert!(DateRange::parse(Some("2026-02-30"), None).is_err());
        assert!(DateRange::parse(Some("0001-01-01"), None).is_err());
        assert!(DateRange::parse(None, Some("'; DROP TABLE x")).is_err());
        let err = DateRange::parse(Some("2026-12-01"), Some("2026-11-01")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "The from date (2026-12-01) is after the to date (2026-11-01)."
        );
    }

    #[test]
    fn search_terms_are_trimmed_and_capped() {
        assert_eq!(search_term(Some("  ")).unwrap(), None);
        assert_eq!(search_term(Some(" a%b ")).unwrap().as_deref(), Some("a%b"));
        assert!(search_term(Some(&"é".repeat(MAX_SEARCH_CHARS))).is_ok());
        let err = search_term(Some(&"x".repeat(10_240))).unwrap_err();
        assert_eq!(err, FilterError::SearchTooLong { chars: 10_240 });
        assert!(err.to_string().contains("at most 200"));
    }

    #[test]
    fn like_escapes_are_literal() {
        assert_eq!(escape_like("50%_a\\"), "50\\%\\_a\\\\");
    }

    #[test]
    fn choices_name_the_alternatives() {
        assert_eq!(choice("status", Some(""), &["a", "b"]).unwrap(), None);
        assert_eq!(choice("status", Some("b"), &["a", "b"]).unwrap(), Some("b"));
        let err = choice("status", Some("c"), &["a", "b"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Unknown status \"c\"; choose one of: a, b."
        );
    }
}

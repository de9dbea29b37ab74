//! Keeping HiBob in step after the export. Between "hired" and the first day, start dates move,
//! offers change, names are corrected and hires fall through; an export that forgot the hire the
//! moment it succeeded would leave HiBob with the day-of-hire record and nobody told.
//!
//! So each exported hire is watched until a while after its start date (`WATCH_DAYS_AFTER_START`,
//! a setting): on a paced schedule, and at once when Pinpoint delivers `application_hired` again
//! for it, the application is read again, rendered with the mapping version the export used, and
//! the same fields of the HiBob employee are read back. A field is a *change* when the mapping now
//! makes something else of the application than it did at the export (or when the change was last
//! settled) and HiBob does not already hold the new value.
//!
//! Decisions, written down here because the sources are silent:
//! - HiBob's own value is only overwritten when a person asks, after seeing it: a field whose value
//!   in HiBob is not what the console sent (someone changed it there by hand), or that HiBob does
//!   not let the service user read, is never applied by the automatic policy, and applying it by
//!   hand needs a second, explicit confirmation.
//! - A value emptied in Pinpoint is not a change: an empty field is far more often missing data
//!   than a deliberate clearing, and clearing HiBob fields is not this console's call.
//! - Title, department, site and manager live in HiBob's work-history table, where a new entry on
//!   the start date would conflict with the one the create made: the entry in force at the start
//!   is read, changed and written back whole (HiBob's update clears what it is not sent). The work
//!   e-mail (HiBob's login, whose change sends the person new sign-in mail) and other table-kept
//!   fields are shown but changed in HiBob by hand.
//! - Pinpoint does not document how an application that is no longer hired looks. It counts as
//!   fallen through when the application is gone (404), carries a rejection, withdrawal or archive
//!   date or status, sits in a stage whose name does not mention hiring, or every offer on it was
//!   withdrawn or declined. The console then asks for a decision; it never terminates anyone.
//! - Exports that finished before watching existed kept no copy of what they sent, and are not
//!   watched.

pub mod apply;
pub mod check;
pub mod storage;
pub mod store;

pub use storage::{Settled, WatchStore};

use chrono::{Duration as Days, NaiveDate};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{hibob::schema as hibob_schema, pinpoint::Application};

/// Days after the start date a hire is still watched, unless the setting says otherwise.
pub const DEFAULT_DAYS_AFTER_START: i64 = 14;
/// How long a hire without a known start date is watched, from its export.
pub const UNKNOWN_START_DAYS: i64 = 90;
/// The field moved with HiBob's own start-date operation rather than the employee update.
pub const START_DATE_FIELD: &str = "work.startDate";

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("{0}")]
    NotWatched(String),
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Unavailable(String),
}

/// How a change reaches HiBob.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Route {
    /// `POST /employees/{id}/start-date`.
    StartDate,
    /// `PUT /people/{id}`.
    Field,
    /// The entry of HiBob's work-history table in force at the start: read, changed, written
    /// back whole (`PUT /people/{id}/work/{entry_id}`).
    WorkEntry,
    /// Changed in HiBob by a person (see the module's decisions).
    ByHand,
}

/// One field the application and HiBob now disagree on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// HiBob's field id.
    pub field: String,
    pub label: String,
    /// What the export sent, as text.
    pub sent: String,
    /// What the mapping makes of the application now, as text.
    pub pinpoint: String,
    /// What HiBob holds now, or `None` when the service user cannot read it.
    pub hibob: Option<String>,
    /// HiBob holds something other than what was sent: someone changed it there.
    pub edited_in_hibob: bool,
    pub route: Route,
    /// The value to send, encoded for HiBob.
    pub value: Value,
}

impl Change {
    /// Whether the automatic policy may apply it: HiBob still holds exactly what was sent.
    pub fn safe_to_apply(&self) -> bool {
        self.route != Route::ByHand && self.hibob.is_some() && !self.edited_in_hibob
    }
}

/// A mapped field as the mapping renders the application now.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldNow {
    pub field: String,
    pub label: String,
    /// The encoded value, `None` when the field is left out (or cannot be built).
    pub value: Option<Value>,
    /// Kept in HiBob's work-history table.
    pub historical: bool,
}

/// What a comparison found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Comparison {
    pub changes: Vec<Change>,
    /// Fields whose new value HiBob already holds: settled without a word.
    pub settled: Vec<(String, Value)>,
}

/// The text of a value for comparing and showing: list items by id or name, dates as ISO days,
/// blanks as empty.
pub fn value_text(value: Option<&Value>) -> String {
    let text = match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.trim().to_owned(),
        Some(Value::Object(o)) => {
            return value_text(
                o.get("id")
                    .or_else(|| o.get("value"))
                    .or_else(|| o.get("name")),
            )
        }
        Some(other) => other.to_string(),
    };
    match crate::dates::normalise_date(&text) {
        Some(day) if text.len() <= 10 => day,
        _ => text,
    }
}

fn same(a: Option<&Value>, b: Option<&Value>) -> bool {
    value_text(a).to_lowercase() == value_text(b).to_lowercase()
}

fn route_of(field: &FieldNow) -> Route {
    let id = hibob_schema::canonical_id(&field.field);
    if id == hibob_schema::canonical_id(START_DATE_FIELD) {
        Route::StartDate
    } else if id == "email" {
        Route::ByHand
    } else if work_column(id).is_some() {
        Route::WorkEntry
    } else if field.historical {
        Route::ByHand
    } else {
        Route::Field
    }
}

/// The column of a work-history entry a field lives in, for the fields the entry's update
/// documents (a custom column is changed in HiBob by hand).
pub fn work_column(field: &str) -> Option<&'static str> {
    match hibob_schema::canonical_id(field) {
        "work.title" => Some("title"),
        "work.department" => Some("department"),
        "work.site" => Some("site"),
        "work.reportsTo" => Some("reportsTo"),
        _ => None,
    }
}

/// The work-history entry in force on `start` (the latest that starts by then), or, for a start
/// before every entry or unknown, the one HiBob marks current, else the earliest.
pub fn entry_in_force<'a>(entries: &'a [Value], start: Option<&str>) -> Option<&'a Value> {
    let day = |e: &Value| {
        e.get("effectiveDate")
            .and_then(Value::as_str)
            .and_then(crate::dates::parse_date)
    };
    let start = start.and_then(crate::dates::parse_date);
    let dated = entries.iter().filter(|e| day(e).is_some());
    let by_start = start.and_then(|s| {
        dated
            .clone()
            .filter(|e| day(e).is_some_and(|d| d <= s))
            .max_by_key(|e| day(e))
    });
    by_start
        .or_else(|| {
            entries
                .iter()
                .find(|e| e.get("isCurrent").and_then(Value::as_bool) == Some(true))
        })
        .or_else(|| dated.min_by_key(|e| day(e)))
}

/// The whole entry to write back with `changes` in it, and its id: every column HiBob's update
/// takes is copied from the entry as read (it clears what is left out), then the changes go in.
pub fn work_entry_body(entry: &Value, changes: &[&Change], reason: &str) -> Option<(i64, Value)> {
    let id = entry.get("id").and_then(|v| {
        v.as_i64()
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
    })?;
    let mut body = Map::new();
    for key in [
        "effectiveDate",
        "title",
        "department",
        "site",
        "siteId",
        "customColumns",
    ] {
        if let Some(v) = entry.get(key).filter(|v| !v.is_null()) {
            body.insert(key.to_owned(), v.clone());
        }
    }
    if let Some(manager) = entry
        .get("reportsTo")
        .and_then(|r| r.get("id"))
        .filter(|v| !v.is_null())
    {
        body.insert("reportsTo".into(), serde_json::json!({ "id": manager }));
    }
    body.get("effectiveDate")?;
    for change in changes {
        match work_column(&change.field) {
            Some("reportsTo") => {
                body.insert(
                    "reportsTo".into(),
                    serde_json::json!({ "id": value_text(Some(&change.value)) }),
                );
            }
            Some("site") => {
                // the site is named now; an id kept from the entry would contradict it
                body.remove("siteId");
                body.insert("site".into(), change.value.clone());
            }
            Some(column) => {
                body.insert(column.to_owned(), change.value.clone());
            }
            None => {}
        }
    }
    body.insert("reason".into(), Value::String(reason.to_owned()));
    Some((id, Value::Object(body)))
}

/// Compares the mapping's rendering now with the one it was settled at (`baseline`), what was
/// sent, and HiBob's employee (`None` when it could not be read at all).
pub fn compare(
    now: &[FieldNow],
    baseline: &Value,
    sent: &Value,
    hibob: Option<&Value>,
) -> Comparison {
    let mut found = Comparison::default();
    for field in now {
        if hibob_schema::is_computed(&field.field) {
            continue;
        }
        let Some(value) = field
            .value
            .as_ref()
            .filter(|v| !value_text(Some(v)).is_empty())
        else {
            continue;
        };
        let before = hibob_schema::at(baseline, &field.field);
        if same(before, Some(value)) {
            continue;
        }
        let in_hibob = hibob.and_then(|h| hibob_schema::at(h, &field.field));
        if same(in_hibob, Some(value)) {
            found.settled.push((field.field.clone(), value.clone()));
            continue;
        }
        let was_sent = hibob_schema::at(sent, &field.field);
        found.changes.push(Change {
            field: field.field.clone(),
            label: field.label.clone(),
            sent: value_text(was_sent),
            pinpoint: value_text(Some(value)),
            hibob: in_hibob.map(|v| value_text(Some(v))),
            edited_in_hibob: in_hibob.is_some() && !same(in_hibob, was_sent),
            route: route_of(field),
            value: value.clone(),
        });
    }
    found
}

/// `body` with `value` at `field`'s place.
pub fn with_value(body: &Value, field: &str, value: Value) -> Value {
    let mut map = body.as_object().cloned().unwrap_or_default();
    hibob_schema::nest(&mut map, field, value);
    Value::Object(map)
}

/// The update body for HiBob's employee update: the given fields nested by their ids.
pub fn update_body(changes: &[&Change]) -> Value {
    let mut map = Map::new();
    for change in changes {
        hibob_schema::nest(&mut map, &change.field, change.value.clone());
    }
    Value::Object(map)
}

/// Why the application no longer counts as hired, if it does not (see the module's decisions).
pub fn fallen_through(app: &Application) -> Option<String> {
    let text = |key: &str| {
        app.attribute(key)
            .map(|v| value_text(Some(v)))
            .filter(|t| !t.is_empty())
    };
    for (key, word) in [
        ("rejected_at", "rejected"),
        ("withdrawn_at", "withdrawn"),
        ("archived_at", "archived"),
        ("declined_at", "declined"),
    ] {
        if let Some(at) = text(key) {
            return Some(format!("Pinpoint shows the application {word} on {at}"));
        }
    }
    const ENDED: [&str; 7] = [
        "rejected",
        "withdrawn",
        "archived",
        "declined",
        "rescinded",
        "retracted",
        "cancelled",
    ];
    for key in ["status", "state"] {
        if let Some(status) = text(key).filter(|s| ENDED.contains(&s.to_lowercase().as_str())) {
            return Some(format!("Pinpoint shows the application as {status}"));
        }
    }
    let stage = text("stage_name").or_else(|| {
        app.attribute("stage")
            .and_then(|s| s.get("name").or(Some(s)))
            .map(|v| value_text(Some(v)))
            .filter(|t| !t.is_empty())
    });
    if let Some(stage) = stage.filter(|s| !s.to_lowercase().contains("hire")) {
        return Some(format!(
            "Pinpoint shows the application in the stage \"{stage}\", no longer hired"
        ));
    }
    let offer_states: Vec<String> = app
        .offers
        .iter()
        .map(|o| value_text(o.attributes.get("status")).to_lowercase())
        .collect();
    if !offer_states.is_empty() && offer_states.iter().all(|s| ENDED.contains(&s.as_str())) {
        return Some(format!(
            "every offer on the application was {}",
            offer_states.join(" or ")
        ));
    }
    None
}

/// The last day a hire is watched.
pub fn watch_until(
    start: Option<NaiveDate>,
    exported: NaiveDate,
    days_after_start: i64,
) -> NaiveDate {
    match start {
        Some(day) => day + Days::days(days_after_start.clamp(0, 365)),
        None => exported + Days::days(UNKNOWN_START_DAYS),
    }
}

/// How long until the next check: more often as the first day nears, when a wrong record costs
/// most.
pub fn next_check_in(days_to_start: Option<i64>) -> std::time::Duration {
    let hours = match days_to_start {
        Some(d) if (0..=7).contains(&d) => 2,
        Some(d) if (0..=30).contains(&d) => 6,
        _ => 24,
    };
    std::time::Duration::from_secs(hours * 3600)
}

/// The fields the automatic policy applies, from the setting (`work.startDate, root.firstName`).
pub fn auto_fields(setting: &str) -> Vec<String> {
    setting
        .split([',', ';', '\n', ' '])
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .map(|f| hibob_schema::canonical_id(f).to_owned())
        .collect()
}

/// The one-line summary of changes an alert and a comment carry.
pub fn summary(changes: &[Change]) -> String {
    changes
        .iter()
        .map(|c| {
            let label = if c.label.is_empty() {
                &c.field
            } else {
                &c.label
            };
            format!(
                "{label} {} → {}",
                blank_as_dash(&c.sent),
                blank_as_dash(&c.pinpoint)
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn blank_as_dash(text: &str) -> &str {
    if text.is_empty() {
        "—"
    } else {
        text
    }
}

#[cfg(test)]
mod tests;

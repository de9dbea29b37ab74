//! The "Send to HiBob" plugin as Pinpoint sees it: the meta document, the token check, the form,
//! the submit that creates the employee, and the dropdown lists. No HTTP types live here, so the
//! same service can be driven by the axum routes, by tests and by benchmarks.
//!
//! Two rules shape the submit. Pinpoint waits for the answer and shows it on the form, so every
//! problem becomes a field error or a toast the user can act on, never a bare failure. And a
//! person clicking twice (or five times at once) must never give HiBob two employees: submits for
//! one e-mail are serialised in this process, the export row remembers the employee id, and HiBob
//! is searched before anything is created.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use base64::Engine as _;
use chrono::NaiveDate;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use sqlx::SqlitePool;
use subtle::ConstantTimeEq;

use crate::{
    credentials::{CredentialKey, Credentials},
    export_queue::{self, PluginAttempt, Status, StepRecord},
    hibob::{self, CallLog, DocFolder, FieldMeta, HibobError, ListItem, NamedList},
    hibob_schema,
    mapping::MappingDocument,
    mapping_service::MappingService,
    outbound,
    plugin_contract::{
        ActionDescriptor, ActionKey, ActionMetaResponse, ActionResult, ConfigurationFormField,
        FieldError, FieldMapping, FileRef, FormField, Intent, ListResponse, MetaResponse,
        PluginRequest, SelectOption, Toast,
    },
    variables,
};

pub const PLUGIN_NAME: &str = "HiBob";
pub const ACTION_LABEL: &str = "Send to HiBob";
pub const ACTION_DESCRIPTION: &str = "Create the new hire as an employee in HiBob";
pub const ACTION_META_PATH: &str = "/export-candidate/meta";
pub const SUBMIT_PATH: &str = "/export-candidate/submit";
/// Hyphenated on purpose: proxies commonly drop header names with underscores.
pub const TOKEN_HEADER: &str = "X-Plugin-Token";
pub const TOKEN_CONFIG_KEY: &str = "pluginToken";

/// Named lists change rarely (an admin adds a site or a department), and HiBob counts calls per
/// minute, so ten minutes of staleness is a fair price for a form that opens without waiting.
pub const DEFAULT_LIST_TTL: Duration = Duration::from_secs(10 * 60);

/// Pinpoint's own timeout is undocumented; a form that takes longer than this to build is worse
/// than a callout saying HiBob is slow.
pub const DEFAULT_LIST_FETCH_TIMEOUT: Duration = Duration::from_secs(8);

/// A 429 asking for a wait this short is sat out inside the request: the user would otherwise
/// get a toast and click again at about the same moment.
pub const SHORT_RATE_LIMIT_WAIT: Duration = Duration::from_secs(2);

/// HiBob's documented limit for `firstName` and `surname`.
pub const MAX_NAME_CHARS: usize = 50;

/// After a failed background refresh, the stale lists are served this much longer before the
/// next try, so a HiBob outage does not turn every form into a refresh attempt.
const REFRESH_RETRY: Duration = Duration::from_secs(30);

/// Callers that queued behind a failed list fetch get its error instead of repeating the call.
const FAILURE_REUSE: Duration = Duration::from_secs(2);

// Form field keys, echoed back by Pinpoint on submit.
pub const F_FIRST_NAME: &str = "firstName";
pub const F_LAST_NAME: &str = "lastName";
pub const F_EMAIL: &str = "email";
pub const F_START_DATE: &str = "startDate";
pub const F_SITE: &str = "site";
pub const F_DEPARTMENT: &str = "department";
pub const F_TITLE: &str = "title";
pub const F_EMPLOYMENT_TYPE: &str = "employmentType";
pub const F_CV: &str = "cvDocument";

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

const EXPORT: ActionKey = ActionKey::ExportCandidate;

// ---------------------------------------------------------------------------------------------
// Dropdowns
// ---------------------------------------------------------------------------------------------

/// One dropdown of the form, tied to the HiBob named list that feeds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dropdown {
    /// The key of its list endpoint (`/lists/{list_key}`).
    pub list_key: &'static str,
    pub form_key: &'static str,
    pub label: &'static str,
    /// HiBob's field id: its `typeData.listId` names the list, and the create body nests the
    /// chosen value under this path.
    pub field_id: &'static str,
    /// List names to try when the field catalogue cannot be read.
    pub list_names: &'static [&'static str],
    /// HiBob takes the site by name in every documented example; other list fields take the
    /// item id, which is what the field-metadata guide prescribes for `list` fields.
    pub by_name: bool,
}

pub const SITES: Dropdown = Dropdown {
    list_key: "sites",
    form_key: F_SITE,
    label: "Site",
    field_id: "work.site",
    list_names: &["site"],
    by_name: true,
};
pub const DEPARTMENTS: Dropdown = Dropdown {
    list_key: "departments",
    form_key: F_DEPARTMENT,
    label: "Department",
    field_id: "work.department",
    list_names: &["department"],
    by_name: false,
};
pub const TITLES: Dropdown = Dropdown {
    list_key: "titles",
    form_key: F_TITLE,
    label: "Job title",
    field_id: "work.title",
    list_names: &["title", "jobTitle", "job title"],
    by_name: false,
};
pub const EMPLOYMENT_TYPES: Dropdown = Dropdown {
    list_key: "employmentTypes",
    form_key: F_EMPLOYMENT_TYPE,
    label: "Employment type",
    field_id: "payroll.employment.type",
    list_names: &["payrollEmploymentType", "employmentType", "employment type"],
    by_name: false,
};
pub const DROPDOWNS: [Dropdown; 4] = [SITES, DEPARTMENTS, TITLES, EMPLOYMENT_TYPES];

fn list_path(list_key: &str) -> String {
    format!("/lists/{list_key}")
}

/// HiBob's lists, resolved to the form's dropdowns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Catalog {
    lists: HashMap<&'static str, NamedList>,
}

impl Catalog {
    /// The field catalogue says which list feeds which field; without it, the usual list names
    /// are tried, compared case-insensitively.
    pub fn build(lists: Vec<NamedList>, fields: Option<&[FieldMeta]>) -> Self {
        let mut resolved = HashMap::new();
        for dropdown in DROPDOWNS {
            let from_fields = fields
                .and_then(|fields| fields.iter().find(|f| f.id == dropdown.field_id))
                .and_then(|f| f.list_name.as_deref());
            let found = from_fields
                .and_then(|name| lists.iter().find(|l| l.name == name))
                .or_else(|| {
                    dropdown
                        .list_names
                        .iter()
                        .find_map(|name| lists.iter().find(|l| l.name.eq_ignore_ascii_case(name)))
                });
            if let Some(list) = found {
                resolved.insert(dropdown.list_key, list.clone());
            }
        }
        Self { lists: resolved }
    }

    pub fn list(&self, dropdown: &Dropdown) -> Option<&NamedList> {
        self.lists.get(dropdown.list_key)
    }

    /// Every item that may be chosen, children labelled with their parents so a hierarchical
    /// list stays readable when flattened.
    pub fn options(&self, dropdown: &Dropdown) -> Vec<SelectOption> {
        let mut out = Vec::new();
        if let Some(list) = self.list(dropdown) {
            flatten(&list.items, dropdown.by_name, None, &mut out);
        }
        out
    }

    /// Whether choosing a department can narrow the titles: only when the title list groups
    /// its items under parents.
    pub fn titles_are_grouped(&self) -> bool {
        self.list(&TITLES)
            .is_some_and(|l| l.items.iter().any(|i| !i.children.is_empty()))
    }

    /// The titles grouped under a parent that has the chosen department's name, or every title
    /// when nothing matches (a narrowed list must never hide the right answer).
    pub fn title_options_for(&self, department: Option<&str>) -> Vec<SelectOption> {
        let narrowed = (|| {
            let titles = self.list(&TITLES)?;
            let chosen = self.list(&DEPARTMENTS)?.find(department?)?;
            let group = titles.items.iter().find(|i| {
                !i.archived && !i.children.is_empty() && i.name.eq_ignore_ascii_case(&chosen.name)
            })?;
            let mut out = Vec::new();
            flatten(&group.children, TITLES.by_name, None, &mut out);
            (!out.is_empty()).then_some(out)
        })();
        narrowed.unwrap_or_else(|| self.options(&TITLES))
    }

    /// The value HiBob should receive for what the user chose (an id or a name, either way), or
    /// a sentence for the field error.
    pub fn resolve(&self, dropdown: &Dropdown, chosen: &str) -> Result<String, String> {
        let Some(list) = self.list(dropdown) else {
            return Err(format!(
                "HiBob has no {} list the console can read",
                dropdown.label.to_lowercase()
            ));
        };
        match list.find(chosen) {
            Some(item) if item.archived => Err(format!(
                "{} is archived in HiBob; choose another {}",
                item.name,
                dropdown.label.to_lowercase()
            )),
            Some(item) => Ok(if dropdown.by_name {
                item.name.clone()
            } else {
                item.id.clone()
            }),
            None => Err(format!(
                "HiBob has no {} called \"{}\"; choose one from the list",
                dropdown.label.to_lowercase(),
                chosen.chars().take(60).collect::<String>()
            )),
        }
    }
}

fn flatten(items: &[ListItem], by_name: bool, parent: Option<&str>, out: &mut Vec<SelectOption>) {
    for item in items.iter().filter(|i| !i.archived) {
        let label = match parent {
            Some(p) => format!("{p} › {}", item.name),
            None => item.name.clone(),
        };
        let value = if by_name { &item.name } else { &item.id };
        if !out.iter().any(|o| &o.value == value) {
            out.push(SelectOption::new(label.clone(), value.clone()));
        }
        flatten(&item.children, by_name, Some(&label), out);
    }
}

// ---------------------------------------------------------------------------------------------
// Meta
// ---------------------------------------------------------------------------------------------

/// A person card with an arrow coming in: "a new hire arrives". Drawn for this project.
const LOGO_SVG: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64" width="64" height="64"><rect width="64" height="64" rx="14" fill="#134E4A"/><circle cx="40" cy="24" r="8" fill="#ECFDF5"/><path d="M26 50c0-8.3 6.3-14 14-14s14 5.7 14 14z" fill="#ECFDF5"/><path d="M9 31h14m-5.5-6 6 6-6 6" fill="none" stroke="#FBBF24" stroke-width="4" stroke-linecap="round" stroke-linejoin="round"/></svg>"##;

/// The same idea as a line icon, sized for a button.
const ICON_SVG: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" width="24" height="24" fill="none" stroke="#1F2937" stroke-width="2" stroke-linecap="round" stroke-linejoin="round"><circle cx="15" cy="8" r="3.5"/><path d="M8.5 20a6.5 6.5 0 0 1 13 0"/><path d="M2 12h7m-2.5-2.5L9 12l-2.5 2.5"/></svg>"##;

fn svg_data_uri(svg: &str) -> String {
    format!(
        "data:image/svg+xml;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(svg)
    )
}

/// The plugin form's text fields and the HiBob field each one prefills.
const TEXT_TARGETS: [(&str, &str, &str); 4] = [
    (F_FIRST_NAME, "First Name", "root.firstName"),
    (F_LAST_NAME, "Last Name", "root.surname"),
    (F_EMAIL, "Email", "root.email"),
    (F_START_DATE, "Start Date", "work.startDate"),
];

/// Pinpoint's variable that feeds a form field: the first Pinpoint variable read by the first
/// template of the mapping's rule for `target`. Pinpoint only substitutes variables, so filters
/// and fallbacks are applied by the console when the form is built (see `action_meta`).
fn pinpoint_variable(doc: &MappingDocument, target: &str) -> Option<&'static str> {
    // the templates come first even beside a fixed value: it is only their last resort
    let rule = doc
        .fields
        .iter()
        .find(|r| hibob_schema::canonical_id(&r.target) == hibob_schema::canonical_id(target))?;
    rule.sources.iter().find_map(|source| {
        let mut engine = crate::templates::Engine::new();
        let id = engine.add(source).ok()?;
        let names = engine.names(id);
        // the one the template reads first is the one it is mostly about
        variables::CATALOGUE
            .iter()
            .filter(|v| v.pinpoint && names.contains(v.name))
            .min_by_key(|v| source.find(v.name).unwrap_or(usize::MAX))
            .map(|v| v.name)
    })
}

/// Which variable each prefilled form field carries, under the given mapping.
fn form_variables(doc: &MappingDocument) -> Vec<(&'static str, &'static str, &'static str)> {
    const BUILT_IN: [&str; 4] = [
        "candidate_first_name",
        "candidate_last_name",
        "candidate_email",
        "candidate_start_date",
    ];
    TEXT_TARGETS
        .iter()
        .zip(BUILT_IN)
        .map(|((key, label, target), fallback)| {
            (
                *key,
                *label,
                pinpoint_variable(doc, target).unwrap_or(fallback),
            )
        })
        .collect()
}

/// The plugin's root document. It is public (Pinpoint reads it at registration, before any
/// token exists), so it carries nothing secret; its field mappings follow the mapping in force.
pub fn meta() -> MetaResponse {
    meta_for(&crate::mapping::default_document())
}

pub fn meta_for(doc: &MappingDocument) -> MetaResponse {
    let mut action = ActionDescriptor::new(
        EXPORT,
        ACTION_LABEL,
        svg_data_uri(ICON_SVG),
        ACTION_META_PATH,
    );
    for (key, label, variable) in form_variables(doc) {
        action = action.mapping(FieldMapping::new(key, label, format!("{{{{{variable}}}}}")));
    }
    let action = action.mapping(FieldMapping::unlabelled(F_CV, "{{candidate_cv}}"));
    let mut meta = MetaResponse::new(PLUGIN_NAME, svg_data_uri(LOGO_SVG))
        .action(action)
        .configuration_field(
            ConfigurationFormField::string(TOKEN_CONFIG_KEY, "Plugin token")
                .required()
                .sensitive()
                .http_header(TOKEN_HEADER)
                .placeholder("paste the plugin token from the console")
                .description(
                    "The shared secret shown as \"Plugin token\" in the Pinpoint → HiBob \
                     console's Settings. Pinpoint sends it with every call so the console knows \
                     the call is yours.",
                ),
        );
    for dropdown in DROPDOWNS {
        meta = meta.list_endpoint(dropdown.list_key, list_path(dropdown.list_key));
    }
    meta
}

// ---------------------------------------------------------------------------------------------
// Authentication
// ---------------------------------------------------------------------------------------------

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

fn check_submit_shape(req: &PluginRequest) -> Result<(), BadRequest> {
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

// ---------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------

/// HiBob allows letters and a short list of punctuation in names. Spaces are not in its list but
/// are in real names ("Mary Ann"), so they are let through and left to HiBob to judge.
fn name_problem(what: &str, name: &str) -> Option<String> {
    if name.chars().count() > MAX_NAME_CHARS {
        return Some(format!(
            "HiBob accepts at most {MAX_NAME_CHARS} characters in the {what}"
        ));
    }
    if name.chars().any(char::is_control) {
        return Some(format!(
            "Remove line breaks and other control characters from the {what}"
        ));
    }
    let allowed = |c: char| {
        c.is_alphabetic()
            || c == ' '
            || "´`_-;,./'’\"()".contains(c)
            || ('\u{0300}'..='\u{036F}').contains(&c)
    };
    if let Some(bad) = name.chars().find(|c| !allowed(*c)) {
        return Some(format!(
            "HiBob does not accept \"{bad}\" in the {what}: use letters, spaces and ´ ` _ - ; , . / ' ’ \" ( ) only"
        ));
    }
    None
}

/// A practical syntax check (what HiBob calls "a syntactically valid address"), not RFC 5322:
/// it catches typos and pasted junk without refusing real addresses.
pub fn valid_email(email: &str) -> bool {
    if email.len() > 254 || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    let Some((local, domain)) = email.rsplit_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .chars()
            .all(|c| c.is_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c));
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
        && labels
            .last()
            .is_some_and(|tld| tld.chars().count() >= 2 && tld.chars().all(char::is_alphabetic));
    local_ok && domain_ok
}

/// `YYYY-MM-DD`, or a timestamp starting with one (a mapped date may arrive with a time).
pub fn parse_date(text: &str) -> Option<String> {
    let text = text.trim();
    let day = match text.as_bytes().get(10) {
        Some(b'T' | b' ') => text.get(..10)?,
        Some(_) => return None,
        None => text,
    };
    let parsed = NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()?;
    let formatted = parsed.format("%Y-%m-%d").to_string();
    (formatted == day).then_some(formatted)
}

/// HiBob downloads the CV itself, so the console never fetches the URL; it only refuses links
/// that could not be a public https file, so HiBob is never pointed at an internal address.
pub fn cv_url_problem(raw: &str) -> Option<&'static str> {
    let Ok(url) = url::Url::parse(raw.trim()) else {
        return Some("The CV link is not a valid URL");
    };
    if url.scheme() != "https" {
        return Some("The CV link must be an https:// URL");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Some("The CV link must not contain a user name or password");
    }
    let private = match url.host() {
        None => return Some("The CV link has no host"),
        Some(url::Host::Domain(host)) => {
            let host = host.trim_end_matches('.').to_ascii_lowercase();
            host == "localhost" || host.ends_with(".localhost") || host.ends_with(".internal")
        }
        Some(url::Host::Ipv4(ip)) => {
            ip.is_private()
                || ip.is_loopback()
                || ip.is_link_local()
                || ip.is_unspecified()
                || ip.is_broadcast()
                || (ip.octets()[0] == 100 && (ip.octets()[1] & 0xC0) == 64)
        }
        Some(url::Host::Ipv6(ip)) => {
            let first = ip.segments()[0];
            ip.is_loopback()
                || ip.is_unspecified()
                || (first & 0xFE00) == 0xFC00
                || (first & 0xFFC0) == 0xFE80
                || ip.to_ipv4_mapped().is_some()
        }
    };
    private.then_some("The CV link points to a private address HiBob cannot reach")
}

/// Text of a scalar JSON value, trimmed; blank, null, arrays and objects give `None`.
fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.trim().to_owned()).filter(|s| !s.is_empty()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// What the submit read from the form, before validation.
#[derive(Debug, Clone, Default)]
struct Inputs {
    first: Option<String>,
    last: Option<String>,
    email: Option<String>,
    start_date: Option<String>,
    site: Option<String>,
    department: Option<String>,
    title: Option<String>,
    employment_type: Option<String>,
    cv: Option<FileRef>,
    /// A CV value was sent but no link could be read from it.
    cv_unreadable: bool,
}

impl Inputs {
    fn read(req: &PluginRequest) -> Self {
        let cv_value = req.form_value(F_CV);
        let cv = req.form_file_refs(F_CV).into_iter().next();
        let blank = |v: &Value| match v {
            Value::String(s) => s.trim().is_empty(),
            Value::Array(a) => a.is_empty(),
            _ => false,
        };
        Self {
            first: req.form_str(F_FIRST_NAME),
            last: req.form_str(F_LAST_NAME),
            email: req.form_str(F_EMAIL),
            start_date: req.form_str(F_START_DATE),
            site: req.form_str(F_SITE),
            department: req.form_str(F_DEPARTMENT),
            title: req.form_str(F_TITLE),
            employment_type: req.form_str(F_EMPLOYMENT_TYPE),
            cv_unreadable: cv.is_none() && cv_value.is_some_and(|v| !blank(v)),
            cv,
        }
    }

    fn display_name(&self) -> Option<String> {
        let name = [self.first.as_deref(), self.last.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        (!name.is_empty()).then_some(name)
    }

    fn dropdown(&self, dropdown: &Dropdown) -> Option<&str> {
        match dropdown.form_key {
            F_SITE => self.site.as_deref(),
            F_DEPARTMENT => self.department.as_deref(),
            F_TITLE => self.title.as_deref(),
            F_EMPLOYMENT_TYPE => self.employment_type.as_deref(),
            _ => None,
        }
    }

    /// The inputs as kept in the export record; the CV link loses its query string, which is
    /// what grants access to a signed file.
    fn for_record(&self) -> Value {
        json!({
            F_FIRST_NAME: self.first,
            F_LAST_NAME: self.last,
            F_EMAIL: self.email,
            F_START_DATE: self.start_date,
            F_SITE: self.site,
            F_DEPARTMENT: self.department,
            F_TITLE: self.title,
            F_EMPLOYMENT_TYPE: self.employment_type,
            F_CV: self.cv.as_ref().map(|cv| json!({
                "url": outbound::redact_url(&cv.url),
                "name": cv.name,
            })),
        })
    }

    /// Checks that need no HiBob data.
    fn check(&self, default_site: Option<&str>) -> (Draft, Vec<FieldError>) {
        let mut errors = Vec::new();
        let mut draft = Draft::default();
        for (key, what, value, slot) in [
            (F_FIRST_NAME, "first name", &self.first, &mut draft.first),
            (F_LAST_NAME, "last name", &self.last, &mut draft.last),
        ] {
            match value {
                None => errors.push(FieldError::new(
                    key,
                    format!("The {what} is required by HiBob"),
                )),
                Some(v) => match name_problem(what, v) {
                    Some(problem) => errors.push(FieldError::new(key, problem)),
                    None => *slot = v.clone(),
                },
            }
        }
        match &self.email {
            None => errors.push(FieldError::new(
                F_EMAIL,
                "The work email is required by HiBob",
            )),
            Some(e) if !valid_email(e) => errors.push(FieldError::new(
                F_EMAIL,
                "This is not a valid email address (for example jane.doe@example.com)",
            )),
            Some(e) => draft.email = e.clone(),
        }
        match self.start_date.as_deref().map(|d| (d, parse_date(d))) {
            None => errors.push(FieldError::new(
                F_START_DATE,
                "The start date is required by HiBob",
            )),
            Some((_, None)) => errors.push(FieldError::new(
                F_START_DATE,
                "Enter the start date as YYYY-MM-DD (for example 2026-03-02)",
            )),
            Some((_, Some(day))) => draft.start_date = day,
        }
        if self.site.is_none() && default_site.is_none() {
            errors.push(FieldError::new(F_SITE, "Choose the employee's HiBob site"));
        }
        if self.cv_unreadable {
            errors.push(FieldError::new(
                F_CV,
                "The CV could not be read from the form: attach the file again",
            ));
        }
        if let Some(cv) = &self.cv {
            match cv_url_problem(&cv.url) {
                Some(problem) => errors.push(FieldError::new(F_CV, problem)),
                None => draft.cv = Some(cv.clone()),
            }
        }
        (draft, errors)
    }
}

/// The validated employee, ready for HiBob.
#[derive(Debug, Clone, Default)]
struct Draft {
    first: String,
    last: String,
    email: String,
    start_date: String,
    /// `(dropdown, value HiBob expects)` for each list value chosen.
    choices: Vec<(Dropdown, String)>,
    cv: Option<FileRef>,
}

impl Draft {
    fn body(&self) -> Value {
        let mut body = Map::new();
        body.insert("firstName".into(), json!(self.first));
        body.insert("surname".into(), json!(self.last));
        body.insert("email".into(), json!(self.email));
        let mut root = Value::Object(body);
        nest(&mut root, "work.startDate", json!(self.start_date));
        for (dropdown, value) in &self.choices {
            nest(&mut root, dropdown.field_id, json!(value));
        }
        root
    }
}

/// Writes `value` at a dotted field path, creating the objects on the way, which is how
/// HiBob's create body nests fields.
fn nest(root: &mut Value, path: &str, value: Value) {
    let mut node = root;
    let mut segments = path.split('.').peekable();
    while let Some(segment) = segments.next() {
        let Some(map) = node.as_object_mut() else {
            return;
        };
        if segments.peek().is_none() {
            map.insert(segment.to_owned(), value);
            return;
        }
        node = map
            .entry(segment.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
    }
}

/// The form field a HiBob field path belongs to, so HiBob's rejection lands next to it.
fn form_key_for(path: &str) -> Option<&'static str> {
    match path {
        "firstName" => Some(F_FIRST_NAME),
        "surname" => Some(F_LAST_NAME),
        "email" => Some(F_EMAIL),
        "work.startDate" => Some(F_START_DATE),
        other => DROPDOWNS
            .iter()
            .find(|d| d.field_id == other)
            .map(|d| d.form_key),
    }
}

/// What a user or admin should do about a HiBob failure, in one or two sentences.
pub fn explain_hibob_error(e: &HibobError) -> String {
    match e {
        HibobError::Unauthorized { status: 401, .. } => "HiBob refused the console's service user (HTTP 401). Ask an admin to check the HiBob credentials (service user ID and token) under Settings in the console.".to_owned(),
        HibobError::Unauthorized { status, message } => format!("HiBob refused the request (HTTP {status}): {message}. Ask an admin to give the console's service user the needed permissions in Bob."),
        HibobError::RateLimited { wait } => format!("HiBob is rate limiting the console right now. Try again in {} seconds.", wait.as_secs().max(1)),
        HibobError::Server { status, .. } => format!("HiBob had a server error (HTTP {status}). Try again in a minute; submitting again will not create a second employee."),
        HibobError::Timeout => "HiBob did not answer in time. Try again in a minute; submitting again will not create a second employee.".to_owned(),
        HibobError::Transport(detail) => format!("HiBob could not be reached ({detail}). Try again later, or ask an admin to check the HiBob API base URL under Settings."),
        HibobError::Decode(detail) => format!("HiBob's answer could not be read ({detail}). Ask an admin to look at this export in the console."),
        HibobError::TooLarge { limit } => format!("The file is larger than HiBob accepts ({} MB).", limit / (1024 * 1024)),
        HibobError::Rejected { message, .. } => format!("HiBob rejected the request: {message}"),
    }
}

fn failure_for(e: &HibobError) -> ActionResult {
    let errors = match e.field().and_then(form_key_for) {
        Some(key) => match e {
            HibobError::Rejected { message, .. } => {
                vec![FieldError::new(key, format!("HiBob: {message}"))]
            }
            _ => Vec::new(),
        },
        None => Vec::new(),
    };
    let toast = if errors.is_empty() {
        explain_hibob_error(e)
    } else {
        "HiBob rejected the employee: correct the highlighted field and submit again.".to_owned()
    };
    ActionResult::failure(EXPORT, errors, Some(Toast::error(toast)))
}

/// `Some(wait)` when the call hit a short rate limit and has not been retried yet.
fn short_wait<T>(result: &Result<T, HibobError>, retried: &mut bool) -> Option<Duration> {
    match result {
        Err(HibobError::RateLimited { wait }) if !*retried && *wait <= SHORT_RATE_LIMIT_WAIT => {
            *retried = true;
            Some(*wait)
        }
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Named-list cache
// ---------------------------------------------------------------------------------------------

#[derive(Clone)]
struct CachedCatalog {
    fingerprint: String,
    catalog: Arc<Catalog>,
    stale_at: Instant,
}

struct FailedFetch {
    fingerprint: String,
    at: Instant,
    error: HibobError,
}

/// HiBob's named lists, fetched once per set of credentials and refreshed in the background
/// once stale, so building a form never waits on HiBob after the first time.
pub struct ListCache {
    ttl: Duration,
    fetch_timeout: Duration,
    slot: Mutex<Option<CachedCatalog>>,
    /// Held while fetching, so concurrent first calls make one request; remembers the last
    /// failure for the callers queued behind it.
    fetching: tokio::sync::Mutex<Option<FailedFetch>>,
    refreshing: AtomicBool,
}

/// Clears the "refresh running" flag even if the refresh task panics.
struct RefreshFlag(Arc<ListCache>);

impl Drop for RefreshFlag {
    fn drop(&mut self) {
        self.0.refreshing.store(false, Ordering::Release);
    }
}

impl ListCache {
    pub fn new(ttl: Duration, fetch_timeout: Duration) -> Self {
        Self {
            ttl,
            fetch_timeout,
            slot: Mutex::new(None),
            fetching: tokio::sync::Mutex::new(None),
            refreshing: AtomicBool::new(false),
        }
    }

    fn peek(&self, fingerprint: &str) -> Option<CachedCatalog> {
        let slot = self.slot.lock().unwrap_or_else(|p| p.into_inner());
        slot.as_ref()
            .filter(|c| c.fingerprint == fingerprint)
            .cloned()
    }

    fn store(&self, fingerprint: &str, catalog: Arc<Catalog>) {
        let mut slot = self.slot.lock().unwrap_or_else(|p| p.into_inner());
        *slot = Some(CachedCatalog {
            fingerprint: fingerprint.to_owned(),
            catalog,
            stale_at: Instant::now() + self.ttl,
        });
    }

    fn postpone(&self, fingerprint: &str) {
        let mut slot = self.slot.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = slot.as_mut().filter(|c| c.fingerprint == fingerprint) {
            c.stale_at = Instant::now() + REFRESH_RETRY.min(self.ttl.max(Duration::from_millis(1)));
        }
    }

    /// The lists for these credentials: cached, stale (while a refresh runs), or fetched now
    /// when there is nothing to serve.
    pub async fn get(
        self: &Arc<Self>,
        client: &hibob::Client,
        fingerprint: &str,
    ) -> Result<Arc<Catalog>, HibobError> {
        if let Some(cached) = self.peek(fingerprint) {
            if Instant::now() >= cached.stale_at {
                self.refresh_in_background(client.clone(), fingerprint.to_owned());
            }
            return Ok(cached.catalog);
        }
        let mut last_failure = self.fetching.lock().await;
        if let Some(cached) = self.peek(fingerprint) {
            return Ok(cached.catalog);
        }
        if let Some(failed) = last_failure
            .as_ref()
            .filter(|f| f.fingerprint == fingerprint && f.at.elapsed() < FAILURE_REUSE)
        {
            return Err(failed.error.clone());
        }
        let fetched = tokio::time::timeout(self.fetch_timeout, fetch_catalog(client))
            .await
            .unwrap_or(Err(HibobError::Timeout));
        match fetched {
            Ok(catalog) => {
                let catalog = Arc::new(catalog);
                self.store(fingerprint, Arc::clone(&catalog));
                *last_failure = None;
                Ok(catalog)
            }
            Err(error) => {
                tracing::warn!(error = %error, "HiBob's company lists could not be read");
                *last_failure = Some(FailedFetch {
                    fingerprint: fingerprint.to_owned(),
                    at: Instant::now(),
                    error: error.clone(),
                });
                Err(error)
            }
        }
    }

    fn refresh_in_background(self: &Arc<Self>, client: hibob::Client, fingerprint: String) {
        if self.refreshing.swap(true, Ordering::AcqRel) {
            return;
        }
        let flag = RefreshFlag(Arc::clone(self));
        tokio::spawn(async move {
            let cache = &flag.0;
            match fetch_catalog(&client).await {
                Ok(catalog) => cache.store(&fingerprint, Arc::new(catalog)),
                Err(error) => {
                    tracing::warn!(error = %error, "refreshing HiBob's company lists failed; the cached ones stay in use");
                    cache.postpone(&fingerprint);
                }
            }
            drop(flag);
        });
    }
}

async fn fetch_catalog(client: &hibob::Client) -> Result<Catalog, HibobError> {
    let mut log = CallLog::new();
    let lists = client.named_lists(&mut log).await?;
    // The field catalogue only improves which list feeds which dropdown; without it the usual
    // list names are used, so its failure is not the form's failure.
    let fields = client.people_fields(&mut log).await.ok();
    Ok(Catalog::build(lists, fields.as_deref()))
}

// ---------------------------------------------------------------------------------------------
// Per-e-mail locks
// ---------------------------------------------------------------------------------------------

/// One async lock per key, created on demand and dropped when nobody holds or waits for it, so
/// the map does not grow with every candidate ever exported.
#[derive(Default)]
struct KeyedLocks {
    map: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

struct KeyGuard<'a> {
    locks: &'a KeyedLocks,
    key: String,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl KeyedLocks {
    async fn lock(&self, key: &str) -> KeyGuard<'_> {
        let mutex = {
            let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
            Arc::clone(map.entry(key.to_owned()).or_default())
        };
        let guard = mutex.lock_owned().await;
        KeyGuard {
            locks: self,
            key: key.to_owned(),
            guard: Some(guard),
        }
    }

    fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

impl Drop for KeyGuard<'_> {
    fn drop(&mut self) {
        self.guard.take();
        let mut map = self.locks.map.lock().unwrap_or_else(|p| p.into_inner());
        // clones are only taken under the map lock, so one reference means nobody is waiting
        if map
            .get(&self.key)
            .is_some_and(|m| Arc::strong_count(m) == 1)
        {
            map.remove(&self.key);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The service
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
pub struct PluginSettings {
    /// Per-call timeout of the HiBob client.
    pub hibob_timeout: Duration,
    pub list_ttl: Duration,
    pub list_fetch_timeout: Duration,
}

impl Default for PluginSettings {
    fn default() -> Self {
        Self {
            hibob_timeout: hibob::DEFAULT_TIMEOUT,
            list_ttl: DEFAULT_LIST_TTL,
            list_fetch_timeout: DEFAULT_LIST_FETCH_TIMEOUT,
        }
    }
}

/// Why a list could not be answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListError {
    #[error("unknown list \"{0}\": the lists are sites, departments, titles and employmentTypes")]
    UnknownList(String),
    #[error("HiBob is not configured: an admin must add the HiBob service user under Settings in the console")]
    NotConfigured,
    #[error("{0}")]
    Unavailable(String),
}

enum Access {
    NotConfigured,
    Broken(String),
    Ready {
        client: hibob::Client,
        fingerprint: String,
    },
}

/// Why the form or the submit cannot use HiBob right now, in words for the callout or toast.
struct Problem {
    title: &'static str,
    text: String,
    /// No HiBob credentials at all, as opposed to HiBob failing.
    unconfigured: bool,
}

impl Problem {
    fn not_configured() -> Self {
        Self {
            title: "HiBob is not configured",
            text: "The console has no HiBob service user yet. Ask an admin to enter the HiBob \
                   service user ID and token under Settings in the Pinpoint → HiBob console (or \
                   set HIBOB_SERVICE_USER_ID and HIBOB_SERVICE_USER_TOKEN), then open this form \
                   again."
                .to_owned(),
            unconfigured: true,
        }
    }

    fn from_hibob(e: &HibobError) -> Self {
        let title = match e {
            HibobError::Unauthorized { .. } => "HiBob refused the console",
            HibobError::Timeout | HibobError::Transport(_) => "HiBob cannot be reached",
            HibobError::RateLimited { .. } => "HiBob is busy",
            _ => "HiBob's lists cannot be read",
        };
        let text = match e {
            HibobError::Unauthorized { status: 403, .. } => "HiBob answered 403: the console's service user may not read company lists. Ask an admin to add it to a permission group in Bob that can read people's data and company lists.".to_owned(),
            HibobError::Timeout | HibobError::Transport(_) => format!("{} Use Test connection on the console's Settings page to check.", explain_hibob_error(e)),
            _ => explain_hibob_error(e),
        };
        Self {
            title,
            text,
            unconfigured: false,
        }
    }
}

struct Inner {
    pool: SqlitePool,
    credentials: Credentials,
    mappings: MappingService,
    settings: PluginSettings,
    lists: Arc<ListCache>,
    locks: KeyedLocks,
    client: Mutex<Option<(String, hibob::Client)>>,
}

/// Cheap to clone: every clone shares the list cache, the HiBob client and the per-e-mail locks.
#[derive(Clone)]
pub struct PluginService {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for PluginService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginService")
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

/// Records the steps of one submit. A failed write is logged and the submit goes on: by then
/// HiBob may hold the employee, and telling the user so matters more than a complete timeline.
struct Run<'a> {
    pool: &'a SqlitePool,
    export_id: i64,
    attempt: i64,
}

impl Run<'_> {
    async fn record(
        &self,
        step: &str,
        outcome: &str,
        detail: &str,
        log: CallLog,
        started: Instant,
    ) {
        let json = serde_json::to_string(&log.into_vec()).unwrap_or_else(|_| "[]".to_owned());
        let record = StepRecord {
            attempt: self.attempt,
            step,
            outcome,
            detail,
            exchanges_json: &json,
            duration_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
        };
        if let Err(e) = export_queue::record_step(self.pool, self.export_id, &record).await {
            tracing::error!(export_id = self.export_id, step, error = %e, "could not record a plugin export step");
        }
    }

    async fn employee_id(&self, id: &str) {
        if let Err(e) = export_queue::set_employee_id(self.pool, self.export_id, id).await {
            tracing::error!(export_id = self.export_id, error = %e, "could not record the HiBob employee id");
        }
    }
}

/// How a submit ended: the export's status and error, and what Pinpoint is answered.
struct End {
    status: Status,
    error: Option<String>,
    employee_id: Option<String>,
    answer: Result<ActionResult, BadRequest>,
}

impl End {
    fn attention(error: impl Into<String>, answer: Result<ActionResult, BadRequest>) -> Self {
        Self {
            status: Status::NeedsAttention,
            error: Some(error.into()),
            employee_id: None,
            answer,
        }
    }

    /// A submit refused before anything reached HiBob leaves an earlier success standing: the
    /// employee is in HiBob whatever this resubmit got wrong.
    fn refused(
        attempt: &PluginAttempt,
        error: impl Into<String>,
        answer: Result<ActionResult, BadRequest>,
    ) -> Self {
        let exported = attempt.previous_status.as_deref() == Some(Status::Succeeded.as_str())
            && attempt.hibob_employee_id.is_some();
        if exported {
            Self {
                status: Status::Succeeded,
                error: None,
                employee_id: attempt.hibob_employee_id.clone(),
                answer,
            }
        } else {
            Self::attention(error, answer)
        }
    }
}

fn unkeyed_key() -> String {
    let mut bytes = [0u8; 12];
    let suffix = match getrandom::getrandom(&mut bytes) {
        Ok(()) => bytes.iter().map(|b| format!("{b:02x}")).collect::<String>(),
        Err(_) => chrono::Utc::now()
            .timestamp_nanos_opt()
            .unwrap_or_default()
            .to_string(),
    };
    format!("plugin:unkeyed:{suffix}")
}

/// Values Pinpoint sent to prefill the form: the form fields (mapped values, refetch values), and
/// a `mappings` list in case resolved mappings arrive under that name.
struct Prefill(Vec<(String, Value)>);

impl Prefill {
    fn from_request(req: &PluginRequest) -> Self {
        let mut values: Vec<(String, Value)> = req
            .form_fields
            .iter()
            .filter(|f| !f.value.is_null())
            .map(|f| (f.key.clone(), f.value.clone()))
            .collect();
        match req.raw.get("mappings") {
            Some(Value::Array(items)) => {
                for item in items {
                    if let (Some(key), Some(value)) =
                        (item.get("key").and_then(Value::as_str), item.get("value"))
                    {
                        values.push((key.to_owned(), value.clone()));
                    }
                }
            }
            Some(Value::Object(map)) => {
                values.extend(map.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
            _ => {}
        }
        Self(values)
    }

    fn value(&self, key: &str) -> Option<&Value> {
        self.0
            .iter()
            .find(|(k, v)| k == key && !v.is_null())
            .map(|(_, v)| v)
    }

    fn text(&self, key: &str) -> Option<String> {
        self.value(key).and_then(text_of)
    }
}

impl PluginService {
    pub fn new(pool: SqlitePool, credentials: Credentials, settings: PluginSettings) -> Self {
        Self {
            inner: Arc::new(Inner {
                mappings: MappingService::new(pool.clone(), credentials.clone()),
                pool,
                credentials,
                lists: Arc::new(ListCache::new(
                    settings.list_ttl,
                    settings.list_fetch_timeout,
                )),
                settings,
                locks: KeyedLocks::default(),
                client: Mutex::new(None),
            }),
        }
    }

    /// Meta with field mappings from the mapping in force (the built-in one if it cannot be read).
    pub async fn meta(&self) -> MetaResponse {
        match crate::mapping_store::current(&self.inner.pool).await {
            Ok(version) => meta_for(&version.document),
            Err(e) => {
                tracing::error!(error = %e, "cannot read the mapping for the plugin meta");
                meta()
            }
        }
    }

    /// Uses the console's mapping service (its caches), instead of one of its own.
    pub fn with_mappings(mut self, mappings: MappingService) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.mappings = mappings;
        }
        self
    }

    /// What the mapping in force makes of the values Pinpoint sent, per HiBob field (canonical
    /// id → text). Empty when the mapping cannot be used; the raw values are the fallback.
    async fn mapped(&self, prefill: &Prefill) -> HashMap<String, String> {
        let mappings = &self.inner.mappings;
        let version = match crate::mapping_store::current(&self.inner.pool).await {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the mapping for the plugin form");
                return HashMap::new();
            }
        };
        let Ok(compiled) = mappings.compiled(version.id).await else {
            return HashMap::new();
        };
        let today = chrono::Utc::now().date_naive();
        let mut values = variables::Values::default();
        for (key, _, variable) in form_variables(&version.document) {
            if let Some(text) = prefill.text(key) {
                let text = if variable == "candidate_start_date" {
                    crate::templates::normalise_date(&text).unwrap_or(text)
                } else {
                    text
                };
                values.set(variable, text);
            }
        }
        if let Some(cv) = prefill.text(F_CV) {
            values.set("candidate_cv", cv);
        }
        let values = values.with_setting(&mappings.setting(today).await);
        compiled
            .preview(&values, &hibob_schema::Schema::builtin())
            .rendered
            .trace
            .into_iter()
            .filter(|t| !t.text.is_empty())
            .map(|t| (hibob_schema::canonical_id(&t.target).to_owned(), t.text))
            .collect()
    }

    pub async fn authorize(
        &self,
        header: Option<&str>,
        req: &PluginRequest,
    ) -> Result<(), AuthError> {
        let expected = self
            .inner
            .credentials
            .get(CredentialKey::PluginToken)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "cannot read the plugin token");
                AuthError::Unavailable
            })?;
        check_token(
            expected.as_ref().map(ExposeSecret::expose_secret),
            header,
            req,
        )
    }

    /// The HiBob client for the credentials in force, rebuilt only when they change (which
    /// keeps its connection pool and rate-limit memory across calls).
    async fn access(&self) -> Access {
        let creds = &self.inner.credentials;
        let read = async {
            Ok::<_, crate::credentials::CredentialError>((
                creds.get(CredentialKey::HibobApiBaseUrl).await?,
                creds.get(CredentialKey::HibobServiceUserId).await?,
                creds.get(CredentialKey::HibobServiceUserToken).await?,
            ))
        };
        let (base, id, token) = match read.await {
            Ok((Some(base), Some(id), Some(token))) => (base, id, token),
            Ok(_) => return Access::NotConfigured,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the HiBob settings");
                return Access::Broken(
                    "The console could not read its HiBob settings. Ask an admin to look at the server log.".to_owned(),
                );
            }
        };
        let mut hasher = Sha256::new();
        for part in [&base, &id, &token] {
            hasher.update(part.expose_secret().as_bytes());
            hasher.update([0u8]);
        }
        let fingerprint: String = hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let mut cached = self.inner.client.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((fp, client)) = cached.as_ref().filter(|(fp, _)| *fp == fingerprint) {
            return Access::Ready {
                client: client.clone(),
                fingerprint: fp.clone(),
            };
        }
        let built = hibob::Client::new(
            base.expose_secret(),
            id.expose_secret(),
            SecretString::from(token.expose_secret().to_owned()),
        )
        .and_then(|c| c.with_timeout(self.inner.settings.hibob_timeout))
        .map(|c| c.paced_by(creds.pacing()));
        match built {
            Ok(client) => {
                *cached = Some((fingerprint.clone(), client.clone()));
                Access::Ready {
                    client,
                    fingerprint,
                }
            }
            Err(e) => Access::Broken(format!(
                "The console cannot call HiBob with its settings ({e}). Ask an admin to check the HiBob API base URL under Settings."
            )),
        }
    }

    async fn catalog(&self) -> Result<(hibob::Client, Arc<Catalog>), Problem> {
        let (client, fingerprint) = match self.access().await {
            Access::NotConfigured => return Err(Problem::not_configured()),
            Access::Broken(text) => {
                return Err(Problem {
                    title: "HiBob settings cannot be used",
                    text,
                    unconfigured: false,
                })
            }
            Access::Ready {
                client,
                fingerprint,
            } => (client, fingerprint),
        };
        match self.inner.lists.get(&client, &fingerprint).await {
            Ok(catalog) => Ok((client, catalog)),
            Err(e) => Err(Problem::from_hibob(&e)),
        }
    }

    async fn setting(&self, key: CredentialKey) -> Option<String> {
        self.inner
            .credentials
            .get(key)
            .await
            .ok()
            .flatten()
            .map(|s| s.expose_secret().trim().to_owned())
            .filter(|s| !s.is_empty())
    }

    fn form(&self) -> ActionMetaResponse {
        ActionMetaResponse::new(EXPORT, ACTION_LABEL, ACTION_DESCRIPTION, SUBMIT_PATH)
    }

    fn callout(&self, problem: Problem) -> ActionMetaResponse {
        self.form().field(FormField::callout(
            "configCallout",
            problem.title,
            Intent::Danger,
            problem.text,
        ))
    }

    /// The form, prefilled from what Pinpoint sent; on a refetch the department narrows the
    /// titles. When HiBob cannot be used, a callout says what to fix instead.
    pub async fn action_meta(&self, req: &PluginRequest) -> ActionMetaResponse {
        let catalog = match self.catalog().await {
            Ok((_, catalog)) => catalog,
            Err(problem) => return self.callout(problem),
        };
        if catalog.list(&SITES).is_none() {
            return self.callout(Problem {
                title: "HiBob's site list cannot be read",
                text: "HiBob requires a site for every employee, but the console's service user cannot see the \"site\" list. Ask an admin to let the service user read company lists in Bob.".to_owned(),
                unconfigured: false,
            });
        }
        let prefill = Prefill::from_request(req);
        // the mapping in force turns what Pinpoint sent into HiBob's values (filters, fallbacks,
        // fixed values, the default site and start date); Pinpoint's raw values are the fallback
        let mapped = self.mapped(&prefill).await;
        let mapped_text = |target: &str| mapped.get(hibob_schema::canonical_id(target)).cloned();
        let start_date = match mapped_text("work.startDate").or_else(|| prefill.text(F_START_DATE))
        {
            Some(text) => parse_date(&text)
                .or_else(|| crate::templates::normalise_date(&text))
                .unwrap_or(text),
            None => {
                let days = self
                    .setting(CredentialKey::DefaultStartDays)
                    .await
                    .and_then(|d| d.parse::<i64>().ok())
                    .unwrap_or(14);
                (chrono::Utc::now().date_naive() + chrono::Duration::days(days))
                    .format("%Y-%m-%d")
                    .to_string()
            }
        };
        let refetch = catalog.titles_are_grouped();
        let keep = |field: FormField| {
            if refetch {
                field.include_in_refetch()
            } else {
                field
            }
        };
        let text_field = |key: &str, label: &str| {
            let field = FormField::string(key, label).required();
            let target = TEXT_TARGETS
                .iter()
                .find(|(k, _, _)| *k == key)
                .map(|(_, _, t)| *t)
                .unwrap_or_default();
            let field = match mapped_text(target).or_else(|| prefill.text(key)) {
                Some(v) => field.value(v),
                None => field,
            };
            keep(field)
        };

        let mut fields = vec![
            FormField::heading("heading", "New employee in HiBob"),
            text_field(F_FIRST_NAME, "First name"),
            text_field(F_LAST_NAME, "Last name"),
            text_field(F_EMAIL, "Work email"),
            keep(
                FormField::date(F_START_DATE, "Start date")
                    .required()
                    .value(start_date),
            ),
        ];
        let chosen = |dropdown: &Dropdown| {
            prefill
                .text(dropdown.form_key)
                .and_then(|v| catalog.resolve(dropdown, &v).ok())
                .or_else(|| {
                    mapped_text(dropdown.field_id).and_then(|v| catalog.resolve(dropdown, &v).ok())
                })
        };
        let department = chosen(&DEPARTMENTS);
        for dropdown in DROPDOWNS {
            let Some(_) = catalog.list(&dropdown) else {
                continue;
            };
            let options = if dropdown == TITLES {
                catalog.title_options_for(department.as_deref())
            } else {
                catalog.options(&dropdown)
            };
            let value = chosen(&dropdown).filter(|v| options.iter().any(|o| &o.value == v));
            let mut field = FormField::string(dropdown.form_key, dropdown.label)
                .placeholder(format!("Select {}...", dropdown.label.to_lowercase()))
                .single_select(options)
                .single_select_list(dropdown.list_key);
            field = if dropdown == SITES {
                field.required()
            } else {
                field.optional()
            };
            if let Some(v) = value {
                field = field.value(v);
            }
            if dropdown == DEPARTMENTS && refetch {
                field = field.refetch_on_change();
            }
            fields.push(keep(field));
        }
        fields.push(FormField::divider("divider"));
        let mut cv = FormField::file(F_CV, "CV").optional();
        if let Some(v) = prefill.value(F_CV) {
            cv = cv.value(v.clone());
        }
        fields.push(cv);

        let mut form = self.form().fields(fields);
        for dropdown in DROPDOWNS {
            form = form.list_endpoint(dropdown.list_key, list_path(dropdown.list_key));
        }
        form
    }

    /// Options of one declared dropdown, for Stage Actions configured before any candidate.
    pub async fn list_options(&self, list_key: &str) -> Result<ListResponse, ListError> {
        let Some(dropdown) = DROPDOWNS.iter().find(|d| d.list_key == list_key) else {
            return Err(ListError::UnknownList(list_key.chars().take(60).collect()));
        };
        match self.catalog().await {
            Ok((_, catalog)) => Ok(ListResponse::new(
                dropdown.list_key,
                catalog.options(dropdown),
            )),
            Err(problem) if problem.unconfigured => Err(ListError::NotConfigured),
            Err(problem) => Err(ListError::Unavailable(problem.text)),
        }
    }

    /// Creates the employee (or finds the one this candidate already has) and attaches the CV.
    /// Business failures are `Ok` with `success: false`; `Err` means a malformed request. Either
    /// way the attempt is kept as a plugin export.
    pub async fn submit(&self, req: &PluginRequest) -> Result<ActionResult, BadRequest> {
        let email_key = req
            .form_str(F_EMAIL)
            .filter(|e| valid_email(e))
            .map(|e| e.to_lowercase());
        let _serialised = match &email_key {
            Some(email) => Some(self.inner.locks.lock(email).await),
            None => None,
        };
        let key = match &email_key {
            Some(email) => format!("plugin:{email}"),
            None => unkeyed_key(),
        };
        let application_id = req.entity_id("application").unwrap_or_default();
        let started = Instant::now();
        let attempt = match export_queue::begin_plugin_attempt(
            &self.inner.pool,
            &key,
            &application_id,
        )
        .await
        {
            Ok(attempt) => attempt,
            Err(e) => {
                tracing::error!(error = %e, "could not open the plugin export");
                return Ok(ActionResult::failure(
                        EXPORT,
                        Vec::new(),
                        Some(Toast::error(
                            "The console could not record this export, so nothing was sent to HiBob. Try again in a moment.",
                        )),
                    ));
            }
        };
        let run = Run {
            pool: &self.inner.pool,
            export_id: attempt.export_id,
            attempt: attempt.attempt,
        };
        // the form was prefilled through the mapping in force; the export says which version
        match self.inner.mappings.current_id().await {
            Ok(version) => {
                if let Err(e) =
                    export_queue::set_mapping_version(&self.inner.pool, attempt.export_id, version)
                        .await
                {
                    tracing::error!(error = %e, "could not record the plugin export's mapping version");
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot read the mapping version"),
        }
        let end = self.carry_out(&run, &attempt, req).await;
        if let Err(e) = export_queue::finish_plugin_attempt(
            &self.inner.pool,
            attempt.export_id,
            end.status,
            end.error.as_deref(),
        )
        .await
        {
            tracing::error!(export_id = attempt.export_id, error = %e, "could not record the plugin export's result");
        }
        if end.status == export_queue::Status::Succeeded {
            // the failed submits before this one for the same application need nothing more
            match crate::export_resolution::supersede_plugin_failures(
                &self.inner.pool,
                attempt.export_id,
            )
            .await
            {
                Ok(ids) if !ids.is_empty() => {
                    tracing::info!(
                        export_id = attempt.export_id,
                        superseded = ids.len(),
                        "earlier failed submits resolved"
                    );
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(export_id = attempt.export_id, error = %e, "could not resolve the earlier failed submits");
                }
            }
        }
        tracing::info!(
            export_id = attempt.export_id,
            attempt = attempt.attempt,
            status = end.status.as_str(),
            employee_id = end.employee_id.as_deref().unwrap_or(""),
            elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "plugin submit finished"
        );
        end.answer
    }

    async fn carry_out(&self, run: &Run<'_>, attempt: &PluginAttempt, req: &PluginRequest) -> End {
        let started = Instant::now();
        let inputs = Inputs::read(req);
        if let Err(e) = export_queue::set_candidate(
            run.pool,
            run.export_id,
            inputs.display_name().as_deref(),
            inputs.email.as_deref(),
            inputs.start_date.as_deref(),
        )
        .await
        {
            tracing::error!(export_id = run.export_id, error = %e, "could not record the candidate");
        }
        let record_inputs = inputs.for_record();
        if let Err(bad) = check_submit_shape(req) {
            let detail = format!("malformed request: {bad}; inputs: {record_inputs}");
            run.record("validate", "failed", &detail, CallLog::new(), started)
                .await;
            return End::refused(attempt, format!("malformed request: {bad}"), Err(bad));
        }

        let default_site = self.setting(CredentialKey::HibobDefaultSite).await;
        let (mut draft, mut errors) = inputs.check(default_site.as_deref());
        let hibob = self.catalog().await;
        if let Ok((_, catalog)) = &hibob {
            for dropdown in DROPDOWNS {
                let chosen = match inputs.dropdown(&dropdown) {
                    Some(v) => Some(v),
                    None if dropdown == SITES => default_site.as_deref(),
                    None => None,
                };
                let Some(chosen) = chosen else { continue };
                match catalog.resolve(&dropdown, chosen) {
                    Ok(value) => draft.choices.push((dropdown, value)),
                    Err(problem) => errors.push(FieldError::new(dropdown.form_key, problem)),
                }
            }
        }
        if !errors.is_empty() {
            let summary = errors
                .iter()
                .map(|e| format!("{}: {}", e.key, e.error))
                .collect::<Vec<_>>()
                .join("; ");
            run.record(
                "validate",
                "failed",
                &format!("{summary}; inputs: {record_inputs}"),
                CallLog::new(),
                started,
            )
            .await;
            let answer = ActionResult::failure(
                EXPORT,
                errors,
                Some(Toast::error(
                    "Some fields need fixing before the employee can be sent to HiBob.",
                )),
            );
            return End::refused(attempt, format!("invalid form: {summary}"), Ok(answer));
        }
        let (client, _) = match hibob {
            Ok(ready) => ready,
            Err(problem) => {
                run.record(
                    "load_lists",
                    "failed",
                    &problem.text,
                    CallLog::new(),
                    started,
                )
                .await;
                let answer = ActionResult::failure(
                    EXPORT,
                    Vec::new(),
                    Some(Toast::error(problem.text.clone())),
                );
                return End::refused(attempt, problem.text, Ok(answer));
            }
        };
        run.record(
            "validate",
            "ok",
            &record_inputs.to_string(),
            CallLog::new(),
            started,
        )
        .await;

        let (employee_id, created) = match self.find_or_create(run, attempt, &client, &draft).await
        {
            Ok(found) => found,
            Err(end) => return end,
        };

        if let Some(end) = self
            .attach_cv(run, attempt, &client, &draft, &employee_id)
            .await
        {
            return end;
        }

        let name = format!("{} {}", draft.first, draft.last);
        let message = if created {
            format!("{name} was sent to HiBob as employee {employee_id}.")
        } else {
            format!("{name} is already in HiBob as employee {employee_id}; no second employee was created.")
        };
        End {
            status: Status::Succeeded,
            error: None,
            answer: Ok(ActionResult::success(EXPORT, message)
                .with_external_record(employee_id.clone(), None)),
            employee_id: Some(employee_id),
        }
    }

    /// The employee this candidate already has (from an earlier submit, or found by e-mail),
    /// or a new one. HiBob refuses a second employee with the same e-mail, and that refusal is
    /// turned into a lookup rather than an error.
    async fn find_or_create(
        &self,
        run: &Run<'_>,
        attempt: &PluginAttempt,
        client: &hibob::Client,
        draft: &Draft,
    ) -> Result<(String, bool), End> {
        if let Some(id) = &attempt.hibob_employee_id {
            run.record(
                "search_employee",
                "skipped",
                &format!("employee {id} is known from an earlier submit"),
                CallLog::new(),
                Instant::now(),
            )
            .await;
            return Ok((id.clone(), false));
        }
        let fail = |e: &HibobError| End::attention(format!("HiBob: {e}"), Ok(failure_for(e)));

        let started = Instant::now();
        let mut log = CallLog::new();
        let found = self.search(client, &draft.email, &mut log).await;
        match &found {
            Ok(Some(e)) => {
                let detail = format!("employee {} already has this email", e.id);
                run.record("search_employee", "ok", &detail, log, started)
                    .await;
            }
            Ok(None) => {
                run.record(
                    "search_employee",
                    "ok",
                    "no employee has this email yet",
                    log,
                    started,
                )
                .await;
            }
            Err(e) => {
                run.record("search_employee", "failed", &e.to_string(), log, started)
                    .await;
            }
        }
        match found {
            Ok(Some(existing)) => {
                run.employee_id(&existing.id).await;
                return Ok((existing.id, false));
            }
            Ok(None) => {}
            Err(e) => return Err(fail(&e)),
        }

        let started = Instant::now();
        let mut log = CallLog::new();
        let body = draft.body();
        let mut retried = false;
        let created = loop {
            let result = client.create_employee(&body, &mut log).await;
            match short_wait(&result, &mut retried) {
                Some(wait) => tokio::time::sleep(wait).await,
                None => break result,
            }
        };
        match created {
            Ok(id) => {
                run.employee_id(&id).await;
                run.record(
                    "create_employee",
                    "ok",
                    &format!("employee {id} created"),
                    log,
                    started,
                )
                .await;
                Ok((id, true))
            }
            Err(e) if e.is_email_taken() => {
                run.record("create_employee", "failed", &e.to_string(), log, started)
                    .await;
                let started = Instant::now();
                let mut log = CallLog::new();
                let found = self.search(client, &draft.email, &mut log).await;
                match found {
                    Ok(Some(existing)) => {
                        let detail = format!("employee {} holds this email", existing.id);
                        run.record("search_employee", "ok", &detail, log, started)
                            .await;
                        run.employee_id(&existing.id).await;
                        Ok((existing.id, false))
                    }
                    Ok(None) => {
                        let detail = "HiBob says the email is taken, but no employee with it is visible to the service user";
                        run.record("search_employee", "failed", detail, log, started)
                            .await;
                        let answer = ActionResult::failure(
                            EXPORT,
                            vec![FieldError::new(
                                F_EMAIL,
                                "HiBob already has someone with this email, but the console's service user cannot see them",
                            )],
                            Some(Toast::error(
                                "HiBob already has an employee with this email. Ask an admin to let the service user see all employees (including inactive ones), or use another email.",
                            )),
                        );
                        Err(End::attention(detail, Ok(answer)))
                    }
                    Err(e) => {
                        run.record("search_employee", "failed", &e.to_string(), log, started)
                            .await;
                        Err(fail(&e))
                    }
                }
            }
            Err(e) => {
                run.record("create_employee", "failed", &e.to_string(), log, started)
                    .await;
                Err(fail(&e))
            }
        }
    }

    async fn search(
        &self,
        client: &hibob::Client,
        email: &str,
        log: &mut CallLog,
    ) -> Result<Option<hibob::EmployeeSummary>, HibobError> {
        let mut retried = false;
        loop {
            let result = client.search_by_email(email, log).await;
            match short_wait(&result, &mut retried) {
                Some(wait) => tokio::time::sleep(wait).await,
                None => return result,
            }
        }
    }

    /// Hands HiBob the link so HiBob downloads the file; the console never fetches it. `None`
    /// when there is nothing more to do.
    async fn attach_cv(
        &self,
        run: &Run<'_>,
        attempt: &PluginAttempt,
        client: &hibob::Client,
        draft: &Draft,
        employee_id: &str,
    ) -> Option<End> {
        let started = Instant::now();
        let Some(cv) = &draft.cv else {
            run.record(
                "upload_cv",
                "skipped",
                "the form has no CV",
                CallLog::new(),
                started,
            )
            .await;
            return None;
        };
        if attempt.cv_uploaded {
            run.record(
                "upload_cv",
                "skipped",
                "the CV was attached by an earlier submit",
                CallLog::new(),
                started,
            )
            .await;
            return None;
        }
        let name = cv.display_name("CV.pdf");
        let mut log = CallLog::new();
        let mut retried = false;
        let uploaded = loop {
            let result = client
                .upload_document_from_url(employee_id, DocFolder::Shared, &name, &cv.url, &mut log)
                .await;
            match short_wait(&result, &mut retried) {
                Some(wait) => tokio::time::sleep(wait).await,
                None => break result,
            }
        };
        match uploaded {
            Ok(()) => {
                run.record(
                    "upload_cv",
                    "ok",
                    &format!("{name} added to the shared folder"),
                    log,
                    started,
                )
                .await;
                if let Err(e) = export_queue::mark_cv_uploaded(run.pool, run.export_id).await {
                    tracing::error!(export_id = run.export_id, error = %e, "could not record the CV upload");
                }
                None
            }
            Err(e) => {
                run.record("upload_cv", "failed", &e.to_string(), log, started)
                    .await;
                let errors = match &e {
                    HibobError::Rejected { message, .. } => {
                        vec![FieldError::new(
                            F_CV,
                            format!("HiBob could not add this file: {message}"),
                        )]
                    }
                    _ => Vec::new(),
                };
                let toast = format!(
                    "Employee {employee_id} is in HiBob, but the CV was not attached. {} Submit again to retry the CV; no second employee will be created.",
                    explain_hibob_error(&e)
                );
                let mut end = End::attention(
                    format!("CV not attached: HiBob: {e}"),
                    Ok(ActionResult::failure(
                        EXPORT,
                        errors,
                        Some(Toast::error(toast)),
                    )),
                );
                end.employee_id = Some(employee_id.to_owned());
                Some(end)
            }
        }
    }

    /// How many per-e-mail locks are alive; lets tests prove the map does not leak.
    #[doc(hidden)]
    pub fn live_locks(&self) -> usize {
        self.inner.locks.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use wiremock::{
        matchers::{method, path},
        Mock, MockServer, ResponseTemplate,
    };

    fn request(value: Value) -> PluginRequest {
        PluginRequest::from_value(value)
    }

    fn item(id: &str, name: &str) -> ListItem {
        ListItem {
            id: id.into(),
            name: name.into(),
            archived: false,
            children: Vec::new(),
        }
    }

    fn catalog() -> Catalog {
        let mut archived = item("3", "Old office");
        archived.archived = true;
        let mut eng = item("t-eng", "Engineering");
        eng.children = vec![item("t1", "Backend engineer"), item("t2", "SRE")];
        let mut sales = item("t-sales", "Sales");
        sales.children = vec![item("t3", "Account executive")];
        Catalog::build(
            vec![
                NamedList {
                    name: "site".into(),
                    items: vec![item("1", "London"), item("2", "New York"), archived],
                },
                NamedList {
                    name: "department".into(),
                    items: vec![item("d1", "Engineering"), item("d2", "Sales")],
                },
                NamedList {
                    name: "title".into(),
                    items: vec![eng, sales],
                },
            ],
            None,
        )
    }

    #[test]
    fn meta_declares_the_action_token_and_lists() {
        let json = serde_json::to_value(meta()).unwrap();
        assert_eq!(json["name"], "HiBob");
        assert!(json["logoBase64"]
            .as_str()
            .unwrap()
            .starts_with("data:image/svg+xml;base64,"));
        let action = &json["actions"][0];
        assert_eq!(action["key"], "exportCandidate");
        assert_eq!(action["label"], "Send to HiBob");
        assert_eq!(action["metaEndpoint"], "/export-candidate/meta");
        let icon = action["iconSvgBase64"].as_str().unwrap();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(icon.trim_start_matches("data:image/svg+xml;base64,"))
            .unwrap();
        assert!(String::from_utf8(decoded).unwrap().starts_with("<svg"));
        let mapped: Vec<(&str, &str)> = action["mappings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["key"].as_str().unwrap(), m["value"].as_str().unwrap()))
            .collect();
        assert_eq!(
            mapped,
            [
                ("firstName", "{{candidate_first_name}}"),
                ("lastName", "{{candidate_last_name}}"),
                ("email", "{{candidate_email}}"),
                ("startDate", "{{candidate_start_date}}"),
                ("cvDocument", "{{candidate_cv}}"),
            ]
        );
        let token = &json["configurationFormFields"][0];
        assert_eq!(token["key"], "pluginToken");
        assert_eq!(token["sensitive"], true);
        assert_eq!(token["required"], true);
        assert_eq!(token["useAsHttpHeader"], "X-Plugin-Token");
        assert_eq!(
            json["listEndpoints"],
            json!([
                {"key": "sites", "endpoint": "/lists/sites"},
                {"key": "departments", "endpoint": "/lists/departments"},
                {"key": "titles", "endpoint": "/lists/titles"},
                {"key": "employmentTypes", "endpoint": "/lists/employmentTypes"},
            ])
        );
    }

    #[test]
    fn token_from_header_or_configuration_values() {
        let empty = request(json!({}));
        assert_eq!(
            check_token(None, Some("t"), &empty),
            Err(AuthError::NotConfigured)
        );
        assert_eq!(
            check_token(Some("  "), Some("t"), &empty),
            Err(AuthError::NotConfigured)
        );
        assert_eq!(
            check_token(Some("secret"), None, &empty),
            Err(AuthError::Refused)
        );
        assert_eq!(check_token(Some("secret"), Some("secret"), &empty), Ok(()));
        assert_eq!(
            check_token(Some("secret"), Some("secreT"), &empty),
            Err(AuthError::Refused)
        );
        assert_eq!(
            check_token(Some("secret"), Some("secret-longer"), &empty),
            Err(AuthError::Refused)
        );
        let configured =
            request(json!({"configurationValues": [{"key": "pluginToken", "value": " secret\n"}]}));
        assert_eq!(check_token(Some("secret"), None, &configured), Ok(()));
        assert_eq!(
            check_token(Some("secret"), Some("wrong"), &configured),
            Ok(())
        );
        let as_map = request(json!({"configurationValues": {"pluginToken": "nope"}}));
        assert_eq!(
            check_token(Some("secret"), None, &as_map),
            Err(AuthError::Refused)
        );
    }

    #[test]
    fn shapes_are_checked() {
        assert!(check_shape(&PluginRequest::default()).is_ok());
        assert!(check_shape(&request(json!({"formFields": [{"key": "a", "value": 1}]}))).is_ok());
        assert!(check_shape(&request(json!({"formFields": {"a": 1}}))).is_ok());
        let err = check_shape(&request(json!([1, 2]))).unwrap_err();
        assert!(err.message.contains("JSON object"), "{err}");
        let err = check_shape(&request(json!({"formFields": "x"}))).unwrap_err();
        assert!(err.message.starts_with("formFields must be"), "{err}");
        let err =
            check_shape(&request(json!({"configurationValues": [{"value": 1}]}))).unwrap_err();
        assert!(err.message.contains("configurationValues[0]"), "{err}");
        let err = check_submit_shape(&request(json!({}))).unwrap_err();
        assert!(err.message.contains("formFields is missing"), "{err}");
        let err = check_submit_shape(&request(
            json!({"formFields": [{"key": "firstName", "value": ["a"]}]}),
        ))
        .unwrap_err();
        assert!(err.message.contains("\"firstName\" must be text"), "{err}");
        assert!(check_submit_shape(&request(
            json!({"formFields": [{"key": "cvDocument", "value": {"url": "u"}}]})
        ))
        .is_ok());
    }

    #[test]
    fn names_follow_hibobs_rules() {
        assert_eq!(name_problem("first name", "Zoë-Anne O'Brien"), None);
        assert_eq!(name_problem("first name", "José (Pepe)"), None);
        assert!(name_problem("first name", &"a".repeat(51))
            .unwrap()
            .contains("50"));
        assert_eq!(name_problem("first name", &"é".repeat(50)), None);
        assert!(name_problem("first name", "Jane\nDoe")
            .unwrap()
            .contains("control"));
        assert!(name_problem("first name", "R2D2")
            .unwrap()
            .contains("\"2\""));
        assert!(name_problem("last name", "<script>").is_some());
    }

    #[test]
    fn emails_are_checked_for_syntax() {
        for good in [
            "jane.doe@example.com",
            "j+tag@sub.example.co.uk",
            "o'neil@example.ie",
        ] {
            assert!(valid_email(good), "{good}");
        }
        for bad in [
            "",
            "jane",
            "jane@",
            "@example.com",
            "jane@example",
            "jane doe@example.com",
            "jane@@example.com",
            "jane@exa_mple.com",
            ".jane@example.com",
            "jane..d@example.com",
            "jane@-example.com",
            "jane@example.c0m",
        ] {
            assert!(!valid_email(bad), "{bad}");
        }
    }

    #[test]
    fn dates_must_be_iso_days() {
        assert_eq!(parse_date("2026-03-02").as_deref(), Some("2026-03-02"));
        assert_eq!(
            parse_date(" 2026-03-02T00:00:00Z ").as_deref(),
            Some("2026-03-02")
        );
        assert_eq!(parse_date("2026-02-30"), None);
        assert_eq!(parse_date("2026-3-2"), None);
        assert_eq!(parse_date("02/03/2026"), None);
        assert_eq!(parse_date("2026-03-02garbage"), None);
        assert_eq!(parse_date("é"), None);
    }

    #[test]
    fn cv_links_must_be_public_https() {
        assert_eq!(
            cv_url_problem("https://files.example.com/cv.pdf?sig=1"),
            None
        );
        for bad in [
            "http://files.example.com/cv.pdf",
            "file:///etc/passwd",
            "https://user:pw@files.example.com/cv.pdf",
            "https://127.0.0.1/cv.pdf",
            "https://10.1.2.3/cv.pdf",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/cv.pdf",
            "https://[::ffff:10.0.0.1]/cv.pdf",
            "https://localhost/cv.pdf",
            "https://100.64.0.1/cv.pdf",
            "not a url",
        ] {
            assert!(cv_url_problem(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn catalog_resolves_names_ids_and_archived_items() {
        let c = catalog();
        assert_eq!(c.resolve(&SITES, "london"), Ok("London".to_owned()));
        assert_eq!(c.resolve(&SITES, "2"), Ok("New York".to_owned()));
        assert!(c
            .resolve(&SITES, "Old office")
            .unwrap_err()
            .contains("archived"));
        assert!(c
            .resolve(&SITES, "Paris")
            .unwrap_err()
            .contains("no site called \"Paris\""));
        assert_eq!(c.resolve(&DEPARTMENTS, "Sales"), Ok("d2".to_owned()));
        assert!(c
            .resolve(&EMPLOYMENT_TYPES, "Permanent")
            .unwrap_err()
            .contains("no employment type list"));
        let sites: Vec<String> = c.options(&SITES).into_iter().map(|o| o.value).collect();
        assert_eq!(sites, ["London", "New York"]);
        let titles = c.options(&TITLES);
        assert_eq!(titles[1].label, "Engineering › Backend engineer");
        assert_eq!(titles[1].value, "t1");
    }

    #[test]
    fn a_department_narrows_grouped_titles() {
        let c = catalog();
        assert!(c.titles_are_grouped());
        let narrowed: Vec<String> = c
            .title_options_for(Some("d1"))
            .into_iter()
            .map(|o| o.value)
            .collect();
        assert_eq!(narrowed, ["t1", "t2"]);
        assert_eq!(c.title_options_for(None).len(), 5);
        assert_eq!(c.title_options_for(Some("unknown")).len(), 5);
    }

    #[test]
    fn the_field_catalogue_names_the_lists() {
        let fields = vec![FieldMeta {
            id: "payroll.employment.type".into(),
            name: "Employment type".into(),
            category: "payroll".into(),
            category_name: None,
            field_type: "list".into(),
            json_path: "payroll.employment.type".into(),
            is_list: true,
            list_name: Some("contractKinds".into()),
            historical: true,
            description: None,
        }];
        let lists = vec![NamedList {
            name: "contractKinds".into(),
            items: vec![item("p", "Permanent")],
        }];
        let with = Catalog::build(lists.clone(), Some(&fields));
        assert_eq!(
            with.resolve(&EMPLOYMENT_TYPES, "permanent"),
            Ok("p".to_owned())
        );
        assert!(Catalog::build(lists, None)
            .list(&EMPLOYMENT_TYPES)
            .is_none());
    }

    #[test]
    fn the_create_body_nests_dotted_paths() {
        let draft = Draft {
            first: "Jane".into(),
            last: "Doe".into(),
            email: "jane@example.com".into(),
            start_date: "2026-03-02".into(),
            choices: vec![
                (SITES, "London".into()),
                (TITLES, "t1".into()),
                (EMPLOYMENT_TYPES, "p".into()),
            ],
            cv: None,
        };
        assert_eq!(
            draft.body(),
            json!({
                "firstName": "Jane", "surname": "Doe", "email": "jane@example.com",
                "work": {"startDate": "2026-03-02", "site": "London", "title": "t1"},
                "payroll": {"employment": {"type": "p"}}
            })
        );
        assert_eq!(form_key_for("work.site"), Some("site"));
        assert_eq!(form_key_for("surname"), Some("lastName"));
        assert_eq!(
            form_key_for("payroll.employment.type"),
            Some("employmentType")
        );
        assert_eq!(form_key_for("home.mobilePhone"), None);
    }

    #[test]
    fn hibob_rejections_naming_a_field_become_field_errors() {
        let e = HibobError::Rejected {
            status: 400,
            key: Some("validations.work.site.invalid".into()),
            message: "Invalid site".into(),
            field: Some("work.site".into()),
        };
        let result = failure_for(&e);
        assert_eq!(
            result.errors,
            vec![FieldError::new("site", "HiBob: Invalid site")]
        );
        assert!(result.toast.is_some());
        let unauthorized = failure_for(&HibobError::Unauthorized {
            status: 401,
            message: "x".into(),
        });
        assert!(unauthorized.errors.is_empty());
        assert!(unauthorized
            .toast
            .unwrap()
            .error
            .unwrap()
            .contains("credentials"));
    }

    #[test]
    fn inputs_read_files_and_report_unreadable_ones() {
        let req = request(json!({"formFields": [
            {"key": "firstName", "value": "Jane"},
            {"key": "cvDocument", "value": {"url": "https://x.example.com/cv.pdf", "filename": "cv.pdf"}}
        ]}));
        let inputs = Inputs::read(&req);
        assert_eq!(
            inputs.cv.as_ref().map(|c| c.name.as_deref()),
            Some(Some("cv.pdf"))
        );
        assert!(!inputs.cv_unreadable);
        let odd = Inputs::read(&request(json!({"formFields": {"cvDocument": {"id": 5}}})));
        assert!(odd.cv.is_none() && odd.cv_unreadable);
        let blank = Inputs::read(&request(json!({"formFields": {"cvDocument": ""}})));
        assert!(!blank.cv_unreadable);
    }

    #[test]
    fn prefill_reads_form_fields_then_mappings() {
        let req = request(json!({
            "formFields": [{"key": "firstName", "value": "Jane"}],
            "mappings": [{"key": "firstName", "value": "Other"}, {"key": "lastName", "value": "Doe"}]
        }));
        let p = Prefill::from_request(&req);
        assert_eq!(p.text("firstName").as_deref(), Some("Jane"));
        assert_eq!(p.text("lastName").as_deref(), Some("Doe"));
        assert_eq!(p.text("email"), None);
    }

    #[tokio::test]
    async fn keyed_locks_serialise_and_clean_up() {
        let locks = Arc::new(KeyedLocks::default());
        let running = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..5 {
            let locks = Arc::clone(&locks);
            let running = Arc::clone(&running);
            tasks.push(tokio::spawn(async move {
                let _g = locks.lock("jane@example.com").await;
                assert_eq!(running.fetch_add(1, Ordering::SeqCst), 0);
                tokio::time::sleep(Duration::from_millis(5)).await;
                running.fetch_sub(1, Ordering::SeqCst);
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(locks.len(), 0);
    }

    fn lists_body() -> Value {
        json!([{"name": "site", "items": [{"id": 1, "value": "London", "name": "London", "archived": false, "children": []}]}])
    }

    #[tokio::test]
    async fn the_list_cache_fetches_once_and_refreshes_in_the_background() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/company/named-lists"))
            .respond_with(ResponseTemplate::new(200).set_body_json(lists_body()))
            .mount(&server)
            .await;
        let client =
            hibob::Client::new(&server.uri(), "S", SecretString::from("t".to_owned())).unwrap();
        let cache = Arc::new(ListCache::new(
            Duration::from_millis(150),
            Duration::from_secs(5),
        ));
        let count = || async {
            server
                .received_requests()
                .await
                .unwrap()
                .iter()
                .filter(|r| r.url.path() == "/company/named-lists")
                .count()
        };

        let (a, b, c) = tokio::join!(
            cache.get(&client, "fp"),
            cache.get(&client, "fp"),
            cache.get(&client, "fp")
        );
        assert!(a.is_ok() && b.is_ok() && c.is_ok());
        assert_eq!(count().await, 1, "concurrent first calls share one fetch");
        cache.get(&client, "fp").await.unwrap();
        assert_eq!(count().await, 1, "fresh lists are not fetched again");

        tokio::time::sleep(Duration::from_millis(200)).await;
        let stale = cache.get(&client, "fp").await.unwrap();
        assert!(
            stale.list(&SITES).is_some(),
            "the stale lists are served at once"
        );
        for _ in 0..50 {
            if count().await == 2 && !cache.refreshing.load(Ordering::Acquire) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(count().await, 2, "one background refresh");
        cache.get(&client, "fp").await.unwrap();
        assert_eq!(count().await, 2, "the refreshed lists are fresh again");

        cache.get(&client, "other credentials").await.unwrap();
        assert_eq!(count().await, 3, "new credentials fetch their own lists");
    }

    #[tokio::test]
    async fn a_failed_refresh_keeps_the_stale_lists() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/company/named-lists"))
            .respond_with(ResponseTemplate::new(200).set_body_json(lists_body()))
            .up_to_n_times(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/company/named-lists"))
            .respond_with(ResponseTemplate::new(500))
            .mount(&server)
            .await;
        let client =
            hibob::Client::new(&server.uri(), "S", SecretString::from("t".to_owned())).unwrap();
        let cache = Arc::new(ListCache::new(
            Duration::from_millis(20),
            Duration::from_secs(5),
        ));
        cache.get(&client, "fp").await.unwrap();
        tokio::time::sleep(Duration::from_millis(40)).await;
        cache.get(&client, "fp").await.unwrap();
        for _ in 0..50 {
            if !cache.refreshing.load(Ordering::Acquire) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let kept = cache.get(&client, "fp").await.unwrap();
        assert!(kept.list(&SITES).is_some());
    }

    #[tokio::test]
    async fn a_failed_first_fetch_is_an_error() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/company/named-lists"))
            .respond_with(
                ResponseTemplate::new(401)
                    .set_body_json(json!({"key": "unauthorized", "error": "bad"})),
            )
            .mount(&server)
            .await;
        let client =
            hibob::Client::new(&server.uri(), "S", SecretString::from("t".to_owned())).unwrap();
        let cache = Arc::new(ListCache::new(DEFAULT_LIST_TTL, Duration::from_secs(5)));
        let err = cache.get(&client, "fp").await.unwrap_err();
        assert!(matches!(err, HibobError::Unauthorized { status: 401, .. }));
        let problem = Problem::from_hibob(&err);
        assert!(problem.text.contains("credentials"), "{}", problem.text);
    }
}

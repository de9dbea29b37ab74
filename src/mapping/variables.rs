//! The template variables: Pinpoint's catalogue (the names its own field mappings use), how the
//! console fills each one from the REST application on the webhook path, and a few the console
//! adds (dates, settings, raw objects).
//!
//! Pinpoint documents the names but not the attributes behind them, so each variable reads the
//! first of several likely attribute names and is empty when none is set. Empty is a value, not
//! an error: a mapping's fallbacks decide what happens next.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use minijinja::value::Value;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

use crate::{mapping::templates, pinpoint::Application};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Group {
    Company,
    Candidate,
    Contact,
    Address,
    Other,
    Source,
    Job,
    Console,
    Raw,
}

impl Group {
    pub fn label(self) -> &'static str {
        match self {
            Self::Company => "Company",
            Self::Candidate => "Candidate",
            Self::Contact => "Contact",
            Self::Address => "Address",
            Self::Other => "Other",
            Self::Source => "Source",
            Self::Job => "Job",
            Self::Console => "Dates and settings",
            Self::Raw => "Raw Pinpoint data",
        }
    }
}

/// One variable of the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Variable {
    pub name: &'static str,
    pub group: Group,
    pub description: &'static str,
    /// Pinpoint offers it in its own field mappings (the plugin form can ask Pinpoint for it).
    pub pinpoint: bool,
    /// Pinpoint's REST API has no source for it: the operator gives it a value as a custom
    /// variable of the same name (company details).
    pub settable: bool,
}

const fn pinpoint(name: &'static str, group: Group, description: &'static str) -> Variable {
    Variable {
        name,
        group,
        description,
        pinpoint: true,
        settable: false,
    }
}

const fn console(name: &'static str, group: Group, description: &'static str) -> Variable {
    Variable {
        name,
        group,
        description,
        pinpoint: false,
        settable: false,
    }
}

const fn company(name: &'static str, description: &'static str) -> Variable {
    Variable {
        name,
        group: Group::Company,
        description,
        pinpoint: true,
        settable: true,
    }
}

pub const CATALOGUE: &[Variable] = &[
    company("company_name", "Your company's name. Not in Pinpoint's API: give it a value on this page."),
    company("company_telephone_number", "Your company's telephone number. Not in Pinpoint's API: give it a value on this page."),
    company("company_website", "Your company's website. Not in Pinpoint's API: give it a value on this page."),
    pinpoint("candidate_first_name", Group::Candidate, "First name (application attribute first_name)."),
    pinpoint("candidate_middle_name", Group::Candidate, "Middle name (middle_name), often empty."),
    pinpoint("candidate_last_name", Group::Candidate, "Last name (last_name)."),
    pinpoint("candidate_full_name", Group::Candidate, "First, middle and last name joined by spaces."),
    pinpoint("candidate_preferred_name", Group::Candidate, "Preferred name (preferred_name); empty when not given."),
    pinpoint("candidate_email", Group::Contact, "Email address (email)."),
    pinpoint("candidate_telephone_number", Group::Contact, "Telephone number as typed (phone); use the phone filter to normalise it."),
    pinpoint("candidate_address_line_one", Group::Address, "Address line 1 (address1)."),
    pinpoint("candidate_address_line_two", Group::Address, "Address line 2 (address2)."),
    pinpoint("candidate_address_city", Group::Address, "Town or city (town)."),
    pinpoint("candidate_address_country_name", Group::Address, "Country name, whether Pinpoint stored a name or a code."),
    pinpoint("candidate_address_country_code", Group::Address, "ISO 3166 alpha-2 country code (GB)."),
    pinpoint("candidate_address_country_code_alpha3", Group::Address, "ISO 3166 alpha-3 country code (GBR)."),
    pinpoint("candidate_address_country_code_numeric", Group::Address, "ISO 3166 numeric country code (826)."),
    pinpoint("candidate_address_postal_zip", Group::Address, "Postcode or ZIP (postcode)."),
    pinpoint("candidate_birth_date", Group::Other, "Date of birth as YYYY-MM-DD (date_of_birth)."),
    pinpoint("candidate_start_date", Group::Other, "Start date from the accepted offer, as YYYY-MM-DD; empty when no offer has one."),
    pinpoint("candidate_cv", Group::Other, "Link to the CV (Pinpoint's PDF rendering, else the first PDF or Word attachment). Short-lived."),
    pinpoint("candidate_submitted_by", Group::Source, "Who submitted the application (submitted_by)."),
    pinpoint("candidate_channel", Group::Source, "Source channel (channel or source)."),
    pinpoint("candidate_channel_detail", Group::Source, "Source detail (channel_detail or source_detail)."),
    pinpoint("candidate_referred_by", Group::Source, "Referrer's name (referred_by or referrer)."),
    pinpoint("job_title", Group::Job, "Title of the job applied for."),
    pinpoint("job_employment_type", Group::Job, "Employment type of the job (employment_type), e.g. full_time."),
    pinpoint("job_recruitment_manager_name", Group::Job, "Name of the job's recruitment manager, when Pinpoint includes it."),
    pinpoint("job_recruitment_manager_email", Group::Job, "Email of the job's recruitment manager, when Pinpoint includes it."),
    console("job_department", Group::Job, "Department of the job (department), when set."),
    console("job_location", Group::Job, "Location of the job (location), when set."),
    console("pinpoint_application_id", Group::Job, "The Pinpoint application's id."),
    console("pinpoint_job_id", Group::Job, "The Pinpoint job's id."),
    console("today", Group::Console, "The day the export runs (the hire day for webhook exports), YYYY-MM-DD."),
    console("tomorrow", Group::Console, "The day after today."),
    console("hired_on", Group::Console, "The day Pinpoint reported the hire, YYYY-MM-DD."),
    console("default_site", Group::Console, "Settings → Default HiBob site."),
    console("default_start_date", Group::Console, "The hire day plus Settings → Default start (days)."),
    console("application", Group::Raw, "Every attribute of the application as Pinpoint sent it: {{ application.linkedin_url }}."),
    console("job", Group::Raw, "Every attribute of the job: {{ job.department }}."),
    console("offer", Group::Raw, "Every attribute of the first offer: {{ offer.salary }}."),
];

pub fn find(name: &str) -> Option<&'static Variable> {
    CATALOGUE.iter().find(|v| v.name == name)
}

/// What the console itself contributes to every render.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// The day templates see as `today`: the hire day, so a retry next week renders the same body.
    pub today: NaiveDate,
    pub hired_on: NaiveDate,
    pub default_site: Option<String>,
    pub start_days_after_hire: i64,
}

/// Longest text kept from a raw Pinpoint object, and how much of one object is kept in all:
/// with every template part running at most once, these bound what a render can hold.
const OBJECT_TEXT_LIMIT: usize = 4 * 1024;
const OBJECT_BUDGET: usize = 256 * 1024;

/// A copy of a raw Pinpoint object with long texts shortened and, past the budget, the rest of
/// its members left out (templates read a few short attributes; none needs a cover letter).
fn bounded_object(value: &Map<String, Json>) -> Map<String, Json> {
    fn shrink(value: &Json, budget: &mut usize, depth: usize) -> Option<Json> {
        if *budget == 0 || depth > 16 {
            return None;
        }
        let out = match value {
            Json::String(s) if s.len() > OBJECT_TEXT_LIMIT => {
                Json::String(crate::outbound::prefix_within(s, OBJECT_TEXT_LIMIT).to_owned())
            }
            Json::Array(items) => Json::Array(
                items
                    .iter()
                    .map_while(|v| shrink(v, budget, depth + 1))
                    .collect(),
            ),
            Json::Object(map) => Json::Object(members(map, budget, depth + 1)),
            other => other.clone(),
        };
        let cost = match &out {
            Json::String(s) => s.len() + 2,
            Json::Array(_) | Json::Object(_) => 2,
            _ => 8,
        };
        *budget = budget.saturating_sub(cost);
        Some(out)
    }
    fn members(map: &Map<String, Json>, budget: &mut usize, depth: usize) -> Map<String, Json> {
        let mut out = Map::new();
        for (k, v) in map {
            *budget = budget.saturating_sub(k.len().min(OBJECT_TEXT_LIMIT) + 4);
            match shrink(v, budget, depth) {
                Some(v) => {
                    out.insert(k.chars().take(256).collect(), v);
                }
                None => break,
            }
        }
        out
    }
    let mut budget = OBJECT_BUDGET;
    members(value, &mut budget, 0)
}

/// The values of the catalogue for one candidate (custom variables are added by the mapping).
#[derive(Debug, Clone, Default)]
pub struct Values {
    text: BTreeMap<String, String>,
    /// Raw Pinpoint objects, converted for templates once, when the candidate is read.
    objects: BTreeMap<String, Value>,
    /// The template context, built on first use and dropped on any change.
    context: std::sync::OnceLock<templates::Context>,
}

impl Values {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.text.get(name).map(String::as_str)
    }

    /// Sets a text variable; past [`templates::MAX_VALUE`] it is cut (no HiBob field is that
    /// long, and a render must not start from a value larger than any it may build).
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        self.context = std::sync::OnceLock::new();
        let mut value = value.into();
        let kept = crate::outbound::prefix_within(&value, templates::MAX_VALUE).len();
        value.truncate(kept);
        self.text.insert(name.to_owned(), value);
    }

    pub fn set_object(&mut self, name: &str, value: &Map<String, Json>) {
        self.context = std::sync::OnceLock::new();
        let bounded = bounded_object(value);
        self.objects.insert(
            name.to_owned(),
            Value::from(minijinja::value::Serde(&bounded)),
        );
    }

    pub fn has(&self, name: &str) -> bool {
        self.text.contains_key(name) || self.objects.contains_key(name)
    }

    pub fn is_object(&self, name: &str) -> bool {
        self.objects.contains_key(name)
    }

    /// A raw object's attribute, for tests and the trace.
    pub fn object_attribute(&self, object: &str, attribute: &str) -> Option<Value> {
        self.objects
            .get(object)
            .and_then(|o| o.get_attr(attribute).ok())
            .filter(|v| !v.is_undefined())
    }

    /// The minijinja context: text variables plus the raw objects (built once per candidate).
    pub fn context(&self) -> templates::Context {
        self.context.get_or_init(|| self.build_context()).clone()
    }

    fn build_context(&self) -> templates::Context {
        let mut map: BTreeMap<String, Value> = self
            .text
            .iter()
            .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
            .collect();
        for (k, v) in &self.objects {
            map.insert(k.clone(), v.clone());
        }
        templates::Context::new(map)
    }

    /// The console's own variables, which exist whatever the candidate.
    pub fn with_setting(mut self, setting: &Setting) -> Self {
        let day = |d: NaiveDate| d.format("%Y-%m-%d").to_string();
        self.set("today", day(setting.today));
        self.set("tomorrow", day(setting.today + chrono::Duration::days(1)));
        self.set("hired_on", day(setting.hired_on));
        self.set(
            "default_site",
            setting.default_site.clone().unwrap_or_default(),
        );
        let start = chrono::Duration::try_days(setting.start_days_after_hire)
            .and_then(|d| setting.hired_on.checked_add_signed(d))
            .map(day)
            .unwrap_or_default();
        self.set("default_start_date", start);
        for v in CATALOGUE {
            if v.group != Group::Raw && !self.text.contains_key(v.name) {
                self.set(v.name, "");
            }
        }
        for raw in ["application", "job", "offer"] {
            if !self.objects.contains_key(raw) {
                self.set_object(raw, &Map::new());
            }
        }
        self
    }
}

fn first_text(attributes: &Map<String, Json>, keys: &[&str]) -> String {
    keys.iter()
        .find_map(|k| match attributes.get(*k) {
            Some(Json::String(s)) if !s.trim().is_empty() => Some(s.trim().to_owned()),
            Some(Json::Number(n)) => Some(n.to_string()),
            Some(Json::Object(o)) => o
                .get("name")
                .or_else(|| o.get("title"))
                .and_then(Json::as_str)
                .map(str::to_owned),
            _ => None,
        })
        .unwrap_or_default()
}

fn person(attributes: &Map<String, Json>, prefix: &str, keys: &[&str]) -> (String, String) {
    let nested = attributes
        .get(prefix)
        .and_then(Json::as_object)
        .cloned()
        .unwrap_or_default();
    let name = first_text(&nested, &["name", "full_name", "display_name"]);
    let email = first_text(&nested, &["email"]);
    let name_keys: Vec<String> = keys.iter().map(|k| format!("{prefix}_{k}")).collect();
    let name_keys: Vec<&str> = name_keys.iter().map(String::as_str).collect();
    (
        if name.is_empty() {
            first_text(attributes, &name_keys)
        } else {
            name
        },
        if email.is_empty() {
            first_text(attributes, &[&format!("{prefix}_email")])
        } else {
            email
        },
    )
}

/// Fills the catalogue from an application fetched over the REST API.
/// The start date of the application's accepted offer, as `YYYY-MM-DD`, when one has it.
pub fn offer_start_date(app: &Application) -> Option<String> {
    app.offers
        .iter()
        .filter_map(|o| o.start_date.as_deref())
        .find_map(templates::normalise_date)
}

pub fn from_application(app: &Application, setting: &Setting) -> Values {
    let a = &app.attributes;
    let mut v = Values::default();
    let first = app.first_name.clone().unwrap_or_default();
    let last = app.last_name.clone().unwrap_or_default();
    let middle = first_text(a, &["middle_name"]);
    v.set("candidate_first_name", first.trim());
    v.set("candidate_middle_name", middle.as_str());
    v.set("candidate_last_name", last.trim());
    let full = [first.trim(), middle.as_str(), last.trim()]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    v.set("candidate_full_name", full);
    v.set(
        "candidate_preferred_name",
        first_text(a, &["preferred_name", "preferred_first_name"]),
    );
    v.set(
        "candidate_email",
        app.email.clone().unwrap_or_default().trim(),
    );
    v.set(
        "candidate_telephone_number",
        app.phone.clone().unwrap_or_default().trim(),
    );
    v.set(
        "candidate_address_line_one",
        first_text(a, &["address1", "address_line_one", "address_line_1"]),
    );
    v.set(
        "candidate_address_line_two",
        first_text(a, &["address2", "address_line_two", "address_line_2"]),
    );
    v.set("candidate_address_city", first_text(a, &["town", "city"]));
    v.set(
        "candidate_address_postal_zip",
        first_text(a, &["postcode", "zip", "postal_code"]),
    );
    let country_raw = first_text(a, &["country", "country_code", "country_name"]);
    match templates::find_country(&country_raw) {
        Some(c) => {
            v.set(
                "candidate_address_country_name",
                templates::country_name(&c),
            );
            v.set("candidate_address_country_code", c.alpha2);
            v.set("candidate_address_country_code_alpha3", c.alpha3);
            v.set("candidate_address_country_code_numeric", c.code);
        }
        None => v.set("candidate_address_country_name", country_raw),
    }
    let birth = first_text(a, &["date_of_birth", "birth_date", "dob"]);
    v.set(
        "candidate_birth_date",
        templates::normalise_date(&birth).unwrap_or(birth),
    );
    v.set(
        "candidate_start_date",
        offer_start_date(app).unwrap_or_default(),
    );
    v.set(
        "candidate_cv",
        app.cv().map(|c| c.url.clone()).unwrap_or_default(),
    );
    v.set(
        "candidate_submitted_by",
        first_text(a, &["submitted_by", "submitted_by_name"]),
    );
    v.set(
        "candidate_channel",
        first_text(a, &["channel", "source", "source_name"]),
    );
    v.set(
        "candidate_channel_detail",
        first_text(a, &["channel_detail", "source_detail"]),
    );
    v.set(
        "candidate_referred_by",
        first_text(a, &["referred_by", "referrer", "referrer_name"]),
    );
    v.set("pinpoint_application_id", app.id.as_str());
    if let Some(job) = &app.job {
        let j = &job.attributes;
        v.set("job_title", job.title.clone().unwrap_or_default());
        v.set(
            "job_employment_type",
            first_text(j, &["employment_type", "employment_type_name"]),
        );
        v.set(
            "job_department",
            first_text(j, &["department", "department_name"]),
        );
        v.set(
            "job_location",
            first_text(j, &["location", "location_name"]),
        );
        let (name, email) = person(j, "recruitment_manager", &["name"]);
        v.set("job_recruitment_manager_name", name);
        v.set("job_recruitment_manager_email", email);
        v.set("pinpoint_job_id", job.id.as_str());
        v.set_object("job", j);
    }
    let mut attributes = a.clone();
    // signed links expire and are long: templates get the CV through candidate_cv
    attributes.remove("attachments");
    v.set_object("application", &attributes);
    if let Some(offer) = app.offers.first() {
        v.set_object("offer", &offer.attributes);
    }
    v.with_setting(setting)
}

/// A fictional candidate with every common attribute set, so a mapping can be previewed and
/// linted before any real hire exists.
pub fn sample(setting: &Setting) -> Values {
    let start = (setting.today + chrono::Duration::days(21))
        .format("%Y-%m-%d")
        .to_string();
    let document = serde_json::json!({
        "data": {
            "id": "sample", "type": "applications",
            "attributes": {
                "first_name": "Ada", "last_name": "Lovelace", "preferred_name": "Ada",
                "email": "ada.lovelace@example.com", "phone": "07700 900123",
                "address1": "12 St James's Square", "town": "London", "postcode": "SW1Y 4JH",
                "country": "GB", "date_of_birth": "1990-12-10", "source": "Referral",
                "referred_by": "Charles Babbage",
                "attachments": [{"context": "pdf_cv", "filename": "Ada-Lovelace-CV.pdf",
                                 "url": "https://files.example.com/cv/ada-lovelace.pdf"}]
            },
            "relationships": {
                "job": {"data": {"type": "jobs", "id": "sample-job"}},
                "offers": {"data": [{"type": "offers", "id": "sample-offer"}]}
            }
        },
        "included": [
            {"type": "jobs", "id": "sample-job", "attributes": {
                "title": "Software Engineer", "department": "Engineering",
                "employment_type": "full_time", "location": "London"}},
            {"type": "offers", "id": "sample-offer", "attributes": {
                "start_date": start, "salary": 65000, "salary_currency": "GBP"}}
        ]
    });
    match Application::from_document(&document) {
        Ok(app) => from_application(&app, setting),
        Err(_) => Values::default().with_setting(setting),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn setting() -> Setting {
        Setting {
            today: NaiveDate::from_ymd_opt(2026, 11, 22).unwrap(),
            hired_on: NaiveDate::from_ymd_opt(2026, 11, 22).unwrap(),
            default_site: Some("London".into()),
            start_days_after_hire: 14,
        }
    }

    fn application() -> Application {
        Application::from_document(&json!({
            "data": {
                "id": "77", "type": "applications",
                "attributes": {
                    "first_name": " Ada ", "last_name": "Lovelace", "email": "ada@example.com",
                    "phone": "07700 900123", "country": "GB", "town": "London",
                    "date_of_birth": "10/12/1815", "source": "LinkedIn",
                    "attachments": [{"context": "pdf_cv", "url": "https://files.example/cv.pdf", "filename": "cv.pdf"}]
                },
                "relationships": {
                    "job": {"data": {"type": "jobs", "id": "5"}},
                    "offers": {"data": [{"type": "offers", "id": "9"}]}
                }
            },
            "included": [
                {"type": "jobs", "id": "5", "attributes": {"title": "Engineer", "department": "R&D",
                  "employment_type": "full_time", "recruitment_manager": {"name": "Grace Hopper", "email": "grace@example.com"}}},
                {"type": "offers", "id": "9", "attributes": {"start_date": "2027-01-04T00:00:00Z", "salary": 50000}}
            ]
        }))
        .unwrap()
    }

    #[test]
    fn fills_the_catalogue_from_an_application() {
        let v = from_application(&application(), &setting());
        let g = |n: &str| v.get(n).unwrap_or("<unset>").to_owned();
        assert_eq!(g("candidate_first_name"), "Ada");
        assert_eq!(g("candidate_full_name"), "Ada Lovelace");
        assert_eq!(g("candidate_address_country_code"), "GB");
        assert_eq!(g("candidate_address_country_code_alpha3"), "GBR");
        assert_eq!(g("candidate_address_country_code_numeric"), "826");
        assert_eq!(g("candidate_birth_date"), "1815-12-10");
        assert_eq!(g("candidate_start_date"), "2027-01-04");
        assert_eq!(g("candidate_cv"), "https://files.example/cv.pdf");
        assert_eq!(g("candidate_channel"), "LinkedIn");
        assert_eq!(g("job_title"), "Engineer");
        assert_eq!(g("job_department"), "R&D");
        assert_eq!(g("job_recruitment_manager_name"), "Grace Hopper");
        assert_eq!(g("job_recruitment_manager_email"), "grace@example.com");
        assert_eq!(g("tomorrow"), "2026-11-23");
        assert_eq!(g("default_start_date"), "2026-12-06");
        assert_eq!(g("default_site"), "London");
        // known but unset is empty, so fallbacks can take over
        assert_eq!(g("candidate_middle_name"), "");
        assert_eq!(g("company_name"), "");
        assert_eq!(
            v.object_attribute("offer", "salary"),
            Some(Value::from(50000))
        );
        assert_eq!(v.object_attribute("application", "attachments"), None);
    }

    #[test]
    fn every_catalogue_variable_is_defined_for_any_candidate() {
        let v = Values::default().with_setting(&setting());
        for var in CATALOGUE {
            assert!(v.has(var.name), "{}", var.name);
        }
    }

    #[test]
    fn the_sample_candidate_is_complete() {
        let v = sample(&setting());
        assert_eq!(v.get("candidate_full_name"), Some("Ada Lovelace"));
        assert_eq!(v.get("candidate_start_date"), Some("2026-12-13"));
        assert_eq!(v.get("job_department"), Some("Engineering"));
    }

    #[test]
    fn names_are_unique_identifiers() {
        let mut seen = std::collections::HashSet::new();
        for var in CATALOGUE {
            assert!(templates::is_identifier(var.name), "{}", var.name);
            assert!(seen.insert(var.name), "{} twice", var.name);
        }
    }
}

//! The fixed data the simulators serve: HiBob's field catalogue and company lists, Pinpoint's
//! sample candidates and jobs, and the CV file behind every sample's attachment link.
//!
//! Samples are derived from the application id alone (plus today's date for the offer), so a
//! test or a sandbox demo can name any numeric id and get the same candidate every time.

use chrono::{Duration, NaiveDate};
use serde_json::{json, Map, Value};

/// HiBob's company id for the sandbox tenant, echoed in employee records like the real one.
pub const COMPANY_ID: u64 = 636_192;

// ---------------------------------------------------------------------------------------------
// HiBob: fields and named lists
// ---------------------------------------------------------------------------------------------

pub struct FieldSpec {
    pub id: &'static str,
    pub category_id: &'static str,
    pub category_name: &'static str,
    pub name: &'static str,
    pub json_path: &'static str,
    pub field_type: &'static str,
    /// The named list behind a list-typed field (`typeData.listId`).
    pub list: Option<&'static str>,
    pub historical: bool,
}

const fn field(
    id: &'static str,
    category: (&'static str, &'static str),
    name: &'static str,
    json_path: &'static str,
    field_type: &'static str,
    list: Option<&'static str>,
    historical: bool,
) -> FieldSpec {
    FieldSpec {
        id,
        category_id: category.0,
        category_name: category.1,
        name,
        json_path,
        field_type,
        list,
        historical,
    }
}

const ROOT: (&str, &str) = ("root", "Basic info");
const WORK: (&str, &str) = ("work", "Work");
const PERSONAL: (&str, &str) = ("personal", "Personal");
const CONTACT: (&str, &str) = ("personalContact", "Personal contact details");
const ADDRESS: (&str, &str) = ("address", "Address");
const ABOUT: (&str, &str) = ("about", "About");
const EMPLOYMENT: (&str, &str) = ("employment", "Employment");
const LIFECYCLE: (&str, &str) = ("lifecycle", "Lifecycle");
/// Custom categories carry numeric backend ids, which is what breaks naive "category = first
/// segment of the id" logic; keeping one here lets the mapping UI meet that case.
const RECRUITMENT: (&str, &str) = ("1726078147147", "Recruitment");

/// The site list's name; the create endpoint checks `work.site` against it.
pub const SITE_LIST: &str = "site";

pub const FIELDS: &[FieldSpec] = &[
    field("root.id", ROOT, "Employee ID", "id", "text", None, false),
    field(
        "root.firstName",
        ROOT,
        "First name",
        "firstName",
        "text",
        None,
        false,
    ),
    field(
        "root.surname",
        ROOT,
        "Last name",
        "surname",
        "text",
        None,
        false,
    ),
    field("root.email", ROOT, "Email", "email", "text", None, false),
    field(
        "root.displayName",
        ROOT,
        "Display name",
        "displayName",
        "text",
        None,
        false,
    ),
    field(
        "root.fullName",
        ROOT,
        "Full name",
        "fullName",
        "text",
        None,
        false,
    ),
    field(
        "root.creationDateTime",
        ROOT,
        "Creation date",
        "creationDateTime",
        "time",
        None,
        false,
    ),
    field(
        "personal.birthDate",
        PERSONAL,
        "Date of birth",
        "personal.birthDate",
        "date",
        None,
        false,
    ),
    field(
        "personal.pronouns",
        PERSONAL,
        "Pronouns",
        "personal.pronouns",
        "text",
        None,
        false,
    ),
    field(
        "home.mobilePhone",
        CONTACT,
        "Personal mobile",
        "home.mobilePhone",
        "text",
        None,
        false,
    ),
    field(
        "home.privateEmail",
        CONTACT,
        "Personal email",
        "home.privateEmail",
        "text",
        None,
        false,
    ),
    field(
        "address.city",
        ADDRESS,
        "City",
        "address.city",
        "text",
        None,
        false,
    ),
    field(
        "address.country",
        ADDRESS,
        "Country",
        "address.country",
        "text",
        None,
        false,
    ),
    field(
        "about.socialData.linkedin",
        ABOUT,
        "LinkedIn",
        "about.socialData.linkedin",
        "text",
        None,
        false,
    ),
    field(
        "work.site",
        WORK,
        "Site",
        "work.site",
        "list",
        Some(SITE_LIST),
        true,
    ),
    field(
        "work.startDate",
        WORK,
        "Start date",
        "work.startDate",
        "date",
        None,
        false,
    ),
    field(
        "work.department",
        WORK,
        "Department",
        "work.department",
        "list",
        Some("department"),
        true,
    ),
    field(
        "work.title",
        WORK,
        "Job title",
        "work.title",
        "list",
        Some("title"),
        true,
    ),
    field(
        "work.reportsTo",
        WORK,
        "Reports to",
        "work.reportsTo",
        "employee-reference",
        None,
        true,
    ),
    field(
        "work.custom.field_1680187492413",
        WORK,
        "Pinpoint application ID",
        "work.custom.field_1680187492413",
        "text",
        None,
        false,
    ),
    field(
        "payroll.employment.type",
        EMPLOYMENT,
        "Employment type",
        "payroll.employment.type",
        "list",
        Some("payrollEmploymentType"),
        true,
    ),
    field(
        "payroll.employment.weeklyHours",
        EMPLOYMENT,
        "Weekly hours",
        "payroll.employment.weeklyHours",
        "number",
        None,
        true,
    ),
    field(
        "internal.lifecycleStatus",
        LIFECYCLE,
        "Lifecycle status",
        "internal.lifecycleStatus",
        "text",
        None,
        false,
    ),
    field(
        "custom.category_1726078147147.field_1730210998067",
        RECRUITMENT,
        "Recruiter",
        "custom.category_1726078147147.field_1730210998067",
        "text",
        None,
        false,
    ),
];

/// `GET /company/people/fields`, in HiBob's layout (including the legacy `category` key).
pub fn fields_json() -> Value {
    Value::Array(
        FIELDS
            .iter()
            .map(|f| {
                json!({
                    "id": f.id,
                    "categoryId": f.category_id,
                    "categoryDisplayName": f.category_name,
                    "category": f.category_id,
                    "name": f.name,
                    "description": null,
                    "jsonPath": f.json_path,
                    "type": f.field_type,
                    "typeData": match f.list {
                        Some(list) => json!({"listId": list}),
                        None => json!({}),
                    },
                    "historical": f.historical,
                })
            })
            .collect(),
    )
}

pub struct ItemSpec {
    pub id: u64,
    pub name: &'static str,
    pub archived: bool,
}

pub struct ListSpec {
    pub name: &'static str,
    pub items: &'static [ItemSpec],
}

const fn item(id: u64, name: &'static str) -> ItemSpec {
    ItemSpec {
        id,
        name,
        archived: false,
    }
}

const fn archived(id: u64, name: &'static str) -> ItemSpec {
    ItemSpec {
        id,
        name,
        archived: true,
    }
}

/// Every list carries one archived item, because HiBob lists do and archived items must be
/// shown but not chosen.
pub const LISTS: &[ListSpec] = &[
    ListSpec {
        name: SITE_LIST,
        items: &[
            item(2_510_068, "London"),
            item(2_510_070, "New York"),
            item(2_510_072, "Berlin"),
            item(2_510_074, "Remote"),
            archived(2_510_071, "Old office"),
        ],
    },
    ListSpec {
        name: "department",
        items: &[
            item(3_011_001, "Engineering"),
            item(3_011_002, "Product"),
            item(3_011_003, "Sales"),
            item(3_011_004, "Marketing"),
            item(3_011_005, "People"),
            item(3_011_006, "Finance"),
            archived(3_011_099, "Research"),
        ],
    },
    ListSpec {
        name: "title",
        items: &[
            item(209_834_711, "Backend Engineer"),
            item(209_834_712, "Product Designer"),
            item(209_834_713, "Account Executive"),
            item(209_834_714, "People Partner"),
            item(209_834_715, "Financial Analyst"),
            item(209_834_716, "Marketing Manager"),
            item(209_834_717, "Engineering Manager"),
            archived(209_834_799, "Webmaster"),
        ],
    },
    ListSpec {
        name: "payrollEmploymentType",
        items: &[
            item(4_100_001, "Full-time"),
            item(4_100_002, "Part-time"),
            item(4_100_003, "Contractor"),
            item(4_100_004, "Intern"),
            archived(4_100_099, "Seasonal"),
        ],
    },
];

pub fn list(name: &str) -> Option<&'static ListSpec> {
    LISTS.iter().find(|l| l.name == name)
}

impl ListSpec {
    /// The item a create body names, by id (number or text) or by exact name. Archived items
    /// are returned too, so the caller can say why they are refused.
    pub fn lookup(&self, value: &Value) -> Option<&'static ItemSpec> {
        let items: &'static [ItemSpec] = self.items;
        match value {
            Value::Number(n) => n.as_u64().and_then(|id| items.iter().find(|i| i.id == id)),
            Value::String(s) => {
                let s = s.trim();
                items
                    .iter()
                    .find(|i| i.id.to_string() == s)
                    .or_else(|| items.iter().find(|i| i.name == s))
            }
            _ => None,
        }
    }

    pub fn to_json(&self, include_archived: bool) -> Value {
        json!({
            "name": self.name,
            "items": self
                .items
                .iter()
                .filter(|i| include_archived || !i.archived)
                .map(|i| json!({
                    "id": i.id,
                    "value": i.name,
                    "name": i.name,
                    "archived": i.archived,
                    "children": [],
                }))
                .collect::<Vec<_>>(),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Pinpoint: candidates, jobs, offers
// ---------------------------------------------------------------------------------------------

const FIRST_NAMES: &[&str] = &[
    "Ada",
    "Grace",
    "Alan",
    "Katherine",
    "Edsger",
    "Margaret",
    "Dennis",
    "Barbara",
    "Radia",
    "Frances",
    "Ken",
    "Hedy",
];

const LAST_NAMES: &[&str] = &[
    "Lovelace", "Hopper", "Turing", "Johnson", "Dijkstra", "Hamilton", "Ritchie", "Liskov",
    "Perlman", "Allen", "Thompson", "Lamarr",
];

/// Titles and departments match HiBob's `title` and `department` lists, so a mapping from the
/// job onto those fields works in the sandbox without extra setup.
pub const JOBS: &[(&str, &str)] = &[
    ("Backend Engineer", "Engineering"),
    ("Product Designer", "Product"),
    ("Account Executive", "Sales"),
    ("People Partner", "People"),
    ("Financial Analyst", "Finance"),
    ("Marketing Manager", "Marketing"),
];

const JOB_ID_BASE: u64 = 1000;
const OFFER_ID_BASE: u64 = 700_000;

fn index(value: u64, len: usize) -> usize {
    // `len` is a small constant, so both conversions are lossless
    (value % len as u64) as usize
}

/// A stable number for an application id that is not numeric (custom applications).
pub fn seed_of(id: &str) -> u64 {
    if let Ok(n) = id.trim().parse::<u64>() {
        return n;
    }
    // FNV-1a: stable across runs and platforms, unlike the std hasher
    id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

pub fn candidate_names(seed: u64) -> (&'static str, &'static str) {
    let first = FIRST_NAMES[index(seed, FIRST_NAMES.len())];
    let last = LAST_NAMES[index(
        seed.wrapping_mul(7).wrapping_add(seed / 12),
        LAST_NAMES.len(),
    )];
    (first, last)
}

pub fn job_of(seed: u64) -> (u64, &'static str, &'static str) {
    let i = index(seed, JOBS.len());
    let (title, department) = JOBS[i];
    (JOB_ID_BASE + i as u64, title, department)
}

/// Two to five weeks after `today`, varying with the id so samples do not all start together.
pub fn offer_start_date(seed: u64, today: NaiveDate) -> String {
    let weeks = 2 + index(seed, 4) as i64;
    (today + Duration::days(weeks * 7))
        .format("%Y-%m-%d")
        .to_string()
}

/// The attribute set of a generated application (without `attachments`, added on request).
pub fn application_attributes(id: &str, seed: u64, today: NaiveDate) -> Map<String, Value> {
    let (first, last) = candidate_names(seed);
    let applied = today - Duration::days(30 + index(seed, 20) as i64);
    let attributes = json!({
        "first_name": first,
        "last_name": last,
        "email": format!("{first}.{last}+{id}@example.com").to_lowercase(),
        "phone": format!("+44 7700 900{:03}", seed % 1000),
        "phone_iso2": "GB",
        "address1": null,
        "address2": null,
        "town": "London",
        "country": "United Kingdom",
        "postcode": null,
        "date_of_birth": null,
        "linkedin_url": format!("https://www.linkedin.com/in/{}-{}-sample", first, last).to_lowercase(),
        "summary": "Sample candidate served by the sandbox Pinpoint simulator.",
        "stage_name": "Hired",
        "created_at": format!("{}T09:30:00.000Z", applied.format("%Y-%m-%d")),
    });
    match attributes {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// The CV attachment every generated application carries.
pub fn cv_attachment(origin: &str, id: &str, first: &str, last: &str) -> Value {
    json!({
        "context": "pdf_cv",
        "filename": cv_filename(first, last),
        "url": cv_url(origin, id),
    })
}

pub fn cv_filename(first: &str, last: &str) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    match (first.trim(), last.trim()) {
        ("", "") => "CV.pdf".to_owned(),
        (f, "") | ("", f) => format!("{}_CV.pdf", clean(f)),
        (f, l) => format!("{}_{}_CV.pdf", clean(f), clean(l)),
    }
}

/// The link stands for Pinpoint's signed attachment URL, so it lives outside the API prefix
/// and needs no key.
pub fn cv_url(origin: &str, id: &str) -> String {
    format!(
        "{}/pinpoint/files/{}/cv.pdf",
        origin.trim_end_matches('/'),
        encode_segment(id)
    )
}

pub fn job_resource(seed: u64) -> Value {
    let (id, title, department) = job_of(seed);
    json!({
        "id": id.to_string(),
        "type": "jobs",
        "attributes": {
            "title": title,
            "department": department,
            "status": "open",
            "visibility": "external",
            "employment_type": "full_time",
            "location": "London",
        },
    })
}

pub fn jobs() -> Vec<Value> {
    (0..JOBS.len() as u64).map(job_resource).collect()
}

/// The sample hire whose start date moves a week later once HiBob has the employee, as start
/// dates do between the hire and the first day: the console's watch then finds the change.
pub const MOVES_AFTER_HIRE: &str = "1002";

/// Moves an offer resource's start date by `days`.
pub fn move_start(offer: &mut Value, days: i64) {
    let Some(slot) = offer.pointer_mut("/attributes/start_date") else {
        return;
    };
    let moved = slot
        .as_str()
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        .map(|d| (d + Duration::days(days)).format("%Y-%m-%d").to_string());
    if let Some(moved) = moved {
        *slot = Value::String(moved);
    }
}

pub fn offer_resource(seed: u64, today: NaiveDate) -> Value {
    json!({
        "id": OFFER_ID_BASE.saturating_add(seed % 1_000_000_000).to_string(),
        "type": "offers",
        "attributes": {
            "status": "accepted",
            "start_date": offer_start_date(seed, today),
            "salary": 50_000 + (seed % 40) * 1_000,
            "salary_currency": "GBP",
            "salary_period": "year",
        },
    })
}

fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The CV file
// ---------------------------------------------------------------------------------------------

/// A one-page PDF with correct cross-reference offsets, so that anything which really opens
/// the file (a PDF viewer in an end-to-end test, HiBob's preview) accepts it.
pub fn cv_pdf(name: &str, job_title: &str) -> Vec<u8> {
    let content = format!(
        "BT /F1 20 Tf 72 720 Td ({}) Tj 0 -30 Td /F1 12 Tf ({}) Tj 0 -18 Td ({}) Tj ET",
        pdf_text(name),
        pdf_text(&format!("Curriculum vitae - applied for {job_title}")),
        pdf_text("Sample document served by the Pinpoint sandbox simulator."),
    );
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] \
         /Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>"
            .to_owned(),
        format!(
            "<< /Length {} >>\nstream\n{content}\nendstream",
            content.len()
        ),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_owned(),
    ];
    let mut out = String::from("%PDF-1.4\n");
    let mut offsets = Vec::with_capacity(objects.len());
    for (i, object) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.push_str(&format!("{} 0 obj\n{object}\nendobj\n", i + 1));
    }
    let xref_at = out.len();
    out.push_str(&format!(
        "xref\n0 {}\n0000000000 65535 f \n",
        objects.len() + 1
    ));
    for offset in offsets {
        out.push_str(&format!("{offset:010} 00000 n \n"));
    }
    out.push_str(&format!(
        "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref_at}\n%%EOF\n",
        objects.len() + 1
    ));
    out.into_bytes()
}

/// A PDF literal string body: the standard font has no Unicode, so other characters become `?`.
fn pdf_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '(' | ')' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => out.push('?'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn samples_are_deterministic_and_varied() {
        let today = day("2026-03-02");
        let a = application_attributes("42", 42, today);
        assert_eq!(a, application_attributes("42", 42, today));
        let (first, last) = candidate_names(42);
        assert_eq!(a["first_name"], first);
        assert_eq!(
            a["email"],
            format!("{first}.{last}+42@example.com").to_lowercase()
        );
        let names: std::collections::HashSet<_> = (1..=24).map(candidate_names).collect();
        assert!(names.len() > 12, "{names:?}");
        let start = NaiveDate::parse_from_str(&offer_start_date(42, today), "%Y-%m-%d").unwrap();
        let weeks = (start - today).num_days();
        assert!((14..=35).contains(&weeks), "{weeks}");
        assert_eq!(seed_of("17"), 17);
        assert_eq!(seed_of("abc"), seed_of("abc"));
        assert_ne!(seed_of("abc"), seed_of("abd"));
    }

    #[test]
    fn sample_jobs_match_the_hibob_lists() {
        let titles = list("title").unwrap();
        let departments = list("department").unwrap();
        for (title, department) in JOBS {
            assert!(titles.lookup(&json!(title)).is_some(), "{title}");
            assert!(
                departments.lookup(&json!(department)).is_some(),
                "{department}"
            );
        }
        for f in FIELDS {
            if let Some(name) = f.list {
                assert!(list(name).is_some(), "{name}");
            }
        }
    }

    #[test]
    fn list_lookup_takes_ids_and_names() {
        let sites = list(SITE_LIST).unwrap();
        assert_eq!(
            sites.lookup(&json!("London")).map(|i| i.id),
            Some(2_510_068)
        );
        assert_eq!(
            sites.lookup(&json!(2_510_070)).map(|i| i.name),
            Some("New York")
        );
        assert_eq!(
            sites.lookup(&json!("2510072")).map(|i| i.name),
            Some("Berlin")
        );
        assert!(sites.lookup(&json!("london")).is_none());
        assert!(sites
            .lookup(&json!("Old office"))
            .is_some_and(|i| i.archived));
        let shown = sites.to_json(false);
        assert_eq!(shown["items"].as_array().map(Vec::len), Some(4));
        assert_eq!(sites.to_json(true)["items"][4]["archived"], true);
    }

    #[test]
    fn cv_names_and_links() {
        assert_eq!(cv_filename("Ada", "Lovelace"), "Ada_Lovelace_CV.pdf");
        assert_eq!(cv_filename("Mary Ann", ""), "Mary_Ann_CV.pdf");
        assert_eq!(cv_filename(" ", ""), "CV.pdf");
        assert_eq!(
            cv_url("http://127.0.0.1:9/", "a b"),
            "http://127.0.0.1:9/pinpoint/files/a%20b/cv.pdf"
        );
    }

    #[test]
    fn the_pdf_is_well_formed() {
        let pdf = cv_pdf("Ada (Countess) Lovelace \u{e9}", "Backend Engineer");
        let text = String::from_utf8(pdf).unwrap();
        assert!(text.starts_with("%PDF-1.4\n"));
        assert!(text.ends_with("%%EOF\n"));
        assert!(text.contains("(Ada \\(Countess\\) Lovelace ?)"));
        // every xref entry points at the start of its object
        let xref_at: usize = text
            .rsplit("startxref\n")
            .next()
            .and_then(|t| t.lines().next())
            .unwrap()
            .parse()
            .unwrap();
        assert!(text[xref_at..].starts_with("xref\n0 6\n"));
        let entries: Vec<&str> = text[xref_at..].lines().skip(3).take(5).collect();
        for (i, entry) in entries.iter().enumerate() {
            assert_eq!(entry.len(), 19, "{entry:?}");
            let offset: usize = entry[..10].parse().unwrap();
            assert!(text[offset..].starts_with(&format!("{} 0 obj", i + 1)));
        }
        // the stream length is exact
        let from = text.find(">>\nstream\n").unwrap() + ">>\nstream\n".len();
        let to = text.find("\nendstream").unwrap();
        let body = &text[from..to];
        assert!(body.starts_with("BT ") && body.ends_with(" ET"), "{body}");
        assert!(text.contains(&format!("<< /Length {} >>", body.len())));
    }
}

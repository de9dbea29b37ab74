//! What HiBob accepts on a new employee: its field catalogue (`GET /company/people/fields`) and
//! named lists (cached by the gateway), plus how a rendered text becomes the JSON value a field
//! wants.
//!
//! HiBob's metadata has no "required" or "read-only" flag, so both sets are written down here
//! from its documentation: the five fields every create needs, and the computed fields a create
//! cannot set.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::{FieldMeta, ListItem, NamedList};

/// The fields `POST /v1/people` refuses to go without.
pub const REQUIRED: &[&str] = &[
    "root.firstName",
    "root.surname",
    "root.email",
    "work.site",
    "work.startDate",
];

/// Fields HiBob computes or manages itself; a create that names them is refused or ignored.
const COMPUTED: &[&str] = &[
    "root.id",
    "root.fullName",
    "root.displayName",
    "root.creationDateTime",
    "root.companyId",
    "root.avatarUrl",
    "about.avatar",
    "work.tenureDuration",
    "work.tenureYears",
    "work.yearsOfService",
    "work.durationOfEmployment",
    "work.directReports",
    "work.indirectReports",
    "work.isManager",
    "work.secondLevelManager",
    "work.reportsToIdInCompany",
    "work.activeEffectiveDate",
    "internal.lifecycleStatus",
    "internal.status",
    "internal.terminationDate",
    "internal.periodSinceTermination",
];

/// HiBob's usual list fields and the names their lists customarily have, for when the field
/// catalogue (which names each field's list) cannot be read.
const USUAL_LISTS: [(&str, &str, &[&str]); 4] = [
    ("work.site", "Site", &["site"]),
    ("work.department", "Department", &["department"]),
    (
        "work.title",
        "Job title",
        &["title", "jobTitle", "job title"],
    ),
    (
        "payroll.employment.type",
        "Employment type",
        &["payrollEmploymentType", "employmentType", "employment type"],
    ),
];

/// How a field's value is written, from its metadata `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Date,
    ShortDate,
    Number,
    Boolean,
    Time,
    /// One item of a named list; `by_name` when HiBob takes the item's name (the site).
    List {
        by_name: bool,
    },
    MultiList,
    EmployeeReference,
    /// Cannot be set from a template (documents, currencies whose shape HiBob leaves unsaid).
    Unsupported,
}

impl Kind {
    pub fn of(field: &FieldMeta) -> Self {
        match field.field_type.as_str() {
            "date" => Self::Date,
            "short-date" => Self::ShortDate,
            "number" => Self::Number,
            "boolean" => Self::Boolean,
            "time" => Self::Time,
            "list" | "hierarchy-list" => Self::List {
                by_name: field.id == "work.site",
            },
            "multi-list" => Self::MultiList,
            "employee-reference" => Self::EmployeeReference,
            "document" | "currency" => Self::Unsupported,
            _ => Self::Text,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Date => "date (YYYY-MM-DD)",
            Self::ShortDate => "day of year (MM-DD)",
            Self::Number => "number",
            Self::Boolean => "yes/no",
            Self::Time => "timestamp",
            Self::List { by_name: true } => "list item (by name)",
            Self::List { by_name: false } => "list item",
            Self::MultiList => "list items, comma separated",
            Self::EmployeeReference => "employee id",
            Self::Unsupported => "not settable from a template",
        }
    }
}

/// HiBob's catalogue as the mapping needs it.
#[derive(Debug, Clone, Default)]
pub struct Schema {
    pub fields: Vec<FieldMeta>,
    pub lists: HashMap<String, NamedList>,
    /// False when HiBob could not be asked: only the built-in knowledge of the required fields
    /// is then available, and checks that need the catalogue are skipped with a warning.
    pub live: bool,
    /// Canonical id → position in `fields`, so rendering does not scan the catalogue per field.
    index: HashMap<String, usize>,
}

/// Field metadata as HiBob's catalogue would give it, for what is known without asking.
pub fn field_meta(id: &str, name: &str, field_type: &str, list: Option<&str>) -> FieldMeta {
    FieldMeta {
        id: id.to_owned(),
        name: name.to_owned(),
        category: id.split('.').next().unwrap_or_default().to_owned(),
        category_name: None,
        field_type: field_type.to_owned(),
        json_path: id.strip_prefix("root.").unwrap_or(id).to_owned(),
        is_list: list.is_some(),
        list_name: list.map(str::to_owned),
        historical: false,
        description: None,
    }
}

impl Schema {
    /// What is known without asking HiBob: the required fields and their types.
    pub fn builtin() -> Self {
        Self {
            fields: vec![
                field_meta("root.firstName", "First name", "text", None),
                field_meta("root.surname", "Last name", "text", None),
                field_meta("root.email", "Email", "text", None),
                field_meta("work.site", "Site", "list", Some("site")),
                field_meta("work.startDate", "Start date", "date", None),
            ],
            lists: HashMap::new(),
            live: false,
            index: HashMap::new(),
        }
        .indexed()
    }

    fn indexed(mut self) -> Self {
        self.index = self
            .fields
            .iter()
            .enumerate()
            .map(|(i, f)| (canonical_id(&f.id).to_owned(), i))
            .collect();
        self
    }

    pub fn from_parts(fields: Vec<FieldMeta>, lists: Vec<NamedList>) -> Self {
        let mut schema = Self {
            fields,
            lists: lists.into_iter().map(|l| (l.name.clone(), l)).collect(),
            live: true,
            index: HashMap::new(),
        }
        .indexed();
        // a tenant's catalogue always has these; keep them even if a permission hides one
        for builtin in Self::builtin().fields {
            if schema.field(&builtin.id).is_none() {
                schema.fields.push(builtin);
            }
        }
        schema.indexed()
    }

    /// The built-in field knowledge with HiBob's lists, for a service user that may read the
    /// lists but not the field catalogue: the usual list fields are tied to their lists by the
    /// names those lists customarily have.
    pub fn builtin_with_lists(lists: Vec<NamedList>) -> Self {
        let mut schema = Self::builtin();
        for (id, label, names) in USUAL_LISTS {
            let Some(found) = names
                .iter()
                .find_map(|name| lists.iter().find(|l| l.name.eq_ignore_ascii_case(name)))
            else {
                continue;
            };
            let field = field_meta(id, label, "list", Some(&found.name));
            match schema.fields.iter_mut().find(|f| f.id == id) {
                Some(known) => *known = field,
                None => schema.fields.push(field),
            }
        }
        schema.lists = lists.into_iter().map(|l| (l.name.clone(), l)).collect();
        schema.indexed()
    }

    pub fn field(&self, id: &str) -> Option<&FieldMeta> {
        self.index
            .get(canonical_id(id))
            .and_then(|i| self.fields.get(*i))
    }

    pub fn list_for(&self, field: &FieldMeta) -> Option<&NamedList> {
        field.list_name.as_deref().and_then(|n| self.lists.get(n))
    }
}

/// Field ids are written with or without `root.` for the top-level fields; compare without.
pub fn canonical_id(id: &str) -> &str {
    id.trim().strip_prefix("root.").unwrap_or(id.trim())
}

pub fn is_required(id: &str) -> bool {
    REQUIRED.iter().any(|r| canonical_id(r) == canonical_id(id))
}

pub fn is_computed(id: &str) -> bool {
    COMPUTED.iter().any(|r| canonical_id(r) == canonical_id(id))
}

/// Puts `value` at the place a dotted field id names: `root.x` at the top, `work.custom.f` nested.
pub fn nest(body: &mut Map<String, Value>, id: &str, value: Value) {
    nest_path(body, &path_of(id), value);
}

/// The JSON path a dotted field id writes to.
pub fn path_of(id: &str) -> Vec<String> {
    canonical_id(id)
        .split('.')
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

pub fn nest_path(body: &mut Map<String, Value>, path: &[String], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut here = body;
    for part in parents {
        let slot = here
            .entry(part.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        if !slot.is_object() {
            *slot = Value::Object(Map::new());
        }
        let Value::Object(next) = slot else { return };
        here = next;
    }
    here.insert(last.clone(), value);
}

/// Reads the value at a dotted field id, for comparing with an employee read back from HiBob.
pub fn at<'a>(body: &'a Value, id: &str) -> Option<&'a Value> {
    canonical_id(id)
        .split('.')
        .try_fold(body, |here, part| here.get(part))
}

fn find_item<'a>(items: &'a [ListItem], wanted: &str) -> Option<&'a ListItem> {
    items.iter().find_map(|item| {
        if item.id == wanted || item.name.eq_ignore_ascii_case(wanted) {
            Some(item)
        } else {
            find_item(&item.children, wanted)
        }
    })
}

/// Turns rendered text into the JSON HiBob wants for this field, or says why it cannot.
/// Without the named list, list values pass through as written (HiBob will judge them).
pub fn encode(text: &str, field: &FieldMeta, list: Option<&NamedList>) -> Result<Value, String> {
    let text = text.trim();
    match Kind::of(field) {
        Kind::Text | Kind::EmployeeReference | Kind::Time => Ok(Value::String(text.to_owned())),
        Kind::Date => crate::dates::normalise_date(text)
            .map(Value::String)
            .ok_or_else(|| format!("{text:?} is not a date")),
        Kind::ShortDate => {
            let padded = format!("2000-{text}");
            crate::dates::parse_date(&padded)
                .or_else(|| crate::dates::parse_date(text))
                .map(|d| Value::String(d.format("%m-%d").to_string()))
                .ok_or_else(|| format!("{text:?} is not a day of the year (MM-DD)"))
        }
        Kind::Number => {
            let cleaned: String = text
                .chars()
                .filter(|c| !c.is_whitespace() && *c != ',')
                .collect();
            if let Ok(n) = cleaned.parse::<i64>() {
                Ok(Value::from(n))
            } else {
                cleaned
                    .parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite())
                    .and_then(serde_json::Number::from_f64)
                    .map(Value::Number)
                    .ok_or_else(|| format!("{text:?} is not a number"))
            }
        }
        Kind::Boolean => match text.to_ascii_lowercase().as_str() {
            "true" | "yes" | "y" | "1" | "on" => Ok(Value::Bool(true)),
            "false" | "no" | "n" | "0" | "off" => Ok(Value::Bool(false)),
            _ => Err(format!("{text:?} is not yes or no")),
        },
        Kind::List { by_name } => match list {
            None => Ok(Value::String(text.to_owned())),
            Some(list) => match find_item(&list.items, text) {
                Some(item) if item.archived => Err(format!(
                    "{:?} is archived in HiBob's {} list",
                    item.name, list.name
                )),
                Some(item) => Ok(Value::String(if by_name {
                    item.name.clone()
                } else {
                    item.id.clone()
                })),
                None => Err(format!("{text:?} is not in HiBob's {} list", list.name)),
            },
        },
        Kind::MultiList => {
            let parts = text.split(',').map(str::trim).filter(|p| !p.is_empty());
            let mut ids = Vec::new();
            for part in parts {
                match list {
                    None => ids.push(Value::String(part.to_owned())),
                    Some(list) => match find_item(&list.items, part) {
                        Some(item) if !item.archived => ids.push(Value::String(item.id.clone())),
                        _ => return Err(format!("{part:?} is not in HiBob's {} list", list.name)),
                    },
                }
            }
            Ok(Value::Array(ids))
        }
        Kind::Unsupported => Err(format!(
            "HiBob's {} fields cannot be set from a template",
            field.field_type
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item(id: &str, name: &str) -> ListItem {
        ListItem::new(id, name)
    }

    fn field(id: &str, ty: &str, list: Option<&str>) -> FieldMeta {
        field_meta(id, id, ty, list)
    }

    #[test]
    fn nests_dotted_ids() {
        let mut body = Map::new();
        nest(&mut body, "root.firstName", json!("Ada"));
        nest(&mut body, "work.site", json!("London"));
        nest(&mut body, "work.custom.field_1", json!("x"));
        nest(&mut body, "custom.category_1.field_2", json!(3));
        let body = Value::Object(body);
        assert_eq!(
            body,
            json!({"firstName":"Ada","work":{"site":"London","custom":{"field_1":"x"}},
                   "custom":{"category_1":{"field_2":3}}})
        );
        assert_eq!(at(&body, "work.custom.field_1"), Some(&json!("x")));
        assert_eq!(at(&body, "root.firstName"), Some(&json!("Ada")));
    }

    #[test]
    fn encodes_by_field_type() {
        let date = field("work.startDate", "date", None);
        assert_eq!(encode("04/01/2027", &date, None), Ok(json!("2027-01-04")));
        assert!(encode("soon", &date, None)
            .unwrap_err()
            .contains("not a date"));
        let num = field("payroll.employment.weeklyHours", "number", None);
        assert_eq!(encode(" 37.5 ", &num, None), Ok(json!(37.5)));
        assert_eq!(encode("1,200", &num, None), Ok(json!(1200)));
        assert!(encode("lots", &num, None).is_err());
        let yes = field("x.flag", "boolean", None);
        assert_eq!(encode("Yes", &yes, None), Ok(json!(true)));
        assert!(encode("maybe", &yes, None).is_err());
        let short = field("personal.birthday", "short-date", None);
        assert_eq!(encode("12-09", &short, None), Ok(json!("12-09")));
        assert!(encode("doc", &field("x.doc", "document", None), None).is_err());
    }

    #[test]
    fn list_values_by_id_or_name() {
        let mut eng = item("d1", "Engineering");
        eng.children = vec![item("d11", "Platform")];
        let mut old = item("d2", "Old");
        old.archived = true;
        let dept = NamedList {
            name: "department".into(),
            items: vec![eng, old],
        };
        let f = field("work.department", "list", Some("department"));
        assert_eq!(encode("engineering", &f, Some(&dept)), Ok(json!("d1")));
        assert_eq!(encode("d1", &f, Some(&dept)), Ok(json!("d1")));
        assert_eq!(encode("Platform", &f, Some(&dept)), Ok(json!("d11")));
        assert!(encode("Old", &f, Some(&dept))
            .unwrap_err()
            .contains("archived"));
        assert!(encode("Marketing", &f, Some(&dept))
            .unwrap_err()
            .contains("not in"));
        assert_eq!(encode("Marketing", &f, None), Ok(json!("Marketing")));
        let site = NamedList {
            name: "site".into(),
            items: vec![item("1", "London")],
        };
        let s = field("work.site", "list", Some("site"));
        assert_eq!(encode("london", &s, Some(&site)), Ok(json!("London")));
        let multi = field("work.skills", "multi-list", Some("department"));
        assert_eq!(
            encode("Engineering, Platform", &multi, Some(&dept)),
            Ok(json!(["d1", "d11"]))
        );
    }

    #[test]
    fn required_and_computed_sets() {
        assert!(is_required("firstName"));
        assert!(is_required("root.email"));
        assert!(!is_required("home.mobilePhone"));
        assert!(is_computed("root.displayName"));
        assert!(!is_computed("work.title"));
        assert!(Schema::builtin().field("work.site").is_some());
    }
}

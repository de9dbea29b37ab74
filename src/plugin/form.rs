//! The plugin form is the mapping: one form field per HiBob field the mapping in force fills
//! (required ones first, the rest under a heading), prefilled through the mapping, with a
//! dropdown for each list field and the input type each HiBob field type wants. What the
//! recruiter sends back goes through the mapping's own encoder, so a field mapped once reaches
//! HiBob the same way whether the hire came by webhook or by "Send to HiBob".
//!
//! UNSAID in Pinpoint's contract is whether a Stage Action (no person present) sends every field
//! or only those its mappings resolve. The rule here: a value the form sends is used as sent
//! (the person saw the mapped value and may have corrected it); a field the submit leaves out,
//! or a required one it sends blank, gets the mapping's value, rendered from the variables that
//! came with the submit. An optional field sent blank is left out of the body.

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use crate::{
    hibob::{
        schema::{self as hibob_schema, Kind, Schema},
        FieldMeta, ListItem, NamedList,
    },
    mapping::templates,
    mapping::variables,
    mapping::{
        body::{BodyBuilder, FieldProblem},
        Compiled, EmployeeDraft, MappingDocument,
    },
    outbound,
    pinpoint::plugin_contract::{
        FieldError, FieldMapping, FileRef, FormField, PluginRequest, SelectOption,
    },
    plugin::checks::CvLinks,
    settings::credentials::Credentials,
};

// Form field keys of the usual fields, kept stable so the field mappings a customer edited in
// Pinpoint keep pointing at the right fields.
pub const F_FIRST_NAME: &str = "firstName";
pub const F_LAST_NAME: &str = "lastName";
pub const F_EMAIL: &str = "email";
pub const F_START_DATE: &str = "startDate";
pub const F_SITE: &str = "site";
pub const F_DEPARTMENT: &str = "department";
pub const F_TITLE: &str = "title";
pub const F_EMPLOYMENT_TYPE: &str = "employmentType";
pub const F_CV: &str = "cvDocument";

/// A usual HiBob field: its stable form key, the key of its list endpoint, its label and what
/// HiBob does with it.
struct Usual {
    target: &'static str,
    key: &'static str,
    list_key: Option<&'static str>,
    label: &'static str,
    help: &'static str,
}

const USUAL: [Usual; 8] = [
    Usual {
        target: "root.firstName",
        key: F_FIRST_NAME,
        list_key: None,
        label: "First name",
        help: "The employee's first name in HiBob (at most 50 characters).",
    },
    Usual {
        target: "root.surname",
        key: F_LAST_NAME,
        list_key: None,
        label: "Last name",
        help: "The employee's last name in HiBob (at most 50 characters).",
    },
    Usual {
        target: "root.email",
        key: F_EMAIL,
        list_key: None,
        label: "Work email",
        help: "HiBob's work email: Bob signs the employee in and sends its invitations to this \
               address, and no two employees may share it. It is prefilled with the email the \
               candidate applied with, which is usually personal: change it to their work \
               address if they already have one.",
    },
    Usual {
        target: "work.startDate",
        key: F_START_DATE,
        list_key: None,
        label: "Start date",
        help: "The employee's first day. HiBob starts their employment, and what is planned \
               from it, on this date.",
    },
    Usual {
        target: "work.site",
        key: F_SITE,
        list_key: Some("sites"),
        label: "Site",
        help: "Where the employee works. HiBob requires a site for every employee and takes \
               their working calendar and policies from it.",
    },
    Usual {
        target: "work.department",
        key: F_DEPARTMENT,
        list_key: Some("departments"),
        label: "Department",
        help: "The employee's department in HiBob's org chart.",
    },
    Usual {
        target: "work.title",
        key: F_TITLE,
        list_key: Some("titles"),
        label: "Job title",
        help: "The employee's job title, from HiBob's list of titles.",
    },
    Usual {
        target: "payroll.employment.type",
        key: F_EMPLOYMENT_TYPE,
        list_key: Some("employmentTypes"),
        label: "Employment type",
        help: "Full time, part time and so on, as HiBob's payroll lists them.",
    },
];

/// The fields offered even when the mapping does not fill them, when HiBob has their list: a
/// recruiter placing a hire usually knows them.
const OFFERED: [&str; 3] = ["work.department", "work.title", "payroll.employment.type"];

fn usual(target: &str) -> Option<&'static Usual> {
    let id = hibob_schema::canonical_id(target);
    USUAL
        .iter()
        .find(|u| hibob_schema::canonical_id(u.target) == id)
}

/// One field of the form.
#[derive(Debug, Clone)]
pub struct Spec {
    pub key: String,
    /// The HiBob field id as the mapping names it.
    pub target: String,
    path: Vec<String>,
    pub label: String,
    pub kind: Kind,
    pub required: bool,
    /// The list endpoint's key, for list fields.
    pub list_key: Option<String>,
    /// The Pinpoint variable its first template reads, for the meta's field mappings.
    pub variable: Option<&'static str>,
    pub help: String,
    in_mapping: bool,
}

/// The form for one mapping and one catalogue.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub fields: Vec<Spec>,
}

/// Pinpoint's variable that feeds a form field: the first Pinpoint variable read by the first
/// template of the mapping's rule for `target`. Pinpoint only substitutes variables, so filters
/// and fallbacks are applied by the console when the form is built.
fn pinpoint_variable(doc: &MappingDocument, target: &str) -> Option<&'static str> {
    // the templates come first even beside a fixed value: it is only their last resort
    let rule = doc
        .fields
        .iter()
        .find(|r| hibob_schema::canonical_id(&r.target) == hibob_schema::canonical_id(target))?;
    rule.sources.iter().find_map(|source| {
        let mut engine = templates::Engine::new();
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

/// A form key for a field without a usual one: its id with dots made underscores, since form
/// libraries commonly read dotted names as nested objects.
fn key_for(target: &str) -> String {
    hibob_schema::canonical_id(target)
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// Whether `list_key` may name one of the form's lists under this mapping, judged without
/// HiBob's catalogue, so an unknown name is refused without calling HiBob.
pub fn may_be_list(doc: &MappingDocument, list_key: &str) -> bool {
    USUAL.iter().any(|u| u.list_key == Some(list_key))
        || doc.fields.iter().any(|r| key_for(&r.target) == list_key)
}

fn help_for(target: &str, meta: Option<&FieldMeta>, kind: Kind, doc: &MappingDocument) -> String {
    let mut help = match (usual(target), meta.and_then(|m| m.description.clone())) {
        (Some(u), _) => u.help.to_owned(),
        (None, Some(description)) if !description.trim().is_empty() => description,
        (None, _) => {
            let name = meta.map(|m| m.name.as_str()).unwrap_or(target);
            let category = meta
                .and_then(|m| m.category_name.clone())
                .unwrap_or_else(|| target.split('.').next().unwrap_or_default().to_owned());
            format!("HiBob's \"{name}\" field ({category}), a {}.", kind.label())
        }
    };
    let rule = doc
        .fields
        .iter()
        .find(|r| hibob_schema::canonical_id(&r.target) == hibob_schema::canonical_id(target));
    match rule {
        Some(rule) if rule.sources.iter().all(|s| s.trim().is_empty()) && rule.fixed.is_some() => {
            help.push_str(" The mapping gives every hire the same value here.");
        }
        Some(_) => help.push_str(" Prefilled by the console's mapping."),
        None => {}
    }
    help
}

impl Plan {
    /// The mapping's fields, HiBob's required ones first, then the usual optional list fields
    /// HiBob has lists for.
    pub fn new(doc: &MappingDocument, schema: &Schema) -> Self {
        let mut targets: Vec<(String, bool)> = Vec::new();
        let mut push = |target: &str, in_mapping: bool| {
            let id = hibob_schema::canonical_id(target);
            if !targets
                .iter()
                .any(|(t, _)| hibob_schema::canonical_id(t) == id)
            {
                targets.push((target.to_owned(), in_mapping));
            }
        };
        for required in hibob_schema::REQUIRED {
            let mapped = doc.fields.iter().find(|r| {
                hibob_schema::canonical_id(&r.target) == hibob_schema::canonical_id(required)
            });
            push(
                mapped.map_or(*required, |r| r.target.as_str()),
                mapped.is_some(),
            );
        }
        for rule in &doc.fields {
            push(&rule.target, true);
        }
        for offered in OFFERED {
            if schema
                .field(offered)
                .and_then(|m| schema.list_for(m))
                .is_some()
            {
                push(offered, false);
            }
        }
        let mut fields: Vec<Spec> = targets
            .into_iter()
            .filter_map(|(target, in_mapping)| {
                let meta = schema.field(&target);
                let kind = meta.map(Kind::of).unwrap_or(Kind::Text);
                if kind == Kind::Unsupported {
                    return None;
                }
                let found = usual(&target);
                let key = found.map_or_else(|| key_for(&target), |u| u.key.to_owned());
                let has_list = meta.and_then(|m| schema.list_for(m)).is_some();
                let list_key = match kind {
                    Kind::List { .. } | Kind::MultiList if has_list => Some(
                        found
                            .and_then(|u| u.list_key)
                            .map_or_else(|| key.clone(), str::to_owned),
                    ),
                    _ => None,
                };
                Some(Spec {
                    label: found
                        .map(|u| u.label.to_owned())
                        .or_else(|| meta.map(|m| m.name.clone()))
                        .unwrap_or_else(|| target.clone()),
                    required: hibob_schema::is_required(&target),
                    variable: pinpoint_variable(doc, &target),
                    help: help_for(&target, meta, kind, doc),
                    path: hibob_schema::path_of(&target),
                    key,
                    target,
                    kind,
                    list_key,
                    in_mapping,
                })
            })
            .collect();
        // required first, each group in the mapping's order
        fields.sort_by_key(|f| !f.required);
        Self { fields }
    }

    pub fn field(&self, key: &str) -> Option<&Spec> {
        self.fields.iter().find(|f| f.key == key)
    }

    /// The form field a HiBob field path belongs to, so HiBob's rejection lands next to it.
    pub fn key_for_path(&self, path: &str) -> Option<&str> {
        let id = hibob_schema::canonical_id(path);
        self.fields
            .iter()
            .find(|f| hibob_schema::canonical_id(&f.target) == id)
            .map(|f| f.key.as_str())
    }

    /// The meta's default field mappings: each field Pinpoint can fill from one of its variables.
    pub fn mappings(&self) -> Vec<FieldMapping> {
        let mut out: Vec<FieldMapping> = self
            .fields
            .iter()
            .filter_map(|f| {
                let variable = f.variable?;
                Some(FieldMapping::new(
                    f.key.clone(),
                    f.label.clone(),
                    format!("{{{{{variable}}}}}"),
                ))
            })
            .collect();
        out.push(FieldMapping::unlabelled(F_CV, "{{candidate_cv}}"));
        out
    }

    /// The list endpoints the form's dropdowns need, as `(key, path)`.
    pub fn list_endpoints(&self) -> Vec<(String, String)> {
        self.fields
            .iter()
            .filter_map(|f| f.list_key.clone())
            .map(|key| {
                let path = format!("/lists/{key}");
                (key, path)
            })
            .collect()
    }

    /// The variables Pinpoint sent with the request, read back from the keys the meta mapped
    /// them to.
    pub fn values(&self, prefill: &Prefill) -> variables::Values {
        let mut values = variables::Values::default();
        for field in &self.fields {
            let (Some(variable), Some(text)) = (field.variable, prefill.text(&field.key)) else {
                continue;
            };
            let text = if variable == "candidate_start_date" {
                templates::normalise_date(&text).unwrap_or(text)
            } else {
                text
            };
            values.set(variable, text);
        }
        if let Some(cv) = prefill.text(F_CV) {
            values.set("candidate_cv", cv);
        }
        values
    }

    /// What the mapping makes of `values`, per form key, as the form shows it (a list item as its
    /// id, or name where HiBob takes names; a date as YYYY-MM-DD).
    pub fn mapped(
        &self,
        compiled: &Compiled,
        values: &variables::Values,
        schema: &Schema,
    ) -> HashMap<String, String> {
        let preview = compiled.preview(values, schema);
        let mut out = HashMap::new();
        for trace in preview.rendered.trace {
            let Some(key) = self.key_for_path(&trace.target) else {
                continue;
            };
            let text = match &trace.value {
                Some(value) => form_text(value),
                None => Some(trace.text.clone()),
            };
            if let Some(text) = text.filter(|t| !t.is_empty()) {
                out.insert(key.to_owned(), text);
            }
        }
        out
    }

    /// The submit's text per field, by the rule at the top of this module.
    pub fn submitted(
        &self,
        req: &PluginRequest,
        mapped: &HashMap<String, String>,
    ) -> Vec<(&Spec, String)> {
        self.fields
            .iter()
            .map(|field| {
                let sent = req
                    .form_value(&field.key)
                    .map(|v| form_text(v).unwrap_or_default());
                let text = match sent {
                    Some(text) if !text.trim().is_empty() || !field.required => text,
                    _ => mapped.get(&field.key).cloned().unwrap_or_default(),
                };
                (field, text.trim().to_owned())
            })
            .collect()
    }

    /// Builds HiBob's body from the form's texts with the mapping's encoder, or says per field
    /// what is wrong.
    pub fn body(
        &self,
        texts: &[(&Spec, String)],
        schema: &Schema,
    ) -> Result<EmployeeDraft, Vec<FieldError>> {
        let mut body = BodyBuilder::new(schema);
        let mut errors = Vec::new();
        for (field, text) in texts {
            if let Some(problem) = crate::plugin::checks::problem(&field.target, text) {
                errors.push(FieldError::new(field.key.clone(), problem));
                continue;
            }
            match body.add(&field.target, &field.path, text) {
                Ok(_) => {}
                Err(FieldProblem::Missing) => errors.push(FieldError::new(
                    field.key.clone(),
                    format!("The {} is required by HiBob", field.label.to_lowercase()),
                )),
                Err(FieldProblem::Invalid(why)) => {
                    errors.push(FieldError::new(field.key.clone(), why));
                }
            }
        }
        if errors.is_empty() {
            Ok(body.finish())
        } else {
            Err(errors)
        }
    }

    /// The form fields, prefilled with `values` (form key → text).
    pub fn form_fields(
        &self,
        schema: &Schema,
        values: &HashMap<String, String>,
        refetch: bool,
    ) -> Vec<FormField> {
        let keep = |field: FormField| {
            if refetch {
                field.include_in_refetch()
            } else {
                field
            }
        };
        let department = values.get(F_DEPARTMENT).map(String::as_str);
        let mut out = vec![FormField::heading("heading", "New employee in HiBob")];
        let mut more = false;
        for spec in &self.fields {
            if !spec.required && !more {
                more = true;
                out.push(FormField::heading(
                    "moreHeading",
                    "More about the employee in HiBob",
                ));
            }
            let list = schema.field(&spec.target).and_then(|m| schema.list_for(m));
            let by_name = matches!(spec.kind, Kind::List { by_name: true });
            let listed = matches!(spec.kind, Kind::List { .. } | Kind::MultiList) && list.is_some();
            let mut chosen = if listed {
                None
            } else {
                values.get(&spec.key).cloned()
            };
            let mut field = match spec.kind {
                Kind::Date => FormField::date(spec.key.clone(), spec.label.clone()),
                Kind::List { .. } | Kind::MultiList if list.is_some() => {
                    let options = match (spec.key.as_str(), list) {
                        (F_TITLE, Some(titles)) => {
                            title_options_for(titles, department_list(schema), department)
                        }
                        (_, Some(list)) => options(&list.items, by_name),
                        (_, None) => Vec::new(),
                    };
                    // a value the list does not offer would show as a blank choice anyway
                    let offered = |v: &str| options.iter().any(|o| o.value == v);
                    if let Some(value) = values.get(&spec.key).filter(|v| offered(v)) {
                        chosen = Some(value.clone());
                    }
                    let field = FormField::string(spec.key.clone(), spec.label.clone())
                        .placeholder(format!("Select {}...", spec.label.to_lowercase()));
                    let list_key = spec.list_key.clone().unwrap_or_else(|| spec.key.clone());
                    if spec.kind == Kind::MultiList {
                        field.multi_select(options).multi_select_list(list_key)
                    } else {
                        field.single_select(options).single_select_list(list_key)
                    }
                }
                Kind::Boolean => FormField::string(spec.key.clone(), spec.label.clone())
                    .single_select([
                        SelectOption::new("Yes", "true"),
                        SelectOption::new("No", "false"),
                    ]),
                Kind::Number => {
                    FormField::string(spec.key.clone(), spec.label.clone()).placeholder("A number")
                }
                Kind::ShortDate => {
                    FormField::string(spec.key.clone(), spec.label.clone()).placeholder("MM-DD")
                }
                _ => FormField::string(spec.key.clone(), spec.label.clone()),
            };
            field = if spec.required {
                field.required()
            } else {
                field.optional()
            };
            field = field.description(spec.help.clone());
            if let Some(value) = chosen {
                field = field.value(value);
            }
            if spec.key == F_DEPARTMENT && refetch {
                field = field.refetch_on_change();
            }
            out.push(keep(field));
        }
        out
    }

    /// Whether the form holds only what the mapping fills (no usual field added beside it).
    pub fn is_mapping_only(&self) -> bool {
        self.fields.iter().all(|f| f.in_mapping)
    }
}

fn department_list(schema: &Schema) -> Option<&NamedList> {
    schema
        .field("work.department")
        .and_then(|m| schema.list_for(m))
}

/// Whether choosing a department can narrow the titles: only when the title list groups its
/// items under parents.
pub fn titles_are_grouped(schema: &Schema) -> bool {
    schema
        .field("work.title")
        .and_then(|m| schema.list_for(m))
        .is_some_and(|l| l.items.iter().any(|i| !i.children.is_empty()))
}

/// A value as the form shows it: text, a number or yes/no as text, list items comma-separated.
fn form_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Array(items) => Some(
            items
                .iter()
                .filter_map(form_text)
                .filter(|t| !t.is_empty())
                .collect::<Vec<_>>()
                .join(", "),
        ),
        _ => None,
    }
}

/// Every item that may be chosen, children labelled with their parents so a hierarchical list
/// stays readable when flattened.
pub fn options(items: &[ListItem], by_name: bool) -> Vec<SelectOption> {
    let mut out = Vec::new();
    flatten(items, by_name, None, &mut out);
    out
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

/// The titles grouped under a parent that has the chosen department's name, or every title when
/// nothing matches (a narrowed list must never hide the right answer).
fn title_options_for(
    titles: &NamedList,
    departments: Option<&NamedList>,
    department: Option<&str>,
) -> Vec<SelectOption> {
    let narrowed = (|| {
        let chosen = departments?.find(department?)?;
        let group = titles.items.iter().find(|i| {
            !i.archived && !i.children.is_empty() && i.name.eq_ignore_ascii_case(&chosen.name)
        })?;
        let out = options(&group.children, false);
        (!out.is_empty()).then_some(out)
    })();
    narrowed.unwrap_or_else(|| options(&titles.items, false))
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

/// Values Pinpoint sent to prefill the form: the form fields (mapped values, refetch values), and
/// a `mappings` list in case resolved mappings arrive under that name.
pub struct Prefill(Vec<(String, Value)>);

impl Prefill {
    pub fn from_request(req: &PluginRequest) -> Self {
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

    pub fn value(&self, key: &str) -> Option<&Value> {
        self.0
            .iter()
            .find(|(k, v)| k == key && !v.is_null())
            .map(|(_, v)| v)
    }

    pub fn text(&self, key: &str) -> Option<String> {
        self.value(key).and_then(text_of)
    }
}

/// The CV-link rules for the Pinpoint API configured now, the webhook export's own; the
/// strictest (public https only) when the settings cannot be read.
pub(crate) async fn cv_links(credentials: &Credentials) -> CvLinks {
    CvLinks::configured(credentials).await.unwrap_or_else(|e| {
        tracing::error!(error = %e, "cannot read the Pinpoint settings for the CV-link rules");
        CvLinks::default()
    })
}

/// A CV the form carries, or why it cannot be used.
pub(crate) fn cv_of(req: &PluginRequest, links: &CvLinks) -> Result<Option<FileRef>, FieldError> {
    let blank = |v: &Value| match v {
        Value::String(s) => s.trim().is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    };
    match req.form_file_refs(F_CV).into_iter().next() {
        Some(cv) => match links.problem(&cv.url) {
            Some(problem) => Err(FieldError::new(F_CV, problem)),
            None => Ok(Some(cv)),
        },
        None if req.form_value(F_CV).is_some_and(|v| !blank(v)) => Err(FieldError::new(
            F_CV,
            "The CV could not be read from the form: attach the file again",
        )),
        None => Ok(None),
    }
}

/// The form's values as kept in the export record; the CV link loses its query string, which is
/// what grants access to a signed file.
pub(crate) fn for_record(texts: &[(&Spec, String)], cv: Option<&FileRef>) -> Value {
    let mut record = Map::new();
    for (field, text) in texts {
        record.insert(field.key.clone(), json!(text));
    }
    record.insert(
        F_CV.to_owned(),
        json!(cv.map(|cv| json!({"url": outbound::redact_url(&cv.url), "name": cv.name}))),
    );
    Value::Object(record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::{self, FieldRule};
    use serde_json::json;

    fn item(id: &str, name: &str) -> ListItem {
        ListItem::new(id, name)
    }

    fn field(id: &str, name: &str, ty: &str, list: Option<&str>) -> FieldMeta {
        hibob_schema::field_meta(id, name, ty, list)
    }

    fn schema() -> Schema {
        let mut archived = item("3", "Old office");
        archived.archived = true;
        let mut eng = item("t-eng", "Engineering");
        eng.children = vec![item("t1", "Backend engineer"), item("t2", "SRE")];
        let mut sales = item("t-sales", "Sales");
        sales.children = vec![item("t3", "Account executive")];
        Schema::from_parts(
            vec![
                field("root.firstName", "First name", "text", None),
                field("root.surname", "Last name", "text", None),
                field("root.email", "Email", "text", None),
                field("work.site", "Site", "list", Some("site")),
                field("work.startDate", "Start date", "date", None),
                field("work.department", "Department", "list", Some("department")),
                field("work.title", "Title", "list", Some("title")),
                field("home.mobilePhone", "Mobile phone", "text", None),
                field(
                    "work.custom.field_1",
                    "Cost centre",
                    "list",
                    Some("costCentre"),
                ),
                field("work.custom.field_2", "Hours", "number", None),
            ],
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
                NamedList {
                    name: "costCentre".into(),
                    items: vec![item("cc1", "R&D"), item("cc2", "Ops")],
                },
            ],
        )
    }

    fn document() -> MappingDocument {
        let mut doc = mapping::default_document();
        doc.fields.insert(
            0,
            FieldRule::new("home.mobilePhone", &["{{ candidate_telephone_number }}"]),
        );
        let mut fixed = FieldRule::new("work.custom.field_1", &[]);
        fixed.fixed = Some("R&D".into());
        doc.fields.push(fixed);
        doc.fields
            .push(FieldRule::new("work.custom.field_2", &["{{ 37.5 }}"]));
        doc
    }

    #[test]
    fn the_form_is_the_mapping_required_fields_first() {
        let plan = Plan::new(&document(), &schema());
        let keys: Vec<&str> = plan.fields.iter().map(|f| f.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "firstName",
                "lastName",
                "email",
                "site",
                "startDate",
                "home_mobilePhone",
                "work_custom_field_1",
                "work_custom_field_2",
                "department",
                "title",
            ]
        );
        let cost = plan.field("work_custom_field_1").unwrap();
        assert_eq!(cost.list_key.as_deref(), Some("work_custom_field_1"));
        assert!(cost.help.contains("same value"), "{}", cost.help);
        assert!(plan.field("email").unwrap().help.contains("personal"));
        let mapped: Vec<(String, String)> = plan
            .mappings()
            .iter()
            .map(|m| {
                let m = serde_json::to_value(m).unwrap();
                (
                    m["key"].as_str().unwrap().to_owned(),
                    m["value"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert!(mapped.contains(&(
            "home_mobilePhone".into(),
            "{{candidate_telephone_number}}".into()
        )));
        assert!(mapped.contains(&("firstName".into(), "{{candidate_first_name}}".into())));
        assert_eq!(plan.key_for_path("surname"), Some("lastName"));
        assert_eq!(
            plan.key_for_path("work.custom.field_1"),
            Some("work_custom_field_1")
        );
        assert_eq!(plan.key_for_path("home.workPhone"), None);
        let without = Plan::new(&mapping::default_document(), &Schema::builtin());
        assert!(without.is_mapping_only());
        assert_eq!(without.fields.len(), 5);
    }

    #[test]
    fn a_submitted_form_is_encoded_as_the_mapping_encodes_it() {
        let schema = schema();
        let doc = document();
        let plan = Plan::new(&doc, &schema);
        let compiled = mapping::compile(&doc).unwrap();
        let mut values = variables::Values::default();
        for (name, value) in [
            ("candidate_first_name", "Ada"),
            ("candidate_last_name", "Lovelace"),
            ("candidate_email", "ada@example.com"),
            ("candidate_telephone_number", "+44 20 7946 0000"),
            ("candidate_start_date", "2027-01-04"),
            ("default_site", "london"),
        ] {
            values.set(name, value.to_owned());
        }
        let by_mapping = compiled.render(&values, &schema).unwrap().draft.body;
        // the form prefilled through the mapping and sent back untouched
        let prefilled = plan.mapped(&compiled, &values, &schema);
        let form: Vec<Value> = prefilled
            .iter()
            .map(|(k, v)| json!({"key": k, "value": v}))
            .collect();
        let req = PluginRequest::from_value(json!({ "formFields": form }));
        let texts = plan.submitted(&req, &prefilled);
        let by_form = plan.body(&texts, &schema).unwrap().body;
        assert_eq!(by_form, by_mapping);
        assert_eq!(by_form["home"]["mobilePhone"], "+44 20 7946 0000");
        assert_eq!(by_form["work"]["custom"]["field_1"], "cc1");
        assert_eq!(by_form["work"]["custom"]["field_2"], 37.5);
        assert_eq!(by_form["work"]["site"], "London");

        // a Stage Action sending nothing for a field gets the mapping's value
        let bare = PluginRequest::from_value(json!({"formFields": [
            {"key": "firstName", "value": "Ada"}, {"key": "site", "value": ""}
        ]}));
        let texts = plan.submitted(&bare, &prefilled);
        let body = plan.body(&texts, &schema).unwrap().body;
        assert_eq!(body, by_mapping);

        // what the person changed is what HiBob gets, checked the mapping's way
        let edited = PluginRequest::from_value(json!({"formFields": [
            {"key": "work_custom_field_1", "value": "Ops"},
            {"key": "home_mobilePhone", "value": ""},
            {"key": "work_custom_field_2", "value": "lots"},
            {"key": "site", "value": "Old office"}
        ]}));
        let texts = plan.submitted(&edited, &prefilled);
        let errors = plan.body(&texts, &schema).unwrap_err();
        let error = |key: &str| {
            errors
                .iter()
                .find(|e| e.key == key)
                .map(|e| e.error.clone())
        };
        assert!(error("work_custom_field_2")
            .unwrap()
            .contains("not a number"));
        assert!(error("site").unwrap().contains("archived"));
        assert_eq!(
            error("home_mobilePhone"),
            None,
            "an optional field may be cleared"
        );
    }

    #[test]
    fn a_department_narrows_grouped_titles() {
        let schema = schema();
        assert!(titles_are_grouped(&schema));
        let titles = schema.lists.get("title").unwrap();
        let departments = schema.lists.get("department");
        let narrowed: Vec<String> = title_options_for(titles, departments, Some("d1"))
            .into_iter()
            .map(|o| o.value)
            .collect();
        assert_eq!(narrowed, ["t1", "t2"]);
        assert_eq!(title_options_for(titles, departments, None).len(), 5);
        assert_eq!(
            title_options_for(titles, departments, Some("unknown")).len(),
            5
        );
        let all = options(&titles.items, false);
        assert_eq!(all[1].label, "Engineering › Backend engineer");
        let sites: Vec<String> = options(&schema.lists["site"].items, true)
            .into_iter()
            .map(|o| o.value)
            .collect();
        assert_eq!(sites, ["London", "New York"]);
    }
}

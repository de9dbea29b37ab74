//! The mapping: how one Pinpoint hire becomes the body of HiBob's `POST /v1/people`.
//!
//! A mapping is a list of HiBob target fields, each filled by ordered templates (the first that
//! renders non-empty wins) and, when every template is empty, by its fixed value; plus custom
//! variables built from other variables. It is compiled once per saved version and rendered per candidate; rendering either
//! produces the whole body or names the field that failed and why, so a half-built employee is
//! never sent.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub mod body;
pub mod checks;
mod diff;
mod issue;
mod lint;
pub mod service;
pub mod storage;
pub mod store;
pub mod template_guard;
pub mod templates;
pub mod variables;

use body::{BodyBuilder, FieldProblem};
pub use diff::{diff, Change, DiffLine};
use issue::{source_subject, variable_subject};
pub use issue::{Issue, RenderError, Severity};
pub use lint::lint;
pub use storage::MappingStore;

use crate::{
    hibob::schema::{self as hibob_schema, Kind, Schema},
    mapping::templates::{Engine, TemplateId},
    mapping::variables::Values,
};

/// HiBob refuses longer first names and surnames.
pub const MAX_NAME: usize = 50;
pub const MAX_FIELDS: usize = 200;
pub const MAX_SOURCES: usize = 10;
pub const MAX_VARIABLES: usize = 100;

/// A mapping as saved: what the operator edits, versioned as a whole.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MappingDocument {
    pub fields: Vec<FieldRule>,
    #[serde(default)]
    pub variables: Vec<CustomVariable>,
}

/// One HiBob field and where its value comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldRule {
    /// HiBob's dotted field id (`root.firstName`, `work.custom.field_1680187492413`).
    pub target: String,
    /// Templates tried in order; the first non-empty result wins.
    #[serde(default)]
    pub sources: Vec<String>,
    /// A value used as is when every template is empty (or there are none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed: Option<String>,
}

/// A variable the operator defines from other variables.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomVariable {
    pub name: String,
    pub template: String,
    #[serde(default)]
    pub description: String,
}

impl FieldRule {
    pub fn new(target: &str, sources: &[&str]) -> Self {
        Self {
            target: target.to_owned(),
            sources: sources.iter().map(|s| (*s).to_owned()).collect(),
            fixed: None,
        }
    }

    fn fixed_value(&self) -> Option<&str> {
        self.fixed.as_deref().filter(|f| !f.trim().is_empty())
    }

    fn live_sources(&self) -> impl Iterator<Item = (usize, &String)> {
        self.sources
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.trim().is_empty())
    }
}

/// What the original Lambda did: names and email from the application, the site from Settings,
/// the offer's start date or else the hire day plus Settings' number of days.
pub fn default_document() -> MappingDocument {
    MappingDocument {
        fields: vec![
            FieldRule::new("root.firstName", &["{{ candidate_first_name }}"]),
            FieldRule::new("root.surname", &["{{ candidate_last_name }}"]),
            FieldRule::new("root.email", &["{{ candidate_email }}"]),
            FieldRule::new("work.site", &["{{ default_site }}"]),
            FieldRule::new(
                "work.startDate",
                &["{{ candidate_start_date }}", "{{ default_start_date }}"],
            ),
        ],
        variables: Vec::new(),
    }
}

// ---------------------------------------------------------------------------------------------
// Compiling
// ---------------------------------------------------------------------------------------------

struct CompiledSource {
    template: TemplateId,
    names: Vec<String>,
}

struct CompiledField {
    target: String,
    /// Without `root.`: what the schema and the required set are keyed by.
    canonical: String,
    required: bool,
    path: Vec<String>,
    fixed: Option<String>,
    sources: Vec<(usize, CompiledSource)>,
}

/// A mapping ready to render: templates parsed, custom variables in dependency order.
pub struct Compiled {
    engine: Engine,
    variables: Vec<(String, CompiledSource)>,
    fields: Vec<CompiledField>,
}

impl std::fmt::Debug for Compiled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compiled")
            .field("fields", &self.fields.len())
            .field("variables", &self.variables.len())
            .finish()
    }
}

/// Names a template may read besides variables: minijinja's own globals.
const GLOBALS: &[&str] = &[
    "range",
    "dict",
    "namespace",
    "debug",
    "loop",
    "self",
    "super",
];

fn known_names(doc: &MappingDocument) -> BTreeSet<String> {
    variables::CATALOGUE
        .iter()
        .map(|v| v.name.to_owned())
        .chain(doc.variables.iter().map(|v| v.name.trim().to_owned()))
        .chain(GLOBALS.iter().map(|g| (*g).to_owned()))
        .collect()
}

/// The closest known name, for "did you mean".
fn suggestion(unknown: &str, known: &BTreeSet<String>) -> Option<String> {
    let unknown = unknown.to_lowercase();
    known
        .iter()
        .filter(|k| !GLOBALS.contains(&k.as_str()))
        .map(|k| (edit_distance(&unknown, k), k))
        .filter(|(d, k)| *d <= 3.max(k.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k.clone())
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb {
                prev
            } else {
                1 + prev.min(row[j]).min(row[j + 1])
            };
            prev = cur;
        }
    }
    row[b.len()]
}

fn unknown_name_issues(
    names: &[String],
    known: &BTreeSet<String>,
    subject: &str,
) -> Vec<(String, String)> {
    names
        .iter()
        .filter(|n| !known.contains(*n))
        .map(|n| {
            let hint = suggestion(n, known)
                .map(|s| format!(" Did you mean {s}?"))
                .unwrap_or_default();
            (
                subject.to_owned(),
                format!("unknown variable {n}: it is not in the catalogue or among the custom variables.{hint}"),
            )
        })
        .collect()
}

/// Orders custom variables so each comes after the ones it reads; a cycle is reported as the
/// path that closes it.
fn order_variables(
    doc: &MappingDocument,
    reads: &HashMap<String, Vec<String>>,
) -> Result<Vec<String>, (usize, String)> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Visiting,
        Done,
    }
    let names: Vec<String> = doc
        .variables
        .iter()
        .map(|v| v.name.trim().to_owned())
        .collect();
    let mut marks: HashMap<&str, Mark> = names.iter().map(|n| (n.as_str(), Mark::New)).collect();
    let mut order = Vec::new();
    fn visit<'a>(
        name: &'a str,
        reads: &'a HashMap<String, Vec<String>>,
        marks: &mut HashMap<&'a str, Mark>,
        path: &mut Vec<&'a str>,
        order: &mut Vec<String>,
    ) -> Result<(), String> {
        match marks.get(name) {
            Some(Mark::Done) | None => return Ok(()),
            Some(Mark::Visiting) => {
                let start = path.iter().position(|p| *p == name).unwrap_or(0);
                let mut cycle: Vec<&str> = path[start..].to_vec();
                cycle.push(name);
                return Err(cycle.join(" → "));
            }
            Some(Mark::New) => {}
        }
        marks.insert(name, Mark::Visiting);
        path.push(name);
        for dep in reads.get(name).map(Vec::as_slice).unwrap_or_default() {
            visit(dep, reads, marks, path, order)?;
        }
        path.pop();
        marks.insert(name, Mark::Done);
        order.push(name.to_owned());
        Ok(())
    }
    for (i, name) in names.iter().enumerate() {
        let mut path = Vec::new();
        visit(name, reads, &mut marks, &mut path, &mut order).map_err(|cycle| (i, cycle))?;
    }
    Ok(order)
}

/// Parses every template and orders the variables. Errors here block saving and rendering.
pub fn compile(doc: &MappingDocument) -> Result<Compiled, Vec<Issue>> {
    let mut issues = Vec::new();
    let mut engine = Engine::new();
    let known = known_names(doc);

    if doc.fields.len() > MAX_FIELDS {
        issues.push(Issue::new(
            Severity::Error,
            "mapping".into(),
            format!("a mapping may have at most {MAX_FIELDS} fields"),
        ));
    }
    if doc.variables.len() > MAX_VARIABLES {
        issues.push(Issue::new(
            Severity::Error,
            "mapping".into(),
            format!("a mapping may have at most {MAX_VARIABLES} custom variables"),
        ));
    }

    let mut seen = BTreeSet::new();
    let mut var_templates: Vec<Option<CompiledSource>> = Vec::new();
    let mut reads: HashMap<String, Vec<String>> = HashMap::new();
    let custom: BTreeSet<String> = doc
        .variables
        .iter()
        .map(|v| v.name.trim().to_owned())
        .collect();
    for (i, var) in doc.variables.iter().enumerate() {
        let name = var.name.trim();
        let subject = variable_subject(if name.is_empty() { "(unnamed)" } else { name });
        let mut fail = |message: String| {
            issues.push(Issue::new(Severity::Error, subject.clone(), message).at_variable(i));
        };
        if !templates::is_identifier(name) {
            fail("a variable name uses letters, digits and underscores, and does not start with a digit".into());
        } else if !seen.insert(name.to_owned()) {
            fail(format!("{name} is defined twice"));
        } else if variables::find(name).is_some_and(|v| !v.settable) {
            fail(format!(
                "{name} is a catalogue variable filled from Pinpoint; choose another name"
            ));
        } else if GLOBALS.contains(&name) {
            fail(format!("{name} is reserved by the template language"));
        }
        match engine.add(&var.template) {
            Ok(id) => {
                let names: Vec<String> = engine.names(id).into_iter().collect();
                for (_, message) in unknown_name_issues(&names, &known, &subject) {
                    issues
                        .push(Issue::new(Severity::Error, subject.clone(), message).at_variable(i));
                }
                reads.insert(
                    name.to_owned(),
                    names
                        .iter()
                        .filter(|n| custom.contains(*n))
                        .cloned()
                        .collect(),
                );
                var_templates.push(Some(CompiledSource {
                    template: id,
                    names,
                }));
            }
            Err(problem) => {
                issues.push(
                    Issue::new(Severity::Error, subject.clone(), problem.message.clone())
                        .at_variable(i)
                        .positioned(&problem),
                );
                var_templates.push(None);
            }
        }
    }
    let order = match order_variables(doc, &reads) {
        Ok(order) => order,
        Err((i, cycle)) => {
            issues.push(
                Issue::new(
                    Severity::Error,
                    variable_subject(doc.variables[i].name.trim()),
                    format!("the variables read each other in a circle: {cycle}"),
                )
                .at_variable(i),
            );
            Vec::new()
        }
    };

    let mut fields = Vec::new();
    for (f, rule) in doc.fields.iter().enumerate() {
        let target = rule.target.trim();
        if rule.sources.len() > MAX_SOURCES {
            issues.push(
                Issue::new(
                    Severity::Error,
                    target.to_owned(),
                    format!("at most {MAX_SOURCES} templates per field"),
                )
                .at_field(f, None),
            );
        }
        let mut sources = Vec::new();
        for (s, text) in rule.live_sources() {
            let subject = source_subject(target, s);
            match engine.add(text) {
                Ok(id) => {
                    let names: Vec<String> = engine.names(id).into_iter().collect();
                    for (_, message) in unknown_name_issues(&names, &known, &subject) {
                        issues.push(
                            Issue::new(Severity::Error, subject.clone(), message)
                                .at_field(f, Some(s)),
                        );
                    }
                    sources.push((
                        s,
                        CompiledSource {
                            template: id,
                            names,
                        },
                    ));
                }
                Err(problem) => issues.push(
                    Issue::new(Severity::Error, subject, problem.message.clone())
                        .at_field(f, Some(s))
                        .positioned(&problem),
                ),
            }
        }
        fields.push(CompiledField {
            canonical: hibob_schema::canonical_id(target).to_owned(),
            required: hibob_schema::is_required(target),
            path: hibob_schema::path_of(target),
            target: target.to_owned(),
            fixed: rule.fixed_value().map(str::to_owned),
            sources,
        });
    }

    if issues.iter().any(Issue::is_error) {
        return Err(issues);
    }
    let mut by_name: HashMap<String, CompiledSource> = doc
        .variables
        .iter()
        .zip(var_templates)
        .filter_map(|(v, c)| c.map(|c| (v.name.trim().to_owned(), c)))
        .collect();
    let variables = order
        .into_iter()
        .filter_map(|name| by_name.remove(&name).map(|c| (name, c)))
        .collect();
    Ok(Compiled {
        engine,
        variables,
        fields,
    })
}

// ---------------------------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------------------------

/// The employee HiBob will be asked to create, and what the console shows about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmployeeDraft {
    pub body: Value,
    pub email: String,
    pub display_name: String,
    pub start_date: String,
}

/// Where a field's value came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Choice {
    Fixed,
    /// Index of the template that won.
    Source(usize),
    /// Every source was empty; the field is left out of the body.
    Empty,
}

/// One template's try, for the "why this value" trace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tried {
    pub source: usize,
    pub template: String,
    pub output: String,
    /// The variables it reads, with their values for this candidate.
    pub reads: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldTrace {
    pub target: String,
    pub label: String,
    pub kind: String,
    pub required: bool,
    pub choice: Choice,
    pub text: String,
    /// What is sent (after encoding), or `None` when left out.
    pub value: Option<Value>,
    pub tried: Vec<Tried>,
    /// Why this field cannot be sent, if it cannot.
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rendered {
    pub draft: EmployeeDraft,
    /// Per field, in mapping order (empty unless a trace was asked for).
    pub trace: Vec<FieldTrace>,
    /// Custom variables' values for this candidate.
    pub variables: Vec<(String, String)>,
}

const TRACE_VALUE_CHARS: usize = 200;

fn shorten(text: &str) -> String {
    if text.chars().count() > TRACE_VALUE_CHARS {
        let cut: String = text.chars().take(TRACE_VALUE_CHARS).collect();
        format!("{cut}…")
    } else {
        text.to_owned()
    }
}

/// A variable's text for this candidate: a custom variable's, else the catalogue's.
fn lookup<'a>(name: &str, values: &'a Values, custom: &'a [(String, String)]) -> Option<&'a str> {
    custom
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .or_else(|| values.get(name))
}

fn reads_of(
    names: &[String],
    values: &Values,
    custom: &[(String, String)],
) -> Vec<(String, String)> {
    names
        .iter()
        .map(|n| {
            let shown = match lookup(n, values, custom) {
                Some(v) => shorten(v),
                None if values.is_object(n) => "(Pinpoint data)".to_owned(),
                None => String::new(),
            };
            (n.clone(), shown)
        })
        .collect()
}

/// A preview: the body as far as it could be built, how each field got its value, and every
/// problem (not just the first).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preview {
    pub rendered: Rendered,
    pub errors: Vec<RenderError>,
}

impl Compiled {
    /// Renders the employee for one candidate, or names the first field that cannot be built.
    pub fn render(&self, values: &Values, schema: &Schema) -> Result<Rendered, RenderError> {
        let (rendered, mut errors) = self.run(values, schema, false);
        if errors.is_empty() {
            Ok(rendered)
        } else {
            Err(errors.swap_remove(0))
        }
    }

    /// Renders with the "why this value" trace and goes on past failing fields.
    pub fn preview(&self, values: &Values, schema: &Schema) -> Preview {
        let (rendered, errors) = self.run(values, schema, true);
        Preview { rendered, errors }
    }

    fn run(&self, values: &Values, schema: &Schema, trace: bool) -> (Rendered, Vec<RenderError>) {
        let mut errors = Vec::new();
        // the catalogue's values become a template context once; custom variables are laid over
        // it without copying
        let base = values.context();
        let mut custom: Vec<(String, String)> = Vec::new();
        for (name, source) in &self.variables {
            let text = match self.engine.render(source.template, &base.with(&custom)) {
                Ok(text) => text.trim().to_owned(),
                Err(p) => {
                    errors.push(RenderError {
                        field: variable_subject(name),
                        label: String::new(),
                        problem: p.to_string(),
                    });
                    if !trace {
                        return (Rendered::empty(), errors);
                    }
                    String::new()
                }
            };
            custom.push((name.clone(), text));
        }
        let context = base.with(&custom);

        let mut body = BodyBuilder::new(schema);
        let mut traces = Vec::new();
        for field in &self.fields {
            let meta = schema.field(&field.canonical);
            let required = field.required;
            let mut tried = Vec::new();
            let mut failure = None;
            // templates in order, then the fixed value as the last resort: a fixed value never
            // hides a candidate's own data
            let mut chosen = (Choice::Empty, String::new());
            for (index, source) in &field.sources {
                let output = match self.engine.render(source.template, &context) {
                    Ok(output) => output.trim().to_owned(),
                    Err(p) => {
                        failure = Some(format!("template {}: {p}", index + 1));
                        break;
                    }
                };
                if trace {
                    tried.push(Tried {
                        source: *index,
                        template: self.engine.source(source.template).to_owned(),
                        output: shorten(&output),
                        reads: reads_of(&source.names, values, &custom),
                    });
                }
                if !output.is_empty() {
                    chosen = (Choice::Source(*index), output);
                    break;
                }
            }
            if let (Choice::Empty, None, Some(fixed)) = (&chosen.0, &failure, &field.fixed) {
                chosen = (Choice::Fixed, fixed.trim().to_owned());
            }
            let (choice, text) = chosen;
            let mut value = None;
            if failure.is_none() {
                match body.add(&field.target, &field.path, &text) {
                    Ok(sent) => value = sent.filter(|_| trace),
                    Err(FieldProblem::Missing) => {
                        failure = Some(empty_explanation(field, values, &custom));
                    }
                    Err(FieldProblem::Invalid(why)) => failure = Some(why),
                }
            }
            if let Some(problem) = &failure {
                errors.push(RenderError {
                    field: field.target.clone(),
                    label: meta.map(|m| m.name.clone()).unwrap_or_default(),
                    problem: problem.clone(),
                });
                if !trace {
                    return (Rendered::empty(), errors);
                }
            }
            if trace {
                traces.push(FieldTrace {
                    target: field.target.clone(),
                    label: meta.map(|m| m.name.clone()).unwrap_or_default(),
                    kind: meta
                        .map(|m| Kind::of(m).label())
                        .unwrap_or("text")
                        .to_owned(),
                    required,
                    choice,
                    text: shorten(&text),
                    value,
                    tried,
                    error: failure,
                });
            }
        }
        errors.extend(body.missing());
        let draft = body.finish();
        let rendered = Rendered {
            draft,
            trace: traces,
            variables: custom,
        };
        (rendered, errors)
    }
}

impl Rendered {
    fn empty() -> Self {
        Self {
            draft: EmployeeDraft {
                body: Value::Object(Map::new()),
                email: String::new(),
                display_name: String::new(),
                start_date: String::new(),
            },
            trace: Vec::new(),
            variables: Vec::new(),
        }
    }
}

/// What to do about a required field a candidate has no data for. Never "fall back to another
/// field": a surname copied from the first name is a wrong record HR would have to find. The
/// export waits until the data is complete, or HiBob gets a placeholder HR cannot miss.
pub const HOLD_OR_PLACEHOLDER: &str = ". Fix: complete it in Pinpoint and retry; the export \
     waits here needing attention until then. If HiBob must have the hire first, give the field \
     a fixed value HR will spot and correct, such as TO COMPLETE, not another field's value.";

/// "every template was empty: candidate_last_name is empty": what to fix, in words.
fn empty_explanation(
    field: &CompiledField,
    values: &Values,
    custom: &[(String, String)],
) -> String {
    if field.sources.is_empty() {
        return "HiBob requires a value and the mapping gives none".to_owned();
    }
    let empty: BTreeSet<&str> = field
        .sources
        .iter()
        .flat_map(|(_, s)| s.names.iter())
        .filter(|n| lookup(n, values, custom).is_some_and(|v| v.trim().is_empty()))
        .map(String::as_str)
        .collect();
    let mut text =
        "HiBob requires a value and every template was empty for this candidate".to_owned();
    if !empty.is_empty() {
        let verb = if empty.len() == 1 { "is" } else { "are" };
        let list: Vec<&str> = empty.into_iter().collect();
        text.push_str(&format!(" ({} {verb} empty)", list.join(", ")));
    }
    if field
        .sources
        .iter()
        .any(|(_, s)| s.names.iter().any(|n| n == "default_site"))
    {
        text.push_str(". Fix: an admin sets Settings → Default HiBob site, or work.site gets a fixed value in Mappings.");
    } else {
        text.push_str(HOLD_OR_PLACEHOLDER);
    }
    text
}

#[cfg(test)]
mod tests;

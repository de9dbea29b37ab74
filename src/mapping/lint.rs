//! Every check that can be made on a mapping before it is saved.

use super::*;
use crate::hibob::{FieldMeta, ListItem, NamedList};

/// List items looked at for a "did you mean": HiBob's lists are short, but a list is HiBob's data.
const HINT_ITEMS: usize = 2000;
/// Characters of a refused value compared with list items (the comparison is quadratic).
const HINT_CHARS: usize = 100;

/// Every check that can be made before saving. Errors block saving; warnings do not. With a
/// sample candidate, the mapping is also rendered for them and data-dependent problems become
/// warnings.
pub fn lint(doc: &MappingDocument, schema: &Schema, sample: Option<&Values>) -> Vec<Issue> {
    let compiled = compile(doc);
    let mut issues = match &compiled {
        Ok(_) => Vec::new(),
        Err(issues) => issues.clone(),
    };
    if !schema.live {
        issues.push(Issue::new(
            Severity::Warning,
            "HiBob fields".into(),
            "HiBob's field list could not be read, so field ids, types and list values were not checked",
        ));
    }
    for (f, rule) in doc.fields.iter().enumerate() {
        for (s, text) in rule.live_sources() {
            if let Some(problem) = crate::mapping::templates::save_problem(text) {
                let subject = source_subject(rule.target.trim(), s);
                issues.push(
                    Issue::new(Severity::Error, subject, problem.message.clone())
                        .at_field(f, Some(s))
                        .positioned(&problem),
                );
            }
        }
    }
    for (i, var) in doc.variables.iter().enumerate() {
        if let Some(problem) = crate::mapping::templates::save_problem(&var.template) {
            issues.push(
                Issue::new(
                    Severity::Error,
                    format!("variable {}", var.name.trim()),
                    problem.message.clone(),
                )
                .at_variable(i)
                .positioned(&problem),
            );
        }
    }
    issues.extend(shadowing_issues(doc));
    let mut targets: HashMap<&str, usize> = HashMap::new();
    for (f, rule) in doc.fields.iter().enumerate() {
        let target = rule.target.trim();
        let error = |message: String| {
            Issue::new(Severity::Error, target.to_owned(), message).at_field(f, None)
        };
        if target.is_empty() {
            issues.push(
                Issue::new(
                    Severity::Error,
                    format!("row {}", f + 1),
                    "choose a HiBob field",
                )
                .at_field(f, None),
            );
            continue;
        }
        if let Some(first) = targets.insert(hibob_schema::canonical_id(target), f) {
            issues.push(error(format!(
                "this field is already mapped in row {}",
                first + 1
            )));
        }
        if rule.fixed_value().is_none() && rule.live_sources().next().is_none() {
            issues.push(error("give it a template or a fixed value".into()));
        }
        if hibob_schema::is_computed(target) {
            issues.push(error(
                "HiBob computes this field itself; a new employee cannot set it".into(),
            ));
            continue;
        }
        let meta = schema.field(target);
        match meta {
            None if schema.live => {
                issues.push(error("HiBob has no field with this id".into()));
                continue;
            }
            None => continue,
            Some(meta) => {
                if Kind::of(meta) == Kind::Unsupported {
                    issues.push(error(format!(
                        "HiBob's {} fields cannot be set from a template",
                        meta.field_type
                    )));
                    continue;
                }
                let list = schema.list_for(meta);
                if let Some(fixed) = rule.fixed_value() {
                    if let Err(why) = hibob_schema::encode(fixed, meta, list) {
                        issues.push(error(format!(
                            "the fixed value cannot be sent: {why}.{}",
                            list_hint(fixed, list)
                        )));
                    }
                }
                issues.extend(constant_refusals(rule, f, meta, list));
                if meta.is_list && schema.live && schema.list_for(meta).is_none() {
                    issues.push(Issue::new(
                        Severity::Warning,
                        target.to_owned(),
                        "the HiBob list behind this field could not be read; its values were not checked",
                    ).at_field(f, None));
                }
            }
        }
    }
    for required in hibob_schema::REQUIRED {
        if !targets.contains_key(hibob_schema::canonical_id(required)) {
            issues.push(Issue::new(
                Severity::Error,
                (*required).to_owned(),
                "HiBob requires this field on every new employee: add it to the mapping",
            ));
        }
    }
    if let (Ok(compiled), Some(sample)) = (&compiled, sample) {
        if let Err(e) = compiled.render(sample, schema) {
            let field = doc.fields.iter().position(|r| r.target.trim() == e.field);
            // a field that already has an error fails the sample for that reason: said once
            let known = field.is_some() && issues.iter().any(|i| i.is_error() && i.field == field);
            if known {
                return issues;
            }
            // a limit hit fails every candidate; anything else may be this sample's data
            let severity = if templates::is_limit_failure(&e.problem) {
                Severity::Error
            } else {
                Severity::Warning
            };
            let mut issue = Issue::new(
                severity,
                e.field.clone(),
                format!("for the sample candidate: {}", e.problem),
            );
            issue.field = field;
            issues.push(issue);
        }
    }
    issues
}

/// A template that reads no variable gives the same text for every candidate, so whatever
/// follows it (later templates, the fixed value) can never be used: say so before it is saved.
fn shadowing_issues(doc: &MappingDocument) -> Vec<Issue> {
    let mut engine = Engine::new();
    let mut issues = Vec::new();
    for (f, rule) in doc.fields.iter().enumerate() {
        let live: Vec<(usize, &String)> = rule.live_sources().collect();
        for (pos, (s, text)) in live.iter().enumerate() {
            let later_templates = pos + 1 < live.len();
            if !later_templates && rule.fixed_value().is_none() {
                break;
            }
            let Ok(id) = engine.add(text) else { continue };
            if !engine.names(id).is_empty() {
                continue;
            }
            let hidden = match (later_templates, rule.fixed_value().is_some()) {
                (true, true) => "the templates after it and the fixed value are",
                (true, false) => "the templates after it are",
                _ => "the fixed value is",
            };
            issues.push(
                Issue::new(
                    Severity::Warning,
                    source_subject(rule.target.trim(), *s),
                    format!(
                        "reads no variable, so it gives every candidate the same value and {hidden} never used; \
                         put it last or make it the fixed value"
                    ),
                )
                .at_field(f, Some(*s)),
            );
            break;
        }
    }
    issues
}

/// A template that reads no variable renders the same text for every candidate. When HiBob
/// refuses that text, every hire the template reaches stops on it, so it blocks saving like a
/// refused fixed value does; a template that reads variables may suit some candidates and is only
/// judged on the sample (a warning). An empty constant is skipped: it falls through to what follows.
fn constant_refusals(
    rule: &FieldRule,
    f: usize,
    meta: &FieldMeta,
    list: Option<&NamedList>,
) -> Vec<Issue> {
    let mut engine = Engine::new();
    let nothing = templates::Context::new(BTreeMap::new());
    rule.live_sources()
        .filter_map(|(s, text)| {
            let id = engine.add(text).ok()?;
            if !engine.names(id).is_empty() {
                return None;
            }
            let rendered = engine.render(id, &nothing).ok()?;
            let rendered = rendered.trim();
            if rendered.is_empty() {
                return None;
            }
            let why = hibob_schema::encode(rendered, meta, list).err()?;
            Some(
                Issue::new(
                    Severity::Error,
                    source_subject(rule.target.trim(), s),
                    format!(
                        "this template reads no variable, so every candidate gets {rendered:?} and HiBob \
                         refuses it ({why}): every hire would stop here.{}",
                        list_hint(rendered, list)
                    ),
                )
                .at_field(f, Some(s)),
            )
        })
        .collect()
}

/// " Did you mean London?" for the list item nearest to a refused value, or nothing. An item
/// contained in the value (or the other way round) counts as near: "London HQ" is London.
fn list_hint(value: &str, list: Option<&NamedList>) -> String {
    let Some(list) = list else {
        return String::new();
    };
    let wanted: String = value
        .trim()
        .to_lowercase()
        .chars()
        .take(HINT_CHARS)
        .collect();
    let wanted_len = wanted.chars().count();
    let mut best: Option<(usize, &str)> = None;
    let mut pending: Vec<&ListItem> = list.items.iter().rev().collect();
    let mut looked = 0;
    while let Some(item) = pending.pop() {
        looked += 1;
        if looked > HINT_ITEMS {
            break;
        }
        pending.extend(item.children.iter().rev());
        if item.archived || item.name.trim().is_empty() {
            continue;
        }
        let name: String = item.name.to_lowercase().chars().take(HINT_CHARS).collect();
        let name_len = name.chars().count();
        let contained = name_len >= 3 && (wanted.contains(&name) || name.contains(&wanted));
        let distance = if contained {
            wanted_len.abs_diff(name_len)
        } else {
            edit_distance(&wanted, &name)
        };
        let near = contained || distance <= 3.max(name_len / 4);
        if near && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, item.name.as_str()));
        }
    }
    best.map(|(_, name)| format!(" Did you mean {name}?"))
        .unwrap_or_default()
}

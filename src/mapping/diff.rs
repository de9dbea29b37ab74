//! What changed between two versions of a mapping, in words.

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Change {
    Added,
    Removed,
    Changed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiffLine {
    pub change: Change,
    /// "work.site" or "variable work_email".
    pub subject: String,
    pub before: String,
    pub after: String,
}

fn describe_rule(rule: &FieldRule) -> String {
    rule.live_sources()
        .map(|(_, s)| s.trim().to_owned())
        .chain(rule.fixed_value().map(|f| format!("fixed: {f}")))
        .collect::<Vec<_>>()
        .join("  ⟶  ")
}

/// What changed from `before` to `after`, field by field and variable by variable.
pub fn diff(before: &MappingDocument, after: &MappingDocument) -> Vec<DiffLine> {
    fn by_key<T>(items: &[T], key: impl Fn(&T) -> String) -> BTreeMap<String, &T> {
        items.iter().map(|i| (key(i), i)).collect()
    }
    let mut lines = Vec::new();
    let mut compare = |subject: String, b: Option<String>, a: Option<String>| match (b, a) {
        (None, Some(a)) => lines.push(DiffLine {
            change: Change::Added,
            subject,
            before: String::new(),
            after: a,
        }),
        (Some(b), None) => lines.push(DiffLine {
            change: Change::Removed,
            subject,
            before: b,
            after: String::new(),
        }),
        (Some(b), Some(a)) if a != b => lines.push(DiffLine {
            change: Change::Changed,
            subject,
            before: b,
            after: a,
        }),
        _ => {}
    };
    let old = by_key(&before.fields, |r| {
        hibob_schema::canonical_id(&r.target).to_owned()
    });
    let new = by_key(&after.fields, |r| {
        hibob_schema::canonical_id(&r.target).to_owned()
    });
    let keys: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    for key in keys {
        let subject = new
            .get(key)
            .or(old.get(key))
            .map(|r| r.target.trim().to_owned())
            .unwrap_or_default();
        compare(
            subject,
            old.get(key).map(|r| describe_rule(r)),
            new.get(key).map(|r| describe_rule(r)),
        );
    }
    let old = by_key(&before.variables, |v| v.name.trim().to_owned());
    let new = by_key(&after.variables, |v| v.name.trim().to_owned());
    let keys: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    for key in keys {
        compare(
            variable_subject(key),
            old.get(key).map(|v| v.template.trim().to_owned()),
            new.get(key).map(|v| v.template.trim().to_owned()),
        );
    }
    lines
}

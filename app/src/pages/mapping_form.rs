//! The mapping editor's form as it travels to the server (its rows, custom variables and the
//! issues found), and its conversion to and from the core's mapping document. The editor, its
//! preview, the variables page and the version view all speak it.

use serde::{Deserialize, Serialize};

/// One row of the editor: a HiBob field and where its value comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EditorRow {
    #[serde(default)]
    pub target: String,
    /// One template per line; the first that renders non-empty wins.
    #[serde(default)]
    pub sources: String,
    #[serde(default)]
    pub fixed: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EditorVariable {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub template: String,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssueView {
    pub error: bool,
    pub field: Option<usize>,
    pub source: Option<usize>,
    pub variable: Option<usize>,
    pub text: String,
}

#[cfg(feature = "ssr")]
pub(crate) mod convert {
    use integration::mapping::{
        self,
        service::{MappingError, RecentEffect},
        store::StoreError,
        CustomVariable, FieldRule, Issue, MappingDocument,
    };

    use super::{EditorRow, EditorVariable, IssueView};
    use crate::error::AppError;

    pub fn document(rows: &[EditorRow], variables: &[EditorVariable]) -> MappingDocument {
        MappingDocument {
            fields: rows
                .iter()
                .filter(|r| {
                    !(r.target.trim().is_empty()
                        && r.sources.trim().is_empty()
                        && r.fixed.trim().is_empty())
                })
                .map(|r| FieldRule {
                    target: r.target.trim().to_owned(),
                    sources: r
                        .sources
                        .lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty())
                        .map(str::to_owned)
                        .collect(),
                    fixed: Some(r.fixed.trim().to_owned()).filter(|f| !f.is_empty()),
                })
                .collect(),
            variables: variables
                .iter()
                .filter(|v| !(v.name.trim().is_empty() && v.template.trim().is_empty()))
                .map(|v| CustomVariable {
                    name: v.name.trim().to_owned(),
                    template: v.template.trim().to_owned(),
                    description: v.description.trim().to_owned(),
                })
                .collect(),
        }
    }

    pub fn rows(doc: &MappingDocument) -> Vec<EditorRow> {
        doc.fields
            .iter()
            .map(|f| EditorRow {
                target: f.target.clone(),
                sources: f.sources.join("\n"),
                fixed: f.fixed.clone().unwrap_or_default(),
            })
            .collect()
    }

    pub fn variables(doc: &MappingDocument) -> Vec<EditorVariable> {
        doc.variables
            .iter()
            .map(|v| EditorVariable {
                name: v.name.clone(),
                template: v.template.clone(),
                description: v.description.clone(),
            })
            .collect()
    }

    pub fn issues(issues: &[Issue]) -> Vec<IssueView> {
        issues
            .iter()
            .map(|i| IssueView {
                error: i.is_error(),
                field: i.field,
                source: i.source,
                variable: i.variable,
                text: i.to_string(),
            })
            .collect()
    }

    pub fn choice(c: &mapping::Choice) -> String {
        match c {
            mapping::Choice::Fixed => "fixed value".into(),
            mapping::Choice::Source(0) => "template 1".into(),
            mapping::Choice::Source(i) => format!("fallback: template {}", i + 1),
            mapping::Choice::Empty => "left out (empty)".into(),
        }
    }

    /// A save's answer: the new version, or what the person can fix, or an internal error.
    pub fn saved(
        result: Result<integration::mapping::store::Version, MappingError>,
    ) -> Result<i64, AppError> {
        use crate::error::{fail, internal};
        match result {
            Ok(v) => Ok(v.id),
            Err(MappingError::Invalid(issues)) => Err(fail(invalid(&issues))),
            Err(e @ MappingError::NoteMissing) => {
                Err(fail(AppError::Invalid(format!("Not saved: {e}."))))
            }
            Err(MappingError::Store(
                e @ (StoreError::Conflict { .. }
                | StoreError::Unchanged(_)
                | StoreError::NotFound(_)),
            )) => Err(fail(AppError::Invalid(format!("Not saved: {e}.")))),
            Err(e) => Err(fail(internal(e))),
        }
    }

    /// What a mapping would have done to recent hires, in a sentence.
    pub fn effect_text(effect: RecentEffect, days: i64) -> String {
        let RecentEffect {
            checked,
            stopped,
            unreadable,
        } = effect;
        let mut text = match (checked, stopped) {
            (0, _) if unreadable == 0 => {
                format!("There were no hires in the last {days} days to check it against.")
            }
            (0, _) => String::new(),
            (n, 0) => format!(
                "None of the {n} hire(s) checked from the last {days} days would have needed attention."
            ),
            (_, 1) => format!("1 hire in the last {days} days would have needed attention."),
            (_, s) => format!("{s} hires in the last {days} days would have needed attention."),
        };
        if unreadable > 0 {
            text.push_str(&format!(
                " {unreadable} recent hire(s) could not be read from Pinpoint to check."
            ));
        }
        text.trim_start().to_owned()
    }

    pub fn invalid(issues: &[Issue]) -> AppError {
        let errors: Vec<String> = issues
            .iter()
            .filter(|i| i.is_error())
            .map(ToString::to_string)
            .collect();
        AppError::Invalid(format!(
            "The mapping was not saved: {} error(s). {}",
            errors.len(),
            errors.join(" · ")
        ))
    }
}

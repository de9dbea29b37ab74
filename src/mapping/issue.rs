//! What can be wrong with a mapping (lint issues, positioned for the editor) and why one hire's
//! employee could not be built.

use serde::{Deserialize, Serialize};

use super::templates::TemplateProblem;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Severity {
    Error,
    Warning,
}

/// One lint finding, placed so the editor can show it beside the right input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issue {
    pub severity: Severity,
    /// Index into `fields`, when the finding is about a field.
    pub field: Option<usize>,
    /// Index into that field's sources; `None` with a field means the field as a whole or its
    /// fixed value.
    pub source: Option<usize>,
    /// Index into `variables`, when the finding is about a custom variable.
    pub variable: Option<usize>,
    /// Where, in words: "work.site, template 2", "variable work_email".
    pub subject: String,
    pub message: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
}

impl Issue {
    pub(super) fn new(severity: Severity, subject: String, message: impl Into<String>) -> Self {
        Self {
            severity,
            field: None,
            source: None,
            variable: None,
            subject,
            message: message.into(),
            line: None,
            column: None,
        }
    }

    pub(super) fn at_field(mut self, field: usize, source: Option<usize>) -> Self {
        self.field = Some(field);
        self.source = source;
        self
    }

    pub(super) fn at_variable(mut self, variable: usize) -> Self {
        self.variable = Some(variable);
        self
    }

    pub(super) fn positioned(mut self, problem: &TemplateProblem) -> Self {
        self.line = problem.line;
        self.column = problem.column;
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl std::fmt::Display for Issue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.subject, self.message)?;
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, " (line {l}, column {c})"),
            (Some(l), None) => write!(f, " (line {l})"),
            _ => Ok(()),
        }
    }
}

pub(super) fn source_subject(target: &str, source: usize) -> String {
    format!("{target}, template {}", source + 1)
}

pub(super) fn variable_subject(name: &str) -> String {
    format!("variable {name}")
}

/// A render that cannot produce the employee: which field, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenderError {
    pub field: String,
    /// HiBob's name for the field ("Surname"), when its field list was read.
    #[serde(default)]
    pub label: String,
    pub problem: String,
}

impl std::fmt::Display for RenderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.label.trim() {
            "" => write!(f, "{}: {}", self.field, self.problem),
            label => write!(f, "{label} ({}): {}", self.field, self.problem),
        }
    }
}

impl std::error::Error for RenderError {}

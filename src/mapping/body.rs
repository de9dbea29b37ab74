//! The encoder both ways in share: one field's text at a time becomes the JSON HiBob wants for
//! that field (by its type, list items resolved), nested at its path, with HiBob's rules for
//! required fields and name lengths. The mapping feeds it rendered templates; the plugin feeds it
//! what the recruiter sent on the form.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::{EmployeeDraft, RenderError, MAX_NAME};
use crate::hibob::schema::{self as hibob_schema, Schema};

/// Why one field cannot go into the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldProblem {
    /// HiBob requires the field and its text is empty.
    Missing,
    Invalid(String),
}

/// The create body under construction.
pub struct BodyBuilder<'s> {
    schema: &'s Schema,
    body: Map<String, Value>,
    /// Required fields already given (or already reported), by canonical id.
    seen: Vec<String>,
    /// The texts the draft's summary needs.
    texts: HashMap<&'static str, String>,
}

impl<'s> BodyBuilder<'s> {
    pub fn new(schema: &'s Schema) -> Self {
        Self {
            schema,
            body: Map::new(),
            seen: Vec::with_capacity(hibob_schema::REQUIRED.len()),
            texts: HashMap::new(),
        }
    }

    /// Puts one field's text into the body, encoded for its HiBob type: `Some(value)` when it is
    /// sent, `None` when it is empty and may be left out.
    pub fn add(
        &mut self,
        target: &str,
        path: &[String],
        text: &str,
    ) -> Result<Option<Value>, FieldProblem> {
        let text = text.trim();
        let canonical = hibob_schema::canonical_id(target);
        let required = hibob_schema::is_required(target);
        if required && !self.seen.iter().any(|s| s == canonical) {
            self.seen.push(canonical.to_owned());
        }
        for summary in ["firstName", "surname", "email"] {
            if canonical == summary {
                self.texts.insert(summary, text.to_owned());
            }
        }
        let too_long =
            matches!(canonical, "firstName" | "surname") && text.chars().count() > MAX_NAME;
        if text.is_empty() {
            return if required {
                Err(FieldProblem::Missing)
            } else {
                Ok(None)
            };
        }
        // the rules a plugin submit is held to, so a webhook's names and e-mail are as well
        if matches!(canonical, "firstName" | "surname" | "email") {
            if let Some(why) = super::checks::problem(canonical, text) {
                return Err(FieldProblem::Invalid(why));
            }
        }
        let meta = self.schema.field(canonical);
        let encoded = match meta {
            Some(meta) => hibob_schema::encode(text, meta, self.schema.list_for(meta)),
            None => Ok(Value::String(text.to_owned())),
        };
        match encoded {
            Ok(_) if too_long => Err(FieldProblem::Invalid(format!(
                "HiBob accepts at most {MAX_NAME} characters"
            ))),
            Ok(value) => {
                hibob_schema::nest_path(&mut self.body, path, value.clone());
                Ok(Some(value))
            }
            Err(why) => Err(FieldProblem::Invalid(why)),
        }
    }

    /// The fields HiBob requires that were never given.
    pub fn missing(&self) -> Vec<RenderError> {
        hibob_schema::REQUIRED
            .iter()
            .filter(|r| {
                let id = hibob_schema::canonical_id(r);
                !self.seen.iter().any(|s| s == id)
            })
            .map(|required| RenderError {
                field: (*required).to_owned(),
                label: self
                    .schema
                    .field(required)
                    .map(|m| m.name.clone())
                    .unwrap_or_default(),
                problem: "HiBob requires this field and the mapping does not fill it".into(),
            })
            .collect()
    }

    pub fn finish(self) -> EmployeeDraft {
        let text = |id: &str| self.texts.get(id).cloned().unwrap_or_default();
        EmployeeDraft {
            email: text("email"),
            display_name: format!("{} {}", text("firstName"), text("surname"))
                .trim()
                .to_owned(),
            start_date: self
                .body
                .get("work")
                .and_then(|w| w.get("startDate"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            body: Value::Object(self.body),
        }
    }
}

//! The mapping as a service: compiled versions cached, HiBob's catalogue cached, lint before
//! save, and the dry-run preview on a real candidate. Shared by the console, the export worker
//! and the plugin, so "refresh HiBob fields" and a new version reach all three at once.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::NaiveDate;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Db;
use crate::{
    access::users::Actor,
    hibob::{
        self,
        gateway::Gateway,
        schema::{self as hibob_schema, Kind, Schema},
        CallLog, HibobError,
    },
    mapping::store::{StoreError, Version},
    mapping::variables::{self as variables, Setting, Values},
    mapping::{self, Compiled, FieldTrace, Issue, MappingDocument, RenderError},
    pinpoint,
    settings::credentials::{CredentialKey, Credentials},
};

/// Compiled versions kept in memory; versions are immutable, so entries never go stale.
const COMPILED_KEPT: usize = 16;
const PREVIEW_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the mapping has {} error(s); the first: {}", .0.iter().filter(|i| i.is_error()).count(), .0.iter().find(|i| i.is_error()).map(ToString::to_string).unwrap_or_default())]
    Invalid(Vec<Issue>),
    #[error("{0}")]
    Source(String),
    /// The version list is the team's change log: a version without a note is a blank line in it.
    #[error("say what changed and why: the note is how the team reads the version list")]
    NoteMissing,
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

impl From<crate::db::DbError> for MappingError {
    fn from(e: crate::db::DbError) -> Self {
        Self::Source(e.to_string())
    }
}

/// Recent hires a save over warnings is checked against, at most (each is a Pinpoint read).
pub const RECENT_HIRES_CHECKED: usize = 10;

/// What a mapping would have done to recent hires.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecentEffect {
    /// Hires rendered with the mapping.
    pub checked: usize,
    /// Of those, the ones it could not build an employee for: they would have needed attention.
    pub stopped: usize,
    /// Hires whose application could not be read from Pinpoint.
    pub unreadable: usize,
}

/// Which candidate a preview renders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PreviewSource {
    /// A fictional candidate, always available.
    Sample,
    /// The application behind an export (a real hire from the webhook history).
    Export(i64),
    /// Any application, fetched from Pinpoint by id.
    Application(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompareLine {
    pub target: String,
    pub in_hibob: String,
    pub mapped: String,
    pub same: bool,
}

/// The mapped body beside the HiBob employee who already has the email.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comparison {
    pub employee_id: Option<String>,
    pub message: String,
    pub lines: Vec<CompareLine>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreviewReport {
    pub candidate: String,
    /// Why HiBob's catalogue was not used, when it was not.
    pub schema_note: Option<String>,
    pub errors: Vec<RenderError>,
    pub trace: Vec<FieldTrace>,
    pub custom_variables: Vec<(String, String)>,
    /// The exact `POST /v1/people` body, pretty-printed.
    pub body: String,
    pub issues: Vec<Issue>,
    pub comparison: Option<Comparison>,
}

/// A HiBob field the editor can offer as a target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetOption {
    pub id: String,
    pub name: String,
    pub category: String,
    pub kind: String,
    pub required: bool,
    /// Item names, for list fields whose list could be read (capped).
    pub choices: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Targets {
    pub fields: Vec<TargetOption>,
    pub note: Option<String>,
}

struct Inner {
    db: Db,
    credentials: Credentials,
    hibob: Gateway,
    compiled: Mutex<HashMap<i64, Arc<Compiled>>>,
}

#[derive(Clone)]
pub struct MappingService {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for MappingService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MappingService").finish_non_exhaustive()
    }
}

fn start_days(raw: Option<String>) -> i64 {
    raw.and_then(|d| d.trim().parse::<i64>().ok())
        .filter(|d| (0..=3650).contains(d))
        .unwrap_or(14)
}

impl MappingService {
    /// A service reading HiBob through `hibob`, the gateway the plugin and the worker share.
    pub fn new(db: Db, hibob: Gateway) -> Self {
        Self {
            inner: Arc::new(Inner {
                db,
                credentials: hibob.credentials().clone(),
                hibob,
                compiled: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// A version, compiled (once).
    pub async fn compiled(&self, version: i64) -> Result<Arc<Compiled>, MappingError> {
        if let Some(c) = self
            .inner
            .compiled
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&version)
        {
            return Ok(Arc::clone(c));
        }
        let stored = self.inner.db.mappings().get(version).await?;
        let compiled = Arc::new(mapping::compile(&stored.document).map_err(MappingError::Invalid)?);
        let mut cache = self
            .inner
            .compiled
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if cache.len() >= COMPILED_KEPT {
            if let Some(oldest) = cache.keys().min().copied() {
                cache.remove(&oldest);
            }
        }
        cache.insert(version, Arc::clone(&compiled));
        Ok(compiled)
    }

    pub async fn current_id(&self) -> Result<i64, MappingError> {
        Ok(self.inner.db.mappings().current_id().await?)
    }

    /// A setting's value in force, trimmed; `None` when unset or unreadable.
    pub async fn text_setting(&self, key: CredentialKey) -> Option<String> {
        self.inner
            .credentials
            .get(key)
            .await
            .ok()
            .flatten()
            .map(|s| s.expose_secret().trim().to_owned())
            .filter(|s| !s.is_empty())
    }

    /// The console's own variables for a hire on `hired_on`.
    pub async fn setting(&self, hired_on: NaiveDate) -> Setting {
        Setting {
            today: hired_on,
            hired_on,
            default_site: self.text_setting(CredentialKey::HibobDefaultSite).await,
            start_days_after_hire: start_days(
                self.text_setting(CredentialKey::DefaultStartDays).await,
            ),
        }
    }

    /// The gateway to HiBob: its client and its cached catalogue.
    pub fn gateway(&self) -> &Gateway {
        &self.inner.hibob
    }

    async fn hibob(&self) -> Option<hibob::Client> {
        self.inner
            .hibob
            .client()
            .await
            .ok()
            .and_then(|c| c.with_timeout(PREVIEW_TIMEOUT).ok())
    }

    /// HiBob's catalogue for the worker: a transient failure is the export's to retry; a
    /// permanent one (no permission, no such endpoint) falls back to the built-in knowledge,
    /// which the create itself will then test.
    pub async fn schema_for_export(
        &self,
        client: &hibob::Client,
        log: &mut CallLog,
    ) -> Result<(Arc<Schema>, Option<String>), HibobError> {
        match self.inner.hibob.catalogue(client, log).await {
            Ok(found) => Ok((found.schema, found.note)),
            Err(e) if e.is_retryable() => Err(e),
            Err(e) => Ok((Arc::new(Schema::builtin()), Some(e.to_string()))),
        }
    }

    async fn schema(&self) -> (Arc<Schema>, Option<String>) {
        let client = self.hibob().await;
        let found = self.inner.hibob.catalogue_or_builtin(client.as_ref()).await;
        (found.schema, found.note)
    }

    /// Reads HiBob's fields and lists again now.
    pub async fn refresh_schema(&self) -> Option<String> {
        self.inner.hibob.refresh();
        self.schema().await.1
    }

    /// The fields the editor offers, required ones first.
    pub async fn targets(&self) -> Targets {
        let (schema, note) = self.schema().await;
        let mut fields: Vec<TargetOption> = schema
            .fields
            .iter()
            .filter(|f| !hibob_schema::is_computed(&f.id) && Kind::of(f) != Kind::Unsupported)
            .map(|f| TargetOption {
                id: f.id.clone(),
                name: f.name.clone(),
                category: f
                    .category_name
                    .clone()
                    .unwrap_or_else(|| f.category.clone()),
                kind: Kind::of(f).label().to_owned(),
                required: hibob_schema::is_required(&f.id),
                choices: schema
                    .list_for(f)
                    .map(|l| {
                        l.items
                            .iter()
                            .filter(|i| !i.archived)
                            .take(200)
                            .map(|i| i.name.clone())
                            .collect()
                    })
                    .unwrap_or_default(),
            })
            .collect();
        fields.sort_by(|a, b| {
            b.required
                .cmp(&a.required)
                .then_with(|| a.category.cmp(&b.category))
                .then_with(|| a.name.cmp(&b.name))
        });
        Targets { fields, note }
    }

    /// Lint against HiBob's catalogue and the built-in sample candidate.
    pub async fn lint(&self, doc: &MappingDocument) -> Vec<Issue> {
        let (schema, _) = self.schema().await;
        let today = chrono::Utc::now().date_naive();
        let sample = variables::sample(&self.setting(today).await);
        mapping::lint(doc, &schema, Some(&sample))
    }

    /// Lints, then saves as a new version. Errors block; warnings do not.
    pub async fn save(
        &self,
        actor: &Actor,
        doc: &MappingDocument,
        note: &str,
        edited: i64,
    ) -> Result<Version, MappingError> {
        let issues = self.lint(doc).await;
        if issues.iter().any(Issue::is_error) {
            return Err(MappingError::Invalid(issues));
        }
        if note.trim().is_empty() {
            return Err(MappingError::NoteMissing);
        }
        Ok(self
            .inner
            .db
            .mappings()
            .save(actor, doc, note, edited)
            .await?)
    }

    /// What `doc` would have done to these recent hires (exports whose applications are read
    /// again from Pinpoint, all at once, within the preview's timeout): how many it would have
    /// stopped. A hire that cannot be read is counted apart, never guessed.
    pub async fn recent_effect(&self, doc: &MappingDocument, exports: &[i64]) -> RecentEffect {
        let mut effect = RecentEffect::default();
        let Ok(compiled) = mapping::compile(doc) else {
            effect.checked = exports.len().min(RECENT_HIRES_CHECKED);
            effect.stopped = effect.checked;
            return effect;
        };
        let (schema, _) = self.schema().await;
        let mut reads = tokio::task::JoinSet::new();
        for id in exports.iter().take(RECENT_HIRES_CHECKED) {
            let service = self.clone();
            let source = PreviewSource::Export(*id);
            reads.spawn(async move { service.candidate(&source).await });
        }
        let asked = reads.len();
        let deadline = tokio::time::Instant::now() + PREVIEW_TIMEOUT;
        while let Ok(Some(read)) = tokio::time::timeout_at(deadline, reads.join_next()).await {
            match read {
                Ok(Ok((_, values))) => {
                    effect.checked += 1;
                    if compiled.render(&values, &schema).is_err() {
                        effect.stopped += 1;
                    }
                }
                Ok(Err(_)) | Err(_) => effect.unreadable += 1,
            }
        }
        // dropping the set cancels whatever is still waiting on Pinpoint
        effect.unreadable = asked.saturating_sub(effect.checked);
        effect
    }

    pub async fn restore(&self, actor: &Actor, id: i64) -> Result<Version, MappingError> {
        Ok(self.inner.db.mappings().restore(actor, id).await?)
    }

    /// The catalogue's values for a candidate, for the preview and the Variables page.
    pub async fn candidate(
        &self,
        source: &PreviewSource,
    ) -> Result<(String, Values), MappingError> {
        let today = chrono::Utc::now().date_naive();
        let (application_id, hired_on) = match source {
            PreviewSource::Sample => {
                let values = variables::sample(&self.setting(today).await);
                return Ok(("the sample candidate (Ada Lovelace)".to_owned(), values));
            }
            PreviewSource::Export(id) => {
                let (application_id, created_at) = self
                    .inner
                    .db
                    .mappings()
                    .export_hire(*id)
                    .await?
                    .ok_or_else(|| MappingError::Source(format!("export {id} does not exist")))?;
                let hired =
                    NaiveDate::parse_from_str(created_at.get(..10).unwrap_or_default(), "%Y-%m-%d")
                        .unwrap_or(today);
                (application_id, hired)
            }
            PreviewSource::Application(id) => {
                let id = id.trim();
                if id.is_empty()
                    || id.len() > 64
                    || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                {
                    return Err(MappingError::Source(
                        "a Pinpoint application id is letters, digits and dashes".into(),
                    ));
                }
                (id.to_owned(), today)
            }
        };
        let client = pinpoint::Client::from_credentials(&self.inner.credentials)
            .await
            .map_err(|e| MappingError::Source(e.to_string()))?
            .ok_or_else(|| {
                MappingError::Source("Pinpoint is not configured (an admin adds its credentials under Settings): preview the sample candidate".into())
            })?
            .with_timeout(PREVIEW_TIMEOUT)
            .map_err(|e| MappingError::Source(e.to_string()))?;
        let app = client
            .get_application(&application_id, &mut CallLog::new())
            .await
            .map_err(|e| MappingError::Source(e.to_string()))?;
        let values = variables::from_application(&app, &self.setting(hired_on).await);
        let name = values.get("candidate_full_name").unwrap_or_default();
        let label = if name.is_empty() {
            format!("application {application_id}")
        } else {
            format!("{name} (application {application_id})")
        };
        Ok((label, values))
    }

    /// Renders an unsaved mapping for one candidate; nothing is sent to HiBob. With `compare`,
    /// HiBob is searched for an employee with the candidate's email and the values are set side
    /// by side.
    pub async fn preview(
        &self,
        doc: &MappingDocument,
        source: &PreviewSource,
        compare: bool,
    ) -> Result<PreviewReport, MappingError> {
        let (candidate, values) = self.candidate(source).await?;
        let (schema, schema_note) = self.schema().await;
        let issues = mapping::lint(doc, &schema, None);
        let compiled = match mapping::compile(doc) {
            Ok(c) => c,
            Err(issues) => {
                return Ok(PreviewReport {
                    candidate,
                    schema_note,
                    errors: Vec::new(),
                    trace: Vec::new(),
                    custom_variables: Vec::new(),
                    body: String::new(),
                    issues,
                    comparison: None,
                })
            }
        };
        let preview = compiled.preview(&values, &schema);
        let body = serde_json::to_string_pretty(&preview.rendered.draft.body).unwrap_or_default();
        let comparison = if compare {
            let email = values.get("candidate_email").unwrap_or_default();
            let readable = comparable_fields(doc, &schema, &issues);
            Some(
                self.compare(email, &preview.rendered.trace, &readable)
                    .await,
            )
        } else {
            None
        };
        Ok(PreviewReport {
            candidate,
            schema_note,
            errors: preview.errors,
            trace: preview.rendered.trace,
            custom_variables: preview.rendered.variables,
            body,
            issues,
            comparison,
        })
    }

    /// `email` is the candidate's own, never the mapped one: a mapping may put any address in
    /// `root.email` (a fixed value, a template), and the comparison would then show another
    /// person's record. Only `readable` fields are read back and shown.
    async fn compare(&self, email: &str, trace: &[FieldTrace], readable: &[String]) -> Comparison {
        let Some(client) = self.hibob().await else {
            return Comparison {
                employee_id: None,
                message: "HiBob is not configured, so there is nothing to compare with".into(),
                lines: Vec::new(),
            };
        };
        if email.trim().is_empty() {
            return Comparison {
                employee_id: None,
                message: "the candidate has no email in Pinpoint, so HiBob cannot be searched"
                    .into(),
                lines: Vec::new(),
            };
        }
        let shown: Vec<&FieldTrace> = trace
            .iter()
            .filter(|t| readable.iter().any(|r| same_field(r, &t.target)))
            .collect();
        let fields: Vec<String> = shown.iter().map(|t| t.target.trim().to_owned()).collect();
        match client
            .employee_by_email(email, &fields, &mut CallLog::new())
            .await
        {
            Err(e) => Comparison {
                employee_id: None,
                message: format!("HiBob could not be searched: {e}"),
                lines: Vec::new(),
            },
            Ok(None) => Comparison {
                employee_id: None,
                message:
                    "No HiBob employee has the candidate's email: the export would create one."
                        .into(),
                lines: Vec::new(),
            },
            Ok(Some(employee)) => {
                let id = employee.get("id").map(value_text);
                let lines = shown
                    .iter()
                    .map(|t| {
                        let in_hibob = hibob_schema::at(&employee, &t.target)
                            .map(value_text)
                            .unwrap_or_default();
                        let mapped = t.value.as_ref().map(value_text).unwrap_or_default();
                        CompareLine {
                            same: in_hibob.eq_ignore_ascii_case(&mapped),
                            target: t.target.clone(),
                            in_hibob,
                            mapped,
                        }
                    })
                    .collect();
                Comparison {
                    message: format!(
                        "HiBob already has employee {}: an export would reuse them, not create or change anyone.",
                        id.clone().unwrap_or_default()
                    ),
                    employee_id: id,
                    lines,
                }
            }
        }
    }
}

fn same_field(a: &str, b: &str) -> bool {
    hibob_schema::canonical_id(a) == hibob_schema::canonical_id(b)
}

/// The fields a comparison may read from HiBob: ones the mapping is allowed to target (in HiBob's
/// catalogue as far as it is known, not computed, settable from a template) and whose row lint
/// accepts. Anything else would let the preview read fields nobody can map, such as pay.
fn comparable_fields(doc: &MappingDocument, schema: &Schema, issues: &[Issue]) -> Vec<String> {
    doc.fields
        .iter()
        .enumerate()
        .filter(|(i, _)| !issues.iter().any(|x| x.is_error() && x.field == Some(*i)))
        .map(|(_, rule)| rule.target.trim())
        .filter(|target| {
            !target.is_empty()
                && !hibob_schema::is_computed(target)
                && schema
                    .field(target)
                    .is_some_and(|meta| Kind::of(meta) != Kind::Unsupported)
        })
        .map(str::to_owned)
        .collect()
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Object(o) => o
            .get("name")
            .or_else(|| o.get("value"))
            .or_else(|| o.get("id"))
            .map(value_text)
            .unwrap_or_else(|| v.to_string()),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::FieldRule;

    fn fixed(target: &str, value: &str) -> FieldRule {
        FieldRule {
            target: target.to_owned(),
            sources: Vec::new(),
            fixed: Some(value.to_owned()),
        }
    }

    #[test]
    fn a_comparison_reads_only_fields_the_mapping_may_set_and_lint_accepts() {
        let doc = MappingDocument {
            fields: vec![
                FieldRule::new("root.firstName", &["{{ candidate_first_name }}"]),
                FieldRule::new("root.fullName", &["{{ candidate_full_name }}"]),
                FieldRule::new("payroll.salary.base", &["{{ candidate_first_name }}"]),
                fixed("root.email", "ceo@example.com"),
                fixed("work.startDate", "not a date"),
                FieldRule::new(" ", &["{{ candidate_first_name }}"]),
            ],
            variables: Vec::new(),
        };
        let schema = Schema::builtin();
        let issues = mapping::lint(&doc, &schema, None);
        assert_eq!(
            comparable_fields(&doc, &schema, &issues),
            vec!["root.firstName".to_owned(), "root.email".to_owned()]
        );
        let mut fields = schema.fields.clone();
        fields.push(hibob::FieldMeta {
            id: "payroll.salary.base".into(),
            name: "Base salary".into(),
            category: "payroll".into(),
            category_name: None,
            field_type: "currency".into(),
            json_path: "payroll.salary.base".into(),
            is_list: false,
            list_name: None,
            historical: false,
            description: None,
        });
        let live = Schema::from_parts(fields, Vec::new());
        let issues = mapping::lint(&doc, &live, None);
        assert!(
            !comparable_fields(&doc, &live, &issues).contains(&"payroll.salary.base".to_owned()),
            "a field no template can set is not read either"
        );
    }
}

//! The "Send to HiBob" plugin as Pinpoint sees it: the meta document, the token check, the form,
//! the submit that creates the employee, and the dropdown lists. No HTTP types live here, so the
//! same service can be driven by the axum routes, by tests and by benchmarks.
//!
//! The form is the mapping in force (`plugin_form`), and the submit runs the same export steps
//! as a webhook's export (`export_steps`), through the same HiBob gateway. Two rules shape the
//! submit. Pinpoint waits for the answer and shows it on the form, so every problem becomes a
//! field error or a toast the user can act on, never a bare failure. And a person clicking twice
//! (or five times at once) must never give HiBob two employees: submits for one e-mail are
//! serialised in this process, the export row remembers the employee id, and the shared
//! find-or-create turns HiBob's "email taken" into a lookup.

use std::{collections::HashMap, sync::Arc, time::Instant};

use secrecy::ExposeSecret;

use crate::Db;
use crate::{
    exports::steps::{self as steps, Recorder, StepError},
    exports::{
        plugin_attempt::{self, PluginAttempt},
        queue::{self as export_queue, Status},
    },
    hibob::{
        self,
        gateway::{AccessError, Catalogue},
        schema::Schema,
        CallLog, HibobError,
    },
    mapping::service::{MappingService, PreviewSource},
    mapping::variables,
    mapping::{Compiled, MappingDocument},
    pinpoint::plugin_contract::{
        ActionMetaResponse, ActionResult, FieldError, FormField, Intent, ListResponse,
        MetaResponse, PluginRequest, Toast,
    },
    plugin::form::{self as plugin_form, cv_of, for_record, Plan, Prefill, F_CV, F_EMAIL},
    settings::credentials::CredentialKey,
};

pub use super::request::{check_shape, check_token, AuthError, BadRequest, TOKEN_CONFIG_KEY};
use super::{
    recent::RecentApplications,
    request::check_submit_shape,
    submission::{End, Prepared, Read, Ready, Refusal},
};
pub use crate::plugin::checks::{parse_date, valid_email, MAX_NAME_CHARS};
pub use crate::plugin::form::{
    F_DEPARTMENT, F_EMPLOYMENT_TYPE, F_FIRST_NAME, F_LAST_NAME, F_SITE, F_START_DATE, F_TITLE,
};

pub use super::answers::explain_hibob_error;
use super::answers::{failure_for, Problem};
use super::meta::{list_endpoints, EXPORT, USUAL_LISTS};

/// How long the form waits for Pinpoint's copy of the application before it makes do with the
/// values Pinpoint sent with the call.
const APPLICATION_WAIT: std::time::Duration = std::time::Duration::from_secs(3);
pub use super::meta::{
    meta, meta_for, ACTION_DESCRIPTION, ACTION_LABEL, ACTION_META_PATH, PLUGIN_NAME, SUBMIT_PATH,
    TOKEN_HEADER,
};

fn unkeyed_key() -> String {
    format!("plugin:unkeyed:{}", plugin_attempt::random_suffix())
}

// ---------------------------------------------------------------------------------------------
// The service
// ---------------------------------------------------------------------------------------------

/// Why a list could not be answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListError {
    #[error("unknown list \"{0}\": ask for one of the lists the plugin's meta declares")]
    UnknownList(String),
    #[error("HiBob is not configured: an admin must add the HiBob service user under Settings in the console")]
    NotConfigured,
    #[error("{0}")]
    Unavailable(String),
}

struct Inner {
    db: Db,
    mappings: MappingService,
    recent: RecentApplications,
}

/// Cheap to clone: every clone shares the gateway to HiBob (and its per-person locks).
#[derive(Clone)]
pub struct PluginService {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for PluginService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginService").finish_non_exhaustive()
    }
}

/// The mapping in force, compiled, or why it cannot be used.
struct InForce {
    version: i64,
    document: MappingDocument,
    compiled: Arc<Compiled>,
}

impl PluginService {
    /// A service reading the mapping, and HiBob through its gateway, from `mappings`.
    pub fn new(db: Db, mappings: MappingService) -> Self {
        Self {
            inner: Arc::new(Inner {
                db,
                mappings,
                recent: RecentApplications::default(),
            }),
        }
    }

    async fn in_force(&self) -> Result<InForce, String> {
        let version = self.inner.db.mappings().current().await.map_err(|e| {
            tracing::error!(error = %e, "cannot read the mapping for the plugin");
            "The console could not read its mapping. Try again in a moment.".to_owned()
        })?;
        let compiled = self
            .inner
            .mappings
            .compiled(version.id)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, version = version.id, "the mapping in force cannot be compiled");
                format!("Mapping version {} cannot be used: ask an admin to fix it in the console's Mappings.", version.id)
            })?;
        Ok(InForce {
            version: version.id,
            document: version.document,
            compiled,
        })
    }

    /// Meta with field mappings from the mapping in force, and the lists of whatever catalogue
    /// is at hand (this public document never makes the console call HiBob).
    pub async fn meta(&self) -> MetaResponse {
        match self.in_force().await {
            Ok(in_force) => {
                let schema = self
                    .inner
                    .mappings
                    .gateway()
                    .cached()
                    .map_or_else(|| Arc::new(Schema::builtin()), |c| c.schema);
                meta_for(&Plan::new(&in_force.document, &schema))
            }
            Err(_) => meta(),
        }
    }

    pub async fn authorize(
        &self,
        header: Option<&str>,
        req: &PluginRequest,
    ) -> Result<(), AuthError> {
        let expected = self
            .inner
            .mappings
            .gateway()
            .credentials()
            .get(CredentialKey::PluginToken)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "cannot read the plugin token");
                AuthError::Unavailable
            })?;
        check_token(
            expected.as_ref().map(ExposeSecret::expose_secret),
            header,
            req,
        )
    }

    /// The HiBob client and catalogue, or what to tell the user instead.
    async fn hibob(&self) -> Result<(hibob::Client, Catalogue), Problem> {
        let gateway = self.inner.mappings.gateway();
        let client = match gateway.client().await {
            Ok(client) => client,
            Err(AccessError::NotConfigured) => return Err(Problem::not_configured()),
            Err(AccessError::Unreadable) => {
                return Err(Problem {
                    title: "HiBob settings cannot be used",
                    text: "The console could not read its HiBob settings. Ask an admin to look at the server log.".to_owned(),
                    unconfigured: false,
                })
            }
            Err(AccessError::Unusable(e)) => {
                return Err(Problem {
                    title: "HiBob settings cannot be used",
                    text: format!("The console cannot call HiBob with its settings ({e}). Ask an admin to check the HiBob API base URL under Settings."),
                    unconfigured: false,
                })
            }
        };
        match gateway.catalogue(&client, &mut CallLog::new()).await {
            Ok(catalogue) => Ok((client, catalogue)),
            Err(e) => Err(Problem::from_hibob(&e)),
        }
    }

    fn form(&self) -> ActionMetaResponse {
        ActionMetaResponse::new(EXPORT, ACTION_LABEL, ACTION_DESCRIPTION, SUBMIT_PATH)
    }

    fn callout(&self, problem: Problem) -> ActionMetaResponse {
        self.form().field(FormField::callout(
            "configCallout",
            problem.title,
            Intent::Danger,
            problem.text,
        ))
    }

    /// The variables of the application the call is about, read from Pinpoint as the webhook
    /// path reads them, so the form carries the same values a webhook export would send,
    /// including those Pinpoint's field mappings cannot name (the job's department, the offer's
    /// start date). `None` when the call names no application or Pinpoint cannot be asked in
    /// time; the values Pinpoint sent are used then. A submit (`reuse`) takes the copy its form
    /// read a moment ago, when there is one.
    async fn application_values(
        &self,
        req: &PluginRequest,
        reuse: bool,
    ) -> Option<variables::Values> {
        let id = req.entity_id("application")?;
        if reuse {
            if let Some(values) = self.inner.recent.get(&id) {
                return Some(values);
            }
        }
        let source = PreviewSource::Application(id.clone());
        match tokio::time::timeout(APPLICATION_WAIT, self.inner.mappings.candidate(&source)).await {
            Ok(Ok((_, values))) => {
                self.inner.recent.put(&id, values.clone());
                Some(values)
            }
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "the plugin form uses the values Pinpoint sent");
                None
            }
            Err(_) => {
                tracing::warn!("Pinpoint did not answer in time; the plugin form uses the values Pinpoint sent");
                None
            }
        }
    }

    /// The mapping's values for the candidate, per form key, and the raw values Pinpoint sent
    /// beside them where the mapping gives none.
    async fn prefill(
        &self,
        plan: &Plan,
        in_force: &InForce,
        schema: &Schema,
        req: &PluginRequest,
        prefill: &Prefill,
        reuse: bool,
    ) -> HashMap<String, String> {
        let values = match self.application_values(req, reuse).await {
            Some(values) => values,
            None => {
                let today = chrono::Utc::now().date_naive();
                plan.values(prefill)
                    .with_setting(&self.inner.mappings.setting(today).await)
            }
        };
        let mut out = plan.mapped(&in_force.compiled, &values, schema);
        // the CV is not a mapped field, but the application's own link beats none, when it is
        // one the submit will take
        let links = plugin_form::cv_links(self.inner.mappings.gateway().credentials()).await;
        let usable = |c: &&str| !c.trim().is_empty() && links.problem(c).is_none();
        if let Some(cv) = values.get("candidate_cv").filter(usable) {
            out.insert(F_CV.to_owned(), cv.to_owned());
        }
        for field in &plan.fields {
            if let (false, Some(raw)) = (out.contains_key(&field.key), prefill.text(&field.key)) {
                out.insert(field.key.clone(), raw);
            }
        }
        out
    }

    /// The form, prefilled from what Pinpoint sent through the mapping; on a refetch the
    /// department narrows the titles. When HiBob cannot be used, a callout says what to fix.
    pub async fn action_meta(&self, req: &PluginRequest) -> ActionMetaResponse {
        let catalogue = match self.hibob().await {
            Ok((_, catalogue)) => catalogue,
            Err(problem) => return self.callout(problem),
        };
        let schema = &catalogue.schema;
        let has_sites = schema
            .field("work.site")
            .and_then(|m| schema.list_for(m))
            .is_some();
        if !has_sites {
            return self.callout(Problem {
                title: "HiBob's site list cannot be read",
                text: "HiBob requires a site for every employee, but the console's service user cannot see the \"site\" list. Ask an admin to let the service user read company lists in Bob.".to_owned(),
                unconfigured: false,
            });
        }
        let in_force = match self.in_force().await {
            Ok(in_force) => in_force,
            Err(text) => {
                return self.callout(Problem {
                    title: "The mapping cannot be used",
                    text,
                    unconfigured: false,
                })
            }
        };
        let plan = Plan::new(&in_force.document, schema);
        let prefill = Prefill::from_request(req);
        let mut values = self
            .prefill(&plan, &in_force, schema, req, &prefill, false)
            .await;
        // a choice from a list that came with the request (a refetch after the department
        // changed) stands; texts are what the mapping makes of what came
        for field in plan.fields.iter().filter(|f| f.list_key.is_some()) {
            if let Some(chosen) = req.form_str(&field.key) {
                values.insert(field.key.clone(), chosen);
            }
        }
        let mut fields = plan.form_fields(schema, &values, plugin_form::titles_are_grouped(schema));
        fields.push(FormField::divider("divider"));
        let mut cv = FormField::file(F_CV, "CV")
            .optional()
            .description("Added to the employee's shared documents in HiBob.");
        match (prefill.value(F_CV), values.get(F_CV)) {
            (Some(sent), _) => cv = cv.value(sent.clone()),
            (None, Some(link)) => cv = cv.value(link.clone()),
            (None, None) => {}
        }
        fields.push(cv);
        let mut form = self.form().fields(fields);
        for (key, path) in list_endpoints(&plan) {
            form = form.list_endpoint(key, path);
        }
        form
    }

    /// Options of one declared dropdown, for Stage Actions configured before any candidate.
    pub async fn list_options(&self, list_key: &str) -> Result<ListResponse, ListError> {
        let unknown = || ListError::UnknownList(list_key.chars().take(60).collect());
        let document = match self.in_force().await {
            Ok(in_force) => in_force.document,
            Err(_) => crate::mapping::default_document(),
        };
        if !plugin_form::may_be_list(&document, list_key) {
            return Err(unknown());
        }
        let (_, catalogue) = match self.hibob().await {
            Ok(ready) => ready,
            Err(problem) if problem.unconfigured => return Err(ListError::NotConfigured),
            Err(problem) => return Err(ListError::Unavailable(problem.text)),
        };
        let schema = &catalogue.schema;
        let plan = Plan::new(&document, schema);
        let Some(field) = plan
            .fields
            .iter()
            .find(|f| f.list_key.as_deref() == Some(list_key))
        else {
            return match USUAL_LISTS.contains(&list_key) {
                true => Err(ListError::Unavailable(format!(
                    "HiBob has no {list_key} list the console's service user can read"
                ))),
                false => Err(unknown()),
            };
        };
        let list = schema
            .field(&field.target)
            .and_then(|m| schema.list_for(m))
            .ok_or_else(unknown)?;
        let by_name = matches!(field.kind, hibob::schema::Kind::List { by_name: true });
        Ok(ListResponse::new(
            list_key,
            plugin_form::options(&list.items, by_name),
        ))
    }

    /// Creates the employee (or finds the one this candidate already has), attaches the CV and
    /// sends the invitation. Business failures are `Ok` with `success: false`; `Err` means a
    /// malformed request. Either way the attempt is kept as a plugin export.
    ///
    /// What HiBob would be sent is worked out first, holding nothing; then the person's lock and
    /// the row are taken by the e-mail actually sent (a form that left it blank has it filled
    /// from the mapping), so a Stage Action without a person present still takes turns with the
    /// webhook export and the other submits of the same hire.
    pub async fn submit(&self, req: &PluginRequest) -> Result<ActionResult, BadRequest> {
        let started = Instant::now();
        let prepared = self.prepare(req).await;
        let email_key = prepared.email(req);
        let _serialised = match &email_key {
            Some(email) => match self.inner.mappings.gateway().employee_lock(email).await {
                Ok(guard) => Some(guard),
                Err(e) => {
                    tracing::warn!(error = %e, "a plugin submit could not take its person's lock");
                    return Ok(ActionResult::failure(
                        EXPORT,
                        Vec::new(),
                        Some(Toast::error(
                            "This person is being exported to HiBob right now (by another submit or the hire's webhook), so nothing was sent. Submit again in a minute: it will find what that export did.",
                        )),
                    ));
                }
            },
            None => None,
        };
        let key = match &email_key {
            Some(email) => format!("plugin:{email}"),
            None => unkeyed_key(),
        };
        let application_id = req.entity_id("application").unwrap_or_default();
        let attempt = match self
            .inner
            .db
            .plugin_attempts()
            .begin(&key, &application_id)
            .await
        {
            Ok(attempt) => attempt,
            Err(e) => {
                tracing::error!(error = %e, "could not open the plugin export");
                return Ok(ActionResult::failure(
                        EXPORT,
                        Vec::new(),
                        Some(Toast::error(
                            "The console could not record this export, so nothing was sent to HiBob. Try again in a moment.",
                        )),
                    ));
            }
        };
        let rec = Recorder {
            db: &self.inner.db,
            export_id: attempt.export_id,
            attempt: attempt.attempt,
        };
        let work = self.carry_out(&rec, &attempt, prepared, started);
        let end =
            plugin_attempt::hold(self.inner.db.plugin_attempts(), attempt.export_id, work).await;
        if let Err(e) = self
            .inner
            .db
            .plugin_attempts()
            .finish(attempt.export_id, end.status, end.error.as_deref())
            .await
        {
            tracing::error!(export_id = attempt.export_id, error = %e, "could not record the plugin export's result");
        }
        if end.status == export_queue::Status::Succeeded {
            // the failed submits before this one for the same application need nothing more
            match self
                .inner
                .db
                .resolutions()
                .supersede_plugin_failures(attempt.export_id)
                .await
            {
                Ok(ids) if !ids.is_empty() => {
                    tracing::info!(
                        export_id = attempt.export_id,
                        superseded = ids.len(),
                        "earlier failed submits resolved"
                    );
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(export_id = attempt.export_id, error = %e, "could not resolve the earlier failed submits");
                }
            }
        }
        tracing::info!(
            export_id = attempt.export_id,
            attempt = attempt.attempt,
            status = end.status.as_str(),
            employee_id = end.employee_id.as_deref().unwrap_or(""),
            elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "plugin submit finished"
        );
        end.answer
    }

    /// Reads the submit against the mapping in force and HiBob's catalogue and builds the body,
    /// or says why it cannot be sent; takes no lock and writes nothing.
    async fn prepare(&self, req: &PluginRequest) -> Prepared {
        if let Err(bad) = check_submit_shape(req) {
            let text = format!("malformed request: {bad}");
            return Prepared::refused("validate", text, Err(bad));
        }
        let toast = |text: &str| -> Result<ActionResult, BadRequest> {
            Ok(ActionResult::failure(
                EXPORT,
                Vec::new(),
                Some(Toast::error(text.to_owned())),
            ))
        };
        let (client, catalogue) = match self.hibob().await {
            Ok(ready) => ready,
            Err(problem) => {
                let answer = toast(&problem.text);
                return Prepared::refused("load_lists", problem.text, answer);
            }
        };
        let in_force = match self.in_force().await {
            Ok(in_force) => in_force,
            Err(text) => {
                let answer = toast(&text);
                return Prepared::refused("map", text, answer);
            }
        };
        let schema = &catalogue.schema;
        let plan = Plan::new(&in_force.document, schema);
        let mapped = self
            .prefill(
                &plan,
                &in_force,
                schema,
                req,
                &Prefill::from_request(req),
                true,
            )
            .await;
        let links = plugin_form::cv_links(self.inner.mappings.gateway().credentials()).await;
        let cv = cv_of(req, &links);
        let (read, body, inputs) = {
            let texts = plan.submitted(req, &mapped);
            let text = |key: &str| {
                texts
                    .iter()
                    .find(|(f, _)| f.key == key)
                    .map(|(_, t)| t.to_owned())
                    .filter(|t| !t.is_empty())
            };
            let name = [text(F_FIRST_NAME), text(F_LAST_NAME)]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            let read = Read {
                version: in_force.version,
                name: Some(name).filter(|n| !n.is_empty()),
                email: text(F_EMAIL),
                start_date: text(F_START_DATE),
            };
            let inputs = for_record(&texts, cv.as_ref().ok().and_then(Option::as_ref));
            (read, plan.body(&texts, schema), inputs)
        };
        let next = match (body, cv) {
            (Ok(draft), Ok(cv)) => Ok(Box::new(Ready {
                detail: format!(
                    "mapping v{}: {}; inputs: {inputs}",
                    in_force.version, draft.body
                ),
                client,
                plan,
                draft,
                cv,
            })),
            (body, cv) => {
                let mut errors = body.err().unwrap_or_default();
                errors.extend(cv.err());
                let summary = errors
                    .iter()
                    .map(|e| format!("{}: {}", e.key, e.error))
                    .collect::<Vec<_>>()
                    .join("; ");
                let answer = ActionResult::failure(
                    EXPORT,
                    errors,
                    Some(Toast::error(
                        "Some fields need fixing before the employee can be sent to HiBob.",
                    )),
                );
                Err(Refusal {
                    step: "validate",
                    detail: format!("{summary}; inputs: {inputs}"),
                    error: format!("invalid form: {summary}"),
                    answer: Ok(answer),
                })
            }
        };
        Prepared {
            read: Some(read),
            next,
        }
    }

    async fn carry_out(
        &self,
        rec: &Recorder<'_>,
        attempt: &PluginAttempt,
        prepared: Prepared,
        started: Instant,
    ) -> End {
        if let Some(read) = &prepared.read {
            // the form was built from the mapping in force; the export says which version
            if let Err(e) = rec
                .db
                .queue()
                .set_mapping_version(rec.export_id, read.version)
                .await
            {
                tracing::error!(error = %e, "could not record the plugin export's mapping version");
            }
            if let Err(e) = rec
                .db
                .queue()
                .set_candidate(
                    rec.export_id,
                    read.name.as_deref(),
                    read.email.as_deref(),
                    read.start_date.as_deref(),
                )
                .await
            {
                tracing::error!(export_id = rec.export_id, error = %e, "could not record the candidate");
            }
        }
        let Ready {
            client,
            plan,
            draft,
            cv,
            detail,
        } = match prepared.next {
            Ok(ready) => *ready,
            Err(refusal) => {
                record(rec, refusal.step, "failed", &refusal.detail, started).await;
                return End::refused(attempt, refusal.error, refusal.answer);
            }
        };
        record(rec, "validate", "ok", &detail, started).await;

        let employee = match &attempt.hibob_employee_id {
            Some(id) => {
                let why = format!("employee {id} is known from an earlier submit");
                record(rec, "search_employee", "skipped", &why, Instant::now()).await;
                Ok((id.clone(), false))
            }
            None => steps::find_or_create(rec, &client, &draft.body, &draft.email).await,
        };
        let (employee_id, created) = match employee {
            Ok(found) => found,
            Err(e) => return self.stopped(e, &plan, None),
        };

        match (&cv, attempt.cv_uploaded) {
            (None, _) => {
                record(
                    rec,
                    "upload_cv",
                    "skipped",
                    "the form has no CV",
                    Instant::now(),
                )
                .await
            }
            (Some(_), true) => {
                let why = "the CV was attached by an earlier submit";
                record(rec, "upload_cv", "skipped", why, Instant::now()).await;
            }
            (Some(file), false) => {
                let name = file.display_name("CV.pdf");
                let upload = steps::Cv {
                    name: &name,
                    url: &file.url,
                };
                if let Err(e) = steps::upload_cv(rec, &client, &employee_id, &upload, created).await
                {
                    return self.stopped(e, &plan, Some(Unfinished::Cv(&employee_id)));
                }
            }
        }
        let credentials = self.inner.mappings.gateway().credentials();
        if let Err(e) = steps::invite(rec, credentials, &client, &employee_id).await {
            return self.stopped(e, &plan, Some(Unfinished::Invitation(&employee_id)));
        }

        let message = if created {
            format!(
                "{} was sent to HiBob as employee {employee_id}.",
                draft.display_name
            )
        } else {
            format!(
                "{} is already in HiBob as employee {employee_id}; no second employee was created.",
                draft.display_name
            )
        };
        End {
            status: Status::Succeeded,
            error: None,
            answer: Ok(ActionResult::success(EXPORT, message)
                .with_external_record(employee_id.clone(), None)),
            employee_id: Some(employee_id),
        }
    }

    /// What the person is told when a step stopped, with the employee it left behind if any.
    fn stopped(&self, e: StepError, plan: &Plan, after: Option<Unfinished<'_>>) -> End {
        let error = match &after {
            Some(Unfinished::Cv(_)) => format!("CV not attached: {e}"),
            Some(Unfinished::Invitation(_)) => format!("invitation not sent: {e}"),
            None => e.to_string(),
        };
        let explained = match &e {
            StepError::Hibob(h) => explain_hibob_error(h),
            StepError::EmailInvisible => "HiBob already has an employee with this email. Ask an admin to let the service user see all employees (including inactive ones), or use another email.".to_owned(),
            StepError::Store(_) | StepError::Settings(_) => "The console could not record this step. Submit again in a moment; no second employee will be created.".to_owned(),
            StepError::Pinpoint(_) => e.to_string(),
        };
        let explained = if explained.ends_with(['.', '!', '?']) {
            explained
        } else {
            format!("{explained}.")
        };
        let mut end = match (&after, &e) {
            (None, StepError::Hibob(h)) => End::attention(error, Ok(failure_for(h, plan))),
            (None, StepError::EmailInvisible) => End::attention(
                error,
                Ok(ActionResult::failure(
                    EXPORT,
                    vec![FieldError::new(
                        F_EMAIL,
                        "HiBob already has someone with this email, but the console's service user cannot see them",
                    )],
                    Some(Toast::error(explained)),
                )),
            ),
            (None, _) => End::attention(
                error,
                Ok(ActionResult::failure(EXPORT, Vec::new(), Some(Toast::error(explained)))),
            ),
            (Some(unfinished), _) => {
                let (employee_id, what, retry) = match unfinished {
                    Unfinished::Cv(id) => (*id, "the CV was not attached", "the CV"),
                    Unfinished::Invitation(id) => (*id, "the invitation was not sent", "the invitation"),
                };
                let errors = match (&e, unfinished) {
                    (StepError::Hibob(HibobError::Rejected { message, .. }), Unfinished::Cv(_)) => {
                        vec![FieldError::new(F_CV, format!("HiBob could not add this file: {message}"))]
                    }
                    _ => Vec::new(),
                };
                let toast = format!(
                    "Employee {employee_id} is in HiBob, but {what}. {explained} Submit again to retry {retry}; no second employee will be created."
                );
                End::attention(
                    error,
                    Ok(ActionResult::failure(EXPORT, errors, Some(Toast::error(toast)))),
                )
            }
        };
        if let Some(Unfinished::Cv(id) | Unfinished::Invitation(id)) = after {
            end.employee_id = Some(id.to_owned());
        }
        end
    }

    /// How many per-e-mail locks are alive; lets tests prove the map does not leak.
    #[doc(hidden)]
    pub fn live_locks(&self) -> usize {
        self.inner.mappings.gateway().live_employee_locks()
    }
}

/// The step that stopped after the employee was in HiBob.
enum Unfinished<'a> {
    Cv(&'a str),
    Invitation(&'a str),
}

/// Records a step that made no call. A failed write is logged and the submit goes on: telling
/// the person what happened matters more than a complete timeline.
async fn record(rec: &Recorder<'_>, step: &str, outcome: &str, detail: &str, started: Instant) {
    if let Err(e) = rec
        .record(step, outcome, detail, CallLog::new(), started)
        .await
    {
        tracing::error!(export_id = rec.export_id, step, error = %e, "could not record a plugin export step");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use serde_json::{json, Value};

    fn request(value: Value) -> PluginRequest {
        PluginRequest::from_value(value)
    }

    #[test]
    fn meta_declares_the_action_token_and_lists() {
        let json = serde_json::to_value(meta()).unwrap();
        assert_eq!(json["name"], "HiBob");
        assert!(json["logoBase64"]
            .as_str()
            .unwrap()
            .starts_with("data:image/svg+xml;base64,"));
        let action = &json["actions"][0];
        assert_eq!(action["key"], "exportCandidate");
        assert_eq!(action["label"], "Send to HiBob");
        assert_eq!(action["metaEndpoint"], "/export-candidate/meta");
        let icon = action["iconSvgBase64"].as_str().unwrap();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(icon.trim_start_matches("data:image/svg+xml;base64,"))
            .unwrap();
        assert!(String::from_utf8(decoded).unwrap().starts_with("<svg"));
        let mapped: Vec<(&str, &str)> = action["mappings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["key"].as_str().unwrap(), m["value"].as_str().unwrap()))
            .collect();
        assert_eq!(
            mapped,
            [
                ("firstName", "{{candidate_first_name}}"),
                ("lastName", "{{candidate_last_name}}"),
                ("email", "{{candidate_email}}"),
                ("startDate", "{{candidate_start_date}}"),
                ("cvDocument", "{{candidate_cv}}"),
            ]
        );
        let token = &json["configurationFormFields"][0];
        assert_eq!(token["key"], "pluginToken");
        assert_eq!(token["sensitive"], true);
        assert_eq!(token["required"], true);
        assert_eq!(token["useAsHttpHeader"], "X-Plugin-Token");
        assert_eq!(
            json["listEndpoints"],
            json!([
                {"key": "sites", "endpoint": "/lists/sites"},
                {"key": "departments", "endpoint": "/lists/departments"},
                {"key": "titles", "endpoint": "/lists/titles"},
                {"key": "employmentTypes", "endpoint": "/lists/employmentTypes"},
            ])
        );
    }

    #[test]
    fn token_from_header_or_configuration_values() {
        let empty = request(json!({}));
        assert_eq!(
            check_token(None, Some("t"), &empty),
            Err(AuthError::NotConfigured)
        );
        assert_eq!(
            check_token(Some("  "), Some("t"), &empty),
            Err(AuthError::NotConfigured)
        );
        assert_eq!(
            check_token(Some("secret"), None, &empty),
            Err(AuthError::Refused)
        );
        assert_eq!(check_token(Some("secret"), Some("secret"), &empty), Ok(()));
        assert_eq!(
            check_token(Some("secret"), Some("secreT"), &empty),
            Err(AuthError::Refused)
        );
        assert_eq!(
            check_token(Some("secret"), Some("secret-longer"), &empty),
            Err(AuthError::Refused)
        );
        let configured =
            request(json!({"configurationValues": [{"key": "pluginToken", "value": " secret\n"}]}));
        assert_eq!(check_token(Some("secret"), None, &configured), Ok(()));
        assert_eq!(
            check_token(Some("secret"), Some("wrong"), &configured),
            Ok(())
        );
        let as_map = request(json!({"configurationValues": {"pluginToken": "nope"}}));
        assert_eq!(
            check_token(Some("secret"), None, &as_map),
            Err(AuthError::Refused)
        );
    }

    #[test]
    fn shapes_are_checked() {
        assert!(check_shape(&PluginRequest::default()).is_ok());
        assert!(check_shape(&request(json!({"formFields": [{"key": "a", "value": 1}]}))).is_ok());
        assert!(check_shape(&request(json!({"formFields": {"a": 1}}))).is_ok());
        let err = check_shape(&request(json!([1, 2]))).unwrap_err();
        assert!(err.message.contains("JSON object"), "{err}");
        let err = check_shape(&request(json!({"formFields": "x"}))).unwrap_err();
        assert!(err.message.starts_with("formFields must be"), "{err}");
        let err =
            check_shape(&request(json!({"configurationValues": [{"value": 1}]}))).unwrap_err();
        assert!(err.message.contains("configurationValues[0]"), "{err}");
        let err = check_submit_shape(&request(json!({}))).unwrap_err();
        assert!(err.message.contains("formFields is missing"), "{err}");
        let err = check_submit_shape(&request(
            json!({"formFields": [{"key": "firstName", "value": ["a"]}]}),
        ))
        .unwrap_err();
        assert!(err.message.contains("\"firstName\" must be text"), "{err}");
        assert!(check_submit_shape(&request(
            json!({"formFields": [{"key": "cvDocument", "value": {"url": "u"}}]})
        ))
        .is_ok());
    }

    #[test]
    fn prefill_reads_form_fields_then_mappings() {
        let req = request(json!({
            "formFields": [{"key": "firstName", "value": "Jane"}],
            "mappings": [{"key": "firstName", "value": "Other"}, {"key": "lastName", "value": "Doe"}]
        }));
        let p = Prefill::from_request(&req);
        assert_eq!(p.text("firstName").as_deref(), Some("Jane"));
        assert_eq!(p.text("lastName").as_deref(), Some("Doe"));
        assert_eq!(p.text("email"), None);
    }

    #[test]
    fn hibob_rejections_naming_a_field_become_field_errors() {
        let e = HibobError::Rejected {
            status: 400,
            key: Some("validations.work.site.invalid".into()),
            message: "Invalid site".into(),
            field: Some("work.site".into()),
        };
        let plan = Plan::new(&crate::mapping::default_document(), &Schema::builtin());
        let result = failure_for(&e, &plan);
        assert_eq!(
            result.errors,
            vec![FieldError::new("site", "HiBob: Invalid site")]
        );
        assert!(result.toast.is_some());
        let unauthorized = failure_for(
            &HibobError::Unauthorized {
                status: 401,
                message: "x".into(),
            },
            &plan,
        );
        assert!(unauthorized.errors.is_empty());
        assert!(unauthorized
            .toast
            .unwrap()
            .error
            .unwrap()
            .contains("credentials"));
    }
}

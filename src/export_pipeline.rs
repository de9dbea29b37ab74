//! One attempt at one export: fetch the application from Pinpoint, map it, find or create the
//! HiBob employee, upload the CV, comment back on the application. Each step is skipped when an
//! earlier attempt already finished it, so a retry or a restart after a crash never repeats one.

use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use sqlx::SqlitePool;

use crate::{
    credentials::Credentials,
    export_queue::{self, Export, StepRecord},
    hibob::{self, DocFolder, HibobError},
    mapping::EmployeeDraft,
    mapping_service::MappingService,
    outbound::{CallLog, Exchange},
    pinpoint::{self, PinpointError},
    variables,
};

/// How the attempt ended, for the queue to act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    Succeeded,
    /// A passing problem (5xx, timeout, 429): try again after `delay`.
    RetryLater {
        delay: Duration,
        error: String,
    },
    /// A problem a person must fix (bad data, refused credentials): no blind retry.
    NeedsAttention(String),
    /// Not attempted: HiBob's rate-limit window is spent; run again after `delay`.
    Deferred {
        delay: Duration,
    },
}

/// How long an attempt waits for its calls' turns in spent rate-limit windows: one of HiBob's
/// windows and a margin. An export whose first call would wait longer is given back uncounted.
const PACING_PATIENCE: Duration = Duration::from_secs(65);

/// The delay before attempt `attempt + 1`: exponential from 10 s, capped at 30 minutes, with
/// jitter so many failed exports do not all come back at once.
pub fn backoff(attempt: i64) -> Duration {
    let n = usize::try_from(attempt.max(1) - 1).unwrap_or(0);
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_secs(10))
        .with_max_delay(Duration::from_secs(30 * 60))
        .with_factor(2.0)
        .with_jitter()
        .with_max_times(64)
        .build()
        .nth(n)
        .unwrap_or(Duration::from_secs(30 * 60))
}

enum Failure {
    Retry(Option<Duration>, String),
    Attention(String),
    /// Nothing was tried: a rate-limit window is spent for longer than an attempt waits.
    Defer(Duration),
}

impl From<HibobError> for Failure {
    fn from(e: HibobError) -> Self {
        if e.is_retryable() {
            Failure::Retry(e.retry_after(), format!("HiBob: {e}"))
        } else {
            Failure::Attention(format!("HiBob: {e}"))
        }
    }
}

impl From<PinpointError> for Failure {
    fn from(e: PinpointError) -> Self {
        if e.is_retryable() {
            Failure::Retry(e.retry_after(), format!("Pinpoint: {e}"))
        } else {
            Failure::Attention(format!("Pinpoint: {e}"))
        }
    }
}

impl From<sqlx::Error> for Failure {
    fn from(e: sqlx::Error) -> Self {
        Failure::Retry(None, format!("database: {e}"))
    }
}

#[derive(Clone)]
pub struct Pipeline {
    pool: SqlitePool,
    credentials: Credentials,
    mappings: MappingService,
    timeout: Option<Duration>,
}

struct Attempt<'a> {
    pool: &'a SqlitePool,
    export_id: i64,
    attempt: i64,
}

impl Attempt<'_> {
    async fn record(
        &self,
        step: &str,
        outcome: &str,
        detail: &str,
        log: CallLog,
        started: Instant,
    ) -> Result<(), sqlx::Error> {
        let exchanges: Vec<Exchange> = log.into_vec();
        let json = serde_json::to_string(&exchanges).unwrap_or_else(|_| "[]".to_owned());
        export_queue::record_step(
            self.pool,
            self.export_id,
            &StepRecord {
                attempt: self.attempt,
                step,
                outcome,
                detail,
                exchanges_json: &json,
                duration_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
            },
        )
        .await
    }

    /// Records the step's result either way and passes the value or the failure on.
    async fn step<T, E: Into<Failure> + std::fmt::Display>(
        &self,
        name: &str,
        log: CallLog,
        started: Instant,
        result: Result<T, E>,
        ok_detail: impl FnOnce(&T) -> String,
    ) -> Result<T, Failure> {
        match result {
            Ok(value) => {
                self.record(name, "ok", &ok_detail(&value), log, started)
                    .await?;
                Ok(value)
            }
            Err(e) => {
                let detail = e.to_string();
                self.record(name, "failed", &detail, log, started).await?;
                Err(e.into())
            }
        }
    }
}

impl Pipeline {
    pub fn new(pool: SqlitePool, credentials: Credentials) -> Self {
        Self {
            mappings: MappingService::new(pool.clone(), credentials.clone()),
            pool,
            credentials,
            timeout: None,
        }
    }

    /// Shares the console's mapping service (its caches, and its "refresh HiBob fields").
    pub fn with_mappings(mut self, mappings: MappingService) -> Self {
        self.mappings = mappings;
        self
    }

    /// Overrides the clients' per-request timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Runs the export's remaining steps once.
    pub async fn run(&self, export: &Export) -> AttemptOutcome {
        let attempt = Attempt {
            pool: &self.pool,
            export_id: export.id,
            attempt: export.attempts,
        };
        let result = self.steps(&attempt, export).await;
        match result {
            Ok(()) => AttemptOutcome::Succeeded,
            Err(Failure::Attention(error)) => AttemptOutcome::NeedsAttention(error),
            Err(Failure::Defer(delay)) => AttemptOutcome::Deferred { delay },
            Err(Failure::Retry(wait, error)) => AttemptOutcome::RetryLater {
                delay: wait.unwrap_or_else(|| backoff(export.attempts)),
                error,
            },
        }
    }

    async fn steps(&self, at: &Attempt<'_>, export: &Export) -> Result<(), Failure> {
        let configuration = |what: &str| {
            Failure::Attention(format!(
                "{what} is not configured: add its credentials under Settings"
            ))
        };
        let client_error = |e: &dyn std::fmt::Display| Failure::Retry(None, e.to_string());
        let mut pinpoint = pinpoint::Client::from_credentials(&self.credentials)
            .await
            .map_err(|e| client_error(&e))?
            .ok_or_else(|| configuration("Pinpoint"))?;
        let mut hibob = hibob::Client::from_credentials(&self.credentials)
            .await
            .map_err(|e| client_error(&e))?
            .ok_or_else(|| configuration("HiBob"))?;
        if let Some(t) = self.timeout {
            pinpoint = pinpoint.with_timeout(t).map_err(|e| client_error(&e))?;
            hibob = hibob.with_timeout(t).map_err(|e| client_error(&e))?;
        }
        let pinpoint = pinpoint.with_patience(PACING_PATIENCE);
        let hibob = hibob.with_patience(PACING_PATIENCE);
        // the windows are shared by every export in flight: one whose first calls would wait
        // beyond an attempt's patience steps aside for now without spending an attempt
        let first_turn = [
            pinpoint.turns().ready_in(pinpoint::endpoint::APPLICATION),
            match export.hibob_employee_id {
                None => hibob.turns().ready_in(hibob::endpoint::CREATE),
                Some(_) => Duration::ZERO,
            },
        ]
        .into_iter()
        .max()
        .unwrap_or_default();
        if first_turn > PACING_PATIENCE {
            return Err(Failure::Defer(first_turn));
        }

        let started = Instant::now();
        let mut log = CallLog::new();
        let fetched = pinpoint
            .get_application(&export.pinpoint_application_id, &mut log)
            .await;
        let application = at
            .step("fetch_application", log, started, fetched, |a| {
                format!(
                    "application {} with {} attachment(s)",
                    a.id,
                    a.attachments.len()
                )
            })
            .await?;

        // who this is and when they start, even if the mapping below fails: the urgent-first
        // ordering of what needs attention reads the start date
        let name = [
            application.first_name.as_deref(),
            application.last_name.as_deref(),
        ]
        .into_iter()
        .flatten()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
        export_queue::set_candidate(
            at.pool,
            export.id,
            Some(name.as_str()).filter(|n| !n.is_empty()),
            application.email.as_deref(),
            variables::offer_start_date(&application).as_deref(),
        )
        .await?;

        let draft = self.map(at, export, &hibob, &application).await?;
        export_queue::set_candidate(
            at.pool,
            export.id,
            Some(&draft.display_name),
            Some(&draft.email),
            Some(&draft.start_date),
        )
        .await?;

        let (employee_id, created_now) = match &export.hibob_employee_id {
            Some(id) => (id.clone(), false),
            None => self.find_or_create(at, &hibob, &draft).await?,
        };

        if !export.cv_uploaded {
            let started = Instant::now();
            match application.cv() {
                None => {
                    at.record(
                        "upload_cv",
                        "skipped",
                        "the application has no CV",
                        CallLog::new(),
                        started,
                    )
                    .await?;
                }
                Some(cv) => {
                    let mut log = CallLog::new();
                    let name = cv.filename.clone().unwrap_or_else(|| "CV.pdf".to_owned());
                    // an earlier attempt may have uploaded it and died before recording that,
                    // and someone else's employee may have it already; one created a moment ago
                    // has no documents. A service user that may not list them (403, or 404 when
                    // the module is missing) skips the check; any other failure stops here, as
                    // uploading without knowing could add the CV twice.
                    let listed = if created_now {
                        Ok(Vec::new())
                    } else {
                        match hibob.document_names(&employee_id, &mut log).await {
                            Err(HibobError::Unauthorized { status: 403, .. }) => Ok(Vec::new()),
                            Err(e) if e.is_not_found() => Ok(Vec::new()),
                            listed => listed,
                        }
                    };
                    let existing = match listed {
                        Ok(names) => names,
                        Err(e) => {
                            return at
                                .step("upload_cv", log, started, Err::<(), _>(e), |_| {
                                    String::new()
                                })
                                .await;
                        }
                    };
                    let already = existing.iter().any(|n| n == &name);
                    let uploaded = if already {
                        Ok(())
                    } else {
                        hibob
                            .upload_document_from_url(
                                &employee_id,
                                DocFolder::Shared,
                                &name,
                                &cv.url,
                                &mut log,
                            )
                            .await
                    };
                    at.step("upload_cv", log, started, uploaded, |_| {
                        if already {
                            format!("{name} was already in the shared folder")
                        } else {
                            format!("{name} added to the shared folder")
                        }
                    })
                    .await?;
                }
            }
            export_queue::mark_cv_uploaded(at.pool, export.id).await?;
        }

        self.invite(at, export, &hibob, &employee_id).await?;

        if !export.comment_posted {
            let started = Instant::now();
            let mut log = CallLog::new();
            let text = format!("Exported to HiBob, employee ID {employee_id}");
            let posted = pinpoint
                .post_comment(&export.pinpoint_application_id, &text, &mut log)
                .await;
            at.step("comment", log, started, posted, |id| {
                format!("comment {id} added")
            })
            .await?;
            export_queue::mark_comment_posted(at.pool, export.id).await?;
        }
        Ok(())
    }

    /// Invites the new employee to the welcome wizard chosen in Settings, once. A 403 means the
    /// service user may not invite: the step is skipped with a note and the export goes on.
    async fn invite(
        &self,
        at: &Attempt<'_>,
        export: &Export,
        hibob: &hibob::Client,
        employee_id: &str,
    ) -> Result<(), Failure> {
        use secrecy::ExposeSecret;
        let wizard = self
            .credentials
            .get(crate::credentials::CredentialKey::HibobWelcomeWizardId)
            .await
            .map_err(|e| Failure::Retry(None, e.to_string()))?
            .and_then(|w| w.expose_secret().trim().parse::<u64>().ok());
        let Some(wizard) = wizard else {
            return Ok(());
        };
        let started = Instant::now();
        match export_queue::invitation(at.pool, export.id).await? {
            export_queue::Invitation::Settled => return Ok(()),
            export_queue::Invitation::Interrupted => {
                at.record(
                    "invite",
                    "skipped",
                    "an earlier attempt asked HiBob to invite this employee and was cut off before \
                     the answer; it is not asked twice, so check the invitation in Bob",
                    CallLog::new(),
                    started,
                )
                .await?;
                export_queue::mark_invited(at.pool, export.id).await?;
                return Ok(());
            }
            export_queue::Invitation::NotSent => {}
        }
        export_queue::mark_invite_started(at.pool, export.id).await?;
        let mut log = CallLog::new();
        match hibob.invite(employee_id, wizard, &mut log).await {
            Ok(()) => {
                at.record(
                    "invite",
                    "ok",
                    &format!("invited to welcome wizard {wizard}"),
                    log,
                    started,
                )
                .await?;
            }
            Err(HibobError::Unauthorized { status: 403, .. }) => {
                at.record(
                    "invite",
                    "skipped",
                    "HiBob answered 403: the service user may not invite employees. Invite them \
                     by hand in Bob, or give the service user the permission",
                    log,
                    started,
                )
                .await?;
            }
            Err(e) => {
                // HiBob answered, so it did not invite: a later attempt may ask again. Without an
                // answer (a timeout, a dropped connection) it may have, so it is not asked twice.
                let answered = !matches!(
                    e,
                    HibobError::Timeout | HibobError::Transport(_) | HibobError::Decode(_)
                );
                if answered {
                    export_queue::clear_invite_started(at.pool, export.id).await?;
                }
                at.step("invite", log, started, Err::<(), _>(e), |_| String::new())
                    .await?;
            }
        }
        export_queue::mark_invited(at.pool, export.id).await?;
        Ok(())
    }

    /// Builds the employee with the export's mapping version (the current one on its first
    /// attempt, then pinned, so automatic retries send the same body).
    async fn map(
        &self,
        at: &Attempt<'_>,
        export: &Export,
        hibob: &hibob::Client,
        application: &pinpoint::Application,
    ) -> Result<EmployeeDraft, Failure> {
        let started = Instant::now();
        let mut log = CallLog::new();
        let version = match export.mapping_version {
            Some(v) => v,
            None => self
                .mappings
                .current_id()
                .await
                .map_err(|e| Failure::Retry(None, e.to_string()))?,
        };
        let attention = |detail: String| async {
            at.record("map", "failed", &detail, CallLog::new(), started)
                .await?;
            Err::<EmployeeDraft, Failure>(Failure::Attention(detail))
        };
        let compiled = match self.mappings.compiled(version).await {
            Ok(c) => c,
            Err(e) => return attention(format!("mapping v{version} cannot be used: {e}")).await,
        };
        let (schema, note) = match self.mappings.schema_for_export(hibob, &mut log).await {
            Ok(found) => found,
            Err(e) => {
                let detail = format!("HiBob's field list could not be read: {e}");
                at.record("map", "failed", &detail, log, started).await?;
                return Err(e.into());
            }
        };
        let hired_on = chrono::NaiveDate::parse_from_str(
            export.created_at.get(..10).unwrap_or_default(),
            "%Y-%m-%d",
        )
        .unwrap_or_else(|_| chrono::Utc::now().date_naive());
        let values =
            variables::from_application(application, &self.mappings.setting(hired_on).await);
        export_queue::set_mapping_version(at.pool, export.id, version).await?;
        match compiled.render(&values, &schema) {
            Ok(rendered) => {
                let mut detail = format!("mapping v{version}: {}", rendered.draft.body);
                if let Some(note) = note {
                    detail.push_str(&format!(
                        " (HiBob's field list was not available: {note}; values sent as written)"
                    ));
                }
                at.record("map", "ok", &detail, log, started).await?;
                Ok(rendered.draft)
            }
            Err(e) => {
                attention(format!(
                    "Mapping version {version} could not build the employee. {e}"
                ))
                .await
            }
        }
    }

    /// Creates the employee, or finds the one HiBob already has with this e-mail, and keeps
    /// the id the moment it is known; says whether this attempt created them.
    ///
    /// HiBob refuses a second employee with the same e-mail, so creating first costs one call
    /// where searching first costs two, and a search is made only when it can find someone: after
    /// HiBob answers that the e-mail is taken, or when an earlier attempt sent the create and was
    /// cut off before it saved the answer (it looks first, so as not to lean on the refusal alone).
    async fn find_or_create(
        &self,
        at: &Attempt<'_>,
        hibob: &hibob::Client,
        draft: &EmployeeDraft,
    ) -> Result<(String, bool), Failure> {
        if export_queue::create_sent(at.pool, at.export_id).await? {
            if let Some(existing) = self.search(at, hibob, draft).await? {
                return Ok((existing, false));
            }
        }
        export_queue::mark_create_sent(at.pool, at.export_id).await?;
        let started = Instant::now();
        let mut log = CallLog::new();
        match hibob.create_employee(&draft.body, &mut log).await {
            Ok(id) => {
                export_queue::set_employee_id(at.pool, at.export_id, &id).await?;
                at.record(
                    "create_employee",
                    "ok",
                    &format!("employee {id} created"),
                    log,
                    started,
                )
                .await?;
                Ok((id, true))
            }
            Err(e) if e.is_email_taken() => {
                // an earlier attempt of ours whose answer was lost, or someone else
                at.record("create_employee", "failed", &e.to_string(), log, started)
                    .await?;
                let existing = self.search(at, hibob, draft).await?.ok_or_else(|| {
                    Failure::Attention("HiBob says the email is taken but no employee with it is visible to the service user".to_owned())
                })?;
                Ok((existing, false))
            }
            Err(e) => {
                // a refusal means nobody was created; without an answer (or with a 5xx) HiBob
                // may have stored the employee, so the next attempt looks first
                let refused = matches!(
                    e,
                    HibobError::Rejected { .. }
                        | HibobError::Unauthorized { .. }
                        | HibobError::RateLimited { .. }
                        | HibobError::TooLarge { .. }
                );
                if refused {
                    export_queue::clear_create_sent(at.pool, at.export_id).await?;
                }
                at.record("create_employee", "failed", &e.to_string(), log, started)
                    .await?;
                Err(e.into())
            }
        }
    }

    /// Looks the draft's e-mail up and keeps the id of the employee found.
    async fn search(
        &self,
        at: &Attempt<'_>,
        hibob: &hibob::Client,
        draft: &EmployeeDraft,
    ) -> Result<Option<String>, Failure> {
        let started = Instant::now();
        let mut log = CallLog::new();
        let found = hibob.search_by_email(&draft.email, &mut log).await;
        let found = at
            .step("search_employee", log, started, found, |f| match f {
                Some(e) => format!("employee {} already has this email", e.id),
                None => "no employee has this email yet".to_owned(),
            })
            .await?;
        match found {
            Some(existing) => {
                export_queue::set_employee_id(at.pool, at.export_id, &existing.id).await?;
                Ok(Some(existing.id))
            }
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::backoff;
    use std::time::Duration;

    #[test]
    fn backoff_grows_with_jitter_and_is_capped() {
        let first = backoff(1);
        assert!(
            first >= Duration::from_secs(10) && first <= Duration::from_secs(20),
            "{first:?}"
        );
        let fourth = backoff(4);
        assert!(fourth >= Duration::from_secs(80), "{fourth:?}");
        assert!(backoff(40) <= Duration::from_secs(60 * 60));
    }
}

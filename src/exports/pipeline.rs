//! One attempt at one webhook export: fetch the application from Pinpoint, map it, then the
//! shared steps (find or create the HiBob employee, upload the CV, invite, comment back on the
//! application). Each step is skipped when an earlier attempt already finished it, so a retry or
//! a restart after a crash never repeats one.

use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};

use crate::Db;
use crate::{
    exports::admission::Pressure,
    exports::queue::Export,
    exports::steps::{self as steps, Recorder, StepError},
    hibob::{self, gateway::AccessError, HibobError},
    mapping::service::MappingService,
    mapping::variables,
    mapping::EmployeeDraft,
    outbound::CallLog,
    pacing::Turns,
    pinpoint::{self, PinpointError},
    settings::credentials::Credentials,
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

impl From<StepError> for Failure {
    fn from(e: StepError) -> Self {
        match e {
            StepError::Hibob(e) => e.into(),
            StepError::Pinpoint(e) => e.into(),
            StepError::Store(e) => e.into(),
            StepError::Settings(e) => Failure::Retry(None, e.to_string()),
            StepError::EmailInvisible => Failure::Attention(StepError::EmailInvisible.to_string()),
        }
    }
}

#[derive(Clone)]
pub struct Pipeline {
    db: Db,
    mappings: MappingService,
    timeout: Option<Duration>,
    /// The pacing places of the latest attempt's clients (Pinpoint, HiBob), so the worker can ask
    /// how much room the services give without building clients of its own.
    turns: std::sync::Arc<std::sync::Mutex<Option<(Turns, Turns)>>>,
}

impl Pipeline {
    /// A pipeline reading HiBob through the mapping service's gateway, so the worker, the plugin
    /// and the console share one client, one rate-limit memory and one catalogue.
    pub fn new(db: Db, mappings: MappingService) -> Self {
        Self {
            db,
            mappings,
            timeout: None,
            turns: Default::default(),
        }
    }

    /// How much room HiBob's and Pinpoint's pacing leaves a new export now, as the latest
    /// attempt's clients see it (no room limits are known before the first attempt).
    pub fn pressure(&self) -> Pressure {
        let turns = self.turns.lock().unwrap_or_else(|p| p.into_inner());
        let Some((pinpoint, hibob)) = turns.as_ref() else {
            return Pressure::default();
        };
        Pressure {
            pinpoint_wait: pinpoint.ready_in(pinpoint::endpoint::APPLICATION),
            hibob_wait: hibob.ready_in(hibob::endpoint::CREATE),
            slowdown: [pinpoint.slowdown(), hibob.slowdown()]
                .into_iter()
                .flatten()
                .reduce(f64::max),
        }
    }

    /// Overrides the Pinpoint client's per-request timeout (HiBob's is the gateway's).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    fn credentials(&self) -> &Credentials {
        self.mappings.gateway().credentials()
    }

    /// Runs the export's remaining steps once.
    pub async fn run(&self, export: &Export) -> AttemptOutcome {
        let rec = Recorder {
            db: &self.db,
            export_id: export.id,
            attempt: export.attempts,
        };
        let result = self.steps(&rec, export).await;
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

    async fn steps(&self, rec: &Recorder<'_>, export: &Export) -> Result<(), Failure> {
        let configuration = |what: &str| {
            Failure::Attention(format!(
                "{what} is not configured: an admin adds its credentials under Settings"
            ))
        };
        let client_error = |e: &dyn std::fmt::Display| Failure::Retry(None, e.to_string());
        let mut pinpoint = pinpoint::Client::from_credentials(self.credentials())
            .await
            .map_err(|e| client_error(&e))?
            .ok_or_else(|| configuration("Pinpoint"))?;
        let hibob = match self.mappings.gateway().client().await {
            Ok(client) => client,
            Err(AccessError::NotConfigured) => return Err(configuration("HiBob")),
            Err(e) => return Err(client_error(&e)),
        };
        if let Some(t) = self.timeout {
            pinpoint = pinpoint.with_timeout(t).map_err(|e| client_error(&e))?;
        }
        let pinpoint = pinpoint.with_patience(PACING_PATIENCE);
        let hibob = hibob.with_patience(PACING_PATIENCE);
        *self.turns.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((pinpoint.turns().clone(), hibob.turns().clone()));
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
        let application = rec
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
        rec.db
            .queue()
            .set_candidate(
                export.id,
                Some(name.as_str()).filter(|n| !n.is_empty()),
                application.email.as_deref(),
                variables::offer_start_date(&application).as_deref(),
            )
            .await?;

        let draft = self.map(rec, export, &hibob, &application).await?;
        self.check_cv(rec, export, &application).await?;
        rec.db
            .queue()
            .set_candidate(
                export.id,
                Some(&draft.display_name),
                Some(&draft.email),
                Some(&draft.start_date),
            )
            .await?;

        // another export (or a plugin submit) for the same person waits here until this one has
        // made or found the employee, attached the CV and settled the invitation, so it finds
        // all three instead of racing
        let one_at_a_time = self
            .mappings
            .gateway()
            .employee_lock(&draft.email)
            .await
            .map_err(|e| Failure::Retry(None, e.to_string()))?;
        let (employee_id, created_now) = match &export.hibob_employee_id {
            Some(id) => (id.clone(), false),
            None => steps::find_or_create(rec, &hibob, &draft.body, &draft.email).await?,
        };

        if !export.cv_uploaded {
            match application.cv() {
                None => steps::no_cv(rec, "the application has no CV").await?,
                Some(cv) => {
                    let name = cv.filename.clone().unwrap_or_else(|| "CV.pdf".to_owned());
                    let cv = steps::Cv {
                        name: &name,
                        url: &cv.url,
                    };
                    steps::upload_cv(rec, &hibob, &employee_id, &cv, created_now).await?;
                }
            }
        }

        // under the lock too: the other way in for this person must see the invitation settled
        steps::invite(rec, self.credentials(), &hibob, &employee_id).await?;
        drop(one_at_a_time);

        if !export.comment_posted {
            steps::comment(
                rec,
                &pinpoint,
                &export.pinpoint_application_id,
                &employee_id,
            )
            .await?;
        }
        Ok(())
    }

    /// Holds the CV link to the rules a plugin submit is held to (`mapping::checks::CvLinks`)
    /// before anything is created, so a link HiBob must not be pointed at stops the export with
    /// its reason instead of reaching HiBob.
    async fn check_cv(
        &self,
        rec: &Recorder<'_>,
        export: &Export,
        application: &pinpoint::Application,
    ) -> Result<(), Failure> {
        let Some(cv) = application.cv().filter(|_| !export.cv_uploaded) else {
            return Ok(());
        };
        let rules = crate::mapping::checks::CvLinks::configured(self.credentials())
            .await
            .map_err(|e| Failure::Retry(None, e.to_string()))?;
        let Some(why) = rules.problem(&cv.url) else {
            return Ok(());
        };
        let detail = format!("{why}: correct the CV in Pinpoint, then retry the export");
        rec.record(
            "upload_cv",
            "failed",
            &detail,
            CallLog::new(),
            Instant::now(),
        )
        .await?;
        Err(Failure::Attention(detail))
    }

    /// Builds the employee with the export's mapping version (the current one on its first
    /// attempt, then pinned, so automatic retries send the same body).
    async fn map(
        &self,
        rec: &Recorder<'_>,
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
            rec.record("map", "failed", &detail, CallLog::new(), started)
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
                rec.record("map", "failed", &detail, log, started).await?;
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
        rec.db
            .queue()
            .set_mapping_version(export.id, version)
            .await?;
        match compiled.render(&values, &schema) {
            Ok(rendered) => {
                let mut detail = format!("mapping v{version}: {}", rendered.draft.body);
                if let Some(note) = note {
                    detail.push_str(&format!(
                        " (HiBob's field list was not available: {note}; values sent as written)"
                    ));
                }
                rec.record("map", "ok", &detail, log, started).await?;
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
}

#[cfg(test)]
mod tests {
    use super::{backoff, Failure};
    use crate::{hibob::HibobError, pinpoint::PinpointError};
    use std::time::Duration;

    #[test]
    fn a_destination_the_guard_refuses_needs_a_person_not_retries() {
        let refused = "Not sent to HiBob: hibob.example is a private or local address";
        assert!(matches!(
            Failure::from(HibobError::Destination(refused.into())),
            Failure::Attention(m) if m.contains("private or local")
        ));
        assert!(matches!(
            Failure::from(PinpointError::Destination(refused.into())),
            Failure::Attention(_)
        ));
        assert!(matches!(
            Failure::from(HibobError::Transport("connection reset".into())),
            Failure::Retry(..)
        ));
    }

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

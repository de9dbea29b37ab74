//! One check of a watched hire: read the application again, render it with the export's mapping
//! version, read the same fields of the HiBob employee, and keep what differs.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;

use super::{store, Change, FieldNow, WatchError};
use crate::Db;
use crate::{
    access::audit::Actor,
    alerts::Alerts,
    dates,
    hibob::{self, schema as hibob_schema},
    live::{Change as Notice, Changes},
    mapping::{service::MappingService, variables},
    outbound::CallLog,
    pinpoint::{self, PinpointError},
    settings::credentials::CredentialKey,
};

/// A new export is first checked this long after it succeeded (HiBob's reads may lag its writes
/// by 20 s; a first check soon after settles a plugin export's baseline early).
const FIRST_CHECK_AFTER: Duration = Duration::from_secs(10 * 60);
/// A check that could not finish is tried again after this long.
const AFTER_FAILURE: Duration = Duration::from_secs(15 * 60);
/// How long a check waits for a turn in a spent rate-limit window before it gives the turn to
/// exports and tries later.
const PATIENCE: Duration = Duration::from_secs(5);
/// Watches started per round.
const ADOPT_BATCH: i64 = 200;

/// What a check found, for the person who asked and for the tests.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub changes: Vec<Change>,
    pub hired: bool,
    pub hire_note: Option<String>,
    /// The fields the automatic policy sent to HiBob.
    pub applied: Vec<String>,
}

/// What the services said.
enum Observed {
    /// Pinpoint no longer has the application (or the key cannot see it).
    Gone,
    Found {
        application: Box<pinpoint::Application>,
        fields: Vec<FieldNow>,
        rendered: Value,
        start_date: String,
        employee: Value,
    },
}

/// Watches exported hires; shared by the background job and the console.
#[derive(Clone)]
pub struct Watcher {
    pub(super) db: Db,
    pub(super) mappings: MappingService,
    alerts: Alerts,
    pub(super) changes: Changes,
    pub(super) timeout: Option<Duration>,
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher").finish_non_exhaustive()
    }
}

impl Watcher {
    pub fn new(db: Db, mappings: MappingService, alerts: Alerts, changes: Changes) -> Self {
        Self {
            db,
            mappings,
            alerts,
            changes,
            timeout: None,
        }
    }

    /// The per-request timeout of the Pinpoint client (HiBob's is the gateway's).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub(super) async fn setting(&self, key: CredentialKey) -> Option<String> {
        self.mappings.text_setting(key).await
    }

    /// The watch of export `export_id`, or why there is none.
    pub(super) async fn watch(&self, export_id: i64) -> Result<store::Watch, WatchError> {
        self.db
            .watches()
            .find(export_id)
            .await?
            .ok_or_else(|| WatchError::NotWatched(format!("Export {export_id} is not watched.")))
    }

    async fn days_after_start(&self) -> i64 {
        self.setting(CredentialKey::WatchDaysAfterStart)
            .await
            .and_then(|d| d.parse().ok())
            .unwrap_or(super::DEFAULT_DAYS_AFTER_START)
    }

    /// Starts watching the exports that succeeded since the last round.
    pub async fn adopt(&self, now: DateTime<Utc>) -> Result<usize, WatchError> {
        let found = self.db.watches().unwatched(ADOPT_BATCH).await?;
        if found.is_empty() {
            return Ok(0);
        }
        let days = self.days_after_start().await;
        let first = now + chrono::Duration::from_std(FIRST_CHECK_AFTER).unwrap_or_default();
        for export in &found {
            let start = export.start_date.as_deref().and_then(dates::parse_date);
            let exported = dates::parse_date(&export.created_at).unwrap_or(now.date_naive());
            let until = super::watch_until(start, exported, days);
            // a webhook export sent exactly what the mapping made of the application; a plugin
            // submit sent what a person checked and maybe edited, so its baseline is the
            // mapping's own rendering at the first check
            let baseline = (export.source == "webhook").then_some(export.sent_body.as_str());
            self.db
                .watches()
                .begin(export, baseline, until, first)
                .await?;
        }
        Ok(found.len())
    }

    /// Stops the watches past their last day.
    pub async fn retire(&self, today: NaiveDate) -> Result<usize, WatchError> {
        let ended = self.db.watches().ended(today).await?;
        for id in &ended {
            self.db.watches().stop(*id).await?;
        }
        Ok(ended.len())
    }

    /// Checks one watched hire now, and applies what the automatic policy allows.
    pub async fn check(&self, export_id: i64) -> Result<Outcome, WatchError> {
        let watch = self.watch(export_id).await?;
        if let Some(at) = &watch.stopped_at {
            return Err(WatchError::NotWatched(format!(
                "Watching export {export_id} ended {at}."
            )));
        }
        let observed = match self.observe(&watch).await {
            Ok(observed) => observed,
            Err(why) => {
                let next =
                    Utc::now() + chrono::Duration::from_std(AFTER_FAILURE).unwrap_or_default();
                self.db
                    .watches()
                    .check_failed(export_id, &why, next)
                    .await?;
                return Err(WatchError::Unavailable(why));
            }
        };
        let sent = self
            .db
            .queue()
            .sent_body(export_id)
            .await?
            .unwrap_or(Value::Null);
        let (baseline, changes, hired, hire_note, start) = match &observed {
            Observed::Gone => (
                watch.baseline.clone().unwrap_or(Value::Null),
                watch.changes.clone(),
                false,
                Some(
                    "Pinpoint no longer has the application (deleted, or hidden from the API key)"
                        .to_owned(),
                ),
                None,
            ),
            Observed::Found {
                application,
                fields,
                rendered,
                start_date,
                employee,
            } => {
                let mut baseline = watch.baseline.clone().unwrap_or_else(|| rendered.clone());
                let found = super::compare(fields, &baseline, &sent, Some(employee));
                for (field, value) in found.settled {
                    baseline = super::with_value(&baseline, &field, value);
                }
                let note = super::fallen_through(application);
                (
                    baseline,
                    found.changes,
                    note.is_none(),
                    note,
                    Some(start_date.clone()).filter(|s| !s.is_empty()),
                )
            }
        };
        let today = Utc::now().date_naive();
        let days_to_start = start
            .as_deref()
            .or(watch.start_date.as_deref())
            .and_then(|s| dates::days_until(s, today));
        let next = Utc::now()
            + chrono::Duration::from_std(super::next_check_in(days_to_start)).unwrap_or_default();
        // a start that moved moves the last day with it
        let days = self.days_after_start().await;
        let until = start
            .as_deref()
            .and_then(dates::parse_date)
            .map(|day| super::watch_until(Some(day), today, days).to_string());
        self.db
            .watches()
            .save_check(
                export_id,
                &store::Checked {
                    baseline: &baseline,
                    changes: &changes,
                    start_date: start.as_deref(),
                    watch_until: until.as_deref(),
                    hired,
                    hire_note: hire_note.as_deref(),
                    next_check_at: next,
                },
            )
            .await?;

        let auto = super::auto_fields(
            &self
                .setting(CredentialKey::WatchAutoFields)
                .await
                .unwrap_or_default(),
        );
        let automatic: Vec<String> = changes
            .iter()
            .filter(|c| c.safe_to_apply())
            .filter(|c| {
                auto.iter()
                    .any(|f| f == hibob_schema::canonical_id(&c.field))
            })
            .map(|c| c.field.clone())
            .collect();
        let mut applied = Vec::new();
        if !automatic.is_empty() {
            let policy = Actor::system("keep-in-step policy");
            match self.apply(&policy, export_id, &automatic, false).await {
                Ok(done) => applied = done.fields,
                // the failed step and its reason are on the export's timeline
                Err(_) => tracing::warn!(export_id, "the automatic update of HiBob failed"),
            }
        }
        let left: Vec<Change> = changes
            .into_iter()
            .filter(|c| !applied.contains(&c.field))
            .collect();
        self.tell(&watch, &left, hired, hire_note.as_deref()).await;
        self.changes.publish(Notice::Watch { id: export_id });
        Ok(Outcome {
            changes: left,
            hired,
            hire_note,
            applied,
        })
    }

    /// Queues an alert for what is new since the last check: a change not open before, or a
    /// hire that just fell through.
    async fn tell(
        &self,
        before: &store::Watch,
        changes: &[Change],
        hired: bool,
        note: Option<&str>,
    ) {
        let new: Vec<Change> = changes
            .iter()
            .filter(|c| {
                !before
                    .changes
                    .iter()
                    .any(|b| b.field == c.field && b.pinpoint == c.pinpoint)
            })
            .cloned()
            .collect();
        let mut lines = Vec::new();
        if !new.is_empty() {
            lines.push(format!(
                "changed in Pinpoint since the export: {}",
                super::summary(&new)
            ));
        }
        if before.hired && !hired {
            lines.push(note.unwrap_or("no longer hired in Pinpoint").to_owned());
        }
        if lines.is_empty() {
            return;
        }
        if let Err(e) = self
            .alerts
            .changed(before.export_id, &lines.join("; "))
            .await
        {
            tracing::warn!(export_id = before.export_id, error = %e, "the change alert could not be queued");
        }
    }

    async fn observe(&self, watch: &store::Watch) -> Result<Observed, String> {
        let credentials = self.mappings.gateway().credentials();
        let mut pinpoint = pinpoint::Client::from_credentials(credentials)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("Pinpoint is not configured")?;
        if let Some(t) = self.timeout {
            pinpoint = pinpoint.with_timeout(t).map_err(|e| e.to_string())?;
        }
        let pinpoint = pinpoint.with_patience(PATIENCE);
        let hibob = self
            .mappings
            .gateway()
            .client()
            .await
            .map_err(|e| format!("HiBob: {e}"))?
            .with_patience(PATIENCE);
        let mut log = CallLog::new();
        let application = match pinpoint
            .get_application(&watch.application_id, &mut log)
            .await
        {
            Ok(application) => application,
            Err(PinpointError::NotFound { .. }) => return Ok(Observed::Gone),
            Err(e) => return Err(format!("Pinpoint: {e}")),
        };
        let compiled = self
            .mappings
            .compiled(watch.mapping_version)
            .await
            .map_err(|e| format!("mapping version {}: {e}", watch.mapping_version))?;
        let (schema, _) = self
            .mappings
            .schema_for_export(&hibob, &mut log)
            .await
            .map_err(|e| format!("HiBob: {e}"))?;
        let hired_on =
            dates::parse_date(&watch.export_created_at).unwrap_or_else(|| Utc::now().date_naive());
        let values =
            variables::from_application(&application, &self.mappings.setting(hired_on).await);
        let preview = compiled.preview(&values, &schema);
        let fields: Vec<FieldNow> = preview
            .rendered
            .trace
            .iter()
            .filter(|t| !t.target.trim().is_empty())
            .map(|t| FieldNow {
                field: t.target.trim().to_owned(),
                label: t.label.clone(),
                value: t.value.clone().filter(|_| t.error.is_none()),
                historical: schema.field(&t.target).is_some_and(|m| m.historical),
            })
            .collect();
        let mut ids: Vec<String> = fields
            .iter()
            .filter(|f| !hibob_schema::is_computed(&f.field))
            .map(|f| f.field.clone())
            .collect();
        ids.sort();
        ids.dedup();
        let employee = hibob
            .read_employee(&watch.employee_id, &ids, &mut log)
            .await
            .map_err(|e| format!("HiBob: {e}"))?
            .ok_or_else(|| {
                format!(
                    "HiBob has no employee {} any more (deleted in HiBob?)",
                    watch.employee_id
                )
            })?;
        Ok(Observed::Found {
            application: Box::new(application),
            fields,
            rendered: preview.rendered.draft.body.clone(),
            start_date: preview.rendered.draft.start_date.clone(),
            employee,
        })
    }

    /// The HiBob client for a change, with a short patience for rate-limit windows.
    pub(super) async fn hibob(&self) -> Result<hibob::Client, WatchError> {
        self.mappings
            .gateway()
            .client()
            .await
            .map(|c| c.with_patience(PATIENCE))
            .map_err(|e| WatchError::Unavailable(format!("HiBob: {e}")))
    }
}

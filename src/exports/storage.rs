//! What exports need from the database, whichever engine holds it.

use std::time::Duration;

use serde_json::Value;

use super::{
    bulk_retry::{BulkError, Progress, Started},
    invitations::Standing,
    plugin_attempt::PluginAttempt,
    queue::{Export, Invitation, MappingChoice, QueueError, Status, Step, StepRecord},
    resolution::{Resolution, ResolveError},
    search::{ExportFilter, ExportSummary},
};
use crate::access::audit::Actor;

/// The durable queue: claims under a lease, each attempt's steps and calls, what each step has
/// done (so a later attempt skips it), outcomes and retries.
#[async_trait::async_trait]
pub trait ExportQueue: Send + Sync {
    /// Exports whose lease lapsed after their last allowed attempt: each attempt ended without a
    /// result (the process died mid-export), so taking them again could crash again forever. They
    /// become dead with that reason. Returns their ids, for open pages.
    async fn bury_exhausted(&self, max_attempts: i64) -> Result<Vec<i64>, sqlx::Error>;
    /// Takes the next due export (or one whose lease expired while attempts remain) for `owner`,
    /// counting the attempt. `max_attempts` is the setting in force, recorded on the export.
    async fn claim(
        &self,
        owner: &str,
        lease: Duration,
        max_attempts: i64,
    ) -> Result<Option<Export>, sqlx::Error>;
    /// When the next export falls due, so an idle worker can sleep until then.
    async fn next_due(&self) -> Result<Option<String>, sqlx::Error>;
    async fn find(&self, id: i64) -> Result<Option<Export>, sqlx::Error>;
    async fn steps(&self, export_id: i64) -> Result<Vec<Step>, sqlx::Error>;
    async fn record_step(&self, export_id: i64, r: &StepRecord<'_>) -> Result<(), sqlx::Error>;
    /// What the export learned about the candidate, for lists and searches.
    async fn set_candidate(
        &self,
        id: i64,
        name: Option<&str>,
        email: Option<&str>,
        start_date: Option<&str>,
    ) -> Result<(), sqlx::Error>;
    async fn set_employee_id(&self, id: i64, employee_id: &str) -> Result<(), sqlx::Error>;
    /// Pins the mapping version the export's body was built with.
    async fn set_mapping_version(&self, id: i64, version: i64) -> Result<(), sqlx::Error>;
    async fn mark_cv_uploaded(&self, id: i64) -> Result<(), sqlx::Error>;
    /// Whether an earlier attempt sent HiBob the create and may have been cut off before it heard
    /// the answer or saved the employee id: the next attempt looks the e-mail up first.
    async fn create_sent(&self, id: i64) -> Result<bool, sqlx::Error>;
    /// Written just before HiBob is asked to create the employee (see [`create_sent`]).
    async fn mark_create_sent(&self, id: i64) -> Result<(), sqlx::Error>;
    /// HiBob answered the create with a refusal, so it created nobody.
    async fn clear_create_sent(&self, id: i64) -> Result<(), sqlx::Error>;
    async fn invitation(&self, id: i64) -> Result<Invitation, sqlx::Error>;
    /// HiBob answered the invitation with an error: nothing was sent, so a later attempt may ask again.
    async fn clear_invite_started(&self, id: i64) -> Result<(), sqlx::Error>;
    async fn mark_invited(&self, id: i64) -> Result<(), sqlx::Error>;
    /// Written just before Pinpoint is asked to post the comment; true when an earlier attempt had
    /// written it and never heard back, so its comment may have been posted.
    async fn start_comment(&self, id: i64) -> Result<bool, sqlx::Error>;
    /// Pinpoint answered the comment with a refusal: nothing was posted.
    async fn clear_comment_started(&self, id: i64) -> Result<(), sqlx::Error>;
    async fn mark_comment_posted(&self, id: i64) -> Result<(), sqlx::Error>;
    async fn succeed(&self, id: i64, owner: &str) -> Result<bool, sqlx::Error>;
    async fn retry_later(
        &self,
        id: i64,
        owner: &str,
        delay: Duration,
        error: &str,
    ) -> Result<bool, sqlx::Error>;
    async fn needs_attention(&self, id: i64, owner: &str, error: &str)
        -> Result<bool, sqlx::Error>;
    async fn dead(&self, id: i64, owner: &str, error: &str) -> Result<bool, sqlx::Error>;
    /// At start-up: exports left running by a process that is gone (killed, crashed) are queued
    /// again at once. A SQLite file is served by one console process, so there any lease not held
    /// by `owner` is a dead process's and is taken at once; on PostgreSQL other processes may be
    /// alive and mid-export, so only leases that lapsed are taken. Returns how many. Rows held
    /// by plugin submits are not exports to resume: start-up settles those
    /// (`plugin_attempt::settle_cut_off`).
    /// Those that already had their last allowed attempt become dead instead: a hire that kills the
    /// process would otherwise be taken again at every start.
    async fn recover_abandoned(&self, owner: &str, max_attempts: i64) -> Result<u64, sqlx::Error>;
    /// Moves the lease of running export `id` on to `lease` from now, while `owner` still holds
    /// it. False when it does not (the lease lapsed and another claim took it over): the attempt
    /// must then make no further outside call.
    async fn renew(&self, id: i64, owner: &str, lease: Duration) -> Result<bool, sqlx::Error>;
    /// Gives a job back without counting the attempt, e.g. when the worker stops mid-job.
    async fn release(&self, id: i64, owner: &str) -> Result<(), sqlx::Error>;
    /// Gives a job back uncounted, due again after `delay` (HiBob asked us to wait).
    async fn release_until(&self, id: i64, owner: &str, delay: Duration)
        -> Result<(), sqlx::Error>;
    /// Queues a stopped export again with the current mapping; see [`retry_with`].
    async fn retry(&self, actor: &Actor, id: i64) -> Result<Export, QueueError>;
    /// Queues a stopped export again, now, with a fresh allowance of attempts. What it already did
    /// (employee id, CV, comment) is kept, so a retry never repeats a finished step.
    async fn retry_with(
        &self,
        actor: &Actor,
        id: i64,
        mapping: MappingChoice,
    ) -> Result<Export, QueueError>;
    /// Counts per status, for the dashboard and metrics. Read from the counters the database keeps
    /// beside the exports, so the answer costs the same at ten exports or ten million.
    async fn counts(&self) -> Result<Vec<(String, i64)>, sqlx::Error>;
    async fn keep_sent(&self, export_id: i64, body: &Value) -> Result<(), sqlx::Error>;
    /// The body, if it was kept and is still readable.
    async fn sent_body(&self, export_id: i64) -> Result<Option<Value>, sqlx::Error>;
}

/// Finding exports: the console's list and its status chips.
#[async_trait::async_trait]
pub trait ExportSearch: Send + Sync {
    /// Newest first (by creation time, then id), a page at a time: the next page starts after the
    /// last export shown, so every page costs the same however many exports there are. Each filter
    /// walks its own index in list order (see the `export_search` migration); text search first asks
    /// the trigram index how many exports could match, and sorts those few, or, when they are many,
    /// walks the list in order checking each until the page is full.
    async fn search(&self, filter: &ExportFilter) -> Result<Vec<ExportSummary>, sqlx::Error>;
    /// How many exports of each status the filter selects, whatever status it names itself: the
    /// list's status chips count the selection the other filters make, not every export. Without
    /// such filters it reads the kept totals; text search asks the trigram index for its candidates
    /// first, as the list does.
    async fn status_counts(&self, filter: &ExportFilter)
        -> Result<Vec<(String, i64)>, sqlx::Error>;
}

/// Retrying every stopped export a filter selects, and following the run.
#[async_trait::async_trait]
pub trait BulkRetries: Send + Sync {
    /// How many exports a bulk retry with these filters would queue right now.
    async fn preview(&self, filter: &ExportFilter) -> Result<usize, sqlx::Error>;
    /// Queues every matching stopped export again, with a fresh allowance of attempts, as one run.
    /// One write transaction: two operators starting the same retry at once get one run each for
    /// disjoint exports (the second finds the first's already queued), never an export twice.
    async fn start(&self, actor: &Actor, filter: &ExportFilter) -> Result<Started, BulkError>;
    /// Cancels a run: its members still waiting for their first attempt go back to the status they
    /// had; the one the worker is on, and those already done, are left to finish as they are.
    /// Returns the exports put back.
    async fn cancel(&self, actor: &Actor, run_id: i64) -> Result<Vec<i64>, BulkError>;
    /// The exports run `run_id` retried that stopped again (needs attention or dead) and are still
    /// its own (not cancelled, not retried again since), oldest first.
    async fn stopped_again(&self, run_id: i64) -> Result<Vec<i64>, sqlx::Error>;
    /// The newest runs first.
    async fn recent(&self, limit: i64) -> Result<Vec<Progress>, sqlx::Error>;
}

/// Marking a stopped export dealt with by hand.
#[async_trait::async_trait]
pub trait Resolutions: Send + Sync {
    /// Marks a stopped export resolved with the operator's `note`, in the audit log too.
    async fn resolve(&self, actor: &Actor, id: i64, note: &str) -> Result<Export, ResolveError>;
    /// After export `succeeded` (a plugin submit) reached HiBob: the earlier failed plugin submits for
    /// the same application are resolved by it (a submit that named no application resolves none). Returns their ids, for open pages to hear of.
    async fn supersede_plugin_failures(&self, succeeded: i64) -> Result<Vec<i64>, sqlx::Error>;
    async fn resolution(&self, id: i64) -> Result<Option<Resolution>, sqlx::Error>;
}

/// A plugin submit's hold on its export row while Pinpoint waits.
#[async_trait::async_trait]
pub trait PluginAttempts: Send + Sync {
    /// Opens (or reopens) the plugin export under `idempotency_key` for one submit.
    ///
    /// The row is marked `running` under this process's submit lease ([`owner`]); the worker does
    /// not claim rows held by a submit, lapsed or not, so a plugin export, which the submit itself
    /// carries out while Pinpoint waits, is never run twice at once.
    async fn begin(
        &self,
        idempotency_key: &str,
        application_id: &str,
    ) -> Result<PluginAttempt, sqlx::Error>;
    /// Ends a plugin submit's attempt with the result Pinpoint was given.
    async fn finish(&self, id: i64, status: Status, error: Option<&str>)
        -> Result<(), sqlx::Error>;
    /// Settles the rows of submits that were cut off: those whose lease lapsed and, at start-up
    /// (`at_start`) on SQLite, every row held by another process's submits, since one console
    /// process serves a SQLite file (on PostgreSQL other processes' submits may be alive, so only
    /// lapsed leases count). They need attention with [`CUT_OFF`] as the reason. Returns their ids.
    async fn settle_cut_off(&self, at_start: bool) -> Result<Vec<i64>, sqlx::Error>;
    /// Moves a running submit's lease on, while this process still holds it; false when it no
    /// longer does (the lease lapsed and the row was settled as cut off).
    async fn renew(&self, id: i64) -> Result<bool, sqlx::Error>;
}

/// The employees the console created, and their one invitation each.
#[async_trait::async_trait]
pub trait Invitations: Send + Sync {
    /// Keeps the employee `export_id` just created (or found after its own create went unanswered)
    /// on the export and as one of the console's own, in one write, so a crash cannot leave one
    /// without the other.
    async fn created(&self, export_id: i64, employee_id: &str) -> Result<(), sqlx::Error>;
    async fn standing(&self, employee_id: &str) -> Result<Standing, sqlx::Error>;
    /// Written just before HiBob is asked to invite, on the employee and on export `export_id`, in
    /// one write, so the moment a cut-off attempt leaves marked is as short as it can be. False when
    /// another attempt got there first, which must then not be asked again.
    async fn start(&self, employee_id: &str, export_id: i64) -> Result<bool, sqlx::Error>;
    /// HiBob answered with an error, so it invited nobody: a later attempt may ask again.
    async fn clear(&self, employee_id: &str) -> Result<(), sqlx::Error>;
    /// The invitation is settled: sent, refused for good, or not to be asked again.
    async fn settle(&self, employee_id: &str) -> Result<(), sqlx::Error>;
}

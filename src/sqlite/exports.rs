use std::time::Duration;

use serde_json::Value;

use super::SqliteStore;
use crate::access::audit::Actor;
use crate::exports::{
    bulk_retry::{self, BulkError, Progress, Started},
    invitations::{self, Standing},
    marks,
    plugin_attempt::{self, PluginAttempt},
    queue::{
        self as export_queue, Export, Invitation, MappingChoice, QueueError, Status, Step,
        StepRecord,
    },
    resolution::{self, Resolution, ResolveError},
    search::{self, ExportFilter, ExportSummary},
    sent,
    storage::{BulkRetries, ExportQueue, ExportSearch, Invitations, PluginAttempts, Resolutions},
};

#[async_trait::async_trait]
impl ExportQueue for SqliteStore {
    async fn bury_exhausted(&self, max_attempts: i64) -> Result<Vec<i64>, sqlx::Error> {
        export_queue::bury_exhausted(&self.pool, max_attempts).await
    }

    async fn claim(
        &self,
        owner: &str,
        lease: Duration,
        max_attempts: i64,
    ) -> Result<Option<Export>, sqlx::Error> {
        export_queue::claim(&self.pool, owner, lease, max_attempts).await
    }

    async fn next_due(&self) -> Result<Option<String>, sqlx::Error> {
        export_queue::next_due(&self.pool).await
    }

    async fn find(&self, id: i64) -> Result<Option<Export>, sqlx::Error> {
        export_queue::find(&self.pool, id).await
    }

    async fn steps(&self, export_id: i64) -> Result<Vec<Step>, sqlx::Error> {
        export_queue::steps(&self.pool, export_id).await
    }

    async fn record_step(&self, export_id: i64, r: &StepRecord<'_>) -> Result<(), sqlx::Error> {
        export_queue::record_step(&self.pool, export_id, r).await
    }

    async fn set_candidate(
        &self,
        id: i64,
        name: Option<&str>,
        email: Option<&str>,
        start_date: Option<&str>,
    ) -> Result<(), sqlx::Error> {
        export_queue::set_candidate(&self.pool, id, name, email, start_date).await
    }

    async fn set_employee_id(&self, id: i64, employee_id: &str) -> Result<(), sqlx::Error> {
        export_queue::set_employee_id(&self.pool, id, employee_id).await
    }

    async fn set_mapping_version(&self, id: i64, version: i64) -> Result<(), sqlx::Error> {
        export_queue::set_mapping_version(&self.pool, id, version).await
    }

    async fn mark_cv_uploaded(&self, id: i64) -> Result<(), sqlx::Error> {
        marks::mark_cv_uploaded(&self.pool, id).await
    }

    async fn create_sent(&self, id: i64) -> Result<bool, sqlx::Error> {
        marks::create_sent(&self.pool, id).await
    }

    async fn mark_create_sent(&self, id: i64) -> Result<(), sqlx::Error> {
        marks::mark_create_sent(&self.pool, id).await
    }

    async fn clear_create_sent(&self, id: i64) -> Result<(), sqlx::Error> {
        marks::clear_create_sent(&self.pool, id).await
    }

    async fn invitation(&self, id: i64) -> Result<Invitation, sqlx::Error> {
        marks::invitation(&self.pool, id).await
    }

    async fn clear_invite_started(&self, id: i64) -> Result<(), sqlx::Error> {
        marks::clear_invite_started(&self.pool, id).await
    }

    async fn mark_invited(&self, id: i64) -> Result<(), sqlx::Error> {
        marks::mark_invited(&self.pool, id).await
    }

    async fn start_comment(&self, id: i64) -> Result<bool, sqlx::Error> {
        marks::start_comment(&self.pool, id).await
    }

    async fn clear_comment_started(&self, id: i64) -> Result<(), sqlx::Error> {
        marks::clear_comment_started(&self.pool, id).await
    }

    async fn mark_comment_posted(&self, id: i64) -> Result<(), sqlx::Error> {
        marks::mark_comment_posted(&self.pool, id).await
    }

    async fn succeed(&self, id: i64, owner: &str) -> Result<bool, sqlx::Error> {
        export_queue::succeed(&self.pool, id, owner).await
    }

    async fn retry_later(
        &self,
        id: i64,
        owner: &str,
        delay: Duration,
        error: &str,
    ) -> Result<bool, sqlx::Error> {
        export_queue::retry_later(&self.pool, id, owner, delay, error).await
    }

    async fn needs_attention(
        &self,
        id: i64,
        owner: &str,
        error: &str,
    ) -> Result<bool, sqlx::Error> {
        export_queue::needs_attention(&self.pool, id, owner, error).await
    }

    async fn dead(&self, id: i64, owner: &str, error: &str) -> Result<bool, sqlx::Error> {
        export_queue::dead(&self.pool, id, owner, error).await
    }

    async fn recover_abandoned(&self, owner: &str, max_attempts: i64) -> Result<u64, sqlx::Error> {
        export_queue::recover_abandoned(&self.pool, owner, max_attempts).await
    }

    async fn renew(&self, id: i64, owner: &str, lease: Duration) -> Result<bool, sqlx::Error> {
        export_queue::renew(&self.pool, id, owner, lease).await
    }

    async fn release(&self, id: i64, owner: &str) -> Result<(), sqlx::Error> {
        export_queue::release(&self.pool, id, owner).await
    }

    async fn release_until(
        &self,
        id: i64,
        owner: &str,
        delay: Duration,
    ) -> Result<(), sqlx::Error> {
        export_queue::release_until(&self.pool, id, owner, delay).await
    }

    async fn retry(&self, actor: &Actor, id: i64) -> Result<Export, QueueError> {
        export_queue::retry(&self.pool, actor, id).await
    }

    async fn retry_with(
        &self,
        actor: &Actor,
        id: i64,
        mapping: MappingChoice,
    ) -> Result<Export, QueueError> {
        export_queue::retry_with(&self.pool, actor, id, mapping).await
    }

    async fn counts(&self) -> Result<Vec<(String, i64)>, sqlx::Error> {
        export_queue::counts(&self.pool).await
    }

    async fn keep_sent(&self, export_id: i64, body: &Value) -> Result<(), sqlx::Error> {
        sent::keep(&self.pool, export_id, body).await
    }

    async fn sent_body(&self, export_id: i64) -> Result<Option<Value>, sqlx::Error> {
        sent::body(&self.pool, export_id).await
    }
}

#[async_trait::async_trait]
impl ExportSearch for SqliteStore {
    async fn search(&self, filter: &ExportFilter) -> Result<Vec<ExportSummary>, sqlx::Error> {
        search::list(&self.pool, filter).await
    }

    async fn status_counts(
        &self,
        filter: &ExportFilter,
    ) -> Result<Vec<(String, i64)>, sqlx::Error> {
        search::status_counts(&self.pool, filter).await
    }
}

#[async_trait::async_trait]
impl BulkRetries for SqliteStore {
    async fn preview(&self, filter: &ExportFilter) -> Result<usize, sqlx::Error> {
        bulk_retry::preview(&self.pool, filter).await
    }

    async fn start(&self, actor: &Actor, filter: &ExportFilter) -> Result<Started, BulkError> {
        bulk_retry::start(&self.pool, actor, filter).await
    }

    async fn cancel(&self, actor: &Actor, run_id: i64) -> Result<Vec<i64>, BulkError> {
        bulk_retry::cancel(&self.pool, actor, run_id).await
    }

    async fn stopped_again(&self, run_id: i64) -> Result<Vec<i64>, sqlx::Error> {
        bulk_retry::stopped_again(&self.pool, run_id).await
    }

    async fn recent(&self, limit: i64) -> Result<Vec<Progress>, sqlx::Error> {
        bulk_retry::recent(&self.pool, limit).await
    }
}

#[async_trait::async_trait]
impl Resolutions for SqliteStore {
    async fn resolve(&self, actor: &Actor, id: i64, note: &str) -> Result<Export, ResolveError> {
        resolution::resolve(&self.pool, actor, id, note).await
    }

    async fn supersede_plugin_failures(&self, succeeded: i64) -> Result<Vec<i64>, sqlx::Error> {
        resolution::supersede_plugin_failures(&self.pool, succeeded).await
    }

    async fn resolution(&self, id: i64) -> Result<Option<Resolution>, sqlx::Error> {
        resolution::resolution(&self.pool, id).await
    }
}

#[async_trait::async_trait]
impl PluginAttempts for SqliteStore {
    async fn begin(
        &self,
        idempotency_key: &str,
        application_id: &str,
    ) -> Result<PluginAttempt, sqlx::Error> {
        plugin_attempt::begin(&self.pool, idempotency_key, application_id).await
    }

    async fn finish(
        &self,
        id: i64,
        status: Status,
        error: Option<&str>,
    ) -> Result<(), sqlx::Error> {
        plugin_attempt::finish(&self.pool, id, status, error).await
    }

    async fn settle_cut_off(&self, at_start: bool) -> Result<Vec<i64>, sqlx::Error> {
        plugin_attempt::settle_cut_off(&self.pool, at_start).await
    }

    async fn renew(&self, id: i64) -> Result<bool, sqlx::Error> {
        plugin_attempt::renew(&self.pool, id).await
    }
}

#[async_trait::async_trait]
impl Invitations for SqliteStore {
    async fn created(&self, export_id: i64, employee_id: &str) -> Result<(), sqlx::Error> {
        invitations::created(&self.pool, export_id, employee_id).await
    }

    async fn standing(&self, employee_id: &str) -> Result<Standing, sqlx::Error> {
        invitations::standing(&self.pool, employee_id).await
    }

    async fn start(&self, employee_id: &str, export_id: i64) -> Result<bool, sqlx::Error> {
        invitations::start(&self.pool, employee_id, export_id).await
    }

    async fn clear(&self, employee_id: &str) -> Result<(), sqlx::Error> {
        invitations::clear(&self.pool, employee_id).await
    }

    async fn settle(&self, employee_id: &str) -> Result<(), sqlx::Error> {
        invitations::settle(&self.pool, employee_id).await
    }
}

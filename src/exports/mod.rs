//! Exports: the durable queue, the steps both ways in share, the webhook pipeline, retries,
//! resolutions and bulk retries.

pub mod admission;
pub mod bulk_retry;
pub mod invitations;
pub mod marks;
pub mod pipeline;
pub mod plugin_attempt;
pub mod queue;
pub mod resolution;
pub mod search;
pub mod sent;
pub mod status;
pub mod steps;
pub mod storage;
pub mod wake;

pub use storage::{
    BulkRetries, ExportQueue, ExportSearch, Invitations, PluginAttempts, Resolutions,
};

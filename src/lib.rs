//! The integration core of the Pinpoint → HiBob console: the store, credentials, people and
//! access, and the outbound clients. The UI (`app`) and the binary (`server`) call into this crate;
//! nothing here knows about HTTP routing or rendering.

pub mod alerts;
pub mod audit;
pub mod backup;
pub mod bearer;
pub mod bulk_retry;
pub mod client_addr;
pub mod credentials;
pub mod csv_text;
pub mod dashboard;
pub mod db;
pub mod destination;
pub mod erasure;
pub mod export_pipeline;
pub mod export_queue;
pub mod export_resolution;
pub mod export_steps;
pub mod filters;
pub mod health;
pub mod hibob;
pub mod live;
pub mod login_throttle;
pub mod mapping;
pub mod mapping_service;
pub mod mapping_store;
#[cfg(test)]
mod module_graph;
pub mod outbound;
pub mod pacing;
pub mod pinpoint;
pub mod plugin_checks;
pub mod plugin_contract;
pub mod plugin_form;
pub mod plugin_service;
pub mod rejection_limit;
pub mod retention;
pub mod secret_box;
pub mod template_guard;
pub mod templates;
pub mod users;
pub mod variables;
pub mod webhook_intake;
pub mod webhook_log;
pub mod webhook_signature;

pub use outbound::ConnectionCheck;

//! The integration core of the Pinpoint → HiBob console: the store, credentials, people and
//! access, and the outbound clients. The UI (`app`) and the binary (`server`) call into this crate;
//! nothing here knows about HTTP routing or rendering.

pub mod access;
pub mod alerts;
pub mod backup;
pub mod bearer;
pub mod client_addr;
pub mod csv_text;
pub mod dashboard;
pub mod dates;
pub mod db;
pub mod destination;
pub mod erasure;
pub mod exports;
pub mod filters;
pub mod health;
pub mod hibob;
pub mod live;
pub mod mapping;
#[cfg(test)]
mod module_graph;
pub mod outbound;
pub mod pacing;
pub mod pinpoint;
pub mod plugin;
pub mod retention;
pub mod settings;
pub mod watch;
pub mod webhooks;

pub use outbound::ConnectionCheck;

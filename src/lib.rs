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
pub mod instance;
pub mod lease;
pub mod live;
pub mod mapping;
#[cfg(test)]
mod module_graph;
pub mod outbound;
pub mod pacing;
pub mod peers;
pub mod pinpoint;
pub mod plugin;
pub mod retention;
pub mod settings;
pub mod shared_limits;
pub mod sqlite;
pub mod watch;
pub mod webhooks;

pub use outbound::ConnectionCheck;

/// Which database engine a [`Store`] runs on. Chosen once, by `DATABASE_URL`'s scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// The console's database, whichever engine holds it: one face per domain, each trait owned by
/// its domain module. Services, server functions and jobs hold a [`Db`] and never an engine's
/// pool, so they compile once for every engine. Each method is one use case and owns its
/// transaction; the SQL behind it is the engine's own (`sqlite` here).
///
/// It sits at the crate root because it is where the domains are put together: a domain module
/// names `crate::Db`, and only this trait names every domain.
pub trait Store: Send + Sync + std::fmt::Debug + 'static {
    fn engine(&self) -> Engine;
    fn users(&self) -> &dyn access::UserStore;
    fn audit(&self) -> &dyn access::AuditLog;
    fn queue(&self) -> &dyn exports::ExportQueue;
    fn search(&self) -> &dyn exports::ExportSearch;
    fn bulk_retries(&self) -> &dyn exports::BulkRetries;
    fn resolutions(&self) -> &dyn exports::Resolutions;
    fn plugin_attempts(&self) -> &dyn exports::PluginAttempts;
    fn invitations(&self) -> &dyn exports::Invitations;
    fn watches(&self) -> &dyn watch::WatchStore;
    fn webhooks(&self) -> &dyn webhooks::WebhookStore;
    fn mappings(&self) -> &dyn mapping::MappingStore;
    fn alerts(&self) -> &dyn alerts::AlertOutbox;
    fn credentials(&self) -> &dyn settings::credentials::CredentialStore;
    fn dashboard(&self) -> &dyn dashboard::DashboardReads;
    fn erasure(&self) -> &dyn erasure::Erasure;
    fn retention(&self) -> &dyn retention::Retention;
    fn backups(&self) -> &dyn backup::Backups;
    fn probes(&self) -> &dyn health::Probes;
    /// Locks that hold across every console process sharing the database; `None` where one
    /// process serves it (SQLite), whose own locks are enough.
    fn shared_locks(&self) -> Option<std::sync::Arc<dyn hibob::locks::SharedLocks>> {
        None
    }
    /// The console processes sharing the database; `None` where one process serves it.
    fn instances(&self) -> Option<&dyn instance::Instances> {
        None
    }
    /// The limits every console on the database keeps together; `None` where one process owns
    /// the database and keeps them in memory (see [`shared_limits`]).
    fn shared_limits(&self) -> Option<&dyn shared_limits::SharedLimits>;
}

/// The shared handle to the console's [`Store`].
pub type Db = std::sync::Arc<dyn Store>;

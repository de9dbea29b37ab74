//! The SQLite engine: every domain's store trait implemented by the queries the domain modules
//! keep beside their rules (`exports::queue`, `mapping::store`, …). The modules here only
//! delegate, so a query and the tests that prove it stay next to the rule they serve.

mod access;
mod alerts;
mod exports;
mod mapping;
mod settings;
mod upkeep;
mod watch;
mod webhooks;

use sqlx::SqlitePool;

use crate::{Db, Engine, Store};

/// The console's database in one SQLite file (see `crate::db` for how it is opened).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    pub fn new(pool: SqlitePool) -> Self {
        Self { pool }
    }

    /// The shared handle the services take.
    pub fn db(pool: SqlitePool) -> Db {
        std::sync::Arc::new(Self::new(pool))
    }

    /// The pool, for what only SQLite has (backups, `PRAGMA`s) and for tests.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

impl Store for SqliteStore {
    fn engine(&self) -> Engine {
        Engine::Sqlite
    }

    fn users(&self) -> &dyn crate::access::UserStore {
        self
    }

    fn audit(&self) -> &dyn crate::access::AuditLog {
        self
    }

    fn queue(&self) -> &dyn crate::exports::ExportQueue {
        self
    }

    fn search(&self) -> &dyn crate::exports::ExportSearch {
        self
    }

    fn bulk_retries(&self) -> &dyn crate::exports::BulkRetries {
        self
    }

    fn resolutions(&self) -> &dyn crate::exports::Resolutions {
        self
    }

    fn plugin_attempts(&self) -> &dyn crate::exports::PluginAttempts {
        self
    }

    fn invitations(&self) -> &dyn crate::exports::Invitations {
        self
    }

    fn watches(&self) -> &dyn crate::watch::WatchStore {
        self
    }

    fn webhooks(&self) -> &dyn crate::webhooks::WebhookStore {
        self
    }

    fn mappings(&self) -> &dyn crate::mapping::MappingStore {
        self
    }

    fn alerts(&self) -> &dyn crate::alerts::AlertOutbox {
        self
    }

    fn credentials(&self) -> &dyn crate::settings::credentials::CredentialStore {
        self
    }

    fn dashboard(&self) -> &dyn crate::dashboard::DashboardReads {
        self
    }

    fn erasure(&self) -> &dyn crate::erasure::Erasure {
        self
    }

    fn retention(&self) -> &dyn crate::retention::Retention {
        self
    }

    fn backups(&self) -> &dyn crate::backup::Backups {
        self
    }

    fn probes(&self) -> &dyn crate::health::Probes {
        self
    }

    /// One console process owns a SQLite file, so its limits stay in its memory.
    fn shared_limits(&self) -> Option<&dyn crate::shared_limits::SharedLimits> {
        None
    }
}

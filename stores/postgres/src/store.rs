//! The PostgreSQL engine as the console's [`Store`]: each getter hands out the face its module
//! implements.

use std::sync::Arc;

use integration::{Db, Engine, Store};

use crate::PgStore;

impl PgStore {
    /// The shared handle the services take.
    pub fn db(pool: sqlx::PgPool) -> Db {
        Arc::new(Self::new(pool))
    }

    /// The shared handle of the console holding `lock`: the lock lives as long as the handle.
    pub fn db_holding(pool: sqlx::PgPool, lock: crate::instance::InstanceLock) -> Db {
        Arc::new(Self::holding(pool, lock))
    }
}

impl Store for PgStore {
    fn engine(&self) -> Engine {
        Engine::Postgres
    }

    fn users(&self) -> &dyn integration::access::UserStore {
        self
    }

    fn audit(&self) -> &dyn integration::access::AuditLog {
        self
    }

    fn queue(&self) -> &dyn integration::exports::ExportQueue {
        self
    }

    fn search(&self) -> &dyn integration::exports::ExportSearch {
        self
    }

    fn bulk_retries(&self) -> &dyn integration::exports::BulkRetries {
        self
    }

    fn resolutions(&self) -> &dyn integration::exports::Resolutions {
        self
    }

    fn plugin_attempts(&self) -> &dyn integration::exports::PluginAttempts {
        self
    }

    fn invitations(&self) -> &dyn integration::exports::Invitations {
        self
    }

    fn watches(&self) -> &dyn integration::watch::WatchStore {
        self
    }

    fn webhooks(&self) -> &dyn integration::webhooks::WebhookStore {
        self
    }

    fn mappings(&self) -> &dyn integration::mapping::MappingStore {
        self
    }

    fn alerts(&self) -> &dyn integration::alerts::AlertOutbox {
        self
    }

    fn credentials(&self) -> &dyn integration::settings::credentials::CredentialStore {
        self
    }

    fn dashboard(&self) -> &dyn integration::dashboard::DashboardReads {
        self
    }

    fn erasure(&self) -> &dyn integration::erasure::Erasure {
        self
    }

    fn retention(&self) -> &dyn integration::retention::Retention {
        self
    }

    fn backups(&self) -> &dyn integration::backup::Backups {
        self
    }

    fn probes(&self) -> &dyn integration::health::Probes {
        self
    }

    fn instances(&self) -> Option<&dyn integration::instance::Instances> {
        Some(self)
    }

    fn shared_locks(&self) -> Option<Arc<dyn integration::hibob::locks::SharedLocks>> {
        // sessions of its own for each caller: a session takes again a lock it holds, so only
        // one gateway (whose own lock on the person comes first) may lock through them
        Some(Arc::new(crate::person_locks::PgLocks::new(
            self.lock_pool(),
        )))
    }

    fn shared_limits(&self) -> Option<&dyn integration::shared_limits::SharedLimits> {
        Some(self)
    }
}

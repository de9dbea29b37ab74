//! The `pinpoint-hibob` server: configuration, the HTTP router and its middleware, start-up and
//! shutdown. Handlers stay thin and call the integration core.

pub mod assets;
pub mod audit_csv;
pub mod backups;
pub mod config;
pub mod console;
pub mod database;
pub mod instances;
pub mod live;
pub mod middleware;
pub mod ops;
pub mod plugin_routes;
pub mod retention_job;
pub mod sandbox;
pub mod serving;
pub mod sessions;
pub mod startup;
pub mod watch_job;
pub mod webhooks;
pub mod worker;

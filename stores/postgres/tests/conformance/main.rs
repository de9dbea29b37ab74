//! The store traits behave alike on both engines: each test runs the same steps through a
//! domain's trait on SQLite (`integration::sqlite::SqliteStore` on a temporary file) and on
//! PostgreSQL (`store_postgres::PgStore` on a fresh database of the throwaway cluster), and
//! compares what each answers.

mod access;
mod alerts;
mod at_once;
mod bulk_retry;
mod common;
mod dashboard;
mod export_marks;
mod invitations;
mod mapping;
mod plugin_attempt;
mod queue;
mod resolution;
mod search;
mod settings;
mod shared;
mod shared_limits;
mod upkeep;
mod watch;
mod webhooks;

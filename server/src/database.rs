//! Opening the console's database: the engine is chosen by `DATABASE_URL`.

use anyhow::Context;
use integration::{db, Db};
use sqlx::SqlitePool;

use crate::config::Config;

/// The console's database as start-up opened it: the store every service uses, and the engine's
/// own pool for what only it can serve (the session store).
#[derive(Debug, Clone)]
pub struct Database {
    pub db: Db,
    pub pool: Pool,
}

/// An engine's own connection pool.
#[derive(Debug, Clone)]
pub enum Pool {
    Sqlite(SqlitePool),
}

pub async fn open_database(config: &Config) -> anyhow::Result<Database> {
    let pool = db::open(&config.database_url)
        .await
        .with_context(|| "cannot start: the database is not usable".to_string())?;
    Ok(Database {
        db: integration::sqlite::SqliteStore::db(pool.clone()),
        pool: Pool::Sqlite(pool),
    })
}

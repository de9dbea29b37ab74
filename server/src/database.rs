//! Opening the console's database: the engine is chosen by `DATABASE_URL`'s scheme.

use std::sync::Arc;

use anyhow::Context;
use integration::{db, Db};
use sqlx::{PgPool, SqlitePool};

use crate::config::Config;

/// The console's database as start-up opened it: the store every service uses, and the engine's
/// own pool for what only it can serve (the session store).
#[derive(Debug, Clone)]
pub struct Database {
    pub db: Db,
    pub pool: Pool,
    /// On PostgreSQL, the lock that keeps a second console off this database, held while any
    /// clone of this value lives.
    pub instance: Option<Arc<store_postgres::instance::InstanceLock>>,
}

/// An engine's own connection pool.
#[derive(Debug, Clone)]
pub enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

pub async fn open_database(config: &Config) -> anyhow::Result<Database> {
    if config.on_postgres() {
        let pool = store_postgres::open(&config.database_url, config.database_max_connections)
            .await
            .context("cannot start: the PostgreSQL database is not usable")?;
        let instance = store_postgres::instance::claim(&pool)
            .await
            .context("cannot start")?;
        return Ok(Database {
            db: store_postgres::PgStore::db(pool.clone()),
            pool: Pool::Postgres(pool),
            instance: Some(Arc::new(instance)),
        });
    }
    let pool = db::open(&config.database_url)
        .await
        .with_context(|| "cannot start: the database is not usable".to_string())?;
    Ok(Database {
        db: integration::sqlite::SqliteStore::db(pool.clone()),
        pool: Pool::Sqlite(pool),
        instance: None,
    })
}

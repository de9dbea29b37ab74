//! Opening the console's database: the engine is chosen by `DATABASE_URL`'s scheme.

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
        // held shared by every console, so several may run and migrate-db keeps out
        let instance = store_postgres::instance::claim(&pool)
            .await
            .context("cannot start")?;
        // the store holds the lock, so it lasts as long as anything still uses the database
        return Ok(Database {
            db: store_postgres::PgStore::db_holding(pool.clone(), instance),
            pool: Pool::Postgres(pool),
        });
    }
    let pool = db::open(&config.database_url)
        .await
        .with_context(|| "cannot start: the database is not usable".to_string())?;
    Ok(Database {
        db: integration::sqlite::SqliteStore::db(pool.clone()),
        pool: Pool::Sqlite(pool),
    })
}

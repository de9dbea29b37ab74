//! The database a benchmark runs on: a fresh SQLite file, or, when `BENCH_POSTGRES` names a
//! PostgreSQL server (`postgres://user@host:port/postgres`, a role that may create databases),
//! a fresh database there. Benchmarks read their results through `Sql`, which speaks to either.
//! For numbers worth comparing, give the PostgreSQL server durable settings (fsync and
//! synchronous_commit on) as SQLite's are: `PG_DEV_DURABLE=1 scripts/pg-dev.sh url postgres`.

#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};

pub use store_postgres::test_sql::Sql;

static CREATED: AtomicUsize = AtomicUsize::new(0);

/// The engine this run measures, as the report names it.
pub fn engine() -> &'static str {
    if std::env::var_os("BENCH_POSTGRES").is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    }
}

/// A new, empty database for one run: a file in `dir`, or a database on `BENCH_POSTGRES`.
pub async fn fresh(dir: &std::path::Path) -> anyhow::Result<String> {
    let Ok(server) = std::env::var("BENCH_POSTGRES") else {
        return Ok(format!("sqlite://{}/bench.db", dir.display()));
    };
    let name = format!(
        "bench_{}_{}",
        std::process::id(),
        CREATED.fetch_add(1, Ordering::Relaxed)
    );
    let admin = sqlx::PgPool::connect(&server).await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
        .execute(&admin)
        .await?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await?;
    admin.close().await;
    let (base, _) = server
        .rsplit_once('/')
        .ok_or_else(|| anyhow::anyhow!("BENCH_POSTGRES needs a database path"))?;
    Ok(format!("{base}/{name}"))
}

/// The benchmark's own reads of `url`, beside the console that owns it.
pub async fn open(url: &str) -> anyhow::Result<Sql> {
    Ok(if url.starts_with("postgres") {
        Sql::Postgres(sqlx::PgPool::connect(url).await?)
    } else {
        Sql::Sqlite(integration::db::open(url).await?)
    })
}

/// The bytes the database takes (its files, or PostgreSQL's size of it), after a checkpoint.
pub async fn size(sql: &Sql, dir: &std::path::Path) -> u64 {
    if sql.is_sqlite() {
        sql.execute("PRAGMA wal_checkpoint(TRUNCATE)", &[]).await;
        return std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter(|e| e.file_name().to_string_lossy().starts_with("bench.db"))
                    .filter_map(|e| e.metadata().ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0);
    }
    let bytes: i64 = sql
        .scalar("SELECT pg_database_size(current_database())", &[])
        .await;
    u64::try_from(bytes).unwrap_or(0)
}

//! Every console process on a PostgreSQL database holds the instance lock *shared*, for as long
//! as it runs: any number of consoles may share the database (their queue, locks, budgets and
//! caches live in it), but `migrate-db` takes the lock exclusively, so it refuses a database a
//! console is using, and a console starting while a copy is under way refuses to start instead of
//! seeing half of it.

use sqlx::{pool::PoolConnection, Acquire, PgConnection, PgPool, Postgres};

/// The advisory lock key every running console holds shared (any fixed number no other lock
/// uses).
const INSTANCE_KEY: i64 = 0x7069_6e70_6869_6201;

#[derive(Debug, thiserror::Error)]
pub enum InstanceError {
    #[error("migrate-db is copying into this PostgreSQL database; start the console once it has finished")]
    Taken,
    #[error("cannot take the instance lock: {0}")]
    Db(#[from] sqlx::Error),
}

/// The instance lock, held for as long as this value lives on a connection of its own.
#[derive(Debug)]
pub struct InstanceLock {
    _conn: PgConnection,
}

/// Takes the instance lock shared, or says `migrate-db` holds it.
pub async fn claim(pool: &PgPool) -> Result<InstanceLock, InstanceError> {
    let conn: PoolConnection<Postgres> = pool.acquire().await?;
    // the lock lives as long as its session: the connection leaves the pool for good
    let mut conn = conn.detach();
    let held: bool = sqlx::query_scalar!(
        r#"SELECT pg_try_advisory_lock_shared($1) AS "held!""#,
        INSTANCE_KEY
    )
    .fetch_one(&mut conn)
    .await?;
    if held {
        Ok(InstanceLock { _conn: conn })
    } else {
        Err(InstanceError::Taken)
    }
}

/// Takes the instance lock exclusively for the rest of `conn`'s transaction, if no console
/// holds it.
pub(crate) async fn try_lock_in(conn: &mut PgConnection) -> Result<bool, sqlx::Error> {
    let conn = conn.acquire().await?;
    sqlx::query_scalar!(
        r#"SELECT pg_try_advisory_xact_lock($1) AS "held!""#,
        INSTANCE_KEY
    )
    .fetch_one(conn)
    .await
}

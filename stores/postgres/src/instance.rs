//! One console per PostgreSQL database, for now. Several instances on one database need the
//! queue, the per-person locks, the rate budget and the caches to live in the database, which
//! they do not yet; until then a second console refuses to start rather than export twice.

use sqlx::{pool::PoolConnection, Acquire, PgConnection, PgPool, Postgres};

/// The advisory lock key the running console holds (any fixed number no other lock uses).
const INSTANCE_KEY: i64 = 0x7069_6e70_6869_6201;

#[derive(Debug, thiserror::Error)]
pub enum InstanceError {
    #[error("another pinpoint-hibob console is already running on this PostgreSQL database (it holds the instance lock); run one console per database")]
    Taken,
    #[error("cannot take the instance lock: {0}")]
    Db(#[from] sqlx::Error),
}

/// The instance lock, held for as long as this value lives on a connection of its own.
#[derive(Debug)]
pub struct InstanceLock {
    _conn: PgConnection,
}

/// Takes the instance lock, or says another console holds it.
pub async fn claim(pool: &PgPool) -> Result<InstanceLock, InstanceError> {
    let conn: PoolConnection<Postgres> = pool.acquire().await?;
    // the lock lives as long as its session: the connection leaves the pool for good
    let mut conn = conn.detach();
    let held: bool = sqlx::query_scalar!(
        r#"SELECT pg_try_advisory_lock($1) AS "held!""#,
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

/// Takes the instance lock for the rest of `conn`'s transaction, if no console holds it.
pub(crate) async fn try_lock_in(conn: &mut PgConnection) -> Result<bool, sqlx::Error> {
    let conn = conn.acquire().await?;
    sqlx::query_scalar!(
        r#"SELECT pg_try_advisory_xact_lock($1) AS "held!""#,
        INSTANCE_KEY
    )
    .fetch_one(conn)
    .await
}

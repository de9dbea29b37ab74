//! The console's PostgreSQL engine: its schema (`migrations/`, the same tables as the SQLite
//! migrations leave behind; `tests/schema.rs` compares them), opening a pool on it, and
//! [`PgStore`], every domain's store trait in PostgreSQL's own SQL. sqlx checks each crate's
//! queries against one engine, which is why this engine is a crate of its own.

use std::{str::FromStr, time::Duration};

use sqlx::{
    migrate::{MigrateError, Migrator},
    postgres::{PgConnectOptions, PgPoolOptions},
    ConnectOptions, Connection, PgConnection, PgPool,
};

mod access;
mod alerts;
mod audit;
mod bulk_retry;
mod conflict;
mod dashboard;
mod exports;
pub mod from_sqlite;
pub mod instance;
mod instances;
mod intake;
mod mapping;
pub mod peers;
pub mod person_locks;
mod search;
mod settings;
mod shared_limits;
mod store;
#[cfg(any(test, feature = "testing"))]
pub mod test_sql;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod upkeep;
mod watch;
mod webhook_log;
mod webhooks;

/// The console's database on PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    /// Where locks held across processes take their connections (see `person_locks`), made on
    /// first use.
    locks: std::sync::Arc<std::sync::OnceLock<PgPool>>,
    /// The console's hold on the database (see `instance`), released when the last handle to
    /// the store goes, that is, when the console stops.
    _instance: Option<std::sync::Arc<instance::InstanceLock>>,
}

impl PgStore {
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            locks: Default::default(),
            _instance: None,
        }
    }

    /// The pool the sessions holding locks across processes take their connections from: kept
    /// apart so the sessions (a few per gateway, see `person_locks`) never wait behind a busy
    /// main pool, at most [`LOCK_CONNECTIONS`], connecting only when asked. Made on first use,
    /// within the runtime a pool needs.
    fn lock_pool(&self) -> PgPool {
        self.locks
            .get_or_init(|| {
                PgPoolOptions::new()
                    .max_connections(LOCK_CONNECTIONS)
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .connect_lazy_with((*self.pool.connect_options()).clone())
            })
            .clone()
    }

    /// The store of the console that holds `lock` on this database.
    pub fn holding(pool: PgPool, lock: instance::InstanceLock) -> Self {
        Self {
            pool,
            locks: Default::default(),
            _instance: Some(std::sync::Arc::new(lock)),
        }
    }

    /// The pool, for the session store and for tests.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// The most connections the sessions holding locks across processes keep at once: two for the
/// console's gateway, two for a gateway replaced at start-up (sandbox mode) until it is dropped.
/// However many people are exported at once, their locks are held on these.
pub const LOCK_CONNECTIONS: u32 = 4;

/// How long a request waits for a pooled connection, and start-up for the server to accept one.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(15);

/// Longer than any single statement of the console's takes, so that only a statement stuck
/// behind a lock or gone wrong is cut off, and its connection comes back to the pool instead of
/// being held until the server gives up on it. Migrations run without it (see `migrate`).
const STATEMENT_TIMEOUT: &str = "60s";

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    // the URL is not repeated: it may hold the password
    #[error("DATABASE_URL is not a valid PostgreSQL URL (expected e.g. postgres://user:password@host:5432/database): {0}")]
    BadUrl(String),
    #[error("cannot reach the PostgreSQL server at {address} (is it running, and is the host and port right?): {source}")]
    Unreachable {
        address: String,
        source: sqlx::Error,
    },
    #[error("the PostgreSQL server at {address} refused user {user:?} (check the user name and password in DATABASE_URL, and pg_hba.conf): {source}")]
    Auth {
        address: String,
        user: String,
        source: sqlx::Error,
    },
    #[error("the database {database:?} does not exist on the PostgreSQL server at {address} (create it first, e.g. createdb {database}): {source}")]
    MissingDatabase {
        address: String,
        database: String,
        source: sqlx::Error,
    },
    #[error("cannot apply the database migrations (is this database from a newer version, or not ours?): {0}")]
    Migrate(#[from] MigrateError),
    #[error("cannot open the database: {0}")]
    Connect(sqlx::Error),
}

/// Connects to the PostgreSQL database at `url`, applies every pending migration and returns a
/// pool of at most `max_connections`. A server that refuses connections is waited for (it may be
/// starting next to the console) up to the acquire timeout.
pub async fn open(url: &str, max_connections: u32) -> Result<PgPool, OpenError> {
    open_within(url, max_connections, ACQUIRE_TIMEOUT).await
}

async fn open_within(
    url: &str,
    max_connections: u32,
    patience: Duration,
) -> Result<PgPool, OpenError> {
    // sqlx reads any URL as PostgreSQL's, whatever its scheme
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(OpenError::BadUrl(
            "it must start with postgres:// or postgresql://".to_owned(),
        ));
    }
    let options = PgConnectOptions::from_str(url)
        .map_err(|e| OpenError::BadUrl(e.to_string()))?
        .application_name("pinpoint-hibob")
        // the session store deletes expired sessions by comparing its timestamptz column with
        // `now() at time zone 'utc'`, a timestamp without zone that PostgreSQL reads back in the
        // session's time zone: only in UTC is that the current time
        .options([("TimeZone", "UTC")]);
    // a role or database may have a statement timeout of its own: the migrations run without any
    let first = connect_first(
        &options.clone().options([("statement_timeout", "0")]),
        patience,
    )
    .await?;
    migrate(first).await?;
    PgPoolOptions::new()
        .max_connections(max_connections.max(1))
        .acquire_timeout(patience)
        .connect_with(
            options
                .clone()
                .options([("statement_timeout", STATEMENT_TIMEOUT)]),
        )
        .await
        .map_err(|e| classify(&options, e))
}

/// One connection, retried while the server refuses connections or says it is starting up,
/// so that the reason a database cannot be opened is told at once rather than as a pool timeout.
async fn connect_first(
    options: &PgConnectOptions,
    patience: Duration,
) -> Result<PgConnection, OpenError> {
    let deadline = tokio::time::Instant::now() + patience;
    let mut pause = Duration::from_millis(50);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let error = match tokio::time::timeout(left, options.connect()).await {
            Ok(Ok(conn)) => return Ok(conn),
            Ok(Err(e)) => e,
            Err(_) => sqlx::Error::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer within {patience:?}"),
            )),
        };
        let starting = match &error {
            sqlx::Error::Io(e) => e.kind() == std::io::ErrorKind::ConnectionRefused,
            // 57P03 cannot_connect_now: the server is starting up or shutting down
            sqlx::Error::Database(e) => e.code().as_deref() == Some("57P03"),
            _ => false,
        };
        if !starting || tokio::time::Instant::now() + pause >= deadline {
            return Err(classify(options, error));
        }
        tracing::info!(error = %error, "PostgreSQL is not accepting connections yet; trying again");
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(2));
    }
}

/// Runs the migrations on a connection of their own without the statement timeout: a later
/// migration may rewrite a large table, and the migrator waits on an advisory lock while another
/// instance migrates. The connection is closed afterwards rather than pooled.
async fn migrate(mut conn: PgConnection) -> Result<(), OpenError> {
    let migrated = MIGRATOR.run(&mut conn).await;
    let _ = conn.close().await;
    Ok(migrated?)
}

fn classify(options: &PgConnectOptions, error: sqlx::Error) -> OpenError {
    let address = format!("{}:{}", options.get_host(), options.get_port());
    let code = match &error {
        sqlx::Error::Database(e) => e.code().map(|c| c.into_owned()),
        _ => None,
    };
    match (code.as_deref(), &error) {
        // 28P01 invalid_password, 28000 invalid_authorization_specification (no such role, a
        // role that may not log in, or pg_hba.conf refusing)
        (Some("28P01" | "28000"), _) => OpenError::Auth {
            address,
            user: options.get_username().to_owned(),
            source: error,
        },
        // 3D000 invalid_catalog_name
        (Some("3D000"), _) => OpenError::MissingDatabase {
            address,
            database: options
                .get_database()
                .unwrap_or(options.get_username())
                .to_owned(),
            source: error,
        },
        (_, sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut) => OpenError::Unreachable {
            address,
            source: error,
        },
        _ => OpenError::Connect(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster_address(url: &str) -> String {
        let options = PgConnectOptions::from_str(url).unwrap();
        format!("{}:{}", options.get_host(), options.get_port())
    }

    #[tokio::test]
    async fn opens_and_migrates_an_empty_database() {
        let url = testing::empty_database().await.unwrap();
        let pool = open(&url, 2).await.unwrap();
        let versions: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(versions, MIGRATOR.iter().count() as i64);
        let (zone, timeout): (String, String) = sqlx::query_as(
            "SELECT current_setting('TimeZone'), current_setting('statement_timeout')",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!((zone.as_str(), timeout.as_str()), ("UTC", "1min"));
        // a second start finds nothing to do
        pool.close().await;
        open(&url, 2).await.unwrap().close().await;
    }

    #[tokio::test]
    async fn a_bad_url_is_told_without_repeating_it() {
        for url in [
            "postgres://me:secret@host:notaport/db",
            "sqlite://secret.db",
        ] {
            let err = open(url, 1).await.unwrap_err();
            assert!(matches!(err, OpenError::BadUrl(_)), "{err:?}");
            assert!(!err.to_string().contains("secret"), "{err}");
        }
    }

    #[tokio::test]
    async fn a_server_that_is_not_there_is_unreachable() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let url = format!("postgres://postgres@127.0.0.1:{port}/db");
        let err = open_within(&url, 1, Duration::from_millis(300))
            .await
            .unwrap_err();
        assert!(matches!(err, OpenError::Unreachable { .. }), "{err:?}");
        assert!(
            err.to_string().contains(&format!("127.0.0.1:{port}")),
            "{err}"
        );
    }

    #[tokio::test]
    async fn an_unknown_user_is_an_authentication_failure() {
        let url = testing::empty_database().await.unwrap();
        let address = cluster_address(&url);
        let err = open(&format!("postgres://nobody@{address}/postgres"), 1)
            .await
            .unwrap_err();
        assert!(
            matches!(err, OpenError::Auth { ref user, .. } if user == "nobody"),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn a_missing_database_is_named() {
        let url = testing::empty_database().await.unwrap();
        let address = cluster_address(&url);
        let err = open(&format!("postgres://postgres@{address}/no_such_db"), 1)
            .await
            .unwrap_err();
        assert!(
            matches!(err, OpenError::MissingDatabase { ref database, .. } if database == "no_such_db"),
            "{err:?}"
        );
        assert!(err.to_string().contains("createdb no_such_db"), "{err}");
    }

    #[tokio::test]
    async fn a_database_that_is_not_ours_fails_to_migrate() {
        let url = testing::empty_database().await.unwrap();
        let mut conn = PgConnection::connect(&url).await.unwrap();
        sqlx::query("CREATE TABLE users (name text)")
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        let err = open(&url, 1).await.unwrap_err();
        assert!(matches!(err, OpenError::Migrate(_)), "{err:?}");
        assert!(err.to_string().contains("users"), "{err}");
    }
}

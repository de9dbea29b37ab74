//! Opening the SQLite database the way this service needs it, and write transactions that cannot
//! deadlock-upgrade.

use std::{path::Path, str::FromStr, time::Duration};

use sqlx::{
    migrate::Migrator,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
    Sqlite, SqlitePool, Transaction,
};

pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("DATABASE_URL {url:?} is not a valid SQLite URL (expected e.g. sqlite://data/pinpoint-hibob.db): {reason}")]
    BadUrl { url: String, reason: String },
    #[error("cannot create the data directory {dir}: {source}")]
    DataDir { dir: String, source: std::io::Error },
    #[error("cannot make the database file {file} private to this user: {source}")]
    DataFile {
        file: String,
        source: std::io::Error,
    },
    #[error("cannot open the database: {0}")]
    Open(sqlx::Error),
    #[error("cannot apply the database migrations (is this database from a newer version, or not ours?): {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("after the migrations, {0} row(s) refer to rows that do not exist")]
    References(usize),
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
}

/// Opens (creating if missing) the database at `url` with WAL, `synchronous=FULL` (a webhook is
/// acknowledged only after commit, so an OS crash must not roll an acknowledged hire back), a busy
/// timeout and foreign keys, then applies every pending migration and, once, converts an older
/// database to `auto_vacuum=INCREMENTAL`.
pub async fn open(url: &str) -> Result<SqlitePool, DbError> {
    let pool = connect(url, true).await?;
    migrate(&pool).await?;
    if ensure_incremental_vacuum(&pool).await? {
        // the pool's other connections still hold the old mode in memory
        pool.close().await;
        return connect(url, true).await;
    }
    Ok(pool)
}

/// Applies the pending migrations on a connection of their own with foreign keys off, as
/// SQLite's documented way of rebuilding a table requires (with them on, dropping the old table
/// would cascade into every row that refers to it), then checks every reference still holds.
/// The connection is closed afterwards rather than pooled with foreign keys off.
async fn migrate(pool: &SqlitePool) -> Result<(), DbError> {
    let mut conn = pool.acquire().await?.detach();
    sqlx::query("PRAGMA foreign_keys = OFF")
        .execute(&mut conn)
        .await?;
    let migrated = MIGRATOR.run(&mut conn).await;
    let broken = sqlx::query("PRAGMA foreign_key_check")
        .fetch_all(&mut conn)
        .await
        .map(|rows| rows.len());
    let _ = sqlx::Connection::close(conn).await;
    migrated?;
    match broken? {
        0 => Ok(()),
        n => Err(DbError::References(n)),
    }
}

/// Puts the database in `auto_vacuum=INCREMENTAL`, so the pages retention frees can be handed
/// back to the file system. A new database is created that way (see `connect`); an older one is
/// converted once, here, by a full `VACUUM`: it rewrites the file (needing as much free disk again
/// and a while on a large database) and is never needed again.
/// Returns whether it converted.
async fn ensure_incremental_vacuum(pool: &SqlitePool) -> Result<bool, DbError> {
    let mode: i64 = sqlx::query_scalar("PRAGMA auto_vacuum")
        .fetch_one(pool)
        .await?;
    if mode != 2 {
        tracing::info!("converting the database to auto_vacuum=INCREMENTAL (a one-time VACUUM)");
        let mut conn = pool.acquire().await?;
        sqlx::raw_sql("PRAGMA auto_vacuum = INCREMENTAL; VACUUM;")
            .execute(&mut *conn)
            .await?;
        return Ok(true);
    }
    Ok(false)
}

/// Opens an existing database as [`open`] does but neither creates nor migrates it: for commands
/// that read a database a running console may own (a backup must not migrate it under an older
/// running binary).
pub async fn open_existing(url: &str) -> Result<SqlitePool, DbError> {
    connect(url, false).await
}

async fn connect(url: &str, create: bool) -> Result<SqlitePool, DbError> {
    let bad = |reason: String| DbError::BadUrl {
        url: url.to_owned(),
        reason,
    };
    // sqlx reads anything without a scheme it knows as a file name; a typo like `postgres://…`
    // must not quietly create a file of that name
    if !url.starts_with("sqlite:") {
        return Err(bad("it must start with sqlite:".to_owned()));
    }
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|e| bad(e.to_string()))?
        .create_if_missing(create)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(10))
        .foreign_keys(true)
        // set before the first table exists, so a new database needs no conversion (open())
        .auto_vacuum(sqlx::sqlite::SqliteAutoVacuum::Incremental)
        // deleted and replaced values (an erased candidate, pruned bodies) are overwritten on
        // disk instead of lingering in free space where a copy of the file would still show them
        .pragma("secure_delete", "ON");

    let file = options.get_filename();
    if file != Path::new(":memory:") && create {
        if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
            create_private_dir_all(dir).map_err(|source| DbError::DataDir {
                dir: dir.display().to_string(),
                source,
            })?;
        }
        private_database_files(file)?;
    }

    SqlitePoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(15))
        .after_release(|conn, _meta| {
            Box::pin(async move {
                // A transaction whose COMMIT failed (disk full, I/O error) is rolled back when
                // dropped, but SQLite may already have rolled it back itself; then the ROLLBACK
                // fails and sqlx still counts the connection as inside a transaction, so every
                // later `BEGIN IMMEDIATE` on it fails. The ping runs any queued rollback first;
                // a connection still in a transaction after it is closed, never pooled.
                sqlx::Connection::ping(conn).await?;
                Ok(!sqlx::Connection::is_in_transaction(conn))
            })
        })
        .connect_with(options)
        .await
        .map_err(DbError::Open)
}

/// Creates `dir` and its missing parents with mode 0700: the database, its WAL and backups hold
/// every candidate's personal data. A folder that already exists keeps its mode: it may be shared
/// (the working directory, a volume's root) and is the operator's to set.
pub fn create_private_dir_all(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Creates the new, empty file `path` with mode 0600 (an error if it exists). The mode is set at
/// creation, so the file is never readable by others, whatever the process's umask.
pub fn create_private_file(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

/// Narrows an existing file that others may read or write to mode 0600; returns whether it had
/// to. A missing file is left missing.
pub fn make_private(path: &Path) -> std::io::Result<bool> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = match std::fs::metadata(path) {
            Ok(meta) => meta.permissions().mode(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        };
        if mode & 0o077 != 0 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
            return Ok(true);
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(false)
}

/// The `-wal` and `-shm` files SQLite keeps beside the database file `file`.
pub fn companions(file: &Path) -> [std::path::PathBuf; 2] {
    let with = |suffix: &str| {
        let mut name = file.as_os_str().to_owned();
        name.push(suffix);
        std::path::PathBuf::from(name)
    };
    [with("-wal"), with("-shm")]
}

/// Makes the database file 0600 before SQLite opens it: created empty when missing (SQLite takes
/// an empty file for a new database), narrowed when an older version left it readable to others.
/// SQLite gives the `-wal` and `-shm` files it creates the database file's mode; ones left by an
/// older version are narrowed here too.
fn private_database_files(file: &Path) -> Result<(), DbError> {
    let failed = |source| DbError::DataFile {
        file: file.display().to_string(),
        source,
    };
    match create_private_file(file) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(failed(e)),
    }
    for path in std::iter::once(file.to_owned()).chain(companions(file)) {
        if make_private(&path).map_err(failed)? {
            tracing::warn!(file = %path.display(), "the database file was readable by other users; it is now 0600");
        }
    }
    Ok(())
}

/// Starts a write transaction with `BEGIN IMMEDIATE`, so the write lock is taken up front and the
/// busy timeout applies; a deferred transaction that upgrades can fail with SQLITE_BUSY at once.
pub async fn begin_write(pool: &SqlitePool) -> Result<Transaction<'static, Sqlite>, sqlx::Error> {
    pool.begin_with("BEGIN IMMEDIATE").await
}

/// Readiness: the database answers, takes a write, and every migration this binary knows is
/// applied.
pub async fn readiness(pool: &SqlitePool) -> Result<(), String> {
    schema_readiness(pool).await?;
    write_probe(pool).await
}

/// The reading half of [`readiness`]: the database answers and every migration is applied.
pub async fn schema_readiness(pool: &SqlitePool) -> Result<(), String> {
    sqlx::query_scalar::<_, i64>("SELECT 1")
        .fetch_one(pool)
        .await
        .map_err(|e| format!("database does not answer: {e}"))?;
    let applied: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success = 1")
            .fetch_all(pool)
            .await
            .map_err(|e| format!("cannot read migrations: {e}"))?;
    all_applied(&MIGRATOR, &applied)
}

/// Whether every migration `migrator` knows is among the `applied` versions, and if not, which
/// are missing, in words for the probes.
pub fn all_applied(migrator: &Migrator, applied: &[i64]) -> Result<(), String> {
    let missing: Vec<i64> = migrator
        .iter()
        .map(|m| m.version)
        .filter(|v| !applied.contains(v))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!("migrations not applied: {missing:?}"))
    }
}

/// One small write, as any delivery or export needs: a full disk or a read-only file fails it.
/// Each is a commit (an fsync), so frequent callers should not run it on every request.
pub async fn write_probe(pool: &SqlitePool) -> Result<(), String> {
    async {
        let mut tx = begin_write(pool).await?;
        sqlx::query("INSERT OR REPLACE INTO health_probe (id, checked_at) VALUES (1, ?)")
            .bind(now_text())
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }
    .await
    .map_err(|e: sqlx::Error| format!("database cannot write: {e}"))
}

/// The file a `sqlite://` URL names, if it names one (not another engine's URL, nor an
/// in-memory database).
pub fn file_of(url: &str) -> Option<std::path::PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && !path.starts_with(":memory:")).then(|| std::path::PathBuf::from(path))
}

/// A LIKE pattern that matches `text` literally anywhere (searches for `50%` or `a_b` mean exactly
/// that; use with `ESCAPE '\'`). Search text is capped at 200 characters.
pub fn like_pattern(text: &str) -> String {
    let mut out = String::from("%");
    for c in text.chars().take(200) {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// The current time as stored in the database (RFC 3339, UTC, milliseconds).
pub fn now_text() -> String {
    time_text(chrono::Utc::now())
}

/// A time in the stored form, which sorts and compares correctly as text.
pub fn time_text(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Sets the umask to 022, the usual permissive one, whatever the runner started with: the
    /// modes below must not depend on it. It is process-wide, and harmless to other tests.
    #[cfg(unix)]
    pub(crate) fn permissive_umask() {
        // SAFETY: umask only replaces the process's file-creation mask; it cannot fail
        unsafe {
            libc::umask(0o022);
        }
    }

    #[cfg(unix)]
    pub(crate) fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .permissions()
            .mode()
            & 0o777
    }

    /// The data folder is made 0700 and the database, its WAL and shared-memory files 0600; a
    /// database an older version left readable to all is narrowed when it is opened.
    #[cfg(unix)]
    #[tokio::test]
    async fn the_data_folder_and_the_database_files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        permissive_umask();
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data/nested");
        let file = data.join("p.db");
        let url = format!("sqlite://{}", file.display());
        let files = [file.clone(), data.join("p.db-wal"), data.join("p.db-shm")];
        let pool = open(&url).await.unwrap();
        write_probe(&pool).await.unwrap();
        assert_eq!(mode(&dir.path().join("data")), 0o700);
        assert_eq!(mode(&data), 0o700);
        for f in &files {
            assert_eq!(mode(f), 0o600, "{}", f.display());
        }
        pool.close().await;

        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let pool = open(&url).await.unwrap();
        write_probe(&pool).await.unwrap();
        for f in &files {
            assert_eq!(mode(f), 0o600, "{}", f.display());
        }
        pool.close().await;
    }

    #[tokio::test]
    async fn rebuilding_the_exports_table_keeps_everything_that_refers_to_it() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/t.db", dir.path().display());
        // a database as the release before the rebuild left it, with an export, its steps, its
        // delivery and an alert
        let before = Migrator {
            migrations: MIGRATOR
                .migrations
                .iter()
                .filter(|m| m.version < 20261202000001)
                .cloned()
                .collect(),
            ..Migrator::DEFAULT
        };
        let pool = connect(&url, true).await.unwrap();
        before.run(&pool).await.unwrap();
        sqlx::raw_sql(
            "INSERT INTO exports (id, source, idempotency_key, pinpoint_application_id, status,
                                  candidate_name)
             VALUES (7, 'plugin', 'k7', 'a7', 'needs_attention', 'Noor Haddad');
             INSERT INTO export_steps (export_id, attempt, step, outcome) VALUES (7, 1, 'map', 'failed');
             INSERT INTO webhook_deliveries (outcome, body_sha256, body, export_id)
             VALUES ('accepted', 'h', '{}', 7);",
        )
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;

        let pool = open(&url).await.unwrap();
        let steps: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM export_steps WHERE export_id = 7")
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(steps, 1, "the steps survive the rebuild");
        let delivery: Option<i64> = sqlx::query_scalar("SELECT export_id FROM webhook_deliveries")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(delivery, Some(7));
        let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(fk, 1, "the pool's connections keep foreign keys on");
        sqlx::query("UPDATE exports SET status = 'resolved' WHERE id = 7")
            .execute(&pool)
            .await
            .unwrap();
        let counted: i64 =
            sqlx::query_scalar("SELECT n FROM export_status_counts WHERE status = 'resolved'")
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(counted, 1, "the counters' triggers are back");
        let found: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM export_search WHERE export_search MATCH 'Had'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(found, 1, "the search index still covers it");
        // and deleting an export still cascades into its steps
        sqlx::query("DELETE FROM exports WHERE id = 7")
            .execute(&pool)
            .await
            .unwrap();
        let steps: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM export_steps")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(steps, 0);
    }

    #[tokio::test]
    async fn opens_with_durable_pragmas_and_migrations() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/nested/dir/t.db", dir.path().display());
        let pool = open(&url).await.unwrap();
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(sync, 2, "synchronous=FULL");
        let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(fk, 1);
        let secure: i64 = sqlx::query_scalar("PRAGMA secure_delete")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(secure, 1, "deleted values are overwritten");
        let vacuum: i64 = sqlx::query_scalar("PRAGMA auto_vacuum")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(vacuum, 2, "auto_vacuum=INCREMENTAL");
        readiness(&pool).await.unwrap();
    }

    /// Sets SQLite's page limit on every connection of the pool (it is per connection).
    async fn set_page_limit(pool: &SqlitePool, pages: i64) {
        let mut held = Vec::new();
        for _ in 0..8 {
            let mut conn = pool.acquire().await.unwrap();
            sqlx::query(&format!("PRAGMA max_page_count = {pages}"))
                .execute(&mut *conn)
                .await
                .unwrap();
            held.push(conn);
        }
    }

    /// A write that fails because the database is full (here: at its page limit, which SQLite
    /// reports exactly as a full disk) must not leave a pooled connection that believes it is
    /// still inside a transaction: once there is room, writes work again.
    #[tokio::test]
    async fn a_full_database_heals_once_there_is_room() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/full.db", dir.path().display());
        let pool = open(&url).await.unwrap();
        sqlx::query("CREATE TABLE filler (x BLOB)")
            .execute(&pool)
            .await
            .unwrap();
        let pages: i64 = sqlx::query_scalar("PRAGMA page_count")
            .fetch_one(&pool)
            .await
            .unwrap();
        set_page_limit(&pool, pages + 8).await;
        let mut failures = 0;
        for _ in 0..40 {
            let Ok(mut tx) = begin_write(&pool).await else {
                failures += 1;
                continue;
            };
            let insert = sqlx::query("INSERT INTO filler VALUES (zeroblob(20000))")
                .execute(&mut *tx)
                .await;
            if insert.is_err() || tx.commit().await.is_err() {
                failures += 1;
            }
        }
        assert!(failures > 0, "the page limit was never reached");
        assert!(readiness(&pool).await.is_err() || failures > 0);
        set_page_limit(&pool, 1_073_741_823).await;
        for round in 0..20 {
            let mut tx = begin_write(&pool)
                .await
                .unwrap_or_else(|e| panic!("round {round}: a connection stayed broken: {e}"));
            sqlx::query("INSERT INTO filler VALUES (zeroblob(100))")
                .execute(&mut *tx)
                .await
                .unwrap();
            tx.commit().await.unwrap();
        }
        readiness(&pool).await.unwrap();
    }

    /// A database made before auto_vacuum was set is converted once at start-up.
    #[tokio::test]
    async fn an_older_database_is_converted_to_incremental_vacuum() {
        use sqlx::ConnectOptions;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        let mut conn = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .connect()
            .await
            .unwrap();
        sqlx::query("CREATE TABLE older (x)")
            .execute(&mut conn)
            .await
            .unwrap();
        let mode: i64 = sqlx::query_scalar("PRAGMA auto_vacuum")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(mode, 0);
        sqlx::Connection::close(conn).await.unwrap();
        let pool = open(&format!("sqlite://{}", path.display())).await.unwrap();
        let mode: i64 = sqlx::query_scalar("PRAGMA auto_vacuum")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(mode, 2);
        readiness(&pool).await.unwrap();
    }

    #[test]
    fn like_patterns_are_literal() {
        assert_eq!(like_pattern("50%_x\\"), "%50\\%\\_x\\\\%");
    }

    #[tokio::test]
    async fn refuses_a_bad_url_with_a_clear_message() {
        let err = open("postgres://nope").await.unwrap_err();
        assert!(err.to_string().contains("not a valid SQLite URL"), "{err}");
    }

    #[tokio::test]
    async fn refuses_a_file_that_is_not_a_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("junk.db");
        std::fs::write(&path, b"this is not sqlite at all, just text ......").unwrap();
        let err = open(&format!("sqlite://{}", path.display()))
            .await
            .unwrap_err();
        assert!(
            matches!(err, DbError::Open(_) | DbError::Migrate(_)),
            "{err}"
        );
    }
}

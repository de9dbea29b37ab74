//! Backups: a consistent copy of the live database, checked before anyone relies on it; putting
//! one back while the service is stopped; and the naming and rotation of scheduled backups.
//!
//! A copy is made with `VACUUM INTO`, which reads one snapshot of the database (WAL mode lets
//! webhook intake keep writing meanwhile) and writes a compact, self-contained file: no `-wal`
//! is needed beside it.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use chrono::{DateTime, NaiveDateTime, Utc};
use sqlx::{
    sqlite::{SqliteConnectOptions, SqliteLockingMode},
    ConnectOptions, Connection, SqliteConnection, SqlitePool,
};

use crate::db::{companions, create_private_dir_all, create_private_file, MIGRATOR};

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0} already exists; choose another file or pass --force to replace it")]
    Exists(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0} does not exist")]
    Missing(PathBuf),
    #[error("cannot copy the database: {0}")]
    Copy(sqlx::Error),
    #[error("{path} is not a usable SQLite database: {reason}")]
    Damaged { path: PathBuf, reason: String },
    #[error("{path} is not a database of this console: {reason}")]
    NotOurs { path: PathBuf, reason: String },
    #[error(
        "the database {0} is in use (is the console running?); stop the service before restoring"
    )]
    InUse(PathBuf),
    /// The engine (named here) is backed up with its own tools, not by the console.
    #[error("the console cannot back up a {0} database: take a backup with pg_dump (e.g. pg_dump --format=custom --file=console.dump \"$DATABASE_URL\") and put one back with pg_restore, while the console is stopped")]
    Unsupported(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.to_owned(),
        source,
    }
}

/// What a check of a database file found, for the operator to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub migrations: usize,
    pub exports: i64,
    pub deliveries: i64,
    pub bytes: u64,
}

impl std::fmt::Display for Checked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "integrity ok, {} migrations applied, {} exports, {} webhook deliveries, {} bytes",
            self.migrations, self.exports, self.deliveries, self.bytes
        )
    }
}

/// Opens an existing file only: a check must never create an empty database and pass it.
async fn open_file(path: &Path) -> Result<SqliteConnection, BackupError> {
    if !path.is_file() {
        return Err(BackupError::Missing(path.to_owned()));
    }
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(false)
        .busy_timeout(Duration::from_secs(10))
        .connect()
        .await
        .map_err(|e| BackupError::Damaged {
            path: path.to_owned(),
            reason: e.to_string(),
        })
}

/// Checks that `path` is a whole SQLite database (`PRAGMA integrity_check`) whose migrations are
/// exactly the ones this binary knows, all applied: a file from a newer version, an older one
/// that was never migrated, or another program's database is refused.
pub async fn check(path: &Path) -> Result<Checked, BackupError> {
    let mut conn = open_file(path).await?;
    let outcome = check_open(&mut conn, path).await;
    // closing lets SQLite checkpoint and remove any -wal it made while reading
    let _ = conn.close().await;
    let (migrations, exports, deliveries) = outcome?;
    let bytes = std::fs::metadata(path).map_err(io(path))?.len();
    Ok(Checked {
        migrations,
        exports,
        deliveries,
        bytes,
    })
}

async fn check_open(
    conn: &mut SqliteConnection,
    path: &Path,
) -> Result<(usize, i64, i64), BackupError> {
    let damaged = |reason: String| BackupError::Damaged {
        path: path.to_owned(),
        reason,
    };
    let not_ours = |reason: String| BackupError::NotOurs {
        path: path.to_owned(),
        reason,
    };
    let problems: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| damaged(e.to_string()))?;
    if problems != ["ok"] {
        let shown: Vec<&str> = problems.iter().take(5).map(String::as_str).collect();
        return Err(damaged(format!("integrity_check: {}", shown.join("; "))));
    }
    let applied: Vec<(i64, bool)> =
        sqlx::query_as("SELECT version, success FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&mut *conn)
            .await
            .map_err(|e| not_ours(format!("no migrations table ({e})")))?;
    let known: Vec<i64> = MIGRATOR.iter().map(|m| m.version).collect();
    if let Some((v, _)) = applied.iter().find(|(v, _)| !known.contains(v)) {
        return Err(not_ours(format!(
            "migration {v} is unknown to this version of the console (made by a newer one?)"
        )));
    }
    let missing: Vec<i64> = known
        .iter()
        .copied()
        .filter(|v| !applied.iter().any(|(a, ok)| a == v && *ok))
        .collect();
    if !missing.is_empty() {
        return Err(not_ours(format!("migrations not applied: {missing:?}")));
    }
    let exports = sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM exports")
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| damaged(e.to_string()))?;
    let deliveries = sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM webhook_deliveries")
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| damaged(e.to_string()))?;
    Ok((known.len(), exports, deliveries))
}

/// A sibling of `path` for a file being written: never a name a reader would take for a backup.
fn partial_name(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "backup".to_owned());
    let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default();
    path.with_file_name(format!(".{name}.partial-{}-{nanos}", std::process::id()))
}

/// Flushes a file, and the directory holding its name, to disk.
fn sync_file_and_dir(path: &Path) -> Result<(), BackupError> {
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(io(path))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        // not every platform can open a directory; the file itself is already durable
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// Copies the database behind `pool` to `output` and checks the copy. The copy is written beside
/// `output` under a temporary name and only takes that name once it has passed, so `output` is
/// never a half-written or unchecked file. Refuses an existing `output` unless `replace`.
pub async fn backup(
    pool: &SqlitePool,
    output: &Path,
    replace: bool,
) -> Result<Checked, BackupError> {
    if !replace && output.exists() {
        return Err(BackupError::Exists(output.to_owned()));
    }
    let partial = partial_name(output);
    let result = write_checked_copy(pool, &partial).await;
    let outcome = match result {
        Ok(checked) => put_in_place(&partial, output, replace).map(|()| checked),
        Err(e) => Err(e),
    };
    if partial.exists() {
        let _ = std::fs::remove_file(&partial);
    }
    outcome
}

async fn write_checked_copy(pool: &SqlitePool, partial: &Path) -> Result<Checked, BackupError> {
    let target = partial.to_str().ok_or_else(|| BackupError::Io {
        path: partial.to_owned(),
        source: std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the backup path must be valid UTF-8",
        ),
    })?;
    // created empty and private first (VACUUM INTO fills an empty file): SQLite would create it
    // readable to all under the usual umask
    create_private_file(partial).map_err(io(partial))?;
    sqlx::query("VACUUM INTO ?")
        .bind(target)
        .execute(pool)
        .await
        .map_err(BackupError::Copy)?;
    sync_file_and_dir(partial)?;
    check(partial).await
}

/// Copies `from` to the new file `to`, private (0600) whatever `from`'s mode: `std::fs::copy`
/// would carry a backup's permissive mode over to the database.
fn copy_private(from: &Path, to: &Path) -> Result<(), BackupError> {
    let mut source = std::fs::File::open(from).map_err(io(from))?;
    let mut target = create_private_file(to).map_err(io(to))?;
    std::io::copy(&mut source, &mut target).map_err(io(to))?;
    target.sync_all().map_err(io(to))
}

fn put_in_place(partial: &Path, output: &Path, replace: bool) -> Result<(), BackupError> {
    if replace {
        std::fs::rename(partial, output).map_err(io(output))?;
    } else {
        // a hard link is a rename that refuses to replace: a file that appeared at `output` since
        // the first look is kept, not overwritten
        match std::fs::hard_link(partial, output) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(BackupError::Exists(output.to_owned()))
            }
            Err(_) if !output.exists() => std::fs::rename(partial, output).map_err(io(output))?,
            Err(e) => return Err(io(output)(e)),
        }
    }
    sync_file_and_dir(output)
}

#[derive(Debug)]
pub struct Restored {
    pub checked: Checked,
    /// Where the database that was replaced now is (none when there was none).
    pub kept: Option<PathBuf>,
}

/// The file name stamp of backups and kept databases: UTC, sortable, no characters a file system
/// or shell minds.
pub fn stamp(at: DateTime<Utc>) -> String {
    at.format("%Y%m%dT%H%M%SZ").to_string()
}

/// Puts the backup `input` in place of the database file `db`, with the service stopped.
///
/// The input is checked as a backup is. The current database, if any, must not be in use: an
/// exclusive lock is taken on it, which SQLite refuses while any other connection (a running
/// console, a `sqlite3` shell) has the database open in WAL mode. The lock is held until the
/// backup is in place, so nothing can write to the database, or start a WAL beside it, in between.
/// Under it, in this order:
/// 1. the current database is copied to `<db>.before-restore-<UTC stamp>` (complete, its WAL
///    included);
/// 2. it is switched out of WAL mode, which checkpoints and deletes its `-wal`: the locking
///    connection then has no log to delete by name when it closes after the swap, when that name
///    would be the restored database's;
/// 3. the backup is copied beside `db` (0600), the old `-wal`/`-shm` are removed so SQLite cannot
///    replay the replaced database's log onto the backup, and the copy is renamed over `db`;
/// 4. the lock is released.
///
/// The lock guards the file, not its name: a process that opened `db` during the swap waited for
/// the lock and then holds the replaced file, not the backup. Hence "with the service stopped".
pub async fn restore(db: &Path, input: &Path) -> Result<Restored, BackupError> {
    restore_with(db, input, || async {}).await
}

/// [`restore`], calling `before_swap` just before the backup takes the database's place (for tests
/// to try what another process could do then).
async fn restore_with<F, Fut>(
    db: &Path,
    input: &Path,
    before_swap: F,
) -> Result<Restored, BackupError>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let checked = check(input).await?;
    let mut lock = if db.exists() {
        Some(lock_exclusively(db).await?)
    } else {
        if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
            create_private_dir_all(dir).map_err(io(dir))?;
        }
        None
    };
    let outcome = swap_locked(db, input, lock.as_mut(), before_swap).await;
    if let Some(lock) = lock {
        // released only now, with the backup in place
        let closed = lock.close().await;
        if outcome.is_ok() {
            closed.map_err(BackupError::Copy)?;
        }
    }
    Ok(Restored {
        checked,
        kept: outcome?,
    })
}

/// Steps 1–3 of [`restore`], under `lock` when there is a database to replace; returns where the
/// replaced one was kept.
async fn swap_locked<F, Fut>(
    db: &Path,
    input: &Path,
    lock: Option<&mut SqliteConnection>,
    before_swap: F,
) -> Result<Option<PathBuf>, BackupError>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut kept = None;
    if let Some(lock) = lock {
        let keep = {
            let mut n = db.as_os_str().to_owned();
            n.push(format!(".before-restore-{}", stamp(Utc::now())));
            PathBuf::from(n)
        };
        if copy_locked(lock, &keep).await.is_err() {
            // a damaged database (often why one restores) may not copy through SQLite: keep its
            // files as they are, still under the lock
            copy_raw(db, &keep)?;
        }
        // A damaged database may refuse. The lock is still held then, but the connection stays in
        // WAL mode and its close removes `<db>-wal` by name: one a process opening the restored
        // database in the instant between the rename and the close would have made.
        let _ = sqlx::query("PRAGMA journal_mode = DELETE")
            .execute(&mut *lock)
            .await;
        kept = Some(keep);
    }
    let partial = partial_name(db);
    let placed = copy_private(input, &partial).and_then(|()| sync_file_and_dir(&partial));
    if placed.is_ok() {
        before_swap().await;
    }
    let placed = placed
        .and_then(|()| {
            for c in companions(db) {
                match std::fs::remove_file(&c) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io(&c)(e)),
                }
            }
            std::fs::rename(&partial, db).map_err(io(db))
        })
        .and_then(|()| sync_file_and_dir(db));
    if partial.exists() {
        let _ = std::fs::remove_file(&partial);
    }
    placed?;
    Ok(kept)
}

fn copy_raw(db: &Path, keep: &Path) -> Result<(), BackupError> {
    // what a failed VACUUM INTO may have left
    match std::fs::remove_file(keep) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(keep)(e)),
    }
    copy_private(db, keep)?;
    let [wal, _] = companions(db);
    if wal.exists() {
        let [keep_wal, _] = companions(keep);
        copy_private(&wal, &keep_wal)?;
    }
    sync_file_and_dir(keep)
}

/// A connection holding the database file's exclusive lock, or [`BackupError::InUse`].
pub async fn lock_exclusively(db: &Path) -> Result<SqliteConnection, BackupError> {
    let mut conn = SqliteConnectOptions::new()
        .filename(db)
        .create_if_missing(false)
        .locking_mode(SqliteLockingMode::Exclusive)
        .busy_timeout(Duration::from_millis(500))
        .connect()
        .await
        .map_err(|e| BackupError::Damaged {
            path: db.to_owned(),
            reason: e.to_string(),
        })?;
    // in exclusive locking mode the lock taken here is kept until the connection closes
    let locked = sqlx::query("BEGIN EXCLUSIVE").execute(&mut conn).await;
    match locked {
        Ok(_) => {
            let _ = sqlx::query("COMMIT").execute(&mut conn).await;
            Ok(conn)
        }
        Err(e) => {
            let _ = conn.close().await;
            match e.as_database_error().and_then(|d| d.code()) {
                // SQLITE_BUSY, SQLITE_LOCKED and their extended codes
                Some(code) if code.starts_with('5') || code.starts_with('6') => {
                    Err(BackupError::InUse(db.to_owned()))
                }
                _ => Err(BackupError::Damaged {
                    path: db.to_owned(),
                    reason: e.to_string(),
                }),
            }
        }
    }
}

/// The locked database's copy to keep: not checked as a backup is, since it is whatever was
/// there (perhaps the damaged database the restore replaces).
async fn copy_locked(conn: &mut SqliteConnection, target: &Path) -> Result<(), BackupError> {
    let text = target.to_str().ok_or_else(|| BackupError::Io {
        path: target.to_owned(),
        source: std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the database path must be valid UTF-8",
        ),
    })?;
    create_private_file(target).map_err(io(target))?;
    sqlx::query("VACUUM INTO ?")
        .bind(text)
        .execute(&mut *conn)
        .await
        .map_err(BackupError::Copy)?;
    sync_file_and_dir(target)
}

// ---- scheduled backups ------------------------------------------------------------------------

const SCHEDULED_PREFIX: &str = "pinpoint-hibob-";
const SCHEDULED_SUFFIX: &str = ".db";

/// The file name of a scheduled backup taken at `at`.
pub fn scheduled_name(at: DateTime<Utc>) -> String {
    format!("{SCHEDULED_PREFIX}{}{SCHEDULED_SUFFIX}", stamp(at))
}

/// When the scheduled backup named `name` was taken; `None` for every other file, which the
/// rotation therefore never touches.
pub fn scheduled_time(name: &str) -> Option<DateTime<Utc>> {
    let text = name
        .strip_prefix(SCHEDULED_PREFIX)?
        .strip_suffix(SCHEDULED_SUFFIX)?;
    NaiveDateTime::parse_from_str(text, "%Y%m%dT%H%M%SZ")
        .ok()
        .map(|t| t.and_utc())
}

/// Of the file names in a backup directory, the scheduled backups beyond the newest `keep`,
/// oldest first. Other files (a hand-made copy, a partial file) are never chosen.
pub fn beyond_kept(names: &[String], keep: usize) -> Vec<String> {
    let mut dated: Vec<(DateTime<Utc>, &String)> = names
        .iter()
        .filter_map(|n| scheduled_time(n).map(|t| (t, n)))
        .collect();
    dated.sort();
    let excess = dated.len().saturating_sub(keep);
    dated
        .into_iter()
        .take(excess)
        .map(|(_, n)| n.clone())
        .collect()
}

/// When the next scheduled backup is due, given the newest one already in the directory: a
/// restart does not take one at once (a crash loop would otherwise rotate good backups out), and
/// an overdue one is taken now.
pub fn next_due(names: &[String], interval: chrono::Duration, now: DateTime<Utc>) -> DateTime<Utc> {
    names
        .iter()
        .filter_map(|n| scheduled_time(n))
        .max()
        .map(|newest| (newest + interval).min(now + interval))
        .unwrap_or(now)
}

fn listing(dir: &Path) -> Result<Vec<String>, BackupError> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        if let Some(name) = entry.file_name().to_str() {
            names.push(name.to_owned());
        }
    }
    Ok(names)
}

/// What one scheduled backup did.
#[derive(Debug)]
pub struct Scheduled {
    pub file: PathBuf,
    pub checked: Checked,
    pub deleted: Vec<String>,
}

/// Takes a scheduled backup into `dir` (created if missing), checks it, and deletes the oldest
/// scheduled backups beyond `keep`. Nothing is deleted unless the new backup passed its check.
pub async fn scheduled_backup(
    pool: &SqlitePool,
    dir: &Path,
    keep: usize,
    now: DateTime<Utc>,
) -> Result<Scheduled, BackupError> {
    create_private_dir_all(dir).map_err(io(dir))?;
    let file = dir.join(scheduled_name(now));
    let checked = backup(pool, &file, false).await?;
    let mut deleted = Vec::new();
    for name in beyond_kept(&listing(dir)?, keep.max(1)) {
        let path = dir.join(&name);
        std::fs::remove_file(&path).map_err(io(&path))?;
        deleted.push(name);
    }
    Ok(Scheduled {
        file,
        checked,
        deleted,
    })
}

/// When the next scheduled backup into `dir` is due (now when the directory is empty or absent).
pub fn next_scheduled(dir: &Path, interval: chrono::Duration, now: DateTime<Utc>) -> DateTime<Utc> {
    next_due(&listing(dir).unwrap_or_default(), interval, now)
}

/// Copies of the database made by the console itself. Only an engine whose database is a file
/// beside the console can; others answer [`BackupError::Unsupported`].
#[async_trait::async_trait]
pub trait Backups: Send + Sync {
    /// Copies the database behind `pool` to `output` and checks the copy. The copy is written beside
    /// `output` under a temporary name and only takes that name once it has passed, so `output` is
    /// never a half-written or unchecked file. Refuses an existing `output` unless `replace`.
    async fn backup(&self, output: &Path, replace: bool) -> Result<Checked, BackupError>;
    /// Takes a scheduled backup into `dir` (created if missing), checks it, and deletes the oldest
    /// scheduled backups beyond `keep`. Nothing is deleted unless the new backup passed its check.
    async fn scheduled_backup(
        &self,
        dir: &Path,
        keep: usize,
        now: DateTime<Utc>,
    ) -> Result<Scheduled, BackupError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, h, 0, 0).unwrap()
    }

    #[test]
    fn names_round_trip_and_foreign_files_are_not_backups() {
        let name = scheduled_name(at(3));
        assert_eq!(name, "pinpoint-hibob-20261201T030000Z.db");
        assert_eq!(scheduled_time(&name), Some(at(3)));
        for other in [
            "pinpoint-hibob.db",
            "pinpoint-hibob-20261201T030000Z.db-wal",
            ".pinpoint-hibob-20261201T030000Z.db.partial-1-2",
            "pinpoint-hibob-yesterday.db",
            "notes.txt",
        ] {
            assert_eq!(scheduled_time(other), None, "{other}");
        }
    }

    #[test]
    fn rotation_deletes_only_the_oldest_scheduled_backups() {
        let mut names: Vec<String> = [5, 1, 4, 2, 3]
            .iter()
            .map(|h| scheduled_name(at(*h)))
            .collect();
        names.push("hand-made.db".to_owned());
        names.push("pinpoint-hibob.db".to_owned());
        assert_eq!(
            beyond_kept(&names, 3),
            vec![scheduled_name(at(1)), scheduled_name(at(2))]
        );
        assert!(beyond_kept(&names, 5).is_empty());
        assert!(beyond_kept(&names, 9).is_empty());
        assert_eq!(beyond_kept(&names, 0).len(), 5);
    }

    #[test]
    fn the_next_backup_follows_the_newest_one() {
        let day = chrono::Duration::hours(24);
        assert_eq!(next_due(&[], day, at(10)), at(10), "none yet: now");
        let names = vec![scheduled_name(at(2)), "x.db".to_owned()];
        assert_eq!(next_due(&names, chrono::Duration::hours(4), at(3)), at(6));
        assert_eq!(
            next_due(&names, chrono::Duration::hours(4), at(9)),
            at(6),
            "overdue: as soon as possible"
        );
        // a clock set back does not postpone backups beyond one interval from now
        let future = vec![scheduled_name(at(23))];
        assert_eq!(next_due(&future, chrono::Duration::hours(1), at(1)), at(2));
    }

    async fn database(dir: &Path, name: &str) -> (SqlitePool, PathBuf) {
        let path = dir.join(name);
        let pool = crate::db::open(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        (pool, path)
    }

    #[tokio::test]
    async fn a_backup_is_checked_and_never_overwrites_unless_told() {
        let dir = tempfile::tempdir().unwrap();
        let (pool, _) = database(dir.path(), "live.db").await;
        let out = dir.path().join("copy.db");
        let checked = backup(&pool, &out, false).await.unwrap();
        assert_eq!(checked.migrations, MIGRATOR.iter().count());
        assert!(matches!(
            backup(&pool, &out, false).await,
            Err(BackupError::Exists(_))
        ));
        backup(&pool, &out, true).await.unwrap();
        let leftovers: Vec<String> = listing(dir.path())
            .unwrap()
            .into_iter()
            .filter(|n| n.contains("partial"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[tokio::test]
    async fn damaged_and_foreign_files_fail_the_check() {
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.db");
        std::fs::write(&junk, vec![b'x'; 8192]).unwrap();
        assert!(matches!(
            check(&junk).await,
            Err(BackupError::Damaged { .. })
        ));
        let other = dir.path().join("other.db");
        let mut conn = SqliteConnectOptions::new()
            .filename(&other)
            .create_if_missing(true)
            .connect()
            .await
            .unwrap();
        sqlx::query("CREATE TABLE t (x)")
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        let err = check(&other).await.unwrap_err();
        assert!(matches!(err, BackupError::NotOurs { .. }), "{err}");
        assert!(matches!(
            check(&dir.path().join("absent.db")).await,
            Err(BackupError::Missing(_))
        ));
        // a restore of a bad file leaves the database alone
        let (pool, live) = database(dir.path(), "live.db").await;
        pool.close().await;
        assert!(restore(&live, &junk).await.is_err());
        check(&live).await.unwrap();
        let kept = listing(dir.path())
            .unwrap()
            .into_iter()
            .filter(|n| n.contains("before-restore"))
            .count();
        assert_eq!(kept, 0, "nothing was replaced");
    }

    #[tokio::test]
    async fn restore_refuses_a_database_in_use_and_keeps_the_replaced_one() {
        let dir = tempfile::tempdir().unwrap();
        let (pool, live) = database(dir.path(), "live.db").await;
        let out = dir.path().join("copy.db");
        backup(&pool, &out, false).await.unwrap();
        sqlx::query("INSERT INTO health_probe (id, checked_at) VALUES (1, 'after the backup')")
            .execute(&pool)
            .await
            .unwrap();
        let err = restore(&live, &out).await.unwrap_err();
        assert!(matches!(err, BackupError::InUse(_)), "{err}");
        pool.close().await;

        let restored = restore(&live, &out).await.unwrap();
        let kept = restored.kept.unwrap();
        assert!(kept.to_string_lossy().contains("live.db.before-restore-20"));
        assert_eq!(
            probes(&kept).await,
            1,
            "the replaced database, with its WAL"
        );
        assert_eq!(
            probes(&live).await,
            0,
            "the backup, without the later write"
        );
    }

    /// How many health probes the database at `path` holds.
    async fn probes(path: &Path) -> i64 {
        let pool = crate::db::open(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM health_probe")
            .fetch_one(&pool)
            .await
            .unwrap();
        pool.close().await;
        n
    }

    #[tokio::test]
    async fn scheduled_backups_rotate() {
        let dir = tempfile::tempdir().unwrap();
        let (pool, _) = database(dir.path(), "live.db").await;
        let backups = dir.path().join("backups");
        std::fs::create_dir_all(&backups).unwrap();
        std::fs::write(backups.join("keep-me.txt"), b"mine").unwrap();
        for h in 1..=4 {
            scheduled_backup(&pool, &backups, 2, at(h)).await.unwrap();
        }
        let mut names = listing(&backups).unwrap();
        names.sort();
        assert_eq!(
            names,
            vec![
                "keep-me.txt".to_owned(),
                scheduled_name(at(3)),
                scheduled_name(at(4))
            ]
        );
        assert_eq!(
            next_scheduled(&backups, chrono::Duration::hours(24), at(5)),
            at(4) + chrono::Duration::hours(24)
        );
    }

    /// Nobody can write to the database between the copy of it that is kept and the backup taking
    /// its place: a write then would be lost, or its WAL replayed onto the backup.
    #[tokio::test]
    async fn no_writer_gets_in_while_the_backup_is_put_in_place() {
        use std::sync::{
            atomic::{AtomicBool, Ordering},
            Arc,
        };
        let dir = tempfile::tempdir().unwrap();
        let (pool, live) = database(dir.path(), "live.db").await;
        let out = dir.path().join("copy.db");
        backup(&pool, &out, false).await.unwrap();
        pool.close().await;
        let wrote = Arc::new(AtomicBool::new(false));
        let (flag, path) = (wrote.clone(), live.clone());
        restore_with(&live, &out, move || async move {
            let attempt = async {
                let mut conn = SqliteConnectOptions::new()
                    .filename(&path)
                    .busy_timeout(Duration::from_millis(200))
                    .connect()
                    .await?;
                sqlx::query(
                    "INSERT OR REPLACE INTO health_probe (id, checked_at) VALUES (1, 'slipped in')",
                )
                .execute(&mut conn)
                .await?;
                conn.close().await
            }
            .await;
            flag.store(attempt.is_ok(), Ordering::SeqCst);
        })
        .await
        .unwrap();
        assert!(
            !wrote.load(Ordering::SeqCst),
            "a writer got in during the swap"
        );
        check(&live).await.unwrap();
        assert_eq!(probes(&live).await, 0, "the backup, as it was");
    }

    /// Backups, their folder and a restored database are private whatever the umask, and so is
    /// the copy of the database a restore keeps.
    #[cfg(unix)]
    #[tokio::test]
    async fn backups_their_folder_and_a_restored_database_are_private() {
        use crate::db::tests::{mode, permissive_umask};
        use std::os::unix::fs::PermissionsExt;
        permissive_umask();
        let dir = tempfile::tempdir().unwrap();
        let (pool, live) = database(dir.path(), "live.db").await;
        let folder = dir.path().join("backups/daily");
        let done = scheduled_backup(&pool, &folder, 2, at(1)).await.unwrap();
        assert_eq!(mode(&dir.path().join("backups")), 0o700);
        assert_eq!(mode(&folder), 0o700);
        assert_eq!(mode(&done.file), 0o600);
        let by_hand = dir.path().join("by-hand.db");
        backup(&pool, &by_hand, false).await.unwrap();
        assert_eq!(mode(&by_hand), 0o600);
        pool.close().await;

        // a backup someone made readable to all is still put back private
        std::fs::set_permissions(&by_hand, std::fs::Permissions::from_mode(0o644)).unwrap();
        let restored = restore(&live, &by_hand).await.unwrap();
        assert_eq!(mode(&live), 0o600);
        assert_eq!(mode(&restored.kept.unwrap()), 0o600);
    }
}

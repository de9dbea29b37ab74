//! The `backup` and `restore` commands and the scheduled backup task; the work itself is in
//! `integration::backup`.

use integration::{Db, Store};
use std::{path::Path, path::PathBuf, time::Duration};

use anyhow::Context;
use integration::{backup, db};

use crate::config::Config;

fn database_file(config: &Config) -> anyhow::Result<PathBuf> {
    anyhow::ensure!(
        !config.on_postgres(),
        "the console backs up and restores SQLite databases only; on PostgreSQL use pg_dump and \
         pg_restore (or the platform's backups), which work beside a running console"
    );
    config
        .database_file()
        .context("DATABASE_URL must name a database file to back up or restore")
}

/// `pinpoint-hibob backup --output FILE [--force]`: works beside a running console, which keeps
/// taking webhooks meanwhile.
pub async fn backup_command(
    config: &Config,
    output: &Path,
    force: bool,
) -> anyhow::Result<backup::Checked> {
    let file = database_file(config)?;
    anyhow::ensure!(file.is_file(), "no database at {}", file.display());
    let pool = db::open_existing(&config.database_url)
        .await
        .context("cannot open the database")?;
    let outcome = integration::sqlite::SqliteStore::new(pool.clone())
        .backups()
        .backup(output, force)
        .await;
    pool.close().await;
    Ok(outcome?)
}

/// `pinpoint-hibob restore --input FILE`, with the console stopped.
pub async fn restore_command(config: &Config, input: &Path) -> anyhow::Result<backup::Restored> {
    let file = database_file(config)?;
    Ok(backup::restore(&file, input).await?)
}

/// Scheduled backups: where, how often, how many are kept.
#[derive(Clone, Debug)]
pub struct Schedule {
    pub dir: PathBuf,
    pub interval: Duration,
    pub keep: usize,
}

impl Schedule {
    pub fn from_config(config: &Config) -> Option<Self> {
        config.backup_dir.clone().map(|dir| Self {
            dir,
            interval: Duration::from_secs(u64::from(config.backup_interval_hours) * 3600),
            keep: usize::try_from(config.backup_keep).unwrap_or(usize::MAX),
        })
    }
}

/// Takes scheduled backups until the process ends. A failed backup is logged and tried again at
/// the next interval; it never stops the console.
pub async fn run_schedule(db: Db, schedule: Schedule) {
    let interval = chrono::Duration::from_std(schedule.interval)
        .unwrap_or_else(|_| chrono::Duration::hours(24));
    loop {
        let now = chrono::Utc::now();
        let due = backup::next_scheduled(&schedule.dir, interval, now);
        let wait = (due - now).to_std().unwrap_or_default();
        tokio::time::sleep(wait).await;
        match db
            .backups()
            .scheduled_backup(&schedule.dir, schedule.keep, chrono::Utc::now())
            .await
        {
            Ok(done) => tracing::info!(
                file = %done.file.display(),
                checked = %done.checked,
                deleted = done.deleted.len(),
                "scheduled backup written and checked"
            ),
            Err(e) => {
                tracing::error!(error = %e, dir = %schedule.dir.display(), "scheduled backup failed");
                // not at once again: a full disk or a missing directory does not heal in a moment
                tokio::time::sleep(schedule.interval.min(Duration::from_secs(3600))).await;
            }
        }
    }
}

//! A throwaway PostgreSQL cluster for tests: one per test process, started on first use, on a
//! free loopback port, with durability off (fsync, full-page writes and synchronous commit), and
//! trusting every local connection as the superuser `postgres`. Each test gets a database of its
//! own, cloned from a migrated template, so tests neither share rows nor wait on each other. The
//! cluster's folder (`pinpoint-hibob-pg-<process id>-<n>`) is in memory, under /dev/shm, when
//! that has room, else under /tmp.
//!
//! The server binaries are Debian's (`/usr/lib/postgresql/<highest version>/bin`, from the
//! `postgresql` package) unless `PG_BIN` names another folder. initdb refuses to run as root, so
//! under root the cluster belongs to, and runs as, the `postgres` user (through `runuser`).
//!
//! Stopping: Rust runs no code when a test process ends, so a watchdog does it. It is a shell
//! started with the cluster, in a process group of its own (a Ctrl-C meant for the tests does not
//! reach it), that waits to read from a pipe whose other end only the test process holds. The
//! kernel closes that end when the process ends, however it ends (even by SIGKILL); the watchdog
//! then stops the server (`pg_ctl stop -m immediate`) and removes the cluster's folder. Folders left
//! by a watchdog that was itself killed are cleaned up by the next cluster started on the machine.

use std::{
    fmt,
    path::{Path, PathBuf},
    process::{ChildStdin, Command, Output, Stdio},
    sync::atomic::{AtomicUsize, Ordering},
    time::Duration,
};

use sqlx::{Connection, PgConnection};
use tokio::sync::{Mutex, OnceCell};

/// Why a test database could not be had.
#[derive(Clone)]
pub struct ClusterError(String);

impl fmt::Display for ClusterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "test PostgreSQL cluster: {}", self.0)
    }
}

/// As Display: tests `unwrap()` it, and the server log it may quote should read as lines.
impl fmt::Debug for ClusterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for ClusterError {}

impl From<sqlx::Error> for ClusterError {
    fn from(e: sqlx::Error) -> Self {
        Self(e.to_string())
    }
}

impl From<crate::OpenError> for ClusterError {
    fn from(e: crate::OpenError) -> Self {
        Self(e.to_string())
    }
}

/// A new, empty database with every migration applied, as
/// `postgres://postgres@127.0.0.1:<port>/<name>`.
pub async fn fresh_database() -> Result<String, ClusterError> {
    create_database(TEMPLATE).await
}

/// A new database without the migrations, for tests that migrate it themselves.
pub async fn empty_database() -> Result<String, ClusterError> {
    create_database("template0").await
}

/// The migrated database every fresh one is a copy of: a copy takes a fraction of the time the
/// migrations do.
const TEMPLATE: &str = "pinpoint_template";

/// The folders' names start with this, then the test process's id.
const FOLDER_PREFIX: &str = "pinpoint-hibob-pg-";

struct Cluster {
    port: u16,
    /// Held, never written, until the process ends: see the module's notes.
    _watchdog: ChildStdin,
}

static CLUSTER: OnceCell<Result<Cluster, ClusterError>> = OnceCell::const_new();
/// One copy at a time: a copy fails while another session uses its template, and the server
/// would finish two at once no sooner.
static CREATING: Mutex<()> = Mutex::const_new(());
static NEXT_DATABASE: AtomicUsize = AtomicUsize::new(0);

async fn create_database(template: &str) -> Result<String, ClusterError> {
    let port = cluster().await?;
    let _turn = CREATING.lock().await;
    let name = format!("test_{}", NEXT_DATABASE.fetch_add(1, Ordering::Relaxed));
    let mut admin = PgConnection::connect(&url(port, "postgres")).await?;
    sqlx::raw_sql(&format!("CREATE DATABASE {name} TEMPLATE {template}"))
        .execute(&mut admin)
        .await?;
    admin.close().await?;
    Ok(url(port, &name))
}

fn url(port: u16, database: &str) -> String {
    format!("postgres://postgres@127.0.0.1:{port}/{database}")
}

/// The cluster's port, starting it (and migrating the template) on first use.
async fn cluster() -> Result<u16, ClusterError> {
    let cluster = CLUSTER
        .get_or_init(|| async {
            let cluster = tokio::task::spawn_blocking(Cluster::start)
                .await
                .map_err(|e| ClusterError(format!("starting the cluster panicked: {e}")))??;
            wait_until_ready(cluster.port).await?;
            migrate_template(cluster.port).await?;
            Ok(cluster)
        })
        .await;
    cluster.as_ref().map(|c| c.port).map_err(Clone::clone)
}

async fn wait_until_ready(port: u16) -> Result<(), ClusterError> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match PgConnection::connect(&url(port, "postgres")).await {
            Ok(conn) => return Ok(conn.close().await?),
            Err(e) if tokio::time::Instant::now() >= deadline => {
                return Err(ClusterError(format!(
                    "the server on port {port} did not accept connections within 30 s: {e}"
                )))
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

async fn migrate_template(port: u16) -> Result<(), ClusterError> {
    let mut admin = PgConnection::connect(&url(port, "postgres")).await?;
    sqlx::raw_sql(&format!("CREATE DATABASE {TEMPLATE}"))
        .execute(&mut admin)
        .await?;
    crate::open(&url(port, TEMPLATE), 1).await?.close().await;
    // nobody may connect to it any more: a copy waits for the template's sessions to end
    sqlx::raw_sql(&format!(
        "ALTER DATABASE {TEMPLATE} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false"
    ))
    .execute(&mut admin)
    .await?;
    admin.close().await?;
    Ok(())
}

impl Cluster {
    fn start() -> Result<Cluster, ClusterError> {
        let bin = server_binaries()?;
        let as_postgres = running_as_root()?;
        let places = places(as_postgres);
        for place in &places {
            remove_abandoned(place, &bin, as_postgres);
        }
        let place = places
            .iter()
            .find(|place| roomy(place))
            .or(places.last())
            .ok_or_else(|| ClusterError("no folder for the cluster".into()))?;

        static STARTED: AtomicUsize = AtomicUsize::new(0);
        let base = place.join(format!(
            "{FOLDER_PREFIX}{}-{}",
            std::process::id(),
            STARTED.fetch_add(1, Ordering::Relaxed)
        ));
        // a folder of this name belonged to an earlier process with our id, so it is gone
        let _ = std::fs::remove_dir_all(&base);
        create_private_dir(&base)?;
        if as_postgres {
            run(Command::new("chown").arg("-R").arg("postgres:").arg(&base))?;
        }
        let data = base.join("data");
        let log = base.join("server.log");
        let watchdog = watchdog(&base, &bin, &data, as_postgres)?;

        run(server_command(&bin, "initdb", as_postgres, &base)
            .arg("--pgdata")
            .arg(&data)
            .args(["--username=postgres", "--auth=trust", "--encoding=UTF8"])
            .args(["--locale=C.UTF-8", "--no-sync", "--no-instructions"]))?;
        let settings = format!(
            "\n# a throwaway cluster for tests\n\
             listen_addresses = '127.0.0.1'\n\
             unix_socket_directories = '{}'\n\
             fsync = off\n\
             synchronous_commit = off\n\
             full_page_writes = off\n\
             max_connections = 200\n",
            data.display()
        );
        append(&data.join("postgresql.conf"), &settings)?;

        // A free port is found by binding to port 0 and letting go, so another process may take
        // it before the server binds it: then another port is tried.
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port()?;
            let started = server_command(&bin, "pg_ctl", as_postgres, &base)
                .args(["start", "--wait", "--timeout=60", "--silent", "--pgdata"])
                .arg(&data)
                .arg("--log")
                .arg(&log)
                .arg(format!("--options=-p {port}"))
                .output()
                .map_err(|e| ClusterError(format!("cannot run pg_ctl: {e}")))?;
            if started.status.success() {
                return Ok(Cluster {
                    port,
                    _watchdog: watchdog,
                });
            }
            last = format!("{}\n{}", failure("pg_ctl start", &started), tail(&log));
            if !last.contains("could not bind") && !last.contains("already in use") {
                break;
            }
        }
        Err(ClusterError(last))
    }
}

/// Where a cluster's folder may go, best first. Memory (/dev/shm) rather than disk: with files
/// on disk, creating each test's database (a copy of some 300 files) took about 300 ms here,
/// against 20 ms in memory, and a suite of many tests creates many.
fn places(as_postgres: bool) -> Vec<PathBuf> {
    let disk = if as_postgres {
        // TMPDIR may be inside root's home, which the postgres user cannot enter
        PathBuf::from("/tmp")
    } else {
        std::env::temp_dir()
    };
    vec![PathBuf::from("/dev/shm"), disk]
}

/// Whether `dir` is a folder with room for a cluster and its test databases (a container's
/// /dev/shm often has 64 MB).
fn roomy(dir: &Path) -> bool {
    const NEEDED_KB: u64 = 1 << 20;
    if !dir.is_dir() {
        return false;
    }
    // POSIX df: a header, then "filesystem blocks used available capacity mount" in KB
    let Ok(out) = Command::new("df").arg("-Pk").arg(dir).output() else {
        return false;
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .and_then(|line| line.split_whitespace().nth(3))
        .and_then(|available| available.parse::<u64>().ok())
        .is_some_and(|available| out.status.success() && available >= NEEDED_KB)
}

/// Starts the watchdog (see the module's notes) and returns the end of its pipe to hold.
fn watchdog(
    base: &Path,
    bin: &Path,
    data: &Path,
    as_postgres: bool,
) -> Result<ChildStdin, ClusterError> {
    use std::os::unix::process::CommandExt;
    let mut stop: Vec<PathBuf> = Vec::new();
    if as_postgres {
        stop.extend(["runuser", "-u", "postgres", "--"].map(PathBuf::from));
    }
    stop.push(bin.join("pg_ctl"));
    stop.extend(["stop", "--mode=immediate", "--wait", "--pgdata"].map(PathBuf::from));
    stop.push(data.to_owned());
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(r#"base=$1; shift; read -r _ || :; "$@" >/dev/null 2>&1; rm -rf "$base""#)
        .arg("pinpoint-hibob-pg-watchdog")
        .arg(base)
        .args(&stop)
        .current_dir("/")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| ClusterError(format!("cannot start the watchdog shell: {e}")))?;
    child
        .stdin
        .take()
        .ok_or_else(|| ClusterError("the watchdog shell has no stdin".into()))
}

/// Stops and removes the clusters of test processes that are gone, in case their watchdog was
/// killed too. Best effort: a folder that cannot be removed is left.
fn remove_abandoned(place: &Path, bin: &Path, as_postgres: bool) {
    let Ok(entries) = std::fs::read_dir(place) else {
        return;
    };
    if !Path::new("/proc/self").exists() {
        return;
    }
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(FOLDER_PREFIX))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let base = entry.path();
        let data = base.join("data");
        if data.join("postmaster.pid").exists() {
            let _ = server_command(bin, "pg_ctl", as_postgres, place)
                .args(["stop", "--mode=immediate", "--wait", "--silent", "--pgdata"])
                .arg(&data)
                .output();
        }
        let _ = std::fs::remove_dir_all(&base);
    }
}

/// The folder holding initdb, pg_ctl and postgres: `PG_BIN`, or the highest version under
/// /usr/lib/postgresql.
fn server_binaries() -> Result<PathBuf, ClusterError> {
    if let Some(bin) = std::env::var_os("PG_BIN") {
        let bin = PathBuf::from(bin);
        if !bin.join("initdb").exists() {
            return Err(ClusterError(format!(
                "PG_BIN is {}, which holds no initdb",
                bin.display()
            )));
        }
        return Ok(bin);
    }
    let root = Path::new("/usr/lib/postgresql");
    let newest = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let version: Vec<u32> = name
                .split('.')
                .map(str::parse)
                .collect::<Result<_, _>>()
                .ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .max();
    newest.map(|(_, bin)| bin).ok_or_else(|| {
        ClusterError(
            "no PostgreSQL server under /usr/lib/postgresql/<version>/bin: install Debian's \
             postgresql package (scripts/setup.sh does), or set PG_BIN to the folder holding \
             initdb, pg_ctl and postgres"
                .into(),
        )
    })
}

fn running_as_root() -> Result<bool, ClusterError> {
    let out = Command::new("id")
        .arg("-u")
        .output()
        .map_err(|e| ClusterError(format!("cannot run id -u: {e}")))?;
    Ok(String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// `program` from the server's folder, as the postgres user when running as root, from `dir`
/// (a folder that user may enter: the test's own working directory may not be one).
fn server_command(bin: &Path, program: &str, as_postgres: bool, dir: &Path) -> Command {
    let mut command = if as_postgres {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin.join(program));
        c
    } else {
        Command::new(bin.join(program))
    };
    command.current_dir(dir).stdin(Stdio::null());
    command
}

fn run(command: &mut Command) -> Result<(), ClusterError> {
    let shown = std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|part| part.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ");
    let out = command
        .output()
        .map_err(|e| ClusterError(format!("cannot run {shown}: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(ClusterError(failure(&shown, &out)))
    }
}

fn failure(what: &str, out: &Output) -> String {
    format!(
        "{what} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The end of the server's log, which says why it did not start.
fn tail(log: &Path) -> String {
    match std::fs::read_to_string(log) {
        Ok(text) => {
            let lines: Vec<&str> = text.lines().collect();
            let from = lines.len().saturating_sub(20);
            format!(
                "server log {}:\n{}",
                log.display(),
                lines[from..].join("\n")
            )
        }
        Err(e) => format!("no server log at {}: {e}", log.display()),
    }
}

fn free_port() -> Result<u16, ClusterError> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|e| ClusterError(format!("cannot find a free port: {e}")))
}

fn create_private_dir(dir: &Path) -> Result<(), ClusterError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(dir)
        .map_err(|e| ClusterError(format!("cannot create {}: {e}", dir.display())))
}

fn append(file: &Path, text: &str) -> Result<(), ClusterError> {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .append(true)
        .open(file)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| ClusterError(format!("cannot write {}: {e}", file.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn each_fresh_database_is_a_migrated_one_of_its_own() {
        let first = fresh_database().await.unwrap();
        let second = fresh_database().await.unwrap();
        assert_ne!(first, second);
        let mut a = PgConnection::connect(&first).await.unwrap();
        let mut b = PgConnection::connect(&second).await.unwrap();
        for conn in [&mut a, &mut b] {
            let migrated: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
                .fetch_one(&mut *conn)
                .await
                .unwrap();
            assert_eq!(migrated, crate::MIGRATOR.iter().count() as i64);
        }
        sqlx::query("INSERT INTO health_probe (id, checked_at) VALUES (1, now_text())")
            .execute(&mut a)
            .await
            .unwrap();
        let in_b: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM health_probe")
            .fetch_one(&mut b)
            .await
            .unwrap();
        let in_a: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM health_probe")
            .fetch_one(&mut a)
            .await
            .unwrap();
        assert_eq!((in_a, in_b), (1, 0));
    }

    #[tokio::test]
    async fn an_empty_database_has_no_tables() {
        let url = empty_database().await.unwrap();
        let mut conn = PgConnection::connect(&url).await.unwrap();
        let tables: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap();
        assert_eq!(tables, 0);
    }

    #[tokio::test]
    async fn the_cluster_listens_on_loopback_with_durability_off() {
        let url = empty_database().await.unwrap();
        let mut conn = PgConnection::connect(&url).await.unwrap();
        let settings: Vec<(String, String)> = sqlx::query_as(
            "SELECT name, setting FROM pg_settings
             WHERE name IN ('listen_addresses', 'fsync', 'synchronous_commit',
                            'full_page_writes', 'max_connections')
             ORDER BY name",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap();
        let settings: Vec<(&str, &str)> = settings
            .iter()
            .map(|(n, s)| (n.as_str(), s.as_str()))
            .collect();
        assert_eq!(
            settings,
            [
                ("fsync", "off"),
                ("full_page_writes", "off"),
                ("listen_addresses", "127.0.0.1"),
                ("max_connections", "200"),
                ("synchronous_commit", "off"),
            ]
        );
    }
}

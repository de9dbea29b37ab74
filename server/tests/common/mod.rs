//! A real console on a loopback port with its own SQLite file, for integration tests, and what
//! the tests share around it: Pinpoint's webhook (`webhook`), fakes of the services the console
//! calls (`fakes`), and the real binary as a child process (`process`).

pub mod fakes;
pub mod process;
pub use store_postgres::test_sql as sql;
pub mod webhook;

use clap::Parser;
use serde_json::Value;
use server::{config::Cli, startup};

pub const ADMIN_EMAIL: &str = "admin@example.com";
pub const ADMIN_PASSWORD: &str = "admin password 123";
pub const SECRET_KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

/// Whether this run of the tests puts the console on PostgreSQL (`TEST_DATABASE=postgres`)
/// rather than on SQLite. The suite runs once per engine; a test about what only one engine
/// has (a database file, its backups) says so and returns early on the other.
pub fn on_postgres() -> bool {
    std::env::var("TEST_DATABASE").is_ok_and(|v| v == "postgres")
}

pub struct TestApp {
    pub base: String,
    /// `DATABASE_URL` as the console was given it.
    pub database_url: String,
    /// The tests' own statements, on whichever engine the console runs.
    pub sql: sql::Sql,
    /// The console's store, for what a test reads or sets up through the domains.
    pub db: integration::Db,
    pub dir: tempfile::TempDir,
    /// The export worker, not running: tests drive it with `run_once`.
    pub worker: server::worker::Worker,
    /// The change notices the console's event stream serves.
    pub changes: integration::live::Changes,
    /// The watch of exported hires, not running: tests drive it with `adopt` and `check`.
    pub watcher: integration::watch::check::Watcher,
    /// Whether this console leads the jobs that run once per database.
    pub leadership: integration::peers::leader::Leadership,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with::<&str>(&[]).await
    }

    /// A console with `extra` command-line arguments, which replace the defaults they name.
    pub async fn spawn_with<S: AsRef<str>>(extra: &[S]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = if on_postgres() {
            store_postgres::testing::fresh_database()
                .await
                .expect("a PostgreSQL database")
        } else {
            format!("sqlite://{}/console.db", dir.path().display())
        };
        Self::spawn_with_database(dir, &db, extra).await
    }

    /// A console whose database is `db` (which may lie outside `dir`, e.g. on a small file
    /// system the test mounted).
    pub async fn spawn_with_database<S: AsRef<str>>(
        dir: tempfile::TempDir,
        db: &str,
        extra: &[S],
    ) -> Self {
        Self::spawn_opened(dir, db, extra, None).await
    }

    /// Another console on `first`'s PostgreSQL database, as a second instance serving it: its
    /// own pool, relay and leader election, and `extra` arguments.
    pub async fn spawn_beside<S: AsRef<str>>(first: &TestApp, extra: &[S]) -> Self {
        let pool = store_postgres::open(&first.database_url, 5)
            .await
            .expect("the first console's database");
        // without the one-console lock the first console holds
        let database = startup::Database {
            db: store_postgres::PgStore::db(pool.clone()),
            pool: startup::Pool::Postgres(pool),
        };
        let dir = tempfile::tempdir().expect("tempdir");
        Self::spawn_opened(dir, &first.database_url, extra, Some(database)).await
    }

    /// A console on `db`, opened by start-up unless `opened` is given.
    async fn spawn_opened<S: AsRef<str>>(
        dir: tempfile::TempDir,
        db: &str,
        extra: &[S],
        opened: Option<startup::Database>,
    ) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let config = console_config(db, &listener, extra);
        startup::init_tracing(config.log_format);
        let built = match opened {
            Some(database) => startup::build_on(&config, database).await,
            None => startup::build(&config).await,
        };
        let startup::Built {
            state,
            router,
            worker,
            database,
            ..
        } = built.expect("console");
        let sql = match database.pool {
            startup::Pool::Sqlite(pool) => sql::Sql::Sqlite(pool),
            startup::Pool::Postgres(pool) => sql::Sql::Postgres(pool),
        };
        serve(listener, router, &config);
        Self {
            base: format!("http://{addr}"),
            database_url: db.to_owned(),
            sql,
            db: state.db,
            dir,
            worker,
            changes: state.changes,
            watcher: state.watcher,
            leadership: state.leadership,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A browser-like client: keeps cookies, does not follow redirects.
    pub fn client() -> reqwest::Client {
        reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client")
    }

    pub async fn call(
        &self,
        client: &reqwest::Client,
        endpoint: &str,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        client
            .post(self.url(&format!("/api/{endpoint}")))
            .header("Sec-Fetch-Site", "same-origin")
            .form(form)
            .send()
            .await
            .expect("request")
    }

    pub async fn login(
        &self,
        client: &reqwest::Client,
        email: &str,
        password: &str,
    ) -> reqwest::Response {
        self.call(client, "login", &[("email", email), ("password", password)])
            .await
    }

    pub async fn admin(&self) -> reqwest::Client {
        let c = Self::client();
        let res = self.login(&c, ADMIN_EMAIL, ADMIN_PASSWORD).await;
        assert!(
            res.status().is_success() || res.status().is_redirection(),
            "{}",
            res.status()
        );
        c
    }

    /// Signs in as a new user with the given role, created by the admin.
    pub async fn user_with_role(&self, role: &str) -> reqwest::Client {
        let admin = self.admin().await;
        let email = format!("{role}@example.com");
        let password = format!("{role} password 123");
        let res = self
            .call(
                &admin,
                "add_user",
                &[("email", &email), ("role", role), ("password", &password)],
            )
            .await;
        assert_ok(res).await;
        let c = Self::client();
        let res = self.login(&c, &email, &password).await;
        assert!(res.status().is_success() || res.status().is_redirection());
        c
    }

    pub async fn whoami(&self, client: &reqwest::Client) -> Value {
        let res = self.call(client, "whoami", &[]).await;
        assert_eq!(res.status(), 200);
        res.json().await.expect("json")
    }

    /// Calls server function `endpoint`, which must answer 200; its JSON.
    pub async fn call_json(
        &self,
        client: &reqwest::Client,
        endpoint: &str,
        form: &[(&str, &str)],
    ) -> Value {
        json_of(self.call(client, endpoint, form).await).await
    }

    /// Loads page `path` as `client`, which must be let in; its HTML.
    pub async fn page(&self, client: &reqwest::Client, path: &str) -> String {
        assert_ok(client.get(self.url(path)).send().await.expect("request")).await
    }

    /// Everything the database holds, as bytes to search for a trace of someone: on SQLite the
    /// database file and its WAL (free pages included) after a checkpoint; on PostgreSQL every
    /// row of every table as text (PostgreSQL's files are the server's; dead row versions stay
    /// in them until VACUUM, as the README says).
    pub async fn stored_bytes(&self) -> Vec<u8> {
        if self.sql.is_sqlite() {
            self.sql
                .execute("PRAGMA wal_checkpoint(TRUNCATE)", &[])
                .await;
            let mut bytes = Vec::new();
            for name in ["console.db", "console.db-wal"] {
                if let Ok(b) = std::fs::read(self.dir.path().join(name)) {
                    bytes.extend(b);
                }
            }
            return bytes;
        }
        let tables: Vec<String> = self
            .sql
            .scalars(
                "SELECT table_schema || '.' || table_name FROM information_schema.tables
                 WHERE table_schema IN ('public', 'tower_sessions') AND table_type = 'BASE TABLE'",
                &[],
            )
            .await;
        let mut bytes = Vec::new();
        for table in tables {
            let rows: Vec<String> = self
                .sql
                .scalars(&format!("SELECT t::text FROM {table} t"), &[])
                .await;
            for row in rows {
                bytes.extend(row.into_bytes());
                bytes.push(b'\n');
            }
        }
        bytes
    }

    /// How many bytes the database takes: its files on SQLite, its size on PostgreSQL.
    pub async fn stored_size(&self) -> u64 {
        if self.sql.is_sqlite() {
            return std::fs::read_dir(self.dir.path())
                .expect("data dir")
                .filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with("console.db"))
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum();
        }
        let size = self
            .scalar("SELECT pg_database_size(current_database())")
            .await;
        u64::try_from(size).unwrap_or(0)
    }

    /// The sessions' table: SQLite's session store names it itself, PostgreSQL's is ours.
    pub fn sessions_table(&self) -> &'static str {
        if self.sql.is_sqlite() {
            "tower_sessions"
        } else {
            "tower_sessions.session"
        }
    }

    /// The current time as the database stores times.
    pub fn now_sql(&self) -> &'static str {
        if self.sql.is_sqlite() {
            "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
        } else {
            "now_text()"
        }
    }

    /// The number `sql` selects, such as a count.
    pub async fn scalar(&self, sql: &str) -> i64 {
        self.sql.scalar(sql, &[]).await
    }
}

/// Fails unless `res` is a 200, showing what came instead; the body.
/// Serves `router` on `listener` until the test ends, with the binary's own connection handling
/// and its limits.
pub fn serve(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    config: &server::config::Config,
) {
    let limits = server::serving::ConnectionLimits::from_config(config);
    tokio::spawn(server::serving::serve(
        listener,
        router,
        limits,
        std::future::pending(),
    ));
}

/// The configuration of a test's console on `db`, serving on `listener`, with `extra`
/// command-line arguments, which replace the defaults they name.
pub fn console_config<S: AsRef<str>>(
    db: &str,
    listener: &tokio::net::TcpListener,
    extra: &[S],
) -> server::config::Config {
    let site = listener.local_addr().expect("addr").to_string();
    let defaults = [
        ("--database-url", db),
        ("--site-addr", &site),
        ("--secret-key", SECRET_KEY),
        ("--admin-email", ADMIN_EMAIL),
        ("--admin-password", ADMIN_PASSWORD),
        // a console without credentials would otherwise simulate Pinpoint and HiBob
        ("--sandbox", "off"),
    ];
    let args = std::iter::once("pinpoint-hibob".to_owned()).chain(arguments(&defaults, extra));
    Cli::try_parse_from(args).expect("config").config
}

pub async fn assert_ok(res: reqwest::Response) -> String {
    let (status, url) = (res.status(), res.url().clone());
    let text = res.text().await.expect("body");
    assert_eq!(status, 200, "{url}: {text}");
    text
}

/// The JSON of an answer that must be a 200.
pub async fn json_of(res: reqwest::Response) -> Value {
    let text = assert_ok(res).await;
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
}

/// The message of a JSON error answer, `{"error": {"message": …, "request_id": …}}`.
pub fn error_message(answer: &Value) -> &str {
    answer["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("not an error answer: {answer}"))
}

/// Command-line arguments: `defaults` (flag, value) less those `extra` names, then `extra`. The
/// console refuses a flag given twice, so a test's own value must replace the default.
pub fn arguments<S: AsRef<str>>(defaults: &[(&str, &str)], extra: &[S]) -> Vec<String> {
    let named = |flag: &str| extra.iter().any(|a| a.as_ref() == flag);
    defaults
        .iter()
        .filter(|(flag, _)| !named(flag))
        .flat_map(|(flag, value)| [(*flag).to_owned(), (*value).to_owned()])
        .chain(extra.iter().map(|a| a.as_ref().to_owned()))
        .collect()
}

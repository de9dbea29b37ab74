//! Both engines, fresh and migrated, with a way to seed and read rows on each.

use integration::sqlite::SqliteStore;
use store_postgres::{test_sql::Sql, testing, PgStore};

/// A fresh store on each engine.
pub struct Both {
    pub sqlite: SqliteStore,
    pub pg: PgStore,
    /// Statements a test runs on each engine (seeding rows no trait writes, reading back).
    pub sqlite_sql: Sql,
    pub pg_sql: Sql,
    _dir: tempfile::TempDir,
}

impl Both {
    pub async fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}/conformance.db", dir.path().display());
        let sqlite_pool = integration::db::open(&url).await.expect("sqlite");
        let pg_url = testing::fresh_database()
            .await
            .expect("a PostgreSQL database");
        let pg_pool = store_postgres::open(&pg_url, 8).await.expect("postgres");
        Self {
            sqlite: SqliteStore::new(sqlite_pool.clone()),
            pg: PgStore::new(pg_pool.clone()),
            sqlite_sql: Sql::Sqlite(sqlite_pool),
            pg_sql: Sql::Postgres(pg_pool),
            _dir: dir,
        }
    }

    /// Each engine's name, store and statements, to run one test's steps on both.
    pub fn each(&self) -> [(&'static str, Engine<'_>); 2] {
        [
            (
                "sqlite",
                Engine {
                    sqlite: Some(&self.sqlite),
                    pg: None,
                    sql: &self.sqlite_sql,
                },
            ),
            (
                "postgres",
                Engine {
                    sqlite: None,
                    pg: Some(&self.pg),
                    sql: &self.pg_sql,
                },
            ),
        ]
    }
}

/// One engine of [`Both`]: a test takes the domain trait it needs from it with [`Engine::face`].
pub struct Engine<'a> {
    sqlite: Option<&'a SqliteStore>,
    pg: Option<&'a PgStore>,
    pub sql: &'a Sql,
}

impl<'a> Engine<'a> {
    /// This engine's store as the domain trait `F`, e.g.
    /// `e.face(|s| s as &dyn ExportQueue, |p| p as &dyn ExportQueue)`.
    pub fn face<F: ?Sized>(
        &self,
        sqlite: impl FnOnce(&'a SqliteStore) -> &'a F,
        pg: impl FnOnce(&'a PgStore) -> &'a F,
    ) -> &'a F {
        match (self.sqlite, self.pg) {
            (Some(s), _) => sqlite(s),
            (_, Some(p)) => pg(p),
            (None, None) => unreachable!("an engine is one or the other"),
        }
    }
}

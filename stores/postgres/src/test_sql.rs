//! SQL a test runs against the console's own database, on whichever engine it runs: the same
//! statement text (with `?` placeholders, numbered for PostgreSQL), the same Rust types back.
//! A failing statement fails the test, naming the statement. For tests only (the `testing`
//! feature): statements here are not checked at compile time.

use sqlx::{postgres::PgRow, sqlite::SqliteRow, FromRow, PgPool, Postgres, Sqlite, SqlitePool};

/// A value bound to a `?` placeholder.
#[derive(Debug, Clone)]
pub enum Bind {
    Int(i64),
    Text(String),
    Flag(bool),
    Null,
}

impl From<i64> for Bind {
    fn from(v: i64) -> Self {
        Self::Int(v)
    }
}
impl From<bool> for Bind {
    fn from(v: bool) -> Self {
        Self::Flag(v)
    }
}
impl From<&str> for Bind {
    fn from(v: &str) -> Self {
        Self::Text(v.to_owned())
    }
}
impl From<String> for Bind {
    fn from(v: String) -> Self {
        Self::Text(v)
    }
}
impl From<&String> for Bind {
    fn from(v: &String) -> Self {
        Self::Text(v.clone())
    }
}
impl From<&&str> for Bind {
    fn from(v: &&str) -> Self {
        Self::Text((*v).to_owned())
    }
}
impl From<&i64> for Bind {
    fn from(v: &i64) -> Self {
        Self::Int(*v)
    }
}
impl From<&Option<String>> for Bind {
    fn from(v: &Option<String>) -> Self {
        v.clone().into()
    }
}
impl<T: Into<Bind>> From<Option<T>> for Bind {
    fn from(v: Option<T>) -> Self {
        v.map_or(Self::Null, Into::into)
    }
}

/// What a column decodes to on both engines.
pub trait Column:
    for<'r> sqlx::Decode<'r, Sqlite>
    + sqlx::Type<Sqlite>
    + for<'r> sqlx::Decode<'r, Postgres>
    + sqlx::Type<Postgres>
    + Send
    + Unpin
{
}
impl<T> Column for T where
    T: for<'r> sqlx::Decode<'r, Sqlite>
        + sqlx::Type<Sqlite>
        + for<'r> sqlx::Decode<'r, Postgres>
        + sqlx::Type<Postgres>
        + Send
        + Unpin
{
}

/// What a row decodes to on both engines (a tuple of [`Column`]s).
pub trait Row: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin {}
impl<T> Row for T where T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin
{}

#[derive(Debug, Clone)]
pub enum Sql {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// `?` and `?N` placeholders as PostgreSQL's `$1`, `$2`, … (the tests' statements have no `?`
/// in text).
fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '?' {
            out.push(c);
        } else if chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('$');
        } else {
            n += 1;
            out.push_str(&format!("${n}"));
        }
    }
    out
}

macro_rules! bind_all {
    ($q:expr, $binds:expr) => {{
        let mut q = $q;
        for b in $binds {
            q = match b {
                Bind::Int(v) => q.bind(*v),
                Bind::Text(v) => q.bind(v.clone()),
                Bind::Flag(v) => q.bind(*v),
                Bind::Null => q.bind(None::<String>),
            };
        }
        q
    }};
}

impl Sql {
    pub fn is_sqlite(&self) -> bool {
        matches!(self, Self::Sqlite(_))
    }

    /// Closes the pool: everyone holding it (a console) loses the database, as when it stops.
    pub async fn close(&self) {
        match self {
            Self::Sqlite(p) => p.close().await,
            Self::Postgres(p) => p.close().await,
        }
    }

    /// Runs a statement; the rows it changed.
    pub async fn execute(&self, sql: &str, binds: &[Bind]) -> u64 {
        let pg = numbered(sql);
        let done = match self {
            Self::Sqlite(p) => bind_all!(sqlx::query(sql), binds)
                .execute(p)
                .await
                .map(|r| r.rows_affected()),
            Self::Postgres(p) => bind_all!(sqlx::query(&pg), binds)
                .execute(p)
                .await
                .map(|r| r.rows_affected()),
        };
        done.unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Runs statements in one transaction, as a test's seed of many rows.
    pub async fn batch(&self, statements: &[(&str, Vec<Bind>)]) {
        let done = match self {
            Self::Sqlite(p) => {
                async {
                    let mut tx = p.begin().await?;
                    for (sql, binds) in statements {
                        bind_all!(sqlx::query(sql), binds).execute(&mut *tx).await?;
                    }
                    tx.commit().await
                }
                .await
            }
            Self::Postgres(p) => {
                async {
                    let mut tx = p.begin().await?;
                    for (sql, binds) in statements {
                        let pg = numbered(sql);
                        bind_all!(sqlx::query(&pg), binds).execute(&mut *tx).await?;
                    }
                    tx.commit().await
                }
                .await
            }
        };
        done.unwrap_or_else(|e| panic!("a batch of {} statements: {e}", statements.len()));
    }

    /// The one value one row holds.
    pub async fn scalar<T: Column>(&self, sql: &str, binds: &[Bind]) -> T {
        self.scalar_opt(sql, binds)
            .await
            .unwrap_or_else(|| panic!("{sql}: no row"))
    }

    /// The value of the first row, if there is one.
    pub async fn scalar_opt<T: Column>(&self, sql: &str, binds: &[Bind]) -> Option<T> {
        let pg = numbered(sql);
        let got = match self {
            Self::Sqlite(p) => {
                bind_all!(sqlx::query_scalar::<Sqlite, T>(sql), binds)
                    .fetch_optional(p)
                    .await
            }
            Self::Postgres(p) => {
                bind_all!(sqlx::query_scalar::<Postgres, T>(&pg), binds)
                    .fetch_optional(p)
                    .await
            }
        };
        got.unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// The first value of every row.
    pub async fn scalars<T: Column>(&self, sql: &str, binds: &[Bind]) -> Vec<T> {
        let pg = numbered(sql);
        let got = match self {
            Self::Sqlite(p) => {
                bind_all!(sqlx::query_scalar::<Sqlite, T>(sql), binds)
                    .fetch_all(p)
                    .await
            }
            Self::Postgres(p) => {
                bind_all!(sqlx::query_scalar::<Postgres, T>(&pg), binds)
                    .fetch_all(p)
                    .await
            }
        };
        got.unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// The one row a statement selects.
    pub async fn row<R: Row>(&self, sql: &str, binds: &[Bind]) -> R {
        self.rows(sql, binds)
            .await
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("{sql}: no row"))
    }

    /// Every row a statement selects.
    pub async fn rows<R: Row>(&self, sql: &str, binds: &[Bind]) -> Vec<R> {
        let pg = numbered(sql);
        let got = match self {
            Self::Sqlite(p) => {
                bind_all!(sqlx::query_as::<Sqlite, R>(sql), binds)
                    .fetch_all(p)
                    .await
            }
            Self::Postgres(p) => {
                bind_all!(sqlx::query_as::<Postgres, R>(&pg), binds)
                    .fetch_all(p)
                    .await
            }
        };
        got.unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}

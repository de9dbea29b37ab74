//! `migrate-db`: copies a console's SQLite database into an empty PostgreSQL one, in one
//! transaction, keeping every id.
//!
//! The copy is driven by the PostgreSQL schema's own catalogue rather than by a statement per
//! table: the two schemas are kept equal by `tests/schema.rs`, so reading the column list from
//! the target means a column added later is copied without anyone remembering to. The table and
//! column names come from the catalogue, never from input, and every value is sent as COPY data.

use std::{collections::BTreeMap, path::PathBuf};

use futures_util::TryStreamExt;
use integration::{backup, db};
use sqlx::{sqlite::SqliteRow, Connection, PgConnection, PgPool, Row, SqliteConnection};

/// What is never copied: sqlx's own bookkeeping, the counts the status trigger rebuilds as the
/// exports arrive, and sessions (people sign in again after a move). Nor is any table only
/// PostgreSQL has (the console processes sharing it, the limits they keep together): SQLite holds
/// nothing for them, and only tables the source has are copied.
const NOT_COPIED: [&str; 3] = ["_sqlx_migrations", "export_status_counts", "health_probe"];

/// Rows per chunk sent to COPY: bounds the memory a large table needs.
const CHUNK_BYTES: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("the SQLite database {0} does not exist")]
    NoSource(String),
    #[error("the SQLite database {0} is in use (is the console running?); stop it before moving its database")]
    SourceInUse(PathBuf),
    #[error("cannot read the SQLite database: {0}")]
    Source(String),
    #[error(
        "the PostgreSQL database is not empty ({0}); migrate-db only copies into a new database"
    )]
    TargetNotEmpty(String),
    #[error("cannot open the PostgreSQL database: {0}")]
    Target(#[from] crate::OpenError),
    #[error("another console or migrate-db is using the PostgreSQL database")]
    TargetInUse,
    #[error("column {table}.{column} has type {kind}, which the copy does not know")]
    UnknownType {
        table: String,
        column: String,
        kind: String,
    },
    #[error("{table}.{column} of row {row} cannot be read as {kind}: {reason}")]
    BadValue {
        table: String,
        column: String,
        row: u64,
        kind: &'static str,
        reason: String,
    },
    #[error("after the copy, {table} has {copied} rows on PostgreSQL but {source_rows} on SQLite; nothing was kept")]
    CountMismatch {
        table: String,
        copied: i64,
        source_rows: i64,
    },
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
}

/// What was copied: rows per table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Copied {
    pub tables: BTreeMap<String, i64>,
}

impl Copied {
    pub fn rows(&self) -> i64 {
        self.tables.values().sum()
    }
}

impl std::fmt::Display for Copied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let listed: Vec<String> = self
            .tables
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(t, n)| format!("{t} {n}"))
            .collect();
        write!(f, "{} rows ({})", self.rows(), listed.join(", "))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Int,
    Flag,
    Text,
    Real,
}

#[derive(Debug)]
struct Column {
    name: String,
    kind: Kind,
}

#[derive(Debug)]
struct Table {
    name: String,
    columns: Vec<Column>,
    /// The identity column whose sequence must continue after the copied ids.
    identity: Option<String>,
}

/// Copies the SQLite database at `from` (a `sqlite://` URL) into the PostgreSQL database at
/// `to`, which must be empty (as a fresh migrate leaves it). The source is brought up to the
/// current schema first, then locked so no console can write to it during the copy; the target
/// is written in one transaction that commits only once every table's count matches.
pub async fn copy(from: &str, to: &str) -> Result<Copied, CopyError> {
    let file = source_file(from)?;
    // the source must have the current schema, as the target does
    db::open(from)
        .await
        .map_err(|e| CopyError::Source(e.to_string()))?
        .close()
        .await;
    let mut source = backup::lock_exclusively(&file).await.map_err(|e| match e {
        backup::BackupError::InUse(path) => CopyError::SourceInUse(path),
        other => CopyError::Source(other.to_string()),
    })?;
    let pool = crate::open(to, 2).await?;
    let copied = copy_locked(&mut source, &pool).await;
    let _ = source.close().await;
    pool.close().await;
    copied
}

fn source_file(url: &str) -> Result<PathBuf, CopyError> {
    let path = db::file_of(url).ok_or_else(|| {
        CopyError::Source(format!(
            "--from must be a sqlite:// URL of a file, not {url:?}"
        ))
    })?;
    if !path.is_file() {
        return Err(CopyError::NoSource(path.display().to_string()));
    }
    Ok(path)
}

async fn copy_locked(source: &mut SqliteConnection, pool: &PgPool) -> Result<Copied, CopyError> {
    let mut conn = pool.acquire().await?;
    let tables = tables(&mut conn, source).await?;
    let mut tx = conn.begin().await?;
    // a console starting on this database meanwhile waits for the copy rather than seeing half
    if !crate::instance::try_lock_in(&mut tx).await? {
        return Err(CopyError::TargetInUse);
    }
    refuse_unless_empty(&mut tx, &tables).await?;
    // a large table takes longer than the console's statement timeout allows one statement
    sqlx::query("SET LOCAL statement_timeout = 0")
        .execute(&mut *tx)
        .await?;
    // the status counts are rebuilt once at the end rather than row by row as exports arrive
    // (ALTER TABLE is transactional: a failed copy leaves the trigger on)
    sqlx::query("ALTER TABLE exports DISABLE TRIGGER exports_count_insert")
        .execute(&mut *tx)
        .await?;
    // the baseline's mapping version 1 makes way for the source's own versions (TRUNCATE, as
    // the versions refuse deletes; the tables referring to them are empty, as just checked)
    sqlx::query("TRUNCATE mapping_versions, export_status_counts CASCADE")
        .execute(&mut *tx)
        .await?;
    let mut copied = Copied::default();
    for table in &tables {
        let n = copy_table(source, &mut tx, table).await?;
        let source_rows: i64 =
            sqlx::query_scalar(&format!("SELECT COUNT(*) FROM \"{}\"", table.name))
                .fetch_one(&mut *source)
                .await?;
        let target_rows: i64 =
            sqlx::query_scalar(&format!("SELECT COUNT(*) FROM \"{}\"", table.name))
                .fetch_one(&mut *tx)
                .await?;
        if n != source_rows || target_rows != source_rows {
            return Err(CopyError::CountMismatch {
                table: table.name.clone(),
                copied: target_rows,
                source_rows,
            });
        }
        if let Some(column) = &table.identity {
            // the next id continues after the copied ones, as SQLite's would
            sqlx::query(&format!(
                "SELECT setval(pg_get_serial_sequence('\"{t}\"', '{column}'), \
                 GREATEST(MAX(\"{column}\"), 1), MAX(\"{column}\") IS NOT NULL) FROM \"{t}\"",
                t = table.name
            ))
            .execute(&mut *tx)
            .await?;
        }
        copied.tables.insert(table.name.clone(), n);
    }
    sqlx::query(
        "INSERT INTO export_status_counts (status, n)
         SELECT status, COUNT(*) FROM exports GROUP BY status ORDER BY status",
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query("ALTER TABLE exports ENABLE TRIGGER exports_count_insert")
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(copied)
}

/// The target's tables the source has too, parents before the tables that refer to them.
async fn tables(
    conn: &mut PgConnection,
    source: &mut SqliteConnection,
) -> Result<Vec<Table>, CopyError> {
    let in_source: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'")
            .fetch_all(&mut *source)
            .await?;
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables
         WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY table_name",
    )
    .fetch_all(&mut *conn)
    .await?;
    let names: Vec<String> = names
        .into_iter()
        .filter(|n| !NOT_COPIED.contains(&n.as_str()) && in_source.contains(n))
        .collect();
    let refs: Vec<(String, String)> = sqlx::query_as(
        "SELECT c.conrelid::regclass::text, c.confrelid::regclass::text FROM pg_constraint c
         JOIN pg_namespace n ON n.oid = c.connamespace
         WHERE c.contype = 'f' AND n.nspname = 'public' AND c.conrelid <> c.confrelid",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut ordered: Vec<String> = Vec::new();
    let mut left = names.clone();
    while !left.is_empty() {
        let before = left.len();
        left.retain(|t| {
            let ready = refs
                .iter()
                .filter(|(child, _)| child == t)
                .all(|(_, parent)| ordered.contains(parent) || !names.contains(parent));
            if ready {
                ordered.push(t.clone());
            }
            !ready
        });
        if left.len() == before {
            // a cycle of references would need deferred constraints; the schema has none
            ordered.append(&mut left);
        }
    }
    let mut out = Vec::new();
    for name in ordered {
        let columns: Vec<(String, String, String, String)> = sqlx::query_as(
            "SELECT column_name::text, data_type::text, is_generated::text, is_identity::text
             FROM information_schema.columns
             WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position",
        )
        .bind(&name)
        .fetch_all(&mut *conn)
        .await?;
        let mut table = Table {
            name: name.clone(),
            columns: Vec::new(),
            identity: None,
        };
        for (column, kind, generated, identity) in columns {
            // a generated column (the search text) is computed by PostgreSQL from the others
            if generated == "ALWAYS" {
                continue;
            }
            let kind = match kind.as_str() {
                "bigint" | "integer" | "smallint" => Kind::Int,
                "boolean" => Kind::Flag,
                "text" | "character varying" => Kind::Text,
                "double precision" | "real" => Kind::Real,
                _ => {
                    return Err(CopyError::UnknownType {
                        table: name,
                        column,
                        kind,
                    })
                }
            };
            if identity == "YES" {
                table.identity = Some(column.clone());
            }
            table.columns.push(Column { name: column, kind });
        }
        out.push(table);
    }
    Ok(out)
}

async fn refuse_unless_empty(conn: &mut PgConnection, tables: &[Table]) -> Result<(), CopyError> {
    let mut found = Vec::new();
    for table in tables {
        let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM \"{}\"", table.name))
            .fetch_one(&mut *conn)
            .await?;
        // a fresh database holds the baseline's first mapping version and nothing else
        let allowed = if table.name == "mapping_versions" {
            1
        } else {
            0
        };
        if n > allowed {
            found.push(format!("{} has {n} rows", table.name));
        }
    }
    if found.is_empty() {
        Ok(())
    } else {
        Err(CopyError::TargetNotEmpty(found.join(", ")))
    }
}

/// Streams one table from SQLite into PostgreSQL's COPY, in chunks; the rows sent.
async fn copy_table(
    source: &mut SqliteConnection,
    target: &mut PgConnection,
    table: &Table,
) -> Result<i64, CopyError> {
    let names: Vec<String> = table
        .columns
        .iter()
        .map(|c| format!("\"{}\"", c.name))
        .collect();
    let list = names.join(", ");
    // in key order, so a row that refers to an earlier row of its table (a re-processed
    // delivery) arrives after it
    let select = format!("SELECT {list} FROM \"{}\" ORDER BY 1", table.name);
    let mut copy = target
        .copy_in_raw(&format!("COPY \"{}\" ({list}) FROM STDIN", table.name))
        .await?;
    let mut rows = sqlx::query(&select).fetch(&mut *source);
    let mut buffer = String::with_capacity(CHUNK_BYTES + 4096);
    let mut sent: u64 = 0;
    let failed: Result<(), CopyError> = async {
        while let Some(row) = rows.try_next().await? {
            line(&row, table, sent, &mut buffer)?;
            sent += 1;
            if buffer.len() >= CHUNK_BYTES {
                copy.send(std::mem::take(&mut buffer).into_bytes()).await?;
            }
        }
        if !buffer.is_empty() {
            copy.send(buffer.into_bytes()).await?;
        }
        Ok(())
    }
    .await;
    drop(rows);
    if let Err(e) = failed {
        let _ = copy.abort("the copy from SQLite failed").await;
        return Err(e);
    }
    let done = copy.finish().await?;
    Ok(i64::try_from(done).unwrap_or(i64::MAX))
}

/// One row as a line of COPY's text format.
fn line(row: &SqliteRow, table: &Table, n: u64, out: &mut String) -> Result<(), CopyError> {
    for (i, column) in table.columns.iter().enumerate() {
        if i > 0 {
            out.push('\t');
        }
        let bad = |kind: &'static str, e: sqlx::Error| CopyError::BadValue {
            table: table.name.clone(),
            column: column.name.clone(),
            row: n + 1,
            kind,
            reason: e.to_string(),
        };
        match column.kind {
            Kind::Int => match row
                .try_get::<Option<i64>, _>(i)
                .map_err(|e| bad("an integer", e))?
            {
                Some(v) => out.push_str(&v.to_string()),
                None => out.push_str("\\N"),
            },
            Kind::Flag => match row
                .try_get::<Option<i64>, _>(i)
                .map_err(|e| bad("a 0/1 flag", e))?
            {
                Some(0) => out.push('f'),
                Some(_) => out.push('t'),
                None => out.push_str("\\N"),
            },
            Kind::Real => match row
                .try_get::<Option<f64>, _>(i)
                .map_err(|e| bad("a number", e))?
            {
                Some(v) => out.push_str(&v.to_string()),
                None => out.push_str("\\N"),
            },
            // SQLite lets a text column hold a number; read as text it is the same digits
            Kind::Text => match row
                .try_get_unchecked::<Option<String>, _>(i)
                .map_err(|e| bad("text", e))?
            {
                Some(v) => escape(&v, out),
                None => out.push_str("\\N"),
            },
        }
    }
    out.push('\n');
    Ok(())
}

/// Text as COPY's text format wants it: backslash, tab and line breaks escaped.
fn escape(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_text_escapes_what_its_format_reads_as_structure() {
        let mut out = String::new();
        escape("a\tb\nc\\d\re", &mut out);
        assert_eq!(out, "a\\tb\\nc\\\\d\\re");
    }

    #[test]
    fn only_a_sqlite_file_url_is_a_source() {
        assert!(source_file("postgres://x/y").is_err());
        assert!(source_file("sqlite::memory:").is_err());
        assert!(matches!(
            source_file("sqlite:///no/such/file.db"),
            Err(CopyError::NoSource(_))
        ));
    }
}

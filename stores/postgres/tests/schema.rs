//! The SQLite migrations (../../migrations) and this crate's PostgreSQL migrations must describe
//! the same schema: the same tables and columns (type family, NOT NULL, default), primary and
//! unique keys, named indexes (their columns, and whether partial), foreign keys with their
//! actions, and triggers (name and event). Each schema is read back from a database the
//! migrations built, turned into lines of text, and the lines compared. What only one engine has
//! is listed below with the reason.
//!
//! Not compared: CHECK constraints and the text of partial indexes' conditions and of defaults
//! beyond the literals below (the two dialects write them differently); tests/baseline.rs checks
//! the translations that matter by behaviour.

use std::{
    collections::{BTreeMap, BTreeSet},
    str::FromStr,
};

use sqlx::{
    sqlite::{SqliteConnectOptions, SqliteConnection},
    Connection, PgConnection, Row,
};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Engine {
    Sqlite,
    Postgres,
}

/// An object only one engine has, and why.
struct OnlyOn {
    engine: Engine,
    /// `table t`, `column t.c`, `index i` or `trigger t`; a table's entry covers its columns,
    /// indexes, keys and triggers.
    object: &'static str,
    why: &'static str,
    /// SQLite creates it only once needed; every other entry must match something, so that the
    /// list cannot outlive what it excuses.
    may_be_absent: bool,
}

const ONLY_ON: &[OnlyOn] = &[
    OnlyOn {
        engine: Engine::Sqlite,
        object: "table export_search",
        why: "the FTS5 trigram index of substring search; on PostgreSQL the generated column \
              exports.search_text and its pg_trgm index do that",
        may_be_absent: false,
    },
    OnlyOn {
        engine: Engine::Sqlite,
        object: "table export_search_config",
        why: "a shadow table FTS5 keeps for export_search",
        may_be_absent: false,
    },
    OnlyOn {
        engine: Engine::Sqlite,
        object: "table export_search_data",
        why: "a shadow table FTS5 keeps for export_search",
        may_be_absent: false,
    },
    OnlyOn {
        engine: Engine::Sqlite,
        object: "table export_search_idx",
        why: "a shadow table FTS5 keeps for export_search",
        may_be_absent: false,
    },
    OnlyOn {
        engine: Engine::Sqlite,
        object: "trigger exports_search_insert",
        why: "kept export_search in step; PostgreSQL keeps a generated column in step itself",
        may_be_absent: false,
    },
    OnlyOn {
        engine: Engine::Sqlite,
        object: "trigger exports_search_update",
        why: "kept export_search in step; PostgreSQL keeps a generated column in step itself",
        may_be_absent: false,
    },
    OnlyOn {
        engine: Engine::Sqlite,
        object: "trigger exports_search_delete",
        why: "kept export_search in step; PostgreSQL keeps a generated column in step itself",
        may_be_absent: false,
    },
    OnlyOn {
        engine: Engine::Sqlite,
        object: "table sqlite_sequence",
        why: "SQLite's counters for AUTOINCREMENT keys (identity columns on PostgreSQL); it \
              exists only once a table uses AUTOINCREMENT, and none does",
        may_be_absent: true,
    },
    OnlyOn {
        engine: Engine::Sqlite,
        object: "table _sqlx_migrations",
        why: "sqlx's own record of the migrations applied, one per engine",
        may_be_absent: false,
    },
    OnlyOn {
        engine: Engine::Postgres,
        object: "table _sqlx_migrations",
        why: "sqlx's own record of the migrations applied, one per engine",
        may_be_absent: false,
    },
    OnlyOn {
        engine: Engine::Postgres,
        object: "table instances",
        why: "the console processes sharing a PostgreSQL database and their heartbeats; a \
              SQLite file is served by one process, which knows itself",
        may_be_absent: false,
    },
    OnlyOn {
        engine: Engine::Postgres,
        object: "column exports.search_text",
        why: "what SQLite's export_search indexes (names, e-mails and ids, lower-cased), \
              generated and stored for the trigram index",
        may_be_absent: false,
    },
    OnlyOn {
        engine: Engine::Postgres,
        object: "index exports_search_trgm",
        why: "the GIN trigram index over exports.search_text that stands for export_search",
        may_be_absent: false,
    },
    OnlyOn {
        engine: Engine::Postgres,
        object: "index users_email_key",
        why: "the unique index on lower(email) that stands for SQLite's UNIQUE COLLATE NOCASE \
              column, whose index has no name of its own (sqlite_autoindex_users_1); the \
              `unique users (email COLLATE NOCASE)` line compares the two",
        may_be_absent: false,
    },
    OnlyOn {
        engine: Engine::Postgres,
        object: "table shared_limits",
        why: "the rate-limit gates and sign-in throttle that several consoles on one PostgreSQL \
              database keep together; one console owns a SQLite file and keeps them in memory",
        may_be_absent: false,
    },
    OnlyOn {
        engine: Engine::Postgres,
        object: "table rejection_allowances",
        why: "the rejected-delivery allowances several consoles on one PostgreSQL database \
              count together; one console owns a SQLite file and counts them in memory",
        may_be_absent: false,
    },
    OnlyOn {
        engine: Engine::Postgres,
        object: "table tower_sessions.session",
        why: "the session store's table, which the baseline creates so that the console never \
              calls PostgresStore::migrate(); on SQLite SqliteStore::migrate() creates its own \
              (tower_sessions) at start-up, outside the migrations",
        may_be_absent: false,
    },
];

/// One line of a schema's description, with the objects it belongs to (for the list above).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Fact {
    text: String,
    objects: Vec<String>,
}

fn fact(text: String, objects: &[String]) -> Fact {
    Fact {
        text,
        objects: objects.to_vec(),
    }
}

#[tokio::test]
async fn sqlite_and_postgres_migrations_describe_the_same_schema() {
    let sqlite = sqlite_schema().await;
    let postgres = postgres_schema().await;
    let mut problems = Vec::new();
    let sqlite = only_shared(Engine::Sqlite, sqlite, &mut problems);
    let postgres = only_shared(Engine::Postgres, postgres, &mut problems);

    let mut lines: BTreeMap<&str, (bool, bool)> = BTreeMap::new();
    for text in &sqlite {
        lines.entry(text).or_default().0 = true;
    }
    for text in &postgres {
        lines.entry(text).or_default().1 = true;
    }
    let diff: Vec<String> = lines
        .iter()
        .filter_map(|(text, on)| match on {
            (true, false) => Some(format!("  - {text}")),
            (false, true) => Some(format!("  + {text}")),
            _ => None,
        })
        .collect();
    if !diff.is_empty() {
        problems.push(format!(
            "the schemas differ (- only on SQLite, + only on PostgreSQL):\n{}",
            diff.join("\n")
        ));
    }
    assert!(
        problems.is_empty(),
        "\n{}\n\n(an object one engine is meant not to have goes in ONLY_ON in {}, with the reason)\n",
        problems.join("\n\n"),
        file!()
    );
    // a comparison of two empty descriptions would pass too
    assert!(sqlite.len() > 200, "{sqlite:#?}");
}

/// The facts no ONLY_ON entry of `engine` excuses; an entry that excuses nothing is a problem.
fn only_shared(engine: Engine, facts: Vec<Fact>, problems: &mut Vec<String>) -> BTreeSet<String> {
    let entries: Vec<&OnlyOn> = ONLY_ON.iter().filter(|o| o.engine == engine).collect();
    let mut used = BTreeSet::new();
    let mut kept = BTreeSet::new();
    for fact in facts {
        match entries
            .iter()
            .find(|o| fact.objects.iter().any(|object| object == o.object))
        {
            Some(entry) => {
                used.insert(entry.object);
            }
            None => {
                kept.insert(fact.text);
            }
        }
    }
    for entry in entries {
        if !entry.may_be_absent && !used.contains(entry.object) {
            problems.push(format!(
                "ONLY_ON lists {} for {engine:?} ({}), but there is no such object",
                entry.object, entry.why
            ));
        }
    }
    kept
}

/// The column's type family as SQLite declares it: integer, text or blob.
fn sqlite_type(declared: &str) -> String {
    declared.to_ascii_lowercase()
}

fn postgres_type(name: &str) -> String {
    match name {
        // sqlx reads both as i64
        "bigint" => "integer".into(),
        // a 0/1 flag, read as bool on both engines
        "boolean" => "integer".into(),
        "text" => "text".into(),
        "bytea" => "blob".into(),
        // anything else (integer, timestamp, …) shows as a difference
        other => format!("{other} (PostgreSQL's; the baseline uses bigint, boolean, text, bytea)"),
    }
}

/// A PostgreSQL default in SQLite's words, for the defaults the baseline uses.
fn postgres_default(default: &str) -> String {
    let default = default
        .strip_suffix("::text")
        .or_else(|| default.strip_suffix("::bigint"))
        .unwrap_or(default);
    match default {
        "false" => "0".into(),
        "true" => "1".into(),
        "now_text()" => "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')".into(),
        other => other.into(),
    }
}

fn column_fact(
    table: &str,
    column: &str,
    kind: &str,
    not_null: bool,
    default: Option<&str>,
) -> Fact {
    let mut text = format!("column {table}.{column}: {kind}");
    text.push_str(if not_null { " not null" } else { " null" });
    if let Some(default) = default {
        text.push_str(&format!(" default {default}"));
    }
    fact(
        text,
        &[format!("table {table}"), format!("column {table}.{column}")],
    )
}

async fn sqlite_schema() -> Vec<Fact> {
    // as db::migrate runs them: with foreign keys off, which the table rebuilds require
    let options = SqliteConnectOptions::from_str("sqlite::memory:")
        .unwrap()
        .foreign_keys(false);
    let mut conn = SqliteConnection::connect_with(&options).await.unwrap();
    sqlx::migrate!("../../migrations")
        .run(&mut conn)
        .await
        .unwrap();

    let mut facts = Vec::new();
    let tables: Vec<(String,)> = sqlx::query_as(
        "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') ORDER BY name",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    for (table,) in tables {
        let on_table = [format!("table {table}")];
        facts.push(fact(format!("table {table}"), &on_table));

        let columns = sqlx::query(
            r#"SELECT name, type, "notnull", dflt_value, pk FROM pragma_table_info(?1)
               ORDER BY cid"#,
        )
        .bind(&table)
        .fetch_all(&mut conn)
        .await
        .unwrap();
        let mut primary: Vec<(i64, String)> = Vec::new();
        for c in &columns {
            let name: String = c.get("name");
            let pk: i64 = c.get("pk");
            if pk > 0 {
                primary.push((pk, name.clone()));
            }
            let default: Option<String> = c.get("dflt_value");
            // a primary key column cannot hold NULL: a rowid alias by nature, WITHOUT ROWID
            // tables by rule (and the others here say NOT NULL)
            let not_null = c.get::<i64, _>("notnull") == 1 || pk > 0;
            facts.push(column_fact(
                &table,
                &name,
                &sqlite_type(c.get("type")),
                not_null,
                default.as_deref(),
            ));
        }
        if !primary.is_empty() {
            primary.sort();
            let columns: Vec<String> = primary.into_iter().map(|(_, c)| c).collect();
            facts.push(fact(
                format!("primary key {table} ({})", columns.join(", ")),
                &on_table,
            ));
        }

        let indexes = sqlx::query(
            r#"SELECT name, "unique", origin, partial FROM pragma_index_list(?1) ORDER BY name"#,
        )
        .bind(&table)
        .fetch_all(&mut conn)
        .await
        .unwrap();
        for index in indexes {
            let name: String = index.get("name");
            let origin: String = index.get("origin");
            if origin == "pk" {
                continue;
            }
            let keys = sqlx::query(
                r#"SELECT name, "desc", coll FROM pragma_index_xinfo(?1) WHERE key = 1
                   ORDER BY seqno"#,
            )
            .bind(&name)
            .fetch_all(&mut conn)
            .await
            .unwrap();
            let columns: Vec<String> = keys
                .iter()
                .map(|k| {
                    let mut column: String = k
                        .get::<Option<String>, _>("name")
                        .unwrap_or_else(|| "<expression>".into());
                    let collation: String = k.get("coll");
                    if collation != "BINARY" {
                        column.push_str(&format!(" COLLATE {collation}"));
                    }
                    if k.get::<i64, _>("desc") == 1 {
                        column.push_str(" DESC");
                    }
                    column
                })
                .collect();
            let unique = index.get::<i64, _>("unique") == 1;
            let partial = index.get::<i64, _>("partial") == 1;
            push_index_facts(
                &mut facts,
                &table,
                (origin == "c").then_some(name.as_str()),
                &columns,
                unique,
                partial,
            );
        }

        let keys = sqlx::query(
            r#"SELECT id, "table", "from", "to", on_update, on_delete
               FROM pragma_foreign_key_list(?1) ORDER BY id, seq"#,
        )
        .bind(&table)
        .fetch_all(&mut conn)
        .await
        .unwrap();
        let mut by_id: BTreeMap<i64, ForeignKey> = BTreeMap::new();
        for k in keys {
            let key = by_id.entry(k.get("id")).or_insert_with(|| ForeignKey {
                to_table: k.get("table"),
                from: Vec::new(),
                to: Vec::new(),
                on_update: k.get("on_update"),
                on_delete: k.get("on_delete"),
            });
            key.from.push(k.get("from"));
            key.to
                .push(k.get::<Option<String>, _>("to").unwrap_or_default());
        }
        for key in by_id.values() {
            facts.push(foreign_key_fact(&table, key));
        }
    }

    let triggers: Vec<(String, String, String)> =
        sqlx::query_as("SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'trigger'")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    for (name, table, sql) in triggers {
        let sql = sql.split_whitespace().collect::<Vec<_>>().join(" ");
        let header = sql
            .to_ascii_lowercase()
            .split(" begin")
            .next()
            .unwrap_or_default()
            .to_owned();
        facts.push(trigger_fact(&name, &table, &header, true));
    }
    facts
}

async fn postgres_schema() -> Vec<Fact> {
    let url = store_postgres::testing::fresh_database().await.unwrap();
    let mut conn = PgConnection::connect(&url).await.unwrap();
    let mut facts = Vec::new();

    let tables = sqlx::query(
        "SELECT c.oid::int8 AS oid,
                CASE WHEN n.nspname = 'public' THEN c.relname
                     ELSE n.nspname || '.' || c.relname END AS name
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
           AND n.nspname NOT IN ('pg_catalog', 'information_schema')
           AND n.nspname NOT LIKE 'pg\\_%'
         ORDER BY 2",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    for t in tables {
        let oid: i64 = t.get("oid");
        let table: String = t.get("name");
        let on_table = [format!("table {table}")];
        facts.push(fact(format!("table {table}"), &on_table));

        let columns = sqlx::query(
            "SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type,
                    a.attnotnull AS not_null, pg_get_expr(d.adbin, d.adrelid) AS expr,
                    a.attidentity::text AS identity, a.attgenerated::text AS generated
             FROM pg_attribute a
             LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
             WHERE a.attrelid = $1::int8::oid AND a.attnum > 0 AND NOT a.attisdropped
             ORDER BY a.attnum",
        )
        .bind(oid)
        .fetch_all(&mut conn)
        .await
        .unwrap();
        for c in columns {
            let name: String = c.get("name");
            let expr: Option<String> = c.get("expr");
            let generated: String = c.get("generated");
            let kind = postgres_type(c.get("type"));
            // an identity stands for SQLite's rowid, which is no default there either
            let default = if generated.is_empty() {
                expr.as_deref().map(postgres_default)
            } else {
                Some(format!("generated as {}", expr.unwrap_or_default()))
            };
            facts.push(column_fact(
                &table,
                &name,
                &kind,
                c.get("not_null"),
                default.as_deref(),
            ));
        }

        let indexes = sqlx::query(
            "SELECT ic.relname AS name, i.indisunique AS unique, i.indisprimary AS primary,
                    EXISTS (SELECT 1 FROM pg_constraint k
                            WHERE k.conindid = i.indexrelid AND k.conrelid = i.indrelid
                              AND k.contype IN ('p', 'u', 'x')) AS constraint_backed,
                    i.indpred IS NOT NULL AS partial,
                    ARRAY(SELECT pg_get_indexdef(i.indexrelid, k, true)
                                 || CASE WHEN i.indoption[k - 1] & 1 = 1 THEN ' DESC' ELSE '' END
                          FROM generate_series(1, i.indnkeyatts) AS k ORDER BY k) AS columns
             FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
             WHERE i.indrelid = $1::int8::oid
             ORDER BY ic.relname",
        )
        .bind(oid)
        .fetch_all(&mut conn)
        .await
        .unwrap();
        for index in indexes {
            let name: String = index.get("name");
            let columns: Vec<String> = index.get("columns");
            let columns: Vec<String> = columns
                .into_iter()
                .map(
                    |c| match c.strip_prefix("lower(").and_then(|c| c.strip_suffix(')')) {
                        // lower() under the "C" collation folds ASCII letters only, as NOCASE does
                        Some(inner) => format!("{inner} COLLATE NOCASE"),
                        None => c,
                    },
                )
                .collect();
            if index.get("primary") {
                facts.push(fact(
                    format!("primary key {table} ({})", columns.join(", ")),
                    &on_table,
                ));
                continue;
            }
            let named = !index.get::<bool, _>("constraint_backed");
            push_index_facts(
                &mut facts,
                &table,
                named.then_some(name.as_str()),
                &columns,
                index.get("unique"),
                index.get("partial"),
            );
        }

        let keys = sqlx::query(
            "SELECT f.relname AS to_table,
                    ARRAY(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY AS k (n, o)
                          JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n
                          ORDER BY k.o) AS from_columns,
                    ARRAY(SELECT a.attname::text FROM unnest(c.confkey) WITH ORDINALITY AS k (n, o)
                          JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n
                          ORDER BY k.o) AS to_columns,
                    c.confupdtype::text AS on_update, c.confdeltype::text AS on_delete
             FROM pg_constraint c JOIN pg_class f ON f.oid = c.confrelid
             WHERE c.contype = 'f' AND c.conrelid = $1::int8::oid",
        )
        .bind(oid)
        .fetch_all(&mut conn)
        .await
        .unwrap();
        let action = |code: &str| {
            match code {
                "a" => "NO ACTION",
                "r" => "RESTRICT",
                "c" => "CASCADE",
                "n" => "SET NULL",
                "d" => "SET DEFAULT",
                other => other,
            }
            .to_owned()
        };
        for k in keys {
            let key = ForeignKey {
                to_table: k.get("to_table"),
                from: k.get("from_columns"),
                to: k.get("to_columns"),
                on_update: action(k.get("on_update")),
                on_delete: action(k.get("on_delete")),
            };
            facts.push(foreign_key_fact(&table, &key));
        }

        let triggers: Vec<(String, String)> = sqlx::query_as(
            "SELECT tgname::text, pg_get_triggerdef(oid) FROM pg_trigger
             WHERE tgrelid = $1::int8::oid AND NOT tgisinternal",
        )
        .bind(oid)
        .fetch_all(&mut conn)
        .await
        .unwrap();
        for (name, definition) in triggers {
            let definition = definition.to_ascii_lowercase();
            let header = definition
                .split(" execute function")
                .next()
                .unwrap_or_default();
            facts.push(trigger_fact(
                &name,
                &table,
                header,
                header.contains(" for each row"),
            ));
        }
    }
    conn.close().await.unwrap();
    facts
}

fn push_index_facts(
    facts: &mut Vec<Fact>,
    table: &str,
    name: Option<&str>,
    columns: &[String],
    unique: bool,
    partial: bool,
) {
    let columns = columns.join(", ");
    let on_table = format!("table {table}");
    // a key is the table's, whichever index enforces it
    if unique && !partial {
        facts.push(fact(
            format!("unique {table} ({columns})"),
            std::slice::from_ref(&on_table),
        ));
    }
    if let Some(name) = name {
        facts.push(fact(
            format!(
                "index {name} on {table} ({columns}){}{}",
                if unique { " unique" } else { "" },
                if partial { " partial" } else { "" }
            ),
            &[on_table, format!("index {name}")],
        ));
    }
}

struct ForeignKey {
    to_table: String,
    from: Vec<String>,
    to: Vec<String>,
    on_update: String,
    on_delete: String,
}

fn foreign_key_fact(table: &str, key: &ForeignKey) -> Fact {
    fact(
        format!(
            "foreign key {table} ({}) references {} ({}) on update {} on delete {}",
            key.from.join(", "),
            key.to_table,
            key.to.join(", "),
            key.on_update,
            key.on_delete
        ),
        &[format!("table {table}"), format!("table {}", key.to_table)],
    )
}

/// `header` is the trigger's definition up to its body, lower-cased: "create trigger <name>
/// <timing and event> on <table> …".
fn trigger_fact(name: &str, table: &str, header: &str, for_each_row: bool) -> Fact {
    let event = header
        .split_once(&format!("trigger {name} "))
        .map(|(_, rest)| rest)
        .and_then(|rest| rest.split(" on ").next())
        .unwrap_or(header);
    let mut text = format!("trigger {name} on {table}: {event}");
    if header.contains(" when ") {
        text.push_str(" when …");
    }
    if !for_each_row {
        text.push_str(" for each statement");
    }
    fact(text, &[format!("table {table}"), format!("trigger {name}")])
}

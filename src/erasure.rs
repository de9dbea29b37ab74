//! Erasing one candidate's personal data from everything the console stored about them, on a
//! person's request. HiBob and Pinpoint are not touched: the employee and the application are
//! theirs to erase.
//!
//! The candidate is found through one export; every export of the same Pinpoint application, with
//! the same e-mail address, or keyed by that e-mail (a plugin export) is the same person and is
//! erased with it. A blank application id (a plugin submit that named none) or an e-mail that is
//! blank or not an address at all links nobody: those are shared by unrelated people. Erased are:
//! - the exports' name, e-mail, start date, last error and resolution note (the rows stay, with
//!   their status, ids and HiBob employee id, so "nothing twice" still holds and the history still
//!   adds up); a plugin export's key, which is its e-mail, becomes `plugin:erased:<id>`, so a later
//!   submit for the same person starts a new export instead of writing them back into this one;
//! - their steps' detail and recorded calls (requests and answers), and any other step whose
//!   recorded calls still hold the person's e-mail;
//! - the body and headers of every webhook delivery of those exports or that application, or
//!   whose body holds the person's e-mail (a rejected delivery keeps a prefix of its body);
//! - the search index's entries (kept by triggers, then merged so the old terms are dropped);
//! - the name or e-mail wherever else typed text is kept: audit details and targets, bulk
//!   retries' saved filters (a search for the person), delivery reasons and alerts' last errors.
//!
//! The database deletes with `secure_delete=ON` (see `db`), so replaced values are overwritten
//! rather than left in free space, and the WAL is checkpointed and truncated afterwards so its
//! older copies of the pages go too. Backups taken before keep the data until they are rotated
//! out. An erased export is never retried: that would fetch the person from Pinpoint again.

use sqlx::{SqliteConnection, SqlitePool};

use crate::{access::audit, access::users::Actor, db};

/// What an admin types to confirm: deliberate, and the same for a candidate without an e-mail.
pub const CONFIRMATION: &str = "ERASE";

/// How a plugin export's key names its candidate (see `plugin::service`).
const PLUGIN_KEY_PREFIX: &str = "plugin:";

#[derive(Debug, thiserror::Error)]
pub enum EraseError {
    #[error("there is no export {0}")]
    NotFound(i64),
    #[error("type {CONFIRMATION} to confirm")]
    NotConfirmed,
    #[error("export {id} is {status}; erase it once it has stopped")]
    InProgress { id: i64, status: String },
    #[error("export {0} has already been erased")]
    AlreadyErased(i64),
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
}

/// What an erasure changed, in counts (never the values).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Erased {
    pub exports: Vec<i64>,
    pub steps: u64,
    pub deliveries: u64,
    pub other_mentions: u64,
    /// The WAL was checkpointed and emptied; false when a long reader kept it (the old pages are
    /// then overwritten by later checkpoints, not at once).
    pub wal_truncated: bool,
}

/// When export `id`'s candidate was erased, if they were.
pub async fn erased_at(pool: &SqlitePool, id: i64) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar!("SELECT erased_at FROM exports WHERE id = ?", id)
        .fetch_optional(pool)
        .await
        .map(Option::flatten)
}

/// [`erased_at`] inside a transaction.
pub async fn erased_at_in(
    conn: &mut sqlx::SqliteConnection,
    id: i64,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar!("SELECT erased_at FROM exports WHERE id = ?", id)
        .fetch_optional(conn)
        .await
        .map(Option::flatten)
}

/// An e-mail address that may link two exports to one person: trimmed and lower-cased, and only
/// when it looks like an address. A blank or placeholder text ("", "n/a") is shared by strangers.
fn linking_email(text: &str) -> Option<String> {
    let text = text.trim();
    let (local, domain) = text.split_once('@')?;
    (!local.is_empty() && !domain.is_empty() && !text.chars().any(char::is_whitespace))
        .then(|| text.to_lowercase())
}

/// The e-mail a plugin export's key carries, if it carries one.
fn key_email(key: &str) -> Option<String> {
    key.strip_prefix(PLUGIN_KEY_PREFIX).and_then(linking_email)
}

/// Who an erasure that starts from one export looks for. `None` links nobody.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Links {
    /// The export's Pinpoint application, unless blank.
    pub application: Option<String>,
    /// Its candidate's e-mail (or the one its plugin key carries), lower-cased, when it is one.
    pub email: Option<String>,
    /// The key a plugin export of that e-mail has.
    pub key: Option<String>,
}

/// What links the export with these columns to other exports of the same person.
pub fn links(application_id: &str, candidate_email: Option<&str>, idempotency_key: &str) -> Links {
    let application = Some(application_id.trim().to_owned()).filter(|a| !a.is_empty());
    let email = candidate_email
        .and_then(linking_email)
        .or_else(|| key_email(idempotency_key));
    let key = email.as_ref().map(|e| format!("{PLUGIN_KEY_PREFIX}{e}"));
    Links {
        application,
        email,
        key,
    }
}

/// An export of the person to erase, as stored.
#[derive(Debug, Clone)]
pub struct Linked {
    pub id: i64,
    pub status: String,
    pub pinpoint_application_id: String,
    pub candidate_name: Option<String>,
    pub candidate_email: Option<String>,
    pub idempotency_key: String,
}

/// What an erasure wipes, worked out from the person's exports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The exports, in id order.
    pub ids: Vec<i64>,
    /// Their Pinpoint applications (none blank), sorted.
    pub applications: Vec<String>,
    /// The texts to replace wherever typed text is kept: names and e-mails, as stored and
    /// lower-cased, sorted.
    pub terms: Vec<String>,
    /// The terms that are e-mail addresses: the only ones whole records of other exports are
    /// wiped for.
    pub emails: Vec<String>,
}

/// Refuses anything but the confirmation word.
pub fn check_confirmation(confirmation: &str) -> Result<(), EraseError> {
    if confirmation.trim() != CONFIRMATION {
        return Err(EraseError::NotConfirmed);
    }
    Ok(())
}

/// The plan for erasing the person of `rows` (their exports not yet erased), refused while one of
/// them is queued or running.
pub fn plan(rows: &[Linked]) -> Result<Plan, EraseError> {
    if let Some(busy) = rows
        .iter()
        .find(|r| r.status == "queued" || r.status == "running")
    {
        return Err(EraseError::InProgress {
            id: busy.id,
            status: busy.status.clone(),
        });
    }
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let mut applications: Vec<String> = rows
        .iter()
        .map(|r| r.pinpoint_application_id.trim().to_owned())
        .filter(|a| !a.is_empty())
        .collect();
    applications.sort();
    applications.dedup();
    // the texts to hunt for elsewhere; shorter ones would match unrelated words
    let mut terms: Vec<String> = rows
        .iter()
        .flat_map(|r| {
            [
                r.candidate_name.clone(),
                r.candidate_email.clone(),
                key_email(&r.idempotency_key),
            ]
        })
        .flatten()
        .map(|t| t.trim().to_owned())
        .filter(|t| t.chars().count() >= 3)
        .flat_map(|t| [t.to_lowercase(), t])
        .collect();
    terms.sort();
    terms.dedup();
    // whole records of other exports are wiped only for the e-mail: a name ("Lee") is too common
    // a text to wipe someone else's records by
    let emails: Vec<String> = terms
        .iter()
        .filter(|t| linking_email(t).is_some())
        .cloned()
        .collect();
    Ok(Plan {
        ids,
        applications,
        terms,
        emails,
    })
}

/// The audit entry of an erasure: counts, never the values.
pub fn audit_detail(ids: &[i64], steps: u64, deliveries: u64, other_mentions: u64) -> String {
    let list = ids
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "personal data erased from export(s) {list}: {steps} step records, {deliveries} \
         webhook deliveries, {other_mentions} other mentions; HiBob and Pinpoint not changed"
    )
}

/// Erases the personal data of export `id`'s candidate; see the module's description.
pub async fn erase_candidate(
    pool: &SqlitePool,
    actor: &Actor,
    id: i64,
    confirmation: &str,
) -> Result<Erased, EraseError> {
    check_confirmation(confirmation)?;
    let mut tx = db::begin_write(pool).await?;
    let target = sqlx::query!(
        "SELECT pinpoint_application_id, candidate_email, idempotency_key, erased_at
         FROM exports WHERE id = ?",
        id
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(EraseError::NotFound(id))?;
    if target.erased_at.is_some() {
        return Err(EraseError::AlreadyErased(id));
    }
    let Links {
        application,
        email,
        key,
    } = links(
        &target.pinpoint_application_id,
        target.candidate_email.as_deref(),
        &target.idempotency_key,
    );
    // NULL (no application, no usable e-mail) equals nothing, so it links nobody
    let rows = sqlx::query_as!(
        Linked,
        r#"SELECT id AS "id!", status, pinpoint_application_id, candidate_name, candidate_email,
                  idempotency_key
           FROM exports
           WHERE erased_at IS NULL
             AND (id = ?1 OR pinpoint_application_id = ?2
                  OR trim(candidate_email) = ?3 COLLATE NOCASE OR idempotency_key = ?4)
           ORDER BY id"#,
        id,
        application,
        email,
        key
    )
    .fetch_all(&mut *tx)
    .await?;
    let Plan {
        ids,
        applications,
        terms,
        emails,
    } = plan(&rows)?;

    let ids_json = serde_json::json!(ids).to_string();
    let applications_json = serde_json::json!(applications).to_string();
    let emails_json = serde_json::json!(emails).to_string();
    let now = db::now_text();
    sqlx::query!(
        "UPDATE exports
         SET candidate_name = NULL, candidate_email = NULL, start_date = NULL,
             last_error = CASE WHEN last_error IS NULL THEN NULL ELSE 'erased' END,
             resolution = CASE WHEN resolution IS NULL THEN NULL ELSE 'erased' END,
             idempotency_key = CASE WHEN source = 'plugin' THEN 'plugin:erased:' || id
                                    ELSE idempotency_key END,
             sent_body = NULL, erased_at = ?1, updated_at = ?1
         WHERE id IN (SELECT value FROM json_each(?2))",
        now,
        ids_json
    )
    .execute(&mut *tx)
    .await?;
    // watching an erased hire would read the person back in; its copies and alerts go too
    sqlx::query!(
        "DELETE FROM hire_watches WHERE export_id IN (SELECT value FROM json_each(?1))",
        ids_json
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "DELETE FROM alerts WHERE kind = 'changed' AND export_id IN (SELECT value FROM json_each(?1))",
        ids_json
    )
    .execute(&mut *tx)
    .await?;
    let steps = erase_steps(&mut tx, &ids_json, &emails_json).await?;
    let deliveries = erase_deliveries(&mut tx, &ids_json, &applications_json, &emails_json).await?;
    let mut other_mentions = 0;
    for term in &terms {
        other_mentions += replace_mentions(&mut tx, term).await?;
    }

    audit::record(
        &mut tx,
        actor,
        "candidate.erased",
        Some(&format!("export {id}")),
        &audit_detail(&ids, steps, deliveries, other_mentions),
    )
    .await?;
    tx.commit().await?;

    // An external-content FTS index forgets a row by adding delete markers; the old terms stay
    // in earlier segments until they are merged. Merging everything drops them (and, with
    // secure_delete, zeroes the freed pages). It rewrites the index: seconds at a million
    // exports, in a transaction of its own after the erasure is safely committed.
    let mut tx = db::begin_write(pool).await?;
    sqlx::query!("INSERT INTO export_search (export_search) VALUES ('optimize')")
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    let wal_truncated = truncate_wal(pool).await?;
    Ok(Erased {
        exports: ids,
        steps,
        deliveries,
        other_mentions,
        wal_truncated,
    })
}

/// Clears the steps of the erased exports, and any other step whose recorded calls hold one of
/// `emails_json` (a JSON array). Only steps still holding calls are searched (an index keeps them, and retention clears
/// them after its window), so the search stays short while intake waits for the write lock.
async fn erase_steps(
    conn: &mut SqliteConnection,
    ids_json: &str,
    emails_json: &str,
) -> Result<u64, sqlx::Error> {
    let own = sqlx::query!(
        "UPDATE export_steps SET exchanges = '[]',
                detail = CASE WHEN detail = '' THEN '' ELSE 'erased' END
         WHERE export_id IN (SELECT value FROM json_each(?1))",
        ids_json
    )
    .execute(&mut *conn)
    .await?
    .rows_affected();
    let mentioning = sqlx::query!(
        "UPDATE export_steps SET exchanges = '[]',
                detail = CASE WHEN detail = '' THEN '' ELSE 'erased' END
         WHERE exchanges != '[]'
           AND EXISTS (SELECT 1 FROM json_each(?1) t
                       WHERE instr(exchanges, t.value) > 0 OR instr(detail, t.value) > 0)",
        emails_json
    )
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(own + mentioning)
}

/// Blanks the deliveries of the erased exports or their applications, and any other delivery
/// still holding a body with one of `emails_json` (a rejected delivery keeps a prefix of its body).
async fn erase_deliveries(
    conn: &mut SqliteConnection,
    ids_json: &str,
    applications_json: &str,
    emails_json: &str,
) -> Result<u64, sqlx::Error> {
    let own = sqlx::query!(
        "UPDATE webhook_deliveries SET body = '', headers = '{}'
         WHERE export_id IN (SELECT value FROM json_each(?1))
            OR application_id IN (SELECT value FROM json_each(?2))",
        ids_json,
        applications_json
    )
    .execute(&mut *conn)
    .await?
    .rows_affected();
    let mentioning = sqlx::query!(
        "UPDATE webhook_deliveries SET body = '', headers = '{}'
         WHERE (body != '' OR headers != '{}')
           AND EXISTS (SELECT 1 FROM json_each(?1) t
                       WHERE instr(body, t.value) > 0 OR instr(headers, t.value) > 0)",
        emails_json
    )
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(own + mentioning)
}

/// Replaces `term` in the free texts that may quote it; returns the rows changed.
async fn replace_mentions(conn: &mut SqliteConnection, term: &str) -> Result<u64, sqlx::Error> {
    let mut changed = sqlx::query!(
        "UPDATE audit_log SET detail = replace(detail, ?1, '[erased]'),
                target = replace(target, ?1, '[erased]')
         WHERE instr(detail, ?1) > 0 OR instr(target, ?1) > 0",
        term
    )
    .execute(&mut *conn)
    .await?
    .rows_affected();
    changed += sqlx::query!(
        "UPDATE bulk_retries SET filter = replace(filter, ?1, '[erased]')
         WHERE instr(filter, ?1) > 0",
        term
    )
    .execute(&mut *conn)
    .await?
    .rows_affected();
    changed += sqlx::query!(
        "UPDATE webhook_deliveries SET reason = replace(reason, ?1, '[erased]')
         WHERE instr(reason, ?1) > 0",
        term
    )
    .execute(&mut *conn)
    .await?
    .rows_affected();
    changed += sqlx::query!(
        "UPDATE alerts SET last_error = replace(last_error, ?1, '[erased]'),
                detail = replace(detail, ?1, '[erased]')
         WHERE instr(last_error, ?1) > 0 OR instr(detail, ?1) > 0",
        term
    )
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(changed)
}

/// Copies the WAL into the database and empties it, so earlier versions of pages leave the file.
async fn truncate_wal(pool: &SqlitePool) -> Result<bool, sqlx::Error> {
    let (busy, _, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
        .fetch_one(pool)
        .await?;
    Ok(busy == 0)
}

/// Erasing a person, whichever engine holds them.
#[async_trait::async_trait]
pub trait Erasure: Send + Sync {
    /// When export `id`'s candidate was erased, if they were.
    async fn erased_at(&self, id: i64) -> Result<Option<String>, sqlx::Error>;
    /// Erases the personal data of export `id`'s candidate; see the module's description.
    async fn erase_candidate(
        &self,
        actor: &Actor,
        id: i64,
        confirmation: &str,
    ) -> Result<Erased, EraseError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn pool() -> (tempfile::TempDir, SqlitePool) {
        let dir = tempfile::tempdir().unwrap();
        let pool = db::open(&format!("sqlite://{}/e.db", dir.path().display()))
            .await
            .unwrap();
        (dir, pool)
    }

    async fn export(
        pool: &SqlitePool,
        key: &str,
        app: &str,
        name: &str,
        email: &str,
        status: &str,
    ) -> i64 {
        sqlx::query_scalar(
            "INSERT INTO exports (source, idempotency_key, pinpoint_application_id, status,
                                  candidate_name, candidate_email, start_date, last_error)
             VALUES ('webhook', ?, ?, ?, ?, ?, '2027-01-04', 'HiBob 400 for ' || ?) RETURNING id",
        )
        .bind(key)
        .bind(app)
        .bind(status)
        .bind(name)
        .bind(email)
        .bind(email)
        .fetch_one(pool)
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn erases_the_person_across_exports_and_keeps_others() {
        let (_dir, pool) = pool().await;
        let actor = Actor::system("test");
        let a = export(
            &pool,
            "k1",
            "11",
            "Ada Quill",
            "ada@example.com",
            "needs_attention",
        )
        .await;
        let b = export(
            &pool,
            "k2",
            "12",
            "Ada Quill",
            "ADA@example.com",
            "succeeded",
        )
        .await;
        let other = export(
            &pool,
            "k3",
            "13",
            "Bo Rivers",
            "bo@example.com",
            "succeeded",
        )
        .await;
        sqlx::query(
            "INSERT INTO export_steps (export_id, attempt, step, outcome, detail, exchanges)
             VALUES (?, 1, 'map', 'failed', 'surname empty for Ada Quill', '[{\"email\":\"ada@example.com\"}]')",
        )
        .bind(a)
        .execute(&pool)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO bulk_retries (filter) VALUES ('{\"search\":\"ada@example.com\"}')",
        )
        .execute(&pool)
        .await
        .unwrap();

        assert!(matches!(
            erase_candidate(&pool, &actor, a, "yes").await,
            Err(EraseError::NotConfirmed)
        ));
        let done = erase_candidate(&pool, &actor, a, " ERASE ").await.unwrap();
        assert_eq!(done.exports, vec![a, b], "the same e-mail in any case");
        assert_eq!(done.steps, 1);
        assert!(erased_at(&pool, a).await.unwrap().is_some());
        assert!(erased_at(&pool, other).await.unwrap().is_none());
        let left: i64 = sqlx::query_scalar(
            "SELECT (SELECT COUNT(*) FROM exports WHERE candidate_name LIKE '%Ada%' OR candidate_email LIKE '%ada@%' OR last_error LIKE '%ada@%')
                  + (SELECT COUNT(*) FROM export_steps WHERE detail LIKE '%Ada%' OR exchanges LIKE '%ada@%')
                  + (SELECT COUNT(*) FROM bulk_retries WHERE filter LIKE '%ada@%')
                  + (SELECT COUNT(*) FROM audit_log WHERE detail LIKE '%ada@%' OR detail LIKE '%Quill%')
                  + (SELECT COUNT(*) FROM export_search WHERE export_search MATCH 'Qui')",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(left, 0);
        let kept: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM export_search WHERE export_search MATCH 'Riv'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(kept, 1, "another candidate is still found");
        assert!(matches!(
            erase_candidate(&pool, &actor, b, "ERASE").await,
            Err(EraseError::AlreadyErased(_))
        ));
        let err = crate::exports::queue::retry(&pool, &actor, a)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("erased"), "{err}");
    }

    #[tokio::test]
    async fn an_export_in_progress_is_not_erased() {
        let (_dir, pool) = pool().await;
        let actor = Actor::system("test");
        let a = export(&pool, "k1", "11", "Ada Quill", "ada@example.com", "queued").await;
        assert!(matches!(
            erase_candidate(&pool, &actor, a, "ERASE").await,
            Err(EraseError::InProgress { .. })
        ));
    }

    /// A plugin export as the plugin stores it: keyed by its e-mail, with the application the
    /// form named ('' when none).
    async fn plugin_export(pool: &SqlitePool, app: &str, name: &str, email: &str) -> i64 {
        sqlx::query_scalar(
            "INSERT INTO exports (source, idempotency_key, pinpoint_application_id, status,
                                  candidate_name, candidate_email)
             VALUES ('plugin', 'plugin:' || lower(?2), ?1, 'succeeded', ?3, ?2) RETURNING id",
        )
        .bind(app)
        .bind(email)
        .bind(name)
        .fetch_one(pool)
        .await
        .unwrap()
    }

    async fn person(pool: &SqlitePool, id: i64) -> (Option<String>, Option<String>, bool) {
        let (name, email, erased): (Option<String>, Option<String>, Option<String>) =
            sqlx::query_as(
                "SELECT candidate_name, candidate_email, erased_at FROM exports WHERE id = ?",
            )
            .bind(id)
            .fetch_one(pool)
            .await
            .unwrap();
        (name, email, erased.is_some())
    }

    #[tokio::test]
    async fn a_blank_application_or_e_mail_links_nobody() {
        let (_dir, pool) = pool().await;
        let actor = Actor::system("test");
        let erin = plugin_export(&pool, "", "Erin Quarry", "erin@example.com").await;
        let bob = plugin_export(&pool, "", "Bob Stone", "bob@example.com").await;
        let blank = plugin_export(&pool, " ", "Cy Blank", "cy@example.com").await;
        let dee = export(&pool, "k1", "31", "Dee Nomail", "n/a", "succeeded").await;
        let eve = export(&pool, "k2", "32", "Eve Nomail", "n/a", "succeeded").await;
        let fay = export(&pool, "k3", "33", "Fay Space", "  ", "succeeded").await;
        let gus = export(&pool, "k4", "34", "Gus Space", "  ", "succeeded").await;
        sqlx::query(
            "INSERT INTO audit_log (action, target, detail)
             VALUES ('export.resolved', 'export 2', 'was dead: Bob Stone phoned')",
        )
        .execute(&pool)
        .await
        .unwrap();

        let done = erase_candidate(&pool, &actor, erin, "ERASE").await.unwrap();
        assert_eq!(done.exports, vec![erin]);
        assert_eq!(
            person(&pool, bob).await,
            (
                Some("Bob Stone".to_owned()),
                Some("bob@example.com".to_owned()),
                false
            )
        );
        assert!(!person(&pool, blank).await.2);
        let audit: String =
            sqlx::query_scalar("SELECT detail FROM audit_log WHERE action = 'export.resolved'")
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(audit, "was dead: Bob Stone phoned");

        for (erased, kept) in [(dee, eve), (fay, gus)] {
            let done = erase_candidate(&pool, &actor, erased, "ERASE")
                .await
                .unwrap();
            assert_eq!(done.exports, vec![erased], "no e-mail to share");
            assert!(!person(&pool, kept).await.2);
        }
    }

    /// Every text column of every table that holds `needle`, as `table.column`.
    async fn mentions(pool: &SqlitePool, needle: &str) -> Vec<String> {
        let tables: Vec<String> =
            sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'")
                .fetch_all(pool)
                .await
                .unwrap();
        let mut found = Vec::new();
        for table in tables {
            let columns: Vec<String> = sqlx::query_scalar("SELECT name FROM pragma_table_info(?)")
                .bind(&table)
                .fetch_all(pool)
                .await
                .unwrap();
            for column in columns {
                let n: i64 = sqlx::query_scalar(&format!(
                    "SELECT COUNT(*) FROM \"{table}\"
                     WHERE instr(lower(CAST(\"{column}\" AS TEXT)), lower(?)) > 0"
                ))
                .bind(needle)
                .fetch_one(pool)
                .await
                .unwrap();
                if n > 0 {
                    found.push(format!("{table}.{column}"));
                }
            }
        }
        found
    }

    #[tokio::test]
    async fn erasure_leaves_no_key_or_note_and_a_new_submit_starts_a_new_export() {
        let (_dir, pool) = pool().await;
        let actor = Actor::system("test");
        let erin = plugin_export(&pool, "41", "Erin Quarry", "Erin@Example.com").await;
        let other = plugin_export(&pool, "42", "Bob Stone", "bob@example.com").await;
        sqlx::raw_sql(&format!(
            "UPDATE exports SET status = 'resolved', resolved_by = 'op@example.com',
                    resolution = 'Erin Quarry was added by hand', last_error = 'HiBob 500'
             WHERE id = {erin};
             INSERT INTO alerts (kind, export_id, created_at, next_try_at, last_error)
             VALUES ('stopped', {erin}, 'now', 'now', 'mail refused: erin@example.com unknown');
             INSERT INTO webhook_deliveries (outcome, reason, body_sha256, body)
             VALUES ('rejected', 'bad signature', 'h', '{{\"email\":\"erin@example.com\"}}');
             INSERT INTO export_steps (export_id, attempt, step, outcome, exchanges)
             VALUES ({other}, 1, 'search_employee', 'ok', '[{{\"q\":\"erin@example.com\"}}]');"
        ))
        .execute(&pool)
        .await
        .unwrap();
        for needle in ["erin@example.com", "Erin Quarry"] {
            assert!(!mentions(&pool, needle).await.is_empty(), "{needle}");
        }

        erase_candidate(&pool, &actor, erin, "ERASE").await.unwrap();
        for needle in ["erin@example.com", "Erin Quarry", "Quarry"] {
            assert_eq!(
                mentions(&pool, needle).await,
                Vec::<String>::new(),
                "{needle}"
            );
        }
        assert_eq!(
            person(&pool, other).await.1.as_deref(),
            Some("bob@example.com")
        );

        // the form sent again for her: a new export, not the erased one reopened
        let again = crate::exports::plugin_attempt::begin(&pool, "plugin:erin@example.com", "41")
            .await
            .unwrap();
        assert_ne!(again.export_id, erin);
        assert_eq!(again.previous_status, None);
        crate::exports::queue::set_candidate(
            &pool,
            again.export_id,
            Some("Erin Quarry"),
            Some("erin@example.com"),
            None,
        )
        .await
        .unwrap();
        crate::exports::plugin_attempt::finish(
            &pool,
            again.export_id,
            crate::exports::queue::Status::Succeeded,
            None,
        )
        .await
        .unwrap();
        assert_eq!(person(&pool, erin).await, (None, None, true));
        let done = erase_candidate(&pool, &actor, again.export_id, "ERASE")
            .await
            .unwrap();
        assert_eq!(done.exports, vec![again.export_id]);
        assert_eq!(
            mentions(&pool, "erin@example.com").await,
            Vec::<String>::new()
        );
    }

    /// Exports erased before erasure rewrote keys: the upgrade rewrites the key and the note, and
    /// erases again what a later submit wrote back into the row.
    #[tokio::test]
    async fn the_upgrade_repairs_exports_erased_before() {
        use sqlx::migrate::Migrator;
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/u.db", dir.path().display());
        let before = Migrator {
            migrations: db::MIGRATOR
                .migrations
                .iter()
                .filter(|m| m.version < 20261206000002)
                .cloned()
                .collect(),
            ..Migrator::DEFAULT
        };
        std::fs::File::create(dir.path().join("u.db")).unwrap();
        let pool = db::open_existing(&url).await.unwrap();
        before.run(&pool).await.unwrap();
        sqlx::raw_sql(
            "INSERT INTO exports (id, source, idempotency_key, pinpoint_application_id, status,
                                  candidate_name, candidate_email, resolution, erased_at)
             VALUES (5, 'plugin', 'plugin:erin@example.com', '', 'succeeded', 'Erin Quarry',
                     'erin@example.com', 'Erin Quarry phoned', '2026-12-01T00:00:00.000Z'),
                    (6, 'webhook', 'hired:6', '6', 'succeeded', 'Bob Stone', 'bob@example.com',
                     NULL, NULL);
             INSERT INTO export_steps (export_id, attempt, step, outcome, detail, exchanges)
             VALUES (5, 2, 'create_employee', 'ok', 'created', '[{\"email\":\"erin@example.com\"}]');",
        )
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;

        let pool = db::open(&url).await.unwrap();
        assert_eq!(
            mentions(&pool, "erin@example.com").await,
            Vec::<String>::new()
        );
        assert_eq!(mentions(&pool, "Quarry").await, Vec::<String>::new());
        let key: String = sqlx::query_scalar("SELECT idempotency_key FROM exports WHERE id = 5")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(key, "plugin:erased:5");
        assert_eq!(
            person(&pool, 6).await,
            (
                Some("Bob Stone".to_owned()),
                Some("bob@example.com".to_owned()),
                false
            )
        );
    }
}

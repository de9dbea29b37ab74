//! Erasing one candidate's personal data from everything the console stored about them, on a
//! person's request. HiBob and Pinpoint are not touched: the employee and the application are
//! theirs to erase.
//!
//! The candidate is found through one export; every export of the same Pinpoint application or
//! with the same e-mail address is the same person and is erased with it. Erased are:
//! - the exports' name, e-mail, start date and last error (the rows stay, with their status, ids
//!   and HiBob employee id, so "nothing twice" still holds and the history still adds up);
//! - their steps' detail and recorded calls (requests and answers);
//! - the body and headers of every webhook delivery of those exports or that application;
//! - the search index's entries (kept by triggers, then merged so the old terms are dropped);
//! - the name or e-mail wherever else typed text is kept: audit details and targets, and bulk
//!   retries' saved filters (a search for the person).
//!
//! The database deletes with `secure_delete=ON` (see `db`), so replaced values are overwritten
//! rather than left in free space, and the WAL is checkpointed and truncated afterwards so its
//! older copies of the pages go too. Backups taken before keep the data until they are rotated
//! out. An erased export is never retried: that would fetch the person from Pinpoint again.

use sqlx::{QueryBuilder, Sqlite, SqlitePool};

use crate::{access::audit, access::users::Actor, db};

/// What an admin types to confirm: deliberate, and the same for a candidate without an e-mail.
pub const CONFIRMATION: &str = "ERASE";

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
    sqlx::query_scalar::<_, Option<String>>("SELECT erased_at FROM exports WHERE id = ?")
        .bind(id)
        .fetch_optional(pool)
        .await
        .map(Option::flatten)
}

/// [`erased_at`] inside a transaction.
pub async fn erased_at_in(
    conn: &mut sqlx::SqliteConnection,
    id: i64,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar::<_, Option<String>>("SELECT erased_at FROM exports WHERE id = ?")
        .bind(id)
        .fetch_optional(conn)
        .await
        .map(Option::flatten)
}

/// An export of the person: id, status, application id, name, e-mail.
type Person = (i64, String, String, Option<String>, Option<String>);

fn push_ids(q: &mut QueryBuilder<'_, Sqlite>, ids: &[i64]) {
    q.push("(");
    let mut list = q.separated(", ");
    for id in ids {
        list.push_bind(*id);
    }
    list.push_unseparated(")");
}

/// Erases the personal data of export `id`'s candidate; see the module's description.
pub async fn erase_candidate(
    pool: &SqlitePool,
    actor: &Actor,
    id: i64,
    confirmation: &str,
) -> Result<Erased, EraseError> {
    if confirmation.trim() != CONFIRMATION {
        return Err(EraseError::NotConfirmed);
    }
    let mut tx = db::begin_write(pool).await?;
    let target: Option<(String, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT pinpoint_application_id, candidate_email, erased_at FROM exports WHERE id = ?",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    let (application, email, erased) = target.ok_or(EraseError::NotFound(id))?;
    if erased.is_some() {
        return Err(EraseError::AlreadyErased(id));
    }
    let email = email.map(|e| e.trim().to_owned()).filter(|e| !e.is_empty());
    let rows: Vec<Person> = sqlx::query_as(
        "SELECT id, status, pinpoint_application_id, candidate_name, candidate_email FROM exports
         WHERE erased_at IS NULL
           AND (id = ?1 OR pinpoint_application_id = ?2
                OR (?3 IS NOT NULL AND candidate_email = ?3 COLLATE NOCASE))
         ORDER BY id",
    )
    .bind(id)
    .bind(&application)
    .bind(&email)
    .fetch_all(&mut *tx)
    .await?;
    if let Some((busy, status, ..)) = rows
        .iter()
        .find(|(_, status, ..)| status == "queued" || status == "running")
    {
        return Err(EraseError::InProgress {
            id: *busy,
            status: status.clone(),
        });
    }
    let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
    let mut applications: Vec<String> = rows.iter().map(|r| r.2.clone()).collect();
    applications.sort();
    applications.dedup();
    // the texts to hunt for elsewhere; shorter ones would match unrelated words
    let mut terms: Vec<String> = rows
        .iter()
        .flat_map(|r| [r.3.clone(), r.4.clone()])
        .flatten()
        .map(|t| t.trim().to_owned())
        .filter(|t| t.chars().count() >= 3)
        .flat_map(|t| [t.to_lowercase(), t])
        .collect();
    terms.sort();
    terms.dedup();

    let now = db::now_text();
    let mut q = QueryBuilder::<Sqlite>::new(
        "UPDATE exports SET candidate_name = NULL, candidate_email = NULL, start_date = NULL,
                last_error = CASE WHEN last_error IS NULL THEN NULL ELSE 'erased' END,
                erased_at = ",
    );
    q.push_bind(&now)
        .push(", updated_at = ")
        .push_bind(&now)
        .push(" WHERE id IN ");
    push_ids(&mut q, &ids);
    q.build().execute(&mut *tx).await?;

    let mut q = QueryBuilder::<Sqlite>::new(
        "UPDATE export_steps SET exchanges = '[]',
                detail = CASE WHEN detail = '' THEN '' ELSE 'erased' END
         WHERE export_id IN ",
    );
    push_ids(&mut q, &ids);
    let steps = q.build().execute(&mut *tx).await?.rows_affected();

    let mut q = QueryBuilder::<Sqlite>::new(
        "UPDATE webhook_deliveries SET body = '', headers = '{}' WHERE export_id IN ",
    );
    push_ids(&mut q, &ids);
    q.push(" OR application_id IN (");
    let mut list = q.separated(", ");
    for a in &applications {
        list.push_bind(a.clone());
    }
    list.push_unseparated(")");
    let deliveries = q.build().execute(&mut *tx).await?.rows_affected();

    let mut other_mentions = 0;
    for term in &terms {
        other_mentions += sqlx::query(
            "UPDATE audit_log SET detail = replace(detail, ?1, '[erased]'),
                    target = replace(target, ?1, '[erased]')
             WHERE instr(detail, ?1) > 0 OR instr(target, ?1) > 0",
        )
        .bind(term)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        other_mentions += sqlx::query(
            "UPDATE bulk_retries SET filter = replace(filter, ?1, '[erased]')
             WHERE instr(filter, ?1) > 0",
        )
        .bind(term)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    }

    let list = ids
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    audit::record(
        &mut tx,
        actor,
        "candidate.erased",
        Some(&format!("export {id}")),
        &format!(
            "personal data erased from export(s) {list}: {steps} step records, {deliveries} \
             webhook deliveries, {other_mentions} other mentions; HiBob and Pinpoint not changed"
        ),
    )
    .await?;
    tx.commit().await?;

    // An external-content FTS index forgets a row by adding delete markers; the old terms stay
    // in earlier segments until they are merged. Merging everything drops them (and, with
    // secure_delete, zeroes the freed pages). It rewrites the index: seconds at a million
    // exports, in a transaction of its own after the erasure is safely committed.
    let mut tx = db::begin_write(pool).await?;
    sqlx::query("INSERT INTO export_search (export_search) VALUES ('optimize')")
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

/// Copies the WAL into the database and empties it, so earlier versions of pages leave the file.
async fn truncate_wal(pool: &SqlitePool) -> Result<bool, sqlx::Error> {
    let (busy, _, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
        .fetch_one(pool)
        .await?;
    Ok(busy == 0)
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
}

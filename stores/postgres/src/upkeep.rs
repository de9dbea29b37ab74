//! The engine-wide faces on PostgreSQL: erasure, retention, backups and the health probes.

use std::{future::Future, path::Path, time::Duration};

use chrono::{DateTime, Utc};
use integration::{
    access::audit::Actor,
    backup::{BackupError, Backups, Checked, Scheduled},
    db,
    erasure::{self, EraseError, Erased, Erasure, Linked, Links, Plan},
    health::Probes,
    retention::{self, Policy, Pruned, Retention, BATCH},
};
use sqlx::{migrate::Migrate, PgConnection, PgPool};

use crate::{audit, PgStore, MIGRATOR};

/// One erasure at a time: two erasures of one person that start from different exports would
/// otherwise lock that person's exports in different orders.
const ERASURE_LOCK: i64 = 0x7065_6f70_6c65_0004;

/// The engine's name in what the console cannot do on it.
const ENGINE: &str = "PostgreSQL";

// Erasure on PostgreSQL changes the same rows as on SQLite, in one transaction (see
// `integration::erasure`). What it cannot do is SQLite's `secure_delete` and WAL truncation:
// an UPDATE here writes a new row version and leaves the old one, with the erased values, in the
// table's file (and in the pg_trgm index on exports.search_text) as a dead tuple until VACUUM
// (autovacuum, or retention's run) removes it and later writes reuse the space. The WAL segments,
// any WAL archive or replica, and earlier pg_dump backups keep the values until they are recycled
// or rotated out. So `Erased::wal_truncated` is always false here.
#[async_trait::async_trait]
impl Erasure for PgStore {
    async fn erased_at(&self, id: i64) -> Result<Option<String>, sqlx::Error> {
        sqlx::query_scalar!("SELECT erased_at FROM exports WHERE id = $1", id)
            .fetch_optional(&self.pool)
            .await
            .map(Option::flatten)
    }

    async fn erase_candidate(
        &self,
        actor: &Actor,
        id: i64,
        confirmation: &str,
    ) -> Result<Erased, EraseError> {
        erasure::check_confirmation(confirmation)?;
        let mut tx = self.pool.begin().await?;
        sqlx::query!("SELECT pg_advisory_xact_lock($1)", ERASURE_LOCK)
            .execute(&mut *tx)
            .await?;
        let target = sqlx::query!(
            "SELECT pinpoint_application_id, candidate_email, idempotency_key, erased_at
             FROM exports WHERE id = $1",
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
        } = erasure::links(
            &target.pinpoint_application_id,
            target.candidate_email.as_deref(),
            &target.idempotency_key,
        );
        // FOR UPDATE: no retry or claim may start one of these exports between the check that
        // none is in progress and the commit. NULL (no application, no usable e-mail) equals
        // nothing, so it links nobody; lower() under "C" is SQLite's NOCASE.
        let rows = sqlx::query_as!(
            Linked,
            r#"SELECT id, status, pinpoint_application_id, candidate_name, candidate_email,
                      idempotency_key
               FROM exports
               WHERE erased_at IS NULL
                 AND (id = $1 OR pinpoint_application_id = $2
                      OR lower(trim(candidate_email)) = lower($3::text COLLATE "C")
                      OR idempotency_key = $4)
               ORDER BY id
               FOR UPDATE"#,
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
        } = erasure::plan(&rows)?;

        let now = db::now_text();
        sqlx::query!(
            "UPDATE exports
             SET candidate_name = NULL, candidate_email = NULL, start_date = NULL,
                 last_error = CASE WHEN last_error IS NULL THEN NULL ELSE 'erased' END,
                 resolution = CASE WHEN resolution IS NULL THEN NULL ELSE 'erased' END,
                 idempotency_key = CASE WHEN source = 'plugin' THEN 'plugin:erased:' || id
                                        ELSE idempotency_key END,
                 sent_body = NULL, erased_at = $1, updated_at = $1
             WHERE id = ANY($2)",
            now,
            &ids[..]
        )
        .execute(&mut *tx)
        .await?;
        // watching an erased hire would read the person back in; its copies and alerts go too
        sqlx::query!(
            "DELETE FROM hire_watches WHERE export_id = ANY($1)",
            &ids[..]
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query!(
            "DELETE FROM alerts WHERE kind = 'changed' AND export_id = ANY($1)",
            &ids[..]
        )
        .execute(&mut *tx)
        .await?;
        let steps = erase_steps(&mut tx, &ids, &emails).await?;
        let deliveries = erase_deliveries(&mut tx, &ids, &applications, &emails).await?;
        let mut other_mentions = 0;
        for term in &terms {
            other_mentions += replace_mentions(&mut tx, term).await?;
        }
        audit::record(
            &mut tx,
            actor,
            "candidate.erased",
            Some(&format!("export {id}")),
            &erasure::audit_detail(&ids, steps, deliveries, other_mentions),
        )
        .await?;
        tx.commit().await?;
        Ok(Erased {
            exports: ids,
            steps,
            deliveries,
            other_mentions,
            wal_truncated: false,
        })
    }
}

/// Clears the steps of the erased exports, and any other step whose recorded calls hold one of
/// `emails`. Only steps still holding calls are searched (export_steps_recorded keeps them).
async fn erase_steps(
    conn: &mut PgConnection,
    ids: &[i64],
    emails: &[String],
) -> Result<u64, sqlx::Error> {
    let own = sqlx::query!(
        "UPDATE export_steps SET exchanges = '[]',
                detail = CASE WHEN detail = '' THEN '' ELSE 'erased' END
         WHERE export_id = ANY($1)",
        ids
    )
    .execute(&mut *conn)
    .await?
    .rows_affected();
    let mentioning = sqlx::query!(
        "UPDATE export_steps SET exchanges = '[]',
                detail = CASE WHEN detail = '' THEN '' ELSE 'erased' END
         WHERE exchanges <> '[]'
           AND EXISTS (SELECT 1 FROM unnest($1::text[]) AS t (term)
                       WHERE strpos(exchanges, t.term) > 0 OR strpos(detail, t.term) > 0)",
        emails
    )
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(own + mentioning)
}

/// Blanks the deliveries of the erased exports or their applications, and any other delivery
/// still holding a body with one of `emails` (a rejected delivery keeps a prefix of its body).
async fn erase_deliveries(
    conn: &mut PgConnection,
    ids: &[i64],
    applications: &[String],
    emails: &[String],
) -> Result<u64, sqlx::Error> {
    let own = sqlx::query!(
        "UPDATE webhook_deliveries SET body = '', headers = '{}'
         WHERE export_id = ANY($1) OR application_id = ANY($2)",
        ids,
        applications
    )
    .execute(&mut *conn)
    .await?
    .rows_affected();
    let mentioning = sqlx::query!(
        "UPDATE webhook_deliveries SET body = '', headers = '{}'
         WHERE (body <> '' OR headers <> '{}')
           AND EXISTS (SELECT 1 FROM unnest($1::text[]) AS t (term)
                       WHERE strpos(body, t.term) > 0 OR strpos(headers, t.term) > 0)",
        emails
    )
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(own + mentioning)
}

/// Replaces `term` in the free texts that may quote it; returns the rows changed.
async fn replace_mentions(conn: &mut PgConnection, term: &str) -> Result<u64, sqlx::Error> {
    let mut changed = sqlx::query!(
        "UPDATE audit_log SET detail = replace(detail, $1, '[erased]'),
                target = replace(target, $1, '[erased]')
         WHERE strpos(detail, $1) > 0 OR strpos(target, $1) > 0",
        term
    )
    .execute(&mut *conn)
    .await?
    .rows_affected();
    changed += sqlx::query!(
        "UPDATE bulk_retries SET filter = replace(filter, $1, '[erased]')
         WHERE strpos(filter, $1) > 0",
        term
    )
    .execute(&mut *conn)
    .await?
    .rows_affected();
    changed += sqlx::query!(
        "UPDATE webhook_deliveries SET reason = replace(reason, $1, '[erased]')
         WHERE strpos(reason, $1) > 0",
        term
    )
    .execute(&mut *conn)
    .await?
    .rows_affected();
    changed += sqlx::query!(
        "UPDATE alerts SET last_error = replace(last_error, $1, '[erased]'),
                detail = replace(detail, $1, '[erased]')
         WHERE strpos(last_error, $1) > 0 OR strpos(detail, $1) > 0",
        term
    )
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(changed)
}

/// Runs `batch` (one statement, its own transaction) until it changes nothing, pausing between
/// batches for other writers. Only an empty batch ends it (a batch of exports deletes their
/// steps, so a short one may not be the last).
async fn in_batches<F, Fut>(pause: Duration, mut batch: F) -> Result<u64, sqlx::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<u64, sqlx::Error>>,
{
    let mut total = 0;
    loop {
        let n = batch().await?;
        total += n;
        if n == 0 {
            return Ok(total);
        }
        tokio::time::sleep(pause).await;
    }
}

// The batches pick their rows FOR UPDATE SKIP LOCKED: a row another transaction is changing
// (an export at work, an erasure) is left to a later batch or run instead of holding retention
// up, and the rows picked are re-checked against the windows on their newest version.
async fn prune_rejected(pool: &PgPool, cutoff: &str, pause: Duration) -> Result<u64, sqlx::Error> {
    in_batches(pause, move || async move {
        sqlx::query!(
            "DELETE FROM webhook_deliveries WHERE id IN (
                 SELECT id FROM webhook_deliveries
                 WHERE outcome = 'rejected' AND received_at < $1 LIMIT $2
                 FOR UPDATE SKIP LOCKED)",
            cutoff,
            BATCH
        )
        .execute(pool)
        .await
        .map(|r| r.rows_affected())
    })
    .await
}

async fn prune_bodies(pool: &PgPool, cutoff: &str, pause: Duration) -> Result<u64, sqlx::Error> {
    in_batches(pause, move || async move {
        sqlx::query!(
            "UPDATE webhook_deliveries SET body = '', headers = '{}' WHERE id IN (
                 SELECT id FROM webhook_deliveries
                 WHERE (body <> '' OR headers <> '{}') AND received_at < $1 LIMIT $2
                 FOR UPDATE SKIP LOCKED)",
            cutoff,
            BATCH
        )
        .execute(pool)
        .await
        .map(|r| r.rows_affected())
    })
    .await
}

async fn prune_call_records(
    pool: &PgPool,
    cutoff: &str,
    pause: Duration,
) -> Result<u64, sqlx::Error> {
    in_batches(pause, move || async move {
        sqlx::query!(
            "UPDATE export_steps SET exchanges = '[]' WHERE id IN (
                 SELECT id FROM export_steps
                 WHERE exchanges <> '[]' AND started_at < $1 LIMIT $2
                 FOR UPDATE SKIP LOCKED)",
            cutoff,
            BATCH
        )
        .execute(pool)
        .await
        .map(|r| r.rows_affected())
    })
    .await
}

async fn prune_finished(pool: &PgPool, cutoff: &str, pause: Duration) -> Result<u64, sqlx::Error> {
    let mut trimmed = in_batches(pause, move || async move {
        sqlx::query!(
            "DELETE FROM export_steps WHERE export_id IN (
                 SELECT id FROM exports WHERE status = 'succeeded' AND created_at < $1
                 AND EXISTS (SELECT 1 FROM export_steps s WHERE s.export_id = exports.id)
                 LIMIT $2::bigint / 10
                 FOR UPDATE SKIP LOCKED)",
            cutoff,
            BATCH
        )
        .execute(pool)
        .await
        .map(|r| r.rows_affected())
    })
    .await?;
    trimmed += in_batches(pause, move || async move {
        sqlx::query!(
            "UPDATE exports SET candidate_email = NULL, start_date = NULL,
                    idempotency_key = CASE WHEN source = 'plugin' AND strpos(idempotency_key, '@') > 0
                                           THEN 'plugin:expired:' || id ELSE idempotency_key END
             WHERE id IN (
                 SELECT id FROM exports WHERE status = 'succeeded' AND created_at < $1
                 AND (candidate_email IS NOT NULL OR start_date IS NOT NULL
                      OR (source = 'plugin' AND strpos(idempotency_key, '@') > 0))
                 LIMIT $2
                 FOR UPDATE SKIP LOCKED)",
            cutoff,
            BATCH
        )
        .execute(pool)
        .await
        .map(|r| r.rows_affected())
    })
    .await?;
    Ok(trimmed)
}

async fn prune_audit(pool: &PgPool, cutoff: &str, pause: Duration) -> Result<u64, sqlx::Error> {
    in_batches(pause, move || async move {
        sqlx::query!(
            "DELETE FROM audit_log WHERE id IN (
                 SELECT id FROM audit_log WHERE at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)",
            cutoff,
            BATCH
        )
        .execute(pool)
        .await
        .map(|r| r.rows_affected())
    })
    .await
}

/// The pages of the tables retention prunes (their heaps and TOAST tables, without indexes).
async fn pruned_tables_pages(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT (COALESCE(SUM(pg_relation_size(c.oid)
                                + COALESCE(pg_relation_size(NULLIF(c.reltoastrelid, 0)), 0)), 0)
                   / current_setting('block_size')::bigint)::bigint AS "pages!"
           FROM pg_class c
           WHERE c.oid = ANY (ARRAY['webhook_deliveries', 'export_steps', 'exports',
                                    'audit_log']::regclass[])"#
    )
    .fetch_one(pool)
    .await
}

#[async_trait::async_trait]
impl Retention for PgStore {
    async fn prune(&self, policy: &Policy, now: DateTime<Utc>) -> Result<Pruned, sqlx::Error> {
        let (pool, p) = (&self.pool, policy.pause);
        let mut out = Pruned {
            rejected_deleted: prune_rejected(
                pool,
                &retention::cutoff(now, policy.rejected_days),
                p,
            )
            .await?,
            bodies_blanked: prune_bodies(
                pool,
                &retention::cutoff(now, policy.webhook_bodies_days),
                p,
            )
            .await?,
            call_records_cleared: prune_call_records(
                pool,
                &retention::cutoff(now, policy.call_records_days),
                p,
            )
            .await?,
            ..Pruned::default()
        };
        out.finished_exports_trimmed = prune_finished(
            pool,
            &retention::cutoff(now, policy.finished_exports_days),
            p,
        )
        .await?;
        out.audit_deleted =
            prune_audit(pool, &retention::cutoff(now, policy.audit_days), p).await?;
        out.pages_freed = self.reclaim(p).await?;
        Ok(out)
    }

    /// PostgreSQL has no free-page list to hand back: a plain VACUUM of the pruned tables makes
    /// their dead rows' space reusable and truncates empty pages at their ends, which is what it
    /// can return to the file system. Answers those truncated pages (of the tables and their
    /// TOAST tables), which is often 0 where SQLite would count every free page; VACUUM FULL,
    /// which rewrites a table under an exclusive lock, is left to the operator.
    async fn reclaim(&self, pause: Duration) -> Result<i64, sqlx::Error> {
        let before = pruned_tables_pages(&self.pool).await?;
        // VACUUM cannot run in a transaction block: each is a statement of its own on the pool
        sqlx::query!("VACUUM webhook_deliveries")
            .execute(&self.pool)
            .await?;
        tokio::time::sleep(pause).await;
        sqlx::query!("VACUUM export_steps")
            .execute(&self.pool)
            .await?;
        tokio::time::sleep(pause).await;
        sqlx::query!("VACUUM exports").execute(&self.pool).await?;
        tokio::time::sleep(pause).await;
        sqlx::query!("VACUUM audit_log").execute(&self.pool).await?;
        let after = pruned_tables_pages(&self.pool).await?;
        Ok((before - after).max(0))
    }
}

#[async_trait::async_trait]
impl Backups for PgStore {
    async fn backup(&self, _output: &Path, _replace: bool) -> Result<Checked, BackupError> {
        Err(BackupError::Unsupported(ENGINE.to_owned()))
    }

    async fn scheduled_backup(
        &self,
        _dir: &Path,
        _keep: usize,
        _now: DateTime<Utc>,
    ) -> Result<Scheduled, BackupError> {
        Err(BackupError::Unsupported(ENGINE.to_owned()))
    }
}

#[async_trait::async_trait]
impl Probes for PgStore {
    async fn readiness(&self) -> Result<(), String> {
        self.schema_readiness().await?;
        self.write_probe().await
    }

    async fn schema_readiness(&self) -> Result<(), String> {
        sqlx::query_scalar!(r#"SELECT 1 AS "one!""#)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| format!("database does not answer: {e}"))?;
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(|e| format!("database does not answer: {e}"))?;
        // the migrator's own reading of its table, which it keeps (and which no query here
        // names): a failed migration is recorded as dirty, not applied
        let read = async {
            let dirty = conn.dirty_version().await?;
            let applied = conn.list_applied_migrations().await?;
            Ok::<_, sqlx::migrate::MigrateError>(
                applied
                    .into_iter()
                    .map(|m| m.version)
                    .filter(|v| Some(*v) != dirty)
                    .collect::<Vec<i64>>(),
            )
        };
        let applied = read
            .await
            .map_err(|e| format!("cannot read migrations: {e}"))?;
        db::all_applied(&MIGRATOR, &applied)
    }

    async fn write_probe(&self) -> Result<(), String> {
        let now = db::now_text();
        sqlx::query!(
            "INSERT INTO health_probe (id, checked_at) VALUES (1, $1)
             ON CONFLICT (id) DO UPDATE SET checked_at = excluded.checked_at",
            now
        )
        .execute(&self.pool)
        .await
        .map(|_| ())
        .map_err(|e| format!("database cannot write: {e}"))
    }
}

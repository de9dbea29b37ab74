//! The export queue: claims under a lease, ends of attempts, recovery and retries.

use std::time::Duration;

use futures_util::future::join_all;
use integration::{
    access::audit::Actor,
    exports::{
        queue::{MappingChoice, QueueError, StepRecord},
        ExportQueue, PluginAttempts,
    },
};
use store_postgres::test_sql::Sql;

use crate::common::Both;

const LONG: Duration = Duration::from_secs(300);

/// A webhook export due now, as a hire's delivery leaves it; its id.
pub async fn seed(sql: &Sql, key: &str) -> i64 {
    seed_as(sql, key, "webhook", "7").await
}

pub async fn seed_as(sql: &Sql, key: &str, source: &str, application: &str) -> i64 {
    sql.execute(
        "INSERT INTO exports (source, idempotency_key, pinpoint_application_id) VALUES (?, ?, ?)",
        &[source.into(), key.into(), application.into()],
    )
    .await;
    sql.scalar(
        "SELECT id FROM exports WHERE idempotency_key = ?",
        &[key.into()],
    )
    .await
}

/// Sets an export's status directly, for exports no use case has stopped yet.
pub async fn set_status(sql: &Sql, id: i64, status: &str) {
    sql.execute(
        "UPDATE exports SET status = ? WHERE id = ?",
        &[status.into(), id.into()],
    )
    .await;
}

/// The lease on export `id` ran out a long time ago.
pub async fn lapse(sql: &Sql, id: i64) {
    sql.execute(
        "UPDATE exports SET lease_until = '2000-01-01T00:00:00.000Z' WHERE id = ?",
        &[id.into()],
    )
    .await;
}

/// The audit log, oldest first: (actor e-mail, action, target, detail).
pub async fn audit(sql: &Sql) -> Vec<(Option<String>, String, Option<String>, String)> {
    sql.rows(
        "SELECT actor_email, action, target, detail FROM audit_log ORDER BY id",
        &[],
    )
    .await
}

fn queue<'a>(e: &crate::common::Engine<'a>) -> &'a dyn ExportQueue {
    e.face(|s| s as &dyn ExportQueue, |p| p as &dyn ExportQueue)
}

#[tokio::test]
async fn a_claim_leases_and_a_lapsed_lease_is_taken_again() {
    let both = Both::new().await;
    for (name, e) in both.each() {
        let q = queue(&e);
        let id = seed(e.sql, "k1").await;
        let job = q.claim("w1", LONG, 8).await.unwrap().expect(name);
        assert_eq!(
            (job.id, job.attempts, job.status.as_str()),
            (id, 1, "running"),
            "{name}"
        );
        assert_eq!(job.max_attempts, 8, "{name}");
        assert!(
            q.claim("w2", LONG, 8).await.unwrap().is_none(),
            "{name}: leased"
        );
        lapse(e.sql, id).await;
        let again = q.claim("w2", LONG, 8).await.unwrap().expect(name);
        assert_eq!((again.id, again.attempts), (id, 2), "{name}");
        let owner: Option<String> = e
            .sql
            .scalar("SELECT lease_owner FROM exports WHERE id = ?", &[id.into()])
            .await;
        assert_eq!(owner.as_deref(), Some("w2"), "{name}");
        assert_eq!(
            q.find(id).await.unwrap(),
            Some(again),
            "{name}: claim answers the row"
        );
    }
}

#[tokio::test]
async fn concurrent_claims_take_each_due_export_once() {
    let both = Both::new().await;
    for (name, e) in both.each() {
        let q = queue(&e);
        let mut ids = Vec::new();
        for n in 0..10 {
            ids.push(seed(e.sql, &format!("k{n}")).await);
        }
        let owners: Vec<String> = (0..20).map(|n| format!("w{n}")).collect();
        let claims = join_all(owners.iter().map(|o| q.claim(o, LONG, 8))).await;
        let mut claimed: Vec<i64> = claims
            .into_iter()
            .filter_map(|c| c.unwrap().map(|x| x.id))
            .collect();
        claimed.sort_unstable();
        assert_eq!(claimed, ids, "{name}: each export claimed once");
        let attempts: Vec<i64> = e
            .sql
            .scalars("SELECT attempts FROM exports ORDER BY id", &[])
            .await;
        assert_eq!(attempts, vec![1; 10], "{name}");
        let holders: i64 = e
            .sql
            .scalar("SELECT COUNT(DISTINCT lease_owner) FROM exports", &[])
            .await;
        assert_eq!(holders, 10, "{name}");
        assert_eq!(
            q.counts().await.unwrap(),
            vec![("running".to_owned(), 10)],
            "{name}"
        );
    }
}

#[tokio::test]
async fn claims_take_the_oldest_due_first_and_wait_for_the_future() {
    let both = Both::new().await;
    for (name, e) in both.each() {
        let q = queue(&e);
        assert_eq!(q.next_due().await.unwrap(), None, "{name}");
        let later = seed(e.sql, "later").await;
        let first = seed(e.sql, "first").await;
        let future = seed(e.sql, "future").await;
        for (id, at) in [
            (later, "2001-01-01T00:00:00.000Z"),
            (first, "2000-01-01T00:00:00.000Z"),
            (future, "2999-01-01T00:00:00.000Z"),
        ] {
            e.sql
                .execute(
                    "UPDATE exports SET next_attempt_at = ? WHERE id = ?",
                    &[at.into(), id.into()],
                )
                .await;
        }
        assert_eq!(
            q.next_due().await.unwrap().as_deref(),
            Some("2000-01-01T00:00:00.000Z"),
            "{name}"
        );
        assert_eq!(
            q.claim("w", LONG, 8).await.unwrap().map(|x| x.id),
            Some(first),
            "{name}"
        );
        assert_eq!(
            q.claim("w", LONG, 8).await.unwrap().map(|x| x.id),
            Some(later),
            "{name}"
        );
        assert!(
            q.claim("w", LONG, 8).await.unwrap().is_none(),
            "{name}: not due yet"
        );
        lapse(e.sql, first).await;
        // a running export is due when its lease lapses
        assert_eq!(
            q.next_due().await.unwrap().as_deref(),
            Some("2000-01-01T00:00:00.000Z"),
            "{name}"
        );
    }
}

#[tokio::test]
async fn a_result_from_an_owner_whose_lease_was_taken_over_is_refused() {
    let both = Both::new().await;
    for (name, e) in both.each() {
        let q = queue(&e);
        let id = seed(e.sql, "k").await;
        q.claim("w1", LONG, 8).await.unwrap().expect(name);
        lapse(e.sql, id).await;
        q.claim("w2", LONG, 8).await.unwrap().expect(name);
        assert!(!q.succeed(id, "w1").await.unwrap(), "{name}");
        assert!(
            !q.retry_later(id, "w1", LONG, "late").await.unwrap(),
            "{name}"
        );
        assert!(
            !q.needs_attention(id, "w1", "late").await.unwrap(),
            "{name}"
        );
        assert!(!q.dead(id, "w1", "late").await.unwrap(), "{name}");
        q.release(id, "w1").await.unwrap();
        q.release_until(id, "w1", LONG).await.unwrap();
        let row = q.find(id).await.unwrap().unwrap();
        assert_eq!(
            (row.status.as_str(), row.attempts),
            ("running", 2),
            "{name}"
        );
        assert_eq!(row.last_error, None, "{name}");
        assert!(
            q.needs_attention(id, "w2", "HiBob 400").await.unwrap(),
            "{name}"
        );
        let row = q.find(id).await.unwrap().unwrap();
        assert_eq!(row.status, "needs_attention", "{name}");
        assert_eq!(row.last_error.as_deref(), Some("HiBob 400"), "{name}");
        // nothing is running any more: even the last owner's result is refused
        assert!(!q.succeed(id, "w2").await.unwrap(), "{name}");
    }
}

#[tokio::test]
async fn each_end_of_an_attempt_sets_its_status() {
    let both = Both::new().await;
    for (name, e) in both.each() {
        let q = queue(&e);
        let ids = [
            seed(e.sql, "a").await,
            seed(e.sql, "b").await,
            seed(e.sql, "c").await,
        ];
        for _ in ids {
            q.claim("w", LONG, 8).await.unwrap().expect(name);
        }
        assert!(q.succeed(ids[0], "w").await.unwrap(), "{name}");
        assert!(q.dead(ids[1], "w", "gone").await.unwrap(), "{name}");
        assert!(
            q.retry_later(ids[2], "w", LONG, "HiBob 500").await.unwrap(),
            "{name}"
        );
        let waiting = q.find(ids[2]).await.unwrap().unwrap();
        assert_eq!(waiting.status, "queued", "{name}");
        assert!(
            waiting.next_attempt_at > integration::db::now_text(),
            "{name}"
        );
        assert!(
            q.claim("w", LONG, 8).await.unwrap().is_none(),
            "{name}: waits"
        );
        assert_eq!(
            q.counts().await.unwrap(),
            vec![
                ("dead".to_owned(), 1),
                ("queued".to_owned(), 1),
                ("succeeded".to_owned(), 1)
            ],
            "{name}"
        );
        let free: i64 = e
            .sql
            .scalar(
                "SELECT COUNT(*) FROM exports WHERE lease_owner IS NULL",
                &[],
            )
            .await;
        assert_eq!(free, 3, "{name}");
    }
}

#[tokio::test]
async fn a_lease_that_keeps_lapsing_is_taken_at_most_max_attempts_times() {
    let both = Both::new().await;
    for (name, e) in both.each() {
        let q = queue(&e);
        let id = seed(e.sql, "crashy").await;
        for attempt in 1..=3 {
            let job = q.claim("w", LONG, 3).await.unwrap().expect(name);
            assert_eq!((job.attempts, job.max_attempts), (attempt, 3), "{name}");
            // the attempt never reports back: the process died
            lapse(e.sql, id).await;
        }
        assert!(q.claim("w", LONG, 3).await.unwrap().is_none(), "{name}");
        assert_eq!(q.bury_exhausted(3).await.unwrap(), vec![id], "{name}");
        let dead = q.find(id).await.unwrap().unwrap();
        assert_eq!(dead.status, "dead", "{name}");
        assert!(
            dead.last_error
                .as_deref()
                .is_some_and(|m| m.contains("3 attempts")),
            "{name}: {dead:?}"
        );
        assert!(q.bury_exhausted(3).await.unwrap().is_empty(), "{name}");
    }
}

#[tokio::test]
async fn a_higher_setting_in_force_is_recorded_on_the_claim() {
    let both = Both::new().await;
    for (name, e) in both.each() {
        let q = queue(&e);
        let id = seed(e.sql, "k").await;
        q.claim("w", LONG, 1).await.unwrap().expect(name);
        lapse(e.sql, id).await;
        assert!(q.claim("w", LONG, 1).await.unwrap().is_none(), "{name}");
        // the setting was raised: the lapsed export has attempts left again
        let job = q.claim("w", LONG, 4).await.unwrap().expect(name);
        assert_eq!((job.attempts, job.max_attempts), (2, 4), "{name}");
        // and a lower one never records fewer attempts than were taken
        lapse(e.sql, id).await;
        e.sql
            .execute("UPDATE exports SET attempts = 5 WHERE id = ?", &[id.into()])
            .await;
        assert!(q.claim("w", LONG, 5).await.unwrap().is_none(), "{name}");
        e.sql
            .execute(
                "UPDATE exports SET status = 'queued', lease_owner = NULL WHERE id = ?",
                &[id.into()],
            )
            .await;
        let job = q.claim("w", LONG, 2).await.unwrap().expect(name);
        assert_eq!((job.attempts, job.max_attempts), (6, 6), "{name}");
    }
}

/// A SQLite file is served by one process, so at start every lease not its own is a dead
/// process's; on PostgreSQL other processes may be alive mid-export, so only lapsed leases are.
#[tokio::test]
async fn a_restart_recovers_dead_processes_leases_but_not_exhausted_ones() {
    let both = Both::new().await;
    for (name, e) in both.each() {
        let q = queue(&e);
        let shared = name == "postgres";
        let resumed = seed(e.sql, "resumed").await;
        q.claim("old-process", LONG, 8).await.unwrap().expect(name);
        let killer = seed(e.sql, "killer").await;
        q.claim("old-process", LONG, 1).await.unwrap().expect(name);
        let mine = seed(e.sql, "mine").await;
        q.claim("new", LONG, 8).await.unwrap().expect(name);
        assert!(q.claim("new", LONG, 8).await.unwrap().is_none(), "{name}");
        let status = |id| async move { q.find(id).await.unwrap().unwrap().status };
        if shared {
            // the old process may be alive: its leases stand until they lapse
            assert_eq!(q.recover_abandoned("new", 1).await.unwrap(), 0, "{name}");
            assert_eq!(status(killer).await, "running", "{name}");
            assert_eq!(status(resumed).await, "running", "{name}");
            lapse(e.sql, killer).await;
            lapse(e.sql, resumed).await;
        }
        assert_eq!(q.recover_abandoned("new", 1).await.unwrap(), 0, "{name}");
        assert_eq!(status(killer).await, "dead", "{name}");
        assert_eq!(status(resumed).await, "dead", "{name}");
        assert_eq!(status(mine).await, "running", "{name}");

        let other = seed(e.sql, "other").await;
        q.claim("old-process", LONG, 8).await.unwrap().expect(name);
        if shared {
            assert_eq!(q.recover_abandoned("new", 8).await.unwrap(), 0, "{name}");
            lapse(e.sql, other).await;
        }
        assert_eq!(q.recover_abandoned("new", 8).await.unwrap(), 1, "{name}");
        let job = q.claim("new", LONG, 8).await.unwrap().expect(name);
        assert_eq!((job.id, job.attempts), (other, 2), "{name}");
    }
}

/// A lease is moved on only while its holder still holds it; one taken over is not.
#[tokio::test]
async fn a_lease_is_renewed_only_by_its_holder() {
    let both = Both::new().await;
    for (name, e) in both.each() {
        let q = queue(&e);
        let id = seed(e.sql, "k").await;
        q.claim("a", LONG, 8).await.unwrap().expect(name);
        lapse(e.sql, id).await;
        assert!(!q.renew(id, "b", LONG).await.unwrap(), "{name}");
        assert!(q.renew(id, "a", LONG).await.unwrap(), "{name}");
        // renewed: nobody else can claim it now
        assert!(q.claim("b", LONG, 8).await.unwrap().is_none(), "{name}");
        lapse(e.sql, id).await;
        let job = q.claim("b", LONG, 8).await.unwrap().expect(name);
        assert_eq!(job.id, id, "{name}");
        assert!(!q.renew(id, "a", LONG).await.unwrap(), "{name}: taken over");
        assert!(!q.succeed(id, "a").await.unwrap(), "{name}");
        assert!(q.renew(id, "b", LONG).await.unwrap(), "{name}");
    }
}

#[tokio::test]
async fn a_submit_held_row_is_never_claimed_nor_recovered_nor_buried() {
    let both = Both::new().await;
    for (name, e) in both.each() {
        let q = queue(&e);
        let submits = e.face(|s| s as &dyn PluginAttempts, |p| p as &dyn PluginAttempts);
        let held = submits.begin("plugin:ada@example.com", "7").await.unwrap();
        lapse(e.sql, held.export_id).await;
        assert!(
            q.claim("worker", LONG, 8).await.unwrap().is_none(),
            "{name}"
        );
        assert!(q.bury_exhausted(1).await.unwrap().is_empty(), "{name}");
        e.sql
            .execute(
                "UPDATE exports SET lease_owner = 'plugin-submit:pid-1-gone' WHERE id = ?",
                &[held.export_id.into()],
            )
            .await;
        assert_eq!(q.recover_abandoned("worker", 8).await.unwrap(), 0, "{name}");
        assert_eq!(
            q.find(held.export_id).await.unwrap().unwrap().status,
            "running",
            "{name}"
        );
    }
}

#[tokio::test]
async fn release_gives_the_attempt_back() {
    let both = Both::new().await;
    for (name, e) in both.each() {
        let q = queue(&e);
        let id = seed(e.sql, "k").await;
        q.claim("w", LONG, 8).await.unwrap().expect(name);
        q.release(id, "w").await.unwrap();
        let job = q.find(id).await.unwrap().unwrap();
        assert_eq!((job.status.as_str(), job.attempts), ("queued", 0), "{name}");
        assert!(q.next_due().await.unwrap().is_some(), "{name}");
        q.claim("w", LONG, 8).await.unwrap().expect(name);
        q.release_until(id, "w", LONG).await.unwrap();
        let job = q.find(id).await.unwrap().unwrap();
        assert_eq!((job.status.as_str(), job.attempts), ("queued", 0), "{name}");
        assert!(
            q.claim("w", LONG, 8).await.unwrap().is_none(),
            "{name}: asked to wait"
        );
        let lease: Option<String> = e
            .sql
            .scalar("SELECT lease_owner FROM exports WHERE id = ?", &[id.into()])
            .await;
        assert_eq!(lease, None, "{name}");
    }
}

#[tokio::test]
async fn retry_refuses_what_is_not_stopped_or_has_nothing_to_start_from() {
    let both = Both::new().await;
    let actor = Actor::system("tester");
    for (name, e) in both.each() {
        let q = queue(&e);
        assert!(
            matches!(q.retry(&actor, 999).await, Err(QueueError::NotFound(999))),
            "{name}"
        );
        let cases = [
            (
                "queued",
                "webhook",
                "7",
                false,
                "export {id} is queued: it is already waiting",
            ),
            (
                "running",
                "webhook",
                "7",
                false,
                "export {id} is running: it is running right now",
            ),
            (
                "succeeded",
                "webhook",
                "7",
                false,
                "export {id} is succeeded: it already succeeded",
            ),
            ("dead", "webhook", "7", true, "personal data was erased"),
            (
                "needs_attention",
                "plugin",
                " ",
                false,
                "without naming an application",
            ),
        ];
        for (n, (status, source, application, erased, why)) in cases.into_iter().enumerate() {
            let id = seed_as(e.sql, &format!("k{n}"), source, application).await;
            set_status(e.sql, id, status).await;
            if erased {
                e.sql
                    .execute(
                        "UPDATE exports SET erased_at = '2026-01-01T00:00:00.000Z' WHERE id = ?",
                        &[id.into()],
                    )
                    .await;
            }
            let err = q.retry(&actor, id).await.unwrap_err();
            let why = why.replace("{id}", &id.to_string());
            assert!(
                matches!(err, QueueError::NotRetryable { .. }) && err.to_string().contains(&why),
                "{name} {status}: {err}"
            );
            assert_eq!(q.find(id).await.unwrap().unwrap().status, status, "{name}");
        }
        assert!(
            audit(e.sql).await.is_empty(),
            "{name}: a refusal audits nothing"
        );
        // a plugin export that names its application is finished from it
        let named = seed_as(e.sql, "named", "plugin", "8").await;
        set_status(e.sql, named, "resolved").await;
        assert_eq!(
            q.retry(&actor, named).await.unwrap().status,
            "queued",
            "{name}"
        );
    }
}

#[tokio::test]
async fn retry_queues_a_stopped_export_with_a_fresh_allowance_and_audits_it() {
    let both = Both::new().await;
    let actor = Actor::system("tester");
    for (name, e) in both.each() {
        let q = queue(&e);
        let id = seed(e.sql, "k").await;
        q.claim("w", LONG, 8).await.unwrap().expect(name);
        q.set_mapping_version(id, 1).await.unwrap();
        q.needs_attention(id, "w", "HiBob 400: invalid site")
            .await
            .unwrap();
        e.sql
            .batch(&[
                ("INSERT INTO bulk_retries (id) VALUES (1)", vec![]),
                (
                    "INSERT INTO bulk_retry_members
                         (bulk_retry_id, export_id, previous_status, previous_attempts)
                     VALUES (1, ?, 'needs_attention', 1)",
                    vec![id.into()],
                ),
            ])
            .await;
        let kept = q
            .retry_with(&actor, id, MappingChoice::Original)
            .await
            .unwrap();
        assert_eq!(
            (
                kept.status.as_str(),
                kept.attempts,
                kept.earlier_attempts,
                kept.mapping_version
            ),
            ("queued", 0, 1, Some(1)),
            "{name}"
        );
        let superseded: bool = e
            .sql
            .scalar(
                "SELECT superseded FROM bulk_retry_members WHERE export_id = ?",
                &[id.into()],
            )
            .await;
        assert!(superseded, "{name}: the bulk run no longer speaks for it");
        q.claim("w", LONG, 8).await.unwrap().expect(name);
        q.dead(id, "w", "gone").await.unwrap();
        let current = q.retry(&actor, id).await.unwrap();
        assert_eq!(
            (current.earlier_attempts, current.mapping_version),
            (2, None),
            "{name}"
        );

        let fresh = seed(e.sql, "fresh").await;
        set_status(e.sql, fresh, "dead").await;
        q.retry_with(&actor, fresh, MappingChoice::Original)
            .await
            .unwrap();
        let target = format!("export {id}");
        let fresh_target = format!("export {fresh}");
        let who = Some("tester".to_owned());
        assert_eq!(
            audit(e.sql).await,
            vec![
                (
                    who.clone(),
                    "export.retried".to_owned(),
                    Some(target.clone()),
                    "was needs attention; retried with its original mapping v1".to_owned()
                ),
                (
                    who.clone(),
                    "export.retried".to_owned(),
                    Some(target),
                    "was dead; retried with the current mapping".to_owned()
                ),
                (
                    who,
                    "export.retried".to_owned(),
                    Some(fresh_target),
                    "was dead; retried with the current mapping (it had none yet)".to_owned()
                ),
            ],
            "{name}"
        );
    }
}

#[tokio::test]
async fn concurrent_retries_of_one_export_queue_it_once() {
    let both = Both::new().await;
    let actor = Actor::system("tester");
    for (name, e) in both.each() {
        let q = queue(&e);
        let id = seed(e.sql, "k").await;
        set_status(e.sql, id, "needs_attention").await;
        e.sql
            .execute("UPDATE exports SET attempts = 3 WHERE id = ?", &[id.into()])
            .await;
        let tries = join_all((0..6).map(|_| q.retry(&actor, id))).await;
        let done = tries.iter().filter(|t| t.is_ok()).count();
        assert_eq!(done, 1, "{name}: {tries:?}");
        assert!(
            tries.iter().all(|t| match t {
                Ok(_) => true,
                Err(err) => err.to_string().contains("already waiting"),
            }),
            "{name}: {tries:?}"
        );
        let row = q.find(id).await.unwrap().unwrap();
        assert_eq!(
            (row.attempts, row.earlier_attempts),
            (0, 3),
            "{name}: counted once"
        );
        assert_eq!(audit(e.sql).await.len(), 1, "{name}");
    }
}

#[tokio::test]
async fn steps_number_attempts_across_retries() {
    let both = Both::new().await;
    for (name, e) in both.each() {
        let q = queue(&e);
        let id = seed(e.sql, "k").await;
        let step = |attempt| StepRecord {
            attempt,
            step: "map",
            outcome: "failed",
            detail: "surname is empty",
            exchanges_json: "[{\"call\":1}]",
            duration_ms: 12,
        };
        let job = q.claim("w", LONG, 8).await.unwrap().expect(name);
        q.record_step(id, &step(job.attempts)).await.unwrap();
        q.needs_attention(id, "w", "surname is empty")
            .await
            .unwrap();
        let retried = q.retry(&Actor::system("tester"), id).await.unwrap();
        assert_eq!(
            (retried.attempts, retried.earlier_attempts),
            (0, 1),
            "{name}"
        );
        let job = q.claim("w", LONG, 8).await.unwrap().expect(name);
        assert_eq!(job.attempts, 1, "{name}: a fresh allowance");
        q.record_step(id, &step(job.attempts)).await.unwrap();
        let steps = q.steps(id).await.unwrap();
        let numbers: Vec<i64> = steps.iter().map(|s| s.attempt).collect();
        assert_eq!(
            numbers,
            [1, 2],
            "{name}: the attempt after the retry is the second"
        );
        let s = &steps[0];
        assert_eq!(
            (
                s.step.as_str(),
                s.outcome.as_str(),
                s.detail.as_str(),
                s.exchanges.as_str()
            ),
            ("map", "failed", "surname is empty", "[{\"call\":1}]"),
            "{name}"
        );
        assert_eq!(s.duration_ms, 12, "{name}");
        assert!(q.steps(999).await.unwrap().is_empty(), "{name}");
    }
}

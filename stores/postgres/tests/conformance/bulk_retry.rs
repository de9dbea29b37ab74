//! Bulk retries: what a run takes, what its cancel puts back, how its progress reads, and that
//! runs started and cancelled at the same time as other changes keep every export in one run.

use std::time::Duration;

use integration::{
    access::audit::Actor,
    exports::{
        bulk_retry::{BulkError, Progress},
        search::ExportFilter,
        storage::BulkRetries,
    },
};
use store_postgres::test_sql::Sql;

use crate::common::Both;

/// A run's member: run, export, status and attempts before, superseded, cancelled, mapping.
type Member = (i64, i64, String, i64, bool, i64, Option<i64>);

/// An export that stopped with `status` after one attempt.
async fn stopped(sql: &Sql, key: &str, status: &str, source: &str, application: &str) -> i64 {
    sql.scalar(
        "INSERT INTO exports (source, idempotency_key, pinpoint_application_id, status, attempts,
                              last_error)
         VALUES (?, ?, ?, ?, 1, 'bad site') RETURNING id",
        &[source.into(), key.into(), application.into(), status.into()],
    )
    .await
}

async fn webhook(sql: &Sql, key: &str, status: &str) -> i64 {
    stopped(sql, key, status, "webhook", "7").await
}

fn status(s: &str) -> ExportFilter {
    ExportFilter {
        status: Some(s.into()),
        ..Default::default()
    }
}

/// The audit log, without its times.
async fn audit(sql: &Sql) -> Vec<(String, Option<String>, String, Option<String>)> {
    sql.rows(
        "SELECT action, target, detail, actor_email FROM audit_log ORDER BY id",
        &[],
    )
    .await
}

/// The status counters agree with the exports.
async fn counters_hold(name: &str, sql: &Sql) {
    let kept: Vec<(String, i64)> = sql
        .rows(
            "SELECT status, n FROM export_status_counts WHERE n > 0 ORDER BY status",
            &[],
        )
        .await;
    let counted: Vec<(String, i64)> = sql
        .rows(
            "SELECT status, COUNT(*) FROM exports GROUP BY status ORDER BY status",
            &[],
        )
        .await;
    assert_eq!(kept, counted, "{name}: the counters follow every change");
}

/// A run's progress without its times, which differ between engines.
fn progress(p: &Progress) -> (i64, i64, i64, i64, i64, i64, i64, bool, String) {
    (
        p.id,
        p.total,
        p.succeeded,
        p.failed,
        p.pending,
        p.cancelled,
        p.superseded,
        p.cancelled_at.is_some(),
        p.summary(),
    )
}

#[tokio::test]
async fn takes_only_stopped_exports_a_retry_can_finish() {
    let both = Both::new().await;
    let actor = Actor::system("tester");
    let mut seen = Vec::new();
    for (name, e) in both.each() {
        let bulk = e.face(|s| s as &dyn BulkRetries, |p| p as &dyn BulkRetries);
        let a = webhook(e.sql, "a", "needs_attention").await;
        let b = webhook(e.sql, "b", "dead").await;
        webhook(e.sql, "c", "succeeded").await;
        let p = stopped(
            e.sql,
            "plugin:p@example.com",
            "needs_attention",
            "plugin",
            "77",
        )
        .await;
        stopped(
            e.sql,
            "plugin:q@example.com",
            "needs_attention",
            "plugin",
            " ",
        )
        .await;
        let erased = webhook(e.sql, "r", "dead").await;
        e.sql
            .execute(
                "UPDATE exports SET erased_at = '2026-11-01T00:00:00.000Z' WHERE id = ?",
                &[erased.into()],
            )
            .await;
        e.sql
            .execute(
                "UPDATE exports SET mapping_version = 1 WHERE id = ?",
                &[b.into()],
            )
            .await;

        assert_eq!(bulk.preview(&status("dead")).await.unwrap(), 1, "{name}");
        assert_eq!(
            bulk.preview(&status("succeeded")).await.unwrap(),
            0,
            "{name}"
        );
        let plugin = ExportFilter {
            source: Some("plugin".into()),
            ..Default::default()
        };
        assert_eq!(
            bulk.preview(&plugin).await.unwrap(),
            1,
            "{name}: one names its application"
        );
        assert_eq!(bulk.preview(&status("lost")).await.unwrap(), 0, "{name}");

        let run = bulk.start(&actor, &status("dead")).await.unwrap();
        assert_eq!(run.export_ids, vec![b], "{name}");
        let queued: (String, i64, i64, Option<i64>) = e
            .sql
            .row(
                "SELECT status, attempts, earlier_attempts, mapping_version FROM exports
                 WHERE id = ?",
                &[b.into()],
            )
            .await;
        assert_eq!(queued, ("queued".to_owned(), 0, 1, None), "{name}");
        assert_eq!(
            bulk.preview(&ExportFilter::default()).await.unwrap(),
            2,
            "{name}"
        );
        let all = bulk.start(&actor, &ExportFilter::default()).await.unwrap();
        assert_eq!(
            all.export_ids,
            vec![a, p],
            "{name}: the queued and succeeded are left"
        );
        assert!(
            matches!(
                bulk.start(&actor, &ExportFilter::default()).await,
                Err(BulkError::NothingToRetry)
            ),
            "{name}"
        );
        assert!(
            matches!(
                bulk.start(&actor, &status("lost")).await,
                Err(BulkError::NothingToRetry)
            ),
            "{name}: an invalid filter takes nothing"
        );
        counters_hold(name, e.sql).await;
        let members: Vec<Member> = e
            .sql
            .rows(
                "SELECT bulk_retry_id, export_id, previous_status, previous_attempts, superseded,
                        cancelled, previous_mapping_version
                 FROM bulk_retry_members ORDER BY bulk_retry_id, export_id",
                &[],
            )
            .await;
        let runs: Vec<(i64, Option<String>, String)> = e
            .sql
            .rows(
                "SELECT id, actor_email, filter FROM bulk_retries ORDER BY id",
                &[],
            )
            .await;
        seen.push((run.run_id, all.run_id, members, runs, audit(e.sql).await));
    }
    assert_eq!(seen[1], seen[0]);
    let (_, _, members, runs, audit) = &seen[0];
    assert_eq!(
        members[0].6,
        Some(1),
        "the pinned mapping is kept for a cancel"
    );
    assert!(runs[0].2.contains(r#""status":"dead""#), "{}", runs[0].2);
    assert!(runs[0].2.contains(r#""limit":null"#), "{}", runs[0].2);
    assert_eq!(
        audit
            .iter()
            .filter(|a| a.0 == "export.bulk_retried")
            .count(),
        2
    );
}

#[tokio::test]
async fn progress_follows_the_members_and_cancel_puts_back_the_unstarted() {
    let both = Both::new().await;
    let actor = Actor::system("tester");
    let mut seen = Vec::new();
    for (name, e) in both.each() {
        let bulk = e.face(|s| s as &dyn BulkRetries, |p| p as &dyn BulkRetries);
        let ids = [
            webhook(e.sql, "a", "needs_attention").await,
            webhook(e.sql, "b", "dead").await,
            webhook(e.sql, "c", "needs_attention").await,
        ];
        e.sql
            .execute(
                "UPDATE exports SET mapping_version = 1 WHERE id = ?",
                &[ids[2].into()],
            )
            .await;
        let run = bulk.start(&actor, &ExportFilter::default()).await.unwrap();
        let p = &bulk.recent(5).await.unwrap()[0];
        assert_eq!((p.total, p.pending, p.done()), (3, 3, 0), "{name}");

        // the worker finished the first; the second is running when the cancel comes
        let work = "UPDATE exports SET status = ?, attempts = 1 WHERE id = ?";
        e.sql
            .execute(work, &["succeeded".into(), ids[0].into()])
            .await;
        e.sql
            .execute(work, &["running".into(), ids[1].into()])
            .await;
        let restored = bulk.cancel(&actor, run.run_id).await.unwrap();
        assert_eq!(restored, vec![ids[2]], "{name}");
        let back: (String, i64, i64, Option<String>, Option<i64>) = e
            .sql
            .row(
                "SELECT status, attempts, earlier_attempts, last_error, mapping_version
                 FROM exports WHERE id = ?",
                &[ids[2].into()],
            )
            .await;
        assert_eq!(
            back,
            (
                "needs_attention".to_owned(),
                1,
                0,
                Some("bad site".to_owned()),
                Some(1)
            ),
            "{name}: as it was, its attempt counted once"
        );
        e.sql
            .execute(work, &["needs_attention".into(), ids[1].into()])
            .await;
        let p = &bulk.recent(5).await.unwrap()[0];
        assert!(p.finished(), "{name}");
        assert_eq!(
            p.summary(),
            "3 of 3 done: 1 succeeded, 1 stopped again, 1 cancelled",
            "{name}"
        );
        assert_eq!(
            bulk.stopped_again(run.run_id).await.unwrap(),
            vec![ids[1]],
            "{name}"
        );
        assert!(
            matches!(
                bulk.cancel(&actor, run.run_id).await,
                Err(BulkError::AlreadyCancelled(_))
            ),
            "{name}"
        );
        assert!(
            matches!(bulk.cancel(&actor, 99).await, Err(BulkError::NotFound(99))),
            "{name}"
        );
        // a run whose every export the worker has started has nothing to cancel
        let again = bulk.start(&actor, &ExportFilter::default()).await.unwrap();
        for id in &again.export_ids {
            e.sql.execute(work, &["running".into(), (*id).into()]).await;
        }
        assert!(
            matches!(
                bulk.cancel(&actor, again.run_id).await,
                Err(BulkError::NothingToCancel(_))
            ),
            "{name}"
        );
        counters_hold(name, e.sql).await;
        let recent: Vec<_> = bulk.recent(0).await.unwrap().iter().map(progress).collect();
        assert_eq!(
            recent.len(),
            1,
            "{name}: at least one run, however few are asked"
        );
        let recent: Vec<_> = bulk
            .recent(50)
            .await
            .unwrap()
            .iter()
            .map(progress)
            .collect();
        seen.push((recent, audit(e.sql).await));
    }
    assert_eq!(seen[1], seen[0]);
}

#[tokio::test]
async fn a_later_run_takes_the_export_out_of_an_earlier_runs_cancel() {
    let both = Both::new().await;
    let actor = Actor::system("tester");
    let mut seen = Vec::new();
    for (name, e) in both.each() {
        let bulk = e.face(|s| s as &dyn BulkRetries, |p| p as &dyn BulkRetries);
        let a = webhook(e.sql, "a", "needs_attention").await;
        let b = webhook(e.sql, "b", "needs_attention").await;
        let first = bulk.start(&actor, &ExportFilter::default()).await.unwrap();
        e.sql
            .execute(
                "UPDATE exports SET status = 'needs_attention', attempts = 1 WHERE id = ?",
                &[a.into()],
            )
            .await;
        let second = bulk.start(&actor, &ExportFilter::default()).await.unwrap();
        assert_eq!(second.export_ids, vec![a], "{name}");
        assert_eq!(
            bulk.cancel(&actor, first.run_id).await.unwrap(),
            vec![b],
            "{name}"
        );
        let a_now: String = e
            .sql
            .scalar("SELECT status FROM exports WHERE id = ?", &[a.into()])
            .await;
        assert_eq!(a_now, "queued", "{name}: the later run stands");
        let runs = bulk.recent(5).await.unwrap();
        let p = runs.iter().find(|p| p.id == first.run_id).unwrap();
        assert_eq!((p.superseded, p.cancelled, p.pending), (1, 1, 0), "{name}");
        assert!(
            bulk.stopped_again(first.run_id).await.unwrap().is_empty(),
            "{name}"
        );
        seen.push(runs.iter().map(progress).collect::<Vec<_>>());
    }
    assert_eq!(seen[1], seen[0]);
}

#[tokio::test]
async fn two_runs_started_at_once_never_share_an_export() {
    let both = Both::new().await;
    let actor = Actor::system("tester");
    for (name, e) in both.each() {
        let bulk = e.face(|s| s as &dyn BulkRetries, |p| p as &dyn BulkRetries);
        let mut all = Vec::new();
        for i in 0..40 {
            let status = if i % 2 == 0 {
                "dead"
            } else {
                "needs_attention"
            };
            all.push(webhook(e.sql, &format!("k{i}"), status).await);
        }
        let every = ExportFilter::default();
        let (one, two) = tokio::join!(bulk.start(&actor, &every), bulk.start(&actor, &every));
        let mut taken: Vec<i64> = [one, two]
            .into_iter()
            .filter_map(|r| match r {
                Ok(started) => Some(started.export_ids),
                Err(BulkError::NothingToRetry) => None,
                Err(other) => panic!("{name}: {other}"),
            })
            .flatten()
            .collect();
        taken.sort_unstable();
        assert_eq!(taken, all, "{name}: every export once");
        let members: i64 = e
            .sql
            .scalar("SELECT COUNT(*) FROM bulk_retry_members", &[])
            .await;
        assert_eq!(members, 40, "{name}");
        counters_hold(name, e.sql).await;
    }
}

#[tokio::test]
async fn a_cancel_and_the_worker_never_both_take_an_export() {
    let both = Both::new().await;
    let actor = Actor::system("tester");
    for (name, e) in both.each() {
        let bulk = e.face(|s| s as &dyn BulkRetries, |p| p as &dyn BulkRetries);
        for round in 0..5 {
            let mut ids = Vec::new();
            for i in 0..20 {
                ids.push(webhook(e.sql, &format!("r{round}-{i}"), "dead").await);
            }
            let run = bulk.start(&actor, &ExportFilter::default()).await.unwrap();
            // a claim as the worker makes it, one export at a time, while the cancel runs
            let claims = async {
                for id in ids.iter().rev() {
                    e.sql
                        .execute(
                            "UPDATE exports SET status = 'running', attempts = attempts + 1
                             WHERE id = ? AND status = 'queued'",
                            &[(*id).into()],
                        )
                        .await;
                }
            };
            let (cancelled, ()) = tokio::join!(bulk.cancel(&actor, run.run_id), claims);
            let restored = match cancelled {
                Ok(restored) => restored,
                Err(BulkError::NothingToCancel(_)) => Vec::new(),
                Err(other) => panic!("{name}: {other}"),
            };
            let rows: Vec<(i64, String, i64)> = e
                .sql
                .rows(
                    "SELECT e.id, e.status, m.cancelled FROM bulk_retry_members AS m
                     JOIN exports AS e ON e.id = m.export_id
                     WHERE m.bulk_retry_id = ? ORDER BY e.id",
                    &[run.run_id.into()],
                )
                .await;
            for (id, status, cancelled) in rows {
                let put_back = restored.contains(&id);
                assert_eq!(cancelled == 1, put_back, "{name}: export {id}");
                let expected = if put_back { "dead" } else { "running" };
                assert_eq!(status, expected, "{name}: export {id}");
            }
            e.sql
                .execute(
                    "UPDATE exports SET status = 'succeeded' WHERE status <> 'succeeded'",
                    &[],
                )
                .await;
        }
        counters_hold(name, e.sql).await;
    }
}

#[tokio::test]
async fn runs_go_through_while_single_exports_change_status() {
    let both = Both::new().await;
    let actor = Actor::system("tester");
    let engines = both.each();
    let e = &engines[1].1;
    let bulk: &dyn BulkRetries = &both.pg;
    let pool = both.pg.pool().clone();
    for i in 0..60 {
        let status = if i % 2 == 0 {
            "dead"
        } else {
            "needs_attention"
        };
        webhook(e.sql, &format!("k{i}"), status).await;
    }
    // plugin exports naming no application: no run takes them, but their changes take the
    // same status counters
    let mut others = Vec::new();
    for i in 0..40 {
        others.push(
            stopped(
                e.sql,
                &format!("plugin:{i}@example.com"),
                "dead",
                "plugin",
                "",
            )
            .await,
        );
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut flippers = Vec::new();
    for task in 0..3_usize {
        let (pool, stop, others) = (pool.clone(), stop.clone(), others.clone());
        flippers.push(tokio::spawn(async move {
            let cycle = [
                "queued",
                "dead",
                "needs_attention",
                "queued",
                "needs_attention",
                "dead",
            ];
            let mut step = task;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let id = others[(step * 7) % others.len()];
                let to = cycle[step % cycle.len()];
                // the other side of a deadlock may be one of these: it is not this test's subject
                let _ = sqlx::query("UPDATE exports SET status = $1 WHERE id = $2")
                    .bind(to)
                    .bind(id)
                    .execute(&pool)
                    .await;
                step += 1;
            }
        }));
    }
    for _ in 0..15 {
        let run = bulk.start(&actor, &ExportFilter::default()).await.unwrap();
        assert_eq!(run.export_ids.len(), 60);
        let restored = bulk.cancel(&actor, run.run_id).await.unwrap();
        assert_eq!(restored.len(), 60);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for flipper in flippers {
        flipper.await.unwrap();
    }
    counters_hold("postgres", e.sql).await;
}

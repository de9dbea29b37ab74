//! Plugin submits' holds on their export rows.

use futures_util::future::join_all;
use integration::exports::{
    plugin_attempt::{owner, CUT_OFF},
    queue::Status,
    ExportQueue, PluginAttempts,
};

use crate::common::{Both, Engine};
use crate::queue::lapse;

fn faces<'a>(e: &Engine<'a>) -> (&'a dyn PluginAttempts, &'a dyn ExportQueue) {
    (
        e.face(|s| s as &dyn PluginAttempts, |p| p as &dyn PluginAttempts),
        e.face(|s| s as &dyn ExportQueue, |p| p as &dyn ExportQueue),
    )
}

async fn lease(e: &Engine<'_>, id: i64) -> (Option<String>, Option<String>) {
    e.sql
        .row(
            "SELECT lease_owner, lease_until FROM exports WHERE id = ?",
            &[id.into()],
        )
        .await
}

#[tokio::test]
async fn a_submit_opens_its_row_and_a_resubmit_takes_it_over() {
    let both = Both::new().await;
    for (name, e) in both.each() {
        let (submits, q) = faces(&e);
        let first = submits.begin("plugin:ada@example.com", "7").await.unwrap();
        assert_eq!(
            (
                first.attempt,
                first.previous_status.as_deref(),
                first.cv_uploaded
            ),
            (1, None, false),
            "{name}"
        );
        assert_eq!(first.hibob_employee_id, None, "{name}");
        let row = q.find(first.export_id).await.unwrap().unwrap();
        assert_eq!(
            (
                row.source.as_str(),
                row.status.as_str(),
                row.attempts,
                row.max_attempts
            ),
            ("plugin", "running", 1, 1),
            "{name}"
        );
        assert_eq!(row.pinpoint_application_id, "7", "{name}");
        let (holder, until) = lease(&e, first.export_id).await;
        assert_eq!(holder.as_deref(), Some(owner()), "{name}");
        assert!(
            until.is_some_and(|u| u > integration::db::now_text()),
            "{name}"
        );

        q.set_employee_id(first.export_id, "emp-1").await.unwrap();
        q.mark_cv_uploaded(first.export_id).await.unwrap();
        submits
            .finish(first.export_id, Status::NeedsAttention, Some("HiBob 400"))
            .await
            .unwrap();
        let row = q.find(first.export_id).await.unwrap().unwrap();
        assert_eq!(row.status, "needs_attention", "{name}");
        assert_eq!(row.last_error.as_deref(), Some("HiBob 400"), "{name}");
        assert_eq!(lease(&e, first.export_id).await, (None, None), "{name}");

        // a resubmit without an application keeps the one the row has
        let second = submits.begin("plugin:ada@example.com", "").await.unwrap();
        assert_eq!(second.export_id, first.export_id, "{name}");
        assert_eq!(
            (
                second.attempt,
                second.previous_status.as_deref(),
                second.cv_uploaded
            ),
            (2, Some("needs_attention"), true),
            "{name}"
        );
        assert_eq!(second.hibob_employee_id.as_deref(), Some("emp-1"), "{name}");
        let row = q.find(first.export_id).await.unwrap().unwrap();
        assert_eq!(
            (row.status.as_str(), row.attempts),
            ("running", 2),
            "{name}"
        );
        assert_eq!(row.pinpoint_application_id, "7", "{name}");
        let third = submits.begin("plugin:ada@example.com", "9").await.unwrap();
        assert_eq!(third.attempt, 3, "{name}");
        let row = q.find(first.export_id).await.unwrap().unwrap();
        assert_eq!(row.pinpoint_application_id, "9", "{name}");
        submits
            .finish(first.export_id, Status::Succeeded, None)
            .await
            .unwrap();
        let row = q.find(first.export_id).await.unwrap().unwrap();
        assert_eq!(
            (row.status.as_str(), row.last_error),
            ("succeeded", None),
            "{name}"
        );
    }
}

#[tokio::test]
async fn concurrent_submits_of_one_key_share_one_row_and_count_every_attempt() {
    let both = Both::new().await;
    for (name, e) in both.each() {
        let (submits, q) = faces(&e);
        let begun = join_all((0..8).map(|_| submits.begin("plugin:bob@example.com", "7"))).await;
        let begun: Vec<_> = begun.into_iter().map(|b| b.unwrap()).collect();
        let id = begun[0].export_id;
        assert!(begun.iter().all(|b| b.export_id == id), "{name}: {begun:?}");
        let mut numbers: Vec<i64> = begun.iter().map(|b| b.attempt).collect();
        numbers.sort_unstable();
        assert_eq!(numbers, (1..=8).collect::<Vec<_>>(), "{name}");
        assert_eq!(q.find(id).await.unwrap().unwrap().attempts, 8, "{name}");
        let rows: i64 = e.sql.scalar("SELECT COUNT(*) FROM exports", &[]).await;
        assert_eq!(rows, 1, "{name}");
    }
}

#[tokio::test]
async fn a_live_hold_is_renewed_and_a_lapsed_one_is_settled_not_claimed() {
    let both = Both::new().await;
    for (name, e) in both.each() {
        let (submits, q) = faces(&e);
        let held = submits.begin("plugin:ada@example.com", "7").await.unwrap();
        // a live hold is nobody's to settle
        assert!(
            submits.settle_cut_off(false).await.unwrap().is_empty(),
            "{name}"
        );
        assert!(
            submits.settle_cut_off(true).await.unwrap().is_empty(),
            "{name}"
        );

        lapse(e.sql, held.export_id).await;
        submits.renew(held.export_id).await.unwrap();
        let (_, until) = lease(&e, held.export_id).await;
        assert!(
            until.is_some_and(|u| u > integration::db::now_text()),
            "{name}: renewed"
        );
        lapse(e.sql, held.export_id).await;
        assert!(
            q.claim("worker", std::time::Duration::from_secs(60), 8)
                .await
                .unwrap()
                .is_none(),
            "{name}: the worker never runs a submit's row"
        );
        assert!(q.bury_exhausted(1).await.unwrap().is_empty(), "{name}");
        assert_eq!(
            submits.settle_cut_off(false).await.unwrap(),
            vec![held.export_id],
            "{name}"
        );
        let row = q.find(held.export_id).await.unwrap().unwrap();
        assert_eq!(row.status, "needs_attention", "{name}");
        assert_eq!(row.last_error.as_deref(), Some(CUT_OFF), "{name}");
        assert_eq!(lease(&e, held.export_id).await, (None, None), "{name}");
        // a row no longer held is not renewed
        submits.renew(held.export_id).await.unwrap();
        assert_eq!(lease(&e, held.export_id).await, (None, None), "{name}");
    }
}

#[tokio::test]
async fn at_start_another_process_submits_are_settled_at_once_on_sqlite_once_lapsed_on_postgres() {
    let both = Both::new().await;
    for (name, e) in both.each() {
        let (submits, q) = faces(&e);
        let held = submits.begin("plugin:ada@example.com", "").await.unwrap();
        let mine = submits.begin("plugin:eve@example.com", "8").await.unwrap();
        e.sql
            .execute(
                "UPDATE exports SET lease_owner = 'plugin-submit:pid-1-gone' WHERE id = ?",
                &[held.export_id.into()],
            )
            .await;
        // another process's lease is not renewed by this one
        lapse(e.sql, held.export_id).await;
        submits.renew(held.export_id).await.unwrap();
        assert_eq!(
            lease(&e, held.export_id).await.1.as_deref(),
            Some("2000-01-01T00:00:00.000Z"),
            "{name}"
        );
        e.sql
            .execute(
                "UPDATE exports SET lease_until = '2999-01-01T00:00:00.000Z' WHERE id = ?",
                &[held.export_id.into()],
            )
            .await;
        assert!(
            submits.settle_cut_off(false).await.unwrap().is_empty(),
            "{name}"
        );
        assert_eq!(q.recover_abandoned("worker", 8).await.unwrap(), 0, "{name}");
        if name == "postgres" {
            // another process sharing the database may be alive and mid-submit
            assert!(
                submits.settle_cut_off(true).await.unwrap().is_empty(),
                "{name}"
            );
            lapse(e.sql, held.export_id).await;
        }
        assert_eq!(
            submits.settle_cut_off(true).await.unwrap(),
            vec![held.export_id],
            "{name}"
        );
        assert_eq!(
            q.find(mine.export_id).await.unwrap().unwrap().status,
            "running",
            "{name}"
        );
        // without an application there is nothing for the worker to start from
        let actor = integration::access::audit::Actor::system("tester");
        let refused = q.retry(&actor, held.export_id).await.unwrap_err();
        assert!(
            refused
                .to_string()
                .contains("without naming an application"),
            "{name}: {refused}"
        );
    }
}

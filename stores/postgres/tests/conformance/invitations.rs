//! The console's employees and their one invitation each.

use futures_util::future::join_all;
use integration::exports::{invitations::Standing, queue::Invitation, ExportQueue, Invitations};

use crate::common::{Both, Engine};
use crate::queue::seed;

fn faces<'a>(e: &Engine<'a>) -> (&'a dyn Invitations, &'a dyn ExportQueue) {
    (
        e.face(|s| s as &dyn Invitations, |p| p as &dyn Invitations),
        e.face(|s| s as &dyn ExportQueue, |p| p as &dyn ExportQueue),
    )
}

#[tokio::test]
async fn an_employee_created_here_is_invited_once() {
    let both = Both::new().await;
    for (name, e) in both.each() {
        let (inv, q) = faces(&e);
        let id = seed(e.sql, "k").await;
        assert_eq!(
            inv.standing("emp-1").await.unwrap(),
            Standing::NotCreatedHere,
            "{name}"
        );
        inv.created(id, "emp-1").await.unwrap();
        assert_eq!(
            q.find(id)
                .await
                .unwrap()
                .unwrap()
                .hibob_employee_id
                .as_deref(),
            Some("emp-1"),
            "{name}"
        );
        assert_eq!(
            inv.standing("emp-1").await.unwrap(),
            Standing::Owed,
            "{name}"
        );

        assert!(inv.start("emp-1", id).await.unwrap(), "{name}");
        assert_eq!(
            q.invitation(id).await.unwrap(),
            Invitation::Interrupted,
            "{name}"
        );
        assert_eq!(
            inv.standing("emp-1").await.unwrap(),
            Standing::Interrupted,
            "{name}"
        );
        assert!(
            !inv.start("emp-1", id).await.unwrap(),
            "{name}: asked already"
        );

        inv.clear("emp-1").await.unwrap();
        assert_eq!(
            inv.standing("emp-1").await.unwrap(),
            Standing::Owed,
            "{name}"
        );
        assert!(
            inv.start("emp-1", id).await.unwrap(),
            "{name}: may ask again"
        );
        inv.settle("emp-1").await.unwrap();
        assert_eq!(
            inv.standing("emp-1").await.unwrap(),
            Standing::Settled,
            "{name}"
        );
        inv.clear("emp-1").await.unwrap();
        assert_eq!(
            inv.standing("emp-1").await.unwrap(),
            Standing::Settled,
            "{name}"
        );
        assert!(!inv.start("emp-1", id).await.unwrap(), "{name}: settled");

        // an employee HiBob already had is not the console's to invite
        assert!(!inv.start("emp-elsewhere", id).await.unwrap(), "{name}");
        inv.settle("emp-elsewhere").await.unwrap();
        assert_eq!(
            inv.standing("emp-elsewhere").await.unwrap(),
            Standing::NotCreatedHere,
            "{name}"
        );
    }
}

#[tokio::test]
async fn a_second_export_of_one_employee_keeps_the_first_as_its_creator() {
    let both = Both::new().await;
    for (name, e) in both.each() {
        let (inv, q) = faces(&e);
        let webhook = seed(e.sql, "webhook").await;
        let plugin = seed(e.sql, "plugin").await;
        inv.created(webhook, "emp-1").await.unwrap();
        assert!(inv.start("emp-1", webhook).await.unwrap(), "{name}");
        inv.created(plugin, "emp-1").await.unwrap();
        assert_eq!(
            q.find(plugin)
                .await
                .unwrap()
                .unwrap()
                .hibob_employee_id
                .as_deref(),
            Some("emp-1"),
            "{name}"
        );
        let creator: i64 = e
            .sql
            .scalar(
                "SELECT export_id FROM console_employees WHERE employee_id = 'emp-1'",
                &[],
            )
            .await;
        assert_eq!(creator, webhook, "{name}");
        assert_eq!(
            inv.standing("emp-1").await.unwrap(),
            Standing::Interrupted,
            "{name}"
        );
        assert!(!inv.start("emp-1", plugin).await.unwrap(), "{name}");
        assert_eq!(
            q.invitation(plugin).await.unwrap(),
            Invitation::NotSent,
            "{name}"
        );
    }
}

#[tokio::test]
async fn concurrent_starts_for_one_employee_let_exactly_one_ask() {
    let both = Both::new().await;
    for (name, e) in both.each() {
        let (inv, q) = faces(&e);
        let mut ids = Vec::new();
        for n in 0..8 {
            ids.push(seed(e.sql, &format!("k{n}")).await);
        }
        inv.created(ids[0], "emp-1").await.unwrap();
        let started = join_all(ids.iter().map(|id| inv.start("emp-1", *id))).await;
        let winners: Vec<i64> = ids
            .iter()
            .zip(started)
            .filter_map(|(id, s)| s.unwrap().then_some(*id))
            .collect();
        assert_eq!(winners.len(), 1, "{name}: {winners:?}");
        for id in &ids {
            let expected = if *id == winners[0] {
                Invitation::Interrupted
            } else {
                Invitation::NotSent
            };
            assert_eq!(
                q.invitation(*id).await.unwrap(),
                expected,
                "{name}: export {id}"
            );
        }
    }
}

//! Resolving stopped exports by hand, and failed submits superseded by a later one.

use futures_util::future::join_all;
use integration::{
    access::audit::Actor,
    exports::{
        resolution::{ResolveError, MAX_NOTE, SUPERSEDED_BY},
        ExportQueue, Resolutions,
    },
};

use crate::common::{Both, Engine};
use crate::queue::{audit, seed, seed_as, set_status};

fn faces<'a>(e: &Engine<'a>) -> (&'a dyn Resolutions, &'a dyn ExportQueue) {
    (
        e.face(|s| s as &dyn Resolutions, |p| p as &dyn Resolutions),
        e.face(|s| s as &dyn ExportQueue, |p| p as &dyn ExportQueue),
    )
}

#[tokio::test]
async fn resolve_refuses_a_missing_note_or_export_and_what_is_not_stopped() {
    let both = Both::new().await;
    let actor = Actor::system("ops@example.com");
    for (name, e) in both.each() {
        let (r, _) = faces(&e);
        let id = seed(e.sql, "k").await;
        set_status(e.sql, id, "needs_attention").await;
        let too_long = "x".repeat(MAX_NOTE + 1);
        for note in ["", "   ", too_long.as_str()] {
            assert!(
                matches!(r.resolve(&actor, id, note).await, Err(ResolveError::Note)),
                "{name}: {note:?}"
            );
        }
        assert!(
            matches!(
                r.resolve(&actor, 999, "done").await,
                Err(ResolveError::NotFound(999))
            ),
            "{name}"
        );
        for status in ["queued", "running", "succeeded", "resolved"] {
            set_status(e.sql, id, status).await;
            let err = r.resolve(&actor, id, "done").await.unwrap_err();
            assert!(
                matches!(err, ResolveError::NotStopped { .. }),
                "{name} {status}: {err}"
            );
        }
        let err = r.resolve(&actor, id, "done").await.unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("export {id} is resolved: only an export that needs attention or is dead can be resolved"),
            "{name}"
        );
        assert!(audit(e.sql).await.is_empty(), "{name}");
        assert_eq!(r.resolution(id).await.unwrap(), None, "{name}");
    }
}

#[tokio::test]
async fn resolve_marks_a_stopped_export_and_audits_it() {
    let both = Both::new().await;
    let actor = Actor::system("ops@example.com");
    for (name, e) in both.each() {
        let (r, q) = faces(&e);
        let id = seed(e.sql, "k").await;
        q.claim("w", std::time::Duration::from_secs(60), 8)
            .await
            .unwrap();
        q.dead(id, "w", "gone").await.unwrap();
        e.sql
            .batch(&[
                ("INSERT INTO bulk_retries (id) VALUES (1)", vec![]),
                (
                    "INSERT INTO bulk_retry_members
                         (bulk_retry_id, export_id, previous_status, previous_attempts)
                     VALUES (1, ?, 'dead', 1)",
                    vec![id.into()],
                ),
            ])
            .await;
        let done = r
            .resolve(&actor, id, "  fixed in HiBob by hand ")
            .await
            .unwrap();
        assert_eq!(done.status, "resolved", "{name}");
        let resolution = r.resolution(id).await.unwrap().expect(name);
        assert_eq!(
            (resolution.by.as_str(), resolution.note.as_str()),
            ("ops@example.com", "fixed in HiBob by hand"),
            "{name}"
        );
        assert!(resolution.at <= integration::db::now_text(), "{name}");
        let superseded: bool = e
            .sql
            .scalar(
                "SELECT superseded FROM bulk_retry_members WHERE export_id = ?",
                &[id.into()],
            )
            .await;
        assert!(superseded, "{name}: a cancel must not put it back");
        assert_eq!(
            audit(e.sql).await,
            vec![(
                Some("ops@example.com".to_owned()),
                "export.resolved".to_owned(),
                Some(format!("export {id}")),
                "was dead: fixed in HiBob by hand".to_owned()
            )],
            "{name}"
        );
        assert_eq!(r.resolution(999).await.unwrap(), None, "{name}");
    }
}

#[tokio::test]
async fn concurrent_resolutions_of_one_export_resolve_it_once() {
    let both = Both::new().await;
    let actor = Actor::system("ops@example.com");
    for (name, e) in both.each() {
        let (r, _) = faces(&e);
        let id = seed(e.sql, "k").await;
        set_status(e.sql, id, "needs_attention").await;
        let notes: Vec<String> = (0..6).map(|n| format!("note {n}")).collect();
        let tries = join_all(notes.iter().map(|n| r.resolve(&actor, id, n))).await;
        assert_eq!(
            tries.iter().filter(|t| t.is_ok()).count(),
            1,
            "{name}: {tries:?}"
        );
        assert!(
            tries
                .iter()
                .all(|t| t.is_ok() || matches!(t, Err(ResolveError::NotStopped { .. }))),
            "{name}: {tries:?}"
        );
        assert_eq!(audit(e.sql).await.len(), 1, "{name}");
    }
}

#[tokio::test]
async fn a_successful_submit_resolves_the_failed_ones_for_its_application() {
    let both = Both::new().await;
    for (name, e) in both.each() {
        let (r, q) = faces(&e);
        let failed = seed_as(e.sql, "plugin:a", "plugin", "7").await;
        set_status(e.sql, failed, "needs_attention").await;
        let dead = seed_as(e.sql, "plugin:b", "plugin", "7").await;
        set_status(e.sql, dead, "dead").await;
        let webhook = seed_as(e.sql, "application_hired:7", "webhook", "7").await;
        set_status(e.sql, webhook, "dead").await;
        let other = seed_as(e.sql, "plugin:c", "plugin", "8").await;
        set_status(e.sql, other, "dead").await;
        let running = seed_as(e.sql, "plugin:d", "plugin", "7").await;
        set_status(e.sql, running, "running").await;
        let unnamed = seed_as(e.sql, "plugin:e", "plugin", "").await;
        set_status(e.sql, unnamed, "dead").await;
        let blank = seed_as(e.sql, "plugin:f", "plugin", "").await;
        set_status(e.sql, blank, "succeeded").await;
        let winner = seed_as(e.sql, "plugin:g", "plugin", "7").await;
        set_status(e.sql, winner, "succeeded").await;

        assert!(
            r.supersede_plugin_failures(blank).await.unwrap().is_empty(),
            "{name}"
        );
        assert!(
            r.supersede_plugin_failures(999).await.unwrap().is_empty(),
            "{name}"
        );
        assert_eq!(
            r.supersede_plugin_failures(winner).await.unwrap(),
            vec![failed, dead],
            "{name}"
        );
        let note =
            format!("superseded by export {winner}, sent from Pinpoint's form and succeeded");
        for id in [failed, dead] {
            assert_eq!(
                q.find(id).await.unwrap().unwrap().status,
                "resolved",
                "{name}"
            );
            let res = r.resolution(id).await.unwrap().expect(name);
            assert_eq!(
                (res.by.as_str(), res.note.as_str()),
                (SUPERSEDED_BY, note.as_str()),
                "{name}"
            );
        }
        for (id, status) in [
            (webhook, "dead"),
            (other, "dead"),
            (running, "running"),
            (unnamed, "dead"),
        ] {
            assert_eq!(
                q.find(id).await.unwrap().unwrap().status,
                status,
                "{name}: export {id}"
            );
        }
        assert_eq!(
            audit(e.sql).await,
            [failed, dead]
                .iter()
                .map(|id| (
                    Some(SUPERSEDED_BY.to_owned()),
                    "export.resolved".to_owned(),
                    Some(format!("export {id}")),
                    note.clone()
                ))
                .collect::<Vec<_>>(),
            "{name}"
        );
        assert!(
            r.supersede_plugin_failures(winner)
                .await
                .unwrap()
                .is_empty(),
            "{name}: done"
        );
    }
}

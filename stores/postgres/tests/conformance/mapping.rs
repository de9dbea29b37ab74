//! Mapping versions: appended, refused when stale or unchanged, restored, numbered without gaps.

use integration::{
    access::audit::Actor,
    mapping::{
        self,
        storage::MappingStore,
        store::{StoreError, Version},
        MappingDocument,
    },
};

use crate::{
    at_once::join_all,
    common::{Both, Engine},
};

fn versions<'a>(e: &Engine<'a>) -> &'a dyn MappingStore {
    e.face(|s| s as &dyn MappingStore, |p| p as &dyn MappingStore)
}

fn editor() -> Actor {
    Actor {
        id: None,
        email: "ops@example.com".into(),
        client_ip: None,
    }
}

/// The built-in mapping with the surname falling back to `fallback`.
fn edited(fallback: &str) -> MappingDocument {
    let mut doc = mapping::default_document();
    doc.fields[1].sources.push(format!("{{{{ {fallback} }}}}"));
    doc
}

/// A version without the time the engines wrote at different moments.
fn shape(v: &Version) -> (i64, String, String, Option<i64>) {
    (v.id, v.note.clone(), v.author.clone(), v.restored_from)
}

#[tokio::test]
async fn versions_are_saved_refused_and_restored_alike() {
    let both = Both::new().await;
    let mut answers = Vec::new();
    for (name, e) in both.each() {
        let store = versions(&e);
        let v1 = store.current().await.unwrap();
        assert_eq!(
            (v1.id, v1.author.as_str(), &v1.document),
            (1, "built-in", &mapping::default_document()),
            "{name}: version 1 is the built-in mapping"
        );
        assert_eq!(store.current_id().await.unwrap(), 1, "{name}");

        let doc = edited("candidate_first_name");
        let long_note = format!("  surname falls back {}", "x".repeat(600));
        let v2 = store.save(&editor(), &doc, &long_note, 1).await.unwrap();
        assert_eq!(v2.id, 2, "{name}");
        assert_eq!(v2.note.chars().count(), 500, "{name}: trimmed and capped");
        assert!(v2.note.starts_with("surname"), "{name}");
        assert_eq!(store.current().await.unwrap().document, doc, "{name}");

        // a second editor who started from v1 does not overwrite v2
        let mut other = mapping::default_document();
        other.fields[0].sources = vec!["{{ candidate_preferred_name }}".into()];
        let stale = store.save(&editor(), &other, "", 1).await.unwrap_err();
        assert!(
            matches!(
                stale,
                StoreError::Conflict {
                    edited: 1,
                    current: 2
                }
            ),
            "{name}: {stale}"
        );
        let same = store.save(&editor(), &doc, "", 2).await.unwrap_err();
        assert!(matches!(same, StoreError::Unchanged(2)), "{name}: {same}");

        let v3 = store.restore(&editor(), 1).await.unwrap();
        assert_eq!(
            (v3.id, v3.restored_from, v3.note.as_str()),
            (3, Some(1), "Restored version 1"),
            "{name}"
        );
        assert_eq!(
            store.current().await.unwrap().document,
            mapping::default_document(),
            "{name}"
        );
        let again = store.restore(&editor(), 1).await.unwrap_err();
        assert!(matches!(again, StoreError::Unchanged(3)), "{name}: {again}");
        let missing = store.restore(&editor(), 99).await.unwrap_err();
        assert!(matches!(missing, StoreError::NotFound(99)), "{name}");
        assert!(
            matches!(store.get(99).await, Err(StoreError::NotFound(99))),
            "{name}"
        );
        let got = store.get(2).await.unwrap();
        assert_eq!(
            (&got.document, &got.created_at),
            (&doc, &v2.created_at),
            "{name}"
        );

        let export: i64 = e
            .sql
            .scalar(
                "INSERT INTO exports (source, idempotency_key, pinpoint_application_id,
                                      mapping_version, created_at)
                 VALUES ('webhook', 'k1', 'app-1', 2, '2026-12-01T10:00:00.000Z') RETURNING id",
                &[],
            )
            .await;
        assert_eq!(
            store.export_hire(export).await.unwrap(),
            Some(("app-1".to_owned(), "2026-12-01T10:00:00.000Z".to_owned())),
            "{name}"
        );
        assert_eq!(store.export_hire(9999).await.unwrap(), None, "{name}");
        let listed = store.versions(10).await.unwrap();
        let summary: Vec<(i64, i64, Option<i64>)> = listed
            .iter()
            .map(|v| (v.id, v.exports, v.restored_from))
            .collect();
        assert_eq!(
            summary,
            [(3, 0, Some(1)), (2, 1, None), (1, 0, None)],
            "{name}"
        );
        assert_eq!(store.versions(0).await.unwrap().len(), 1, "{name}");
        assert_eq!(store.current_id().await.unwrap(), 3, "{name}");

        let trail: Vec<(Option<String>, String, Option<String>, String)> = e
            .sql
            .rows(
                "SELECT actor_email, action, target, detail FROM audit_log
                 WHERE action LIKE 'mapping.%' ORDER BY id",
                &[],
            )
            .await;
        assert_eq!(trail.len(), 2, "{name}: refusals are not audited");
        assert!(
            trail[0].3.contains("root.surname changed"),
            "{name}: {trail:?}"
        );
        answers.push((vec![shape(&v2), shape(&v3)], trail));
    }
    assert_eq!(answers[0], answers[1]);
}

/// Two editors saving from the same version at once: one is saved, the other told of it, and
/// the numbers stay gapless through refusals.
#[tokio::test]
async fn two_saves_from_one_version_give_one_conflict() {
    let both = Both::new().await;
    for (name, e) in both.each() {
        let store = versions(&e);
        for round in 0..5i64 {
            let current = store.current_id().await.unwrap();
            let docs = [
                edited(&format!("first_{round}")),
                edited(&format!("second_{round}")),
            ];
            let by = editor();
            let saves = docs
                .iter()
                .map(|doc| store.save(&by, doc, "", current))
                .collect();
            let outcomes = join_all(saves).await;
            let saved: Vec<i64> = outcomes
                .iter()
                .filter_map(|o| o.as_ref().ok().map(|v| v.id))
                .collect();
            let conflicts = outcomes
                .iter()
                .filter(|o| {
                    matches!(o, Err(StoreError::Conflict { edited, current: now })
                    if *edited == current && *now == current + 1)
                })
                .count();
            assert_eq!(saved, [current + 1], "{name}, round {round}: {outcomes:?}");
            assert_eq!(conflicts, 1, "{name}, round {round}: {outcomes:?}");
        }
        let ids: Vec<i64> = e
            .sql
            .scalars("SELECT id FROM mapping_versions ORDER BY id", &[])
            .await;
        assert_eq!(ids, (1..=6).collect::<Vec<i64>>(), "{name}: no gaps");
    }
}

//! What an export records as it goes: the candidate, the employee, the marks each outside call
//! leaves before and after it, and the body sent.

use std::time::Duration;

use integration::exports::{queue::Invitation, ExportQueue};
use serde_json::json;

use crate::common::Both;
use crate::queue::seed;

#[tokio::test]
async fn what_an_export_learned_and_did_is_kept() {
    let both = Both::new().await;
    for (name, e) in both.each() {
        let q = e.face(|s| s as &dyn ExportQueue, |p| p as &dyn ExportQueue);
        let id = seed(e.sql, "k").await;
        q.set_candidate(
            id,
            Some("Ada Lovelace"),
            Some("ada@example.com"),
            Some("2027-01-04"),
        )
        .await
        .unwrap();
        q.set_employee_id(id, "emp-1").await.unwrap();
        q.set_mapping_version(id, 1).await.unwrap();
        q.mark_cv_uploaded(id).await.unwrap();
        let row = q.find(id).await.unwrap().unwrap();
        assert_eq!(
            (
                row.candidate_name.as_deref(),
                row.candidate_email.as_deref(),
                row.start_date.as_deref(),
                row.hibob_employee_id.as_deref(),
                row.mapping_version,
                row.cv_uploaded,
                row.comment_posted,
            ),
            (
                Some("Ada Lovelace"),
                Some("ada@example.com"),
                Some("2027-01-04"),
                Some("emp-1"),
                Some(1),
                true,
                false
            ),
            "{name}"
        );
        q.set_candidate(id, None, None, None).await.unwrap();
        assert_eq!(
            q.find(id).await.unwrap().unwrap().candidate_name,
            None,
            "{name}"
        );
        assert_eq!(q.find(999).await.unwrap(), None, "{name}");

        assert!(!q.create_sent(id).await.unwrap(), "{name}");
        q.mark_create_sent(id).await.unwrap();
        assert!(q.create_sent(id).await.unwrap(), "{name}");
        q.clear_create_sent(id).await.unwrap();
        assert!(!q.create_sent(id).await.unwrap(), "{name}");
        assert!(!q.create_sent(999).await.unwrap(), "{name}");

        assert!(!q.start_comment(id).await.unwrap(), "{name}: the first ask");
        // the mark is a time in milliseconds: a second ask within the same one reads as the first
        tokio::time::sleep(Duration::from_millis(3)).await;
        assert!(
            q.start_comment(id).await.unwrap(),
            "{name}: an earlier ask unheard"
        );
        q.clear_comment_started(id).await.unwrap();
        assert!(
            !q.start_comment(id).await.unwrap(),
            "{name}: the refusal cleared it"
        );
        q.mark_comment_posted(id).await.unwrap();
        q.clear_comment_started(id).await.unwrap();
        tokio::time::sleep(Duration::from_millis(3)).await;
        assert!(
            q.start_comment(id).await.unwrap(),
            "{name}: a posted comment stays started"
        );
        assert!(q.find(id).await.unwrap().unwrap().comment_posted, "{name}");
        assert!(!q.start_comment(999).await.unwrap(), "{name}");
    }
}

#[tokio::test]
async fn the_invitation_marks_on_the_export() {
    let both = Both::new().await;
    for (name, e) in both.each() {
        let q = e.face(|s| s as &dyn ExportQueue, |p| p as &dyn ExportQueue);
        let id = seed(e.sql, "k").await;
        assert_eq!(
            q.invitation(id).await.unwrap(),
            Invitation::NotSent,
            "{name}"
        );
        assert_eq!(
            q.invitation(999).await.unwrap(),
            Invitation::NotSent,
            "{name}"
        );
        e.sql
            .execute(
                "UPDATE exports SET invite_started_at = '2026-01-01T00:00:00.000Z' WHERE id = ?",
                &[id.into()],
            )
            .await;
        assert_eq!(
            q.invitation(id).await.unwrap(),
            Invitation::Interrupted,
            "{name}"
        );
        q.clear_invite_started(id).await.unwrap();
        assert_eq!(
            q.invitation(id).await.unwrap(),
            Invitation::NotSent,
            "{name}"
        );
        q.mark_invited(id).await.unwrap();
        assert_eq!(
            q.invitation(id).await.unwrap(),
            Invitation::Settled,
            "{name}"
        );
        e.sql
            .execute(
                "UPDATE exports SET invite_started_at = '2026-01-01T00:00:00.000Z' WHERE id = ?",
                &[id.into()],
            )
            .await;
        q.clear_invite_started(id).await.unwrap();
        let started: Option<String> = e
            .sql
            .scalar(
                "SELECT invite_started_at FROM exports WHERE id = ?",
                &[id.into()],
            )
            .await;
        assert!(
            started.is_some(),
            "{name}: a settled invitation keeps its marks"
        );
    }
}

#[tokio::test]
async fn the_body_sent_is_kept_once() {
    let both = Both::new().await;
    for (name, e) in both.each() {
        let q = e.face(|s| s as &dyn ExportQueue, |p| p as &dyn ExportQueue);
        let id = seed(e.sql, "k").await;
        assert_eq!(q.sent_body(id).await.unwrap(), None, "{name}");
        let body = json!({"firstName": "Ada", "work": {"site": "London"}});
        q.keep_sent(id, &body).await.unwrap();
        q.keep_sent(id, &json!({"firstName": "Later"}))
            .await
            .unwrap();
        assert_eq!(
            q.sent_body(id).await.unwrap(),
            Some(body),
            "{name}: HiBob kept the first"
        );
        assert_eq!(q.sent_body(999).await.unwrap(), None, "{name}");
        e.sql
            .execute(
                "UPDATE exports SET sent_body = 'not json' WHERE id = ?",
                &[id.into()],
            )
            .await;
        assert_eq!(q.sent_body(id).await.unwrap(), None, "{name}: unreadable");
    }
}

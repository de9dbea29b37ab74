//! Credentials stored in the console: sealed values written, cleared and read back alike.

use integration::{
    access::{audit::Actor, users::Role, UserStore},
    settings::credentials::{CredentialStore, SealedWrite},
};
use secrecy::SecretString;

use crate::common::Both;

/// An audit entry's actor, action, target, detail and address.
type Entry = (
    Option<String>,
    String,
    Option<String>,
    String,
    Option<String>,
);

fn set(key: &'static str, ciphertext: &str, done: &str) -> SealedWrite {
    SealedWrite {
        key,
        ciphertext: Some(ciphertext.to_owned()),
        done: done.to_owned(),
    }
}

fn clear(key: &'static str, done: &str) -> SealedWrite {
    SealedWrite {
        key,
        ciphertext: None,
        done: done.to_owned(),
    }
}

#[tokio::test]
async fn credentials_are_written_cleared_and_read_alike() {
    let both = Both::new().await;
    let mut trails = Vec::new();
    for (name, e) in both.each() {
        let store = e.face(|s| s as &dyn CredentialStore, |p| p as &dyn CredentialStore);
        let users = e.face(|s| s as &dyn UserStore, |p| p as &dyn UserStore);
        let admin = users
            .create(
                &Actor::system("setup"),
                "admin@example.com",
                SecretString::from("correct horse battery".to_owned()),
                Role::Admin,
            )
            .await
            .unwrap_or_else(|err| panic!("{name}: {err}"));
        let actor = Actor::user(&admin, Some("10.0.0.9".into()));

        assert_eq!(store.sealed("hibob_token").await.unwrap(), None, "{name}");
        assert!(store.stored().await.unwrap().is_empty(), "{name}");
        let changed = store
            .write(
                &actor,
                &[
                    set("hibob_token", "sealed-1", "HiBob token set"),
                    set("pinpoint_key", "sealed-2", "Pinpoint key set"),
                    clear("smtp_url", "SMTP URL cleared"),
                ],
            )
            .await
            .unwrap();
        assert_eq!(
            changed,
            ["HiBob token set", "Pinpoint key set"],
            "{name}: clearing what is not stored changes nothing"
        );
        assert_eq!(
            store.sealed("hibob_token").await.unwrap().as_deref(),
            Some("sealed-1"),
            "{name}"
        );
        let mut stored = store.stored().await.unwrap();
        stored.sort_by(|a, b| a.key.cmp(&b.key));
        let seen: Vec<(&str, &str, Option<&str>)> = stored
            .iter()
            .map(|c| {
                (
                    c.key.as_str(),
                    c.ciphertext.as_str(),
                    c.updated_by.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                ("hibob_token", "sealed-1", Some("admin@example.com")),
                ("pinpoint_key", "sealed-2", Some("admin@example.com"))
            ],
            "{name}"
        );
        assert!(stored.iter().all(|c| c.updated_at.ends_with('Z')), "{name}");

        // replaced by someone the database does not know (a system task): no author
        let changed = store
            .write(
                &Actor::system("cli"),
                &[
                    set("hibob_token", "sealed-3", "HiBob token replaced"),
                    clear("pinpoint_key", "Pinpoint key cleared"),
                ],
            )
            .await
            .unwrap();
        assert_eq!(
            changed,
            ["HiBob token replaced", "Pinpoint key cleared"],
            "{name}"
        );
        let stored = store.stored().await.unwrap();
        assert_eq!(stored.len(), 1, "{name}");
        assert_eq!(
            (
                stored[0].ciphertext.as_str(),
                stored[0].updated_by.as_deref()
            ),
            ("sealed-3", None),
            "{name}"
        );
        assert_eq!(store.sealed("pinpoint_key").await.unwrap(), None, "{name}");
        let nothing = store
            .write(&actor, &[clear("pinpoint_key", "Pinpoint key cleared")])
            .await
            .unwrap();
        assert!(nothing.is_empty(), "{name}");

        let trail: Vec<Entry> = e
            .sql
            .rows(
                "SELECT actor_email, action, target, detail, client_ip FROM audit_log
                 WHERE action LIKE 'settings.%' ORDER BY id",
                &[],
            )
            .await;
        assert_eq!(trail.len(), 2, "{name}: nothing changed, nothing audited");
        trails.push(trail);
    }
    assert_eq!(trails[0], trails[1]);
}

//! People and the audit log: accounts, roles, passwords, the last-admin guard, and the audit
//! log's filters, CSV and de-duplicated entries.

use integration::access::{
    audit::{Actor, AuditFilter, CSV_MAX_ROWS},
    users::{Role, User, UserError},
    AuditLog, UserStore,
};
use secrecy::{ExposeSecret, SecretString};

use crate::{
    at_once::join_all,
    common::{Both, Engine},
};

fn secret(s: &str) -> SecretString {
    SecretString::from(s.to_owned())
}

fn users<'a>(e: &Engine<'a>) -> &'a dyn UserStore {
    e.face(|s| s as &dyn UserStore, |p| p as &dyn UserStore)
}

fn audit<'a>(e: &Engine<'a>) -> &'a dyn AuditLog {
    e.face(|s| s as &dyn AuditLog, |p| p as &dyn AuditLog)
}

/// Every audit entry, oldest first, without its time (the engines write at different moments).
async fn audit_trail(e: &Engine<'_>) -> Vec<(Option<String>, String, Option<String>, String)> {
    e.sql
        .rows(
            "SELECT actor_email, action, target, detail FROM audit_log ORDER BY id",
            &[],
        )
        .await
}

async fn user(name: &str, e: &Engine<'_>, email: &str, role: Role) -> User {
    users(e)
        .create(
            &Actor::system("setup"),
            email,
            secret("correct horse battery"),
            role,
        )
        .await
        .unwrap_or_else(|err| panic!("{name}: create {email}: {err}"))
}

#[tokio::test]
async fn accounts_are_created_found_and_signed_in_alike() {
    let both = Both::new().await;
    let mut trails = Vec::new();
    for (name, e) in both.each() {
        let store = users(&e);
        let actor = Actor::system("test");
        let ada = store
            .create(
                &actor,
                "  Ada@Example.com ",
                secret("correct horse battery"),
                Role::Admin,
            )
            .await
            .unwrap_or_else(|err| panic!("{name}: {err}"));
        assert_eq!(
            (ada.email.as_str(), ada.role, ada.disabled, ada.auth_version),
            ("Ada@Example.com", Role::Admin, false, 1),
            "{name}"
        );
        assert_eq!(ada.last_login_at, None, "{name}");

        for typed in ["ada@example.com", " ADA@EXAMPLE.COM "] {
            let found = store
                .authenticate(typed, secret("correct horse battery"))
                .await
                .unwrap_or_else(|err| panic!("{name}: {err}"));
            let found = found.unwrap_or_else(|| panic!("{name}: {typed:?} signs in"));
            assert_eq!(found.id, ada.id, "{name}");
            assert!(found.last_login_at.is_some(), "{name}: the sign-in is kept");
        }
        assert!(
            store
                .authenticate("ada@example.com", secret("wrong password!!"))
                .await
                .unwrap()
                .is_none(),
            "{name}: a wrong password"
        );
        assert!(
            store
                .authenticate("nobody@example.com", secret("correct horse battery"))
                .await
                .unwrap()
                .is_none(),
            "{name}: an unknown e-mail"
        );

        for again in ["ada@example.com", "ADA@EXAMPLE.COM"] {
            let dup = store
                .create(&actor, again, secret("another long one"), Role::Viewer)
                .await;
            assert!(
                matches!(dup, Err(UserError::Duplicate)),
                "{name}: {again}: {dup:?}"
            );
        }
        let short = store
            .create(&actor, "bob@example.com", secret("short"), Role::Viewer)
            .await;
        assert!(matches!(short, Err(UserError::Invalid(_))), "{name}");
        let bad = store
            .create(
                &actor,
                "not an address",
                secret("correct horse battery"),
                Role::Viewer,
            )
            .await;
        assert!(matches!(bad, Err(UserError::Invalid(_))), "{name}");

        // listed by e-mail without regard to case, as SQLite's NOCASE column sorts
        user(name, &e, "Zed@example.com", Role::Viewer).await;
        user(name, &e, "amy@example.com", Role::Operator).await;
        let listed: Vec<String> = store
            .list()
            .await
            .unwrap()
            .into_iter()
            .map(|u| u.email)
            .collect();
        assert_eq!(
            listed,
            ["Ada@Example.com", "amy@example.com", "Zed@example.com"],
            "{name}"
        );
        assert_eq!(store.count().await.unwrap(), 3, "{name}");
        assert_eq!(
            store.find(ada.id).await.unwrap().map(|u| u.id),
            Some(ada.id)
        );
        assert!(store.find(9999).await.unwrap().is_none(), "{name}");
        trails.push(audit_trail(&e).await);
    }
    assert_eq!(trails[0], trails[1], "the same audit entries");
}

#[tokio::test]
async fn roles_status_and_the_last_admin_behave_alike() {
    let both = Both::new().await;
    let mut trails = Vec::new();
    for (name, e) in both.each() {
        let store = users(&e);
        let actor = Actor::system("test");
        let admin = user(name, &e, "a@example.com", Role::Admin).await;
        let last = store.set_role(&actor, admin.id, Role::Viewer).await;
        assert!(
            matches!(last, Err(UserError::LastAdmin)),
            "{name}: {last:?}"
        );
        let last = store.set_disabled(&actor, admin.id, true).await;
        assert!(
            matches!(last, Err(UserError::LastAdmin)),
            "{name}: {last:?}"
        );
        // an admin may stay an admin, and be enabled again, whatever the count
        let same = store.set_role(&actor, admin.id, Role::Admin).await.unwrap();
        assert_eq!(same.auth_version, admin.auth_version + 1, "{name}");
        let enabled = store.set_disabled(&actor, admin.id, false).await.unwrap();
        assert!(!enabled.disabled, "{name}");

        let op = user(name, &e, "o@example.com", Role::Operator).await;
        let disabled = store.set_disabled(&actor, op.id, true).await.unwrap();
        assert!(disabled.disabled, "{name}");
        assert!(disabled.auth_version > op.auth_version, "{name}");
        assert!(
            store
                .authenticate("o@example.com", secret("correct horse battery"))
                .await
                .unwrap()
                .is_none(),
            "{name}: a disabled account does not sign in"
        );
        let back = store.set_disabled(&actor, op.id, false).await.unwrap();
        assert!(!back.disabled, "{name}");

        // a second admin lets the first step down; then the second is the last
        let promoted = store.set_role(&actor, op.id, Role::Admin).await.unwrap();
        assert_eq!(promoted.role, Role::Admin, "{name}");
        let down = store
            .set_role(&actor, admin.id, Role::Operator)
            .await
            .unwrap();
        assert_eq!(down.role, Role::Operator, "{name}");
        let last = store.set_role(&actor, op.id, Role::Viewer).await;
        assert!(matches!(last, Err(UserError::LastAdmin)), "{name}");
        // a disabled admin does not count as the other one
        store.set_role(&actor, admin.id, Role::Admin).await.unwrap();
        store.set_disabled(&actor, admin.id, true).await.unwrap();
        let last = store.set_disabled(&actor, op.id, true).await;
        assert!(matches!(last, Err(UserError::LastAdmin)), "{name}");

        let missing = store.set_role(&actor, 9999, Role::Viewer).await;
        assert!(matches!(missing, Err(UserError::NotFound)), "{name}");
        let missing = store.set_disabled(&actor, 9999, true).await;
        assert!(matches!(missing, Err(UserError::NotFound)), "{name}");
        trails.push(audit_trail(&e).await);
    }
    assert_eq!(trails[0], trails[1], "the same audit entries");
}

#[tokio::test]
async fn passwords_are_set_reset_and_changed_alike() {
    let both = Both::new().await;
    let mut trails = Vec::new();
    for (name, e) in both.each() {
        let store = users(&e);
        let admin = user(name, &e, "admin@example.com", Role::Admin).await;
        let ops = user(name, &e, "ops@example.com", Role::Operator).await;
        let by_admin = Actor::user(&admin, None);

        let short = store.set_password(&by_admin, ops.id, secret("short")).await;
        assert!(matches!(short, Err(UserError::Invalid(_))), "{name}");
        let missing = store
            .set_password(&by_admin, 9999, secret("a long enough one"))
            .await;
        assert!(matches!(missing, Err(UserError::NotFound)), "{name}");
        store
            .set_password(&by_admin, ops.id, secret("first password"))
            .await
            .unwrap();
        let ops = store.find(ops.id).await.unwrap().unwrap();

        let (after, password) = store.reset(&by_admin, ops.id).await.unwrap();
        assert!(
            after.auth_version > ops.auth_version,
            "{name}: their sessions end"
        );
        let signed_in = store
            .authenticate("ops@example.com", password.clone())
            .await
            .unwrap();
        assert_eq!(signed_in.map(|u| u.id), Some(ops.id), "{name}");
        assert!(
            store
                .authenticate("ops@example.com", secret("first password"))
                .await
                .unwrap()
                .is_none(),
            "{name}: the old password is gone"
        );
        let own = store.reset(&by_admin, admin.id).await;
        assert!(matches!(own, Err(UserError::Invalid(_))), "{name}: {own:?}");
        let missing = store.reset(&by_admin, 9999).await;
        assert!(matches!(missing, Err(UserError::NotFound)), "{name}");
        let shown: i64 = e
            .sql
            .scalar(
                "SELECT COUNT(*) FROM audit_log WHERE detail LIKE ?",
                &[format!("%{}%", password.expose_secret()).into()],
            )
            .await;
        assert_eq!(shown, 0, "{name}: no password in the audit log");

        let me = store.find(ops.id).await.unwrap().unwrap();
        let by_me = Actor::user(&me, None);
        let wrong = store
            .change_own(
                &by_me,
                &me,
                secret("not the password"),
                secret("my own long password"),
            )
            .await;
        assert!(
            matches!(wrong, Err(UserError::Invalid(ref m)) if m.contains("not right")),
            "{name}: {wrong:?}"
        );
        let short = store
            .change_own(&by_me, &me, password.clone(), secret("short"))
            .await;
        assert!(matches!(short, Err(UserError::Invalid(_))), "{name}");
        let same = store
            .change_own(&by_me, &me, password.clone(), password.clone())
            .await;
        assert!(
            matches!(same, Err(UserError::Invalid(ref m)) if m.contains("current one")),
            "{name}: {same:?}"
        );
        let now = store
            .change_own(&by_me, &me, password, secret("my own long password"))
            .await
            .unwrap();
        assert!(now.auth_version > me.auth_version, "{name}");
        assert!(
            store
                .authenticate("ops@example.com", secret("my own long password"))
                .await
                .unwrap()
                .is_some(),
            "{name}"
        );
        trails.push(audit_trail(&e).await);
    }
    assert_eq!(trails[0], trails[1], "the same audit entries");
}

/// Two admins demoting (or disabling) each other at once: one wins, the other is refused, and
/// an active admin is left, however the two interleave.
#[tokio::test]
async fn two_admins_removing_each_other_at_once_leave_one() {
    let both = Both::new().await;
    for (name, e) in both.each() {
        let store = users(&e);
        let a = user(name, &e, "a@example.com", Role::Admin).await;
        let b = user(name, &e, "b@example.com", Role::Admin).await;
        let (by_a, by_b) = (Actor::user(&a, None), Actor::user(&b, None));
        for round in 0..6 {
            let disable = round % 2 == 1;
            let (first, second) = if disable {
                tokio::join!(
                    store.set_disabled(&by_a, b.id, true),
                    store.set_disabled(&by_b, a.id, true)
                )
            } else {
                tokio::join!(
                    store.set_role(&by_a, b.id, Role::Viewer),
                    store.set_role(&by_b, a.id, Role::Viewer)
                )
            };
            let refused = [&first, &second]
                .iter()
                .filter(|r| matches!(r, Err(UserError::LastAdmin)))
                .count();
            let done = [&first, &second].iter().filter(|r| r.is_ok()).count();
            assert_eq!(
                (done, refused),
                (1, 1),
                "{name}, round {round}: {first:?} / {second:?}"
            );
            let active: i64 = e
                .sql
                .scalar(
                    "SELECT COUNT(*) FROM users WHERE role = 'admin' AND disabled = 0",
                    &[],
                )
                .await;
            assert_eq!(active, 1, "{name}, round {round}");
            // both admins again for the next round
            let system = Actor::system("test");
            for id in [a.id, b.id] {
                store.set_disabled(&system, id, false).await.unwrap();
                store.set_role(&system, id, Role::Admin).await.unwrap();
            }
        }
    }
}

async fn seed_entries(e: &Engine<'_>) {
    let log = audit(e);
    let actor = Actor::system("tester");
    log.record(&actor, "login.succeeded", Some("a@x.io"), "")
        .await
        .unwrap();
    log.record(&actor, "login.failed", Some("b@x.io"), "100% wrong")
        .await
        .unwrap();
    log.record(&actor, "settings.saved", None, "hibob token")
        .await
        .unwrap();
    log.record(&actor, "login_probe", Some("a_b"), "under_score")
        .await
        .unwrap();
    for (at, action) in [
        ("2026-01-04T23:59:59.999Z", "day.before"),
        ("2026-01-05T00:00:00.000Z", "day.first"),
        ("2026-01-05T23:59:59.999Z", "day.last"),
        ("2026-01-06T00:00:00.000Z", "day.after"),
    ] {
        e.sql
            .execute(
                "INSERT INTO audit_log (at, actor_email, action, target, detail)
                 VALUES (?, 'seed', ?, 'export 7', 'seeded')",
                &[at.into(), action.into()],
            )
            .await;
    }
}

fn actions(entries: &[integration::access::audit::AuditEntry]) -> Vec<String> {
    entries.iter().map(|e| e.action.clone()).collect()
}

#[tokio::test]
async fn the_audit_log_filters_alike() {
    let both = Both::new().await;
    let mut answers = Vec::new();
    for (name, e) in both.each() {
        seed_entries(&e).await;
        let log = audit(&e);
        let list = |filter: AuditFilter| async move { actions(&log.list(&filter).await.unwrap()) };
        let all = log.list(&AuditFilter::default()).await.unwrap();
        assert_eq!(all.len(), 8, "{name}");
        assert_eq!(all[0].action, "day.after", "{name}: newest first");
        let mut seen = Vec::new();
        for filter in [
            AuditFilter {
                action: Some("login".into()),
                ..Default::default()
            },
            // SQLite's LIKE folds ASCII case: a family typed in capitals still matches
            AuditFilter {
                action: Some("LOGIN".into()),
                ..Default::default()
            },
            AuditFilter {
                action: Some("login.failed".into()),
                ..Default::default()
            },
            // wildcards are no wildcards in a family: they are dropped
            AuditFilter {
                action: Some("login_".into()),
                ..Default::default()
            },
            AuditFilter {
                search: Some("100%".into()),
                ..Default::default()
            },
            AuditFilter {
                search: Some("%".into()),
                ..Default::default()
            },
            AuditFilter {
                search: Some("_".into()),
                ..Default::default()
            },
            AuditFilter {
                search: Some("HIBOB".into()),
                ..Default::default()
            },
            AuditFilter {
                search: Some("B@X".into()),
                ..Default::default()
            },
            AuditFilter {
                search: Some("tester".into()),
                ..Default::default()
            },
            AuditFilter {
                from: Some("2026-01-05".into()),
                to: Some("2026-01-05".into()),
                ..Default::default()
            },
            AuditFilter {
                from: Some("2026-01-05".into()),
                ..Default::default()
            },
            AuditFilter {
                to: Some("2026-01-05".into()),
                action: Some("day".into()),
                ..Default::default()
            },
            AuditFilter {
                before_id: Some(all[1].id),
                limit: Some(2),
                ..Default::default()
            },
            AuditFilter {
                to: Some("yesterday".into()),
                ..Default::default()
            },
            AuditFilter {
                from: Some("2026-02-01".into()),
                to: Some("2026-01-01".into()),
                ..Default::default()
            },
        ] {
            seen.push(list(filter).await);
        }
        assert_eq!(seen[0], ["login.failed", "login.succeeded"], "{name}");
        assert_eq!(seen[1], seen[0], "{name}");
        assert_eq!(seen[2], ["login.failed"], "{name}");
        assert_eq!(
            seen[3], seen[0],
            "{name}: wildcards are taken out of a family"
        );
        assert_eq!(seen[4], ["login.failed"], "{name}");
        assert_eq!(seen[5], ["login.failed"], "{name}: a literal %");
        assert_eq!(seen[6], ["login_probe"], "{name}: a literal _");
        assert_eq!(seen[7], ["settings.saved"], "{name}: case folded");
        assert_eq!(seen[8], ["login.failed"], "{name}");
        assert_eq!(seen[9].len(), 4, "{name}");
        assert_eq!(seen[10], ["day.last", "day.first"], "{name}");
        assert_eq!(seen[12], ["day.last", "day.first", "day.before"], "{name}");
        assert_eq!(seen[13].len(), 2, "{name}");
        assert!(seen[14].is_empty() && seen[15].is_empty(), "{name}");

        let about = log.for_target("export 7", 3).await.unwrap();
        assert_eq!(
            actions(&about),
            ["day.before", "day.first", "day.last"],
            "{name}: oldest first"
        );
        answers.push(seen);
    }
    assert_eq!(answers[0], answers[1]);
}

#[tokio::test]
async fn the_audit_csv_is_the_same_text() {
    let both = Both::new().await;
    let mut texts = Vec::new();
    for (name, e) in both.each() {
        e.sql
            .execute(
                "INSERT INTO audit_log (at, actor_email, action, target, detail, client_ip)
                 VALUES ('2026-01-05T10:00:00.000Z', '=cmd|'' /C calc''!A0', 'settings.saved',
                         'a,b', 'said \"hi\"
then left', '10.0.0.1'),
                        ('2026-01-05T11:00:00.000Z', NULL, 'login.failed', '@SUM(1)', '-2+3',
                         NULL)",
                &[],
            )
            .await;
        let log = audit(&e);
        let (text, rows, cut) = log.csv(&AuditFilter::default()).await.unwrap();
        assert_eq!((rows, cut), (2, false), "{name}");
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(
            lines[0], "\"id\",\"at\",\"actor\",\"action\",\"target\",\"detail\",\"client_ip\"",
            "{name}"
        );
        assert!(
            lines[1].contains(",\"system\",\"login.failed\",\"'@SUM(1)\",\"'-2+3\","),
            "{name}: {}",
            lines[1]
        );
        assert!(
            text.contains(",\"'=cmd|' /C calc'!A0\",\"settings.saved\",\"a,b\",\"said \"\"hi\"\"\nthen left\","),
            "{name}: {text}"
        );
        let (logins, rows, _) = log
            .csv(&AuditFilter {
                action: Some("login".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(rows, 1, "{name}");
        assert!(!logins.contains("settings.saved"), "{name}");
        let bad = AuditFilter {
            to: Some("yesterday".into()),
            ..Default::default()
        };
        assert_eq!(log.csv(&bad).await.unwrap().1, 0, "{name}");
        texts.push(text);
    }
    assert_eq!(texts[0], texts[1]);
}

/// More than one page, and more than a download holds: the CSV walks the pages and says it was
/// cut short.
#[tokio::test]
async fn a_long_audit_csv_is_paged_and_cut_alike() {
    let both = Both::new().await;
    let mut answers = Vec::new();
    for (name, e) in both.each() {
        let total = i64::try_from(CSV_MAX_ROWS).unwrap() + 5;
        e.sql
            .execute(
                "WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
                 INSERT INTO audit_log (at, action, target, detail)
                 SELECT '2026-01-05T10:00:00.000Z', CASE WHEN i % 3 = 0 THEN 'a.x' ELSE 'b.x' END,
                        'export ' || i, ''
                 FROM n",
                &[total.into()],
            )
            .await;
        let log = audit(&e);
        let (text, rows, cut) = log.csv(&AuditFilter::default()).await.unwrap();
        assert_eq!((rows, cut), (CSV_MAX_ROWS, true), "{name}");
        let (_, family, family_cut) = log
            .csv(&AuditFilter {
                action: Some("a".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!((family, family_cut), (33_335, false), "{name}");
        answers.push((text.len(), text.lines().nth(1).map(str::to_owned)));
    }
    assert_eq!(answers[0], answers[1]);
}

#[tokio::test]
async fn repeated_entries_are_recorded_once_per_window() {
    let both = Both::new().await;
    for (name, e) in both.each() {
        let log = audit(&e);
        let actor = Actor::system("sign-in");
        let since = "2000-01-01T00:00:00.000Z";
        let later = "2999-01-01T00:00:00.000Z";
        let first = log
            .record_unless_recent(&actor, "login.refused", Some("x@y.io"), "", since)
            .await
            .unwrap();
        let again = log
            .record_unless_recent(&actor, "login.refused", Some("x@y.io"), "", since)
            .await
            .unwrap();
        let other = log
            .record_unless_recent(&actor, "login.refused", Some("z@y.io"), "", since)
            .await
            .unwrap();
        let no_target = log
            .record_unless_recent(&actor, "login.refused", None, "", since)
            .await
            .unwrap();
        let no_target_again = log
            .record_unless_recent(&actor, "login.refused", None, "", since)
            .await
            .unwrap();
        let window_over = log
            .record_unless_recent(&actor, "login.refused", Some("x@y.io"), "", later)
            .await
            .unwrap();
        assert_eq!(
            (first, again, other, no_target, no_target_again, window_over),
            (true, false, true, true, false, true),
            "{name}"
        );

        // many at once still write one
        for round in 0..20 {
            let target = format!("burst-{round}@y.io");
            let tries = (0..8)
                .map(|_| log.record_unless_recent(&actor, "login.burst", Some(&target), "", since))
                .collect();
            let wrote: Vec<bool> = join_all(tries)
                .await
                .into_iter()
                .map(|r| r.unwrap_or_else(|err| panic!("{name}: {err}")))
                .collect();
            assert_eq!(
                wrote.iter().filter(|w| **w).count(),
                1,
                "{name}, round {round}: {wrote:?}"
            );
        }
    }
}

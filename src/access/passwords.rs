//! Passwords set from the console, so nobody needs the command line: an admin's reset of another
//! user's password (a generated one, shown to the admin once and stored only as its hash) and
//! a person's change of their own. Both are audited; no password is ever logged or kept.

use secrecy::{ExposeSecret, SecretString};
use sqlx::SqlitePool;

use crate::{
    access::{
        audit::{self, Actor},
        users::{self, User, UserError},
    },
    db,
};

/// Letters and digits that cannot be misread for one another (no 0/O, 1/l/I).
const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
/// 20 characters of 56: about 116 bits, read out in groups of four.
const GENERATED_LEN: usize = 20;
const GROUP: usize = 4;

/// A new random password, like `a7Kp-9xQm-…`, from the operating system's generator.
pub fn generate() -> Result<SecretString, UserError> {
    // bytes at or above the largest multiple of the alphabet's size are skipped, so every
    // character is equally likely
    let limit = 256 - 256 % ALPHABET.len();
    let mut chars = String::with_capacity(GENERATED_LEN + GENERATED_LEN / GROUP);
    let mut taken = 0;
    while taken < GENERATED_LEN {
        let mut buf = [0u8; 32];
        getrandom::getrandom(&mut buf).map_err(|e| UserError::Hash(e.to_string()))?;
        for b in buf.iter().map(|b| usize::from(*b)).filter(|b| *b < limit) {
            if taken == GENERATED_LEN {
                break;
            }
            if taken > 0 && taken % GROUP == 0 {
                chars.push('-');
            }
            if let Some(c) = ALPHABET.get(b % ALPHABET.len()) {
                chars.push(char::from(*c));
                taken += 1;
            }
        }
    }
    Ok(SecretString::from(chars))
}

/// The audit entry of a reset: never the password.
pub const RESET_DETAIL: &str = "a generated password was shown once to the admin";

/// An admin resets other people's passwords only: their own is changed with [`change_own`].
pub fn check_reset_target(actor: &Actor, id: i64) -> Result<(), UserError> {
    if actor.id == Some(id) {
        return Err(UserError::Invalid(
            "change your own password under Your account: it asks for the current one".into(),
        ));
    }
    Ok(())
}

/// A changed password follows the rules and is not the current one.
pub fn check_new_password(current: &SecretString, new: &SecretString) -> Result<(), UserError> {
    users::check_password_rules(new.expose_secret())?;
    if new.expose_secret() == current.expose_secret() {
        return Err(UserError::Invalid(
            "the new password is the current one: choose another".into(),
        ));
    }
    Ok(())
}

/// Whether signing in with the current password (`proven`) proved it is `me`.
pub fn check_proven(me: &User, proven: Option<&User>) -> Result<(), UserError> {
    match proven {
        Some(u) if u.id == me.id => Ok(()),
        _ => Err(UserError::Invalid(
            "the current password is not right".into(),
        )),
    }
}

/// An admin gives user `id` a new generated password, returned for showing once. The user's
/// sessions end (their `auth_version` moves on). An admin's own password is changed with
/// [`change_own`], which asks for the current one.
pub async fn reset(
    pool: &SqlitePool,
    actor: &Actor,
    id: i64,
) -> Result<(User, SecretString), UserError> {
    check_reset_target(actor, id)?;
    let user = users::find(pool, id).await?.ok_or(UserError::NotFound)?;
    let password = generate()?;
    users::set_password(pool, actor, id, password.clone()).await?;
    let mut conn = db::begin_write(pool).await?;
    audit::record(
        &mut conn,
        actor,
        "user.password_reset",
        Some(&user.email),
        RESET_DETAIL,
    )
    .await?;
    conn.commit().await?;
    let user = users::find(pool, id).await?.ok_or(UserError::NotFound)?;
    Ok((user, password))
}

/// `me` changes their own password, proving it with the current one. Answers the user as they
/// are now (with the new `auth_version`, so the caller can keep this session signed in).
pub async fn change_own(
    pool: &SqlitePool,
    actor: &Actor,
    me: &User,
    current: SecretString,
    new: SecretString,
) -> Result<User, UserError> {
    check_new_password(&current, &new)?;
    let proven = users::authenticate(pool, &me.email, current).await?;
    check_proven(me, proven.as_ref())?;
    users::set_password(pool, actor, me.id, new).await?;
    users::find(pool, me.id).await?.ok_or(UserError::NotFound)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::users::Role;

    fn secret(s: &str) -> SecretString {
        SecretString::from(s.to_owned())
    }

    #[test]
    fn generated_passwords_are_long_readable_and_different() {
        let a = generate().unwrap();
        let b = generate().unwrap();
        let text = a.expose_secret();
        assert_eq!(text.chars().filter(|c| *c != '-').count(), GENERATED_LEN);
        assert!(text
            .split('-')
            .all(|g| g.len() == GROUP && g.bytes().all(|c| ALPHABET.contains(&c))));
        assert!(users::check_password_rules(text).is_ok());
        assert_ne!(text, b.expose_secret());
    }

    #[tokio::test]
    async fn an_admin_resets_another_users_password_and_a_user_changes_their_own() {
        let dir = tempfile::tempdir().unwrap();
        let pool = db::open(&format!("sqlite://{}/p.db", dir.path().display()))
            .await
            .unwrap();
        let system = Actor::system("test");
        let admin = users::create(
            &pool,
            &system,
            "admin@example.com",
            secret("admin password 1"),
            Role::Admin,
        )
        .await
        .unwrap();
        let ops = users::create(
            &pool,
            &system,
            "ops@example.com",
            secret("first password"),
            Role::Operator,
        )
        .await
        .unwrap();
        let by_admin = Actor::user(&admin, None);

        let (after, password) = reset(&pool, &by_admin, ops.id).await.unwrap();
        assert!(after.auth_version > ops.auth_version, "their sessions end");
        let signed_in = users::authenticate(&pool, "ops@example.com", password.clone())
            .await
            .unwrap();
        assert_eq!(signed_in.map(|u| u.id), Some(ops.id));
        assert!(
            users::authenticate(&pool, "ops@example.com", secret("first password"))
                .await
                .unwrap()
                .is_none()
        );
        let (actor_email, detail): (String, String) = sqlx::query_as(
            "SELECT actor_email, detail FROM audit_log WHERE action = 'user.password_reset' AND target = 'ops@example.com'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(actor_email, "admin@example.com");
        assert!(!detail.contains(password.expose_secret()));
        assert!(matches!(
            reset(&pool, &by_admin, admin.id).await,
            Err(UserError::Invalid(_))
        ));
        assert!(matches!(
            reset(&pool, &by_admin, 999).await,
            Err(UserError::NotFound)
        ));

        // the person then picks their own, proving the one they were given
        let me = users::find(&pool, ops.id).await.unwrap().unwrap();
        let by_me = Actor::user(&me, None);
        let wrong = change_own(
            &pool,
            &by_me,
            &me,
            secret("not the password"),
            secret("my own long password"),
        )
        .await;
        assert!(matches!(wrong, Err(UserError::Invalid(m)) if m.contains("not right")));
        let short = change_own(&pool, &by_me, &me, password.clone(), secret("short")).await;
        assert!(matches!(short, Err(UserError::Invalid(_))));
        let now = change_own(&pool, &by_me, &me, password, secret("my own long password"))
            .await
            .unwrap();
        assert!(now.auth_version > me.auth_version);
        assert!(
            users::authenticate(&pool, "ops@example.com", secret("my own long password"))
                .await
                .unwrap()
                .is_some()
        );
    }
}

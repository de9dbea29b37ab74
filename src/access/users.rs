//! People who use the console, their roles, and password checking.

use std::{fmt, str::FromStr, sync::OnceLock};

use argon2::{
    password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString},
    Argon2,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sqlx::SqlitePool;

// where most code has always found it
pub use crate::access::audit::Actor;
use crate::{access::audit, db};

/// What a person may do. Each role includes everything of the roles below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads everything except secrets.
    Viewer,
    /// Also retries exports and edits mappings.
    Operator,
    /// Also manages users and credentials.
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Admin, Role::Operator, Role::Viewer];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    pub fn allows(self, needed: Role) -> bool {
        self >= needed
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = UserError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            "admin" => Ok(Role::Admin),
            other => Err(UserError::Invalid(format!(
                "unknown role {other:?}: use admin, operator or viewer"
            ))),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: i64,
    pub email: String,
    pub role: Role,
    pub disabled: bool,
    pub auth_version: i64,
    pub created_at: String,
    pub last_login_at: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("{0}")]
    Invalid(String),
    #[error("a user with this email already exists")]
    Duplicate,
    #[error("no such user")]
    NotFound,
    #[error("the last active admin cannot be demoted or disabled")]
    LastAdmin,
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

pub const MIN_PASSWORD_LEN: usize = 12;
pub const MAX_PASSWORD_LEN: usize = 256;

pub fn normalise_email(email: &str) -> Result<String, UserError> {
    let email = email.trim();
    let valid = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && !domain.is_empty() && !domain.contains('@')
        })
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if valid {
        Ok(email.to_owned())
    } else {
        Err(UserError::Invalid(
            "enter a valid email address, like name@example.com".into(),
        ))
    }
}

pub fn check_password_rules(password: &str) -> Result<(), UserError> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_LEN {
        return Err(UserError::Invalid(format!(
            "the password must have at least {MIN_PASSWORD_LEN} characters"
        )));
    }
    if chars > MAX_PASSWORD_LEN {
        return Err(UserError::Invalid(format!(
            "the password must have at most {MAX_PASSWORD_LEN} characters"
        )));
    }
    Ok(())
}

/// argon2id with the crate defaults, which are OWASP's minimum: m = 19 MiB, t = 2, p = 1.
fn argon2() -> Argon2<'static> {
    Argon2::default()
}

/// Hashes off the async executor: a hash takes tens of milliseconds and 19 MiB.
pub async fn hash_password(password: SecretString) -> Result<String, UserError> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        argon2()
            .hash_password(password.expose_secret().as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| UserError::Hash(e.to_string()))
    })
    .await
    .map_err(|e| UserError::Hash(e.to_string()))?
}

/// Whether `password` is the one `hash` was made from, off the async executor; a hash that cannot
/// be read never verifies.
pub async fn verify_password(password: SecretString, hash: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .map(|parsed| {
                argon2()
                    .verify_password(password.expose_secret().as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

/// A hash of nothing in particular, verified against when the account does not exist, so that an
/// unknown email takes as long as a wrong password.
pub fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        argon2()
            .hash_password(b"not a real password", &salt)
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

/// A user as stored: `role` and `disabled` as their columns hold them.
pub fn row_to_user(
    id: i64,
    email: String,
    role: String,
    disabled: i64,
    auth_version: i64,
    created_at: String,
    last_login_at: Option<String>,
) -> User {
    User {
        id,
        email,
        // the CHECK constraint keeps roles valid; a hand-edited row falls back to the least power
        role: role.parse().unwrap_or(Role::Viewer),
        disabled: disabled != 0,
        auth_version,
        created_at,
        last_login_at,
    }
}

pub async fn count(pool: &SqlitePool) -> Result<i64, UserError> {
    Ok(sqlx::query_scalar!("SELECT COUNT(*) FROM users")
        .fetch_one(pool)
        .await?)
}

pub async fn list(pool: &SqlitePool) -> Result<Vec<User>, UserError> {
    let rows = sqlx::query!(
        r#"SELECT id AS "id!", email, role, disabled, auth_version, created_at, last_login_at
         FROM users ORDER BY email"#
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            row_to_user(
                r.id,
                r.email,
                r.role,
                r.disabled,
                r.auth_version,
                r.created_at,
                r.last_login_at,
            )
        })
        .collect())
}

pub async fn find(pool: &SqlitePool, id: i64) -> Result<Option<User>, UserError> {
    let row = sqlx::query!(
        r#"SELECT id AS "id!", email, role, disabled, auth_version, created_at, last_login_at
         FROM users WHERE id = ?"#,
        id
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| {
        row_to_user(
            r.id,
            r.email,
            r.role,
            r.disabled,
            r.auth_version,
            r.created_at,
            r.last_login_at,
        )
    }))
}

// an actor is made from a user here, so that the audit log knows nothing of users
impl Actor {
    pub fn user(user: &User, client_ip: Option<String>) -> Self {
        Self {
            id: Some(user.id),
            email: user.email.clone(),
            client_ip,
        }
    }
}

pub async fn create(
    pool: &SqlitePool,
    actor: &Actor,
    email: &str,
    password: SecretString,
    role: Role,
) -> Result<User, UserError> {
    let email = normalise_email(email)?;
    check_password_rules(password.expose_secret())?;
    let hash = hash_password(password).await?;
    let mut tx = db::begin_write(pool).await?;
    let role_text = role.as_str();
    let inserted = sqlx::query_scalar!(
        "INSERT INTO users (email, password_hash, role) VALUES (?, ?, ?) RETURNING id",
        email,
        hash,
        role_text
    )
    .fetch_one(&mut *tx)
    .await;
    let id = match inserted {
        Ok(id) => id,
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            return Err(UserError::Duplicate)
        }
        Err(e) => return Err(e.into()),
    };
    audit::record(
        &mut tx,
        actor,
        "user.created",
        Some(&email),
        &created_detail(role),
    )
    .await?;
    tx.commit().await?;
    find(pool, id).await?.ok_or(UserError::NotFound)
}

/// Checks the password, and never tells apart an unknown email from a wrong password: both verify
/// one argon2 hash and both answer `None`. Disabled accounts answer `None` too.
pub async fn authenticate(
    pool: &SqlitePool,
    email: &str,
    password: SecretString,
) -> Result<Option<User>, UserError> {
    let email = email.trim();
    let row = sqlx::query!(
        r#"SELECT id AS "id!", password_hash FROM users WHERE email = ? AND disabled = 0"#,
        email
    )
    .fetch_optional(pool)
    .await?;
    let (id, hash) = match row {
        Some(r) => (Some(r.id), r.password_hash),
        None => (None, dummy_hash().to_owned()),
    };
    let ok = verify_password(password, hash).await;
    match (ok, id) {
        (true, Some(id)) => {
            let now = db::now_text();
            sqlx::query!("UPDATE users SET last_login_at = ? WHERE id = ?", now, id)
                .execute(pool)
                .await?;
            find(pool, id).await
        }
        _ => Ok(None),
    }
}

/// Whether giving a user who is `current_role` the role `role` takes an admin away, so that it
/// must leave another active admin.
pub fn takes_an_admin_role(current_role: &str, role: Role) -> bool {
    current_role == Role::Admin.as_str() && role != Role::Admin
}

/// Whether disabling (or enabling) a user who is `current_role` takes an active admin away.
pub fn takes_an_active_admin(current_role: &str, disabled: bool) -> bool {
    disabled && current_role == Role::Admin.as_str()
}

/// The audit entry of a new account.
pub fn created_detail(role: Role) -> String {
    format!("role {role}")
}

/// The audit entry of a role change.
pub fn role_change_detail(from: &str, to: Role) -> String {
    format!("{from} → {to}")
}

/// The audit action of disabling or enabling an account.
pub fn status_action(disabled: bool) -> &'static str {
    if disabled {
        "user.disabled"
    } else {
        "user.enabled"
    }
}

async fn active_admins_other_than(
    tx: &mut sqlx::SqliteConnection,
    id: i64,
) -> Result<i64, UserError> {
    Ok(sqlx::query_scalar!(
        "SELECT COUNT(*) FROM users WHERE role = 'admin' AND disabled = 0 AND id <> ?",
        id
    )
    .fetch_one(tx)
    .await?)
}

pub async fn set_role(
    pool: &SqlitePool,
    actor: &Actor,
    id: i64,
    role: Role,
) -> Result<User, UserError> {
    let mut tx = db::begin_write(pool).await?;
    let current = sqlx::query!("SELECT email, role FROM users WHERE id = ?", id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(UserError::NotFound)?;
    if takes_an_admin_role(&current.role, role) && active_admins_other_than(&mut tx, id).await? == 0
    {
        return Err(UserError::LastAdmin);
    }
    let role_text = role.as_str();
    let now = db::now_text();
    sqlx::query!(
        "UPDATE users SET role = ?, auth_version = auth_version + 1, updated_at = ? WHERE id = ?",
        role_text,
        now,
        id
    )
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        actor,
        "user.role_changed",
        Some(&current.email),
        &role_change_detail(&current.role, role),
    )
    .await?;
    tx.commit().await?;
    find(pool, id).await?.ok_or(UserError::NotFound)
}

pub async fn set_disabled(
    pool: &SqlitePool,
    actor: &Actor,
    id: i64,
    disabled: bool,
) -> Result<User, UserError> {
    let mut tx = db::begin_write(pool).await?;
    let current = sqlx::query!("SELECT email, role FROM users WHERE id = ?", id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(UserError::NotFound)?;
    if takes_an_active_admin(&current.role, disabled)
        && active_admins_other_than(&mut tx, id).await? == 0
    {
        return Err(UserError::LastAdmin);
    }
    let flag = i64::from(disabled);
    let now = db::now_text();
    sqlx::query!(
        "UPDATE users SET disabled = ?, auth_version = auth_version + 1, updated_at = ? WHERE id = ?",
        flag,
        now,
        id
    )
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        actor,
        status_action(disabled),
        Some(&current.email),
        "",
    )
    .await?;
    tx.commit().await?;
    find(pool, id).await?.ok_or(UserError::NotFound)
}

pub async fn set_password(
    pool: &SqlitePool,
    actor: &Actor,
    id: i64,
    password: SecretString,
) -> Result<(), UserError> {
    check_password_rules(password.expose_secret())?;
    let hash = hash_password(password).await?;
    let mut tx = db::begin_write(pool).await?;
    let now = db::now_text();
    let email = sqlx::query_scalar!(
        "UPDATE users SET password_hash = ?, auth_version = auth_version + 1, updated_at = ?
         WHERE id = ? RETURNING email",
        hash,
        now,
        id
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(UserError::NotFound)?;
    audit::record(&mut tx, actor, "user.password_changed", Some(&email), "").await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn pool() -> (tempfile::TempDir, SqlitePool) {
        let dir = tempfile::tempdir().unwrap();
        let pool = db::open(&format!("sqlite://{}/t.db", dir.path().display()))
            .await
            .unwrap();
        (dir, pool)
    }

    fn secret(s: &str) -> SecretString {
        SecretString::from(s.to_owned())
    }

    #[tokio::test]
    async fn hashes_with_owasp_argon2id_parameters() {
        let hash = hash_password(secret("correct horse battery"))
            .await
            .unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
    }

    #[tokio::test]
    async fn create_authenticate_and_refuse() {
        let (_d, pool) = pool().await;
        let actor = Actor::system("test");
        let user = create(
            &pool,
            &actor,
            "Ada@Example.com",
            secret("correct horse battery"),
            Role::Admin,
        )
        .await
        .unwrap();
        assert_eq!(user.role, Role::Admin);
        let found = authenticate(&pool, "ada@example.com", secret("correct horse battery"))
            .await
            .unwrap();
        assert_eq!(found.map(|u| u.id), Some(user.id));
        assert!(
            authenticate(&pool, "ada@example.com", secret("wrong password!!"))
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            authenticate(&pool, "nobody@example.com", secret("correct horse battery"))
                .await
                .unwrap()
                .is_none()
        );
        let dup = create(
            &pool,
            &actor,
            "ada@example.com",
            secret("another long one"),
            Role::Viewer,
        )
        .await;
        assert!(matches!(dup, Err(UserError::Duplicate)));
        let short = create(
            &pool,
            &actor,
            "bob@example.com",
            secret("short"),
            Role::Viewer,
        )
        .await;
        assert!(matches!(short, Err(UserError::Invalid(_))));
    }

    #[tokio::test]
    async fn the_last_admin_stays_and_disabled_users_cannot_log_in() {
        let (_d, pool) = pool().await;
        let actor = Actor::system("test");
        let admin = create(
            &pool,
            &actor,
            "a@example.com",
            secret("correct horse battery"),
            Role::Admin,
        )
        .await
        .unwrap();
        assert!(matches!(
            set_role(&pool, &actor, admin.id, Role::Viewer).await,
            Err(UserError::LastAdmin)
        ));
        assert!(matches!(
            set_disabled(&pool, &actor, admin.id, true).await,
            Err(UserError::LastAdmin)
        ));
        let op = create(
            &pool,
            &actor,
            "o@example.com",
            secret("correct horse battery"),
            Role::Operator,
        )
        .await
        .unwrap();
        let disabled = set_disabled(&pool, &actor, op.id, true).await.unwrap();
        assert!(disabled.disabled);
        assert!(disabled.auth_version > op.auth_version);
        assert!(
            authenticate(&pool, "o@example.com", secret("correct horse battery"))
                .await
                .unwrap()
                .is_none()
        );
        let entries = audit::list(&pool, &audit::AuditFilter::default())
            .await
            .unwrap();
        assert!(entries.iter().any(|e| e.action == "user.disabled"));
    }

    #[test]
    fn roles_order_and_parse() {
        assert!(Role::Admin.allows(Role::Operator));
        assert!(!Role::Viewer.allows(Role::Operator));
        assert_eq!("Operator".parse::<Role>().unwrap(), Role::Operator);
        assert!("root".parse::<Role>().is_err());
    }
}

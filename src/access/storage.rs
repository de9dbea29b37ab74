//! What access needs from the database, whichever engine holds it.

use secrecy::SecretString;

use super::{
    audit::{Actor, AuditEntry, AuditFilter},
    users::{Role, User, UserError},
};

/// The console's people: accounts, their roles and passwords. Every change is audited in the
/// same transaction.
#[async_trait::async_trait]
pub trait UserStore: Send + Sync {
    async fn count(&self) -> Result<i64, UserError>;
    async fn list(&self) -> Result<Vec<User>, UserError>;
    async fn find(&self, id: i64) -> Result<Option<User>, UserError>;
    async fn create(
        &self,
        actor: &Actor,
        email: &str,
        password: SecretString,
        role: Role,
    ) -> Result<User, UserError>;
    /// Checks the password, and never tells apart an unknown email from a wrong password: both verify
    /// one argon2 hash and both answer `None`. Disabled accounts answer `None` too.
    async fn authenticate(
        &self,
        email: &str,
        password: SecretString,
    ) -> Result<Option<User>, UserError>;
    async fn set_role(&self, actor: &Actor, id: i64, role: Role) -> Result<User, UserError>;
    async fn set_disabled(&self, actor: &Actor, id: i64, disabled: bool)
        -> Result<User, UserError>;
    async fn set_password(
        &self,
        actor: &Actor,
        id: i64,
        password: SecretString,
    ) -> Result<(), UserError>;
    /// An admin gives user `id` a new generated password, returned for showing once. The user's
    /// sessions end (their `auth_version` moves on). An admin's own password is changed with
    /// [`change_own`], which asks for the current one.
    async fn reset(&self, actor: &Actor, id: i64) -> Result<(User, SecretString), UserError>;
    /// `me` changes their own password, proving it with the current one. Answers the user as they
    /// are now (with the new `auth_version`, so the caller can keep this session signed in).
    async fn change_own(
        &self,
        actor: &Actor,
        me: &User,
        current: SecretString,
        new: SecretString,
    ) -> Result<User, UserError>;
}

/// The audit log: who did what, when.
#[async_trait::async_trait]
pub trait AuditLog: Send + Sync {
    /// Records one action in a transaction of its own.
    async fn record(
        &self,
        actor: &Actor,
        action: &str,
        target: Option<&str>,
        detail: &str,
    ) -> Result<(), sqlx::Error>;
    /// Records one action unless the same action on the same target was recorded at or after
    /// `since`; whether it recorded.
    async fn record_unless_recent(
        &self,
        actor: &Actor,
        action: &str,
        target: Option<&str>,
        detail: &str,
        since: &str,
    ) -> Result<bool, sqlx::Error>;
    async fn list(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, sqlx::Error>;
    /// The entries about one target (`export 12`), oldest first, at most `limit`.
    async fn for_target(&self, target: &str, limit: i64) -> Result<Vec<AuditEntry>, sqlx::Error>;
    /// The filtered audit log as CSV (header first, newest entry next), safe to open in a
    /// spreadsheet. Also says whether [`CSV_MAX_ROWS`] cut it short.
    async fn csv(&self, filter: &AuditFilter) -> Result<(String, usize, bool), sqlx::Error>;
}

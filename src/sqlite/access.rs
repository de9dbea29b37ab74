use secrecy::SecretString;

use super::SqliteStore;
use crate::access::{
    audit::{self, Actor, AuditEntry, AuditFilter},
    passwords,
    storage::{AuditLog, UserStore},
    users::{self, Role, User, UserError},
};

#[async_trait::async_trait]
impl UserStore for SqliteStore {
    async fn count(&self) -> Result<i64, UserError> {
        users::count(&self.pool).await
    }

    async fn list(&self) -> Result<Vec<User>, UserError> {
        users::list(&self.pool).await
    }

    async fn find(&self, id: i64) -> Result<Option<User>, UserError> {
        users::find(&self.pool, id).await
    }

    async fn create(
        &self,
        actor: &Actor,
        email: &str,
        password: SecretString,
        role: Role,
    ) -> Result<User, UserError> {
        users::create(&self.pool, actor, email, password, role).await
    }

    async fn authenticate(
        &self,
        email: &str,
        password: SecretString,
    ) -> Result<Option<User>, UserError> {
        users::authenticate(&self.pool, email, password).await
    }

    async fn set_role(&self, actor: &Actor, id: i64, role: Role) -> Result<User, UserError> {
        users::set_role(&self.pool, actor, id, role).await
    }

    async fn set_disabled(
        &self,
        actor: &Actor,
        id: i64,
        disabled: bool,
    ) -> Result<User, UserError> {
        users::set_disabled(&self.pool, actor, id, disabled).await
    }

    async fn set_password(
        &self,
        actor: &Actor,
        id: i64,
        password: SecretString,
    ) -> Result<(), UserError> {
        users::set_password(&self.pool, actor, id, password).await
    }

    async fn reset(&self, actor: &Actor, id: i64) -> Result<(User, SecretString), UserError> {
        passwords::reset(&self.pool, actor, id).await
    }

    async fn change_own(
        &self,
        actor: &Actor,
        me: &User,
        current: SecretString,
        new: SecretString,
    ) -> Result<User, UserError> {
        passwords::change_own(&self.pool, actor, me, current, new).await
    }
}

#[async_trait::async_trait]
impl AuditLog for SqliteStore {
    async fn record(
        &self,
        actor: &Actor,
        action: &str,
        target: Option<&str>,
        detail: &str,
    ) -> Result<(), sqlx::Error> {
        let mut conn = self.pool.acquire().await?;
        audit::record(&mut conn, actor, action, target, detail).await
    }

    async fn record_unless_recent(
        &self,
        actor: &Actor,
        action: &str,
        target: Option<&str>,
        detail: &str,
        since: &str,
    ) -> Result<bool, sqlx::Error> {
        let mut conn = self.pool.acquire().await?;
        audit::record_unless_recent(&mut conn, actor, action, target, detail, since).await
    }

    async fn list(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, sqlx::Error> {
        audit::list(&self.pool, filter).await
    }

    async fn for_target(&self, target: &str, limit: i64) -> Result<Vec<AuditEntry>, sqlx::Error> {
        audit::for_target(&self.pool, target, limit).await
    }

    async fn csv(&self, filter: &AuditFilter) -> Result<(String, usize, bool), sqlx::Error> {
        audit::csv(&self.pool, filter).await
    }
}

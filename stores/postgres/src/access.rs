//! The console's people and the audit log on PostgreSQL.

use integration::access::{
    audit::{self as audit_rules, Actor, AuditEntry, AuditFilter},
    passwords,
    storage::{AuditLog, UserStore},
    users::{self, Role, User, UserError},
};
use integration::db;
use secrecy::{ExposeSecret, SecretString};
use sqlx::{PgConnection, PgPool};

use crate::{audit, PgStore};

/// Serialises the changes that can take an admin away: "at least one active admin" is an
/// invariant over many rows, which row locks on the changed user alone cannot keep (two admins
/// demoting each other would each still see the other).
const LAST_ADMIN_LOCK: i64 = 0x7065_6f70_6c65_0001;

/// The class of the two-key advisory locks [`AuditLog::record_unless_recent`] takes per action
/// and target (a two-key lock never collides with a one-key lock).
const RECENT_AUDIT_LOCK_CLASS: i32 = 0x7065_6f01;

async fn find_in(conn: &mut PgConnection, id: i64) -> Result<Option<User>, UserError> {
    let row = sqlx::query!(
        "SELECT id, email, role, disabled, auth_version, created_at, last_login_at
         FROM users WHERE id = $1",
        id
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| {
        users::row_to_user(
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

async fn find_user(pool: &PgPool, id: i64) -> Result<Option<User>, UserError> {
    let mut conn = pool.acquire().await?;
    find_in(&mut conn, id).await
}

/// Waits for any other change that could take an admin away, until this transaction ends.
async fn lock_admins(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query!("SELECT pg_advisory_xact_lock($1)", LAST_ADMIN_LOCK)
        .execute(conn)
        .await?;
    Ok(())
}

async fn active_admins_other_than(conn: &mut PgConnection, id: i64) -> Result<i64, UserError> {
    Ok(sqlx::query_scalar!(
        r#"SELECT COUNT(*) AS "n!" FROM users WHERE role = 'admin' AND disabled = 0 AND id <> $1"#,
        id
    )
    .fetch_one(conn)
    .await?)
}

/// Writes a new password hash and its audit entry in `conn`'s transaction; the user's e-mail.
async fn write_password(
    conn: &mut PgConnection,
    actor: &Actor,
    id: i64,
    hash: &str,
) -> Result<String, UserError> {
    let now = db::now_text();
    let email = sqlx::query_scalar!(
        "UPDATE users SET password_hash = $1, auth_version = auth_version + 1, updated_at = $2
         WHERE id = $3 RETURNING email",
        hash,
        now,
        id
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(UserError::NotFound)?;
    audit::record(conn, actor, "user.password_changed", Some(&email), "").await?;
    Ok(email)
}

/// The audit log's page of `filter`.
async fn audit_page(pool: &PgPool, filter: &AuditFilter) -> Result<Vec<AuditEntry>, sqlx::Error> {
    let Some(q) = filter.query() else {
        return Ok(Vec::new());
    };
    // lower() on both sides under "C": SQLite's LIKE folds ASCII letters only, and so does this
    sqlx::query_as!(
        AuditEntry,
        r#"SELECT id, at, actor_email, action, target, detail, client_ip
           FROM audit_log
           WHERE id < $1
             AND ($2::text IS NULL OR action = $2
                  OR lower(action) LIKE lower($3::text COLLATE "C"))
             AND ($4::text IS NULL
                  OR lower(actor_email) LIKE lower($4 COLLATE "C") ESCAPE '\'
                  OR lower(target) LIKE lower($4 COLLATE "C") ESCAPE '\'
                  OR lower(detail) LIKE lower($4 COLLATE "C") ESCAPE '\')
             AND ($6::text IS NULL OR at >= $6) AND ($7::text IS NULL OR at < $7)
           ORDER BY id DESC
           LIMIT $5"#,
        q.before,
        q.action,
        q.action_family,
        q.search,
        q.limit,
        q.start,
        q.end_exclusive
    )
    .fetch_all(pool)
    .await
}

#[async_trait::async_trait]
impl UserStore for PgStore {
    async fn count(&self) -> Result<i64, UserError> {
        Ok(sqlx::query_scalar!(r#"SELECT COUNT(*) AS "n!" FROM users"#)
            .fetch_one(&self.pool)
            .await?)
    }

    async fn list(&self) -> Result<Vec<User>, UserError> {
        // lower() under "C" orders as SQLite's NOCASE column does
        let rows = sqlx::query!(
            "SELECT id, email, role, disabled, auth_version, created_at, last_login_at
             FROM users ORDER BY lower(email)"
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                users::row_to_user(
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

    async fn find(&self, id: i64) -> Result<Option<User>, UserError> {
        find_user(&self.pool, id).await
    }

    async fn create(
        &self,
        actor: &Actor,
        email: &str,
        password: SecretString,
        role: Role,
    ) -> Result<User, UserError> {
        let email = users::normalise_email(email)?;
        users::check_password_rules(password.expose_secret())?;
        let hash = users::hash_password(password).await?;
        let mut tx = self.pool.begin().await?;
        let role_text = role.as_str();
        let inserted = sqlx::query_scalar!(
            "INSERT INTO users (email, password_hash, role) VALUES ($1, $2, $3) RETURNING id",
            email,
            hash,
            role_text
        )
        .fetch_one(&mut *tx)
        .await;
        let id = match inserted {
            Ok(id) => id,
            // users_email_key, on lower(email)
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
            &users::created_detail(role),
        )
        .await?;
        tx.commit().await?;
        find_user(&self.pool, id).await?.ok_or(UserError::NotFound)
    }

    async fn authenticate(
        &self,
        email: &str,
        password: SecretString,
    ) -> Result<Option<User>, UserError> {
        let email = email.trim();
        // the form users_email_key indexes, which is SQLite's NOCASE comparison
        let row = sqlx::query!(
            r#"SELECT id, password_hash FROM users
               WHERE lower(email) = lower($1 COLLATE "C") AND disabled = 0"#,
            email
        )
        .fetch_optional(&self.pool)
        .await?;
        let (id, hash) = match row {
            Some(r) => (Some(r.id), r.password_hash),
            None => (None, users::dummy_hash().to_owned()),
        };
        let ok = users::verify_password(password, hash).await;
        match (ok, id) {
            (true, Some(id)) => {
                let now = db::now_text();
                sqlx::query!("UPDATE users SET last_login_at = $1 WHERE id = $2", now, id)
                    .execute(&self.pool)
                    .await?;
                find_user(&self.pool, id).await
            }
            _ => Ok(None),
        }
    }

    async fn set_role(&self, actor: &Actor, id: i64, role: Role) -> Result<User, UserError> {
        let mut tx = self.pool.begin().await?;
        lock_admins(&mut tx).await?;
        let current = sqlx::query!("SELECT email, role FROM users WHERE id = $1", id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(UserError::NotFound)?;
        if users::takes_an_admin_role(&current.role, role)
            && active_admins_other_than(&mut tx, id).await? == 0
        {
            return Err(UserError::LastAdmin);
        }
        let role_text = role.as_str();
        let now = db::now_text();
        sqlx::query!(
            "UPDATE users SET role = $1, auth_version = auth_version + 1, updated_at = $2
             WHERE id = $3",
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
            &users::role_change_detail(&current.role, role),
        )
        .await?;
        tx.commit().await?;
        find_user(&self.pool, id).await?.ok_or(UserError::NotFound)
    }

    async fn set_disabled(
        &self,
        actor: &Actor,
        id: i64,
        disabled: bool,
    ) -> Result<User, UserError> {
        let mut tx = self.pool.begin().await?;
        lock_admins(&mut tx).await?;
        let current = sqlx::query!("SELECT email, role FROM users WHERE id = $1", id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(UserError::NotFound)?;
        if users::takes_an_active_admin(&current.role, disabled)
            && active_admins_other_than(&mut tx, id).await? == 0
        {
            return Err(UserError::LastAdmin);
        }
        let flag = i64::from(disabled);
        let now = db::now_text();
        sqlx::query!(
            "UPDATE users SET disabled = $1, auth_version = auth_version + 1, updated_at = $2
             WHERE id = $3",
            flag,
            now,
            id
        )
        .execute(&mut *tx)
        .await?;
        audit::record(
            &mut tx,
            actor,
            users::status_action(disabled),
            Some(&current.email),
            "",
        )
        .await?;
        tx.commit().await?;
        find_user(&self.pool, id).await?.ok_or(UserError::NotFound)
    }

    async fn set_password(
        &self,
        actor: &Actor,
        id: i64,
        password: SecretString,
    ) -> Result<(), UserError> {
        users::check_password_rules(password.expose_secret())?;
        let hash = users::hash_password(password).await?;
        let mut tx = self.pool.begin().await?;
        write_password(&mut tx, actor, id, &hash).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn reset(&self, actor: &Actor, id: i64) -> Result<(User, SecretString), UserError> {
        passwords::check_reset_target(actor, id)?;
        if find_user(&self.pool, id).await?.is_none() {
            return Err(UserError::NotFound);
        }
        let password = passwords::generate()?;
        users::check_password_rules(password.expose_secret())?;
        let hash = users::hash_password(password.clone()).await?;
        // the new password and both its audit entries, together
        let mut tx = self.pool.begin().await?;
        let email = write_password(&mut tx, actor, id, &hash).await?;
        audit::record(
            &mut tx,
            actor,
            "user.password_reset",
            Some(&email),
            passwords::RESET_DETAIL,
        )
        .await?;
        tx.commit().await?;
        let user = find_user(&self.pool, id)
            .await?
            .ok_or(UserError::NotFound)?;
        Ok((user, password))
    }

    async fn change_own(
        &self,
        actor: &Actor,
        me: &User,
        current: SecretString,
        new: SecretString,
    ) -> Result<User, UserError> {
        passwords::check_new_password(&current, &new)?;
        let proven = self.authenticate(&me.email, current).await?;
        passwords::check_proven(me, proven.as_ref())?;
        self.set_password(actor, me.id, new).await?;
        find_user(&self.pool, me.id)
            .await?
            .ok_or(UserError::NotFound)
    }
}

#[async_trait::async_trait]
impl AuditLog for PgStore {
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
        let mut tx = self.pool.begin().await?;
        // two callers at once would each find no recent entry and both write one: the second
        // waits here, and its INSERT then sees the first one's row
        sqlx::query!(
            "SELECT pg_advisory_xact_lock($1, hashtext($2 || E'\\n' || coalesce($3, '')))",
            RECENT_AUDIT_LOCK_CLASS,
            action,
            target
        )
        .execute(&mut *tx)
        .await?;
        let done = sqlx::query!(
            "INSERT INTO audit_log (actor_id, actor_email, action, target, detail, client_ip)
             SELECT $1::bigint, $2::text, $3::text, $4::text, $5::text, $6::text
             WHERE NOT EXISTS (SELECT 1 FROM audit_log
                               WHERE action = $3 AND target IS NOT DISTINCT FROM $4 AND at >= $7)",
            actor.id,
            actor.email,
            action,
            target,
            detail,
            actor.client_ip,
            since
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    async fn list(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, sqlx::Error> {
        audit_page(&self.pool, filter).await
    }

    async fn for_target(&self, target: &str, limit: i64) -> Result<Vec<AuditEntry>, sqlx::Error> {
        sqlx::query_as!(
            AuditEntry,
            "SELECT id, at, actor_email, action, target, detail, client_ip
             FROM audit_log WHERE target = $1 ORDER BY id LIMIT $2",
            target,
            limit
        )
        .fetch_all(&self.pool)
        .await
    }

    async fn csv(&self, filter: &AuditFilter) -> Result<(String, usize, bool), sqlx::Error> {
        let pool = &self.pool;
        audit_rules::csv_of(filter, |page| async move { audit_page(pool, &page).await }).await
    }
}

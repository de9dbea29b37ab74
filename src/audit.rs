//! The audit log: who did what, when, from where. Entries are written in the same transaction as
//! the change they describe, and never hold a secret.

use serde::{Deserialize, Serialize};
use sqlx::{SqliteConnection, SqlitePool};

use crate::{db, users::Actor};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: i64,
    pub at: String,
    pub actor_email: Option<String>,
    pub action: String,
    pub target: Option<String>,
    pub detail: String,
    pub client_ip: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AuditFilter {
    /// An action or an action family: `login` matches `login.succeeded` and `login.failed`.
    pub action: Option<String>,
    /// Words that must appear in the actor, the target or the detail.
    pub search: Option<String>,
    /// Keyset pagination: only entries older than this id.
    pub before_id: Option<i64>,
    pub limit: Option<i64>,
}

pub const MAX_PAGE: i64 = 200;

pub async fn record(
    conn: &mut SqliteConnection,
    actor: &Actor,
    action: &str,
    target: Option<&str>,
    detail: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO audit_log (actor_id, actor_email, action, target, detail, client_ip)
         VALUES (?, ?, ?, ?, ?, ?)",
        actor.id,
        actor.email,
        action,
        target,
        detail,
        actor.client_ip
    )
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn list(pool: &SqlitePool, filter: &AuditFilter) -> Result<Vec<AuditEntry>, sqlx::Error> {
    let limit = filter.limit.unwrap_or(50).clamp(1, MAX_PAGE);
    let before = filter.before_id.unwrap_or(i64::MAX);
    let action = filter
        .action
        .as_deref()
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(|a| a.chars().take(100).collect::<String>());
    let action_family = action
        .as_deref()
        .map(|a| format!("{}.%", a.replace(['%', '_', '\\'], "")));
    let search = filter
        .search
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(db::like_pattern);
    sqlx::query_as!(
        AuditEntry,
        r#"SELECT id AS "id!", at, actor_email, action, target, detail, client_ip
           FROM audit_log
           WHERE id < ?1
             AND (?2 IS NULL OR action = ?2 OR action LIKE ?3)
             AND (?4 IS NULL OR actor_email LIKE ?4 ESCAPE '\' OR target LIKE ?4 ESCAPE '\'
                  OR detail LIKE ?4 ESCAPE '\')
           ORDER BY id DESC
           LIMIT ?5"#,
        before,
        action,
        action_family,
        search,
        limit
    )
    .fetch_all(pool)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn filters_by_family_and_search_with_wildcards_literal() {
        let dir = tempfile::tempdir().unwrap();
        let pool = crate::db::open(&format!("sqlite://{}/a.db", dir.path().display()))
            .await
            .unwrap();
        let actor = Actor::system("tester");
        let mut conn = pool.acquire().await.unwrap();
        record(&mut conn, &actor, "login.succeeded", Some("a@x.io"), "")
            .await
            .unwrap();
        record(
            &mut conn,
            &actor,
            "login.failed",
            Some("b@x.io"),
            "100% wrong",
        )
        .await
        .unwrap();
        record(&mut conn, &actor, "settings.saved", None, "hibob token")
            .await
            .unwrap();
        drop(conn);
        let all = list(&pool, &AuditFilter::default()).await.unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(all[0].action, "settings.saved", "newest first");
        let logins = list(
            &pool,
            &AuditFilter {
                action: Some("login".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(logins.len(), 2);
        let pct = list(
            &pool,
            &AuditFilter {
                search: Some("100%".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(pct.len(), 1);
        let none = list(
            &pool,
            &AuditFilter {
                search: Some("%".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(
            none.len(),
            1,
            "a literal % only matches the entry that has one"
        );
        let page = list(
            &pool,
            &AuditFilter {
                before_id: Some(all[1].id),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(page.len(), 1);
    }
}

//! The audit log: who did what, when, from where. Entries are written in the same transaction as
//! the change they describe, and never hold a secret.

use serde::{Deserialize, Serialize};
use sqlx::{SqliteConnection, SqlitePool};

use crate::{
    csv_text, db,
    filters::{self, DateRange, FilterError},
};

/// The person acting, for the audit log.
#[derive(Debug, Clone)]
pub struct Actor {
    pub id: Option<i64>,
    pub email: String,
    pub client_ip: Option<String>,
}

impl Actor {
    pub fn system(what: &str) -> Self {
        Self {
            id: None,
            email: what.to_owned(),
            client_ip: None,
        }
    }
}

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
    /// On or after this day (`YYYY-MM-DD`, UTC).
    pub from: Option<String>,
    /// On or before this day (`YYYY-MM-DD`, UTC).
    pub to: Option<String>,
    /// Keyset pagination: only entries older than this id.
    pub before_id: Option<i64>,
    pub limit: Option<i64>,
}

pub const MAX_PAGE: i64 = 200;

impl AuditFilter {
    /// Whether the filter makes sense, and if not, why; [`list`] treats an invalid filter as
    /// matching nothing.
    pub fn check(&self) -> Result<(), FilterError> {
        filters::search_term(self.search.as_deref())?;
        filters::search_term(self.action.as_deref())?;
        DateRange::parse(self.from.as_deref(), self.to.as_deref()).map(|_| ())
    }
}

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

/// Like [`record`], unless the same action on the same target was recorded since `since` (a
/// stored time): for events an outsider can repeat at will, such as refused sign-ins, so the log
/// shows that they happened without growing by one row per attempt. Returns whether it wrote.
pub async fn record_unless_recent(
    conn: &mut SqliteConnection,
    actor: &Actor,
    action: &str,
    target: Option<&str>,
    detail: &str,
    since: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        "INSERT INTO audit_log (actor_id, actor_email, action, target, detail, client_ip)
         SELECT ?1, ?2, ?3, ?4, ?5, ?6
         WHERE NOT EXISTS (SELECT 1 FROM audit_log WHERE action = ?3 AND target IS ?4 AND at >= ?7)",
        actor.id,
        actor.email,
        action,
        target,
        detail,
        actor.client_ip,
        since
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A filter as the list's query binds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    /// Only entries with a smaller id.
    pub before: i64,
    /// The action, matched exactly…
    pub action: Option<String>,
    /// …or as a family (`login.%`, matched with LIKE: wildcards taken out).
    pub action_family: Option<String>,
    /// A LIKE pattern (`ESCAPE '\'`) for the actor, the target or the detail.
    pub search: Option<String>,
    pub limit: i64,
    pub start: Option<String>,
    pub end_exclusive: Option<String>,
}

impl AuditFilter {
    /// What [`list`] binds, or `None` for an invalid filter, which matches nothing.
    pub fn query(&self) -> Option<ListQuery> {
        if self.check().is_err() {
            return None;
        }
        let dates = DateRange::parse(self.from.as_deref(), self.to.as_deref()).unwrap_or_default();
        let action = self
            .action
            .as_deref()
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(|a| a.chars().take(100).collect::<String>());
        let action_family = action
            .as_deref()
            .map(|a| format!("{}.%", a.replace(['%', '_', '\\'], "")));
        let search = self
            .search
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(db::like_pattern);
        Some(ListQuery {
            before: self.before_id.unwrap_or(i64::MAX),
            action,
            action_family,
            search,
            limit: self.limit.unwrap_or(50).clamp(1, MAX_PAGE),
            start: dates.start,
            end_exclusive: dates.end_exclusive,
        })
    }
}

pub async fn list(pool: &SqlitePool, filter: &AuditFilter) -> Result<Vec<AuditEntry>, sqlx::Error> {
    let Some(q) = filter.query() else {
        return Ok(Vec::new());
    };
    sqlx::query_as!(
        AuditEntry,
        r#"SELECT id AS "id!", at, actor_email, action, target, detail, client_ip
           FROM audit_log
           WHERE id < ?1
             AND (?2 IS NULL OR action = ?2 OR action LIKE ?3)
             AND (?4 IS NULL OR actor_email LIKE ?4 ESCAPE '\' OR target LIKE ?4 ESCAPE '\'
                  OR detail LIKE ?4 ESCAPE '\')
             AND (?6 IS NULL OR at >= ?6) AND (?7 IS NULL OR at < ?7)
           ORDER BY id DESC
           LIMIT ?5"#,
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

/// The entries about one target (`export 12`), oldest first, at most `limit`.
pub async fn for_target(
    pool: &SqlitePool,
    target: &str,
    limit: i64,
) -> Result<Vec<AuditEntry>, sqlx::Error> {
    sqlx::query_as!(
        AuditEntry,
        r#"SELECT id AS "id!", at, actor_email, action, target, detail, client_ip
           FROM audit_log WHERE target = ?1 ORDER BY id LIMIT ?2"#,
        target,
        limit
    )
    .fetch_all(pool)
    .await
}

/// The most entries one CSV download holds; narrower dates give the rest.
pub const CSV_MAX_ROWS: usize = 100_000;

pub const CSV_COLUMNS: [&str; 7] = [
    "id",
    "at",
    "actor",
    "action",
    "target",
    "detail",
    "client_ip",
];

/// The filtered audit log as CSV (header first, newest entry next), safe to open in a
/// spreadsheet. Also says whether [`CSV_MAX_ROWS`] cut it short.
pub async fn csv(
    pool: &SqlitePool,
    filter: &AuditFilter,
) -> Result<(String, usize, bool), sqlx::Error> {
    csv_of(filter, |page| async move { list(pool, &page).await }).await
}

/// [`csv`] over any engine's [`list`]: `list` answers one page of the filter it is given.
pub async fn csv_of<F, Fut>(
    filter: &AuditFilter,
    mut list: F,
) -> Result<(String, usize, bool), sqlx::Error>
where
    F: FnMut(AuditFilter) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<AuditEntry>, sqlx::Error>>,
{
    let mut out = csv_text::row(CSV_COLUMNS);
    let mut page = AuditFilter {
        before_id: None,
        limit: Some(MAX_PAGE),
        ..filter.clone()
    };
    let mut rows = 0;
    loop {
        let entries = list(page.clone()).await?;
        let Some(last) = entries.last().map(|e| e.id) else {
            return Ok((out, rows, false));
        };
        for e in &entries {
            if rows == CSV_MAX_ROWS {
                return Ok((out, rows, true));
            }
            let id = e.id.to_string();
            out.push_str(&csv_text::row([
                id.as_str(),
                &e.at,
                e.actor_email.as_deref().unwrap_or("system"),
                &e.action,
                e.target.as_deref().unwrap_or(""),
                &e.detail,
                e.client_ip.as_deref().unwrap_or(""),
            ]));
            rows += 1;
        }
        page.before_id = Some(last);
    }
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

    #[tokio::test]
    async fn csv_quotes_defuses_formulas_and_follows_the_filter() {
        let dir = tempfile::tempdir().unwrap();
        let pool = crate::db::open(&format!("sqlite://{}/c.db", dir.path().display()))
            .await
            .unwrap();
        let actor = Actor::system("=cmd|' /C calc'!A0");
        let mut conn = pool.acquire().await.unwrap();
        record(
            &mut conn,
            &actor,
            "settings.saved",
            Some("a,b"),
            "said \"hi\"\nthen left",
        )
        .await
        .unwrap();
        record(&mut conn, &actor, "login.failed", Some("@SUM(1)"), "-2+3")
            .await
            .unwrap();
        drop(conn);
        let (text, rows, cut) = csv(&pool, &AuditFilter::default()).await.unwrap();
        assert_eq!((rows, cut), (2, false));
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(
            lines[0],
            "\"id\",\"at\",\"actor\",\"action\",\"target\",\"detail\",\"client_ip\""
        );
        assert!(
            lines[1].contains(",\"'=cmd|' /C calc'!A0\",\"login.failed\",\"'@SUM(1)\",\"'-2+3\","),
            "{}",
            lines[1]
        );
        assert!(
            text.contains(",\"a,b\",\"said \"\"hi\"\"\nthen left\","),
            "{text}"
        );
        let (only_logins, rows, _) = csv(
            &pool,
            &AuditFilter {
                action: Some("login".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(rows, 1);
        assert!(!only_logins.contains("settings.saved"));
        let future = AuditFilter {
            from: Some("2999-01-01".into()),
            ..Default::default()
        };
        assert_eq!(csv(&pool, &future).await.unwrap().1, 0);
        let bad = AuditFilter {
            to: Some("yesterday".into()),
            ..Default::default()
        };
        assert!(bad.check().is_err());
        assert_eq!(csv(&pool, &bad).await.unwrap().1, 0);
    }
}

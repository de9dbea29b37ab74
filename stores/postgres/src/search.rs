//! The exports list and its status chips on PostgreSQL. A filter means what
//! `ExportFilter::criteria` says it means on either engine; text search matches
//! `exports.search_text` (the four searched columns, lower-cased) with `LIKE`, which the trigram
//! index `exports_search_trgm` serves.

use integration::exports::{
    search::{candidate_threshold, Criteria, ExportFilter, ExportSummary, Search},
    storage::ExportSearch,
};
use sqlx::{PgPool, Postgres, QueryBuilder};

use crate::PgStore;

/// Whether a text search is still to be written into a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Text {
    /// As a condition, which the trigram index can answer.
    Indexed,
    /// Already applied: the query reads the matches themselves.
    Applied,
}

/// ` AND …` for every filter, on the exports table aliased `e`.
pub(crate) fn push_conditions(criteria: &Criteria, text: Text, q: &mut QueryBuilder<'_, Postgres>) {
    if let Some(status) = criteria.status {
        q.push(" AND e.status = ").push_bind(status);
    }
    if let Some(source) = criteria.source {
        q.push(" AND e.source = ").push_bind(source);
    }
    if let Some(start) = &criteria.dates.start {
        q.push(" AND e.created_at >= ").push_bind(start.clone());
    }
    if let Some(end) = &criteria.dates.end_exclusive {
        q.push(" AND e.created_at < ").push_bind(end.clone());
    }
    match (&criteria.search, text) {
        (None, _) | (Some(Search::Text { .. }), Text::Applied) => {}
        (Some(Search::Id(id)), _) => {
            q.push(" AND (e.pinpoint_application_id = ")
                .push_bind(id.clone())
                .push(" OR e.hibob_employee_id = ")
                .push_bind(id.clone())
                .push(")");
        }
        (Some(Search::Text { like, .. }), Text::Indexed) => {
            push_like(q, like);
        }
    }
}

/// ` AND e.search_text LIKE <pattern>`, case-blind as SQLite's LIKE is: the column is
/// lower-cased already, and the pattern is lowered under "C", which folds ASCII letters only, as
/// SQLite does.
fn push_like(q: &mut QueryBuilder<'_, Postgres>, like: &str) {
    q.push(" AND e.search_text LIKE lower(")
        .push_bind(like.to_owned())
        .push(" COLLATE \"C\") ESCAPE '\\'");
}

/// Where the next page starts: the creation time of the last export shown (or, if that export
/// is gone, of the nearest older one).
async fn page_anchor(pool: &PgPool, before_id: i64) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar!(
        "SELECT created_at FROM exports WHERE id <= $1 ORDER BY id DESC LIMIT 1",
        before_id
    )
    .fetch_optional(pool)
    .await
}

/// The newest export's id, which counts the exports closely enough (ids are handed out in order
/// and exports are seldom deleted) at the cost of one index lookup.
async fn newest_id(pool: &PgPool) -> Result<i64, sqlx::Error> {
    Ok(
        sqlx::query_scalar!(r#"SELECT MAX(id) AS "id?" FROM exports"#)
            .fetch_one(pool)
            .await?
            .unwrap_or(0),
    )
}

/// How many exports match `like`, counting no further than `up_to`.
async fn matches_up_to(pool: &PgPool, like: &str, up_to: i64) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT COUNT(*) AS "n!" FROM (
               SELECT 1 FROM exports WHERE search_text LIKE lower($1 COLLATE "C") ESCAPE '\'
               LIMIT $2) AS c"#,
        like,
        up_to
    )
    .fetch_one(pool)
    .await
}

pub(crate) async fn list(
    pool: &PgPool,
    filter: &ExportFilter,
    threshold: Option<i64>,
) -> Result<Vec<ExportSummary>, sqlx::Error> {
    let Ok(criteria) = filter.criteria() else {
        return Ok(Vec::new());
    };
    let limit = filter.page_size();
    let anchor = match filter.before_id {
        None => None,
        Some(before) => match page_anchor(pool, before).await? {
            Some(created_at) => Some((created_at, before)),
            None => return Ok(Vec::new()),
        },
    };
    // The trigram index gives the matches themselves (LIKE re-checks what it finds): when they
    // are few they are fetched through it and sorted; when many, the list's order is walked until
    // the page is full, which then meets a match soon. The planner makes the same choice from the
    // column's statistics, but not in a plan it keeps for any pattern (a prepared statement's
    // generic plan), which walks the list whatever the pattern: the count decides instead.
    let few = match &criteria.search {
        Some(Search::Text { like, .. }) => {
            let threshold = match threshold {
                Some(t) => t,
                None => candidate_threshold(newest_id(pool).await?, limit),
            };
            let n = matches_up_to(pool, like, threshold).await?;
            if n == 0 {
                return Ok(Vec::new());
            }
            Some(n < threshold)
        }
        _ => None,
    };
    list_query("", &criteria, few, anchor, limit)
        .build_query_as::<ExportSummary>()
        .fetch_all(pool)
        .await
}

/// The list's query: over the text search's matches when they are `few` (`Some(true)`), else
/// along the filters' indexes. `prefix` lets tests ask for its plan.
fn list_query(
    prefix: &str,
    criteria: &Criteria,
    few: Option<bool>,
    anchor: Option<(String, i64)>,
    limit: i64,
) -> QueryBuilder<'static, Postgres> {
    let mut q = QueryBuilder::<Postgres>::new(prefix);
    q.push(
        "SELECT e.id, e.source, e.status, e.pinpoint_application_id, e.candidate_name, \
         e.candidate_email, e.start_date, e.hibob_employee_id, e.attempts, e.last_error, \
         e.created_at, e.updated_at FROM ",
    );
    let text = match (&criteria.search, few) {
        (Some(Search::Text { like, .. }), Some(true)) => {
            // OFFSET 0 keeps the matches a subquery of their own, read first through the
            // trigram index: merged into the outer query, the planner may walk the whole list
            // in order to spare the sort
            q.push("(SELECT id FROM exports AS e WHERE TRUE");
            push_like(&mut q, like);
            q.push(" OFFSET 0) AS m JOIN exports AS e ON e.id = m.id WHERE TRUE");
            Text::Applied
        }
        _ => {
            q.push("exports AS e WHERE TRUE");
            Text::Indexed
        }
    };
    push_conditions(criteria, text, &mut q);
    if let Some((created_at, before)) = anchor {
        q.push(" AND e.created_at <= ")
            .push_bind(created_at.clone())
            .push(" AND (e.created_at < ")
            .push_bind(created_at)
            .push(" OR e.id < ")
            .push_bind(before)
            .push(")");
    }
    q.push(" ORDER BY e.created_at DESC, e.id DESC LIMIT ")
        .push_bind(limit);
    q
}

/// The kept totals per status.
async fn kept_counts(pool: &PgPool) -> Result<Vec<(String, i64)>, sqlx::Error> {
    let rows =
        sqlx::query!(r#"SELECT status, n FROM export_status_counts WHERE n > 0 ORDER BY status"#)
            .fetch_all(pool)
            .await?;
    Ok(rows.into_iter().map(|r| (r.status, r.n)).collect())
}

async fn status_counts(
    pool: &PgPool,
    filter: &ExportFilter,
) -> Result<Vec<(String, i64)>, sqlx::Error> {
    let Ok(mut criteria) = filter.criteria() else {
        return Ok(Vec::new());
    };
    criteria.status = None;
    if criteria.status_only() {
        return kept_counts(pool).await;
    }
    let mut q =
        QueryBuilder::<Postgres>::new("SELECT e.status, COUNT(*) FROM exports AS e WHERE TRUE");
    push_conditions(&criteria, Text::Indexed, &mut q);
    q.push(" GROUP BY e.status ORDER BY e.status");
    q.build_query_as::<(String, i64)>().fetch_all(pool).await
}

#[async_trait::async_trait]
impl ExportSearch for PgStore {
    async fn search(&self, filter: &ExportFilter) -> Result<Vec<ExportSummary>, sqlx::Error> {
        list(&self.pool, filter, None).await
    }

    async fn status_counts(
        &self,
        filter: &ExportFilter,
    ) -> Result<Vec<(String, i64)>, sqlx::Error> {
        status_counts(&self.pool, filter).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    async fn seeded(n: i64) -> PgPool {
        let url = testing::fresh_database().await.unwrap();
        let pool = crate::open(&url, 2).await.unwrap();
        // a few thousand exports, one in four hundred named Zola, every one at example.org
        sqlx::query(
            "INSERT INTO exports (source, idempotency_key, pinpoint_application_id, status,
                                  candidate_name, candidate_email, created_at)
             SELECT CASE WHEN i % 3 = 0 THEN 'plugin' ELSE 'webhook' END, 'k' || i, (1000 + i)::text,
                    (ARRAY['queued', 'succeeded', 'dead', 'needs_attention'])[1 + i % 4],
                    CASE WHEN i % 400 = 0 THEN 'Emile Zola ' || i ELSE 'Person ' || md5(i::text) END,
                    'p' || i || '@example.org',
                    to_char(timestamp '2026-01-01' + i * interval '7 minutes',
                            'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')
             FROM generate_series(1, $1) AS i",
        )
        .bind(n)
        .execute(&pool)
        .await
        .unwrap();
        // as autovacuum would: rows inserted since the last vacuum wait in the trigram index's
        // pending list, which every search reads in full and the planner counts as such
        sqlx::query("VACUUM ANALYZE exports")
            .execute(&pool)
            .await
            .unwrap();
        pool
    }

    fn search(text: &str) -> ExportFilter {
        ExportFilter {
            search: Some(text.into()),
            ..Default::default()
        }
    }

    async fn plan(pool: &PgPool, mut q: QueryBuilder<'static, Postgres>) -> String {
        let lines: Vec<String> = q.build_query_scalar().fetch_all(pool).await.unwrap();
        lines.join("\n")
    }

    #[tokio::test]
    async fn a_text_search_with_few_matches_reads_them_through_the_trigram_index() {
        let pool = seeded(4000).await;
        for filter in [
            search("zola"),
            ExportFilter {
                status: Some("queued".into()),
                created_from: Some("2026-01-02".into()),
                ..search("mile zo")
            },
        ] {
            let criteria = filter.criteria().unwrap();
            let q = list_query("EXPLAIN ", &criteria, Some(true), None, 50);
            let text = plan(&pool, q).await;
            assert!(text.contains("exports_search_trgm"), "{filter:?}: {text}");
        }
        // the chips count the same selection through the index too
        let mut q = QueryBuilder::<Postgres>::new(
            "EXPLAIN SELECT e.status, COUNT(*) FROM exports AS e WHERE TRUE",
        );
        push_conditions(&search("zola").criteria().unwrap(), Text::Indexed, &mut q);
        q.push(" GROUP BY e.status");
        let text = plan(&pool, q).await;
        assert!(text.contains("exports_search_trgm"), "{text}");
        // many matches: the list is walked in its order, never every match sorted
        let criteria = search("example.org").criteria().unwrap();
        let q = list_query("EXPLAIN ", &criteria, Some(false), None, 50);
        let text = plan(&pool, q).await;
        assert!(!text.contains("exports_search_trgm"), "{text}");
        assert!(text.contains("exports_created"), "{text}");
    }

    #[tokio::test]
    async fn both_strategies_list_the_same_exports() {
        let pool = seeded(600).await;
        for filter in [
            search("zola"),
            search("example.org"),
            ExportFilter {
                status: Some("dead".into()),
                ..search("example.org")
            },
        ] {
            let by_index = list(&pool, &filter, Some(100_000)).await.unwrap();
            let by_walk = list(&pool, &filter, Some(1)).await.unwrap();
            assert!(!by_index.is_empty(), "{filter:?}");
            assert_eq!(by_index, by_walk, "{filter:?}");
            assert_eq!(list(&pool, &filter, None).await.unwrap(), by_index);
        }
    }
}

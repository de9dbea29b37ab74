//! Finding exports: the filters of the exports page and of bulk retries, literal search backed
//! by a trigram index, and keyset pages that stay fast at a million rows.

use serde::{Deserialize, Serialize};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection, SqlitePool};

use super::queue::Status;
use crate::{
    db,
    filters::{self, DateRange, FilterError},
};

#[cfg(test)]
use crate::access::users::Actor;

/// Filters of the exports list. Every field is optional; text is matched literally (quotes,
/// `%` and `_` mean themselves). [`ExportFilter::check`] explains what is wrong with a filter;
/// the list and the bulk retry treat an invalid filter as matching nothing.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ExportFilter {
    pub status: Option<String>,
    pub source: Option<String>,
    /// Candidate name or email, Pinpoint application id or HiBob employee id. Three characters
    /// or more are found anywhere in those; shorter text must equal an application or employee
    /// id (a one- or two-letter fragment of a name would match too much to be useful).
    pub search: Option<String>,
    /// Created on or after this day (`YYYY-MM-DD`, UTC).
    pub created_from: Option<String>,
    /// Created on or before this day (`YYYY-MM-DD`, UTC).
    pub created_to: Option<String>,
    /// Keyset pagination: only exports listed after this one.
    pub before_id: Option<i64>,
    pub limit: Option<i64>,
}

/// Stopped exports (needs attention or dead) that the list's filter matches and a retry can
/// finish, oldest first, as (id, status, attempts): what a bulk retry takes. Like a single retry,
/// that is every webhook export and every plugin export that names its Pinpoint application (the
/// worker finishes it from there); one without an application, or erased, is left. A filter the
/// list would refuse matches nothing, and so does one naming another status.
pub async fn stopped_matching(
    conn: &mut SqliteConnection,
    filter: &ExportFilter,
) -> Result<Vec<(i64, String, i64)>, sqlx::Error> {
    let Ok(criteria) = filter.criteria() else {
        return Ok(Vec::new());
    };
    let mut q = QueryBuilder::<Sqlite>::new(
        "SELECT e.id, e.status, e.attempts FROM exports AS e
         WHERE (e.source = 'webhook' OR trim(e.pinpoint_application_id) <> '')
           AND e.status IN ('needs_attention', 'dead') AND e.erased_at IS NULL",
    );
    criteria.push_conditions(&mut q);
    q.push(" ORDER BY e.id");
    q.build_query_as::<(i64, String, i64)>()
        .fetch_all(conn)
        .await
}

/// Search text shorter than this matches ids exactly: a trigram index needs three characters.
pub const MIN_SUBSTRING_CHARS: usize = 3;

/// Up to this many trigram candidates are fetched and sorted; past it, the list walks its index
/// in order, checking each export, and then meets a match soon. Sorting c candidates costs about
/// c row reads; the walk reads about page × total ÷ matches, so the two cost the same near
/// c = √(page × total): the threshold follows the table's size, within these bounds.
const FTS_CANDIDATES: (i64, i64) = (500, 10_000);

/// How many trigram candidates are few enough to fetch and sort for a page of `page` exports out
/// of about `total`.
pub fn candidate_threshold(total: i64, page: i64) -> i64 {
    let balanced = ((page.max(1) as f64) * (total.max(0) as f64)).sqrt() as i64;
    balanced.clamp(FTS_CANDIDATES.0, FTS_CANDIDATES.1)
}

const SOURCES: [&str; 2] = ["webhook", "plugin"];

/// A filter checked and reduced to what the queries bind.
#[derive(Debug)]
pub struct Criteria {
    pub status: Option<&'static str>,
    pub source: Option<&'static str>,
    pub dates: DateRange,
    pub search: Option<Search>,
}

#[derive(Debug)]
pub enum Search {
    /// Found anywhere in the four columns: `like` (a case-blind `LIKE` pattern, `\` escaping)
    /// decides; the trigrams (quoted for FTS5) only narrow the candidates.
    Text { trigrams: Vec<String>, like: String },
    /// Equal to the application id or the employee id.
    Id(String),
}

impl ExportFilter {
    /// Whether the filter makes sense, and if not, why, in words for the person who typed it.
    pub fn check(&self) -> Result<(), FilterError> {
        self.criteria().map(|_| ())
    }

    /// Exports per page: 50 unless asked, never more than 200.
    pub fn page_size(&self) -> i64 {
        self.limit.unwrap_or(50).clamp(1, 200)
    }

    /// What the filter selects, or why it selects nothing: the one reading of a filter every
    /// engine's list, status counts and bulk retry share.
    pub fn criteria(&self) -> Result<Criteria, FilterError> {
        let statuses = Status::ALL.map(Status::as_str);
        let search = filters::search_term(self.search.as_deref())?.map(|term| {
            if term.chars().count() < MIN_SUBSTRING_CHARS {
                Search::Id(term)
            } else {
                Search::Text {
                    trigrams: trigram_cover(&term),
                    like: db::like_pattern(&term),
                }
            }
        });
        Ok(Criteria {
            status: filters::choice("status", self.status.as_deref(), &statuses)?,
            source: filters::choice("source", self.source.as_deref(), &SOURCES)?,
            dates: DateRange::parse(self.created_from.as_deref(), self.created_to.as_deref())?,
            search,
        })
    }
}

impl Criteria {
    /// Whether nothing but the status narrows the selection: the kept totals per status then
    /// answer the status counts.
    pub fn status_only(&self) -> bool {
        self.source.is_none()
            && self.search.is_none()
            && self.dates.start.is_none()
            && self.dates.end_exclusive.is_none()
    }

    /// ` AND …` for every filter, on the exports table aliased `e`.
    fn push_conditions(&self, q: &mut QueryBuilder<'_, Sqlite>) {
        if let Some(status) = self.status {
            q.push(" AND e.status = ").push_bind(status);
        }
        if let Some(source) = self.source {
            q.push(" AND e.source = ").push_bind(source);
        }
        if let Some(start) = &self.dates.start {
            q.push(" AND e.created_at >= ").push_bind(start.clone());
        }
        if let Some(end) = &self.dates.end_exclusive {
            q.push(" AND e.created_at < ").push_bind(end.clone());
        }
        match &self.search {
            None => {}
            Some(Search::Id(id)) => {
                q.push(" AND (e.pinpoint_application_id = ")
                    .push_bind(id.clone())
                    .push(" OR e.hibob_employee_id = ")
                    .push_bind(id.clone())
                    .push(")");
            }
            Some(Search::Text { like, .. }) => {
                let columns = [
                    "e.candidate_name",
                    "e.candidate_email",
                    "e.pinpoint_application_id",
                    "e.hibob_employee_id",
                ];
                q.push(" AND (");
                for (i, column) in columns.into_iter().enumerate() {
                    if i > 0 {
                        q.push(" OR ");
                    }
                    q.push(column)
                        .push(" LIKE ")
                        .push_bind(like.clone())
                        .push(" ESCAPE '\\'");
                }
                q.push(")");
            }
        }
    }
}

/// The trigrams of a cover of the text (positions 0, 3, 6, … and the last), each quoted so that
/// nothing in it is FTS5 query syntax. Every export containing the text contains all of them.
fn trigram_cover(term: &str) -> Vec<String> {
    let chars: Vec<char> = term.chars().collect();
    let last = chars.len().saturating_sub(MIN_SUBSTRING_CHARS);
    let mut starts: Vec<usize> = (0..=last).step_by(MIN_SUBSTRING_CHARS).collect();
    if starts.last() != Some(&last) {
        starts.push(last);
    }
    let mut terms: Vec<String> = Vec::new();
    for start in starts {
        let trigram: String = chars[start..(start + MIN_SUBSTRING_CHARS).min(chars.len())]
            .iter()
            .collect();
        let quoted = format!("\"{}\"", trigram.replace('"', "\"\""));
        if !terms.contains(&quoted) {
            terms.push(quoted);
        }
    }
    terms
}

/// How many trigrams the index is asked for at most. Any subset still finds every match (the
/// LIKE re-check removes the rest), and each common trigram costs a walk of a posting list as
/// long as the table: ids share long runs of digits, emails share their domain.
const TRIGRAMS_ASKED: usize = 3;

/// The newest exports in which each trigram's frequency is sampled.
const TRIGRAM_SAMPLE: i64 = 5_000;

/// The newest export's id, which counts the exports closely enough (ids are handed out in order
/// and exports are seldom deleted) at the cost of one index lookup.
async fn newest_id(pool: &SqlitePool) -> Result<i64, sqlx::Error> {
    Ok(
        sqlx::query_scalar!(r#"SELECT MAX(id) AS "id?: i64" FROM exports"#)
            .fetch_one(pool)
            .await?
            .unwrap_or(0),
    )
}

/// The FTS5 query for `trigrams`: the rarest few of them, judged by how often each occurs among
/// the newest exports (a bounded, index-only count per trigram).
async fn selective_query(pool: &SqlitePool, trigrams: &[String]) -> Result<String, sqlx::Error> {
    if trigrams.len() <= TRIGRAMS_ASKED {
        return Ok(trigrams.join(" AND "));
    }
    let since = newest_id(pool).await? - TRIGRAM_SAMPLE;
    let mut counted = Vec::with_capacity(trigrams.len());
    for (position, trigram) in trigrams.iter().enumerate() {
        let n = sqlx::query_scalar!(
            r#"SELECT COUNT(*) AS "n!: i64" FROM export_search
               WHERE export_search MATCH ?1 AND rowid > ?2"#,
            trigram,
            since
        )
        .fetch_one(pool)
        .await?;
        counted.push((n, position));
    }
    counted.sort();
    let mut chosen: Vec<usize> = counted
        .into_iter()
        .take(TRIGRAMS_ASKED)
        .map(|(_, p)| p)
        .collect();
    chosen.sort();
    Ok(chosen
        .into_iter()
        .map(|p| trigrams[p].as_str())
        .collect::<Vec<_>>()
        .join(" AND "))
}

/// One line of the exports list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct ExportSummary {
    pub id: i64,
    pub source: String,
    pub status: String,
    pub pinpoint_application_id: String,
    pub candidate_name: Option<String>,
    pub candidate_email: Option<String>,
    pub start_date: Option<String>,
    pub hibob_employee_id: Option<String>,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// Where the next page starts: the creation time of the last export shown (or, if that export
/// is gone, of the nearest older one).
async fn page_anchor(pool: &SqlitePool, before_id: i64) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar!(
        "SELECT created_at FROM exports WHERE id <= ? ORDER BY id DESC LIMIT 1",
        before_id
    )
    .fetch_optional(pool)
    .await
}

/// Newest first (by creation time, then id), a page at a time: the next page starts after the
/// last export shown, so every page costs the same however many exports there are. Each filter
/// walks its own index in list order (see the `export_search` migration); text search first asks
/// the trigram index how many exports could match, and sorts those few, or, when they are many,
/// walks the list in order checking each until the page is full.
pub async fn list(
    pool: &SqlitePool,
    filter: &ExportFilter,
) -> Result<Vec<ExportSummary>, sqlx::Error> {
    list_with(pool, filter, None).await
}

async fn list_with(
    pool: &SqlitePool,
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
    let candidates = match &criteria.search {
        Some(Search::Text { trigrams, .. }) => {
            let fts = selective_query(pool, trigrams).await?;
            let fts_candidates = match threshold {
                Some(t) => t,
                None => candidate_threshold(newest_id(pool).await?, limit),
            };
            let n = sqlx::query_scalar!(
                r#"SELECT COUNT(*) AS "n!: i64" FROM (
                       SELECT 1 FROM export_search WHERE export_search MATCH ?1 LIMIT ?2)"#,
                fts,
                fts_candidates
            )
            .fetch_one(pool)
            .await?;
            if n == 0 {
                return Ok(Vec::new());
            }
            (n < fts_candidates).then_some(fts)
        }
        _ => None,
    };
    list_query("", &criteria, candidates.as_deref(), anchor, limit)
        .build_query_as::<ExportSummary>()
        .fetch_all(pool)
        .await
}

/// How many exports of each status the filter selects, whatever status it names itself: the
/// list's status chips count the selection the other filters make, not every export. Without
/// such filters it reads the kept totals; text search asks the trigram index for its candidates
/// first, as the list does.
pub async fn status_counts(
    pool: &SqlitePool,
    filter: &ExportFilter,
) -> Result<Vec<(String, i64)>, sqlx::Error> {
    let Ok(mut criteria) = filter.criteria() else {
        return Ok(Vec::new());
    };
    criteria.status = None;
    if criteria.status_only() {
        return super::queue::counts(pool).await;
    }
    let mut q =
        QueryBuilder::<Sqlite>::new("SELECT e.status, COUNT(*) FROM exports AS e WHERE TRUE");
    if let Some(Search::Text { trigrams, .. }) = &criteria.search {
        let fts = selective_query(pool, trigrams).await?;
        q.push(" AND e.id IN (SELECT rowid FROM export_search WHERE export_search MATCH ")
            .push_bind(fts)
            .push(")");
    }
    criteria.push_conditions(&mut q);
    q.push(" GROUP BY e.status ORDER BY e.status");
    q.build_query_as::<(String, i64)>().fetch_all(pool).await
}

/// The list's query: over the trigram index's `candidates` (an FTS5 query) when they are few,
/// else along the filters' index. `prefix` lets tests ask for its plan.
fn list_query(
    prefix: &str,
    criteria: &Criteria,
    candidates: Option<&str>,
    anchor: Option<(String, i64)>,
    limit: i64,
) -> QueryBuilder<'static, Sqlite> {
    let mut q = QueryBuilder::<Sqlite>::new(prefix);
    q.push(
        "SELECT e.id, e.source, e.status, e.pinpoint_application_id, e.candidate_name, \
         e.candidate_email, e.start_date, e.hibob_employee_id, e.attempts, e.last_error, \
         e.created_at, e.updated_at FROM ",
    );
    match candidates {
        // CROSS JOIN keeps the candidates as the outer loop: the planner would otherwise walk the
        // whole list in order to avoid a sort, probing the candidates for each export
        Some(fts) => {
            q.push("(SELECT rowid AS id FROM export_search WHERE export_search MATCH ")
                .push_bind(fts.to_owned())
                .push(") AS m CROSS JOIN exports AS e ON e.id = m.id WHERE TRUE");
        }
        None => {
            q.push("exports AS e WHERE TRUE");
        }
    }
    criteria.push_conditions(&mut q);
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

/// What a bulk retry with this filter queues (none when nothing matches), for tests of the
/// filter semantics the list and the bulk retry share.
#[cfg(test)]
async fn retry_matching(
    pool: &SqlitePool,
    actor: &Actor,
    filter: &ExportFilter,
) -> Result<Vec<i64>, crate::exports::bulk_retry::BulkError> {
    match crate::exports::bulk_retry::start(pool, actor, filter).await {
        Ok(started) => Ok(started.export_ids),
        Err(crate::exports::bulk_retry::BulkError::NothingToRetry) => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod list_tests {
    use super::*;

    struct Row {
        name: &'static str,
        email: &'static str,
        app: &'static str,
        employee: Option<&'static str>,
        status: &'static str,
        source: &'static str,
        created: &'static str,
    }

    const ROWS: [Row; 8] = [
        Row {
            name: "Jane Doe",
            email: "jane.doe@example.org",
            app: "1001",
            employee: Some("3332883884017713238"),
            status: "succeeded",
            source: "webhook",
            created: "2026-10-01T09:00:00.000Z",
        },
        Row {
            name: "Liam O'Brien",
            email: "liam@example.org",
            app: "1002",
            employee: None,
            status: "needs_attention",
            source: "webhook",
            created: "2026-10-15T09:00:00.000Z",
        },
        Row {
            name: "Ava 50%_off",
            email: "ava@shop.example",
            app: "7",
            employee: None,
            status: "dead",
            source: "webhook",
            created: "2026-10-31T23:59:59.999Z",
        },
        Row {
            name: "Noah Smith",
            email: "noah@example.org",
            app: "1004",
            employee: Some("77"),
            status: "succeeded",
            source: "plugin",
            created: "2026-11-01T00:00:00.000Z",
        },
        Row {
            name: "Émile Zola",
            email: "emile@example.fr",
            app: "1005",
            employee: None,
            status: "queued",
            source: "webhook",
            created: "2026-11-01T00:00:00.000Z",
        },
        Row {
            name: "janet smith",
            email: "janet@example.org",
            app: "71",
            employee: None,
            status: "succeeded",
            source: "webhook",
            created: "2026-11-20T12:00:00.000Z",
        },
        Row {
            name: "Back\\slash",
            email: "bs@example.org",
            app: "1007",
            employee: None,
            status: "dead",
            source: "plugin",
            created: "2026-11-21T12:00:00.000Z",
        },
        Row {
            name: "Olivia \"Liv\" Brown",
            email: "liv@example.org",
            app: "1008",
            employee: None,
            status: "succeeded",
            source: "webhook",
            created: "2026-11-22T12:00:00.000Z",
        },
    ];

    async fn seeded() -> (tempfile::TempDir, SqlitePool) {
        let dir = tempfile::tempdir().unwrap();
        let pool = db::open(&format!("sqlite://{}/l.db", dir.path().display()))
            .await
            .unwrap();
        for (i, r) in ROWS.iter().enumerate() {
            sqlx::query(
                "INSERT INTO exports (source, idempotency_key, pinpoint_application_id, status,
                                      candidate_name, candidate_email, hibob_employee_id, created_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(r.source)
            .bind(format!("k{i}"))
            .bind(r.app)
            .bind(r.status)
            .bind(r.name)
            .bind(r.email)
            .bind(r.employee)
            .bind(r.created)
            .execute(&pool)
            .await
            .unwrap();
        }
        (dir, pool)
    }

    /// The apps of the matching exports, in list order, by both search strategies.
    async fn apps(pool: &SqlitePool, filter: ExportFilter) -> Vec<String> {
        let by_index = list_with(pool, &filter, Some(1_000)).await.unwrap();
        let by_walk = list_with(pool, &filter, Some(1)).await.unwrap();
        assert_eq!(list(pool, &filter).await.unwrap(), by_index);
        assert_eq!(
            by_index, by_walk,
            "both search strategies agree for {filter:?}"
        );
        by_index
            .into_iter()
            .map(|e| e.pinpoint_application_id)
            .collect()
    }

    fn search(text: &str) -> ExportFilter {
        ExportFilter {
            search: Some(text.into()),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn newest_first_with_every_filter() {
        let (_d, pool) = seeded().await;
        assert_eq!(
            apps(&pool, ExportFilter::default()).await,
            ["1008", "1007", "71", "1005", "1004", "7", "1002", "1001"]
        );
        let by = |status: Option<&str>, source: Option<&str>| ExportFilter {
            status: status.map(Into::into),
            source: source.map(Into::into),
            ..Default::default()
        };
        assert_eq!(apps(&pool, by(Some("dead"), None)).await, ["1007", "7"]);
        assert_eq!(
            apps(&pool, by(None, Some("plugin"))).await,
            ["1007", "1004"]
        );
        assert_eq!(apps(&pool, by(Some("dead"), Some("webhook"))).await, ["7"]);
        let october = ExportFilter {
            created_from: Some("2026-10-15".into()),
            created_to: Some("2026-10-31".into()),
            ..Default::default()
        };
        assert_eq!(
            apps(&pool, october).await,
            ["7", "1002"],
            "both days included"
        );
        let from_november = ExportFilter {
            created_from: Some("2026-11-01".into()),
            status: Some("succeeded".into()),
            ..Default::default()
        };
        assert_eq!(apps(&pool, from_november).await, ["1008", "71", "1004"]);
    }

    #[tokio::test]
    async fn status_counts_count_what_the_other_filters_select() {
        let (_d, pool) = seeded().await;
        let filters = [
            ExportFilter::default(),
            search("example.org"),
            search("JANE"),
            search("7"),
            ExportFilter {
                source: Some("plugin".into()),
                ..Default::default()
            },
            ExportFilter {
                created_from: Some("2026-11-01".into()),
                status: Some("succeeded".into()),
                ..Default::default()
            },
        ];
        for filter in filters {
            let every_status = ExportFilter {
                status: None,
                limit: Some(200),
                ..filter.clone()
            };
            let mut expected: Vec<(String, i64)> = Vec::new();
            for e in list(&pool, &every_status).await.unwrap() {
                match expected.iter_mut().find(|(s, _)| *s == e.status) {
                    Some((_, n)) => *n += 1,
                    None => expected.push((e.status, 1)),
                }
            }
            expected.sort();
            assert_eq!(
                status_counts(&pool, &filter).await.unwrap(),
                expected,
                "{filter:?}"
            );
        }
        let jane = status_counts(&pool, &search("JANE")).await.unwrap();
        assert_eq!(jane.iter().map(|(_, n)| n).sum::<i64>(), 2, "{jane:?}");
    }

    #[tokio::test]
    async fn search_is_literal_and_case_blind() {
        let (_d, pool) = seeded().await;
        assert_eq!(apps(&pool, search("JANE")).await, ["71", "1001"]);
        assert_eq!(apps(&pool, search("example.org")).await.len(), 6);
        assert_eq!(apps(&pool, search("o'brien")).await, ["1002"]);
        assert_eq!(apps(&pool, search("50%_")).await, ["7"]);
        assert_eq!(apps(&pool, search("0%_o")).await, ["7"]);
        assert!(apps(&pool, search("50%x")).await.is_empty());
        assert!(
            apps(&pool, search("a_a")).await.is_empty(),
            "_ is not a wildcard"
        );
        assert_eq!(apps(&pool, search("\"Liv\"")).await, ["1008"]);
        assert_eq!(apps(&pool, search("k\\s")).await, ["1007"]);
        assert_eq!(apps(&pool, search("mile zo")).await, ["1005"]);
        assert_eq!(
            apps(&pool, search("8840177")).await,
            ["1001"],
            "employee id"
        );
        assert_eq!(apps(&pool, search("100")).await.len(), 6, "application ids");
        assert!(
            apps(&pool, search("NEAR(a b)")).await.is_empty(),
            "no query syntax"
        );
        assert!(apps(&pool, search("\" OR \"")).await.is_empty());
        // shorter than three characters: an id exactly
        assert_eq!(apps(&pool, search("7")).await, ["7"]);
        assert_eq!(apps(&pool, search("77")).await, ["1004"]);
        assert!(apps(&pool, search("%")).await.is_empty());
        assert!(apps(&pool, search("_")).await.is_empty());
        let dead_smith = ExportFilter {
            status: Some("dead".into()),
            search: Some("smith".into()),
            ..Default::default()
        };
        assert!(apps(&pool, dead_smith).await.is_empty());
    }

    #[test]
    fn the_candidate_threshold_follows_the_table() {
        assert_eq!(candidate_threshold(0, 50), 500);
        assert_eq!(candidate_threshold(100_000, 50), 2_236);
        assert_eq!(candidate_threshold(1_000_000, 50), 7_071);
        assert_eq!(candidate_threshold(100_000_000, 50), 10_000);
    }

    #[tokio::test]
    async fn long_texts_ask_the_index_for_their_rarest_trigrams() {
        let (_d, pool) = seeded().await;
        let cover = trigram_cover("3332883884017713238");
        assert_eq!(cover.len(), 7);
        let asked = selective_query(&pool, &cover).await.unwrap();
        assert_eq!(
            asked.matches(" AND ").count(),
            TRIGRAMS_ASKED - 1,
            "{asked}"
        );
        assert_eq!(
            selective_query(&pool, &trigram_cover("jane"))
                .await
                .unwrap(),
            "\"jan\" AND \"ane\""
        );
        assert_eq!(trigram_cover("a\"b\"c"), ["\"a\"\"b\"", "\"b\"\"c\""]);
        assert_eq!(apps(&pool, search("3332883884017713238")).await, ["1001"]);
    }

    #[tokio::test]
    async fn pages_continue_where_the_last_ended() {
        let (_d, pool) = seeded().await;
        for filter in [ExportFilter::default(), search("example.org")] {
            let everything = apps(&pool, filter.clone()).await;
            let mut paged = Vec::new();
            let mut before = None;
            loop {
                let page = list_with(
                    &pool,
                    &ExportFilter {
                        before_id: before,
                        limit: Some(3),
                        ..filter.clone()
                    },
                    None,
                )
                .await
                .unwrap();
                let Some(last) = page.last() else { break };
                before = Some(last.id);
                paged.extend(page.into_iter().map(|e| e.pinpoint_application_id));
            }
            assert_eq!(paged, everything, "{filter:?}");
        }
        // the export a page ended on was deleted: the next page still follows on
        sqlx::query("DELETE FROM exports WHERE pinpoint_application_id = '1005'")
            .execute(&pool)
            .await
            .unwrap();
        let after = list(
            &pool,
            &ExportFilter {
                before_id: Some(5),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let after: Vec<_> = after
            .into_iter()
            .map(|e| e.pinpoint_application_id)
            .collect();
        assert_eq!(after, ["1004", "7", "1002", "1001"]);
        assert!(
            apps(&pool, search("zola")).await.is_empty(),
            "the index forgot it"
        );
    }

    #[tokio::test]
    async fn invalid_filters_are_explained_and_match_nothing() {
        let (_d, pool) = seeded().await;
        for (filter, says) in [
            (search(&"x".repeat(10 * 1024)), "at most 200"),
            (
                ExportFilter {
                    created_from: Some("31/12/2026".into()),
                    ..Default::default()
                },
                "YYYY-MM-DD",
            ),
            (
                ExportFilter {
                    created_from: Some("2026-12-01".into()),
                    created_to: Some("2026-11-01".into()),
                    ..Default::default()
                },
                "after the to date",
            ),
            (
                ExportFilter {
                    status: Some("lost".into()),
                    ..Default::default()
                },
                "needs_attention",
            ),
        ] {
            let err = filter.check().unwrap_err().to_string();
            assert!(err.contains(says), "{err}");
            assert!(list(&pool, &filter).await.unwrap().is_empty());
            let actor = Actor::system("t");
            assert!(retry_matching(&pool, &actor, &filter)
                .await
                .unwrap()
                .is_empty());
        }
    }

    #[tokio::test]
    async fn bulk_retry_uses_the_same_filter_semantics() {
        let (_d, pool) = seeded().await;
        let actor = Actor::system("t");
        let succeeded = ExportFilter {
            status: Some("succeeded".into()),
            ..Default::default()
        };
        assert!(retry_matching(&pool, &actor, &succeeded)
            .await
            .unwrap()
            .is_empty());
        let october = ExportFilter {
            created_to: Some("2026-10-20".into()),
            ..Default::default()
        };
        assert_eq!(retry_matching(&pool, &actor, &october).await.unwrap(), [2]);
        assert_eq!(
            retry_matching(&pool, &actor, &search("50%_off"))
                .await
                .unwrap(),
            [3]
        );
        let counts = crate::exports::queue::counts(&pool).await.unwrap();
        assert_eq!(
            counts,
            [
                ("dead".to_owned(), 1),
                ("queued".to_owned(), 3),
                ("succeeded".to_owned(), 4)
            ],
            "the counters follow every change"
        );
        // the dead Send to HiBob names its application, so a retry can finish it, as it can
        // one at a time
        let plugin = ExportFilter {
            source: Some("plugin".into()),
            ..Default::default()
        };
        let dead_plugin: i64 =
            sqlx::query_scalar("SELECT id FROM exports WHERE pinpoint_application_id = '1007'")
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(
            retry_matching(&pool, &actor, &plugin).await.unwrap(),
            [dead_plugin]
        );
    }

    /// Every list query walks an index in list order or sorts only trigram candidates; none
    /// reads the whole table, and none sorts what an index could have given in order.
    #[tokio::test]
    async fn every_filter_has_an_index() {
        let (_d, pool) = seeded().await;
        let anchor = Some(("2026-11-01T00:00:00.000Z".to_owned(), 5));
        let days = |from: &str, to: &str| ExportFilter {
            created_from: Some(from.into()),
            created_to: Some(to.into()),
            ..Default::default()
        };
        let cases = [
            ExportFilter::default(),
            ExportFilter {
                status: Some("dead".into()),
                ..Default::default()
            },
            ExportFilter {
                source: Some("plugin".into()),
                ..Default::default()
            },
            ExportFilter {
                status: Some("queued".into()),
                source: Some("plugin".into()),
                ..Default::default()
            },
            days("2026-01-01", "2026-01-31"),
            ExportFilter {
                status: Some("dead".into()),
                ..days("2026-01-01", "2026-01-31")
            },
            ExportFilter {
                source: Some("webhook".into()),
                ..days("2026-01-01", "2026-01-31")
            },
            search("77"),
            search("example.org"),
            ExportFilter {
                status: Some("dead".into()),
                ..search("example.org")
            },
        ];
        for filter in cases {
            let criteria = filter.criteria().unwrap();
            for few in [false, true] {
                if few && !matches!(criteria.search, Some(Search::Text { .. })) {
                    continue;
                }
                for anchor in [None, anchor.clone()] {
                    let candidates = match (&criteria.search, few) {
                        (Some(Search::Text { trigrams, .. }), true) => Some(trigrams.join(" AND ")),
                        _ => None,
                    };
                    let plan: Vec<(i64, i64, i64, String)> = list_query(
                        "EXPLAIN QUERY PLAN ",
                        &criteria,
                        candidates.as_deref(),
                        anchor,
                        50,
                    )
                    .build_query_as()
                    .fetch_all(&pool)
                    .await
                    .unwrap();
                    let plan: Vec<String> = plan.into_iter().map(|r| r.3).collect();
                    let text = plan.join(" | ");
                    assert!(
                        !plan.iter().any(|l| l == "SCAN e"),
                        "{filter:?} reads every export: {text}"
                    );
                    let sorts = text.contains("TEMP B-TREE");
                    let id_lookup = matches!(criteria.search, Some(Search::Id(_)));
                    assert_eq!(sorts, few || id_lookup, "{filter:?}: {text}");
                    if few {
                        assert!(
                            text.starts_with("SCAN export_search VIRTUAL TABLE"),
                            "{text}"
                        );
                    }
                }
            }
        }
    }
}

//! The exports list and its status chips: the same exports, in the same order, page by page,
//! and the same counts, whichever engine answers.

use integration::exports::{search::ExportFilter, storage::ExportSearch};
use store_postgres::test_sql::{Bind, Sql};

use crate::common::Both;

const FIRST: [&str; 8] = [
    "Ada", "Liam", "Noah", "Olivia", "Emma", "Zoë", "Jean-Luc", "Mary",
];
const LAST: [&str; 8] = [
    "Lovelace",
    "O'Brien",
    "Smith",
    "Brown",
    "50%_off",
    "Under_score",
    "Back\\slash",
    "Quote\"d",
];
const DOMAINS: [&str; 3] = ["example.org", "shop.example", "EXAMPLE.com"];
const STATUSES: [&str; 6] = [
    "queued",
    "running",
    "succeeded",
    "needs_attention",
    "dead",
    "resolved",
];

const INSERT: &str = "INSERT INTO exports (source, idempotency_key, pinpoint_application_id, status,
                          candidate_name, candidate_email, hibob_employee_id, created_at, updated_at)
                      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)";

/// `n` exports of every status and source, over three weeks of October 2026, some created at
/// the same moment as the one before, with names and e-mails holding `%`, `_`, `'`, `\` and `"`.
fn generated(n: i64) -> Vec<(&'static str, Vec<Bind>)> {
    let start = chrono::DateTime::parse_from_rfc3339("2026-10-01T00:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    (1..=n)
        .map(|i| {
            let u = usize::try_from(i).unwrap();
            let first = FIRST[u % 8];
            let name = format!("{first} {}", LAST[(u / 8) % 8]);
            let email = format!(
                "{}.{i}@{}",
                first.to_lowercase().replace('ë', "e"),
                DOMAINS[u % 3]
            );
            // every tenth shares the moment of the one before: the id then orders them
            let minutes = if i % 10 == 0 { (i - 1) * 97 } else { i * 97 };
            let at = integration::db::time_text(start + chrono::Duration::minutes(minutes));
            let employee = (i % 4 == 0).then(|| format!("{}", 900_000 + i));
            let binds: Vec<Bind> = vec![
                if i % 5 == 0 { "plugin" } else { "webhook" }.into(),
                format!("k{i}").into(),
                format!("{}", 5000 + i).into(),
                STATUSES[u % 6].into(),
                name.into(),
                email.into(),
                employee.into(),
                at.clone().into(),
                at.into(),
            ];
            (INSERT, binds)
        })
        .collect()
}

/// Every export the filter selects, read page by page (`page` at a time), by id.
async fn paged(search: &dyn ExportSearch, filter: &ExportFilter, page: i64) -> Vec<i64> {
    let mut ids = Vec::new();
    let mut before = None;
    loop {
        let rows = search
            .search(&ExportFilter {
                before_id: before,
                limit: Some(page),
                ..filter.clone()
            })
            .await
            .unwrap();
        let Some(last) = rows.last() else { break };
        before = Some(last.id);
        ids.extend(rows.iter().map(|r| r.id));
        assert!(ids.len() < 10_000, "paging never ends for {filter:?}");
    }
    ids
}

fn text(search: &str) -> ExportFilter {
    ExportFilter {
        search: Some(search.into()),
        ..Default::default()
    }
}

fn filters() -> Vec<ExportFilter> {
    let mut filters = vec![ExportFilter::default()];
    for status in STATUSES {
        filters.push(ExportFilter {
            status: Some(status.into()),
            ..Default::default()
        });
    }
    for source in ["webhook", "plugin"] {
        filters.push(ExportFilter {
            source: Some(source.into()),
            ..Default::default()
        });
        filters.push(ExportFilter {
            source: Some(source.into()),
            status: Some("dead".into()),
            ..Default::default()
        });
    }
    for (from, to) in [
        (Some("2026-10-05"), Some("2026-10-09")),
        (Some("2026-10-12"), None),
        (None, Some("2026-10-03")),
        (Some("2026-10-07"), Some("2026-10-07")),
    ] {
        filters.push(ExportFilter {
            created_from: from.map(Into::into),
            created_to: to.map(Into::into),
            ..Default::default()
        });
    }
    for search in [
        "lovelace",
        "LOVELACE",
        "jean-luc lov",
        "o'brien",
        "'",
        "50%_",
        "%_o",
        "50%x",
        "under_score",
        "r_s",
        "a_a",
        "back\\s",
        "quote\"d",
        "\"d",
        "example.com",
        "EXAMPLE.ORG",
        "@shop",
        "ada.17@",
        "5017",
        "501",
        "900012",
        "7",
        "77",
        "5007",
        "%",
        "_",
        "zoë",
        "ZOË",
        "nobody at all",
    ] {
        filters.push(text(search));
    }
    filters.push(ExportFilter {
        status: Some("needs_attention".into()),
        created_from: Some("2026-10-04".into()),
        ..text("example.org")
    });
    filters.push(ExportFilter {
        source: Some("plugin".into()),
        ..text("smith")
    });
    filters
}

#[tokio::test]
async fn the_list_pages_through_the_same_exports_in_the_same_order() {
    let both = Both::new().await;
    let seed = generated(360);
    let mut answers: Vec<Vec<Vec<i64>>> = Vec::new();
    for (name, e) in both.each() {
        e.sql.batch(&seed).await;
        let search = e.face(|s| s as &dyn ExportSearch, |p| p as &dyn ExportSearch);
        let mut per_filter = Vec::new();
        for filter in filters() {
            let all = paged(search, &filter, 200).await;
            assert_eq!(
                paged(search, &filter, 37).await,
                all,
                "{name}: pages of 37 follow on for {filter:?}"
            );
            let first = search.search(&filter).await.unwrap();
            assert_eq!(
                first.iter().map(|r| r.id).collect::<Vec<_>>(),
                all.iter().copied().take(50).collect::<Vec<_>>(),
                "{name}: a first page is 50 for {filter:?}"
            );
            per_filter.push(all);
        }
        answers.push(per_filter);
    }
    let (sqlite, postgres) = (&answers[0], &answers[1]);
    for (i, filter) in filters().iter().enumerate() {
        assert_eq!(postgres[i], sqlite[i], "{filter:?}");
    }
    // the answers are not all empty, and literal: a wildcard matches only itself
    let by = |search: &str| {
        let i = filters()
            .iter()
            .position(|f| f.search.as_deref() == Some(search))
            .unwrap();
        sqlite[i].len()
    };
    assert_eq!(sqlite[0].len(), 360);
    assert_eq!(by("lovelace"), by("LOVELACE"));
    assert!(by("lovelace") > 0);
    assert!(by("50%_") > 0 && by("o'brien") > 0 && by("under_score") > 0);
    assert!(by("back\\s") > 0 && by("quote\"d") > 0 && by("example.com") > 0);
    assert_eq!(by("a_a"), 0, "_ is no wildcard");
    assert_eq!(by("50%x"), 0, "% is no wildcard");
    assert_eq!(by("%"), 0, "short texts are ids");
    assert_eq!(by("5017"), 1, "an application id");
    assert_eq!(by("900012"), 1, "an employee id");
    assert_eq!(by("zoë"), 45, "Zoë is found, its Z folded");
    assert_eq!(by("ZOË"), 0, "only ASCII letters fold");
}

#[tokio::test]
async fn the_rows_of_a_page_are_the_same() {
    let both = Both::new().await;
    let seed = generated(60);
    let mut pages = Vec::new();
    for (_, e) in both.each() {
        e.sql.batch(&seed).await;
        let search = e.face(|s| s as &dyn ExportSearch, |p| p as &dyn ExportSearch);
        pages.push(search.search(&text("example")).await.unwrap());
    }
    assert_eq!(pages[0].len(), 50);
    assert_eq!(pages[1], pages[0]);
}

#[tokio::test]
async fn status_counts_count_the_selection_of_the_other_filters() {
    let both = Both::new().await;
    let seed = generated(240);
    let mut answers = Vec::new();
    for (name, e) in both.each() {
        e.sql.batch(&seed).await;
        let search = e.face(|s| s as &dyn ExportSearch, |p| p as &dyn ExportSearch);
        let statuses: std::collections::HashMap<i64, String> = e
            .sql
            .rows::<(i64, String)>("SELECT id, status FROM exports", &[])
            .await
            .into_iter()
            .collect();
        let mut per_filter = Vec::new();
        for filter in filters() {
            let counts = search.status_counts(&filter).await.unwrap();
            // what the list selects with every status
            let every_status = ExportFilter {
                status: None,
                ..filter.clone()
            };
            let mut expected: Vec<(String, i64)> = Vec::new();
            for id in paged(search, &every_status, 200).await {
                let status = statuses[&id].clone();
                match expected.iter_mut().find(|(s, _)| *s == status) {
                    Some((_, n)) => *n += 1,
                    None => expected.push((status, 1)),
                }
            }
            expected.sort();
            assert_eq!(counts, expected, "{name}: {filter:?}");
            per_filter.push(counts);
        }
        answers.push(per_filter);
    }
    assert_eq!(answers[1], answers[0]);
}

#[tokio::test]
async fn invalid_filters_select_nothing() {
    let both = Both::new().await;
    let seed = generated(20);
    for (name, e) in both.each() {
        e.sql.batch(&seed).await;
        let search = e.face(|s| s as &dyn ExportSearch, |p| p as &dyn ExportSearch);
        for filter in [
            text(&"x".repeat(300)),
            ExportFilter {
                created_from: Some("31/12/2026".into()),
                ..Default::default()
            },
            ExportFilter {
                created_from: Some("2026-12-01".into()),
                created_to: Some("2026-11-01".into()),
                ..Default::default()
            },
            ExportFilter {
                status: Some("lost".into()),
                ..Default::default()
            },
        ] {
            assert!(search.search(&filter).await.unwrap().is_empty(), "{name}");
            assert!(
                search.status_counts(&filter).await.unwrap().is_empty(),
                "{name}"
            );
        }
        // a page after an export that is gone starts at the nearest older one
        e.sql
            .execute("DELETE FROM exports WHERE id = 10", &[])
            .await;
        let after = search
            .search(&ExportFilter {
                before_id: Some(10),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(after.first().map(|r| r.id), Some(9), "{name}");
        let none = search
            .search(&ExportFilter {
                before_id: Some(0),
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(none.is_empty(), "{name}");
    }
}

/// Name, e-mail, application, employee, status, source, created.
type CoreRow = (
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
    &'static str,
    &'static str,
    &'static str,
);

/// The exports of the core's own list tests.
async fn core_rows(sql: &Sql) {
    let rows: [CoreRow; 8] = [
        (
            "Jane Doe",
            "jane.doe@example.org",
            "1001",
            Some("3332883884017713238"),
            "succeeded",
            "webhook",
            "2026-10-01T09:00:00.000Z",
        ),
        (
            "Liam O'Brien",
            "liam@example.org",
            "1002",
            None,
            "needs_attention",
            "webhook",
            "2026-10-15T09:00:00.000Z",
        ),
        (
            "Ava 50%_off",
            "ava@shop.example",
            "7",
            None,
            "dead",
            "webhook",
            "2026-10-31T23:59:59.999Z",
        ),
        (
            "Noah Smith",
            "noah@example.org",
            "1004",
            Some("77"),
            "succeeded",
            "plugin",
            "2026-11-01T00:00:00.000Z",
        ),
        (
            "Émile Zola",
            "emile@example.fr",
            "1005",
            None,
            "queued",
            "webhook",
            "2026-11-01T00:00:00.000Z",
        ),
        (
            "janet smith",
            "janet@example.org",
            "71",
            None,
            "succeeded",
            "webhook",
            "2026-11-20T12:00:00.000Z",
        ),
        (
            "Back\\slash",
            "bs@example.org",
            "1007",
            None,
            "dead",
            "plugin",
            "2026-11-21T12:00:00.000Z",
        ),
        (
            "Olivia \"Liv\" Brown",
            "liv@example.org",
            "1008",
            None,
            "succeeded",
            "webhook",
            "2026-11-22T12:00:00.000Z",
        ),
    ];
    let statements: Vec<(&str, Vec<Bind>)> = rows
        .iter()
        .enumerate()
        .map(
            |(i, (name, email, app, employee, status, source, created))| {
                (
                    INSERT,
                    vec![
                        (*source).into(),
                        format!("k{i}").into(),
                        (*app).into(),
                        (*status).into(),
                        (*name).into(),
                        (*email).into(),
                        employee.map(str::to_owned).into(),
                        (*created).into(),
                        (*created).into(),
                    ],
                )
            },
        )
        .collect();
    sql.batch(&statements).await;
}

#[tokio::test]
async fn search_is_literal_and_case_blind_as_the_core_expects() {
    let both = Both::new().await;
    for (name, e) in both.each() {
        core_rows(e.sql).await;
        let search = e.face(|s| s as &dyn ExportSearch, |p| p as &dyn ExportSearch);
        let apps = |filter: ExportFilter| async move {
            search
                .search(&filter)
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.pinpoint_application_id)
                .collect::<Vec<_>>()
        };
        assert_eq!(apps(text("JANE")).await, ["71", "1001"], "{name}");
        assert_eq!(apps(text("example.org")).await.len(), 6, "{name}");
        assert_eq!(apps(text("o'brien")).await, ["1002"], "{name}");
        assert_eq!(apps(text("50%_")).await, ["7"], "{name}");
        assert_eq!(apps(text("0%_o")).await, ["7"], "{name}");
        assert!(apps(text("50%x")).await.is_empty(), "{name}");
        assert!(apps(text("a_a")).await.is_empty(), "{name}");
        assert_eq!(apps(text("\"Liv\"")).await, ["1008"], "{name}");
        assert_eq!(apps(text("k\\s")).await, ["1007"], "{name}");
        assert_eq!(apps(text("mile zo")).await, ["1005"], "{name}");
        assert_eq!(apps(text("8840177")).await, ["1001"], "{name}");
        assert_eq!(apps(text("3332883884017713238")).await, ["1001"], "{name}");
        assert_eq!(apps(text("100")).await.len(), 6, "{name}");
        assert!(apps(text("NEAR(a b)")).await.is_empty(), "{name}");
        assert!(apps(text("\" OR \"")).await.is_empty(), "{name}");
        assert_eq!(apps(text("7")).await, ["7"], "{name}");
        assert_eq!(apps(text("77")).await, ["1004"], "{name}");
        assert!(apps(text("%")).await.is_empty(), "{name}");
        assert!(apps(text("_")).await.is_empty(), "{name}");
        let october = ExportFilter {
            created_from: Some("2026-10-15".into()),
            created_to: Some("2026-10-31".into()),
            ..Default::default()
        };
        assert_eq!(
            apps(october).await,
            ["7", "1002"],
            "{name}: both days included"
        );
        let from_november = ExportFilter {
            created_from: Some("2026-11-01".into()),
            status: Some("succeeded".into()),
            ..Default::default()
        };
        assert_eq!(apps(from_november).await, ["1008", "71", "1004"], "{name}");
        assert_eq!(
            apps(ExportFilter::default()).await,
            ["1008", "1007", "71", "1005", "1004", "7", "1002", "1001"],
            "{name}: newest first, the later id first at the same moment"
        );
        let jane = search.status_counts(&text("JANE")).await.unwrap();
        assert_eq!(jane, [("succeeded".to_owned(), 2)], "{name}");
        assert_eq!(
            search
                .status_counts(&ExportFilter::default())
                .await
                .unwrap(),
            [
                ("dead".to_owned(), 2),
                ("needs_attention".to_owned(), 1),
                ("queued".to_owned(), 1),
                ("succeeded".to_owned(), 4)
            ],
            "{name}: the kept totals"
        );
    }
}

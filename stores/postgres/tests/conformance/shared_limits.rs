//! The limits consoles share: only PostgreSQL keeps them (SQLite's one console keeps them in
//! memory), so these steps run on PostgreSQL, through two stores on one database as two
//! consoles would, and check that SQLite answers none.

use std::time::Duration;

use chrono::{DateTime, Utc};
use integration::{
    shared_limits::{update_json, Key, Kind, SharedLimits},
    Store,
};
use store_postgres::{testing, PgStore};

use crate::{at_once::join_all, common::Both};

/// Two consoles' stores on one fresh database.
async fn two_consoles() -> (PgStore, PgStore) {
    let url = testing::fresh_database()
        .await
        .expect("a PostgreSQL database");
    let a = store_postgres::open(&url, 8).await.expect("postgres");
    let b = store_postgres::open(&url, 8).await.expect("postgres");
    (PgStore::new(a), PgStore::new(b))
}

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
}

fn key(kind: Kind, name: &str) -> Key {
    Key::of(kind, &[name.as_bytes()])
}

/// Adds one to each row's count, from the store `s`.
async fn count(s: &dyn SharedLimits, keys: &[Key]) -> Vec<u64> {
    update_json::<u64, _>(
        s,
        keys,
        |_| at(3600),
        |rows| {
            rows.iter_mut()
                .map(|n| {
                    let next = n.unwrap_or(0) + 1;
                    *n = Some(next);
                    next
                })
                .collect()
        },
    )
    .await
    .unwrap()
}

async fn read(s: &dyn SharedLimits, k: Key) -> Option<u64> {
    update_json::<u64, _>(s, &[k], |_| at(3600), |rows| rows[0])
        .await
        .unwrap()
}

#[tokio::test]
async fn sqlite_keeps_its_limits_in_memory() {
    let both = Both::new().await;
    assert!(both.sqlite.shared_limits().is_none());
    assert!(both.pg.shared_limits().is_some());
}

#[tokio::test]
async fn updates_from_two_consoles_take_turns_and_lose_nothing() {
    let (a, b) = two_consoles().await;
    let (x, y) = (key(Kind::RateGate, "x"), key(Kind::LoginAccount, "y"));
    // half of them name the rows in the other order: locked in one order, none deadlocks
    let calls = (0..40).map(|i| {
        let store: &dyn SharedLimits = if i % 2 == 0 { &a } else { &b };
        let keys = if i % 4 < 2 { vec![x, y] } else { vec![y, x] };
        async move { count(store, &keys).await }
    });
    let answers = join_all(calls.collect()).await;
    let mut seen: Vec<u64> = answers
        .iter()
        .zip(0..)
        .map(|(n, i)| if i % 4 < 2 { n[0] } else { n[1] })
        .collect();
    seen.sort_unstable();
    assert_eq!(seen, (1..=40).collect::<Vec<u64>>(), "each count once");
    assert_eq!(read(&a, x).await, Some(40));
    assert_eq!(read(&b, y).await, Some(40));
}

#[tokio::test]
async fn a_row_left_without_state_is_gone_and_none_is_made_for_a_look() {
    let (a, b) = two_consoles().await;
    let k = key(Kind::LoginAddress, "192.0.2.1");
    assert_eq!(read(&a, k).await, None, "looking creates nothing");
    count(&a, &[k]).await;
    assert_eq!(read(&b, k).await, Some(1));
    update_json::<u64, _>(&b, &[k], |_| at(0), |rows| rows[0] = None)
        .await
        .unwrap();
    assert_eq!(read(&a, k).await, None);
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM shared_limits")
        .fetch_one(a.pool())
        .await
        .unwrap();
    assert_eq!(rows, 0);
}

#[tokio::test]
async fn expired_rows_are_forgotten_and_a_kind_is_capped() {
    let (a, _) = two_consoles().await;
    for i in 0..10 {
        let k = key(Kind::LoginAccount, &format!("a{i}"));
        update_json::<u64, _>(&a, &[k], move |_| at(i), |rows| rows[0] = Some(1))
            .await
            .unwrap();
    }
    let other = key(Kind::RateGate, "kept");
    update_json::<u64, _>(&a, &[other], |_| at(0), |rows| rows[0] = Some(1))
        .await
        .unwrap();
    // three expired by at(3), and of the seven left the four that expire last are kept
    let gone = a.forget(Kind::LoginAccount, at(2), 4).await.unwrap();
    assert_eq!(gone, 6);
    for i in 0..10 {
        let k = key(Kind::LoginAccount, &format!("a{i}"));
        assert_eq!(read(&a, k).await.is_some(), i >= 6, "a{i}");
    }
    assert_eq!(read(&a, other).await, Some(1), "other kinds are left alone");
}

#[tokio::test]
async fn rejection_allowances_are_counted_once_across_consoles() {
    let (a, b) = two_consoles().await;
    let window = Duration::from_secs(60);
    let takes = (0..20).map(|i| {
        let store: &dyn SharedLimits = if i % 2 == 0 { &a } else { &b };
        async move {
            store
                .take_rejection_allowance(7, at(0), window, 5)
                .await
                .unwrap()
        }
    });
    let allowed = join_all(takes.collect())
        .await
        .into_iter()
        .filter(|ok| *ok)
        .count();
    assert_eq!(allowed, 5, "five in the window, wherever they were counted");
    assert!(!a
        .take_rejection_allowance(7, at(59), window, 5)
        .await
        .unwrap());
    assert!(
        b.take_rejection_allowance(8, at(59), window, 5)
            .await
            .unwrap(),
        "another bucket has its own"
    );
    assert!(
        b.take_rejection_allowance(7, at(60), window, 5)
            .await
            .unwrap(),
        "a new window"
    );
    let used: i32 = sqlx::query_scalar("SELECT used FROM rejection_allowances WHERE bucket = 7")
        .fetch_one(a.pool())
        .await
        .unwrap();
    assert_eq!(used, 1);
    assert!(!a
        .take_rejection_allowance(9, at(0), window, 0)
        .await
        .unwrap());
}

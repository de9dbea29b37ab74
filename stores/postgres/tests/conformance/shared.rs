//! What several console processes sharing one PostgreSQL database rely on, which SQLite (one
//! process per file) has no counterpart of: each "process" here is a store over a pool of its own.

use std::time::Duration;

use integration::{hibob::locks::LockError, Store};
use store_postgres::PgStore;

use crate::common::Both;

/// A second process's store on the same database as `both.pg`.
async fn another_process(both: &Both) -> PgStore {
    let store_postgres::test_sql::Sql::Postgres(pool) = &both.pg_sql else {
        unreachable!("the PostgreSQL statements run on PostgreSQL")
    };
    let options = (*pool.connect_options()).clone();
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await
        .expect("a second pool");
    PgStore::new(pool)
}

#[tokio::test]
async fn a_person_is_locked_across_processes_until_the_holder_lets_go_or_dies() {
    let both = Both::new().await;
    let a = both.pg.shared_locks().expect("PostgreSQL shares its locks");
    let other = another_process(&both).await;
    let b = other.shared_locks().expect("PostgreSQL shares its locks");

    let held = a
        .lock("ada@example.com", Duration::from_secs(1))
        .await
        .expect("free");
    let refused = b.lock("ada@example.com", Duration::from_millis(300)).await;
    assert!(matches!(refused, Err(LockError::Busy(_))), "{refused:?}");
    // someone else is not held up
    let eve = b
        .lock("eve@example.com", Duration::from_millis(300))
        .await
        .expect("another person is free");
    drop(eve);

    // a waiter gets the lock once the holder lets go
    let waiting = tokio::spawn(async move {
        b.lock("ada@example.com", Duration::from_secs(5))
            .await
            .map(|_| ())
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(held);
    waiting
        .await
        .expect("the waiter ran")
        .expect("and took the lock");

    // a holder that dies lets go too: its connections close, as the server sees a killed process
    let dying = another_process(&both).await;
    let held = dying
        .shared_locks()
        .expect("shared")
        .lock("noor@example.com", Duration::from_secs(1))
        .await
        .expect("free");
    let cut = both
        .pg_sql
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_locks
             WHERE locktype = 'advisory' AND granted AND objsubid = 2
               AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            &[],
        )
        .await;
    assert_eq!(cut, 1, "one connection held the lock");
    let c = both.pg.shared_locks().expect("shared");
    c.lock("noor@example.com", Duration::from_secs(5))
        .await
        .expect("the dead holder's lock was let go");
    // the dead holder's guard letting go later harms nobody
    drop(held);
}

/// A console exporting many people at once holds all their locks on a few sessions, not a
/// connection each (which capped the people it could export at once at its lock connections).
#[tokio::test]
async fn many_people_are_held_at_once_on_a_few_sessions() {
    const PEOPLE: usize = 40;
    let both = Both::new().await;
    let a = both.pg.shared_locks().expect("PostgreSQL shares its locks");
    let other = another_process(&both).await;
    let b = other.shared_locks().expect("PostgreSQL shares its locks");
    let mut held = Vec::new();
    for n in 0..PEOPLE {
        held.push(
            a.lock(&format!("person{n}@example.com"), Duration::from_secs(2))
                .await
                .expect("free"),
        );
    }
    let sessions: i64 = both
        .pg_sql
        .scalar(
            "SELECT COUNT(DISTINCT pid) FROM pg_locks
             WHERE locktype = 'advisory' AND granted AND objsubid = 2
               AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            &[],
        )
        .await;
    assert!(
        (1..=i64::try_from(store_postgres::person_locks::SESSIONS).unwrap()).contains(&sessions),
        "{PEOPLE} locks held on {sessions} sessions"
    );
    // each is still the holder's alone
    for n in [0, PEOPLE / 2, PEOPLE - 1] {
        let refused = b
            .lock(
                &format!("person{n}@example.com"),
                Duration::from_millis(100),
            )
            .await;
        assert!(matches!(refused, Err(LockError::Busy(_))), "{refused:?}");
    }
    // and each is let go with its guard
    held.truncate(1);
    for n in 1..PEOPLE {
        b.lock(&format!("person{n}@example.com"), Duration::from_secs(2))
            .await
            .expect("let go");
    }
    let refused = b
        .lock("person0@example.com", Duration::from_millis(100))
        .await;
    assert!(matches!(refused, Err(LockError::Busy(_))), "{refused:?}");
}

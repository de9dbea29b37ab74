//! Transactions PostgreSQL aborts so that others can go on: a deadlock (40P01) or a
//! serialization failure (40001). Nothing of such a transaction was kept, so it is run again.

use std::{future::Future, time::Duration};

/// Runs of one transaction, at most, before its conflict is reported.
const RUNS: u32 = 4;

/// Whether PostgreSQL aborted the transaction for another's sake.
pub(crate) fn aborted(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => matches!(d.code().as_deref(), Some("40P01" | "40001")),
        _ => false,
    }
}

/// `run` (one whole transaction) again while it ends in an error `conflicted` says is such an
/// abort, up to [`RUNS`] times, each after a pause a little longer than the last.
pub(crate) async fn again_on_conflict<T, E, F, Fut>(
    conflicted: fn(&E) -> bool,
    mut run: F,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut runs = 1;
    loop {
        match run().await {
            Err(e) if runs < RUNS && conflicted(&e) => {
                tokio::time::sleep(Duration::from_millis(5 * u64::from(runs))).await;
                runs += 1;
            }
            done => return done,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;
    use sqlx::PgPool;

    /// Locks `first` then `second` in one transaction, with a pause between, so that two of
    /// these in the opposite order deadlock.
    async fn cross(pool: &PgPool, first: i64, second: i64) -> Result<(), sqlx::Error> {
        let mut tx = pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(first)
            .execute(&mut *tx)
            .await?;
        tokio::time::sleep(Duration::from_millis(200)).await;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(second)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }

    #[tokio::test]
    async fn a_transaction_aborted_by_a_deadlock_runs_again() {
        let url = testing::fresh_database().await.unwrap();
        let pool = crate::open(&url, 4).await.unwrap();
        // without running again, one of the two is aborted
        let (a, b) = tokio::join!(cross(&pool, 1, 2), cross(&pool, 2, 1));
        let aborted_once = [&a, &b]
            .iter()
            .filter(|r| r.as_ref().is_err_and(aborted))
            .count();
        assert_eq!(aborted_once, 1, "{a:?} {b:?}");
        let (a, b) = tokio::join!(
            again_on_conflict(aborted, || cross(&pool, 1, 2)),
            again_on_conflict(aborted, || cross(&pool, 2, 1))
        );
        a.unwrap();
        b.unwrap();
        // other errors are reported at once
        let runs = std::sync::atomic::AtomicU32::new(0);
        let failed: Result<(), sqlx::Error> = again_on_conflict(aborted, || async {
            runs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            sqlx::query("SELECT nothing")
                .execute(&pool)
                .await
                .map(|_| ())
        })
        .await;
        assert!(failed.is_err());
        assert_eq!(runs.load(std::sync::atomic::Ordering::Relaxed), 1);
    }
}

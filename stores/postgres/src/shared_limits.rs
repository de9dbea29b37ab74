//! The limits every console on the database keeps together (`integration::shared_limits`): rows
//! of the core's JSON state, locked, changed by the core and written back in one short
//! transaction, and the rejected deliveries' allowances, counted by one upsert each.

use std::{collections::HashMap, time::Duration};

use chrono::{DateTime, Utc};
use integration::shared_limits::{Change, Kept, Key, Kind, SharedLimits, SharedLimitsError};

use crate::PgStore;

fn kind_named(name: &str) -> Option<Kind> {
    Kind::ALL.into_iter().find(|k| k.as_str() == name)
}

#[async_trait::async_trait]
impl SharedLimits for PgStore {
    async fn update(&self, keys: &[Key], change: Change<'_>) -> Result<(), SharedLimitsError> {
        // one order for every caller, so two updates of the same rows cannot deadlock
        let mut locked = keys.to_vec();
        locked.sort();
        locked.dedup();
        let kinds: Vec<String> = locked.iter().map(|k| k.kind.as_str().to_owned()).collect();
        let digests: Vec<Vec<u8>> = locked.iter().map(|k| k.digest.to_vec()).collect();
        let mut tx = self.pool.begin().await?;
        // creating a missing row and locking an existing one in one statement: a row another
        // console is creating at the same moment is waited for, not created twice. A row
        // created here with no state is removed again below unless the change gives it one.
        let rows = sqlx::query!(
            r#"INSERT INTO shared_limits AS s (kind, key, state, expires_at)
               SELECT k.kind, k.key, '', now()
               FROM UNNEST($1::text[], $2::bytea[]) WITH ORDINALITY AS k(kind, key, n)
               ORDER BY k.n
               ON CONFLICT (kind, key) DO UPDATE SET state = s.state
               RETURNING s.kind AS "kind!", s.key AS "key!", s.state AS "state!",
                         s.expires_at AS "expires_at!: DateTime<Utc>""#,
            &kinds,
            &digests
        )
        .fetch_all(&mut *tx)
        .await?;
        let mut found: HashMap<Key, Kept> = HashMap::with_capacity(rows.len());
        for row in rows {
            let (Some(kind), Ok(digest)) = (kind_named(&row.kind), <[u8; 32]>::try_from(row.key))
            else {
                continue;
            };
            if !row.state.is_empty() {
                found.insert(
                    Key { kind, digest },
                    Kept {
                        state: row.state,
                        expires_at: row.expires_at,
                    },
                );
            }
        }
        let mut states: Vec<Option<Kept>> = keys.iter().map(|k| found.get(k).cloned()).collect();
        change(&mut states);
        let left: HashMap<Key, Option<Kept>> = keys.iter().copied().zip(states).collect();

        let (mut kept_kinds, mut kept_keys, mut kept_states, mut kept_expiries) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut gone_kinds, mut gone_keys) = (Vec::new(), Vec::new());
        for key in &locked {
            match left.get(key).cloned().flatten() {
                Some(kept) => {
                    kept_kinds.push(key.kind.as_str().to_owned());
                    kept_keys.push(key.digest.to_vec());
                    kept_states.push(kept.state);
                    kept_expiries.push(kept.expires_at);
                }
                None => {
                    gone_kinds.push(key.kind.as_str().to_owned());
                    gone_keys.push(key.digest.to_vec());
                }
            }
        }
        if !kept_keys.is_empty() {
            sqlx::query!(
                "UPDATE shared_limits AS s SET state = u.state, expires_at = u.expires_at
                 FROM UNNEST($1::text[], $2::bytea[], $3::text[], $4::timestamptz[])
                      AS u(kind, key, state, expires_at)
                 WHERE s.kind = u.kind AND s.key = u.key",
                &kept_kinds,
                &kept_keys,
                &kept_states,
                &kept_expiries as _
            )
            .execute(&mut *tx)
            .await?;
        }
        if !gone_keys.is_empty() {
            sqlx::query!(
                "DELETE FROM shared_limits AS s
                 USING UNNEST($1::text[], $2::bytea[]) AS u(kind, key)
                 WHERE s.kind = u.kind AND s.key = u.key",
                &gone_kinds,
                &gone_keys
            )
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn forget(
        &self,
        kind: Kind,
        now: DateTime<Utc>,
        keep_at_most: u32,
    ) -> Result<u64, SharedLimitsError> {
        let expired = sqlx::query!(
            "DELETE FROM shared_limits WHERE kind = $1 AND expires_at <= $2",
            kind.as_str(),
            now as _
        )
        .execute(&self.pool)
        .await?
        .rows_affected();
        let beyond = sqlx::query!(
            "DELETE FROM shared_limits WHERE kind = $1 AND key IN (
                 SELECT key FROM shared_limits WHERE kind = $1
                 ORDER BY expires_at DESC, key OFFSET $2)",
            kind.as_str(),
            i64::from(keep_at_most)
        )
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(expired.saturating_add(beyond))
    }

    async fn take_rejection_allowance(
        &self,
        bucket: i32,
        now: DateTime<Utc>,
        window: Duration,
        allowed: u32,
    ) -> Result<bool, SharedLimitsError> {
        let ended_by = chrono::Duration::from_std(window)
            .ok()
            .and_then(|w| now.checked_sub_signed(w))
            .unwrap_or(now);
        // counted no further than one past the allowance, so a flood cannot overflow the count
        let cap = i32::try_from(allowed)
            .unwrap_or(i32::MAX - 1)
            .saturating_add(1);
        let used = sqlx::query_scalar!(
            "INSERT INTO rejection_allowances AS r (bucket, window_start, used)
             VALUES ($1, $2, 1)
             ON CONFLICT (bucket) DO UPDATE SET
                 window_start = CASE WHEN r.window_start <= $3
                                     THEN EXCLUDED.window_start ELSE r.window_start END,
                 used = CASE WHEN r.window_start <= $3 THEN 1 ELSE LEAST(r.used + 1, $4) END
             RETURNING used",
            bucket,
            now as _,
            ended_by as _,
            cap
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(i64::from(used) <= i64::from(allowed))
    }
}

//! What the dashboard reads, on PostgreSQL. Times are the stored text (`YYYY-MM-DDTHH:MM:SS.mmmZ`,
//! UTC), so a day is its first ten characters and ranges compare as text, as on SQLite.

use chrono::{NaiveDate, Utc};
use integration::dashboard::{
    attention, attention_limit, by_cause, fill_days, first_day, keep_later, silence, Attention,
    AttentionRow, Call, DashboardReads, DayCount, LastCalls, Refusals, Silence, RHYTHM_SAMPLE,
};

use crate::PgStore;

#[async_trait::async_trait]
impl DashboardReads for PgStore {
    async fn needing_attention(
        &self,
        today: NaiveDate,
        limit: i64,
    ) -> Result<Vec<Attention>, sqlx::Error> {
        let limit = attention_limit(limit);
        // text order is date order for YYYY-MM-DD, so the limit keeps the soonest
        let rows = sqlx::query_as!(
            AttentionRow,
            "SELECT id, status, candidate_name, pinpoint_application_id, start_date, last_error,
                    updated_at
             FROM exports WHERE status IN ('needs_attention', 'dead')
             ORDER BY start_date IS NULL, start_date, id
             LIMIT $1",
            limit
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(attention(rows, today))
    }

    async fn per_day(&self, today: NaiveDate, days: u32) -> Result<Vec<DayCount>, sqlx::Error> {
        let first = first_day(today, days);
        let rows = sqlx::query!(
            r#"SELECT left(created_at, 10) AS "day!", status, COUNT(*) AS "n!"
               FROM exports WHERE created_at >= $1
               GROUP BY 1, 2"#,
            first
        )
        .fetch_all(&self.pool)
        .await?;
        let rows: Vec<(String, String, i64)> =
            rows.into_iter().map(|r| (r.day, r.status, r.n)).collect();
        Ok(fill_days(&rows, today, days))
    }

    async fn last_calls(&self, steps: &[&str]) -> Result<LastCalls, sqlx::Error> {
        let mut out = LastCalls::default();
        for step in steps {
            for (outcome, slot) in [("ok", &mut out.ok), ("failed", &mut out.failed)] {
                // one indexed lookup per kind, however long the history; of steps recorded at
                // the same moment, the last recorded, as SQLite's index (which ends in the row
                // id) gives it
                let found = sqlx::query_as!(
                    Call,
                    "SELECT started_at AS at, step, detail FROM export_steps
                     WHERE step = $1 AND outcome = $2 ORDER BY started_at DESC, id DESC LIMIT 1",
                    step,
                    outcome
                )
                .fetch_optional(&self.pool)
                .await?;
                if let Some(call) = found {
                    keep_later(slot, call);
                }
            }
        }
        Ok(out)
    }

    async fn oldest_queued_since(&self) -> Result<Option<String>, sqlx::Error> {
        sqlx::query_scalar!(
            r#"SELECT MIN(updated_at) AS "since?" FROM exports WHERE status = 'queued'"#
        )
        .fetch_one(&self.pool)
        .await
    }

    async fn refusals_since(&self, since: &str) -> Result<Vec<Refusals>, sqlx::Error> {
        // in reason order, as SQLite groups them: causes of equal counts keep that order
        let rows = sqlx::query!(
            r#"SELECT d.reason, COUNT(*) AS "count!", MAX(d.received_at) AS "last_at!"
               FROM webhook_deliveries AS d
               WHERE d.outcome = 'rejected' AND d.received_at >= $1
                 AND NOT EXISTS (
                     SELECT 1 FROM webhook_deliveries AS later
                     WHERE later.id > d.id AND later.outcome IN ('accepted', 'duplicate')
                       AND (later.body_sha256 = d.body_sha256
                            OR later.application_id = d.application_id))
               GROUP BY d.reason
               ORDER BY d.reason"#,
            since
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(by_cause(
            rows.into_iter()
                .map(|r| (r.reason, r.count, r.last_at))
                .collect(),
        ))
    }

    async fn delivery_silence(
        &self,
        now: chrono::DateTime<Utc>,
    ) -> Result<Option<Silence>, sqlx::Error> {
        let received = sqlx::query_scalar!(
            "SELECT received_at FROM webhook_deliveries WHERE outcome = 'accepted'
             ORDER BY received_at DESC LIMIT $1",
            RHYTHM_SAMPLE
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(silence(&received, now))
    }
}

//! What the dashboard shows at a glance: the stopped exports, the ones whose hire starts soonest
//! first; exports per day; the last calls to HiBob and Pinpoint as the export steps recorded them;
//! and how long the oldest queued export has been waiting.

use chrono::{NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sqlx::SqlitePool;

pub use crate::dates::{days_until, is_urgent, URGENT_WITHIN_DAYS};
/// Days shown in the exports-per-day chart, today included.
pub const CHART_DAYS: u32 = 14;
/// The export steps that call HiBob, and those that call Pinpoint.
pub const HIBOB_STEPS: [&str; 3] = ["search_employee", "create_employee", "upload_cv"];
pub const PINPOINT_STEPS: [&str; 2] = ["fetch_application", "comment"];

/// A stopped export as the dashboard lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attention {
    pub id: i64,
    pub status: String,
    pub candidate_name: Option<String>,
    pub pinpoint_application_id: String,
    pub start_date: Option<String>,
    pub last_error: Option<String>,
    pub updated_at: String,
    pub days_to_start: Option<i64>,
    pub urgent: bool,
}

/// Urgent first, then by how soon the hire starts, unknown start dates last.
pub fn order_attention(items: &mut [Attention]) {
    items.sort_by_key(|a| (!a.urgent, a.days_to_start.is_none(), a.days_to_start, a.id));
}

/// A stopped export as the database gives it, soonest start first.
pub struct AttentionRow {
    pub id: i64,
    pub status: String,
    pub candidate_name: Option<String>,
    pub pinpoint_application_id: String,
    pub start_date: Option<String>,
    pub last_error: Option<String>,
    pub updated_at: String,
}

/// How many stopped exports the dashboard reads, for `asked`.
pub fn attention_limit(asked: i64) -> i64 {
    asked.clamp(1, 200)
}

/// The stopped exports as the dashboard lists them on `today`: their urgency, in its order.
pub fn attention(rows: Vec<AttentionRow>, today: NaiveDate) -> Vec<Attention> {
    let mut items: Vec<Attention> = rows
        .into_iter()
        .map(|r| {
            let days_to_start = r.start_date.as_deref().and_then(|d| days_until(d, today));
            Attention {
                urgent: is_urgent(days_to_start),
                days_to_start,
                id: r.id,
                status: r.status,
                candidate_name: r.candidate_name,
                pinpoint_application_id: r.pinpoint_application_id,
                start_date: r.start_date,
                last_error: r.last_error,
                updated_at: r.updated_at,
            }
        })
        .collect();
    order_attention(&mut items);
    items
}

/// The stopped exports (needs attention, dead) whose hire starts soonest, at most `limit`.
pub async fn needing_attention(
    pool: &SqlitePool,
    today: NaiveDate,
    limit: i64,
) -> Result<Vec<Attention>, sqlx::Error> {
    let limit = attention_limit(limit);
    // text order is date order for YYYY-MM-DD, so the limit keeps the soonest
    let rows = sqlx::query_as!(
        AttentionRow,
        r#"SELECT id AS "id!", status, candidate_name, pinpoint_application_id, start_date,
                  last_error, updated_at
           FROM exports WHERE status IN ('needs_attention', 'dead')
           ORDER BY start_date IS NULL, start_date, id
           LIMIT ?"#,
        limit
    )
    .fetch_all(pool)
    .await?;
    Ok(attention(rows, today))
}

/// Exports created on one day (UTC), by how they stand now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayCount {
    /// `YYYY-MM-DD`
    pub day: String,
    pub succeeded: i64,
    /// Needs attention or dead.
    pub failed: i64,
    /// Queued or running.
    pub other: i64,
}

/// One bucket per day for the `days` days ending `today`, oldest first, empty days included.
pub fn fill_days(rows: &[(String, String, i64)], today: NaiveDate, days: u32) -> Vec<DayCount> {
    (0..i64::from(days))
        .rev()
        .map(|back| {
            let day = (today - chrono::Duration::days(back))
                .format("%Y-%m-%d")
                .to_string();
            let mut bucket = DayCount {
                day,
                succeeded: 0,
                failed: 0,
                other: 0,
            };
            for (_, status, n) in rows.iter().filter(|(d, _, _)| *d == bucket.day) {
                match status.as_str() {
                    "succeeded" => bucket.succeeded += n,
                    "needs_attention" | "dead" => bucket.failed += n,
                    _ => bucket.other += n,
                }
            }
            bucket
        })
        .collect()
}

/// The first day (`YYYY-MM-DD`) of the `days` days ending `today`.
pub fn first_day(today: NaiveDate, days: u32) -> String {
    (today - chrono::Duration::days(i64::from(days.max(1)) - 1))
        .format("%Y-%m-%d")
        .to_string()
}

pub async fn per_day(
    pool: &SqlitePool,
    today: NaiveDate,
    days: u32,
) -> Result<Vec<DayCount>, sqlx::Error> {
    let first = first_day(today, days);
    let rows = sqlx::query!(
        r#"SELECT substr(created_at, 1, 10) AS "day!: String", status, COUNT(*) AS "n!: i64"
           FROM exports WHERE created_at >= ?
           GROUP BY 1, 2"#,
        first
    )
    .fetch_all(pool)
    .await?;
    let rows: Vec<(String, String, i64)> =
        rows.into_iter().map(|r| (r.day, r.status, r.n)).collect();
    Ok(fill_days(&rows, today, days))
}

/// A recorded call to an outside service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Call {
    pub at: String,
    pub step: String,
    pub detail: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastCalls {
    pub ok: Option<Call>,
    pub failed: Option<Call>,
}

/// The newest successful and the newest failed step among `steps`.
pub async fn last_calls(pool: &SqlitePool, steps: &[&str]) -> Result<LastCalls, sqlx::Error> {
    let mut out = LastCalls::default();
    for step in steps {
        for (outcome, slot) in [("ok", &mut out.ok), ("failed", &mut out.failed)] {
            // one indexed lookup per kind, however long the history
            let found = sqlx::query_as!(
                Call,
                r#"SELECT started_at AS at, step, detail FROM export_steps
                   WHERE step = ? AND outcome = ? ORDER BY started_at DESC LIMIT 1"#,
                step,
                outcome
            )
            .fetch_optional(pool)
            .await?;
            if let Some(call) = found {
                keep_later(slot, call);
            }
        }
    }
    Ok(out)
}

/// Keeps `call` in `slot` when it is the later one, its detail cut to what the dashboard shows.
/// `last_calls` asks step by step in pipeline order, so on a tie the later step is the later
/// call.
pub fn keep_later(slot: &mut Option<Call>, mut call: Call) {
    if slot.as_ref().is_none_or(|seen| seen.at <= call.at) {
        call.detail = call.detail.chars().take(300).collect();
        *slot = Some(call);
    }
}

/// Since when the longest-waiting queued export has been queued.
pub async fn oldest_queued_since(pool: &SqlitePool) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT MIN(updated_at) AS "since?: String" FROM exports WHERE status = 'queued'"#
    )
    .fetch_one(pool)
    .await
}

/// Why refused deliveries were refused, grouped so each group has one fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalCause {
    /// Signed with another secret: the secret here and Pinpoint's differ.
    BadSignature,
    /// No signature header at all: not a Pinpoint webhook, whatever the secret.
    MissingHeader,
    /// A signature header that is not a signature (not base64, wrong length): altered on the
    /// way or not from Pinpoint; the secret cannot be the cause.
    MalformedHeader,
    /// No secret is configured here, so nothing can be verified.
    NoSecret,
    /// Signed, but not a webhook body the console can read.
    Malformed,
    TooLarge,
}

impl RefusalCause {
    fn of(reason: &str) -> Self {
        use crate::{pinpoint::signature::SignatureError, webhooks::intake as w};
        let signature = |e: SignatureError| format!("{}: {e}", w::REASON_BAD_SIGNATURE);
        if reason.starts_with(w::REASON_NO_SECRET) {
            Self::NoSecret
        } else if reason.starts_with(w::REASON_TOO_LARGE) {
            Self::TooLarge
        } else if reason.starts_with(w::REASON_UNPARSEABLE) {
            Self::Malformed
        } else if reason.starts_with(&signature(SignatureError::Missing)) {
            Self::MissingHeader
        } else if reason.starts_with(&signature(SignatureError::Malformed(""))) {
            Self::MalformedHeader
        } else {
            Self::BadSignature
        }
    }

    /// What is wrong and the one action that fixes it. In sandbox mode the settings are the
    /// sandbox's own and cannot be edited, so the advice never sends anyone there; only admins
    /// edit Settings, so everyone else is told to ask one.
    pub fn advice(self, sandbox: bool, admin: bool) -> &'static str {
        match (self, sandbox) {
            (Self::BadSignature, false) if admin => "The signature did not match: the webhook signing secret in Settings differs from the Signing Secret of the webhook in Pinpoint (or someone else is posting). Copy Pinpoint's into Settings; refused hires can then be re-processed from the webhook log.",
            (Self::BadSignature, false) => "The signature did not match: the console's webhook signing secret differs from the Signing Secret of the webhook in Pinpoint (or someone else is posting). Ask an admin to copy Pinpoint's into Settings; refused hires can then be re-processed from the webhook log.",
            (Self::BadSignature, true) => "The signature did not match the sandbox's own signing secret, so the console's test webhook did not send these. Re-process any real hire among them from the webhook log.",
            (Self::MissingHeader, _) => "The deliveries had no PINPOINT-HMAC-SHA256 signature header at all. Pinpoint signs every delivery, so the sender is not a Pinpoint webhook (or something on the way removed the header); the signing secret is not the cause.",
            (Self::MalformedHeader, _) => "The signature header was there but was not a signature (not base64, or the wrong length). Something on the way altered it, or the sender is not Pinpoint; the signing secret is not the cause.",
            (Self::NoSecret, false) if admin => "No webhook signing secret is set, so every delivery is refused (Pinpoint retries them). Enter the Signing Secret of the webhook in Settings.",
            (Self::NoSecret, false) => "No webhook signing secret is set, so every delivery is refused (Pinpoint retries them). Ask an admin to enter the Signing Secret of the webhook in Settings.",
            (Self::NoSecret, true) => "The sandbox has no webhook signing secret, so every delivery is refused. Restart the console in sandbox mode to get one.",
            (Self::Malformed, _) => "Signed deliveries that are not application events the console can read. Check the webhook's event type in Pinpoint.",
            (Self::TooLarge, _) => "Deliveries over the size limit, which no Pinpoint delivery comes near: most likely not from Pinpoint.",
        }
    }
}

/// Refused deliveries of one cause since a time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusals {
    pub cause: RefusalCause,
    pub count: i64,
    pub last_at: String,
}

/// Refused deliveries since `since` not yet dealt with, by cause, the most frequent first. A
/// refusal is dealt with once a later delivery of the same body (a re-processing, or Pinpoint
/// sending it again) or of the same application was taken in.
pub async fn refusals_since(pool: &SqlitePool, since: &str) -> Result<Vec<Refusals>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"SELECT d.reason AS "reason!: String", COUNT(*) AS "count!: i64",
                  MAX(d.received_at) AS "last_at!: String"
           FROM webhook_deliveries AS d
           WHERE d.outcome = 'rejected' AND d.received_at >= ?
             AND NOT EXISTS (
                 SELECT 1 FROM webhook_deliveries AS later
                 WHERE later.id > d.id AND later.outcome IN ('accepted', 'duplicate')
                   AND (later.body_sha256 = d.body_sha256 OR later.application_id = d.application_id))
           GROUP BY d.reason"#,
        since
    )
    .fetch_all(pool)
    .await?;
    Ok(by_cause(
        rows.into_iter()
            .map(|r| (r.reason, r.count, r.last_at))
            .collect(),
    ))
}

/// Refusals grouped by reason, as (reason, count, newest), gathered by cause, the most frequent
/// first.
pub fn by_cause(rows: Vec<(String, i64, String)>) -> Vec<Refusals> {
    let mut by_cause: Vec<Refusals> = Vec::new();
    for (reason, count, last_at) in rows {
        let cause = RefusalCause::of(&reason);
        match by_cause.iter_mut().find(|r| r.cause == cause) {
            Some(r) => {
                r.count = r.count.saturating_add(count);
                if last_at > r.last_at {
                    r.last_at = last_at;
                }
            }
            None => by_cause.push(Refusals {
                cause,
                count,
                last_at,
            }),
        }
    }
    by_cause.sort_by_key(|r| std::cmp::Reverse(r.count));
    by_cause
}

/// Accepted deliveries the usual rhythm is learnt from: enough for a season of hiring, few
/// enough that the read stays small.
pub const RHYTHM_SAMPLE: i64 = 200;
/// Below this many accepted deliveries there is no rhythm to compare with.
const RHYTHM_MIN: usize = 5;
/// Quiet spells shorter than this are never unusual, however regular the hires were.
const QUIET_FLOOR_SECS: i64 = 24 * 3600;

/// Hires stopped arriving: the last accepted delivery is older than the usual gap allows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Silence {
    pub last_at: String,
    /// How long it has been quiet.
    pub quiet_secs: i64,
    /// The gap between hires that nine in ten of the recent ones stayed within.
    pub usual_secs: i64,
}

/// Whether the quiet since the newest of `times` (accepted deliveries, newest first) is longer
/// than usual: over twice the 90th percentile of the gaps between them, and at least a day.
pub fn unusual_silence(
    times: &[chrono::DateTime<Utc>],
    now: chrono::DateTime<Utc>,
) -> Option<(i64, i64)> {
    if times.len() < RHYTHM_MIN {
        return None;
    }
    let mut gaps: Vec<i64> = times
        .windows(2)
        .map(|w| (w[0] - w[1]).num_seconds().max(0))
        .collect();
    gaps.sort_unstable();
    let index = (gaps.len() * 9 / 10).min(gaps.len().saturating_sub(1));
    let usual = gaps.get(index).copied().unwrap_or(0).max(1);
    let quiet = (now - *times.first()?).num_seconds();
    let limit = usual.saturating_mul(2).max(QUIET_FLOOR_SECS);
    (quiet > limit).then_some((quiet, usual))
}

/// [`unusual_silence`] over the stored accepted deliveries.
pub async fn delivery_silence(
    pool: &SqlitePool,
    now: chrono::DateTime<Utc>,
) -> Result<Option<Silence>, sqlx::Error> {
    let sample = RHYTHM_SAMPLE;
    let rows = sqlx::query_scalar!(
        "SELECT received_at FROM webhook_deliveries WHERE outcome = 'accepted'
         ORDER BY received_at DESC LIMIT ?",
        sample
    )
    .fetch_all(pool)
    .await?;
    Ok(silence(&rows, now))
}

/// [`unusual_silence`] over the receipt times (stored text) of the newest accepted deliveries,
/// newest first.
pub fn silence(received: &[String], now: chrono::DateTime<Utc>) -> Option<Silence> {
    let times: Vec<chrono::DateTime<Utc>> = received
        .iter()
        .filter_map(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
        .collect();
    unusual_silence(&times, now).and_then(|(quiet_secs, usual_secs)| {
        Some(Silence {
            last_at: received.first()?.clone(),
            quiet_secs,
            usual_secs,
        })
    })
}

/// Seconds from a stored time to now; `None` if it does not parse.
pub fn seconds_since(stored: &str, now: chrono::DateTime<Utc>) -> Option<i64> {
    let at = chrono::DateTime::parse_from_rfc3339(stored).ok()?;
    Some((now - at.with_timezone(&Utc)).num_seconds().max(0))
}

/// A waiting time as people say it: "40 s", "3 min", "2 h 5 min", "3 days".
pub fn age_text(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min", s / 60),
        3600..=86_399 => match (s / 3600, s % 3600 / 60) {
            (h, 0) => format!("{h} h"),
            (h, m) => format!("{h} h {m} min"),
        },
        _ => match s / 86_400 {
            1 => "1 day".to_owned(),
            d => format!("{d} days"),
        },
    }
}

/// What the dashboard reads, whichever engine holds it.
#[async_trait::async_trait]
pub trait DashboardReads: Send + Sync {
    /// The stopped exports (needs attention, dead) whose hire starts soonest, at most `limit`.
    async fn needing_attention(
        &self,
        today: NaiveDate,
        limit: i64,
    ) -> Result<Vec<Attention>, sqlx::Error>;
    async fn per_day(&self, today: NaiveDate, days: u32) -> Result<Vec<DayCount>, sqlx::Error>;
    /// The newest successful and the newest failed step among `steps`.
    async fn last_calls(&self, steps: &[&str]) -> Result<LastCalls, sqlx::Error>;
    /// Since when the longest-waiting queued export has been queued.
    async fn oldest_queued_since(&self) -> Result<Option<String>, sqlx::Error>;
    /// Refused deliveries since `since` not yet dealt with, by cause, the most frequent first. A
    /// refusal is dealt with once a later delivery of the same body (a re-processing, or Pinpoint
    /// sending it again) or of the same application was taken in.
    async fn refusals_since(&self, since: &str) -> Result<Vec<Refusals>, sqlx::Error>;
    /// [`unusual_silence`] over the stored accepted deliveries.
    async fn delivery_silence(
        &self,
        now: chrono::DateTime<Utc>,
    ) -> Result<Option<Silence>, sqlx::Error>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quiet_spell_is_unusual_only_against_a_rhythm() {
        let now = Utc::now();
        let ago = |hours: i64| now - chrono::Duration::hours(hours);
        // hires every six hours or so, the last one 30 hours ago: unusual
        let regular: Vec<_> = (0..10).map(|i| ago(30 + i * 6)).collect();
        let (quiet, usual) = unusual_silence(&regular, now).expect("unusual");
        assert_eq!((quiet / 3600, usual / 3600), (30, 6));
        // the same rhythm, last one 10 hours ago: under the one-day floor
        let recent: Vec<_> = (0..10).map(|i| ago(10 + i * 6)).collect();
        assert_eq!(unusual_silence(&recent, now), None);
        // hires a week apart, quiet for nine days: usual
        let weekly: Vec<_> = (0..6).map(|i| ago(9 * 24 + i * 7 * 24)).collect();
        assert_eq!(unusual_silence(&weekly, now), None);
        // too few hires to know a rhythm
        assert_eq!(unusual_silence(&regular[..4], now), None);
        assert_eq!(unusual_silence(&[], now), None);
    }

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn urgency_is_a_start_within_a_week_or_past() {
        let today = day("2026-11-22");
        assert_eq!(days_until("2026-11-29", today), Some(7));
        assert_eq!(days_until("2026-11-20T00:00:00Z", today), Some(-2));
        assert_eq!(days_until("soon", today), None);
        assert!(is_urgent(Some(7)));
        assert!(is_urgent(Some(-30)));
        assert!(!is_urgent(Some(8)));
        assert!(!is_urgent(None));
    }

    #[test]
    fn urgent_first_then_soonest_then_unknown() {
        let item = |id, days: Option<i64>| Attention {
            id,
            status: "dead".into(),
            candidate_name: None,
            pinpoint_application_id: id.to_string(),
            start_date: None,
            last_error: None,
            updated_at: String::new(),
            days_to_start: days,
            urgent: is_urgent(days),
        };
        let mut items = vec![
            item(1, None),
            item(2, Some(30)),
            item(3, Some(3)),
            item(4, Some(-1)),
            item(5, Some(10)),
        ];
        order_attention(&mut items);
        let order: Vec<i64> = items.iter().map(|i| i.id).collect();
        assert_eq!(order, [4, 3, 5, 2, 1]);
    }

    #[test]
    fn every_day_gets_a_bucket_even_when_empty() {
        let rows = vec![
            ("2026-11-22".to_owned(), "succeeded".to_owned(), 2),
            ("2026-11-22".to_owned(), "dead".to_owned(), 1),
            ("2026-11-22".to_owned(), "needs_attention".to_owned(), 1),
            ("2026-11-10".to_owned(), "queued".to_owned(), 4),
            ("2026-11-01".to_owned(), "succeeded".to_owned(), 9),
        ];
        let days = fill_days(&rows, day("2026-11-22"), 14);
        assert_eq!(days.len(), 14);
        assert_eq!(days[0].day, "2026-11-09");
        assert_eq!(days[1].other, 4);
        assert_eq!(
            (days[13].succeeded, days[13].failed, days[13].other),
            (2, 2, 0)
        );
        assert_eq!(
            days.iter().map(|d| d.succeeded).sum::<i64>(),
            2,
            "older days are left out"
        );
        assert!(days[2..13]
            .iter()
            .all(|d| d.succeeded + d.failed + d.other == 0));
    }

    #[test]
    fn ages_read_like_people_say_them() {
        assert_eq!(age_text(-5), "0 s");
        assert_eq!(age_text(40), "40 s");
        assert_eq!(age_text(180), "3 min");
        assert_eq!(age_text(3600), "1 h");
        assert_eq!(age_text(7500), "2 h 5 min");
        assert_eq!(age_text(86_400), "1 day");
        assert_eq!(age_text(3 * 86_400 + 5), "3 days");
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-22T10:03:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(seconds_since("2026-11-22T10:00:00.000Z", now), Some(180));
        assert_eq!(seconds_since("nonsense", now), None);
    }

    async fn delivery(
        pool: &SqlitePool,
        outcome: &str,
        reason: &str,
        hash: &str,
        app: Option<&str>,
    ) {
        sqlx::query(
            "INSERT INTO webhook_deliveries (outcome, reason, application_id, body_sha256, body)
             VALUES (?, ?, ?, ?, '{}')",
        )
        .bind(outcome)
        .bind(reason)
        .bind(app)
        .bind(hash)
        .execute(pool)
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn refusals_name_the_header_problem_and_leave_once_dealt_with() {
        let dir = tempfile::tempdir().unwrap();
        let pool = crate::db::open(&format!("sqlite://{}/d.db", dir.path().display()))
            .await
            .unwrap();
        let malformed = "bad signature: the signature header is malformed: not base64";
        let missing = "bad signature: no PINPOINT-HMAC-SHA256 signature header on the request";
        let mismatch = "bad signature: signature does not match the body (wrong signing secret, or the body was altered)";
        delivery(&pool, "rejected", malformed, "h1", None).await;
        delivery(&pool, "rejected", missing, "h2", None).await;
        delivery(&pool, "rejected", mismatch, "h3", Some("7")).await;
        delivery(&pool, "rejected", mismatch, "h4", Some("8")).await;
        let counts = || async {
            let mut found: Vec<(RefusalCause, i64)> =
                refusals_since(&pool, "2000-01-01T00:00:00.000Z")
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|r| (r.cause, r.count))
                    .collect();
            found.sort_by_key(|(c, _)| format!("{c:?}"));
            found
        };
        assert_eq!(
            counts().await,
            [
                (RefusalCause::BadSignature, 2),
                (RefusalCause::MalformedHeader, 1),
                (RefusalCause::MissingHeader, 1)
            ]
        );
        // the malformed one re-processed (a new delivery of its body), and hire 8 delivered
        // again once the secret was fixed: both are dealt with
        delivery(&pool, "accepted", "", "h1", Some("5")).await;
        delivery(&pool, "accepted", "", "h9", Some("8")).await;
        assert_eq!(
            counts().await,
            [
                (RefusalCause::BadSignature, 1),
                (RefusalCause::MissingHeader, 1)
            ]
        );
        // a header problem is never blamed on the secret; in sandbox nobody is sent to Settings
        for cause in [RefusalCause::MalformedHeader, RefusalCause::MissingHeader] {
            assert!(
                !cause.advice(false, true).contains("secret in Settings"),
                "{cause:?}"
            );
        }
        // only admins edit Settings: anyone else is told to ask one, never to edit it themselves
        for cause in [RefusalCause::BadSignature, RefusalCause::NoSecret] {
            assert!(cause.advice(false, true).contains("Settings"), "{cause:?}");
            let other = cause.advice(false, false);
            assert!(other.contains("Ask an admin"), "{cause:?}: {other}");
        }
        for cause in [
            RefusalCause::BadSignature,
            RefusalCause::NoSecret,
            RefusalCause::MalformedHeader,
            RefusalCause::MissingHeader,
            RefusalCause::Malformed,
            RefusalCause::TooLarge,
        ] {
            for admin in [true, false] {
                assert!(!cause.advice(true, admin).contains("Settings"), "{cause:?}");
            }
        }
    }
}

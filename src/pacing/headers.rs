//! What a service's answer says of its rate limit: `X-RateLimit-*` and `Retry-After`.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use reqwest::header::HeaderMap;
use serde::{Deserialize, Serialize};

/// Used when a 429 names no wait at all; one minute is the window both services count in.
pub(crate) const DEFAULT_RATE_LIMIT_WAIT: Duration = Duration::from_secs(60);

/// A server asking for more than this is more likely wrong than right; the queue re-checks anyway.
pub(crate) const MAX_RATE_LIMIT_WAIT: Duration = Duration::from_secs(15 * 60);

/// The rate-limit state a server last announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimit {
    /// `X-RateLimit-Limit`: calls allowed per window.
    pub limit: Option<u64>,
    /// `X-RateLimit-Remaining`: calls left in the current window.
    pub remaining: Option<u64>,
    /// `X-RateLimit-Reset`: when the window starts over.
    pub reset_at: Option<DateTime<Utc>>,
    /// `Retry-After`, converted to seconds from `observed_at` when it was an HTTP date.
    pub retry_after_secs: Option<u64>,
    pub observed_at: DateTime<Utc>,
}

impl RateLimit {
    /// `None` when the response carries none of the four headers, so that a response without
    /// them does not erase what an earlier one said.
    pub fn from_headers(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Self> {
        let text = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty())
        };
        let number = |name: &str| text(name).and_then(|v| v.parse::<u64>().ok());
        let limit = number("x-ratelimit-limit");
        let remaining = number("x-ratelimit-remaining");
        let reset_at = text("x-ratelimit-reset").and_then(|v| parse_reset(v, now));
        let retry_after_secs = text("retry-after").and_then(|v| parse_retry_after(v, now));
        if limit.is_none()
            && remaining.is_none()
            && reset_at.is_none()
            && retry_after_secs.is_none()
        {
            return None;
        }
        Some(Self {
            limit,
            remaining,
            reset_at,
            retry_after_secs,
            observed_at: now,
        })
    }

    /// How long to wait before calling again: `Retry-After` first, then the window reset,
    /// else a minute; never more than 15 minutes and never zero.
    pub fn wait(&self, now: DateTime<Utc>) -> Duration {
        let elapsed = (now - self.observed_at).num_seconds().max(0).unsigned_abs();
        let wait = if let Some(secs) = self.retry_after_secs {
            Duration::from_secs(secs.saturating_sub(elapsed).max(1))
        } else {
            match self.reset_at.map(|reset| (reset - now).num_seconds()) {
                Some(secs) if secs >= 0 => Duration::from_secs(secs.unsigned_abs().max(1)),
                // a reset in the past means a skewed clock: fall back to the plain window
                _ => DEFAULT_RATE_LIMIT_WAIT,
            }
        };
        wait.min(MAX_RATE_LIMIT_WAIT)
    }

    /// True when the window is used up and has not reset yet, so a caller can hold back
    /// instead of spending a call on a certain 429.
    pub fn is_exhausted(&self, now: DateTime<Utc>) -> bool {
        self.remaining == Some(0) && self.reset_at.is_some_and(|reset| reset > now)
    }
}

/// HiBob documents epoch seconds; gateways in front of either service sometimes send a delta
/// or epoch milliseconds instead, and the magnitude tells them apart.
fn parse_reset(value: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let n: i64 = value.parse::<f64>().ok().filter(|f| f.is_finite())? as i64;
    if n < 0 {
        None
    } else if n < 1_000_000_000 {
        now.checked_add_signed(chrono::Duration::seconds(n))
    } else if n < 100_000_000_000 {
        Utc.timestamp_opt(n, 0).single()
    } else {
        Utc.timestamp_millis_opt(n).single()
    }
}

fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<u64> {
    if let Ok(secs) = value.parse::<u64>() {
        return Some(secs);
    }
    let at = DateTime::parse_from_rfc2822(value)
        .ok()?
        .with_timezone(&Utc);
    Some((at - now).num_seconds().max(0).unsigned_abs())
}

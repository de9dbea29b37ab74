//! What an export is doing (its status, in code and in words) and how it came in.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Queued,
    Running,
    Succeeded,
    NeedsAttention,
    Dead,
    /// Stopped, then cleared by a person or by a later successful submit: nothing to do.
    Resolved,
}

impl Status {
    pub const ALL: [Status; 6] = [
        Status::Queued,
        Status::Running,
        Status::Succeeded,
        Status::NeedsAttention,
        Status::Dead,
        Status::Resolved,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::Running => "running",
            Status::Succeeded => "succeeded",
            Status::NeedsAttention => "needs_attention",
            Status::Dead => "dead",
            Status::Resolved => "resolved",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// A stored status as people read it ("needs attention", never `needs_attention`), for
    /// messages and the audit trail.
    pub fn words(code: &str) -> String {
        Self::parse(code)
            .map(|s| s.label().to_lowercase())
            .unwrap_or_else(|| code.replace('_', " "))
    }

    pub fn label(self) -> &'static str {
        match self {
            Status::Queued => "Queued",
            Status::Running => "Running",
            Status::Succeeded => "Succeeded",
            Status::NeedsAttention => "Needs attention",
            Status::Dead => "Dead",
            Status::Resolved => "Resolved",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Webhook,
    Plugin,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Webhook => "webhook",
            Source::Plugin => "plugin",
        }
    }
}

/// An export's attempts in words, counted across retries: "2 of 8", or after a retry (which
/// gives a fresh allowance of `max` attempts) "3 in all; 1 of 8 since the last retry".
pub fn attempts_in_words(attempts: i64, earlier: i64, max: i64) -> String {
    if earlier <= 0 {
        return format!("{attempts} of {max}");
    }
    format!(
        "{} in all; {attempts} of {max} since the last retry",
        earlier + attempts
    )
}

#[cfg(test)]
mod tests {
    use super::attempts_in_words;

    #[test]
    fn attempts_are_counted_across_retries() {
        assert_eq!(attempts_in_words(2, 0, 8), "2 of 8");
        assert_eq!(
            attempts_in_words(1, 1, 8),
            "2 in all; 1 of 8 since the last retry"
        );
        assert_eq!(
            attempts_in_words(0, 3, 8),
            "3 in all; 0 of 8 since the last retry"
        );
    }
}

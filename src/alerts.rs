//! Telling people when exports stop, without their opening the console: a Slack-compatible
//! incoming webhook (`{"text": …}`) and e-mail over SMTP.
//!
//! Every stop is written to an outbox (`alerts`) by the worker in the same breath as the export's
//! new status, and a dispatcher of its own sends them, so a slow or failing alert channel never
//! holds an export up, and an alert survives a restart. Each channel keeps its own progress, so a
//! message that reached Slack is not sent there again because the mail server refused it.
//!
//! What is sent when:
//! - a stopped hire that starts within a week (or has started) is sent at once;
//! - the others wait for a digest: once the oldest unsent one is older than the digest window,
//!   everything pending goes out as one message, so a HiBob outage that stops fifty exports is one
//!   message, not fifty;
//! - after a stop was reported, the next export that succeeds queues one "running again" note.
//!
//! Messages carry the candidate's name, the reason, the start date and a link to the export's page:
//! never a credential (the reason is the export's own error text, which never holds one).

use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use serde::Serialize;

use crate::{
    dates,
    destination::Guard,
    outbound,
    settings::credentials::{CredentialError, CredentialKey, Credentials},
    Db,
};

mod mail;
pub mod outbox;

/// Longest wait between two tries of a failing channel.
const MAX_RETRY: Duration = Duration::from_secs(30 * 60);
/// Stops listed by name in one message; the rest are counted.
const LISTED: usize = 20;

#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Credentials(#[from] CredentialError),
    #[error("the alert webhook answered HTTP {0}")]
    WebhookStatus(u16),
    /// The destination in force fails the rules (see `Credentials::destination_problem`).
    #[error("the {0} is {1}")]
    Refused(&'static str, String),
    #[error("the alert webhook could not be reached: {0}")]
    Webhook(String),
    #[error("the e-mail settings are not usable: {0}")]
    MailSettings(String),
    /// Said in terms of the settings, never in the mail server's own words.
    #[error("{0}")]
    Mail(String),
}

/// The two ways alerts go out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Channel {
    Webhook,
    Email,
}

impl Channel {
    pub const ALL: [Channel; 2] = [Channel::Webhook, Channel::Email];

    pub fn label(self) -> &'static str {
        match self {
            Channel::Webhook => "Slack webhook",
            Channel::Email => "E-mail",
        }
    }
}

/// Where alerts go, read from the settings at each use so a change in the console applies. A
/// channel whose destination fails the rules is still set up, so its alerts wait and a test says
/// why, but nothing is sent to it.
#[derive(Clone)]
struct Targets {
    webhook: Option<Result<Webhook, String>>,
    mail: Option<Result<MailTarget, String>>,
    /// How long a non-urgent stop may wait to be sent with others.
    digest: Duration,
}

#[derive(Clone)]
struct Webhook {
    url: String,
    guard: Guard,
}

#[derive(Clone)]
struct MailTarget {
    url: String,
    from: String,
    to: Vec<String>,
    guard: Guard,
}

/// One pending stop or recovery, as a message lists it.
#[derive(Debug, Clone)]
pub struct Pending {
    pub id: i64,
    pub kind: String,
    pub urgent: bool,
    pub created_at: String,
    pub export_id: Option<i64>,
    pub candidate: Option<String>,
    pub application_id: Option<String>,
    pub status: Option<String>,
    pub start_date: Option<String>,
    pub reason: Option<String>,
    /// What changed, for a watched hire's alert.
    pub detail: Option<String>,
}

/// An alert about to be queued.
#[derive(Debug, Clone)]
pub struct NewAlert<'a> {
    pub kind: &'a str,
    pub export_id: Option<i64>,
    pub urgent: bool,
    /// Channels that are not set up count as done.
    pub webhook_done: bool,
    pub email_done: bool,
    pub detail: Option<&'a str>,
}

/// What alerts need from the database, whichever engine holds it.
#[async_trait::async_trait]
pub trait AlertOutbox: Send + Sync {
    /// The hire's start date as the watch knows it, else the export's.
    async fn start_date(&self, export_id: i64) -> Result<Option<String>, sqlx::Error>;
    async fn queue(&self, alert: &NewAlert<'_>) -> Result<(), sqlx::Error>;
    /// Whether a stop was reported since the last recovery note.
    async fn stops_unreported(&self) -> Result<bool, sqlx::Error>;
    /// Queues a recovery note if a stop was reported since the last one; whether it did.
    async fn queue_recovered(
        &self,
        webhook_done: bool,
        email_done: bool,
    ) -> Result<bool, sqlx::Error>;
    /// What is due on one channel (the webhook's, or e-mail's), oldest first.
    async fn pending(&self, webhook: bool, now: DateTime<Utc>)
        -> Result<Vec<Pending>, sqlx::Error>;
    /// Marks a batch sent on one channel, or counts a failed try and sets when to try again.
    async fn mark(
        &self,
        webhook: bool,
        ids: &[i64],
        error: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), sqlx::Error>;
}

/// The outbox and its dispatcher.
#[derive(Clone)]
pub struct Alerts {
    db: Db,
    credentials: Credentials,
    /// Links in messages point here (`PUBLIC_URL`).
    public_url: String,
    wake: std::sync::Arc<tokio::sync::Notify>,
    /// Where the instances sharing the database hear of a queued alert: one of them (the
    /// leader) sends alerts, and it may not be this one.
    outlet: Option<crate::live::Outlet>,
}

impl std::fmt::Debug for Alerts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Alerts")
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

impl Alerts {
    pub fn new(db: Db, credentials: Credentials, public_url: &str) -> Self {
        Self {
            db,
            credentials,
            public_url: public_url.trim_end_matches('/').to_owned(),
            wake: Default::default(),
            outlet: None,
        }
    }

    /// Tells the other instances sharing the database through `outlet` when an alert is queued.
    pub fn telling(mut self, outlet: crate::live::Outlet) -> Self {
        self.outlet = Some(outlet);
        self
    }

    /// Makes this process's dispatcher (where it runs) look at the outbox at once.
    pub fn wake_here(&self) {
        self.wake.notify_one();
    }

    /// Until the dispatcher is next woken.
    #[cfg(test)]
    pub(crate) async fn woken(&self) {
        self.wake.notified().await;
    }

    /// An alert was queued: the dispatcher, on this instance or another, looks at once rather
    /// than at its next poll.
    pub(crate) fn queued(&self) {
        self.wake_here();
        if let Some(outlet) = &self.outlet {
            outlet.send(crate::live::Notice::Alert);
        }
    }

    async fn targets(&self) -> Result<Targets, AlertError> {
        let text = |v: Option<secrecy::SecretString>| {
            v.map(|s| s.expose_secret().trim().to_owned())
                .filter(|s| !s.is_empty())
        };
        let creds = &self.credentials;
        let webhook = match text(creds.get(CredentialKey::AlertWebhookUrl).await?) {
            Some(url) => Some(
                match creds
                    .destination_problem(CredentialKey::AlertWebhookUrl)
                    .await?
                {
                    Some(why) => Err(why),
                    None => Ok(Webhook {
                        url,
                        guard: creds.guard_for(CredentialKey::AlertWebhookUrl),
                    }),
                },
            ),
            None => None,
        };
        let url = text(creds.get(CredentialKey::SmtpUrl).await?);
        let from = text(creds.get(CredentialKey::AlertEmailFrom).await?);
        let to = text(creds.get(CredentialKey::AlertEmailTo).await?);
        let mail = match (url, from, to) {
            (Some(url), Some(from), Some(to)) => Some(
                match creds.destination_problem(CredentialKey::SmtpUrl).await? {
                    Some(why) => Err(why),
                    None => Ok(MailTarget {
                        url,
                        from,
                        to: to
                            .split([',', ';'])
                            .map(str::trim)
                            .filter(|a| !a.is_empty())
                            .map(str::to_owned)
                            .collect(),
                        guard: creds.guard_for(CredentialKey::SmtpUrl),
                    }),
                },
            ),
            _ => None,
        };
        let digest_minutes = text(
            self.credentials
                .get(CredentialKey::AlertDigestMinutes)
                .await?,
        )
        .and_then(|m| m.parse::<u64>().ok())
        .unwrap_or(30)
        .clamp(1, 1440);
        Ok(Targets {
            webhook,
            mail,
            digest: Duration::from_secs(digest_minutes * 60),
        })
    }

    /// Whether any channel is set up.
    pub async fn configured(&self) -> Result<bool, AlertError> {
        let t = self.targets().await?;
        Ok(t.webhook.is_some() || t.mail.is_some())
    }

    /// Queues the alert for an export that just stopped (needs attention or dead). Channels not
    /// set up now are skipped for it.
    pub async fn stopped(&self, export_id: i64) -> Result<(), AlertError> {
        self.queue("stopped", export_id, None).await
    }

    /// Queues the alert for a watched hire that changed in Pinpoint after its export, or fell
    /// through; `detail` says what (see `watch`).
    pub async fn changed(&self, export_id: i64, detail: &str) -> Result<(), AlertError> {
        let detail: String = detail.chars().take(1000).collect();
        self.queue("changed", export_id, Some(&detail)).await
    }

    /// Writes one alert about an export to the outbox, urgent when the hire starts within a week
    /// (by the start the watch knows, else the export's); skipped when no channel is set up.
    async fn queue(
        &self,
        kind: &str,
        export_id: i64,
        detail: Option<&str>,
    ) -> Result<(), AlertError> {
        let targets = self.targets().await?;
        if targets.webhook.is_none() && targets.mail.is_none() {
            return Ok(());
        }
        let today = Utc::now().date_naive();
        let start = self.db.alerts().start_date(export_id).await?;
        let urgent = dates::is_urgent(start.as_deref().and_then(|s| dates::days_until(s, today)));
        let (webhook_done, email_done) = (targets.webhook.is_none(), targets.mail.is_none());
        self.db
            .alerts()
            .queue(&NewAlert {
                kind,
                export_id: Some(export_id),
                urgent,
                webhook_done,
                email_done,
                detail,
            })
            .await?;
        self.queued();
        Ok(())
    }

    /// An export succeeded: if stops were reported since the last recovery note, queue one.
    pub async fn succeeded(&self) -> Result<(), AlertError> {
        // called after every successful export: settle the usual case (nothing was reported) with
        // one read before the settings are read
        let unreported = self.db.alerts().stops_unreported().await?;
        if !unreported {
            return Ok(());
        }
        let targets = self.targets().await?;
        if targets.webhook.is_none() && targets.mail.is_none() {
            return Ok(());
        }
        let (webhook_done, email_done) = (targets.webhook.is_none(), targets.mail.is_none());
        let queued = self
            .db
            .alerts()
            .queue_recovered(webhook_done, email_done)
            .await?;
        if queued {
            self.queued();
        }
        Ok(())
    }

    /// Sends what is due on every channel; each failure is logged and tried again later.
    pub async fn dispatch(&self, now: DateTime<Utc>) -> Result<usize, AlertError> {
        let targets = self.targets().await?;
        let mut sent = 0;
        for channel in Channel::ALL {
            let configured = match channel {
                Channel::Webhook => targets.webhook.is_some(),
                Channel::Email => targets.mail.is_some(),
            };
            if !configured {
                continue;
            }
            let pending = self
                .db
                .alerts()
                .pending(channel == Channel::Webhook, now)
                .await?;
            let batch = due(&pending, now, targets.digest);
            if batch.is_empty() {
                continue;
            }
            let text = compose(&batch, &self.public_url, channel);
            let ids: Vec<i64> = batch.iter().map(|p| p.id).collect();
            match self.send(channel, &targets, &text).await {
                Ok(()) => {
                    self.db
                        .alerts()
                        .mark(channel == Channel::Webhook, &ids, None, now)
                        .await?;
                    sent += 1;
                }
                Err(e) => {
                    tracing::warn!(channel = channel.label(), error = %e, "an alert could not be sent; it will be tried again");
                    self.db
                        .alerts()
                        .mark(channel == Channel::Webhook, &ids, Some(&e.to_string()), now)
                        .await?;
                }
            }
        }
        Ok(sent)
    }

    async fn send(
        &self,
        channel: Channel,
        targets: &Targets,
        text: &str,
    ) -> Result<(), AlertError> {
        match channel {
            Channel::Webhook => match &targets.webhook {
                None => Ok(()),
                Some(Err(why)) => Err(AlertError::Refused("alert webhook", why.clone())),
                Some(Ok(hook)) => post_webhook(hook, text).await,
            },
            Channel::Email => match &targets.mail {
                None => Ok(()),
                Some(Err(why)) => Err(AlertError::Refused("mail server (SMTP URL)", why.clone())),
                Some(Ok(mail)) => mail::send(mail, text).await,
            },
        }
    }

    /// Sends a test message on every channel set up now, and says how each went.
    pub async fn send_test(&self) -> Result<Vec<(Channel, Result<(), String>)>, AlertError> {
        let targets = self.targets().await?;
        let text = format!(
            "Test alert from the Pinpoint → HiBob console ({}). Stopped exports will be reported here.",
            self.public_url
        );
        let mut results = Vec::new();
        for channel in Channel::ALL {
            let configured = match channel {
                Channel::Webhook => targets.webhook.is_some(),
                Channel::Email => targets.mail.is_some(),
            };
            if configured {
                let result = self
                    .send(channel, &targets, &text)
                    .await
                    .map_err(|e| e.to_string());
                results.push((channel, result));
            }
        }
        Ok(results)
    }

    /// Sends due alerts until `shutdown`, waking when one is queued and at least every 15 s
    /// (digests fall due with time alone).
    pub async fn run(self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                return;
            }
            if let Err(e) = self.dispatch(Utc::now()).await {
                tracing::warn!(error = %e, "cannot send alerts now");
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(15)) => {}
                _ = shutdown.changed() => {}
            }
        }
    }
}

/// From one channel's pending alerts, what to send now: everything once a digest is due (the
/// oldest non-urgent one has waited `digest`), else the urgent ones and recovery notes.
fn due(pending: &[Pending], now: DateTime<Utc>, digest: Duration) -> Vec<Pending> {
    let waited_enough = |p: &Pending| {
        DateTime::parse_from_rfc3339(&p.created_at)
            .map(|t| {
                (now - t.with_timezone(&Utc))
                    .to_std()
                    .is_ok_and(|waited| waited >= digest)
            })
            .unwrap_or(true)
    };
    if pending.iter().any(|p| !p.urgent && waited_enough(p)) {
        return pending.to_vec();
    }
    pending.iter().filter(|p| p.urgent).cloned().collect()
}

/// How long a channel waits before trying an alert again after its `tries`-th failure.
pub fn retry_delay(tries: i64) -> Duration {
    let exponent = u32::try_from(tries.clamp(1, 10) - 1).unwrap_or(0);
    Duration::from_secs(30)
        .saturating_mul(2u32.saturating_pow(exponent))
        .min(MAX_RETRY)
}

/// When to try an alert again after its `tries`-th failure at `now`, as stored.
pub fn retry_at(tries: i64, now: DateTime<Utc>) -> String {
    let wait = retry_delay(tries);
    crate::db::time_text(now + chrono::Duration::from_std(wait).unwrap_or_default())
}

/// A failed try's error as stored: at most 300 characters.
pub fn error_text(error: &str) -> String {
    error.chars().take(300).collect()
}

/// Posts `{"text": …}` to the webhook, connecting only where its guard allows.
async fn post_webhook(hook: &Webhook, text: &str) -> Result<(), AlertError> {
    const SERVICE: &str = "the alert webhook";
    let http = outbound::http_client(Duration::from_secs(10), &hook.guard)
        .map_err(|e| AlertError::Webhook(outbound::describe_transport_error(SERVICE, &e)))?;
    let request = http
        .post(&hook.url)
        .json(&serde_json::json!({ "text": text }));
    let answer = outbound::send_checked(&hook.guard, request)
        .await
        .map_err(|e| AlertError::Webhook(e.describe(SERVICE)))?;
    if answer.status().is_success() {
        Ok(())
    } else {
        Err(AlertError::WebhookStatus(answer.status().as_u16()))
    }
}

/// Slack reads `&`, `<` and `>` as markup (`<!channel>`, `<https://x|label>`), so every text a
/// message quotes has them escaped as Slack asks; e-mail is plain text and quotes as is.
fn quote(channel: Channel, text: &str) -> String {
    match channel {
        Channel::Webhook => text
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;"),
        Channel::Email => text.to_owned(),
    }
}

/// One message for a batch: the stops (urgent first, at most [`LISTED`] by name), then any
/// recovery note. What comes from the exports is quoted for `channel`.
fn compose(batch: &[Pending], public_url: &str, channel: Channel) -> String {
    let of_kind = |kind: &str| {
        let mut these: Vec<&Pending> = batch.iter().filter(|p| p.kind == kind).collect();
        these.sort_by_key(|p| {
            (
                !p.urgent,
                p.start_date.clone().unwrap_or_else(|| "9999".into()),
            )
        });
        these
    };
    let stops = of_kind("stopped");
    let changed = of_kind("changed");
    let recovered = batch.iter().any(|p| p.kind == "recovered");
    let mut lines = Vec::new();
    match stops.len() {
        0 => {}
        1 => lines.push("An export to HiBob stopped and needs someone:".to_owned()),
        n => lines.push(format!("{n} exports to HiBob stopped and need someone:")),
    }
    for p in stops.iter().take(LISTED) {
        let status = match p.status.as_deref() {
            Some("dead") => "dead",
            _ => "needs attention",
        };
        let reason = p.reason.as_deref().unwrap_or("no reason recorded");
        lines.push(listed(p, Some(status), reason, public_url, channel));
    }
    if stops.len() > LISTED {
        lines.push(format!(
            "…and {} more: {public_url}/exports?status=needs_attention",
            stops.len() - LISTED
        ));
    }
    match changed.len() {
        0 => {}
        1 => lines.push("A hire changed in Pinpoint after its export to HiBob:".to_owned()),
        n => lines.push(format!(
            "{n} hires changed in Pinpoint after their export to HiBob:"
        )),
    }
    for p in changed.iter().take(LISTED) {
        let detail = p.detail.as_deref().unwrap_or_default();
        lines.push(listed(p, None, detail, public_url, channel));
    }
    if recovered {
        lines.push("Exports are running again: an export to HiBob has succeeded since the stop above was reported.".to_owned());
    }
    lines.join("\n")
}

/// One hire's line: who, when they start, `status` if any, what happened, and the link.
fn listed(
    p: &Pending,
    status: Option<&str>,
    what: &str,
    public_url: &str,
    channel: Channel,
) -> String {
    let who = p
        .candidate
        .clone()
        .unwrap_or_else(|| format!("Application {}", p.application_id.as_deref().unwrap_or("?")));
    let start = match p.start_date.as_deref().filter(|s| !s.is_empty()) {
        Some(day) => format!("starts {day}"),
        None => "start date unknown".to_owned(),
    };
    let urgent = if p.urgent { "URGENT: " } else { "" };
    let status = status.map(|s| format!(", {s}")).unwrap_or_default();
    let what: String = what.chars().take(300).collect();
    let link = p
        .export_id
        .map(|id| format!(" {public_url}/exports/{id}"))
        .unwrap_or_default();
    format!(
        "• {urgent}{} ({}{status}): {}{link}",
        quote(channel, &who),
        quote(channel, &start),
        quote(channel, &what)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db;

    fn stop(id: i64, urgent: bool, minutes_ago: i64, now: DateTime<Utc>) -> Pending {
        Pending {
            id,
            kind: "stopped".into(),
            urgent,
            created_at: db::time_text(now - chrono::Duration::minutes(minutes_ago)),
            export_id: Some(id),
            candidate: Some(format!("Candidate {id}")),
            application_id: Some(id.to_string()),
            status: Some("needs_attention".into()),
            start_date: Some("2027-01-04".into()),
            reason: Some("HiBob: 503".into()),
            detail: None,
        }
    }

    #[test]
    fn a_changed_hire_is_listed_with_what_changed() {
        let now = Utc::now();
        let mut change = stop(8, true, 0, now);
        change.kind = "changed".into();
        change.detail =
            Some("changed in Pinpoint since the export: Start date 2027-01-04 → 2027-01-11".into());
        let text = compose(
            &[change, stop(9, true, 0, now)],
            "https://c",
            Channel::Email,
        );
        assert!(
            text.contains("A hire changed in Pinpoint after its export"),
            "{text}"
        );
        assert!(
            text.contains("Start date 2027-01-04 → 2027-01-11"),
            "{text}"
        );
        assert!(text.contains("https://c/exports/8"), "{text}");
        assert!(
            text.contains("An export to HiBob stopped"),
            "stops are still listed: {text}"
        );
    }

    #[test]
    fn urgent_ones_go_at_once_the_others_wait_for_the_digest() {
        let now = Utc::now();
        let digest = Duration::from_secs(30 * 60);
        let pending = vec![stop(1, false, 5, now), stop(2, true, 1, now)];
        let batch = due(&pending, now, digest);
        assert_eq!(batch.iter().map(|p| p.id).collect::<Vec<_>>(), [2]);
        let pending = vec![stop(1, false, 31, now), stop(3, false, 1, now)];
        assert_eq!(due(&pending, now, digest).len(), 2, "the digest takes all");
        assert!(due(&[stop(4, false, 1, now)], now, digest).is_empty());
    }

    #[test]
    fn a_message_names_the_candidate_the_reason_the_start_and_a_link() {
        let now = Utc::now();
        let text = compose(
            &[stop(7, true, 0, now)],
            "https://console.example.com",
            Channel::Email,
        );
        assert!(text.contains("Candidate 7"), "{text}");
        assert!(text.contains("URGENT"), "{text}");
        assert!(text.contains("starts 2027-01-04"), "{text}");
        assert!(text.contains("HiBob: 503"), "{text}");
        assert!(
            text.contains("https://console.example.com/exports/7"),
            "{text}"
        );
        let many: Vec<_> = (0..50).map(|i| stop(i, false, 40, now)).collect();
        let text = compose(&many, "https://c", Channel::Email);
        assert!(text.starts_with("50 exports"), "{text}");
        assert!(text.contains("…and 30 more"), "{text}");
        assert!(text.lines().count() <= LISTED + 2);
    }

    #[test]
    fn retries_back_off_to_a_cap() {
        assert_eq!(retry_delay(1), Duration::from_secs(30));
        assert_eq!(retry_delay(2), Duration::from_secs(60));
        assert_eq!(retry_delay(50), MAX_RETRY);
    }

    #[test]
    fn slack_markup_in_what_a_message_quotes_is_escaped() {
        let now = Utc::now();
        let mut hostile = stop(9, true, 0, now);
        hostile.candidate = Some("<!channel> <https://x.example|Fix> & co".into());
        hostile.reason = Some("HiBob: <b>bad</b>".into());
        let slack = compose(&[hostile.clone()], "https://c", Channel::Webhook);
        assert!(
            slack.contains("&lt;!channel&gt; &lt;https://x.example|Fix&gt; &amp; co"),
            "{slack}"
        );
        assert!(slack.contains("HiBob: &lt;b&gt;bad&lt;/b&gt;"), "{slack}");
        assert!(!slack.contains("<!channel>"), "{slack}");
        let mail = compose(&[hostile], "https://c", Channel::Email);
        assert!(mail.contains("<!channel>"), "e-mail quotes as is: {mail}");
    }
}

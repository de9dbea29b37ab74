//! Reading the webhook log: every delivery with its outcome and cause, filtered and paged; one
//! delivery in full (headers re-checked for secrets, body as stored); and re-processing a stored
//! delivery through the intake path.
//!
//! Who may re-process what:
//! - A delivery whose signature verified at intake (accepted, duplicate, or refused only because
//!   its body could not be read then) may be re-processed by an operator or an admin.
//! - A delivery whose signature did not verify, or was never checked because no signing secret
//!   was set, proves nothing about who sent it. Only an admin may re-process it, and only after
//!   confirming that the hire is genuine; the audit log records that confirmation. The export
//!   still reads the candidate from Pinpoint's own API by its id, so a forged body can at most
//!   name an application that exists there.
//! - Ignored events, bodies that are not a hire with an application id, and bodies over the size
//!   limit (not kept) cannot be re-processed.

use serde::{Deserialize, Serialize};
use sqlx::{QueryBuilder, Sqlite, SqlitePool};

use crate::{
    access::audit,
    access::users::{Actor, Role},
    db,
    exports::{
        queue::{QueueError, Status},
        storage::ExportQueue,
    },
    filters::{self, DateRange, FilterError},
    webhooks::intake::{self as webhook_intake, Outcome},
};

pub const OUTCOMES: [&str; 4] = ["accepted", "duplicate", "ignored", "rejected"];

/// Filters of the webhook log. Every field is optional; text is matched literally.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DeliveryFilter {
    pub outcome: Option<String>,
    /// The event name exactly, e.g. `application_hired`.
    pub event: Option<String>,
    /// An application id (exactly), the start of a body hash, or words of the reason.
    pub search: Option<String>,
    /// Received on or after this day (`YYYY-MM-DD`, UTC).
    pub received_from: Option<String>,
    /// Received on or before this day (`YYYY-MM-DD`, UTC).
    pub received_to: Option<String>,
    /// Keyset pagination: only deliveries listed after this one.
    pub before_id: Option<i64>,
    pub limit: Option<i64>,
}

/// A filter checked and reduced to what the queries bind.
pub struct Criteria {
    pub outcome: Option<&'static str>,
    pub event: Option<String>,
    /// An application id exactly, the start of a body hash, or text in the reason
    /// ([`search_patterns`]).
    pub search: Option<String>,
    pub dates: DateRange,
}

/// A search text's `LIKE` patterns (with `\` escaping): the start of a body hash (stored in
/// lower case) and text anywhere in the reason, both case-blind.
pub fn search_patterns(term: &str) -> (String, String) {
    let hash_prefix = format!("{}%", filters::escape_like(&term.to_ascii_lowercase()));
    (hash_prefix, db::like_pattern(term))
}

impl DeliveryFilter {
    /// Whether the filter makes sense, and if not, why; [`list`] treats an invalid filter as
    /// matching nothing.
    pub fn check(&self) -> Result<(), FilterError> {
        self.criteria().map(|_| ())
    }

    /// Deliveries per page: 50 unless asked, never more than 200.
    pub fn page_size(&self) -> i64 {
        self.limit.unwrap_or(50).clamp(1, 200)
    }

    /// What the filter selects, or why it selects nothing.
    pub fn criteria(&self) -> Result<Criteria, FilterError> {
        Ok(Criteria {
            outcome: filters::choice("outcome", self.outcome.as_deref(), &OUTCOMES)?,
            event: filters::search_term(self.event.as_deref())?,
            search: filters::search_term(self.search.as_deref())?,
            dates: DateRange::parse(self.received_from.as_deref(), self.received_to.as_deref())?,
        })
    }
}

/// One line of the webhook log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct LogLine {
    pub id: i64,
    pub received_at: String,
    pub outcome: String,
    pub reason: String,
    pub event: Option<String>,
    pub application_id: Option<String>,
    pub body_sha256: String,
    pub export_id: Option<i64>,
}

/// Newest first (by receipt, then id), a page at a time after the last delivery shown.
pub async fn list(pool: &SqlitePool, filter: &DeliveryFilter) -> Result<Vec<LogLine>, sqlx::Error> {
    let Ok(c) = filter.criteria() else {
        return Ok(Vec::new());
    };
    let limit = filter.page_size();
    let anchor = match filter.before_id {
        None => None,
        Some(before) => {
            let at = sqlx::query_scalar!(
                "SELECT received_at FROM webhook_deliveries WHERE id <= ? ORDER BY id DESC LIMIT 1",
                before
            )
            .fetch_optional(pool)
            .await?;
            match at {
                Some(at) => Some((at, before)),
                None => return Ok(Vec::new()),
            }
        }
    };
    let mut q = QueryBuilder::<Sqlite>::new(
        "SELECT id, received_at, outcome, reason, event, application_id, body_sha256, export_id \
         FROM webhook_deliveries WHERE TRUE",
    );
    if let Some(outcome) = c.outcome {
        q.push(" AND outcome = ").push_bind(outcome);
    }
    if let Some(event) = c.event {
        q.push(" AND event = ").push_bind(event);
    }
    if let Some(start) = c.dates.start {
        q.push(" AND received_at >= ").push_bind(start);
    }
    if let Some(end) = c.dates.end_exclusive {
        q.push(" AND received_at < ").push_bind(end);
    }
    if let Some(term) = c.search {
        let (hash_prefix, reason) = search_patterns(&term);
        q.push(" AND (application_id = ")
            .push_bind(term.clone())
            .push(" OR body_sha256 LIKE ")
            .push_bind(hash_prefix)
            .push(" ESCAPE '\\' OR reason LIKE ")
            .push_bind(reason)
            .push(" ESCAPE '\\')");
    }
    if let Some((at, before)) = anchor {
        q.push(" AND received_at <= ")
            .push_bind(at.clone())
            .push(" AND (received_at < ")
            .push_bind(at)
            .push(" OR id < ")
            .push_bind(before)
            .push(")");
    }
    q.push(" ORDER BY received_at DESC, id DESC LIMIT ")
        .push_bind(limit);
    q.build_query_as::<LogLine>().fetch_all(pool).await
}

/// One delivery in full, for its detail page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryDetail {
    pub id: i64,
    pub received_at: String,
    pub outcome: String,
    pub reason: String,
    pub event: Option<String>,
    pub application_id: Option<String>,
    pub body_sha256: String,
    /// As received (cut at the stored limit); candidate data, for signed-in eyes only.
    pub body: String,
    /// Name and value, with anything that could carry a secret shown as redacted.
    pub headers: Vec<(String, String)>,
    pub client_ip: Option<String>,
    pub export_id: Option<i64>,
    /// The status of the export it started, if that export still exists.
    pub export_status: Option<String>,
    pub reprocess: Eligibility,
    /// The delivery this one re-processed, when it is a re-processing.
    pub reprocessed_from: Option<i64>,
    /// Its re-processings, oldest first: the new delivery and the export it made or named.
    pub reprocessed_as: Vec<(i64, Option<i64>)>,
}

pub async fn find(pool: &SqlitePool, id: i64) -> Result<Option<DeliveryDetail>, sqlx::Error> {
    let Some(row) = sqlx::query!(
        r#"SELECT d.id AS "id!", d.received_at, d.outcome, d.reason, d.event, d.application_id,
                  d.body_sha256, d.body, d.headers, d.client_ip, d.export_id,
                  d.reprocessed_from, e.status AS "export_status?"
           FROM webhook_deliveries d LEFT JOIN exports e ON e.id = d.export_id
           WHERE d.id = ?"#,
        id
    )
    .fetch_optional(pool)
    .await?
    else {
        return Ok(None);
    };
    let reprocess = eligibility(&row.outcome, &row.reason, row.body.as_bytes());
    let reprocessed_as = sqlx::query!(
        r#"SELECT id AS "id!", export_id FROM webhook_deliveries
           WHERE reprocessed_from = ? ORDER BY id"#,
        id
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|r| (r.id, r.export_id))
    .collect();
    Ok(Some(DeliveryDetail {
        reprocessed_from: row.reprocessed_from,
        reprocessed_as,
        id: row.id,
        received_at: row.received_at,
        outcome: row.outcome,
        reason: row.reason,
        event: row.event,
        application_id: row.application_id,
        body_sha256: row.body_sha256,
        body: row.body,
        headers: shown_headers(&row.headers),
        client_ip: row.client_ip,
        export_id: row.export_id,
        export_status: row.export_status,
        reprocess,
    }))
}

/// Header names whose values are never shown, whatever intake stored: signatures, cookies,
/// credentials of any kind.
fn is_secret_header(name: &str) -> bool {
    const WORDS: [&str; 10] = [
        "authorization",
        "cookie",
        "signature",
        "hmac",
        "token",
        "secret",
        "api-key",
        "apikey",
        "password",
        "session",
    ];
    let name = name.to_ascii_lowercase();
    WORDS.iter().any(|w| name.contains(w))
}

/// The stored headers as shown: intake already redacted the secret-bearing ones; anything that
/// still looks like one (an older row, a header intake did not know) is redacted again here.
pub fn shown_headers(stored: &str) -> Vec<(String, String)> {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(stored)
    else {
        return Vec::new();
    };
    let mut out: Vec<(String, String)> = map
        .into_iter()
        .map(|(name, value)| {
            let text = value
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| value.to_string());
            let shown = if is_secret_header(&name) && !text.starts_with("[redacted") {
                "[redacted]".to_owned()
            } else {
                text
            };
            (name, shown)
        })
        .collect();
    out.sort();
    out
}

/// The body for reading: JSON indented, anything else as it came.
pub fn pretty_body(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| body.to_owned())
}

/// Whether a stored delivery may be re-processed, and by whom (see the module comment).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Eligibility {
    /// Its signature verified when it arrived: operators and admins.
    Verified,
    /// Its signature did not verify or was not checked: admins, after confirming.
    Unverified,
    /// Not possible, and why.
    Refused(String),
}

pub fn eligibility(outcome: &str, reason: &str, body: &[u8]) -> Eligibility {
    if outcome == "rejected" && reason.starts_with(webhook_intake::REASON_TOO_LARGE) {
        return Eligibility::Refused(
            "its body was over the size limit and was not kept, so there is nothing to run again"
                .into(),
        );
    }
    if outcome == "rejected" && reason.contains(webhook_intake::NOTE_BODY_CUT) {
        return Eligibility::Refused(
            "it was refused and larger than any Pinpoint delivery, so only the start of its body \
             was kept; there is nothing whole to run again"
                .into(),
        );
    }
    if body.is_empty() && matches!(outcome, "accepted" | "duplicate") {
        return Eligibility::Refused(
            "its body is no longer kept (past the retention window, or the candidate was erased), \
             so there is nothing to run again"
                .into(),
        );
    }
    if let Some(why) = webhook_intake::not_a_hire(body) {
        return Eligibility::Refused(format!(
            "only an application_hired event with an application id can start an export, and {why}"
        ));
    }
    match outcome {
        "accepted" | "duplicate" => Eligibility::Verified,
        // verification comes before reading the body: a body refused as unreadable was signed
        "rejected" if reason.starts_with(webhook_intake::REASON_UNPARSEABLE) => {
            Eligibility::Verified
        }
        _ => Eligibility::Unverified,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReprocessError {
    #[error("There is no webhook delivery {0}.")]
    NotFound(i64),
    #[error("Delivery {id} cannot be re-processed: {why}.")]
    Refused { id: i64, why: String },
    #[error("Delivery {0} was not signed with the webhook secret, so only an admin may re-process it, after checking in Pinpoint that the hire is genuine.")]
    NeedsAdmin(i64),
    #[error("Delivery {0} was not signed with the webhook secret. Check in Pinpoint that this candidate really was hired, then tick the confirmation and re-process again.")]
    NeedsConfirmation(i64),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// What re-processing came to, in words and links.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReprocessReport {
    /// The delivery row recording this run.
    pub delivery_id: i64,
    pub export_id: Option<i64>,
    pub export_created: bool,
    /// A stopped export was queued again.
    pub retried: bool,
    pub message: String,
}

/// Runs delivery `id` through intake again on behalf of `actor` (whose role is `role`), as a
/// fresh delivery would be: the export is created if the hire has none; if it has one that
/// stopped, it is retried (by [`follow_up`], which the caller runs next with its export queue);
/// otherwise its state is reported. `confirmed` is the admin's confirmation for a delivery whose
/// signature did not verify. Audited.
pub async fn reprocess(
    pool: &SqlitePool,
    actor: &Actor,
    role: Role,
    id: i64,
    confirmed: bool,
) -> Result<Reprocessed, ReprocessError> {
    let row = sqlx::query!(
        "SELECT outcome, reason, body FROM webhook_deliveries WHERE id = ?",
        id
    )
    .fetch_optional(pool)
    .await?
    .ok_or(ReprocessError::NotFound(id))?;
    let unverified = permission(id, &row.outcome, &row.reason, &row.body, role, confirmed)?;
    let mut tx = db::begin_write(pool).await?;
    let outcome = webhook_intake::reprocess_in(
        &mut tx,
        row.body.as_bytes(),
        note(id, actor),
        actor.client_ip.clone(),
    )
    .await?;
    let done = written(id, outcome)?;
    sqlx::query!(
        "UPDATE webhook_deliveries SET reprocessed_from = ? WHERE id = ?",
        id,
        done.delivery_id
    )
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        actor,
        REPROCESSED_ACTION,
        Some(&delivery_target(id)),
        &audit_detail(&done, unverified),
    )
    .await?;
    tx.commit().await?;
    Ok(done)
}

/// The audit action of a re-processing.
pub const REPROCESSED_ACTION: &str = "webhook.reprocessed";

/// A delivery as the audit log names it.
pub fn delivery_target(id: i64) -> String {
    format!("delivery {id}")
}

/// Whether `role` may re-process stored delivery `id` (its outcome, reason and body), with the
/// admin's `confirmed` when it was not verified; `Ok(true)` for an unverified one let through.
pub fn permission(
    id: i64,
    outcome: &str,
    reason: &str,
    body: &str,
    role: Role,
    confirmed: bool,
) -> Result<bool, ReprocessError> {
    match eligibility(outcome, reason, body.as_bytes()) {
        Eligibility::Refused(why) => Err(ReprocessError::Refused { id, why }),
        Eligibility::Verified if role.allows(Role::Operator) => Ok(false),
        Eligibility::Verified => Err(ReprocessError::Refused {
            id,
            why: "your role does not allow re-processing; ask an operator or an admin".into(),
        }),
        Eligibility::Unverified if !role.allows(Role::Admin) => Err(ReprocessError::NeedsAdmin(id)),
        Eligibility::Unverified if !confirmed => Err(ReprocessError::NeedsConfirmation(id)),
        Eligibility::Unverified => Ok(true),
    }
}

/// What the new delivery row of a re-processing says it came from.
pub fn note(id: i64, actor: &Actor) -> String {
    format!("re-processed from delivery {id} by {}", actor.email)
}

/// What a re-processing wrote, before its follow-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reprocessed {
    /// The delivery re-processed.
    pub id: i64,
    /// The new delivery row recording the run.
    pub delivery_id: i64,
    pub export_id: i64,
    pub created: bool,
}

/// The new delivery's outcome as a re-processing's result: a hire, new or known.
pub fn written(id: i64, outcome: Outcome) -> Result<Reprocessed, ReprocessError> {
    match outcome {
        Outcome::Accepted {
            delivery_id,
            export_id,
        } => Ok(Reprocessed {
            id,
            delivery_id,
            export_id,
            created: true,
        }),
        Outcome::Duplicate {
            delivery_id,
            export_id,
            ..
        } => Ok(Reprocessed {
            id,
            delivery_id,
            export_id,
            created: false,
        }),
        // eligibility read the same body as a hire; anything else means it changed under us
        other => Err(ReprocessError::Refused {
            id,
            why: format!("the body no longer reads as a hire ({other:?})"),
        }),
    }
}

/// The audit detail of a re-processing.
pub fn audit_detail(done: &Reprocessed, unverified: bool) -> String {
    let mut detail = format!(
        "new delivery {}; export {} {}",
        done.delivery_id,
        done.export_id,
        if done.created {
            "created"
        } else {
            "already existed"
        }
    );
    if unverified {
        detail.push_str("; signature not verified, hire confirmed by the admin");
    }
    detail
}

/// After [`reprocess`] committed: a hire that already had an export that stopped is retried
/// (with the current mapping, as an operator's retry), and the report says what came of it.
pub async fn follow_up(
    queue: &dyn ExportQueue,
    actor: &Actor,
    done: Reprocessed,
) -> Result<ReprocessReport, ReprocessError> {
    if done.created {
        return report(&done, "", None);
    }
    let status = queue
        .find(done.export_id)
        .await?
        .map(|e| e.status)
        .unwrap_or_default();
    let retried = if stopped(&status) {
        Some(queue.retry(actor, done.export_id).await.map(|_| ()))
    } else {
        None
    };
    report(&done, &status, retried)
}

/// Whether an export in `status` is one a re-processing retries.
pub fn stopped(status: &str) -> bool {
    matches!(
        Status::parse(status),
        Some(Status::NeedsAttention | Status::Dead)
    )
}

/// What a re-processing came to: its export created, or found in `status` and, when it had
/// stopped, `retried` with this result.
pub fn report(
    done: &Reprocessed,
    status: &str,
    retried: Option<Result<(), QueueError>>,
) -> Result<ReprocessReport, ReprocessError> {
    let (id, export_id) = (done.id, done.export_id);
    let mut report = ReprocessReport {
        delivery_id: done.delivery_id,
        export_id: Some(export_id),
        export_created: done.created,
        retried: false,
        message: String::new(),
    };
    report.message = match retried {
        _ if done.created => {
            format!("Delivery {id} was re-processed: export {export_id} was created and is queued.")
        }
        Some(Ok(())) => {
            report.retried = true;
            format!(
                "This hire already has export {export_id}, which had stopped ({}); it is queued for another attempt.",
                status_words(status)
            )
        }
        Some(Err(QueueError::NotRetryable { why, .. })) => format!(
            "This hire already has export {export_id} ({}); it was not retried because {why}.",
            status_words(status)
        ),
        Some(Err(QueueError::NotFound(_))) => format!("Export {export_id} disappeared meanwhile."),
        Some(Err(QueueError::Db(e))) => return Err(e.into()),
        None => format!(
            "This hire already has export {export_id}, which is {}; nothing was started again.",
            status_words(status)
        ),
    };
    Ok(report)
}

fn status_words(status: &str) -> String {
    Status::parse(status)
        .map(|s| s.label().to_lowercase())
        .unwrap_or_else(|| status.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HIRED: &str = r#"{"event":"application_hired","data":{"application":{"id":7}}}"#;

    #[test]
    fn secrets_in_stored_headers_are_redacted_again() {
        let stored = r#"{"pinpoint-hmac-sha256":"[redacted, 44 characters]","x-hub-signature":"sha1=abc",
            "Cookie":"s=1","user-agent":"Pinpoint","x-auth-token":"t","authorization":"Bearer x"}"#;
        let shown = shown_headers(stored);
        let text = format!("{shown:?}");
        for secret in ["sha1=abc", "s=1", "\"t\"", "Bearer"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert!(shown.contains(&("user-agent".into(), "Pinpoint".into())));
        assert!(shown.contains(&(
            "pinpoint-hmac-sha256".into(),
            "[redacted, 44 characters]".into()
        )));
        assert!(shown_headers("not json").is_empty());
    }

    #[test]
    fn bodies_are_pretty_when_json() {
        assert!(pretty_body(HIRED).contains("\n  \"event\""));
        assert_eq!(pretty_body("{oops"), "{oops");
    }

    #[test]
    fn who_may_reprocess_what() {
        let hire = HIRED.as_bytes();
        match eligibility("accepted", "", b"") {
            Eligibility::Refused(why) => assert!(why.contains("no longer kept"), "{why}"),
            other => panic!("a blanked body cannot run again: {other:?}"),
        }
        assert_eq!(eligibility("accepted", "", hire), Eligibility::Verified);
        assert_eq!(
            eligibility("duplicate", "application already hired: export 1", hire),
            Eligibility::Verified
        );
        assert_eq!(
            eligibility("rejected", "unparseable: was once unreadable", hire),
            Eligibility::Verified
        );
        assert_eq!(
            eligibility("rejected", "bad signature: does not match", hire),
            Eligibility::Unverified
        );
        assert_eq!(
            eligibility("rejected", webhook_intake::REASON_NO_SECRET, hire),
            Eligibility::Unverified
        );
        for (outcome, reason, body) in [
            ("rejected", "body too large", &b""[..]),
            ("rejected", "unparseable: not JSON", &b"{oops"[..]),
            (
                "ignored",
                "not an event this console acts on",
                &br#"{"event":"application_created","data":{"application":{"id":1}}}"#[..],
            ),
            (
                "rejected",
                "bad signature: x",
                &br#"{"event":"application_hired","data":{}}"#[..],
            ),
        ] {
            assert!(
                matches!(eligibility(outcome, reason, body), Eligibility::Refused(_)),
                "{outcome} {reason}"
            );
        }
    }

    #[tokio::test]
    async fn filters_and_pages_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let pool = db::open(&format!("sqlite://{}/l.db", dir.path().display()))
            .await
            .unwrap();
        for (i, (outcome, event, app, reason, at)) in [
            (
                "accepted",
                "application_hired",
                "1",
                "",
                "2026-11-01T10:00:00.000Z",
            ),
            (
                "rejected",
                "",
                "",
                "bad signature: 100% wrong",
                "2026-11-02T10:00:00.000Z",
            ),
            (
                "duplicate",
                "application_hired",
                "1",
                "application already hired",
                "2026-11-03T10:00:00.000Z",
            ),
            (
                "ignored",
                "application_created",
                "2",
                "not acted on",
                "2026-11-04T10:00:00.000Z",
            ),
        ]
        .into_iter()
        .enumerate()
        {
            let event = (!event.is_empty()).then_some(event);
            let app = (!app.is_empty()).then_some(app);
            let hash = format!("{i:02}abcdef");
            sqlx::query(
                "INSERT INTO webhook_deliveries (received_at, outcome, reason, event, application_id, body_sha256, body)
                 VALUES (?, ?, ?, ?, ?, ?, '{}')",
            )
            .bind(at)
            .bind(outcome)
            .bind(reason)
            .bind(event)
            .bind(app)
            .bind(hash)
            .execute(&pool)
            .await
            .unwrap();
        }
        let ids = |rows: Vec<LogLine>| rows.into_iter().map(|r| r.id).collect::<Vec<_>>();
        let all = list(&pool, &DeliveryFilter::default()).await.unwrap();
        assert_eq!(ids(all), [4, 3, 2, 1]);
        let f = |f: DeliveryFilter| {
            let pool = pool.clone();
            async move { ids(list(&pool, &f).await.unwrap()) }
        };
        assert_eq!(
            f(DeliveryFilter {
                outcome: Some("rejected".into()),
                ..Default::default()
            })
            .await,
            [2]
        );
        assert_eq!(
            f(DeliveryFilter {
                event: Some("application_hired".into()),
                ..Default::default()
            })
            .await,
            [3, 1]
        );
        assert_eq!(
            f(DeliveryFilter {
                search: Some("2".into()),
                ..Default::default()
            })
            .await,
            [4],
            "an application id matches exactly"
        );
        assert_eq!(
            f(DeliveryFilter {
                search: Some("02ABC".into()),
                ..Default::default()
            })
            .await,
            [3],
            "a hash matches by its start"
        );
        assert_eq!(
            f(DeliveryFilter {
                search: Some("100%".into()),
                ..Default::default()
            })
            .await,
            [2]
        );
        assert!(
            f(DeliveryFilter {
                search: Some("%".into()),
                ..Default::default()
            })
            .await
            .len()
                == 1
        );
        assert_eq!(
            f(DeliveryFilter {
                received_from: Some("2026-11-02".into()),
                received_to: Some("2026-11-03".into()),
                ..Default::default()
            })
            .await,
            [3, 2]
        );
        assert_eq!(
            f(DeliveryFilter {
                before_id: Some(3),
                limit: Some(1),
                ..Default::default()
            })
            .await,
            [2]
        );
        let bad = DeliveryFilter {
            outcome: Some("lost".into()),
            ..Default::default()
        };
        assert!(bad.check().is_err());
        assert!(f(bad).await.is_empty());
    }
}

//! Receiving Pinpoint webhooks: every delivery is stored, whatever its fate, and a verified
//! `application_hired` is stored together with its export in one transaction before Pinpoint is
//! answered. Nothing here waits on Pinpoint or HiBob.
use sqlx::SqlitePool;

use serde::Serialize;

use crate::Db;
use crate::{
    db,
    exports::queue::{self as export_queue, Enqueued, Source},
    health::Health,
    pinpoint::signature as webhook_signature,
    settings::credentials::{CredentialError, CredentialKey, Credentials},
    webhooks::rejection_limit::{self, RejectionLimit},
};
use secrecy::ExposeSecret;

pub const HIRED_EVENT: &str = "application_hired";
/// Bodies are kept up to this size in the log; Pinpoint's are a few hundred bytes.
const STORED_BODY_LIMIT: usize = 64 * 1024;
/// A rejected delivery (unverified: a stranger's bytes) keeps its whole body only up to this
/// size, which every real Pinpoint delivery fits, so one refused for a wrong secret can still
/// be re-processed by an admin; a larger one keeps a prefix of [`REJECTED_PREFIX`] bytes.
const REJECTED_BODY_LIMIT: usize = 2 * 1024;
const REJECTED_PREFIX: usize = 256;
/// Stored headers of a rejected delivery, at most.
const REJECTED_HEADERS_LIMIT: usize = 2 * 1024;
/// Added to the reason of a rejected delivery whose body was not kept whole.
pub const NOTE_BODY_CUT: &str = "only the start of its body was kept";
/// How many rejected deliveries are stored between two prunings of the oldest.
const PRUNE_EVERY: u32 = 64;

/// Why a delivery was refused, as the log records it. The webhook log reads these back to decide
/// what may be re-processed, so they are written only from here.
pub const REASON_TOO_LARGE: &str = "body too large";
pub const REASON_NO_SECRET: &str = "no webhook signing secret is configured";
pub const REASON_BAD_SIGNATURE: &str = "bad signature";
pub const REASON_UNPARSEABLE: &str = "unparseable";

/// One delivery as the HTTP layer saw it.
#[derive(Debug)]
pub struct Delivery<'a> {
    pub raw_body: &'a [u8],
    pub signature: Option<&'a str>,
    /// Request headers with secrets already redacted, as a JSON object.
    pub headers: serde_json::Value,
    pub client_ip: Option<String>,
    /// The body went over the size limit and was not read in full.
    pub too_large: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    /// A new hire: its export is queued.
    Accepted { delivery_id: i64, export_id: i64 },
    /// This hire already has an export; nothing new is started.
    Duplicate {
        delivery_id: i64,
        export_id: i64,
        exact_replay: bool,
    },
    /// A verified event we do not act on.
    Ignored { delivery_id: i64, event: String },
    /// Refused; `http_status` says how to answer.
    Rejected {
        delivery_id: i64,
        http_status: u16,
        reason: String,
    },
    /// Refused and not stored: this address had its allowance of rejected deliveries.
    Throttled { reason: String },
}

/// Bounds on what unverified deliveries may cost.
#[derive(Debug, Clone, Copy)]
pub struct IntakeLimits {
    /// Rejected deliveries stored per client address per minute.
    pub rejected_per_minute: u32,
    /// Rejected deliveries kept in all; the oldest are deleted past it.
    pub rejected_kept: u32,
}

impl Default for IntakeLimits {
    fn default() -> Self {
        Self {
            rejected_per_minute: 30,
            rejected_kept: 5000,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Credentials(#[from] CredentialError),
    #[error("the delivery writer has stopped")]
    WriterGone,
}

/// What verification decided, before anything is stored.
#[derive(Debug)]
enum Verdict {
    Reject {
        http_status: u16,
        reason: String,
        /// What the body says it is, when it can be read: shown in the log, never trusted.
        event: Option<String>,
        application_id: Option<String>,
    },
    Ignore {
        event: String,
        application_id: Option<String>,
    },
    Hire {
        event: String,
        application_id: String,
        key: String,
    },
}

/// A verified delivery on its way to the writer, owning everything it stores.
#[derive(Debug)]
pub struct Record {
    verdict: Verdict,
    hash: String,
    body: String,
    headers: String,
    client_ip: Option<String>,
    /// Put before the stored reason: how this delivery came about, when not from Pinpoint.
    note: Option<String>,
    /// The body's size as it arrived (the stored `body` may be a prefix).
    size: usize,
}

type Reply = tokio::sync::oneshot::Sender<Result<Outcome, String>>;

/// Deliveries per transaction, at most: one commit (one fsync) then acknowledges them all.
const MAX_BATCH: usize = 256;

/// Stores deliveries through one writer task that commits whatever has arrived together in one
/// transaction (group commit). Under `synchronous=FULL` every commit is an fsync, and with many
/// writers SQLite's busy handler would make them wait in growing sleeps; one writer batching
/// makes ingest fast and its latency flat while keeping "stored before acknowledged".
#[derive(Clone, Debug)]
pub struct WebhookIntake {
    queue: tokio::sync::mpsc::Sender<(Record, Reply)>,
    rejections: std::sync::Arc<std::sync::Mutex<RejectionLimit>>,
    /// Where consoles share the database's limits: the allowances counted there for all.
    shared: Option<std::sync::Arc<SharedRejections>>,
}

/// The rejected deliveries' allowances in the database, and this console's note of whether it
/// can be reached (this console's own allowances apply while it cannot).
#[derive(Debug)]
struct SharedRejections {
    db: Db,
    per_minute: u32,
    outage: crate::shared_limits::Outage,
}

impl WebhookIntake {
    /// Starts the writer task for `pool` with the default limits.
    pub fn start(db: Db) -> Self {
        Self::start_with(db, IntakeLimits::default(), Health::default())
    }

    /// Starts the writer task for `pool`. It runs until every handle is dropped, and reports
    /// whether its writes succeed to `health`.
    pub fn start_with(db: Db, limits: IntakeLimits, health: Health) -> Self {
        let shared = db.shared_limits().is_some().then(|| {
            std::sync::Arc::new(SharedRejections {
                db: db.clone(),
                per_minute: limits.rejected_per_minute.max(1),
                outage: Default::default(),
            })
        });
        let (queue, mut incoming) = tokio::sync::mpsc::channel::<(Record, Reply)>(4 * MAX_BATCH);
        tokio::spawn(async move {
            let mut rejected_since_prune = 0u32;
            while let Some(first) = incoming.recv().await {
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match incoming.try_recv() {
                        Ok(next) => batch.push(next),
                        Err(_) => break,
                    }
                }
                let rejected = batch
                    .iter()
                    .filter(|(r, _)| matches!(r.verdict, Verdict::Reject { .. }))
                    .count();
                if write_batch(&db, batch).await {
                    health.intake_stored();
                } else {
                    health.intake_failed("the latest deliveries could not be stored");
                }
                rejected_since_prune = rejected_since_prune
                    .saturating_add(u32::try_from(rejected).unwrap_or(u32::MAX));
                if rejected_since_prune >= PRUNE_EVERY {
                    match db.webhooks().prune_rejected(limits.rejected_kept).await {
                        Ok(_) => rejected_since_prune = 0,
                        Err(e) => tracing::warn!(error = %e, "cannot prune rejected deliveries"),
                    }
                }
            }
        });
        Self {
            queue,
            rejections: std::sync::Arc::new(std::sync::Mutex::new(RejectionLimit::new(
                limits.rejected_per_minute,
            ))),
            shared,
        }
    }

    /// Whether this rejected delivery may be stored, by its address's allowance.
    async fn may_store_rejection(&self, client_ip: Option<&str>) -> bool {
        const WHAT: &str = "rejected-delivery allowance";
        let addr = client_ip.and_then(|ip| ip.parse().ok());
        if let Some(shared) = &self.shared {
            if let Some(store) = shared.db.shared_limits() {
                let taken = store
                    .take_rejection_allowance(
                        rejection_limit::shared_bucket(addr),
                        chrono::Utc::now(),
                        rejection_limit::WINDOW,
                        shared.per_minute,
                    )
                    .await;
                match taken {
                    Ok(allowed) => {
                        shared.outage.worked(WHAT);
                        return allowed;
                    }
                    Err(e) => shared.outage.failed(WHAT, &e),
                }
            }
        }
        let mut limit = self.rejections.lock().unwrap_or_else(|p| p.into_inner());
        limit.allow(addr, std::time::Instant::now())
    }

    /// Verifies, classifies and stores one delivery. An `Err` means it could not be recorded:
    /// answer 503 so Pinpoint delivers it again.
    pub async fn receive(
        &self,
        credentials: &Credentials,
        delivery: Delivery<'_>,
    ) -> Result<Outcome, IntakeError> {
        let mut verdict = verify(credentials, &delivery).await?;
        let size = delivery.raw_body.len();
        let mut headers = delivery.headers.to_string();
        let keep = match &mut verdict {
            Verdict::Reject { reason, .. } => {
                if !self
                    .may_store_rejection(delivery.client_ip.as_deref())
                    .await
                {
                    return Ok(Outcome::Throttled {
                        reason: format!(
                            "{reason}; too many refused deliveries from this address, so this one \
                             was not stored"
                        ),
                    });
                }
                if headers.len() > REJECTED_HEADERS_LIMIT {
                    headers = serde_json::json!({ "note": "headers over 2 KiB were not kept" })
                        .to_string();
                }
                if size > REJECTED_BODY_LIMIT {
                    reason.push_str("; ");
                    reason.push_str(NOTE_BODY_CUT);
                    REJECTED_PREFIX
                } else {
                    size
                }
            }
            _ => size.min(STORED_BODY_LIMIT),
        };
        let record = Record {
            verdict,
            hash: webhook_signature::body_hash(delivery.raw_body),
            body: printable_prefix(delivery.raw_body, keep),
            headers,
            client_ip: delivery.client_ip,
            note: None,
            size,
        };
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.queue
            .send((record, reply))
            .await
            .map_err(|_| IntakeError::WriterGone)?;
        match answer.await {
            Ok(Ok(outcome)) => Ok(outcome),
            Ok(Err(message)) => Err(IntakeError::Db(sqlx::Error::Protocol(message))),
            Err(_) => Err(IntakeError::WriterGone),
        }
    }
}

/// Up to `limit` bytes of a body as text, cut on a character boundary; control characters
/// other than white space become U+FFFD, so a stranger's bytes cannot drive a terminal or a log.
fn printable_prefix(raw: &[u8], limit: usize) -> String {
    let text = String::from_utf8_lossy(raw.get(..limit.min(raw.len())).unwrap_or_default());
    text.chars()
        .map(|c| {
            if c.is_control() && !matches!(c, '\n' | '\r' | '\t') {
                char::REPLACEMENT_CHARACTER
            } else {
                c
            }
        })
        .collect()
}

/// Deletes the oldest rejected deliveries beyond the newest `kept`.
pub async fn prune_rejected(pool: &SqlitePool, kept: u32) -> Result<u64, sqlx::Error> {
    let kept = i64::from(kept);
    let mut tx = db::begin_write(pool).await?;
    let done = sqlx::query!(
        "DELETE FROM webhook_deliveries
         WHERE outcome = 'rejected' AND id <= (
             SELECT id FROM webhook_deliveries WHERE outcome = 'rejected'
             ORDER BY id DESC LIMIT 1 OFFSET ?)",
        kept
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(done.rows_affected())
}

async fn verify(
    credentials: &Credentials,
    delivery: &Delivery<'_>,
) -> Result<Verdict, IntakeError> {
    if delivery.too_large {
        return Ok(Verdict::Reject {
            http_status: 413,
            reason: REASON_TOO_LARGE.into(),
            event: None,
            application_id: None,
        });
    }
    // an unverified body is read only to label its row in the log, so a refused delivery can be
    // found by the application it names
    let reject = |http_status: u16, reason: String| {
        let claimed = webhook_signature::parse_event(delivery.raw_body).ok();
        Verdict::Reject {
            http_status,
            reason,
            event: claimed.as_ref().map(|e| e.event.clone()),
            application_id: claimed.and_then(|e| e.application_id),
        }
    };
    let Some(secret) = credentials
        .get(CredentialKey::PinpointWebhookSecret)
        .await?
    else {
        return Ok(reject(503, REASON_NO_SECRET.into()));
    };
    if let Err(e) = webhook_signature::verify(
        secret.expose_secret().as_bytes(),
        delivery.raw_body,
        delivery.signature,
    ) {
        return Ok(reject(401, format!("{REASON_BAD_SIGNATURE}: {e}")));
    }
    Ok(classify(delivery.raw_body))
}

/// What an authentic body asks for: a hire, an event we ignore, or a refusal if it cannot be read.
fn classify(raw_body: &[u8]) -> Verdict {
    let event = match webhook_signature::parse_event(raw_body) {
        Ok(event) => event,
        Err(e) => {
            return Verdict::Reject {
                http_status: 400,
                reason: format!("{REASON_UNPARSEABLE}: {e}"),
                event: None,
                application_id: None,
            }
        }
    };
    if event.event != HIRED_EVENT {
        return Verdict::Ignore {
            event: event.event,
            application_id: event.application_id,
        };
    }
    match (
        webhook_signature::idempotency_key(&event),
        event.application_id,
    ) {
        (Some(key), Some(application_id)) => Verdict::Hire {
            event: event.event,
            application_id,
            key,
        },
        _ => Verdict::Reject {
            http_status: 400,
            reason: format!("{REASON_UNPARSEABLE}: application_hired without data.application.id"),
            event: Some(event.event),
            application_id: None,
        },
    }
}

/// Why a stored body is not a hire the console could act on, or `None` if it is one.
pub fn not_a_hire(raw_body: &[u8]) -> Option<String> {
    match classify(raw_body) {
        Verdict::Hire { .. } => None,
        Verdict::Ignore { event, .. } => Some(format!(
            "it is a {event} event, which this console does not act on"
        )),
        Verdict::Reject { reason, .. } => Some(reason),
    }
}

/// Runs a stored body through intake again, inside the caller's transaction, exactly as a fresh
/// delivery whose signature verified: a new delivery row, and the export created unless the
/// hire already has one. Whether the body may be trusted is the caller's decision; `note` says
/// in the new row where it came from.
pub async fn reprocess_in(
    conn: &mut sqlx::SqliteConnection,
    raw_body: &[u8],
    note: String,
    client_ip: Option<String>,
) -> Result<Outcome, sqlx::Error> {
    let record = Record::reprocessed(raw_body, note, client_ip);
    write_one(conn, &record).await
}

impl Record {
    /// A stored body on its way through intake again, as a fresh delivery whose signature
    /// verified (see [`reprocess_in`]).
    pub fn reprocessed(raw_body: &[u8], note: String, client_ip: Option<String>) -> Self {
        Self {
            verdict: classify(raw_body),
            hash: webhook_signature::body_hash(raw_body),
            body: String::from_utf8_lossy(raw_body).into_owned(),
            headers: "{}".to_owned(),
            client_ip,
            note: Some(note),
            size: raw_body.len(),
        }
    }
}

/// Writes a batch in one transaction; if that fails, each delivery alone, so one bad record
/// cannot cost the others their acknowledgement. Returns whether the last write succeeded.
async fn write_batch(db: &Db, batch: Vec<(Record, Reply)>) -> bool {
    let records: Vec<&Record> = batch.iter().map(|(r, _)| r).collect();
    match db.webhooks().write_all(&records).await {
        Ok(outcomes) => {
            for ((_, reply), outcome) in batch.into_iter().zip(outcomes) {
                let _ = reply.send(Ok(outcome));
            }
            true
        }
        Err(_) if batch.len() > 1 => {
            let mut stored = false;
            for (record, reply) in batch {
                let result = db
                    .webhooks()
                    .write_all(&[&record])
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|o| {
                        o.into_iter()
                            .next()
                            .ok_or_else(|| "nothing was written".to_owned())
                    });
                stored = result.is_ok();
                let _ = reply.send(result);
            }
            stored
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot store a webhook delivery");
            for (_, reply) in batch {
                let _ = reply.send(Err(e.to_string()));
            }
            false
        }
    }
}

pub async fn write_all(
    pool: &SqlitePool,
    records: &[&Record],
) -> Result<Vec<Outcome>, sqlx::Error> {
    let mut tx = db::begin_write(pool).await?;
    let mut outcomes = Vec::with_capacity(records.len());
    for record in records {
        outcomes.push(write_one(&mut tx, record).await?);
    }
    tx.commit().await?;
    Ok(outcomes)
}

/// A delivery row as intake writes it.
#[derive(Debug)]
pub struct NewDelivery<'a> {
    pub received_at: String,
    pub outcome: &'a str,
    pub reason: String,
    pub event: Option<&'a str>,
    pub application_id: Option<&'a str>,
    pub body_sha256: &'a str,
    pub body: &'a str,
    pub headers: &'a str,
    pub client_ip: Option<&'a str>,
    pub export_id: Option<i64>,
    /// The body's size as it arrived.
    pub body_size: i64,
}

/// What intake asks of the database while it writes one delivery, inside the caller's
/// transaction; each engine answers in its own SQL, and [`write_record`] decides with the
/// answers.
#[async_trait::async_trait]
pub trait DeliveryWriter: Send {
    /// Creates the webhook export for a hire unless one exists under `key` (see
    /// [`export_queue::enqueue`]).
    async fn enqueue(&mut self, key: &str, application_id: &str) -> Result<Enqueued, sqlx::Error>;
    /// Whether a delivery of the body hashed `hash` already named export `export_id`.
    async fn replays(&mut self, hash: &str, export_id: i64) -> Result<bool, sqlx::Error>;
    /// Asks for a check of the hire watched for `export_id` as soon as the pacing allows; whether
    /// that moved a check forward (see `watch::store::check_soon`).
    async fn check_soon(&mut self, export_id: i64) -> Result<bool, sqlx::Error>;
    /// Stores the row; its id.
    async fn insert(&mut self, row: &NewDelivery<'_>) -> Result<i64, sqlx::Error>;
}

struct Row<'a> {
    outcome: &'a str,
    reason: &'a str,
    event: Option<&'a str>,
    application_id: Option<&'a str>,
    export_id: Option<i64>,
}

impl Record {
    fn delivery<'a>(&'a self, row: Row<'a>) -> NewDelivery<'a> {
        let reason = match (&self.note, row.reason) {
            (Some(note), "") => note.clone(),
            (Some(note), reason) => format!("{note}: {reason}"),
            (None, reason) => reason.to_owned(),
        };
        NewDelivery {
            received_at: db::now_text(),
            outcome: row.outcome,
            reason,
            event: row.event,
            application_id: row.application_id,
            body_sha256: &self.hash,
            body: &self.body,
            headers: &self.headers,
            client_ip: self.client_ip.as_deref(),
            export_id: row.export_id,
            body_size: i64::try_from(self.size).unwrap_or(i64::MAX),
        }
    }
}

/// [`DeliveryWriter`] on a SQLite transaction.
struct SqliteWriter<'c>(&'c mut sqlx::SqliteConnection);

#[async_trait::async_trait]
impl DeliveryWriter for SqliteWriter<'_> {
    async fn enqueue(&mut self, key: &str, application_id: &str) -> Result<Enqueued, sqlx::Error> {
        export_queue::enqueue(&mut *self.0, Source::Webhook, key, application_id).await
    }

    async fn replays(&mut self, hash: &str, export_id: i64) -> Result<bool, sqlx::Error> {
        sqlx::query_scalar!(
            r#"SELECT EXISTS (SELECT 1 FROM webhook_deliveries
                                  WHERE body_sha256 = ? AND export_id = ?) AS "found!: bool""#,
            hash,
            export_id
        )
        .fetch_one(&mut *self.0)
        .await
    }

    async fn check_soon(&mut self, export_id: i64) -> Result<bool, sqlx::Error> {
        crate::watch::store::check_soon(&mut *self.0, export_id).await
    }

    async fn insert(&mut self, row: &NewDelivery<'_>) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar!(
            r#"INSERT INTO webhook_deliveries
             (received_at, outcome, reason, event, application_id, body_sha256, body, headers,
              client_ip, export_id, body_size)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
           RETURNING id AS "id!""#,
            row.received_at,
            row.outcome,
            row.reason,
            row.event,
            row.application_id,
            row.body_sha256,
            row.body,
            row.headers,
            row.client_ip,
            row.export_id,
            row.body_size
        )
        .fetch_one(&mut *self.0)
        .await
    }
}

async fn write_one(
    conn: &mut sqlx::SqliteConnection,
    record: &Record,
) -> Result<Outcome, sqlx::Error> {
    write_record(&mut SqliteWriter(conn), record).await
}

/// Writes one delivery through `w`: a refusal or an ignored event as it is; a hire with its
/// export, or, when the hire already has one, as a duplicate pointing at it (a repeated hire,
/// not a replay of the same body, also asks for its watched record to be checked again).
pub async fn write_record(
    w: &mut (dyn DeliveryWriter + '_),
    record: &Record,
) -> Result<Outcome, sqlx::Error> {
    match &record.verdict {
        Verdict::Reject {
            http_status,
            reason,
            event,
            application_id,
        } => {
            let row = Row {
                outcome: "rejected",
                reason,
                event: event.as_deref(),
                application_id: application_id.as_deref(),
                export_id: None,
            };
            Ok(Outcome::Rejected {
                delivery_id: w.insert(&record.delivery(row)).await?,
                http_status: *http_status,
                reason: reason.clone(),
            })
        }
        Verdict::Ignore {
            event,
            application_id,
        } => {
            let row = Row {
                outcome: "ignored",
                reason: "not an event this console acts on",
                event: Some(event),
                application_id: application_id.as_deref(),
                export_id: None,
            };
            Ok(Outcome::Ignored {
                delivery_id: w.insert(&record.delivery(row)).await?,
                event: event.clone(),
            })
        }
        Verdict::Hire {
            event,
            application_id,
            key,
        } => {
            let enqueued = w.enqueue(key, application_id).await?;
            if enqueued.created {
                let row = Row {
                    outcome: "accepted",
                    reason: "",
                    event: Some(event),
                    application_id: Some(application_id),
                    export_id: Some(enqueued.export_id),
                };
                return Ok(Outcome::Accepted {
                    delivery_id: w.insert(&record.delivery(row)).await?,
                    export_id: enqueued.export_id,
                });
            }
            let exact_replay = w.replays(&record.hash, enqueued.export_id).await?;
            let reason = if exact_replay {
                format!(
                    "exact replay of a delivery for export {}",
                    enqueued.export_id
                )
            } else if w.check_soon(enqueued.export_id).await? {
                // Pinpoint marking the hire again is the moment something may have changed
                format!(
                    "application already hired: export {}; its HiBob record is checked again",
                    enqueued.export_id
                )
            } else {
                format!("application already hired: export {}", enqueued.export_id)
            };
            let row = Row {
                outcome: "duplicate",
                reason: &reason,
                event: Some(event),
                application_id: Some(application_id),
                export_id: Some(enqueued.export_id),
            };
            Ok(Outcome::Duplicate {
                delivery_id: w.insert(&record.delivery(row)).await?,
                export_id: enqueued.export_id,
                exact_replay,
            })
        }
    }
}

/// Posts a signed `application_hired` for `application_id` to a webhook URL over real HTTP, as
/// Pinpoint would: sandbox mode's seed hires and its "Send test webhook" button use it.
pub async fn send_signed_hire(
    webhook_url: &str,
    secret: &str,
    application_id: u64,
) -> Result<u16, reqwest::Error> {
    let body = format!(
        r#"{{"event":"{HIRED_EVENT}","triggeredAt":{},"data":{{"application":{{"id":{application_id}}}}}}}"#,
        chrono::Utc::now().timestamp()
    );
    let signature = webhook_signature::sign(secret.as_bytes(), body.as_bytes());
    let response = reqwest::Client::new()
        .post(webhook_url)
        .header(webhook_signature::SIGNATURE_HEADER, signature)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await?;
    Ok(response.status().as_u16())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::secret_box::SecretBox;
    use crate::webhooks::deliveries::recent;
    use secrecy::SecretString;
    use std::collections::HashMap;

    const SECRET: &str = "whsec-test";
    const HIRED: &str = r#"{"event":"application_hired","triggeredAt":1614687278,"data":{"application":{"id":1},"job":{"id":1}}}"#;

    async fn setup(
        with_secret: bool,
    ) -> (tempfile::TempDir, SqlitePool, Credentials, WebhookIntake) {
        let dir = tempfile::tempdir().unwrap();
        let pool = db::open(&format!("sqlite://{}/w.db", dir.path().display()))
            .await
            .unwrap();
        let mut env = HashMap::new();
        if with_secret {
            env.insert(
                CredentialKey::PinpointWebhookSecret,
                SecretString::from(SECRET.to_owned()),
            );
        }
        let creds = Credentials::new(
            crate::sqlite::SqliteStore::db(pool.clone()),
            SecretBox::from_key_bytes(&[1; 32]),
            env,
        );
        let intake = WebhookIntake::start(crate::sqlite::SqliteStore::db(pool.clone()));
        (dir, pool, creds, intake)
    }

    fn delivery<'a>(body: &'a [u8], signature: Option<&'a str>) -> Delivery<'a> {
        Delivery {
            raw_body: body,
            signature,
            headers: serde_json::json!({}),
            client_ip: None,
            too_large: false,
        }
    }

    #[tokio::test]
    async fn a_hire_is_accepted_once_and_duplicates_point_at_it() {
        let (_d, pool, creds, intake) = setup(true).await;
        let sig = webhook_signature::sign(SECRET.as_bytes(), HIRED.as_bytes());
        let first = intake
            .receive(&creds, delivery(HIRED.as_bytes(), Some(&sig)))
            .await
            .unwrap();
        let Outcome::Accepted { export_id, .. } = first else {
            panic!("{first:?}")
        };
        let again = intake
            .receive(&creds, delivery(HIRED.as_bytes(), Some(&sig)))
            .await
            .unwrap();
        assert!(
            matches!(again, Outcome::Duplicate { export_id: e, exact_replay: true, .. } if e == export_id)
        );
        let other_body = r#"{"event":"application_hired","triggeredAt":1614690000,"data":{"application":{"id":"1"}}}"#;
        let sig2 = webhook_signature::sign(SECRET.as_bytes(), other_body.as_bytes());
        let resent = intake
            .receive(&creds, delivery(other_body.as_bytes(), Some(&sig2)))
            .await
            .unwrap();
        assert!(
            matches!(
                resent,
                Outcome::Duplicate {
                    exact_replay: false,
                    ..
                }
            ),
            "{resent:?}"
        );
        let exports: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM exports")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(exports, 1);
        assert_eq!(recent(&pool, None, None, 50).await.unwrap().len(), 3);
    }

    #[tokio::test]
    async fn refusals_are_stored_with_their_cause() {
        let (_d, pool, creds, intake) = setup(true).await;
        let bad = intake
            .receive(&creds, delivery(HIRED.as_bytes(), Some("bm9wZQ==")))
            .await
            .unwrap();
        assert!(
            matches!(
                bad,
                Outcome::Rejected {
                    http_status: 401,
                    ..
                }
            ),
            "{bad:?}"
        );
        let missing = intake
            .receive(&creds, delivery(HIRED.as_bytes(), None))
            .await
            .unwrap();
        assert!(matches!(
            missing,
            Outcome::Rejected {
                http_status: 401,
                ..
            }
        ));
        let junk = b"not json";
        let sig = webhook_signature::sign(SECRET.as_bytes(), junk);
        let unparseable = intake
            .receive(&creds, delivery(junk, Some(&sig)))
            .await
            .unwrap();
        assert!(matches!(
            unparseable,
            Outcome::Rejected {
                http_status: 400,
                ..
            }
        ));
        let no_id = br#"{"event":"application_hired","data":{}}"#;
        let sig = webhook_signature::sign(SECRET.as_bytes(), no_id);
        let no_id = intake
            .receive(&creds, delivery(no_id, Some(&sig)))
            .await
            .unwrap();
        assert!(matches!(
            no_id,
            Outcome::Rejected {
                http_status: 400,
                ..
            }
        ));
        let other = br#"{"event":"application_created","data":{"application":{"id":5}}}"#;
        let sig = webhook_signature::sign(SECRET.as_bytes(), other);
        let ignored = intake
            .receive(&creds, delivery(other, Some(&sig)))
            .await
            .unwrap();
        assert!(matches!(ignored, Outcome::Ignored { .. }));
        let log = recent(&pool, None, None, 50).await.unwrap();
        assert_eq!(log.len(), 5);
        assert!(log
            .iter()
            .any(|d| d.outcome == "rejected" && d.reason.contains("bad signature")));
        let exports: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM exports")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(exports, 0);
    }

    #[tokio::test]
    async fn without_a_secret_deliveries_are_refused_for_retry() {
        let (_d, _pool, creds, intake) = setup(false).await;
        let out = intake
            .receive(&creds, delivery(HIRED.as_bytes(), None))
            .await
            .unwrap();
        assert!(matches!(
            out,
            Outcome::Rejected {
                http_status: 503,
                ..
            }
        ));
    }
}

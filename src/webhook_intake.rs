//! Receiving Pinpoint webhooks: every delivery is stored, whatever its fate, and a verified
//! `application_hired` is stored together with its export in one transaction before Pinpoint is
//! answered. Nothing here waits on Pinpoint or HiBob.

use serde::Serialize;
use sqlx::SqlitePool;

use crate::{
    credentials::{CredentialError, CredentialKey, Credentials},
    db,
    export_queue::{self, Source},
    webhook_signature,
};
use secrecy::ExposeSecret;

pub const HIRED_EVENT: &str = "application_hired";
/// Bodies are kept up to this size in the log; Pinpoint's are a few hundred bytes.
const STORED_BODY_LIMIT: usize = 64 * 1024;

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
}

#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Credentials(#[from] CredentialError),
}

struct Row<'a> {
    outcome: &'a str,
    reason: &'a str,
    event: Option<&'a str>,
    application_id: Option<&'a str>,
    export_id: Option<i64>,
}

async fn store(
    conn: &mut sqlx::SqliteConnection,
    delivery: &Delivery<'_>,
    hash: &str,
    row: Row<'_>,
) -> Result<i64, sqlx::Error> {
    let cut = delivery.raw_body.len().min(STORED_BODY_LIMIT);
    let body = String::from_utf8_lossy(&delivery.raw_body[..cut]).into_owned();
    let headers = delivery.headers.to_string();
    let now = db::now_text();
    sqlx::query_scalar!(
        r#"INSERT INTO webhook_deliveries
             (received_at, outcome, reason, event, application_id, body_sha256, body, headers,
              client_ip, export_id)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
           RETURNING id AS "id!""#,
        now,
        row.outcome,
        row.reason,
        row.event,
        row.application_id,
        hash,
        body,
        headers,
        delivery.client_ip,
        row.export_id
    )
    .fetch_one(conn)
    .await
}

async fn reject(
    pool: &SqlitePool,
    delivery: &Delivery<'_>,
    hash: &str,
    http_status: u16,
    reason: String,
    event: Option<&str>,
) -> Result<Outcome, IntakeError> {
    let mut conn = pool.acquire().await?;
    let delivery_id = store(
        &mut conn,
        delivery,
        hash,
        Row {
            outcome: "rejected",
            reason: &reason,
            event,
            application_id: None,
            export_id: None,
        },
    )
    .await?;
    Ok(Outcome::Rejected {
        delivery_id,
        http_status,
        reason,
    })
}

/// Verifies, classifies and stores one delivery. An `Err` means the database could not record it:
/// answer 503 so Pinpoint delivers it again.
pub async fn receive(
    pool: &SqlitePool,
    credentials: &Credentials,
    delivery: Delivery<'_>,
) -> Result<Outcome, IntakeError> {
    let hash = webhook_signature::body_hash(delivery.raw_body);
    if delivery.too_large {
        return reject(pool, &delivery, &hash, 413, "body too large".into(), None).await;
    }
    let Some(secret) = credentials
        .get(CredentialKey::PinpointWebhookSecret)
        .await?
    else {
        return reject(
            pool,
            &delivery,
            &hash,
            503,
            "no webhook signing secret is configured".into(),
            None,
        )
        .await;
    };
    if let Err(e) = webhook_signature::verify(
        secret.expose_secret().as_bytes(),
        delivery.raw_body,
        delivery.signature,
    ) {
        return reject(
            pool,
            &delivery,
            &hash,
            401,
            format!("bad signature: {e}"),
            None,
        )
        .await;
    }
    let event = match webhook_signature::parse_event(delivery.raw_body) {
        Ok(event) => event,
        Err(e) => {
            return reject(
                pool,
                &delivery,
                &hash,
                400,
                format!("unparseable: {e}"),
                None,
            )
            .await
        }
    };
    if event.event != HIRED_EVENT {
        let mut conn = pool.acquire().await?;
        let delivery_id = store(
            &mut conn,
            &delivery,
            &hash,
            Row {
                outcome: "ignored",
                reason: "not an event this console acts on",
                event: Some(&event.event),
                application_id: event.application_id.as_deref(),
                export_id: None,
            },
        )
        .await?;
        return Ok(Outcome::Ignored {
            delivery_id,
            event: event.event,
        });
    }
    let (Some(key), Some(application_id)) = (
        webhook_signature::idempotency_key(&event),
        event.application_id.as_deref(),
    ) else {
        return reject(
            pool,
            &delivery,
            &hash,
            400,
            "unparseable: application_hired without data.application.id".into(),
            Some(&event.event),
        )
        .await;
    };

    let mut tx = db::begin_write(pool).await?;
    let enqueued = export_queue::enqueue(&mut tx, Source::Webhook, &key, application_id).await?;
    let outcome = if enqueued.created {
        let delivery_id = store(
            &mut tx,
            &delivery,
            &hash,
            Row {
                outcome: "accepted",
                reason: "",
                event: Some(&event.event),
                application_id: Some(application_id),
                export_id: Some(enqueued.export_id),
            },
        )
        .await?;
        Outcome::Accepted {
            delivery_id,
            export_id: enqueued.export_id,
        }
    } else {
        let exact_replay = sqlx::query_scalar!(
            r#"SELECT EXISTS (SELECT 1 FROM webhook_deliveries
                              WHERE body_sha256 = ? AND export_id = ?) AS "found!: bool""#,
            hash,
            enqueued.export_id
        )
        .fetch_one(&mut *tx)
        .await?;
        let reason = if exact_replay {
            format!(
                "exact replay of a delivery for export {}",
                enqueued.export_id
            )
        } else {
            format!("application already hired: export {}", enqueued.export_id)
        };
        let delivery_id = store(
            &mut tx,
            &delivery,
            &hash,
            Row {
                outcome: "duplicate",
                reason: &reason,
                event: Some(&event.event),
                application_id: Some(application_id),
                export_id: Some(enqueued.export_id),
            },
        )
        .await?;
        Outcome::Duplicate {
            delivery_id,
            export_id: enqueued.export_id,
            exact_replay,
        }
    };
    tx.commit().await?;
    Ok(outcome)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct DeliveryRow {
    pub id: i64,
    pub received_at: String,
    pub outcome: String,
    pub reason: String,
    pub event: Option<String>,
    pub application_id: Option<String>,
    pub export_id: Option<i64>,
}

/// The newest deliveries first, for the webhook log; `outcome` narrows to one kind.
pub async fn recent(
    pool: &SqlitePool,
    outcome: Option<&str>,
    before_id: Option<i64>,
    limit: i64,
) -> Result<Vec<DeliveryRow>, sqlx::Error> {
    let before = before_id.unwrap_or(i64::MAX);
    let limit = limit.clamp(1, 200);
    let outcome =
        outcome.filter(|o| matches!(*o, "accepted" | "duplicate" | "ignored" | "rejected"));
    sqlx::query_as!(
        DeliveryRow,
        r#"SELECT id AS "id!", received_at, outcome, reason, event, application_id, export_id
           FROM webhook_deliveries
           WHERE id < ?1 AND (?2 IS NULL OR outcome = ?2)
           ORDER BY id DESC LIMIT ?3"#,
        before,
        outcome,
        limit
    )
    .fetch_all(pool)
    .await
}

/// The deliveries that named this export, oldest first, for its timeline.
pub async fn for_export(
    pool: &SqlitePool,
    export_id: i64,
) -> Result<Vec<DeliveryRow>, sqlx::Error> {
    sqlx::query_as!(
        DeliveryRow,
        r#"SELECT id AS "id!", received_at, outcome, reason, event, application_id, export_id
           FROM webhook_deliveries WHERE export_id = ? ORDER BY id"#,
        export_id
    )
    .fetch_all(pool)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret_box::SecretBox;
    use secrecy::SecretString;
    use std::collections::HashMap;

    const SECRET: &str = "whsec-test";
    const HIRED: &str = r#"{"event":"application_hired","triggeredAt":1614687278,"data":{"application":{"id":1},"job":{"id":1}}}"#;

    async fn setup(with_secret: bool) -> (tempfile::TempDir, SqlitePool, Credentials) {
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
        let creds = Credentials::new(pool.clone(), SecretBox::from_key_bytes(&[1; 32]), env);
        (dir, pool, creds)
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
        let (_d, pool, creds) = setup(true).await;
        let sig = webhook_signature::sign(SECRET.as_bytes(), HIRED.as_bytes());
        let first = receive(&pool, &creds, delivery(HIRED.as_bytes(), Some(&sig)))
            .await
            .unwrap();
        let Outcome::Accepted { export_id, .. } = first else {
            panic!("{first:?}")
        };
        let again = receive(&pool, &creds, delivery(HIRED.as_bytes(), Some(&sig)))
            .await
            .unwrap();
        assert!(
            matches!(again, Outcome::Duplicate { export_id: e, exact_replay: true, .. } if e == export_id)
        );
        let other_body = r#"{"event":"application_hired","triggeredAt":1614690000,"data":{"application":{"id":"1"}}}"#;
        let sig2 = webhook_signature::sign(SECRET.as_bytes(), other_body.as_bytes());
        let resent = receive(&pool, &creds, delivery(other_body.as_bytes(), Some(&sig2)))
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
        let (_d, pool, creds) = setup(true).await;
        let bad = receive(&pool, &creds, delivery(HIRED.as_bytes(), Some("bm9wZQ==")))
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
        let missing = receive(&pool, &creds, delivery(HIRED.as_bytes(), None))
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
        let unparseable = receive(&pool, &creds, delivery(junk, Some(&sig)))
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
        let no_id = receive(&pool, &creds, delivery(no_id, Some(&sig)))
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
        let ignored = receive(&pool, &creds, delivery(other, Some(&sig)))
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
        let (_d, pool, creds) = setup(false).await;
        let out = receive(&pool, &creds, delivery(HIRED.as_bytes(), None))
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

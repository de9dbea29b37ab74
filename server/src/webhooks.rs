//! `POST /webhooks/pinpoint`: read the body within a limit, hand it to the intake service, and
//! answer at once. The export itself runs later on the worker.

use app::ssr::ConsoleState;
use axum::{
    body::Body,
    extract::{Extension, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use integration::{
    live::{Change, Changes},
    webhooks::intake::{Delivery, Outcome, WebhookIntake},
};
use serde_json::{json, Map, Value};

use crate::middleware::json_error;

/// Pinpoint's deliveries are a few hundred bytes; anything near this is not from Pinpoint.
pub const MAX_WEBHOOK_BYTES: usize = 256 * 1024;

/// Headers worth keeping in the log, with secret-bearing ones reduced to a note.
fn loggable_headers(headers: &HeaderMap) -> Value {
    let mut out = Map::new();
    for (name, value) in headers {
        let name = name.as_str();
        let shown = match name {
            "authorization" | "cookie" | "x-api-key" | "x-plugin-token" | "proxy-authorization" => {
                "[redacted]".to_owned()
            }
            "pinpoint-hmac-sha256" => format!("[redacted, {} characters]", value.len()),
            _ => String::from_utf8_lossy(value.as_bytes())
                .chars()
                .take(300)
                .collect(),
        };
        out.insert(name.to_owned(), Value::String(shown));
    }
    Value::Object(out)
}

// the parts of the router's state it needs, so that this handler does not depend on the router
pub async fn receive_pinpoint(
    State(console): State<ConsoleState>,
    State(intake): State<WebhookIntake>,
    client: Option<Extension<integration::client_addr::ClientAddr>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (raw, too_large) = match axum::body::to_bytes(body, MAX_WEBHOOK_BYTES).await {
        Ok(bytes) => (bytes, false),
        Err(_) => (axum::body::Bytes::new(), true),
    };
    let delivery = Delivery {
        raw_body: &raw,
        signature: headers
            .get(integration::pinpoint::signature::SIGNATURE_HEADER)
            .and_then(|v| v.to_str().ok()),
        headers: loggable_headers(&headers),
        client_ip: client.map(|Extension(addr)| addr.to_string()),
        too_large,
    };
    let outcome = intake.receive(&console.credentials, delivery).await;
    match outcome {
        Ok(outcome) => {
            let label = match &outcome {
                Outcome::Accepted { .. } => "accepted",
                Outcome::Duplicate { .. } => "duplicate",
                Outcome::Ignored { .. } => "ignored",
                Outcome::Rejected { .. } => "rejected",
                Outcome::Throttled { .. } => "rejected_not_stored",
            };
            metrics::counter!("webhook_deliveries_total", "outcome" => label).increment(1);
            publish(&console.changes, &outcome);
            match outcome {
                Outcome::Throttled { reason } => {
                    tracing::debug!(%reason, "webhook refused and not stored");
                    let mut response = json_error(StatusCode::TOO_MANY_REQUESTS, reason);
                    response.headers_mut().insert(
                        axum::http::header::RETRY_AFTER,
                        axum::http::HeaderValue::from_static("60"),
                    );
                    response
                }
                Outcome::Rejected {
                    delivery_id,
                    http_status,
                    reason,
                } => {
                    tracing::warn!(delivery_id, http_status, %reason, "webhook refused");
                    let status =
                        StatusCode::from_u16(http_status).unwrap_or(StatusCode::BAD_REQUEST);
                    json_error(status, reason)
                }
                other => {
                    if matches!(other, Outcome::Accepted { .. }) {
                        console.wake_worker.wake();
                    }
                    tracing::debug!(outcome = label, "webhook stored");
                    (StatusCode::OK, Json(json!(other))).into_response()
                }
            }
        }
        Err(e) => {
            // Pinpoint retries non-2xx answers: a delivery we could not store is asked for again
            tracing::error!(error = %e, "webhook could not be stored");
            json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the delivery could not be stored; please retry",
            )
        }
    }
}

/// Tells open pages about a stored delivery (and a new export) once it is committed.
fn publish(changes: &Changes, outcome: &Outcome) {
    let (delivery_id, export_id) = match outcome {
        Outcome::Accepted {
            delivery_id,
            export_id,
        } => {
            changes.publish(Change::Export {
                id: *export_id,
                status: "queued".to_owned(),
            });
            (*delivery_id, Some(*export_id))
        }
        Outcome::Duplicate {
            delivery_id,
            export_id,
            ..
        } => (*delivery_id, Some(*export_id)),
        Outcome::Ignored { delivery_id, .. } | Outcome::Rejected { delivery_id, .. } => {
            (*delivery_id, None)
        }
        Outcome::Throttled { .. } => return,
    };
    changes.publish(Change::Delivery {
        id: delivery_id,
        export_id,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_headers_are_not_logged() {
        let mut h = HeaderMap::new();
        h.insert(
            "pinpoint-hmac-sha256",
            "c2VjcmV0LXNpZ25hdHVyZQ==".parse().unwrap(),
        );
        h.insert("cookie", "session=abc".parse().unwrap());
        h.insert("user-agent", "Pinpoint".parse().unwrap());
        let logged = loggable_headers(&h).to_string();
        assert!(!logged.contains("c2VjcmV0"));
        assert!(!logged.contains("abc"));
        assert!(logged.contains("Pinpoint"));
    }
}

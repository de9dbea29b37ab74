//! Authenticity and identity of Pinpoint account webhooks (e.g. `application_hired`).
//!
//! Pinpoint signs the exact bytes it sends, so verification must run on the raw body before any
//! JSON parsing: re-serialising a parsed body changes whitespace or key order and breaks the
//! signature. The payload carries no event or delivery id and Pinpoint retries for up to a day,
//! hence the helpers for recognising repeats.

use base64::{
    alphabet,
    engine::{general_purpose::STANDARD, DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig},
    Engine as _,
};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Header carrying the signature. HTTP header names are case-insensitive, so look it up through
/// a case-insensitive map rather than comparing this string.
pub const SIGNATURE_HEADER: &str = "PINPOINT-HMAC-SHA256";

type HmacSha256 = Hmac<Sha256>;

const SIGNATURE_LEN: usize = 32;

/// Pinpoint sends padded standard base64, but a proxy or a hand-made test request may strip the
/// padding; that changes nothing about authenticity, so both forms are accepted.
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why a delivery was rejected. The messages go straight into the webhook log, so they name the
/// problem without echoing the header value or the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("no PINPOINT-HMAC-SHA256 signature header on the request")]
    Missing,
    #[error("the signature header is malformed: {0}")]
    Malformed(&'static str),
    #[error("signature does not match the body (wrong signing secret, or the body was altered)")]
    Mismatch,
}

/// Checks `header_value` against the raw request body. The comparison is constant-time
/// (`Mac::verify_slice`) so response timing reveals nothing about the expected signature.
/// A blank header counts as missing: it carries no signature at all.
pub fn verify(
    secret: &[u8],
    raw_body: &[u8],
    header_value: Option<&str>,
) -> Result<(), SignatureError> {
    let header = header_value
        .map(str::trim)
        .filter(|value| !value.is_empty())
        .ok_or(SignatureError::Missing)?;
    let provided = LENIENT_BASE64
        .decode(header)
        .map_err(|_| SignatureError::Malformed("not base64"))?;
    if provided.len() != SIGNATURE_LEN {
        return Err(SignatureError::Malformed(
            "wrong length for an HMAC-SHA256 signature",
        ));
    }
    keyed_mac(secret, raw_body)
        .ok_or(SignatureError::Mismatch)?
        .verify_slice(&provided)
        .map_err(|_| SignatureError::Mismatch)
}

/// The header value Pinpoint would send for `body`, for tests and for the sandbox's
/// "send test webhook" button.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    keyed_mac(secret, body)
        .map(|mac| STANDARD.encode(mac.finalize().into_bytes()))
        .unwrap_or_default()
}

/// `None` only if HMAC rejected the key length, which it never does (any key length is valid);
/// returning an `Option` keeps that impossibility from becoming a panic path.
fn keyed_mac(secret: &[u8], body: &[u8]) -> Option<HmacSha256> {
    let mut mac = HmacSha256::new_from_slice(secret).ok()?;
    mac.update(body);
    Some(mac)
}

/// The parts of a webhook we act on, with the full payload kept for logging and for event types
/// we do not model yet.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookEvent {
    pub event: String,
    /// Kept as text: the fixture sends Unix seconds as an integer, but the docs do not fix the
    /// type, and a string must not make us drop the delivery.
    pub triggered_at: Option<String>,
    pub application_id: Option<String>,
    pub job_id: Option<String>,
    pub raw: Value,
}

impl WebhookEvent {
    /// `triggeredAt` as Unix seconds when it is (or spells) an integer.
    pub fn triggered_at_unix(&self) -> Option<i64> {
        self.triggered_at.as_deref()?.parse().ok()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("webhook body is not valid JSON: {0}")]
    NotJson(String),
    #[error("webhook body has no \"event\" name")]
    MissingEvent,
}

/// Parses a verified body. Ids are read as numbers or strings because the docs do not say which
/// Pinpoint sends; missing ids are not an error here since some events have no application.
pub fn parse_event(raw_body: &[u8]) -> Result<WebhookEvent, EventError> {
    let raw: Value =
        serde_json::from_slice(raw_body).map_err(|err| EventError::NotJson(err.to_string()))?;
    let event = raw
        .get("event")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .ok_or(EventError::MissingEvent)?
        .to_owned();
    let triggered_at = raw.get("triggeredAt").and_then(text_of);
    let nested_id = |entity: &str| {
        raw.get("data")
            .and_then(|data| data.get(entity))
            .and_then(|object| object.get("id"))
            .and_then(text_of)
    };
    let application_id = nested_id("application");
    let job_id = nested_id("job");
    Ok(WebhookEvent {
        event,
        triggered_at,
        application_id,
        job_id,
        raw,
    })
}

fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::Number(number) => Some(number.to_string()),
        Value::String(text) => {
            let trimmed = text.trim();
            (!trimmed.is_empty()).then(|| trimmed.to_owned())
        }
        _ => None,
    }
}

/// Hex SHA-256 of the exact body, to spot a byte-identical redelivery (a retry) even for events
/// whose idempotency key cannot be built.
pub fn body_hash(raw: &[u8]) -> String {
    Sha256::digest(raw)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Key for "have we already handled this?": Pinpoint gives no event id, and a retried
/// `application_hired` for the same application must not create a second employee. `None` when
/// the event names no application, so the caller falls back to [`body_hash`].
pub fn idempotency_key(event: &WebhookEvent) -> Option<String> {
    event
        .application_id
        .as_ref()
        .map(|application| format!("{}:{application}", event.event))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"whsec_test_signing_secret";
    const FIXTURE: &[u8] = br#"{"event":"application_hired","triggeredAt":1614687278,"data":{"application":{"id":1},"job":{"id":1}}}"#;

    #[test]
    fn matches_rfc_4231_test_case_2() {
        // HMAC-SHA256(key "Jefe", "what do ya want for nothing?") from RFC 4231 §4.3.
        let hex = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        let expected = STANDARD.encode(bytes);
        assert_eq!(sign(b"Jefe", b"what do ya want for nothing?"), expected);
        assert!(expected.ends_with('='), "standard base64 keeps its padding");
    }

    /// (name, secret, body, header, expected outcome)
    type Case<'a> = (
        &'a str,
        &'a [u8],
        &'a [u8],
        Option<&'a str>,
        Result<(), SignatureError>,
    );

    #[test]
    fn signature_table() {
        let good = sign(SECRET, FIXTURE);

        let mut flipped = FIXTURE.to_vec();
        flipped[10] ^= 0x01;

        let reformatted =
            serde_json::to_vec_pretty(&serde_json::from_slice::<Value>(FIXTURE).unwrap()).unwrap();
        assert_ne!(reformatted, FIXTURE);

        let short = STANDARD.encode([7u8; 31]);
        let long = STANDARD.encode([7u8; 33]);
        let padded_ws = format!("  {good}\r\n");
        let unpadded = good.trim_end_matches('=').to_owned();
        // Other webhook senders use hex; its 64 characters are valid base64 but decode to 48 bytes.
        let hex_signature: String = STANDARD
            .decode(&good)
            .unwrap()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();

        let cases: Vec<Case> = vec![
            ("valid", SECRET, FIXTURE, Some(&good), Ok(())),
            (
                "one flipped byte",
                SECRET,
                &flipped,
                Some(&good),
                Err(SignatureError::Mismatch),
            ),
            (
                "re-serialised JSON",
                SECRET,
                &reformatted,
                Some(&good),
                Err(SignatureError::Mismatch),
            ),
            (
                "wrong secret",
                b"another-secret",
                FIXTURE,
                Some(&good),
                Err(SignatureError::Mismatch),
            ),
            (
                "missing header",
                SECRET,
                FIXTURE,
                None,
                Err(SignatureError::Missing),
            ),
            (
                "blank header",
                SECRET,
                FIXTURE,
                Some("   "),
                Err(SignatureError::Missing),
            ),
            (
                "not base64",
                SECRET,
                FIXTURE,
                Some("not base64!!"),
                Err(SignatureError::Malformed("not base64")),
            ),
            (
                "hex instead of base64",
                SECRET,
                FIXTURE,
                Some(&hex_signature),
                Err(SignatureError::Malformed(
                    "wrong length for an HMAC-SHA256 signature",
                )),
            ),
            (
                "31 bytes",
                SECRET,
                FIXTURE,
                Some(&short),
                Err(SignatureError::Malformed(
                    "wrong length for an HMAC-SHA256 signature",
                )),
            ),
            (
                "33 bytes",
                SECRET,
                FIXTURE,
                Some(&long),
                Err(SignatureError::Malformed(
                    "wrong length for an HMAC-SHA256 signature",
                )),
            ),
            (
                "surrounding whitespace",
                SECRET,
                FIXTURE,
                Some(&padded_ws),
                Ok(()),
            ),
            ("missing padding", SECRET, FIXTURE, Some(&unpadded), Ok(())),
        ];

        for (name, secret, body, header, expected) in cases {
            assert_eq!(verify(secret, body, header), expected, "case: {name}");
        }
    }

    #[test]
    fn wrong_signature_of_the_right_length_is_a_mismatch() {
        let other = sign(SECRET, b"{}");
        assert_eq!(
            verify(SECRET, FIXTURE, Some(&other)),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn empty_body_and_empty_secret_still_sign_and_verify() {
        let signature = sign(b"", b"");
        assert_eq!(STANDARD.decode(&signature).unwrap().len(), SIGNATURE_LEN);
        assert_eq!(verify(b"", b"", Some(&signature)), Ok(()));
        let long_secret = [9u8; 200];
        let signature = sign(&long_secret, FIXTURE);
        assert_eq!(verify(&long_secret, FIXTURE, Some(&signature)), Ok(()));
    }

    #[test]
    fn error_messages_suit_a_log() {
        assert_eq!(
            SignatureError::Mismatch.to_string(),
            "signature does not match the body (wrong signing secret, or the body was altered)"
        );
        assert_eq!(
            SignatureError::Missing.to_string(),
            "no PINPOINT-HMAC-SHA256 signature header on the request"
        );
        assert_eq!(
            SignatureError::Malformed("not base64").to_string(),
            "the signature header is malformed: not base64"
        );
    }

    #[test]
    fn parses_the_fixture() {
        let event = parse_event(FIXTURE).unwrap();
        assert_eq!(event.event, "application_hired");
        assert_eq!(event.triggered_at.as_deref(), Some("1614687278"));
        assert_eq!(event.triggered_at_unix(), Some(1_614_687_278));
        assert_eq!(event.application_id.as_deref(), Some("1"));
        assert_eq!(event.job_id.as_deref(), Some("1"));
        assert_eq!(event.raw["data"]["job"]["id"], 1);
        assert_eq!(
            idempotency_key(&event).as_deref(),
            Some("application_hired:1")
        );
    }

    #[test]
    fn parses_string_ids_and_string_timestamp() {
        let body = br#"{"event":"application_hired","triggeredAt":"2021-03-02T12:14:38Z",
            "data":{"application":{"id":"4711"},"job":{"id":" 12 "}}}"#;
        let event = parse_event(body).unwrap();
        assert_eq!(event.application_id.as_deref(), Some("4711"));
        assert_eq!(event.job_id.as_deref(), Some("12"));
        assert_eq!(event.triggered_at.as_deref(), Some("2021-03-02T12:14:38Z"));
        assert_eq!(event.triggered_at_unix(), None);
        assert_eq!(
            idempotency_key(&event).as_deref(),
            Some("application_hired:4711")
        );

        let numeric_string = parse_event(br#"{"event":"x","triggeredAt":"1614687278"}"#).unwrap();
        assert_eq!(numeric_string.triggered_at_unix(), Some(1_614_687_278));
    }

    #[test]
    fn missing_application_id_is_not_an_error() {
        let event = parse_event(br#"{"event":"job_created","data":{"job":{"id":5}}}"#).unwrap();
        assert_eq!(event.application_id, None);
        assert_eq!(event.job_id.as_deref(), Some("5"));
        assert_eq!(event.triggered_at, None);
        assert_eq!(idempotency_key(&event), None);

        let odd = parse_event(
            br#"{"event":"application_hired","data":{"application":{"id":null},"job":[]}}"#,
        )
        .unwrap();
        assert_eq!(odd.application_id, None);
        assert_eq!(odd.job_id, None);

        let no_data = parse_event(br#"{"event":"application_hired","data":"x"}"#).unwrap();
        assert_eq!(no_data.application_id, None);
    }

    #[test]
    fn not_json_carries_the_parser_message() {
        match parse_event(b"event=application_hired") {
            Err(EventError::NotJson(message)) => assert!(message.contains("line 1"), "{message}"),
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(parse_event(b""), Err(EventError::NotJson(_))));
    }

    #[test]
    fn missing_event_is_rejected() {
        for body in [
            &br#"{"triggeredAt":1,"data":{"application":{"id":1}}}"#[..],
            br#"{"event":"","data":{}}"#,
            br#"{"event":"  "}"#,
            br#"{"event":42}"#,
            br#"{"event":null}"#,
            b"[]",
            b"\"application_hired\"",
        ] {
            assert_eq!(
                parse_event(body),
                Err(EventError::MissingEvent),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn body_hash_is_hex_sha256_of_the_exact_bytes() {
        assert_eq!(
            body_hash(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            body_hash(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(body_hash(FIXTURE), body_hash(FIXTURE));
        assert_ne!(body_hash(FIXTURE), body_hash(&[FIXTURE, b" "].concat()));
    }
}

//! What the HiBob and Pinpoint clients share: one way to build an HTTP client, and one way to
//! describe the outcome of a connection check in words an admin can act on.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

pub(crate) const USER_AGENT: &str = concat!("pinpoint-hibob/", env!("CARGO_PKG_VERSION"));

pub(crate) fn http_client(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .connect_timeout(Duration::from_secs(5))
        .timeout(timeout)
        // A credentialed call must never follow a redirect to a host we did not configure.
        .redirect(reqwest::redirect::Policy::none())
        .build()
}

/// The result of a "Test connection" button.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionCheck {
    pub ok: bool,
    /// One sentence: what happened and, on failure, what to fix.
    pub summary: String,
    pub http_status: Option<u16>,
    pub elapsed_ms: u64,
}

impl ConnectionCheck {
    pub(crate) fn not_configured(what: &str) -> Self {
        Self {
            ok: false,
            summary: format!("Not configured: {what}."),
            http_status: None,
            elapsed_ms: 0,
        }
    }
}

/// Describes a transport failure without echoing the URL's query or any header.
pub(crate) fn describe_transport_error(service: &str, err: &reqwest::Error) -> String {
    if err.is_timeout() {
        format!("{service} did not answer in time (timeout)")
    } else if err.is_connect() {
        format!("Could not connect to {service}: check the base URL and that the host is reachable")
    } else if err.is_builder() {
        format!("The {service} base URL is not usable")
    } else {
        let cause = std::error::Error::source(err)
            .map(|c| c.to_string())
            .unwrap_or_else(|| "unknown cause".to_owned());
        format!("The request to {service} failed: {cause}")
    }
}

/// Runs one GET-style check and turns its outcome into a `ConnectionCheck`.
pub(crate) async fn check(
    service: &str,
    request: reqwest::RequestBuilder,
    explain_status: impl Fn(u16, &str) -> String,
) -> ConnectionCheck {
    let started = Instant::now();
    let outcome = request.send().await;
    let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    match outcome {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let ok = resp.status().is_success();
            // bodies are capped: this text only feeds an error sentence
            let body = resp.text().await.unwrap_or_default();
            let body: String = body.chars().take(500).collect();
            ConnectionCheck {
                ok,
                summary: if ok {
                    format!("Connected to {service} (HTTP {status}, {elapsed_ms} ms).")
                } else {
                    explain_status(status, &body)
                },
                http_status: Some(status),
                elapsed_ms,
            }
        }
        Err(e) => ConnectionCheck {
            ok: false,
            summary: format!("{}.", describe_transport_error(service, &e)),
            http_status: None,
            elapsed_ms,
        },
    }
}

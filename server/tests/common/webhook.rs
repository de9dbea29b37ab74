//! Pinpoint's side of the webhook: hire notices, signed with the secret the tests' consoles are
//! given, and delivered over HTTP.

use integration::pinpoint::signature as webhook_signature;

use super::{json_of, process, TestApp};

pub use super::process::hired;

/// The signing secret of the consoles connected to fakes or simulators.
pub const SECRET: &str = "whsec-test-secret";

/// The signature Pinpoint would send with `body`.
pub fn sign(body: &str) -> String {
    webhook_signature::sign(SECRET.as_bytes(), body.as_bytes())
}

impl TestApp {
    /// Posts `body` to the webhook, with `signature` when there is one.
    pub async fn deliver(&self, body: &str, signature: Option<&str>) -> reqwest::Response {
        self.deliver_with_headers(body, signature, &[]).await
    }

    /// [`TestApp::deliver`], with `headers` besides.
    pub async fn deliver_with_headers(
        &self,
        body: &str,
        signature: Option<&str>,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut req = reqwest::Client::new()
            .post(self.url("/webhooks/pinpoint"))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(sig) = signature {
            req = req.header("PINPOINT-HMAC-SHA256", sig);
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        req.send().await.expect("delivery")
    }

    /// Delivers application `id`'s hire, signed with [`SECRET`].
    pub async fn deliver_hire(&self, id: u64) -> reqwest::Response {
        process::post_hire(&reqwest::Client::new(), &self.base, SECRET, id)
            .await
            .expect("delivery")
    }

    /// Delivers application `id`'s hire, which must be acknowledged; the export it made (or, for
    /// a repeat, found).
    pub async fn hire(&self, id: u64) -> i64 {
        let answer = json_of(self.deliver_hire(id).await).await;
        answer["export_id"].as_i64().expect("an export")
    }
}

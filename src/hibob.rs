//! The HiBob API client: Basic auth with a service user, JSON, typed errors.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::{
    credentials::{CredentialError, CredentialKey, Credentials},
    outbound::{self, ConnectionCheck},
};

#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base_url: String,
    service_user_id: String,
    token: SecretString,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("hibob::Client")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot build the HTTP client: {0}")]
    Build(#[from] reqwest::Error),
    #[error(transparent)]
    Credentials(#[from] CredentialError),
}

/// HiBob's usual error body: `{"key": "...", "error": "..."}`.
#[derive(Debug, serde::Deserialize)]
struct ErrorBody {
    key: Option<String>,
    error: Option<String>,
}

pub(crate) fn error_text(body: &str) -> Option<String> {
    let parsed: ErrorBody = serde_json::from_str(body).ok()?;
    match (parsed.key, parsed.error) {
        (Some(k), Some(e)) => Some(format!("{e} ({k})")),
        (None, Some(e)) => Some(e),
        (Some(k), None) => Some(k),
        (None, None) => None,
    }
}

impl Client {
    pub fn new(
        base_url: &str,
        service_user_id: &str,
        token: SecretString,
    ) -> Result<Self, ClientError> {
        Ok(Self {
            http: outbound::http_client(Duration::from_secs(20))?,
            base_url: base_url.trim_end_matches('/').to_owned(),
            service_user_id: service_user_id.to_owned(),
            token,
        })
    }

    /// A client from the credentials in force, or `None` when HiBob is not configured.
    pub async fn from_credentials(creds: &Credentials) -> Result<Option<Self>, ClientError> {
        let base = creds.get(CredentialKey::HibobApiBaseUrl).await?;
        let id = creds.get(CredentialKey::HibobServiceUserId).await?;
        let token = creds.get(CredentialKey::HibobServiceUserToken).await?;
        match (base, id, token) {
            (Some(base), Some(id), Some(token)) => Ok(Some(Self::new(
                base.expose_secret(),
                id.expose_secret(),
                token,
            )?)),
            _ => Ok(None),
        }
    }

    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http
            .get(format!("{}{path}", self.base_url))
            .basic_auth(&self.service_user_id, Some(self.token.expose_secret()))
            .header(reqwest::header::ACCEPT, "application/json")
    }

    /// Reads the people-fields catalogue, which needs no permission beyond a valid service user.
    pub async fn check_connection(&self) -> ConnectionCheck {
        outbound::check("HiBob", self.get("/company/people/fields"), |status, body| {
            let detail = error_text(body)
                .map(|t| format!(" HiBob said: {t}."))
                .unwrap_or_default();
            match status {
                401 => format!("HiBob refused the service user ID and token (HTTP 401). Check both values.{detail}"),
                403 => format!("The service user lacks permission (HTTP 403). Add it to a permission group in Bob.{detail}"),
                404 => format!("HiBob answered 404: the base URL is probably wrong (it should end in /v1).{detail}"),
                429 => format!("HiBob is rate limiting this service user (HTTP 429). Try again in a minute.{detail}"),
                s => format!("HiBob answered HTTP {s}.{detail}"),
            }
        })
        .await
    }
}

/// "Test connection" for the credentials in force.
pub async fn check_configured(creds: &Credentials) -> Result<ConnectionCheck, ClientError> {
    Ok(match Client::from_credentials(creds).await? {
        Some(client) => client.check_connection().await,
        None => ConnectionCheck::not_configured("set the HiBob service user ID and token"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use wiremock::{
        matchers::{header, method, path},
        Mock, MockServer, ResponseTemplate,
    };

    #[test]
    fn error_text_reads_hibob_shape() {
        assert_eq!(
            error_text(r#"{"key":"validations.email.alreadyexists","error":"Email exists"}"#)
                .as_deref(),
            Some("Email exists (validations.email.alreadyexists)")
        );
        assert_eq!(error_text("<html>"), None);
    }

    #[tokio::test]
    async fn check_sends_basic_auth_and_reports_status() {
        let server = MockServer::start().await;
        // base64("SERVICE-1:tok")
        Mock::given(method("GET"))
            .and(path("/v1/company/people/fields"))
            .and(header("authorization", "Basic U0VSVklDRS0xOnRvaw=="))
            .respond_with(ResponseTemplate::new(200).set_body_string("[]"))
            .expect(1)
            .mount(&server)
            .await;
        let client = Client::new(
            &format!("{}/v1/", server.uri()),
            "SERVICE-1",
            SecretString::from("tok".to_owned()),
        )
        .unwrap();
        let check = client.check_connection().await;
        assert!(check.ok, "{check:?}");
        assert_eq!(check.http_status, Some(200));

        let bad = Client::new(
            &format!("{}/v1", server.uri()),
            "SERVICE-1",
            SecretString::from("wrong".to_owned()),
        )
        .unwrap();
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(401))
            .mount(&server)
            .await;
        let check = bad.check_connection().await;
        assert!(!check.ok);
        assert!(check.summary.contains("401"), "{}", check.summary);
    }

    #[tokio::test]
    async fn unreachable_host_is_explained() {
        let client = Client::new(
            "http://127.0.0.1:9/v1",
            "id",
            SecretString::from("t".to_owned()),
        )
        .unwrap();
        let check = client.check_connection().await;
        assert!(!check.ok);
        assert!(
            check.summary.contains("Could not connect"),
            "{}",
            check.summary
        );
    }
}

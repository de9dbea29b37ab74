//! The Pinpoint REST API client (JSON:API, `X-API-KEY`).

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::{
    credentials::{CredentialError, CredentialKey, Credentials},
    outbound::{self, ConnectionCheck},
};

pub const JSON_API: &str = "application/vnd.api+json";

#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base_url: String,
    api_key: SecretString,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("pinpoint::Client")
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

impl Client {
    pub fn new(base_url: &str, api_key: SecretString) -> Result<Self, ClientError> {
        Ok(Self {
            http: outbound::http_client(Duration::from_secs(20))?,
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key,
        })
    }

    pub async fn from_credentials(creds: &Credentials) -> Result<Option<Self>, ClientError> {
        let base = creds.get(CredentialKey::PinpointApiBaseUrl).await?;
        let key = creds.get(CredentialKey::PinpointApiKey).await?;
        match (base, key) {
            (Some(base), Some(key)) => Ok(Some(Self::new(base.expose_secret(), key)?)),
            _ => Ok(None),
        }
    }

    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http
            .get(format!("{}{path}", self.base_url))
            .header("X-API-KEY", self.api_key.expose_secret())
            .header(reqwest::header::ACCEPT, JSON_API)
    }

    /// Lists one job: the cheapest authenticated read the API offers.
    pub async fn check_connection(&self) -> ConnectionCheck {
        let request = self.get("/jobs").query(&[("page[size]", "1")]);
        outbound::check("Pinpoint", request, |status, _body| match status {
            401 => "Pinpoint refused the API key (HTTP 401). Check the key and that the API is enabled under Settings → API & Webhooks.".to_owned(),
            403 => "The API key lacks permission (HTTP 403). Give it application read and comment write.".to_owned(),
            404 => "Pinpoint answered 404: the base URL is probably wrong (it should end in /api/v1).".to_owned(),
            s => format!("Pinpoint answered HTTP {s}."),
        })
        .await
    }
}

pub async fn check_configured(creds: &Credentials) -> Result<ConnectionCheck, ClientError> {
    Ok(match Client::from_credentials(creds).await? {
        Some(client) => client.check_connection().await,
        None => ConnectionCheck::not_configured("set the Pinpoint API base URL and API key"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use wiremock::{
        matchers::{header, method, path, query_param},
        Mock, MockServer, ResponseTemplate,
    };

    #[tokio::test]
    async fn check_sends_the_api_key() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/api/v1/jobs"))
            .and(query_param("page[size]", "1"))
            .and(header("x-api-key", "key-1"))
            .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"data":[]}"#))
            .expect(1)
            .mount(&server)
            .await;
        let client = Client::new(
            &format!("{}/api/v1", server.uri()),
            SecretString::from("key-1".to_owned()),
        )
        .unwrap();
        assert!(client.check_connection().await.ok);
    }

    #[tokio::test]
    async fn refused_key_is_explained() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(401))
            .mount(&server)
            .await;
        let client = Client::new(&server.uri(), SecretString::from("bad".to_owned())).unwrap();
        let check = client.check_connection().await;
        assert!(!check.ok);
        assert!(check.summary.contains("refused the API key"));
    }
}

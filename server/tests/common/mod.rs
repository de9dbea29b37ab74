//! A real console on a loopback port with its own SQLite file, for integration tests.

#![allow(dead_code)]

use std::net::SocketAddr;

pub mod process;

use clap::Parser;
use server::{config::Cli, startup};
use sqlx::SqlitePool;

pub const ADMIN_EMAIL: &str = "admin@example.com";
pub const ADMIN_PASSWORD: &str = "admin password 123";
pub const SECRET_KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

pub struct TestApp {
    pub base: String,
    pub addr: SocketAddr,
    pub pool: SqlitePool,
    pub dir: tempfile::TempDir,
    /// The export worker, not running: tests drive it with `run_once`.
    pub worker: server::worker::Worker,
    /// The change notices the console's event stream serves.
    pub changes: integration::live::Changes,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(&[]).await
    }

    pub async fn spawn_with(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = format!("sqlite://{}/console.db", dir.path().display());
        Self::spawn_with_database(dir, &db, extra).await
    }

    /// A console whose database is `db` (which may lie outside `dir`, e.g. on a small file
    /// system the test mounted).
    pub async fn spawn_with_database(dir: tempfile::TempDir, db: &str, extra: &[&str]) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let db = db.to_owned();
        let site = addr.to_string();
        let mut args = vec![
            "pinpoint-hibob",
            "--database-url",
            &db,
            "--site-addr",
            &site,
            "--secret-key",
            SECRET_KEY,
            "--admin-email",
            ADMIN_EMAIL,
            "--admin-password",
            ADMIN_PASSWORD,
            // a console without credentials would otherwise simulate Pinpoint and HiBob
            "--sandbox",
            "off",
        ];
        args.extend_from_slice(extra);
        let config = Cli::try_parse_from(args).expect("config").config;
        startup::init_tracing(config.log_format);
        let startup::Built {
            state,
            router,
            worker,
            ..
        } = startup::build(&config).await.expect("console");
        tokio::spawn(async move {
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .expect("serve");
        });
        Self {
            base: format!("http://{addr}"),
            addr,
            pool: state.pool,
            dir,
            worker,
            changes: state.changes,
        }
    }

    /// A console configured for Pinpoint and HiBob at the given API bases (fakes), with the
    /// webhook signing secret `webhook_secret`.
    pub async fn spawn_connected(
        pinpoint_api: &str,
        hibob_api: &str,
        webhook_secret: &str,
    ) -> Self {
        Self::spawn_with(&[
            "--pinpoint-webhook-secret",
            webhook_secret,
            "--pinpoint-api-base-url",
            pinpoint_api,
            "--pinpoint-api-key",
            "pp-key",
            "--hibob-api-base-url",
            hibob_api,
            "--hibob-service-user-id",
            "SERVICE-1",
            "--hibob-service-user-token",
            "hb-token",
            "--hibob-default-site",
            "London",
            "--outbound-timeout-secs",
            "1",
        ])
        .await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A browser-like client: keeps cookies, does not follow redirects.
    pub fn client() -> reqwest::Client {
        reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client")
    }

    pub async fn call(
        &self,
        client: &reqwest::Client,
        endpoint: &str,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        client
            .post(self.url(&format!("/api/{endpoint}")))
            .header("Sec-Fetch-Site", "same-origin")
            .form(form)
            .send()
            .await
            .expect("request")
    }

    pub async fn login(
        &self,
        client: &reqwest::Client,
        email: &str,
        password: &str,
    ) -> reqwest::Response {
        self.call(client, "login", &[("email", email), ("password", password)])
            .await
    }

    pub async fn admin(&self) -> reqwest::Client {
        let c = Self::client();
        let res = self.login(&c, ADMIN_EMAIL, ADMIN_PASSWORD).await;
        assert!(
            res.status().is_success() || res.status().is_redirection(),
            "{}",
            res.status()
        );
        c
    }

    /// Signs in as a new user with the given role, created by the admin.
    pub async fn user_with_role(&self, role: &str) -> reqwest::Client {
        let admin = self.admin().await;
        let email = format!("{role}@example.com");
        let password = format!("{role} password 123");
        let res = self
            .call(
                &admin,
                "add_user",
                &[("email", &email), ("role", role), ("password", &password)],
            )
            .await;
        assert_eq!(
            res.status(),
            200,
            "{}",
            res.text().await.unwrap_or_default()
        );
        let c = Self::client();
        let res = self.login(&c, &email, &password).await;
        assert!(res.status().is_success() || res.status().is_redirection());
        c
    }

    pub async fn whoami(&self, client: &reqwest::Client) -> serde_json::Value {
        let res = self.call(client, "whoami", &[]).await;
        assert_eq!(res.status(), 200);
        res.json().await.expect("json")
    }
}

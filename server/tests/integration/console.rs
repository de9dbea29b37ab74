//! The console's foundation, exercised over real HTTP: operations endpoints, headers, sign-in,
//! sessions, throttling, CSRF, roles and secret handling.

use crate::common::{assert_ok, error_message, json_of, TestApp, ADMIN_EMAIL, ADMIN_PASSWORD};
use serde_json::Value;
use wiremock::{
    matchers::{method, path},
    Mock, MockServer, ResponseTemplate,
};

#[tokio::test]
async fn health_readiness_and_metrics() {
    let app = TestApp::spawn().await;
    let c = TestApp::client();
    let res = c.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers().contains_key("x-request-id"));
    let ready = json_of(c.get(app.url("/readyz")).send().await.unwrap()).await;
    assert_eq!(ready["status"], "ready");
    let engine = if crate::common::on_postgres() {
        "postgres"
    } else {
        "sqlite"
    };
    assert_eq!(ready["database"], engine, "readiness names the engine");
    let metrics = app.page(&c, "/metrics").await;
    assert!(metrics.contains("http_requests_total"), "{metrics}");
    assert!(metrics.contains("http_request_duration_seconds"));
    assert!(metrics.contains(r#"route="/healthz""#));
}

#[tokio::test]
async fn pages_carry_security_headers_and_a_nonce_csp() {
    let app = TestApp::spawn().await;
    let res = TestApp::client()
        .get(app.url("/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let h = res.headers().clone();
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "same-origin");
    let csp = h["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|s| s.split('\'').next())
        .expect("nonce in CSP")
        .to_owned();
    let html = res.text().await.unwrap();
    assert!(
        html.contains(&format!("nonce=\"{nonce}\"")),
        "hydration script carries the nonce"
    );
    assert!(html.contains("Sign in"));
}

#[tokio::test]
async fn console_pages_send_signed_out_people_to_login() {
    let app = TestApp::spawn().await;
    for page in ["/", "/settings", "/users", "/audit"] {
        let res = TestApp::client().get(app.url(page)).send().await.unwrap();
        assert!(res.status().is_redirection(), "{page}: {}", res.status());
        let location = res.headers()["location"].to_str().unwrap();
        assert!(location.starts_with("/login"), "{page} → {location}");
    }
}

#[tokio::test]
async fn wrong_password_and_unknown_user_look_identical() {
    let app = TestApp::spawn().await;
    let c = TestApp::client();
    let wrong = app.login(&c, ADMIN_EMAIL, "not the password").await;
    let wrong_status = wrong.status();
    let wrong_body: Value = wrong.json().await.unwrap();
    let unknown = app
        .login(&c, "nobody@example.com", "not the password")
        .await;
    assert_eq!(unknown.status(), wrong_status);
    let unknown_body: Value = unknown.json().await.unwrap();
    assert_eq!(wrong_status, 422);
    assert_eq!(wrong_body, unknown_body);
    assert_eq!(wrong_body["Invalid"], "Email or password is incorrect.");
    assert_eq!(app.whoami(&c).await, Value::Null);
}

fn session_cookie(res: &reqwest::Response) -> Option<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("pphb_session=") || v.starts_with("__Host-pphb_session="))
        .map(str::to_owned)
}

fn cookie_value(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_owned()
}

/// Who the console takes a request with just this `cookie` header for.
async fn whoami_with(app: &TestApp, cookie: &str) -> Value {
    let res = reqwest::Client::new()
        .post(app.url("/api/whoami"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    json_of(res).await
}

#[tokio::test]
async fn login_sets_a_strict_http_only_cookie_and_cycles_the_session() {
    let app = TestApp::spawn().await;
    let c = TestApp::client();
    let res = app.login(&c, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let first = session_cookie(&res).expect("session cookie");
    assert!(first.contains("HttpOnly"), "{first}");
    assert!(first.contains("SameSite=Strict"), "{first}");
    assert!(!first.contains("Secure"), "plain http public URL: {first}");
    assert_eq!(app.whoami(&c).await["email"], ADMIN_EMAIL);

    // signing in again with the old session presented gives a new id and kills the old one
    let res = app.login(&c, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let second = session_cookie(&res).expect("cycled cookie");
    assert_ne!(cookie_value(&first), cookie_value(&second));
    assert_eq!(whoami_with(&app, &cookie_value(&first)).await, Value::Null);
}

#[tokio::test]
async fn logout_revokes_the_session_server_side() {
    let app = TestApp::spawn().await;
    let c = TestApp::client();
    let res = app.login(&c, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let cookie = cookie_value(&session_cookie(&res).unwrap());
    let out = app.call(&c, "logout", &[]).await;
    assert!(out.status().is_success() || out.status().is_redirection());
    assert_eq!(whoami_with(&app, &cookie).await, Value::Null);
}

#[tokio::test]
async fn tampered_or_unknown_cookies_are_just_signed_out() {
    let app = TestApp::spawn().await;
    for cookie in [
        "pphb_session=AAAAAAAAAAAAAAAAAAAAAA",
        "pphb_session=%%%not-base64",
        "pphb_session=",
    ] {
        assert_eq!(whoami_with(&app, cookie).await, Value::Null, "{cookie}");
    }
}

#[tokio::test]
async fn repeated_failures_are_throttled_even_with_the_right_password() {
    let app = TestApp::spawn().await;
    let c = TestApp::client();
    for _ in 0..5 {
        assert_eq!(
            app.login(&c, ADMIN_EMAIL, "wrong password!").await.status(),
            422
        );
    }
    let res = app.login(&c, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(res.status(), 429);
    let body: Value = res.json().await.unwrap();
    assert!(body["Throttled"].as_u64().unwrap() >= 1);
    assert_eq!(app.whoami(&c).await, Value::Null);
    let audit: Vec<String> = app
        .sql
        .scalars(
            "SELECT action FROM audit_log WHERE action = 'login.failed'",
            &[],
        )
        .await;
    assert_eq!(audit.len(), 5);
}

#[tokio::test]
async fn cross_site_posts_are_refused_but_pinpoint_routes_are_not() {
    let app = TestApp::spawn().await;
    let c = TestApp::client();
    let form = [("email", ADMIN_EMAIL), ("password", ADMIN_PASSWORD)];
    let evil = c
        .post(app.url("/api/login"))
        .header("Origin", "https://evil.example")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(evil.status(), 403);
    let body: Value = evil.json().await.unwrap();
    assert!(error_message(&body).contains("cross-site"));
    assert!(body["error"]["request_id"]
        .as_str()
        .is_some_and(|s| s.len() > 8));
    let fetch_meta = c
        .post(app.url("/api/login"))
        .header("Sec-Fetch-Site", "cross-site")
        .header("Origin", app.base.as_str())
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(
        fetch_meta.status(),
        403,
        "Sec-Fetch-Site wins over a matching Origin"
    );
    let same_origin = c
        .post(app.url("/api/login"))
        .header("Origin", app.base.as_str())
        .form(&form)
        .send()
        .await
        .unwrap();
    assert!(
        same_origin.status().is_success(),
        "{}",
        same_origin.status()
    );
    for route in ["/", "/webhooks/pinpoint", "/export-candidate/meta"] {
        let res = c
            .post(app.url(route))
            .header("Origin", "https://evil.example")
            .header("Sec-Fetch-Site", "cross-site")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_ne!(res.status(), 403, "{route} authenticates otherwise");
    }
}

#[tokio::test]
async fn roles_are_enforced_on_every_server_function() {
    let app = TestApp::spawn().await;
    let anonymous = TestApp::client();
    let viewer = app.user_with_role("viewer").await;
    let operator = app.user_with_role("operator").await;
    let admin = app.admin().await;

    // (endpoint, form, least role that may call it)
    type Form<'a> = Vec<(&'a str, &'a str)>;
    let calls: [(&str, Form, &str); 8] = [
        ("setup_status", vec![], "viewer"),
        ("settings", vec![], "viewer"),
        ("test_connection", vec![("service", "hibob")], "operator"),
        ("save_settings", vec![("values[plugin_token]", "")], "admin"),
        ("users", vec![], "admin"),
        (
            "add_user",
            vec![
                ("email", "x@example.com"),
                ("role", "viewer"),
                ("password", "long enough pw 1"),
            ],
            "admin",
        ),
        (
            "set_user_role",
            vec![("id", "999"), ("role", "viewer")],
            "admin",
        ),
        ("audit", vec![], "admin"),
    ];
    let rank = |r: &str| match r {
        "viewer" => 1,
        "operator" => 2,
        _ => 3,
    };
    for (endpoint, form, least) in &calls {
        let res = app.call(&anonymous, endpoint, form).await;
        assert_eq!(res.status(), 401, "anonymous {endpoint}");
        for (role, client) in [
            ("viewer", &viewer),
            ("operator", &operator),
            ("admin", &admin),
        ] {
            let res = app.call(client, endpoint, form).await;
            let status = res.status().as_u16();
            if rank(role) >= rank(least) {
                assert_ne!(status, 403, "{role} may call {endpoint}");
                assert_ne!(status, 401, "{role} may call {endpoint}");
            } else {
                assert_eq!(status, 403, "{role} must not call {endpoint}");
            }
        }
    }
    for page in ["/users", "/audit"] {
        let res = viewer.get(app.url(page)).send().await.unwrap();
        let html = res.text().await.unwrap();
        assert!(html.contains("Your role does not allow this"), "{page}");
    }
}

#[tokio::test]
async fn a_disabled_user_is_signed_out_at_once() {
    let app = TestApp::spawn().await;
    let operator = app.user_with_role("operator").await;
    assert_eq!(app.whoami(&operator).await["role"], "operator");
    let admin = app.admin().await;
    let users = app.call_json(&admin, "users", &[]).await;
    let id = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == "operator@example.com")
        .unwrap()["id"]
        .to_string();
    let res = app
        .call(
            &admin,
            "set_user_disabled",
            &[("id", &id), ("disabled", "true")],
        )
        .await;
    assert_ok(res).await;
    assert_eq!(app.whoami(&operator).await, Value::Null);
    let again = app
        .login(
            &TestApp::client(),
            "operator@example.com",
            "operator password 123",
        )
        .await;
    assert_eq!(again.status(), 422);
}

#[tokio::test]
async fn the_last_admin_cannot_be_demoted() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let res = app
        .call(&admin, "set_user_role", &[("id", "1"), ("role", "viewer")])
        .await;
    assert_eq!(res.status(), 422);
    let body: Value = res.json().await.unwrap();
    assert!(body["Invalid"]
        .as_str()
        .unwrap()
        .contains("last active admin"));
}

#[tokio::test]
async fn secrets_never_come_back_in_plaintext() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let sentinel = "SENTINEL-9a8b7c6d5e4f3a2b1c0d";
    let res = app
        .call(
            &admin,
            "save_settings",
            &[
                ("values[hibob_service_user_token]", sentinel),
                ("values[plugin_token]", sentinel),
                ("values[hibob_service_user_id]", "SERVICE-42"),
            ],
        )
        .await;
    assert_ok(res).await;

    let settings = app
        .call(&admin, "settings", &[])
        .await
        .text()
        .await
        .unwrap();
    assert!(!settings.contains(sentinel), "{settings}");
    assert!(settings.contains("SERVICE-42"), "non-secrets are shown");
    let rows: Value = serde_json::from_str(&settings).unwrap();
    let token = setting(&rows, "hibob_service_user_token");
    assert_eq!(token["display"], "••••••••1c0d");
    assert_eq!(token["source"], "console");
    let page = app.page(&admin, "/settings").await;
    assert!(!page.contains(sentinel));
    assert!(page.contains("••••••••1c0d"), "masked value is shown");
    let audit = app.call(&admin, "audit", &[]).await.text().await.unwrap();
    assert!(audit.contains("HiBob service user token set"));
    assert!(!audit.contains(sentinel));

    // nothing stored either: database (its files on SQLite) and key file
    let stored = app.stored_bytes().await;
    assert!(
        !stored
            .windows(sentinel.len())
            .any(|w| w == sentinel.as_bytes()),
        "sentinel found in the database"
    );
    for entry in std::fs::read_dir(app.dir.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(
            !bytes
                .windows(sentinel.len())
                .any(|w| w == sentinel.as_bytes()),
            "sentinel found on disk"
        );
    }
}

#[tokio::test]
async fn environment_credentials_are_read_only() {
    let app = TestApp::spawn_with(&["--plugin-token", "from-the-environment-123"]).await;
    let admin = app.admin().await;
    let res = app
        .call(
            &admin,
            "save_settings",
            &[("values[plugin_token]", "other")],
        )
        .await;
    assert_eq!(res.status(), 422);
    let body: Value = res.json().await.unwrap();
    assert!(body["Invalid"].as_str().unwrap().contains("PLUGIN_TOKEN"));
    let settings = app.call_json(&admin, "settings", &[]).await;
    let row = setting(&settings, "plugin_token");
    assert_eq!(row["source"], "environment");
    assert!(!row.to_string().contains("from-the-environment-123"));
}

#[tokio::test]
async fn test_connection_reports_success_or_the_exact_error() {
    let hibob = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/company/people/fields"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_string(r#"{"key":"auth","error":"Bad credentials"}"#),
        )
        .mount(&hibob)
        .await;
    let base = format!("{}/v1", hibob.uri());
    let app = TestApp::spawn_with(&[
        "--hibob-api-base-url",
        &base,
        "--hibob-service-user-id",
        "SERVICE-1",
        "--hibob-service-user-token",
        "wrong-token",
    ])
    .await;
    let admin = app.admin().await;
    let res = app
        .call_json(&admin, "test_connection", &[("service", "hibob")])
        .await;
    assert_eq!(res["ok"], false);
    let summary = res["summary"].as_str().unwrap();
    assert!(
        summary.contains("401") && summary.contains("Bad credentials"),
        "{summary}"
    );

    let res = app
        .call_json(&admin, "test_connection", &[("service", "pinpoint")])
        .await;
    assert_eq!(res["ok"], false);
    assert!(res["summary"]
        .as_str()
        .unwrap()
        .starts_with("Not configured"));

    hibob.reset().await;
    Mock::given(method("GET"))
        .and(path("/v1/company/people/fields"))
        .respond_with(ResponseTemplate::new(200).set_body_string("[]"))
        .mount(&hibob)
        .await;
    let res = app
        .call_json(&admin, "test_connection", &[("service", "hibob")])
        .await;
    assert_eq!(res["ok"], true, "{res}");
}

#[tokio::test]
async fn https_public_url_gives_a_secure_host_prefixed_cookie() {
    let app = TestApp::spawn_with(&["--public-url", "https://console.example.com"]).await;
    let res = app
        .call(
            &TestApp::client(),
            "login",
            &[("email", ADMIN_EMAIL), ("password", ADMIN_PASSWORD)],
        )
        .await;
    let cookie = session_cookie(&res).expect("cookie");
    assert!(cookie.starts_with("__Host-pphb_session="), "{cookie}");
    assert!(cookie.contains("Secure"));
}

#[tokio::test]
async fn forms_work_without_javascript() {
    let app = TestApp::spawn().await;
    let c = TestApp::client();
    let bad = c
        .post(app.url("/api/login"))
        .header("Accept", "text/html")
        .header("Referer", app.url("/login"))
        .form(&[("email", ADMIN_EMAIL), ("password", "nope nope nope")])
        .send()
        .await
        .unwrap();
    assert!(bad.status().is_redirection());
    let to = bad.headers()["location"].to_str().unwrap().to_owned();
    assert!(to.contains("/login") && to.contains("__err"), "{to}");
    let shown = c.get(&to).send().await.unwrap().text().await.unwrap();
    assert!(
        shown.contains("Email or password is incorrect."),
        "error shown on the page"
    );

    let good = c
        .post(app.url("/api/login"))
        .header("Accept", "text/html")
        .header("Referer", app.url("/login"))
        .form(&[
            ("email", ADMIN_EMAIL),
            ("password", ADMIN_PASSWORD),
            ("next", "/settings"),
        ])
        .send()
        .await
        .unwrap();
    assert!(good.status().is_redirection());
    assert_eq!(good.headers()["location"], "/settings");
    let page = c.get(app.url("/settings")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Save settings"));
}

#[tokio::test]
async fn oversized_and_malformed_bodies_get_json_errors() {
    let app = TestApp::spawn().await;
    let c = TestApp::client();
    let huge = "x".repeat(600 * 1024);
    let res = c
        .post(app.url("/api/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("email={huge}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    let body: Value = res.json().await.unwrap();
    assert!(error_message(&body).contains("too large"));
    assert!(body["error"]["request_id"].is_string());

    let res = c
        .post(app.url("/api/set_user_role"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("id=not-a-number&role=%ZZ")
        .send()
        .await
        .unwrap();
    assert!(res.status().is_client_error(), "{}", res.status());
}

/// A sign-in as a browser behind a reverse proxy sends it: the proxy adds `X-Forwarded-For`.
async fn login_via_proxy(
    app: &TestApp,
    forwarded_for: &str,
    email: &str,
    password: &str,
) -> reqwest::Response {
    TestApp::client()
        .post(app.url("/api/login"))
        .header("Sec-Fetch-Site", "same-origin")
        .header("X-Forwarded-For", forwarded_for)
        .form(&[("email", email), ("password", password)])
        .send()
        .await
        .unwrap()
}

async fn login_addresses(app: &TestApp) -> Vec<String> {
    app.sql
        .scalars(
            "SELECT DISTINCT client_ip FROM audit_log WHERE action LIKE 'login.%' ORDER BY 1",
            &[],
        )
        .await
}

#[tokio::test]
async fn behind_a_trusted_proxy_one_client_cannot_lock_out_another() {
    let app = TestApp::spawn_with(&["--trusted-proxies", "127.0.0.1, 10.0.0.0/8"]).await;
    // a spray from one client; the left part of its header is its own invention
    for i in 0..20 {
        let res = login_via_proxy(
            &app,
            "198.51.100.1, 203.0.113.7",
            &format!("guess{i}@example.com"),
            "wrong password 123",
        )
        .await;
        assert_eq!(res.status(), 422, "guess {i}");
    }
    // that client is spent, whatever account it tries next
    let res = login_via_proxy(&app, "203.0.113.7", ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(res.status(), 429);
    // another client of the same proxy signs in at once, here through two proxy hops
    let res = login_via_proxy(&app, "203.0.113.8, 10.1.2.3", ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert!(
        res.status().is_success() || res.status().is_redirection(),
        "{}",
        res.status()
    );
    assert_eq!(login_addresses(&app).await, ["203.0.113.7", "203.0.113.8"]);

    // the webhook log names the forwarded client too
    let res = reqwest::Client::new()
        .post(app.url("/webhooks/pinpoint"))
        .header("X-Forwarded-For", "203.0.113.9")
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert!(res.status().is_client_error() || res.status().is_server_error());
    let logged: Option<String> = app
        .sql
        .scalar(
            "SELECT client_ip FROM webhook_deliveries ORDER BY id DESC LIMIT 1",
            &[],
        )
        .await;
    assert_eq!(logged.as_deref(), Some("203.0.113.9"));
}

#[tokio::test]
async fn an_untrusted_peer_cannot_choose_its_address() {
    // proxies are configured, but the test client (127.0.0.1) is not one of them
    let app = TestApp::spawn_with(&["--trusted-proxies", "10.0.0.0/8"]).await;
    for i in 0..20 {
        let res = login_via_proxy(
            &app,
            &format!("203.0.113.{i}"),
            &format!("guess{i}@example.com"),
            "wrong password 123",
        )
        .await;
        assert_eq!(res.status(), 422, "guess {i}");
    }
    let res = login_via_proxy(&app, "203.0.113.200", ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(res.status(), 429, "a new forwarded address is no way out");
    assert_eq!(login_addresses(&app).await, ["127.0.0.1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_guesses_never_exceed_the_limits() {
    let app = &TestApp::spawn().await;
    let failed = |app: &TestApp| {
        let sql = app.sql.clone();
        async move {
            sql.scalar::<i64>(
                "SELECT COUNT(*) FROM audit_log WHERE action = 'login.failed'",
                &[],
            )
            .await
        }
    };
    // thirty guesses at the admin's password at once: five are judged, the rest wait
    let statuses = futures_util::future::join_all((0..30).map(|_| async move {
        app.login(&TestApp::client(), ADMIN_EMAIL, "wrong password 123")
            .await
            .status()
            .as_u16()
    }))
    .await;
    assert!(
        statuses.iter().all(|s| [422, 429, 503].contains(s)),
        "{statuses:?}"
    );
    let judged = statuses.iter().filter(|s| **s == 422).count();
    assert!(judged <= 5, "{statuses:?}");
    assert_eq!(failed(app).await, judged as i64);

    // thirty accounts at once from the same address: at most twenty failures in all
    let statuses = futures_util::future::join_all((0..30).map(|i| async move {
        let email = format!("spray{i}@example.com");
        app.login(&TestApp::client(), &email, "wrong password 123")
            .await
            .status()
            .as_u16()
    }))
    .await;
    assert!(
        statuses.iter().all(|s| [422, 429, 503].contains(s)),
        "{statuses:?}"
    );
    let total = failed(app).await;
    assert!(total <= 20, "{total}");

    // the answer says how long to wait, in seconds, and the wait is not the whole window
    let res = app
        .login(&TestApp::client(), ADMIN_EMAIL, ADMIN_PASSWORD)
        .await;
    assert_eq!(res.status(), 429);
    let body: Value = res.json().await.unwrap();
    let wait = body["Throttled"].as_u64().unwrap();
    assert!((1..=15 * 60).contains(&wait), "{body}");
}

/// The row of `key` in what the `settings` server function answered.
fn setting<'a>(settings: &'a Value, key: &str) -> &'a Value {
    settings["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == key)
        .unwrap_or_else(|| panic!("no setting {key}: {settings}"))
}

/// Where the value of setting `key` comes from.
fn source<'a>(settings: &'a Value, key: &str) -> &'a Value {
    &setting(settings, key)["source"]
}

#[tokio::test]
async fn the_console_cannot_aim_credentials_at_local_or_plain_http_hosts() {
    let hibob = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_string("[]"))
        .mount(&hibob)
        .await;
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let res = app
        .call(
            &admin,
            "save_settings",
            &[
                ("values[hibob_service_user_id]", "SERVICE-1"),
                (
                    "values[hibob_service_user_token]",
                    "SENTINEL-token-0123456789",
                ),
            ],
        )
        .await;
    assert_ok(res).await;

    let local = format!("{}/v1", hibob.uri());
    let https_local = local.replacen("http://", "https://", 1);
    let named_local = https_local.replacen("127.0.0.1", "localhost", 1);
    for (url, says) in [
        (local.as_str(), "https://"),
        (https_local.as_str(), "private or local"),
        (named_local.as_str(), "private or local"),
        ("https://[::ffff:127.0.0.1]/v1", "private or local"),
        ("https://169.254.169.254/latest", "private or local"),
    ] {
        let res = app
            .call(
                &admin,
                "save_settings",
                &[
                    ("values[hibob_api_base_url]", url),
                    ("values[plugin_token]", "saved only with the rest"),
                ],
            )
            .await;
        assert_eq!(res.status(), 422, "{url}");
        let body: Value = res.json().await.unwrap();
        let message = body["Invalid"].as_str().unwrap();
        assert!(
            message.contains("HiBob API base URL") && message.contains(says),
            "{url}: {message}"
        );
    }
    let settings = app.call_json(&admin, "settings", &[]).await;
    assert_eq!(source(&settings, "hibob_api_base_url"), "default");
    assert_eq!(source(&settings, "plugin_token"), "unset", "nothing saved");
    assert_eq!(source(&settings, "hibob_service_user_token"), "console");
    let audit: i64 = app
        .sql
        .scalar(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'settings.credentials_saved'",
            &[],
        )
        .await;
    assert_eq!(audit, 1, "only the first save happened");
    assert!(
        hibob
            .received_requests()
            .await
            .unwrap_or_default()
            .is_empty(),
        "the token was never sent to the local host"
    );
    let page = app.page(&admin, "/settings").await;
    assert!(page.contains("Changing a base URL clears the credentials sent to it"));
}

#[tokio::test]
async fn changing_a_base_url_clears_the_credentials_sent_to_it() {
    let app = TestApp::spawn_with(&["--allow-private-destinations", "true"]).await;
    let admin = app.admin().await;
    let secrets = [
        ("values[hibob_service_user_id]", "SERVICE-1"),
        (
            "values[hibob_service_user_token]",
            "SENTINEL-token-0123456789",
        ),
        ("values[pinpoint_api_key]", "pinpoint-key-0123456789"),
    ];
    let res = app.call(&admin, "save_settings", &secrets).await;
    assert_ok(res).await;

    // allowed private, but still https only
    let res = app
        .call(
            &admin,
            "save_settings",
            &[("values[hibob_api_base_url]", "http://127.0.0.1:9/v1")],
        )
        .await;
    assert_eq!(res.status(), 422);

    let res = app
        .call(
            &admin,
            "save_settings",
            &[("values[hibob_api_base_url]", "https://127.0.0.1:9/v1")],
        )
        .await;
    let changed: Vec<String> = serde_json::from_str(&assert_ok(res).await).unwrap();
    assert!(
        changed.contains(&"HiBob service user token cleared (its base URL changed)".to_owned()),
        "{changed:?}"
    );
    let settings = app.call_json(&admin, "settings", &[]).await;
    assert_eq!(source(&settings, "hibob_api_base_url"), "console");
    assert_eq!(source(&settings, "hibob_service_user_token"), "unset");
    assert_eq!(source(&settings, "hibob_service_user_id"), "unset");
    assert_eq!(source(&settings, "pinpoint_api_key"), "console");
    let check = app
        .call_json(&admin, "test_connection", &[("service", "hibob")])
        .await;
    assert!(
        check["summary"]
            .as_str()
            .unwrap()
            .starts_with("Not configured"),
        "{check}"
    );
    let audit = app.call(&admin, "audit", &[]).await.text().await.unwrap();
    assert!(
        audit.contains("token cleared (its base URL changed)"),
        "{audit}"
    );

    // entered again with the new URL, the credentials stay
    let res = app
        .call(
            &admin,
            "save_settings",
            &[
                ("values[hibob_api_base_url]", "https://127.0.0.1:10/v1"),
                secrets[0],
                secrets[1],
            ],
        )
        .await;
    assert_eq!(res.status(), 200);
    let settings = app.call_json(&admin, "settings", &[]).await;
    assert_eq!(source(&settings, "hibob_service_user_token"), "console");
}

#[tokio::test]
async fn https_public_url_sends_strict_transport_security_everywhere() {
    let app = TestApp::spawn_with(&["--public-url", "https://console.example.com"]).await;
    let c = TestApp::client();
    for path in [
        "/healthz",
        "/login",
        "/settings",
        "/no-such-page",
        "/metrics",
    ] {
        let res = c.get(app.url(path)).send().await.unwrap();
        assert_eq!(
            res.headers()
                .get("strict-transport-security")
                .and_then(|v| v.to_str().ok()),
            Some("max-age=31536000"),
            "{path}"
        );
    }
    let res = c
        .post(app.url("/webhooks/pinpoint"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert!(res.headers().contains_key("strict-transport-security"));

    let plain = TestApp::spawn().await;
    let res = c.get(plain.url("/healthz")).send().await.unwrap();
    assert!(!res.headers().contains_key("strict-transport-security"));
}

#[tokio::test]
async fn metrics_need_the_bearer_token_when_one_is_set() {
    let app = TestApp::spawn_with(&["--metrics-token", "scrape-token-0123"]).await;
    let c = TestApp::client();
    for auth in [
        None,
        Some("Bearer wrong"),
        Some("scrape-token-0123"),
        Some("Basic c2NyYXBl"),
    ] {
        let mut req = c.get(app.url("/metrics"));
        if let Some(auth) = auth {
            req = req.header("Authorization", auth);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 401, "{auth:?}");
        assert_eq!(res.headers()["www-authenticate"], "Bearer");
        let body: Value = res.json().await.unwrap();
        assert!(error_message(&body).contains("METRICS_TOKEN"));
    }
    let res = c
        .get(app.url("/metrics"))
        .header("Authorization", "Bearer scrape-token-0123")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("http_requests_total"));
}

/// Settings shows the backup and retention settings the console started with, read-only, to
/// anyone signed in.
#[tokio::test]
async fn settings_show_backup_and_retention_settings() {
    let app = TestApp::spawn_with(&["--retain-audit-days", "1000", "--backup-keep", "3"]).await;
    let res = app.call(&TestApp::client(), "data_settings", &[]).await;
    assert_eq!(res.status(), 401);
    let viewer = app.user_with_role("viewer").await;
    let res = app.call(&viewer, "data_settings", &[]).await;
    assert_eq!(res.status(), 200);
    let rows: Vec<Value> = res.json().await.unwrap();
    let value = |var: &str| {
        rows.iter()
            .find(|r| r["variable"] == var)
            .map(|r| r["value"].as_str().unwrap_or_default().to_owned())
            .unwrap_or_else(|| panic!("{var} missing: {rows:?}"))
    };
    assert_eq!(value("RETAIN_AUDIT_DAYS"), "1000 days");
    assert_eq!(value("RETAIN_WEBHOOK_BODIES_DAYS"), "90 days");
    assert_eq!(value("BACKUP_DIR"), "off");
    assert_eq!(value("BACKUP_KEEP"), "—", "no schedule, no count");
    let page = viewer.get(app.url("/settings")).send().await.unwrap();
    let html = page.text().await.unwrap();
    assert!(html.contains("<h2>Data</h2>"), "{html}");
    // the credentials under a heading each, and one sentence on why a viewer cannot change them
    for section in ["pinpoint", "hibob", "onboarding", "alerts"] {
        assert!(
            html.contains(&format!("id=\"settings-{section}\"")),
            "{section}: {html}"
        );
    }
    assert!(
        html.contains("You are signed in as a viewer: you can read these settings, but only an admin can change them."),
        "{html}"
    );
    assert!(!html.contains("Save settings"), "{html}");
}

/// Sandbox mode makes a plugin token at its first start and keeps it, so the plugin can be
/// played against at once and a curl line written down keeps working after a restart.
#[tokio::test]
async fn the_sandbox_makes_a_plugin_token_once_and_keeps_it() {
    use clap::Parser;
    use integration::settings::credentials::CredentialKey;
    use secrecy::ExposeSecret;
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/sandbox.db", dir.path().display());
    let args = [
        "pinpoint-hibob",
        "--database-url",
        &db,
        "--secret-key",
        crate::common::SECRET_KEY,
        "--sandbox",
        "on",
    ];
    let mut tokens = Vec::new();
    for _ in 0..2 {
        let config = server::config::Cli::try_parse_from(args).unwrap().config;
        let built = server::startup::build(&config).await.unwrap();
        assert!(built.sandbox.is_some());
        let token = built
            .state
            .credentials
            .get(CredentialKey::PluginToken)
            .await
            .unwrap()
            .expect("a plugin token");
        tokens.push(token.expose_secret().to_owned());
        if let server::startup::Pool::Sqlite(pool) = &built.database.pool {
            pool.close().await;
        }
    }
    assert!(
        tokens[0].starts_with("sandbox-") && tokens[0].len() > 20,
        "{}",
        tokens[0]
    );
    assert_eq!(tokens[0], tokens[1], "kept across restarts");
}

#[tokio::test]
async fn assets_come_precompressed_and_cached_and_pages_compressed() {
    let app = TestApp::spawn().await;
    // the site root tests see (relative to the package, as leptos' default) gets two assets the
    // build would write: one hashed with its brotli copy, one without a hash
    let pkg = std::path::Path::new("target/site/pkg");
    std::fs::create_dir_all(pkg).unwrap();
    let plain = "console.log('hydrate');".repeat(50);
    std::fs::write(pkg.join("probe.Zx3kq9y1BfAq.js"), &plain).unwrap();
    std::fs::write(pkg.join("probe.Zx3kq9y1BfAq.js.br"), b"precompressed bytes").unwrap();
    std::fs::write(pkg.join("probe-unhashed.js"), &plain).unwrap();
    let c = TestApp::client();

    let res = c
        .get(app.url("/pkg/probe.Zx3kq9y1BfAq.js"))
        .header("accept-encoding", "br, gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-encoding"], "br");
    assert_eq!(
        res.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert_eq!(res.bytes().await.unwrap().as_ref(), b"precompressed bytes");

    // a browser that takes neither gets the file itself
    let res = c
        .get(app.url("/pkg/probe.Zx3kq9y1BfAq.js"))
        .send()
        .await
        .unwrap();
    assert!(res.headers().get("content-encoding").is_none());
    assert_eq!(res.text().await.unwrap(), plain);

    let res = c
        .get(app.url("/pkg/probe-unhashed.js"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["cache-control"], "no-cache");
    assert!(
        res.headers().get("content-encoding").is_none(),
        "files are never compressed on the fly"
    );

    // pages are compressed as they are rendered
    let res = c
        .get(app.url("/login"))
        .header("accept-encoding", "br")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-encoding"], "br");
    let res = c.get(app.url("/pkg/nothing-here.js")).send().await.unwrap();
    assert_eq!(res.status(), 404);
    assert!(res.headers().get("cache-control").is_none());
    for name in [
        "probe.Zx3kq9y1BfAq.js",
        "probe.Zx3kq9y1BfAq.js.br",
        "probe-unhashed.js",
    ] {
        let _ = std::fs::remove_file(pkg.join(name));
    }
}

#[tokio::test]
async fn an_admin_resets_a_password_in_the_console_and_a_user_changes_their_own() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let operator = app.user_with_role("operator").await;
    let id = app
        .scalar("SELECT id FROM users WHERE email = 'operator@example.com'")
        .await
        .to_string();

    // only an admin may reset, and an operator asking changes nothing
    let res = app
        .call(&operator, "reset_user_password", &[("id", &id)])
        .await;
    assert_eq!(res.status(), 403);
    let answer = app
        .call_json(&admin, "reset_user_password", &[("id", &id)])
        .await;
    assert_eq!(answer["email"], "operator@example.com");
    let password = answer["password"].as_str().unwrap_or_default().to_owned();
    assert_eq!(password.len(), 24, "{answer}");
    // their session ended; the old password no longer works and the shown one does
    assert_eq!(app.whoami(&operator).await, Value::Null);
    let old = TestApp::client();
    app.login(&old, "operator@example.com", "operator password 123")
        .await;
    assert_eq!(app.whoami(&old).await, Value::Null);
    let them = TestApp::client();
    app.login(&them, "operator@example.com", &password).await;
    assert_eq!(app.whoami(&them).await["email"], "operator@example.com");
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'user.password_reset' AND target = 'operator@example.com' AND actor_email = 'admin@example.com'")
            .await,
        1
    );

    // they pick their own: a wrong current password or a mismatch is refused, then it works and
    // this session carries on
    let change = |current: &str, new: &str, repeat: &str| {
        let (current, new, repeat) = (current.to_owned(), new.to_owned(), repeat.to_owned());
        let (app, them) = (&app, &them);
        async move {
            app.call(
                them,
                "change_password",
                &[("current", &current), ("new", &new), ("repeat", &repeat)],
            )
            .await
        }
    };
    let res = change("wrong", "my own password 1", "my own password 1").await;
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("not right"));
    let res = change(&password, "my own password 1", "my own password 2").await;
    assert_eq!(res.status(), 422);
    assert_ok(change(&password, "my own password 1", "my own password 1").await).await;
    assert_eq!(app.whoami(&them).await["email"], "operator@example.com");
    let fresh = TestApp::client();
    app.login(&fresh, "operator@example.com", "my own password 1")
        .await;
    assert_eq!(app.whoami(&fresh).await["email"], "operator@example.com");
}

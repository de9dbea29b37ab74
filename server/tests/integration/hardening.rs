//! What an outsider can make the console spend or reach: slow and idle connections, forged
//! origins, sessions read from the database file, sign-in floods and odd search text.

use std::{
    str::FromStr,
    time::{Duration, Instant},
};

use serde_json::Value;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::common::{json_of, TestApp, ADMIN_EMAIL, ADMIN_PASSWORD};

/// How long until the server closes `stream` (end of stream or a reset), reading and dropping
/// whatever it sends; `None` if it is still open after `limit`.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(limit, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await
    .ok()
    .map(|()| started.elapsed())
}

async fn connect(app: &TestApp) -> TcpStream {
    let addr = app.base.trim_start_matches("http://");
    TcpStream::connect(addr).await.expect("connect")
}

#[tokio::test]
async fn clients_that_never_finish_their_headers_are_disconnected() {
    let app = TestApp::spawn_with(&["--header-read-timeout-secs", "1"]).await;
    let limit = Duration::from_secs(4);

    let mut silent = connect(&app).await;
    let took = closed_within(&mut silent, limit)
        .await
        .expect("a client that sends nothing is disconnected");
    assert!(
        took >= Duration::from_millis(900),
        "not before the deadline: {took:?}"
    );

    let mut half = connect(&app).await;
    half.write_all(b"GET /healthz HTT").await.unwrap();
    closed_within(&mut half, limit)
        .await
        .expect("half a request line is disconnected");

    // one header line every 300 ms: each arrives in time, the whole head never does
    let trickle = connect(&app).await;
    let (mut read, mut write) = trickle.into_split();
    let writer = tokio::spawn(async move {
        let started = Instant::now();
        if write.write_all(b"GET /healthz HTTP/1.1\r\n").await.is_err() {
            return started.elapsed();
        }
        for i in 0..40 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let line = format!("x-slow-{i}: {i}\r\n");
            if write.write_all(line.as_bytes()).await.is_err() {
                break;
            }
        }
        started.elapsed()
    });
    let mut buf = [0u8; 1024];
    let ended = tokio::time::timeout(limit, async {
        while let Ok(n) = read.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "a slow-header client is disconnected");
    writer.abort();

    // a kept-alive connection idle after its answer is closed by the same deadline
    let mut idle = connect(&app).await;
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut head = [0u8; 12];
    idle.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    closed_within(&mut idle, limit)
        .await
        .expect("an idle kept-alive connection is closed");
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_until_one_closes() {
    let app =
        TestApp::spawn_with(&["--max-connections", "2", "--header-read-timeout-secs", "30"]).await;
    let first = connect(&app).await;
    let _second = connect(&app).await;
    // both are accepted before the third arrives
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut third = connect(&app).await;
    third
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let waited =
        tokio::time::timeout(Duration::from_millis(800), third.read_to_end(&mut answer)).await;
    assert!(
        waited.is_err(),
        "served beyond the cap: {}",
        String::from_utf8_lossy(&answer)
    );
    drop(first);
    tokio::time::timeout(Duration::from_secs(5), third.read_to_end(&mut answer))
        .await
        .expect("served once a connection closed")
        .unwrap();
    assert!(
        answer.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
}

#[tokio::test]
async fn server_functions_check_origin_against_the_public_url_not_the_host() {
    let app = TestApp::spawn_with(&["--public-url", "https://console.example.com"]).await;
    let form = [("email", ADMIN_EMAIL), ("password", ADMIN_PASSWORD)];
    let forged = TestApp::client()
        .post(app.url("/api/login"))
        .header("Host", "evil.example")
        .header("Origin", "http://evil.example")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(
        forged.status(),
        403,
        "a Host chosen by the caller proves nothing"
    );
    assert_eq!(
        app.scalar(&format!("SELECT COUNT(*) FROM {}", app.sessions_table()))
            .await,
        0
    );

    let ours = TestApp::client()
        .post(app.url("/api/login"))
        .header("Origin", "https://console.example.com")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert!(
        ours.status().is_success() || ours.status().is_redirection(),
        "{}",
        ours.status()
    );
    assert_eq!(
        app.scalar(&format!("SELECT COUNT(*) FROM {}", app.sessions_table()))
            .await,
        1
    );
}

/// The session id a sign-in answer's cookie carries, decoded as tower-sessions decodes it.
fn session_id(res: &reqwest::Response) -> tower_sessions::session::Id {
    let value = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("pphb_session="))
        .and_then(|v| v.split(';').next())
        .expect("session cookie");
    tower_sessions::session::Id::from_str(value).expect("a session id")
}

async fn session_rows(app: &TestApp) -> Vec<(String, Vec<u8>)> {
    app.sql
        .rows(
            &format!("SELECT id, data FROM {}", app.sessions_table()),
            &[],
        )
        .await
}

#[tokio::test]
async fn the_session_store_never_holds_a_cookie_id() {
    let app = TestApp::spawn().await;
    let c = TestApp::client();
    let res = app.login(&c, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let id = session_id(&res);
    let rows = session_rows(&app).await;
    assert_eq!(rows.len(), 1);
    let raw = id.0.to_le_bytes();
    for (stored, data) in &rows {
        assert_ne!(stored, &id.to_string());
        assert!(
            !data.windows(raw.len()).any(|w| w == raw),
            "the id is in the record"
        );
        let text = id.to_string();
        assert!(!data.windows(text.len()).any(|w| w == text.as_bytes()));
    }
    // the session works across requests, and its row is the same one
    assert_eq!(app.whoami(&c).await["email"], ADMIN_EMAIL);
    assert_eq!(app.whoami(&c).await["email"], ADMIN_EMAIL);
    assert_eq!(session_rows(&app).await.len(), 1);
    let out = app.call(&c, "logout", &[]).await;
    assert!(out.status().is_success() || out.status().is_redirection());
    assert!(session_rows(&app).await.is_empty(), "sign-out deletes it");
    assert_eq!(app.whoami(&c).await, Value::Null);
}

/// A sign-in through the trusted proxy on loopback, for the client `address`.
async fn login_from(
    app: &TestApp,
    address: &str,
    email: &str,
    password: &str,
) -> reqwest::Response {
    TestApp::client()
        .post(app.url("/api/login"))
        .header("Sec-Fetch-Site", "same-origin")
        .header("X-Forwarded-For", address)
        .form(&[("email", email), ("password", password)])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_throttled_address_is_audited_once_not_per_attempt() {
    let app = TestApp::spawn_with(&["--trusted-proxies", "127.0.0.1"]).await;
    for i in 0..20 {
        let res = login_from(
            &app,
            "203.0.113.7",
            &format!("guess{i}@example.com"),
            "wrong password 1",
        )
        .await;
        assert_eq!(res.status(), 422, "guess {i}");
    }
    for i in 20..30 {
        let res = login_from(
            &app,
            "203.0.113.7",
            &format!("guess{i}@example.com"),
            "wrong password 1",
        )
        .await;
        assert_eq!(res.status(), 429, "guess {i}");
    }
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'login.throttled'")
            .await,
        1
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'login.failed'")
            .await,
        20
    );
}

#[tokio::test]
async fn guesses_from_many_addresses_delay_the_owner_briefly_and_never_a_signed_in_session() {
    let app = TestApp::spawn_with(&["--trusted-proxies", "127.0.0.1"]).await;
    let signed_in = TestApp::client();
    let res = signed_in
        .post(app.url("/api/login"))
        .header("Sec-Fetch-Site", "same-origin")
        .header("X-Forwarded-For", "198.51.100.1")
        .form(&[("email", ADMIN_EMAIL), ("password", ADMIN_PASSWORD)])
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success() || res.status().is_redirection());
    let mut refused = 0;
    for i in 0..30 {
        let res = login_from(
            &app,
            &format!("203.0.113.{i}"),
            ADMIN_EMAIL,
            "wrong password 1",
        )
        .await;
        if res.status() == 429 {
            refused += 1;
        }
    }
    assert!(refused > 0, "the account's delay applies across addresses");
    assert_eq!(app.whoami(&signed_in).await["email"], ADMIN_EMAIL);
    let page = signed_in.get(app.url("/exports")).send().await.unwrap();
    assert_eq!(page.status(), 200, "the signed-in session is not delayed");

    let res = login_from(&app, "198.51.100.2", ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(res.status(), 429);
    let body: Value = res.json().await.unwrap();
    let wait = body["Throttled"].as_u64().unwrap();
    assert!((1..=10).contains(&wait), "told to wait {wait} s");
    tokio::time::sleep(Duration::from_secs(wait)).await;
    let res = login_from(&app, "198.51.100.2", ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert!(
        res.status().is_success() || res.status().is_redirection(),
        "{}",
        res.status()
    );
}

#[tokio::test]
async fn a_nul_byte_in_a_search_is_dropped_not_an_error() {
    let app = TestApp::spawn().await;
    app.sql
        .execute(
            "INSERT INTO exports (source, idempotency_key, pinpoint_application_id, status,
                              candidate_name, candidate_email, created_at, updated_at)
         VALUES ('webhook', 'k1', '4242', 'dead', 'Ada Lovelace', 'ada@example.com',
                 '2025-01-01T00:00:00Z', '2025-01-01T00:00:00Z')",
            &[],
        )
        .await;
    let admin = app.admin().await;
    for search in ["Love\0lace", "\0Lovelace", "Lovelace\u{1}"] {
        let found = json_of(app.call(&admin, "exports", &[("search", search)]).await).await;
        let apps: Vec<&str> = found["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["application_id"].as_str().unwrap())
            .collect();
        assert_eq!(apps, ["4242"], "{search:?}");
    }
    let page = admin
        .get(app.url("/exports?search=Love%00lace"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Ada Lovelace"));
}

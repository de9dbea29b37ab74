//! Signing in and out, and who is signed in.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// The signed-in person as the browser sees them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Me {
    pub email: String,
    pub role: String,
    /// HiBob and Pinpoint are simulated on this machine.
    pub sandbox: bool,
}

impl Me {
    pub fn is_admin(&self) -> bool {
        self.role == "admin"
    }
    pub fn can_operate(&self) -> bool {
        self.role == "admin" || self.role == "operator"
    }
}

/// The signed-in person, loaded once by the console frame and shared with pages.
pub type MeResource = Resource<Result<Option<Me>, AppError>>;

/// The signed-in person, for a page's async block (`None` while signed out or on error).
pub async fn current_me() -> Option<Me> {
    match use_context::<MeResource>() {
        Some(me) => me.await.ok().flatten(),
        None => None,
    }
}

#[server(endpoint = "whoami", output = crate::codec::JsonText)]
pub async fn whoami() -> Result<Option<Me>, AppError> {
    crate::ssr::no_store();
    let sandbox = crate::ssr::state()?.credentials.is_sandbox();
    Ok(crate::ssr::current_user().await?.map(|u| Me {
        email: u.email,
        role: u.role.to_string(),
        sandbox,
    }))
}

/// Longest `next` followed; console paths are far shorter.
const MAX_NEXT_LEN: usize = 2048;

/// Only paths on this site are followed after sign-in, so a crafted sign-in link cannot bounce a
/// fresh session to another site. Browsers are lenient with what they treat as another host
/// (`//x`, `/\x`, tabs and line breaks dropped, encoded slashes), so this accepts a narrow form
/// and sends anything else to the dashboard: printable ASCII starting with one `/`, no
/// backslash, and percent-encodings only of harmless characters. The sign-in page itself and
/// server functions are refused too (a loop, and a GET that would call a function).
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if is_safe_next(n) => n.to_owned(),
        _ => "/".to_owned(),
    }
}

fn is_safe_next(next: &str) -> bool {
    let bytes = next.as_bytes();
    if bytes.len() > MAX_NEXT_LEN || bytes.first() != Some(&b'/') {
        return false;
    }
    if matches!(bytes.get(1), Some(b'/' | b'\\')) {
        return false;
    }
    if !bytes
        .iter()
        .all(|b| (0x21..=0x7e).contains(b) && *b != b'\\')
    {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let decoded = match (bytes.get(i + 1), bytes.get(i + 2)) {
                (Some(h), Some(l)) => hex(*h).zip(hex(*l)).map(|(h, l)| h * 16 + l),
                _ => None,
            };
            // only characters that need encoding may be encoded: not control characters or
            // non-ASCII, not letters and digits (which would hide words such as `api`), and
            // nothing that changes how the path is split or decoded again
            match decoded {
                Some(c)
                    if (0x20..0x7f).contains(&c)
                        && !c.is_ascii_alphanumeric()
                        && !b"/\\.%-_~".contains(&c) => {}
                _ => return false,
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    let path = next.split(['?', '#']).next().unwrap_or_default();
    let path = path.trim_end_matches('/');
    !(path == "/login"
        || path.starts_with("/login/")
        || path == "/api"
        || path.starts_with("/api/"))
}

fn hex(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

#[server(endpoint = "login", output = crate::codec::JsonText)]
pub async fn login(email: String, password: String, next: Option<String>) -> Result<(), AppError> {
    use crate::{
        error::{fail, internal},
        ssr,
    };
    use integration::{access::throttle::HashingError, access::users::Actor};
    use secrecy::SecretString;

    let st = ssr::state()?;
    let ip = ssr::client_ip().await;
    let email = email.trim().to_owned();
    if email.is_empty() || password.is_empty() {
        return Err(fail(AppError::Invalid(
            "Enter your email and password.".into(),
        )));
    }
    if email.len() > 254 || password.len() > integration::access::users::MAX_PASSWORD_LEN * 4 {
        return Err(fail(AppError::Invalid(
            "Email or password is incorrect.".into(),
        )));
    }
    // the failure is reserved before the password is hashed, so parallel guesses are counted
    // against the limits before any of them learns its answer
    let attempt = match st.throttle.begin(&email, ip.as_deref()).await {
        Ok(attempt) => attempt,
        Err(refused) => {
            // a refused attempt is still an attempt: the audit log shows that someone kept
            // trying, once per address (or account) and window however many accounts they
            // try, and once per account and quarter of an hour across restarts
            if refused.first {
                tracing::warn!("sign-in throttled");
                let actor = Actor {
                    id: None,
                    email: email.clone(),
                    client_ip: ip.clone(),
                };
                let since =
                    integration::db::time_text(chrono::Utc::now() - chrono::Duration::minutes(15));
                st.db.audit().record_unless_recent(
                    &actor,
                    "login.throttled",
                    Some(&email),
                    "refused while too many attempts had failed; repeats from this address or for this account within 15 minutes are not listed",
                    &since,
                )
                .await?;
            }
            return Err(fail(AppError::Throttled(
                refused.wait.as_secs_f64().ceil() as u64
            )));
        }
    };
    let db = st.db.clone();
    let who = email.clone();
    let checked = st
        .throttle
        .check_password(async move {
            db.users()
                .authenticate(&who, SecretString::from(password))
                .await
        })
        .await;
    // an attempt dropped unsettled on these early returns hands its reservation back: the
    // password was never judged
    let user = match checked {
        Ok(found) => found?,
        Err(HashingError::Busy) => {
            tracing::warn!("sign-in refused: every password check was in use");
            return Err(fail(AppError::Busy));
        }
        Err(e) => return Err(fail(internal(e))),
    };
    let Some(user) = user else {
        attempt.failed();
        let actor = Actor {
            id: None,
            email: email.clone(),
            client_ip: ip,
        };
        st.db
            .audit()
            .record(&actor, "login.failed", Some(&email), "")
            .await?;
        return Err(fail(AppError::Invalid(
            "Email or password is incorrect.".into(),
        )));
    };
    attempt.succeeded().await;
    let session = ssr::session().await?;
    // a new id at sign-in, so a session id planted before sign-in is worthless
    session.cycle_id().await?;
    session.insert(ssr::SESSION_USER, user.id).await?;
    session
        .insert(ssr::SESSION_AUTH_VERSION, user.auth_version)
        .await?;
    session
        .insert(ssr::SESSION_STARTED, chrono::Utc::now().timestamp())
        .await?;
    let actor = Actor::user(&user, ip);
    st.db
        .audit()
        .record(&actor, "login.succeeded", Some(&user.email), "")
        .await?;
    leptos_axum::redirect(&safe_next(next.as_deref()));
    Ok(())
}

#[server(endpoint = "logout", output = crate::codec::JsonText)]
pub async fn logout() -> Result<(), AppError> {
    use crate::ssr;
    let st = ssr::state()?;
    if let Some(user) = ssr::current_user().await? {
        let actor = ssr::actor(&user).await;
        st.db
            .audit()
            .record(&actor, "logout", Some(&user.email), "")
            .await?;
    }
    // deletes the record in the store, so the old cookie is worthless even if replayed
    ssr::session().await?.flush().await?;
    leptos_axum::redirect("/login");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn same_site_paths_are_followed() {
        for path in [
            "/",
            "/settings",
            "/exports?status=dead&search=ada%40example.com",
            "/exports/12#timeline",
            "/webhooks?search=a+b%20c",
            "/loginhelp",
            "/users/",
        ] {
            assert_eq!(safe_next(Some(path)), path, "{path}");
        }
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn anything_else_goes_to_the_dashboard() {
        let long = format!("/{}", "a".repeat(5000));
        for hostile in [
            "",
            "settings",
            "//evil.example",
            "///evil.example",
            "/\\evil.example",
            "/\\/evil.example",
            "\\\\evil.example",
            "https://evil.example",
            "http:/evil.example",
            "javascript:alert(1)",
            "data:text/html,x",
            " /settings",
            "/ /evil",
            "/\t/evil.example",
            "/\n/evil.example",
            "/\r\n/evil.example",
            "/x\u{0}",
            "/x\u{7f}",
            "/caf\u{e9}",
            "/\u{ff0f}evil.example",
            "/%2F/evil.example",
            "/%2f%2fevil.example",
            "/%5Cevil.example",
            "/%5c%5cevil.example",
            "/%09/evil.example",
            "/%0d%0aSet-Cookie:x=1",
            "/%00",
            "/%7F",
            "/%C3%A9",
            "/%",
            "/%4",
            "/%zz",
            "/%%32%46evil",
            "/%252F%252Fevil.example",
            "/%2e%2e/api/logout",
            "/%61pi/logout",
            "/%6Cogin",
            "/login",
            "/login?next=//evil.example",
            "/login/",
            "/api/logout",
            "/api/set_user_role?id=2&role=admin",
            "/api",
            long.as_str(),
        ] {
            assert_eq!(safe_next(Some(hostile)), "/", "{hostile:?}");
        }
    }
}

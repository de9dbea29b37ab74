//! Alerts by e-mail. The mail server's address is resolved and checked here, like every other
//! destination (see [`crate::destination`]), and the connection goes to that checked address,
//! while TLS still verifies the certificate against the host name `SMTP_URL` gives. The user
//! name and password only travel inside TLS, or to a relay on this machine
//! (see [`smtp_security`]).

use std::time::Duration;

use lettre::{
    transport::smtp::{
        authentication::Credentials as SmtpCredentials,
        client::{Tls, TlsParameters},
        extension::ClientId,
    },
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
};

use super::{AlertError, MailTarget};
use crate::settings::credentials::{smtp_security, SmtpSecurity};

/// How long one message may take, from connecting to the server's last answer.
const TIMEOUT: Duration = Duration::from_secs(15);

pub(super) async fn send(target: &MailTarget, text: &str) -> Result<(), AlertError> {
    let bad = |e: &dyn std::fmt::Display| AlertError::MailSettings(e.to_string());
    let from = target.from.parse().map_err(|e| bad(&e))?;
    let mut builder = Message::builder().from(from).subject(subject(text));
    for to in &target.to {
        builder = builder.to(to.parse().map_err(|e| bad(&e))?);
    }
    let message = builder.body(text.to_owned()).map_err(|e| bad(&e))?;
    let transport = transport(target).await?;
    transport
        .send(message)
        .await
        .map(drop)
        .map_err(|e| AlertError::Mail(describe(&e)))
}

/// The transport to the checked address of the server `SMTP_URL` names.
async fn transport(target: &MailTarget) -> Result<AsyncSmtpTransport<Tokio1Executor>, AlertError> {
    let settings = |why: &str| AlertError::MailSettings(format!("SMTP_URL: {why}"));
    let security = smtp_security(&target.url).map_err(|why| settings(&why))?;
    let url = url::Url::parse(target.url.trim()).map_err(|_| settings("not a URL"))?;
    let host = url
        .host_str()
        .ok_or_else(|| settings("the URL has no host"))?;
    let address = target
        .guard
        .resolve(host)
        .await
        .map_err(|refused| {
            AlertError::MailSettings(format!(
                "the mail server in SMTP_URL cannot be used: {refused}"
            ))
        })?
        .into_iter()
        .next()
        .ok_or_else(|| settings("the mail server has no address"))?;
    let name = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let tls_for = |name: String| {
        TlsParameters::new(name).map_err(|_| settings("TLS cannot be set up for this host name"))
    };
    let (tls, default_port) = match security {
        SmtpSecurity::Tls => (Tls::Wrapper(tls_for(name)?), 465),
        SmtpSecurity::StartTls => (Tls::Required(tls_for(name)?), 587),
        SmtpSecurity::LocalCleartext => (Tls::None, 25),
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(address.to_string())
        .port(url.port().unwrap_or(default_port))
        .tls(tls)
        .timeout(Some(TIMEOUT));
    if let Some(password) = url.password() {
        builder = builder.credentials(SmtpCredentials::new(
            percent_decoded(url.username()),
            percent_decoded(password),
        ));
    }
    // as lettre reads SMTP URLs: the path names this client in HELO/EHLO
    let hello = url.path().trim_matches('/');
    if !hello.is_empty() {
        builder = builder.hello_name(ClientId::Domain(hello.to_owned()));
    }
    Ok(builder.build())
}

/// Decodes `%XX` escapes of a URL's user name or password; anything else is kept as written.
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        let escaped = (byte == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(decoded) => {
                out.push(decoded);
                i += 3;
            }
            None => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What failed, in terms of the settings an operator can change. The server's own words are
/// left out: they would turn "Send test alert" into a probe of whatever answers there.
fn describe(err: &lettre::transport::smtp::Error) -> String {
    let code = err.status().map(|c| c.to_string());
    tracing::warn!(
        timeout = err.is_timeout(),
        tls = err.is_tls(),
        permanent = err.is_permanent(),
        transient = err.is_transient(),
        code = code.as_deref().unwrap_or("-"),
        "the mail server did not take the alert"
    );
    if err.is_timeout() {
        "the mail server in SMTP_URL did not answer in time".to_owned()
    } else if err.is_tls() {
        "no TLS connection could be made to the mail server in SMTP_URL: check its host name and \
         port, and that it offers TLS there"
            .to_owned()
    } else if err.is_permanent() {
        "the mail server in SMTP_URL refused the alert: check the user and password in SMTP_URL, \
         and the sender and recipients"
            .to_owned()
    } else if err.is_transient() {
        "the mail server in SMTP_URL asked to try again later".to_owned()
    } else {
        "the mail server in SMTP_URL could not be reached or did not speak SMTP: check its host \
         and port"
            .to_owned()
    }
}

fn subject(text: &str) -> String {
    let first = text.lines().next().unwrap_or("Pinpoint → HiBob console");
    format!("[Pinpoint → HiBob] {}", first.trim_end_matches(':'))
        .chars()
        .take(150)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::destination::{tests::Scripted, Guard};

    fn target(url: &str, guard: Guard) -> MailTarget {
        MailTarget {
            url: url.to_owned(),
            from: "alerts@example.com".to_owned(),
            to: vec!["ops@example.com".to_owned()],
            guard,
        }
    }

    /// A listener that counts who connects to it.
    async fn listener() -> (u16, tokio::task::JoinHandle<usize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let counted = tokio::spawn(async move {
            let mut n = 0;
            while let Ok(Ok(_)) =
                tokio::time::timeout(Duration::from_millis(500), listener.accept()).await
            {
                n += 1;
            }
            n
        });
        (port, counted)
    }

    #[tokio::test]
    async fn a_mail_server_that_resolves_to_this_machine_is_refused_before_connecting() {
        let (port, connections) = listener().await;
        let url = format!("smtps://user:pw@mail.example.com:{port}");
        let guard = Guard::strict().with_lookup(Scripted::new(&["127.0.0.1"]));
        let err = send(&target(&url, guard), "text").await.unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("SMTP_URL") && text.contains("private or local"),
            "{text}"
        );
        assert!(!text.contains("pw"), "{text}");
        assert_eq!(connections.await.unwrap(), 0, "nothing connected");
    }

    #[tokio::test]
    async fn a_literal_internal_address_is_refused_and_failures_speak_of_the_settings() {
        let (port, connections) = listener().await;
        let url = format!("smtps://127.0.0.1:{port}");
        let err = send(&target(&url, Guard::strict()), "text")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("private or local"), "{err}");
        assert_eq!(connections.await.unwrap(), 0);

        // allowed, it connects; what the server did wrong is told in terms of SMTP_URL
        let (port, connections) = listener().await;
        let url = format!("smtps://localhost:{port}");
        let allowed = Guard::strict()
            .allowing_private(true)
            .with_lookup(Scripted::new(&["127.0.0.1"]));
        let err = send(&target(&url, allowed), "text").await.unwrap_err();
        assert!(err.to_string().contains("SMTP_URL"), "{err}");
        assert_eq!(connections.await.unwrap(), 1);
    }

    #[tokio::test]
    async fn cleartext_to_another_host_is_refused() {
        let url = "smtp://user:pw@mail.example.com:587";
        let guard = Guard::strict().with_lookup(Scripted::new(&["93.184.215.14"]));
        let err = send(&target(url, guard), "text").await.unwrap_err();
        assert!(err.to_string().contains("tls=required"), "{err}");
    }

    #[test]
    fn user_and_password_are_percent_decoded() {
        assert_eq!(percent_decoded("p%40ss%2Fword%"), "p@ss/word%");
        assert_eq!(percent_decoded("plain"), "plain");
    }
}

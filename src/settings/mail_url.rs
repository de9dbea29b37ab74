//! What `SMTP_URL` may ask for. The user name and password travel with every message, so they
//! must never cross a network in clear.

/// Whether the URL names this machine, where a cleartext connection never crosses a network.
pub fn is_loopback_host(url: &url::Url) -> bool {
    match url.host() {
        // an smtp:// URL's host is opaque to the URL parser, so an address arrives as a name
        Some(url::Host::Domain(name)) => {
            name.eq_ignore_ascii_case("localhost")
                || name
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// How alerts reach the mail server, as `SMTP_URL` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// `smtps://`: TLS from the first byte (port 465 by default).
    Tls,
    /// `smtp://…?tls=required`: STARTTLS, and nothing is sent if the server does not offer it
    /// (port 587 by default).
    StartTls,
    /// `smtp://` to this machine (a local relay): cleartext that never crosses a network.
    LocalCleartext,
}

/// What `SMTP_URL` asks for, or why it may not be used. The user name and password travel with
/// every message, so they must never cross a network in clear: a cleartext `smtp://` (no `tls`,
/// or `tls=opportunistic`, which falls back to clear) is only accepted to this machine.
pub fn smtp_security(value: &str) -> Result<SmtpSecurity, String> {
    let url = url::Url::parse(value.trim())
        .map_err(|e| format!("not a URL ({e}); e.g. smtps://user:password@smtp.example.com"))?;
    if url.host_str().is_none_or(str::is_empty) {
        return Err("the URL has no host; e.g. smtps://user:password@smtp.example.com".into());
    }
    let tls = url
        .query_pairs()
        .find(|(k, _)| k == "tls")
        .map(|(_, v)| v.into_owned());
    match (url.scheme(), tls.as_deref()) {
        ("smtps", _) => Ok(SmtpSecurity::Tls),
        ("smtp", Some("required")) => Ok(SmtpSecurity::StartTls),
        ("smtp", _) if is_loopback_host(&url) => Ok(SmtpSecurity::LocalCleartext),
        ("smtp", _) => Err(
            "the mail server would be reached without TLS, sending the password and the \
             alerts in clear: use smtps://host (TLS, port 465) or \
             smtp://host:587?tls=required (STARTTLS required)"
                .into(),
        ),
        _ => Err("use smtps://host (TLS) or smtp://host:587?tls=required (STARTTLS)".into()),
    }
}

/// Why `SMTP_URL` may not be used, if it may not (see [`smtp_security`]).
pub fn smtp_url_problem(value: &str) -> Option<String> {
    smtp_security(value).err()
}

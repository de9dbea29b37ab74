//! Where credentialed requests may go, checked twice: when a destination is saved in the
//! console ([`check_public`]), and on every connection ([`Guard`]), because a name that resolved
//! to a public address when it was saved may resolve to this machine, the cloud metadata service
//! or the internal network later.
//!
//! What is checked on every connection (HiBob, Pinpoint, the alert webhook, the mail server):
//! every address a host name resolves to, and a literal IP address in the URL, must be public
//! unless the operator allowed private destinations (`ALLOW_PRIVATE_DESTINATIONS=true`). The one
//! host a client is told to trust is exempt: the host of a URL the operator gave by environment
//! or flags, or the sandbox's simulators on this machine. That is where tests and private
//! deployments name local hosts, and the operator's own DNS is the operator's to keep.
//! Connections go straight to the checked address: proxies from the environment are not used.

use std::{
    future::Future,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    pin::Pin,
    sync::Arc,
    time::Duration,
};

/// Addresses that are not the public internet: private, shared (CGNAT), loopback, link-local,
/// unspecified, broadcast, multicast, benchmarking, protocol-assignment and documentation ranges,
/// in IPv4 and IPv6. IPv6 addresses that stand for an IPv4 one (IPv4-mapped ::ffff:0:0/96,
/// IPv4-translated ::ffff:0:0:0/96, NAT64 64:ff9b::/96 and 64:ff9b:1::/48) are refused whatever
/// they embed: no public API is published that way, and a translator may reach anything. On an
/// IPv6-only host behind DNS64 the operator allows them with `ALLOW_PRIVATE_DESTINATIONS`.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_internal_v4(v4),
        IpAddr::V6(v6) => is_internal_v6(v6),
    }
}

fn is_internal_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        // "this network", shared address space (CGNAT), IETF protocol assignments, benchmarking
        // and the reserved class E
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && ip.octets()[2] == 0)
        || (a == 198 && (b & 0xfe) == 18)
        || a >= 240
}

fn is_internal_v6(ip: Ipv6Addr) -> bool {
    let segments = ip.segments();
    let embedded_v4 = |hi: usize| {
        Ipv4Addr::new(
            (segments[hi] >> 8) as u8,
            segments[hi] as u8,
            (segments[hi + 1] >> 8) as u8,
            segments[hi + 1] as u8,
        )
    };
    let first = segments[0];
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        // unique local fc00::/7, link-local fe80::/10, the old site-local fec0::/10
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        || (first & 0xffc0) == 0xfec0
        // documentation 2001:db8::/32
        || (first == 0x2001 && segments[1] == 0x0db8)
        // TEREDO 2001::/32 tunnels to an address it hides; ORCHID and other IETF assignments in
        // 2001::/23 are not reachable hosts either
        || (first == 0x2001 && segments[1] < 0x0200)
        // IPv4-compatible ::a.b.c.d reaches the IPv4 address inside; the translated forms are
        // refused whole (see above)
        || (segments[..6].iter().all(|s| *s == 0) && is_internal_v4(embedded_v4(6)))
        || segments[..6] == [0, 0, 0, 0, 0, 0xffff]
        || segments[..6] == [0, 0, 0, 0, 0xffff, 0]
        || segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0]
        || (first == 0x64 && segments[1] == 0xff9b && segments[2] == 1)
        // 6to4 2002::/16 carries an IPv4 address in its next 32 bits
        || (first == 0x2002 && is_internal_v4(embedded_v4(1)))
}

/// A save waits this long at most for the name to resolve; a slow resolver must not hang the
/// settings page.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Refuses a URL whose host is, or resolves to, an internal address. Every address the name
/// resolves to must be public, since the client may connect to any of them.
pub async fn check_public(url: &url::Url) -> Result<(), String> {
    let port = url.port_or_known_default().unwrap_or(443);
    let addresses: Vec<IpAddr> = match url.host() {
        None => return Err("the URL has no host".into()),
        Some(url::Host::Ipv4(ip)) => vec![IpAddr::V4(ip)],
        Some(url::Host::Ipv6(ip)) => vec![IpAddr::V6(ip)],
        Some(url::Host::Domain(name)) => {
            tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((name, port)))
                .await
                .map_err(|_| format!("its host {name} could not be resolved in time"))?
                .map_err(|e| format!("its host {name} could not be resolved ({e})"))?
                .map(|a| a.ip())
                .collect()
        }
    };
    if addresses.is_empty() {
        return Err("its host has no address".into());
    }
    match addresses.into_iter().find(|ip| is_internal(*ip)) {
        Some(ip) => Err(format!(
            "it points at {ip}, a private or local address; only the operator may allow that \
             (ALLOW_PRIVATE_DESTINATIONS=true)"
        )),
        None => Ok(()),
    }
}

/// How a [`Guard`] turns a host name into addresses: the system's resolver, or a script in tests
/// (a name that answers a public address once and a local one the next time).
pub trait Lookup: Send + Sync + 'static {
    fn lookup(&self, host: String) -> LookupFuture;
}

pub type LookupFuture = Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send>>;

/// The system resolver, bounded by [`RESOLVE_TIMEOUT`].
struct SystemLookup;

impl Lookup for SystemLookup {
    fn lookup(&self, host: String) -> LookupFuture {
        Box::pin(async move {
            let found =
                tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((host.as_str(), 0)))
                    .await
                    .map_err(|_| {
                        std::io::Error::new(std::io::ErrorKind::TimedOut, "name lookup timed out")
                    })??;
            Ok(found.map(|a| a.ip()).collect())
        })
    }
}

/// Why a [`Guard`] did not let a connection be made. The texts name the host, never a path,
/// query or credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error(
        "{host} is a private or local address ({ip}); only the operator may allow that \
         (ALLOW_PRIVATE_DESTINATIONS=true)"
    )]
    Internal { host: String, ip: IpAddr },
    #[error("{host} could not be resolved")]
    Unresolved { host: String },
    #[error("{host} has no address")]
    NoAddress { host: String },
}

impl Refused {
    /// The refusal inside a client's error, if a guard was the cause.
    pub fn find_in<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a Refused> {
        let mut current = Some(err);
        while let Some(e) = current {
            if let Some(refused) = e.downcast_ref::<Refused>() {
                return Some(refused);
            }
            current = e.source();
        }
        None
    }
}

/// Checks the address of every connection a client makes (see the module's documentation).
/// Plugged into the HTTP clients as their resolver, and asked directly for a literal IP address
/// (which no resolver sees) and for the mail server.
#[derive(Clone)]
pub struct Guard {
    allow_private: bool,
    /// Lower-case host as a URL spells it (`[::1]` for IPv6).
    trusted_host: Option<String>,
    lookup: Arc<dyn Lookup>,
}

impl Default for Guard {
    fn default() -> Self {
        Self::strict()
    }
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("allow_private", &self.allow_private)
            .field("trusted_host", &self.trusted_host)
            .finish_non_exhaustive()
    }
}

impl Guard {
    /// Public addresses only, through the system resolver.
    pub fn strict() -> Self {
        Self {
            allow_private: false,
            trusted_host: None,
            lookup: Arc::new(SystemLookup),
        }
    }

    /// The operator's `ALLOW_PRIVATE_DESTINATIONS`.
    pub fn allowing_private(mut self, allow: bool) -> Self {
        self.allow_private = allow;
        self
    }

    /// Exempts the host of `url` (the operator's own configuration, or the sandbox's).
    pub fn trusting_host_of(mut self, url: &str) -> Self {
        self.trusted_host = url::Url::parse(url.trim())
            .ok()
            .and_then(|u| u.host_str().map(str::to_ascii_lowercase));
        self
    }

    /// Replaces how names are resolved (tests script the answers).
    pub fn with_lookup(mut self, lookup: Arc<dyn Lookup>) -> Self {
        self.lookup = lookup;
        self
    }

    fn exempt(&self, host: &str) -> bool {
        self.allow_private
            || self
                .trusted_host
                .as_deref()
                .is_some_and(|t| t.eq_ignore_ascii_case(host))
    }

    fn check_addresses(&self, host: &str, addresses: &[IpAddr]) -> Result<(), Refused> {
        if addresses.is_empty() {
            return Err(Refused::NoAddress {
                host: host.to_owned(),
            });
        }
        if self.exempt(host) {
            return Ok(());
        }
        match addresses.iter().find(|ip| is_internal(**ip)) {
            Some(ip) => Err(Refused::Internal {
                host: host.to_owned(),
                ip: *ip,
            }),
            None => Ok(()),
        }
    }

    /// Refuses a URL whose host is a literal internal IP address: such a URL never reaches a
    /// resolver. Names pass here and are checked when they are resolved.
    pub fn check_literal(&self, url: &url::Url) -> Result<(), Refused> {
        let ip = match url.host() {
            Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
            Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
            _ => return Ok(()),
        };
        let host = url.host_str().unwrap_or_default();
        self.check_addresses(host, &[ip])
    }

    /// The addresses `host` may be reached at: all of them public, or the host exempt. A
    /// literal address is checked as it is.
    pub async fn resolve(&self, host: &str) -> Result<Vec<IpAddr>, Refused> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let addresses = match bare.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => {
                self.lookup
                    .lookup(bare.to_owned())
                    .await
                    .map_err(|_| Refused::Unresolved {
                        host: host.to_owned(),
                    })?
            }
        };
        self.check_addresses(host, &addresses)?;
        Ok(addresses)
    }
}

impl reqwest::dns::Resolve for Guard {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let guard = self.clone();
        let host = name.as_str().to_ascii_lowercase();
        Box::pin(async move {
            let addresses = guard.resolve(&host).await?;
            // the connector puts the URL's port on each address
            let addrs: reqwest::dns::Addrs =
                Box::new(addresses.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn internal_addresses_are_recognised_in_every_form() {
        for internal in [
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "127.0.0.1",
            "127.8.8.8",
            "169.254.169.254",
            "0.0.0.0",
            "0.1.2.3",
            "255.255.255.255",
            "224.0.0.1",
            "239.255.255.250",
            "100.64.0.1",
            "100.127.255.255",
            "192.0.2.10",
            "240.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "febf::1",
            "fc00::1",
            "fd12:3456::1",
            "fec0::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::1",
            "2002:c0a8:0101::",
            "2001:db8::1",
            "192.0.0.8",
            "198.18.0.1",
            "198.19.255.255",
            "2001::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "::ffff:8.8.8.8",
            "::ffff:0:808:808",
            "::ffff:0:7f00:1",
            "64:ff9b::808:808",
            "64:ff9b:1::1",
        ] {
            assert!(is_internal(ip(internal)), "{internal}");
        }
    }

    #[test]
    fn public_addresses_pass() {
        for public in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "34.120.1.2",
            "2606:4700::1111",
            "2002:0808:0808::1",
            "192.0.1.1",
            "198.20.0.1",
            "2001:4860:4860::8888",
        ] {
            assert!(!is_internal(ip(public)), "{public}");
        }
    }

    #[tokio::test]
    async fn literal_and_named_local_hosts_are_refused() {
        for url in [
            "https://127.0.0.1:8443/v1",
            "https://[::1]/v1",
            "https://[::ffff:7f00:1]/v1",
            "https://169.254.169.254/latest",
            "https://localhost:9/v1",
            "https://2130706433/v1",
        ] {
            let url = url::Url::parse(url).unwrap();
            let err = check_public(&url).await.unwrap_err();
            assert!(err.contains("private or local"), "{url}: {err}");
        }
        let public = url::Url::parse("https://8.8.8.8/v1").unwrap();
        assert!(check_public(&public).await.is_ok());
    }

    /// Answers each lookup with the next of its scripted addresses (the last one from then on),
    /// and counts the lookups.
    pub(crate) struct Scripted {
        answers: std::sync::Mutex<Vec<IpAddr>>,
        pub(crate) asked: std::sync::atomic::AtomicUsize,
    }

    impl Scripted {
        pub(crate) fn new(answers: &[&str]) -> Arc<Self> {
            let mut answers: Vec<IpAddr> = answers.iter().map(|a| ip(a)).collect();
            answers.reverse();
            Arc::new(Self {
                answers: std::sync::Mutex::new(answers),
                asked: Default::default(),
            })
        }
    }

    impl Lookup for Scripted {
        fn lookup(&self, _host: String) -> LookupFuture {
            self.asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let next = {
                let mut answers = self.answers.lock().unwrap();
                // the last answer stays, for every lookup after the script
                if answers.len() > 1 {
                    answers.pop()
                } else {
                    answers.last().copied()
                }
            };
            Box::pin(async move { Ok(next.into_iter().collect()) })
        }
    }

    #[tokio::test]
    async fn a_name_is_checked_each_time_it_is_resolved() {
        let script = Scripted::new(&["93.184.215.14", "127.0.0.1", "169.254.169.254"]);
        let guard = Guard::strict().with_lookup(script.clone());
        assert_eq!(
            guard.resolve("hibob.example").await.unwrap(),
            vec![ip("93.184.215.14")]
        );
        let second = guard.resolve("hibob.example").await.unwrap_err();
        assert_eq!(
            second,
            Refused::Internal {
                host: "hibob.example".into(),
                ip: ip("127.0.0.1")
            }
        );
        assert!(second.to_string().contains("ALLOW_PRIVATE_DESTINATIONS"));
        // the operator's permission, or the operator's own host, lets it through
        let allowed = guard.clone().allowing_private(true);
        assert!(allowed.resolve("hibob.example").await.is_ok());
        assert_eq!(script.asked.load(std::sync::atomic::Ordering::SeqCst), 3);
        let trusted = Guard::strict()
            .trusting_host_of("http://LOCALHOST:8080/v1")
            .with_lookup(Scripted::new(&["127.0.0.1"]));
        assert!(trusted.resolve("localhost").await.is_ok());
        assert!(Guard::strict()
            .with_lookup(Scripted::new(&[]))
            .resolve("nowhere.example")
            .await
            .is_err());
    }

    #[test]
    fn literal_addresses_are_checked_without_a_resolver() {
        let guard = Guard::strict();
        for url in [
            "https://127.0.0.1:8443/v1",
            "https://[::1]/v1",
            "https://169.254.169.254/latest",
            "https://[::ffff:a9fe:a9fe]/latest",
            "https://2130706433/v1",
        ] {
            let url = url::Url::parse(url).unwrap();
            assert!(guard.check_literal(&url).is_err(), "{url}");
        }
        for url in ["https://8.8.8.8/v1", "https://api.hibob.com/v1"] {
            let url = url::Url::parse(url).unwrap();
            assert!(guard.check_literal(&url).is_ok(), "{url}");
        }
        let local = url::Url::parse("http://127.0.0.1:9000/v1").unwrap();
        assert!(Guard::strict()
            .trusting_host_of("http://127.0.0.1:9000")
            .check_literal(&local)
            .is_ok());
        assert!(Guard::strict()
            .allowing_private(true)
            .check_literal(&local)
            .is_ok());
    }
}

//! Which address a request really comes from. Behind a reverse proxy every TCP peer is the proxy,
//! so sign-in throttling and the audit log would see one address for everybody; but a client can
//! write any `X-Forwarded-For` it likes, so the header is believed only as far as it was written
//! by proxies the operator named (`TRUSTED_PROXIES`).

use std::{fmt, net::IpAddr, str::FromStr};

/// The address a request is attributed to: the TCP peer, or the client a trusted proxy forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientAddr(pub IpAddr);

impl fmt::Display for ClientAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientAddrError {
    #[error("{0:?} is not an IP address or a network such as 10.0.0.0/8 or fd00::/8")]
    InvalidProxy(String),
}

/// One address or network, written `192.0.2.1`, `10.0.0.0/8` or `fd00::/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Network {
    type Err = ClientAddrError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || ClientAddrError::InvalidProxy(text.to_owned());
        let text = text.trim();
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let addr = addr
            .parse::<IpAddr>()
            .map_err(|_| invalid())?
            .to_canonical();
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(invalid)?,
            Some(_) => return Err(invalid()),
        };
        Ok(Self { addr, prefix })
    }
}

/// The proxies whose `X-Forwarded-For` is believed. Empty (the default): none, the peer is the
/// client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Network>);

impl TrustedProxies {
    /// A comma-separated list; blanks between commas are ignored, anything else unparseable is an
    /// error (a typo must not silently trust nobody, or everybody).
    pub fn parse(list: &str) -> Result<Self, ClientAddrError> {
        list.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(Network::from_str)
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(ip))
    }
}

impl FromStr for TrustedProxies {
    type Err = ClientAddrError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// One `X-Forwarded-For` element: an address, optionally with a port (`192.0.2.1:443`,
/// `[2001:db8::1]:443`). Anything else (`unknown`, obfuscated names, garbage) is `None`.
fn forwarded_element(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    let port_ok = |p: &str| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit());
    if let Some(rest) = text.strip_prefix('[') {
        let (addr, after) = rest.split_once(']')?;
        let ok = after.is_empty() || after.strip_prefix(':').is_some_and(port_ok);
        return ok
            .then(|| addr.parse::<std::net::Ipv6Addr>().ok())
            .flatten()
            .map(|ip| IpAddr::V6(ip).to_canonical());
    }
    let (addr, port) = text.split_once(':')?;
    if !port_ok(port) {
        return None;
    }
    addr.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

/// Elements looked at, from the right; a chain longer than any real proxy path is not followed.
const MAX_HOPS: usize = 32;

/// The client address of a request from `peer` carrying these `X-Forwarded-For` header values
/// (in the order received; `None` for a value that is not text).
///
/// Only when the peer is a trusted proxy is the header read, from the right: each proxy appends
/// the address it saw, so the first address from the right that is not itself a trusted proxy is
/// the client. An element that cannot be read stops the walk, because everything left of it was
/// written by someone the nearest trusted proxy did not vouch for; the last trusted address read
/// is then the best that is known.
pub fn resolve<'a>(
    peer: IpAddr,
    forwarded_for: impl IntoIterator<Item = Option<&'a str>>,
    trusted: &TrustedProxies,
) -> ClientAddr {
    let peer = peer.to_canonical();
    if trusted.is_empty() || !trusted.contains(peer) {
        return ClientAddr(peer);
    }
    let mut elements: Vec<Option<&str>> = Vec::new();
    for value in forwarded_for {
        match value {
            Some(text) => elements.extend(text.split(',').map(Some)),
            None => elements.push(None),
        }
    }
    let mut chosen = peer;
    for element in elements.into_iter().rev().take(MAX_HOPS) {
        let Some(ip) = element.and_then(forwarded_element) else {
            break;
        };
        chosen = ip;
        if !trusted.contains(ip) {
            break;
        }
    }
    ClientAddr(chosen)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn proxies(list: &str) -> TrustedProxies {
        TrustedProxies::parse(list).unwrap()
    }

    fn from(peer: &str, headers: &[&str], trusted: &str) -> String {
        resolve(
            ip(peer),
            headers.iter().map(|h| Some(*h)),
            &proxies(trusted),
        )
        .to_string()
    }

    #[test]
    fn networks_parse_and_match() {
        let t = proxies(" 10.0.0.0/8, 192.0.2.1 ,, fd00::/8 ");
        assert!(t.contains(ip("10.200.3.4")));
        assert!(t.contains(ip("192.0.2.1")));
        assert!(!t.contains(ip("192.0.2.2")));
        assert!(t.contains(ip("fd12::1")));
        assert!(!t.contains(ip("fe80::1")));
        // an IPv4 peer seen through a dual-stack socket is the same peer
        assert!(t.contains(ip("::ffff:10.1.1.1")));
        assert!(proxies("0.0.0.0/0").contains(ip("203.0.113.9")));
        assert!(proxies("::/0").contains(ip("2001:db8::1")));
        assert!(proxies("").is_empty());
        assert!(proxies("::ffff:10.0.0.1").contains(ip("10.0.0.1")));
    }

    #[test]
    fn bad_proxy_lists_are_refused() {
        for bad in [
            "10.0.0.0/33",
            "fd00::/129",
            "10.0.0.0/",
            "10.0.0.0/-1",
            "10.0.0.0/8/8",
            "proxy.internal",
            "10.0.0.1:80",
            "10.0.0.0/+8",
            "*",
        ] {
            assert!(TrustedProxies::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        assert_eq!(from("198.51.100.7", &["203.0.113.1"], ""), "198.51.100.7");
        assert_eq!(
            from("198.51.100.7", &["203.0.113.1"], "10.0.0.0/8"),
            "198.51.100.7"
        );
        assert_eq!(from("::ffff:198.51.100.7", &[], ""), "198.51.100.7");
    }

    #[test]
    fn behind_trusted_proxies_the_rightmost_untrusted_address_is_the_client() {
        let t = "10.0.0.0/8";
        assert_eq!(from("10.0.0.1", &["203.0.113.5"], t), "203.0.113.5");
        // the client wrote the left part itself; only the proxy's own append is believed
        assert_eq!(
            from("10.0.0.1", &["1.1.1.1, 203.0.113.5"], t),
            "203.0.113.5"
        );
        assert_eq!(
            from("10.0.0.1", &["1.1.1.1, 203.0.113.5, 10.0.0.9"], t),
            "203.0.113.5"
        );
        // several header lines are one list, in order
        assert_eq!(
            from("10.0.0.1", &["1.1.1.1", "203.0.113.5", "10.0.0.9"], t),
            "203.0.113.5"
        );
        assert_eq!(
            from("10.0.0.1", &["[2001:db8::7]:443, 203.0.113.5:8080"], t),
            "203.0.113.5"
        );
        assert_eq!(from("10.0.0.1", &["[2001:db8::7]:443"], t), "2001:db8::7");
        assert_eq!(from("10.0.0.1", &["::ffff:203.0.113.5"], t), "203.0.113.5");
        // nothing forwarded, or only proxies: the farthest proxy known
        assert_eq!(from("10.0.0.1", &[], t), "10.0.0.1");
        assert_eq!(from("10.0.0.1", &["10.0.0.3, 10.0.0.2"], t), "10.0.0.3");
    }

    #[test]
    fn malformed_forwarded_for_never_yields_an_address_nobody_vouched_for() {
        let t = "10.0.0.0/8";
        for header in [
            "",
            " ",
            ",",
            "unknown",
            "not an address",
            "203.0.113.5:",
            "203.0.113.5:99999999",
            "203.0.113.5:http",
            "[2001:db8::1",
            "[2001:db8::1]x",
            "[203.0.113.5]",
            "2001:db8::1:80:80:80:80:80:80",
            "fe80::1%eth0",
            "203.0.113.5\u{0}",
            "999.0.0.1",
            "_hidden",
        ] {
            assert_eq!(from("10.0.0.1", &[header], t), "10.0.0.1", "{header:?}");
        }
        // garbage to the left of a trusted hop: the hop is the best that is known
        assert_eq!(from("10.0.0.1", &["garbage, 10.0.0.7"], t), "10.0.0.7");
        // garbage to the left of the client does not matter
        assert_eq!(
            from("10.0.0.1", &["garbage, 203.0.113.5"], t),
            "203.0.113.5"
        );
        // a value that is not text stops the walk there
        let got = resolve(ip("10.0.0.1"), [Some("203.0.113.5"), None], &proxies(t));
        assert_eq!(got.to_string(), "10.0.0.1");
    }

    #[test]
    fn a_long_chain_of_proxies_is_not_followed_forever() {
        let chain = vec!["10.0.0.2"; 1000].join(",");
        let header = format!("203.0.113.5, {chain}");
        assert_eq!(from("10.0.0.1", &[&header], "10.0.0.0/8"), "10.0.0.2");
    }
}

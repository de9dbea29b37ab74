//! Where the console may be told, from its own settings page, to send credentialed requests.
//! A base URL typed in the console decides where the HiBob token or the Pinpoint key goes, so
//! an account that can edit settings must not be able to aim them at this machine, the cloud
//! metadata service or the internal network. The operator's own configuration (environment and
//! flags) is not checked: that is where tests and private deployments name such hosts.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    time::Duration,
};

/// Addresses that are not the public internet: private, shared (CGNAT), loopback, link-local,
/// unspecified, broadcast, multicast and documentation ranges, in IPv4 and IPv6, including IPv6
/// forms that embed an IPv4 address.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip.to_canonical() {
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
        // "this network", shared address space (CGNAT) and the reserved class E
        || a == 0
        || (a == 100 && (64..128).contains(&b))
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
        // IPv4-compatible ::a.b.c.d and NAT64 64:ff9b::/96 reach the IPv4 address inside
        || (segments[..6].iter().all(|s| *s == 0) && is_internal_v4(embedded_v4(6)))
        || (segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] && is_internal_v4(embedded_v4(6)))
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

#[cfg(test)]
mod tests {
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
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:0808:0808::1",
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
}

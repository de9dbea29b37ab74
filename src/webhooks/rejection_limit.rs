//! How many unverified deliveries one client address may have stored per minute. A stranger can
//! post to the webhook URL as fast as the network allows; what fails verification is kept only
//! for diagnosis, so beyond a few a minute it is counted and answered, not stored. Verified
//! deliveries never pass through here and are never slowed.

//!
//! Where consoles share a database that keeps limits for them (PostgreSQL), the allowance is
//! counted there, so that several consoles do not each store a stranger's few a minute. The
//! count is kept per bucket of addresses ([`shared_bucket`]) rather than per address: the table
//! then has at most [`MAX_ADDRESSES`] rows however many addresses send, and keeps no address.

use std::{
    collections::HashMap,
    net::IpAddr,
    time::{Duration, Instant},
};

use sha2::{Digest, Sha256};

/// Addresses remembered at once. Past this, windows that have ended are dropped; if all are
/// current (a flood from very many addresses), new addresses share one overflow allowance.
/// Shared, the number of buckets addresses are counted in, besides one for deliveries whose
/// address is unknown.
const MAX_ADDRESSES: usize = 4096;
const WINDOW_SECS: u64 = 60;
/// The window each allowance is counted over.
pub const WINDOW: Duration = Duration::from_secs(WINDOW_SECS);

/// The bucket `addr`'s rejected deliveries are counted in where consoles count together: one of
/// [`MAX_ADDRESSES`] by a digest of the address, or the one after them for an unknown address.
/// Two addresses sharing a bucket share an allowance, which costs at most some stored
/// diagnostics, never a verified delivery.
pub fn shared_bucket(addr: Option<IpAddr>) -> i32 {
    let Some(addr) = addr else {
        return i32::try_from(MAX_ADDRESSES).unwrap_or(i32::MAX);
    };
    let digest = Sha256::digest(addr.to_string().as_bytes());
    let n = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
    let buckets = u32::try_from(MAX_ADDRESSES).unwrap_or(u32::MAX).max(1);
    i32::try_from(n % buckets).unwrap_or(0)
}

#[derive(Debug)]
pub struct RejectionLimit {
    per_window: u32,
    windows: HashMap<IpAddr, (Instant, u32)>,
    /// The allowance shared by addresses that did not fit in the map.
    overflow: (Instant, u32),
}

impl RejectionLimit {
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_window: per_minute.max(1),
            windows: HashMap::new(),
            overflow: (Instant::now(), 0),
        }
    }

    /// Whether a rejected delivery from `addr` may be stored now (and counts it if so).
    pub fn allow(&mut self, addr: Option<IpAddr>, now: Instant) -> bool {
        let per_window = self.per_window;
        let take = |slot: &mut (Instant, u32)| {
            if now.saturating_duration_since(slot.0).as_secs() >= WINDOW_SECS {
                *slot = (now, 0);
            }
            if slot.1 < per_window {
                slot.1 += 1;
                true
            } else {
                false
            }
        };
        let Some(addr) = addr else {
            return take(&mut self.overflow);
        };
        if !self.windows.contains_key(&addr) && self.windows.len() >= MAX_ADDRESSES {
            self.windows.retain(|_, (start, _)| {
                now.saturating_duration_since(*start).as_secs() < WINDOW_SECS
            });
            if self.windows.len() >= MAX_ADDRESSES {
                return take(&mut self.overflow);
            }
        }
        take(self.windows.entry(addr).or_insert((now, 0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn each_address_gets_its_allowance_per_minute() {
        let mut limit = RejectionLimit::new(3);
        let now = Instant::now();
        let a: IpAddr = "203.0.113.7".parse().unwrap();
        let b: IpAddr = "2001:db8::1".parse().unwrap();
        assert!((0..3).all(|_| limit.allow(Some(a), now)));
        assert!(!limit.allow(Some(a), now));
        assert!(limit.allow(Some(b), now), "another address is not affected");
        assert!(limit.allow(Some(a), now + Duration::from_secs(61)));
    }

    #[test]
    fn shared_buckets_stay_within_the_bound_and_keep_an_address_in_one() {
        let a: IpAddr = "203.0.113.7".parse().unwrap();
        assert_eq!(shared_bucket(Some(a)), shared_bucket(Some(a)));
        let unknown = shared_bucket(None);
        assert_eq!(unknown, MAX_ADDRESSES as i32);
        let mut seen = std::collections::HashSet::new();
        for i in 0..20_000u32 {
            let b = shared_bucket(Some(IpAddr::from(std::net::Ipv4Addr::from(i))));
            assert!((0..unknown).contains(&b));
            seen.insert(b);
        }
        assert!(
            seen.len() > 4000,
            "addresses spread over the buckets: {}",
            seen.len()
        );
    }

    #[test]
    fn many_addresses_cannot_grow_the_memory() {
        let mut limit = RejectionLimit::new(2);
        let now = Instant::now();
        let mut allowed = 0;
        for i in 0..20_000u32 {
            let addr = IpAddr::from(std::net::Ipv6Addr::from(u128::from(i) << 64));
            if limit.allow(Some(addr), now) {
                allowed += 1;
            }
        }
        assert!(limit.windows.len() <= MAX_ADDRESSES);
        assert_eq!(allowed, MAX_ADDRESSES + 2, "one each, then the shared two");
        // once the windows end, the map makes room again
        assert!(limit.allow(
            Some("198.51.100.1".parse().unwrap()),
            now + Duration::from_secs(61)
        ));
    }
}

//! Slows down password guessing: failed logins are counted per account and per client address in a
//! sliding window, and both limits apply, because attackers rotate addresses and spray accounts.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub per_account: usize,
    pub per_address: usize,
    pub window: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            per_account: 5,
            per_address: 20,
            window: Duration::from_secs(15 * 60),
        }
    }
}

/// Bound on remembered keys, so a flood of distinct addresses cannot grow memory without limit.
const MAX_KEYS: usize = 50_000;

#[derive(Debug, Clone, Default)]
pub struct LoginThrottle {
    limits: Limits,
    failures: Arc<Mutex<HashMap<String, VecDeque<Instant>>>>,
}

impl LoginThrottle {
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            failures: Arc::default(),
        }
    }

    fn keys(email: &str, address: Option<&str>) -> (String, Option<String>) {
        (
            format!("account:{}", email.trim().to_lowercase()),
            address.map(|a| format!("address:{a}")),
        )
    }

    /// `Err(wait)` while either limit is reached: how long until one more attempt is allowed.
    pub fn check(&self, email: &str, address: Option<&str>) -> Result<(), Duration> {
        let now = Instant::now();
        let (account, addr) = Self::keys(email, address);
        let Ok(mut map) = self.failures.lock() else {
            return Ok(());
        };
        let mut wait = Duration::ZERO;
        for (key, limit) in [
            (Some(account), self.limits.per_account),
            (addr, self.limits.per_address),
        ] {
            let Some(key) = key else { continue };
            if let Some(times) = map.get_mut(&key) {
                while times
                    .front()
                    .is_some_and(|t| now.duration_since(*t) >= self.limits.window)
                {
                    times.pop_front();
                }
                if times.len() >= limit {
                    if let Some(oldest) = times.front() {
                        wait = wait.max(self.limits.window - now.duration_since(*oldest));
                    }
                }
            }
        }
        if wait.is_zero() {
            Ok(())
        } else {
            Err(wait)
        }
    }

    pub fn record_failure(&self, email: &str, address: Option<&str>) {
        let now = Instant::now();
        let (account, addr) = Self::keys(email, address);
        let Ok(mut map) = self.failures.lock() else {
            return;
        };
        if map.len() >= MAX_KEYS {
            let window = self.limits.window;
            map.retain(|_, times| {
                times
                    .back()
                    .is_some_and(|t| now.duration_since(*t) < window)
            });
        }
        for key in [Some(account), addr].into_iter().flatten() {
            let times = map.entry(key).or_default();
            times.push_back(now);
            // only the most recent failures matter for the limit
            while times.len() > self.limits.per_account.max(self.limits.per_address) {
                times.pop_front();
            }
        }
    }

    /// A successful login clears the account's count (not the address's: one good password does
    /// not excuse a spray from the same address).
    pub fn record_success(&self, email: &str) {
        let (account, _) = Self::keys(email, None);
        if let Ok(mut map) = self.failures.lock() {
            map.remove(&account);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle() -> LoginThrottle {
        LoginThrottle::new(Limits {
            per_account: 3,
            per_address: 5,
            window: Duration::from_secs(60),
        })
    }

    #[test]
    fn per_account_limit_ignores_case_and_address() {
        let t = throttle();
        for i in 0..3 {
            assert!(t.check("A@x.io", Some(&format!("10.0.0.{i}"))).is_ok());
            t.record_failure("A@x.io", Some(&format!("10.0.0.{i}")));
        }
        let wait = t.check("a@x.io", Some("10.9.9.9")).unwrap_err();
        assert!(wait <= Duration::from_secs(60) && wait > Duration::from_secs(50));
        assert!(t.check("b@x.io", Some("10.9.9.9")).is_ok());
    }

    #[test]
    fn per_address_limit_across_accounts() {
        let t = throttle();
        for i in 0..5 {
            t.record_failure(&format!("user{i}@x.io"), Some("192.0.2.1"));
        }
        assert!(t.check("fresh@x.io", Some("192.0.2.1")).is_err());
        assert!(t.check("fresh@x.io", Some("192.0.2.2")).is_ok());
    }

    #[test]
    fn success_clears_the_account() {
        let t = throttle();
        for _ in 0..3 {
            t.record_failure("a@x.io", None);
        }
        assert!(t.check("a@x.io", None).is_err());
        t.record_success("a@x.io");
        assert!(t.check("a@x.io", None).is_ok());
    }

    #[test]
    fn window_expiry() {
        let t = LoginThrottle::new(Limits {
            per_account: 1,
            per_address: 10,
            window: Duration::from_millis(30),
        });
        t.record_failure("a@x.io", None);
        assert!(t.check("a@x.io", None).is_err());
        std::thread::sleep(Duration::from_millis(40));
        assert!(t.check("a@x.io", None).is_ok());
    }
}

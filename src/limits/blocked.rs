//! Addresses that presented too many failed credentials, per node: while one is blocked, every
//! request from it that carries a credential is refused with 429 before the credential is even
//! looked at — so a correct guess cannot be told from a wrong one. An address is an IPv4 address
//! or an IPv6 /64 (one client's usual allocation). State only; the pipeline fills it when the
//! limiter refuses an address its `failed_credentials` window.

use std::net::IpAddr;
use std::time::Duration;

/// The subject an address's failed credentials are counted under.
pub fn address_key(ip: Option<IpAddr>) -> String {
    match ip {
        Some(IpAddr::V4(v4)) => v4.to_string(),
        Some(IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        None => "unknown".into(),
    }
}

pub struct BlockedAddresses {
    /// Address key → blocked until (epoch ms).
    until: moka::sync::Cache<String, i64>,
}

impl Default for BlockedAddresses {
    fn default() -> Self {
        Self {
            until: moka::sync::Cache::builder().max_capacity(100_000).time_to_live(Duration::from_secs(3600)).build(),
        }
    }
}

impl BlockedAddresses {
    pub fn block(&self, key: String, until_ms: i64) {
        self.until.insert(key, until_ms);
    }

    /// How long the address stays blocked (ms), if it is.
    pub fn blocked_for(&self, key: &str, now_ms: i64) -> Option<i64> {
        let until = self.until.get(key)?;
        (until > now_ms).then_some(until - now_ms)
    }
}

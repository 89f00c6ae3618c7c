//! The SSRF guard for outbound webhook requests. It refuses loopback, private, link-local
//! (including the cloud metadata address 169.254.169.254), shared, multicast, reserved and
//! unspecified addresses — and the same addresses embedded in IPv6 (IPv4-mapped, NAT64, 6to4) —
//! unless the operator's allow-list (`GANTRY_WEBHOOK_ALLOWED_NETWORKS`) contains them.
//!
//! The check runs on the addresses the connection will use: the HTTP client resolves names
//! through [`GuardedResolver`], which drops refused addresses, so a name that resolves to a
//! public address when the endpoint is saved and to 127.0.0.1 at delivery time (DNS rebinding)
//! still cannot reach the loopback interface. IP-literal URLs never reach a resolver and are
//! checked with [`Guard::check_literal`] before the request.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;

/// Which addresses outbound requests may reach.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    allowed: Arc<Vec<IpNet>>,
}

/// A refused destination.
#[derive(Debug, thiserror::Error)]
#[error("{host} resolves only to addresses webhooks may not reach ({reason})")]
pub struct Refused {
    pub host: String,
    pub reason: &'static str,
}

impl Guard {
    pub fn new(allowed: Vec<IpNet>) -> Self {
        Self { allowed: Arc::new(allowed) }
    }

    /// Why `ip` is refused, or `None` when a webhook may reach it.
    pub fn refusal(&self, ip: IpAddr) -> Option<&'static str> {
        let ip = ip.to_canonical();
        if self.allowed.iter().any(|n| n.contains(&ip)) {
            return None;
        }
        classify(ip)
    }

    /// Checks a URL whose host is an IP literal (those never reach the resolver).
    pub fn check_literal(&self, url: &url::Url) -> Result<(), Refused> {
        let ip = match url.host() {
            Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
            Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
            _ => return Ok(()),
        };
        match self.refusal(ip) {
            Some(reason) => Err(Refused { host: ip.to_string(), reason }),
            None => Ok(()),
        }
    }
}

/// The class of a non-public address, or `None` for a public one.
fn classify(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_private() {
        Some("private")
    } else if ip.is_link_local() {
        // 169.254.0.0/16, which holds the cloud metadata service at 169.254.169.254.
        Some("link-local or metadata")
    } else if ip.is_multicast() {
        Some("multicast")
    } else if ip.is_unspecified() || o[0] == 0 {
        Some("unspecified")
    } else if ip.is_broadcast() || o[0] >= 240 {
        Some("reserved")
    } else if o[0] == 100 && (o[1] & 0xc0) == 64 {
        Some("shared address space")
    } else if o[0] == 192 && o[1] == 0 && o[2] == 0 {
        Some("IETF protocol assignments")
    } else if o[0] == 198 && (o[1] & 0xfe) == 18 {
        Some("benchmarking")
    } else if ip.is_documentation() {
        Some("documentation")
    } else {
        None
    }
}

fn embedded_v4(s: &[u16; 8], hi: usize) -> Ipv4Addr {
    Ipv4Addr::new((s[hi] >> 8) as u8, s[hi] as u8, (s[hi + 1] >> 8) as u8, s[hi + 1] as u8)
}

fn classify_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    if s[..6] == [0, 0, 0, 0, 0, 0] && !ip.is_loopback() && !ip.is_unspecified() {
        // IPv4-compatible (deprecated, ::a.b.c.d): judge the IPv4 address inside.
        return classify_v4(embedded_v4(&s, 6)).or(Some("IPv4-compatible"));
    }
    if s[..6] == [0, 0, 0, 0, 0xffff, 0] {
        // SIIT (::ffff:0:a.b.c.d).
        return classify_v4(embedded_v4(&s, 6)).or(Some("IPv4-translated"));
    }
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_unspecified() {
        Some("unspecified")
    } else if ip.is_multicast() {
        Some("multicast")
    } else if (s[0] & 0xfe00) == 0xfc00 {
        // Unique local, including AWS's IPv6 metadata address fd00:ec2::254.
        Some("private")
    } else if (s[0] & 0xffc0) == 0xfe80 {
        Some("link-local")
    } else if (s[0] & 0xffc0) == 0xfec0 {
        Some("site-local")
    } else if s[0] == 0x64 && s[1] == 0xff9b && s[2] == 0 {
        // NAT64: the IPv4 address in the last 32 bits.
        classify_v4(embedded_v4(&s, 6))
    } else if s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1 {
        Some("local-use NAT64")
    } else if s[0] == 0x2002 {
        // 6to4: the IPv4 address in bits 16–48.
        classify_v4(embedded_v4(&s, 1))
    } else if s[0] == 0x2001 && s[1] == 0 {
        // Teredo tunnels carry an obfuscated IPv4 address.
        Some("Teredo")
    } else if s[0] == 0x2001 && s[1] == 0x0db8 {
        Some("documentation")
    } else if s[..4] == [0x100, 0, 0, 0] {
        Some("discard-only")
    } else {
        None
    }
}

/// A resolver for the HTTP client that keeps only addresses the guard allows.
pub struct GuardedResolver(pub Guard);

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let guard = self.0.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut reason = "no address";
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| match guard.refusal(a.ip()) {
                    Some(r) => {
                        reason = r;
                        false
                    }
                    None => true,
                })
                .collect();
            if allowed.is_empty() {
                return Err(Box::new(Refused { host, reason }) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(guard: &Guard, ip: &str) -> bool {
        guard.refusal(ip.parse().unwrap()).is_some()
    }

    #[test]
    fn refuses_internal_addresses_and_allows_public_ones() {
        let g = Guard::default();
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00:ec2::254",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "2002:7f00:1::",
            "ff02::1",
            "::127.0.0.1",
            "::169.254.169.254",
            "::a00:1",
            "::ffff:0:7f00:1",
            "64:ff9b:1::1",
            "2001:0:4136:e378::1",
            "fec0::1",
            "100::1",
        ] {
            assert!(refused(&g, ip), "{ip} should be refused");
        }
        for ip in ["8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700:4700::1111", "::ffff:8.8.8.8"] {
            assert!(!refused(&g, ip), "{ip} should be allowed");
        }
    }

    #[test]
    fn the_allow_list_opens_exactly_its_networks() {
        let g = Guard::new(vec!["127.0.0.0/8".parse().unwrap()]);
        assert!(!refused(&g, "127.0.0.1"));
        assert!(!refused(&g, "::ffff:127.0.0.1"));
        assert!(refused(&g, "10.0.0.1"));
        assert!(refused(&g, "169.254.169.254"));
    }

    #[test]
    fn literal_urls_are_checked_without_resolving() {
        let g = Guard::default();
        assert!(g.check_literal(&"http://127.0.0.1:9/x".parse().unwrap()).is_err());
        assert!(g.check_literal(&"http://[::1]/x".parse().unwrap()).is_err());
        assert!(g.check_literal(&"https://8.8.8.8/x".parse().unwrap()).is_ok());
        assert!(g.check_literal(&"https://example.com/x".parse().unwrap()).is_ok());
    }
}

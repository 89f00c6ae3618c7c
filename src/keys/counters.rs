//! Per-key usage counters (`lastUsedAt`, `lastUsedIp`, `totalRequests`, requests per day, the
//! addresses a key is used from), counted in memory on the request path — O(1), no I/O — and taken
//! by the flush in `keys::usage`. State only.

use std::collections::HashMap;
use std::net::IpAddr;

use parking_lot::Mutex;

use crate::platform::ids::KeyId;

#[derive(Debug, Clone, Default)]
pub(super) struct Pending {
    pub requests: i64,
    pub last_used_at: i64,
    pub last_ip: Option<IpAddr>,
    /// Requests per UTC day, keyed by days since the epoch (formatted only when written).
    pub by_day: HashMap<i64, i64>,
    /// Requests and the first and last time per address (at most `MAX_IPS_PER_FLUSH`).
    pub ips: HashMap<IpAddr, SeenFrom>,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct SeenFrom {
    pub requests: i64,
    pub first: i64,
    pub last: i64,
}

impl SeenFrom {
    fn merge(&mut self, other: SeenFrom) {
        self.requests += other.requests;
        self.first = self.first.min(other.first);
        self.last = self.last.max(other.last);
    }
}

/// Addresses tracked per key between two flushes; beyond them a key's other addresses are counted
/// when next seen (the memory a key used from everywhere at once can take stays bounded).
const MAX_IPS_PER_FLUSH: usize = 256;

fn add_seen(ips: &mut HashMap<IpAddr, SeenFrom>, ip: IpAddr, seen: SeenFrom) {
    let tracked = ips.len();
    if let Some(s) = ips.get_mut(&ip) {
        s.merge(seen);
    } else if tracked < MAX_IPS_PER_FLUSH {
        ips.insert(ip, seen);
    }
}

#[derive(Default)]
pub struct KeyUsage {
    pending: Mutex<HashMap<KeyId, Pending>>,
    /// Held for a whole flush, so a flush that starts while another is writing waits for it: when
    /// `flush` returns, everything counted before the call is written (or back in `pending`).
    flushing: tokio::sync::Mutex<()>,
}

pub(super) fn day_label(day: i64) -> String {
    chrono::DateTime::from_timestamp_millis(day * 86_400_000).unwrap_or_default().format("%Y-%m-%d").to_string()
}

impl KeyUsage {
    /// Counts one request by `key` at `now_ms` from `ip`. O(1), no I/O.
    pub fn record(&self, key: &KeyId, now_ms: i64, ip: Option<IpAddr>) {
        let mut map = self.pending.lock();
        if !map.contains_key(key) {
            map.insert(key.clone(), Pending::default());
        }
        let Some(p) = map.get_mut(key) else { return };
        p.requests += 1;
        if now_ms >= p.last_used_at {
            p.last_used_at = now_ms;
            if ip.is_some() {
                p.last_ip = ip;
            }
        }
        *p.by_day.entry(now_ms.div_euclid(86_400_000)).or_default() += 1;
        if let Some(ip) = ip {
            add_seen(&mut p.ips, ip, SeenFrom { requests: 1, first: now_ms, last: now_ms });
        }
    }

    /// Requests counted on this node and not yet written, for a key.
    pub fn unflushed(&self, key: &KeyId) -> (i64, Option<i64>) {
        self.pending.lock().get(key).map(|p| (p.requests, Some(p.last_used_at))).unwrap_or((0, None))
    }

    /// Takes every pending count for a flush; one flush at a time (the returned guard), so when a
    /// flush returns, everything counted before it started is written or back in `pending`.
    pub(super) async fn take(&self) -> (tokio::sync::MutexGuard<'_, ()>, HashMap<KeyId, Pending>) {
        let guard = self.flushing.lock().await;
        (guard, std::mem::take(&mut *self.pending.lock()))
    }

    /// Puts back the counts of a flush that failed, merged with what was counted meanwhile.
    pub(super) fn restore(&self, batch: HashMap<KeyId, Pending>) {
        let mut map = self.pending.lock();
        for (key, p) in batch {
            let entry = map.entry(key).or_default();
            entry.requests += p.requests;
            if p.last_used_at > entry.last_used_at {
                entry.last_used_at = p.last_used_at;
                entry.last_ip = p.last_ip.or(entry.last_ip);
            }
            for (d, c) in p.by_day {
                *entry.by_day.entry(d).or_default() += c;
            }
            for (ip, seen) in p.ips {
                add_seen(&mut entry.ips, ip, seen);
            }
        }
    }
}

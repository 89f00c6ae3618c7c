//! One node's limiter: state in sharded maps, one lock per organization's shard.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use super::{Decision, Permit, Refusal, Subject};
use crate::limits::gcra::{self, states};
use crate::limits::policy::Policy;
use crate::platform::clock::{month_index, month_reset_ms};

#[derive(Default)]
struct Shard {
    tats: HashMap<String, Vec<i64>>,
    quotas: HashMap<(String, i32), u64>,
    inflight: HashMap<String, u64>,
    /// Subscriptions held open, per subject.
    subscriptions: HashMap<String, u64>,
}

/// One node's limiter. Everything of one organization lives in one shard, so a decision takes
/// one lock.
pub struct MemoryLimiter {
    shards: Vec<Arc<Mutex<Shard>>>,
}

impl Default for MemoryLimiter {
    fn default() -> Self {
        Self { shards: (0..32).map(|_| Arc::new(Mutex::new(Shard::default()))).collect() }
    }
}

impl MemoryLimiter {
    fn shard(&self, org: &str) -> &Arc<Mutex<Shard>> {
        use std::hash::{Hash, Hasher};
        // DefaultHasher::new() has fixed keys: the same organization always maps to the same shard.
        let mut h = std::hash::DefaultHasher::new();
        org.hash(&mut h);
        &self.shards[(h.finish() as usize) % self.shards.len()]
    }

    pub fn acquire(
        &self,
        subject: &Subject,
        policy: Arc<Policy>,
        cost: u64,
        points: u64,
        now_ms: i64,
    ) -> (Decision, Option<Permit>) {
        let shard = self.shard(&subject.org).clone();
        let mut s = shard.lock();
        let now_us = now_ms * 1000;
        if !s.tats.contains_key(&subject.rate) {
            s.tats.insert(subject.rate.clone(), vec![0; policy.windows.len()]);
        }
        let Some(tats) = s.tats.get_mut(&subject.rate) else { unreachable!("inserted above") };
        if tats.len() != policy.windows.len() {
            // The policy changed shape (plan edited): start its windows afresh.
            *tats = vec![0; policy.windows.len()];
        }
        let mut trial = tats.clone();
        let outcome = gcra::decide(&policy.windows, &mut trial, now_us, cost, points);
        // Only what the policy limits is looked up (and allocated for).
        let quota_key = policy.monthly_quota.map(|_| (subject.org.clone(), month_index(now_ms)));
        let used = quota_key.as_ref().and_then(|k| s.quotas.get(k).copied()).unwrap_or(0);
        let inflight =
            if policy.concurrency.is_some() { s.inflight.get(&subject.rate).copied().unwrap_or(0) } else { 0 };
        let refusal = if !outcome.allowed {
            Some(Refusal::Rate(outcome.binding))
        } else if policy.quota_stop.is_some_and(|q| used + cost > q) {
            Some(Refusal::Quota)
        } else if policy.concurrency.is_some_and(|c| inflight + 1 > c) {
            Some(Refusal::Concurrency)
        } else {
            None
        };
        let (windows, quota_used) = if refusal.is_none() {
            if let Some(t) = s.tats.get_mut(&subject.rate) {
                *t = trial;
            }
            match quota_key {
                Some(k) => {
                    *s.quotas.entry(k).or_default() += cost;
                    (outcome.windows.clone(), used + cost)
                }
                None => (outcome.windows.clone(), used),
            }
        } else {
            let current = s.tats.get(&subject.rate).cloned().unwrap_or_default();
            (states(&policy.windows, &current, now_us), used)
        };
        let permit = if refusal.is_none() && policy.concurrency.is_some() {
            *s.inflight.entry(subject.rate.clone()).or_default() += 1;
            let rate = subject.rate.clone();
            let shard = shard.clone();
            Some(Permit {
                release: Some(Box::new(move || {
                    let mut s = shard.lock();
                    if let Some(n) = s.inflight.get_mut(&rate) {
                        *n = n.saturating_sub(1);
                        if *n == 0 {
                            s.inflight.remove(&rate);
                        }
                    }
                })),
            })
        } else {
            None
        };
        let retry_after_ms = match refusal {
            Some(Refusal::Rate(_)) => outcome.retry_after_ms,
            Some(Refusal::Quota) => month_reset_ms(now_ms),
            Some(Refusal::Concurrency) => 1000,
            None => 0,
        };
        let decision = Decision {
            refusal,
            binding: outcome.binding,
            windows,
            retry_after_ms,
            quota_used,
            month_reset_ms: match (refusal, policy.monthly_quota) {
                (Some(Refusal::Quota), _) => retry_after_ms,
                (_, Some(_)) => month_reset_ms(now_ms),
                (_, None) => 0,
            },
            degraded: false,
            policy,
        };
        (decision, permit)
    }

    /// Gives back `points` charged to the points window (a query that never ran).
    pub fn refund_points(&self, subject: &Subject, policy: &Policy, points: u64, now_ms: i64) {
        let Some(i) = policy.windows.iter().position(|w| w.points) else { return };
        let back = (points.min(i64::MAX as u64) as i64).saturating_mul(policy.windows[i].interval_us());
        let mut s = self.shard(&subject.org).lock();
        if let Some(tats) = s.tats.get_mut(&subject.rate)
            && tats.len() == policy.windows.len()
        {
            tats[i] = tats[i].saturating_sub(back).max(now_ms * 1000);
        }
    }

    /// Takes one of `max` subscription places of the subject; `None` when they are all taken.
    pub fn hold_subscription(&self, subject: &Subject, max: u64) -> Option<Permit> {
        let shard = self.shard(&subject.org).clone();
        {
            let mut s = shard.lock();
            let held = s.subscriptions.entry(subject.rate.clone()).or_default();
            if *held >= max {
                return None;
            }
            *held += 1;
        }
        let rate = subject.rate.clone();
        Some(Permit {
            release: Some(Box::new(move || {
                let mut s = shard.lock();
                if let Some(n) = s.subscriptions.get_mut(&rate) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        s.subscriptions.remove(&rate);
                    }
                }
            })),
        })
    }

    pub fn reconcile_quota(&self, org: &str, used: u64, now_ms: i64) {
        let mut s = self.shard(org).lock();
        let entry = s.quotas.entry((org.to_string(), month_index(now_ms))).or_default();
        *entry = (*entry).max(used);
    }

    /// Drops counters that are back to full capacity and quotas of past months.
    pub fn sweep(&self, now_ms: i64) {
        let now_us = now_ms * 1000;
        let month = month_index(now_ms);
        for shard in &self.shards {
            let mut s = shard.lock();
            s.tats.retain(|_, tats| tats.iter().any(|t| *t > now_us));
            s.quotas.retain(|(_, m), _| *m == month);
        }
    }
}

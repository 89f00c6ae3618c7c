//! The limiter: every window of a policy, the monthly quota and the concurrency cap decided in one
//! atomic step — all admit or nothing is charged.
//!
//! In memory (one node) the state lives in sharded maps under one lock per shard. With Redis the
//! same decision is one Lua script (one round trip, exact across nodes); the keys of one
//! organization share a hash tag so the script also works on a Redis Cluster. When Redis cannot be
//! reached the limiter degrades to per-node limits (or fails open / closed, as configured), logs the
//! change, reports it in `/readyz`, and probes Redis again at most once a second.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::gcra::WindowState;
use super::policy::Policy;
use crate::platform::clock::{month_of, month_reset_ms};

mod memory;
mod redis;

pub use memory::MemoryLimiter;
pub use redis::RedisLimiter;

/// Who is limited: `rate` names the counter (a key, a user in an organization, an IP), `org` the
/// organization whose monthly quota the request spends.
#[derive(Debug, Clone)]
pub struct Subject {
    pub rate: String,
    pub org: String,
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A window (index into the policy's windows) is exhausted.
    Rate(usize),
    /// The organization's monthly quota is spent.
    Quota,
    /// Too many requests in flight.
    Concurrency,
}

/// The limiter's answer, with everything the headers and `rateLimitStatus` show.
#[derive(Debug, Clone)]
pub struct Decision {
    pub refusal: Option<Refusal>,
    pub policy: Arc<Policy>,
    pub windows: Vec<WindowState>,
    pub binding: usize,
    pub retry_after_ms: i64,
    /// Requests counted against the monthly quota this month (after this one, if admitted).
    pub quota_used: u64,
    /// Milliseconds until the quota month ends (UTC).
    pub month_reset_ms: i64,
    /// Decided by this node alone because Redis is unreachable.
    pub degraded: bool,
}

impl Decision {
    pub fn allowed(&self) -> bool {
        self.refusal.is_none()
    }

    /// The error a refused request gets.
    pub fn refusal_error(&self) -> Option<crate::error::Error> {
        use crate::error::{Code, Error};
        let retry_after_secs = ((self.retry_after_ms + 999) / 1000).max(1);
        Some(match self.refusal? {
            Refusal::Rate(i) if self.policy.windows.get(i).is_some_and(|w| w.points) => {
                let w = &self.policy.windows[i];
                let available = self.windows.get(i).map(|s| s.remaining).unwrap_or(0);
                Error::Limited {
                    code: Code::RateLimited,
                    message: format!(
                        "this query's cost exceeds the {available} points available; the bucket restores {} points a second",
                        w.limit
                    ),
                    retry_after_secs,
                    window: Some("cost".into()),
                }
            }
            Refusal::Rate(i) => {
                let w = self.policy.windows.get(i);
                Error::Limited {
                    code: Code::RateLimited,
                    message: match w {
                        Some(w) => format!(
                            "rate limit exceeded: {} requests per {}; retry in {retry_after_secs} s",
                            w.limit, w.name
                        ),
                        None => "rate limit exceeded".into(),
                    },
                    retry_after_secs,
                    window: w.map(|w| w.name.to_string()),
                }
            }
            Refusal::Quota => Error::Limited {
                code: Code::QuotaExceeded,
                message: format!(
                    "the monthly quota of {} requests is used up; it resets at the start of next month (UTC)",
                    self.policy.monthly_quota.unwrap_or(0)
                ),
                retry_after_secs,
                window: Some("month".into()),
            },
            Refusal::Concurrency => Error::Limited {
                code: Code::RateLimited,
                message: match self.policy.concurrency {
                    Some(c) if !self.degraded => format!("too many concurrent requests (at most {c} in flight)"),
                    _ => "rate limiting is unavailable and the server is configured to refuse requests".into(),
                },
                retry_after_secs,
                window: Some("concurrency".into()),
            },
        })
    }

    /// A decision for a policy without windows (nothing to limit).
    fn unlimited(policy: Arc<Policy>, now_ms: i64) -> Self {
        Decision {
            refusal: None,
            windows: Vec::new(),
            binding: 0,
            retry_after_ms: 0,
            quota_used: 0,
            month_reset_ms: month_reset_ms(now_ms),
            degraded: false,
            policy,
        }
    }
}

/// Releases a concurrency slot when the request ends.
pub struct Permit {
    release: Option<Box<dyn FnOnce() + Send>>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some(f) = self.release.take() {
            f();
        }
    }
}

/// What to do while Redis is unreachable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fallback {
    /// Keep limiting with this node's own counters.
    Local,
    /// Admit everything.
    Open,
    /// Refuse everything (429 with a short Retry-After).
    Closed,
}

/// The limiter this node uses.
pub enum Limiter {
    Memory(MemoryLimiter),
    Redis(RedisLimiter),
}

impl Limiter {
    /// Decides a request: request windows are charged `cost`, points windows `points` (the
    /// query's cost), all or nothing.
    pub async fn acquire(
        &self,
        subject: &Subject,
        policy: Arc<Policy>,
        cost: u64,
        points: u64,
        now_ms: i64,
    ) -> (Decision, Option<Permit>) {
        if policy.windows.is_empty() && policy.monthly_quota.is_none() && policy.concurrency.is_none() {
            return (Decision::unlimited(policy, now_ms), None);
        }
        match self {
            Limiter::Memory(m) => m.acquire(subject, policy, cost, points, now_ms),
            Limiter::Redis(r) => r.acquire(subject, policy, cost, points, now_ms).await,
        }
    }

    /// Gives back `points` a decision charged to the query-cost bucket, for a query that never ran
    /// (refused by validation): a refused query costs a request, nothing more. Best effort.
    pub async fn refund_points(&self, subject: &Subject, policy: &Policy, points: u64, now_ms: i64) {
        if points == 0 {
            return;
        }
        match self {
            Limiter::Memory(m) => m.refund_points(subject, policy, points, now_ms),
            Limiter::Redis(r) => r.refund_points(subject, policy, points, now_ms).await,
        }
    }

    /// Takes one of the `max` places for open subscriptions of `subject`, across every node (a
    /// place is given back when the returned permit drops); `None` when all are taken.
    pub async fn hold_subscription(
        &self,
        subject: &Subject,
        max: u64,
        clock: crate::platform::clock::SharedClock,
    ) -> Option<Permit> {
        match self {
            Limiter::Memory(m) => m.hold_subscription(subject, max),
            Limiter::Redis(r) => r.hold_subscription(subject, max, clock).await,
        }
    }

    /// `Ok` when exact; `Err` with the reason when decisions are per node because Redis is down.
    /// Which limiter decides now: `memory`, `redis`, or `local` (Redis unreachable: per node).
    pub fn backend_label(&self) -> &'static str {
        match self {
            Limiter::Memory(_) => "memory",
            Limiter::Redis(r) if r.degraded.load(Ordering::Relaxed) => "local",
            Limiter::Redis(_) => "redis",
        }
    }

    pub fn health(&self) -> Result<&'static str, String> {
        match self {
            Limiter::Memory(_) => Ok("memory"),
            Limiter::Redis(r) if r.degraded.load(Ordering::Relaxed) => {
                Err(format!("Redis unreachable; limits are per node (fallback: {:?})", r.fallback).to_lowercase())
            }
            Limiter::Redis(_) => Ok("redis"),
        }
    }

    pub fn sweep(&self, now_ms: i64) {
        match self {
            Limiter::Memory(m) => m.sweep(now_ms),
            Limiter::Redis(r) => r.local.sweep(now_ms),
        }
    }

    /// Raises `org`'s quota counter for the month of `now_ms` to at least `used` (never lowers it).
    pub async fn reconcile_quota(&self, org: &str, used: u64, now_ms: i64) {
        match self {
            Limiter::Memory(m) => m.reconcile_quota(org, used, now_ms),
            Limiter::Redis(r) => {
                r.local.reconcile_quota(org, used, now_ms);
                let key = format!("{}:{{{org}}}:quota:{}", r.prefix, month_of(now_ms));
                let ttl = month_reset_ms(now_ms) + 86_400_000;
                let script = ::redis::Script::new(
                    "local cur = tonumber(redis.call('GET', KEYS[1]) or '0') \
                     if tonumber(ARGV[1]) > cur then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) end return 0",
                );
                let mut conn = r.conn.clone();
                let result: ::redis::RedisResult<i64> =
                    script.key(&key).arg(used).arg(ttl).invoke_async(&mut conn).await;
                if let Err(e) = result {
                    tracing::warn!(error = %e, org, "could not reconcile the quota counter in Redis");
                }
            }
        }
    }
}

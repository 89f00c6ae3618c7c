//! The limiter: every window of a policy, the monthly quota and the concurrency cap decided in one
//! atomic step — all admit or nothing is charged.
//!
//! In memory (one node) the state lives in sharded maps under one lock per shard. With Redis the
//! same decision is one Lua script (one round trip, exact across nodes); the keys of one
//! organization share a hash tag so the script also works on a Redis Cluster. When Redis cannot be
//! reached the limiter degrades to per-node limits (or fails open / closed, as configured), logs the
//! change, reports it in `/readyz`, and probes Redis again at most once a second.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

use super::gcra::{self, WindowState, binding_of, states};
use super::policy::Policy;
use crate::platform::clock::{month_index, month_of, month_reset_ms};

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

// ---------------------------------------------------------------------------------------------
// In memory

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
        } else if policy.monthly_quota.is_some_and(|q| used + cost > q) {
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

// ---------------------------------------------------------------------------------------------
// Redis

/// KEYS: 1 arrival times (hash, field per window), 2 the month's quota counter, 3 in-flight count.
/// ARGV: now_us, cost, n, then interval_us, capacity and charge per window, quota (-1 = none),
/// quota TTL ms, concurrency (-1 = none), in-flight TTL ms.
/// Returns: allowed, refusal (0 none, 1 rate, 2 quota, 3 concurrency), binding (1-based),
/// retry_after_us, quota used, then the arrival time of each window after the decision.
const SCRIPT: &str = r#"
local now = tonumber(ARGV[1])
local cost = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local stored = {}
if n > 0 then
  local fields = {}
  for i = 1, n do fields[i] = tostring(i) end
  stored = redis.call('HMGET', KEYS[1], unpack(fields))
end
local allowed = 1
local refusal = 0
local binding = 1
local retry = 0
local new = {}
local longest = 0
for i = 1, n do
  local interval = tonumber(ARGV[1 + 3 * i])
  local capacity = tonumber(ARGV[2 + 3 * i])
  local charge = tonumber(ARGV[3 + 3 * i])
  local cap = capacity * interval
  if cap > longest then longest = cap end
  local tat = tonumber(stored[i]) or 0
  if tat < now then tat = now end
  local nt = tat + charge * interval
  new[i] = nt
  if nt - now > cap then
    if allowed == 1 or (nt - cap - now) > retry then binding = i end
    allowed = 0
    refusal = 1
    if nt - cap - now > retry then retry = nt - cap - now end
  end
end
local quota = tonumber(ARGV[4 + 3 * n])
local quota_ttl = tonumber(ARGV[5 + 3 * n])
local conc = tonumber(ARGV[6 + 3 * n])
local conc_ttl = tonumber(ARGV[7 + 3 * n])
local used = tonumber(redis.call('GET', KEYS[2]) or '0')
if allowed == 1 and quota >= 0 and used + cost > quota then allowed = 0; refusal = 2 end
if allowed == 1 and conc >= 0 then
  local inflight = tonumber(redis.call('GET', KEYS[3]) or '0')
  if inflight + 1 > conc then allowed = 0; refusal = 3 end
end
local out = {}
if allowed == 1 then
  if n > 0 then
    local args = {}
    for i = 1, n do args[2 * i - 1] = tostring(i); args[2 * i] = string.format('%.0f', new[i]) end
    redis.call('HSET', KEYS[1], unpack(args))
    redis.call('PEXPIRE', KEYS[1], math.ceil(longest / 1000) + 1000)
  end
  if quota >= 0 then
    used = redis.call('INCRBY', KEYS[2], cost)
    redis.call('PEXPIRE', KEYS[2], quota_ttl)
  end
  if conc >= 0 then
    redis.call('INCR', KEYS[3])
    redis.call('PEXPIRE', KEYS[3], conc_ttl)
  end
  for i = 1, n do out[i] = new[i] end
else
  for i = 1, n do out[i] = math.max(tonumber(stored[i]) or 0, now) end
end
local result = {allowed, refusal, binding, retry, used}
for i = 1, n do result[5 + i] = string.format('%.0f', out[i]) end
return result
"#;

/// KEYS: 1 arrival times. ARGV: the points window's field, microseconds to give back, now_us.
const REFUND: &str = r#"
local t = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if t == 0 then return 0 end
local nt = t - tonumber(ARGV[2])
if nt < tonumber(ARGV[3]) then nt = tonumber(ARGV[3]) end
redis.call('HSET', KEYS[1], ARGV[1], string.format('%.0f', nt))
return 1
"#;

/// KEYS: 1 the subject's open subscriptions (a sorted set: member = place, score = expiry ms).
/// ARGV: now_ms, expiry_ms, max, member, key TTL ms. Returns 1 when the place was taken.
const HOLD_SUBSCRIPTION: &str = r#"
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
"#;

/// A subscription place lives this long unless its holder renews it (every third of it): a node
/// that dies holding places gives them back within this time.
const SUBSCRIPTION_LEASE_MS: i64 = 180_000;

pub struct RedisLimiter {
    conn: redis::aio::ConnectionManager,
    script: redis::Script,
    refund: redis::Script,
    hold_subscription: redis::Script,
    prefix: String,
    fallback: Fallback,
    local: MemoryLimiter,
    degraded: AtomicBool,
    last_failure_ms: AtomicI64,
}

impl RedisLimiter {
    pub fn new(conn: redis::aio::ConnectionManager, prefix: &str, fallback: Fallback) -> Self {
        Self {
            conn,
            script: redis::Script::new(SCRIPT),
            refund: redis::Script::new(REFUND),
            hold_subscription: redis::Script::new(HOLD_SUBSCRIPTION),
            prefix: prefix.to_string(),
            fallback,
            local: MemoryLimiter::default(),
            degraded: AtomicBool::new(false),
            last_failure_ms: AtomicI64::new(0),
        }
    }

    fn keys(&self, subject: &Subject, now_ms: i64) -> [String; 3] {
        // `{org}` is the hash tag: one organization's keys live in one cluster slot.
        let p = &self.prefix;
        let org = &subject.org;
        [
            format!("{p}:{{{org}}}:rl:{}", subject.rate),
            format!("{p}:{{{org}}}:quota:{}", month_of(now_ms)),
            format!("{p}:{{{org}}}:conc:{}", subject.rate),
        ]
    }

    async fn acquire(
        &self,
        subject: &Subject,
        policy: Arc<Policy>,
        cost: u64,
        points: u64,
        now_ms: i64,
    ) -> (Decision, Option<Permit>) {
        let since_failure = now_ms - self.last_failure_ms.load(Ordering::Relaxed);
        if self.degraded.load(Ordering::Relaxed) && (0..1000).contains(&since_failure) {
            return self.degrade(subject, policy, cost, points, now_ms);
        }
        match tokio::time::timeout(Duration::from_millis(500), self.run(subject, &policy, cost, points, now_ms)).await {
            Ok(Ok(result)) => {
                if self.degraded.swap(false, Ordering::Relaxed) {
                    tracing::info!("Redis is reachable again: limits are exact across nodes");
                }
                result
            }
            Ok(Err(e)) => {
                self.fail(now_ms, &e.to_string());
                self.degrade(subject, policy, cost, points, now_ms)
            }
            Err(_) => {
                self.fail(now_ms, "no answer within 500 ms");
                self.degrade(subject, policy, cost, points, now_ms)
            }
        }
    }

    async fn refund_points(&self, subject: &Subject, policy: &Policy, points: u64, now_ms: i64) {
        self.local.refund_points(subject, policy, points, now_ms);
        let Some(i) = policy.windows.iter().position(|w| w.points) else { return };
        let back = (points.min(i64::MAX as u64) as i64).saturating_mul(policy.windows[i].interval_us());
        let [rate_key, _, _] = self.keys(subject, now_ms);
        let mut conn = self.conn.clone();
        let mut inv = self.refund.key(&rate_key);
        inv.arg(i + 1).arg(back).arg(now_ms * 1000);
        match tokio::time::timeout(Duration::from_millis(500), inv.invoke_async::<i64>(&mut conn)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::debug!(error = %e, "could not give query-cost points back"),
            Err(_) => tracing::debug!("could not give query-cost points back: no answer within 500 ms"),
        }
    }

    async fn hold_subscription(
        &self,
        subject: &Subject,
        max: u64,
        clock: crate::platform::clock::SharedClock,
    ) -> Option<Permit> {
        let key = format!("{}:{{{}}}:subs:{}", self.prefix, subject.org, subject.rate);
        let member = crate::platform::crypto::random_base62(16);
        let now = clock.now_ms();
        let mut conn = self.conn.clone();
        let mut inv = self.hold_subscription.key(&key);
        inv.arg(now).arg(now + SUBSCRIPTION_LEASE_MS).arg(max).arg(&member).arg(SUBSCRIPTION_LEASE_MS * 2);
        match tokio::time::timeout(Duration::from_millis(500), inv.invoke_async::<i64>(&mut conn)).await {
            Ok(Ok(1)) => {}
            Ok(Ok(_)) => return None,
            Ok(Err(e)) => {
                self.fail(now, &e.to_string());
                return self.local.hold_subscription(subject, max);
            }
            Err(_) => {
                self.fail(now, "no answer within 500 ms");
                return self.local.hold_subscription(subject, max);
            }
        }
        // Renewed while held; given back when dropped.
        let renew = {
            let (mut conn, key, member) = (self.conn.clone(), key.clone(), member.clone());
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(SUBSCRIPTION_LEASE_MS as u64 / 3));
                tick.tick().await;
                loop {
                    tick.tick().await;
                    let expiry = clock.now_ms() + SUBSCRIPTION_LEASE_MS;
                    let _: redis::RedisResult<i64> =
                        redis::cmd("ZADD").arg(&key).arg("XX").arg(expiry).arg(&member).query_async(&mut conn).await;
                }
            })
        };
        let conn = self.conn.clone();
        Some(Permit {
            release: Some(Box::new(move || {
                renew.abort();
                let mut conn = conn;
                tokio::spawn(async move {
                    let _: redis::RedisResult<i64> =
                        redis::cmd("ZREM").arg(&key).arg(&member).query_async(&mut conn).await;
                });
            })),
        })
    }

    fn fail(&self, now_ms: i64, why: &str) {
        self.last_failure_ms.store(now_ms, Ordering::Relaxed);
        if !self.degraded.swap(true, Ordering::Relaxed) {
            tracing::warn!(error = why, fallback = ?self.fallback, "Redis unreachable: rate limits fall back to this node");
        }
    }

    fn degrade(
        &self,
        subject: &Subject,
        policy: Arc<Policy>,
        cost: u64,
        points: u64,
        now_ms: i64,
    ) -> (Decision, Option<Permit>) {
        let (mut d, permit) = match self.fallback {
            Fallback::Local => self.local.acquire(subject, policy, cost, points, now_ms),
            Fallback::Open => (Decision::unlimited(policy, now_ms), None),
            Fallback::Closed => {
                let mut d = Decision::unlimited(policy, now_ms);
                d.refusal = Some(Refusal::Concurrency);
                d.retry_after_ms = 1000;
                (d, None)
            }
        };
        d.degraded = true;
        (d, permit)
    }

    async fn run(
        &self,
        subject: &Subject,
        policy: &Arc<Policy>,
        cost: u64,
        points: u64,
        now_ms: i64,
    ) -> redis::RedisResult<(Decision, Option<Permit>)> {
        let [rate_key, quota_key, conc_key] = self.keys(subject, now_ms);
        let now_us = now_ms * 1000;
        let mut inv = self.script.key(&rate_key);
        inv.key(&quota_key).key(&conc_key).arg(now_us).arg(cost.max(1)).arg(policy.windows.len());
        for w in &policy.windows {
            inv.arg(w.interval_us()).arg(w.capacity).arg(if w.points { points } else { cost.max(1) });
        }
        let month_left = month_reset_ms(now_ms);
        inv.arg(policy.monthly_quota.map(|q| q as i64).unwrap_or(-1))
            .arg(month_left + 7 * 86_400_000)
            .arg(policy.concurrency.map(|c| c as i64).unwrap_or(-1))
            .arg(300_000);
        let mut conn = self.conn.clone();
        let reply: Vec<redis::Value> = inv.invoke_async(&mut conn).await?;
        let int = |i: usize| -> i64 {
            match reply.get(i) {
                Some(redis::Value::Int(n)) => *n,
                Some(redis::Value::BulkString(b)) => {
                    std::str::from_utf8(b).ok().and_then(|s| s.parse().ok()).unwrap_or(0)
                }
                _ => 0,
            }
        };
        let tats: Vec<i64> = (0..policy.windows.len()).map(|i| int(5 + i)).collect();
        let refusal = match int(1) {
            1 => Some(Refusal::Rate((int(2) - 1).max(0) as usize)),
            2 => Some(Refusal::Quota),
            3 => Some(Refusal::Concurrency),
            _ => None,
        };
        let windows = states(&policy.windows, &tats, now_us);
        let binding = match refusal {
            Some(Refusal::Rate(i)) => i,
            _ => binding_of(&policy.windows, &windows),
        };
        let retry_after_ms = match refusal {
            Some(Refusal::Rate(_)) => (int(3) + 999) / 1000,
            Some(Refusal::Quota) => month_left,
            Some(Refusal::Concurrency) => 1000,
            None => 0,
        };
        let permit = if refusal.is_none() && policy.concurrency.is_some() {
            let conn = self.conn.clone();
            Some(Permit {
                release: Some(Box::new(move || {
                    let mut conn = conn;
                    tokio::spawn(async move {
                        let _: redis::RedisResult<i64> = redis::cmd("DECR").arg(&conc_key).query_async(&mut conn).await;
                    });
                })),
            })
        } else {
            None
        };
        Ok((
            Decision {
                refusal,
                windows,
                binding,
                retry_after_ms,
                quota_used: int(4).max(0) as u64,
                month_reset_ms: month_left,
                degraded: false,
                policy: policy.clone(),
            },
            permit,
        ))
    }
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
                let script = redis::Script::new(
                    "local cur = tonumber(redis.call('GET', KEYS[1]) or '0') \
                     if tonumber(ARGV[1]) > cur then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) end return 0",
                );
                let mut conn = r.conn.clone();
                let result: redis::RedisResult<i64> = script.key(&key).arg(used).arg(ttl).invoke_async(&mut conn).await;
                if let Err(e) = result {
                    tracing::warn!(error = %e, org, "could not reconcile the quota counter in Redis");
                }
            }
        }
    }
}

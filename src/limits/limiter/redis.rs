//! The limiter across nodes: one Lua script per decision, with the per-node limiter as the
//! fallback while Redis is unreachable.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use super::{Decision, Fallback, MemoryLimiter, Permit, Refusal, Subject};
use crate::limits::gcra::{binding_of, states};
use crate::limits::policy::Policy;
use crate::platform::clock::{month_of, month_reset_ms};

/// KEYS: 1 arrival times (hash, field per window), 2 the month's quota counter, 3 in-flight count.
/// ARGV: now_us, cost, n, then interval_us, capacity and charge per window, quota (-1 = none),
/// quota TTL ms, concurrency (-1 = none), in-flight TTL ms, the count past which the quota
/// refuses (-1 = none: an overage plan only counts).
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
local stop = tonumber(ARGV[8 + 3 * n])
if allowed == 1 and stop >= 0 and used + cost > stop then allowed = 0; refusal = 2 end
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
    pub(super) conn: redis::aio::ConnectionManager,
    script: redis::Script,
    refund: redis::Script,
    hold_subscription: redis::Script,
    pub(super) prefix: String,
    pub(super) fallback: Fallback,
    pub(super) local: MemoryLimiter,
    pub(super) degraded: AtomicBool,
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

    pub(super) async fn acquire(
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

    pub(super) async fn refund_points(&self, subject: &Subject, policy: &Policy, points: u64, now_ms: i64) {
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

    pub(super) async fn hold_subscription(
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
            .arg(300_000)
            .arg(policy.quota_stop.map(|q| q as i64).unwrap_or(-1));
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

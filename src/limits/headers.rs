//! Rate-limit response fields: the IETF `RateLimit-Policy` / `RateLimit` fields
//! (draft-ietf-httpapi-ratelimit-headers, structured-field form), the seeds'
//! `X-RateLimit-Limit/Remaining/Reset`, `Retry-After` on refusals, and the REST envelope's
//! `meta.rate_limit` — all from one view of the decision, so they never disagree.
//!
//! One policy item per request window and the monthly quota. A window with a burst is stated the
//! way the draft states a burst: as its own quota over the time that quota takes to refill
//! (Starter, 10 a second with a burst of 10: `"second";q=20;w=2`), so `q` is what can be spent at
//! once — the same number as `X-RateLimit-Limit` and `capacity` in `rateLimitStatus`. `RateLimit`
//! reports the item closest to refusing (or the one that refused); its `t` is when it is full again,
//! or, on a refusal, the same instant as `Retry-After` (the draft's SHOULD).

use axum::http::{HeaderMap, HeaderName, HeaderValue};

use super::gcra::Window;
use super::limiter::{Decision, Refusal};

// Constants, so the names are checked at compile time rather than on every response.
const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
const X_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
const X_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
const X_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

/// Seconds a window's capacity takes to refill at its rate: the `w` of its policy item.
pub fn window_secs(w: &Window) -> u64 {
    let ms = (w.capacity as u128 * w.period_ms.max(1) as u128).div_ceil(w.limit.max(1) as u128);
    (ms.div_ceil(1000) as u64).max(1)
}

/// The policy header value of a policy: its request windows and its monthly quota.
pub fn policy_header(windows: &[Window], monthly_quota: Option<u64>) -> HeaderValue {
    let mut parts: Vec<String> = windows
        .iter()
        .filter(|w| !w.points)
        .map(|w| format!("\"{}\";q={};w={}", w.name, w.capacity, window_secs(w)))
        .collect();
    if let Some(q) = monthly_quota {
        parts.push(format!("\"month\";q={q};w=2592000"));
    }
    HeaderValue::from_str(&parts.join(", ")).unwrap_or(HeaderValue::from_static(""))
}

/// The policy item a response reports, with its live numbers.
struct Item {
    name: &'static str,
    quota: u64,
    remaining: u64,
    /// Seconds until it is full again — or, on a refusal, until the request would be admitted.
    reset_secs: u64,
}

fn secs(ms: i64) -> u64 {
    ((ms.max(0) + 999) / 1000) as u64
}

/// The item closest to refusing: the least remaining share of its quota (the refusing one on a
/// refusal).
fn item(d: &Decision) -> Option<Item> {
    let retry = (!d.allowed()).then(|| secs(d.retry_after_ms).max(1));
    let window = |i: usize| {
        let (w, s) = (d.policy.windows.get(i)?, d.windows.get(i)?);
        (!w.points || d.policy.windows.iter().all(|w| w.points)).then(|| Item {
            name: w.name,
            quota: w.capacity,
            remaining: s.remaining,
            reset_secs: secs(s.reset_ms),
        })
    };
    let month = d.policy.monthly_quota.map(|q| Item {
        name: "month",
        quota: q,
        remaining: q.saturating_sub(d.quota_used),
        reset_secs: secs(d.month_reset_ms),
    });
    let mut chosen = match d.refusal {
        Some(Refusal::Quota) => month,
        Some(Refusal::Rate(i)) => window(i),
        _ => {
            let w = window(d.binding);
            match (w, month) {
                (Some(w), Some(m)) => {
                    // Compare remaining shares without floating point.
                    let lower = (m.remaining as u128) * (w.quota as u128) < (w.remaining as u128) * (m.quota as u128);
                    Some(if lower { m } else { w })
                }
                (w, m) => w.or(m),
            }
        }
    }?;
    if let Some(retry) = retry {
        chosen.reset_secs = retry;
    }
    Some(chosen)
}

fn put_num(headers: &mut HeaderMap, name: HeaderName, value: u64) {
    headers.insert(name, HeaderValue::from(value));
}

/// Adds the fields for `decision` (made at `now_ms`).
pub fn apply(headers: &mut HeaderMap, d: &Decision, now_ms: i64) {
    if let Some(item) = item(d) {
        headers.reserve(6);
        headers.insert(RATELIMIT_POLICY, d.policy.header.clone());
        let mut numbers = itoa::Buffer::new();
        let mut value = String::with_capacity(item.name.len() + 32);
        value.push('"');
        value.push_str(item.name);
        value.push_str("\";r=");
        value.push_str(numbers.format(item.remaining));
        value.push_str(";t=");
        value.push_str(numbers.format(item.reset_secs));
        if let Ok(v) = HeaderValue::from_maybe_shared(axum::body::Bytes::from(value)) {
            headers.insert(RATELIMIT, v);
        }
        put_num(headers, X_LIMIT, item.quota);
        put_num(headers, X_REMAINING, item.remaining);
        put_num(headers, X_RESET, (now_ms.max(0) as u64 / 1000) + item.reset_secs);
    }
    if !d.allowed() {
        put_num(headers, axum::http::header::RETRY_AFTER, secs(d.retry_after_ms).max(1));
    }
}

/// The REST envelope's `meta.rate_limit`: `{limit, remaining, reset}` (reset in epoch seconds), the
/// numbers of the `X-RateLimit-*` fields.
pub fn envelope(d: &Decision, now_ms: i64) -> serde_json::Value {
    match item(d) {
        Some(item) => serde_json::json!({
            "limit": item.quota,
            "remaining": item.remaining,
            "reset": (now_ms.max(0) as u64 / 1000) + item.reset_secs,
        }),
        None => serde_json::Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_its_own_quota_over_the_time_it_takes_to_refill() {
        let w = |limit, capacity, period_ms| Window { name: "second", period_ms, limit, capacity, points: false };
        assert_eq!(window_secs(&w(10, 20, 1000)), 2);
        assert_eq!(window_secs(&w(10, 10, 1000)), 1);
        assert_eq!(window_secs(&w(3, 4, 1000)), 2, "rounded up: never promises more than it gives");
        assert_eq!(window_secs(&w(100, 100, 60_000)), 60);
        let header = policy_header(&[w(10, 20, 1000)], Some(100_000));
        assert_eq!(header.to_str().unwrap(), "\"second\";q=20;w=2, \"month\";q=100000;w=2592000");
    }
}

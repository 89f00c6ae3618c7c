//! Rate-limit response headers: the IETF `RateLimit-Policy` / `RateLimit` fields
//! (draft-ietf-httpapi-ratelimit-headers, structured-field form) and the seeds'
//! `X-RateLimit-Limit/Remaining/Reset`; `Retry-After` on refusals.

use axum::http::{HeaderMap, HeaderName, HeaderValue};

use super::limiter::Decision;

// Constants, so the names are checked at compile time rather than on every response.
const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
const X_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
const X_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
const X_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

fn put_num(headers: &mut HeaderMap, name: HeaderName, value: u64) {
    headers.insert(name, HeaderValue::from(value));
}

/// Adds the headers for `decision` (made at `now_ms`).
pub fn apply(headers: &mut HeaderMap, d: &Decision, now_ms: i64) {
    let windows = &d.policy.windows;
    if let (Some(w), Some(state)) = (windows.get(d.binding), d.windows.get(d.binding)) {
        headers.reserve(6);
        headers.insert(RATELIMIT_POLICY, d.policy.header.clone());
        let reset_secs = (state.reset_ms + 999) / 1000;
        let mut numbers = itoa::Buffer::new();
        let mut value = String::with_capacity(w.name.len() + 32);
        value.push('"');
        value.push_str(w.name);
        value.push_str("\";r=");
        value.push_str(numbers.format(state.remaining));
        value.push_str(";t=");
        value.push_str(numbers.format(reset_secs));
        if let Ok(v) = HeaderValue::from_maybe_shared(axum::body::Bytes::from(value)) {
            headers.insert(RATELIMIT, v);
        }
        put_num(headers, X_LIMIT, w.capacity);
        put_num(headers, X_REMAINING, state.remaining);
        put_num(headers, X_RESET, ((now_ms + state.reset_ms + 999) / 1000).max(0) as u64);
    }
    if !d.allowed() {
        put_num(headers, axum::http::header::RETRY_AFTER, ((d.retry_after_ms + 999) / 1000).max(1) as u64);
    }
}

/// The REST envelope's `meta.rate_limit`: `{limit, remaining, reset}` (reset in epoch seconds).
pub fn envelope(d: &Decision, now_ms: i64) -> serde_json::Value {
    match (d.policy.windows.get(d.binding), d.windows.get(d.binding)) {
        (Some(w), Some(s)) => serde_json::json!({
            "limit": w.capacity,
            "remaining": s.remaining,
            "reset": (now_ms + s.reset_ms + 999) / 1000,
        }),
        _ => serde_json::Value::Null,
    }
}

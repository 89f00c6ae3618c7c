//! Rate-limit response headers: the IETF `RateLimit-Policy` / `RateLimit` fields
//! (draft-ietf-httpapi-ratelimit-headers, structured-field form) and the seeds'
//! `X-RateLimit-Limit/Remaining/Reset`; `Retry-After` on refusals.

use axum::http::{HeaderMap, HeaderName, HeaderValue};

use super::limiter::Decision;

fn put(headers: &mut HeaderMap, name: &'static str, value: String) {
    if let Ok(v) = HeaderValue::from_str(&value) {
        headers.insert(HeaderName::from_static(name), v);
    }
}

fn put_num(headers: &mut HeaderMap, name: &'static str, value: u64) {
    headers.insert(HeaderName::from_static(name), HeaderValue::from(value));
}

/// Adds the headers for `decision` (made at `now_ms`).
pub fn apply(headers: &mut HeaderMap, d: &Decision, now_ms: i64) {
    let windows = &d.policy.windows;
    if let (Some(w), Some(state)) = (windows.get(d.binding), d.windows.get(d.binding)) {
        headers.reserve(6);
        headers.insert(HeaderName::from_static("ratelimit-policy"), d.policy.header.clone());
        let reset_secs = (state.reset_ms + 999) / 1000;
        put(headers, "ratelimit", format!("\"{}\";r={};t={}", w.name, state.remaining, reset_secs));
        put_num(headers, "x-ratelimit-limit", w.capacity);
        put_num(headers, "x-ratelimit-remaining", state.remaining);
        put_num(headers, "x-ratelimit-reset", ((now_ms + state.reset_ms + 999) / 1000).max(0) as u64);
    }
    if !d.allowed() {
        put_num(headers, "retry-after", ((d.retry_after_ms + 999) / 1000).max(1) as u64);
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

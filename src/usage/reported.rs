//! `recordUsage`: metered events the operator's backend reports (emails sent, GB stored, …), each
//! with an idempotency key — a repeat is accepted once and answered with the first event's id.
//!
//! Calls are validated on the request path, then committed by the group-commit writer
//! (`usage::recorder`): concurrent callers share one transaction, and each caller is answered only
//! after its events are durable — an acknowledged event is never lost.

use std::collections::HashMap;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::recorder::Row;
pub use super::recorder::{EventResult, Outcome};
use crate::app::App;
use crate::auth::Principal;
use crate::error::{Error, Result};
use crate::platform::db::schema::organizations;
use crate::platform::ids::{MeterEventId, OrgId};
use crate::with_conn;

pub const MAX_EVENTS_PER_CALL: usize = 1000;
const MAX_PROPERTIES_BYTES: usize = 4096;
/// How far back an event may be dated (a late report still lands in an open billing period).
const MAX_AGE_MS: i64 = 35 * 86_400_000;
/// How far ahead (clock skew).
const MAX_SKEW_MS: i64 = 5 * 60_000;

/// One reported event, as the caller sent it.
#[derive(Debug, Clone)]
pub struct EventInput {
    pub metric: String,
    pub quantity: i64,
    pub idempotency_key: String,
    pub timestamp_ms: Option<i64>,
    pub properties: Option<serde_json::Value>,
}

fn valid_metric(m: &str) -> bool {
    (1..=100).contains(&m.len())
        && m.starts_with(|c: char| c.is_ascii_alphabetic())
        && m.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-'))
}

/// Validates and records a call's events for `org` (the caller's own organization, or — for a
/// platform service key — the one it names).
pub async fn record(
    app: &App,
    principal: &Principal,
    organization: Option<&str>,
    events: Vec<EventInput>,
) -> Result<Vec<EventResult>> {
    principal.require_scope("usage:write")?;
    let org: OrgId = match organization {
        None => principal.org_id.clone(),
        Some(o) if o == principal.org_id.as_str() => principal.org_id.clone(),
        Some(o) => {
            if !principal.is_platform {
                return Err(Error::forbidden("only a platform service key may record usage for another organization"));
            }
            let id: OrgId = o.parse().map_err(|_| Error::bad_input("organizationId", "not an organization id"))?;
            let exists: i64 = with_conn!(app.db, c => {
                organizations::table.find(id.as_str()).count().get_result(c).await?
            });
            if exists == 0 {
                return Err(Error::NotFound("organization"));
            }
            id
        }
    };
    if events.is_empty() || events.len() > MAX_EVENTS_PER_CALL {
        return Err(Error::bad_input("events", format!("send 1 to {MAX_EVENTS_PER_CALL} events per call")));
    }
    let now = app.clock.now_ms();
    let mut seen = std::collections::HashSet::new();
    let mut order = Vec::with_capacity(events.len());
    let mut rows = Vec::with_capacity(events.len());
    for (i, e) in events.into_iter().enumerate() {
        let field = |f: &str| format!("events[{i}].{f}");
        if !valid_metric(&e.metric) {
            return Err(Error::bad_input(
                field("metric"),
                "1 to 100 characters: a letter, then letters, digits, `_`, `.`, `:` or `-`",
            ));
        }
        if e.quantity < 0 {
            return Err(Error::bad_input(field("quantity"), "must not be negative"));
        }
        let key = e.idempotency_key.trim();
        if key.is_empty() || key.chars().count() > 255 || key.chars().any(|c| c.is_control()) {
            return Err(Error::bad_input(field("idempotencyKey"), "1 to 255 printable characters"));
        }
        let at = e.timestamp_ms.unwrap_or(now);
        if at > now + MAX_SKEW_MS {
            return Err(Error::bad_input(field("timestamp"), "is in the future"));
        }
        if at < now - MAX_AGE_MS {
            return Err(Error::bad_input(field("timestamp"), "is more than 35 days old"));
        }
        let properties = match e.properties {
            None | Some(serde_json::Value::Null) => "{}".to_string(),
            Some(v @ serde_json::Value::Object(_)) => v.to_string(),
            Some(_) => return Err(Error::bad_input(field("properties"), "must be a JSON object")),
        };
        if properties.len() > MAX_PROPERTIES_BYTES {
            return Err(Error::bad_input(field("properties"), "must be at most 4 KiB of JSON"));
        }
        order.push(key.to_string());
        // A key repeated inside one call is the same event: keep the first.
        if !seen.insert(key.to_string()) {
            continue;
        }
        rows.push(Row {
            id: MeterEventId::generate(now).to_string(),
            org_id: org.to_string(),
            idempotency_key: key.to_string(),
            metric: e.metric,
            quantity: e.quantity,
            properties,
            occurred_at: at,
            recorded_at: now,
            recorded_by: principal.actor_id(),
        });
    }
    let results = app.recorder.commit(rows).await?;
    // One answer per event sent, in order; a key repeated inside the call is a duplicate of its first.
    let mut by_key: HashMap<String, EventResult> =
        results.into_iter().map(|r| (r.idempotency_key.clone(), r)).collect();
    Ok(order
        .into_iter()
        .filter_map(|k| match by_key.get_mut(&k) {
            Some(first) => {
                let r = first.clone();
                first.outcome = Outcome::Duplicate;
                Some(r)
            }
            None => None,
        })
        .collect())
}

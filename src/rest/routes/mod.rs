//! The v1 route table: each row is a GraphQL operation on the same schema, how the request maps
//! to its variables, which field is the payload and which status a success returns. Adding a
//! REST route means adding a row, never a second implementation. The rows live with their domain
//! (`accounts`, `admin`, `apps`, `billing`, `keys`, `team`, `usage`, `webhooks`, `events`, `features`); the selections they share are here.

mod accounts;
mod admin;
mod apps;
mod billing;
mod events;
mod features;
mod keys;
mod team;
mod usage;
mod webhooks;

use axum::http::Method;
use serde_json::{Value, json};

use super::RestInput;
use crate::error::{Error, Result};

pub struct Route {
    pub method: Method,
    /// Path under `/api/v1`, axum syntax.
    pub path: &'static str,
    pub summary: &'static str,
    pub document: &'static str,
    /// The root field whose value is the payload (`app.reviews`: a field below it).
    pub field: &'static str,
    /// Status of a success (204 sends no body).
    pub status: u16,
    pub variables: fn(&RestInput) -> Result<Value>,
    /// Reshapes the payload (e.g. a connection into a list with pagination meta).
    pub shape: Shape,
    /// The route as metered: `GET /api/v1/keys/{id}`.
    pub label: std::sync::Arc<str>,
}

#[derive(Clone, Copy)]
pub enum Shape {
    AsIs,
    /// A Relay connection: `data` is the list of nodes, `meta.pagination` the page info.
    List,
    /// A page for people: the payload rendered as HTML (errors stay JSON envelopes).
    Html(fn(&Value) -> std::result::Result<String, askama::Error>),
}

pub(super) const USER: &str = "id email name isPlatformAdmin personalOrganizationId";
pub(super) const SESSION: &str = "id token refreshToken expiresAt refreshExpiresAt";
pub(super) const STATS: &str = "calls errors clientErrors serverErrors limitedCalls successRate avgLatencyMs p50LatencyMs p95LatencyMs p99LatencyMs requestBytes responseBytes bandwidthBytes costUnits quotaUnits";
pub(super) const RECORDED: &str = "accepted duplicates results { idempotencyKey eventId status }";
pub(super) const KEY: &str = "id name description environment prefix maskedKey scopes status expiresAt allowedIps metadata createdAt updatedAt lastUsedAt lastUsedIp totalRequests revokedAt revokedReason";
pub(super) const ENDPOINT: &str = "id url description filterTypes headers enabled disabledReason rateLimitPerSecond retrySchedule timeoutSeconds metadata failingSince createdAt updatedAt";
pub(super) const DELIVERY: &str =
    "id endpointId eventId eventType status attemptCount nextAttemptAt lastStatusCode lastError createdAt";
pub(super) const ATTEMPT: &str = "id attempt url requestHeaders requestBody responseStatus responseHeaders responseBody latencyMs errorKind errorMessage createdAt";
pub(super) const EVENT: &str = "id type organizationId occurredAt data";

pub(super) fn body_input(i: &RestInput) -> Result<Value> {
    Ok(json!({ "input": i.body_object()? }))
}

pub(super) fn id_only(i: &RestInput) -> Result<Value> {
    Ok(json!({ "id": i.path("id") }))
}

pub(super) fn no_vars(_: &RestInput) -> Result<Value> {
    Ok(json!({}))
}

pub(super) fn update_key(i: &RestInput) -> Result<Value> {
    Ok(json!({ "id": i.path("id"), "input": i.body_object()? }))
}

pub(super) fn page_args(i: &RestInput) -> Result<Value> {
    let first = match i.query("limit").or(i.query("first")) {
        Some(s) => Some(s.parse::<i64>().map_err(|_| Error::bad_input("limit", "must be an integer"))?),
        None => None,
    };
    Ok(json!({ "first": first, "after": i.query("cursor").or(i.query("after")) }))
}

/// A row of the table; `label` is the route as metered (`GET /api/v1/keys/{id}`).
#[allow(clippy::too_many_arguments)]
pub(super) fn r(
    method: Method,
    path: &'static str,
    summary: &'static str,
    document: &'static str,
    field: &'static str,
    status: u16,
    variables: fn(&RestInput) -> Result<Value>,
    shape: Shape,
) -> Route {
    Route {
        label: std::sync::Arc::from(format!("{method} /api/v1{path}")),
        method,
        path,
        summary,
        document,
        field,
        status,
        variables,
        shape,
    }
}

/// Every route.
pub fn table() -> Vec<Route> {
    [
        accounts::routes(),
        admin::routes(),
        apps::routes(),
        billing::routes(),
        keys::routes(),
        team::routes(),
        usage::routes(),
        webhooks::routes(),
        events::routes(),
        features::routes(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Route documents are built once at start-up and live for the process.
pub(super) fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

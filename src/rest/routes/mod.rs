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
mod v2;
mod webhooks;

use std::sync::Arc;

use axum::http::Method;

use super::typed::Signature;

/// Who may call a route, as the OpenAPI document says it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Access {
    /// A credential is required.
    Credential,
    /// Anyone; a credential changes what is shown (the marketplace).
    Optional,
    /// No credential (signing up, signing in).
    Open,
}

pub struct Route {
    pub method: Method,
    /// Path under `/api/v1`, axum syntax; parameters are snake_case.
    pub path: &'static str,
    pub summary: &'static str,
    pub document: &'static str,
    /// The root field whose value is the payload (`app.reviews`: a field below it).
    pub field: &'static str,
    /// Status of a success (204 sends no body).
    pub status: u16,
    /// What the route takes and where, read from its document (see [`super::typed`]).
    pub sig: Signature,
    /// Reshapes the payload (e.g. a connection into a list with pagination meta).
    pub shape: Shape,
    pub access: Access,
    /// The route as metered: `GET /api/v1/keys/{id}`.
    pub label: Arc<str>,
}

#[derive(Clone, Copy)]
pub enum Shape {
    AsIs,
    /// A Relay connection: `data` is the list of nodes, `meta.pagination` the page info.
    List,
    /// A subscription served as Server-Sent Events, one `event` per item.
    Events,
    /// A page for people: the payload rendered as HTML (errors stay JSON envelopes).
    Html(fn(&serde_json::Value) -> std::result::Result<String, askama::Error>),
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

/// Routes anyone may call without a credential.
const OPEN: &[&str] = &[
    "POST /api/v1/auth/register",
    "POST /api/v1/auth/login",
    "POST /api/v1/auth/refresh",
    "POST /api/v1/auth/verify-email",
    "POST /api/v1/auth/forgot-password",
    "POST /api/v1/auth/reset-password",
];

/// Routes a credential is optional for: the public marketplace and the plans.
const OPTIONAL: &[&str] = &[
    "GET /api/v1/apps",
    "GET /api/v1/apps/{id}",
    "GET /api/v1/apps/{id}/reviews",
    "GET /api/v1/billing/plans",
    "GET /api/v1/marketplace/search",
];

/// A row of the table. `renames` pairs a REST name with the document's variable where the REST
/// name is not the variable's snake_case (`("id", "endpointId")`).
#[allow(clippy::too_many_arguments)]
pub(super) fn r(
    method: Method,
    path: &'static str,
    summary: &'static str,
    document: &'static str,
    field: &'static str,
    status: u16,
    renames: &'static [(&'static str, &'static str)],
    shape: Shape,
) -> Route {
    let label: Arc<str> = Arc::from(format!("{method} /api/v1{path}"));
    let access = if OPEN.contains(&&*label) {
        Access::Open
    } else if OPTIONAL.contains(&&*label) {
        Access::Optional
    } else {
        Access::Credential
    };
    Route {
        sig: Signature::new(&method, path, document, renames),
        label,
        method,
        path,
        summary,
        document,
        field,
        status,
        shape,
        access,
    }
}

/// Routes only v2 has (seed 001 §2.2).
pub fn v2_only() -> Vec<Route> {
    v2::routes()
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

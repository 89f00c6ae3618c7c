//! The v1 route table: each row is a GraphQL operation on the same schema, how the request maps
//! to its variables, which field is the payload and which status a success returns. Adding a
//! REST route means adding a row, never a second implementation.

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
    /// The root field whose value is the payload.
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
}

const USER: &str = "id email name isPlatformAdmin personalOrganizationId";
const SESSION: &str = "id token refreshToken expiresAt refreshExpiresAt";
const STATS: &str = "calls errors clientErrors serverErrors limitedCalls successRate avgLatencyMs p50LatencyMs p95LatencyMs p99LatencyMs requestBytes responseBytes bandwidthBytes costUnits quotaUnits";
const RECORDED: &str = "accepted duplicates results { idempotencyKey eventId status }";
const KEY: &str = "id name description environment prefix maskedKey scopes status expiresAt allowedIps metadata createdAt updatedAt lastUsedAt lastUsedIp totalRequests revokedAt revokedReason";

fn body_input(i: &RestInput) -> Result<Value> {
    Ok(json!({ "input": i.body_object()? }))
}

fn id_only(i: &RestInput) -> Result<Value> {
    Ok(json!({ "id": i.path("id") }))
}

fn no_vars(_: &RestInput) -> Result<Value> {
    Ok(json!({}))
}

fn list_keys(i: &RestInput) -> Result<Value> {
    let first = match i.query("limit").or(i.query("first")) {
        Some(s) => Some(s.parse::<i64>().map_err(|_| Error::bad_input("limit", "must be an integer"))?),
        None => None,
    };
    let environment = i.query("environment").map(|e| e.to_ascii_uppercase());
    let include_revoked = matches!(i.query("include_revoked"), Some("true" | "1"));
    Ok(
        json!({ "first": first, "after": i.query("cursor").or(i.query("after")), "environment": environment, "includeRevoked": include_revoked }),
    )
}

fn update_key(i: &RestInput) -> Result<Value> {
    Ok(json!({ "id": i.path("id"), "input": i.body_object()? }))
}

fn roll(grace_default: Option<i64>) -> impl Fn(&RestInput) -> Result<Value> {
    move |i: &RestInput| {
        let body = i.body_object()?;
        let grace = body.get("expireOldInSeconds").cloned().unwrap_or(json!(grace_default));
        Ok(json!({ "id": i.path("id"), "grace": grace }))
    }
}

fn roll_default(i: &RestInput) -> Result<Value> {
    roll(None)(i)
}

fn regenerate(i: &RestInput) -> Result<Value> {
    roll(Some(0))(i)
}

fn revoke(i: &RestInput) -> Result<Value> {
    let body = i.body_object()?;
    Ok(json!({ "id": i.path("id"), "reason": body.get("reason") }))
}

fn key_usage(i: &RestInput) -> Result<Value> {
    let days = match i.query("days") {
        Some(s) => s.parse::<i64>().map_err(|_| Error::bad_input("days", "must be an integer"))?,
        None => 30,
    };
    Ok(json!({ "id": i.path("id"), "days": days }))
}

/// `?period=last_7_days&key_id=key_…` → `$period`, `$keyId`.
fn analytics(i: &RestInput) -> Result<Value> {
    let period = i.query("period").unwrap_or("current_month");
    if crate::usage::graphql::UsagePeriod::parse(period).is_none() {
        return Err(Error::bad_input(
            "period",
            "one of last_hour, last_24_hours, last_7_days, last_30_days, current_month, previous_month",
        ));
    }
    // The GraphQL enum value is the upper-case spelling.
    Ok(json!({ "period": period.to_ascii_uppercase(), "keyId": i.query("key_id") }))
}

const ENDPOINT: &str = "id url description filterTypes headers enabled disabledReason rateLimitPerSecond retrySchedule timeoutSeconds metadata failingSince createdAt updatedAt";
const DELIVERY: &str =
    "id endpointId eventId eventType status attemptCount nextAttemptAt lastStatusCode lastError createdAt";
const ATTEMPT: &str = "id attempt url requestHeaders requestBody responseStatus responseHeaders responseBody latencyMs errorKind errorMessage createdAt";
const EVENT: &str = "id type organizationId occurredAt data";

fn page_args(i: &RestInput) -> Result<Value> {
    let first = match i.query("limit").or(i.query("first")) {
        Some(s) => Some(s.parse::<i64>().map_err(|_| Error::bad_input("limit", "must be an integer"))?),
        None => None,
    };
    Ok(json!({ "first": first, "after": i.query("cursor").or(i.query("after")) }))
}

/// `?status=failed&event_type=…&since=…&until=…` for an endpoint's deliveries.
fn deliveries(i: &RestInput) -> Result<Value> {
    let mut v = page_args(i)?;
    v["endpointId"] = json!(i.path("id"));
    v["status"] = json!(i.query("status").map(str::to_ascii_uppercase));
    v["eventType"] = json!(i.query("event_type"));
    v["since"] = json!(i.query("since"));
    v["until"] = json!(i.query("until"));
    Ok(v)
}

fn delivery_path(i: &RestInput) -> Result<Value> {
    Ok(json!({ "id": i.path("did"), "endpointId": i.path("id") }))
}

fn test_event(i: &RestInput) -> Result<Value> {
    let body = i.body_object()?;
    Ok(json!({ "id": i.path("id"), "type": body.get("type").or(body.get("eventType")) }))
}

fn recover(i: &RestInput) -> Result<Value> {
    let body = i.body_object()?;
    Ok(json!({ "id": i.path("id"), "since": body.get("since"), "until": body.get("until") }))
}

fn rotate(i: &RestInput) -> Result<Value> {
    let body = i.body_object()?;
    Ok(json!({ "id": i.path("id"), "grace": body.get("gracePeriodSeconds") }))
}

fn list_events(i: &RestInput) -> Result<Value> {
    let mut v = page_args(i)?;
    v["types"] = json!(i.query("types").map(|t| t.split(',').map(str::to_string).collect::<Vec<_>>()));
    v["since"] = json!(i.query("since"));
    v["until"] = json!(i.query("until"));
    Ok(v)
}

fn refresh(i: &RestInput) -> Result<Value> {
    let body = i.body_object()?;
    let token = body
        .get("refreshToken")
        .and_then(|v| v.as_str())
        .ok_or_else(|| Error::bad_input("refresh_token", "is required"))?;
    Ok(json!({ "token": token }))
}

pub fn table() -> Vec<Route> {
    use Method as M;
    let r =
        |method: Method, path: &'static str, summary, document: &'static str, field, status, variables, shape| Route {
            label: std::sync::Arc::from(format!("{method} /api/v1{path}")),
            method,
            path,
            summary,
            document,
            field,
            status,
            variables,
            shape,
        };
    vec![
        r(
            M::POST,
            "/auth/register",
            "Create an account and sign in",
            leak(format!(
                "mutation($input: RegisterInput!) {{ register(input: $input) {{ user {{ {USER} }} session {{ {SESSION} }} }} }}"
            )),
            "register",
            201,
            body_input,
            Shape::AsIs,
        ),
        r(
            M::POST,
            "/auth/login",
            "Sign in",
            leak(format!(
                "mutation($input: LoginInput!) {{ login(input: $input) {{ user {{ {USER} }} session {{ {SESSION} }} }} }}"
            )),
            "login",
            200,
            body_input,
            Shape::AsIs,
        ),
        r(
            M::POST,
            "/auth/refresh",
            "Exchange a refresh token for a new session",
            leak(format!(
                "mutation($token: String!) {{ refreshSession(refreshToken: $token) {{ user {{ {USER} }} session {{ {SESSION} }} }} }}"
            )),
            "refreshSession",
            200,
            refresh,
            Shape::AsIs,
        ),
        r(
            M::POST,
            "/auth/logout",
            "Revoke the current session",
            "mutation { logout }",
            "logout",
            204,
            no_vars,
            Shape::AsIs,
        ),
        r(
            M::GET,
            "/auth/user",
            "The caller",
            "query { viewer { id kind scopes role user { id email name isPlatformAdmin createdAt } organization { id name slug isPersonal createdAt } } }",
            "viewer",
            200,
            no_vars,
            Shape::AsIs,
        ),
        r(
            M::GET,
            "/keys",
            "List API keys (newest first)",
            leak(format!(
                "query($first: Int, $after: String, $environment: ApiKeyEnvironment, $includeRevoked: Boolean!) {{ apiKeys(first: $first, after: $after, environment: $environment, includeRevoked: $includeRevoked) {{ totalCount pageInfo {{ hasNextPage endCursor }} edges {{ node {{ {KEY} }} }} }} }}"
            )),
            "apiKeys",
            200,
            list_keys,
            Shape::List,
        ),
        r(
            M::POST,
            "/keys",
            "Create an API key (the secret is returned once)",
            leak(format!(
                "mutation($input: CreateApiKeyInput!) {{ createApiKey(input: $input) {{ secret apiKey {{ {KEY} }} }} }}"
            )),
            "createApiKey",
            201,
            body_input,
            Shape::AsIs,
        ),
        r(
            M::POST,
            "/keys/verify",
            "Verify a key for your backend",
            "mutation($input: VerifyApiKeyInput!) { verifyApiKey(input: $input) { valid code keyId organizationId name environment scopes metadata expiresAt rateLimit { window limit remaining resetAt retryAfter monthlyUsed monthlyQuota } } }",
            "verifyApiKey",
            200,
            body_input,
            Shape::AsIs,
        ),
        r(
            M::GET,
            "/keys/{id}",
            "Get an API key",
            leak(format!("query($id: ID!) {{ apiKey(id: $id) {{ {KEY} }} }}")),
            "apiKey",
            200,
            id_only,
            Shape::AsIs,
        ),
        r(
            M::PUT,
            "/keys/{id}",
            "Update an API key",
            leak(format!(
                "mutation($id: ID!, $input: UpdateApiKeyInput!) {{ updateApiKey(id: $id, input: $input) {{ {KEY} }} }}"
            )),
            "updateApiKey",
            200,
            update_key,
            Shape::AsIs,
        ),
        r(
            M::DELETE,
            "/keys/{id}",
            "Delete an API key",
            "mutation($id: ID!) { deleteApiKey(id: $id) { deletedId } }",
            "deleteApiKey",
            204,
            id_only,
            Shape::AsIs,
        ),
        r(
            M::POST,
            "/keys/{id}/regenerate",
            "New secret; the old one stops working now (unless expire_old_in_seconds is given)",
            leak(format!(
                "mutation($id: ID!, $grace: Int) {{ rollApiKey(id: $id, expireOldInSeconds: $grace) {{ secret previousSecretExpiresAt apiKey {{ {KEY} }} }} }}"
            )),
            "rollApiKey",
            200,
            regenerate,
            Shape::AsIs,
        ),
        r(
            M::POST,
            "/keys/{id}/roll",
            "New secret; the old one keeps working for expire_old_in_seconds (default 24 h)",
            leak(format!(
                "mutation($id: ID!, $grace: Int) {{ rollApiKey(id: $id, expireOldInSeconds: $grace) {{ secret previousSecretExpiresAt apiKey {{ {KEY} }} }} }}"
            )),
            "rollApiKey",
            200,
            roll_default,
            Shape::AsIs,
        ),
        r(
            M::POST,
            "/keys/{id}/revoke",
            "Revoke an API key",
            leak(format!(
                "mutation($id: ID!, $reason: String) {{ revokeApiKey(id: $id, reason: $reason) {{ {KEY} }} }}"
            )),
            "revokeApiKey",
            200,
            revoke,
            Shape::AsIs,
        ),
        r(
            M::GET,
            "/keys/{id}/usage",
            "Usage of an API key per day",
            "query($id: ID!, $days: Int!) { apiKey(id: $id) { id totalRequests lastUsedAt lastUsedIp usage(days: $days) { date requests } } }",
            "apiKey",
            200,
            key_usage,
            Shape::AsIs,
        ),
        r(
            M::POST,
            "/usage/events",
            "Report metered usage (idempotent per event key)",
            leak(format!("mutation($input: RecordUsageInput!) {{ recordUsage(input: $input) {{ {RECORDED} }} }}")),
            "recordUsage",
            200,
            body_input,
            Shape::AsIs,
        ),
        r(
            M::GET,
            "/analytics/usage",
            "Usage summary for a period",
            leak(format!(
                "query($period: UsagePeriod!, $keyId: ID) {{ usage(period: $period, keyId: $keyId) {{ start end stats {{ {STATS} }} }} }}"
            )),
            "usage",
            200,
            analytics,
            Shape::AsIs,
        ),
        r(
            M::GET,
            "/analytics/endpoints",
            "Usage per operation and route",
            leak(format!(
                "query($period: UsagePeriod!, $keyId: ID) {{ usageByEndpoint(period: $period, keyId: $keyId) {{ operation stats {{ {STATS} }} }} }}"
            )),
            "usageByEndpoint",
            200,
            analytics,
            Shape::AsIs,
        ),
        r(
            M::GET,
            "/analytics/errors",
            "Calls per error status",
            "query($period: UsagePeriod!, $keyId: ID) { errorBreakdown(period: $period, keyId: $keyId) { status calls share } }",
            "errorBreakdown",
            200,
            analytics,
            Shape::AsIs,
        ),
        r(
            M::GET,
            "/analytics/performance",
            "Latency per operation and route",
            "query($period: UsagePeriod!, $keyId: ID) { usageByEndpoint(period: $period, keyId: $keyId) { operation stats { calls avgLatencyMs p50LatencyMs p95LatencyMs p99LatencyMs } } }",
            "usageByEndpoint",
            200,
            analytics,
            Shape::AsIs,
        ),
        r(
            M::GET,
            "/analytics/costs",
            "Cost units and quota use per operation and route",
            "query($period: UsagePeriod!, $keyId: ID) { usageByEndpoint(period: $period, keyId: $keyId) { operation stats { calls costUnits quotaUnits } } }",
            "usageByEndpoint",
            200,
            analytics,
            Shape::AsIs,
        ),
        r(
            M::GET,
            "/webhooks",
            "List webhook endpoints (newest first)",
            leak(format!(
                "query($first: Int, $after: String) {{ webhookEndpoints(first: $first, after: $after) {{ totalCount pageInfo {{ hasNextPage endCursor }} edges {{ node {{ {ENDPOINT} }} }} }} }}"
            )),
            "webhookEndpoints",
            200,
            page_args,
            Shape::List,
        ),
        r(
            M::POST,
            "/webhooks",
            "Create a webhook endpoint (the signing secret is returned once)",
            leak(format!(
                "mutation($input: CreateWebhookEndpointInput!) {{ createWebhookEndpoint(input: $input) {{ secret endpoint {{ {ENDPOINT} }} }} }}"
            )),
            "createWebhookEndpoint",
            201,
            body_input,
            Shape::AsIs,
        ),
        r(
            M::GET,
            "/webhooks/{id}",
            "Get a webhook endpoint with its delivery stats",
            leak(format!(
                "query($id: ID!) {{ webhookEndpoint(id: $id) {{ {ENDPOINT} stats {{ succeeded pending failed attemptsLast24Hours successRateLast24Hours }} }} }}"
            )),
            "webhookEndpoint",
            200,
            id_only,
            Shape::AsIs,
        ),
        r(
            M::PUT,
            "/webhooks/{id}",
            "Change a webhook endpoint",
            leak(format!(
                "mutation($id: ID!, $input: UpdateWebhookEndpointInput!) {{ updateWebhookEndpoint(id: $id, input: $input) {{ {ENDPOINT} }} }}"
            )),
            "updateWebhookEndpoint",
            200,
            update_key,
            Shape::AsIs,
        ),
        r(
            M::DELETE,
            "/webhooks/{id}",
            "Delete a webhook endpoint and its delivery logs",
            "mutation($id: ID!) { deleteWebhookEndpoint(id: $id) { deletedId } }",
            "deleteWebhookEndpoint",
            204,
            id_only,
            Shape::AsIs,
        ),
        r(
            M::POST,
            "/webhooks/{id}/rotate-secret",
            "Issue a new signing secret (the old one signs beside it for the grace period)",
            leak(format!(
                "mutation($id: ID!, $grace: Int) {{ rotateWebhookSecret(id: $id, gracePeriodSeconds: $grace) {{ secret previousSecretExpiresAt endpoint {{ {ENDPOINT} }} }} }}"
            )),
            "rotateWebhookSecret",
            200,
            rotate,
            Shape::AsIs,
        ),
        r(
            M::POST,
            "/webhooks/{id}/test",
            "Send a test event (the type's sample payload) to this endpoint",
            leak(format!(
                "mutation($id: ID!, $type: String) {{ sendTestEvent(endpointId: $id, type: $type) {{ {DELIVERY} }} }}"
            )),
            "sendTestEvent",
            201,
            test_event,
            Shape::AsIs,
        ),
        r(
            M::POST,
            "/webhooks/{id}/recover",
            "Send again every failed delivery since a time (at most 14 days back)",
            "mutation($id: ID!, $since: DateTime!, $until: DateTime) { recoverEndpoint(id: $id, since: $since, until: $until) }",
            "recoverEndpoint",
            200,
            recover,
            Shape::AsIs,
        ),
        r(
            M::GET,
            "/webhooks/{id}/deliveries",
            "Deliveries to an endpoint (filters: status, event_type, since, until)",
            leak(format!(
                "query($endpointId: ID, $first: Int, $after: String, $status: WebhookDeliveryStatus, $eventType: String, $since: DateTime, $until: DateTime) {{ webhookDeliveries(endpointId: $endpointId, first: $first, after: $after, status: $status, eventType: $eventType, since: $since, until: $until) {{ totalCount pageInfo {{ hasNextPage endCursor }} edges {{ node {{ {DELIVERY} }} }} }} }}"
            )),
            "webhookDeliveries",
            200,
            deliveries,
            Shape::List,
        ),
        r(
            M::POST,
            "/webhooks/{id}/deliveries/{did}/retry",
            "Attempt a delivery again now",
            leak(format!(
                "mutation($id: ID!, $endpointId: ID!) {{ retryDelivery(id: $id, endpointId: $endpointId) {{ {DELIVERY} }} }}"
            )),
            "retryDelivery",
            200,
            delivery_path,
            Shape::AsIs,
        ),
        r(
            M::GET,
            "/webhooks/{id}/logs",
            "Deliveries to an endpoint with every attempt (request, response, latency, error)",
            leak(format!(
                "query($endpointId: ID, $first: Int, $after: String, $status: WebhookDeliveryStatus, $eventType: String, $since: DateTime, $until: DateTime) {{ webhookDeliveries(endpointId: $endpointId, first: $first, after: $after, status: $status, eventType: $eventType, since: $since, until: $until) {{ totalCount pageInfo {{ hasNextPage endCursor }} edges {{ node {{ {DELIVERY} attempts {{ {ATTEMPT} }} }} }} }} }}"
            )),
            "webhookDeliveries",
            200,
            deliveries,
            Shape::List,
        ),
        r(
            M::GET,
            "/webhook-events",
            "The event catalog: every type endpoints can filter on, with schema and sample",
            "query { eventTypes { name category description schema sample deprecated archivedAt builtIn } }",
            "eventTypes",
            200,
            no_vars,
            Shape::AsIs,
        ),
        r(
            M::POST,
            "/events",
            "Publish an event of a type you defined (idempotent per idempotency_key)",
            leak(format!(
                "mutation($input: PublishEventInput!) {{ publishEvent(input: $input) {{ replayed event {{ {EVENT} }} }} }}"
            )),
            "publishEvent",
            201,
            body_input,
            Shape::AsIs,
        ),
        r(
            M::GET,
            "/events",
            "The organization's events, newest first (filters: types, since, until)",
            leak(format!(
                "query($first: Int, $after: String, $types: [String!], $since: DateTime, $until: DateTime) {{ events(first: $first, after: $after, types: $types, since: $since, until: $until) {{ totalCount pageInfo {{ hasNextPage endCursor }} edges {{ node {{ {EVENT} }} }} }} }}"
            )),
            "events",
            200,
            list_events,
            Shape::List,
        ),
        r(
            M::GET,
            "/events/{id}",
            "One event of the organization",
            leak(format!("query($id: ID!) {{ event(id: $id) {{ {EVENT} }} }}")),
            "event",
            200,
            id_only,
            Shape::AsIs,
        ),
    ]
}

/// Route documents are built once at start-up and live for the process.
fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

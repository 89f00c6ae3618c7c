//! REST routes of API keys: list, create, verify, get, update, delete, roll, revoke, usage.

use axum::http::Method;
use serde_json::{Value, json};

use super::*;
use crate::error::{Error, Result};
use crate::rest::RestInput;

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

pub(super) fn routes() -> Vec<Route> {
    use Method as M;
    vec![
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
    ]
}

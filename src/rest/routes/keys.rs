//! REST routes of API keys: list, create, verify, get, update, delete, roll, revoke, usage.

use axum::http::Method;

use super::*;

const VERDICT: &str = "valid code keyId organizationId name environment scopes metadata expiresAt rateLimit { window limit remaining resetAt retryAfter monthlyUsed monthlyQuota }";

/// Every key route under both spellings of seed 000 and seed 001: `/keys` and `/api-keys`, a row
/// each.
pub(super) fn routes() -> Vec<Route> {
    let mut rows = spelled("/keys");
    rows.extend(spelled("/api-keys"));
    rows
}

fn spelled(prefix: &'static str) -> Vec<Route> {
    use Method as M;
    let p = |rest: &str| -> &'static str { leak(format!("{prefix}{rest}")) };
    vec![
        r(
            M::GET,
            p(""),
            "List API keys (newest first)",
            leak(format!(
                "query($first: Int, $after: String, $environment: ApiKeyEnvironment, $includeRevoked: Boolean! = false) {{ apiKeys(first: $first, after: $after, environment: $environment, includeRevoked: $includeRevoked) {{ totalCount pageInfo {{ hasNextPage endCursor }} edges {{ node {{ {KEY} }} }} }} }}"
            )),
            "apiKeys",
            200,
            &[],
            Shape::List,
        ),
        r(
            M::POST,
            p(""),
            "Create an API key (the secret is returned once)",
            leak(format!(
                "mutation($input: CreateApiKeyInput!) {{ createApiKey(input: $input) {{ secret apiKey {{ {KEY} }} }} }}"
            )),
            "createApiKey",
            201,
            &[],
            Shape::AsIs,
        ),
        r(
            M::POST,
            p("/verify"),
            "Verify a key for your backend",
            leak(format!("mutation($input: VerifyApiKeyInput!) {{ verifyApiKey(input: $input) {{ {VERDICT} }} }}")),
            "verifyApiKey",
            200,
            &[],
            Shape::AsIs,
        ),
        r(
            M::POST,
            p("/verify/batch"),
            "Verify up to 100 keys in one call (a key listed twice is verified once; one verdict per key, in order)",
            leak(format!(
                "mutation($input: VerifyApiKeysInput!) {{ verifyApiKeys(input: $input) {{ valid invalid verified results {{ {VERDICT} }} }} }}"
            )),
            "verifyApiKeys",
            200,
            &[],
            Shape::AsIs,
        ),
        r(
            M::GET,
            p("/{id}"),
            "Get an API key",
            leak(format!("query($id: ID!) {{ apiKey(id: $id) {{ {KEY} }} }}")),
            "apiKey",
            200,
            &[],
            Shape::AsIs,
        ),
        r(
            M::PUT,
            p("/{id}"),
            "Update an API key",
            leak(format!(
                "mutation($id: ID!, $input: UpdateApiKeyInput!) {{ updateApiKey(id: $id, input: $input) {{ {KEY} }} }}"
            )),
            "updateApiKey",
            200,
            &[],
            Shape::AsIs,
        ),
        r(
            M::DELETE,
            p("/{id}"),
            "Delete an API key",
            "mutation($id: ID!) { deleteApiKey(id: $id) { deletedId } }",
            "deleteApiKey",
            204,
            &[],
            Shape::AsIs,
        ),
        r(
            M::POST,
            p("/{id}/regenerate"),
            "New secret; the old one stops working now (unless expire_old_in_seconds is given)",
            leak(format!(
                "mutation($id: ID!, $expireOldInSeconds: Int = 0) {{ rollApiKey(id: $id, expireOldInSeconds: $expireOldInSeconds) {{ secret previousSecretExpiresAt apiKey {{ {KEY} }} }} }}"
            )),
            "rollApiKey",
            200,
            &[],
            Shape::AsIs,
        ),
        r(
            M::POST,
            p("/{id}/roll"),
            "New secret; the old one keeps working for expire_old_in_seconds (default 24 h)",
            leak(format!(
                "mutation($id: ID!, $expireOldInSeconds: Int) {{ rollApiKey(id: $id, expireOldInSeconds: $expireOldInSeconds) {{ secret previousSecretExpiresAt apiKey {{ {KEY} }} }} }}"
            )),
            "rollApiKey",
            200,
            &[],
            Shape::AsIs,
        ),
        r(
            M::POST,
            p("/{id}/revoke"),
            "Revoke an API key",
            leak(format!(
                "mutation($id: ID!, $reason: String) {{ revokeApiKey(id: $id, reason: $reason) {{ {KEY} }} }}"
            )),
            "revokeApiKey",
            200,
            &[],
            Shape::AsIs,
        ),
        r(
            M::GET,
            p("/{id}/usage"),
            "Usage of an API key per day",
            "query($id: ID!, $days: Int! = 30) { apiKey(id: $id) { id totalRequests lastUsedAt lastUsedIp usage(days: $days) { date requests } } }",
            "apiKey",
            200,
            &[],
            Shape::AsIs,
        ),
    ]
}

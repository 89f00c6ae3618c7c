//! REST routes of feature flags (seed 002): check one for the caller's organization, and the flags
//! themselves for platform administrators.

use axum::http::Method;
use serde_json::{Value, json};

use super::*;
use crate::error::Result;
use crate::rest::RestInput;

pub(super) const FLAG: &str =
    "id key description enabled rolloutPercentage metadata overrides { organizationId enabled } createdAt updatedAt";

fn check(i: &RestInput) -> Result<Value> {
    Ok(json!({ "key": i.path("key"), "organizationId": i.query("organization_id") }))
}

fn update(i: &RestInput) -> Result<Value> {
    Ok(json!({ "id": i.path("id"), "input": i.body_object()? }))
}

fn set_override(i: &RestInput) -> Result<Value> {
    let body = i.body_object()?;
    Ok(
        json!({ "id": i.path("id"), "org": i.path("orgId"), "enabled": body.get("enabled").cloned().unwrap_or(Value::Null) }),
    )
}

fn clear_override(i: &RestInput) -> Result<Value> {
    Ok(json!({ "id": i.path("id"), "org": i.path("orgId"), "enabled": Value::Null }))
}

pub(super) fn routes() -> Vec<Route> {
    use Method as M;
    vec![
        r(
            M::GET,
            "/features/check/{key}",
            "Whether a flag is on for your organization (`?organization_id=` for platform callers)",
            "query($key: String!, $organizationId: ID) { isFeatureEnabled(key: $key, organizationId: $organizationId) }",
            "isFeatureEnabled",
            200,
            check,
            Shape::AsIs,
        ),
        r(
            M::GET,
            "/features",
            "Every feature flag (platform administrators)",
            leak(format!("query {{ featureFlags {{ {FLAG} }} }}")),
            "featureFlags",
            200,
            no_vars,
            Shape::AsIs,
        ),
        r(
            M::POST,
            "/features",
            "Create a feature flag",
            leak(format!(
                "mutation($input: CreateFeatureFlagInput!) {{ createFeatureFlag(input: $input) {{ {FLAG} }} }}"
            )),
            "createFeatureFlag",
            201,
            body_input,
            Shape::AsIs,
        ),
        r(
            M::GET,
            "/features/{id}",
            "One feature flag (by id or key)",
            leak(format!("query($id: ID!) {{ featureFlag(id: $id) {{ {FLAG} }} }}")),
            "featureFlag",
            200,
            id_only,
            Shape::AsIs,
        ),
        r(
            M::PATCH,
            "/features/{id}",
            "Change a feature flag",
            leak(format!(
                "mutation($id: ID!, $input: UpdateFeatureFlagInput!) {{ updateFeatureFlag(id: $id, input: $input) {{ {FLAG} }} }}"
            )),
            "updateFeatureFlag",
            200,
            update,
            Shape::AsIs,
        ),
        r(
            M::DELETE,
            "/features/{id}",
            "Delete a feature flag",
            "mutation($id: ID!) { deleteFeatureFlag(id: $id) { id } }",
            "deleteFeatureFlag",
            204,
            id_only,
            Shape::AsIs,
        ),
        r(
            M::POST,
            "/features/{id}/toggle",
            "Turn a flag's default on or off",
            leak(format!("mutation($id: ID!) {{ toggleFeatureFlag(id: $id) {{ {FLAG} }} }}")),
            "toggleFeatureFlag",
            200,
            id_only,
            Shape::AsIs,
        ),
        r(
            M::PUT,
            "/features/{id}/overrides/{orgId}",
            "Set an organization's own value of a flag (`{\"enabled\": true}`)",
            leak(format!(
                "mutation($id: ID!, $org: ID!, $enabled: Boolean) {{ setFeatureOverride(id: $id, organizationId: $org, enabled: $enabled) {{ {FLAG} }} }}"
            )),
            "setFeatureOverride",
            200,
            set_override,
            Shape::AsIs,
        ),
        r(
            M::DELETE,
            "/features/{id}/overrides/{orgId}",
            "Clear an organization's own value of a flag",
            leak(format!(
                "mutation($id: ID!, $org: ID!, $enabled: Boolean) {{ setFeatureOverride(id: $id, organizationId: $org, enabled: $enabled) {{ {FLAG} }} }}"
            )),
            "setFeatureOverride",
            200,
            clear_override,
            Shape::AsIs,
        ),
    ]
}

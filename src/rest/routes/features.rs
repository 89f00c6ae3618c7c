//! REST routes of feature flags (seed 002): check one for the caller's organization, and the flags
//! themselves for platform administrators.

use axum::http::Method;

use super::*;

pub(super) const FLAG: &str =
    "id key description enabled rolloutPercentage metadata overrides { organizationId enabled } createdAt updatedAt";

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
            &[],
            Shape::AsIs,
        ),
        r(
            M::GET,
            "/features",
            "Every feature flag (platform administrators)",
            leak(format!("query {{ featureFlags {{ {FLAG} }} }}")),
            "featureFlags",
            200,
            &[],
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
            &[],
            Shape::AsIs,
        ),
        r(
            M::GET,
            "/features/{id}",
            "One feature flag (by id or key)",
            leak(format!("query($id: ID!) {{ featureFlag(id: $id) {{ {FLAG} }} }}")),
            "featureFlag",
            200,
            &[],
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
            &[],
            Shape::AsIs,
        ),
        r(
            M::DELETE,
            "/features/{id}",
            "Delete a feature flag",
            "mutation($id: ID!) { deleteFeatureFlag(id: $id) { id } }",
            "deleteFeatureFlag",
            204,
            &[],
            Shape::AsIs,
        ),
        r(
            M::POST,
            "/features/{id}/toggle",
            "Turn a flag's default on or off",
            leak(format!("mutation($id: ID!) {{ toggleFeatureFlag(id: $id) {{ {FLAG} }} }}")),
            "toggleFeatureFlag",
            200,
            &[],
            Shape::AsIs,
        ),
        r(
            M::PUT,
            "/features/{id}/overrides/{organization_id}",
            "Set an organization's own value of a flag (`{\"enabled\": true}`)",
            leak(format!(
                "mutation($id: ID!, $organizationId: ID!, $enabled: Boolean) {{ setFeatureOverride(id: $id, organizationId: $organizationId, enabled: $enabled) {{ {FLAG} }} }}"
            )),
            "setFeatureOverride",
            200,
            &[],
            Shape::AsIs,
        ),
        r(
            M::DELETE,
            "/features/{id}/overrides/{organization_id}",
            "Clear an organization's own value of a flag",
            leak(format!(
                "mutation($id: ID!, $organizationId: ID!) {{ setFeatureOverride(id: $id, organizationId: $organizationId, enabled: null) {{ {FLAG} }} }}"
            )),
            "setFeatureOverride",
            200,
            &[],
            Shape::AsIs,
        ),
    ]
}

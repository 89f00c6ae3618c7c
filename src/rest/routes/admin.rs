//! REST routes of platform administration (seed 001 §2.1 "Admin"): users, organizations,
//! platform analytics. The app review queue's rows are with the apps.

use axum::http::Method;

use super::*;

pub(super) const PLATFORM_USER: &str =
    "id email name isPlatformAdmin emailVerified suspendedAt suspendedReason personalOrganizationId createdAt";
pub(super) const ORGANIZATION: &str =
    "id name slug isPersonal createdAt suspendedAt suspendedReason deletedAt purgeAfter plan { id slug name }";

pub(super) fn routes() -> Vec<Route> {
    use Method as M;
    vec![
        r(
            M::GET,
            "/admin/users",
            "Users, newest first (`?search=` matches address or name)",
            leak(format!(
                "query($first: Int, $after: String, $search: String) {{ adminUsers(first: $first, after: $after, search: $search) {{ totalCount pageInfo {{ hasNextPage endCursor }} edges {{ node {{ {PLATFORM_USER} }} }} }} }}"
            )),
            "adminUsers",
            200,
            &[],
            Shape::List,
        ),
        r(
            M::GET,
            "/admin/users/{id}",
            "One user with their organizations",
            leak(format!(
                "query($id: ID!) {{ adminUser(id: $id) {{ {PLATFORM_USER} memberships {{ role organization {{ id name slug }} }} }} }}"
            )),
            "adminUser",
            200,
            &[],
            Shape::AsIs,
        ),
        r(
            M::PUT,
            "/admin/users/{id}",
            "Change a user: name, suspension (`suspended`, `suspended_reason`), platform administration",
            leak(format!(
                "mutation($id: ID!, $input: UpdateUserInput!) {{ updateUser(id: $id, input: $input) {{ {PLATFORM_USER} }} }}"
            )),
            "updateUser",
            200,
            &[],
            Shape::AsIs,
        ),
        r(
            M::DELETE,
            "/admin/users/{id}",
            "Erase a user's account",
            "mutation($id: ID!) { deleteUser(id: $id) }",
            "deleteUser",
            204,
            &[],
            Shape::AsIs,
        ),
        r(
            M::GET,
            "/admin/organizations",
            "Organizations, newest first (`?search=` matches name or slug)",
            leak(format!(
                "query($first: Int, $after: String, $search: String) {{ adminOrganizations(first: $first, after: $after, search: $search) {{ totalCount pageInfo {{ hasNextPage endCursor }} edges {{ node {{ {ORGANIZATION} }} }} }} }}"
            )),
            "adminOrganizations",
            200,
            &[],
            Shape::List,
        ),
        r(
            M::POST,
            "/admin/organizations/{id}/suspend",
            "Suspend an organization (`{\"reason\": …}`)",
            leak(format!(
                "mutation($id: ID!, $reason: String! = \"suspended by a platform administrator\") {{ suspendOrganization(id: $id, reason: $reason) {{ {ORGANIZATION} }} }}"
            )),
            "suspendOrganization",
            200,
            &[],
            Shape::AsIs,
        ),
        r(
            M::POST,
            "/admin/organizations/{id}/unsuspend",
            "Lift an organization's suspension",
            leak(format!("mutation($id: ID!) {{ unsuspendOrganization(id: $id) {{ {ORGANIZATION} }} }}")),
            "unsuspendOrganization",
            200,
            &[],
            Shape::AsIs,
        ),
        r(
            M::GET,
            "/admin/analytics",
            "Platform analytics over a period (`?start=&end=`, RFC 3339; default the last 30 days)",
            "query($start: DateTime, $end: DateTime) { platformAnalytics(start: $start, end: $end) { start end users newUsers suspendedUsers organizations newOrganizations suspendedOrganizations organizationsByPlan { planId planName organizations } apiCalls apiErrors webhookDeliveries { status count } revenue { period currency amount invoices } marketplacePlatformShare { currency amount } } }",
            "platformAnalytics",
            200,
            &[],
            Shape::AsIs,
        ),
    ]
}

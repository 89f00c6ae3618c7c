//! REST routes of marketplace apps, their reviews and installations, and the review queue.

use axum::http::Method;

use super::*;

pub(super) const APP: &str = "id name slug description longDescription category iconUrl version status reviewReason submittedAt reviewedAt publishedAt deprecatedAt featured pricing { model amount currency } features requestedScopes docsUrl supportUrl installCount rating reviewCount developer { id name } createdAt updatedAt";
const REVIEW: &str = "id appId rating comment helpfulCount reviewerName createdAt updatedAt";
const CLIENT: &str = "clientId clientType redirectUris accessTokenLifetime refreshTokenLifetime rateLimit { perSecond perMinute perHour perDay burst concurrency } secrets { lastFour createdAt expiresAt }";

pub(super) fn routes() -> Vec<Route> {
    use Method as M;
    vec![
        r(
            M::GET,
            "/apps",
            "List marketplace apps (?search=&category=&pricing_model=&min_rating=&sort=popular|newest|rating)",
            leak(format!(
                "query($first: Int, $after: String, $search: String, $category: AppCategory, $pricingModel: AppPricingModel, $minRating: Float, $sort: MarketplaceSort) {{ marketplaceApps(first: $first, after: $after, search: $search, category: $category, pricingModel: $pricingModel, minRating: $minRating, sort: $sort) {{ totalCount pageInfo {{ hasNextPage endCursor }} edges {{ node {{ {APP} }} }} }} }}"
            )),
            "marketplaceApps",
            200,
            &[],
            Shape::List,
        ),
        r(
            M::POST,
            "/apps",
            "Create an app in DRAFT (a confidential client's secret is returned once)",
            leak(format!(
                "mutation($input: CreateAppInput!) {{ createApp(input: $input) {{ clientSecret app {{ {APP} }} }} }}"
            )),
            "createApp",
            201,
            &[],
            Shape::AsIs,
        ),
        r(
            M::GET,
            "/apps/{id}",
            "Get an app",
            leak(format!("query($id: ID!) {{ app(id: $id) {{ {APP} }} }}")),
            "app",
            200,
            &[],
            Shape::AsIs,
        ),
        r(
            M::PUT,
            "/apps/{id}",
            "Update an app's listing or client settings",
            leak(format!(
                "mutation($id: ID!, $input: UpdateAppInput!) {{ updateApp(id: $id, input: $input) {{ {APP} }} }}"
            )),
            "updateApp",
            200,
            &[],
            Shape::AsIs,
        ),
        r(
            M::DELETE,
            "/apps/{id}",
            "Delete an app (not while ACTIVE or under review)",
            "mutation($id: ID!) { deleteApp(id: $id) { deletedId } }",
            "deleteApp",
            204,
            &[],
            Shape::AsIs,
        ),
        r(
            M::GET,
            "/apps/{id}/reviews",
            "An app's reviews (newest first)",
            leak(format!(
                "query($id: ID!, $first: Int, $after: String) {{ app(id: $id) {{ reviews(first: $first, after: $after) {{ totalCount pageInfo {{ hasNextPage endCursor }} edges {{ node {{ {REVIEW} }} }} }} }} }}"
            )),
            "app.reviews",
            200,
            &[],
            Shape::List,
        ),
        r(
            M::POST,
            "/apps/{id}/reviews",
            "Write your review of an app (a second one updates it)",
            leak(format!(
                "mutation($appId: ID!, $rating: Int!, $comment: String) {{ submitAppReview(appId: $appId, rating: $rating, comment: $comment) {{ created review {{ {REVIEW} }} }} }}"
            )),
            "submitAppReview",
            201,
            &[("id", "appId")],
            Shape::AsIs,
        ),
        r(
            M::GET,
            "/apps/{id}/oauth/config",
            "An app's OAuth client settings (its owner organization)",
            leak(format!("query($id: ID!) {{ app(id: $id) {{ oauthConfig {{ {CLIENT} }} }} }}")),
            "app.oauthConfig",
            200,
            &[],
            Shape::AsIs,
        ),
        r(
            M::POST,
            "/apps/install",
            "Install an app: the consent of its authorization request (returns the redirect with a code)",
            "mutation($input: AuthorizeAppInput!) { authorizeApp(input: $input) { redirectTo installation { id organizationId scopes createdAt } } }",
            "authorizeApp",
            201,
            &[],
            Shape::AsIs,
        ),
        r(
            M::DELETE,
            "/apps/{install_id}/uninstall",
            "Uninstall an app (every token of the installation stops working)",
            "mutation($id: ID!) { uninstallApp(id: $id) { installation { id } } }",
            "uninstallApp",
            204,
            &[("install_id", "id")],
            Shape::AsIs,
        ),
        r(
            M::GET,
            "/admin/apps/pending",
            "The app review queue (platform administrators)",
            leak(format!(
                "query($first: Int, $after: String) {{ pendingApps(first: $first, after: $after) {{ totalCount pageInfo {{ hasNextPage endCursor }} edges {{ node {{ {APP} }} }} }} }}"
            )),
            "pendingApps",
            200,
            &[],
            Shape::List,
        ),
        r(
            M::POST,
            "/admin/apps/{id}/approve",
            "Approve a submitted app (platform administrators)",
            leak(format!("mutation($id: ID!) {{ approveApp(id: $id) {{ {APP} }} }}")),
            "approveApp",
            200,
            &[],
            Shape::AsIs,
        ),
        r(
            M::POST,
            "/admin/apps/{id}/reject",
            "Reject a submitted app with a reason (platform administrators)",
            leak(format!("mutation($id: ID!, $reason: String!) {{ rejectApp(id: $id, reason: $reason) {{ {APP} }} }}")),
            "rejectApp",
            200,
            &[],
            Shape::AsIs,
        ),
    ]
}

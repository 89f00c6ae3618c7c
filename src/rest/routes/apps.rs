//! REST routes of marketplace apps, their reviews and installations, and the review queue.

use axum::http::Method;
use serde_json::{Value, json};

use super::*;
use crate::error::{Error, Result};
use crate::rest::RestInput;

pub(super) const APP: &str = "id name slug description longDescription category iconUrl version status reviewReason submittedAt reviewedAt publishedAt deprecatedAt featured pricing { model amount currency } features requestedScopes docsUrl supportUrl installCount rating reviewCount developer { id name } createdAt updatedAt";
const REVIEW: &str = "id appId rating comment helpfulCount reviewerName createdAt updatedAt";
const CLIENT: &str = "clientId clientType redirectUris accessTokenLifetime refreshTokenLifetime rateLimit { perSecond perMinute perHour perDay burst concurrency } secrets { lastFour createdAt expiresAt }";

fn upper(i: &RestInput, name: &str) -> Option<String> {
    i.query(name).map(|v| v.to_ascii_uppercase())
}

fn list_apps(i: &RestInput) -> Result<Value> {
    let mut v = page_args(i)?;
    let min_rating = match i.query("min_rating") {
        Some(s) => Some(s.parse::<f64>().map_err(|_| Error::bad_input("min_rating", "must be a number"))?),
        None => None,
    };
    v["search"] = json!(i.query("search").or(i.query("q")));
    v["category"] = json!(upper(i, "category"));
    v["pricingModel"] = json!(upper(i, "pricing_model").or(upper(i, "price_model")));
    v["sort"] = json!(upper(i, "sort"));
    v["minRating"] = json!(min_rating);
    Ok(v)
}

fn reviews(i: &RestInput) -> Result<Value> {
    let mut v = page_args(i)?;
    v["id"] = json!(i.path("id"));
    Ok(v)
}

fn submit_review(i: &RestInput) -> Result<Value> {
    let body = i.body_object()?;
    Ok(json!({ "appId": i.path("id"), "rating": body.get("rating"), "comment": body.get("comment") }))
}

fn reject(i: &RestInput) -> Result<Value> {
    let body = i.body_object()?;
    Ok(json!({ "id": i.path("id"), "reason": body.get("reason").cloned().unwrap_or(json!("")) }))
}

fn uninstall(i: &RestInput) -> Result<Value> {
    Ok(json!({ "id": i.path("installId") }))
}

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
            list_apps,
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
            body_input,
            Shape::AsIs,
        ),
        r(
            M::GET,
            "/apps/{id}",
            "Get an app",
            leak(format!("query($id: ID!) {{ app(id: $id) {{ {APP} }} }}")),
            "app",
            200,
            id_only,
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
            update_key,
            Shape::AsIs,
        ),
        r(
            M::DELETE,
            "/apps/{id}",
            "Delete an app (not while ACTIVE or under review)",
            "mutation($id: ID!) { deleteApp(id: $id) { deletedId } }",
            "deleteApp",
            204,
            id_only,
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
            reviews,
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
            submit_review,
            Shape::AsIs,
        ),
        r(
            M::GET,
            "/apps/{id}/oauth/config",
            "An app's OAuth client settings (its owner organization)",
            leak(format!("query($id: ID!) {{ app(id: $id) {{ oauthConfig {{ {CLIENT} }} }} }}")),
            "app.oauthConfig",
            200,
            id_only,
            Shape::AsIs,
        ),
        r(
            M::POST,
            "/apps/install",
            "Install an app: the consent of its authorization request (returns the redirect with a code)",
            "mutation($input: AuthorizeAppInput!) { authorizeApp(input: $input) { redirectTo installation { id organizationId scopes createdAt } } }",
            "authorizeApp",
            201,
            body_input,
            Shape::AsIs,
        ),
        r(
            M::DELETE,
            "/apps/{installId}/uninstall",
            "Uninstall an app (every token of the installation stops working)",
            "mutation($id: ID!) { uninstallApp(id: $id) { installation { id } } }",
            "uninstallApp",
            204,
            uninstall,
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
            page_args,
            Shape::List,
        ),
        r(
            M::POST,
            "/admin/apps/{id}/approve",
            "Approve a submitted app (platform administrators)",
            leak(format!("mutation($id: ID!) {{ approveApp(id: $id) {{ {APP} }} }}")),
            "approveApp",
            200,
            id_only,
            Shape::AsIs,
        ),
        r(
            M::POST,
            "/admin/apps/{id}/reject",
            "Reject a submitted app with a reason (platform administrators)",
            leak(format!("mutation($id: ID!, $reason: String!) {{ rejectApp(id: $id, reason: $reason) {{ {APP} }} }}")),
            "rejectApp",
            200,
            reject,
            Shape::AsIs,
        ),
    ]
}

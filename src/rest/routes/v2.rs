//! Routes only v2 has (seed 001 §2.2): marketplace search and the usage forecast. The batch route
//! (`/integrations/batch`) and the real-time stream (`/analytics/realtime`) are not GraphQL rows;
//! they live in `rest::batch` and `rest::realtime`.

use axum::http::Method;

use super::ENDPOINT;
use super::apps::APP;
use super::*;

pub(super) fn routes() -> Vec<Route> {
    use Method as M;
    vec![
        r(
            M::GET,
            "/marketplace/search",
            "Search the marketplace: text, category, pricing model, minimum rating, sort (popular, newest, rating)",
            leak(format!(
                "query($first: Int, $after: String, $q: String, $category: AppCategory, $pricingModel: AppPricingModel, $minRating: Float, $sort: MarketplaceSort) {{ marketplaceApps(first: $first, after: $after, search: $q, category: $category, pricingModel: $pricingModel, minRating: $minRating, sort: $sort) {{ totalCount pageInfo {{ hasNextPage endCursor }} edges {{ node {{ {APP} }} }} }} }}"
            )),
            "marketplaceApps",
            200,
            &[],
            Shape::List,
        ),
        r(
            M::GET,
            "/billing/usage-forecast",
            "This month's calls and quota use so far, projected to the month's end at the pace so far",
            "{ usageForecast { periodStart periodEnd calls projectedCalls quotaUsed projectedQuotaUsed monthlyQuota projectedPercentOfQuota quotaExhaustedAt } }",
            "usageForecast",
            200,
            &[],
            Shape::AsIs,
        ),
        r(
            M::POST,
            "/webhooks/batch-subscribe",
            "Add event types to a webhook endpoint's subscriptions (`{\"endpoint_id\", \"event_types\": [...]}`)",
            leak(format!(
                "mutation($endpointId: ID!, $eventTypes: [String!]!) {{ subscribeWebhookEndpoint(id: $endpointId, eventTypes: $eventTypes) {{ {ENDPOINT} }} }}"
            )),
            "subscribeWebhookEndpoint",
            200,
            &[],
            Shape::AsIs,
        ),
        r(
            M::GET,
            "/analytics/realtime",
            "The organization's events as they happen, as Server-Sent Events (`?types=quota.*,key.created`; default all)",
            "subscription($types: [String!]) { events(types: $types) { id type organizationId occurredAt data } }",
            "events",
            200,
            &[],
            Shape::Events,
        ),
    ]
}

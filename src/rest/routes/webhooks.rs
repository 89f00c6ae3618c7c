//! REST routes of webhooks: endpoints, secrets, test events, recovery, deliveries and their attempts, the catalog.

use axum::http::Method;

use super::*;

pub(super) fn routes() -> Vec<Route> {
    use Method as M;
    vec![
        r(
            M::GET,
            "/webhooks",
            "List webhook endpoints (newest first)",
            leak(format!(
                "query($first: Int, $after: String) {{ webhookEndpoints(first: $first, after: $after) {{ totalCount pageInfo {{ hasNextPage endCursor }} edges {{ node {{ {ENDPOINT} }} }} }} }}"
            )),
            "webhookEndpoints",
            200,
            &[],
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
            &[],
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
            &[],
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
            &[],
            Shape::AsIs,
        ),
        r(
            M::DELETE,
            "/webhooks/{id}",
            "Delete a webhook endpoint and its delivery logs",
            "mutation($id: ID!) { deleteWebhookEndpoint(id: $id) { deletedId } }",
            "deleteWebhookEndpoint",
            204,
            &[],
            Shape::AsIs,
        ),
        r(
            M::POST,
            "/webhooks/{id}/rotate-secret",
            "Issue a new signing secret (the old one signs beside it for the grace period)",
            leak(format!(
                "mutation($id: ID!, $gracePeriodSeconds: Int) {{ rotateWebhookSecret(id: $id, gracePeriodSeconds: $gracePeriodSeconds) {{ secret previousSecretExpiresAt endpoint {{ {ENDPOINT} }} }} }}"
            )),
            "rotateWebhookSecret",
            200,
            &[],
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
            &[],
            Shape::AsIs,
        ),
        r(
            M::POST,
            "/webhooks/{id}/recover",
            "Send again every failed delivery since a time (at most 14 days back)",
            "mutation($id: ID!, $since: DateTime!, $until: DateTime) { recoverEndpoint(id: $id, since: $since, until: $until) }",
            "recoverEndpoint",
            200,
            &[],
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
            &[("id", "endpointId")],
            Shape::List,
        ),
        r(
            M::POST,
            "/webhooks/{id}/deliveries/{delivery_id}/retry",
            "Attempt a delivery again now",
            leak(format!(
                "mutation($id: ID!, $endpointId: ID!) {{ retryDelivery(id: $id, endpointId: $endpointId) {{ {DELIVERY} }} }}"
            )),
            "retryDelivery",
            200,
            &[("id", "endpointId"), ("delivery_id", "id")],
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
            &[("id", "endpointId")],
            Shape::List,
        ),
        r(
            M::GET,
            "/webhook-events",
            "The event catalog: every type endpoints can filter on, with schema and sample",
            "query { eventTypes { name category description schema sample deprecated archivedAt builtIn } }",
            "eventTypes",
            200,
            &[],
            Shape::AsIs,
        ),
        r(
            M::GET,
            "/webhook-events/{type}",
            "One event type of the catalog: its schema and sample",
            "query($type: String!) { eventType(name: $type) { name category description schema sample deprecated archivedAt builtIn } }",
            "eventType",
            200,
            &[],
            Shape::AsIs,
        ),
    ]
}

//! REST routes of events: publish, list, get.

use axum::http::Method;

use super::*;

pub(super) fn routes() -> Vec<Route> {
    use Method as M;
    vec![
        r(
            M::POST,
            "/events",
            "Publish an event of a type you defined (idempotent per idempotency_key)",
            leak(format!(
                "mutation($input: PublishEventInput!) {{ publishEvent(input: $input) {{ replayed event {{ {EVENT} }} }} }}"
            )),
            "publishEvent",
            201,
            &[],
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
            &[],
            Shape::List,
        ),
        r(
            M::GET,
            "/events/{id}",
            "One event of the organization",
            leak(format!("query($id: ID!) {{ event(id: $id) {{ {EVENT} }} }}")),
            "event",
            200,
            &[],
            Shape::AsIs,
        ),
    ]
}

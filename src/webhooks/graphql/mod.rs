//! GraphQL for webhooks: the queries and mutations here; the endpoint type in `endpoint`, the
//! delivery and attempt types in `delivery`, the `webhookDelivered` stream in `stream`.

mod delivery;
mod endpoint;
mod stream;

pub use delivery::{WebhookAttempt, WebhookDelivery, WebhookDeliveryStatus, WebhookErrorKind};
pub use endpoint::{WebhookEndpoint, WebhookEndpointStats};
pub use stream::{WebhookAttemptOutcome, WebhooksSubscription};

use async_graphql::{Context, ID, InputObject, Json, MaybeUndefined, Object, SimpleObject};

use crate::graphql::connection::{Conn, connection};
use crate::graphql::context::{ContextExt, Scope};
use crate::graphql::page_complexity;
use crate::graphql::scalars::DateTime;
use crate::pagination::PageRequest;
use crate::webhooks::service::{self, DeliveryFilter, EndpointInput};

/// A new endpoint.
#[derive(InputObject)]
pub struct CreateWebhookEndpointInput {
    /// `https://…` (http only when the operator allows it); internal addresses are refused.
    pub url: String,
    /// Up to 1000 characters.
    pub description: Option<String>,
    /// Event types to send: exact names, `category.*`, `*` (default `["*"]`). At most 50.
    pub filter_types: Option<Vec<String>>,
    /// Extra request headers (≤ 20; not `webhook-*`, `content-type`, `user-agent`, …).
    pub headers: Option<Json<serde_json::Value>>,
    /// Default true.
    pub enabled: Option<bool>,
    /// Requests per second to this endpoint, 1–10000.
    pub rate_limit_per_second: Option<i64>,
    /// Seconds between attempts after a failure (≤ 20 entries, each 1–604800); default 5 s, 5 min,
    /// 30 min, 2 h, 5 h, 10 h, 10 h.
    pub retry_schedule: Option<Vec<i64>>,
    /// Seconds a request may take, 1–30 (default 30).
    pub timeout_seconds: Option<i64>,
    /// A JSON object (≤ 8 KiB).
    pub metadata: Option<Json<serde_json::Value>>,
}

/// Changes to an endpoint; omitted fields stay as they are, `null` clears a nullable field.
#[derive(InputObject)]
pub struct UpdateWebhookEndpointInput {
    /// A new URL.
    pub url: Option<String>,
    /// `null` clears it.
    pub description: MaybeUndefined<String>,
    /// Replaces the filter.
    pub filter_types: Option<Vec<String>>,
    /// Replaces the extra headers.
    pub headers: Option<Json<serde_json::Value>>,
    /// Re-enabling an endpoint clears its failure record.
    pub enabled: Option<bool>,
    /// `null` removes the endpoint's own limit.
    pub rate_limit_per_second: MaybeUndefined<i64>,
    /// `null` returns to the default schedule.
    pub retry_schedule: MaybeUndefined<Vec<i64>>,
    /// Seconds a request may take, 1–30.
    pub timeout_seconds: Option<i64>,
    /// Replaces the metadata object.
    pub metadata: Option<Json<serde_json::Value>>,
}

/// A created endpoint and its signing secret.
#[derive(SimpleObject)]
pub struct CreateWebhookEndpointPayload {
    /// The endpoint.
    pub endpoint: WebhookEndpoint,
    /// `whsec_…`: verify signatures with it. Shown only now.
    pub secret: String,
}

/// A new signing secret.
#[derive(SimpleObject)]
pub struct RotateWebhookSecretPayload {
    /// The endpoint.
    pub endpoint: WebhookEndpoint,
    /// The new `whsec_…` secret. Shown only now.
    pub secret: String,
    /// Until when the previous secret keeps signing beside the new one.
    pub previous_secret_expires_at: DateTime,
}

/// A deleted endpoint.
#[derive(SimpleObject)]
pub struct DeleteWebhookEndpointPayload {
    /// Id of the endpoint that was deleted.
    pub deleted_id: ID,
}

#[derive(Default)]
pub struct WebhooksQuery;

#[Object]
impl WebhooksQuery {
    /// The organization's webhook endpoints, newest first.
    #[graphql(guard = "Scope(\"webhooks:read\")", complexity = "page_complexity(first, last, child_complexity)")]
    async fn webhook_endpoints(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size from the start, 1–100 (default 20).")] first: Option<i32>,
        #[graphql(desc = "Cursor to continue after.")] after: Option<String>,
        #[graphql(desc = "Page size from the end, 1–100.")] last: Option<i32>,
        #[graphql(desc = "Cursor to continue before.")] before: Option<String>,
    ) -> async_graphql::Result<Conn<WebhookEndpoint>> {
        let page = PageRequest::from_args(first, after, last, before)?;
        let rows = service::list_endpoints(ctx.app(), ctx.principal()?, &page).await?;
        Ok(connection(rows, |e| e.id.to_string(), WebhookEndpoint))
    }

    /// One webhook endpoint of the organization.
    #[graphql(guard = "Scope(\"webhooks:read\")")]
    async fn webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Endpoint id (`whk_…`).")] id: ID,
    ) -> async_graphql::Result<WebhookEndpoint> {
        Ok(WebhookEndpoint(service::get_endpoint(ctx.app(), ctx.principal()?, &id).await?))
    }

    /// The organization's webhook deliveries, newest first, filtered.
    #[graphql(guard = "Scope(\"webhooks:read\")", complexity = "page_complexity(first, last, child_complexity)")]
    #[allow(clippy::too_many_arguments)]
    async fn webhook_deliveries(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size from the start, 1–100 (default 20).")] first: Option<i32>,
        #[graphql(desc = "Cursor to continue after.")] after: Option<String>,
        #[graphql(desc = "Page size from the end, 1–100.")] last: Option<i32>,
        #[graphql(desc = "Cursor to continue before.")] before: Option<String>,
        #[graphql(desc = "Only deliveries to this endpoint.")] endpoint_id: Option<ID>,
        #[graphql(desc = "Only deliveries of this event.")] event_id: Option<ID>,
        #[graphql(desc = "Only deliveries in this state.")] status: Option<WebhookDeliveryStatus>,
        #[graphql(desc = "Only deliveries of this event type.")] event_type: Option<String>,
        #[graphql(desc = "Created at or after.")] since: Option<DateTime>,
        #[graphql(desc = "Created before.")] until: Option<DateTime>,
    ) -> async_graphql::Result<Conn<WebhookDelivery>> {
        let page = PageRequest::from_args(first, after, last, before)?;
        let filter = DeliveryFilter {
            endpoint_id: endpoint_id.map(|i| i.0),
            event_id: event_id.map(|i| i.0),
            status: status.map(|s| s.as_str()),
            event_type,
            since: since.map(|d| d.0),
            until: until.map(|d| d.0),
        };
        let rows = service::list_deliveries(ctx.app(), ctx.principal()?, &filter, &page).await?;
        Ok(connection(rows, |d| d.id.to_string(), WebhookDelivery))
    }

    /// One delivery, with its attempts.
    #[graphql(guard = "Scope(\"webhooks:read\")")]
    async fn webhook_delivery(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Delivery id (`msg_…`).")] id: ID,
    ) -> async_graphql::Result<WebhookDelivery> {
        Ok(WebhookDelivery(service::get_delivery(ctx.app(), ctx.principal()?, &id).await?))
    }
}

#[derive(Default)]
pub struct WebhooksMutation;

#[Object]
impl WebhooksMutation {
    /// Creates an endpoint. Its signing secret is in the response and never shown again.
    #[graphql(guard = "Scope(\"webhooks:write\")")]
    async fn create_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The new endpoint.")] input: CreateWebhookEndpointInput,
    ) -> async_graphql::Result<CreateWebhookEndpointPayload> {
        let input = EndpointInput {
            url: Some(input.url),
            description: input.description.into(),
            filters: input.filter_types,
            add_filters: None,
            headers: input.headers.map(|j| j.0),
            enabled: input.enabled,
            rate_limit_per_second: input.rate_limit_per_second.into(),
            retry_schedule: input.retry_schedule.into(),
            timeout_secs: input.timeout_seconds,
            metadata: input.metadata.map(|j| j.0),
        };
        let (endpoint, secret) = service::create_endpoint(ctx.app(), ctx.principal()?, input).await?;
        Ok(CreateWebhookEndpointPayload { endpoint: WebhookEndpoint(endpoint), secret })
    }

    /// Changes an endpoint.
    #[graphql(guard = "Scope(\"webhooks:write\")")]
    async fn update_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Endpoint id.")] id: ID,
        #[graphql(desc = "The changes; omitted fields stay as they are.")] input: UpdateWebhookEndpointInput,
    ) -> async_graphql::Result<WebhookEndpoint> {
        let input = EndpointInput {
            url: input.url,
            description: crate::graphql::patch(input.description, |v| v),
            filters: input.filter_types,
            add_filters: None,
            headers: input.headers.map(|j| j.0),
            enabled: input.enabled,
            rate_limit_per_second: crate::graphql::patch(input.rate_limit_per_second, |v| v),
            retry_schedule: crate::graphql::patch(input.retry_schedule, |v| v),
            timeout_secs: input.timeout_seconds,
            metadata: input.metadata.map(|j| j.0),
        };
        Ok(WebhookEndpoint(service::update_endpoint(ctx.app(), ctx.principal()?, &id, input).await?))
    }

    /// Adds event types to what an endpoint receives (exact names or `category.*`, 1 to 50); the
    /// types it already has stay, and an endpoint on `*` already receives everything.
    #[graphql(guard = "Scope(\"webhooks:write\")")]
    async fn subscribe_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Endpoint id.")] id: ID,
        #[graphql(desc = "The event types to add.")] event_types: Vec<String>,
    ) -> async_graphql::Result<WebhookEndpoint> {
        let input = EndpointInput {
            url: None,
            description: crate::platform::patch::Patch::Keep,
            filters: None,
            add_filters: Some(event_types),
            headers: None,
            enabled: None,
            rate_limit_per_second: crate::platform::patch::Patch::Keep,
            retry_schedule: crate::platform::patch::Patch::Keep,
            timeout_secs: None,
            metadata: None,
        };
        Ok(WebhookEndpoint(service::update_endpoint(ctx.app(), ctx.principal()?, &id, input).await?))
    }

    /// Deletes an endpoint with its deliveries and their logs.
    #[graphql(guard = "Scope(\"webhooks:write\")")]
    async fn delete_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Endpoint id.")] id: ID,
    ) -> async_graphql::Result<DeleteWebhookEndpointPayload> {
        let id = service::delete_endpoint(ctx.app(), ctx.principal()?, &id).await?;
        Ok(DeleteWebhookEndpointPayload { deleted_id: ID(id) })
    }

    /// Issues a new signing secret. The previous one keeps signing beside it (both signatures in
    /// `webhook-signature`) for `gracePeriodSeconds` (default 24 h, at most 7 days, 0 = stop now).
    #[graphql(guard = "Scope(\"webhooks:write\")")]
    async fn rotate_webhook_secret(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Endpoint id.")] id: ID,
        #[graphql(desc = "Seconds the previous secret keeps signing.")] grace_period_seconds: Option<i64>,
    ) -> async_graphql::Result<RotateWebhookSecretPayload> {
        let (endpoint, secret, until) =
            service::rotate_secret(ctx.app(), ctx.principal()?, &id, grace_period_seconds).await?;
        Ok(RotateWebhookSecretPayload {
            endpoint: WebhookEndpoint(endpoint),
            secret,
            previous_secret_expires_at: DateTime(until),
        })
    }

    /// Attempts a delivery again now. A pending delivery keeps its schedule; a failed one gets one
    /// more attempt.
    #[graphql(guard = "Scope(\"webhooks:write\")")]
    async fn retry_delivery(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Delivery id (`msg_…`).")] id: ID,
        #[graphql(desc = "The delivery's endpoint, when you want it checked.")] endpoint_id: Option<ID>,
    ) -> async_graphql::Result<WebhookDelivery> {
        Ok(WebhookDelivery(
            service::retry_delivery(ctx.app(), ctx.principal()?, &id, endpoint_id.as_ref().map(|e| e.as_str())).await?,
        ))
    }

    /// Sends again every failed delivery of the endpoint created between `since` and `until`
    /// (default now); `since` reaches at most 14 days back. Returns how many were queued.
    #[graphql(guard = "Scope(\"webhooks:write\")")]
    async fn recover_endpoint(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Endpoint id.")] id: ID,
        #[graphql(desc = "Deliveries created at or after this instant.")] since: DateTime,
        #[graphql(desc = "Deliveries created before this instant (default now).")] until: Option<DateTime>,
    ) -> async_graphql::Result<i64> {
        Ok(service::recover_endpoint(ctx.app(), ctx.principal()?, &id, since.0, until.map(|d| d.0)).await?)
    }

    /// Sends one event with the type's sample payload to this endpoint only.
    #[graphql(guard = "Scope(\"webhooks:write\")")]
    async fn send_test_event(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Endpoint id.")] endpoint_id: ID,
        #[graphql(name = "type", desc = "An event type of the catalog (default `webhook.test`).")] event_type: Option<
            String,
        >,
    ) -> async_graphql::Result<WebhookDelivery> {
        Ok(WebhookDelivery(
            service::send_test_event(ctx.app(), ctx.principal()?, &endpoint_id, event_type.as_deref()).await?,
        ))
    }
}

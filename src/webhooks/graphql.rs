//! GraphQL types and resolvers for webhooks: endpoints, secrets, deliveries and their attempts,
//! the event catalog, and the `webhookDelivered` stream.

use std::sync::Arc;

use async_graphql::{Context, Enum, ID, InputObject, Json, MaybeUndefined, Object, SimpleObject, Subscription};
use futures_util::{Stream, StreamExt};
use tokio_stream::wrappers::BroadcastStream;

use super::model::{AttemptRow, DeliveryRow, EndpointRow, FAILED, PENDING, SUCCEEDED};
use super::service::{self, DeliveryFilter, EndpointInput};
use crate::error::Error;
use crate::graphql::connection::{Conn, connection};
use crate::graphql::context::{ContextExt, Scope};
use crate::graphql::page_complexity;
use crate::graphql::scalars::DateTime;
use crate::pagination::PageRequest;
use crate::platform::bus::{AttemptEnvelope, BusMessage};

/// A URL that receives the organization's events, signed per the Standard Webhooks specification.
pub struct WebhookEndpoint(pub EndpointRow);

/// A URL that receives the organization's events, signed per the Standard Webhooks specification.
#[Object]
impl WebhookEndpoint {
    /// Global id (`whk_…`).
    pub async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    /// Where events are POSTed.
    async fn url(&self) -> &str {
        &self.0.url
    }
    /// Free-form description.
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    /// Event types sent here: exact names, `category.*`, or `*` for all.
    async fn filter_types(&self) -> Vec<String> {
        self.0.filters()
    }
    /// Extra headers sent with every request.
    async fn headers(&self) -> Json<serde_json::Value> {
        Json(serde_json::Value::Object(self.0.header_map()))
    }
    /// Whether deliveries are made. Gantry disables an endpoint that answers 410 or fails for too long.
    async fn enabled(&self) -> bool {
        self.0.enabled
    }
    /// Why the endpoint is disabled.
    async fn disabled_reason(&self) -> Option<&str> {
        self.0.disabled_reason.as_deref()
    }
    /// At most this many requests per second to this endpoint (null = no limit of its own).
    async fn rate_limit_per_second(&self) -> Option<i64> {
        self.0.rate_limit_per_second
    }
    /// Seconds between a failed attempt and the next; after the last, the delivery fails.
    async fn retry_schedule(&self) -> Vec<i64> {
        self.0.schedule()
    }
    /// Seconds a request may take (1–30).
    async fn timeout_seconds(&self) -> i64 {
        self.0.timeout_ms / 1000
    }
    /// Your own key-value data.
    async fn metadata(&self) -> Json<serde_json::Value> {
        Json(self.0.metadata_value())
    }
    /// Since when every attempt has failed (null when the last one succeeded).
    async fn failing_since(&self) -> Option<DateTime> {
        self.0.failing_since.map(DateTime)
    }
    /// Failed attempts in a row (0 after a success). `GANTRY_WEBHOOK_DISABLE_AFTER_FAILURES`, when
    /// the operator sets it, disables the endpoint at that many.
    async fn consecutive_failures(&self) -> i64 {
        self.0.consecutive_failures
    }
    /// When the endpoint was created.
    async fn created_at(&self) -> DateTime {
        DateTime(self.0.created_at)
    }
    /// When the endpoint was last changed.
    async fn updated_at(&self) -> DateTime {
        DateTime(self.0.updated_at)
    }
    /// Delivery counts by state and the success rate of the last 24 hours.
    async fn stats(&self, ctx: &Context<'_>) -> async_graphql::Result<WebhookEndpointStats> {
        let s = service::endpoint_stats(ctx.app(), &self.0.org_id, &self.0.id).await?;
        Ok(WebhookEndpointStats {
            succeeded: s.succeeded,
            pending: s.pending,
            failed: s.failed,
            attempts_last_24_hours: s.attempts_24h,
            success_rate_last_24_hours: (s.attempts_24h > 0).then(|| s.succeeded_24h as f64 / s.attempts_24h as f64),
        })
    }
    /// Deliveries to this endpoint, newest first.
    #[graphql(complexity = "page_complexity(first, last, child_complexity)")]
    #[allow(clippy::too_many_arguments)]
    async fn deliveries(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size from the start, 1–100 (default 20).")] first: Option<i32>,
        #[graphql(desc = "Cursor to continue after.")] after: Option<String>,
        #[graphql(desc = "Page size from the end, 1–100.")] last: Option<i32>,
        #[graphql(desc = "Cursor to continue before.")] before: Option<String>,
        #[graphql(desc = "Only deliveries in this state.")] status: Option<WebhookDeliveryStatus>,
    ) -> async_graphql::Result<Conn<WebhookDelivery>> {
        let page = PageRequest::from_args(first, after, last, before)?;
        let filter = DeliveryFilter {
            endpoint_id: Some(self.0.id.clone()),
            status: status.map(|s| s.as_str()),
            ..Default::default()
        };
        let rows = service::list_deliveries(ctx.app(), ctx.principal()?, &filter, &page).await?;
        Ok(connection(rows, |d| d.id.clone(), WebhookDelivery))
    }
}

/// How an endpoint is doing.
#[derive(SimpleObject)]
pub struct WebhookEndpointStats {
    /// Deliveries that succeeded.
    pub succeeded: i64,
    /// Deliveries waiting for their first attempt or a retry.
    pub pending: i64,
    /// Deliveries that failed for good.
    pub failed: i64,
    /// Attempts made in the last 24 hours.
    pub attempts_last_24_hours: i64,
    /// Share of those attempts that succeeded, 0–1 (null without attempts).
    pub success_rate_last_24_hours: Option<f64>,
}

/// Where a delivery stands.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum WebhookDeliveryStatus {
    /// Waiting for its first attempt or a retry.
    Pending,
    /// An attempt got a 2xx answer.
    Succeeded,
    /// Every attempt failed, or the endpoint answered 410 Gone or was disabled.
    Failed,
}

impl WebhookDeliveryStatus {
    fn as_str(self) -> &'static str {
        match self {
            Self::Pending => PENDING,
            Self::Succeeded => SUCCEEDED,
            Self::Failed => FAILED,
        }
    }
    fn parse(s: &str) -> Self {
        match s {
            SUCCEEDED => Self::Succeeded,
            FAILED => Self::Failed,
            _ => Self::Pending,
        }
    }
}

/// One event sent to one endpoint, over all its attempts. Its id is the `webhook-id` header,
/// the same on every attempt, so receivers can ignore repeats.
pub struct WebhookDelivery(pub DeliveryRow);

/// One event sent to one endpoint, over all its attempts. Its id is the `webhook-id` header,
/// the same on every attempt, so receivers can ignore repeats.
#[Object]
impl WebhookDelivery {
    /// Global id (`msg_…`), sent as `webhook-id`.
    pub async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    /// The endpoint (`whk_…`).
    async fn endpoint_id(&self) -> ID {
        ID(self.0.endpoint_id.clone())
    }
    /// The event (`evt_…`).
    async fn event_id(&self) -> ID {
        ID(self.0.event_id.clone())
    }
    /// The event's type.
    async fn event_type(&self) -> &str {
        &self.0.event_type
    }
    /// Pending, succeeded or failed.
    async fn status(&self) -> WebhookDeliveryStatus {
        WebhookDeliveryStatus::parse(&self.0.status)
    }
    /// Attempts made so far.
    async fn attempt_count(&self) -> i64 {
        self.0.attempts
    }
    /// When the next attempt is due (null once the delivery is final). While an attempt is in
    /// flight: when the delivery is due again should that attempt be lost (its lease ends).
    async fn next_attempt_at(&self) -> Option<DateTime> {
        let due = self.0.next_attempt_at.max(self.0.leased_until);
        (self.0.status == PENDING).then_some(due).flatten().map(DateTime)
    }
    /// The HTTP status of the last attempt, if it got an answer.
    async fn last_status_code(&self) -> Option<i64> {
        self.0.last_status_code
    }
    /// What went wrong in the last attempt, in one sentence led by its kind (`timeout: …`); the
    /// attempt log has the full error.
    async fn last_error(&self) -> Option<&str> {
        self.0.last_error.as_deref()
    }
    /// When the delivery was created.
    async fn created_at(&self) -> DateTime {
        DateTime(self.0.created_at)
    }
    /// Every attempt, oldest first: request, response (bodies truncated to 4 KiB), latency, error.
    async fn attempts(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<WebhookAttempt>> {
        let rows = service::attempts_of(ctx.app(), &self.0.org_id, &self.0.id).await?;
        Ok(rows.into_iter().map(WebhookAttempt).collect())
    }
}

/// Why an attempt failed.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum WebhookErrorKind {
    /// No answer within the endpoint's timeout.
    Timeout,
    /// The connection could not be made or broke.
    Connection,
    /// The TLS handshake failed (certificate, protocol).
    Tls,
    /// The endpoint answered with a status other than 2xx (redirects are not followed).
    HttpStatus,
    /// The address is internal and not allowed (SSRF protection): the delivery fails at once,
    /// without retries.
    Refused,
}

/// One HTTP request of a delivery and what came back.
pub struct WebhookAttempt(pub AttemptRow);

/// One HTTP request of a delivery and what came back.
#[Object]
impl WebhookAttempt {
    /// Global id (`att_…`).
    pub async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    /// 1 for the first attempt of the delivery, then 2, 3, …
    async fn attempt(&self) -> i64 {
        self.0.attempt
    }
    /// The URL requested.
    async fn url(&self) -> &str {
        &self.0.url
    }
    /// The request headers sent (signatures included).
    async fn request_headers(&self) -> Json<serde_json::Value> {
        Json(serde_json::from_str(&self.0.request_headers).unwrap_or_default())
    }
    /// The request body sent (up to 4 KiB).
    async fn request_body(&self) -> &str {
        &self.0.request_body
    }
    /// The HTTP status answered (null when there was no answer).
    async fn response_status(&self) -> Option<i64> {
        self.0.response_status
    }
    /// The response headers.
    async fn response_headers(&self) -> Option<Json<serde_json::Value>> {
        self.0.response_headers.as_deref().map(|h| Json(serde_json::from_str(h).unwrap_or_default()))
    }
    /// The response body (up to 4 KiB).
    async fn response_body(&self) -> Option<&str> {
        self.0.response_body.as_deref()
    }
    /// Milliseconds from sending to the answer (or the failure).
    async fn latency_ms(&self) -> i64 {
        self.0.latency_ms
    }
    /// Why the attempt failed (null on success).
    async fn error_kind(&self) -> Option<WebhookErrorKind> {
        self.0.error_kind.as_deref().map(error_kind)
    }
    /// The failure, in words.
    async fn error_message(&self) -> Option<&str> {
        self.0.error_message.as_deref()
    }
    /// When the attempt was made.
    async fn created_at(&self) -> DateTime {
        DateTime(self.0.created_at)
    }
}

fn error_kind(s: &str) -> WebhookErrorKind {
    match s {
        "timeout" => WebhookErrorKind::Timeout,
        "tls" => WebhookErrorKind::Tls,
        "http_status" => WebhookErrorKind::HttpStatus,
        "refused" => WebhookErrorKind::Refused,
        _ => WebhookErrorKind::Connection,
    }
}

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

fn maybe<T>(v: MaybeUndefined<T>) -> Option<Option<T>> {
    match v {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => Some(None),
        MaybeUndefined::Value(v) => Some(Some(v)),
    }
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
        Ok(connection(rows, |e| e.id.clone(), WebhookEndpoint))
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
        Ok(connection(rows, |d| d.id.clone(), WebhookDelivery))
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
            description: Some(input.description),
            filters: input.filter_types,
            headers: input.headers.map(|j| j.0),
            enabled: input.enabled,
            rate_limit_per_second: Some(input.rate_limit_per_second),
            retry_schedule: Some(input.retry_schedule),
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
            description: maybe(input.description),
            filters: input.filter_types,
            headers: input.headers.map(|j| j.0),
            enabled: input.enabled,
            rate_limit_per_second: maybe(input.rate_limit_per_second),
            retry_schedule: maybe(input.retry_schedule),
            timeout_secs: input.timeout_seconds,
            metadata: input.metadata.map(|j| j.0),
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

/// The outcome of one delivery attempt, as it happens.
pub struct WebhookAttemptOutcome(AttemptEnvelope);

/// The outcome of one delivery attempt, as it happens.
#[Object]
impl WebhookAttemptOutcome {
    /// The attempt (`att_…`).
    async fn attempt_id(&self) -> ID {
        ID(self.0.attempt_id.clone())
    }
    /// The delivery (`msg_…`).
    async fn delivery_id(&self) -> ID {
        ID(self.0.delivery_id.clone())
    }
    /// The endpoint (`whk_…`).
    async fn endpoint_id(&self) -> ID {
        ID(self.0.endpoint_id.clone())
    }
    /// The event (`evt_…`).
    async fn event_id(&self) -> ID {
        ID(self.0.event_id.clone())
    }
    /// The event's type.
    async fn event_type(&self) -> &str {
        &self.0.event_type
    }
    /// 1 for the first attempt, then 2, 3, …
    async fn attempt(&self) -> i64 {
        self.0.attempt
    }
    /// The delivery's state after this attempt (PENDING = a retry is scheduled).
    async fn status(&self) -> WebhookDeliveryStatus {
        WebhookDeliveryStatus::parse(&self.0.status)
    }
    /// The HTTP status answered.
    async fn response_status(&self) -> Option<i64> {
        self.0.response_status
    }
    /// Why it failed (null on success).
    async fn error_kind(&self) -> Option<WebhookErrorKind> {
        self.0.error_kind.as_deref().map(error_kind)
    }
    /// Milliseconds the attempt took.
    async fn latency_ms(&self) -> i64 {
        self.0.latency_ms
    }
    /// When the next attempt is due.
    async fn next_attempt_at(&self) -> Option<DateTime> {
        self.0.next_attempt_at_ms.map(DateTime)
    }
    /// When the attempt finished.
    async fn at(&self) -> DateTime {
        DateTime(self.0.at_ms)
    }
}

#[derive(Default)]
pub struct WebhooksSubscription;

#[Subscription]
impl WebhooksSubscription {
    /// Each delivery attempt to this endpoint as it finishes, on whichever node made it.
    #[graphql(guard = "Scope(\"webhooks:read\")")]
    async fn webhook_delivered(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Endpoint id (`whk_…`).")] webhook_id: ID,
    ) -> async_graphql::Result<impl Stream<Item = WebhookAttemptOutcome> + use<>> {
        let principal = ctx.principal()?;
        // The endpoint must exist in the caller's organization (another's id is NOT_FOUND).
        let endpoint = service::get_endpoint(ctx.app(), principal, &webhook_id).await.map_err(|e| match e {
            Error::NotFound(_) => Error::NotFound("webhook endpoint"),
            other => other,
        })?;
        let org = Arc::new(principal.org_id.to_string());
        let id = Arc::new(endpoint.id);
        let rx = ctx.app().bus.subscribe();
        Ok(BroadcastStream::new(rx).filter_map(move |msg| {
            let (org, id) = (org.clone(), id.clone());
            async move {
                let msg = msg.ok()?;
                let BusMessage::DeliveryAttempt(a) = &*msg else { return None };
                (a.org_id == *org && a.endpoint_id == *id).then(|| WebhookAttemptOutcome(a.clone()))
            }
        }))
    }
}

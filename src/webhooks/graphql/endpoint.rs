//! The `WebhookEndpoint` type and its stats.

use async_graphql::{Context, ID, Json, Object, SimpleObject};

use super::{WebhookDelivery, WebhookDeliveryStatus};
use crate::graphql::connection::{Conn, connection};
use crate::graphql::context::ContextExt;
use crate::graphql::page_complexity;
use crate::graphql::scalars::DateTime;
use crate::pagination::PageRequest;
use crate::webhooks::model::EndpointRow;
use crate::webhooks::service::{self, DeliveryFilter};

/// A URL that receives the organization's events, signed per the Standard Webhooks specification.
pub struct WebhookEndpoint(pub EndpointRow);

/// A URL that receives the organization's events, signed per the Standard Webhooks specification.
#[Object]
impl WebhookEndpoint {
    /// Global id (`whk_…`).
    pub async fn id(&self) -> ID {
        ID(self.0.id.to_string())
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
        let s = service::endpoint_stats(ctx.app(), self.0.org_id.as_str(), self.0.id.as_str()).await?;
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
            endpoint_id: Some(self.0.id.to_string()),
            status: status.map(|s| s.as_str()),
            ..Default::default()
        };
        let rows = service::list_deliveries(ctx.app(), ctx.principal()?, &filter, &page).await?;
        Ok(connection(rows, |d| d.id.to_string(), WebhookDelivery))
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

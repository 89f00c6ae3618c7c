//! Webhook rows as stored.

use diesel::prelude::*;

use crate::platform::db::schema::{webhook_attempts, webhook_deliveries, webhook_endpoints, webhook_secrets};
use crate::platform::ids::{AttemptId, DeliveryId, EventId, OrgId, WebhookId, WebhookSecretId};

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = webhook_endpoints, treat_none_as_null = true)]
pub struct EndpointRow {
    pub id: WebhookId,
    pub org_id: OrgId,
    pub url: String,
    pub description: Option<String>,
    pub event_filter: String,
    pub headers: String,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub rate_limit_per_second: Option<i64>,
    pub retry_schedule: Option<String>,
    pub timeout_ms: i64,
    pub metadata: String,
    pub failing_since: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    /// Failed attempts in a row (0 after a success).
    pub consecutive_failures: i64,
}

impl EndpointRow {
    pub fn filters(&self) -> Vec<String> {
        serde_json::from_str(&self.event_filter).unwrap_or_default()
    }
    pub fn header_map(&self) -> serde_json::Map<String, serde_json::Value> {
        serde_json::from_str(&self.headers).unwrap_or_default()
    }
    pub fn metadata_value(&self) -> serde_json::Value {
        serde_json::from_str(&self.metadata).unwrap_or_else(|_| serde_json::json!({}))
    }
    /// Seconds between attempts: the endpoint's own schedule, or the default.
    pub fn schedule(&self) -> Vec<i64> {
        self.retry_schedule
            .as_deref()
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or_else(|| super::delivery::DEFAULT_SCHEDULE_SECS.to_vec())
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = webhook_secrets)]
pub struct SecretRow {
    pub id: WebhookSecretId,
    pub endpoint_id: WebhookId,
    pub seed: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = webhook_deliveries, treat_none_as_default_value = false)]
pub struct DeliveryRow {
    pub id: DeliveryId,
    pub org_id: OrgId,
    pub endpoint_id: WebhookId,
    pub event_id: EventId,
    pub event_type: String,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: Option<i64>,
    pub leased_until: Option<i64>,
    pub last_status_code: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = webhook_attempts)]
pub struct AttemptRow {
    pub id: AttemptId,
    pub delivery_id: DeliveryId,
    pub endpoint_id: WebhookId,
    pub org_id: OrgId,
    pub attempt: i64,
    pub url: String,
    pub request_headers: String,
    pub request_body: String,
    pub response_status: Option<i64>,
    pub response_headers: Option<String>,
    pub response_body: Option<String>,
    pub latency_ms: i64,
    pub error_kind: Option<String>,
    pub error_message: Option<String>,
    pub created_at: i64,
}

pub const PENDING: &str = "pending";
pub const SUCCEEDED: &str = "succeeded";
pub const FAILED: &str = "failed";

/// The delivery, as long as it is still the claim that made an attempt (pending, with the attempt
/// count it was claimed at): a late worker's outcome then updates nothing.
#[diesel::dsl::auto_type]
pub fn still_claimed<'a>(id: &'a str, attempts: i64) -> _ {
    let pending: &'static str = PENDING;
    webhook_deliveries::table
        .find(id)
        .filter(webhook_deliveries::attempts.eq(attempts))
        .filter(webhook_deliveries::status.eq(pending))
}

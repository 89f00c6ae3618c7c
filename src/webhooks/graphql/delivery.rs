//! The `WebhookDelivery` and `WebhookAttempt` types, with their states and error kinds.

use async_graphql::{Context, Enum, ID, Json, Object};

use crate::graphql::context::ContextExt;
use crate::graphql::scalars::DateTime;
use crate::webhooks::model::{AttemptRow, DeliveryRow, FAILED, PENDING, SUCCEEDED};
use crate::webhooks::service::{self};

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
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Self::Pending => PENDING,
            Self::Succeeded => SUCCEEDED,
            Self::Failed => FAILED,
        }
    }
    pub(super) fn parse(s: &str) -> Self {
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
        ID(self.0.id.to_string())
    }
    /// The endpoint (`whk_…`).
    async fn endpoint_id(&self) -> ID {
        ID(self.0.endpoint_id.to_string())
    }
    /// The event (`evt_…`).
    async fn event_id(&self) -> ID {
        ID(self.0.event_id.to_string())
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
        let rows = service::attempts_of(ctx.app(), self.0.org_id.as_str(), self.0.id.as_str()).await?;
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
        ID(self.0.id.to_string())
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

pub(super) fn error_kind(s: &str) -> WebhookErrorKind {
    match s {
        "timeout" => WebhookErrorKind::Timeout,
        "tls" => WebhookErrorKind::Tls,
        "http_status" => WebhookErrorKind::HttpStatus,
        "refused" => WebhookErrorKind::Refused,
        _ => WebhookErrorKind::Connection,
    }
}

//! `webhookDelivered`: each attempt's outcome as it happens, on every node (bus).

use std::sync::Arc;

use async_graphql::{Context, ID, Object, Subscription};
use futures_util::{Stream, StreamExt};
use tokio_stream::wrappers::BroadcastStream;

use super::delivery::error_kind;
use super::{WebhookDeliveryStatus, WebhookErrorKind};
use crate::error::Error;
use crate::graphql::context::{ContextExt, Scope};
use crate::graphql::scalars::DateTime;
use crate::platform::bus::{AttemptEnvelope, BusMessage};
use crate::webhooks::service::{self};

/// The outcome of one delivery attempt, as it happens.
pub struct WebhookAttemptOutcome(AttemptEnvelope);

/// The outcome of one delivery attempt, as it happens.
#[Object]
impl WebhookAttemptOutcome {
    /// The attempt (`att_…`).
    async fn attempt_id(&self) -> ID {
        ID(self.0.attempt_id.to_string())
    }
    /// The delivery (`msg_…`).
    async fn delivery_id(&self) -> ID {
        ID(self.0.delivery_id.to_string())
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
                (a.org_id.as_str() == org.as_str() && a.endpoint_id.as_str() == id.as_str())
                    .then(|| WebhookAttemptOutcome(a.clone()))
            }
        }))
    }
}

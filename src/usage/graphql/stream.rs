//! The quota event subscriptions: thresholds of the monthly quota crossed, keys refused by it —
//! from the bus, so they reach subscribers on every node.

use async_graphql::{Context, ID, Object};

use crate::alerts::{KEY_EXCEEDED_EVENT, THRESHOLD_EVENT};
use crate::error::Error;
use crate::graphql::context::{ContextExt, Scope};
use crate::graphql::scalars::DateTime;

/// A quota event: a threshold of the monthly quota crossed, or a key refused by the quota.
pub struct QuotaEvent(pub crate::platform::bus::EventEnvelope);

/// A quota event: a threshold of the monthly quota crossed, or a key refused by the quota.
#[Object]
impl QuotaEvent {
    /// The event id (`evt_…`), also in `events` and (later) webhook deliveries.
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    /// `quota.threshold_reached` or `quota.key_exceeded`.
    #[graphql(name = "type")]
    async fn event_type(&self) -> &str {
        &self.0.event_type
    }
    /// The threshold crossed, in percent (80, 90 or 100); null for a key refusal.
    async fn percent(&self) -> Option<i64> {
        self.0.data["percent"].as_i64()
    }
    /// Calls counted this month when it happened.
    async fn used(&self) -> Option<i64> {
        self.0.data["used"].as_i64()
    }
    /// The monthly quota.
    async fn quota(&self) -> Option<i64> {
        self.0.data["quota"].as_i64()
    }
    /// The key refused (for `quota.key_exceeded`).
    async fn key_id(&self) -> Option<ID> {
        self.0.data["keyId"].as_str().map(|s| ID(s.to_string()))
    }
    /// MEDIUM (80 %), HIGH (90 %) or CRITICAL (100 %, or a refusal).
    async fn severity(&self) -> Option<&str> {
        self.0.data["severity"].as_str()
    }
    /// When it happened.
    async fn occurred_at(&self) -> DateTime {
        DateTime(self.0.occurred_at_ms)
    }
}

#[derive(Default)]
pub struct UsageSubscription;

fn quota_events(
    ctx: &Context<'_>,
    keep: std::sync::Arc<dyn Fn(&crate::platform::bus::EventEnvelope) -> bool + Send + Sync>,
) -> async_graphql::Result<impl futures_util::Stream<Item = QuotaEvent> + use<>> {
    use futures_util::StreamExt;
    let org = ctx.principal()?.org_id.to_string();
    let rx = ctx.app().bus.subscribe();
    Ok(tokio_stream::wrappers::BroadcastStream::new(rx).filter_map(move |msg| {
        let org = org.clone();
        let keep = keep.clone();
        async move {
            let msg = msg.ok()?;
            match &*msg {
                crate::platform::bus::BusMessage::Event(e) if e.org_id == org && keep(e) => Some(QuotaEvent(e.clone())),
                _ => None,
            }
        }
    }))
}

#[async_graphql::Subscription]
impl UsageSubscription {
    /// Each time the organization's monthly count crosses 80 %, 90 % or 100 % of its quota, for
    /// thresholds at or above `threshold` (once per threshold per month, whichever node served the
    /// call).
    #[graphql(guard = "Scope(\"usage:read\")")]
    async fn usage_threshold_reached(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Percent of the monthly quota, 1–100.")] threshold: i32,
    ) -> async_graphql::Result<impl futures_util::Stream<Item = QuotaEvent> + use<>> {
        if !(1..=100).contains(&threshold) {
            return Err(Error::bad_input("threshold", "must be between 1 and 100").into());
        }
        quota_events(
            ctx,
            std::sync::Arc::new(move |e| {
                e.event_type == THRESHOLD_EVENT && e.data["percent"].as_i64() >= Some(threshold as i64)
            }),
        )
    }

    /// When a key's call is refused because the monthly quota is spent (once per key per month on
    /// each node).
    #[graphql(guard = "Scope(\"usage:read\")")]
    async fn api_key_quota_exceeded(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The key (`key_…`).")] key_id: ID,
    ) -> async_graphql::Result<impl futures_util::Stream<Item = QuotaEvent> + use<>> {
        let key = crate::keys::service::key_of_org(ctx.app(), ctx.principal()?, &key_id).await?.to_string();
        quota_events(
            ctx,
            std::sync::Arc::new(move |e| {
                e.event_type == KEY_EXCEEDED_EVENT && e.data["keyId"].as_str() == Some(key.as_str())
            }),
        )
    }
}

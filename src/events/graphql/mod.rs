//! GraphQL for events: the `Event` type and the `events` subscription (the organization's event
//! stream, from the bus — in-process or Redis); the catalog and publishing in `catalog`, the audit
//! log in `audit`.

mod audit;
mod catalog;

pub use audit::{AuditEntry, AuditQuery};
pub use catalog::{CatalogMutation, CatalogQuery, EventType};

use std::sync::Arc;

use async_graphql::{Context, ID, Json, Object, Subscription};
use futures_util::{Stream, StreamExt};
use tokio_stream::wrappers::BroadcastStream;

use crate::events::filters::{check_filters, type_matches};
use crate::graphql::context::{ContextExt, Scope};
use crate::graphql::scalars::DateTime;
use crate::platform::bus::{BusMessage, EventEnvelope};

/// Something that happened in an organization (`key.created`, `key.revoked`, …).
pub struct Event(pub EventEnvelope);

/// Something that happened in an organization (`key.created`, `key.revoked`, …).
#[Object]
impl Event {
    /// Event id (`evt_…`), stable across deliveries.
    pub async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    /// `category.action`, e.g. `key.rolled`.
    #[graphql(name = "type")]
    async fn event_type(&self) -> &str {
        &self.0.event_type
    }
    /// The organization it happened in.
    async fn organization_id(&self) -> ID {
        ID(self.0.org_id.clone())
    }
    /// When it happened.
    async fn occurred_at(&self) -> DateTime {
        DateTime(self.0.occurred_at_ms)
    }
    /// The event's payload.
    async fn data(&self) -> Json<serde_json::Value> {
        Json(self.0.data.clone())
    }
}

#[derive(Default)]
pub struct EventsSubscription;

#[Subscription]
impl EventsSubscription {
    /// The organization's events as they happen, on every node.
    #[graphql(guard = "Scope(\"org:read\")")]
    async fn events(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only these types (up to 50): exact names, `category.*` or `*` (default all).")] types: Option<
            Vec<String>,
        >,
    ) -> async_graphql::Result<impl Stream<Item = Event> + use<>> {
        let principal = ctx.principal()?;
        let filters = types.unwrap_or_default();
        check_filters("types", &filters)?;
        let org = principal.org_id.to_string();
        let filters = Arc::new(filters);
        let rx = ctx.app().bus.subscribe();
        Ok(BroadcastStream::new(rx).filter_map(move |msg| {
            let org = org.clone();
            let filters = filters.clone();
            async move {
                let msg = msg.ok()?;
                let BusMessage::Event(e) = &*msg else {
                    return None;
                };
                if e.org_id != org {
                    return None;
                }
                if !filters.is_empty() && !filters.iter().any(|f| type_matches(f, &e.event_type)) {
                    return None;
                }
                Some(Event(e.clone()))
            }
        }))
    }
}

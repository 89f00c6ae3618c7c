//! GraphQL for the event catalog and publishing: `eventTypes`, `event`, `events`, the operator's
//! type mutations and `publishEvent`.

use async_graphql::{Context, ID, Json, Object};

use super::Event;
use crate::graphql::context::{ContextExt, Scope};
use crate::graphql::scalars::DateTime;
use crate::platform::bus::EventEnvelope;

/// A type of event in the catalog.
pub struct EventType(pub crate::events::publish::CatalogEntry);

/// A type of event in the catalog.
#[Object]
impl EventType {
    /// `category.action`, e.g. `key.created` or your own `invoice.paid`.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// The part before the first dot.
    async fn category(&self) -> &str {
        &self.0.category
    }
    /// What the event means.
    async fn description(&self) -> &str {
        &self.0.description
    }
    /// JSON Schema of the payload (`data`); published payloads must match it.
    async fn schema(&self) -> Json<serde_json::Value> {
        Json(self.0.schema.clone())
    }
    /// A sample payload; test events send it.
    async fn sample(&self) -> Json<serde_json::Value> {
        Json(self.0.sample.clone())
    }
    /// Deprecated types are still published and delivered; move away from them.
    async fn deprecated(&self) -> bool {
        self.0.deprecated
    }
    /// When the type was archived (it can no longer be published).
    async fn archived_at(&self) -> Option<DateTime> {
        self.0.archived_at.map(DateTime)
    }
    /// Raised by Gantry itself; otherwise defined by the operator.
    async fn built_in(&self) -> bool {
        self.0.built_in
    }
}

/// An operator-defined event type.
#[derive(async_graphql::InputObject)]
pub struct CreateEventTypeInput {
    /// `category.action` with letters, digits, `_` and `.`.
    pub name: String,
    /// What the event means (≤ 1000 characters).
    pub description: Option<String>,
    /// JSON Schema of the payload (default `{"type": "object"}`), at most 64 KiB.
    pub schema: Option<Json<serde_json::Value>>,
    /// A sample payload; it must match the schema.
    pub sample: Option<Json<serde_json::Value>>,
    /// Mark the type deprecated.
    pub deprecated: Option<bool>,
}

/// Changes to an operator-defined event type; omitted fields stay as they are.
#[derive(async_graphql::InputObject)]
pub struct UpdateEventTypeInput {
    /// What the event means.
    pub description: Option<String>,
    /// A new schema; the sample must still match it.
    pub schema: Option<Json<serde_json::Value>>,
    /// A new sample.
    pub sample: Option<Json<serde_json::Value>>,
    /// Deprecate or un-deprecate.
    pub deprecated: Option<bool>,
}

/// An event your backend publishes to an organization's webhook endpoints and subscribers.
#[derive(async_graphql::InputObject)]
pub struct PublishEventInput {
    /// A type of the catalog that you defined (`createEventType`).
    #[graphql(name = "type")]
    pub event_type: String,
    /// The payload; it must match the type's schema.
    pub payload: Json<serde_json::Value>,
    /// Publishing again with the same key returns the first event and publishes nothing.
    pub idempotency_key: Option<String>,
    /// The organization to publish to (service keys and platform administrators only; default:
    /// your own).
    pub organization_id: Option<ID>,
}

/// A published event.
#[derive(async_graphql::SimpleObject)]
pub struct PublishEventPayload {
    /// The event (the first one, when the idempotency key was used before).
    pub event: Event,
    /// True when the idempotency key was used before and nothing new was published.
    pub replayed: bool,
}

impl From<crate::events::publish::EventRow> for Event {
    fn from(row: crate::events::publish::EventRow) -> Self {
        Event(EventEnvelope {
            data: serde_json::from_str(&row.payload).unwrap_or_default(),
            id: row.id.to_string(),
            org_id: row.org_id.to_string(),
            event_type: row.event_type,
            occurred_at_ms: row.created_at,
        })
    }
}

#[derive(Default)]
pub struct CatalogQuery;

#[Object]
impl CatalogQuery {
    /// The event catalog: Gantry's own types and the operator's, with payload schemas and samples.
    async fn event_types(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only this category (`key`, `webhook`, …).")] category: Option<String>,
        #[graphql(default, desc = "Include archived types.")] include_archived: bool,
    ) -> async_graphql::Result<Vec<EventType>> {
        ctx.principal()?;
        let all = crate::events::publish::list_types(ctx.app(), include_archived).await?;
        Ok(all.into_iter().filter(|t| category.as_ref().is_none_or(|c| &t.category == c)).map(EventType).collect())
    }

    /// One type of the catalog by its name (`key.created`), archived or not.
    async fn event_type(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The type's name (`key.created`).")] name: String,
    ) -> async_graphql::Result<EventType> {
        ctx.principal()?;
        let all = crate::events::publish::list_types(ctx.app(), true).await?;
        match all.into_iter().find(|t| t.name == name) {
            Some(t) => Ok(EventType(t)),
            None => Err(crate::error::Error::NotFound("event type").into()),
        }
    }

    /// The organization's events (the outbox), newest first.
    #[graphql(
        guard = "Scope(\"org:read\")",
        complexity = "crate::graphql::page_complexity(first, last, child_complexity)"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn events(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size from the start, 1–100 (default 20).")] first: Option<i32>,
        #[graphql(desc = "Cursor to continue after.")] after: Option<String>,
        #[graphql(desc = "Page size from the end, 1–100.")] last: Option<i32>,
        #[graphql(desc = "Cursor to continue before.")] before: Option<String>,
        #[graphql(desc = "Only these types (up to 50): exact names, `category.*` or `*`.")] types: Option<Vec<String>>,
        #[graphql(desc = "Created at or after.")] since: Option<DateTime>,
        #[graphql(desc = "Created before.")] until: Option<DateTime>,
    ) -> async_graphql::Result<crate::graphql::connection::Conn<Event>> {
        let page = crate::pagination::PageRequest::from_args(first, after, last, before)?;
        let filter = crate::events::publish::EventFilter {
            types: types.unwrap_or_default(),
            since: since.map(|d| d.0),
            until: until.map(|d| d.0),
        };
        let rows = crate::events::publish::list_events(ctx.app(), ctx.principal()?, &filter, &page).await?;
        Ok(crate::graphql::connection::connection(rows, |r| r.id.to_string(), Event::from))
    }

    /// One event of the organization, by id (as a delivery's `eventId` names it).
    #[graphql(guard = "Scope(\"org:read\")")]
    async fn event(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Event id (`evt_…`).")] id: ID,
    ) -> async_graphql::Result<Event> {
        Ok(crate::events::publish::get_event(ctx.app(), ctx.principal()?, &id).await?.into())
    }
}

#[derive(Default)]
pub struct CatalogMutation;

#[Object]
impl CatalogMutation {
    /// Defines an event type your backend can publish (platform operator, `events:publish`).
    #[graphql(guard = "Scope(\"events:publish\")")]
    async fn create_event_type(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The new type.")] input: CreateEventTypeInput,
    ) -> async_graphql::Result<EventType> {
        let fields = crate::events::publish::TypeInput {
            description: input.description,
            schema: input.schema.map(|j| j.0),
            sample: input.sample.map(|j| j.0),
            deprecated: input.deprecated,
        };
        Ok(EventType(crate::events::publish::create_type(ctx.app(), ctx.principal()?, &input.name, fields).await?))
    }

    /// Changes an event type you defined.
    #[graphql(guard = "Scope(\"events:publish\")")]
    async fn update_event_type(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The type's name.")] name: String,
        #[graphql(desc = "The changes.")] input: UpdateEventTypeInput,
    ) -> async_graphql::Result<EventType> {
        let fields = crate::events::publish::TypeInput {
            description: input.description,
            schema: input.schema.map(|j| j.0),
            sample: input.sample.map(|j| j.0),
            deprecated: input.deprecated,
        };
        Ok(EventType(crate::events::publish::update_type(ctx.app(), ctx.principal()?, &name, fields).await?))
    }

    /// Archives an event type you defined: it can no longer be published.
    #[graphql(guard = "Scope(\"events:publish\")")]
    async fn archive_event_type(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The type's name.")] name: String,
    ) -> async_graphql::Result<EventType> {
        Ok(EventType(crate::events::publish::archive_type(ctx.app(), ctx.principal()?, &name).await?))
    }

    /// Publishes an event of a type you defined to an organization: its webhook endpoints whose
    /// filter matches receive it, and `events` subscribers see it. The payload is validated
    /// against the type's schema. With an idempotency key, a repeat returns the first event.
    #[graphql(guard = "Scope(\"events:publish\")")]
    async fn publish_event(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The event.")] input: PublishEventInput,
    ) -> async_graphql::Result<PublishEventPayload> {
        let (row, replayed) = crate::events::publish::publish(
            ctx.app(),
            ctx.principal()?,
            crate::events::publish::Publish {
                event_type: input.event_type,
                payload: input.payload.0,
                idempotency_key: input.idempotency_key,
                organization_id: input.organization_id.map(|i| i.0),
            },
        )
        .await?;
        Ok(PublishEventPayload { event: Event::from(row), replayed })
    }
}

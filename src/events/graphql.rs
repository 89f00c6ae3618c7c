//! The `events` subscription: the organization's event stream, from the bus (in-process or Redis).

use std::sync::Arc;

use async_graphql::{Context, ID, Json, Object, Subscription};
use futures_util::{Stream, StreamExt};
use tokio_stream::wrappers::BroadcastStream;

use crate::error::Error;
use crate::graphql::context::{ContextExt, Scope};
use crate::graphql::scalars::DateTime;
use crate::platform::bus::{BusMessage, EventEnvelope};

/// Something that happened in an organization (`key.created`, `key.revoked`, …).
pub struct Event(pub EventEnvelope);

/// Something that happened in an organization (`key.created`, `key.revoked`, …).
#[Object]
impl Event {
    /// Event id (`evt_…`), stable across deliveries.
    async fn id(&self) -> ID {
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

/// Whether an event type matches a filter entry: an exact name, `category.*`, or `*`.
pub fn type_matches(filter: &str, event_type: &str) -> bool {
    filter == "*"
        || filter == event_type
        || filter
            .strip_suffix(".*")
            .is_some_and(|cat| event_type.strip_prefix(cat).is_some_and(|rest| rest.starts_with('.')))
}

/// Checks one filter entry (`field` names the argument in the error).
pub fn check_filter(field: &str, f: &str) -> Result<(), Error> {
    let body = f.strip_suffix(".*").unwrap_or(f);
    let ok = f == "*"
        || (!body.is_empty()
            && body.len() <= 100
            && body.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
            && !body.starts_with('.')
            && !body.ends_with('.'));
    if ok { Ok(()) } else { Err(Error::bad_input(field, format!("`{f}` is not an event type, `category.*` or `*`"))) }
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
        #[graphql(desc = "Only these types: exact names, `category.*` or `*` (default all).")] types: Option<
            Vec<String>,
        >,
    ) -> async_graphql::Result<impl Stream<Item = Event> + use<>> {
        let principal = ctx.principal()?;
        let filters = types.unwrap_or_default();
        for f in &filters {
            check_filter("types", f)?;
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_match_exact_category_and_all() {
        assert!(type_matches("*", "key.created"));
        assert!(type_matches("key.created", "key.created"));
        assert!(type_matches("key.*", "key.created"));
        assert!(!type_matches("key.*", "keys.created"));
        assert!(!type_matches("key.created", "key.revoked"));
        assert!(check_filter("types", "webhook.delivery.*").is_ok());
        assert!(check_filter("types", "bad type").is_err());
        assert!(check_filter("types", ".*").is_err());
    }
}

/// One security-relevant action in an organization.
pub struct AuditEntry(pub crate::events::AuditRow);

/// One security-relevant action in an organization.
#[Object]
impl AuditEntry {
    /// Entry id (`aud_…`).
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    /// What was done, e.g. `key.revoked`.
    async fn action(&self) -> &str {
        &self.0.action
    }
    /// `user` or `api_key`.
    async fn actor_type(&self) -> &str {
        &self.0.actor_type
    }
    /// Id of the user or key that did it.
    async fn actor_id(&self) -> ID {
        ID(self.0.actor_id.clone())
    }
    /// Kind of object acted on, e.g. `api_key`.
    async fn target_type(&self) -> &str {
        &self.0.target_type
    }
    /// Id of the object acted on.
    async fn target_id(&self) -> ID {
        ID(self.0.target_id.clone())
    }
    /// The caller's IP address.
    async fn ip(&self) -> Option<&str> {
        self.0.ip.as_deref()
    }
    /// Details of the action.
    async fn data(&self) -> Json<serde_json::Value> {
        Json(serde_json::from_str(&self.0.data).unwrap_or(serde_json::Value::Null))
    }
    /// When it happened.
    async fn created_at(&self) -> DateTime {
        DateTime(self.0.created_at)
    }
}

#[derive(Default)]
pub struct AuditQuery;

#[Object]
impl AuditQuery {
    /// The organization's audit log, newest first.
    #[graphql(
        guard = "Scope(\"org:read\")",
        complexity = "crate::graphql::page_complexity(first, last, child_complexity)"
    )]
    async fn audit_log(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size from the start, 1–100 (default 20).")] first: Option<i32>,
        #[graphql(desc = "Cursor to continue after.")] after: Option<String>,
        #[graphql(desc = "Page size from the end, 1–100.")] last: Option<i32>,
        #[graphql(desc = "Cursor to continue before.")] before: Option<String>,
        #[graphql(desc = "Only this action, e.g. `key.rolled`.")] action: Option<String>,
    ) -> async_graphql::Result<crate::graphql::connection::Conn<AuditEntry>> {
        let page = crate::pagination::PageRequest::from_args(first, after, last, before)?;
        let rows = crate::events::list_audit(ctx.app(), ctx.principal()?, action.as_deref(), &page).await?;
        Ok(crate::graphql::connection::connection(rows, |r| r.id.clone(), AuditEntry))
    }
}

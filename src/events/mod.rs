//! Events and the audit log. An event is written to the `events` table (the outbox) in the same
//! transaction as the change that caused it, then published on the bus after commit so
//! subscriptions see it at once. Audit entries are written the same way, in the same transaction.

pub mod audit;
pub mod catalog;
pub mod filters;
pub mod graphql;
pub mod publish;
pub mod types;

pub use audit::{AuditRow, NewAudit, list_audit};

use diesel::prelude::*;

use crate::app::App;
use crate::platform::bus::{BusMessage, EventEnvelope};
use crate::platform::db::schema::events;
use crate::platform::ids::{EventId, OrgId};

/// Inside `transaction!` (the body is expanded per backend): writes `$event`, a [`PendingEvent`],
/// to the outbox on `$c` — with `$audit`, a [`NewAudit`], in the audit log when given — and
/// evaluates to the event, to publish once the transaction commits. The audit entry alone:
/// [`audit!`](crate::audit).
#[macro_export]
macro_rules! outbox {
    ($c:expr, $event:expr) => {{
        let event: $crate::events::PendingEvent = $event;
        diesel_async::RunQueryDsl::execute(
            diesel::insert_into($crate::platform::db::schema::events::table).values(&event.row),
            $c,
        )
        .await?;
        event
    }};
    ($c:expr, $event:expr, $audit:expr) => {{
        let event = $crate::outbox!($c, $event);
        $crate::audit!($c, $audit);
        event
    }};
}

#[derive(Debug, Insertable)]
#[diesel(table_name = events)]
pub struct NewEvent {
    pub id: EventId,
    pub org_id: OrgId,
    pub event_type: String,
    pub payload: String,
    pub idempotency_key: Option<String>,
    pub created_at: i64,
}

/// An event prepared for the outbox: insert `row` inside the transaction, then `publish` after it
/// commits.
pub struct PendingEvent {
    pub row: NewEvent,
    envelope: EventEnvelope,
}

impl PendingEvent {
    pub fn new(app: &App, org_id: &OrgId, event_type: &str, data: serde_json::Value) -> Self {
        let now = app.clock.now_ms();
        let id = EventId::generate(now);
        let row = NewEvent {
            id: id.clone(),
            org_id: org_id.clone(),
            event_type: event_type.to_string(),
            payload: data.to_string(),
            idempotency_key: None,
            created_at: now,
        };
        let envelope = EventEnvelope {
            id: id.to_string(),
            org_id: org_id.to_string(),
            event_type: event_type.to_string(),
            occurred_at_ms: now,
            data,
        };
        Self { row, envelope }
    }

    pub async fn publish(self, app: &App) {
        announce(app, self.envelope).await;
    }
}

/// Tells every node that an event was written: subscribers, and the dispatchers that fan it out
/// (this node's at once, without waiting for its own message to come back from Redis).
async fn announce(app: &App, envelope: EventEnvelope) {
    app.webhooks.events_arrived();
    app.bus.publish(BusMessage::Event(envelope)).await;
}

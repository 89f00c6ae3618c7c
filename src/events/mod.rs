//! Events and the audit log. An event is written to the `events` table (the outbox) in the same
//! transaction as the change that caused it, then published on the bus after commit so
//! subscriptions see it at once. Audit entries are written the same way, in the same transaction.

pub mod catalog;
pub mod filters;
pub mod graphql;
pub mod publish;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::app::App;
use crate::auth::Principal;
use crate::platform::bus::{BusMessage, EventEnvelope};
use crate::platform::db::schema::{audit_log, events};
use crate::platform::ids::{AuditId, EventId, OrgId};

/// Inside `transaction!` (the body is expanded per backend): writes `$event`, a [`PendingEvent`],
/// to the outbox on `$c` — with `$audit`, a [`NewAudit`], in the audit log when given — and
/// evaluates to the event, to publish once the transaction commits.
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

/// Inside `transaction!`: writes `$audit`, a [`NewAudit`], to the audit log on `$c`.
#[macro_export]
macro_rules! audit {
    ($c:expr, $audit:expr) => {{
        let entry: $crate::events::NewAudit = $audit;
        diesel_async::RunQueryDsl::execute(
            diesel::insert_into($crate::platform::db::schema::audit_log::table).values(entry),
            $c,
        )
        .await?;
    }};
}

#[derive(Debug, Insertable)]
#[diesel(table_name = events)]
pub struct NewEvent {
    pub id: String,
    pub org_id: String,
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
        let id = EventId::generate(now).to_string();
        let row = NewEvent {
            id: id.clone(),
            org_id: org_id.to_string(),
            event_type: event_type.to_string(),
            payload: data.to_string(),
            idempotency_key: None,
            created_at: now,
        };
        let envelope = EventEnvelope {
            id,
            org_id: org_id.to_string(),
            event_type: event_type.to_string(),
            occurred_at_ms: now,
            data,
        };
        Self { row, envelope }
    }

    pub async fn publish(self, app: &App) {
        app.bus.publish(BusMessage::Event(self.envelope)).await;
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = audit_log)]
pub struct NewAudit {
    pub id: String,
    pub org_id: String,
    pub actor_type: String,
    pub actor_id: String,
    pub action: String,
    pub target_type: String,
    pub target_id: String,
    pub ip: Option<String>,
    pub data: String,
    pub created_at: i64,
}

impl NewAudit {
    /// An audit entry for an action a principal took on a target.
    pub fn by(
        app: &App,
        principal: &Principal,
        action: &str,
        target_type: &str,
        target_id: &str,
        data: serde_json::Value,
    ) -> Self {
        Self::raw(
            app,
            &principal.org_id,
            principal.actor_type(),
            &principal.actor_id(),
            principal.ip,
            action,
            target_type,
            target_id,
            data,
        )
    }

    #[allow(clippy::too_many_arguments)]
    pub fn raw(
        app: &App,
        org_id: &OrgId,
        actor_type: &str,
        actor_id: &str,
        ip: Option<std::net::IpAddr>,
        action: &str,
        target_type: &str,
        target_id: &str,
        data: serde_json::Value,
    ) -> Self {
        let now = app.clock.now_ms();
        Self {
            id: AuditId::generate(now).to_string(),
            org_id: org_id.to_string(),
            actor_type: actor_type.into(),
            actor_id: actor_id.into(),
            action: action.into(),
            target_type: target_type.into(),
            target_id: target_id.into(),
            ip: ip.map(|i| i.to_string()),
            data: data.to_string(),
            created_at: now,
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = audit_log)]
pub struct AuditRow {
    pub id: String,
    pub org_id: String,
    pub actor_type: String,
    pub actor_id: String,
    pub action: String,
    pub target_type: String,
    pub target_id: String,
    pub ip: Option<String>,
    pub data: String,
    pub created_at: i64,
}

/// The organization's audit trail, newest first (`org:read`).
pub async fn list_audit(
    app: &App,
    principal: &Principal,
    action: Option<&str>,
    page: &crate::pagination::PageRequest,
) -> crate::error::Result<crate::pagination::Page<AuditRow>> {
    principal.require_scope("org:read")?;
    let org = principal.org_id.as_str();
    macro_rules! base {
        () => {{
            let mut q = audit_log::table.filter(audit_log::org_id.eq(org)).into_boxed();
            if let Some(a) = action {
                q = q.filter(audit_log::action.eq(a));
            }
            q
        }};
    }
    let (rows, total) = crate::with_conn!(app.db, c => crate::keyset_page!(c, base!(), audit_log::id, AuditRow, page));
    Ok(crate::pagination::Page::from_rows(rows, page, total))
}

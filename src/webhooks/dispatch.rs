//! The dispatcher: fans undispatched outbox events out to the enabled endpoints whose filter
//! matches, as pending deliveries, in one transaction with marking the events dispatched
//! (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so two nodes never fan one event out twice).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};
use diesel_async::{RunQueryDsl, SimpleAsyncConnection};

use super::delivery::Claimed;
use super::model::*;
use crate::app::App;
use crate::error::{Error, Result};
use crate::events::catalog;
use crate::platform::db::schema::{events, webhook_endpoints};
use crate::platform::ids::{DeliveryId, EventId, OrgId, WebhookId};
use crate::transaction;

/// Events taken per dispatch; a full batch means there may be more.
pub const DISPATCH_BATCH: i64 = 500;

/// An enabled endpoint as the dispatcher sees it: the row and its parsed filters.
type Subscriber = (Arc<EndpointRow>, Vec<String>);

#[derive(QueryableByName)]
struct Undispatched {
    #[diesel(sql_type = Text)]
    id: EventId,
    #[diesel(sql_type = Text)]
    org_id: OrgId,
    #[diesel(sql_type = Text)]
    event_type: String,
    #[diesel(sql_type = Text)]
    payload: String,
    #[diesel(sql_type = BigInt)]
    created_at: i64,
}

/// Deliveries made already leased to this node, with what their first attempts need: they start
/// at once, without a claim and without reading their rows again.
pub(super) struct Leased {
    pub(super) deliveries: Vec<Claimed>,
    pub(super) endpoints: HashMap<WebhookId, Arc<EndpointRow>>,
    /// Event id → (payload, created_at).
    pub(super) payloads: HashMap<EventId, (Arc<str>, i64)>,
    pub(super) now: i64,
}

/// Fans undispatched events out to the enabled endpoints whose filter matches, in one
/// transaction with marking them dispatched. Returns how many events it took.
pub async fn dispatch(app: &App) -> Result<usize> {
    Ok(fan_out(app, 0).await?.0)
}

/// [`dispatch`], leasing up to `lease` of the new deliveries to this node as they are made (a
/// lease like a claim's: if the node dies, they are due again when it ends). Returns how many
/// events it took, the leased deliveries, and whether some new ones were left unleased.
pub(super) async fn fan_out(app: &App, lease: usize) -> Result<(usize, Leased, bool)> {
    let now = app.clock.now_ms();
    let lock = if app.db.is_postgres() { " FOR UPDATE SKIP LOCKED" } else { "" };
    let select = app.db.sql(&format!(
        "SELECT id, org_id, event_type, payload, created_at FROM events WHERE dispatched_at IS NULL ORDER BY id LIMIT ?{lock}"
    ));
    let pg = app.db.is_postgres();
    let (taken, created, leased) = transaction!(app.db, c => {
        let mut leased = Leased { deliveries: Vec::new(), endpoints: HashMap::new(), payloads: HashMap::new(), now };
        if pg {
            c.batch_execute(crate::platform::db::QUEUE_HEAD_PLAN).await?;
        }
        let rows: Vec<Undispatched> = diesel::sql_query(&select).bind::<BigInt, _>(DISPATCH_BATCH).load(c).await?;
        if rows.is_empty() {
            return Ok((0, 0, leased));
        }
        let orgs: HashSet<&str> = rows.iter().map(|r| r.org_id.as_str()).collect();
        let endpoints: Vec<EndpointRow> = webhook_endpoints::table
            .filter(webhook_endpoints::org_id.eq_any(orgs.iter().copied()))
            .filter(webhook_endpoints::enabled.eq(true))
            .select(EndpointRow::as_select())
            .load(c).await?;
        let mut by_org: HashMap<OrgId, Vec<Subscriber>> = HashMap::new();
        for e in endpoints {
            let filters = e.filters();
            by_org.entry(e.org_id.clone()).or_default().push((Arc::new(e), filters));
        }
        let mut deliveries = Vec::new();
        for e in &rows {
            for (endpoint, filters) in by_org.get(&e.org_id).map(Vec::as_slice).unwrap_or_default() {
                // An endpoint gets what happens after it exists, even when dispatch runs late.
                if endpoint.created_at <= e.created_at && catalog::filter_matches(filters, &e.event_type) {
                    let mut d = new_delivery(&e.org_id, &endpoint.id, &e.id, &e.event_type, now);
                    if deliveries.len() < lease {
                        d.leased_until = Some(super::delivery::lease_end(app, endpoint, now));
                        leased.endpoints.entry(endpoint.id.clone()).or_insert_with(|| endpoint.clone());
                    }
                    deliveries.push(d);
                }
            }
        }
        // Multi-row statements: one round trip per 500 deliveries, not one per delivery.
        for chunk in deliveries.chunks(INSERT_CHUNK) {
            let mut q = diesel::sql_query(app.db.sql(&insert_deliveries_sql(chunk.len()))).into_boxed();
            for d in chunk {
                q = q
                    .bind::<Text, _>(&d.id)
                    .bind::<Text, _>(&d.org_id)
                    .bind::<Text, _>(&d.endpoint_id)
                    .bind::<Text, _>(&d.event_id)
                    .bind::<Text, _>(&d.event_type)
                    .bind::<BigInt, _>(now)
                    .bind::<Nullable<BigInt>, _>(d.leased_until)
                    .bind::<BigInt, _>(now)
                    .bind::<BigInt, _>(now);
            }
            q.execute(c).await?;
        }
        let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
        diesel::update(events::table.filter(events::id.eq_any(&ids))).set(events::dispatched_at.eq(now)).execute(c).await?;
        let created = deliveries.len();
        for d in deliveries.into_iter().take_while(|d| d.leased_until.is_some()) {
            leased.deliveries.push(Claimed {
                id: d.id,
                org_id: d.org_id,
                endpoint_id: d.endpoint_id,
                event_id: d.event_id,
                event_type: d.event_type,
                attempts: 0,
                last_error: None,
            });
        }
        let wanted: HashSet<&EventId> = leased.deliveries.iter().map(|d| &d.event_id).collect();
        for r in rows.iter().filter(|r| wanted.contains(&r.id)) {
            leased.payloads.insert(r.id.clone(), (Arc::from(r.payload.as_str()), r.created_at));
        }
        Ok::<_, Error>((rows.len(), created, leased))
    })?;
    if created > 0 {
        tracing::debug!(events = taken, deliveries = created, leased = leased.deliveries.len(), "dispatched events");
    }
    let unleased = created > leased.deliveries.len();
    Ok((taken, leased, unleased))
}

const INSERT_CHUNK: usize = 500;

/// `INSERT` of `n` new pending deliveries, nine placeholders each (id, org, endpoint, event,
/// type, due, lease, created, updated), in `?` style.
fn insert_deliveries_sql(n: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO webhook_deliveries (id, org_id, endpoint_id, event_id, event_type, status, attempts, \
         next_attempt_at, leased_until, created_at, updated_at) VALUES ",
    );
    sql.push_str(&crate::platform::db::Db::rows(n, "(?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?, ?)"));
    sql
}

pub fn new_delivery(
    org_id: &OrgId,
    endpoint_id: &WebhookId,
    event_id: &EventId,
    event_type: &str,
    now: i64,
) -> DeliveryRow {
    DeliveryRow {
        id: DeliveryId::generate(now),
        org_id: org_id.clone(),
        endpoint_id: endpoint_id.clone(),
        event_id: event_id.clone(),
        event_type: event_type.to_string(),
        status: PENDING.to_string(),
        attempts: 0,
        next_attempt_at: Some(now),
        leased_until: None,
        last_status_code: None,
        last_error: None,
        created_at: now,
        updated_at: now,
    }
}

//! The export document, written in chunks as it is read: every section pages through its table by
//! id (500 rows at a time) and appends JSON to a buffer that goes to `org_export_chunks` every
//! 256 KiB, so neither the job nor a download ever holds the document whole. Rows are mapped field
//! by field: what is exported is chosen here, and secrets (key hashes, webhook secrets, custom
//! header values, card references) are never among it.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde_json::{Value, json};

use crate::accounts::model::{InvitationRow, MembershipRow, OrgRow, UserRow};
use crate::app::App;
use crate::apps::model::AppRow;
use crate::billing::model::{InvoiceRow, LineRow, PaymentMethodRow, SubscriptionRow};
use crate::error::Result;
use crate::events::NewAudit;
use crate::keys::model::KeyRow;
use crate::oauth::model::InstallationRow;
use crate::platform::clock::rfc3339;
use crate::platform::db::schema::{
    api_keys, app_installations, apps, audit_log, event_types, invitations, invoice_lines, invoices, memberships,
    org_export_chunks, org_exports, organizations, payment_methods, subscriptions, users, webhook_endpoints,
};
use crate::platform::ids::{ExportId, OrgId};
use crate::webhooks::model::EndpointRow;
use crate::with_conn;

/// Bytes of JSON per stored chunk.
const CHUNK_BYTES: usize = 256 * 1024;
/// Rows read per query.
const PAGE: i64 = 500;

fn time(ms: i64) -> Value {
    Value::String(rfc3339(ms))
}

fn opt_time(ms: Option<i64>) -> Value {
    ms.map_or(Value::Null, time)
}

fn parsed(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

/// Appends JSON to the export and stores it in chunks.
pub struct Writer<'a> {
    app: &'a App,
    export: ExportId,
    buf: String,
    seq: i64,
    pub bytes: i64,
    /// Whether the current array has an item yet (for the commas).
    first: bool,
    /// Each chunk renews the job's claim by this much.
    lease_ms: i64,
    /// The claim's `started_at`: a job another node took over (a new claim) stops at its next chunk.
    fence: i64,
}

impl<'a> Writer<'a> {
    pub fn new(app: &'a App, export: ExportId, lease_ms: i64, fence: i64) -> Self {
        Writer {
            app,
            export,
            buf: String::with_capacity(CHUNK_BYTES + 4096),
            seq: 0,
            bytes: 0,
            first: true,
            lease_ms,
            fence,
        }
    }

    async fn raw(&mut self, s: &str) -> Result<()> {
        self.buf.push_str(s);
        if self.buf.len() >= CHUNK_BYTES { self.flush().await } else { Ok(()) }
    }

    /// Stores what is buffered as the next chunk.
    pub async fn flush(&mut self) -> Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let data = std::mem::take(&mut self.buf);
        self.bytes += data.len() as i64;
        let (id, seq) = (self.export.clone(), self.seq);
        let claimed_until = self.app.clock.now_ms() + self.lease_ms;
        let fence = self.fence;
        let still_ours = with_conn!(self.app.db, c => {
            let renewed = diesel::update(org_exports::table.find(&id).filter(org_exports::started_at.eq(fence)))
                .set(org_exports::claimed_until.eq(claimed_until))
                .execute(c).await?;
            if renewed == 1 {
                diesel::insert_into(org_export_chunks::table)
                    .values((org_export_chunks::export_id.eq(&id), org_export_chunks::seq.eq(seq), org_export_chunks::data.eq(&data)))
                    .execute(c).await?;
            }
            renewed == 1
        });
        if !still_ours {
            return Err(crate::error::Error::Conflict("another node took this export over".into()));
        }
        self.seq += 1;
        self.buf.reserve(CHUNK_BYTES + 4096);
        Ok(())
    }

    pub fn chunks(&self) -> i64 {
        self.seq
    }

    /// `"name":` then a value, as a field of the top-level object.
    async fn field(&mut self, name: &str, value: &Value) -> Result<()> {
        self.raw(&format!(",{}:{}", Value::String(name.into()), value)).await
    }

    async fn open_array(&mut self, name: &str) -> Result<()> {
        self.first = true;
        self.raw(&format!(",{}:[", Value::String(name.into()))).await
    }

    async fn item(&mut self, value: &Value) -> Result<()> {
        let sep = if self.first { "" } else { "," };
        self.first = false;
        self.raw(&format!("{sep}{value}")).await
    }

    async fn close_array(&mut self) -> Result<()> {
        self.raw("]").await
    }
}

/// Pages through the organization's rows of `$table` by `$id` (ascending), each page as `$row`,
/// running `$each` on each row with the writer.
macro_rules! pages {
    ($app:expr, $w:expr, $org:expr, $table:ident, $id:expr, $row:ty, |$r:ident| $map:expr) => {{
        let mut after = String::new();
        loop {
            let page: Vec<$row> = with_conn!($app.db, c => {
                $table::table
                    .filter($table::org_id.eq($org))
                    .filter($id.gt(&after))
                    .order($id.asc())
                    .select(<$row>::as_select())
                    .limit(PAGE)
                    .load(c).await?
            });
            let Some(last) = page.last() else { break };
            after = last.id.to_string();
            let full = page.len() as i64 == PAGE;
            for $r in &page {
                $w.item(&$map).await?;
            }
            if !full {
                break;
            }
        }
    }};
}

#[derive(QueryableByName)]
struct Rollup {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    bucket_start: i64,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    level: i32,
    #[diesel(sql_type = diesel::sql_types::Text)]
    api_key_id: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    operation: String,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    status: i32,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    calls: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    latency_us_sum: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    request_bytes: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    response_bytes: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    quota_units: i64,
}

/// Writes the whole document for `org`.
pub async fn write(app: &App, w: &mut Writer<'_>, org: &OrgId) -> Result<()> {
    let o: OrgRow = with_conn!(app.db, c => organizations::table.find(org).select(OrgRow::as_select()).first(c).await?);
    w.raw(&format!("{{\"format\":\"gantry.organization-export/1\",\"exportedAt\":{}", time(app.clock.now_ms())))
        .await?;
    w.field(
        "organization",
        &json!({
            "id": o.id, "name": o.name, "slug": o.slug, "isPersonal": o.is_personal, "planId": o.plan_id,
            "createdAt": time(o.created_at), "suspendedAt": opt_time(o.suspended_at), "deletedAt": opt_time(o.deleted_at),
        }),
    )
    .await?;

    // Members: few per organization; one query.
    let members: Vec<(MembershipRow, UserRow)> = with_conn!(app.db, c => {
        memberships::table.inner_join(users::table)
            .filter(memberships::org_id.eq(org))
            .order(memberships::user_id.asc())
            .select((MembershipRow::as_select(), UserRow::as_select()))
            .load(c).await?
    });
    w.open_array("members").await?;
    for (m, u) in &members {
        w.item(&json!({ "userId": u.id, "email": u.email, "name": u.name, "role": m.role, "joinedAt": time(m.created_at) }))
            .await?;
    }
    w.close_array().await?;

    w.open_array("invitations").await?;
    pages!(app, w, org, invitations, invitations::id, InvitationRow, |i| json!({
        "id": i.id, "email": i.email, "role": i.role, "invitedBy": i.invited_by, "createdAt": time(i.created_at),
        "expiresAt": time(i.expires_at), "acceptedAt": opt_time(i.accepted_at), "revokedAt": opt_time(i.revoked_at),
    }));
    w.close_array().await?;

    w.open_array("apiKeys").await?;
    pages!(app, w, org, api_keys, api_keys::id, KeyRow, |k| json!({
        "id": k.id, "name": k.name, "description": k.description, "environment": k.environment,
        "maskedKey": format!("{}…{}", k.start, k.last_four), "scopes": parsed(&k.scopes),
        "allowedIps": parsed(&k.allowed_ips), "metadata": parsed(&k.metadata), "rateLimit": k.rate_limit.as_deref().map(parsed),
        "createdBy": k.created_by, "createdAt": time(k.created_at), "expiresAt": opt_time(k.expires_at),
        "lastUsedAt": opt_time(k.last_used_at), "totalRequests": k.total_requests,
        "revokedAt": opt_time(k.revoked_at), "revokedReason": k.revoked_reason,
    }));
    w.close_array().await?;

    w.open_array("apps").await?;
    pages!(app, w, org, apps, apps::id, AppRow, |a| json!({
        "id": a.id, "name": a.name, "slug": a.slug, "description": a.description, "category": a.category,
        "status": a.status, "version": a.version, "pricingModel": a.pricing_model, "price": a.price_amount,
        "currency": a.price_currency, "scopes": parsed(&a.scopes), "installCount": a.install_count,
        "createdAt": time(a.created_at), "publishedAt": opt_time(a.published_at),
    }));
    w.close_array().await?;

    w.open_array("installations").await?;
    pages!(app, w, org, app_installations, app_installations::id, InstallationRow, |i| json!({
        "id": i.id, "appId": i.app_id, "scopes": parsed(&i.scopes), "installedBy": i.installed_by,
        "createdAt": time(i.created_at), "uninstalledAt": opt_time(i.uninstalled_at),
    }));
    w.close_array().await?;

    // Custom header values may be credentials of the receiver: their names only.
    w.open_array("webhookEndpoints").await?;
    pages!(app, w, org, webhook_endpoints, webhook_endpoints::id, EndpointRow, |e| json!({
        "id": e.id, "url": e.url, "description": e.description, "filterTypes": parsed(&e.event_filter),
        "headerNames": parsed(&e.headers).as_object().map(|h| h.keys().cloned().collect::<Vec<_>>()).unwrap_or_default(),
        "enabled": e.enabled, "disabledReason": e.disabled_reason, "rateLimitPerSecond": e.rate_limit_per_second,
        "timeoutMs": e.timeout_ms, "metadata": parsed(&e.metadata), "createdAt": time(e.created_at),
    }));
    w.close_array().await?;

    // The operator's event types the organization's events and endpoints refer to.
    let types: Vec<(String, String, String, String)> = with_conn!(app.db, c => {
        event_types::table
            .filter(event_types::archived_at.is_null())
            .order(event_types::name.asc())
            .select((event_types::name, event_types::category, event_types::description, event_types::payload_schema))
            .load(c).await?
    });
    w.open_array("eventTypes").await?;
    for (name, category, description, schema) in &types {
        w.item(&json!({ "name": name, "category": category, "description": description, "schema": parsed(schema) }))
            .await?;
    }
    w.close_array().await?;

    let sub: Option<SubscriptionRow> = with_conn!(app.db, c => {
        subscriptions::table.filter(subscriptions::org_id.eq(org)).select(SubscriptionRow::as_select()).first(c).await.optional()?
    });
    let sub = sub.map_or(Value::Null, |s| {
        json!({
            "id": s.id, "planId": s.plan_id, "status": s.status, "billingCycle": s.billing_cycle,
            "currentPeriodStart": time(s.current_period_start), "currentPeriodEnd": time(s.current_period_end),
            "cancelAtPeriodEnd": s.cancel_at_period_end, "spendCap": s.spend_cap_cents,
        })
    });
    w.field("subscription", &sub).await?;

    w.open_array("paymentMethods").await?;
    pages!(app, w, org, payment_methods, payment_methods::id, PaymentMethodRow, |p| json!({
        "id": p.id, "brand": p.brand, "last4": p.last4, "expMonth": p.exp_month, "expYear": p.exp_year,
        "isDefault": p.is_default, "createdAt": time(p.created_at), "removedAt": opt_time(p.removed_at),
    }));
    w.close_array().await?;

    // Invoices with their lines, a page of invoices at a time.
    w.open_array("invoices").await?;
    let mut after = String::new();
    loop {
        let page: Vec<InvoiceRow> = with_conn!(app.db, c => {
            invoices::table.filter(invoices::org_id.eq(org)).filter(invoices::id.gt(&after))
                .order(invoices::id.asc()).select(InvoiceRow::as_select()).limit(PAGE).load(c).await?
        });
        let Some(last) = page.last() else { break };
        after = last.id.to_string();
        let ids: Vec<&str> = page.iter().map(|i| i.id.as_str()).collect();
        let lines: Vec<LineRow> = with_conn!(app.db, c => {
            invoice_lines::table.filter(invoice_lines::invoice_id.eq_any(&ids))
                .order((invoice_lines::invoice_id.asc(), invoice_lines::position.asc()))
                .select(LineRow::as_select()).load(c).await?
        });
        for inv in &page {
            let lines: Vec<Value> = lines
                .iter()
                .filter(|l| l.invoice_id == inv.id)
                .map(|l| {
                    json!({
                        "kind": l.kind, "description": l.description, "periodStart": time(l.period_start),
                        "periodEnd": time(l.period_end), "quantity": l.quantity, "unitPriceMicros": l.unit_price_micros,
                        "amount": l.amount_cents, "appId": l.app_id,
                    })
                })
                .collect();
            w.item(&json!({
                "id": inv.id, "number": inv.number, "kind": inv.kind, "status": inv.status, "currency": inv.currency,
                "periodStart": time(inv.period_start), "periodEnd": time(inv.period_end), "total": inv.total_cents,
                "amountPaid": inv.amount_paid_cents, "dueAt": opt_time(inv.due_at), "paidAt": opt_time(inv.paid_at),
                "createdAt": time(inv.created_at), "lines": lines,
            }))
            .await?;
        }
        if (page.len() as i64) < PAGE {
            break;
        }
    }
    w.close_array().await?;

    // Daily usage roll-ups (every level of the cube), by day, paged by their whole key.
    w.open_array("usageRollups").await?;
    let sql = app.db.sql(&format!(
        "SELECT bucket_start, level, api_key_id, operation, status, calls, latency_us_sum, request_bytes, response_bytes, quota_units \
         FROM usage_rollups WHERE granularity = 'day' AND org_id = ? \
         AND (bucket_start, level, api_key_id, operation, status) > (?, ?, ?, ?, ?) \
         ORDER BY bucket_start, level, api_key_id, operation, status LIMIT {PAGE}"
    ));
    let mut after: (i64, i32, String, String, i32) = (i64::MIN, i32::MIN, String::new(), String::new(), i32::MIN);
    loop {
        let page: Vec<Rollup> = with_conn!(app.db, c => {
            diesel::sql_query(sql.as_str())
                .bind::<diesel::sql_types::Text, _>(org.as_str())
                .bind::<diesel::sql_types::BigInt, _>(after.0)
                .bind::<diesel::sql_types::Integer, _>(after.1)
                .bind::<diesel::sql_types::Text, _>(&after.2)
                .bind::<diesel::sql_types::Text, _>(&after.3)
                .bind::<diesel::sql_types::Integer, _>(after.4)
                .load(c).await?
        });
        let Some(last) = page.last() else { break };
        after = (last.bucket_start, last.level, last.api_key_id.clone(), last.operation.clone(), last.status);
        for r in &page {
            w.item(&json!({
                "day": time(r.bucket_start), "level": r.level, "apiKeyId": r.api_key_id, "operation": r.operation,
                "status": r.status, "calls": r.calls, "latencyUsSum": r.latency_us_sum, "requestBytes": r.request_bytes,
                "responseBytes": r.response_bytes, "quotaUnits": r.quota_units,
            }))
            .await?;
        }
        if (page.len() as i64) < PAGE {
            break;
        }
    }
    w.close_array().await?;

    w.open_array("auditLog").await?;
    pages!(app, w, org, audit_log, audit_log::id, NewAudit, |a| json!({
        "id": a.id, "actorType": a.actor_type, "actorId": a.actor_id, "action": a.action, "targetType": a.target_type,
        "targetId": a.target_id, "ip": a.ip, "data": parsed(&a.data), "createdAt": time(a.created_at),
    }));
    w.close_array().await?;

    w.raw("}").await?;
    w.flush().await
}

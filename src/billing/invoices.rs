//! Invoices: finalized with a gap-free number in the transaction that writes them, immutable
//! after. At each month end a job (any node, exactly once per organization and month) closes
//! every subscription's month: the usage overage of the month that ended (in arrears, by the
//! plan's graduated tiers) and the fee of a period that begins (in advance), applying scheduled
//! downgrades and cancellations at their period end.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::metered;
use super::model::{ChargeRow, InvoiceRow, LineRow, MetricRow, SubscriptionRow};
use super::money::{self, Tier, line_amount};
use super::subscriptions::{self as subs, CANCELED, MONTHLY, SUSPENDED, cycle_label, period_for, price_of};
use crate::app::App;
use crate::auth::Principal;
use crate::error::{Error, Result};
use crate::events::PendingEvent;
use crate::limits::model::PlanRow;
use crate::pagination::{Page, PageRequest};
use crate::platform::clock::{month_of, month_start, rfc3339};
use crate::platform::db::schema::{invoice_lines, invoices, organizations, subscriptions};
use crate::platform::ids::{InvoiceId, OrgId, SubscriptionId};
use crate::{keyset_page, transaction, with_conn};

/// How long after a month ends its invoices are made: usage of the month's last seconds is in
/// the roll-ups by then on every node.
pub const CLOSE_GRACE_MS: i64 = 5 * 60 * 1000;

pub const OPEN: &str = "open";
pub const PAID: &str = "paid";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    PlanFee,
    ProrationCredit,
    ProrationCharge,
    Overage,
    Metered,
    AppFee,
    AppUsage,
}

impl LineKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LineKind::PlanFee => "plan_fee",
            LineKind::ProrationCredit => "proration_credit",
            LineKind::ProrationCharge => "proration_charge",
            LineKind::Overage => "overage",
            LineKind::Metered => "metered",
            LineKind::AppFee => "app_fee",
            LineKind::AppUsage => "app_usage",
        }
    }
}

/// A line before it belongs to an invoice.
#[derive(Debug, Clone)]
pub struct Draft {
    pub kind: LineKind,
    pub description: String,
    pub period: (i64, i64),
    pub quantity: i64,
    pub unit_price_micros: i64,
    pub amount_cents: i64,
    pub plan_id: Option<String>,
    pub app_id: Option<String>,
}

impl Draft {
    pub fn to_row(&self, invoice: &InvoiceId, position: i64) -> LineRow {
        LineRow {
            invoice_id: invoice.clone(),
            position,
            kind: self.kind.as_str().into(),
            description: self.description.clone(),
            period_start: self.period.0,
            period_end: self.period.1,
            quantity: self.quantity,
            unit_price_micros: self.unit_price_micros,
            amount_cents: self.amount_cents,
            plan_id: self.plan_id.clone(),
            app_id: self.app_id.clone(),
        }
    }
}

/// The head of an invoice being written.
pub struct NewInvoice {
    pub id: InvoiceId,
    pub kind: &'static str,
    pub period_key: Option<String>,
    pub period: (i64, i64),
    pub currency: String,
}

#[derive(Debug, Clone)]
pub struct InvoiceWithLines {
    pub invoice: InvoiceRow,
    pub lines: Vec<LineRow>,
}

/// The payload of `billing.invoice_*` events.
pub fn event_data(inv: &InvoiceRow) -> serde_json::Value {
    serde_json::json!({ "invoice": {
        "id": inv.id, "organizationId": inv.org_id, "number": inv.number.map(format_number),
        "status": inv.status.to_ascii_uppercase(), "total": inv.total_cents, "amountPaid": inv.amount_paid_cents,
        "currency": inv.currency, "periodStart": rfc3339(inv.period_start), "periodEnd": rfc3339(inv.period_end),
        "attemptCount": inv.attempt_count,
        "nextPaymentAttempt": inv.next_attempt_at.map(rfc3339),
    } })
}

/// `INV-000042`.
pub fn format_number(n: i64) -> String {
    format!("INV-{n:06}")
}

/// Inside `transaction!`: finalizes an invoice of `sub` with `lines` — the next number, OPEN and
/// due now (charged by `payments::collect_due`), or PAID at once when nothing is due or `paid`
/// (method, idempotency key, charge reference) says it was charged already. Evaluates to the
/// invoice and its events, written to the outbox.
#[macro_export]
macro_rules! write_invoice {
    ($c:expr, $app:expr, $sub:expr, $head:expr, $lines:expr, $paid:expr) => {{
        use $crate::platform::db::schema::{billing_counters, invoice_lines, invoices, payments};
        let app: &$crate::app::App = $app;
        let sub: &$crate::billing::model::SubscriptionRow = $sub;
        let head: $crate::billing::invoices::NewInvoice = $head;
        let lines: &[$crate::billing::invoices::Draft] = $lines;
        let paid: Option<(&$crate::billing::model::PaymentMethodRow, &str, &str)> = $paid;
        let now = app.clock.now_ms();
        let total: i64 = lines.iter().map(|l| l.amount_cents).sum();
        let number: i64 = diesel_async::RunQueryDsl::get_result(
            diesel::update(billing_counters::table.find("invoice_number"))
                .set(billing_counters::value.eq(billing_counters::value + 1))
                .returning(billing_counters::value),
            $c,
        )
        .await?;
        let settled = total <= 0 || paid.is_some();
        let row = $crate::billing::model::InvoiceRow {
            id: head.id.clone(),
            org_id: sub.org_id.clone(),
            subscription_id: sub.id.clone(),
            number: Some(number),
            kind: head.kind.into(),
            status: if settled { "paid" } else { "open" }.into(),
            currency: head.currency,
            period_key: head.period_key,
            period_start: head.period.0,
            period_end: head.period.1,
            total_cents: total,
            amount_paid_cents: if settled { total.max(0) } else { 0 },
            due_at: Some(now),
            attempt_count: 0,
            next_attempt_at: if settled { None } else { Some(now) },
            claimed_until: None,
            finalized_at: Some(now),
            paid_at: if settled { Some(now) } else { None },
            voided_at: None,
            created_at: now,
            updated_at: now,
        };
        diesel_async::RunQueryDsl::execute(diesel::insert_into(invoices::table).values(&row), $c).await?;
        let rows: Vec<$crate::billing::model::LineRow> =
            lines.iter().enumerate().map(|(i, l)| l.to_row(&row.id, i as i64)).collect();
        for line in &rows {
            diesel_async::RunQueryDsl::execute(diesel::insert_into(invoice_lines::table).values(line), $c).await?;
        }
        let mut events = Vec::new();
        let data = $crate::billing::invoices::event_data(&row);
        let audit = |action: &str| {
            $crate::events::NewAudit::raw(
                app,
                &row.org_id,
                "system",
                "billing",
                None,
                action,
                "invoice",
                row.id.as_str(),
                data.clone(),
            )
        };
        events.push($crate::outbox!(
            $c,
            $crate::events::PendingEvent::new(app, &row.org_id, "billing.invoice_finalized", data.clone()),
            audit("invoice.finalized")
        ));
        if let Some((method, key, charge_ref)) = paid {
            diesel_async::RunQueryDsl::execute(
                diesel::insert_into(payments::table).values($crate::billing::model::PaymentRow {
                    id: $crate::platform::ids::PaymentId::generate(now),
                    org_id: row.org_id.clone(),
                    invoice_id: row.id.clone(),
                    payment_method_id: Some(method.id.clone()),
                    amount_cents: total,
                    currency: row.currency.clone(),
                    status: "succeeded".into(),
                    failure_code: None,
                    idempotency_key: key.to_string(),
                    provider_ref: Some(charge_ref.to_string()),
                    created_at: now,
                }),
                $c,
            )
            .await?;
        }
        if settled {
            $crate::record_earnings!($c, &row, now);
            events.push($crate::outbox!(
                $c,
                $crate::events::PendingEvent::new(app, &row.org_id, "billing.invoice_paid", data.clone()),
                audit("invoice.paid")
            ));
        }
        ($crate::billing::invoices::InvoiceWithLines { invoice: row, lines: rows }, events)
    }};
}

#[derive(diesel::QueryableByName)]
struct Used {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    used: i64,
}

const USED_SQL: &str = "SELECT CAST(COALESCE(SUM(quota_units), 0) AS BIGINT) AS used FROM usage_rollups \
     WHERE granularity = 'day' AND level = 3 AND org_id = ? AND bucket_start >= ? AND bucket_start < ?";

/// The overage lines of `used` requests in a month on `plan` (none for a hard quota).
pub fn overage_lines(plan: &PlanRow, used: i64, month: (i64, i64)) -> Vec<Draft> {
    let (Some(quota), true) = (plan.monthly_quota, plan.quota_mode == "overage") else {
        return Vec::new();
    };
    let tiers: Vec<Tier> = serde_json::from_str(&plan.overage_tiers).unwrap_or_default();
    money::graduated(&tiers, quota, used)
        .into_iter()
        .map(|s| {
            let range = match s.to {
                Some(to) => format!("{}–{}", s.from + 1, to),
                None => format!("above {}", s.from),
            };
            Draft {
                kind: LineKind::Overage,
                description: format!("API requests {range} ({} plan, {} included)", plan.name, quota),
                period: month,
                quantity: s.quantity,
                unit_price_micros: s.unit_price_micros,
                amount_cents: s.amount_cents,
                plan_id: Some(plan.id.clone()),
                app_id: None,
            }
        })
        .collect()
}

/// The fee line of a period that begins on `plan`.
pub fn fee_line(plan: &PlanRow, cycle: &str, period: (i64, i64)) -> Option<Draft> {
    let price = price_of(plan, cycle).filter(|p| *p > 0)?;
    Some(Draft {
        kind: LineKind::PlanFee,
        description: format!("{} plan ({})", plan.name, cycle_label(cycle)),
        period,
        quantity: 1,
        unit_price_micros: price * money::MICROS_PER_CENT,
        amount_cents: line_amount(1, price * money::MICROS_PER_CENT),
        plan_id: Some(plan.id.clone()),
        app_id: None,
    })
}

/// What prices a month: every plan, billable metric and metric price (read once per run).
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub plans: Vec<PlanRow>,
    pub metrics: Vec<MetricRow>,
    pub charges: Vec<ChargeRow>,
}

impl Catalog {
    pub async fn load(app: &App) -> Result<Self> {
        Ok(Catalog {
            plans: crate::limits::service::list_plans(app).await?,
            metrics: metered::list_metrics(app).await?,
            charges: metered::all_charges(app).await?,
        })
    }
}

/// Closes every month of one subscription that ended before `cutoff` (a month start), one
/// invoice per month, in one transaction that re-reads the subscription under its lock: two
/// nodes closing the same subscription make one invoice, and a crash leaves nothing half done.
/// The usage of each month (metrics, apps) is read first: months that ended do not change.
/// Returns the invoices made.
pub async fn close_subscription(app: &App, catalog: &Catalog, id: &SubscriptionId, cutoff: i64) -> Result<usize> {
    let plan_list = &catalog.plans;
    let pg = app.db.is_postgres();
    let (org, from): (OrgId, i64) = with_conn!(app.db, c => {
        subscriptions::table.find(id).select((subscriptions::org_id, subscriptions::billed_through)).first(c).await?
    });
    let mut usage = std::collections::HashMap::new();
    let mut m = from;
    while m < cutoff {
        let next = month_start(m, -1);
        usage.insert(m, metered::month_usage(app, &org, m, next, &catalog.metrics, &catalog.charges).await?);
        m = next;
    }
    let plan_of = |id: &str| plan_list.iter().find(|p| p.id == id).cloned().ok_or(Error::NotFound("plan"));
    let default_plan = plan_list.iter().find(|p| p.is_default).cloned();
    let used_sql = app.db.sql(USED_SQL);
    let (made, plan_moved, events) = transaction!(app.db, c => {
        crate::lock_row!(c, pg, "subscriptions", id.as_str());
        let mut sub: SubscriptionRow = subscriptions::table.find(id).select(SubscriptionRow::as_select()).first(c).await?;
        let mut made = 0usize;
        let mut plan_moved = false;
        let mut events: Vec<PendingEvent> = Vec::new();
        while sub.billed_through < cutoff {
            let m = sub.billed_through;
            let next = month_start(m, -1);
            let used = diesel::sql_query(used_sql.as_str())
                .bind::<diesel::sql_types::Text, _>(sub.org_id.as_str())
                .bind::<diesel::sql_types::BigInt, _>(m)
                .bind::<diesel::sql_types::BigInt, _>(next)
                .get_result::<Used>(c).await?.used;
            let plan = plan_of(&sub.plan_id)?;
            let mut lines = overage_lines(&plan, used, (m, next));
            if let Some(u) = usage.get(&m) {
                lines.extend(metered::usage_lines(&plan, &catalog.charges, u, (m, next)));
            }
            let mut action = None;
            if next >= sub.current_period_end {
                // The period ends: apply what was scheduled, then renew.
                let before = (sub.plan_id.clone(), sub.billing_cycle.clone());
                if sub.cancel_at_period_end {
                    let free = default_plan.clone().ok_or(Error::NotFound("plan"))?;
                    sub.plan_id = free.id;
                    sub.billing_cycle = MONTHLY.into();
                    sub.status = CANCELED.into();
                    sub.canceled_at = Some(next);
                    action = Some("subscription.canceled");
                } else if let Some(p) = sub.scheduled_plan_id.take() {
                    sub.plan_id = p;
                    sub.billing_cycle = sub.scheduled_cycle.take().unwrap_or_else(|| MONTHLY.into());
                    action = Some("subscription.downgraded");
                }
                sub.cancel_at_period_end = false;
                sub.scheduled_plan_id = None;
                sub.scheduled_cycle = None;
                let (start, end) = period_for(&sub.billing_cycle, next);
                sub.current_period_start = start;
                sub.current_period_end = end;
                let renewed = plan_of(&sub.plan_id)?;
                lines.extend(fee_line(&renewed, &sub.billing_cycle, (start, end)));
                if (sub.plan_id.clone(), sub.billing_cycle.clone()) != before && sub.status != SUSPENDED {
                    diesel::update(organizations::table.find(&sub.org_id))
                        .set(organizations::plan_id.eq(Some(&sub.plan_id)))
                        .execute(c).await?;
                    plan_moved = true;
                }
            }
            sub.billed_through = next;
            sub.updated_at = app.clock.now_ms();
            diesel::update(subscriptions::table.find(&sub.id))
                .set((
                    subscriptions::plan_id.eq(&sub.plan_id),
                    subscriptions::billing_cycle.eq(&sub.billing_cycle),
                    subscriptions::status.eq(&sub.status),
                    subscriptions::current_period_start.eq(sub.current_period_start),
                    subscriptions::current_period_end.eq(sub.current_period_end),
                    subscriptions::cancel_at_period_end.eq(sub.cancel_at_period_end),
                    subscriptions::scheduled_plan_id.eq(&sub.scheduled_plan_id),
                    subscriptions::scheduled_cycle.eq(&sub.scheduled_cycle),
                    subscriptions::billed_through.eq(sub.billed_through),
                    subscriptions::canceled_at.eq(sub.canceled_at),
                    subscriptions::updated_at.eq(sub.updated_at),
                ))
                .execute(c).await?;
            if let Some(action) = action {
                let (event, entry) = subs::subscription_change(app, None, &sub, "billing.subscription_updated", action, serde_json::json!({}));
                events.push(crate::outbox!(c, event, entry));
            }
            let head = NewInvoice {
                id: InvoiceId::generate(app.clock.now_ms()),
                kind: "period",
                period_key: Some(month_of(m)),
                period: (m, next),
                currency: plan.currency.clone(),
            };
            let (_, more) = crate::write_invoice!(c, app, &sub, head, &lines, None);
            events.extend(more);
            made += 1;
        }
        Ok::<_, Error>((made, plan_moved, events))
    })?;
    if plan_moved {
        crate::limits::service::clear_plan_caches(app).await;
    }
    for e in events {
        e.publish(app).await;
    }
    Ok(made)
}

/// Closes every subscription whose month ended at least [`CLOSE_GRACE_MS`] ago, after giving a
/// subscription to every organization without one. Any node may run it at any time.
pub async fn close_periods(app: &App) -> Result<usize> {
    let now = app.clock.now_ms();
    let cutoff = month_start(now - CLOSE_GRACE_MS, 0);
    backfill(app).await?;
    let catalog = Catalog::load(app).await?;
    let mut made = 0;
    let mut after = String::new();
    loop {
        let batch: Vec<SubscriptionId> = with_conn!(app.db, c => {
            subscriptions::table
                .filter(subscriptions::billed_through.lt(cutoff))
                // A deleted organization's subscription ends canceled after its last month.
                .filter(diesel::dsl::sql::<diesel::sql_types::Bool>(
                    "(status <> 'canceled' OR org_id NOT IN (SELECT id FROM organizations WHERE deleted_at IS NOT NULL))",
                ))
                .filter(subscriptions::id.gt(&after))
                .order(subscriptions::id.asc())
                .select(subscriptions::id)
                .limit(500)
                .load(c).await?
        });
        let Some(last) = batch.last() else { break };
        after = last.to_string();
        for id in &batch {
            made += close_subscription(app, &catalog, id, cutoff).await?;
        }
    }
    Ok(made)
}

#[derive(diesel::QueryableByName)]
struct Missing {
    #[diesel(sql_type = diesel::sql_types::Text)]
    id: String,
}

/// Subscriptions for organizations made before billing existed.
async fn backfill(app: &App) -> Result<()> {
    let missing: Vec<Missing> = with_conn!(app.db, c => {
        diesel::sql_query("SELECT o.id AS id FROM organizations o LEFT JOIN subscriptions s ON s.org_id = o.id WHERE s.id IS NULL LIMIT 1000")
            .load::<Missing>(c).await?
    });
    for m in missing {
        if let Ok(org) = m.id.parse() {
            subs::ensure(app, &org).await?;
        }
    }
    Ok(())
}

/// One invoice of the caller's organization (`billing:read`).
pub async fn get(app: &App, principal: &Principal, id: &str) -> Result<InvoiceWithLines> {
    principal.require_scope("billing:read")?;
    let id: InvoiceId = id.parse().map_err(|_| Error::NotFound("invoice"))?;
    let org = principal.org_id.clone();
    with_conn!(app.db, c => {
        let invoice: InvoiceRow = invoices::table.find(&id).filter(invoices::org_id.eq(&org)).select(InvoiceRow::as_select()).first(c).await.optional()?
            .ok_or(Error::NotFound("invoice"))?;
        let lines: Vec<LineRow> = invoice_lines::table.filter(invoice_lines::invoice_id.eq(&id)).order(invoice_lines::position.asc()).select(LineRow::as_select()).load(c).await?;
        Ok::<_, Error>(InvoiceWithLines { invoice, lines })
    })
}

/// The lines of an invoice.
pub async fn lines_of(app: &App, id: &InvoiceId) -> Result<Vec<LineRow>> {
    Ok(with_conn!(app.db, c => {
        invoice_lines::table.filter(invoice_lines::invoice_id.eq(id)).order(invoice_lines::position.asc()).select(LineRow::as_select()).load(c).await?
    }))
}

/// The caller's organization's invoices, newest first, optionally of one status (`billing:read`).
pub async fn list(
    app: &App,
    principal: &Principal,
    status: Option<&str>,
    page: &PageRequest,
) -> Result<Page<InvoiceRow>> {
    principal.require_scope("billing:read")?;
    let org = principal.org_id.clone();
    let status = status.map(str::to_string);
    macro_rules! base {
        () => {{
            let mut q = invoices::table.filter(invoices::org_id.eq(&org)).into_boxed();
            if let Some(s) = &status {
                q = q.filter(invoices::status.eq(s));
            }
            q
        }};
    }
    let (rows, total) = with_conn!(app.db, c => keyset_page!(c, base!(), invoices::id, InvoiceRow, page));
    Ok(Page::from_rows(rows, page, total))
}

/// The running month's invoice so far and where it is heading.
pub struct Upcoming {
    pub period: (i64, i64),
    pub currency: String,
    /// What the month's invoice holds if it closed now (with the fee of a period that begins at
    /// its end).
    pub lines: Vec<Draft>,
    /// The same at the pace of the month so far, projected to its end.
    pub forecast: Vec<Draft>,
}

/// The caller's organization's running month (`billing:read`): its lines so far — request
/// overage, metrics, apps, the next period's fee — and the forecast at the pace so far.
pub async fn upcoming(app: &App, principal: &Principal) -> Result<Upcoming> {
    let sub = subs::get(app, principal).await?;
    let catalog = Catalog::load(app).await?;
    let now = app.clock.now_ms();
    let (m, next) = (month_start(now, 0), month_start(now, -1));
    let plan = catalog.plans.iter().find(|p| p.id == sub.plan_id).cloned().ok_or(Error::NotFound("plan"))?;
    let used_sql = app.db.sql(USED_SQL);
    let used = with_conn!(app.db, c => {
        diesel::sql_query(used_sql.as_str())
            .bind::<diesel::sql_types::Text, _>(sub.org_id.as_str())
            .bind::<diesel::sql_types::BigInt, _>(m)
            .bind::<diesel::sql_types::BigInt, _>(next)
            .get_result::<Used>(c).await?.used
    });
    let usage = metered::month_usage(app, &sub.org_id, m, now.max(m + 1), &catalog.metrics, &catalog.charges).await?;
    // Linear at the pace so far (at least an hour of it); MAX and UNIQUE_COUNT stay as they are;
    // an app installed now stays installed to the month end.
    let (elapsed, total) = ((now - m).max(3_600_000) as i128, (next - m) as i128);
    let project = |n: i64| ((n as i128 * total) / elapsed).min(i64::MAX as i128) as i64;
    let mut projected = usage.clone();
    for (metric, value) in &mut projected.metrics {
        if matches!(metric.aggregation.as_str(), "count" | "sum") {
            *value = project(*value);
        }
    }
    for a in &mut projected.apps {
        a.calls = project(a.calls);
        if a.installed_at_end {
            a.installed_ms = (a.installed_ms + (next - now)).min(next - m);
        }
    }
    let fee = if next >= sub.current_period_end && !sub.cancel_at_period_end {
        let renew = sub.scheduled_plan_id.as_deref().unwrap_or(&sub.plan_id);
        let cycle = sub.scheduled_cycle.as_deref().unwrap_or(&sub.billing_cycle);
        catalog.plans.iter().find(|p| p.id == renew).and_then(|p| fee_line(p, cycle, period_for(cycle, next)))
    } else {
        None
    };
    let mut lines = overage_lines(&plan, used, (m, next));
    lines.extend(metered::usage_lines(&plan, &catalog.charges, &usage, (m, next)));
    lines.extend(fee.clone());
    let mut forecast = overage_lines(&plan, project(used), (m, next));
    forecast.extend(metered::usage_lines(&plan, &catalog.charges, &projected, (m, next)));
    forecast.extend(fee);
    Ok(Upcoming { period: (m, next), currency: plan.currency.clone(), lines, forecast })
}

pub const VOID: &str = "void";
pub const UNCOLLECTIBLE: &str = "uncollectible";

/// Ends an OPEN invoice without payment (platform administrators): VOID forgives it — the
/// subscription is in good standing again once nothing else is open — and UNCOLLECTIBLE stops
/// its retries and leaves the subscription as it stands. Either is final and audited.
pub async fn close_unpaid(app: &App, principal: &Principal, id: &str, status: &'static str) -> Result<InvoiceRow> {
    if !principal.is_platform_admin() {
        return Err(Error::forbidden("only a platform administrator may void an invoice or mark it uncollectible"));
    }
    let id: InvoiceId = id.parse().map_err(|_| Error::NotFound("invoice"))?;
    let now = app.clock.now_ms();
    let pg = app.db.is_postgres();
    let (inv, moved) = transaction!(app.db, c => {
        crate::lock_row!(c, pg, "invoices", id.as_str());
        let cur: InvoiceRow = invoices::table.find(&id).select(InvoiceRow::as_select()).first(c).await.optional()?
            .ok_or(Error::NotFound("invoice"))?;
        if cur.status != OPEN {
            return Err(Error::Conflict(format!("the invoice is {}: only an OPEN invoice can be closed unpaid", cur.status.to_ascii_uppercase())));
        }
        let inv: InvoiceRow = diesel::update(invoices::table.find(&id))
            .set((invoices::status.eq(status), invoices::next_attempt_at.eq(None::<i64>), invoices::claimed_until.eq(None::<i64>), invoices::voided_at.eq(Some(now)), invoices::updated_at.eq(now)))
            .returning(InvoiceRow::as_returning()).get_result(c).await?;
        let data = event_data(&inv);
        crate::audit!(c, crate::events::NewAudit::raw(app, &inv.org_id, principal.actor_type(), &principal.actor_id(), principal.ip, &format!("invoice.{status}"), "invoice", inv.id.as_str(), data));
        let mut moved = false;
        if status == VOID {
            let open: i64 = invoices::table.filter(invoices::org_id.eq(&inv.org_id)).filter(invoices::status.eq(OPEN)).count().get_result(c).await?;
            let sub: SubscriptionRow = subscriptions::table.find(&inv.subscription_id).select(SubscriptionRow::as_select()).first(c).await?;
            if open == 0 && matches!(sub.status.as_str(), subs::PAST_DUE | SUSPENDED) {
                diesel::update(subscriptions::table.find(&sub.id)).set((subscriptions::status.eq(subs::ACTIVE), subscriptions::updated_at.eq(now))).execute(c).await?;
                diesel::update(organizations::table.find(&sub.org_id)).set(organizations::plan_id.eq(Some(&sub.plan_id))).execute(c).await?;
                moved = true;
            }
        }
        Ok::<_, Error>((inv, moved))
    })?;
    if moved {
        crate::limits::service::clear_plan_caches(app).await;
    }
    Ok(inv)
}

//! Subscriptions: one per organization, its plan and cycle, and changes to them. An upgrade
//! takes effect at once with proration to the second, invoiced and charged at once; a downgrade
//! or a cancellation waits for the period end (the scheduled change) and can be undone until then.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::invoices::{self, Draft, InvoiceWithLines, LineKind};
use super::model::SubscriptionRow;
use super::money::{change_lines, cross_period_lines, line_amount};
use super::payments;
use crate::app::App;
use crate::auth::Principal;
use crate::error::{Error, Result};
use crate::events::{NewAudit, PendingEvent};
use crate::limits::model::PlanRow;
use crate::platform::clock::{month_start, rfc3339};
use crate::platform::db::schema::{organizations, plans, subscriptions};
use crate::platform::ids::{InvoiceId, OrgId, PlanId, SubscriptionId};
use crate::{transaction, with_conn};

pub const ACTIVE: &str = "active";
pub const PAST_DUE: &str = "past_due";
pub const CANCELED: &str = "canceled";
pub const SUSPENDED: &str = "suspended";
pub const MONTHLY: &str = "monthly";
pub const ANNUAL: &str = "annual";

/// The period of a cycle that holds `at`: from the start of its UTC month, one or twelve months.
pub fn period_for(cycle: &str, at: i64) -> (i64, i64) {
    let months = if cycle == ANNUAL { 12 } else { 1 };
    (month_start(at, 0), month_start(at, -months))
}

/// What a plan costs per period of a cycle (None: custom pricing).
pub fn price_of(plan: &PlanRow, cycle: &str) -> Option<i64> {
    if cycle == ANNUAL { plan.annual_price_cents } else { plan.price_cents }
}

/// A plan's price over a year on a cycle: how plans and cycles are compared.
fn yearly(plan: &PlanRow, cycle: &str) -> Option<i64> {
    if cycle == ANNUAL { plan.annual_price_cents } else { plan.price_cents.map(|p| p * 12) }
}

pub fn cycle_label(cycle: &str) -> &'static str {
    if cycle == ANNUAL { "annual" } else { "monthly" }
}

/// A fresh subscription: the plan the organization is served with, monthly, from this month
/// (whose fee, if any, is taken as settled).
pub fn new_row(org: &OrgId, plan_id: &str, now: i64) -> SubscriptionRow {
    let (start, end) = period_for(MONTHLY, now);
    SubscriptionRow {
        id: SubscriptionId::generate(now),
        org_id: org.clone(),
        plan_id: plan_id.to_string(),
        status: ACTIVE.into(),
        billing_cycle: MONTHLY.into(),
        current_period_start: start,
        current_period_end: end,
        cancel_at_period_end: false,
        scheduled_plan_id: None,
        scheduled_cycle: None,
        billed_through: start,
        canceled_at: None,
        created_at: now,
        updated_at: now,
        spend_cap_cents: None,
    }
}

/// Inside a transaction: gives `org` its subscription on the default plan (organization creation).
#[macro_export]
macro_rules! insert_default_subscription {
    ($c:expr, $org:expr, $now:expr) => {{
        let plan: String = diesel_async::RunQueryDsl::get_result(
            diesel::QueryDsl::select(
                diesel::QueryDsl::filter(
                    $crate::platform::db::schema::plans::table,
                    diesel::ExpressionMethods::eq($crate::platform::db::schema::plans::is_default, true),
                ),
                $crate::platform::db::schema::plans::id,
            ),
            $c,
        )
        .await?;
        diesel_async::RunQueryDsl::execute(
            diesel::insert_into($crate::platform::db::schema::subscriptions::table)
                .values($crate::billing::subscriptions::new_row($org, &plan, $now))
                .on_conflict_do_nothing(),
            $c,
        )
        .await?;
    }};
}

pub async fn load_plan(app: &App, id: &str) -> Result<PlanRow> {
    with_conn!(app.db, c => plans::table.find(id).select(PlanRow::as_select()).first(c).await.optional()?)
        .ok_or(Error::NotFound("plan"))
}

/// The organization's subscription, created on first sight for an organization that has none
/// (one made before billing existed): on the plan it is served with.
pub async fn ensure(app: &App, org: &OrgId) -> Result<SubscriptionRow> {
    let found: Option<SubscriptionRow> = with_conn!(app.db, c => {
        subscriptions::table.filter(subscriptions::org_id.eq(org)).select(SubscriptionRow::as_select()).first(c).await.optional()?
    });
    if let Some(s) = found {
        return Ok(s);
    }
    let plan = crate::limits::service::plan_for_org(app, org).await?;
    let row = new_row(org, &plan.id, app.clock.now_ms());
    with_conn!(app.db, c => {
        diesel::insert_into(subscriptions::table).values(&row).on_conflict_do_nothing().execute(c).await?;
        Ok::<_, Error>(subscriptions::table.filter(subscriptions::org_id.eq(org)).select(SubscriptionRow::as_select()).first(c).await?)
    })
}

/// The caller's organization's subscription (`billing:read`).
pub async fn get(app: &App, principal: &Principal) -> Result<SubscriptionRow> {
    principal.require_scope("billing:read")?;
    let sub = ensure(app, &principal.org_id).await?;
    // A period that ended but is not closed yet is closed first, so what is shown is current.
    if sub.current_period_end <= app.clock.now_ms() {
        let catalog = invoices::Catalog::load(app).await?;
        invoices::close_subscription(app, &catalog, &sub.id, month_start(app.clock.now_ms(), 0)).await?;
        return ensure(app, &principal.org_id).await;
    }
    Ok(sub)
}

/// What a change would do.
pub enum Change {
    /// Takes effect now: these lines are invoiced and charged at once.
    Immediate { lines: Vec<Draft>, period: (i64, i64) },
    /// Takes effect at the period end.
    AtPeriodEnd { at: i64 },
    /// Undoes the scheduled change: the subscription stays as it is.
    Unschedule,
}

pub struct Preview {
    /// The subscription as it was when the preview was made.
    pub from: SubscriptionRow,
    pub plan: PlanRow,
    pub cycle: String,
    pub change: Change,
}

impl Preview {
    pub fn total(&self) -> i64 {
        match &self.change {
            Change::Immediate { lines, .. } => lines.iter().map(|l| l.amount_cents).sum(),
            _ => 0,
        }
    }
}

fn parse_cycle(cycle: &str) -> Result<&'static str> {
    match cycle {
        MONTHLY => Ok(MONTHLY),
        ANNUAL => Ok(ANNUAL),
        _ => Err(Error::bad_input("billingCycle", "MONTHLY or ANNUAL")),
    }
}

/// The effect of moving `sub` to `plan` on `cycle` at `now`.
fn plan_change(sub: &SubscriptionRow, cur: &PlanRow, plan: PlanRow, cycle: &str, now: i64) -> Result<Preview> {
    let Some(new_price) = price_of(&plan, cycle) else {
        return Err(Error::bad_input(
            "planId",
            format!(
                "the {} plan has custom pricing and is not available {}: contact sales",
                plan.name,
                cycle_label(cycle)
            ),
        ));
    };
    if matches!(sub.status.as_str(), PAST_DUE | SUSPENDED) {
        return Err(Error::Conflict(format!(
            "the subscription is {}: pay the open invoice (payInvoice) before changing plans",
            sub.status.to_ascii_uppercase()
        )));
    }
    let same = plan.id == sub.plan_id && cycle == sub.billing_cycle;
    if same {
        if sub.scheduled_plan_id.is_some() || sub.cancel_at_period_end {
            return Ok(Preview { from: sub.clone(), plan, cycle: cycle.into(), change: Change::Unschedule });
        }
        if sub.status != CANCELED {
            return Err(Error::Conflict(format!(
                "the organization is already on the {} plan, {}",
                plan.name,
                cycle_label(cycle)
            )));
        }
    }
    let cur_yearly = yearly(cur, &sub.billing_cycle).unwrap_or(0);
    let new_yearly = yearly(&plan, cycle).unwrap_or(0);
    let upgrade = new_yearly > cur_yearly
        || (new_yearly == cur_yearly && sub.billing_cycle == MONTHLY && cycle == ANNUAL && new_yearly > 0);
    if !upgrade {
        return Ok(Preview {
            from: sub.clone(),
            plan,
            cycle: cycle.into(),
            change: Change::AtPeriodEnd { at: sub.current_period_end },
        });
    }
    let paid = price_of(cur, &sub.billing_cycle).unwrap_or(0);
    let (start, end) = (sub.current_period_start, sub.current_period_end);
    let (period, (credit, charge)) = if cycle == sub.billing_cycle {
        ((start, end), change_lines(paid, new_price, start, end, now))
    } else {
        let new = period_for(cycle, now);
        (new, cross_period_lines(paid, (start, end), new_price, new, now))
    };
    let mut lines = Vec::new();
    if credit != 0 {
        lines.push(Draft {
            kind: LineKind::ProrationCredit,
            description: format!(
                "Unused time on {} ({}) after {}",
                cur.name,
                cycle_label(&sub.billing_cycle),
                rfc3339(now)
            ),
            period: (now, end),
            quantity: 1,
            unit_price_micros: credit,
            amount_cents: line_amount(1, credit),
            plan_id: Some(cur.id.clone()),
            app_id: None,
        });
    }
    lines.push(Draft {
        kind: LineKind::ProrationCharge,
        description: format!("Remaining time on {} ({}) from {}", plan.name, cycle_label(cycle), rfc3339(now)),
        period: (now, period.1),
        quantity: 1,
        unit_price_micros: charge,
        amount_cents: line_amount(1, charge),
        plan_id: Some(plan.id.clone()),
        app_id: None,
    });
    Ok(Preview { from: sub.clone(), plan, cycle: cycle.into(), change: Change::Immediate { lines, period } })
}

async fn current(app: &App, principal: &Principal) -> Result<(SubscriptionRow, PlanRow)> {
    let sub = get(app, principal).await?;
    let cur = load_plan(app, &sub.plan_id).await?;
    Ok((sub, cur))
}

fn parse_plan(id: &str) -> Result<PlanId> {
    id.parse().map_err(|_| Error::bad_input("planId", "no such plan"))
}

/// What `change` would do, without doing it (`billing:read`).
pub async fn preview(app: &App, principal: &Principal, plan_id: &str, cycle: &str) -> Result<Preview> {
    let cycle = parse_cycle(cycle)?;
    let (sub, cur) = current(app, principal).await?;
    let plan =
        load_plan(app, parse_plan(plan_id)?.as_str()).await.map_err(|_| Error::bad_input("planId", "no such plan"))?;
    plan_change(&sub, &cur, plan, cycle, app.clock.now_ms())
}

/// Changes the plan or cycle (`billing:write`). An upgrade charges the default payment method at
/// once and changes nothing when the charge fails; a downgrade is scheduled for the period end.
pub async fn change(
    app: &App,
    principal: &Principal,
    plan_id: &str,
    cycle: &str,
) -> Result<(SubscriptionRow, Option<InvoiceWithLines>)> {
    principal.require_scope("billing:write")?;
    let preview = preview(app, principal, plan_id, cycle).await?;
    let org = principal.org_id.clone();
    let now = app.clock.now_ms();
    let pg = app.db.is_postgres();
    match preview.change {
        Change::Unschedule => Ok((resume(app, principal).await?, None)),
        Change::AtPeriodEnd { .. } => {
            let (plan, cycle) = (preview.plan.id.clone(), preview.cycle.clone());
            let (sub, event) = transaction!(app.db, c => {
                let sub: SubscriptionRow = subscriptions::table.filter(subscriptions::org_id.eq(&org)).select(SubscriptionRow::as_select()).first(c).await?;
                crate::lock_row!(c, pg, "subscriptions", sub.id.as_str());
                let sub: SubscriptionRow = diesel::update(subscriptions::table.find(&sub.id))
                    .set((subscriptions::scheduled_plan_id.eq(Some(&plan)), subscriptions::scheduled_cycle.eq(Some(&cycle)), subscriptions::cancel_at_period_end.eq(false), subscriptions::updated_at.eq(now)))
                    .returning(SubscriptionRow::as_returning()).get_result(c).await?;
                let data = serde_json::json!({ "scheduledPlanId": plan, "scheduledBillingCycle": cycle.to_ascii_uppercase(), "effectiveAt": rfc3339(sub.current_period_end) });
                let (event, entry) = subscription_change(app, Some(principal), &sub, "billing.subscription_updated", "subscription.change_scheduled", data);
                Ok::<_, Error>((sub, crate::outbox!(c, event, entry)))
            })?;
            event.publish(app).await;
            Ok((sub, None))
        }
        Change::Immediate { lines, period } => {
            let total: i64 = lines.iter().map(|l| l.amount_cents).sum();
            let invoice_id = InvoiceId::generate(now);
            // The charge comes first: when it fails, nothing changes.
            let paid = if total > 0 {
                let method = payments::default_method(app, &org).await?.ok_or_else(|| {
                    Error::Conflict(
                        "an upgrade is charged at once: add a payment method first (addPaymentMethod)".into(),
                    )
                })?;
                let key = format!("{invoice_id}:1:{}", method.id);
                match app.payments.charge(&method.provider_ref, total, &preview.plan.currency, &key).await {
                    super::provider::ChargeOutcome::Succeeded { charge_ref } => Some((method, key, charge_ref)),
                    super::provider::ChargeOutcome::Failed { code } => {
                        return Err(Error::Conflict(format!(
                            "the payment method {} •••• {} was refused ({code}): the plan did not change; use another card",
                            method.brand, method.last4
                        )));
                    }
                }
            } else {
                None
            };
            let (plan, cycle) = (preview.plan.clone(), preview.cycle.clone());
            let charge_ref = paid.as_ref().map(|p| p.2.clone());
            let result = transaction!(app.db, c => {
                let sub: SubscriptionRow = subscriptions::table.filter(subscriptions::org_id.eq(&org)).select(SubscriptionRow::as_select()).first(c).await?;
                crate::lock_row!(c, pg, "subscriptions", sub.id.as_str());
                let before: SubscriptionRow = subscriptions::table.find(&sub.id).select(SubscriptionRow::as_select()).first(c).await?;
                let from = &preview.from;
                if (&before.plan_id, &before.billing_cycle, before.updated_at) != (&from.plan_id, &from.billing_cycle, from.updated_at) {
                    return Err(Error::Conflict("the subscription changed meanwhile: preview the change again".into()));
                }
                let sub: SubscriptionRow = diesel::update(subscriptions::table.find(&sub.id))
                    .set((
                        subscriptions::plan_id.eq(&plan.id),
                        subscriptions::billing_cycle.eq(&cycle),
                        subscriptions::status.eq(ACTIVE),
                        subscriptions::current_period_start.eq(period.0),
                        subscriptions::current_period_end.eq(period.1),
                        subscriptions::cancel_at_period_end.eq(false),
                        subscriptions::scheduled_plan_id.eq(None::<String>),
                        subscriptions::scheduled_cycle.eq(None::<String>),
                        subscriptions::canceled_at.eq(None::<i64>),
                        subscriptions::updated_at.eq(now),
                    ))
                    .returning(SubscriptionRow::as_returning()).get_result(c).await?;
                diesel::update(organizations::table.find(&org)).set((organizations::plan_id.eq(Some(&plan.id)), organizations::updated_at.eq(now))).execute(c).await?;
                let head = invoices::NewInvoice { id: invoice_id.clone(), kind: "proration", period_key: None, period: (now, period.1), currency: plan.currency.clone() };
                let (invoice, mut events) = crate::write_invoice!(c, app, &sub, head, &lines, paid.as_ref().map(|(m, k, r)| (m, k.as_str(), r.as_str())));
                let data = serde_json::json!({ "previousPlanId": before.plan_id, "previousBillingCycle": before.billing_cycle.to_ascii_uppercase(), "invoiceId": invoice.invoice.id });
                let (event, entry) = subscription_change(app, Some(principal), &sub, "billing.subscription_updated", "subscription.upgraded", data);
                events.insert(0, crate::outbox!(c, event, entry));
                Ok::<_, Error>((sub, invoice, events))
            });
            let (sub, invoice, events) = match result {
                Ok(v) => v,
                Err(e) => {
                    // Nothing was written: give the money back.
                    if let Some(r) = &charge_ref {
                        app.payments.refund(r).await;
                    }
                    return Err(e);
                }
            };
            crate::limits::service::clear_plan_caches(app).await;
            for e in events {
                e.publish(app).await;
            }
            Ok((sub, Some(invoice)))
        }
    }
}

/// Ends the subscription at the period end, on the default (free) plan (`billing:write`).
pub async fn cancel(app: &App, principal: &Principal) -> Result<SubscriptionRow> {
    principal.require_scope("billing:write")?;
    let sub = get(app, principal).await?;
    if sub.status == CANCELED {
        return Err(Error::Conflict("the subscription is already canceled".into()));
    }
    if sub.cancel_at_period_end {
        return Err(Error::Conflict(format!("the subscription already ends at {}", rfc3339(sub.current_period_end))));
    }
    set_schedule(app, principal, &sub, true, "subscription.cancel_scheduled").await
}

/// Undoes a scheduled downgrade or cancellation (`billing:write`).
pub async fn resume(app: &App, principal: &Principal) -> Result<SubscriptionRow> {
    principal.require_scope("billing:write")?;
    let sub = get(app, principal).await?;
    if !sub.cancel_at_period_end && sub.scheduled_plan_id.is_none() {
        return Err(Error::Conflict("nothing is scheduled: the subscription renews as it is".into()));
    }
    set_schedule(app, principal, &sub, false, "subscription.resumed").await
}

async fn set_schedule(
    app: &App,
    principal: &Principal,
    sub: &SubscriptionRow,
    cancel: bool,
    action: &str,
) -> Result<SubscriptionRow> {
    let now = app.clock.now_ms();
    let pg = app.db.is_postgres();
    let (sub, event) = transaction!(app.db, c => {
        crate::lock_row!(c, pg, "subscriptions", sub.id.as_str());
        let sub: SubscriptionRow = diesel::update(subscriptions::table.find(&sub.id))
            .set((subscriptions::cancel_at_period_end.eq(cancel), subscriptions::scheduled_plan_id.eq(None::<String>), subscriptions::scheduled_cycle.eq(None::<String>), subscriptions::updated_at.eq(now)))
            .returning(SubscriptionRow::as_returning()).get_result(c).await?;
        let (event, entry) = subscription_change(app, Some(principal), &sub, "billing.subscription_updated", action, serde_json::json!({}));
        Ok::<_, Error>((sub, crate::outbox!(c, event, entry)))
    })?;
    event.publish(app).await;
    Ok(sub)
}

/// Sets (or with `None` removes) the most the organization pays for request overage in a month,
/// in minor units (`billing:write`). Reaching it stops an overage plan's requests as a hard quota
/// does, on every node at once; a hard plan is not affected.
pub async fn set_spend_cap(app: &App, principal: &Principal, cap: Option<i64>) -> Result<SubscriptionRow> {
    principal.require_scope("billing:write")?;
    if cap.is_some_and(|c| c < 0) {
        return Err(Error::bad_input("amount", "a spend cap must not be negative"));
    }
    let sub = get(app, principal).await?;
    let now = app.clock.now_ms();
    let pg = app.db.is_postgres();
    let (sub, event) = transaction!(app.db, c => {
        crate::lock_row!(c, pg, "subscriptions", sub.id.as_str());
        let sub: SubscriptionRow = diesel::update(subscriptions::table.find(&sub.id))
            .set((subscriptions::spend_cap_cents.eq(cap), subscriptions::updated_at.eq(now)))
            .returning(SubscriptionRow::as_returning()).get_result(c).await?;
        let action = if cap.is_some() { "subscription.spend_cap_set" } else { "subscription.spend_cap_removed" };
        let (event, entry) = subscription_change(app, Some(principal), &sub, "billing.subscription_updated", action, serde_json::json!({}));
        Ok::<_, Error>((sub, crate::outbox!(c, event, entry)))
    })?;
    crate::limits::service::clear_plan_caches(app).await;
    event.publish(app).await;
    Ok(sub)
}

/// The payload of `billing.subscription_*` events.
pub fn event_data(sub: &SubscriptionRow) -> serde_json::Value {
    serde_json::json!({ "subscription": {
        "id": sub.id, "organizationId": sub.org_id, "planId": sub.plan_id,
        "status": sub.status.to_ascii_uppercase(), "billingCycle": sub.billing_cycle.to_ascii_uppercase(),
        "currentPeriodStart": rfc3339(sub.current_period_start), "currentPeriodEnd": rfc3339(sub.current_period_end),
        "cancelAtPeriodEnd": sub.cancel_at_period_end, "scheduledPlanId": sub.scheduled_plan_id,
        "spendCap": sub.spend_cap_cents,
    } })
}

/// The event and audit entry of a subscription change; `principal` None is the billing job.
pub fn subscription_change(
    app: &App,
    principal: Option<&Principal>,
    sub: &SubscriptionRow,
    event_type: &str,
    action: &str,
    extra: serde_json::Value,
) -> (PendingEvent, NewAudit) {
    let mut data = event_data(sub);
    data["action"] = serde_json::json!(action);
    if let Some(obj) = extra.as_object() {
        for (k, v) in obj {
            data[k] = v.clone();
        }
    }
    let event = PendingEvent::new(app, &sub.org_id, event_type, data.clone());
    let (actor_type, actor_id, ip) = match principal {
        Some(p) => (p.actor_type(), p.actor_id(), p.ip),
        None => ("system", "billing".to_string(), None),
    };
    let entry =
        NewAudit::raw(app, &sub.org_id, actor_type, &actor_id, ip, action, "subscription", sub.id.as_str(), data);
    (event, entry)
}

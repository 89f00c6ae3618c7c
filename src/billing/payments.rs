//! Payment methods and charges: the default method of an organization is charged for each
//! finalized invoice; a failure is retried on the configured schedule (3, 5 and 7 days by
//! default), and after the last one the subscription is SUSPENDED and the organization served
//! with the default plan's limits until the invoice is paid, which restores its plan at once.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::invoices::{self as invoice_svc, OPEN, PAID};
use super::model::{InvoiceRow, PaymentMethodRow, PaymentRow, SubscriptionRow};
use super::provider::{CardInput, ChargeOutcome};
use super::subscriptions::{self as subs, ACTIVE, PAST_DUE, SUSPENDED};
use crate::app::App;
use crate::auth::Principal;
use crate::error::{Error, Result};
use crate::events::{NewAudit, PendingEvent};
use crate::platform::db::schema::{invoices, organizations, payment_methods, payments, plans, subscriptions};
use crate::platform::ids::{InvoiceId, OrgId, PaymentId, PaymentMethodId};
use crate::{transaction, with_conn};

/// How long a node holds an invoice it is charging.
const CLAIM_MS: i64 = 60_000;
/// Payment methods an organization may keep.
pub const MAX_METHODS: i64 = 10;
const DAY_MS: i64 = 86_400_000;

pub async fn list_methods(app: &App, principal: &Principal) -> Result<Vec<PaymentMethodRow>> {
    principal.require_scope("billing:read")?;
    let org = principal.org_id.clone();
    Ok(with_conn!(app.db, c => {
        payment_methods::table.filter(payment_methods::org_id.eq(&org)).filter(payment_methods::removed_at.is_null())
            .order(payment_methods::id.desc()).select(PaymentMethodRow::as_select()).load(c).await?
    }))
}

pub async fn default_method(app: &App, org: &OrgId) -> Result<Option<PaymentMethodRow>> {
    Ok(with_conn!(app.db, c => {
        payment_methods::table.filter(payment_methods::org_id.eq(org)).filter(payment_methods::removed_at.is_null())
            .filter(payment_methods::is_default.eq(true)).select(PaymentMethodRow::as_select()).first(c).await.optional()?
    }))
}

async fn method_of(app: &App, org: &OrgId, id: &str) -> Result<PaymentMethodRow> {
    let id: PaymentMethodId = id.parse().map_err(|_| Error::NotFound("payment method"))?;
    with_conn!(app.db, c => {
        payment_methods::table.find(&id).filter(payment_methods::org_id.eq(org)).filter(payment_methods::removed_at.is_null())
            .select(PaymentMethodRow::as_select()).first(c).await.optional()?
    })
    .ok_or(Error::NotFound("payment method"))
}

fn today(app: &App) -> (i64, i64) {
    use chrono::Datelike;
    let d = chrono::DateTime::from_timestamp_millis(app.clock.now_ms()).unwrap_or_default();
    (i64::from(d.year()), i64::from(d.month()))
}

fn audit(app: &App, principal: &Principal, action: &str, m: &PaymentMethodRow) -> NewAudit {
    let data = serde_json::json!({ "brand": m.brand, "last4": m.last4, "isDefault": m.is_default });
    NewAudit::raw(
        app,
        &m.org_id,
        principal.actor_type(),
        &principal.actor_id(),
        principal.ip,
        action,
        "payment_method",
        m.id.as_str(),
        data,
    )
}

/// Attaches a card through the provider; the first one, or one with `make_default`, becomes the
/// default (`billing:write`). Only brand, last four digits and expiry are kept.
pub async fn add_method(
    app: &App,
    principal: &Principal,
    card: CardInput,
    make_default: bool,
) -> Result<PaymentMethodRow> {
    principal.require_scope("billing:write")?;
    let org = principal.org_id.clone();
    let count: i64 = with_conn!(app.db, c => {
        payment_methods::table.filter(payment_methods::org_id.eq(&org)).filter(payment_methods::removed_at.is_null()).count().get_result(c).await?
    });
    if count >= MAX_METHODS {
        return Err(Error::Conflict(format!(
            "an organization keeps at most {MAX_METHODS} payment methods: remove one first"
        )));
    }
    let attached = app
        .payments
        .attach(&card, today(app))
        .await
        .map_err(|r| Error::bad_input(format!("card.{}", r.field), r.message))?;
    let now = app.clock.now_ms();
    let row = PaymentMethodRow {
        id: PaymentMethodId::generate(now),
        org_id: org.clone(),
        brand: attached.brand,
        last4: attached.last4,
        exp_month: attached.exp_month,
        exp_year: attached.exp_year,
        provider_ref: attached.provider_ref,
        is_default: make_default || count == 0,
        created_at: now,
        removed_at: None,
    };
    transaction!(app.db, c => {
        if row.is_default {
            diesel::update(payment_methods::table.filter(payment_methods::org_id.eq(&org))).set(payment_methods::is_default.eq(false)).execute(c).await?;
        }
        diesel::insert_into(payment_methods::table).values(&row).execute(c).await?;
        crate::audit!(c, audit(app, principal, "payment_method.added", &row));
        Ok::<_, Error>(())
    })?;
    Ok(row)
}

/// Makes a method the default (`billing:write`).
pub async fn set_default(app: &App, principal: &Principal, id: &str) -> Result<PaymentMethodRow> {
    principal.require_scope("billing:write")?;
    let org = principal.org_id.clone();
    let mut m = method_of(app, &org, id).await?;
    transaction!(app.db, c => {
        diesel::update(payment_methods::table.filter(payment_methods::org_id.eq(&org))).set(payment_methods::is_default.eq(false)).execute(c).await?;
        diesel::update(payment_methods::table.find(&m.id)).set(payment_methods::is_default.eq(true)).execute(c).await?;
        m.is_default = true;
        crate::audit!(c, audit(app, principal, "payment_method.default_set", &m));
        Ok::<_, Error>(())
    })?;
    Ok(m)
}

/// Removes a method (`billing:write`); when it was the default, the newest other one becomes it.
pub async fn remove_method(app: &App, principal: &Principal, id: &str) -> Result<PaymentMethodId> {
    principal.require_scope("billing:write")?;
    let org = principal.org_id.clone();
    let m = method_of(app, &org, id).await?;
    let now = app.clock.now_ms();
    transaction!(app.db, c => {
        diesel::update(payment_methods::table.find(&m.id)).set((payment_methods::removed_at.eq(now), payment_methods::is_default.eq(false))).execute(c).await?;
        if m.is_default {
            let next: Option<PaymentMethodId> = payment_methods::table.filter(payment_methods::org_id.eq(&org)).filter(payment_methods::removed_at.is_null())
                .order(payment_methods::id.desc()).select(payment_methods::id).first(c).await.optional()?;
            if let Some(n) = next {
                diesel::update(payment_methods::table.find(&n)).set(payment_methods::is_default.eq(true)).execute(c).await?;
            }
        }
        crate::audit!(c, audit(app, principal, "payment_method.removed", &m));
        Ok::<_, Error>(())
    })?;
    app.payments.detach(&m.provider_ref).await;
    Ok(m.id)
}

/// The payments of an invoice, oldest first.
pub async fn payments_of(app: &App, invoice: &InvoiceId) -> Result<Vec<PaymentRow>> {
    Ok(with_conn!(app.db, c => {
        payments::table.filter(payments::invoice_id.eq(invoice)).order(payments::id.asc()).select(PaymentRow::as_select()).load(c).await?
    }))
}

/// Who asked for a charge: the dunning job, or a member paying by hand with a chosen method.
enum Attempt<'a> {
    Automatic,
    Manual(&'a Principal, Option<PaymentMethodRow>),
}

/// Charges one OPEN invoice. Returns None when another node holds it or it is no longer due.
async fn charge(app: &App, invoice_id: &InvoiceId, attempt: Attempt<'_>) -> Result<Option<(InvoiceRow, PaymentRow)>> {
    let now = app.clock.now_ms();
    let automatic = matches!(attempt, Attempt::Automatic);
    let claimed = with_conn!(app.db, c => {
        let mut q = diesel::update(invoices::table.find(invoice_id))
            .filter(invoices::status.eq(OPEN))
            .filter(invoices::claimed_until.is_null().or(invoices::claimed_until.lt(now)))
            .into_boxed();
        if automatic {
            q = q.filter(invoices::next_attempt_at.le(now));
        }
        q.set((invoices::claimed_until.eq(now + CLAIM_MS), invoices::updated_at.eq(now))).returning(InvoiceRow::as_returning()).get_result(c).await.optional()?
    });
    let Some(inv) = claimed else { return Ok(None) };
    let method = match &attempt {
        Attempt::Manual(_, Some(m)) => Some(m.clone()),
        _ => default_method(app, &inv.org_id).await?,
    };
    // The key names the invoice and the how-manieth charge of it: a charge that crashed before
    // it was recorded is asked again with the same key, and the provider answers the first outcome.
    let n: i64 =
        with_conn!(app.db, c => payments::table.filter(payments::invoice_id.eq(&inv.id)).count().get_result(c).await?);
    let key = format!("{}:{}", inv.id, n + 1);
    let outcome = match &method {
        Some(m) => {
            app.payments.charge(&m.provider_ref, inv.total_cents - inv.amount_paid_cents, &inv.currency, &key).await
        }
        None => ChargeOutcome::Failed { code: "no_payment_method".into() },
    };
    let schedule = app.config.billing_retry_days.clone();
    let pg = app.db.is_postgres();
    let (actor_type, actor_id, ip) = match &attempt {
        Attempt::Manual(p, _) => (p.actor_type(), p.actor_id(), p.ip),
        Attempt::Automatic => ("system", "billing".to_string(), None),
    };
    let (inv, payment, events, moved) = transaction!(app.db, c => {
        crate::lock_row!(c, pg, "invoices", inv.id.as_str());
        let cur: InvoiceRow = invoices::table.find(&inv.id).select(InvoiceRow::as_select()).first(c).await?;
        let (status, failure, charge_ref) = match &outcome {
            ChargeOutcome::Succeeded { charge_ref } => ("succeeded", None, Some(charge_ref.clone())),
            ChargeOutcome::Failed { code } => ("failed", Some(code.clone()), None),
        };
        let payment = PaymentRow {
            id: PaymentId::generate(now),
            org_id: cur.org_id.clone(),
            invoice_id: cur.id.clone(),
            payment_method_id: method.as_ref().map(|m| m.id.clone()),
            amount_cents: cur.total_cents - cur.amount_paid_cents,
            currency: cur.currency.clone(),
            status: status.into(),
            failure_code: failure.clone(),
            idempotency_key: key.clone(),
            provider_ref: charge_ref,
            created_at: now,
        };
        diesel::insert_into(payments::table).values(&payment).on_conflict_do_nothing().execute(c).await?;
        let payment: PaymentRow = payments::table.filter(payments::idempotency_key.eq(&key)).select(PaymentRow::as_select()).first(c).await?;
        let sub: SubscriptionRow = subscriptions::table.find(&cur.subscription_id).select(SubscriptionRow::as_select()).first(c).await?;
        let mut events: Vec<PendingEvent> = Vec::new();
        let mut moved = false;
        let audit = |action: &str, data: &serde_json::Value| NewAudit::raw(app, &cur.org_id, actor_type, &actor_id, ip, action, "invoice", cur.id.as_str(), data.clone());
        let inv: InvoiceRow = if cur.status != OPEN {
            cur
        } else if payment.status == "succeeded" {
            let inv: InvoiceRow = diesel::update(invoices::table.find(&cur.id))
                .set((invoices::status.eq(PAID), invoices::amount_paid_cents.eq(cur.total_cents), invoices::paid_at.eq(now), invoices::next_attempt_at.eq(None::<i64>), invoices::claimed_until.eq(None::<i64>), invoices::updated_at.eq(now)))
                .returning(InvoiceRow::as_returning()).get_result(c).await?;
            crate::record_earnings!(c, &inv, now);
            let mut data = invoice_svc::event_data(&inv);
            data["payment"] = payment_data(&payment);
            events.push(crate::outbox!(c, PendingEvent::new(app, &inv.org_id, "billing.invoice_paid", data.clone()), audit("invoice.paid", &data)));
            // The last open invoice paid: the subscription is in good standing and its plan served again.
            let open: i64 = invoices::table.filter(invoices::org_id.eq(&inv.org_id)).filter(invoices::status.eq(OPEN)).count().get_result(c).await?;
            if open == 0 && matches!(sub.status.as_str(), PAST_DUE | SUSPENDED) {
                let sub: SubscriptionRow = diesel::update(subscriptions::table.find(&sub.id))
                    .set((subscriptions::status.eq(ACTIVE), subscriptions::updated_at.eq(now)))
                    .returning(SubscriptionRow::as_returning()).get_result(c).await?;
                diesel::update(organizations::table.find(&sub.org_id)).set(organizations::plan_id.eq(Some(&sub.plan_id))).execute(c).await?;
                moved = true;
                let (event, entry) = subs::subscription_change(app, None, &sub, "billing.subscription_updated", "subscription.restored", serde_json::json!({ "invoiceId": inv.id }));
                events.push(crate::outbox!(c, event, entry));
            }
            inv
        } else {
            let (attempts, next) = if automatic {
                let a = cur.attempt_count + 1;
                (a, schedule.get(a as usize - 1).map(|d| now + d * DAY_MS))
            } else {
                (cur.attempt_count, cur.next_attempt_at)
            };
            let inv: InvoiceRow = diesel::update(invoices::table.find(&cur.id))
                .set((invoices::attempt_count.eq(attempts), invoices::next_attempt_at.eq(next), invoices::claimed_until.eq(None::<i64>), invoices::updated_at.eq(now)))
                .returning(InvoiceRow::as_returning()).get_result(c).await?;
            let mut data = invoice_svc::event_data(&inv);
            data["payment"] = payment_data(&payment);
            events.push(crate::outbox!(c, PendingEvent::new(app, &inv.org_id, "billing.payment_failed", data.clone()), audit("invoice.payment_failed", &data)));
            let status = if (automatic && next.is_none()) || sub.status == SUSPENDED { SUSPENDED } else { PAST_DUE };
            if status != sub.status {
                let sub: SubscriptionRow = diesel::update(subscriptions::table.find(&sub.id))
                    .set((subscriptions::status.eq(status), subscriptions::updated_at.eq(now)))
                    .returning(SubscriptionRow::as_returning()).get_result(c).await?;
                if status == SUSPENDED {
                    let free: String = plans::table.filter(plans::is_default.eq(true)).select(plans::id).first(c).await?;
                    diesel::update(organizations::table.find(&sub.org_id)).set(organizations::plan_id.eq(Some(&free))).execute(c).await?;
                    moved = true;
                }
                let action = if status == SUSPENDED { "subscription.suspended" } else { "subscription.past_due" };
                let (event, entry) = subs::subscription_change(app, None, &sub, "billing.subscription_updated", action, serde_json::json!({ "invoiceId": inv.id }));
                events.push(crate::outbox!(c, event, entry));
            }
            inv
        };
        Ok::<_, Error>((inv, payment, events, moved))
    })?;
    if moved {
        crate::limits::service::clear_plan_caches(app).await;
    }
    for e in events {
        e.publish(app).await;
    }
    Ok(Some((inv, payment)))
}

fn payment_data(p: &PaymentRow) -> serde_json::Value {
    serde_json::json!({ "id": p.id, "status": p.status.to_ascii_uppercase(), "amount": p.amount_cents, "failureCode": p.failure_code })
}

/// Charges every OPEN invoice whose attempt is due. Any node may run it; each invoice is charged
/// by the one node that claims it.
pub async fn collect_due(app: &App) -> Result<usize> {
    let now = app.clock.now_ms();
    let due: Vec<InvoiceId> = with_conn!(app.db, c => {
        invoices::table.filter(invoices::status.eq(OPEN)).filter(invoices::next_attempt_at.le(now))
            .order(invoices::next_attempt_at.asc()).select(invoices::id).limit(200).load(c).await?
    });
    let mut charged = 0;
    for id in &due {
        if charge(app, id, Attempt::Automatic).await?.is_some() {
            charged += 1;
        }
    }
    Ok(charged)
}

/// Pays an OPEN invoice now, with a chosen method or the default (`billing:write`). A refused
/// card is a recorded failed payment, not an error.
pub async fn pay_invoice(
    app: &App,
    principal: &Principal,
    id: &str,
    method: Option<&str>,
) -> Result<(InvoiceRow, PaymentRow)> {
    principal.require_scope("billing:write")?;
    let inv = invoice_svc::get(app, principal, id).await?.invoice;
    if inv.status != OPEN {
        return Err(Error::Conflict(format!(
            "the invoice is {}: only an OPEN invoice can be paid",
            inv.status.to_ascii_uppercase()
        )));
    }
    let method = match method {
        Some(m) => Some(
            method_of(app, &principal.org_id, m)
                .await
                .map_err(|_| Error::bad_input("paymentMethodId", "no such payment method"))?,
        ),
        None => Some(default_method(app, &principal.org_id).await?.ok_or_else(|| {
            Error::bad_input("paymentMethodId", "the organization has no default payment method: add one or name one")
        })?),
    };
    charge(app, &inv.id, Attempt::Manual(principal, method))
        .await?
        .ok_or_else(|| Error::Conflict("a payment of this invoice is in progress: try again in a minute".into()))
}

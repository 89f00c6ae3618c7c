//! Diesel rows of billing.

use diesel::prelude::*;

use crate::platform::db::schema::{
    app_earnings, billable_metrics, invoice_lines, invoices, payment_methods, payments, plan_charges, subscriptions,
};
use crate::platform::ids::{InvoiceId, OrgId, PaymentId, PaymentMethodId, SubscriptionId};

#[derive(Debug, Clone, Queryable, Selectable, Insertable, Identifiable)]
#[diesel(table_name = subscriptions)]
pub struct SubscriptionRow {
    pub id: SubscriptionId,
    pub org_id: OrgId,
    pub plan_id: String,
    pub status: String,
    pub billing_cycle: String,
    pub current_period_start: i64,
    pub current_period_end: i64,
    pub cancel_at_period_end: bool,
    pub scheduled_plan_id: Option<String>,
    pub scheduled_cycle: Option<String>,
    pub billed_through: i64,
    pub canceled_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub spend_cap_cents: Option<i64>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, Identifiable)]
#[diesel(table_name = invoices)]
pub struct InvoiceRow {
    pub id: InvoiceId,
    pub org_id: OrgId,
    pub subscription_id: SubscriptionId,
    pub number: Option<i64>,
    pub kind: String,
    pub status: String,
    pub currency: String,
    pub period_key: Option<String>,
    pub period_start: i64,
    pub period_end: i64,
    pub total_cents: i64,
    pub amount_paid_cents: i64,
    pub due_at: Option<i64>,
    pub attempt_count: i64,
    pub next_attempt_at: Option<i64>,
    pub claimed_until: Option<i64>,
    pub finalized_at: Option<i64>,
    pub paid_at: Option<i64>,
    pub voided_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = invoice_lines)]
pub struct LineRow {
    pub invoice_id: InvoiceId,
    pub position: i64,
    pub kind: String,
    pub description: String,
    pub period_start: i64,
    pub period_end: i64,
    pub quantity: i64,
    pub unit_price_micros: i64,
    pub amount_cents: i64,
    pub plan_id: Option<String>,
    pub app_id: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, Identifiable)]
#[diesel(table_name = payment_methods)]
pub struct PaymentMethodRow {
    pub id: PaymentMethodId,
    pub org_id: OrgId,
    pub brand: String,
    pub last4: String,
    pub exp_month: i64,
    pub exp_year: i64,
    pub provider_ref: String,
    pub is_default: bool,
    pub created_at: i64,
    pub removed_at: Option<i64>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, Identifiable)]
#[diesel(table_name = payments)]
pub struct PaymentRow {
    pub id: PaymentId,
    pub org_id: OrgId,
    pub invoice_id: InvoiceId,
    pub payment_method_id: Option<PaymentMethodId>,
    pub amount_cents: i64,
    pub currency: String,
    pub status: String,
    pub failure_code: Option<String>,
    pub idempotency_key: String,
    pub provider_ref: Option<String>,
    pub created_at: i64,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = billable_metrics)]
pub struct MetricRow {
    pub id: String,
    pub code: String,
    pub name: String,
    pub description: String,
    pub aggregation: String,
    pub field_name: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = plan_charges)]
pub struct ChargeRow {
    pub plan_id: String,
    pub metric_id: String,
    pub model: String,
    pub tiers: String,
    pub package_size: i64,
    pub free_units: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = app_earnings)]
pub struct EarningRow {
    pub invoice_id: InvoiceId,
    pub app_id: String,
    pub developer_org_id: String,
    pub org_id: String,
    pub gross_cents: i64,
    pub developer_cents: i64,
    pub platform_cents: i64,
    pub currency: String,
    pub created_at: i64,
}

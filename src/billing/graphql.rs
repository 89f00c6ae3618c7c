//! GraphQL for billing: the subscription and its changes with the proration preview, invoices
//! with their lines and payments, and payment methods.

use std::sync::Arc;

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};

use super::invoices::{self, Draft, InvoiceWithLines};
use super::model::{InvoiceRow, LineRow, PaymentMethodRow, PaymentRow, SubscriptionRow};
use super::payments;
use super::provider::CardInput;
use super::subscriptions::{self, Change, Preview};
use crate::graphql::connection::{Conn, connection};
use crate::graphql::context::{ContextExt, Scope};
use crate::graphql::page_complexity;
use crate::graphql::scalars::DateTime;
use crate::limits::graphql::{Money, Plan};
use crate::pagination::PageRequest;
use crate::platform::clock::month_start;
use crate::platform::ids::InvoiceId;

/// Where a subscription stands.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum SubscriptionStatus {
    /// Paid up (or free).
    Active,
    /// A charge failed; it is retried on the schedule.
    PastDue,
    /// Canceled at a period end: the organization is on the free plan.
    Canceled,
    /// Every retry failed: the organization is served with the free plan's limits until the open
    /// invoice is paid.
    Suspended,
}

/// How often the plan fee is charged.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum BillingCycle {
    /// Each calendar month (UTC), at the plan's monthly price.
    Monthly,
    /// Each twelve calendar months, at the plan's annual price.
    Annual,
}

impl BillingCycle {
    fn as_str(self) -> &'static str {
        match self {
            BillingCycle::Monthly => subscriptions::MONTHLY,
            BillingCycle::Annual => subscriptions::ANNUAL,
        }
    }
    fn parse(s: &str) -> Self {
        if s == subscriptions::ANNUAL { BillingCycle::Annual } else { BillingCycle::Monthly }
    }
}

/// An invoice's lifecycle: finalized invoices (OPEN) never change but for their status.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum InvoiceStatus {
    /// Being assembled (not yet numbered).
    Draft,
    /// Finalized and numbered, waiting for payment.
    Open,
    /// Paid in full (an invoice of 0.00 is paid when finalized).
    Paid,
    /// Canceled after finalization.
    Void,
    /// Given up on.
    Uncollectible,
}

/// Why an invoice was made.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum InvoiceKind {
    /// The close of a month: its usage overage and the fee of a period that begins.
    Period,
    /// An upgrade: the proration of the rest of the period, charged at once.
    Proration,
}

/// What a line charges for.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum InvoiceLineKind {
    /// The plan's fee for a period, in advance.
    PlanFee,
    /// A credit for the unused time of the previous plan (negative).
    ProrationCredit,
    /// The new plan for the rest of the period.
    ProrationCharge,
    /// Requests past the plan's included quota, in arrears, by graduated tiers.
    Overage,
    /// A billable metric over the usage the operator reported, in arrears, by the plan's price.
    Metered,
    /// A marketplace app's monthly price, for the time it was installed.
    AppFee,
    /// A marketplace app's price per call made with its tokens.
    AppUsage,
}

/// The outcome of a charge.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum PaymentStatus {
    /// The amount was charged.
    Succeeded,
    /// The provider refused the charge (`failureCode` says why).
    Failed,
}

fn money(amount: i64, currency: &str) -> Money {
    Money { amount, currency: currency.to_string() }
}

async fn plan(ctx: &Context<'_>, id: &str) -> async_graphql::Result<Plan> {
    Ok(Plan(Arc::new(subscriptions::load_plan(ctx.app(), id).await?)))
}

/// A change that waits for the period end.
#[derive(SimpleObject)]
pub struct ScheduledChange {
    /// The plan from then on.
    pub plan: Plan,
    /// The cycle from then on.
    pub billing_cycle: BillingCycle,
    /// When it takes effect (the current period's end).
    pub effective_at: DateTime,
    /// True when it is a cancellation (to the free plan).
    pub cancels: bool,
}

/// The organization's subscription: what it pays for, on which cycle, until when.
pub struct BillingSubscription(pub SubscriptionRow);

/// The organization's subscription: what it pays for, on which cycle, until when.
#[Object]
impl BillingSubscription {
    /// Subscription id (`sub_…`).
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// The plan paid for (while SUSPENDED the organization is served with the free plan's limits).
    async fn plan(&self, ctx: &Context<'_>) -> async_graphql::Result<Plan> {
        plan(ctx, &self.0.plan_id).await
    }
    /// Where the subscription stands.
    async fn status(&self) -> SubscriptionStatus {
        match self.0.status.as_str() {
            subscriptions::PAST_DUE => SubscriptionStatus::PastDue,
            subscriptions::CANCELED => SubscriptionStatus::Canceled,
            subscriptions::SUSPENDED => SubscriptionStatus::Suspended,
            _ => SubscriptionStatus::Active,
        }
    }
    /// How often the plan fee is charged.
    async fn billing_cycle(&self) -> BillingCycle {
        BillingCycle::parse(&self.0.billing_cycle)
    }
    /// Start of the period the plan fee was paid for.
    async fn current_period_start(&self) -> DateTime {
        DateTime(self.0.current_period_start)
    }
    /// End of that period: the next renewal.
    async fn current_period_end(&self) -> DateTime {
        DateTime(self.0.current_period_end)
    }
    /// When the next invoice is made: the end of the month whose usage is not invoiced yet.
    async fn next_billing_date(&self) -> DateTime {
        DateTime(month_start(self.0.billed_through, -1))
    }
    /// Whether the subscription renews at the period end (false once canceled).
    async fn auto_renew(&self) -> bool {
        !self.0.cancel_at_period_end && self.0.status != subscriptions::CANCELED
    }
    /// Whether it ends on the free plan at the period end.
    async fn cancel_at_period_end(&self) -> bool {
        self.0.cancel_at_period_end
    }
    /// The downgrade or cancellation waiting for the period end (null = none).
    async fn scheduled_change(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<ScheduledChange>> {
        let at = DateTime(self.0.current_period_end);
        if self.0.cancel_at_period_end {
            let free = crate::limits::service::list_plans(ctx.app()).await?.into_iter().find(|p| p.is_default);
            return Ok(free.map(|p| ScheduledChange {
                plan: Plan(Arc::new(p)),
                billing_cycle: BillingCycle::Monthly,
                effective_at: at,
                cancels: true,
            }));
        }
        match &self.0.scheduled_plan_id {
            Some(p) => Ok(Some(ScheduledChange {
                plan: plan(ctx, p).await?,
                billing_cycle: BillingCycle::parse(self.0.scheduled_cycle.as_deref().unwrap_or_default()),
                effective_at: at,
                cancels: false,
            })),
            None => Ok(None),
        }
    }
    /// The most the organization pays for request overage in a month (null = no cap): reaching
    /// it stops requests as a hard quota does.
    async fn spend_cap(&self) -> Option<Money> {
        self.0.spend_cap_cents.map(|c| Money { amount: c, currency: "USD".into() })
    }
    /// When it was canceled (null = not canceled).
    async fn canceled_at(&self) -> Option<DateTime> {
        self.0.canceled_at.map(DateTime)
    }
    /// When the subscription began.
    async fn created_at(&self) -> DateTime {
        DateTime(self.0.created_at)
    }
}

/// One line of an invoice: amounts in minor units, unit prices in micro-units (millionths of the
/// currency's unit) where a fraction of a cent is needed; each line is rounded once, half up.
pub struct InvoiceLine {
    pub(super) row: LineRow,
    pub(super) currency: String,
}

impl InvoiceLine {
    /// The lines of an invoice not written (a preview or the upcoming invoice).
    pub(super) fn drafts(lines: &[Draft], currency: &str) -> Vec<InvoiceLine> {
        let placeholder = InvoiceId::generate(0);
        lines
            .iter()
            .enumerate()
            .map(|(i, l)| InvoiceLine { row: l.to_row(&placeholder, i as i64), currency: currency.to_string() })
            .collect()
    }
}

/// One line of an invoice: amounts in minor units, unit prices in micro-units (millionths of the
/// currency's unit) where a fraction of a cent is needed; each line is rounded once, half up.
#[Object]
impl InvoiceLine {
    /// What the line charges for.
    async fn kind(&self) -> InvoiceLineKind {
        match self.row.kind.as_str() {
            "proration_credit" => InvoiceLineKind::ProrationCredit,
            "proration_charge" => InvoiceLineKind::ProrationCharge,
            "overage" => InvoiceLineKind::Overage,
            "metered" => InvoiceLineKind::Metered,
            "app_fee" => InvoiceLineKind::AppFee,
            "app_usage" => InvoiceLineKind::AppUsage,
            _ => InvoiceLineKind::PlanFee,
        }
    }
    /// What the line says on the invoice.
    async fn description(&self) -> &str {
        &self.row.description
    }
    /// Start of the time the line is for.
    async fn period_start(&self) -> DateTime {
        DateTime(self.row.period_start)
    }
    /// End of the time the line is for.
    async fn period_end(&self) -> DateTime {
        DateTime(self.row.period_end)
    }
    /// Units charged (requests for overage, 1 for a fee or a proration).
    async fn quantity(&self) -> i64 {
        self.row.quantity
    }
    /// Price of one unit in micro-units (1,000,000 = 1.00; 100 = 0.0001).
    async fn unit_price_micros(&self) -> i64 {
        self.row.unit_price_micros
    }
    /// Quantity × unit price, rounded half up to minor units (negative for a credit).
    async fn amount(&self) -> Money {
        money(self.row.amount_cents, &self.currency)
    }
    /// The plan the line is for.
    async fn plan(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Plan>> {
        match &self.row.plan_id {
            Some(p) => Ok(Some(plan(ctx, p).await?)),
            None => Ok(None),
        }
    }
    /// The marketplace app the line is for (`app_…`; null for the plan's own lines).
    async fn app_id(&self) -> Option<ID> {
        self.row.app_id.clone().map(ID)
    }
}

/// One charge of an invoice.
pub struct Payment(pub PaymentRow);

/// One charge of an invoice.
#[Object]
impl Payment {
    /// Payment id (`pay_…`).
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// Whether the charge went through.
    async fn status(&self) -> PaymentStatus {
        if self.0.status == "succeeded" { PaymentStatus::Succeeded } else { PaymentStatus::Failed }
    }
    /// The amount charged (or tried).
    async fn amount(&self) -> Money {
        money(self.0.amount_cents, &self.0.currency)
    }
    /// Why it failed, as the provider says (`card_declined`, `insufficient_funds`,
    /// `no_payment_method`).
    async fn failure_code(&self) -> Option<&str> {
        self.0.failure_code.as_deref()
    }
    /// The method charged (null = none was on file).
    async fn payment_method_id(&self) -> Option<ID> {
        self.0.payment_method_id.as_ref().map(|m| ID(m.to_string()))
    }
    /// When the charge was made.
    async fn created_at(&self) -> DateTime {
        DateTime(self.0.created_at)
    }
}

/// An invoice: numbered when finalized, then immutable but for its status.
pub struct Invoice {
    row: InvoiceRow,
    lines: Option<Vec<LineRow>>,
}

impl Invoice {
    pub fn new(row: InvoiceRow) -> Self {
        Self { row, lines: None }
    }
}

impl From<InvoiceWithLines> for Invoice {
    fn from(i: InvoiceWithLines) -> Self {
        Self { row: i.invoice, lines: Some(i.lines) }
    }
}

/// An invoice: numbered when finalized, then immutable but for its status.
#[Object]
impl Invoice {
    /// Invoice id (`inv_…`).
    async fn id(&self) -> ID {
        ID(self.row.id.to_string())
    }
    /// Sequential, gap-free across the installation: `INV-000042`.
    async fn number(&self) -> Option<String> {
        self.row.number.map(invoices::format_number)
    }
    /// Where the invoice is in its lifecycle.
    async fn status(&self) -> InvoiceStatus {
        match self.row.status.as_str() {
            "draft" => InvoiceStatus::Draft,
            "open" => InvoiceStatus::Open,
            "void" => InvoiceStatus::Void,
            "uncollectible" => InvoiceStatus::Uncollectible,
            _ => InvoiceStatus::Paid,
        }
    }
    /// Why the invoice was made.
    async fn kind(&self) -> InvoiceKind {
        if self.row.kind == "proration" { InvoiceKind::Proration } else { InvoiceKind::Period }
    }
    /// ISO 4217 code.
    async fn currency(&self) -> &str {
        &self.row.currency
    }
    /// The sum of the lines.
    async fn total(&self) -> Money {
        money(self.row.total_cents, &self.row.currency)
    }
    /// What was paid so far.
    async fn amount_paid(&self) -> Money {
        money(self.row.amount_paid_cents, &self.row.currency)
    }
    /// What is still to be paid (0 unless OPEN).
    async fn amount_due(&self) -> Money {
        let due = if self.row.status == "open" { self.row.total_cents - self.row.amount_paid_cents } else { 0 };
        money(due, &self.row.currency)
    }
    /// What it bills: the month of usage (period invoices) or the rest of the period (proration).
    async fn period_start(&self) -> DateTime {
        DateTime(self.row.period_start)
    }
    /// End of what it bills.
    async fn period_end(&self) -> DateTime {
        DateTime(self.row.period_end)
    }
    /// When payment is due.
    async fn due_at(&self) -> Option<DateTime> {
        self.row.due_at.map(DateTime)
    }
    /// When it was finalized and numbered.
    async fn finalized_at(&self) -> Option<DateTime> {
        self.row.finalized_at.map(DateTime)
    }
    /// When it was paid (null = not paid).
    async fn paid_at(&self) -> Option<DateTime> {
        self.row.paid_at.map(DateTime)
    }
    /// Automatic charges that failed so far.
    async fn attempt_count(&self) -> i64 {
        self.row.attempt_count
    }
    /// When the next automatic charge is made (null = none: paid, or every retry failed).
    async fn next_payment_attempt(&self) -> Option<DateTime> {
        self.row.next_attempt_at.map(DateTime)
    }
    /// Its lines, in order; the total is their sum.
    async fn lines(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<InvoiceLine>> {
        let rows = match &self.lines {
            Some(l) => l.clone(),
            None => invoices::lines_of(ctx.app(), &self.row.id).await?,
        };
        Ok(rows.into_iter().map(|row| InvoiceLine { row, currency: self.row.currency.clone() }).collect())
    }
    /// Every charge of it, oldest first.
    async fn payments(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Payment>> {
        Ok(payments::payments_of(ctx.app(), &self.row.id).await?.into_iter().map(Payment).collect())
    }
    /// When it was made.
    async fn created_at(&self) -> DateTime {
        DateTime(self.row.created_at)
    }
}

/// A card on file: only what it is shown by.
pub struct PaymentMethod(pub PaymentMethodRow);

/// A card on file: only what it is shown by.
#[Object]
impl PaymentMethod {
    /// Payment method id (`pm_…`).
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// `visa`, `mastercard`, `amex`, `discover` or `unknown`.
    async fn brand(&self) -> &str {
        &self.0.brand
    }
    /// The card number's last four digits.
    async fn last4(&self) -> &str {
        &self.0.last4
    }
    /// Expiry month, 1–12.
    async fn exp_month(&self) -> i64 {
        self.0.exp_month
    }
    /// Expiry year.
    async fn exp_year(&self) -> i64 {
        self.0.exp_year
    }
    /// The method invoices are charged to.
    async fn is_default(&self) -> bool {
        self.0.is_default
    }
    /// When it was added.
    async fn created_at(&self) -> DateTime {
        DateTime(self.0.created_at)
    }
}

/// What a plan change would do.
pub struct SubscriptionChangePreview(Preview);

/// What a plan change would do.
#[Object]
impl SubscriptionChangePreview {
    /// The plan after the change.
    async fn plan(&self) -> Plan {
        Plan(Arc::new(self.0.plan.clone()))
    }
    /// The cycle after the change.
    async fn billing_cycle(&self) -> BillingCycle {
        BillingCycle::parse(&self.0.cycle)
    }
    /// True for an upgrade (now, invoiced and charged at once); false for a downgrade (at the
    /// period end) or undoing a scheduled change.
    async fn immediate(&self) -> bool {
        matches!(self.0.change, Change::Immediate { .. })
    }
    /// When it takes effect.
    async fn effective_at(&self, ctx: &Context<'_>) -> DateTime {
        match &self.0.change {
            Change::AtPeriodEnd { at } => DateTime(*at),
            _ => DateTime(ctx.app().clock.now_ms()),
        }
    }
    /// The end of the period the new plan is paid for.
    async fn period_end(&self) -> DateTime {
        match &self.0.change {
            Change::Immediate { period, .. } => DateTime(period.1),
            _ => DateTime(self.0.from.current_period_end),
        }
    }
    /// The proration lines an upgrade invoices now (none for a downgrade).
    async fn lines(&self) -> Vec<InvoiceLine> {
        match &self.0.change {
            Change::Immediate { lines, .. } => InvoiceLine::drafts(lines, &self.0.plan.currency),
            _ => Vec::new(),
        }
    }
    /// The sum of the lines: what is charged now.
    async fn total(&self) -> Money {
        money(self.0.total(), &self.0.plan.currency)
    }
}

/// The subscription after a change, and the invoice an upgrade made.
#[derive(SimpleObject)]
pub struct ChangeSubscriptionPayload {
    /// The subscription after the change.
    pub subscription: BillingSubscription,
    /// The proration invoice, paid (null for a downgrade, which waits for the period end).
    pub invoice: Option<Invoice>,
}

/// The invoice after a payment, and the payment.
#[derive(SimpleObject)]
pub struct PayInvoicePayload {
    /// PAID when the charge succeeded, still OPEN when it failed.
    pub invoice: Invoice,
    /// The charge that was made.
    pub payment: Payment,
}

/// A card to attach. The number is handed to the payment provider and never stored or logged.
#[derive(InputObject)]
pub struct AddPaymentMethodInput {
    /// The card number (spaces and dashes allowed). Test cards: `4242 4242 4242 4242` succeeds,
    /// `4000 0000 0000 0002` is declined, `4000 0000 0000 9995` fails for insufficient funds.
    pub number: String,
    /// 1–12.
    pub exp_month: i64,
    /// Four digits.
    pub exp_year: i64,
    /// 3 or 4 digits.
    pub cvc: String,
    /// Make it the default method (the first method always is).
    #[graphql(default)]
    pub make_default: bool,
}

#[derive(Default)]
pub struct BillingQuery;

#[Object]
impl BillingQuery {
    /// The organization's subscription.
    #[graphql(guard = "Scope(\"billing:read\")")]
    async fn subscription(&self, ctx: &Context<'_>) -> async_graphql::Result<BillingSubscription> {
        Ok(BillingSubscription(subscriptions::get(ctx.app(), ctx.principal()?).await?))
    }

    /// What changing to a plan and cycle would do: the exact proration lines and total of an
    /// upgrade, or the date a downgrade takes effect. Changes nothing.
    #[graphql(guard = "Scope(\"billing:read\")")]
    async fn preview_subscription_change(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Plan id (`pln_…`).")] plan_id: ID,
        #[graphql(desc = "The cycle (default MONTHLY).", default_with = "BillingCycle::Monthly")]
        billing_cycle: BillingCycle,
    ) -> async_graphql::Result<SubscriptionChangePreview> {
        let p = subscriptions::preview(ctx.app(), ctx.principal()?, &plan_id, billing_cycle.as_str()).await?;
        Ok(SubscriptionChangePreview(p))
    }

    /// The organization's invoices, newest first.
    #[graphql(guard = "Scope(\"billing:read\")", complexity = "page_complexity(first, last, child_complexity)")]
    async fn invoices(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only invoices in this status.")] status: Option<InvoiceStatus>,
        #[graphql(desc = "Page size from the start, 1–100 (default 20).")] first: Option<i32>,
        #[graphql(desc = "Cursor to continue after.")] after: Option<String>,
        #[graphql(desc = "Page size from the end, 1–100.")] last: Option<i32>,
        #[graphql(desc = "Cursor to continue before.")] before: Option<String>,
    ) -> async_graphql::Result<Conn<Invoice>> {
        let page = PageRequest::from_args(first, after, last, before)?;
        let status = status.map(|s| match s {
            InvoiceStatus::Draft => "draft",
            InvoiceStatus::Open => "open",
            InvoiceStatus::Paid => "paid",
            InvoiceStatus::Void => "void",
            InvoiceStatus::Uncollectible => "uncollectible",
        });
        let rows = invoices::list(ctx.app(), ctx.principal()?, status, &page).await?;
        Ok(connection(rows, |i| i.id.to_string(), Invoice::new))
    }

    /// One invoice of the organization.
    #[graphql(guard = "Scope(\"billing:read\")")]
    async fn invoice(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Invoice id (`inv_…`).")] id: ID,
    ) -> async_graphql::Result<Invoice> {
        Ok(invoices::get(ctx.app(), ctx.principal()?, &id).await?.into())
    }

    /// The organization's cards on file, newest first.
    #[graphql(guard = "Scope(\"billing:read\")")]
    async fn payment_methods(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<PaymentMethod>> {
        Ok(payments::list_methods(ctx.app(), ctx.principal()?).await?.into_iter().map(PaymentMethod).collect())
    }
}

#[derive(Default)]
pub struct BillingMutation;

#[Object]
impl BillingMutation {
    /// Changes the plan or cycle. An upgrade (a higher price per year, or monthly to annual) takes
    /// effect at once on every node, with a credit for the unused time of the old plan and a
    /// charge for the rest of the period on the new one, invoiced and charged to the default
    /// payment method at once (when the charge fails nothing changes). A downgrade waits for the
    /// period end; choosing the current plan again undoes it.
    #[graphql(guard = "Scope(\"billing:write\")")]
    async fn change_subscription(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Plan id (`pln_…`).")] plan_id: ID,
        #[graphql(desc = "The cycle (default MONTHLY).", default_with = "BillingCycle::Monthly")]
        billing_cycle: BillingCycle,
    ) -> async_graphql::Result<ChangeSubscriptionPayload> {
        let (sub, invoice) =
            subscriptions::change(ctx.app(), ctx.principal()?, &plan_id, billing_cycle.as_str()).await?;
        Ok(ChangeSubscriptionPayload { subscription: BillingSubscription(sub), invoice: invoice.map(Invoice::from) })
    }

    /// Cancels at the period end: the organization then continues on the free plan.
    #[graphql(guard = "Scope(\"billing:write\")")]
    async fn cancel_subscription(&self, ctx: &Context<'_>) -> async_graphql::Result<BillingSubscription> {
        Ok(BillingSubscription(subscriptions::cancel(ctx.app(), ctx.principal()?).await?))
    }

    /// Undoes a scheduled downgrade or cancellation.
    #[graphql(guard = "Scope(\"billing:write\")")]
    async fn resume_subscription(&self, ctx: &Context<'_>) -> async_graphql::Result<BillingSubscription> {
        Ok(BillingSubscription(subscriptions::resume(ctx.app(), ctx.principal()?).await?))
    }

    /// Sets the most the organization pays for request overage in a month (null removes the
    /// cap). Past it, an overage plan refuses requests with QUOTA_EXCEEDED on every node.
    #[graphql(guard = "Scope(\"billing:write\")")]
    async fn set_spend_cap(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Minor units of the plan's currency (null = no cap).")] amount: Option<i64>,
    ) -> async_graphql::Result<BillingSubscription> {
        Ok(BillingSubscription(subscriptions::set_spend_cap(ctx.app(), ctx.principal()?, amount).await?))
    }

    /// Attaches a card through the payment provider.
    #[graphql(guard = "Scope(\"billing:write\")")]
    async fn add_payment_method(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The card.")] input: AddPaymentMethodInput,
    ) -> async_graphql::Result<PaymentMethod> {
        let card =
            CardInput { number: input.number, exp_month: input.exp_month, exp_year: input.exp_year, cvc: input.cvc };
        Ok(PaymentMethod(payments::add_method(ctx.app(), ctx.principal()?, card, input.make_default).await?))
    }

    /// Makes a card the one invoices are charged to.
    #[graphql(guard = "Scope(\"billing:write\")")]
    async fn set_default_payment_method(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Payment method id (`pm_…`).")] id: ID,
    ) -> async_graphql::Result<PaymentMethod> {
        Ok(PaymentMethod(payments::set_default(ctx.app(), ctx.principal()?, &id).await?))
    }

    /// Removes a card; when it was the default, the newest other card becomes it.
    #[graphql(guard = "Scope(\"billing:write\")")]
    async fn remove_payment_method(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Payment method id (`pm_…`).")] id: ID,
    ) -> async_graphql::Result<ID> {
        Ok(ID(payments::remove_method(ctx.app(), ctx.principal()?, &id).await?.to_string()))
    }

    /// Pays an OPEN invoice now, with a given card or the default. Paying the last open invoice
    /// of a PAST_DUE or SUSPENDED subscription restores it and its plan's limits at once. A
    /// refused card is a FAILED payment in the answer, not an error.
    #[graphql(guard = "Scope(\"billing:write\")")]
    async fn pay_invoice(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Invoice id (`inv_…`).")] invoice_id: ID,
        #[graphql(desc = "The card to charge (default: the default payment method).")] payment_method_id: Option<ID>,
    ) -> async_graphql::Result<PayInvoicePayload> {
        let (inv, payment) = payments::pay_invoice(
            ctx.app(),
            ctx.principal()?,
            &invoice_id,
            payment_method_id.as_ref().map(|m| m.as_str()),
        )
        .await?;
        Ok(PayInvoicePayload { invoice: Invoice::new(inv), payment: Payment(payment) })
    }
}

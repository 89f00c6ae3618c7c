//! GraphQL for usage-based billing: billable metrics and their prices per plan (platform
//! administrators), the organization's billable usage and upcoming invoice, the marketplace
//! revenue share, and closing an invoice unpaid.

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};

use super::earnings::{self, Totals};
use super::graphql::{Invoice, InvoiceLine};
use super::invoices::{self, Catalog};
use super::metered::{self, ChargeInput, NewMetric};
use super::model::{ChargeRow, EarningRow, MetricRow};
use super::money::{Tier, TierModel};
use crate::graphql::context::{ContextExt, Scope};
use crate::graphql::scalars::DateTime;
use crate::limits::graphql::Money;
use crate::platform::clock::month_start;

/// How a billable metric aggregates the events reported under its code, per billing month.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum MetricAggregation {
    /// The number of events.
    Count,
    /// The sum of the events' quantity (or of the numeric property `fieldName`).
    Sum,
    /// The largest quantity (or value of the numeric property `fieldName`).
    Max,
    /// The number of distinct values of the property `fieldName`.
    UniqueCount,
}

impl MetricAggregation {
    fn as_str(self) -> &'static str {
        match self {
            MetricAggregation::Count => "count",
            MetricAggregation::Sum => "sum",
            MetricAggregation::Max => "max",
            MetricAggregation::UniqueCount => "unique_count",
        }
    }
    fn parse(s: &str) -> Self {
        match s {
            "sum" => MetricAggregation::Sum,
            "max" => MetricAggregation::Max,
            "unique_count" => MetricAggregation::UniqueCount,
            _ => MetricAggregation::Count,
        }
    }
}

/// How a quantity is priced across tiers.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "TierModel")]
pub enum PriceModel {
    /// Each unit at the price of the tier it falls in.
    Graduated,
    /// Every unit at the price of the tier the total falls in.
    Volume,
    /// Each started package of `packageSize` units at the first tier's unit price.
    Package,
}

/// A usage the operator's backend reports (`recordUsage` events with `metric` = `code`), billed
/// on the plans that price it.
pub struct BillableMetric(pub MetricRow);

/// A usage the operator's backend reports (`recordUsage` events with `metric` = `code`), billed
/// on the plans that price it.
#[Object]
impl BillableMetric {
    /// Metric id (`bm_…`).
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    /// The `metric` of the events it aggregates.
    async fn code(&self) -> &str {
        &self.0.code
    }
    /// Shown on invoices.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// What it measures.
    async fn description(&self) -> &str {
        &self.0.description
    }
    /// How events are aggregated per month.
    async fn aggregation(&self) -> MetricAggregation {
        MetricAggregation::parse(&self.0.aggregation)
    }
    /// The event property aggregated (null = the events' quantity).
    async fn field_name(&self) -> Option<&str> {
        self.0.field_name.as_deref()
    }
}

/// One tier of a price.
#[derive(SimpleObject, InputObject)]
#[graphql(input_name = "PriceTierInput")]
pub struct PriceTier {
    /// Units up to this total (null on the last tier).
    pub up_to: Option<i64>,
    /// Price of one unit (of one package for PACKAGE) in micro-units (10,000 per cent).
    pub unit_price_micros: i64,
}

/// What a plan charges for a billable metric.
pub struct PlanCharge(pub ChargeRow);

/// What a plan charges for a billable metric.
#[Object]
impl PlanCharge {
    /// The plan (`pln_…`).
    async fn plan_id(&self) -> ID {
        ID(self.0.plan_id.clone())
    }
    /// The metric.
    async fn metric(&self, ctx: &Context<'_>) -> async_graphql::Result<BillableMetric> {
        Ok(BillableMetric(metered::get_metric(ctx.app(), &self.0.metric_id).await?))
    }
    /// The tier model.
    async fn model(&self) -> PriceModel {
        metered::parse_model(&self.0.model).into()
    }
    /// The tiers.
    async fn tiers(&self) -> Vec<PriceTier> {
        let tiers: Vec<Tier> = serde_json::from_str(&self.0.tiers).unwrap_or_default();
        tiers.into_iter().map(|t| PriceTier { up_to: t.up_to, unit_price_micros: t.unit_price_micros }).collect()
    }
    /// Units per package (PACKAGE).
    async fn package_size(&self) -> i64 {
        self.0.package_size
    }
    /// Units included each month before any is charged.
    async fn free_units(&self) -> i64 {
        self.0.free_units
    }
}

/// A billable metric's price on a plan.
#[derive(InputObject)]
pub struct SetPlanChargeInput {
    /// Plan id (`pln_…`).
    pub plan_id: ID,
    /// Metric id (`bm_…`).
    pub metric_id: ID,
    /// The tier model.
    pub model: PriceModel,
    /// The tiers, in order (at least one).
    pub tiers: Vec<PriceTier>,
    /// Units per package (PACKAGE; default 1).
    #[graphql(default = 1)]
    pub package_size: i64,
    /// Units included each month (default 0).
    #[graphql(default)]
    pub free_units: i64,
}

/// A billable metric to define.
#[derive(InputObject)]
pub struct CreateBillableMetricInput {
    /// The `metric` of the events it aggregates: 1–64 of a-z, 0-9, `_ . : -`; unique.
    pub code: String,
    /// Shown on invoices (1–100 characters).
    pub name: String,
    /// What it measures.
    #[graphql(default)]
    pub description: String,
    /// How events are aggregated per month.
    pub aggregation: MetricAggregation,
    /// The event property to aggregate (required for UNIQUE_COUNT; none for COUNT; default for
    /// SUM and MAX: the quantity).
    pub field_name: Option<String>,
}

/// A metric's value this month and what it costs so far.
#[derive(SimpleObject)]
pub struct BillableUsage {
    /// The metric.
    pub metric: BillableMetric,
    /// Its value for the month so far.
    pub value: i64,
    /// What the organization's plan charges for it so far.
    pub amount: Money,
}

/// The running month's invoice: its lines if it closed now, and the forecast to month end.
#[derive(SimpleObject)]
pub struct UpcomingInvoice {
    /// Always DRAFT: the invoice is still being assembled; it is numbered and finalized (OPEN)
    /// when the month closes.
    pub status: super::graphql::InvoiceStatus,
    /// Start of the month (UTC).
    pub period_start: DateTime,
    /// End of the month: when it is invoiced.
    pub period_end: DateTime,
    /// The lines so far (with the fee of a period that begins at the month end).
    pub lines: Vec<InvoiceLine>,
    /// The sum of the lines.
    pub total: Money,
    /// The lines at the pace of the month so far, projected to its end.
    pub forecast_lines: Vec<InvoiceLine>,
    /// The sum of the forecast lines.
    pub forecast_total: Money,
}

/// Money earned through the marketplace over a period.
#[derive(SimpleObject)]
pub struct EarningsTotals {
    /// What installing organizations paid.
    pub gross: Money,
    /// The app owners' share (70 %).
    pub developer_share: Money,
    /// The platform's share (30 %).
    pub platform_share: Money,
    /// Paid invoices counted.
    pub invoice_count: i64,
}

fn totals(t: &Totals, currency: &str) -> EarningsTotals {
    let m = |a: i64| Money { amount: a, currency: currency.to_string() };
    EarningsTotals {
        gross: m(t.gross_cents),
        developer_share: m(t.developer_cents),
        platform_share: m(t.platform_cents),
        invoice_count: t.invoices,
    }
}

/// One paid invoice's share for an app.
#[derive(SimpleObject)]
pub struct EarningEntry {
    /// The invoice (`inv_…`).
    pub invoice_id: ID,
    /// The installing organization (`org_…`).
    pub organization_id: ID,
    /// What it paid for the app.
    pub gross: Money,
    /// The app owner's share.
    pub developer_share: Money,
    /// When the invoice was paid.
    pub paid_at: DateTime,
}

impl From<EarningRow> for EarningEntry {
    fn from(r: EarningRow) -> Self {
        let m = |a: i64| Money { amount: a, currency: r.currency.clone() };
        EarningEntry {
            invoice_id: ID(r.invoice_id.to_string()),
            organization_id: ID(r.org_id.clone()),
            gross: m(r.gross_cents),
            developer_share: m(r.developer_cents),
            paid_at: DateTime(r.created_at),
        }
    }
}

/// An app's marketplace earnings.
#[derive(SimpleObject)]
pub struct AppEarnings {
    /// The totals of the period.
    pub totals: EarningsTotals,
    /// The newest entries (up to 100).
    pub entries: Vec<EarningEntry>,
}

/// One app's share of the platform's marketplace revenue.
#[derive(SimpleObject)]
pub struct AppRevenue {
    /// The app (`app_…`).
    pub app_id: ID,
    /// Its totals.
    pub totals: EarningsTotals,
}

/// The platform's marketplace revenue share over a period.
#[derive(SimpleObject)]
pub struct MarketplaceRevenue {
    /// Over every app.
    pub totals: EarningsTotals,
    /// Per app.
    pub apps: Vec<AppRevenue>,
}

/// `[start, end)` defaulting to the current month.
fn range(ctx: &Context<'_>, start: Option<DateTime>, end: Option<DateTime>) -> (i64, i64) {
    let now = ctx.app().clock.now_ms();
    (start.map_or(month_start(now, 0), |d| d.0), end.map_or(month_start(now, -1), |d| d.0))
}

#[derive(Default)]
pub struct UsageBillingQuery;

#[Object]
impl UsageBillingQuery {
    /// Every billable metric.
    async fn billable_metrics(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<BillableMetric>> {
        ctx.principal()?;
        Ok(metered::list_metrics(ctx.app()).await?.into_iter().map(BillableMetric).collect())
    }

    /// Every plan's price of each billable metric.
    async fn plan_charges(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<PlanCharge>> {
        ctx.principal()?;
        Ok(metered::all_charges(ctx.app()).await?.into_iter().map(PlanCharge).collect())
    }

    /// The organization's billable metrics this month: each value so far and its price on the
    /// plan (the same numbers the month's invoice bills).
    #[graphql(guard = "Scope(\"billing:read\")")]
    async fn billable_usage(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<BillableUsage>> {
        let app = ctx.app();
        let p = ctx.principal()?;
        p.require_scope("billing:read")?;
        let sub = super::subscriptions::get(app, p).await?;
        let catalog = Catalog::load(app).await?;
        let plan =
            catalog.plans.iter().find(|x| x.id == sub.plan_id).cloned().ok_or(crate::error::Error::NotFound("plan"))?;
        let now = app.clock.now_ms();
        let (m, next) = (month_start(now, 0), month_start(now, -1));
        let mut out = Vec::new();
        for metric in catalog.metrics {
            let value = metered::aggregate(app, &metric, &sub.org_id, m, now.max(m + 1)).await?;
            let amount = catalog
                .charges
                .iter()
                .find(|c| c.plan_id == plan.id && c.metric_id == metric.id)
                .map(|c| {
                    metered::metric_lines(&metric, c, &plan, value, (m, next)).iter().map(|l| l.amount_cents).sum()
                })
                .unwrap_or(0);
            out.push(BillableUsage {
                metric: BillableMetric(metric),
                value,
                amount: Money { amount, currency: plan.currency.clone() },
            });
        }
        Ok(out)
    }

    /// The running month's invoice so far and its forecast to month end.
    #[graphql(guard = "Scope(\"billing:read\")")]
    async fn upcoming_invoice(&self, ctx: &Context<'_>) -> async_graphql::Result<UpcomingInvoice> {
        let u = invoices::upcoming(ctx.app(), ctx.principal()?).await?;
        let sum = |l: &[invoices::Draft]| Money {
            amount: l.iter().map(|x| x.amount_cents).sum(),
            currency: u.currency.clone(),
        };
        Ok(UpcomingInvoice {
            status: super::graphql::InvoiceStatus::Draft,
            period_start: DateTime(u.period.0),
            period_end: DateTime(u.period.1),
            total: sum(&u.lines),
            forecast_total: sum(&u.forecast),
            lines: InvoiceLine::drafts(&u.lines, &u.currency),
            forecast_lines: InvoiceLine::drafts(&u.forecast, &u.currency),
        })
    }

    /// An app's marketplace earnings (its owner's organization): 70 % of what installing
    /// organizations paid for it, per paid invoice.
    #[graphql(guard = "Scope(\"apps:read\")")]
    async fn app_earnings(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "App id (`app_…`).")] app_id: ID,
        #[graphql(desc = "From (default: the start of this month).")] start: Option<DateTime>,
        #[graphql(desc = "Until (default: the end of this month).")] end: Option<DateTime>,
    ) -> async_graphql::Result<AppEarnings> {
        let (from, to) = range(ctx, start, end);
        let (t, rows) = earnings::for_app(ctx.app(), ctx.principal()?, &app_id, from, to).await?;
        let currency = rows.first().map_or("USD".to_string(), |r| r.currency.clone());
        Ok(AppEarnings { totals: totals(&t, &currency), entries: rows.into_iter().map(Into::into).collect() })
    }

    /// The platform's marketplace revenue share (platform administrators).
    async fn marketplace_revenue(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "From (default: the start of this month).")] start: Option<DateTime>,
        #[graphql(desc = "Until (default: the end of this month).")] end: Option<DateTime>,
    ) -> async_graphql::Result<MarketplaceRevenue> {
        let (from, to) = range(ctx, start, end);
        let (t, apps) = earnings::platform(ctx.app(), ctx.principal()?, from, to).await?;
        Ok(MarketplaceRevenue {
            totals: totals(&t, "USD"),
            apps: apps.into_iter().map(|(id, t)| AppRevenue { app_id: ID(id), totals: totals(&t, "USD") }).collect(),
        })
    }
}

#[derive(Default)]
pub struct UsageBillingMutation;

#[Object]
impl UsageBillingMutation {
    /// Defines a billable metric (platform administrators).
    async fn create_billable_metric(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The metric.")] input: CreateBillableMetricInput,
    ) -> async_graphql::Result<BillableMetric> {
        let m = NewMetric {
            code: input.code,
            name: input.name,
            description: input.description,
            aggregation: input.aggregation.as_str().into(),
            field_name: input.field_name,
        };
        Ok(BillableMetric(metered::create_metric(ctx.app(), ctx.principal()?, m).await?))
    }

    /// Removes a billable metric and its price on every plan (platform administrators).
    async fn delete_billable_metric(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Metric id (`bm_…`).")] id: ID,
    ) -> async_graphql::Result<ID> {
        metered::delete_metric(ctx.app(), ctx.principal()?, &id).await?;
        Ok(id)
    }

    /// Prices a billable metric on a plan, replacing its price there (platform administrators).
    /// Months not closed yet are billed at it.
    async fn set_plan_charge(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The price.")] input: SetPlanChargeInput,
    ) -> async_graphql::Result<PlanCharge> {
        let charge = ChargeInput {
            model: input.model.into(),
            tiers: input
                .tiers
                .into_iter()
                .map(|t| Tier { up_to: t.up_to, unit_price_micros: t.unit_price_micros })
                .collect(),
            package_size: input.package_size,
            free_units: input.free_units,
        };
        Ok(PlanCharge(
            metered::set_charge(ctx.app(), ctx.principal()?, &input.plan_id, &input.metric_id, charge).await?,
        ))
    }

    /// Stops charging a metric on a plan (platform administrators).
    async fn remove_plan_charge(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Plan id (`pln_…`).")] plan_id: ID,
        #[graphql(desc = "Metric id (`bm_…`).")] metric_id: ID,
    ) -> async_graphql::Result<bool> {
        metered::remove_charge(ctx.app(), ctx.principal()?, &plan_id, &metric_id).await?;
        Ok(true)
    }

    /// Voids an OPEN invoice (platform administrators): no payment is due and, once nothing else
    /// is open, the subscription is in good standing with its plan served again.
    async fn void_invoice(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Invoice id (`inv_…`).")] id: ID,
    ) -> async_graphql::Result<Invoice> {
        Ok(Invoice::new(invoices::close_unpaid(ctx.app(), ctx.principal()?, &id, invoices::VOID).await?))
    }

    /// Marks an OPEN invoice uncollectible (platform administrators): its retries stop and the
    /// subscription stays as it stands.
    async fn mark_invoice_uncollectible(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Invoice id (`inv_…`).")] id: ID,
    ) -> async_graphql::Result<Invoice> {
        Ok(Invoice::new(invoices::close_unpaid(ctx.app(), ctx.principal()?, &id, invoices::UNCOLLECTIBLE).await?))
    }
}

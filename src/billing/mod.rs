//! Billing: subscriptions, proration, invoices with graduated overage, payments through a
//! provider interface and dunning. The plan row that drives the limiter drives the invoice: the
//! monthly quota the limiter counts is the usage the invoice bills.

pub mod earnings;
pub mod graphql;
pub mod html;
pub mod invoices;
pub mod metered;
pub mod model;
pub mod money;
pub mod payments;
pub mod provider;
pub mod subscriptions;
pub mod usage_graphql;

/// The root fields that manage an organization's billing. An operation of only these is admitted
/// past a hard quota or a spend cap, so an organization that is stopped can always see what it
/// owes, raise its plan, lift its cap or pay; it is not counted in the quota nor billed. The rate
/// windows still apply.
const OUTSIDE_QUOTA: [&str; 16] = [
    "Query.plans",
    "Query.subscription",
    "Query.previewSubscriptionChange",
    "Query.invoices",
    "Query.invoice",
    "Query.paymentMethods",
    "Query.upcomingInvoice",
    "Query.billableUsage",
    "Mutation.changeSubscription",
    "Mutation.cancelSubscription",
    "Mutation.resumeSubscription",
    "Mutation.setSpendCap",
    "Mutation.addPaymentMethod",
    "Mutation.setDefaultPaymentMethod",
    "Mutation.removePaymentMethod",
    "Mutation.payInvoice",
];

/// Whether an operation with these root fields (`Query.invoices`) is billing management only.
pub fn outside_quota(roots: &[String]) -> bool {
    !roots.is_empty() && roots.iter().all(|r| OUTSIDE_QUOTA.contains(&r.as_str()))
}

use std::sync::atomic::Ordering;

use crate::app::App;
use crate::limits::model::PlanRow;

/// The monthly request count at which a spend cap of `cap_cents` stops an overage plan: its
/// included quota plus the requests whose overage the cap pays for.
pub fn overage_stop(plan: &PlanRow, cap_cents: i64) -> Option<u64> {
    let quota = plan.monthly_quota?;
    let tiers: Vec<money::Tier> = serde_json::from_str(&plan.overage_tiers).unwrap_or_default();
    money::max_units_within(&tiers, quota, cap_cents).map(|n| n as u64)
}

/// Closes ended months and charges due invoices, at most once a minute per node (every node may:
/// each month of each subscription is closed once, each invoice charged by the node that claims it).
pub async fn maybe_run(app: &App) {
    let now = app.clock.now_ms();
    if now - app.billing_ran_at_ms.load(Ordering::Relaxed) < 60_000 {
        return;
    }
    app.billing_ran_at_ms.store(now, Ordering::Relaxed);
    run(app).await;
}

/// One billing pass: close, then collect.
pub async fn run(app: &App) {
    match invoices::close_periods(app).await {
        Ok(n) if n > 0 => tracing::info!(invoices = n, "billing: closed ended months"),
        Ok(_) => {}
        Err(e) => e.log(),
    }
    match payments::collect_due(app).await {
        Ok(n) if n > 0 => tracing::info!(invoices = n, "billing: charged due invoices"),
        Ok(_) => {}
        Err(e) => e.log(),
    }
}

//! Billing: subscriptions, proration, invoices with graduated overage, payments through a
//! provider interface and dunning. The plan row that drives the limiter drives the invoice: the
//! monthly quota the limiter counts is the usage the invoice bills.

pub mod graphql;
pub mod invoices;
pub mod model;
pub mod money;
pub mod payments;
pub mod provider;
pub mod subscriptions;

use std::sync::atomic::Ordering;

use crate::app::App;

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

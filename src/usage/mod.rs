//! Usage: metering every API call (buffered, batched, rolled up hourly and daily), metered events
//! the operator reports (`recordUsage`), analytics over the roll-ups, retention, and reconciling
//! the limiter's monthly quota counters from the roll-ups after a restart.

pub mod analytics;
pub mod graphql;
pub mod histogram;
pub mod logs;
pub mod meter;
pub mod recorder;
pub mod reported;
pub mod retention;
pub mod writer;

use crate::app::App;
use crate::error::Result;

/// Raises every organization's quota counter for this month to what the daily roll-ups hold, so a
/// restart (or a lost Redis) does not give a month's quota back. Counters never go down.
pub async fn reconcile_quotas(app: &App) -> Result<usize> {
    let now = app.clock.now_ms();
    let start = crate::platform::clock::month_start(now, 0);
    let used = analytics::quota_used_since(app, start).await?;
    let n = used.len();
    for (org, count) in used {
        app.limiter.reconcile_quota(&org, count as u64, now).await;
    }
    if n > 0 {
        tracing::info!(organizations = n, "monthly quota counters reconciled from usage roll-ups");
    }
    Ok(n)
}

//! Usage alerts. Raised two ways:
//!
//! - **On the request path**, by arithmetic on the limiter's decision (no I/O): the call that takes
//!   an organization's monthly count across 80 %, 90 % or 100 % of its quota (the counter is atomic
//!   in memory or Redis, so exactly one call crosses each threshold per month, on whichever node),
//!   a call refused by a rate window or the concurrency cap, and a key's call refused by the quota.
//!   The trigger is queued; a background task stores it.
//! - **By the evaluator** (every minute, over the hourly roll-ups): error spike, latency
//!   degradation and unusual activity — rules below — raised while they hold and resolved when
//!   they clear.
//!
//! An alert is one row per organization and condition while active (`dedupe_key`, a partial
//! unique index): a repeat bumps `occurrences` and `lastSeenAt`. A new alert and a resolution are
//! each an event in the outbox (`alert.triggered`, `alert.resolved`, and for thresholds
//! `quota.threshold_reached`; refused keys raise `quota.key_exceeded`), published on the bus for
//! subscriptions on every node.
//!
//! Rules (evaluated for organizations with calls in the current hour):
//! - `error_spike` (HIGH): this hour ≥ 20 calls, ≥ 10 % answered 5xx, and at least 3× the 5xx rate
//!   of the previous 24 hours.
//! - `latency_degradation` (MEDIUM): this hour ≥ 20 calls and p95 latency ≥ 2× the p95 of the
//!   previous 24 hours (which needs ≥ 100 calls).
//! - `unusual_activity` (LOW): this hour ≥ 100 calls and ≥ 5× the hourly average of the previous
//!   7 days.
//! - `rate_limit_exceeded` (MEDIUM): resolved 5 minutes after the last refusal.
//! - `quota_threshold` (MEDIUM 80 %, HIGH 90 %, CRITICAL 100 %): resolved when the month ends.

pub mod graphql;
mod model;
mod notices;
mod rules;
mod service;
mod store;
mod triggers;

use std::sync::Arc;

use crate::app::App;

pub use model::AlertRow;
pub use notices::Notices;
pub use rules::evaluate;
pub use service::{acknowledge, get, list};
pub use store::{drain, raise};
pub use triggers::{Trigger, crossed, observe};

/// Percentages of the monthly quota that raise an alert.
pub const THRESHOLDS: [u64; 3] = [80, 90, 100];

pub const THRESHOLD_EVENT: &str = "quota.threshold_reached";
pub const KEY_EXCEEDED_EVENT: &str = "quota.key_exceeded";
pub const TRIGGERED_EVENT: &str = "alert.triggered";
pub const RESOLVED_EVENT: &str = "alert.resolved";

/// Stores queued triggers as they come and evaluates the rules every minute, until `stop` fires.
pub fn spawn(app: Arc<App>, mut stop: tokio::sync::watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(100));
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => return,
            }
            if let Err(e) = drain(&app).await {
                e.log();
            }
            let now = app.clock.now_ms();
            let last = std::sync::atomic::AtomicI64::load(
                &app.notices.last_evaluation_ms,
                std::sync::atomic::Ordering::Relaxed,
            );
            if now - last >= rules::EVALUATE_EVERY_MS {
                app.notices.last_evaluation_ms.store(now, std::sync::atomic::Ordering::Relaxed);
                if let Err(e) = evaluate(&app, now).await {
                    e.log();
                }
            }
        }
    })
}

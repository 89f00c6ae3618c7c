//! Quota events, raised as calls happen: `quota.threshold_reached` when an organization's monthly
//! count crosses 80 %, 90 % and 100 % of its quota, and `quota.key_exceeded` when a key's call is
//! refused for the quota. The limiter's counter is atomic (one lock, or one Redis script), so
//! exactly one call crosses each threshold in a month — on whichever node — and raises it once.
//!
//! Detection is arithmetic on the limiter's decision (no I/O); the event is handed to a background
//! task that writes it to the outbox (`events`) and publishes it on the bus, so subscriptions on
//! every node see it. Not yet: stored alerts with severity, acknowledgement and auto-resolve, error
//! spikes, latency degradation and unusual activity.

use std::sync::Arc;

use diesel_async::RunQueryDsl;
use tokio::sync::mpsc;

use crate::app::App;
use crate::error::{Error, Result};
use crate::events::PendingEvent;
use crate::limits::limiter::{Decision, Refusal};
use crate::platform::db::schema::events;
use crate::platform::ids::{KeyId, OrgId};
use crate::transaction;

/// Percentages of the monthly quota that raise an event.
pub const THRESHOLDS: [u64; 3] = [80, 90, 100];

pub const THRESHOLD_EVENT: &str = "quota.threshold_reached";
pub const KEY_EXCEEDED_EVENT: &str = "quota.key_exceeded";

/// Thresholds crossed by the call that took the month's count from `used - cost` to `used`.
pub fn crossed(quota: u64, used: u64, cost: u64) -> Vec<u64> {
    let before = used.saturating_sub(cost);
    THRESHOLDS
        .into_iter()
        .filter(|t| {
            let at = (quota * t).div_ceil(100).max(1);
            before < at && used >= at
        })
        .collect()
}

/// An event to raise.
#[derive(Debug)]
pub struct QuotaNotice {
    pub org_id: OrgId,
    pub event_type: &'static str,
    pub data: serde_json::Value,
}

/// Looks at a decision just made for `org` (and the key, if the call used one): queues an event
/// for each threshold the call crossed, or for a key refused by the quota. O(1), no I/O.
pub fn observe(app: &App, org: &OrgId, key: Option<&KeyId>, decision: &Decision, now_ms: i64) {
    let Some(quota) = decision.policy.monthly_quota else { return };
    let period_end = now_ms + crate::limits::limiter::month_reset_ms(now_ms);
    let period_end = chrono::DateTime::from_timestamp_millis(period_end).map(|d| d.to_rfc3339()).unwrap_or_default();
    if decision.allowed() {
        for percent in crossed(quota, decision.quota_used, 1) {
            app.notices.send(QuotaNotice {
                org_id: org.clone(),
                event_type: THRESHOLD_EVENT,
                data: serde_json::json!({
                    "percent": percent, "used": decision.quota_used, "quota": quota, "periodEnd": period_end,
                    "severity": match percent { 100 => "CRITICAL", 90 => "HIGH", _ => "MEDIUM" },
                }),
            });
        }
    } else if decision.refusal == Some(Refusal::Quota)
        && let Some(key) = key
        && app.notices.first_refusal(key, now_ms)
    {
        app.notices.send(QuotaNotice {
            org_id: org.clone(),
            event_type: KEY_EXCEEDED_EVENT,
            data: serde_json::json!({ "keyId": key.as_str(), "quota": quota, "periodEnd": period_end, "severity": "CRITICAL" }),
        });
    }
}

/// The queue of notices and the per-node memory of keys already reported this month.
pub struct Notices {
    tx: mpsc::Sender<QuotaNotice>,
    rx: tokio::sync::Mutex<mpsc::Receiver<QuotaNotice>>,
    /// (key, month) pairs reported by this node: a key's refusals raise one event a month per node.
    reported: moka::sync::Cache<(KeyId, i32), ()>,
}

impl Default for Notices {
    fn default() -> Self {
        let (tx, rx) = mpsc::channel(10_000);
        Self { tx, rx: tokio::sync::Mutex::new(rx), reported: moka::sync::Cache::new(100_000) }
    }
}

impl Notices {
    fn send(&self, notice: QuotaNotice) {
        if self.tx.try_send(notice).is_err() {
            tracing::warn!("quota notice queue full: a quota event was dropped");
        }
    }

    fn first_refusal(&self, key: &KeyId, now_ms: i64) -> bool {
        let entry = (key.clone(), crate::limits::limiter::month_index(now_ms));
        if self.reported.contains_key(&entry) {
            return false;
        }
        self.reported.insert(entry, ());
        true
    }

    /// Writes and publishes every queued notice.
    pub async fn drain(&self, app: &App) -> Result<usize> {
        let mut rx = self.rx.lock().await;
        let mut n = 0;
        while let Ok(notice) = rx.try_recv() {
            let event = PendingEvent::new(app, &notice.org_id, notice.event_type, notice.data);
            transaction!(app.db, c => {
                diesel::insert_into(events::table).values(&event.row).execute(c).await?;
                Ok::<_, Error>(())
            })?;
            event.publish(app).await;
            n += 1;
        }
        Ok(n)
    }
}

/// Raises queued notices as they come, until `stop` fires.
pub fn spawn(app: Arc<App>, mut stop: tokio::sync::watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(100));
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => return,
            }
            if let Err(e) = app.notices.drain(&app).await {
                e.log();
            }
        }
    })
}

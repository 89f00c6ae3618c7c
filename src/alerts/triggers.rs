//! Triggers: what raises an alert (or only an event), found by arithmetic on a limiter decision
//! on the request path — no I/O; [`observe`] queues them for the store.

use crate::app::App;
use crate::limits::limiter::{Decision, Refusal};
use crate::platform::ids::{KeyId, OrgId};

use super::{KEY_EXCEEDED_EVENT, THRESHOLD_EVENT, THRESHOLDS};

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

/// Something that raises (or re-raises) an alert, or only an event.
#[derive(Debug, Clone)]
pub struct Trigger {
    pub org_id: OrgId,
    /// `None`: an event only (`quota.key_exceeded`).
    pub kind: Option<&'static str>,
    pub severity: &'static str,
    pub dedupe_key: String,
    pub title: String,
    pub data: serde_json::Value,
    /// An extra event raised with a new alert (or alone).
    pub event: Option<&'static str>,
}

/// Looks at a decision just made for `org` (and the key, if the call used one) and queues what it
/// raises. O(1), no I/O.
pub fn observe(app: &App, org: &OrgId, key: Option<&KeyId>, decision: &Decision, units: u64, now_ms: i64) {
    let month = crate::platform::clock::month_of(now_ms);
    match (decision.allowed(), decision.refusal) {
        (true, _) => {
            let Some(quota) = decision.policy.monthly_quota else { return };
            for percent in crossed(quota, decision.quota_used, units) {
                let severity = match percent {
                    100 => "CRITICAL",
                    90 => "HIGH",
                    _ => "MEDIUM",
                };
                app.notices.send(Trigger {
                    org_id: org.clone(),
                    kind: Some("quota_threshold"),
                    severity,
                    dedupe_key: format!("quota:{month}:{percent}"),
                    title: format!("{percent} % of the monthly quota used ({} of {quota})", decision.quota_used),
                    data: serde_json::json!({
                        "percent": percent, "used": decision.quota_used, "quota": quota, "month": month,
                        "severity": severity,
                    }),
                    event: Some(THRESHOLD_EVENT),
                });
            }
        }
        (false, Some(Refusal::Quota)) => {
            if let Some(key) = key {
                app.notices.send_once(format!("key:{key}:{month}"), || Trigger {
                    org_id: org.clone(),
                    kind: None,
                    severity: "CRITICAL",
                    dedupe_key: String::new(),
                    title: format!("key {key} refused: monthly quota used up"),
                    data: serde_json::json!({ "keyId": key.as_str(), "month": month, "severity": "CRITICAL" }),
                    event: Some(KEY_EXCEEDED_EVENT),
                });
            }
        }
        (false, _) => {
            // One trigger per organization per minute per node keeps `lastSeenAt` fresh.
            let window = match decision.refusal {
                Some(Refusal::Rate(i)) => decision.policy.windows.get(i).map(|w| w.name).unwrap_or("rate"),
                _ => "concurrency",
            };
            app.notices.send_once(format!("rl:{org}:{}", now_ms / 60_000), || Trigger {
                org_id: org.clone(),
                kind: Some("rate_limit_exceeded"),
                severity: "MEDIUM",
                dedupe_key: "rate_limit".into(),
                title: "requests are being refused by rate limits".into(),
                data: serde_json::json!({ "window": window, "severity": "MEDIUM" }),
                event: None,
            });
        }
    }
}

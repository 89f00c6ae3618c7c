//! The periodic rules (every minute, over the hourly roll-ups): error spike, latency degradation
//! and unusual activity raised while they hold and resolved when they clear; rate-limit and quota
//! alerts resolved once quiet or past their month. The rules are in the module doc of `alerts`.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::Trigger;
use super::model::AlertRow;
use super::store::{raise, resolve};
use crate::app::App;
use crate::error::Result;
use crate::platform::db::schema::alerts;
use crate::platform::ids::OrgId;
use crate::usage::analytics::{self, Granularity, Scope};
use crate::usage::meter::HOUR_MS;
use crate::with_conn;

const RATE_LIMIT_QUIET_MS: i64 = 5 * 60_000;
pub(super) const EVALUATE_EVERY_MS: i64 = 60_000;

/// Evaluates the periodic rules at `now` and resolves what cleared. Returns alerts raised.
pub async fn evaluate(app: &App, now: i64) -> Result<usize> {
    let active: Vec<AlertRow> = with_conn!(app.db, c => {
        alerts::table.filter(alerts::resolved_at.is_null()).select(AlertRow::as_select()).load(c).await?
    });
    let month = crate::platform::clock::month_of(now);
    for a in &active {
        let cleared = match a.kind.as_str() {
            "quota_threshold" => !a.dedupe_key.starts_with(&format!("quota:{month}:")),
            "rate_limit_exceeded" => now - a.last_seen_at >= RATE_LIMIT_QUIET_MS,
            _ => false,
        };
        if cleared {
            resolve(app, a.clone(), now).await?;
        }
    }
    // Organizations with calls this hour.
    let hour = now.div_euclid(HOUR_MS) * HOUR_MS;
    let orgs: Vec<String> = with_conn!(app.db, c => {
        crate::platform::db::schema::usage_rollups::table
            .filter(crate::platform::db::schema::usage_rollups::granularity.eq("hour"))
            .filter(crate::platform::db::schema::usage_rollups::level.eq(3))
            .filter(crate::platform::db::schema::usage_rollups::bucket_start.eq(hour))
            .select(crate::platform::db::schema::usage_rollups::org_id)
            .distinct()
            .load(c).await?
    });
    let mut raised = 0;
    for org in orgs {
        let Ok(org_id) = org.parse::<OrgId>() else { continue };
        let scope = |start, end| Scope { org: org_id.clone(), key: None, start, end, granularity: Granularity::Hour };
        let current = analytics::summary(app, &scope(hour, hour + HOUR_MS)).await?;
        let day = analytics::summary(app, &scope(hour - 24 * HOUR_MS, hour)).await?;
        let week = analytics::summary(app, &scope(hour - 7 * 24 * HOUR_MS, hour)).await?;
        let rate = |s: &analytics::Stats| if s.calls == 0 { 0.0 } else { s.server_errors as f64 / s.calls as f64 };
        let error_spike = current.calls >= 20 && rate(&current) >= 0.10 && rate(&current) >= 3.0 * rate(&day);
        let p95_now = current.percentile_ms(95.0);
        let p95_before = day.percentile_ms(95.0).filter(|_| day.calls >= 100);
        let latency = current.calls >= 20 && matches!((p95_now, p95_before), (Some(n), Some(b)) if n >= 2.0 * b);
        let hourly_avg = week.calls as f64 / (7.0 * 24.0);
        let unusual = current.calls >= 100 && current.calls as f64 >= 5.0 * hourly_avg;
        let rules: [(&str, &str, bool, String, serde_json::Value); 3] = [
            (
                "error_spike",
                "HIGH",
                error_spike,
                format!("{:.0} % of calls this hour failed with 5xx", rate(&current) * 100.0),
                serde_json::json!({ "errorRate": rate(&current), "baselineErrorRate": rate(&day), "calls": current.calls }),
            ),
            (
                "latency_degradation",
                "MEDIUM",
                latency,
                format!("p95 latency this hour is {:.0} ms", p95_now.unwrap_or(0.0)),
                serde_json::json!({ "p95LatencyMs": p95_now, "baselineP95LatencyMs": p95_before }),
            ),
            (
                "unusual_activity",
                "LOW",
                unusual,
                format!(
                    "{} calls this hour, {:.0}× the hourly average of the last 7 days",
                    current.calls,
                    current.calls as f64 / hourly_avg.max(1.0)
                ),
                serde_json::json!({ "calls": current.calls, "hourlyAverage": hourly_avg }),
            ),
        ];
        for (kind, severity, holds, title, data) in rules {
            let active_one =
                active.iter().find(|a| a.org_id.as_str() == org && a.kind == kind && a.resolved_at.is_none());
            if holds {
                let mut data = data;
                data["severity"] = severity.into();
                raise(
                    app,
                    Trigger {
                        org_id: org_id.clone(),
                        kind: Some(kind),
                        severity,
                        dedupe_key: kind.into(),
                        title,
                        data,
                        event: None,
                    },
                    now,
                )
                .await?;
                raised += 1;
            } else if let Some(a) = active_one {
                resolve(app, a.clone(), now).await?;
            }
        }
    }
    // Rules of organizations quiet this hour have cleared.
    for a in
        active.iter().filter(|a| matches!(a.kind.as_str(), "error_spike" | "latency_degradation" | "unusual_activity"))
    {
        let busy: i64 = with_conn!(app.db, c => {
            crate::platform::db::schema::usage_rollups::table
                .filter(crate::platform::db::schema::usage_rollups::granularity.eq("hour"))
                .filter(crate::platform::db::schema::usage_rollups::org_id.eq(&a.org_id))
                .filter(crate::platform::db::schema::usage_rollups::level.eq(3))
                .filter(crate::platform::db::schema::usage_rollups::bucket_start.eq(hour))
                .count()
                .get_result(c).await?
        });
        if busy == 0 {
            resolve(app, a.clone(), now).await?;
        }
    }
    Ok(raised)
}

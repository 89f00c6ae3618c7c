//! REST routes of usage: reported events and analytics.

use axum::http::Method;
use serde_json::{Value, json};

use super::*;
use crate::error::{Error, Result};
use crate::rest::RestInput;

/// `?period=last_7_days&key_id=key_…` → `$period`, `$keyId`.
fn analytics(i: &RestInput) -> Result<Value> {
    let period = i.query("period").unwrap_or("current_month");
    if crate::usage::graphql::UsagePeriod::parse(period).is_none() {
        return Err(Error::bad_input(
            "period",
            "one of last_hour, last_24_hours, last_7_days, last_30_days, current_month, previous_month",
        ));
    }
    // The GraphQL enum value is the upper-case spelling.
    Ok(json!({ "period": period.to_ascii_uppercase(), "keyId": i.query("key_id") }))
}

pub(super) fn routes() -> Vec<Route> {
    use Method as M;
    vec![
        r(
            M::POST,
            "/usage/events",
            "Report metered usage (idempotent per event key)",
            leak(format!("mutation($input: RecordUsageInput!) {{ recordUsage(input: $input) {{ {RECORDED} }} }}")),
            "recordUsage",
            200,
            body_input,
            Shape::AsIs,
        ),
        r(
            M::GET,
            "/analytics/usage",
            "Usage summary for a period",
            leak(format!(
                "query($period: UsagePeriod!, $keyId: ID) {{ usage(period: $period, keyId: $keyId) {{ start end stats {{ {STATS} }} }} }}"
            )),
            "usage",
            200,
            analytics,
            Shape::AsIs,
        ),
        r(
            M::GET,
            "/analytics/endpoints",
            "Usage per operation and route",
            leak(format!(
                "query($period: UsagePeriod!, $keyId: ID) {{ usageByEndpoint(period: $period, keyId: $keyId) {{ operation stats {{ {STATS} }} }} }}"
            )),
            "usageByEndpoint",
            200,
            analytics,
            Shape::AsIs,
        ),
        r(
            M::GET,
            "/analytics/errors",
            "Calls per error status",
            "query($period: UsagePeriod!, $keyId: ID) { errorBreakdown(period: $period, keyId: $keyId) { status calls share } }",
            "errorBreakdown",
            200,
            analytics,
            Shape::AsIs,
        ),
        r(
            M::GET,
            "/analytics/performance",
            "Latency per operation and route",
            "query($period: UsagePeriod!, $keyId: ID) { usageByEndpoint(period: $period, keyId: $keyId) { operation stats { calls avgLatencyMs p50LatencyMs p95LatencyMs p99LatencyMs } } }",
            "usageByEndpoint",
            200,
            analytics,
            Shape::AsIs,
        ),
        r(
            M::GET,
            "/analytics/costs",
            "What the running month costs so far and its forecast to the month's end (the numbers the invoice bills)",
            "{ upcomingInvoice { periodStart periodEnd lines { kind description quantity unitPriceMicros amount { amount currency } appId } total { amount currency } forecastLines { kind description quantity unitPriceMicros amount { amount currency } appId } forecastTotal { amount currency } } }",
            "upcomingInvoice",
            200,
            no_vars,
            Shape::AsIs,
        ),
    ]
}

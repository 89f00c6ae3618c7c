//! REST routes of usage: reported events and analytics.

use axum::http::Method;

use super::*;

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
            &[],
            Shape::AsIs,
        ),
        r(
            M::GET,
            "/api/usage",
            "Usage summary for a period (seed 000 spelling of /analytics/usage)",
            leak(format!(
                "query($period: UsagePeriod! = CURRENT_MONTH, $keyId: ID) {{ usage(period: $period, keyId: $keyId) {{ start end stats {{ {STATS} }} }} }}"
            )),
            "usage",
            200,
            &[],
            Shape::AsIs,
        ),
        r(
            M::GET,
            "/api/usage/breakdown",
            "Usage per hour or day between two times (`?start=&end=&granularity=day&key_id=`)",
            leak(format!(
                "query($start: DateTime!, $end: DateTime!, $granularity: UsageGranularity! = HOUR, $keyId: ID) {{ usageHistory(start: $start, end: $end, granularity: $granularity, keyId: $keyId) {{ start stats {{ {STATS} }} }} }}"
            )),
            "usageHistory",
            200,
            &[],
            Shape::AsIs,
        ),
        r(
            M::GET,
            "/api/usage/by-key",
            "Usage per API key for a period",
            leak(format!(
                "query($period: UsagePeriod! = CURRENT_MONTH) {{ usageByKey(period: $period) {{ keyId apiKey {{ id name prefix }} stats {{ {STATS} }} }} }}"
            )),
            "usageByKey",
            200,
            &[],
            Shape::AsIs,
        ),
        r(
            M::GET,
            "/api/usage/by-endpoint",
            "Usage per operation and route for a period",
            leak(format!(
                "query($period: UsagePeriod! = CURRENT_MONTH, $keyId: ID) {{ usageByEndpoint(period: $period, keyId: $keyId) {{ operation stats {{ {STATS} }} }} }}"
            )),
            "usageByEndpoint",
            200,
            &[],
            Shape::AsIs,
        ),
        r(
            M::GET,
            "/api/logs",
            "Request logs: the organization's calls one by one, newest first (`?limit=&cursor=&before=&since=&key_id=&status=`; `cursor` is the `cursor` of the last call seen)",
            "query($first: Int! = 50, $after: String, $before: DateTime, $since: DateTime, $keyId: ID, $status: Int) { requestLogs(first: $first, after: $after, before: $before, since: $since, keyId: $keyId, status: $status) { cursor occurredAt keyId source operation status latencyMs requestBytes responseBytes } }",
            "requestLogs",
            200,
            &[],
            Shape::AsIs,
        ),
        r(
            M::GET,
            "/analytics/usage",
            "Usage summary for a period",
            leak(format!(
                "query($period: UsagePeriod! = CURRENT_MONTH, $keyId: ID) {{ usage(period: $period, keyId: $keyId) {{ start end stats {{ {STATS} }} }} }}"
            )),
            "usage",
            200,
            &[],
            Shape::AsIs,
        ),
        r(
            M::GET,
            "/analytics/endpoints",
            "Usage per operation and route",
            leak(format!(
                "query($period: UsagePeriod! = CURRENT_MONTH, $keyId: ID) {{ usageByEndpoint(period: $period, keyId: $keyId) {{ operation stats {{ {STATS} }} }} }}"
            )),
            "usageByEndpoint",
            200,
            &[],
            Shape::AsIs,
        ),
        r(
            M::GET,
            "/analytics/errors",
            "Calls per error status",
            "query($period: UsagePeriod! = CURRENT_MONTH, $keyId: ID) { errorBreakdown(period: $period, keyId: $keyId) { status calls share } }",
            "errorBreakdown",
            200,
            &[],
            Shape::AsIs,
        ),
        r(
            M::GET,
            "/analytics/performance",
            "Latency per operation and route",
            "query($period: UsagePeriod! = CURRENT_MONTH, $keyId: ID) { usageByEndpoint(period: $period, keyId: $keyId) { operation stats { calls avgLatencyMs p50LatencyMs p95LatencyMs p99LatencyMs } } }",
            "usageByEndpoint",
            200,
            &[],
            Shape::AsIs,
        ),
        r(
            M::GET,
            "/analytics/costs",
            "What the running month costs so far and its forecast to the month's end (the numbers the invoice bills)",
            "{ upcomingInvoice { periodStart periodEnd lines { kind description quantity unitPriceMicros amount { amount currency } appId } total { amount currency } forecastLines { kind description quantity unitPriceMicros amount { amount currency } appId } forecastTotal { amount currency } } }",
            "upcomingInvoice",
            200,
            &[],
            Shape::AsIs,
        ),
    ]
}

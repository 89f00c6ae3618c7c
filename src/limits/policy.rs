//! What limits apply to a request: a key's override, else its organization's plan, else the
//! default plan; anonymous requests get a small per-IP policy. Plans are cached per node and the
//! cache is cleared on every node when a plan or an organization's plan changes.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::gcra::Window;
use super::model::PlanRow;

/// Where a policy came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The API key's own override.
    Key,
    /// The organization's plan (or the default plan).
    Plan,
    /// Unauthenticated callers, per IP address.
    Anonymous,
}

/// A key's override of its plan's limits (stored as JSON on the key). Unset fields keep the plan's.
/// An override only tightens its plan — each limit applied is the smaller of the two, whatever the
/// plan becomes later — unless a platform administrator or service key set it (`above_plan`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Override {
    pub per_second: Option<u64>,
    pub per_minute: Option<u64>,
    pub per_hour: Option<u64>,
    pub per_day: Option<u64>,
    pub burst: Option<u64>,
    pub concurrency: Option<u64>,
    /// Set by a platform administrator or service key: may raise the plan's limits.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub above_plan: bool,
}

impl Override {
    pub fn is_empty(&self) -> bool {
        Override { above_plan: false, ..self.clone() } == Override::default()
    }
}

/// The limit a key gets from its override `o` and its plan's `plan`: the override's, but never
/// above the plan's unless the override may raise it.
fn tighten(o: Option<u64>, plan: Option<u64>, above_plan: bool) -> Option<u64> {
    match (o, plan) {
        (Some(o), Some(p)) if !above_plan => Some(o.min(p)),
        (Some(o), _) => Some(o),
        (None, p) => p,
    }
}

/// The limits for one request.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Names the policy in headers: the plan slug, or `key` for an override, or `anonymous`.
    pub name: String,
    pub source: Source,
    pub windows: Vec<Window>,
    pub monthly_quota: Option<u64>,
    /// The monthly count past which requests are refused: the quota of a `hard` plan; for an
    /// `overage` plan (served past its quota and billed), none, or the count the organization's
    /// spend cap affords. The quota is counted either way.
    pub quota_stop: Option<u64>,
    pub concurrency: Option<u64>,
    pub plan: Option<Arc<PlanRow>>,
    /// The `RateLimit-Policy` header value, rendered once.
    pub header: axum::http::HeaderValue,
}

fn header(windows: &[Window], monthly_quota: Option<u64>) -> axum::http::HeaderValue {
    super::headers::policy_header(windows, monthly_quota)
}

const PERIODS: [(&str, i64); 4] = [("second", 1_000), ("minute", 60_000), ("hour", 3_600_000), ("day", 86_400_000)];

fn windows(limits: [Option<u64>; 4], burst: u64) -> Vec<Window> {
    let mut out: Vec<Window> = PERIODS
        .iter()
        .zip(limits)
        .filter_map(|(&(name, period_ms), limit)| {
            limit.filter(|l| *l > 0).map(|limit| Window { name, period_ms, limit, capacity: limit, points: false })
        })
        .collect();
    // The burst allowance applies to the shortest window.
    if let Some(first) = out.first_mut() {
        first.capacity = first.limit.saturating_add(burst);
    }
    out
}

/// The plan's GraphQL query-cost bucket as a points window: `bucket` points, restored at `rate`
/// a second, charged the query's cost.
fn cost_window(plan: &PlanRow) -> Window {
    Window {
        name: "cost",
        period_ms: 1000,
        limit: plan.query_cost_restore_rate.max(1) as u64,
        capacity: plan.query_cost_bucket.max(1) as u64,
        points: true,
    }
}

fn positive(v: Option<i64>) -> Option<u64> {
    v.filter(|n| *n > 0).map(|n| n as u64)
}

impl Policy {
    pub fn from_plan(plan: Arc<PlanRow>) -> Self {
        let limits =
            [positive(plan.per_second), positive(plan.per_minute), positive(plan.per_hour), positive(plan.per_day)];
        let mut windows = windows(limits, plan.burst.max(0) as u64);
        windows.push(cost_window(&plan));
        let monthly_quota = plan.monthly_quota.filter(|q| *q >= 0).map(|q| q as u64);
        Policy {
            name: plan.slug.clone(),
            source: Source::Plan,
            header: header(&windows, monthly_quota),
            windows,
            monthly_quota,
            quota_stop: if plan.quota_mode == "overage" { None } else { monthly_quota },
            concurrency: positive(plan.concurrency),
            plan: Some(plan),
        }
    }

    /// The plan's policy with a key's override applied on top.
    pub fn with_override(plan: Arc<PlanRow>, o: &Override) -> Self {
        let base = Policy::from_plan(plan.clone());
        if o.is_empty() {
            return base;
        }
        let up = o.above_plan;
        let limits = [
            tighten(o.per_second, positive(plan.per_second), up),
            tighten(o.per_minute, positive(plan.per_minute), up),
            tighten(o.per_hour, positive(plan.per_hour), up),
            tighten(o.per_day, positive(plan.per_day), up),
        ];
        let burst = tighten(o.burst, Some(plan.burst.max(0) as u64), up).unwrap_or(0);
        let mut windows = windows(limits, burst);
        windows.push(cost_window(&plan));
        Policy {
            name: "key".into(),
            source: Source::Key,
            header: header(&windows, base.monthly_quota),
            windows,
            monthly_quota: base.monthly_quota,
            quota_stop: base.quota_stop,
            concurrency: tighten(o.concurrency, base.concurrency, up),
            plan: Some(plan),
        }
    }

    /// The policy with an organization's spend stop: an overage plan refuses past `stop` requests
    /// in the month (a hard plan keeps its quota).
    pub fn with_stop(mut self, stop: Option<u64>) -> Self {
        if self.plan.as_ref().is_some_and(|p| p.quota_mode == "overage") {
            self.quota_stop = stop;
        }
        self
    }

    /// The same limits without the monthly quota: nothing counted, nothing refused by it.
    pub fn without_quota(&self) -> Self {
        let mut p = self.clone();
        p.monthly_quota = None;
        p.quota_stop = None;
        p.header = header(&p.windows, None);
        p
    }

    /// A fixed policy of the server's own (not a plan's): its windows and concurrency, no quota.
    fn standing(name: &str, source: Source, windows: Vec<Window>, concurrency: Option<u64>) -> Self {
        Policy {
            name: name.into(),
            source,
            header: header(&windows, None),
            windows,
            monthly_quota: None,
            quota_stop: None,
            concurrency,
            plan: None,
        }
    }

    /// A webhook endpoint's own limit: `per_second` requests a second, no burst beyond it.
    pub fn webhook(per_second: u64) -> Self {
        Self::standing("webhook", Source::Plan, windows([Some(per_second), None, None, None], 0), None)
    }

    /// Failed credentials (an unknown, revoked or expired key, session or token) per IP: 30 a
    /// minute, no burst — guessing credentials ends in 429 after a bounded number of tries, while
    /// a valid credential is never charged here.
    pub fn failed_credentials() -> Self {
        Self::standing("failed_credentials", Source::Anonymous, windows([None, Some(30), None, None], 0), None)
    }

    /// Password changes of one user (each attempt, right or wrong): 10 an hour, no burst — a
    /// stolen session cannot guess the account's password at the plan's rate.
    pub fn password_changes() -> Self {
        Self::standing("password_changes", Source::Anonymous, windows([None, None, Some(10), None], 0), None)
    }

    /// Unauthenticated requests (sign-up, login): per IP, 10/s with a burst of 20 and 300/min.
    pub fn anonymous() -> Self {
        Self::standing("anonymous", Source::Anonymous, windows([Some(10), Some(300), None, None], 20), Some(50))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Arc<PlanRow> {
        Arc::new(PlanRow {
            id: "pln_x".into(),
            slug: "starter".into(),
            name: "Starter".into(),
            description: String::new(),
            price_cents: Some(0),
            annual_price_cents: None,
            currency: "USD".into(),
            is_default: true,
            per_second: Some(10),
            per_minute: None,
            per_hour: None,
            per_day: Some(10_000),
            burst: 5,
            monthly_quota: Some(100_000),
            concurrency: Some(5),
            max_apps: Some(3),
            max_webhook_endpoints: None,
            max_subscriptions: Some(10),
            query_cost_max: 1000,
            query_cost_bucket: 1000,
            query_cost_restore_rate: 50,
            created_at: 0,
            updated_at: 0,
            quota_mode: "hard".into(),
            overage_tiers: "[]".into(),
            max_members: None,
            max_api_keys: None,
        })
    }

    #[test]
    fn plan_windows_carry_the_burst_on_the_shortest_window() {
        let p = Policy::from_plan(plan());
        assert_eq!(p.windows.len(), 3, "second, day and the query-cost bucket");
        assert!(p.windows[2].points);
        assert_eq!((p.windows[0].name, p.windows[0].limit, p.windows[0].capacity), ("second", 10, 15));
        assert_eq!((p.windows[1].name, p.windows[1].capacity), ("day", 10_000));
        assert_eq!(p.monthly_quota, Some(100_000));
    }

    #[test]
    fn a_key_override_replaces_only_what_it_sets() {
        let o = Override { per_second: Some(2), burst: Some(0), per_minute: Some(30), ..Default::default() };
        let p = Policy::with_override(plan(), &o);
        assert_eq!(p.source, Source::Key);
        let names: Vec<_> = p.windows.iter().filter(|w| !w.points).map(|w| (w.name, w.limit, w.capacity)).collect();
        assert_eq!(names, vec![("second", 2, 2), ("minute", 30, 30), ("day", 10_000, 10_000)]);
        assert_eq!(p.concurrency, Some(5), "unset fields keep the plan's");
        assert_eq!(p.monthly_quota, Some(100_000), "the quota belongs to the organization");
    }
}

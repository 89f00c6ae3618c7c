//! Plans and policy resolution. A request's policy: the key's override on top of its
//! organization's plan, the default plan when the organization has none, or the anonymous
//! per-IP policy. Plans are cached per node; edits clear the cache on every node.

use std::net::IpAddr;
use std::sync::Arc;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::limiter::{Decision, Subject};
use super::model::PlanRow;
use super::policy::{Override, Policy};
use crate::app::App;
use crate::auth::{Actor, Principal};
use crate::error::{Error, Result};
use crate::platform::bus::BusMessage;
use crate::platform::db::schema::{operation_costs, organizations, plans, subscriptions};
use crate::platform::ids::{OrgId, PlanId};
use crate::platform::patch::Patch;
use crate::{transaction, with_conn};

pub async fn list_plans(app: &App) -> Result<Vec<PlanRow>> {
    Ok(with_conn!(app.db, c => plans::table.order(plans::per_second.asc()).select(PlanRow::as_select()).load(c).await?))
}

/// One plan (every plan is visible to every signed-in caller, as `plans` lists them).
pub async fn get_plan(app: &App, id: &str) -> Result<PlanRow> {
    let id: PlanId = id.parse().map_err(|_| Error::NotFound("plan"))?;
    with_conn!(app.db, c => plans::table.find(id.as_str()).select(PlanRow::as_select()).first(c).await.optional()?)
        .ok_or(Error::NotFound("plan"))
}

async fn load_plan_for_org(app: &App, org: &str) -> Result<Arc<PlanRow>> {
    let own: Option<PlanRow> = with_conn!(app.db, c => {
        organizations::table
            .inner_join(plans::table)
            .filter(organizations::id.eq(org))
            .select(PlanRow::as_select())
            .first(c).await.optional()?
    });
    if let Some(p) = own {
        return Ok(Arc::new(p));
    }
    let default: Option<PlanRow> = with_conn!(app.db, c => {
        plans::table.filter(plans::is_default.eq(true)).order(plans::id.asc()).select(PlanRow::as_select()).first(c).await.optional()?
    });
    default
        .map(Arc::new)
        .ok_or_else(|| Error::internal(anyhow::anyhow!("no default plan: the plans table has no row with is_default")))
}

/// The organization's plan (or the default plan), through the per-node cache.
pub async fn plan_for_org(app: &App, org: &OrgId) -> Result<Arc<PlanRow>> {
    if let Some(p) = app.plans.of_org(org.as_str()) {
        return Ok(p);
    }
    let plan = load_plan_for_org(app, org.as_str()).await?;
    app.plans.store(org.to_string(), plan.clone());
    Ok(plan)
}

/// The subject and policy of a request.
pub async fn resolve(app: &App, principal: Option<&Principal>, ip: Option<IpAddr>) -> Result<(Subject, Arc<Policy>)> {
    let Some(p) = principal else {
        let ip = ip.map(|i| i.to_string()).unwrap_or_else(|| "unknown".into());
        return Ok((Subject { rate: format!("ip:{ip}"), org: format!("anonymous:{ip}") }, app.plans.anonymous.clone()));
    };
    let plan = plan_for_org(app, &p.org_id).await?;
    let stop = spend_stop(app, &p.org_id, &plan).await?;
    let (rate, policy) = match &p.actor {
        Actor::ApiKey { key_id, .. } => (key_id.to_string(), policy_for(app, plan, p.rate_override.as_deref(), stop)),
        Actor::User { user_id, .. } => (format!("{user_id}:{}", p.org_id), policy_for(app, plan, None, stop)),
        // An app is limited per installing organization, by the plan and its own tighter limits.
        Actor::OAuthApp { app_id, .. } => {
            (format!("{app_id}:{}", p.org_id), policy_for(app, plan, p.rate_override.as_deref(), stop))
        }
    };
    Ok((Subject { rate, org: p.org_id.to_string() }, policy))
}

/// The policy of a plan with an optional key override and spend stop, from the per-node cache.
pub fn policy_for(app: &App, plan: Arc<PlanRow>, o: Option<&Override>, stop: Option<u64>) -> Arc<Policy> {
    app.plans.policy(plan, o, stop)
}

/// The monthly request count at which an organization on an overage plan is stopped by its spend
/// cap (none without a cap, and never for a hard plan: no read on their request path). Cached
/// per node with the plans, cleared with them.
pub async fn spend_stop(app: &App, org: &OrgId, plan: &PlanRow) -> Result<Option<u64>> {
    if plan.quota_mode != "overage" {
        return Ok(None);
    }
    if let Some(s) = app.plans.stop_of(org.as_str()) {
        return Ok(s);
    }
    let cap: Option<i64> = with_conn!(app.db, c => {
        subscriptions::table.filter(subscriptions::org_id.eq(org)).select(subscriptions::spend_cap_cents).first::<Option<i64>>(c).await.optional()?.flatten()
    });
    let stop = cap.and_then(|cap| crate::billing::overage_stop(plan, cap));
    app.plans.store_stop(org.to_string(), stop);
    Ok(stop)
}

/// Decides one use of a key presented to `verifyApiKey`, against that key's own limits.
pub async fn check_key_use(app: &App, key: &crate::auth::KeyCredential) -> Result<Decision> {
    let plan = plan_for_org(app, &key.org_id).await?;
    let stop = spend_stop(app, &key.org_id, &plan).await?;
    let policy = policy_for(app, plan, key.rate_override.as_deref(), stop);
    let subject = Subject { rate: key.key_id.to_string(), org: key.org_id.to_string() };
    // A verification is one request of the key; its concurrency slot ends with the verification.
    let now = app.clock.now_ms();
    let (decision, _permit) = app.limiter.acquire(&subject, policy, 1, 0, now).await;
    Ok(decision)
}

fn require_admin(principal: &Principal) -> Result<()> {
    if principal.is_platform_admin() {
        Ok(())
    } else {
        Err(Error::forbidden("only a platform administrator may change plans"))
    }
}

/// Clears every node's plan caches after a plan or an organization's served plan changed.
pub(crate) async fn clear_plan_caches(app: &App) {
    app.plans.forget_all();
    app.bus.publish(BusMessage::InvalidatePlans).await;
}

/// Puts an organization on a plan (platform administrators; billing will do this on upgrade).
pub async fn set_org_plan(app: &App, principal: &Principal, org: &str, plan: &str) -> Result<Arc<PlanRow>> {
    require_admin(principal)?;
    let now = app.clock.now_ms();
    transaction!(app.db, c => {
        let exists: i64 = plans::table.find(plan).count().get_result(c).await?;
        if exists == 0 {
            return Err(Error::bad_input("planId", "no such plan"));
        }
        let n = diesel::update(organizations::table.find(org))
            .set((organizations::plan_id.eq(plan), organizations::updated_at.eq(now)))
            .execute(c).await?;
        if n == 0 {
            return Err(Error::NotFound("organization"));
        }
        // An administrator's plan is what the organization pays for too (no proration: a grant).
        diesel::update(subscriptions::table.filter(subscriptions::org_id.eq(org)))
            .set((subscriptions::plan_id.eq(plan), subscriptions::scheduled_plan_id.eq(None::<String>), subscriptions::scheduled_cycle.eq(None::<String>), subscriptions::updated_at.eq(now)))
            .execute(c).await?;
        Ok::<_, Error>(())
    })?;
    clear_plan_caches(app).await;
    plan_for_org(app, &org.parse().map_err(|_| Error::NotFound("organization"))?).await
}

/// Changes to a plan's limits; `Clear` removes a limit.
#[derive(Default)]
pub struct PlanPatch {
    pub name: Option<String>,
    pub per_second: Patch<i64>,
    pub per_minute: Patch<i64>,
    pub per_hour: Patch<i64>,
    pub per_day: Patch<i64>,
    pub burst: Option<i64>,
    pub monthly_quota: Patch<i64>,
    pub concurrency: Patch<i64>,
    pub max_webhook_endpoints: Patch<i64>,
    pub max_members: Patch<i64>,
    pub max_api_keys: Patch<i64>,
    pub max_subscriptions: Patch<i64>,
    pub query_cost_max: Option<i64>,
    pub query_cost_bucket: Option<i64>,
    pub query_cost_restore_rate: Option<i64>,
    /// `hard` or `overage`.
    pub quota_mode: Option<String>,
    pub overage_tiers: Option<Vec<crate::billing::money::Tier>>,
}

pub async fn update_plan(app: &App, principal: &Principal, id: &str, patch: PlanPatch) -> Result<PlanRow> {
    require_admin(principal)?;
    let check = |field: &str, v: Patch<i64>| -> Result<Patch<i64>> {
        v.try_map(
            |n| if n < 1 { Err(Error::bad_input(field, "must be at least 1 (or null for no limit)")) } else { Ok(n) },
        )
    };
    let per_second = check("perSecond", patch.per_second)?;
    let per_minute = check("perMinute", patch.per_minute)?;
    let per_hour = check("perHour", patch.per_hour)?;
    let per_day = check("perDay", patch.per_day)?;
    let monthly_quota = check("monthlyQuota", patch.monthly_quota)?;
    let concurrency = check("concurrency", patch.concurrency)?;
    let max_webhook_endpoints = check("maxWebhookEndpoints", patch.max_webhook_endpoints)?;
    let max_subscriptions = check("maxSubscriptions", patch.max_subscriptions)?;
    let max_members = check("maxMembers", patch.max_members)?;
    let max_api_keys = check("maxApiKeys", patch.max_api_keys)?;
    for (field, v) in [
        ("queryCostMax", patch.query_cost_max),
        ("queryCostBucket", patch.query_cost_bucket),
        ("queryCostRestoreRate", patch.query_cost_restore_rate),
    ] {
        if v.is_some_and(|n| n < 1) {
            return Err(Error::bad_input(field, "must be at least 1"));
        }
    }
    if let Some(t) = &patch.overage_tiers {
        crate::billing::money::validate_tiers(t).map_err(|m| Error::bad_input("overageTiers", m))?;
    }
    let tiers = patch.overage_tiers.as_ref().map(|t| serde_json::to_string(t).unwrap_or_else(|_| "[]".into()));
    if patch.burst.is_some_and(|b| b < 0) {
        return Err(Error::bad_input("burst", "must not be negative"));
    }
    if patch.name.as_deref().is_some_and(|n| n.trim().is_empty() || n.len() > 100) {
        return Err(Error::bad_input("name", "must be 1 to 100 characters"));
    }
    let now = app.clock.now_ms();
    let row = transaction!(app.db, c => {
        let mut plan: PlanRow = plans::table.find(id).select(PlanRow::as_select()).first(c).await.optional()?
            .ok_or(Error::NotFound("plan"))?;
        if let Some(n) = &patch.name { plan.name = n.trim().to_string(); }
        plan.per_second = per_second.clone().apply(plan.per_second);
        plan.per_minute = per_minute.clone().apply(plan.per_minute);
        plan.per_hour = per_hour.clone().apply(plan.per_hour);
        plan.per_day = per_day.clone().apply(plan.per_day);
        if let Some(v) = patch.burst { plan.burst = v; }
        plan.monthly_quota = monthly_quota.clone().apply(plan.monthly_quota);
        plan.concurrency = concurrency.clone().apply(plan.concurrency);
        plan.max_webhook_endpoints = max_webhook_endpoints.clone().apply(plan.max_webhook_endpoints);
        plan.max_subscriptions = max_subscriptions.clone().apply(plan.max_subscriptions);
        plan.max_members = max_members.clone().apply(plan.max_members);
        plan.max_api_keys = max_api_keys.clone().apply(plan.max_api_keys);
        if let Some(v) = patch.query_cost_max { plan.query_cost_max = v; }
        if let Some(v) = patch.query_cost_bucket { plan.query_cost_bucket = v; }
        if let Some(v) = patch.query_cost_restore_rate { plan.query_cost_restore_rate = v; }
        if let Some(v) = &patch.quota_mode { plan.quota_mode = v.clone(); }
        if let Some(v) = &tiers { plan.overage_tiers = v.clone(); }
        // Also the plan's version in the policy cache: it must change on every edit.
        plan.updated_at = now.max(plan.updated_at + 1);
        diesel::update(plans::table.find(id)).set(&plan).execute(c).await?;
        Ok::<_, Error>(plan)
    })?;
    clear_plan_caches(app).await;
    Ok(row)
}

/// The largest value of any field of a key's override: far above any real limit, and small enough
/// that the limiter's arithmetic (microseconds × capacity) cannot overflow.
pub const MAX_OVERRIDE: u64 = 1_000_000_000;

/// Checks a key's override against the plan it tightens: a credential that is not a platform
/// administrator's or a service key's may not raise any limit above the plan's (`rateLimit.*`
/// names the field). Returns the override as stored (`above_plan` for those who may raise it).
pub fn check_key_override(principal: &Principal, plan: &PlanRow, o: &Override) -> Result<Override> {
    check_override(o)?;
    if principal.is_platform {
        return Ok(Override { above_plan: true, ..o.clone() });
    }
    let positive = |v: Option<i64>| v.filter(|n| *n > 0).map(|n| n as u64);
    for (field, what, set, limit) in [
        ("rateLimit.perSecond", "requests per second", o.per_second, positive(plan.per_second)),
        ("rateLimit.perMinute", "requests per minute", o.per_minute, positive(plan.per_minute)),
        ("rateLimit.perHour", "requests per hour", o.per_hour, positive(plan.per_hour)),
        ("rateLimit.perDay", "requests per day", o.per_day, positive(plan.per_day)),
        ("rateLimit.burst", "extra requests of burst", o.burst, Some(plan.burst.max(0) as u64)),
        ("rateLimit.concurrency", "requests in flight", o.concurrency, positive(plan.concurrency)),
    ] {
        if let (Some(v), Some(limit)) = (set, limit)
            && v > limit
        {
            return Err(Error::bad_input(
                field,
                format!(
                    "{v} is above the {} plan's {limit} {what}: a key's limits may only tighten its plan (a platform administrator may raise them)",
                    plan.name
                ),
            ));
        }
    }
    Ok(Override { above_plan: false, ..o.clone() })
}

/// Parses and validates a key's override.
pub fn check_override(o: &Override) -> Result<()> {
    for (field, v) in [
        ("rateLimit.perSecond", o.per_second),
        ("rateLimit.perMinute", o.per_minute),
        ("rateLimit.perHour", o.per_hour),
        ("rateLimit.perDay", o.per_day),
        ("rateLimit.concurrency", o.concurrency),
    ] {
        if v == Some(0) {
            return Err(Error::bad_input(field, "must be at least 1 (omit it to keep the plan's)"));
        }
    }
    for (field, v) in [
        ("rateLimit.perSecond", o.per_second),
        ("rateLimit.perMinute", o.per_minute),
        ("rateLimit.perHour", o.per_hour),
        ("rateLimit.perDay", o.per_day),
        ("rateLimit.burst", o.burst),
        ("rateLimit.concurrency", o.concurrency),
    ] {
        if v.is_some_and(|v| v > MAX_OVERRIDE) {
            return Err(Error::bad_input(field, format!("must be at most {MAX_OVERRIDE}")));
        }
    }
    Ok(())
}

/// Reads every per-operation cost from the database into this node's memory.
pub async fn reload_operation_costs(app: &App) -> Result<()> {
    let rows: Vec<(String, i64)> = with_conn!(app.db, c => {
        operation_costs::table.select((operation_costs::operation, operation_costs::cost)).load(c).await?
    });
    app.operation_costs.replace(rows.into_iter().map(|(o, c)| (o, c.max(1) as u64)).collect());
    Ok(())
}

/// Sets an operation's cost (platform administrators); 1 removes it.
pub async fn set_operation_cost(
    app: &App,
    principal: &Principal,
    operation: &str,
    cost: i64,
) -> Result<Vec<(String, u64)>> {
    if !(principal.is_platform_admin()) {
        return Err(Error::forbidden("only a platform administrator may change operation costs"));
    }
    if !super::operation_costs::valid_operation(operation) {
        return Err(Error::bad_input(
            "operation",
            "a root field (`Query.usageHistory`, `Mutation.createApiKey`) or a REST route (`GET /api/v1/analytics/usage`)",
        ));
    }
    if !(1..=1000).contains(&cost) {
        return Err(Error::bad_input("cost", "must be between 1 and 1000"));
    }
    let now = app.clock.now_ms();
    transaction!(app.db, c => {
        diesel::delete(operation_costs::table.find(operation)).execute(c).await?;
        if cost > 1 {
            diesel::insert_into(operation_costs::table)
                .values((operation_costs::operation.eq(operation), operation_costs::cost.eq(cost), operation_costs::updated_at.eq(now)))
                .execute(c).await?;
        }
        Ok::<_, Error>(())
    })?;
    reload_operation_costs(app).await?;
    app.bus.publish(BusMessage::InvalidatePlans).await;
    Ok(app.operation_costs.list())
}

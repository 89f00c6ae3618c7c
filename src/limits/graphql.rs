//! GraphQL for plans and limits: `plans`, `rateLimitStatus` (the caller's state after this
//! request, like GitHub's `rateLimit`), key overrides, and plan administration.

use std::sync::Arc;

use async_graphql::{Context, Enum, ID, InputObject, MaybeUndefined, Object, SimpleObject};

use super::limiter::Decision;
use super::model::PlanRow;
use super::policy::{Override, Source};
use super::service::{self, PlanPatch};
use crate::graphql::context::{Authenticated, ContextExt, Scope};
use crate::graphql::scalars::DateTime;

/// An amount of money in minor units (cents) of a currency.
#[derive(SimpleObject)]
pub struct Money {
    /// Minor units, e.g. 9900 for 99.00.
    pub amount: i64,
    /// ISO 4217 code, e.g. `USD`.
    pub currency: String,
}

/// A plan: its price and the limits of every organization on it.
pub struct Plan(pub Arc<PlanRow>);

/// A plan: its price and the limits of every organization on it.
#[Object]
impl Plan {
    /// Plan id (`pln_…`).
    pub async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    /// Stable handle: `starter`, `pro`, `enterprise`, …
    async fn slug(&self) -> &str {
        &self.0.slug
    }
    /// Display name.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// What the plan is for.
    async fn description(&self) -> &str {
        &self.0.description
    }
    /// Monthly price (null = custom pricing).
    async fn monthly_price(&self) -> Option<Money> {
        self.0.price_cents.map(|amount| Money { amount, currency: self.0.currency.clone() })
    }
    /// Yearly price when billed annually (null = none or custom).
    async fn annual_price(&self) -> Option<Money> {
        self.0.annual_price_cents.map(|amount| Money { amount, currency: self.0.currency.clone() })
    }
    /// Whether organizations without a plan get this one.
    async fn is_default(&self) -> bool {
        self.0.is_default
    }
    /// Requests per second (null = no limit).
    async fn per_second(&self) -> Option<i64> {
        self.0.per_second
    }
    /// Requests per minute (null = no limit).
    async fn per_minute(&self) -> Option<i64> {
        self.0.per_minute
    }
    /// Requests per hour (null = no limit).
    async fn per_hour(&self) -> Option<i64> {
        self.0.per_hour
    }
    /// Requests per day (null = no limit).
    async fn per_day(&self) -> Option<i64> {
        self.0.per_day
    }
    /// Extra requests the shortest window admits at once.
    async fn burst(&self) -> i64 {
        self.0.burst
    }
    /// Requests per calendar month (UTC) for the whole organization (null = unlimited).
    async fn monthly_quota(&self) -> Option<i64> {
        self.0.monthly_quota
    }
    /// Requests in flight at once per key or user (null = no cap).
    async fn concurrency(&self) -> Option<i64> {
        self.0.concurrency
    }
    /// Webhook endpoints an organization may have (null = unlimited).
    async fn max_webhook_endpoints(&self) -> Option<i64> {
        self.0.max_webhook_endpoints
    }
    /// Members an organization may have, pending invitations included (null = unlimited).
    async fn max_members(&self) -> Option<i64> {
        self.0.max_members
    }
    /// Active (unrevoked) API keys an organization may have (null = unlimited).
    async fn max_api_keys(&self) -> Option<i64> {
        self.0.max_api_keys
    }
    /// GraphQL subscriptions a key (or a user in an organization) may hold open at once, across
    /// every node (null = no cap).
    async fn max_subscriptions(&self) -> Option<i64> {
        self.0.max_subscriptions
    }
    /// Largest cost one GraphQL query may have (fields cost 1, connections their page size × selection).
    async fn query_cost_max(&self) -> i64 {
        self.0.query_cost_max
    }
    /// Points in the query-cost bucket.
    async fn query_cost_bucket(&self) -> i64 {
        self.0.query_cost_bucket
    }
    /// Points restored to the bucket each second.
    async fn query_cost_restore_rate(&self) -> i64 {
        self.0.query_cost_restore_rate
    }
    /// Marketplace apps an organization may install (null = unlimited).
    async fn max_apps(&self) -> Option<i64> {
        self.0.max_apps
    }
    /// What happens past the monthly quota: refused (HARD) or served and billed (OVERAGE).
    async fn quota_mode(&self) -> QuotaMode {
        if self.0.quota_mode == "overage" { QuotaMode::Overage } else { QuotaMode::Hard }
    }
    /// The graduated price of requests past the included quota, by the month's total (OVERAGE).
    async fn overage_tiers(&self) -> Vec<OverageTier> {
        serde_json::from_str::<Vec<crate::billing::money::Tier>>(&self.0.overage_tiers)
            .unwrap_or_default()
            .into_iter()
            .map(|t| OverageTier { up_to: t.up_to, unit_price_micros: t.unit_price_micros })
            .collect()
    }
}

/// What happens past a plan's monthly quota.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum QuotaMode {
    /// Requests past it are refused with QUOTA_EXCEEDED.
    Hard,
    /// The quota is included; requests past it are served and billed by the overage tiers.
    Overage,
}

/// One tier of the overage price: the month's requests up to `upTo` (null: all the rest).
#[derive(SimpleObject, InputObject, Clone)]
#[graphql(input_name = "OverageTierInput")]
pub struct OverageTier {
    /// The month's request count this tier ends at (null for the last tier).
    pub up_to: Option<i64>,
    /// Price of each request in the tier, in micro-units (100 = 0.10 per 1,000).
    pub unit_price_micros: i64,
}

/// Where the limits of a request come from.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum RateLimitSource {
    /// The API key's own override.
    Key,
    /// The organization's plan.
    Plan,
    /// The per-IP policy for unauthenticated calls.
    Anonymous,
}

/// One window of the caller's limits.
#[derive(SimpleObject)]
pub struct RateLimitWindow {
    /// `second`, `minute`, `hour` or `day`.
    pub name: String,
    /// Requests allowed per window.
    pub limit: i64,
    /// Requests admitted at once (limit plus burst): `q` of its `RateLimit-Policy` item and
    /// `X-RateLimit-Limit`.
    pub capacity: i64,
    /// Seconds the capacity takes to refill at the limit's rate: `w` of its policy item.
    pub window_seconds: i64,
    /// Requests left right now.
    pub remaining: i64,
    /// When the window is back to full capacity.
    pub reset_at: DateTime,
}

/// The organization's monthly quota.
#[derive(SimpleObject)]
pub struct MonthlyQuota {
    /// Requests allowed this month.
    pub limit: i64,
    /// Requests counted this month.
    pub used: i64,
    /// Requests left this month.
    pub remaining: i64,
    /// When the month ends (UTC).
    pub reset_at: DateTime,
}

/// The caller's rate-limit state after this request.
pub struct RateLimitStatus {
    decision: Arc<Decision>,
    now_ms: i64,
}

/// The caller's rate-limit state after this request.
#[Object]
impl RateLimitStatus {
    /// The policy's name: the plan slug, `key` for a key override, or `anonymous`.
    async fn policy(&self) -> &str {
        &self.decision.policy.name
    }
    /// Where the limits come from.
    async fn source(&self) -> RateLimitSource {
        match self.decision.policy.source {
            Source::Key => RateLimitSource::Key,
            Source::Plan => RateLimitSource::Plan,
            Source::Anonymous => RateLimitSource::Anonymous,
        }
    }
    /// The plan behind the limits.
    async fn plan(&self) -> Option<Plan> {
        self.decision.policy.plan.clone().map(Plan)
    }
    /// Every window of the policy.
    async fn windows(&self) -> Vec<RateLimitWindow> {
        self.decision
            .policy
            .windows
            .iter()
            .zip(&self.decision.windows)
            .map(|(w, s)| RateLimitWindow {
                name: w.name.to_string(),
                limit: w.limit as i64,
                capacity: w.capacity as i64,
                window_seconds: super::headers::window_secs(w) as i64,
                remaining: s.remaining as i64,
                reset_at: DateTime(self.now_ms + s.reset_ms),
            })
            .collect()
    }
    /// The monthly quota (null = unlimited).
    async fn monthly_quota(&self) -> Option<MonthlyQuota> {
        let d = &self.decision;
        d.policy.monthly_quota.map(|limit| MonthlyQuota {
            limit: limit as i64,
            used: d.quota_used as i64,
            remaining: limit.saturating_sub(d.quota_used) as i64,
            reset_at: DateTime(self.now_ms + d.month_reset_ms),
        })
    }
    /// Requests in flight at once (null = no cap).
    async fn concurrency(&self) -> Option<i64> {
        self.decision.policy.concurrency.map(|c| c as i64)
    }
    /// True while this node decides alone because Redis is unreachable.
    async fn degraded(&self) -> bool {
        self.decision.degraded
    }
}

/// A key's own limits, replacing its plan's where set.
#[derive(SimpleObject, InputObject, Clone, Default)]
#[graphql(input_name = "RateLimitOverrideInput")]
pub struct RateLimitOverride {
    /// Requests per second.
    pub per_second: Option<u64>,
    /// Requests per minute.
    pub per_minute: Option<u64>,
    /// Requests per hour.
    pub per_hour: Option<u64>,
    /// Requests per day.
    pub per_day: Option<u64>,
    /// Extra requests the shortest window admits at once.
    pub burst: Option<u64>,
    /// Requests in flight at once.
    pub concurrency: Option<u64>,
}

impl From<RateLimitOverride> for Override {
    fn from(o: RateLimitOverride) -> Self {
        Override {
            per_second: o.per_second,
            per_minute: o.per_minute,
            per_hour: o.per_hour,
            per_day: o.per_day,
            burst: o.burst,
            concurrency: o.concurrency,
            above_plan: false,
        }
    }
}

impl From<Override> for RateLimitOverride {
    fn from(o: Override) -> Self {
        RateLimitOverride {
            per_second: o.per_second,
            per_minute: o.per_minute,
            per_hour: o.per_hour,
            per_day: o.per_day,
            burst: o.burst,
            concurrency: o.concurrency,
        }
    }
}

/// Changes to a plan (platform administrators). `null` removes a limit.
#[derive(InputObject)]
pub struct UpdatePlanInput {
    /// Display name.
    pub name: Option<String>,
    /// Requests per second.
    pub per_second: MaybeUndefined<i64>,
    /// Requests per minute.
    pub per_minute: MaybeUndefined<i64>,
    /// Requests per hour.
    pub per_hour: MaybeUndefined<i64>,
    /// Requests per day.
    pub per_day: MaybeUndefined<i64>,
    /// Extra requests the shortest window admits at once.
    pub burst: Option<i64>,
    /// Requests per month per organization.
    pub monthly_quota: MaybeUndefined<i64>,
    /// Requests in flight at once.
    pub concurrency: MaybeUndefined<i64>,
    /// Webhook endpoints per organization (null = unlimited).
    pub max_webhook_endpoints: MaybeUndefined<i64>,
    /// Members per organization, pending invitations included (null = unlimited).
    pub max_members: MaybeUndefined<i64>,
    /// Active API keys per organization (null = unlimited).
    pub max_api_keys: MaybeUndefined<i64>,
    /// Subscriptions a key or user may hold open at once (null = no cap).
    pub max_subscriptions: MaybeUndefined<i64>,
    /// Largest cost one GraphQL query may have.
    pub query_cost_max: Option<i64>,
    /// Points in the query-cost bucket.
    pub query_cost_bucket: Option<i64>,
    /// Points restored to the bucket each second.
    pub query_cost_restore_rate: Option<i64>,
    /// Refuse past the monthly quota (HARD) or serve and bill the overage (OVERAGE).
    pub quota_mode: Option<QuotaMode>,
    /// The overage tiers, in order (every tier but the last with `upTo`).
    pub overage_tiers: Option<Vec<OverageTier>>,
}

/// An operation that counts as more than one request.
#[derive(SimpleObject)]
pub struct OperationCost {
    /// `Query.usageHistory`, `Mutation.createApiKey` or `GET /api/v1/analytics/usage`.
    pub operation: String,
    /// Requests one call counts as.
    pub cost: i64,
}

#[derive(Default)]
pub struct LimitsQuery;

#[Object]
impl LimitsQuery {
    /// Every plan, cheapest limits first.
    #[graphql(guard = "Authenticated")]
    async fn plans(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Plan>> {
        Ok(service::list_plans(ctx.app()).await?.into_iter().map(|p| Plan(Arc::new(p))).collect())
    }

    /// Operations that count as more than one request (rate windows and monthly quota).
    #[graphql(guard = "Authenticated")]
    async fn operation_costs(&self, ctx: &Context<'_>) -> Vec<OperationCost> {
        ctx.app()
            .operation_costs
            .list()
            .into_iter()
            .map(|(operation, cost)| OperationCost { operation, cost: cost as i64 })
            .collect()
    }

    /// The caller's rate-limit state after this request (null over WebSocket).
    #[graphql(guard = "Authenticated")]
    async fn rate_limit_status(&self, ctx: &Context<'_>) -> Option<RateLimitStatus> {
        ctx.data_opt::<Arc<Decision>>()
            .map(|d| RateLimitStatus { decision: d.clone(), now_ms: ctx.app().clock.now_ms() })
    }
}

#[derive(Default)]
pub struct LimitsMutation;

#[Object]
impl LimitsMutation {
    /// Puts an organization on a plan (platform administrators).
    #[graphql(guard = "Scope(\"org:write\")")]
    async fn set_organization_plan(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Organization id.")] organization_id: ID,
        #[graphql(desc = "Plan id.")] plan_id: ID,
    ) -> async_graphql::Result<Plan> {
        Ok(Plan(service::set_org_plan(ctx.app(), ctx.principal()?, &organization_id, &plan_id).await?))
    }

    /// Sets how many requests an operation counts as (platform administrators); 1 removes it.
    /// Every node applies it at once.
    #[graphql(guard = "Scope(\"org:write\")")]
    async fn set_operation_cost(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "A root field (`Query.usageHistory`) or a REST route (`GET /api/v1/analytics/usage`).")]
        operation: String,
        #[graphql(desc = "Requests it counts as, 1–1000.")] cost: i64,
    ) -> async_graphql::Result<Vec<OperationCost>> {
        let all = super::service::set_operation_cost(ctx.app(), ctx.principal()?, operation.trim(), cost).await?;
        Ok(all.into_iter().map(|(operation, cost)| OperationCost { operation, cost: cost as i64 }).collect())
    }

    /// Changes a plan's name or limits (platform administrators). Every node applies it at once.
    #[graphql(guard = "Scope(\"org:write\")")]
    async fn update_plan(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Plan id.")] id: ID,
        #[graphql(desc = "The changes; omitted fields stay as they are.")] input: UpdatePlanInput,
    ) -> async_graphql::Result<Plan> {
        let patch = PlanPatch {
            name: input.name,
            per_second: crate::graphql::patch(input.per_second, |v| v),
            per_minute: crate::graphql::patch(input.per_minute, |v| v),
            per_hour: crate::graphql::patch(input.per_hour, |v| v),
            per_day: crate::graphql::patch(input.per_day, |v| v),
            burst: input.burst,
            monthly_quota: crate::graphql::patch(input.monthly_quota, |v| v),
            concurrency: crate::graphql::patch(input.concurrency, |v| v),
            max_webhook_endpoints: crate::graphql::patch(input.max_webhook_endpoints, |v| v),
            max_members: crate::graphql::patch(input.max_members, |v| v),
            max_api_keys: crate::graphql::patch(input.max_api_keys, |v| v),
            max_subscriptions: crate::graphql::patch(input.max_subscriptions, |v| v),
            query_cost_max: input.query_cost_max,
            query_cost_bucket: input.query_cost_bucket,
            query_cost_restore_rate: input.query_cost_restore_rate,
            quota_mode: input
                .quota_mode
                .map(|m| if m == QuotaMode::Overage { "overage".into() } else { "hard".into() }),
            overage_tiers: input.overage_tiers.map(|t| {
                t.into_iter()
                    .map(|t| crate::billing::money::Tier { up_to: t.up_to, unit_price_micros: t.unit_price_micros })
                    .collect()
            }),
        };
        Ok(Plan(Arc::new(service::update_plan(ctx.app(), ctx.principal()?, &id, patch).await?)))
    }
}

//! GraphQL query cost, the way Shopify does it: every field costs 1, a connection costs its page
//! size times its selection (the schema's complexity). A query above the plan's maximum is refused
//! before it runs; otherwise its cost is charged to a points bucket (capacity and restore rate per
//! second from the plan) through the same limiter as requests, and reported in
//! `extensions.cost { requestedQueryCost, actualQueryCost, throttleStatus }`.
//! The actual cost is the requested cost (nothing is refunded for short pages).

use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextRequest, NextValidation};
use async_graphql::{ErrorExtensionValues, Response, ServerError, ValidationResult, Value};
use parking_lot::Mutex;

use super::gcra::Window;
use super::limiter::Subject;
use super::policy::{Policy, Source};
use crate::app::App;
use crate::auth::{Actor, Principal};
use crate::error::Code;

/// Points for unauthenticated callers (no plan).
const ANONYMOUS: (u64, u64, u64) = (1000, 2000, 100);

#[derive(Default)]
pub struct QueryCost;

impl ExtensionFactory for QueryCost {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(QueryCostExt::default())
    }
}

#[derive(Clone, Copy)]
struct Throttle {
    requested: u64,
    maximum: u64,
    available: u64,
    restore_rate: u64,
}

#[derive(Default)]
struct QueryCostExt {
    charged: Mutex<Option<Throttle>>,
}

fn error(code: Code, message: String, retry_after: Option<i64>) -> ServerError {
    let mut err = ServerError::new(message, None);
    let mut ext = ErrorExtensionValues::default();
    ext.set("code", code.as_str());
    if let Some(r) = retry_after {
        ext.set("retryAfter", r);
    }
    err.extensions = Some(ext);
    err
}

/// The points bucket of a plan: (maximum single-query cost, bucket size, restore rate per second).
async fn limits_for(app: &App, principal: Option<&Principal>) -> (u64, u64, u64) {
    let Some(p) = principal else { return ANONYMOUS };
    match super::service::plan_for_org(app, &p.org_id).await {
        Ok(plan) => (
            plan.query_cost_max.max(1) as u64,
            plan.query_cost_bucket.max(1) as u64,
            plan.query_cost_restore_rate.max(1) as u64,
        ),
        Err(_) => ANONYMOUS,
    }
}

#[async_trait::async_trait]
impl Extension for QueryCostExt {
    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let result = next.run(ctx).await?;
        let Some(app) = ctx.data_opt::<Arc<App>>() else { return Ok(result) };
        let principal = ctx.data_opt::<Principal>();
        let requested = result.complexity.max(1) as u64;
        let (maximum_query, bucket, restore) = limits_for(app, principal).await;
        if requested > maximum_query {
            return Err(vec![error(
                Code::BadUserInput,
                format!(
                    "query cost {requested} exceeds the maximum of {maximum_query} per query: ask for smaller pages or fewer fields"
                ),
                None,
            )]);
        }
        let Some(p) = principal else { return Ok(result) };
        let rate = match &p.actor {
            Actor::ApiKey { key_id, .. } => format!("cost:{key_id}"),
            Actor::User { user_id, .. } => format!("cost:{user_id}:{}", p.org_id),
        };
        let window = Window { name: "cost", period_ms: 1000, limit: restore, capacity: bucket };
        let policy = Arc::new(Policy {
            name: "query-cost".into(),
            source: Source::Plan,
            header: String::new(),
            windows: vec![window],
            monthly_quota: None,
            concurrency: None,
            plan: None,
        });
        let subject = Subject { rate, org: p.org_id.to_string() };
        let (decision, _) = app.limiter.acquire(&subject, policy, requested, app.clock.now_ms()).await;
        let available = decision.windows.first().map(|w| w.remaining).unwrap_or(0);
        *self.charged.lock() = Some(Throttle { requested, maximum: bucket, available, restore_rate: restore });
        if !decision.allowed() {
            let retry = ((decision.retry_after_ms + 999) / 1000).max(1);
            return Err(vec![error(
                Code::RateLimited,
                format!(
                    "query cost {requested} exceeds the {available} points available; the bucket restores {restore} points a second"
                ),
                Some(retry),
            )]);
        }
        Ok(result)
    }

    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let mut response = next.run(ctx).await;
        if let Some(t) = *self.charged.lock() {
            let refused = response.errors.iter().any(|e| {
                e.extensions
                    .as_ref()
                    .and_then(|x| x.get("code"))
                    .is_some_and(|c| *c == Value::from(Code::RateLimited.as_str()))
            });
            let actual = if refused { 0 } else { t.requested };
            let value = serde_json::json!({
                "requestedQueryCost": t.requested,
                "actualQueryCost": actual,
                "throttleStatus": {
                    "maximumAvailable": t.maximum,
                    "currentlyAvailable": t.available,
                    "restoreRate": t.restore_rate,
                },
            });
            if let Ok(v) = Value::from_json(value) {
                response.extensions.insert("cost".into(), v);
            }
        }
        response
    }
}

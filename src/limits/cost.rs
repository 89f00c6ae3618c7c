//! GraphQL query cost, the way Shopify does it: every field costs 1, a field with `first`/`last`
//! (a connection) costs 1 + page size × its selection. A query above the plan's maximum is refused
//! before it runs; otherwise its cost is charged to a points bucket (capacity and restore rate per
//! second from the plan) through the same limiter as requests, and reported in
//! `extensions.cost { requestedQueryCost, actualQueryCost, throttleStatus }`. The actual cost is
//! the requested cost (nothing is refunded for short pages).
//!
//! Computed from the parsed document in the HTTP and REST handlers rather than in a schema
//! extension: any async-graphql extension sends every field resolution through a slower boxed
//! path, which cost a quarter of the throughput in `benches/load.sh`.

use std::sync::Arc;

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{Name, Value, Variables};

use super::gcra::Window;
use super::limiter::Subject;
use super::policy::{Policy, Source};
use crate::app::App;
use crate::auth::{Actor, Principal};
use crate::error::{Code, Error};

/// Points for unauthenticated callers (no plan): the maximum of one query.
const ANONYMOUS_MAX: u64 = 1000;
const DEFAULT_PAGE: u64 = 20;

/// The cost charged for a query and the bucket after it.
#[derive(Debug, Clone, Copy)]
pub struct Throttle {
    pub requested: u64,
    pub maximum: u64,
    pub available: u64,
    pub restore_rate: u64,
}

impl Throttle {
    /// `extensions.cost`.
    pub fn to_value(self) -> Value {
        let mut status = async_graphql::indexmap::IndexMap::new();
        status.insert(Name::new("maximumAvailable"), Value::from(self.maximum));
        status.insert(Name::new("currentlyAvailable"), Value::from(self.available));
        status.insert(Name::new("restoreRate"), Value::from(self.restore_rate));
        let mut cost = async_graphql::indexmap::IndexMap::new();
        cost.insert(Name::new("requestedQueryCost"), Value::from(self.requested));
        cost.insert(Name::new("actualQueryCost"), Value::from(self.requested));
        cost.insert(Name::new("throttleStatus"), Value::Object(status));
        Value::Object(cost)
    }
}

fn page_size(field: &async_graphql::parser::types::Field, variables: &Variables) -> Option<u64> {
    field.arguments.iter().find_map(|(name, value)| {
        if name.node != "first" && name.node != "last" {
            return None;
        }
        // Literals and variables alike: resolve the argument to a constant first.
        let n =
            value.node.clone().into_const_with(|name| variables.get(&name).cloned().ok_or(())).ok().and_then(
                |v| match v {
                    Value::Number(n) => n.as_u64(),
                    _ => None,
                },
            );
        Some(n.unwrap_or(DEFAULT_PAGE).clamp(1, 100))
    })
}

/// A Relay connection selects `edges`, `nodes`, `pageInfo` or `totalCount` (this schema's contract).
fn is_connection(set: &SelectionSet) -> bool {
    set.items.iter().any(|item| {
        matches!(&item.node, Selection::Field(f)
            if matches!(f.node.name.node.as_str(), "edges" | "nodes" | "pageInfo" | "totalCount"))
    })
}

fn selection_cost(doc: &ExecutableDocument, set: &SelectionSet, variables: &Variables, depth: u32) -> u64 {
    if depth > 64 {
        return 0;
    }
    set.items
        .iter()
        .map(|item| match &item.node {
            Selection::Field(f) => {
                let set = &f.node.selection_set.node;
                let child = selection_cost(doc, set, variables, depth + 1);
                match page_size(&f.node, variables).or_else(|| is_connection(set).then_some(DEFAULT_PAGE)) {
                    Some(n) => 1u64.saturating_add(n.saturating_mul(child)),
                    None => 1 + child,
                }
            }
            Selection::FragmentSpread(spread) => doc
                .fragments
                .get(&spread.node.fragment_name.node)
                .map(|frag| selection_cost(doc, &frag.node.selection_set.node, variables, depth + 1))
                .unwrap_or(0),
            Selection::InlineFragment(inline) => {
                selection_cost(doc, &inline.node.selection_set.node, variables, depth + 1)
            }
        })
        .fold(0u64, u64::saturating_add)
}

/// The cost of the operation a request will run (0 when it names no operation in the document).
pub fn query_cost(doc: &ExecutableDocument, operation: Option<&str>, variables: &Variables) -> u64 {
    let op = doc.operations.iter().find(|(name, _)| match (operation, name) {
        (Some(wanted), Some(n)) => wanted == n.as_str(),
        (None, _) => true,
        _ => false,
    });
    op.map(|(_, op)| selection_cost(doc, &op.node.selection_set.node, variables, 0)).unwrap_or(0)
}

/// Checks a parsed request's cost against the caller's plan and charges it. An unparsable request
/// costs nothing here (execution reports its syntax error).
pub async fn charge(
    app: &App,
    principal: Option<&Principal>,
    request: &mut async_graphql::Request,
) -> Result<Option<Throttle>, Error> {
    let operation = request.operation_name.clone();
    let variables = request.variables.clone();
    let Ok(doc) = request.parsed_query() else { return Ok(None) };
    let requested = query_cost(doc, operation.as_deref(), &variables).max(1);
    let Some(p) = principal else {
        if requested > ANONYMOUS_MAX {
            return Err(too_costly(requested, ANONYMOUS_MAX));
        }
        return Ok(None);
    };
    let entry = super::service::plan_entry(app, &p.org_id).await?;
    let plan = &entry.row;
    let maximum_query = plan.query_cost_max.max(1) as u64;
    if requested > maximum_query {
        return Err(too_costly(requested, maximum_query));
    }
    let rate = match &p.actor {
        Actor::ApiKey { key_id, .. } => format!("cost:{key_id}"),
        Actor::User { user_id, .. } => format!("cost:{user_id}:{}", p.org_id),
    };
    let subject = Subject { rate, org: p.org_id.to_string() };
    let (decision, _) = app.limiter.acquire(&subject, entry.cost.clone(), requested, app.clock.now_ms()).await;
    let window = &entry.cost.windows[0];
    let available = decision.windows.first().map(|w| w.remaining).unwrap_or(0);
    if !decision.allowed() {
        let retry_after_secs = ((decision.retry_after_ms + 999) / 1000).max(1);
        return Err(Error::Limited {
            code: Code::RateLimited,
            message: format!(
                "query cost {requested} exceeds the {available} points available; the bucket restores {} points a second",
                window.limit
            ),
            retry_after_secs,
            window: Some("cost".into()),
        });
    }
    Ok(Some(Throttle { requested, maximum: window.capacity, available, restore_rate: window.limit }))
}

fn too_costly(requested: u64, maximum: u64) -> Error {
    Error::bad_input(
        "query",
        format!(
            "query cost {requested} exceeds the maximum of {maximum} per query: ask for smaller pages or fewer fields"
        ),
    )
}

/// The points-bucket policy of a plan.
pub fn bucket_policy(plan: &super::model::PlanRow) -> Arc<Policy> {
    let window = Window {
        name: "cost",
        period_ms: 1000,
        limit: plan.query_cost_restore_rate.max(1) as u64,
        capacity: plan.query_cost_bucket.max(1) as u64,
    };
    Arc::new(Policy {
        name: "query-cost".into(),
        source: Source::Plan,
        header: String::new(),
        windows: vec![window],
        monthly_quota: None,
        concurrency: None,
        plan: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cost(q: &str, vars: serde_json::Value) -> u64 {
        let doc = async_graphql::parser::parse_query(q).unwrap();
        query_cost(&doc, None, &Variables::from_json(vars))
    }

    #[test]
    fn fields_cost_one_and_connections_multiply_by_their_page() {
        assert_eq!(cost("{ viewer { id } }", serde_json::json!({})), 2);
        assert_eq!(cost("{ apiKeys(first: 10) { edges { node { id name } } } }", serde_json::json!({})), 1 + 10 * 4);
        assert_eq!(cost("query($n: Int) { apiKeys(first: $n) { totalCount } }", serde_json::json!({ "n": 50 })), 51);
        assert_eq!(cost("{ apiKeys { totalCount } }", serde_json::json!({})), 21, "the default page is 20");
        assert_eq!(cost("{ ...F } fragment F on Query { viewer { id } }", serde_json::json!({})), 2);
    }
}

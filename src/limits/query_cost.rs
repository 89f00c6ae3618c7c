//! GraphQL query cost, the way Shopify does it: every field costs 1, a field with `first`/`last`
//! (a connection) costs 1 + page size × its selection. A query above the plan's maximum is refused
//! before it runs; otherwise its cost is charged to a points bucket (capacity and restore rate per
//! second from the plan) through the same limiter as requests, and reported in
//! `extensions.cost { requestedQueryCost, actualQueryCost, throttleStatus }`. The actual cost is
//! the requested cost (nothing is refunded for short pages), or 0 for a query that never ran (a
//! validation error): its points are given back.
//!
//! The points are a window of the request's own policy, so a request and its cost are decided
//! together: one lock, or one Redis round trip.
//!
//! Computed from the parsed document by the admission pipeline rather than in a schema
//! extension: any async-graphql extension sends every field resolution through a slower boxed
//! path, which cost a quarter of the throughput in `benches/load.sh`.

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{Name, Value, Variables};

use crate::app::App;
use crate::auth::Principal;
use crate::error::Error;

/// Points for unauthenticated callers (no plan): the maximum of one query.
const ANONYMOUS_MAX: u64 = 1000;
const DEFAULT_PAGE: u64 = 20;

/// The cost charged for a query and the bucket after it.
#[derive(Debug, Clone, Copy)]
pub struct Throttle {
    pub requested: u64,
    /// What was charged: the requested cost, or nothing for a query that never ran.
    pub actual: u64,
    pub maximum: u64,
    pub available: u64,
    pub restore_rate: u64,
}

impl Throttle {
    /// `extensions.cost`. The names are built once (each `Name` is a shared string).
    pub fn to_value(self) -> Value {
        static NAMES: std::sync::LazyLock<[Name; 6]> = std::sync::LazyLock::new(|| {
            [
                "maximumAvailable",
                "currentlyAvailable",
                "restoreRate",
                "requestedQueryCost",
                "actualQueryCost",
                "throttleStatus",
            ]
            .map(Name::new)
        });
        let n = &*NAMES;
        let mut status = async_graphql::indexmap::IndexMap::with_capacity(3);
        status.insert(n[0].clone(), Value::from(self.maximum));
        status.insert(n[1].clone(), Value::from(self.available));
        status.insert(n[2].clone(), Value::from(self.restore_rate));
        let mut cost = async_graphql::indexmap::IndexMap::with_capacity(3);
        cost.insert(n[3].clone(), Value::from(self.requested));
        cost.insert(n[4].clone(), Value::from(self.actual));
        cost.insert(n[5].clone(), Value::Object(status));
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

/// A Relay connection selects `edges`, `nodes`, `pageInfo` or `totalCount` (this schema's
/// contract), directly or through fragments (each fragment looked into once).
fn is_connection(doc: &ExecutableDocument, set: &SelectionSet) -> bool {
    fn walk<'a>(doc: &'a ExecutableDocument, set: &'a SelectionSet, seen: &mut Vec<&'a str>) -> bool {
        set.items.iter().any(|item| match &item.node {
            Selection::Field(f) => matches!(f.node.name.node.as_str(), "edges" | "nodes" | "pageInfo" | "totalCount"),
            Selection::InlineFragment(inline) => walk(doc, &inline.node.selection_set.node, seen),
            Selection::FragmentSpread(spread) => {
                let name = spread.node.fragment_name.node.as_str();
                if seen.contains(&name) {
                    return false;
                }
                seen.push(name);
                doc.fragments.get(name).is_some_and(|frag| walk(doc, &frag.node.selection_set.node, seen))
            }
        })
    }
    walk(doc, set, &mut Vec::new())
}

/// Walks a document once: each fragment's cost is computed the first time it is spread and
/// remembered, so fragments that spread each other many times (a few hundred bytes can describe
/// 2^64 fields) cost linear time. A fragment spread inside itself counts 0 here; validation
/// rejects the cycle before anything runs.
struct Coster<'a> {
    doc: &'a ExecutableDocument,
    variables: &'a Variables,
    fragments: std::collections::HashMap<&'a str, Option<u64>>,
}

impl<'a> Coster<'a> {
    fn selection(&mut self, set: &'a SelectionSet, depth: u32) -> u64 {
        if depth > 64 {
            return 0;
        }
        set.items
            .iter()
            .map(|item| match &item.node {
                Selection::Field(f) => {
                    let set = &f.node.selection_set.node;
                    let child = self.selection(set, depth + 1);
                    match page_size(&f.node, self.variables)
                        .or_else(|| is_connection(self.doc, set).then_some(DEFAULT_PAGE))
                    {
                        Some(n) => 1u64.saturating_add(n.saturating_mul(child)),
                        None => 1 + child,
                    }
                }
                Selection::FragmentSpread(spread) => self.fragment(spread.node.fragment_name.node.as_str(), depth),
                Selection::InlineFragment(inline) => self.selection(&inline.node.selection_set.node, depth + 1),
            })
            .fold(0u64, u64::saturating_add)
    }

    fn fragment(&mut self, name: &'a str, depth: u32) -> u64 {
        match self.fragments.get(name) {
            Some(Some(cost)) => return *cost,
            Some(None) => return 0, // a cycle: being computed further up
            None => {}
        }
        let Some(frag) = self.doc.fragments.get(name) else { return 0 };
        self.fragments.insert(name, None);
        let cost = self.selection(&frag.node.selection_set.node, depth + 1);
        self.fragments.insert(name, Some(cost));
        cost
    }
}

/// The cost of the operation a request will run (0 when it names no operation in the document).
pub fn query_cost(doc: &ExecutableDocument, operation: Option<&str>, variables: &Variables) -> u64 {
    costs(doc, operation, variables).0
}

/// The cost of the operation a request will run, and the largest cost of any operation in the
/// document: validation walks every operation (following every spread), so a cheap operation
/// must not carry an expensive neighbour past the limit.
fn costs(doc: &ExecutableDocument, operation: Option<&str>, variables: &Variables) -> (u64, u64) {
    let mut coster = Coster { doc, variables, fragments: Default::default() };
    let mut chosen = None;
    let mut largest = 0;
    for (name, op) in doc.operations.iter() {
        let cost = coster.selection(&op.node.selection_set.node, 0);
        largest = largest.max(cost);
        let wanted = match (operation, name) {
            (Some(wanted), Some(n)) => wanted == n.as_str(),
            (None, _) => true,
            _ => false,
        };
        if wanted && chosen.is_none() {
            chosen = Some(cost);
        }
    }
    (chosen.unwrap_or(0), largest)
}

/// The cost of a parsed request, refused when above the caller's plan maximum. The points are
/// charged with the request's own limiter decision (`limits::service::check`). An unparsable
/// request costs nothing here (execution reports its syntax error).
pub async fn measure(
    app: &App,
    principal: Option<&Principal>,
    request: &mut async_graphql::Request,
) -> Result<u64, Error> {
    let operation = request.operation_name.clone();
    let variables = request.variables.clone();
    let Ok(doc) = request.parsed_query() else { return Ok(0) };
    let (requested, largest) = costs(doc, operation.as_deref(), &variables);
    let requested = requested.max(1);
    let maximum = match principal {
        Some(p) => super::service::plan_for_org(app, &p.org_id).await?.query_cost_max.max(1) as u64,
        None => ANONYMOUS_MAX,
    };
    if requested.max(largest) > maximum {
        let requested = requested.max(largest);
        return Err(Error::bad_input(
            "query",
            format!(
                "query cost {requested} exceeds the maximum of {maximum} per query: ask for smaller pages or fewer fields"
            ),
        ));
    }
    Ok(requested)
}

/// The query-cost bucket after a decision that charged `requested` points.
pub fn throttle_of(decision: &super::limiter::Decision, requested: u64) -> Option<Throttle> {
    let i = decision.policy.windows.iter().position(|w| w.points)?;
    let w = &decision.policy.windows[i];
    Some(Throttle {
        requested,
        actual: requested,
        maximum: w.capacity,
        available: decision.windows.get(i).map(|s| s.remaining).unwrap_or(0),
        restore_rate: w.limit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `head` followed by fragments F0…F{depth}, each but the last spreading the next one twice, the
    /// last selecting `leaf`: 2^depth leaves in a few KB (a document whose naive walk never ends).
    fn fragment_chain(head: &str, depth: usize, leaf: &str) -> String {
        let mut q = head.to_string();
        for i in 0..depth {
            q.push_str(&format!(" fragment F{i} on Query {{ ...F{n} ...F{n} }}", n = i + 1));
        }
        q + &format!(" fragment F{depth} on Query {{ {leaf} }}")
    }

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
        assert_eq!(cost("{ ...F ...F } fragment F on Query { viewer { id } }", serde_json::json!({})), 4);
        // A connection whose `edges` come through a fragment still costs its default page.
        assert_eq!(
            cost(
                "{ apiKeys { ...E } } fragment E on ApiKeyConnection { edges { node { id } } }",
                serde_json::json!({})
            ),
            1 + 20 * 3
        );
        assert_eq!(cost("{ apiKeys { ... on ApiKeyConnection { totalCount } } }", serde_json::json!({})), 21);
    }

    #[test]
    fn fragments_spread_many_times_or_in_a_cycle_are_costed_in_linear_time() {
        // Each fragment spreads the next twice: 2^60 viewer fields, described in a few KB. Costed
        // once per fragment, it saturates instead of taking forever.
        let q = fragment_chain("{ ...F0 }", 60, "viewer { id }");
        assert_eq!(cost(&q, serde_json::json!({})), 2u64 << 60);
        // A fragment that spreads itself (validation rejects it later) does not recurse forever.
        assert_eq!(cost("{ ...A } fragment A on Query { viewer { id } ...A ...A }", serde_json::json!({})), 2);
    }

    #[test]
    fn every_operation_of_the_document_is_costed() {
        let q = fragment_chain("query A { __typename } query B { ...F0 }", 30, "__typename");
        let doc = async_graphql::parser::parse_query(&q).unwrap();
        let (a, largest) = costs(&doc, Some("A"), &Variables::default());
        assert_eq!((a, largest), (1, 1 << 30), "A is cheap, B is not, and both are walked");
    }
}

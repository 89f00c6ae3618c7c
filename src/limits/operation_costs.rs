//! Per-operation costs: a GraphQL root field (`Query.usageHistory`) or a REST route
//! (`GET /api/v1/analytics/usage`) can count as more than one request against the rate windows and
//! the monthly quota. Rows a platform administrator edits (`limits::service::set_operation_cost`);
//! every node keeps them in memory — this state — and reloads them when any node changes them.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;

/// The costs this node knows, by operation name.
#[derive(Default)]
pub struct OperationCosts(RwLock<Arc<HashMap<String, u64>>>);

impl OperationCosts {
    /// Request units a call costs: the route's cost if it has one, else the largest of its root
    /// fields' (1 when none is set). No I/O.
    pub fn units(&self, roots: &[String], route: Option<&str>) -> u64 {
        let costs = self.0.read();
        if costs.is_empty() {
            return 1;
        }
        if let Some(c) = route.and_then(|r| costs.get(r)) {
            return *c;
        }
        roots.iter().filter_map(|r| costs.get(r.as_str())).copied().max().unwrap_or(1)
    }

    /// Replaces every cost (after reading them from the database).
    pub fn replace(&self, costs: HashMap<String, u64>) {
        *self.0.write() = Arc::new(costs);
    }

    /// Every cost set, by operation name.
    pub fn list(&self) -> Vec<(String, u64)> {
        let mut all: Vec<(String, u64)> = self.0.read().iter().map(|(o, c)| (o.clone(), *c)).collect();
        all.sort();
        all
    }
}

/// Whether `op` names something a cost can be set for: a root field or a `/api/v1` route.
pub fn valid_operation(op: &str) -> bool {
    if op.len() > 200 {
        return false;
    }
    if let Some((root, field)) = op.split_once('.') {
        return matches!(root, "Query" | "Mutation" | "Subscription")
            && !field.is_empty()
            && field.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && field.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    }
    match op.split_once(' ') {
        Some((method, path)) => {
            matches!(method, "GET" | "POST" | "PUT" | "PATCH" | "DELETE")
                && path.starts_with("/api/v1/")
                && !path.contains(char::is_whitespace)
        }
        None => false,
    }
}

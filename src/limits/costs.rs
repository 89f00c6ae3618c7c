//! Per-operation costs: a GraphQL root field (`Query.usageHistory`) or a REST route
//! (`GET /api/v1/analytics/usage`) can count as more than one request against the rate windows and
//! the monthly quota. Rows a platform administrator edits; every node keeps them in memory and
//! reloads them when any node changes them (bus).

use std::collections::HashMap;
use std::sync::Arc;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::app::App;
use crate::auth::Principal;
use crate::error::{Error, Result};
use crate::platform::bus::BusMessage;
use crate::platform::db::schema::operation_costs;
use crate::{transaction, with_conn};

pub type Costs = Arc<HashMap<String, u64>>;

/// Request units a call costs: the route's cost if it has one, else the largest of its root
/// fields' (1 when none is set). No I/O.
pub fn units(app: &App, roots: &[String], route: Option<&str>) -> u64 {
    let costs = app.operation_costs.read();
    if costs.is_empty() {
        return 1;
    }
    if let Some(c) = route.and_then(|r| costs.get(r)) {
        return *c;
    }
    roots.iter().filter_map(|r| costs.get(r.as_str())).copied().max().unwrap_or(1)
}

/// Reads every cost from the database into this node's memory.
pub async fn reload(app: &App) -> Result<()> {
    let rows: Vec<(String, i64)> = with_conn!(app.db, c => {
        operation_costs::table.select((operation_costs::operation, operation_costs::cost)).load(c).await?
    });
    *app.operation_costs.write() = Arc::new(rows.into_iter().map(|(o, c)| (o, c.max(1) as u64)).collect());
    Ok(())
}

/// Every cost set, by operation name.
pub fn list(app: &App) -> Vec<(String, u64)> {
    let mut all: Vec<(String, u64)> = app.operation_costs.read().iter().map(|(o, c)| (o.clone(), *c)).collect();
    all.sort();
    all
}

fn valid_operation(op: &str) -> bool {
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

/// Sets an operation's cost (platform administrators); 1 removes it.
pub async fn set(app: &App, principal: &Principal, operation: &str, cost: i64) -> Result<Vec<(String, u64)>> {
    if !(principal.is_platform && principal.user_id().is_some()) {
        return Err(Error::forbidden("only a platform administrator may change operation costs"));
    }
    if !valid_operation(operation) {
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
    reload(app).await?;
    app.bus.publish(BusMessage::InvalidatePlans).await;
    Ok(list(app))
}

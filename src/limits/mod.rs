//! Rate limits and quotas: plans (rows), policy resolution (key override → organization plan →
//! default plan), the limiter (GCRA over every window in one all-or-nothing step, a monthly
//! quota and a concurrency cap — in memory for one node, in one Redis script for many), GraphQL
//! query cost, per-operation costs, and the response headers.

pub mod blocked;
pub mod gcra;
pub mod graphql;
pub mod headers;
pub mod limiter;
pub mod model;
pub mod operation_costs;
pub mod plans;
pub mod policy;
pub mod query_cost;
pub mod service;

//! Rate limits and quotas: plans (rows), policy resolution (key override → organization plan →
//! default plan), the limiter (GCRA over every window in one all-or-nothing step, a monthly
//! quota and a concurrency cap — in memory for one node, in one Redis script for many), and the
//! response headers.

pub mod cost;
pub mod costs;
pub mod gcra;
pub mod graphql;
pub mod headers;
pub mod limiter;
pub mod model;
pub mod policy;
pub mod service;

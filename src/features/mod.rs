//! Feature flags (seed 002): a global default, a percentage rollout stable per organization and
//! per-organization overrides, checked from a per-node copy that every node drops when any flag
//! changes.

pub mod cache;
pub mod graphql;
pub mod model;
pub mod service;

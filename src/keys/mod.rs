//! API keys: creation (secret shown once), listing, update, revocation, deletion, rolling,
//! verification for the operator's backend, and batched per-key usage counters.

pub mod counters;
pub mod graphql;
pub mod model;
pub mod service;
pub mod usage;
pub mod verify;

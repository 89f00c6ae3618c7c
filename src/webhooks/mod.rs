//! Webhooks (SPEC §5): the event catalog, endpoints with signing secrets, and signed
//! at-least-once delivery of outbox events with retries, attempt logs and a real-time stream.
//!
//! The event catalog and publishing live in [`crate::events`].
//! - [`service`]: endpoint CRUD, secret rotation, the delivery log, manual retry, test events.
//! - [`dispatch`]: the dispatcher (outbox → deliveries).
//! - [`delivery`]: the workers (claim, POST, retry) and the loop running both; `record` writes
//!   each attempt's outcome (plain successes in batches).
//! - [`retention`]: deletes old attempts, final deliveries and dispatched events.
//! - [`runtime`]: a node's delivery state (HTTP client, slots, wake-up), held by `App`.
//! - [`signing`]: Standard Webhooks signatures; [`ssrf`]: the outbound address guard.

pub mod delivery;
pub mod dispatch;
pub mod graphql;
pub mod model;
mod record;
pub mod retention;
pub mod runtime;
pub mod service;
pub mod signing;
pub mod ssrf;

//! Integration tests: the real server over real HTTP and WebSocket, on every reachable backend.

mod accounts;
mod admin;
mod admission;
mod answers;
mod apps;
mod billing;
mod billing_rest;
mod billing_usage;
mod browser;
mod common;
mod conventions;
mod events;
mod features;
mod keys;
mod lifecycle;
mod limits;
mod logs;
mod multinode;
mod oauth;
mod rest;
mod schema;
mod smtp;
mod subscriptions;
mod teams;
mod tenancy;
mod usage;
pub mod webhooks;

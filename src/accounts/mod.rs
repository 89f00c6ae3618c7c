//! Accounts: users, organizations, memberships and login sessions.

pub mod graphql;
pub mod model;
pub mod service;

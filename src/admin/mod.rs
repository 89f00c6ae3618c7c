//! Platform administration: users and organizations, suspension, erasure, platform
//! administration and platform analytics. For signed-in platform administrators only.

pub mod analytics;
pub mod graphql;
pub mod service;

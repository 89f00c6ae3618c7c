//! Marketplace apps: what third-party developers list (an app belongs to its owner organization
//! and is an OAuth 2.0 client), the review lifecycle run by platform administrators, marketplace
//! discovery (full-text search, filters, sorts, featured apps) and reviews with helpful votes.

pub mod analytics;
pub mod graphql;
pub mod marketplace;
pub mod model;
pub mod reviews;
pub mod service;

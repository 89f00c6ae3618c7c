//! Organization exports: a JSON document of everything an organization owns, written in chunks by
//! a background job and downloaded through a signed link.

pub mod document;
pub mod graphql;
pub mod service;

//! Accounts: users, organizations, memberships, invitations, login sessions and the tokens mailed
//! to users (address confirmation, password reset).

pub mod email;
pub mod graphql;
pub mod invitations;
pub mod lifecycle;
pub mod mails;
pub mod members;
pub mod model;
pub mod org_states;
pub mod profile;
pub mod profile_graphql;
pub mod service;
pub mod team_graphql;

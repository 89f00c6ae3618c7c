//! Authentication: who is asking. The [`Principal`] every service takes (actor, organization,
//! role, scopes), the scope vocabulary, the credential caches and their invalidation, and
//! [`authenticate`] — the one place that turns a bearer token into a principal.
//!
//! Layering: `principal` and `scopes` are plain data that every domain reads; `credentials` is
//! per-node state that never reads the database; `authenticate` sits above the domains whose rows
//! it reads (keys, accounts) and is called only by the admission pipeline (`server::pipeline`)
//! and by key verification.

mod authenticate;
mod credentials;
pub mod graphql;
mod principal;
mod scopes;

pub use authenticate::{
    Bearer, KeyFailure, KeyRefusal, REFRESH_PREFIX, SESSION_PREFIX, authenticate, check_key, forget_keys,
    forget_session, forget_tokens, key_hash, looks_like_key, parse_bearer, recheck, refresh_hash, session_hash,
};
pub use credentials::{Credentials, KeyCredential, SessionCredential, TokenCredential};
pub use principal::{Actor, Principal, Role};
pub use scopes::{SCOPES, describe_scope, scopes_allow, validate_scopes};

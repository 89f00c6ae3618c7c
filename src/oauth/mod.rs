//! The OAuth 2.0 authorization server's rules (RFC 6749, 7636, 7009, 7662): installations — an
//! organization's consent to an app, holding the granted scopes — authorization codes, and the
//! access and refresh tokens issued from them or by client credentials. Codes and tokens are
//! opaque, prefixed and stored as keyed hashes; single use is one conditional `UPDATE`, so two
//! nodes racing for one code or refresh token get exactly one winner, and the loser is treated as
//! a replay that revokes the whole grant.
//!
//! The HTTP endpoints (`/oauth/*`, the login and consent pages) live in `server::oauth`; an access
//! token becomes a `Principal` in `auth::authenticate`.

pub mod graphql;
pub mod installations;
pub mod model;
pub mod retention;
pub mod tokens;

pub const ACCESS_PREFIX: &str = "gko_at_";
pub const REFRESH_PREFIX: &str = "gko_rt_";
pub const CODE_PREFIX: &str = "gko_ac_";
/// Authorization codes live 60 seconds.
pub const CODE_TTL_MS: i64 = 60_000;

/// An error of the token, revocation or introspection endpoint (RFC 6749 §5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    /// `invalid_request`, `invalid_client`, `invalid_grant`, `unauthorized_client`,
    /// `unsupported_grant_type`, `invalid_scope` or `server_error`.
    pub code: &'static str,
    pub description: String,
}

impl OAuthError {
    pub fn new(code: &'static str, description: impl Into<String>) -> Self {
        Self { code, description: description.into() }
    }
    pub fn invalid_request(d: impl Into<String>) -> Self {
        Self::new("invalid_request", d)
    }
    pub fn invalid_client(d: impl Into<String>) -> Self {
        Self::new("invalid_client", d)
    }
    pub fn invalid_grant(d: impl Into<String>) -> Self {
        Self::new("invalid_grant", d)
    }
    pub fn invalid_scope(d: impl Into<String>) -> Self {
        Self::new("invalid_scope", d)
    }
}

impl From<crate::error::Error> for OAuthError {
    fn from(e: crate::error::Error) -> Self {
        match e {
            crate::error::Error::BadInput { message, .. } => OAuthError::invalid_request(message),
            other => {
                other.log();
                OAuthError::new("server_error", "the authorization server could not complete the request")
            }
        }
    }
}

impl From<crate::platform::db::PoolError> for OAuthError {
    fn from(e: crate::platform::db::PoolError) -> Self {
        crate::error::Error::from(e).into()
    }
}

impl From<diesel::result::Error> for OAuthError {
    fn from(e: diesel::result::Error) -> Self {
        crate::error::Error::from(e).into()
    }
}

/// A space-separated scope parameter (RFC 6749 §3.3) as a sorted list without duplicates.
pub fn parse_scope_param(s: &str) -> Vec<String> {
    let mut out: Vec<String> = s.split(' ').filter(|t| !t.is_empty()).map(str::to_string).collect();
    out.sort();
    out.dedup();
    out
}

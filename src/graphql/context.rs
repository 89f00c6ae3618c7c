//! What resolvers read from the GraphQL context — the app, the caller's principal and address —
//! and the scope guards used on fields and mutations. The admission pipeline puts them there, so
//! resolvers never look at HTTP.

use std::sync::Arc;

use async_graphql::{Context, Guard};

use crate::app::App;
use crate::auth::Principal;
use crate::error::Error;

/// The caller's IP address, as the server sees it (or from `X-Forwarded-For` behind a trusted proxy).
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub Option<std::net::IpAddr>);

pub trait ContextExt {
    fn app(&self) -> &Arc<App>;
    /// The authenticated caller, or `UNAUTHENTICATED`.
    fn principal(&self) -> Result<&Principal, Error>;
    /// The caller's address, when known.
    fn client_ip(&self) -> Option<std::net::IpAddr>;
}

impl ContextExt for Context<'_> {
    fn app(&self) -> &Arc<App> {
        self.data_unchecked::<Arc<App>>()
    }

    fn principal(&self) -> Result<&Principal, Error> {
        self.data_opt::<Principal>().ok_or_else(|| {
            Error::unauthenticated("authentication required: send `Authorization: Bearer <API key or session token>`")
        })
    }

    fn client_ip(&self) -> Option<std::net::IpAddr> {
        self.data_opt::<ClientIp>().and_then(|c| c.0)
    }
}

/// Refuses a field unless the caller is authenticated and holds `scope`.
pub struct Scope(pub &'static str);

impl Guard for Scope {
    async fn check(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        let principal = ctx.principal()?;
        principal.require_scope(self.0).map_err(Into::into)
    }
}

/// Refuses a field unless the caller is authenticated (any scope).
pub struct Authenticated;

impl Guard for Authenticated {
    async fn check(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        ctx.principal().map(|_| ()).map_err(Into::into)
    }
}

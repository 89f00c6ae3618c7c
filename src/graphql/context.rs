//! What resolvers read from the GraphQL context: the app and the caller's principal, and the
//! scope guard used on fields and mutations.

use std::sync::Arc;

use async_graphql::{Context, Guard};

use crate::app::App;
use crate::auth::Principal;
use crate::error::Error;

pub trait ContextExt {
    fn app(&self) -> &Arc<App>;
    /// The authenticated caller, or `UNAUTHENTICATED`.
    fn principal(&self) -> Result<&Principal, Error>;
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

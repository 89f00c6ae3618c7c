//! GraphQL of the scope vocabulary: `scopes` lists every scope an API key or an app may be
//! granted, in words, with the roles whose members hold it — so a client builds its scope picker
//! and explains a refusal from the server's own matrix.

use async_graphql::{Context, Object, SimpleObject};

use super::{Role, SCOPES, describe_scope, scopes_allow};
use crate::graphql::context::ContextExt;

const ROLES: [Role; 5] = [Role::Owner, Role::Admin, Role::Member, Role::Billing, Role::Viewer];

/// One scope of the vocabulary shared by API keys, sessions (through their role) and OAuth
/// tokens. `*` grants every scope; a `:write` scope implies the `:read` scope of its resource.
#[derive(SimpleObject)]
pub struct Scope {
    /// The scope as it is granted (`keys:read`).
    pub name: String,
    /// What it allows, in words (as the OAuth consent page shows it).
    pub description: String,
    /// The roles whose members hold it in an organization (directly, through `*`, or through the
    /// `:write` scope of the same resource).
    pub roles: Vec<Role>,
}

#[derive(Default)]
pub struct ScopesQuery;

#[Object]
impl ScopesQuery {
    /// The scope vocabulary, in the order keys and apps list it. Any authenticated caller.
    async fn scopes(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Scope>> {
        ctx.principal()?;
        let held: Vec<(Role, Vec<String>)> = ROLES.iter().map(|r| (*r, r.scopes())).collect();
        Ok(SCOPES
            .iter()
            .map(|s| Scope {
                name: (*s).to_string(),
                description: describe_scope(s).to_string(),
                roles: held.iter().filter(|(_, granted)| scopes_allow(granted, s)).map(|(r, _)| *r).collect(),
            })
            .collect())
    }
}

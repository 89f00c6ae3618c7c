//! Schema assembly: `Query`, `Mutation` and `Subscription` merged from each domain's parts, with
//! depth and complexity limits. `gantry schema` prints the SDL; `schema.graphql` at the repo root
//! must equal it (a test checks).

pub mod connection;
pub mod context;
pub mod documents;
pub mod errors;
pub mod loaders;
pub mod node;
pub mod scalars;

use std::sync::Arc;

use async_graphql::{MergedObject, MergedSubscription, Schema, SchemaBuilder};

use crate::accounts::graphql::{AccountsMutation, AccountsQuery};
use crate::accounts::profile_graphql::{ProfileMutation, ProfileQuery};
use crate::accounts::team_graphql::{TeamMutation, TeamQuery};
use crate::admin::graphql::{AdminMutation, AdminQuery};
use crate::alerts::graphql::{AlertsMutation, AlertsQuery};
use crate::app::App;
use crate::apps::graphql::{AppsMutation, AppsQuery};
use crate::auth::graphql::ScopesQuery;
use crate::billing::graphql::{BillingMutation, BillingQuery};
use crate::billing::usage_graphql::{UsageBillingMutation, UsageBillingQuery};
use crate::events::graphql::{AuditQuery, CatalogMutation, CatalogQuery, EventsSubscription};
use crate::exports::graphql::{ExportsMutation, ExportsQuery};
use crate::features::graphql::{FeaturesMutation, FeaturesQuery};
use crate::keys::graphql::{KeysMutation, KeysQuery};
use crate::limits::graphql::{LimitsMutation, LimitsQuery};
use crate::oauth::graphql::{OAuthMutation, OAuthQuery};
use crate::usage::graphql::{UsageMutation, UsageQuery, UsageSubscription};
use crate::webhooks::graphql::{WebhooksMutation, WebhooksQuery, WebhooksSubscription};
use node::NodeQuery;

#[derive(MergedObject, Default)]
pub struct Query(
    AccountsQuery,
    ProfileQuery,
    ScopesQuery,
    TeamQuery,
    KeysQuery,
    LimitsQuery,
    UsageQuery,
    AlertsQuery,
    AuditQuery,
    CatalogQuery,
    WebhooksQuery,
    AppsQuery,
    OAuthQuery,
    BillingQuery,
    UsageBillingQuery,
    FeaturesQuery,
    AdminQuery,
    ExportsQuery,
    NodeQuery,
);

#[derive(MergedObject, Default)]
pub struct Mutation(
    AccountsMutation,
    ProfileMutation,
    TeamMutation,
    KeysMutation,
    LimitsMutation,
    UsageMutation,
    AlertsMutation,
    CatalogMutation,
    WebhooksMutation,
    AppsMutation,
    OAuthMutation,
    BillingMutation,
    UsageBillingMutation,
    FeaturesMutation,
    AdminMutation,
    ExportsMutation,
);

#[derive(MergedSubscription, Default)]
pub struct Subscription(EventsSubscription, UsageSubscription, WebhooksSubscription);

pub type GantrySchema = Schema<Query, Mutation, Subscription>;

/// An update field as the domain's [`Patch`](crate::platform::patch::Patch): undefined keeps,
/// `null` clears, a value (converted by `f`) sets.
pub fn patch<T, U>(v: async_graphql::MaybeUndefined<T>, f: impl FnOnce(T) -> U) -> crate::platform::patch::Patch<U> {
    use crate::platform::patch::Patch;
    match v {
        async_graphql::MaybeUndefined::Undefined => Patch::Keep,
        async_graphql::MaybeUndefined::Null => Patch::Clear,
        async_graphql::MaybeUndefined::Value(v) => Patch::Set(f(v)),
    }
}

/// The complexity of a connection field: page size × the selection below it.
pub fn page_complexity(first: Option<i32>, last: Option<i32>, child: usize) -> usize {
    let n = first.or(last).unwrap_or(crate::pagination::DEFAULT_PAGE as i32).clamp(1, 100) as usize;
    1 + n * child
}

fn builder() -> SchemaBuilder<Query, Mutation, Subscription> {
    Schema::build(Query::default(), Mutation::default(), Subscription::default())
}

/// The schema with its limits and the app in context. `Fast` validation is only for operations
/// that already passed `Strict` (the server tracks which).
pub fn build(app: Arc<App>, validation: async_graphql::ValidationMode) -> GantrySchema {
    builder()
        .validation_mode(validation)
        .limit_depth(app.config.graphql_max_depth)
        .limit_complexity(app.config.graphql_max_complexity)
        .data(app)
        .finish()
}

/// The schema without an app in context: enough for the SDL and introspection.
pub fn bare_schema() -> GantrySchema {
    builder().finish()
}

/// The SDL, without needing a running app.
pub fn sdl() -> String {
    bare_schema().sdl()
}

/// Refuses a request whose variables or query literals hold the NUL character (U+0000):
/// PostgreSQL text cannot store it, and a request must mean the same on both backends. JSON
/// values (`metadata`, `payload`, …) are stored as JSON text, where NUL is the escape `\u0000`, but
/// are refused too, for one simple rule. Runs before anything else looks at the request.
pub fn refuse_nul(request: &async_graphql::Request) -> Result<(), crate::error::Error> {
    fn has_nul(v: &async_graphql::Value) -> bool {
        use async_graphql::Value as V;
        match v {
            V::String(s) => s.contains('\0'),
            V::List(items) => items.iter().any(has_nul),
            V::Object(fields) => fields.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
            _ => false,
        }
    }
    // In the query: a raw NUL inside a string literal, or its escape (which also refuses the
    // six characters `\u0000` written in a block string or a comment — rare, and still clear).
    let in_query =
        request.query.contains('\0') || request.query.contains("\\u0000") || request.query.contains("\\u{0}");
    if in_query || request.variables.iter().any(|(_, v)| has_nul(v)) {
        return Err(crate::error::Error::bad_input("input", "text may not contain the NUL character (\\u0000)"));
    }
    Ok(())
}

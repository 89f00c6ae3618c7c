//! The Relay `Node` interface over prefixed ids: `node(id:)` and `nodes(ids:)`. An id of another
//! organization is NOT_FOUND, exactly like an id that does not exist.

use async_graphql::{Context, ID, Interface, Object};

use crate::accounts::graphql::{Organization, User};
use crate::alerts::graphql::Alert;
use crate::apps::graphql::MarketplaceApp;
use crate::error::{Error, Result};
use crate::events::graphql::Event;
use crate::graphql::context::ContextExt;
use crate::graphql::loaders::{Loaders, loader_error};
use crate::keys::graphql::ApiKey;
use crate::limits::graphql::Plan;
use crate::platform::ids::{
    self, AlertId, AppId, AttemptId, DeliveryId, EventId, KeyId, OrgId, PlanId, UserId, WebhookId,
};
use crate::webhooks::graphql::{WebhookAttempt, WebhookDelivery, WebhookEndpoint};

/// An object with a global id.
#[derive(Interface)]
#[graphql(field(
    name = "id",
    ty = "ID",
    desc = "Global id, prefixed by type (`key_…`, `org_…`, `usr_…`, `pln_…`, `evt_…`, `alr_…`, `whk_…`, `msg_…`, `att_…`, `app_…`)."
))]
pub enum Node {
    ApiKey(ApiKey),
    Organization(Organization),
    User(User),
    Plan(Plan),
    Event(Event),
    Alert(Alert),
    WebhookEndpoint(WebhookEndpoint),
    WebhookDelivery(WebhookDelivery),
    WebhookAttempt(WebhookAttempt),
    App(MarketplaceApp),
}

/// Any "not found" of a lookup is the node's own NOT_FOUND, whatever the type.
fn found<T>(r: Result<T>, node: impl FnOnce(T) -> Node) -> async_graphql::Result<Node> {
    match r {
        Ok(v) => Ok(node(v)),
        Err(Error::NotFound(_)) => Err(Error::NotFound("node").into()),
        Err(e) => Err(e.into()),
    }
}

async fn resolve(ctx: &Context<'_>, id: &str) -> async_graphql::Result<Node> {
    let app = ctx.app();
    let p = ctx.principal()?;
    let not_found = || Error::NotFound("node");
    match ids::prefix_of(id) {
        Some(KeyId::PREFIX) => found(crate::keys::service::get_key(app, p, id).await, |k| Node::ApiKey(ApiKey(k))),
        Some(OrgId::PREFIX) => {
            let org_id: OrgId = id.parse().map_err(|_| not_found())?;
            let row = crate::accounts::service::get_org(app, p, &org_id).await.map_err(|_| not_found())?;
            let role = if row.id == p.org_id { p.role } else { None };
            Ok(Node::Organization(Organization { row, role }))
        }
        Some(UserId::PREFIX) => {
            p.require_scope("user:read")?;
            let user_id: UserId = id.parse().map_err(|_| not_found())?;
            // Users are visible to themselves and to members of an organization they belong to; for
            // now: the caller itself, or the creator of the caller's key.
            let me = crate::accounts::service::viewer_user(app, p).await?;
            if me.as_ref().map(|u| &u.id) != Some(&user_id) {
                return Err(not_found().into());
            }
            let row = ctx
                .data_unchecked::<Loaders>()
                .get()
                .load_one(user_id)
                .await
                .map_err(loader_error)?
                .ok_or_else(not_found)?;
            Ok(Node::User(User(row)))
        }
        Some(PlanId::PREFIX) => {
            found(crate::limits::service::get_plan(app, id).await, |r| Node::Plan(Plan(std::sync::Arc::new(r))))
        }
        Some(EventId::PREFIX) => {
            found(crate::events::publish::get_event(app, p, id).await, |r| Node::Event(Event::from(r)))
        }
        Some(AlertId::PREFIX) => found(crate::alerts::get(app, p, id).await, |r| Node::Alert(Alert(r))),
        Some(WebhookId::PREFIX) => found(crate::webhooks::service::get_endpoint(app, p, id).await, |e| {
            Node::WebhookEndpoint(WebhookEndpoint(e))
        }),
        Some(DeliveryId::PREFIX) => found(crate::webhooks::service::get_delivery(app, p, id).await, |d| {
            Node::WebhookDelivery(WebhookDelivery(d))
        }),
        Some(AttemptId::PREFIX) => {
            found(crate::webhooks::service::get_attempt(app, p, id).await, |a| Node::WebhookAttempt(WebhookAttempt(a)))
        }
        Some(AppId::PREFIX) => {
            found(crate::apps::service::get_app(app, Some(p), id).await, |a| Node::App(MarketplaceApp(a)))
        }
        _ => Err(not_found().into()),
    }
}

#[derive(Default)]
pub struct NodeQuery;

#[Object]
impl NodeQuery {
    /// Fetches any object by its global id.
    async fn node(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "A global id.")] id: ID,
    ) -> async_graphql::Result<Option<Node>> {
        resolve(ctx, &id).await.map(Some)
    }

    /// Fetches several objects by global id, in order; an unknown id gives `null` and an error.
    async fn nodes(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Up to 100 global ids.")] ids: Vec<ID>,
    ) -> async_graphql::Result<Vec<Option<Node>>> {
        if ids.len() > 100 {
            return Err(Error::bad_input("ids", "at most 100 ids").into());
        }
        ctx.principal()?;
        let mut out = Vec::with_capacity(ids.len());
        for id in &ids {
            match resolve(ctx, id).await {
                Ok(n) => out.push(Some(n)),
                Err(e) => {
                    ctx.add_error(e.into_server_error(ctx.item.pos));
                    out.push(None);
                }
            }
        }
        Ok(out)
    }
}

//! GraphQL face of installations: the consent of the authorization flow as a mutation (what the
//! console's consent screen and the server-rendered page both call), the organization's
//! installed apps, and uninstalling.

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};

use super::installations::{self, AuthorizeError, AuthorizeParams};
use super::model::InstallationRow;
use crate::apps::graphql::MarketplaceApp;
use crate::apps::model::AppRow;
use crate::error::Error;
use crate::graphql::context::{ContextExt, Scope};
use crate::graphql::scalars::DateTime;
use crate::platform::ids::OrgId;

/// An app installed in an organization: the organization's grant to it.
pub struct AppInstallation {
    pub row: InstallationRow,
    pub app: Option<AppRow>,
}

/// An app installed in an organization: the organization's grant to it.
#[Object]
impl AppInstallation {
    /// Global id (`ins_…`).
    async fn id(&self) -> ID {
        self.row.id.clone().into()
    }
    /// The installed app.
    async fn app(&self, ctx: &Context<'_>) -> async_graphql::Result<MarketplaceApp> {
        match &self.app {
            Some(a) => Ok(MarketplaceApp(a.clone())),
            None => Ok(MarketplaceApp(crate::apps::service::app_by_id(ctx.app(), &self.row.app_id).await?)),
        }
    }
    /// The organization it is installed in.
    async fn organization_id(&self) -> ID {
        self.row.org_id.clone().into()
    }
    /// The scopes granted to the app.
    async fn scopes(&self) -> Vec<String> {
        self.row.scope_list()
    }
    /// When it was first installed.
    async fn created_at(&self) -> DateTime {
        self.row.created_at.into()
    }
    /// When its grant last changed.
    async fn updated_at(&self) -> DateTime {
        self.row.updated_at.into()
    }
    /// When it was uninstalled (null while installed).
    async fn uninstalled_at(&self) -> Option<DateTime> {
        self.row.uninstalled_at.map(DateTime)
    }
}

/// An authorization request (RFC 6749 §4.1.1), as the app sent it to `/oauth/authorize`.
#[derive(InputObject)]
pub struct AuthorizeAppInput {
    /// `client_id`: the app's id.
    pub client_id: String,
    /// `redirect_uri`: one of the app's registered redirect URIs, exactly.
    pub redirect_uri: Option<String>,
    /// `scope`: space-separated scopes (default: all the app requests).
    pub scope: Option<String>,
    /// `state`, returned unchanged.
    pub state: Option<String>,
    /// PKCE `code_challenge` (required for public clients).
    pub code_challenge: Option<String>,
    /// PKCE `code_challenge_method`: `S256` (`plain` is refused).
    pub code_challenge_method: Option<String>,
    /// Where to install it (default: the organization of this request); your role there must manage installs (OWNER, ADMIN, MEMBER).
    pub organization_id: Option<ID>,
    /// False to deny the request (the app gets `error=access_denied`).
    #[graphql(default = true)]
    pub approve: bool,
}

/// The outcome of a consent.
#[derive(SimpleObject)]
pub struct AuthorizeAppPayload {
    /// Where to send the browser: the app's redirect URI with `code` and `state`, or with `error`.
    pub redirect_to: String,
    /// The installation, when the user approved.
    pub installation: Option<AppInstallation>,
}

/// What was uninstalled.
#[derive(SimpleObject)]
pub struct UninstallAppPayload {
    /// The installation, now with `uninstalledAt`.
    pub installation: AppInstallation,
}

#[derive(Default)]
pub struct OAuthQuery;

#[Object]
impl OAuthQuery {
    /// The apps installed in this organization.
    #[graphql(guard = "Scope(\"apps:read\")")]
    async fn installed_apps(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<AppInstallation>> {
        let rows = installations::list_installations(ctx.app(), ctx.principal()?).await?;
        Ok(rows.into_iter().map(|(row, app)| AppInstallation { row, app: Some(app) }).collect())
    }
}

#[derive(Default)]
pub struct OAuthMutation;

#[Object]
impl OAuthMutation {
    /// Answers an app's authorization request as the signed-in user: approving installs the app
    /// in the organization with the scopes you may grant and returns the redirect with a
    /// single-use code (valid 60 seconds); denying returns the redirect with `access_denied`.
    async fn authorize_app(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The request.")] input: AuthorizeAppInput,
    ) -> async_graphql::Result<AuthorizeAppPayload> {
        let p = ctx.principal()?;
        let user = p
            .user_id()
            .ok_or_else(|| Error::forbidden("apps are authorized by signed-in users, not by API keys or apps"))?;
        let params = AuthorizeParams {
            response_type: Some("code".into()),
            client_id: Some(input.client_id),
            redirect_uri: input.redirect_uri,
            scope: input.scope,
            state: input.state,
            code_challenge: input.code_challenge,
            code_challenge_method: input.code_challenge_method,
        };
        let req = match installations::check_request(ctx.app(), &params).await {
            Ok(r) => r,
            Err(AuthorizeError::Page(message)) => return Err(Error::bad_input("clientId", message).into()),
            Err(e) => {
                let redirect_to = e.location().unwrap_or_default();
                return Ok(AuthorizeAppPayload { redirect_to, installation: None });
            }
        };
        if !input.approve {
            return Ok(AuthorizeAppPayload { redirect_to: installations::deny(&req), installation: None });
        }
        let org: OrgId = match &input.organization_id {
            Some(id) => id.parse().map_err(|_| Error::NotFound("organization"))?,
            None => p.org_id.clone(),
        };
        let (redirect_to, row) = installations::approve(ctx.app(), user, p.ip, &org, &req).await?;
        Ok(AuthorizeAppPayload { redirect_to, installation: Some(AppInstallation { row, app: Some(req.app) }) })
    }

    /// Uninstalls an app from this organization: every token of it stops working at once.
    #[graphql(guard = "Scope(\"apps:write\")")]
    async fn uninstall_app(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Installation id (`ins_…`).")] id: ID,
    ) -> async_graphql::Result<UninstallAppPayload> {
        let row = installations::uninstall(ctx.app(), ctx.principal()?, &id).await?;
        Ok(UninstallAppPayload { installation: AppInstallation { row, app: None } })
    }
}

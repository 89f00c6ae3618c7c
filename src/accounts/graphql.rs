//! GraphQL types and resolvers for accounts: `viewer`, organizations, register/login/logout/refresh.

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};

use super::model::{OrgRow, UserRow};
use super::service::{self, IssuedSession, RegisterInput as ServiceRegister};
use crate::auth::{Actor, Role};
use crate::graphql::context::{Authenticated, ContextExt, Scope};
use crate::graphql::loaders::{Loaders, loader_error};
use crate::graphql::scalars::DateTime;
use crate::keys::graphql::ApiKey;

/// A person who signs in to Gantry.
pub struct User(pub UserRow);

/// A person who signs in to Gantry.
#[Object]
impl User {
    /// Global id (`usr_…`).
    pub async fn id(&self) -> ID {
        self.0.id.clone().into()
    }
    /// Email address, lower-cased; used to sign in.
    #[graphql(guard = "Scope(\"user:read\")")]
    async fn email(&self) -> &str {
        &self.0.email
    }
    /// Display name.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// Whether the user administers the whole platform.
    async fn is_platform_admin(&self) -> bool {
        self.0.is_platform_admin
    }
    /// Whether the user confirmed their email address (the link mailed at sign-up, or an
    /// invitation accepted).
    async fn email_verified(&self) -> bool {
        self.0.email_verified_at.is_some()
    }
    /// When the account was created.
    async fn created_at(&self) -> DateTime {
        self.0.created_at.into()
    }
}

/// An organization: the owner of keys, webhooks, apps, usage and the bill.
pub struct Organization {
    pub row: OrgRow,
    /// The caller's role in it, when the caller is a member.
    pub role: Option<Role>,
}

/// An organization: the owner of keys, webhooks, apps, usage and the bill.
#[Object]
impl Organization {
    /// Global id (`org_…`).
    pub async fn id(&self) -> ID {
        self.row.id.clone().into()
    }
    /// Display name.
    async fn name(&self) -> &str {
        &self.row.name
    }
    /// Unique, URL-safe handle.
    async fn slug(&self) -> &str {
        &self.row.slug
    }
    /// Whether this is a user's personal organization, created at sign-up.
    async fn is_personal(&self) -> bool {
        self.row.is_personal
    }
    /// The plan whose limits apply to the organization.
    async fn plan(&self, ctx: &Context<'_>) -> async_graphql::Result<crate::limits::graphql::Plan> {
        Ok(crate::limits::graphql::Plan(crate::limits::service::plan_for_org(ctx.app(), &self.row.id).await?))
    }
    /// The caller's role here (null for API keys and non-member administrators).
    async fn viewer_role(&self) -> Option<Role> {
        self.role
    }
    /// When a platform administrator suspended it (null: not suspended). Its credentials are
    /// refused and its webhooks wait while it is.
    async fn suspended_at(&self) -> Option<DateTime> {
        self.row.suspended_at.map(Into::into)
    }
    /// Why it is suspended.
    async fn suspended_reason(&self) -> Option<&str> {
        self.row.suspended_reason.as_deref()
    }
    /// When it was deleted (null: it was not).
    async fn deleted_at(&self) -> Option<DateTime> {
        self.row.deleted_at.map(Into::into)
    }
    /// When a deleted organization's data is (or was) purged.
    async fn purge_after(&self) -> Option<DateTime> {
        self.row.purge_after.map(Into::into)
    }
    /// When the organization was created.
    async fn created_at(&self) -> DateTime {
        self.row.created_at.into()
    }
}

/// A signed-in session. The tokens appear only in the response that created them.
#[derive(SimpleObject)]
pub struct Session {
    /// Session id (`ses_…`).
    pub id: ID,
    /// Bearer token for `Authorization: Bearer …` (and WebSocket `connection_init`).
    pub token: String,
    /// Exchange it with `refreshSession` for a new session; it works once.
    pub refresh_token: String,
    /// When `token` stops working.
    pub expires_at: DateTime,
    /// When `refreshToken` stops working.
    pub refresh_expires_at: DateTime,
}

impl From<IssuedSession> for Session {
    fn from(s: IssuedSession) -> Self {
        Session {
            id: s.id.into(),
            token: s.token,
            refresh_token: s.refresh_token,
            expires_at: s.expires_at.into(),
            refresh_expires_at: s.refresh_expires_at.into(),
        }
    }
}

/// The result of `register`, `login` and `refreshSession`.
#[derive(SimpleObject)]
pub struct AuthPayload {
    /// The signed-in user.
    pub user: UserView,
    /// The new session.
    pub session: Session,
}

/// A user as returned from authentication (the caller itself, so every field is visible).
#[derive(SimpleObject)]
#[graphql(name = "AuthenticatedUser")]
pub struct UserView {
    /// Global id (`usr_…`).
    pub id: ID,
    /// Email address.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Whether the user administers the whole platform.
    pub is_platform_admin: bool,
    /// The organization created for the user at sign-up.
    pub personal_organization_id: ID,
    /// Whether the user confirmed their email address.
    pub email_verified: bool,
}

impl From<UserRow> for UserView {
    fn from(u: UserRow) -> Self {
        UserView {
            id: u.id.into(),
            email: u.email,
            name: u.name,
            is_platform_admin: u.is_platform_admin,
            personal_organization_id: u.personal_org_id.into(),
            email_verified: u.email_verified_at.is_some(),
        }
    }
}

/// What kind of credential made the request.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum CredentialKind {
    /// A user session token.
    User,
    /// An API key.
    ApiKey,
    /// A marketplace app's OAuth access token.
    OauthApp,
}

/// The caller: who is asking, for which organization, with which scopes.
pub struct Viewer;

/// The caller: who is asking, for which organization, with which scopes.
#[Object]
impl Viewer {
    /// The id of the credential's owner: the user (`usr_…`) for a session, the key (`key_…`) for an
    /// API key, the app (`app_…`) for an OAuth access token.
    async fn id(&self, ctx: &Context<'_>) -> async_graphql::Result<ID> {
        Ok(ID(ctx.principal()?.actor_id()))
    }
    /// What kind of credential this is.
    async fn kind(&self, ctx: &Context<'_>) -> async_graphql::Result<CredentialKind> {
        Ok(match ctx.principal()?.actor {
            Actor::User { .. } => CredentialKind::User,
            Actor::ApiKey { .. } => CredentialKind::ApiKey,
            Actor::OAuthApp { .. } => CredentialKind::OauthApp,
        })
    }
    /// The scopes the credential holds here (`*` = all).
    async fn scopes(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<String>> {
        Ok(ctx.principal()?.scopes.to_vec())
    }
    /// The caller's role in the current organization (sessions only).
    async fn role(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Role>> {
        Ok(ctx.principal()?.role)
    }
    /// The organization this request acts for (`X-Organization-Id`, default the personal one).
    #[graphql(guard = "Scope(\"org:read\")")]
    async fn organization(&self, ctx: &Context<'_>) -> async_graphql::Result<Organization> {
        let p = ctx.principal()?;
        let row = ctx
            .data_unchecked::<Loaders>()
            .get()
            .load_one(p.org_id.clone())
            .await
            .map_err(loader_error)?
            .ok_or(crate::error::Error::NotFound("organization"))?;
        Ok(Organization { row, role: p.role })
    }
    /// The signed-in user, the user who created the API key in use, or the user who authorized
    /// the app in use.
    #[graphql(guard = "Scope(\"user:read\")")]
    async fn user(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        let p = ctx.principal()?;
        let id = match &p.actor {
            Actor::User { user_id, .. } => Some(user_id.clone()),
            Actor::ApiKey { created_by, .. } => created_by.clone(),
            Actor::OAuthApp { user_id, .. } => user_id.clone(),
        };
        let Some(id) = id else { return Ok(None) };
        Ok(ctx.data_unchecked::<Loaders>().get().load_one(id).await.map_err(loader_error)?.map(User))
    }
    /// The API key in use, when the credential is one.
    #[graphql(guard = "Scope(\"keys:read\")")]
    async fn api_key(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<ApiKey>> {
        let p = ctx.principal()?;
        let Actor::ApiKey { key_id, .. } = &p.actor else {
            return Ok(None);
        };
        let key = crate::keys::service::get_key(ctx.app(), p, key_id.as_str()).await?;
        Ok(Some(ApiKey(key)))
    }
    /// The marketplace app in use, when the credential is an OAuth access token.
    async fn app(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<crate::apps::graphql::MarketplaceApp>> {
        let p = ctx.principal()?;
        let Some(app_id) = p.app_id() else {
            return Ok(None);
        };
        let row = crate::apps::service::app_by_id(ctx.app(), app_id).await?;
        Ok(Some(crate::apps::graphql::MarketplaceApp(row)))
    }
}

/// Sign-up details.
#[derive(InputObject)]
pub struct RegisterInput {
    /// Email address (unique, case-insensitive).
    pub email: String,
    /// 8 to 128 characters.
    pub password: String,
    /// Display name (default: the part of the email before `@`).
    pub name: Option<String>,
    /// The token of an invitation mailed to this address (`gki_…`): the new account joins the
    /// inviting organization with the invitation's role, and the address counts as confirmed.
    pub invitation_token: Option<String>,
}

/// Sign-in details.
#[derive(InputObject)]
pub struct LoginInput {
    /// Email address.
    pub email: String,
    /// Password.
    pub password: String,
}

#[derive(Default)]
pub struct AccountsQuery;

#[Object]
impl AccountsQuery {
    /// The caller: the credential, its organization and scopes.
    #[graphql(guard = "Authenticated")]
    async fn viewer(&self) -> Viewer {
        Viewer
    }

    /// Organizations the caller belongs to (an API key: its own).
    #[graphql(guard = "Scope(\"org:read\")")]
    async fn organizations(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Organization>> {
        let rows = service::list_orgs(ctx.app(), ctx.principal()?).await?;
        Ok(rows.into_iter().map(|(row, role)| Organization { row, role }).collect())
    }

    /// One organization the caller may see.
    #[graphql(guard = "Scope(\"org:read\")")]
    async fn organization(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Organization id (`org_…`).")] id: ID,
    ) -> async_graphql::Result<Organization> {
        let p = ctx.principal()?;
        let org_id = id.parse().map_err(|_| crate::error::Error::NotFound("organization"))?;
        let row = service::get_org(ctx.app(), p, &org_id).await?;
        let role = if row.id == p.org_id { p.role } else { None };
        Ok(Organization { row, role })
    }
}

#[derive(Default)]
pub struct AccountsMutation;

#[Object]
impl AccountsMutation {
    /// Creates an account with a personal organization (the user is its OWNER) and signs in.
    async fn register(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Sign-up details.")] input: RegisterInput,
    ) -> async_graphql::Result<AuthPayload> {
        let ip = ctx.client_ip();
        let (user, session) = service::register(
            ctx.app(),
            ServiceRegister {
                email: input.email,
                password: input.password,
                name: input.name,
                invitation_token: input.invitation_token,
            },
            ip,
        )
        .await?;
        Ok(AuthPayload { user: user.into(), session: session.into() })
    }

    /// Signs in with email and password.
    async fn login(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Sign-in details.")] input: LoginInput,
    ) -> async_graphql::Result<AuthPayload> {
        let ip = ctx.client_ip();
        let (user, session) = service::login(ctx.app(), &input.email, &input.password, ip).await?;
        Ok(AuthPayload { user: user.into(), session: session.into() })
    }

    /// Creates an organization with you as its OWNER. Act in it with `X-Organization-Id`.
    #[graphql(guard = "Authenticated")]
    async fn create_organization(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "1 to 100 characters.")] name: String,
    ) -> async_graphql::Result<Organization> {
        let row = service::create_org(ctx.app(), ctx.principal()?, &name).await?;
        Ok(Organization { row, role: Some(Role::Owner) })
    }

    /// Revokes the session used for this request.
    #[graphql(guard = "Authenticated")]
    async fn logout(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        service::logout(ctx.app(), ctx.principal()?).await?;
        Ok(true)
    }

    /// Exchanges a refresh token for a new session. Each refresh token works once.
    async fn refresh_session(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The `refreshToken` of a session.")] refresh_token: String,
    ) -> async_graphql::Result<AuthPayload> {
        let (user, session) = service::refresh(ctx.app(), &refresh_token).await?;
        Ok(AuthPayload { user: user.into(), session: session.into() })
    }
}

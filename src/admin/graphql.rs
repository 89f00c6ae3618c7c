//! GraphQL for platform administration: users and organizations (list, search, suspend, erase),
//! platform administration, platform analytics — and deleting one's own organization (OWNER).

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};

use super::{analytics, service};
use crate::accounts::graphql::Organization;
use crate::accounts::model::UserRow;
use crate::auth::Role;
use crate::graphql::connection::{Conn, connection};
use crate::graphql::context::{Authenticated, ContextExt};
use crate::graphql::page_complexity;
use crate::graphql::scalars::DateTime;
use crate::pagination::PageRequest;

/// A user as platform administrators see them.
pub struct PlatformUser(pub UserRow);

/// An organization a user belongs to, with their role there.
#[derive(SimpleObject)]
pub struct UserMembership {
    /// The organization.
    pub organization: Organization,
    /// The user's role in it.
    pub role: Option<Role>,
}

/// A user as platform administrators see them.
#[Object]
impl PlatformUser {
    /// User id (`usr_…`).
    async fn id(&self) -> ID {
        self.0.id.clone().into()
    }
    /// Email address.
    async fn email(&self) -> &str {
        &self.0.email
    }
    /// Display name.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// Whether they administer the platform.
    async fn is_platform_admin(&self) -> bool {
        self.0.is_platform_admin
    }
    /// Whether they confirmed their address.
    async fn email_verified(&self) -> bool {
        self.0.email_verified_at.is_some()
    }
    /// When they were suspended (null: not suspended).
    async fn suspended_at(&self) -> Option<DateTime> {
        self.0.suspended_at.map(Into::into)
    }
    /// Why.
    async fn suspended_reason(&self) -> Option<&str> {
        self.0.suspended_reason.as_deref()
    }
    /// Their personal organization (`org_…`).
    async fn personal_organization_id(&self) -> ID {
        self.0.personal_org_id.clone().into()
    }
    /// When the account was created.
    async fn created_at(&self) -> DateTime {
        self.0.created_at.into()
    }
    /// The organizations they belong to and their role in each.
    async fn memberships(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<UserMembership>> {
        let (_, orgs) = service::get_user(ctx.app(), ctx.principal()?, self.0.id.as_str()).await?;
        Ok(orgs
            .into_iter()
            .map(|(row, role)| UserMembership { organization: Organization { row, role: None }, role })
            .collect())
    }
}

/// Organizations on one plan.
#[derive(SimpleObject)]
pub struct PlanOrganizations {
    /// Plan id (`pln_…`).
    pub plan_id: ID,
    /// Plan name.
    pub plan_name: String,
    /// Organizations on it (deleted ones left out).
    pub organizations: i64,
}

/// Webhook deliveries in one state.
#[derive(SimpleObject)]
pub struct DeliveryCount {
    /// `pending`, `succeeded` or `failed`.
    pub status: String,
    /// Deliveries made in the period in that state now.
    pub count: i64,
}

/// Money paid in one month.
#[derive(SimpleObject)]
pub struct RevenuePeriod {
    /// `YYYY-MM` (UTC) of the payments.
    pub period: String,
    /// ISO currency.
    pub currency: String,
    /// Paid, in minor units.
    pub amount: i64,
    /// Invoices paid.
    pub invoices: i64,
}

/// An amount in one currency.
#[derive(SimpleObject)]
pub struct CurrencyAmount {
    /// ISO currency.
    pub currency: String,
    /// Minor units.
    pub amount: i64,
}

/// The platform over a period.
#[derive(SimpleObject)]
pub struct PlatformAnalytics {
    /// Start of the period.
    pub start: DateTime,
    /// End of the period (exclusive).
    pub end: DateTime,
    /// Users now (erased ones left out).
    pub users: i64,
    /// Users who signed up in the period.
    pub new_users: i64,
    /// Users suspended now.
    pub suspended_users: i64,
    /// Organizations now (deleted ones left out).
    pub organizations: i64,
    /// Organizations created in the period.
    pub new_organizations: i64,
    /// Organizations suspended now.
    pub suspended_organizations: i64,
    /// Organizations per plan now.
    pub organizations_by_plan: Vec<PlanOrganizations>,
    /// API calls in the period (whole UTC days).
    pub api_calls: i64,
    /// Of which answered with an error (4xx, 5xx).
    pub api_errors: i64,
    /// Webhook deliveries made in the period, by state.
    pub webhook_deliveries: Vec<DeliveryCount>,
    /// Invoices paid in the period, by month and currency.
    pub revenue: Vec<RevenuePeriod>,
    /// The platform's share of marketplace sales paid in the period.
    pub marketplace_platform_share: Vec<CurrencyAmount>,
}

/// Changes to a user by a platform administrator; omitted fields stay as they are.
#[derive(InputObject)]
pub struct UpdateUserInput {
    /// Display name (1–100 characters).
    pub name: Option<String>,
    /// Suspend (true, with `suspendedReason`) or restore (false).
    pub suspended: Option<bool>,
    /// Why the user is suspended.
    pub suspended_reason: Option<String>,
    /// Grant (true) or revoke (false) platform administration.
    pub is_platform_admin: Option<bool>,
}

/// A deleted organization.
#[derive(SimpleObject)]
pub struct DeletedOrganization {
    /// Organization id (`org_…`).
    pub id: ID,
    /// When its data is purged.
    pub purge_after: DateTime,
    /// The export made at deletion (`exp_…`): its download link is mailed to you when it is
    /// ready, and works until the purge.
    pub export_id: ID,
}

#[derive(Default)]
pub struct AdminQuery;

#[Object]
impl AdminQuery {
    /// Users, newest first; `search` matches the address or the name (platform administrators).
    #[graphql(guard = "Authenticated", complexity = "page_complexity(first, last, child_complexity)")]
    async fn admin_users(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Part of an address or name (case-insensitive).")] search: Option<String>,
        #[graphql(desc = "Page size from the start, 1–100 (default 20).")] first: Option<i32>,
        #[graphql(desc = "Cursor to continue after.")] after: Option<String>,
        #[graphql(desc = "Page size from the end, 1–100.")] last: Option<i32>,
        #[graphql(desc = "Cursor to continue before.")] before: Option<String>,
    ) -> async_graphql::Result<Conn<PlatformUser>> {
        let page = PageRequest::from_args(first, after, last, before)?;
        let rows = service::list_users(ctx.app(), ctx.principal()?, search.as_deref(), &page).await?;
        Ok(connection(rows, |u| u.id.to_string(), PlatformUser))
    }

    /// One user (platform administrators).
    #[graphql(guard = "Authenticated")]
    async fn admin_user(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "User id (`usr_…`).")] id: ID,
    ) -> async_graphql::Result<PlatformUser> {
        Ok(PlatformUser(service::get_user(ctx.app(), ctx.principal()?, &id).await?.0))
    }

    /// Organizations, newest first; `search` matches the name or the slug (platform administrators).
    #[graphql(guard = "Authenticated", complexity = "page_complexity(first, last, child_complexity)")]
    async fn admin_organizations(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Part of a name or slug (case-insensitive).")] search: Option<String>,
        #[graphql(desc = "Page size from the start, 1–100 (default 20).")] first: Option<i32>,
        #[graphql(desc = "Cursor to continue after.")] after: Option<String>,
        #[graphql(desc = "Page size from the end, 1–100.")] last: Option<i32>,
        #[graphql(desc = "Cursor to continue before.")] before: Option<String>,
    ) -> async_graphql::Result<Conn<Organization>> {
        let page = PageRequest::from_args(first, after, last, before)?;
        let rows = service::list_orgs(ctx.app(), ctx.principal()?, search.as_deref(), &page).await?;
        Ok(connection(rows, |o| o.id.to_string(), |row| Organization { row, role: None }))
    }

    /// The platform over a period (platform administrators): users, organizations by plan, API
    /// calls, webhook deliveries, revenue.
    #[graphql(guard = "Authenticated")]
    async fn platform_analytics(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "From (default: 30 days ago).")] start: Option<DateTime>,
        #[graphql(desc = "Until, exclusive (default: now).")] end: Option<DateTime>,
    ) -> async_graphql::Result<PlatformAnalytics> {
        let now = ctx.app().clock.now_ms();
        let end = end.map_or(now, |d| d.0);
        let start = start.map_or(end - 30 * 86_400_000, |d| d.0);
        if start >= end {
            return Err(crate::error::Error::bad_input("start", "must be before end").into());
        }
        let a = analytics::platform(ctx.app(), ctx.principal()?, start, end).await?;
        Ok(PlatformAnalytics {
            start: DateTime(start),
            end: DateTime(end),
            users: a.users,
            new_users: a.new_users,
            suspended_users: a.suspended_users,
            organizations: a.organizations,
            new_organizations: a.new_organizations,
            suspended_organizations: a.suspended_organizations,
            organizations_by_plan: a
                .organizations_by_plan
                .into_iter()
                .map(|p| PlanOrganizations {
                    plan_id: ID(p.plan_id),
                    plan_name: p.plan_name,
                    organizations: p.organizations,
                })
                .collect(),
            api_calls: a.api_calls,
            api_errors: a.api_errors,
            webhook_deliveries: a
                .webhook_deliveries
                .into_iter()
                .map(|(status, count)| DeliveryCount { status, count })
                .collect(),
            revenue: a
                .revenue
                .into_iter()
                .map(|r| RevenuePeriod {
                    period: r.period,
                    currency: r.currency,
                    amount: r.amount_cents,
                    invoices: r.invoices,
                })
                .collect(),
            marketplace_platform_share: a
                .marketplace_platform_share
                .into_iter()
                .map(|(currency, amount)| CurrencyAmount { currency, amount })
                .collect(),
        })
    }
}

#[derive(Default)]
pub struct AdminMutation;

#[Object]
impl AdminMutation {
    /// Suspends a user: every session ends on every node, and sign-in is refused with
    /// `USER_SUSPENDED` until `unsuspendUser` (platform administrators).
    #[graphql(guard = "Authenticated")]
    async fn suspend_user(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "User id (`usr_…`).")] id: ID,
        #[graphql(desc = "Why (kept with the user and in the audit log).")] reason: String,
    ) -> async_graphql::Result<PlatformUser> {
        Ok(PlatformUser(service::set_user_suspended(ctx.app(), ctx.principal()?, &id, Some(&reason)).await?))
    }

    /// Lifts a user's suspension (platform administrators).
    #[graphql(guard = "Authenticated")]
    async fn unsuspend_user(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "User id (`usr_…`).")] id: ID,
    ) -> async_graphql::Result<PlatformUser> {
        Ok(PlatformUser(service::set_user_suspended(ctx.app(), ctx.principal()?, &id, None).await?))
    }

    /// Erases a user: address, name and password replaced, sessions and memberships ended, the
    /// address scrubbed from events and audit entries, their personal organization deleted (its
    /// invoices kept). Refused while they are the last OWNER of an organization with others in it
    /// (platform administrators).
    #[graphql(guard = "Authenticated")]
    async fn delete_user(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "User id (`usr_…`).")] id: ID,
    ) -> async_graphql::Result<bool> {
        service::delete_user(ctx.app(), ctx.principal()?, &id).await?;
        Ok(true)
    }

    /// Makes a user a platform administrator (also `gantry admin grant EMAIL`).
    #[graphql(guard = "Authenticated")]
    async fn grant_platform_admin(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "User id (`usr_…`).")] user_id: ID,
    ) -> async_graphql::Result<PlatformUser> {
        Ok(PlatformUser(service::set_platform_admin_by_id(ctx.app(), ctx.principal()?, &user_id, true).await?))
    }

    /// Ends a user's platform administration (also `gantry admin revoke EMAIL`); the last
    /// administrator keeps it.
    #[graphql(guard = "Authenticated")]
    async fn revoke_platform_admin(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "User id (`usr_…`).")] user_id: ID,
    ) -> async_graphql::Result<PlatformUser> {
        Ok(PlatformUser(service::set_platform_admin_by_id(ctx.app(), ctx.principal()?, &user_id, false).await?))
    }

    /// Changes a user: name, suspension, platform administration (platform administrators).
    #[graphql(guard = "Authenticated")]
    async fn update_user(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "User id (`usr_…`).")] id: ID,
        #[graphql(desc = "The changes.")] input: UpdateUserInput,
    ) -> async_graphql::Result<PlatformUser> {
        let app = ctx.app();
        let p = ctx.principal()?;
        let mut user = service::get_user(app, p, &id).await?.0;
        if let Some(name) = &input.name {
            user = service::rename_user(app, p, &id, name).await?;
        }
        match (input.suspended, &input.suspended_reason) {
            (Some(true), reason) => {
                let reason = reason.clone().unwrap_or_else(|| "suspended by a platform administrator".into());
                user = service::set_user_suspended(app, p, &id, Some(&reason)).await?;
            }
            (Some(false), _) => user = service::set_user_suspended(app, p, &id, None).await?,
            (None, _) => {}
        }
        if let Some(grant) = input.is_platform_admin
            && grant != user.is_platform_admin
        {
            user = service::set_platform_admin_by_id(app, p, &id, grant).await?;
        }
        Ok(PlatformUser(user))
    }

    /// Suspends an organization: every credential acting for it is refused with
    /// `ORGANIZATION_SUSPENDED` and its webhooks wait, on every node at once; nothing is deleted
    /// (platform administrators).
    #[graphql(guard = "Authenticated")]
    async fn suspend_organization(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Organization id (`org_…`).")] id: ID,
        #[graphql(desc = "Why (kept with the organization and in its audit log).")] reason: String,
    ) -> async_graphql::Result<Organization> {
        let row = service::set_org_suspended(ctx.app(), ctx.principal()?, &id, Some(&reason)).await?;
        Ok(Organization { row, role: None })
    }

    /// Lifts an organization's suspension: its credentials work again and its waiting webhook
    /// deliveries are sent at once (platform administrators).
    #[graphql(guard = "Authenticated")]
    async fn unsuspend_organization(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Organization id (`org_…`).")] id: ID,
    ) -> async_graphql::Result<Organization> {
        let row = service::set_org_suspended(ctx.app(), ctx.principal()?, &id, None).await?;
        Ok(Organization { row, role: None })
    }

    /// Deletes the organization of this request (its OWNER; not a personal organization): every
    /// API key and app token is revoked, the subscription ends with the running month, and its
    /// data is removed after the export window (`GANTRY_ORG_PURGE_AFTER_DAYS`). An export of it is
    /// made at once; its download link is mailed to you and works until the purge.
    #[graphql(guard = "Authenticated")]
    async fn delete_organization(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The organization's slug, to confirm.")] confirm: String,
    ) -> async_graphql::Result<DeletedOrganization> {
        let (app, p) = (ctx.app(), ctx.principal()?);
        let purge_after = crate::accounts::lifecycle::delete_org(app, p, &confirm).await?;
        // The last export: its link is mailed to the owner and works until the purge.
        let export = crate::exports::service::request(app, p).await?;
        tokio::spawn(crate::exports::service::run(app.clone()));
        Ok(DeletedOrganization {
            id: p.org_id.clone().into(),
            purge_after: DateTime(purge_after),
            export_id: export.id.into(),
        })
    }
}

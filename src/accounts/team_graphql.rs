//! GraphQL for teams: members and roles, invitations, the confirmation of an address and the
//! reset of a password. Resolvers call `members`, `invitations` and `email`; the role matrix is
//! enforced there, on every surface.

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};

use super::invitations::{self, StatusFilter};
use super::model::{InvitationRow, InvitationState, MembershipRow, UserRow};
use super::{email, members};
use crate::auth::Role;
use crate::graphql::connection::{Conn, connection};
use crate::graphql::context::{Authenticated, ContextExt, Scope};
use crate::graphql::page_complexity;
use crate::graphql::scalars::DateTime;
use crate::pagination::PageRequest;

/// A member of the organization: a user and their role.
#[derive(SimpleObject)]
pub struct Member {
    /// The user (`usr_…`).
    pub user_id: ID,
    /// Display name.
    pub name: String,
    /// Email address.
    pub email: String,
    /// Their role here.
    pub role: Role,
    /// When they joined.
    pub joined_at: DateTime,
}

impl From<(MembershipRow, UserRow)> for Member {
    fn from((m, u): (MembershipRow, UserRow)) -> Self {
        Member {
            user_id: u.id.into(),
            name: u.name,
            email: u.email,
            role: Role::parse(&m.role).unwrap_or(Role::Viewer),
            joined_at: m.created_at.into(),
        }
    }
}

/// Where an invitation stands.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum InvitationStatus {
    /// Sent and not yet accepted; the link works until `expiresAt`.
    Pending,
    /// Accepted: the invitee is a member.
    Accepted,
    /// Revoked: the link no longer works.
    Revoked,
    /// Not accepted in time; invite again.
    Expired,
}

impl From<InvitationStatus> for StatusFilter {
    fn from(s: InvitationStatus) -> Self {
        match s {
            InvitationStatus::Pending => StatusFilter::Pending,
            InvitationStatus::Accepted => StatusFilter::Accepted,
            InvitationStatus::Revoked => StatusFilter::Revoked,
            InvitationStatus::Expired => StatusFilter::Expired,
        }
    }
}

/// An invitation to join the organization.
pub struct Invitation(pub InvitationRow);

/// An invitation to join the organization.
#[Object]
impl Invitation {
    /// Invitation id (`ivt_…`).
    async fn id(&self) -> ID {
        self.0.id.clone().into()
    }
    /// The invited address.
    async fn email(&self) -> &str {
        &self.0.email
    }
    /// The role the invitee gets.
    async fn role(&self) -> Role {
        Role::parse(&self.0.role).unwrap_or(Role::Viewer)
    }
    /// Where it stands now.
    async fn status(&self, ctx: &Context<'_>) -> InvitationStatus {
        match self.0.state(ctx.app().clock.now_ms()) {
            InvitationState::Pending => InvitationStatus::Pending,
            InvitationState::Accepted => InvitationStatus::Accepted,
            InvitationState::Revoked => InvitationStatus::Revoked,
            InvitationState::Expired => InvitationStatus::Expired,
        }
    }
    /// Who invited: a user (`usr_…`), an API key (`key_…`) or an app (`app_…`).
    async fn invited_by(&self) -> ID {
        ID(self.0.invited_by.clone())
    }
    /// When it was first sent.
    async fn created_at(&self) -> DateTime {
        self.0.created_at.into()
    }
    /// When its link stops working.
    async fn expires_at(&self) -> DateTime {
        self.0.expires_at.into()
    }
    /// When it was last mailed.
    async fn last_sent_at(&self) -> DateTime {
        self.0.last_sent_at.into()
    }
    /// How many times it was mailed.
    async fn sent_count(&self) -> i64 {
        self.0.sent_count
    }
    /// When it was accepted.
    async fn accepted_at(&self) -> Option<DateTime> {
        self.0.accepted_at.map(Into::into)
    }
    /// The user who accepted it.
    async fn accepted_by(&self) -> Option<ID> {
        self.0.accepted_by.clone().map(Into::into)
    }
    /// When it was revoked.
    async fn revoked_at(&self) -> Option<DateTime> {
        self.0.revoked_at.map(Into::into)
    }
}

/// An invitation sent (or sent again).
#[derive(SimpleObject)]
pub struct InvitationPayload {
    /// The invitation.
    pub invitation: Invitation,
    /// Whether the mail went out; if not, `resendInvitation` tries again.
    pub mail_sent: bool,
}

/// What an invitation link shows before it is accepted.
#[derive(SimpleObject)]
pub struct InvitationPreview {
    /// The organization to join.
    pub organization_name: String,
    /// The role the invitee gets.
    pub role: Role,
    /// The invited address.
    pub email: String,
    /// When the link stops working.
    pub expires_at: DateTime,
    /// Whether an account with this address exists (sign in and `acceptInvitation`) or not
    /// (`register` with `invitationToken`).
    pub account_exists: bool,
}

/// Who to invite.
#[derive(InputObject)]
pub struct InviteMemberInput {
    /// The invitee's email address.
    pub email: String,
    /// The role they get (inviting an OWNER needs an OWNER).
    pub role: Role,
}

#[derive(Default)]
pub struct TeamQuery;

#[Object]
impl TeamQuery {
    /// The organization's members and their roles, oldest first.
    #[graphql(guard = "Scope(\"org:read\")")]
    async fn members(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Member>> {
        Ok(members::list(ctx.app(), ctx.principal()?).await?.into_iter().map(Member::from).collect())
    }

    /// The organization's invitations, newest first (OWNER and ADMIN).
    #[graphql(guard = "Scope(\"org:write\")", complexity = "page_complexity(first, last, child_complexity)")]
    async fn invitations(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only invitations in this state.")] status: Option<InvitationStatus>,
        #[graphql(desc = "Page size from the start, 1–100 (default 20).")] first: Option<i32>,
        #[graphql(desc = "Cursor to continue after.")] after: Option<String>,
        #[graphql(desc = "Page size from the end, 1–100.")] last: Option<i32>,
        #[graphql(desc = "Cursor to continue before.")] before: Option<String>,
    ) -> async_graphql::Result<Conn<Invitation>> {
        let page = PageRequest::from_args(first, after, last, before)?;
        let rows = invitations::list(ctx.app(), ctx.principal()?, status.map(Into::into), &page).await?;
        Ok(connection(rows, |i| i.id.to_string(), Invitation))
    }

    /// What an invitation link offers, for whoever holds its token (no credential needed).
    async fn invitation_preview(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The token of the invitation link (`gki_…`).")] token: String,
    ) -> async_graphql::Result<InvitationPreview> {
        let p = invitations::preview(ctx.app(), &token).await?;
        Ok(InvitationPreview {
            organization_name: p.organization_name,
            role: Role::parse(&p.invitation.role).unwrap_or(Role::Viewer),
            email: p.invitation.email,
            expires_at: p.invitation.expires_at.into(),
            account_exists: p.account_exists,
        })
    }
}

#[derive(Default)]
pub struct TeamMutation;

#[Object]
impl TeamMutation {
    /// Invites an address to the organization with a role, and mails the link (OWNER and ADMIN;
    /// an OWNER's invitation needs an OWNER). Members and pending invitations count against the
    /// plan's `maxMembers`.
    #[graphql(guard = "Scope(\"org:write\")")]
    async fn invite_member(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Who and with which role.")] input: InviteMemberInput,
    ) -> async_graphql::Result<InvitationPayload> {
        let sent = invitations::invite(ctx.app(), ctx.principal()?, &input.email, input.role).await?;
        Ok(InvitationPayload { invitation: Invitation(sent.invitation), mail_sent: sent.mail_sent })
    }

    /// Mails a pending invitation again with a new link (the previous link stops working) and a
    /// new expiry.
    #[graphql(guard = "Scope(\"org:write\")")]
    async fn resend_invitation(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Invitation id (`ivt_…`).")] id: ID,
    ) -> async_graphql::Result<InvitationPayload> {
        let sent = invitations::resend(ctx.app(), ctx.principal()?, &id).await?;
        Ok(InvitationPayload { invitation: Invitation(sent.invitation), mail_sent: sent.mail_sent })
    }

    /// Revokes a pending invitation: its link stops working.
    #[graphql(guard = "Scope(\"org:write\")")]
    async fn revoke_invitation(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Invitation id (`ivt_…`).")] id: ID,
    ) -> async_graphql::Result<Invitation> {
        Ok(Invitation(invitations::revoke(ctx.app(), ctx.principal()?, &id).await?))
    }

    /// Accepts an invitation sent to your address: you become a member with its role. Act in the
    /// organization with `X-Organization-Id`.
    #[graphql(guard = "Authenticated")]
    async fn accept_invitation(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The token of the invitation link (`gki_…`).")] token: String,
    ) -> async_graphql::Result<super::graphql::Organization> {
        let p = ctx.principal()?;
        let (inv, org) = invitations::accept(ctx.app(), p, &token).await?;
        let row = crate::accounts::service::load_orgs(ctx.app(), std::slice::from_ref(&org))
            .await?
            .into_iter()
            .next()
            .ok_or(crate::error::Error::NotFound("organization"))?;
        Ok(super::graphql::Organization { row, role: Role::parse(&inv.role) })
    }

    /// Gives a member another role (OWNER and ADMIN; making, demoting or changing an OWNER needs
    /// an OWNER; the last OWNER keeps the role).
    #[graphql(guard = "Scope(\"org:write\")")]
    async fn change_member_role(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The member (`usr_…`).")] user_id: ID,
        #[graphql(desc = "The new role.")] role: Role,
    ) -> async_graphql::Result<Member> {
        let p = ctx.principal()?;
        members::change_role(ctx.app(), p, &user_id, role).await?;
        let all = members::list(ctx.app(), p).await?;
        let found = all.into_iter().find(|(m, _)| m.user_id.as_str() == user_id.as_str());
        Ok(found.map(Member::from).ok_or(crate::error::Error::NotFound("member"))?)
    }

    /// Removes a member (OWNER and ADMIN; an OWNER is removed by an OWNER; never the last OWNER).
    #[graphql(guard = "Scope(\"org:write\")")]
    async fn remove_member(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The member (`usr_…`).")] user_id: ID,
    ) -> async_graphql::Result<bool> {
        members::remove(ctx.app(), ctx.principal()?, &user_id).await?;
        Ok(true)
    }

    /// Leaves the organization of this request (any role; not its last OWNER).
    #[graphql(guard = "Authenticated")]
    async fn leave_organization(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        let p = ctx.principal()?;
        let me = p.user_id().ok_or_else(|| crate::error::Error::forbidden("only a signed-in user leaves"))?;
        members::remove(ctx.app(), p, me.as_str()).await?;
        Ok(true)
    }

    /// Makes another member the OWNER; you become ADMIN (OWNER only).
    #[graphql(guard = "Authenticated")]
    async fn transfer_ownership(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The member who becomes OWNER (`usr_…`).")] user_id: ID,
    ) -> async_graphql::Result<bool> {
        members::transfer_ownership(ctx.app(), ctx.principal()?, &user_id).await?;
        Ok(true)
    }

    /// Mails you a new link that confirms your address. Returns whether the mail went out.
    #[graphql(guard = "Authenticated")]
    async fn request_email_verification(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        Ok(email::request_verification(ctx.app(), ctx.principal()?).await?)
    }

    /// Confirms an address with the token of its link (no credential needed).
    async fn verify_email(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The token of the link (`gkv_…`).")] token: String,
    ) -> async_graphql::Result<super::graphql::UserView> {
        Ok(email::verify(ctx.app(), &token).await?.into())
    }

    /// Mails a password reset link to the account with this address, if there is one. The answer
    /// is `true` either way.
    async fn request_password_reset(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The account's email address.")] email: String,
    ) -> async_graphql::Result<bool> {
        email::request_reset(ctx.app(), &email).await?;
        Ok(true)
    }

    /// Sets a new password with the token of a reset link; every session of the account ends.
    async fn reset_password(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The token of the link (`gkp_…`).")] token: String,
        #[graphql(desc = "The new password, 8 to 128 characters.")] password: String,
    ) -> async_graphql::Result<bool> {
        email::reset(ctx.app(), &token, &password).await?;
        Ok(true)
    }
}

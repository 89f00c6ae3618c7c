//! Diesel rows for users, organizations, memberships and sessions.

use diesel::prelude::*;

use crate::platform::db::schema::{invitations, memberships, organizations, sessions, user_tokens, users};
use crate::platform::ids::{InvitationId, OrgId, SessionId, UserId};

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = users)]
pub struct UserRow {
    pub id: UserId,
    pub email: String,
    pub name: String,
    pub password_hash: String,
    pub is_platform_admin: bool,
    pub personal_org_id: OrgId,
    pub created_at: i64,
    pub updated_at: i64,
    pub email_verified_at: Option<i64>,
    pub suspended_at: Option<i64>,
    pub suspended_reason: Option<String>,
    pub deleted_at: Option<i64>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = users)]
pub struct NewUser<'a> {
    pub id: &'a UserId,
    pub email: &'a str,
    pub name: &'a str,
    pub password_hash: &'a str,
    pub is_platform_admin: bool,
    pub personal_org_id: &'a OrgId,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = organizations)]
pub struct OrgRow {
    pub id: OrgId,
    pub name: String,
    pub slug: String,
    pub is_personal: bool,
    pub is_platform: bool,
    pub created_at: i64,
    pub updated_at: i64,
    pub plan_id: Option<String>,
    pub suspended_at: Option<i64>,
    pub suspended_reason: Option<String>,
    pub deleted_at: Option<i64>,
    pub purge_after: Option<i64>,
    pub purged_at: Option<i64>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = organizations)]
pub struct NewOrg<'a> {
    pub id: &'a OrgId,
    pub name: &'a str,
    pub slug: &'a str,
    pub is_personal: bool,
    pub is_platform: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = memberships)]
pub struct MembershipRow {
    pub org_id: OrgId,
    pub user_id: UserId,
    pub role: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = sessions)]
pub struct SessionRow {
    pub id: SessionId,
    pub user_id: UserId,
    pub token_hash: String,
    pub refresh_hash: String,
    pub expires_at: i64,
    pub refresh_expires_at: i64,
    pub revoked_at: Option<i64>,
    pub created_at: i64,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = sessions)]
pub struct NewSession<'a> {
    pub id: &'a SessionId,
    pub user_id: &'a UserId,
    pub token_hash: &'a str,
    pub refresh_hash: &'a str,
    pub expires_at: i64,
    pub refresh_expires_at: i64,
    pub created_at: i64,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = invitations)]
pub struct InvitationRow {
    pub id: InvitationId,
    pub org_id: OrgId,
    pub email: String,
    pub role: String,
    pub token_hash: String,
    /// `user`, `api_key` or `oauth_app`: who invited.
    pub invited_by_type: String,
    pub invited_by: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub sent_count: i64,
    pub last_sent_at: i64,
    pub accepted_at: Option<i64>,
    pub accepted_by: Option<UserId>,
    pub revoked_at: Option<i64>,
}

/// Where an invitation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvitationState {
    Pending,
    Accepted,
    Revoked,
    Expired,
}

impl InvitationRow {
    pub fn state(&self, now: i64) -> InvitationState {
        if self.accepted_at.is_some() {
            InvitationState::Accepted
        } else if self.revoked_at.is_some() {
            InvitationState::Revoked
        } else if self.expires_at <= now {
            InvitationState::Expired
        } else {
            InvitationState::Pending
        }
    }
}

/// A single-use token mailed to a user (email verification, password reset).
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = user_tokens)]
pub struct UserTokenRow {
    pub token_hash: String,
    pub user_id: UserId,
    /// `verify_email` or `reset_password`.
    pub purpose: String,
    /// The address the token was sent to.
    pub email: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

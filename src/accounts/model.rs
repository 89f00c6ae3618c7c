//! Diesel rows for users, organizations, memberships and sessions.

use diesel::prelude::*;

use crate::platform::db::schema::{memberships, organizations, sessions, users};
use crate::platform::ids::{OrgId, SessionId, UserId};

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

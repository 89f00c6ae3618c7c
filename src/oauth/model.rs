//! Diesel rows for installations, authorization codes and OAuth tokens.

use diesel::prelude::*;

use crate::platform::db::schema::{app_installations, oauth_codes, oauth_tokens};
use crate::platform::ids::{AppId, GrantId, InstallationId, OrgId, UserId};

#[derive(Debug, Clone, Queryable, Selectable, Identifiable, Insertable)]
#[diesel(table_name = app_installations)]
pub struct InstallationRow {
    pub id: InstallationId,
    pub app_id: AppId,
    pub org_id: OrgId,
    pub scopes: String,
    pub installed_by: Option<UserId>,
    pub created_at: i64,
    pub updated_at: i64,
    pub uninstalled_at: Option<i64>,
}

impl InstallationRow {
    pub fn scope_list(&self) -> Vec<String> {
        serde_json::from_str(&self.scopes).unwrap_or_default()
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = oauth_codes)]
pub struct CodeRow {
    pub code_hash: String,
    pub app_id: AppId,
    pub installation_id: InstallationId,
    pub org_id: OrgId,
    pub user_id: UserId,
    pub redirect_uri: String,
    pub scopes: String,
    pub code_challenge: Option<String>,
    pub grant_id: Option<GrantId>,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub created_at: i64,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = oauth_tokens)]
pub struct TokenRow {
    pub token_hash: String,
    pub kind: String,
    pub grant_id: GrantId,
    pub app_id: AppId,
    pub installation_id: Option<InstallationId>,
    pub org_id: OrgId,
    pub user_id: Option<UserId>,
    pub scopes: String,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub created_at: i64,
}

impl TokenRow {
    pub fn scope_list(&self) -> Vec<String> {
        serde_json::from_str(&self.scopes).unwrap_or_default()
    }
}

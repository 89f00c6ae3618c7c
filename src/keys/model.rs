//! Diesel rows for API keys and their secrets.

use diesel::prelude::*;

use crate::platform::db::schema::{api_key_secrets, api_key_usage_daily, api_keys};
use crate::platform::ids::{KeyId, OrgId, UserId};

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = api_keys)]
pub struct KeyRow {
    pub id: KeyId,
    pub org_id: OrgId,
    pub name: String,
    pub description: Option<String>,
    pub environment: String,
    pub start: String,
    pub last_four: String,
    pub scopes: String,
    pub expires_at: Option<i64>,
    pub allowed_ips: String,
    pub metadata: String,
    pub rate_limit: Option<String>,
    pub created_by: Option<UserId>,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_used_at: Option<i64>,
    pub last_used_ip: Option<String>,
    pub total_requests: i64,
    pub revoked_at: Option<i64>,
    pub revoked_reason: Option<String>,
}

impl KeyRow {
    pub fn scope_list(&self) -> Vec<String> {
        serde_json::from_str(&self.scopes).unwrap_or_default()
    }

    pub fn allowed_ip_list(&self) -> Vec<String> {
        serde_json::from_str(&self.allowed_ips).unwrap_or_default()
    }

    /// The key's own rate limits, if it has an override.
    pub fn rate_override(&self) -> Option<crate::limits::policy::Override> {
        self.rate_limit
            .as_deref()
            .and_then(|s| serde_json::from_str(s).ok())
            .filter(|o: &crate::limits::policy::Override| !o.is_empty())
    }

    pub fn metadata_value(&self) -> serde_json::Value {
        serde_json::from_str(&self.metadata).unwrap_or_else(|_| serde_json::json!({}))
    }

    /// `gk_live_…abcd`: enough to recognise a key, never enough to use it.
    pub fn masked(&self) -> String {
        format!("{}…{}", self.start, self.last_four)
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = api_keys)]
pub struct NewKey<'a> {
    pub id: &'a KeyId,
    pub org_id: &'a OrgId,
    pub name: &'a str,
    pub description: Option<&'a str>,
    pub environment: &'a str,
    pub start: &'a str,
    pub last_four: &'a str,
    pub scopes: String,
    pub expires_at: Option<i64>,
    pub allowed_ips: String,
    pub metadata: String,
    pub rate_limit: Option<String>,
    pub created_by: Option<&'a UserId>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = api_key_secrets)]
pub struct SecretRow {
    pub key_hash: String,
    pub key_id: KeyId,
    pub created_at: i64,
    pub expires_at: Option<i64>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = api_key_usage_daily)]
pub struct UsageDayRow {
    pub key_id: KeyId,
    pub day: String,
    pub requests: i64,
}

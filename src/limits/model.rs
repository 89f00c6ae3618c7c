//! Diesel rows for plans.

use diesel::prelude::*;

use crate::platform::db::schema::plans;

#[derive(Debug, Clone, Queryable, Selectable, Identifiable, AsChangeset)]
#[diesel(table_name = plans)]
#[diesel(treat_none_as_null = true)]
pub struct PlanRow {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub description: String,
    pub price_cents: Option<i64>,
    pub annual_price_cents: Option<i64>,
    pub currency: String,
    pub is_default: bool,
    pub per_second: Option<i64>,
    pub per_minute: Option<i64>,
    pub per_hour: Option<i64>,
    pub per_day: Option<i64>,
    pub burst: i64,
    pub monthly_quota: Option<i64>,
    pub concurrency: Option<i64>,
    pub max_apps: Option<i64>,
    pub max_webhook_endpoints: Option<i64>,
    pub max_subscriptions: Option<i64>,
    pub query_cost_max: i64,
    pub query_cost_bucket: i64,
    pub query_cost_restore_rate: i64,
    pub created_at: i64,
    pub updated_at: i64,
    /// `hard` (refused past the monthly quota) or `overage` (served past it and billed by the tiers).
    pub quota_mode: String,
    /// The graduated overage tiers as JSON (`billing::money::Tier`).
    pub overage_tiers: String,
    /// Members (memberships plus pending invitations) per organization; `None`: no cap.
    pub max_members: Option<i64>,
    /// Active (unrevoked) API keys per organization; `None`: no cap.
    pub max_api_keys: Option<i64>,
}

//! Diesel rows for feature flags and their per-organization overrides.

use diesel::prelude::*;

use crate::platform::db::schema::{feature_flag_overrides, feature_flags};
use crate::platform::ids::{FlagId, OrgId};

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = feature_flags)]
#[diesel(treat_none_as_null = true)]
pub struct FlagRow {
    pub id: FlagId,
    pub key: String,
    pub description: String,
    /// The global default (and the switch: off is off for every organization without an override).
    pub enabled: bool,
    /// With `enabled`, the share of organizations (0–100) that get the flag; `None`: all of them.
    pub rollout_percent: Option<i64>,
    /// JSON object.
    pub metadata: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = feature_flag_overrides)]
pub struct OverrideRow {
    pub flag_id: FlagId,
    pub org_id: OrgId,
    pub enabled: bool,
    pub created_at: i64,
}

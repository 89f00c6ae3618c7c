//! GraphQL for feature flags: `isFeatureEnabled` and `enabledFeatures` for everyone with
//! `features:read`; the flags themselves and their management for platform administrators.

use std::sync::Arc;

use async_graphql::{Context, ID, InputObject, Json, MaybeUndefined, Object, SimpleObject};

use super::cache::Flag;
use super::model::FlagRow;
use super::service::{self, FlagPatch, NewFlag};
use crate::graphql::context::{ContextExt, Scope};
use crate::graphql::scalars::DateTime;

/// A feature flag: on or off per organization.
pub struct FeatureFlag(pub Arc<Flag>);

/// An organization's own setting of a flag, winning over the default and the rollout.
#[derive(SimpleObject)]
pub struct FeatureOverride {
    /// The organization (`org_…`).
    pub organization_id: ID,
    /// On or off for it.
    pub enabled: bool,
}

/// A feature flag: on or off per organization. An organization's override wins; otherwise a flag
/// that is off is off, and one that is on is on for the rollout's share of organizations (all
/// without a rollout), chosen by a hash of the flag and the organization so the answer is stable.
#[Object]
impl FeatureFlag {
    /// Flag id (`ff_…`).
    async fn id(&self) -> ID {
        self.0.row.id.clone().into()
    }
    /// The key code checks (`new-dashboard`).
    async fn key(&self) -> &str {
        &self.0.row.key
    }
    /// What it switches.
    async fn description(&self) -> &str {
        &self.0.row.description
    }
    /// The global default (off: off for every organization without an override).
    async fn enabled(&self) -> bool {
        self.0.row.enabled
    }
    /// The share of organizations (0–100) that get an enabled flag; null: all of them.
    async fn rollout_percentage(&self) -> Option<i64> {
        self.0.row.rollout_percent
    }
    /// Free-form JSON the operator keeps with the flag.
    async fn metadata(&self) -> Json<serde_json::Value> {
        Json(serde_json::from_str(&self.0.row.metadata).unwrap_or_default())
    }
    /// Organizations with their own setting.
    async fn overrides(&self) -> Vec<FeatureOverride> {
        let mut list: Vec<FeatureOverride> = self
            .0
            .overrides
            .iter()
            .map(|(org, enabled)| FeatureOverride { organization_id: ID(org.clone()), enabled: *enabled })
            .collect();
        list.sort_by(|a, b| a.organization_id.0.cmp(&b.organization_id.0));
        list
    }
    /// When it was created.
    async fn created_at(&self) -> DateTime {
        self.0.row.created_at.into()
    }
    /// When it last changed.
    async fn updated_at(&self) -> DateTime {
        self.0.row.updated_at.into()
    }
}

/// A flag as it stands after a change (its overrides are read with `featureFlag`).
fn fresh(row: FlagRow) -> FeatureFlag {
    FeatureFlag(Arc::new(Flag { row, overrides: Default::default() }))
}

/// A new flag.
#[derive(InputObject)]
pub struct CreateFeatureFlagInput {
    /// Lower-case letters, digits, `-`, `_` and `.` (1–100), unique.
    pub key: String,
    /// What it switches (≤ 500 characters).
    pub description: Option<String>,
    /// The global default.
    #[graphql(default)]
    pub enabled: bool,
    /// The share of organizations (0–100) that get it while enabled; omitted: all.
    pub rollout_percentage: Option<i64>,
    /// Free-form JSON object (≤ 4 KiB).
    pub metadata: Option<Json<serde_json::Value>>,
}

/// Changes to a flag; omitted fields stay as they are.
#[derive(InputObject)]
pub struct UpdateFeatureFlagInput {
    /// What it switches.
    pub description: Option<String>,
    /// The global default.
    pub enabled: Option<bool>,
    /// The rollout share (0–100); null: all organizations.
    pub rollout_percentage: MaybeUndefined<i64>,
    /// Free-form JSON object.
    pub metadata: Option<Json<serde_json::Value>>,
}

#[derive(Default)]
pub struct FeaturesQuery;

#[Object]
impl FeaturesQuery {
    /// Whether a flag is on for your organization — or, for platform administrators and service
    /// keys, for the one named. An unknown flag is off. Answered from memory on every node.
    #[graphql(guard = "Scope(\"features:read\")")]
    async fn is_feature_enabled(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The flag's key.")] key: String,
        #[graphql(desc = "Another organization (`org_…`; platform callers only).")] organization_id: Option<ID>,
    ) -> async_graphql::Result<bool> {
        Ok(service::is_enabled(ctx.app(), ctx.principal()?, &key, organization_id.as_ref().map(|i| i.as_str())).await?)
    }

    /// The keys of every flag on for your organization (or, for platform callers, the one named).
    #[graphql(guard = "Scope(\"features:read\")")]
    async fn enabled_features(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Another organization (`org_…`; platform callers only).")] organization_id: Option<ID>,
    ) -> async_graphql::Result<Vec<String>> {
        Ok(service::enabled_keys(ctx.app(), ctx.principal()?, organization_id.as_ref().map(|i| i.as_str())).await?)
    }

    /// Every feature flag, by key (platform administrators).
    #[graphql(guard = "Scope(\"features:read\")")]
    async fn feature_flags(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<FeatureFlag>> {
        Ok(service::list(ctx.app(), ctx.principal()?).await?.into_iter().map(FeatureFlag).collect())
    }

    /// One feature flag by id or key (platform administrators).
    #[graphql(guard = "Scope(\"features:read\")")]
    async fn feature_flag(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Flag id (`ff_…`) or key.")] id: ID,
    ) -> async_graphql::Result<FeatureFlag> {
        Ok(FeatureFlag(service::get(ctx.app(), ctx.principal()?, &id).await?))
    }
}

#[derive(Default)]
pub struct FeaturesMutation;

#[Object]
impl FeaturesMutation {
    /// Creates a feature flag (platform administrators).
    #[graphql(guard = "Scope(\"features:write\")")]
    async fn create_feature_flag(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The flag.")] input: CreateFeatureFlagInput,
    ) -> async_graphql::Result<FeatureFlag> {
        let row = service::create(
            ctx.app(),
            ctx.principal()?,
            NewFlag {
                key: input.key,
                description: input.description,
                enabled: input.enabled,
                rollout_percent: input.rollout_percentage,
                metadata: input.metadata.map(|j| j.0),
            },
        )
        .await?;
        Ok(fresh(row))
    }

    /// Changes a feature flag (platform administrators).
    #[graphql(guard = "Scope(\"features:write\")")]
    async fn update_feature_flag(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Flag id (`ff_…`).")] id: ID,
        #[graphql(desc = "The changes.")] input: UpdateFeatureFlagInput,
    ) -> async_graphql::Result<FeatureFlag> {
        let patch = FlagPatch {
            description: input.description,
            enabled: input.enabled,
            rollout_percent: crate::graphql::patch(input.rollout_percentage, |v| v),
            metadata: input.metadata.map(|j| j.0),
            toggle: false,
        };
        let row = service::update(ctx.app(), ctx.principal()?, &id, patch).await?;
        Ok(FeatureFlag(service::get(ctx.app(), ctx.principal()?, row.id.as_str()).await?))
    }

    /// Turns a flag's global default on if it was off, off if it was on (platform administrators).
    #[graphql(guard = "Scope(\"features:write\")")]
    async fn toggle_feature_flag(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Flag id (`ff_…`).")] id: ID,
    ) -> async_graphql::Result<FeatureFlag> {
        let patch = FlagPatch { toggle: true, ..Default::default() };
        let row = service::update(ctx.app(), ctx.principal()?, &id, patch).await?;
        Ok(FeatureFlag(service::get(ctx.app(), ctx.principal()?, row.id.as_str()).await?))
    }

    /// Deletes a feature flag and its overrides (platform administrators); checks of its key
    /// answer false from then on.
    #[graphql(guard = "Scope(\"features:write\")")]
    async fn delete_feature_flag(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Flag id (`ff_…`).")] id: ID,
    ) -> async_graphql::Result<FeatureFlag> {
        Ok(fresh(service::delete(ctx.app(), ctx.principal()?, &id).await?))
    }

    /// Sets an organization's own value of a flag, or clears it with `enabled: null` (platform
    /// administrators).
    #[graphql(guard = "Scope(\"features:write\")")]
    async fn set_feature_override(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Flag id (`ff_…`).")] id: ID,
        #[graphql(desc = "The organization (`org_…`).")] organization_id: ID,
        #[graphql(desc = "On or off for it; null clears the override.")] enabled: Option<bool>,
    ) -> async_graphql::Result<FeatureFlag> {
        let row = service::set_override(ctx.app(), ctx.principal()?, &id, &organization_id, enabled).await?;
        Ok(FeatureFlag(service::get(ctx.app(), ctx.principal()?, row.id.as_str()).await?))
    }
}

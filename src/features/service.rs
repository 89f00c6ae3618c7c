//! Feature flags: platform administrators (and service keys with `features:write`) create, change,
//! toggle and delete flags and set per-organization overrides; anyone with `features:read` asks
//! whether a flag is on for their organization, and platform callers for any organization. Checks
//! read the per-node copy ([`super::cache`]); every change writes its event and audit entry in its
//! transaction and drops the copy on every node.

use std::sync::Arc;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::cache::{Flag, Snapshot};
use super::model::{FlagRow, OverrideRow};
use crate::app::App;
use crate::auth::Principal;
use crate::error::{Error, Result};
use crate::events::{NewAudit, PendingEvent};
use crate::platform::bus::BusMessage;
use crate::platform::db::schema::{feature_flag_overrides, feature_flags, organizations};
use crate::platform::ids::{FlagId, OrgId};
use crate::platform::patch::Patch;
use crate::{transaction, with_conn};

fn require_manager(principal: &Principal) -> Result<()> {
    principal.require_scope("features:write")?;
    if principal.is_platform {
        Ok(())
    } else {
        Err(Error::forbidden("feature flags are managed by platform administrators"))
    }
}

fn require_platform_reader(principal: &Principal) -> Result<()> {
    principal.require_scope("features:read")?;
    if principal.is_platform {
        Ok(())
    } else {
        Err(Error::forbidden("the list of feature flags is for platform administrators; use isFeatureEnabled"))
    }
}

fn check_key(key: &str) -> Result<String> {
    let key = key.trim();
    let ok = !key.is_empty()
        && key.len() <= 100
        && key.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && key.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(key.to_string())
    } else {
        Err(Error::bad_input("key", "1 to 100 characters: lower-case letters, digits, `-`, `_` and `.`"))
    }
}

fn check_description(d: &str) -> Result<String> {
    if d.chars().count() > 500 {
        return Err(Error::bad_input("description", "must be at most 500 characters"));
    }
    Ok(d.trim().to_string())
}

fn check_percent(p: i64) -> Result<i64> {
    if (0..=100).contains(&p) { Ok(p) } else { Err(Error::bad_input("rolloutPercentage", "must be between 0 and 100")) }
}

fn check_metadata(m: &serde_json::Value) -> Result<String> {
    if !m.is_object() {
        return Err(Error::bad_input("metadata", "must be a JSON object"));
    }
    let s = m.to_string();
    if s.len() > 4096 {
        return Err(Error::bad_input("metadata", "must be at most 4 KiB"));
    }
    Ok(s)
}

fn event_data(f: &FlagRow) -> serde_json::Value {
    serde_json::json!({ "feature": {
        "id": f.id, "key": f.key, "enabled": f.enabled, "rolloutPercentage": f.rollout_percent,
    } })
}

/// Every flag, from the per-node copy (read from the database when there is none).
pub async fn snapshot(app: &App) -> Result<Arc<Snapshot>> {
    if let Some(s) = app.features.get() {
        return Ok(s);
    }
    let generation = app.features.generation();
    let (flags, overrides): (Vec<FlagRow>, Vec<OverrideRow>) = with_conn!(app.db, c => {
        let flags = feature_flags::table.select(FlagRow::as_select()).load(c).await?;
        let overrides = feature_flag_overrides::table.select(OverrideRow::as_select()).load(c).await?;
        (flags, overrides)
    });
    let snapshot = Arc::new(Snapshot::build(flags, overrides));
    app.features.store(generation, snapshot.clone());
    Ok(snapshot)
}

/// The organization a check is about: the caller's own, or — for platform callers — the one named.
async fn target_org(app: &App, principal: &Principal, org: Option<&str>) -> Result<OrgId> {
    principal.require_scope("features:read")?;
    match org {
        None => Ok(principal.org_id.clone()),
        Some(o) if o == principal.org_id.as_str() => Ok(principal.org_id.clone()),
        Some(o) => {
            if !principal.is_platform {
                return Err(Error::forbidden(
                    "only platform administrators and service keys check another organization's flags",
                ));
            }
            let id: OrgId = o.parse().map_err(|_| Error::NotFound("organization"))?;
            if !crate::accounts::service::org_exists(app, &id).await? {
                return Err(Error::NotFound("organization"));
            }
            Ok(id)
        }
    }
}

/// Whether the flag `key` is on for the organization (an unknown flag is off).
pub async fn is_enabled(app: &App, principal: &Principal, key: &str, org: Option<&str>) -> Result<bool> {
    let org = target_org(app, principal, org).await?;
    let snapshot = snapshot(app).await?;
    Ok(snapshot.by_key.get(key).is_some_and(|f| f.enabled_for(org.as_str())))
}

/// The keys of every flag on for the organization, sorted.
pub async fn enabled_keys(app: &App, principal: &Principal, org: Option<&str>) -> Result<Vec<String>> {
    let org = target_org(app, principal, org).await?;
    let snapshot = snapshot(app).await?;
    let mut keys: Vec<String> =
        snapshot.by_key.values().filter(|f| f.enabled_for(org.as_str())).map(|f| f.row.key.clone()).collect();
    keys.sort();
    Ok(keys)
}

/// Every flag with its overrides, by key (platform callers).
pub async fn list(app: &App, principal: &Principal) -> Result<Vec<Arc<Flag>>> {
    require_platform_reader(principal)?;
    let mut all: Vec<Arc<Flag>> = snapshot(app).await?.by_key.values().cloned().collect();
    all.sort_by(|a, b| a.row.key.cmp(&b.row.key));
    Ok(all)
}

/// One flag by id or key (platform callers).
pub async fn get(app: &App, principal: &Principal, id_or_key: &str) -> Result<Arc<Flag>> {
    require_platform_reader(principal)?;
    let snapshot = snapshot(app).await?;
    snapshot
        .by_key
        .values()
        .find(|f| f.row.id.as_str() == id_or_key || f.row.key == id_or_key)
        .cloned()
        .ok_or(Error::NotFound("feature flag"))
}

pub struct NewFlag {
    pub key: String,
    pub description: Option<String>,
    pub enabled: bool,
    pub rollout_percent: Option<i64>,
    pub metadata: Option<serde_json::Value>,
}

async fn changed(app: &App) {
    app.features.forget();
    app.bus.publish(BusMessage::InvalidateFeatureFlags).await;
}

pub async fn create(app: &App, principal: &Principal, input: NewFlag) -> Result<FlagRow> {
    require_manager(principal)?;
    let now = app.clock.now_ms();
    let row = FlagRow {
        id: FlagId::generate(now),
        key: check_key(&input.key)?,
        description: check_description(input.description.as_deref().unwrap_or(""))?,
        enabled: input.enabled,
        rollout_percent: input.rollout_percent.map(check_percent).transpose()?,
        metadata: check_metadata(input.metadata.as_ref().unwrap_or(&serde_json::json!({})))?,
        created_at: now,
        updated_at: now,
    };
    let event = transaction!(app.db, c => {
        let taken: i64 = feature_flags::table.filter(feature_flags::key.eq(&row.key)).count().get_result(c).await?;
        if taken > 0 {
            return Err(Error::Conflict(format!("a feature flag with the key `{}` exists", row.key)));
        }
        diesel::insert_into(feature_flags::table).values(&row).execute(c).await?;
        let event = crate::outbox!(c,
            PendingEvent::new(app, &principal.org_id, "feature.created", event_data(&row)),
            NewAudit::by(app, principal, "feature.created", "feature_flag", row.id.as_str(), event_data(&row)));
        Ok::<_, Error>(event)
    })?;
    changed(app).await;
    event.publish(app).await;
    Ok(row)
}

#[derive(Default)]
pub struct FlagPatch {
    pub description: Option<String>,
    pub enabled: Option<bool>,
    pub rollout_percent: Patch<i64>,
    pub metadata: Option<serde_json::Value>,
    /// Flip `enabled` (toggle).
    pub toggle: bool,
}

async fn find_row(app: &App, id: &str) -> Result<FlagRow> {
    let id: FlagId = id.parse().map_err(|_| Error::NotFound("feature flag"))?;
    with_conn!(app.db, c => {
        feature_flags::table.find(&id).select(FlagRow::as_select()).first(c).await.optional()?
    })
    .ok_or(Error::NotFound("feature flag"))
}

pub async fn update(app: &App, principal: &Principal, id: &str, patch: FlagPatch) -> Result<FlagRow> {
    require_manager(principal)?;
    let current = find_row(app, id).await?;
    let description = patch.description.as_deref().map(check_description).transpose()?;
    let percent = patch.rollout_percent.try_map(check_percent)?;
    let metadata = patch.metadata.as_ref().map(check_metadata).transpose()?;
    let now = app.clock.now_ms();
    let (row, event) = transaction!(app.db, c => {
        let mut row: FlagRow = feature_flags::table.find(&current.id).select(FlagRow::as_select()).first(c).await.optional()?
            .ok_or(Error::NotFound("feature flag"))?;
        let before = event_data(&row);
        if let Some(d) = &description { row.description = d.clone(); }
        if let Some(e) = patch.enabled { row.enabled = e; }
        if patch.toggle { row.enabled = !row.enabled; }
        row.rollout_percent = percent.clone().apply(row.rollout_percent);
        if let Some(m) = &metadata { row.metadata = m.clone(); }
        row.updated_at = now;
        diesel::update(feature_flags::table.find(&row.id)).set(&row).execute(c).await?;
        let mut data = event_data(&row);
        data["previous"] = before["feature"].clone();
        let action = if patch.toggle { "feature.toggled" } else { "feature.updated" };
        let event = crate::outbox!(c,
            PendingEvent::new(app, &principal.org_id, "feature.updated", data.clone()),
            NewAudit::by(app, principal, action, "feature_flag", row.id.as_str(), data));
        Ok::<_, Error>((row, event))
    })?;
    changed(app).await;
    event.publish(app).await;
    Ok(row)
}

pub async fn delete(app: &App, principal: &Principal, id: &str) -> Result<FlagRow> {
    require_manager(principal)?;
    let current = find_row(app, id).await?;
    let event = transaction!(app.db, c => {
        let n = diesel::delete(feature_flags::table.find(&current.id)).execute(c).await?;
        if n == 0 {
            return Err(Error::NotFound("feature flag"));
        }
        let event = crate::outbox!(c,
            PendingEvent::new(app, &principal.org_id, "feature.deleted", event_data(&current)),
            NewAudit::by(app, principal, "feature.deleted", "feature_flag", current.id.as_str(), event_data(&current)));
        Ok::<_, Error>(event)
    })?;
    changed(app).await;
    event.publish(app).await;
    Ok(current)
}

/// Sets (`Some`) or clears (`None`) an organization's override of a flag.
pub async fn set_override(
    app: &App,
    principal: &Principal,
    id: &str,
    org: &str,
    enabled: Option<bool>,
) -> Result<FlagRow> {
    require_manager(principal)?;
    let flag = find_row(app, id).await?;
    let org: OrgId = org.parse().map_err(|_| Error::NotFound("organization"))?;
    let now = app.clock.now_ms();
    let event = transaction!(app.db, c => {
        let exists: i64 = organizations::table.find(&org).count().get_result(c).await?;
        if exists == 0 {
            return Err(Error::NotFound("organization"));
        }
        let target = feature_flag_overrides::table
            .filter(feature_flag_overrides::flag_id.eq(&flag.id))
            .filter(feature_flag_overrides::org_id.eq(&org));
        diesel::delete(target).execute(c).await?;
        if let Some(e) = enabled {
            diesel::insert_into(feature_flag_overrides::table)
                .values(OverrideRow { flag_id: flag.id.clone(), org_id: org.clone(), enabled: e, created_at: now })
                .execute(c).await?;
        }
        let mut data = event_data(&flag);
        data["override"] = serde_json::json!({ "organizationId": org, "enabled": enabled });
        let event = crate::outbox!(c,
            PendingEvent::new(app, &principal.org_id, "feature.updated", data.clone()),
            NewAudit::by(app, principal, if enabled.is_some() { "feature.override_set" } else { "feature.override_cleared" }, "feature_flag", flag.id.as_str(), data));
        Ok::<_, Error>(event)
    })?;
    changed(app).await;
    event.publish(app).await;
    Ok(flag)
}

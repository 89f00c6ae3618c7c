//! The end of an organization: deletion, then — after the export window
//! (`GANTRY_ORG_PURGE_AFTER_DAYS`) — the removal of its data in batches.
//!
//! Deleting (an OWNER; a platform administrator erasing a user deletes their personal
//! organization) is one transaction: the organization is marked deleted, every API key is
//! revoked, every OAuth token of an installation in it or of its own apps is revoked and those
//! installations end, its apps leave the marketplace, and its subscription is canceled at the end
//! of the running month (whose usage is still invoiced). Every node then refuses what is left of
//! its credentials (`org_states`), pauses its webhooks, and drops the cached keys and tokens.
//!
//! The purge (hourly, any node) deletes the organization's rows table by table, a thousand at a
//! time, each batch its own statement: usage, events and deliveries, keys, installations, audit,
//! memberships, invitations, exports. What billing must keep stays: the organization's row, its
//! subscription, invoices and their lines, payments, payment methods (brand, last four, expiry)
//! and marketplace earnings.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::org_states::Denial;
use crate::app::App;
use crate::auth::Principal;
use crate::error::{Error, Result};
use crate::events::{NewAudit, PendingEvent};
use crate::platform::db::schema::{
    api_key_secrets, api_keys, app_installations, apps, oauth_tokens, organizations, subscriptions,
};
use crate::platform::ids::OrgId;
use crate::{transaction, with_conn};

/// Who deletes: the organization's OWNER, or a platform administrator (erasing a user).
pub enum DeletedBy<'a> {
    Owner(&'a Principal),
    Administrator(&'a Principal),
}

/// Deletes the principal's organization (a signed-in OWNER; not a personal organization, which
/// goes with its user). `confirm` must be the organization's slug.
pub async fn delete_org(app: &App, principal: &Principal, confirm: &str) -> Result<i64> {
    principal.require_owner("delete the organization")?;
    let org: (String, bool) = with_conn!(app.db, c => {
        organizations::table.find(&principal.org_id).select((organizations::slug, organizations::is_personal)).first(c).await?
    });
    if org.1 {
        return Err(Error::bad_input(
            "organizationId",
            "a personal organization is deleted with its user's account, not on its own",
        ));
    }
    if confirm != org.0 {
        return Err(Error::bad_input("confirm", format!("type the organization's slug (`{}`) to confirm", org.0)));
    }
    delete(app, DeletedBy::Owner(principal), &principal.org_id).await
}

/// Marks `org` deleted and revokes everything it holds (see the module doc). Returns when its
/// data will be purged.
pub async fn delete(app: &App, by: DeletedBy<'_>, org: &OrgId) -> Result<i64> {
    let now = app.clock.now_ms();
    let purge_after = now + app.config.org_purge_after_days * 86_400_000;
    let month_end = crate::platform::clock::month_start(now, -1);
    let pg = app.db.is_postgres();
    let principal = match &by {
        DeletedBy::Owner(p) | DeletedBy::Administrator(p) => *p,
    };
    let (key_hashes, token_hashes, event) = transaction!(app.db, c => {
        crate::lock_row!(c, pg, "organizations", org.as_str());
        let done = diesel::update(organizations::table.find(org).filter(organizations::deleted_at.is_null()))
            .set((organizations::deleted_at.eq(now), organizations::purge_after.eq(purge_after), organizations::updated_at.eq(now)))
            .execute(c).await?;
        if done == 0 {
            return Err(Error::NotFound("organization"));
        }
        let keys: Vec<String> = api_keys::table.filter(api_keys::org_id.eq(org)).select(api_keys::id).load(c).await?;
        diesel::update(api_keys::table.filter(api_keys::org_id.eq(org)).filter(api_keys::revoked_at.is_null()))
            .set((api_keys::revoked_at.eq(now), api_keys::revoked_reason.eq("organization deleted"), api_keys::updated_at.eq(now)))
            .execute(c).await?;
        let key_hashes: Vec<String> = api_key_secrets::table.filter(api_key_secrets::key_id.eq_any(&keys)).select(api_key_secrets::key_hash).load(c).await?;
        let own_apps: Vec<String> = apps::table.filter(apps::org_id.eq(org)).select(apps::id).load(c).await?;
        let token_hashes: Vec<String> = diesel::update(oauth_tokens::table
                .filter(oauth_tokens::org_id.eq(org).or(oauth_tokens::app_id.eq_any(&own_apps)))
                .filter(oauth_tokens::revoked_at.is_null()))
            .set(oauth_tokens::revoked_at.eq(now))
            .returning(oauth_tokens::token_hash)
            .get_results(c).await?;
        diesel::update(app_installations::table
                .filter(app_installations::org_id.eq(org).or(app_installations::app_id.eq_any(&own_apps)))
                .filter(app_installations::uninstalled_at.is_null()))
            .set((app_installations::uninstalled_at.eq(now), app_installations::updated_at.eq(now)))
            .execute(c).await?;
        diesel::update(apps::table.filter(apps::org_id.eq(org)).filter(apps::status.eq_any(["active", "approved", "pending"])))
            .set((apps::status.eq("deprecated"), apps::updated_at.eq(now)))
            .execute(c).await?;
        // The running month is still invoiced; the subscription ends with it.
        diesel::update(subscriptions::table.filter(subscriptions::org_id.eq(org)))
            .set((
                subscriptions::cancel_at_period_end.eq(true),
                subscriptions::scheduled_plan_id.eq(None::<String>),
                subscriptions::scheduled_cycle.eq(None::<String>),
                subscriptions::current_period_end.eq(diesel::dsl::sql::<diesel::sql_types::BigInt>(&format!(
                    "CASE WHEN current_period_end > {month_end} THEN {month_end} ELSE current_period_end END"
                ))),
                subscriptions::updated_at.eq(now),
            ))
            .execute(c).await?;
        let data = serde_json::json!({
            "organization": { "id": org },
            "purgeAfter": crate::platform::clock::rfc3339(purge_after),
            "by": if matches!(by, DeletedBy::Owner(_)) { "owner" } else { "platform_administrator" },
        });
        let event = crate::outbox!(c,
            PendingEvent::new(app, org, "org.deleted", data.clone()),
            NewAudit::raw(app, org, principal.actor_type(), &principal.actor_id(), principal.ip, "org.deleted", "organization", org.as_str(), data));
        Ok::<_, Error>((key_hashes, token_hashes, event))
    })?;
    super::service::publish_org_state(app, org, Some(Denial::Deleted)).await;
    crate::auth::forget_keys(app, key_hashes).await;
    crate::auth::forget_tokens(app, token_hashes).await;
    crate::limits::service::clear_plan_caches(app).await;
    event.publish(app).await;
    Ok(purge_after)
}

/// Rows deleted per statement while purging.
const PURGE_BATCH: i64 = 1000;

/// The tables an organization's data is purged from, children before parents. (Keys' secrets,
/// addresses and daily counts, and endpoints' secrets, go with their rows by foreign key.)
const PURGED: &[&str] = &[
    "webhook_attempts",
    "webhook_deliveries",
    "webhook_endpoints",
    "events",
    "oauth_codes",
    "oauth_tokens",
    "app_installations",
    "app_install_log",
    "api_keys",
    "usage_segments",
    "usage_rollups",
    "usage_latency",
    "metered_events",
    "alerts",
    "invitations",
    "feature_flag_overrides",
    "audit_log",
    "memberships",
    "org_exports",
];

/// One batch of `table`'s rows of `org`: `DELETE … WHERE <row id> IN (SELECT … LIMIT n)`.
fn batch_sql(pg: bool, table: &str) -> String {
    let row = if pg { "ctid" } else { "rowid" };
    let bind = if pg { "$1" } else { "?" };
    format!("DELETE FROM {table} WHERE {row} IN (SELECT {row} FROM {table} WHERE org_id = {bind} LIMIT {PURGE_BATCH})")
}

/// Purges every deleted organization whose export window has passed. Returns the rows deleted.
pub async fn purge_due(app: &App) -> Result<u64> {
    let now = app.clock.now_ms();
    let due: Vec<OrgId> = with_conn!(app.db, c => {
        organizations::table
            .filter(organizations::deleted_at.is_not_null())
            .filter(organizations::purged_at.is_null())
            .filter(organizations::purge_after.le(now))
            .select(organizations::id)
            .limit(100)
            .load(c).await?
    });
    let pg = app.db.is_postgres();
    let mut deleted = 0u64;
    for org in due {
        for table in PURGED {
            let sql = batch_sql(pg, table);
            loop {
                let n = with_conn!(app.db, c => {
                    diesel::sql_query(&sql).bind::<diesel::sql_types::Text, _>(org.as_str()).execute(c).await?
                });
                deleted += n as u64;
                if (n as i64) < PURGE_BATCH {
                    break;
                }
            }
        }
        with_conn!(app.db, c => {
            diesel::update(organizations::table.find(&org)).set(organizations::purged_at.eq(now)).execute(c).await?
        });
        tracing::info!(organization = %org, "a deleted organization's data was purged");
    }
    Ok(deleted)
}

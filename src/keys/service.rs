//! API key rules. Secrets exist in plain text only in the create/roll response; the database holds
//! keyed hashes (one row per valid secret, so a roll keeps the old secret working until its
//! expiry). Every query is scoped to the principal's organization here, never by callers.

use std::net::IpAddr;
use std::sync::Arc;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use ipnet::IpNet;

use super::model::*;
use crate::app::App;
use crate::auth::{KeyCredential, Principal, scopes_allow, validate_scopes};
use crate::error::{Error, Result};
use crate::events::{NewAudit, PendingEvent};
use crate::pagination::{Page, PageRequest};
use crate::platform::crypto;
use crate::platform::db::schema::{api_key_secrets, api_key_usage_daily, api_keys, organizations};
use crate::platform::ids::KeyId;
use crate::{keyset_page, transaction, with_conn};

pub const DEFAULT_ROLL_GRACE_SECS: i64 = 24 * 3600;
const MAX_ROLL_GRACE_SECS: i64 = 30 * 24 * 3600;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Live,
    Test,
}

impl Environment {
    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Live => "live",
            Environment::Test => "test",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "live" => Some(Environment::Live),
            "test" => Some(Environment::Test),
            _ => None,
        }
    }
}

fn parse_nets(list: &[String]) -> Vec<IpNet> {
    list.iter().filter_map(|s| parse_net(s)).collect()
}

fn parse_net(s: &str) -> Option<IpNet> {
    s.parse::<IpNet>().ok().or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from))
}

/// The key behind a secret, by the secret's keyed hash (for `auth`, which caches it).
pub(crate) async fn load_credential(app: &App, hash: &str) -> Result<Option<KeyCredential>> {
    let found: Option<(SecretRow, KeyRow, bool)> = with_conn!(app.db, c => {
        api_key_secrets::table
            .inner_join(api_keys::table.inner_join(organizations::table))
            .filter(api_key_secrets::key_hash.eq(hash))
            .select((SecretRow::as_select(), KeyRow::as_select(), organizations::is_platform))
            .first(c).await.optional()?
    });
    Ok(found.map(|(secret, key, is_platform)| KeyCredential {
        scopes: Arc::new(key.scope_list()),
        allowed_ips: parse_nets(&key.allowed_ip_list()),
        metadata: key.metadata_value(),
        rate_override: key.rate_override().map(Arc::new),
        key_id: key.id,
        org_id: key.org_id,
        name: key.name,
        environment: key.environment,
        expires_at: key.expires_at,
        secret_expires_at: secret.expires_at,
        revoked_at: key.revoked_at,
        created_by: key.created_by,
        is_platform,
    }))
}

pub struct CreateKey {
    pub name: String,
    pub description: Option<String>,
    pub environment: Environment,
    pub scopes: Vec<String>,
    pub expires_at: Option<i64>,
    pub allowed_ips: Vec<String>,
    pub metadata: Option<serde_json::Value>,
    pub rate_limit: Option<crate::limits::policy::Override>,
}

pub use crate::platform::patch::Patch;

#[derive(Default)]
pub struct UpdateKey {
    pub name: Option<String>,
    pub description: Patch<String>,
    pub scopes: Option<Vec<String>>,
    pub expires_at: Patch<i64>,
    pub allowed_ips: Option<Vec<String>>,
    pub metadata: Option<serde_json::Value>,
    pub rate_limit: Patch<crate::limits::policy::Override>,
}

/// A key's override as stored: checked against the organization's plan (only platform
/// administrators and service keys may raise it above the plan).
async fn override_json(
    app: &App,
    principal: &Principal,
    o: &crate::limits::policy::Override,
) -> Result<Option<String>> {
    if o.is_empty() {
        crate::limits::service::check_override(o)?;
        return Ok(None);
    }
    let plan = crate::limits::service::plan_for_org(app, &principal.org_id).await?;
    let o = crate::limits::service::check_key_override(principal, &plan, o)?;
    Ok(serde_json::to_string(&o).ok())
}

fn check_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(Error::bad_input("name", "must be 1 to 100 characters"));
    }
    Ok(name.to_string())
}

fn check_description(d: &str) -> Result<String> {
    if d.chars().count() > 1000 {
        return Err(Error::bad_input("description", "must be at most 1000 characters"));
    }
    Ok(d.to_string())
}

fn check_expiry(app: &App, at: i64) -> Result<i64> {
    if at <= app.clock.now_ms() {
        return Err(Error::bad_input("expiresAt", "must be in the future"));
    }
    Ok(at)
}

/// Normalises an allow-list: each entry an IPv4/IPv6 address or CIDR, at most 100.
fn check_ips(list: &[String]) -> Result<String> {
    if list.len() > 100 {
        return Err(Error::bad_input("allowedIps", "at most 100 entries"));
    }
    let mut out = Vec::with_capacity(list.len());
    for s in list {
        let net = parse_net(s.trim())
            .ok_or_else(|| Error::bad_input("allowedIps", format!("`{s}` is not an IP address or CIDR range")))?;
        out.push(net.trunc().to_string());
    }
    out.dedup();
    Ok(serde_json::to_string(&out).unwrap_or_else(|_| "[]".into()))
}

/// Metadata is a JSON object of at most 50 keys and 8 KiB, like Stripe's.
fn check_metadata(v: &serde_json::Value) -> Result<String> {
    let obj = v.as_object().ok_or_else(|| Error::bad_input("metadata", "must be a JSON object"))?;
    if obj.len() > 50 {
        return Err(Error::bad_input("metadata", "at most 50 keys"));
    }
    let s = v.to_string();
    if s.len() > 8192 {
        return Err(Error::bad_input("metadata", "at most 8 KiB"));
    }
    Ok(s)
}

/// A credential may grant only what it holds itself.
fn check_grantable(principal: &Principal, scopes: &[String]) -> Result<()> {
    for s in scopes {
        let ok = if s == "*" { principal.scopes.iter().any(|g| g == "*") } else { scopes_allow(&principal.scopes, s) };
        if !ok {
            return Err(Error::bad_input(
                "scopes",
                format!("you cannot grant `{s}`: your own credential does not hold it"),
            ));
        }
    }
    Ok(())
}

fn mint_secret(env: Environment) -> String {
    format!("gk_{}_{}", env.as_str(), crypto::random_base62(43))
}

pub(crate) fn event_data(key: &KeyRow) -> serde_json::Value {
    serde_json::json!({
        "key": {
            "id": key.id, "name": key.name, "environment": key.environment, "maskedKey": key.masked(),
            "scopes": key.scope_list(), "revokedAt": key.revoked_at.map(crate::platform::clock::rfc3339),
        }
    })
}

pub async fn create_key(app: &App, principal: &Principal, input: CreateKey) -> Result<(KeyRow, String)> {
    principal.require_scope("keys:write")?;
    let name = check_name(&input.name)?;
    let description = input.description.as_deref().map(check_description).transpose()?;
    let scopes = validate_scopes("scopes", &input.scopes)?;
    check_grantable(principal, &scopes)?;
    let expires_at = input.expires_at.map(|t| check_expiry(app, t)).transpose()?;
    let allowed_ips = check_ips(&input.allowed_ips)?;
    let metadata = check_metadata(input.metadata.as_ref().unwrap_or(&serde_json::json!({})))?;
    let rate_limit = match &input.rate_limit {
        Some(o) => override_json(app, principal, o).await?,
        None => None,
    };

    let now = app.clock.now_ms();
    let id = KeyId::generate(now);
    let secret = mint_secret(input.environment);
    let hash = crate::auth::key_hash(&app.secret, &secret);
    let start = format!("gk_{}_", input.environment.as_str());
    let last_four = &secret[secret.len() - 4..];
    let created_by = match &principal.actor {
        crate::auth::Actor::User { user_id, .. } => Some(user_id.clone()),
        crate::auth::Actor::ApiKey { created_by, .. } => created_by.clone(),
        crate::auth::Actor::OAuthApp { user_id, .. } => user_id.clone(),
    };
    let row = NewKey {
        id: &id,
        org_id: &principal.org_id,
        name: &name,
        description: description.as_deref(),
        environment: input.environment.as_str(),
        start: &start,
        last_four,
        scopes: serde_json::to_string(&scopes).unwrap_or_else(|_| "[]".into()),
        expires_at,
        allowed_ips,
        metadata,
        rate_limit,
        created_by: created_by.as_ref(),
        created_at: now,
        updated_at: now,
    };
    let max_keys = crate::limits::service::plan_for_org(app, &principal.org_id).await?.max_api_keys;
    let pg = app.db.is_postgres();
    let (key, event) = transaction!(app.db, c => {
        if let Some(max) = max_keys {
            // Keys of one organization are created one at a time, so the cap holds under races.
            crate::lock_row!(c, pg, "organizations", principal.org_id.as_str());
            let active: i64 = api_keys::table
                .filter(api_keys::org_id.eq(&principal.org_id))
                .filter(api_keys::revoked_at.is_null())
                .count().get_result(c).await?;
            if active >= max {
                return Err(Error::forbidden(format!("your plan allows {max} active API keys; revoke one or change plans")));
            }
        }
        let key: KeyRow = diesel::insert_into(api_keys::table).values(&row).returning(KeyRow::as_returning()).get_result(c).await?;
        diesel::insert_into(api_key_secrets::table)
            .values(SecretRow { key_hash: hash.clone(), key_id: id.clone(), created_at: now, expires_at: None })
            .execute(c).await?;
        let event = crate::outbox!(c, PendingEvent::new(app, &principal.org_id, "key.created", event_data(&key)), NewAudit::by(app, principal, "key.created", "api_key", id.as_str(), serde_json::json!({ "scopes": scopes })));
        Ok::<_, Error>((key, event))
    })?;
    event.publish(app).await;
    Ok((key, secret))
}

/// Filters for listing keys.
#[derive(Debug, Default, Clone)]
pub struct KeyFilter {
    pub environment: Option<Environment>,
    pub include_revoked: bool,
}

pub async fn list_keys(
    app: &App,
    principal: &Principal,
    filter: &KeyFilter,
    page: &PageRequest,
) -> Result<Page<KeyRow>> {
    principal.require_scope("keys:read")?;
    let org = &principal.org_id;
    let env = filter.environment.map(|e| e.as_str());
    // The boxed query is built inside each backend's expansion so it is typed for that backend.
    macro_rules! base {
        () => {{
            let mut q = api_keys::table.filter(api_keys::org_id.eq(org)).into_boxed();
            if let Some(env) = env {
                q = q.filter(api_keys::environment.eq(env));
            }
            if !filter.include_revoked {
                q = q.filter(api_keys::revoked_at.is_null());
            }
            q
        }};
    }
    let (rows, total) = with_conn!(app.db, c => keyset_page!(c, base!(), api_keys::id, KeyRow, page));
    Ok(Page::from_rows(rows, page, total))
}

async fn find_key(app: &App, principal: &Principal, id: &str) -> Result<KeyRow> {
    let id: KeyId = id.parse().map_err(|_| Error::NotFound("API key"))?;
    with_conn!(app.db, c => {
        api_keys::table.find(&id).filter(api_keys::org_id.eq(&principal.org_id)).select(KeyRow::as_select()).first(c).await.optional()?
    })
    .ok_or(Error::NotFound("API key"))
}

/// The id of a key of the principal's organization, for filters that name one (usage of a key,
/// its quota events): another organization's key is NOT_FOUND, as an unknown one. Needs no scope
/// of its own: the caller's scope is the filtered data's.
pub async fn key_of_org(app: &App, principal: &Principal, id: &str) -> Result<KeyId> {
    let key: KeyId = id.parse().map_err(|_| Error::NotFound("API key"))?;
    let n: i64 = with_conn!(app.db, c => {
        api_keys::table.find(&key).filter(api_keys::org_id.eq(&principal.org_id)).count().get_result(c).await?
    });
    if n == 0 {
        return Err(Error::NotFound("API key"));
    }
    Ok(key)
}

pub async fn get_key(app: &App, principal: &Principal, id: &str) -> Result<KeyRow> {
    principal.require_scope("keys:read")?;
    find_key(app, principal, id).await
}

pub async fn update_key(app: &App, principal: &Principal, id: &str, patch: UpdateKey) -> Result<KeyRow> {
    principal.require_scope("keys:write")?;
    let existing = find_key(app, principal, id).await?;
    let name = patch.name.as_deref().map(check_name).transpose()?;
    let description = match &patch.description {
        Patch::Keep => None,
        Patch::Set(d) => Some(Some(check_description(d)?)),
        Patch::Clear => Some(None),
    };
    let scopes = match &patch.scopes {
        Some(s) => {
            let s = validate_scopes("scopes", s)?;
            check_grantable(principal, &s)?;
            Some(serde_json::to_string(&s).unwrap_or_else(|_| "[]".into()))
        }
        None => None,
    };
    let expires_at = match patch.expires_at {
        Patch::Keep => None,
        Patch::Set(t) => Some(Some(check_expiry(app, t)?)),
        Patch::Clear => Some(None),
    };
    let allowed_ips = patch.allowed_ips.as_deref().map(check_ips).transpose()?;
    let metadata = patch.metadata.as_ref().map(check_metadata).transpose()?;
    let rate_limit = match &patch.rate_limit {
        Patch::Keep => None,
        Patch::Set(o) => Some(override_json(app, principal, o).await?),
        Patch::Clear => Some(None),
    };
    let now = app.clock.now_ms();
    // What the patch sets, by the names of the GraphQL input (the event's `changes`).
    let changes: Vec<&str> = [
        ("name", name.is_some()),
        ("description", description.is_some()),
        ("scopes", scopes.is_some()),
        ("expiresAt", expires_at.is_some()),
        ("allowedIps", allowed_ips.is_some()),
        ("metadata", metadata.is_some()),
        ("rateLimit", rate_limit.is_some()),
    ]
    .into_iter()
    .filter_map(|(f, set)| set.then_some(f))
    .collect();

    let pg = app.db.is_postgres();
    let key = transaction!(app.db, c => {
        // Fields the patch leaves alone keep the values the row has now, not those read before the
        // transaction: on PostgreSQL the row is locked first, so two concurrent updates of
        // different fields both land (SQLite's single writer serializes them).
        crate::lock_row!(c, pg, "api_keys", existing.id.as_str());
        let current: KeyRow = api_keys::table.find(&existing.id).select(KeyRow::as_select()).first(c).await?;
        diesel::update(api_keys::table.find(&existing.id).filter(api_keys::org_id.eq(&principal.org_id)))
            .set((
                api_keys::name.eq(name.as_deref().unwrap_or(&current.name)),
                api_keys::description.eq(description.clone().unwrap_or(current.description.clone())),
                api_keys::scopes.eq(scopes.as_deref().unwrap_or(&current.scopes)),
                api_keys::expires_at.eq(expires_at.unwrap_or(current.expires_at)),
                api_keys::allowed_ips.eq(allowed_ips.as_deref().unwrap_or(&current.allowed_ips)),
                api_keys::metadata.eq(metadata.as_deref().unwrap_or(&current.metadata)),
                api_keys::rate_limit.eq(rate_limit.clone().unwrap_or(current.rate_limit.clone())),
                api_keys::updated_at.eq(now),
            ))
            .execute(c).await?;
        let key: KeyRow = api_keys::table.find(&existing.id).select(KeyRow::as_select()).first(c).await?;
        let mut data = event_data(&key);
        data["changes"] = serde_json::json!(changes);
        let event = crate::outbox!(
            c,
            PendingEvent::new(app, &principal.org_id, "key.updated", data),
            NewAudit::by(app, principal, "key.updated", "api_key", existing.id.as_str(), serde_json::json!({ "changes": changes }))
        );
        let hashes: Vec<String> = api_key_secrets::table.filter(api_key_secrets::key_id.eq(&existing.id)).select(api_key_secrets::key_hash).load(c).await?;
        Ok::<_, Error>((key, hashes, event))
    })?;
    let (key, hashes, event) = key;
    crate::auth::forget_keys(app, hashes).await;
    event.publish(app).await;
    Ok(key)
}

/// Revokes a key: every secret stops working on every node at once. Revoking a revoked key
/// returns it unchanged.
pub async fn revoke_key(app: &App, principal: &Principal, id: &str, reason: Option<String>) -> Result<KeyRow> {
    principal.require_scope("keys:write")?;
    let existing = find_key(app, principal, id).await?;
    if existing.revoked_at.is_some() {
        return Ok(existing);
    }
    if reason.as_ref().is_some_and(|r| r.chars().count() > 500) {
        return Err(Error::bad_input("reason", "must be at most 500 characters"));
    }
    let now = app.clock.now_ms();
    let (key, event, hashes) = transaction!(app.db, c => {
        let key: KeyRow = diesel::update(api_keys::table.find(&existing.id).filter(api_keys::org_id.eq(&principal.org_id)))
            .set((api_keys::revoked_at.eq(now), api_keys::revoked_reason.eq(&reason), api_keys::updated_at.eq(now)))
            .returning(KeyRow::as_returning())
            .get_result(c).await?;
        let event = crate::outbox!(c, PendingEvent::new(app, &principal.org_id, "key.revoked", event_data(&key)), NewAudit::by(app, principal, "key.revoked", "api_key", key.id.as_str(), serde_json::json!({ "reason": reason })));
        let hashes: Vec<String> = api_key_secrets::table.filter(api_key_secrets::key_id.eq(&existing.id)).select(api_key_secrets::key_hash).load(c).await?;
        Ok::<_, Error>((key, event, hashes))
    })?;
    crate::auth::forget_keys(app, hashes).await;
    event.publish(app).await;
    Ok(key)
}

/// Deletes a key and its secrets and daily counters; the audit trail keeps the record of it.
pub async fn delete_key(app: &App, principal: &Principal, id: &str) -> Result<KeyId> {
    principal.require_scope("keys:write")?;
    let existing = find_key(app, principal, id).await?;
    let (event, hashes) = transaction!(app.db, c => {
        let hashes: Vec<String> = api_key_secrets::table.filter(api_key_secrets::key_id.eq(&existing.id)).select(api_key_secrets::key_hash).load(c).await?;
        diesel::delete(api_key_usage_daily::table.filter(api_key_usage_daily::key_id.eq(&existing.id))).execute(c).await?;
        diesel::delete(api_key_secrets::table.filter(api_key_secrets::key_id.eq(&existing.id))).execute(c).await?;
        let n = diesel::delete(api_keys::table.find(&existing.id).filter(api_keys::org_id.eq(&principal.org_id))).execute(c).await?;
        if n != 1 {
            return Err(Error::NotFound("API key"));
        }
        let event = crate::outbox!(c, PendingEvent::new(app, &principal.org_id, "key.deleted", event_data(&existing)), NewAudit::by(app, principal, "key.deleted", "api_key", existing.id.as_str(), serde_json::json!({ "name": existing.name })));
        Ok::<_, Error>((event, hashes))
    })?;
    crate::auth::forget_keys(app, hashes).await;
    event.publish(app).await;
    Ok(existing.id)
}

/// Issues a new secret for a key. Secrets issued before keep working until `now + grace_secs`
/// (0 = stop now), so clients can switch without downtime.
pub async fn roll_key(
    app: &App,
    principal: &Principal,
    id: &str,
    grace_secs: Option<i64>,
) -> Result<(KeyRow, String, i64)> {
    principal.require_scope("keys:write")?;
    let grace = grace_secs.unwrap_or(DEFAULT_ROLL_GRACE_SECS);
    if !(0..=MAX_ROLL_GRACE_SECS).contains(&grace) {
        return Err(Error::bad_input("expireOldInSeconds", format!("must be between 0 and {MAX_ROLL_GRACE_SECS}")));
    }
    let existing = find_key(app, principal, id).await?;
    if existing.revoked_at.is_some() {
        return Err(Error::Conflict("a revoked key cannot be rolled".into()));
    }
    // Rolling hands out the key's secret: only to whoever could have created a key this broad.
    check_grantable(principal, &existing.scope_list())
        .map_err(|_| Error::forbidden("this key holds scopes you do not: ask someone who holds them to roll it"))?;
    let env = Environment::parse(&existing.environment).unwrap_or(Environment::Test);
    let now = app.clock.now_ms();
    let old_expires = now + grace * 1000;
    let secret = mint_secret(env);
    let hash = crate::auth::key_hash(&app.secret, &secret);
    let last_four = secret[secret.len() - 4..].to_string();
    let (key, event, hashes) = transaction!(app.db, c => {
        diesel::update(api_key_secrets::table
                .filter(api_key_secrets::key_id.eq(&existing.id))
                .filter(api_key_secrets::expires_at.is_null().or(api_key_secrets::expires_at.gt(old_expires))))
            .set(api_key_secrets::expires_at.eq(old_expires))
            .execute(c).await?;
        // Secrets already past their expiry are of no further use.
        diesel::delete(api_key_secrets::table.filter(api_key_secrets::key_id.eq(&existing.id)).filter(api_key_secrets::expires_at.le(now)))
            .execute(c).await?;
        diesel::insert_into(api_key_secrets::table)
            .values(SecretRow { key_hash: hash.clone(), key_id: existing.id.clone(), created_at: now, expires_at: None })
            .execute(c).await?;
        let key: KeyRow = diesel::update(api_keys::table.find(&existing.id).filter(api_keys::org_id.eq(&principal.org_id)))
            .set((api_keys::last_four.eq(&last_four), api_keys::updated_at.eq(now)))
            .returning(KeyRow::as_returning())
            .get_result(c).await?;
        let mut data = event_data(&key);
        data["previousSecretExpiresAt"] = serde_json::json!(crate::platform::clock::rfc3339(old_expires));
        let event = crate::outbox!(c, PendingEvent::new(app, &principal.org_id, "key.rolled", data), NewAudit::by(app, principal, "key.rolled", "api_key", key.id.as_str(), serde_json::json!({ "graceSeconds": grace })));
        let hashes: Vec<String> = api_key_secrets::table.filter(api_key_secrets::key_id.eq(&existing.id)).select(api_key_secrets::key_hash).load(c).await?;
        Ok::<_, Error>((key, event, hashes))
    })?;
    let hashes: Vec<String> = hashes.into_iter().filter(|h| *h != hash).collect();
    crate::auth::forget_keys(app, hashes).await;
    event.publish(app).await;
    Ok((key, secret, old_expires))
}

/// Requests per UTC day for a key, newest first, over the last `days` days.
pub async fn key_usage_days(app: &App, principal: &Principal, key_id: &KeyId, days: i64) -> Result<Vec<UsageDayRow>> {
    principal.require_scope("keys:read")?;
    if !(1..=366).contains(&days) {
        return Err(Error::bad_input("days", "must be between 1 and 366"));
    }
    let since = chrono::DateTime::from_timestamp_millis(app.clock.now_ms() - (days - 1) * 86_400_000)
        .unwrap_or_default()
        .format("%Y-%m-%d")
        .to_string();
    let org = &principal.org_id;
    Ok(with_conn!(app.db, c => {
        api_key_usage_daily::table
            .inner_join(api_keys::table)
            .filter(api_keys::org_id.eq(org))
            .filter(api_key_usage_daily::key_id.eq(key_id))
            .filter(api_key_usage_daily::day.ge(&since))
            .order(api_key_usage_daily::day.desc())
            .select(UsageDayRow::as_select())
            .load(c).await?
    }))
}

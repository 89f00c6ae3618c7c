//! App rules: an app belongs to its owner organization and moves through its lifecycle
//! DRAFT → PENDING → APPROVED / REJECTED → ACTIVE → DEPRECATED; every transition is checked
//! here, written with its event and audit entry in one transaction. Only ACTIVE apps are listed;
//! an app that is not ACTIVE (or DEPRECATED) is visible only to its owner organization and to
//! platform administrators, and is NOT_FOUND to everyone else.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::model::*;
use crate::app::App;
use crate::auth::{Principal, validate_scopes};
use crate::error::{Error, Result};
use crate::events::{NewAudit, PendingEvent};
use crate::pagination::{Page, PageRequest};
use crate::platform::crypto;
use crate::platform::db::schema::{app_clients, app_install_log, app_installations, app_secrets, apps, oauth_tokens};
use crate::platform::ids::{AppId, UserId};
use crate::platform::patch::Patch;
use crate::{keyset_page, transaction, with_conn};

pub const DEFAULT_ACCESS_TTL_SECS: i64 = 3600;
pub const DEFAULT_REFRESH_TTL_SECS: i64 = 30 * 24 * 3600;
pub const CLIENT_SECRET_PREFIX: &str = "gko_cs_";
const CLIENT_SECRET_DOMAIN: &str = "app_client_secret";
const MAX_SECRET_GRACE_SECS: i64 = 30 * 24 * 3600;

macro_rules! string_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $s:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $s),+ }
            }
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($s => Some($name::$variant),)+ _ => None }
            }
        }
    };
}

string_enum!(
    /// Where an app is in its lifecycle.
    Status {
        Draft = "draft",
        Pending = "pending",
        Approved = "approved",
        Rejected = "rejected",
        Active = "active",
        Deprecated = "deprecated",
    }
);

string_enum!(
    /// Marketplace categories (seed 001 §7.1).
    Category {
        Integrations = "integrations",
        Analytics = "analytics",
        Automation = "automation",
        Communication = "communication",
        Storage = "storage",
        Security = "security",
        DeveloperTools = "developer_tools",
        WorkflowAutomation = "workflow_automation",
    }
);

string_enum!(
    /// How an app is priced.
    PricingModel { Free = "free", Fixed = "fixed", UsageBased = "usage_based", Freemium = "freemium" }
);

string_enum!(
    /// An OAuth client that can keep a secret (a server) or cannot (a browser or mobile app).
    ClientType { Confidential = "confidential", Public = "public" }
);

impl AppRow {
    pub fn status(&self) -> Status {
        Status::parse(&self.status).unwrap_or(Status::Draft)
    }
}

/// The price of an app: a model and, unless it is free, an amount in minor units.
#[derive(Debug, Clone)]
pub struct Pricing {
    pub model: PricingModel,
    pub amount: Option<i64>,
    pub currency: Option<String>,
}

pub struct CreateApp {
    pub name: String,
    pub slug: Option<String>,
    pub description: String,
    pub long_description: Option<String>,
    pub category: Category,
    pub icon_url: Option<String>,
    pub version: Option<String>,
    pub pricing: Option<Pricing>,
    pub features: Vec<String>,
    pub scopes: Vec<String>,
    pub docs_url: Option<String>,
    pub support_url: Option<String>,
    pub redirect_uris: Vec<String>,
    pub client_type: ClientType,
    pub access_token_ttl_secs: Option<i64>,
    pub refresh_token_ttl_secs: Option<i64>,
    pub rate_limit: Option<crate::limits::policy::Override>,
}

#[derive(Default)]
pub struct UpdateApp {
    pub name: Option<String>,
    pub slug: Option<String>,
    pub description: Option<String>,
    pub long_description: Option<String>,
    pub category: Option<Category>,
    pub icon_url: Patch<String>,
    pub version: Option<String>,
    pub pricing: Option<Pricing>,
    pub features: Option<Vec<String>>,
    pub scopes: Option<Vec<String>>,
    pub docs_url: Patch<String>,
    pub support_url: Patch<String>,
    pub redirect_uris: Option<Vec<String>>,
    pub access_token_ttl_secs: Option<i64>,
    pub refresh_token_ttl_secs: Option<i64>,
    pub rate_limit: Patch<crate::limits::policy::Override>,
}

// ---------------------------------------------------------------------------------------------
// Validation

fn check_text(field: &str, s: &str, min: usize, max: usize) -> Result<String> {
    let s = s.trim();
    let n = s.chars().count();
    if n < min || n > max {
        return Err(if min > 0 {
            Error::bad_input(field, format!("must be {min} to {max} characters"))
        } else {
            Error::bad_input(field, format!("must be at most {max} characters"))
        });
    }
    Ok(s.to_string())
}

/// `slack-integration`: 3 to 60 lowercase letters, digits and single hyphens between them.
fn check_slug(s: &str) -> Result<String> {
    let ok = (3..=60).contains(&s.len())
        && s.split('-')
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
    if !ok {
        return Err(Error::bad_input(
            "slug",
            "must be 3 to 60 lowercase letters, digits and single hyphens (`my-app-2`)",
        ));
    }
    Ok(s.to_string())
}

/// The slug a name suggests: `Slack Integration!` → `slack-integration`.
pub fn slug_from_name(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let mut out: String = out.trim_end_matches('-').chars().take(60).collect();
    while out.ends_with('-') {
        out.pop();
    }
    while out.len() < 3 {
        out.push('0');
    }
    out
}

/// An absolute `https` URL (or `http` on a loopback host), at most 2048 characters.
fn check_web_url(field: &str, raw: &str) -> Result<String> {
    let raw = raw.trim();
    let bad = || Error::bad_input(field, "must be an absolute https:// URL (http:// only for localhost)");
    if raw.len() > 2048 {
        return Err(Error::bad_input(field, "must be at most 2048 characters"));
    }
    let url = url::Url::parse(raw).map_err(|_| bad())?;
    match url.scheme() {
        "https" if url.host().is_some() => {}
        "http" if is_loopback(&url) => {}
        _ => return Err(bad()),
    }
    Ok(url.to_string())
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Redirect URIs (RFC 6749 §3.1.2, RFC 8252): absolute, no fragment, https (http only on a loopback
/// host), at most 10. Stored exactly as given: the authorization request must repeat one exactly.
fn check_redirect_uris(list: &[String]) -> Result<String> {
    if list.len() > 10 {
        return Err(Error::bad_input("redirectUris", "at most 10 redirect URIs"));
    }
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for raw in list {
        let bad = |why: &str| Error::bad_input("redirectUris", format!("`{raw}` {why}"));
        if raw.len() > 2048 {
            return Err(bad("is longer than 2048 characters"));
        }
        let url = url::Url::parse(raw).map_err(|_| bad("is not an absolute URL"))?;
        if url.fragment().is_some() {
            return Err(bad("has a fragment (`#…`), which a redirect URI may not have"));
        }
        match url.scheme() {
            "https" if url.host().is_some() => {}
            "http" if is_loopback(&url) => {}
            _ => return Err(bad("must use https (http only for localhost)")),
        }
        if !out.contains(raw) {
            out.push(raw.clone());
        }
    }
    Ok(serde_json::to_string(&out).unwrap_or_else(|_| "[]".into()))
}

fn check_features(list: &[String]) -> Result<String> {
    if list.len() > 20 {
        return Err(Error::bad_input("features", "at most 20 features"));
    }
    let list = list.iter().map(|f| check_text("features", f, 1, 100)).collect::<Result<Vec<_>>>()?;
    Ok(serde_json::to_string(&list).unwrap_or_else(|_| "[]".into()))
}

/// What an app may ask an organization for: named scopes of the vocabulary, never `*`.
fn check_app_scopes(list: &[String]) -> Result<String> {
    let scopes = validate_scopes("scopes", list)?;
    if scopes.iter().any(|s| s == "*") {
        return Err(Error::bad_input("scopes", "an app must name the scopes it needs; `*` cannot be requested"));
    }
    Ok(serde_json::to_string(&scopes).unwrap_or_else(|_| "[]".into()))
}

fn check_version(v: &str) -> Result<String> {
    let v = v.trim();
    let ok = (1..=32).contains(&v.len())
        && v.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'+'))
        && v.as_bytes()[0].is_ascii_alphanumeric();
    if !ok {
        return Err(Error::bad_input("version", "must be 1 to 32 letters, digits, `.`, `-` or `+` (`2.1.0`)"));
    }
    Ok(v.to_string())
}

/// `(model, amount, currency)` as stored. Free apps have no price; the others a positive one.
fn check_pricing(p: &Pricing) -> Result<(String, Option<i64>, String)> {
    let currency = match &p.currency {
        Some(c) if c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase()) => c.clone(),
        Some(_) => return Err(Error::bad_input("pricing.currency", "must be an ISO 4217 code (`USD`)")),
        None => "USD".to_string(),
    };
    match (p.model, p.amount) {
        (PricingModel::Free, None | Some(0)) => Ok((p.model.as_str().into(), None, currency)),
        (PricingModel::Free, Some(_)) => Err(Error::bad_input("pricing.amount", "a FREE app has no price")),
        (_, Some(a)) if (1..=10_000_000_000).contains(&a) => Ok((p.model.as_str().into(), Some(a), currency)),
        (_, Some(_)) => Err(Error::bad_input("pricing.amount", "must be between 1 and 10000000000 minor units")),
        (_, None) => Err(Error::bad_input("pricing.amount", "a priced app needs its price in minor units")),
    }
}

fn check_ttl(field: &str, secs: i64, min: i64, max: i64) -> Result<i64> {
    if !(min..=max).contains(&secs) {
        return Err(Error::bad_input(field, format!("must be between {min} and {max} seconds")));
    }
    Ok(secs)
}

fn check_access_ttl(secs: i64) -> Result<i64> {
    check_ttl("accessTokenLifetime", secs, 60, 24 * 3600)
}

fn check_refresh_ttl(secs: i64) -> Result<i64> {
    check_ttl("refreshTokenLifetime", secs, 3600, 365 * 24 * 3600)
}

/// An app's own limits only tighten each installing organization's plan (never `above_plan`).
fn check_rate_limit(o: &crate::limits::policy::Override) -> Result<Option<String>> {
    crate::limits::service::check_override(o)?;
    let o = crate::limits::policy::Override { above_plan: false, ..o.clone() };
    Ok((!o.is_empty()).then(|| serde_json::to_string(&o).ok()).flatten())
}

fn require_admin(principal: &Principal, what: &str) -> Result<()> {
    if principal.is_platform_admin() {
        Ok(())
    } else {
        Err(Error::forbidden(format!("only a platform administrator may {what}")))
    }
}

// ---------------------------------------------------------------------------------------------
// Secrets

/// The keyed hash a client secret is stored and looked up by.
pub fn client_secret_hash(app: &App, secret: &str) -> String {
    app.secret.keyed_hash(CLIENT_SECRET_DOMAIN, secret)
}

fn mint_client_secret() -> String {
    format!("{CLIENT_SECRET_PREFIX}{}", crypto::random_base62(43))
}

// ---------------------------------------------------------------------------------------------
// Events

pub(crate) fn event_data(app: &AppRow) -> serde_json::Value {
    serde_json::json!({
        "app": {
            "id": app.id, "name": app.name, "slug": app.slug, "status": app.status.to_ascii_uppercase(),
            "version": app.version, "ownerOrganizationId": app.org_id,
        }
    })
}

/// The event and audit entry of a change to an app, both in the owner organization's records
/// (a platform administrator's review is recorded there too, with the administrator as actor).
fn app_change(
    app: &App,
    principal: &Principal,
    row: &AppRow,
    action: &str,
    mut data: serde_json::Value,
    audit: serde_json::Value,
) -> (PendingEvent, NewAudit) {
    if let Some(obj) = audit.as_object() {
        for (k, v) in obj {
            data[k] = v.clone();
        }
    }
    let event = PendingEvent::new(app, &row.org_id, action, data);
    let entry = NewAudit::raw(
        app,
        &row.org_id,
        principal.actor_type(),
        &principal.actor_id(),
        principal.ip,
        action,
        "app",
        row.id.as_str(),
        audit,
    );
    (event, entry)
}

// ---------------------------------------------------------------------------------------------
// Reads

/// Whether the principal sees the app whatever its status: its owner organization (`apps:read`)
/// or a platform administrator.
fn is_owner(principal: Option<&Principal>, row: &AppRow) -> bool {
    principal.is_some_and(|p| (p.org_id == row.org_id && p.has_scope("apps:read")) || p.is_platform_admin())
}

async fn load_app(app: &App, id: &str) -> Result<Option<AppRow>> {
    let Ok(id) = id.parse::<AppId>() else {
        return Ok(None);
    };
    Ok(with_conn!(app.db, c => {
        apps::table.find(&id).select(AppRow::as_select()).first(c).await.optional()?
    }))
}

/// Apps by id, whatever the caller may see, for the DataLoader (resolvers ask only for apps whose
/// calls they already show).
pub async fn load_apps(app: &App, ids: &[AppId]) -> Result<Vec<AppRow>> {
    Ok(with_conn!(app.db, c => apps::table.filter(apps::id.eq_any(ids)).select(AppRow::as_select()).load(c).await?))
}

/// An app by id, whatever the caller may see (for the app behind a credential).
pub async fn app_by_id(app: &App, id: &AppId) -> Result<AppRow> {
    load_app(app, id.as_str()).await?.ok_or(Error::NotFound("app"))
}

/// An app as the principal may see it: listed ones (ACTIVE, DEPRECATED) by anyone who may read
/// the marketplace, the others by their owner and administrators; NOT_FOUND otherwise.
pub async fn get_app(app: &App, principal: Option<&Principal>, id: &str) -> Result<AppRow> {
    let row = load_app(app, id).await?.ok_or(Error::NotFound("app"))?;
    if visible(principal, &row) { Ok(row) } else { Err(Error::NotFound("app")) }
}

/// An app by its slug, as [`get_app`].
pub async fn get_app_by_slug(app: &App, principal: Option<&Principal>, slug: &str) -> Result<AppRow> {
    let row: Option<AppRow> = with_conn!(app.db, c => {
        apps::table.filter(apps::slug.eq(slug)).select(AppRow::as_select()).first(c).await.optional()?
    });
    let row = row.ok_or(Error::NotFound("app"))?;
    if visible(principal, &row) { Ok(row) } else { Err(Error::NotFound("app")) }
}

fn visible(principal: Option<&Principal>, row: &AppRow) -> bool {
    if is_owner(principal, row) {
        return true;
    }
    let listed = matches!(row.status(), Status::Active | Status::Deprecated);
    listed && principal.is_none_or(|p| p.has_scope("marketplace:read"))
}

/// An app of the principal's own organization, for a change (`apps:write`).
async fn own_app(app: &App, principal: &Principal, id: &str) -> Result<AppRow> {
    principal.require_scope("apps:write")?;
    let row = load_app(app, id).await?.ok_or(Error::NotFound("app"))?;
    if row.org_id != principal.org_id {
        // Listed apps of other organizations are visible, but not theirs to change.
        return Err(if visible(Some(principal), &row) {
            Error::forbidden("only the app's owner organization may change it")
        } else {
            Error::NotFound("app")
        });
    }
    Ok(row)
}

/// The OAuth client settings of an app the principal sees.
pub async fn client_of(app: &App, id: &AppId) -> Result<ClientRow> {
    let row: Option<ClientRow> = with_conn!(app.db, c => {
        app_clients::table.find(id).select(ClientRow::as_select()).first(c).await.optional()?
    });
    row.ok_or(Error::NotFound("app"))
}

/// The last four characters of the app's client secrets that work now: the current one first.
pub async fn client_secret_hints(app: &App, id: &AppId) -> Result<Vec<(String, i64, Option<i64>)>> {
    let now = app.clock.now_ms();
    let mut rows: Vec<ClientSecretRow> = with_conn!(app.db, c => {
        app_secrets::table
            .filter(app_secrets::app_id.eq(id))
            .filter(app_secrets::expires_at.is_null().or(app_secrets::expires_at.gt(now)))
            .select(ClientSecretRow::as_select())
            .load(c).await?
    });
    // The current secret (no expiry) first, then the retiring ones, latest expiry first.
    rows.sort_by_key(|r| (r.expires_at.is_some(), std::cmp::Reverse(r.expires_at), std::cmp::Reverse(r.created_at)));
    Ok(rows.into_iter().map(|r| (r.last_four, r.created_at, r.expires_at)).collect())
}

/// Filters of an organization's own apps.
#[derive(Debug, Default, Clone)]
pub struct OwnFilter {
    pub status: Option<Status>,
}

/// The principal's organization's apps, whatever their status, newest first (`apps:read`).
pub async fn list_org_apps(
    app: &App,
    principal: &Principal,
    filter: &OwnFilter,
    page: &PageRequest,
) -> Result<Page<AppRow>> {
    principal.require_scope("apps:read")?;
    let org = &principal.org_id;
    let status = filter.status.map(|s| s.as_str());
    macro_rules! base {
        () => {{
            let mut q = apps::table.filter(apps::org_id.eq(org)).into_boxed();
            if let Some(s) = status {
                q = q.filter(apps::status.eq(s));
            }
            q
        }};
    }
    let (rows, total) = with_conn!(app.db, c => keyset_page!(c, base!(), apps::id, AppRow, page));
    Ok(Page::from_rows(rows, page, total))
}

/// The review queue: submitted apps, oldest submission first (platform administrators).
pub async fn list_pending_apps(app: &App, principal: &Principal, page: &PageRequest) -> Result<Page<AppRow>> {
    require_admin(principal, "review apps")?;
    macro_rules! base {
        () => {
            apps::table.filter(apps::status.eq(Status::Pending.as_str())).into_boxed()
        };
    }
    let (rows, total) = with_conn!(app.db, c => keyset_page!(c, base!(), apps::id, AppRow, page));
    Ok(Page::from_rows(rows, page, total))
}

// ---------------------------------------------------------------------------------------------
// Changes

/// Creates an app in DRAFT. A confidential client gets its first client secret, returned here
/// once and stored as a keyed hash.
pub async fn create_app(app: &App, principal: &Principal, input: CreateApp) -> Result<(AppRow, Option<String>)> {
    principal.require_scope("apps:write")?;
    let name = check_text("name", &input.name, 1, 100)?;
    let slug = match &input.slug {
        Some(s) => check_slug(s)?,
        None => slug_from_name(&name),
    };
    let description = check_text("description", &input.description, 1, 500)?;
    let long_description = check_text("longDescription", input.long_description.as_deref().unwrap_or(""), 0, 20_000)?;
    let icon_url = input.icon_url.as_deref().map(|u| check_web_url("iconUrl", u)).transpose()?;
    let version = check_version(input.version.as_deref().unwrap_or("1.0.0"))?;
    let pricing = input.pricing.clone().unwrap_or(Pricing { model: PricingModel::Free, amount: None, currency: None });
    let (pricing_model, price_amount, price_currency) = check_pricing(&pricing)?;
    let features = check_features(&input.features)?;
    let scopes = check_app_scopes(&input.scopes)?;
    let docs_url = input.docs_url.as_deref().map(|u| check_web_url("docsUrl", u)).transpose()?;
    let support_url = input.support_url.as_deref().map(|u| check_web_url("supportUrl", u)).transpose()?;
    let redirect_uris = check_redirect_uris(&input.redirect_uris)?;
    let access_ttl = check_access_ttl(input.access_token_ttl_secs.unwrap_or(DEFAULT_ACCESS_TTL_SECS))?;
    let refresh_ttl = check_refresh_ttl(input.refresh_token_ttl_secs.unwrap_or(DEFAULT_REFRESH_TTL_SECS))?;
    let rate_limit = input.rate_limit.as_ref().map(check_rate_limit).transpose()?.flatten();

    let now = app.clock.now_ms();
    let id = AppId::generate(now);
    let row = AppRow {
        id: id.clone(),
        org_id: principal.org_id.clone(),
        name,
        slug,
        description,
        long_description,
        category: input.category.as_str().into(),
        icon_url,
        version,
        pricing_model,
        price_amount,
        price_currency,
        features,
        scopes,
        docs_url,
        support_url,
        status: Status::Draft.as_str().into(),
        review_reason: None,
        reviewed_by: None,
        reviewed_at: None,
        submitted_at: None,
        published_at: None,
        deprecated_at: None,
        is_featured: false,
        install_count: 0,
        rating_count: 0,
        rating_sum: 0,
        created_by: principal.user_id().cloned(),
        created_at: now,
        updated_at: now,
    };
    let client = ClientRow {
        app_id: id.clone(),
        client_type: input.client_type.as_str().into(),
        redirect_uris,
        access_token_ttl_secs: access_ttl,
        refresh_token_ttl_secs: refresh_ttl,
        rate_limit,
        updated_at: now,
    };
    let secret = (input.client_type == ClientType::Confidential).then(mint_client_secret);
    let secret_row = secret.as_ref().map(|s| ClientSecretRow {
        secret_hash: client_secret_hash(app, s),
        app_id: id.clone(),
        last_four: s[s.len() - 4..].to_string(),
        created_at: now,
        expires_at: None,
    });
    let slug_taken = slug_taken(app, &row.slug, None).await?;
    if slug_taken {
        return Err(slug_conflict(&row.slug));
    }
    let (event, entry) = app_change(app, principal, &row, "app.created", event_data(&row), serde_json::json!({}));
    let result = transaction!(app.db, c => {
        diesel::insert_into(apps::table).values(&row).execute(c).await?;
        diesel::insert_into(app_clients::table).values(&client).execute(c).await?;
        if let Some(s) = &secret_row {
            diesel::insert_into(app_secrets::table).values(s).execute(c).await?;
        }
        let event = crate::outbox!(c, event, entry);
        Ok::<_, Error>(event)
    });
    let event = result.map_err(|e| conflict_as_slug(e, &row.slug))?;
    event.publish(app).await;
    Ok((row, secret))
}

async fn slug_taken(app: &App, slug: &str, except: Option<&AppId>) -> Result<bool> {
    let found: Option<AppId> = with_conn!(app.db, c => {
        apps::table.filter(apps::slug.eq(slug)).select(apps::id).first(c).await.optional()?
    });
    Ok(found.is_some_and(|f| Some(&f) != except))
}

fn slug_conflict(slug: &str) -> Error {
    Error::Conflict(format!("the slug `{slug}` is taken; choose another with `slug`"))
}

/// Two creations racing for one slug: the unique index refuses the second.
fn conflict_as_slug(e: Error, slug: &str) -> Error {
    match e {
        Error::Conflict(_) => slug_conflict(slug),
        other => other,
    }
}

/// Changes an app's listing and client settings. An app under review (PENDING) cannot change
/// until the review is done; a DEPRECATED one not at all.
pub async fn update_app(app: &App, principal: &Principal, id: &str, patch: UpdateApp) -> Result<AppRow> {
    let existing = own_app(app, principal, id).await?;
    match existing.status() {
        Status::Pending => {
            return Err(Error::Conflict("the app is under review; it can change once the review is done".into()));
        }
        Status::Deprecated => return Err(Error::Conflict("a deprecated app cannot change".into())),
        _ => {}
    }
    let name = patch.name.as_deref().map(|n| check_text("name", n, 1, 100)).transpose()?;
    let slug = patch.slug.as_deref().map(check_slug).transpose()?;
    let description = patch.description.as_deref().map(|d| check_text("description", d, 1, 500)).transpose()?;
    let long_description =
        patch.long_description.as_deref().map(|d| check_text("longDescription", d, 0, 20_000)).transpose()?;
    let icon_url = patch.icon_url.clone().try_map(|u| check_web_url("iconUrl", &u))?;
    let version = patch.version.as_deref().map(check_version).transpose()?;
    let pricing = patch.pricing.as_ref().map(check_pricing).transpose()?;
    let features = patch.features.as_deref().map(check_features).transpose()?;
    let scopes = patch.scopes.as_deref().map(check_app_scopes).transpose()?;
    let docs_url = patch.docs_url.clone().try_map(|u| check_web_url("docsUrl", &u))?;
    let support_url = patch.support_url.clone().try_map(|u| check_web_url("supportUrl", &u))?;
    let redirect_uris = patch.redirect_uris.as_deref().map(check_redirect_uris).transpose()?;
    let access_ttl = patch.access_token_ttl_secs.map(check_access_ttl).transpose()?;
    let refresh_ttl = patch.refresh_token_ttl_secs.map(check_refresh_ttl).transpose()?;
    let rate_limit: Patch<String> = match patch.rate_limit.clone().try_map(|o| check_rate_limit(&o))? {
        Patch::Set(Some(s)) => Patch::Set(s),
        Patch::Set(None) | Patch::Clear => Patch::Clear,
        Patch::Keep => Patch::Keep,
    };
    if let Some(s) = &slug
        && slug_taken(app, s, Some(&existing.id)).await?
    {
        return Err(slug_conflict(s));
    }
    let changes: Vec<&str> = [
        ("name", name.is_some()),
        ("slug", slug.is_some()),
        ("description", description.is_some()),
        ("longDescription", long_description.is_some()),
        ("category", patch.category.is_some()),
        ("iconUrl", icon_url.is_change()),
        ("version", version.is_some()),
        ("pricing", pricing.is_some()),
        ("features", features.is_some()),
        ("scopes", scopes.is_some()),
        ("docsUrl", docs_url.is_change()),
        ("supportUrl", support_url.is_change()),
        ("redirectUris", redirect_uris.is_some()),
        ("accessTokenLifetime", access_ttl.is_some()),
        ("refreshTokenLifetime", refresh_ttl.is_some()),
        ("rateLimit", rate_limit.is_change()),
    ]
    .into_iter()
    .filter_map(|(f, set)| set.then_some(f))
    .collect();
    let now = app.clock.now_ms();
    let pg = app.db.is_postgres();
    let category = patch.category.map(|c| c.as_str());
    let result = transaction!(app.db, c => {
        crate::lock_row!(c, pg, "apps", existing.id.as_str());
        let cur: AppRow = apps::table.find(&existing.id).select(AppRow::as_select()).first(c).await?;
        let (model, amount, currency) = pricing.clone().unwrap_or((cur.pricing_model.clone(), cur.price_amount, cur.price_currency.clone()));
        let row: AppRow = diesel::update(apps::table.find(&existing.id))
            .set((
                apps::name.eq(name.as_deref().unwrap_or(&cur.name)),
                apps::slug.eq(slug.as_deref().unwrap_or(&cur.slug)),
                apps::description.eq(description.as_deref().unwrap_or(&cur.description)),
                apps::long_description.eq(long_description.as_deref().unwrap_or(&cur.long_description)),
                apps::category.eq(category.unwrap_or(&cur.category)),
                apps::icon_url.eq(icon_url.clone().apply(cur.icon_url.clone())),
                apps::version.eq(version.as_deref().unwrap_or(&cur.version)),
                apps::pricing_model.eq(model),
                apps::price_amount.eq(amount),
                apps::price_currency.eq(currency),
                apps::features.eq(features.as_deref().unwrap_or(&cur.features)),
                apps::scopes.eq(scopes.as_deref().unwrap_or(&cur.scopes)),
                apps::docs_url.eq(docs_url.clone().apply(cur.docs_url.clone())),
                apps::support_url.eq(support_url.clone().apply(cur.support_url.clone())),
                apps::updated_at.eq(now),
            ))
            .returning(AppRow::as_returning())
            .get_result(c).await?;
        let client: ClientRow = app_clients::table.find(&existing.id).select(ClientRow::as_select()).first(c).await?;
        diesel::update(app_clients::table.find(&existing.id))
            .set((
                app_clients::redirect_uris.eq(redirect_uris.as_deref().unwrap_or(&client.redirect_uris)),
                app_clients::access_token_ttl_secs.eq(access_ttl.unwrap_or(client.access_token_ttl_secs)),
                app_clients::refresh_token_ttl_secs.eq(refresh_ttl.unwrap_or(client.refresh_token_ttl_secs)),
                app_clients::rate_limit.eq(rate_limit.clone().apply(client.rate_limit.clone())),
                app_clients::updated_at.eq(now),
            ))
            .execute(c).await?;
        let (event, entry) = app_change(app, principal, &row, "app.updated", event_data(&row), serde_json::json!({ "changes": changes }));
        let event = crate::outbox!(c, event, entry);
        Ok::<_, Error>((row, event))
    });
    let (row, event) = match (result, &slug) {
        (Err(e), Some(s)) => return Err(conflict_as_slug(e, s)),
        (r, _) => r?,
    };
    event.publish(app).await;
    Ok(row)
}

/// One lifecycle step: from one of `from` to `to`, with the fields the step sets.
struct Step<'a> {
    action: &'static str,
    from: &'a [Status],
    to: Status,
    reason: Option<String>,
}

async fn transition(app: &App, principal: &Principal, existing: AppRow, step: Step<'_>) -> Result<AppRow> {
    let now = app.clock.now_ms();
    let pg = app.db.is_postgres();
    let to = step.to;
    let reviewer: Option<UserId> = principal.user_id().cloned();
    let mut revoked: Vec<String> = Vec::new();
    let result = transaction!(app.db, c => {
        crate::lock_row!(c, pg, "apps", existing.id.as_str());
        let cur: AppRow = apps::table.find(&existing.id).select(AppRow::as_select()).first(c).await?;
        if !step.from.contains(&cur.status()) {
            return Err(illegal(cur.status(), to));
        }
        let target = apps::table.find(&existing.id);
        let status = to.as_str();
        let row: AppRow = match to {
            Status::Pending => diesel::update(target)
                .set((apps::status.eq(status), apps::submitted_at.eq(now), apps::review_reason.eq(None::<String>), apps::updated_at.eq(now)))
                .returning(AppRow::as_returning()).get_result(c).await?,
            Status::Approved | Status::Rejected => diesel::update(target)
                .set((apps::status.eq(status), apps::reviewed_at.eq(now), apps::reviewed_by.eq(&reviewer), apps::review_reason.eq(&step.reason), apps::updated_at.eq(now)))
                .returning(AppRow::as_returning()).get_result(c).await?,
            Status::Active => diesel::update(target)
                .set((apps::status.eq(status), apps::published_at.eq(cur.published_at.unwrap_or(now)), apps::updated_at.eq(now)))
                .returning(AppRow::as_returning()).get_result(c).await?,
            Status::Deprecated => {
                // A deprecated app holds no grants: every installation ends and its tokens stop.
                let ended: Vec<crate::platform::ids::OrgId> = diesel::update(app_installations::table.filter(app_installations::app_id.eq(&existing.id)).filter(app_installations::uninstalled_at.is_null()))
                    .set((app_installations::uninstalled_at.eq(now), app_installations::updated_at.eq(now)))
                    .returning(app_installations::org_id)
                    .get_results(c).await?;
                for org in &ended {
                    diesel::insert_into(app_install_log::table)
                        .values((app_install_log::app_id.eq(&existing.id), app_install_log::org_id.eq(org), app_install_log::kind.eq("uninstall"), app_install_log::at.eq(now)))
                        .execute(c).await?;
                }
                revoked = diesel::update(oauth_tokens::table.filter(oauth_tokens::app_id.eq(&existing.id)).filter(oauth_tokens::revoked_at.is_null()))
                    .set(oauth_tokens::revoked_at.eq(now))
                    .returning(oauth_tokens::token_hash)
                    .get_results(c).await?;
                diesel::update(target)
                    .set((apps::status.eq(status), apps::deprecated_at.eq(now), apps::is_featured.eq(false), apps::install_count.eq(0), apps::updated_at.eq(now)))
                    .returning(AppRow::as_returning()).get_result(c).await?
            }
            Status::Draft => return Err(illegal(cur.status(), to)),
        };
        let audit = serde_json::json!({ "from": cur.status.to_ascii_uppercase(), "to": row.status.to_ascii_uppercase(), "reason": step.reason });
        let (event, entry) = app_change(app, principal, &row, step.action, event_data(&row), audit);
        let event = crate::outbox!(c, event, entry);
        Ok::<_, Error>((row, event))
    })?;
    let (row, event) = result;
    crate::auth::forget_tokens(app, revoked).await;
    event.publish(app).await;
    Ok(row)
}

fn illegal(from: Status, to: Status) -> Error {
    let from = from.as_str().to_ascii_uppercase();
    let to = to.as_str().to_ascii_uppercase();
    let hint = match to.as_str() {
        "PENDING" => "only a DRAFT or REJECTED app can be submitted",
        "APPROVED" | "REJECTED" => "only a PENDING (submitted) app can be reviewed",
        "ACTIVE" => "only an APPROVED app can be published",
        "DEPRECATED" => "only an ACTIVE app can be deprecated",
        _ => "no app returns to DRAFT",
    };
    Error::Conflict(format!("an app in {from} cannot become {to}: {hint}"))
}

/// Submits an app for review (its owner). A confidential app needs a redirect URI to be useful.
pub async fn submit_app(app: &App, principal: &Principal, id: &str) -> Result<AppRow> {
    let existing = own_app(app, principal, id).await?;
    let client = client_of(app, &existing.id).await?;
    if client.redirect_uri_list().is_empty() {
        return Err(Error::bad_input("redirectUris", "an app needs at least one redirect URI before review"));
    }
    let step =
        Step { action: "app.submitted", from: &[Status::Draft, Status::Rejected], to: Status::Pending, reason: None };
    transition(app, principal, existing, step).await
}

/// Approves a submitted app (platform administrators).
pub async fn approve_app(app: &App, principal: &Principal, id: &str) -> Result<AppRow> {
    require_admin(principal, "approve apps")?;
    let existing = load_app(app, id).await?.ok_or(Error::NotFound("app"))?;
    let step = Step { action: "app.approved", from: &[Status::Pending], to: Status::Approved, reason: None };
    transition(app, principal, existing, step).await
}

/// Rejects a submitted app with a reason its owner sees (platform administrators).
pub async fn reject_app(app: &App, principal: &Principal, id: &str, reason: &str) -> Result<AppRow> {
    require_admin(principal, "reject apps")?;
    let reason = check_text("reason", reason, 1, 2000)?;
    let existing = load_app(app, id).await?.ok_or(Error::NotFound("app"))?;
    let step = Step { action: "app.rejected", from: &[Status::Pending], to: Status::Rejected, reason: Some(reason) };
    transition(app, principal, existing, step).await
}

/// Publishes an approved app to the marketplace (its owner).
pub async fn publish_app(app: &App, principal: &Principal, id: &str) -> Result<AppRow> {
    let existing = own_app(app, principal, id).await?;
    let step = Step { action: "app.published", from: &[Status::Approved], to: Status::Active, reason: None };
    transition(app, principal, existing, step).await
}

/// Takes an app off the marketplace for good (its owner, or a platform administrator).
pub async fn deprecate_app(app: &App, principal: &Principal, id: &str, reason: Option<&str>) -> Result<AppRow> {
    let existing = if principal.is_platform_admin() {
        load_app(app, id).await?.ok_or(Error::NotFound("app"))?
    } else {
        own_app(app, principal, id).await?
    };
    let reason = reason.map(|r| check_text("reason", r, 1, 2000)).transpose()?;
    let step = Step { action: "app.deprecated", from: &[Status::Active], to: Status::Deprecated, reason };
    transition(app, principal, existing, step).await
}

/// Deletes an app that is not in the marketplace (not ACTIVE, not under review).
pub async fn delete_app(app: &App, principal: &Principal, id: &str) -> Result<AppId> {
    let existing = own_app(app, principal, id).await?;
    let pg = app.db.is_postgres();
    let event = transaction!(app.db, c => {
        crate::lock_row!(c, pg, "apps", existing.id.as_str());
        let cur: AppRow = apps::table.find(&existing.id).select(AppRow::as_select()).first(c).await?;
        match cur.status() {
            Status::Active => return Err(Error::Conflict("an ACTIVE app cannot be deleted; deprecate it first".into())),
            Status::Pending => return Err(Error::Conflict("an app under review cannot be deleted".into())),
            _ => {}
        }
        diesel::delete(apps::table.find(&existing.id)).execute(c).await?;
        let (event, entry) = app_change(app, principal, &cur, "app.deleted", event_data(&cur), serde_json::json!({ "name": cur.name }));
        let event = crate::outbox!(c, event, entry);
        Ok::<_, Error>(event)
    })?;
    event.publish(app).await;
    Ok(existing.id)
}

/// Features or unfeatures an ACTIVE app in the marketplace (platform administrators).
pub async fn set_featured(app: &App, principal: &Principal, id: &str, featured: bool) -> Result<AppRow> {
    require_admin(principal, "feature apps")?;
    let existing = load_app(app, id).await?.ok_or(Error::NotFound("app"))?;
    if featured && existing.status() != Status::Active {
        return Err(Error::Conflict("only an ACTIVE app can be featured".into()));
    }
    let now = app.clock.now_ms();
    let (row, event) = transaction!(app.db, c => {
        let row: AppRow = diesel::update(apps::table.find(&existing.id))
            .set((apps::is_featured.eq(featured), apps::updated_at.eq(now)))
            .returning(AppRow::as_returning()).get_result(c).await?;
        let (event, entry) = app_change(app, principal, &row, "app.updated", event_data(&row), serde_json::json!({ "changes": ["featured"], "featured": featured }));
        let event = crate::outbox!(c, event, entry);
        Ok::<_, Error>((row, event))
    })?;
    event.publish(app).await;
    Ok(row)
}

/// A new client secret for a confidential app, shown once. Secrets issued before keep working
/// until `now + grace_secs` (0 = stop now).
pub async fn rotate_client_secret(
    app: &App,
    principal: &Principal,
    id: &str,
    grace_secs: Option<i64>,
) -> Result<(AppRow, String, i64)> {
    let existing = own_app(app, principal, id).await?;
    let grace = grace_secs.unwrap_or(0);
    if !(0..=MAX_SECRET_GRACE_SECS).contains(&grace) {
        return Err(Error::bad_input("expireOldInSeconds", format!("must be between 0 and {MAX_SECRET_GRACE_SECS}")));
    }
    let client = client_of(app, &existing.id).await?;
    if client.is_public() {
        return Err(Error::Conflict("a public client has no secret".into()));
    }
    let now = app.clock.now_ms();
    let old_expires = now + grace * 1000;
    let secret = mint_client_secret();
    let new_row = ClientSecretRow {
        secret_hash: client_secret_hash(app, &secret),
        app_id: existing.id.clone(),
        last_four: secret[secret.len() - 4..].to_string(),
        created_at: now,
        expires_at: None,
    };
    let event = transaction!(app.db, c => {
        diesel::update(app_secrets::table
                .filter(app_secrets::app_id.eq(&existing.id))
                .filter(app_secrets::expires_at.is_null().or(app_secrets::expires_at.gt(old_expires))))
            .set(app_secrets::expires_at.eq(old_expires))
            .execute(c).await?;
        diesel::delete(app_secrets::table.filter(app_secrets::app_id.eq(&existing.id)).filter(app_secrets::expires_at.le(now)))
            .execute(c).await?;
        diesel::insert_into(app_secrets::table).values(&new_row).execute(c).await?;
        let (event, entry) = app_change(app, principal, &existing, "app.secret_rotated", event_data(&existing), serde_json::json!({ "graceSeconds": grace }));
        let event = crate::outbox!(c, event, entry);
        Ok::<_, Error>(event)
    })?;
    event.publish(app).await;
    Ok((existing, secret, old_expires))
}

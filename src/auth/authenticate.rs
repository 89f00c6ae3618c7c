//! The one place a bearer token becomes a [`Principal`]. The token's prefix names its kind — an
//! API key (`gk_live_…`, `gk_test_…`), a session token (`gks_…`) or an OAuth access token
//! (`gko_at_…`); a new kind of credential is a
//! new branch of [`authenticate`], and every surface (GraphQL over HTTP, REST, WebSocket) gets it
//! at once because they all admit requests through `server::pipeline`.
//!
//! Credentials are looked up by keyed hash (HMAC-SHA-256 with the server secret, domain-separated)
//! through the per-node caches in [`Credentials`](super::Credentials); a change to a credential
//! clears the cache entries on every node ([`forget_keys`], [`forget_session`]).

use std::net::IpAddr;
use std::sync::Arc;

use super::credentials::{KeyCredential, SessionCredential, TokenCredential};
use super::principal::{Actor, Principal, Role};
use crate::app::App;
use crate::error::{Error, Result};
use crate::platform::bus::BusMessage;
use crate::platform::crypto::ServerSecret;
use crate::platform::ids::OrgId;

pub const KEY_PREFIXES: [&str; 2] = ["gk_live_", "gk_test_"];
pub const SESSION_PREFIX: &str = "gks_";
pub const REFRESH_PREFIX: &str = "gkr_";

const KEY_DOMAIN: &str = "api_key";
const SESSION_DOMAIN: &str = "session";
const REFRESH_DOMAIN: &str = "refresh";

/// A credential as presented: the bearer token, the caller's address and the organization a
/// session names (`X-Organization-Id`, or the WebSocket `connection_init` payload).
#[derive(Debug, Clone, Copy)]
pub struct Bearer<'a> {
    pub token: &'a str,
    pub ip: Option<IpAddr>,
    pub organization: Option<&'a str>,
}

/// The keyed hash an API key secret is stored and looked up by.
pub fn key_hash(secret: &ServerSecret, token: &str) -> String {
    secret.keyed_hash(KEY_DOMAIN, token)
}

/// The keyed hash a session token is stored and looked up by.
pub fn session_hash(secret: &ServerSecret, token: &str) -> String {
    secret.keyed_hash(SESSION_DOMAIN, token)
}

/// The keyed hash a refresh token is stored and looked up by.
pub fn refresh_hash(secret: &ServerSecret, token: &str) -> String {
    secret.keyed_hash(REFRESH_DOMAIN, token)
}

pub fn looks_like_key(token: &str) -> bool {
    KEY_PREFIXES.iter().any(|p| token.starts_with(p))
}

/// `Bearer <token>` → `<token>`.
pub fn parse_bearer(value: &str) -> Result<&str> {
    let (scheme, token) =
        value.trim().split_once(' ').ok_or_else(|| Error::unauthenticated("Authorization must be `Bearer <token>`"))?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(Error::unauthenticated("Authorization must be `Bearer <token>`"));
    }
    Ok(token.trim())
}

/// Turns a bearer credential into a principal and counts a use of it (an API key's `lastUsedAt`,
/// `totalRequests`, addresses). Errors are `UNAUTHENTICATED` (unknown, revoked, expired) or
/// `FORBIDDEN` (IP not allowed, not a member of the named organization).
pub async fn authenticate(app: &App, bearer: &Bearer<'_>) -> Result<Principal> {
    resolve(app, bearer, true).await
}

/// Checks a credential already in use (an open WebSocket) again, without counting a use.
pub async fn recheck(app: &App, bearer: &Bearer<'_>) -> Result<Principal> {
    resolve(app, bearer, false).await
}

async fn resolve(app: &App, bearer: &Bearer<'_>, count: bool) -> Result<Principal> {
    let principal = resolve_credential(app, bearer, count).await?;
    // A suspended or deleted organization's credentials are refused (a platform administrator may
    // still look at it).
    if let Some(denial) = app.org_states.denial(principal.org_id.as_str())
        && !principal.is_platform_admin()
    {
        return Err(denial.error());
    }
    Ok(principal)
}

async fn resolve_credential(app: &App, bearer: &Bearer<'_>, count: bool) -> Result<Principal> {
    let token = bearer.token;
    if looks_like_key(token) {
        let key = check_key(app, token, bearer.ip).await.map_err(|f| f.into_error())?;
        if bearer.organization.is_some_and(|h| h != key.org_id.as_str()) {
            return Err(Error::forbidden("an API key acts only for its own organization"));
        }
        if count {
            app.key_usage.record(&key.key_id, app.clock.now_ms(), bearer.ip);
        }
        return Ok(Principal {
            actor: Actor::ApiKey { key_id: key.key_id.clone(), created_by: key.created_by.clone() },
            org_id: key.org_id.clone(),
            role: None,
            scopes: key.scopes.clone(),
            is_platform: key.is_platform,
            ip: bearer.ip,
            rate_override: key.rate_override.clone(),
        });
    }
    if token.starts_with(SESSION_PREFIX) {
        return session_principal(app, token, bearer.ip, bearer.organization).await;
    }
    if token.starts_with(crate::oauth::ACCESS_PREFIX) {
        return token_principal(app, token, bearer).await;
    }
    Err(Error::unauthenticated(
        "unrecognised credential: expected an API key (gk_live_…/gk_test_…), a session token or an OAuth access token (gko_at_…)",
    ))
}

/// Why a key was refused (SPEC §2 reason codes). Rate-limit reasons come with the limiter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRefusal {
    NotFound,
    Revoked,
    Expired,
    IpNotAllowed,
    InsufficientScope,
    RateLimited,
    QuotaExceeded,
    /// The key could not be looked up (database unavailable): not the key's fault.
    Unavailable,
}

/// A refused key, with the key when it was found (verification reports its org and scopes).
#[derive(Debug)]
pub struct KeyFailure {
    pub reason: KeyRefusal,
    pub key: Option<Arc<KeyCredential>>,
}

impl KeyFailure {
    /// The error a request authenticated with this key gets.
    pub fn into_error(self) -> Error {
        match self.reason {
            KeyRefusal::NotFound => Error::unauthenticated("invalid API key"),
            KeyRefusal::Revoked => Error::unauthenticated("this API key has been revoked"),
            KeyRefusal::Expired => Error::unauthenticated("this API key has expired"),
            KeyRefusal::IpNotAllowed => Error::forbidden("this API key may not be used from your IP address"),
            KeyRefusal::InsufficientScope => Error::forbidden("this API key lacks a required scope"),
            KeyRefusal::RateLimited | KeyRefusal::QuotaExceeded => Error::forbidden("this API key is over its limits"),
            KeyRefusal::Unavailable => Error::internal(anyhow::anyhow!("API key lookup failed")),
        }
    }
}

/// Finds a key by its secret (through the per-node cache) and checks revocation, expiry and the
/// IP allow-list. Used by every request that presents a key and by `verifyApiKey`.
pub async fn check_key(
    app: &App,
    token: &str,
    ip: Option<IpAddr>,
) -> std::result::Result<Arc<KeyCredential>, KeyFailure> {
    let not_found = || KeyFailure { reason: KeyRefusal::NotFound, key: None };
    if !looks_like_key(token) || token.len() > 200 {
        return Err(not_found());
    }
    let hash = key_hash(&app.secret, token);
    let found = match app.credentials.key(&hash) {
        Some(hit) => hit,
        None => {
            let epoch = app.credentials.epoch();
            let loaded = crate::keys::service::load_credential(app, &hash).await.map_err(|e| {
                e.log();
                KeyFailure { reason: KeyRefusal::Unavailable, key: None }
            })?;
            let loaded = loaded.map(Arc::new);
            // A revocation during the load must not be undone by caching what was read before it.
            app.credentials.store_key(hash, loaded.clone(), epoch);
            loaded
        }
    };
    let Some(key) = found else {
        return Err(not_found());
    };
    let now = app.clock.now_ms();
    let fail = |reason| Err(KeyFailure { reason, key: Some(key.clone()) });
    if key.revoked_at.is_some() {
        return fail(KeyRefusal::Revoked);
    }
    if key.expires_at.is_some_and(|t| t <= now) || key.secret_expires_at.is_some_and(|t| t <= now) {
        return fail(KeyRefusal::Expired);
    }
    if !key.allows_ip(ip) {
        return fail(KeyRefusal::IpNotAllowed);
    }
    Ok(key)
}

/// Resolves a session token (through the per-node cache) into a principal for the organization
/// named by `X-Organization-Id`, or the user's personal organization.
async fn session_principal(app: &App, token: &str, ip: Option<IpAddr>, org_header: Option<&str>) -> Result<Principal> {
    let hash = session_hash(&app.secret, token);
    let cached: Option<Arc<SessionCredential>> = match app.credentials.session(&hash) {
        Some(hit) => hit,
        None => {
            let epoch = app.credentials.epoch();
            let loaded = crate::accounts::service::load_session_credential(app, &hash).await?.map(Arc::new);
            app.credentials.store_session(hash, loaded.clone(), epoch);
            loaded
        }
    };
    let Some(auth) = cached else {
        return Err(Error::unauthenticated("invalid or revoked session token"));
    };
    if auth.expires_at <= app.clock.now_ms() {
        return Err(Error::unauthenticated("session expired; use refreshSession"));
    }
    let org_id = match org_header {
        None => auth.personal_org_id.clone(),
        Some(h) => h.parse::<OrgId>().map_err(|_| Error::bad_input("X-Organization-Id", "not an organization id"))?,
    };
    let membership = auth.memberships.iter().find(|(o, _, _)| *o == org_id);
    let (role, scopes) = match membership {
        Some((_, role, _)) => (Some(*role), role.scopes()),
        None if auth.is_platform_admin && org_header.is_some() => {
            // Platform administrators see every organization, read-only unless they are members.
            if !crate::accounts::service::org_exists(app, &org_id).await? {
                return Err(Error::NotFound("organization"));
            }
            (None, Role::Viewer.scopes())
        }
        None => return Err(Error::NotFound("organization")),
    };
    Ok(Principal {
        actor: Actor::User { user_id: auth.user_id.clone(), session_id: auth.session_id.clone() },
        org_id,
        role,
        scopes: Arc::new(scopes),
        is_platform: auth.is_platform_admin,
        ip,
        rate_override: None,
    })
}

/// Resolves an OAuth access token (through the per-node cache) into the app's principal on the
/// installing organization, with the granted scopes.
async fn token_principal(app: &App, token: &str, bearer: &Bearer<'_>) -> Result<Principal> {
    let invalid = || Error::unauthenticated("invalid, expired or revoked access token");
    if token.len() > 200 {
        return Err(invalid());
    }
    let hash = crate::oauth::installations::token_hash(app, token);
    let cached: Option<Arc<TokenCredential>> = match app.credentials.token(&hash) {
        Some(hit) => hit,
        None => {
            let epoch = app.credentials.epoch();
            let loaded = crate::oauth::tokens::load_access_token(app, &hash).await?.map(Arc::new);
            app.credentials.store_token(hash, loaded.clone(), epoch);
            loaded
        }
    };
    let Some(t) = cached else {
        return Err(invalid());
    };
    if t.revoked || t.expires_at <= app.clock.now_ms() {
        return Err(invalid());
    }
    if bearer.organization.is_some_and(|h| h != t.org_id.as_str()) {
        return Err(Error::forbidden("an access token acts only for the organization that installed the app"));
    }
    Ok(Principal {
        actor: Actor::OAuthApp {
            app_id: t.app_id.clone(),
            installation_id: t.installation_id.clone(),
            user_id: t.user_id.clone(),
        },
        org_id: t.org_id.clone(),
        role: None,
        scopes: t.scopes.clone(),
        is_platform: false,
        ip: bearer.ip,
        rate_override: t.rate_override.clone(),
    })
}

/// Clears OAuth access tokens from every node's credential cache (revocation, uninstall).
pub async fn forget_tokens(app: &App, hashes: Vec<String>) {
    for h in &hashes {
        app.credentials.forget_token(h);
    }
    if !hashes.is_empty() {
        app.bus.publish(BusMessage::InvalidateTokens { hashes }).await;
    }
}

/// Clears API key secrets from every node's credential cache (revoke, roll, update, delete).
pub async fn forget_keys(app: &App, hashes: Vec<String>) {
    for h in &hashes {
        app.credentials.forget_key(h);
    }
    if !hashes.is_empty() {
        app.bus.publish(BusMessage::InvalidateKeys { hashes }).await;
    }
}

/// Clears a session from every node's credential cache (logout, refresh, new memberships).
pub async fn forget_session(app: &App, token_hash: String) {
    app.credentials.forget_session(&token_hash);
    app.bus.publish(BusMessage::InvalidateSession { token_hash }).await;
}

//! Who is asking: the `Principal` every service takes, the scope vocabulary, roles, and the
//! turning of a bearer credential (API key or session token) into a principal. Credentials are
//! looked up by keyed hash through short-lived per-node caches; revocation clears those caches on
//! every node through the bus.

use std::net::IpAddr;
use std::sync::Arc;

use crate::app::App;
use crate::error::{Error, Result};
use crate::platform::ids::{KeyId, OrgId, SessionId, UserId};

/// The scope vocabulary shared by API keys and OAuth tokens (SPEC §2). `*` grants everything;
/// a `:write` scope implies the `:read` scope of the same resource.
pub const SCOPES: &[&str] = &[
    "keys:read",
    "keys:write",
    "keys:verify",
    "apps:read",
    "apps:write",
    "webhooks:read",
    "webhooks:write",
    "events:publish",
    "usage:read",
    "usage:write",
    "billing:read",
    "billing:write",
    "org:read",
    "org:write",
    "user:read",
    "user:write",
    "marketplace:read",
    "marketplace:write",
];

/// Checks a requested scope list: each entry known (or `*`), no duplicates. Returns it sorted.
pub fn validate_scopes(field: &str, scopes: &[String]) -> Result<Vec<String>> {
    if scopes.is_empty() {
        return Err(Error::bad_input(field, "at least one scope is required"));
    }
    let mut out = Vec::with_capacity(scopes.len());
    for s in scopes {
        if s != "*" && !SCOPES.contains(&s.as_str()) {
            return Err(Error::bad_input(field, format!("unknown scope `{s}`; known scopes: * {}", SCOPES.join(" "))));
        }
        if !out.contains(s) {
            out.push(s.clone());
        }
    }
    out.sort();
    Ok(out)
}

/// Whether a granted scope list allows `wanted`.
pub fn scopes_allow(granted: &[String], wanted: &str) -> bool {
    granted.iter().any(|g| {
        g == "*"
            || g == wanted
            || (wanted.ends_with(":read") && g.strip_suffix(":write") == wanted.strip_suffix(":read"))
    })
}

/// Membership roles (seed 003). Stored now; managed in a later capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, async_graphql::Enum)]
pub enum Role {
    /// Full control, including deleting the organization and managing owners.
    Owner,
    /// Manages members, keys, apps and webhooks.
    Admin,
    /// Builds: keys, apps, webhooks, usage.
    Member,
    /// Sees and pays the bill.
    Billing,
    /// Reads everything, changes nothing.
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "OWNER",
            Role::Admin => "ADMIN",
            Role::Member => "MEMBER",
            Role::Billing => "BILLING",
            Role::Viewer => "VIEWER",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Some(match s {
            "OWNER" => Role::Owner,
            "ADMIN" => Role::Admin,
            "MEMBER" => Role::Member,
            "BILLING" => Role::Billing,
            "VIEWER" => Role::Viewer,
            _ => return None,
        })
    }

    /// What a signed-in user with this role may do, in the scope vocabulary.
    pub fn scopes(self) -> Vec<String> {
        let list: &[&str] = match self {
            Role::Owner | Role::Admin => &["*"],
            Role::Member => &[
                "keys:write",
                "keys:verify",
                "apps:write",
                "webhooks:write",
                "events:publish",
                "usage:write",
                "billing:read",
                "org:read",
                "user:write",
                "marketplace:write",
            ],
            Role::Billing => {
                &["billing:write", "usage:read", "org:read", "user:write", "keys:read", "marketplace:read"]
            }
            Role::Viewer => &[
                "keys:read",
                "apps:read",
                "webhooks:read",
                "usage:read",
                "billing:read",
                "org:read",
                "user:write",
                "marketplace:read",
            ],
        };
        list.iter().map(|s| s.to_string()).collect()
    }
}

/// The kind of credential behind a request.
#[derive(Debug, Clone)]
pub enum Actor {
    User { user_id: UserId, session_id: SessionId },
    ApiKey { key_id: KeyId, created_by: Option<UserId> },
}

/// Who is asking, for which organization, with what rights.
#[derive(Debug, Clone)]
pub struct Principal {
    pub actor: Actor,
    pub org_id: OrgId,
    pub role: Option<Role>,
    pub scopes: Arc<Vec<String>>,
    /// A platform administrator (user flag), or a key of a platform organization (a service key).
    pub is_platform: bool,
    pub ip: Option<IpAddr>,
    /// An API key's own rate limits, replacing its plan's where set.
    pub rate_override: Option<Arc<crate::limits::policy::Override>>,
}

impl Principal {
    pub fn has_scope(&self, scope: &str) -> bool {
        scopes_allow(&self.scopes, scope)
    }

    pub fn require_scope(&self, scope: &str) -> Result<()> {
        if self.has_scope(scope) {
            Ok(())
        } else {
            Err(Error::forbidden(format!("this credential lacks the `{scope}` scope")))
        }
    }

    /// The API key behind the request, if it was made with one.
    pub fn key_id(&self) -> Option<&KeyId> {
        match &self.actor {
            Actor::ApiKey { key_id, .. } => Some(key_id),
            Actor::User { .. } => None,
        }
    }

    pub fn user_id(&self) -> Option<&UserId> {
        match &self.actor {
            Actor::User { user_id, .. } => Some(user_id),
            Actor::ApiKey { .. } => None,
        }
    }

    /// `usr_…` or `key_…`: the id recorded as the actor in audit entries.
    pub fn actor_id(&self) -> String {
        match &self.actor {
            Actor::User { user_id, .. } => user_id.to_string(),
            Actor::ApiKey { key_id, .. } => key_id.to_string(),
        }
    }

    pub fn actor_type(&self) -> &'static str {
        match &self.actor {
            Actor::User { .. } => "user",
            Actor::ApiKey { .. } => "api_key",
        }
    }
}

/// Turns a bearer token into a principal. `org_header` is the `X-Organization-Id` a session
/// request may name. Errors are `UNAUTHENTICATED` (unknown, revoked, expired) or `FORBIDDEN`
/// (IP not allowed, not a member of the named organization).
pub async fn authenticate(app: &App, token: &str, ip: Option<IpAddr>, org_header: Option<&str>) -> Result<Principal> {
    authenticate_as(app, token, ip, org_header, true).await
}

/// Re-checks a credential already in use (a WebSocket connection) without counting a request.
pub async fn recheck(app: &App, token: &str, ip: Option<IpAddr>, org_header: Option<&str>) -> Result<Principal> {
    authenticate_as(app, token, ip, org_header, false).await
}

async fn authenticate_as(
    app: &App,
    token: &str,
    ip: Option<IpAddr>,
    org_header: Option<&str>,
    count: bool,
) -> Result<Principal> {
    if crate::keys::service::looks_like_key(token) {
        let key = crate::keys::service::check_key(app, token, ip).await.map_err(|f| f.into_error())?;
        if org_header.is_some_and(|h| h != key.org_id.as_str()) {
            return Err(Error::forbidden("an API key acts only for its own organization"));
        }
        if count {
            app.key_usage.record(&key.key_id, app.clock.now_ms(), ip);
        }
        return Ok(Principal {
            actor: Actor::ApiKey { key_id: key.key_id.clone(), created_by: key.created_by.clone() },
            org_id: key.org_id.clone(),
            role: None,
            scopes: key.scopes.clone(),
            is_platform: key.is_platform,
            ip,
            rate_override: key.rate_override.clone(),
        });
    }
    if token.starts_with(crate::accounts::service::SESSION_PREFIX) {
        return crate::accounts::service::session_principal(app, token, ip, org_header).await;
    }
    Err(Error::unauthenticated("unrecognised credential: expected an API key (gk_live_…/gk_test_…) or a session token"))
}

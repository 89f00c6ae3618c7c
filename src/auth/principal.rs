//! Who is asking: the `Principal` every service takes — the actor behind the credential, the
//! organization it acts for, its role and scopes. Plain data: built only by
//! [`authenticate`](super::authenticate), read everywhere.

use std::net::IpAddr;
use std::sync::Arc;

use super::scopes::scopes_allow;
use crate::error::{Error, Result};
use crate::platform::ids::{AppId, InstallationId, KeyId, OrgId, SessionId, UserId};

/// Membership roles. What each may do is the matrix below, in the scope vocabulary; services
/// check the scopes, and the few rules that depend on the role itself (managing owners, deleting
/// the organization, transferring ownership) check [`Principal::is_owner`].
///
/// | | OWNER | ADMIN | MEMBER | BILLING | VIEWER |
/// |---|---|---|---|---|---|
/// | manage members and roles, invite (`org:write`) | ✅ | ✅ (not owners) | ✗ | ✗ | ✗ |
/// | manage API keys, webhooks, apps, installs | ✅ | ✅ | ✅ | ✗ | ✗ |
/// | view and manage billing (`billing:*`) | ✅ | ✅ | ✗ | ✅ | ✗ |
/// | read keys (masked), usage, events, deliveries | ✅ | ✅ | ✅ | ✅ | ✅ |
/// | delete the organization, transfer ownership | ✅ | ✗ | ✗ | ✗ | ✗ |
#[derive(Debug, Clone, Copy, PartialEq, Eq, async_graphql::Enum)]
pub enum Role {
    /// Everything, including deleting the organization, managing owners and transferring
    /// ownership.
    Owner,
    /// Members (not owners), invitations, keys, webhooks, apps, installs and billing.
    Admin,
    /// Builds: keys, webhooks, apps and installs; reads usage, events and deliveries.
    Member,
    /// Sees and pays the bill; reads keys (masked), usage, events and deliveries.
    Billing,
    /// Reads keys (masked), usage, events and deliveries; changes nothing.
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

    /// What a signed-in user with this role may do, in the scope vocabulary (the matrix above).
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
                "org:read",
                "user:write",
                "marketplace:write",
                "features:read",
            ],
            Role::Billing => &[
                "billing:write",
                "keys:read",
                "apps:read",
                "webhooks:read",
                "usage:read",
                "org:read",
                "user:write",
                "marketplace:read",
                "features:read",
            ],
            Role::Viewer => &[
                "keys:read",
                "apps:read",
                "webhooks:read",
                "usage:read",
                "org:read",
                "user:write",
                "marketplace:read",
                "features:read",
            ],
        };
        list.iter().map(|s| s.to_string()).collect()
    }
}

/// The kind of credential behind a request.
#[derive(Debug, Clone)]
pub enum Actor {
    User {
        user_id: UserId,
        session_id: SessionId,
    },
    ApiKey {
        key_id: KeyId,
        created_by: Option<UserId>,
    },
    /// A marketplace app with an OAuth access token: installed in the organization (on behalf
    /// of the user who authorized it), or acting as itself (client credentials, no user).
    OAuthApp {
        app_id: AppId,
        installation_id: Option<InstallationId>,
        user_id: Option<UserId>,
    },
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

    /// A signed-in platform administrator (a service key is platform-wide too, but is not one).
    pub fn is_platform_admin(&self) -> bool {
        self.is_platform && self.user_id().is_some()
    }

    /// A signed-in OWNER of the organization: the only one who may manage owners, transfer
    /// ownership or delete the organization (never a key or an app, whatever their scopes).
    pub fn is_owner(&self) -> bool {
        self.role == Some(Role::Owner) && self.user_id().is_some()
    }

    /// Refuses anyone but a signed-in OWNER, saying what needs one.
    pub fn require_owner(&self, what: &str) -> Result<()> {
        if self.is_owner() {
            Ok(())
        } else {
            Err(Error::forbidden(format!("only an OWNER of the organization may {what}")))
        }
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
            Actor::User { .. } | Actor::OAuthApp { .. } => None,
        }
    }

    /// The signed-in user behind a session. (An app acting for a user is not that user: see
    /// [`Principal::app_id`].)
    pub fn user_id(&self) -> Option<&UserId> {
        match &self.actor {
            Actor::User { user_id, .. } => Some(user_id),
            Actor::ApiKey { .. } | Actor::OAuthApp { .. } => None,
        }
    }

    /// The marketplace app behind an OAuth access token.
    pub fn app_id(&self) -> Option<&AppId> {
        match &self.actor {
            Actor::OAuthApp { app_id, .. } => Some(app_id),
            Actor::User { .. } | Actor::ApiKey { .. } => None,
        }
    }

    /// `usr_…`, `key_…` or `app_…`: the id recorded as the actor in audit entries.
    pub fn actor_id(&self) -> String {
        match &self.actor {
            Actor::User { user_id, .. } => user_id.to_string(),
            Actor::ApiKey { key_id, .. } => key_id.to_string(),
            Actor::OAuthApp { app_id, .. } => app_id.to_string(),
        }
    }

    pub fn actor_type(&self) -> &'static str {
        match &self.actor {
            Actor::User { .. } => "user",
            Actor::ApiKey { .. } => "api_key",
            Actor::OAuthApp { .. } => "oauth_app",
        }
    }
}

//! What a bearer credential resolves to — [`KeyCredential`], [`SessionCredential`],
//! [`TokenCredential`] — and the
//! per-node caches of them, by keyed hash. State only: filled by [`authenticate`](super::authenticate)
//! after a database read, cleared by invalidations from any node (bus messages), never reading the
//! database itself.
//!
//! A fill that started before an invalidation must not be stored (it may hold what the
//! invalidation removed): every invalidation bumps an epoch, and a fill is stored only when the
//! epoch it read before its load is still current.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ipnet::IpNet;

use super::principal::Role;
use crate::limits::policy::Override;
use crate::platform::bus::BusMessage;
use crate::platform::cache::{FastCache, fast_cache};
use crate::platform::ids::{AppId, InstallationId, KeyId, OrgId, SessionId, UserId};

/// What an API key secret resolves to.
#[derive(Debug, Clone)]
pub struct KeyCredential {
    pub key_id: KeyId,
    pub org_id: OrgId,
    pub name: String,
    pub environment: String,
    pub scopes: Arc<Vec<String>>,
    pub allowed_ips: Vec<IpNet>,
    pub metadata: serde_json::Value,
    pub expires_at: Option<i64>,
    /// When this secret (not the key) stops working: set on the older secrets by a roll.
    pub secret_expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub created_by: Option<UserId>,
    /// A key of a platform organization: a service key.
    pub is_platform: bool,
    pub rate_override: Option<Arc<Override>>,
}

impl KeyCredential {
    /// Whether `ip` may use the key (an empty allow-list allows every address).
    pub fn allows_ip(&self, ip: Option<IpAddr>) -> bool {
        self.allowed_ips.is_empty() || ip.is_some_and(|ip| self.allowed_ips.iter().any(|n| n.contains(&ip)))
    }
}

/// What a session token resolves to.
#[derive(Debug, Clone)]
pub struct SessionCredential {
    pub session_id: SessionId,
    pub user_id: UserId,
    pub expires_at: i64,
    pub is_platform_admin: bool,
    pub personal_org_id: OrgId,
    /// Every organization the user belongs to, with the role and whether it is a platform one.
    pub memberships: Vec<(OrgId, Role, bool)>,
}

/// What an OAuth access token resolves to.
#[derive(Debug, Clone)]
pub struct TokenCredential {
    pub app_id: AppId,
    /// The installation (grant) behind it; `None` for client credentials.
    pub installation_id: Option<InstallationId>,
    pub org_id: OrgId,
    /// The user who authorized the app; `None` for client credentials.
    pub user_id: Option<UserId>,
    pub scopes: Arc<Vec<String>>,
    pub expires_at: i64,
    /// Revoked, or its installation uninstalled.
    pub revoked: bool,
    /// The app's own limits, within the organization's plan.
    pub rate_override: Option<Arc<Override>>,
}

/// A cached lookup: `None` inside means "no such credential" (negative results are cached too).
pub type Cached<T> = Option<Arc<T>>;

/// The per-node credential caches.
pub struct Credentials {
    keys: FastCache<String, Cached<KeyCredential>>,
    sessions: FastCache<String, Cached<SessionCredential>>,
    tokens: FastCache<String, Cached<TokenCredential>>,
    epoch: AtomicU64,
}

impl Credentials {
    /// Caches whose entries live `ttl` at most (a bound on staleness should an invalidation be lost).
    pub fn new(ttl: Duration) -> Self {
        Self {
            keys: fast_cache(100_000, Some(ttl)),
            sessions: fast_cache(100_000, Some(ttl)),
            tokens: fast_cache(100_000, Some(ttl)),
            epoch: AtomicU64::new(0),
        }
    }

    /// The epoch to read before a load whose result will be stored.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    pub fn key(&self, hash: &str) -> Option<Cached<KeyCredential>> {
        self.keys.get(hash)
    }

    pub fn session(&self, hash: &str) -> Option<Cached<SessionCredential>> {
        self.sessions.get(hash)
    }

    pub fn token(&self, hash: &str) -> Option<Cached<TokenCredential>> {
        self.tokens.get(hash)
    }

    /// Stores an access-token lookup made after `epoch` was read, unless an invalidation came since.
    pub fn store_token(&self, hash: String, value: Cached<TokenCredential>, epoch: u64) {
        if self.epoch() == epoch {
            self.tokens.insert(hash, value);
        }
    }

    pub fn forget_token(&self, hash: &str) {
        self.bump();
        self.tokens.invalidate(hash);
    }

    /// Stores a key lookup made after `epoch` was read, unless an invalidation came since.
    pub fn store_key(&self, hash: String, value: Cached<KeyCredential>, epoch: u64) {
        if self.epoch() == epoch {
            self.keys.insert(hash, value);
        }
    }

    /// Stores a session lookup made after `epoch` was read, unless an invalidation came since.
    pub fn store_session(&self, hash: String, value: Cached<SessionCredential>, epoch: u64) {
        if self.epoch() == epoch {
            self.sessions.insert(hash, value);
        }
    }

    fn bump(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
    }

    pub fn forget_key(&self, hash: &str) {
        self.bump();
        self.keys.invalidate(hash);
    }

    pub fn forget_session(&self, hash: &str) {
        self.bump();
        self.sessions.invalidate(hash);
    }

    pub fn forget_all(&self) {
        self.bump();
        self.keys.invalidate_all();
        self.sessions.invalidate_all();
        self.tokens.invalidate_all();
    }

    /// Applies a bus message from any node: invalidations, and a resync (messages may have been
    /// missed) drops everything rather than serve a revoked credential.
    pub fn on_bus(&self, msg: &BusMessage) {
        match msg {
            BusMessage::InvalidateKeys { hashes } => hashes.iter().for_each(|h| self.forget_key(h)),
            BusMessage::InvalidateSession { token_hash } => self.forget_session(token_hash),
            BusMessage::InvalidateTokens { hashes } => hashes.iter().for_each(|h| self.forget_token(h)),
            BusMessage::Resync => self.forget_all(),
            BusMessage::Event(_)
            | BusMessage::DeliveryAttempt(_)
            | BusMessage::InvalidatePlans
            | BusMessage::InvalidateEventTypes
            | BusMessage::InvalidateFeatureFlags
            | BusMessage::OrgStateChanged { .. } => {}
        }
    }
}

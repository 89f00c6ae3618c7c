//! The application as data: configuration, the infrastructure handles chosen once at start-up
//! (SQLite or PostgreSQL, in-process or Redis bus and limiter) and each component's per-node
//! state, shared by all requests and workers.
//!
//! Nothing here does anything: building it, the bus listener that feeds each component its
//! messages, the flushes and the background tasks live in the composition root
//! (`server::compose`). The components `App` holds never take `App` back — the services that
//! use them do.

use crate::alerts::Notices;
use crate::auth::Credentials;
use crate::config::Config;
use crate::events::publish::PublishQueue;
use crate::events::types::EventTypes;
use crate::graphql::documents::Documents;
use crate::keys::counters::KeyUsage;
use crate::limits::limiter::Limiter;
use crate::limits::operation_costs::OperationCosts;
use crate::limits::plans::Plans;
use crate::platform::bus::Bus;
use crate::platform::clock::SharedClock;
use crate::platform::crypto::ServerSecret;
use crate::platform::db::Db;
use crate::usage::meter::Meter;
use crate::usage::recorder::Recorder;
use crate::webhooks::runtime::Webhooks;

pub struct App {
    pub config: Config,
    pub db: Db,
    pub bus: Bus,
    pub clock: SharedClock,
    pub secret: ServerSecret,
    pub started_at_ms: i64,
    /// API keys and sessions by keyed hash, per node.
    pub credentials: Credentials,
    /// Per-key usage counters waiting for the flush.
    pub key_usage: KeyUsage,
    pub limiter: Limiter,
    /// Plans by organization and the policies built from them, per node.
    pub plans: Plans,
    /// Operator event types with their compiled schemas, per node.
    pub event_types: EventTypes,
    /// The group-commit writer of published operator events.
    pub published: PublishQueue,
    /// Per-operation costs, reloaded when any node changes them.
    pub operation_costs: OperationCosts,
    /// Parsed GraphQL documents by query text.
    pub documents: Documents,
    /// Usage records of API calls, buffered for the batched writer.
    pub meter: Meter,
    /// The group-commit writer of `recordUsage` events.
    pub recorder: Recorder,
    /// Alert triggers waiting to be stored.
    pub notices: Notices,
    /// The webhook HTTP client, SSRF guard and worker wake-up.
    pub webhooks: Webhooks,
    /// When this node last pruned expired OAuth codes and tokens (epoch ms).
    pub oauth_pruned_at_ms: std::sync::atomic::AtomicI64,
    /// When this node last purged deleted organizations past their export window (epoch ms).
    pub orgs_purged_at_ms: std::sync::atomic::AtomicI64,
    /// Whether this node is writing an organization export now.
    pub exports_running: std::sync::atomic::AtomicBool,
    /// When this node last looked for waiting or abandoned exports (epoch ms).
    pub exports_checked_at_ms: std::sync::atomic::AtomicI64,
    /// The payment provider (the built-in test provider).
    pub payments: std::sync::Arc<dyn crate::billing::provider::PaymentProvider>,
    /// When this node last closed billing periods and charged due invoices (epoch ms).
    pub billing_ran_at_ms: std::sync::atomic::AtomicI64,
    /// Outgoing mail: SMTP, or `.eml` files in the data directory.
    pub mailer: crate::platform::mail::Mailer,
    /// Addresses blocked for failed credentials, per node.
    pub blocked: crate::limits::blocked::BlockedAddresses,
    /// Prometheus metrics of this app (`GET /metrics`).
    pub metrics: crate::platform::metrics::Metrics,
    /// Organizations that may not act (suspended, deleted), per node.
    pub org_states: crate::accounts::org_states::OrgStates,
    /// Every feature flag with its overrides, per node.
    pub features: crate::features::cache::FeatureFlags,
}

impl App {
    /// The URL clients reach this server at, without a trailing slash (`GANTRY_PUBLIC_URL`, else
    /// `http://` and the bind address): the OAuth issuer and the base of links in mail.
    pub fn public_url(&self) -> String {
        match &self.config.public_url {
            Some(u) => u.trim_end_matches('/').to_string(),
            None => format!("http://{}", self.config.bind),
        }
    }
}

/// Options that tests (and embedders) set beside the configuration.
#[derive(Default)]
pub struct AppOptions {
    pub clock: Option<SharedClock>,
}

//! The webhook runtime of a node: the outbound HTTP client behind its SSRF guard, the request
//! slots, the worker's wake-up signal, and the queue of successes waiting for group commit. State
//! only: the loop in `delivery` drives it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::record::{Success, Written};
use super::ssrf::{Guard, GuardedResolver};
use crate::platform::bus::BusMessage;
use crate::platform::group_commit::GroupCommit;

const USER_AGENT: &str = concat!("Gantry-Webhooks/", env!("CARGO_PKG_VERSION"));

/// The webhook runtime of a node: the HTTP client with its SSRF guard, and the wake-up signal.
pub struct Webhooks {
    pub guard: Guard,
    pub(super) client: reqwest::Client,
    pub(super) wake: tokio::sync::Notify,
    /// Requests in flight on this node.
    pub(super) slots: Arc<tokio::sync::Semaphore>,
    /// When this node last ran the retention job.
    pub last_prune_ms: std::sync::atomic::AtomicI64,
    /// Set when events may be waiting in the outbox (an event was raised on some node); the loop
    /// runs the dispatcher when it is set, after a full batch, and every poll interval.
    pub(super) events_pending: std::sync::atomic::AtomicBool,
    /// When this node last claimed deliveries.
    pub(super) last_claim: parking_lot::Mutex<Instant>,
    /// The last `work` left free slots unfilled for now (gathering more before a claim, or too
    /// soon after the last one): look again after `CLAIM_GATHER`, not a whole poll interval.
    pub(super) gathering: std::sync::atomic::AtomicBool,
    /// Deliveries leased to this node and ready to start, oldest first (`delivery::work`).
    pub(super) ready: parking_lot::Mutex<std::collections::VecDeque<super::delivery::Ready>>,
    /// Set when due deliveries that no node holds may wait in the database (a fan-out left new
    /// ones unleased, or a claim came back full): they are claimed before new ones are leased.
    pub(super) backlog: std::sync::atomic::AtomicBool,
    /// Plain successes waiting to be written together.
    pub(super) successes: GroupCommit<Success, Written>,
    /// Attempts whose outcome the database refused at least once (each is tried again).
    pub record_failures: std::sync::atomic::AtomicU64,
}

impl Webhooks {
    pub fn new(config: &crate::config::Config) -> anyhow::Result<Self> {
        // One process-wide TLS provider (ring); a second install attempt is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let guard = Guard::new(config.webhook_allowed_networks.clone());
        let client = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver(guard.clone())))
            .connect_timeout(Duration::from_secs(10))
            // One endpoint at full concurrency keeps its connections between bursts.
            .pool_max_idle_per_host(config.webhook_concurrency)
            .build()
            .map_err(|e| anyhow::anyhow!("webhook HTTP client: {e}"))?;
        Ok(Self {
            guard,
            client,
            wake: tokio::sync::Notify::new(),
            slots: Arc::new(tokio::sync::Semaphore::new(config.webhook_concurrency)),
            last_prune_ms: Default::default(),
            successes: GroupCommit::default(),
            ready: Default::default(),
            // Whatever a previous run left is claimed first.
            backlog: std::sync::atomic::AtomicBool::new(true),
            record_failures: Default::default(),
            last_claim: parking_lot::Mutex::new(Instant::now()),
            gathering: Default::default(),
            events_pending: std::sync::atomic::AtomicBool::new(true),
        })
    }

    /// Tells this node's worker there may be work (a retry, a freed slot).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Tells this node's worker that events were raised: run the dispatcher.
    pub fn events_arrived(&self) {
        self.events_pending.store(true, std::sync::atomic::Ordering::Release);
        self.wake.notify_one();
    }

    /// Applies a bus message from any node: raised events (or possibly missed ones, after a
    /// resync) mean the outbox may hold work for the dispatcher.
    pub fn on_bus(&self, msg: &BusMessage) {
        if matches!(msg, BusMessage::Event(_) | BusMessage::Resync) {
            self.events_arrived();
        }
    }
}

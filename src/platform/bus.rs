//! The bus: real-time fan-out of events and cache invalidations to every node.
//!
//! In-process it is a tokio broadcast channel. With Redis, `publish` goes to a Redis pub/sub
//! channel and one listener task per node forwards what arrives into the local broadcast, so a
//! subscriber on node A sees an event raised on node B. The bus is best-effort by design: events
//! are durable in the outbox table, the bus only makes them immediate.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::platform::ids::{AttemptId, DeliveryId, EventId, OrgId, WebhookId};

/// An event as subscribers see it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventEnvelope {
    pub id: String,
    pub org_id: String,
    pub event_type: String,
    pub occurred_at_ms: i64,
    pub data: serde_json::Value,
}

/// One webhook delivery attempt's outcome, as `webhookDelivered` subscribers see it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AttemptEnvelope {
    pub attempt_id: AttemptId,
    pub org_id: OrgId,
    pub endpoint_id: WebhookId,
    pub delivery_id: DeliveryId,
    pub event_id: EventId,
    pub event_type: String,
    pub attempt: i64,
    /// The delivery's status after this attempt: `pending` (a retry is scheduled), `succeeded`, `failed`.
    pub status: String,
    pub response_status: Option<i64>,
    pub error_kind: Option<String>,
    pub latency_ms: i64,
    pub next_attempt_at_ms: Option<i64>,
    pub at_ms: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BusMessage {
    /// An organization event (also in the outbox table).
    Event(EventEnvelope),
    /// Drop these key hashes from every node's credential cache (revoke, roll, update, delete).
    InvalidateKeys { hashes: Vec<String> },
    /// Drop this session from every node's credential cache (logout, refresh).
    InvalidateSession { token_hash: String },
    /// Drop these OAuth access-token hashes from every node's credential cache (revocation,
    /// a revoked grant, an uninstall).
    InvalidateTokens { hashes: Vec<String> },
    /// Plans or an organization's plan changed: drop every node's plan cache.
    InvalidatePlans,
    /// An operator event type was created, changed or archived: drop every node's type cache.
    InvalidateEventTypes,
    /// A feature flag or an override changed: drop every node's flags.
    InvalidateFeatureFlags,
    /// An organization was suspended, unsuspended or deleted: every node refuses (or admits) its
    /// credentials and pauses (or resumes) its webhooks.
    OrgStateChanged { org_id: String, state: Option<crate::accounts::org_states::Denial> },
    /// The outcome of one webhook delivery attempt (`webhookDelivered`).
    DeliveryAttempt(AttemptEnvelope),
    /// Local only: the Redis subscription was re-established and messages may have been missed
    /// meanwhile, so every cache must be dropped.
    Resync,
}

const CAPACITY: usize = 4096;

#[derive(Clone)]
pub struct Bus {
    local: broadcast::Sender<Arc<BusMessage>>,
    redis: Option<RedisBus>,
}

#[derive(Clone)]
struct RedisBus {
    conn: redis::aio::ConnectionManager,
    channel: String,
    listening: Arc<AtomicBool>,
}

impl Bus {
    /// An in-process bus (one node).
    pub fn memory() -> Self {
        let (local, _) = broadcast::channel(CAPACITY);
        Self { local, redis: None }
    }

    /// A bus over Redis pub/sub on `{prefix}:bus`; spawns the listener task.
    pub async fn redis(client: redis::Client, prefix: &str) -> anyhow::Result<Self> {
        let (local, _) = broadcast::channel(CAPACITY);
        let conn = client.get_connection_manager().await?;
        let channel = format!("{prefix}:bus");
        let listening = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        tokio::spawn(listen(client, channel.clone(), local.clone(), listening.clone(), ready_tx));
        // Wait for the first subscription so a message published right after start-up is seen.
        let _ = tokio::time::timeout(Duration::from_secs(5), ready_rx).await;
        Ok(Self { local, redis: Some(RedisBus { conn, channel, listening }) })
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<BusMessage>> {
        self.local.subscribe()
    }

    /// Sends a message to every node (this one included).
    pub async fn publish(&self, msg: BusMessage) {
        match &self.redis {
            None => {
                let _ = self.local.send(Arc::new(msg));
            }
            Some(r) => {
                let payload = match serde_json::to_string(&msg) {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::error!(error = %e, "bus message did not serialise");
                        return;
                    }
                };
                let mut conn = r.conn.clone();
                let sent: redis::RedisResult<i64> =
                    redis::cmd("PUBLISH").arg(&r.channel).arg(payload).query_async(&mut conn).await;
                if let Err(e) = sent {
                    // Still reach this node's subscribers. Other nodes miss it: their credential
                    // caches expire within GANTRY_KEY_CACHE_TTL_SECS, and their listeners resync
                    // (drop every cache) when their own Redis connection comes back.
                    tracing::warn!(error = %e, "Redis publish failed; delivering locally only");
                    let _ = self.local.send(Arc::new(msg));
                }
            }
        }
    }

    pub fn backend_name(&self) -> &'static str {
        if self.redis.is_some() { "redis" } else { "memory" }
    }

    /// Whether the bus can reach every node: always for memory, a live subscription for Redis.
    pub async fn check(&self) -> Result<(), String> {
        let Some(r) = &self.redis else { return Ok(()) };
        let mut conn = r.conn.clone();
        let pong: redis::RedisResult<String> = redis::cmd("PING").query_async(&mut conn).await;
        pong.map_err(|e| format!("redis: {e}"))?;
        if !r.listening.load(Ordering::SeqCst) {
            return Err("redis pub/sub listener is reconnecting".into());
        }
        Ok(())
    }
}

async fn listen(
    client: redis::Client,
    channel: String,
    local: broadcast::Sender<Arc<BusMessage>>,
    listening: Arc<AtomicBool>,
    ready: tokio::sync::oneshot::Sender<()>,
) {
    let mut ready = Some(ready);
    let mut backoff = Duration::from_millis(100);
    loop {
        match client.get_async_pubsub().await {
            Ok(mut pubsub) => match pubsub.subscribe(&channel).await {
                Ok(()) => {
                    listening.store(true, Ordering::SeqCst);
                    backoff = Duration::from_millis(100);
                    match ready.take() {
                        Some(r) => {
                            let _ = r.send(());
                        }
                        // A reconnection: invalidations published meanwhile were lost.
                        None => {
                            let _ = local.send(Arc::new(BusMessage::Resync));
                        }
                    }
                    let mut stream = pubsub.into_on_message();
                    while let Some(msg) = stream.next().await {
                        match serde_json::from_slice::<BusMessage>(msg.get_payload_bytes()) {
                            Ok(m) => {
                                let _ = local.send(Arc::new(m));
                            }
                            Err(e) => tracing::warn!(error = %e, "ignoring malformed bus message"),
                        }
                    }
                    listening.store(false, Ordering::SeqCst);
                    tracing::warn!("Redis pub/sub connection lost; reconnecting");
                }
                Err(e) => tracing::warn!(error = %e, "Redis SUBSCRIBE failed"),
            },
            Err(e) => tracing::warn!(error = %e, "Redis pub/sub connection failed"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

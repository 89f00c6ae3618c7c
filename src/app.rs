//! The application: configuration plus every infrastructure piece, chosen once at start-up
//! (SQLite or PostgreSQL, in-process or Redis bus) and shared by all requests and workers.

use std::sync::Arc;
use std::time::Duration;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::accounts::service::SessionAuth;
use crate::config::Config;
use crate::keys::service::KeyAuth;
use crate::keys::usage::KeyUsage;
use crate::platform::bus::{Bus, BusMessage};
use crate::platform::clock::{SharedClock, SystemClock};
use crate::platform::crypto::{self, ServerSecret};
use crate::platform::db::Db;
use crate::platform::db::schema::settings;
use crate::with_conn;

/// A per-node cache whose keys the server derives itself (keyed hashes, ids), hashed with foldhash
/// (randomly seeded per cache) rather than SipHash. The document cache, keyed by query text a
/// caller chooses, keeps SipHash.
pub type FastCache<K, V> = moka::sync::Cache<K, V, foldhash::fast::RandomState>;

fn fast() -> foldhash::fast::RandomState {
    foldhash::fast::RandomState::default()
}

pub struct App {
    pub config: Config,
    pub db: Db,
    pub bus: Bus,
    pub clock: SharedClock,
    pub secret: ServerSecret,
    pub key_cache: FastCache<String, Option<Arc<KeyAuth>>>,
    pub session_cache: FastCache<String, Option<Arc<SessionAuth>>>,
    pub key_usage: KeyUsage,
    /// Bumped by every credential invalidation: a cache fill that started before one is not stored.
    pub cache_epoch: std::sync::atomic::AtomicU64,
    pub limiter: crate::limits::limiter::Limiter,
    /// Plans by organization id, per node; cleared on every node when plans change.
    pub plan_cache: FastCache<String, Arc<crate::limits::model::PlanRow>>,
    pub anonymous_policy: Arc<crate::limits::policy::Policy>,
    /// Policies built from (plan id, plan version, key override): built once, never stale (an
    /// edited plan has a new version).
    pub policy_cache: FastCache<
        (crate::limits::service::PlanVersion, Option<crate::limits::policy::Override>),
        Arc<crate::limits::policy::Policy>,
    >,
    /// Parsed GraphQL documents by query text: clients repeat their queries, and parsing is a
    /// large share of a small request's cost.
    pub documents: moka::sync::Cache<String, crate::server::CachedDocument>,
    pub started_at_ms: i64,
    /// Usage records of API calls, buffered for the batched writer.
    pub meter: crate::usage::meter::Meter,
    /// The group-commit writer of `recordUsage` events.
    pub recorder: crate::usage::metered::Recorder,
    /// Quota events waiting to be written and published.
    pub notices: crate::usage::alerts::Notices,
    /// Per-operation costs, reloaded when any node changes them.
    pub operation_costs: parking_lot::RwLock<crate::limits::costs::Costs>,
    /// The webhook HTTP client, SSRF guard and worker wake-up.
    pub webhooks: crate::webhooks::delivery::Webhooks,
}

/// Options that tests (and embedders) set beside the configuration.
#[derive(Default)]
pub struct AppOptions {
    pub clock: Option<SharedClock>,
}

impl App {
    /// Connects to the database (migrating it), the bus and Redis, and loads the server secret.
    pub async fn build(config: Config, options: AppOptions) -> anyhow::Result<Arc<App>> {
        let clock = options.clock.unwrap_or_else(|| Arc::new(SystemClock));
        let url = match &config.database_url {
            Some(url) => url.clone(),
            None => config.data_dir.join("gantry.db").to_string_lossy().into_owned(),
        };
        let db = Db::connect(&url, config.database_pool_size, config.database_timeout_secs).await?;
        let applied = db.migrate().await?;
        tracing::info!(backend = db.backend_name(), applied, "database ready");

        let prefix = config.redis_prefix.clone();
        let (bus, redis) = match &config.redis_url {
            Some(url) => {
                let client = redis::Client::open(url.as_str()).map_err(|e| anyhow::anyhow!("REDIS_URL: {e}"))?;
                let conn = tokio::time::timeout(Duration::from_secs(5), client.get_connection_manager())
                    .await
                    .map_err(|_| anyhow::anyhow!("Redis did not answer within 5 s"))?
                    .map_err(|e| anyhow::anyhow!("cannot connect to Redis: {e}"))?;
                (Bus::redis(client, &prefix).await?, Some(conn))
            }
            None => (Bus::memory(), None),
        };
        tracing::info!(bus = bus.backend_name(), "bus ready");

        let secret = load_secret(&config, &db, clock.now_ms()).await?;
        let ttl = Duration::from_secs(config.key_cache_ttl_secs);
        let app = Arc::new(App {
            key_cache: moka::sync::Cache::builder().max_capacity(100_000).time_to_live(ttl).build_with_hasher(fast()),
            session_cache: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(ttl)
                .build_with_hasher(fast()),
            key_usage: KeyUsage::default(),
            cache_epoch: Default::default(),
            limiter: match &redis {
                Some(conn) => crate::limits::limiter::Limiter::Redis(crate::limits::limiter::RedisLimiter::new(
                    conn.clone(),
                    &config.redis_prefix,
                    config.limiter_fallback,
                )),
                None => crate::limits::limiter::Limiter::Memory(Default::default()),
            },
            plan_cache: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(60))
                .build_with_hasher(fast()),
            anonymous_policy: Arc::new(crate::limits::policy::Policy::anonymous()),
            policy_cache: moka::sync::Cache::builder().max_capacity(10_000).build_with_hasher(fast()),
            documents: moka::sync::Cache::builder().max_capacity(2_000).build(),
            started_at_ms: clock.now_ms(),
            meter: crate::usage::meter::Meter::new(config.usage_buffer, config.usage_batch_size),
            recorder: crate::usage::metered::Recorder::start(db.clone()),
            notices: Default::default(),
            operation_costs: Default::default(),
            webhooks: crate::webhooks::delivery::Webhooks::new(&config)?,
            config,
            db,
            bus,
            clock,
            secret,
        });
        app.spawn_invalidation_listener();
        crate::limits::costs::reload(&app).await.map_err(|e| {
            e.log();
            anyhow::anyhow!("could not load operation costs")
        })?;
        // Before serving: a restart must not give back what this month's quota already counted.
        crate::usage::reconcile_quotas(&app).await.map_err(|e| {
            e.log();
            anyhow::anyhow!("could not reconcile quota counters from usage roll-ups")
        })?;
        Ok(app)
    }

    /// Applies cache invalidations raised by any node.
    fn spawn_invalidation_listener(self: &Arc<Self>) {
        let mut rx = self.bus.subscribe();
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let msg = match rx.recv().await {
                    Ok(m) => m,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        // Missed invalidations: drop everything rather than serve a revoked key.
                        tracing::warn!(missed = n, "bus lagged; clearing credential caches");
                        if let Some(app) = weak.upgrade() {
                            app.invalidate_all_credentials();
                            // Missed events too, perhaps: read the outbox now, not at the next poll.
                            app.webhooks.events_arrived();
                        }
                        continue;
                    }
                    Err(_) => return,
                };
                let Some(app) = weak.upgrade() else { return };
                match &*msg {
                    BusMessage::InvalidateKeys { hashes } => {
                        for h in hashes {
                            app.invalidate_key(h);
                        }
                    }
                    BusMessage::InvalidateSession { token_hash } => app.invalidate_session(token_hash),
                    BusMessage::InvalidatePlans => {
                        app.plan_cache.invalidate_all();
                        reload_costs(&app);
                    }
                    BusMessage::Resync => {
                        app.webhooks.events_arrived();
                        app.invalidate_all_credentials();
                        app.plan_cache.invalidate_all();
                        reload_costs(&app);
                    }
                    BusMessage::Event(_) => app.webhooks.events_arrived(),
                    BusMessage::DeliveryAttempt(_) => {}
                }
            }
        });
    }

    fn bump_epoch(&self) {
        self.cache_epoch.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn invalidate_key(&self, hash: &str) {
        self.bump_epoch();
        self.key_cache.invalidate(hash);
    }

    pub fn invalidate_session(&self, hash: &str) {
        self.bump_epoch();
        self.session_cache.invalidate(hash);
    }

    pub fn invalidate_all_credentials(&self) {
        self.bump_epoch();
        self.key_cache.invalidate_all();
        self.session_cache.invalidate_all();
    }

    /// The current cache epoch, read before a cache fill starts.
    pub fn epoch(&self) -> u64 {
        std::sync::atomic::AtomicU64::load(&self.cache_epoch, std::sync::atomic::Ordering::SeqCst)
    }

    /// Whether no invalidation happened since `epoch`: only then may a fill be stored.
    pub fn epoch_unchanged(&self, epoch: u64) -> bool {
        self.epoch() == epoch
    }

    /// Writes buffered counters; called on a timer and at shutdown.
    pub async fn flush(&self) {
        if let Err(e) = self.key_usage.flush(self).await {
            e.log();
        }
        if let Err(e) = self.meter.drain(&self.db).await {
            e.log();
        }
        if let Err(e) = self.notices.drain(self).await {
            e.log();
        }
        self.limiter.sweep(self.clock.now_ms());
    }

    /// At shutdown: writes everything buffered (key counters, usage records, alert triggers),
    /// trying again with growing pauses while the database refuses, for up to `deadline`. Returns
    /// whether everything was written; what was not is logged as lost.
    pub async fn flush_before_exit(&self, deadline: std::time::Duration) -> bool {
        let give_up = tokio::time::Instant::now() + deadline;
        let mut pause = std::time::Duration::from_millis(100);
        loop {
            let mut failed = Vec::new();
            if let Err(e) = self.key_usage.flush(self).await {
                failed.push(("key usage counters", e));
            }
            if let Err(e) = self.meter.drain(&self.db).await {
                failed.push(("usage records", e));
            }
            if let Err(e) = self.notices.drain(self).await {
                failed.push(("alert triggers", e));
            }
            if failed.is_empty() {
                self.limiter.sweep(self.clock.now_ms());
                return true;
            }
            if tokio::time::Instant::now() + pause > give_up {
                for (what, e) in failed {
                    tracing::error!(error = %format!("{e:?}"), meter = ?self.meter.stats(), "shutdown: {what} could not be written before the deadline and are lost");
                }
                return false;
            }
            tracing::warn!(
                retry_in_ms = pause.as_millis() as u64,
                "shutdown: writing what is buffered failed; trying again"
            );
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(std::time::Duration::from_secs(5));
        }
    }
}

/// Reloads per-operation costs in the background (another node changed them).
fn reload_costs(app: &Arc<App>) {
    let app = app.clone();
    tokio::spawn(async move {
        if let Err(e) = crate::limits::costs::reload(&app).await {
            e.log();
        }
    });
}

/// The server secret: `GANTRY_SECRET` if set, else the one stored in the database, else a new one
/// generated now and stored (shared by every node on the same database).
async fn load_secret(config: &Config, db: &Db, now: i64) -> anyhow::Result<ServerSecret> {
    if let Some(s) = &config.secret {
        return Ok(ServerSecret::new(crate::config::decode_secret(s)?));
    }
    let fresh = hex::encode(crypto::random_bytes::<32>());
    let inserted = with_conn!(db, c => {
        diesel::insert_into(settings::table)
            .values((settings::name.eq("server_secret"), settings::value.eq(&fresh), settings::created_at.eq(now)))
            .on_conflict_do_nothing()
            .execute(c)
            .await?
    });
    if inserted == 1 {
        tracing::info!(
            "generated a new server secret and stored it in the database (set GANTRY_SECRET to manage it yourself)"
        );
    }
    let stored: String = with_conn!(db, c => {
        settings::table.find("server_secret").select(settings::value).first(c).await?
    });
    Ok(ServerSecret::new(hex::decode(stored)?))
}

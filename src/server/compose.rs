//! The composition root: builds the [`App`] from configuration (database, migrations, bus,
//! Redis, server secret, each component's state), feeds every component the bus messages it owns,
//! and flushes what components buffer — on a timer and at shutdown.

use std::sync::Arc;
use std::time::Duration;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::app::{App, AppOptions};
use crate::config::Config;
use crate::platform::bus::{Bus, BusMessage};
use crate::platform::clock::SystemClock;
use crate::platform::crypto::{self, ServerSecret};
use crate::platform::db::Db;
use crate::platform::db::schema::settings;
use crate::with_conn;

/// Connects to the database (migrating it), the bus and Redis, loads the server secret and builds
/// every component; then starts the bus listener and reads what must be known before serving
/// (per-operation costs, this month's quota counts).
pub async fn build(config: Config, options: AppOptions) -> anyhow::Result<Arc<App>> {
    let clock = options.clock.unwrap_or_else(|| Arc::new(SystemClock));
    let url = match &config.database_url {
        Some(url) => url.clone(),
        None => config.data_dir.join("gantry.db").to_string_lossy().into_owned(),
    };
    let db = Db::connect(&url, config.database_pool_size, config.database_timeout_secs).await?;
    let applied = db.migrate().await?;
    tracing::info!(backend = db.backend_name(), at = %describe_database(&url), applied, "database ready");

    let (bus, redis) = match &config.redis_url {
        Some(url) => {
            let client = redis::Client::open(url.as_str()).map_err(|e| anyhow::anyhow!("REDIS_URL: {e}"))?;
            let conn = tokio::time::timeout(Duration::from_secs(5), client.get_connection_manager())
                .await
                .map_err(|_| anyhow::anyhow!("Redis did not answer within 5 s"))?
                .map_err(|e| anyhow::anyhow!("cannot connect to Redis: {e}"))?;
            (Bus::redis(client, &config.redis_prefix).await?, Some(conn))
        }
        None => (Bus::memory(), None),
    };
    tracing::info!(bus = bus.backend_name(), "bus ready");

    let secret = load_secret(&config, &db, clock.now_ms()).await?;
    let limiter = match redis {
        Some(conn) => crate::limits::limiter::Limiter::Redis(crate::limits::limiter::RedisLimiter::new(
            conn,
            &config.redis_prefix,
            config.limiter_fallback,
        )),
        None => crate::limits::limiter::Limiter::Memory(Default::default()),
    };
    let mailer = crate::platform::mail::Mailer::new(
        config.smtp_url.as_deref(),
        &config.mail_from,
        config.data_dir.join("mail"),
    )?;
    let app = Arc::new(App {
        mailer,
        features: Default::default(),
        org_states: Default::default(),
        metrics: Default::default(),
        blocked: Default::default(),
        credentials: crate::auth::Credentials::new(Duration::from_secs(config.key_cache_ttl_secs)),
        key_usage: Default::default(),
        limiter,
        plans: Default::default(),
        event_types: Default::default(),
        published: Default::default(),
        operation_costs: Default::default(),
        documents: Default::default(),
        started_at_ms: clock.now_ms(),
        meter: crate::usage::meter::Meter::new(config.usage_buffer, config.usage_batch_size),
        recorder: crate::usage::recorder::Recorder::start(db.clone()),
        notices: Default::default(),
        webhooks: crate::webhooks::runtime::Webhooks::new(&config)?,
        oauth_pruned_at_ms: std::sync::atomic::AtomicI64::new(0),
        orgs_purged_at_ms: std::sync::atomic::AtomicI64::new(0),
        exports_running: std::sync::atomic::AtomicBool::new(false),
        exports_checked_at_ms: std::sync::atomic::AtomicI64::new(0),
        payments: Arc::new(crate::billing::provider::TestProvider::default()),
        billing_ran_at_ms: std::sync::atomic::AtomicI64::new(0),
        config,
        db,
        bus,
        clock,
        secret,
    });
    spawn_bus_listener(&app);
    crate::accounts::service::load_org_states(&app).await.map_err(|e| {
        e.log();
        anyhow::anyhow!("could not load the suspended and deleted organizations")
    })?;
    crate::limits::service::reload_operation_costs(&app).await.map_err(|e| {
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

/// Where the database is, for the log: a SQLite file's path, or a PostgreSQL host, port and
/// database — never a user name or password.
pub fn describe_database(url: &str) -> String {
    if let Some(path) = url.strip_prefix("sqlite://") {
        return path.to_string();
    }
    if !url.contains("://") {
        // The default: a file in the data directory.
        return url.to_string();
    }
    match url::Url::parse(url) {
        Ok(u) if u.scheme().starts_with("postgres") => {
            format!("{}:{}{}", u.host_str().unwrap_or("localhost"), u.port().unwrap_or(5432), u.path())
        }
        _ => "(a database URL that is not shown)".into(),
    }
}

/// Hands every bus message (from any node) to the components that own what it invalidates. A
/// lagged receiver may have missed messages: that is a resync for everyone.
fn spawn_bus_listener(app: &Arc<App>) {
    let mut rx = app.bus.subscribe();
    let weak = Arc::downgrade(app);
    tokio::spawn(async move {
        loop {
            let msg = match rx.recv().await {
                Ok(m) => m,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "bus lagged; dropping every cache as after a resync");
                    Arc::new(BusMessage::Resync)
                }
                Err(_) => return,
            };
            let Some(app) = weak.upgrade() else { return };
            let kind = bus_kind(&msg);
            app.metrics.record(|| metrics::counter!("gantry_bus_messages_total", "kind" => kind).increment(1));
            app.credentials.on_bus(&msg);
            app.webhooks.on_bus(&msg);
            app.event_types.on_bus(&msg);
            app.features.on_bus(&msg);
            app.org_states.on_bus(&msg);
            if matches!(*msg, BusMessage::Resync) {
                reload_org_states(&app);
            }
            if app.plans.on_bus(&msg) {
                reload_costs(&app);
            }
        }
    });
}

/// Hourly: purges the data of organizations deleted longer ago than the export window.
async fn maybe_purge_organizations(app: &App) {
    use std::sync::atomic::Ordering;
    let now = app.clock.now_ms();
    if now - std::sync::atomic::AtomicI64::load(&app.orgs_purged_at_ms, Ordering::Relaxed) < 3_600_000 {
        return;
    }
    app.orgs_purged_at_ms.store(now, Ordering::Relaxed);
    if let Err(e) = crate::accounts::lifecycle::purge_due(app).await {
        e.log();
    }
    if let Err(e) = crate::exports::service::expire(app).await {
        e.log();
    }
}

/// A bus message's kind, as metrics label it.
fn bus_kind(msg: &BusMessage) -> &'static str {
    match msg {
        BusMessage::Event(_) => "event",
        BusMessage::InvalidateKeys { .. } => "invalidate_keys",
        BusMessage::InvalidateSession { .. } => "invalidate_session",
        BusMessage::InvalidateTokens { .. } => "invalidate_tokens",
        BusMessage::InvalidatePlans => "invalidate_plans",
        BusMessage::InvalidateEventTypes => "invalidate_event_types",
        BusMessage::InvalidateFeatureFlags => "invalidate_feature_flags",
        BusMessage::OrgStateChanged { .. } => "org_state_changed",
        BusMessage::DeliveryAttempt(_) => "delivery_attempt",
        BusMessage::Resync => "resync",
    }
}

/// Reads the suspended and deleted organizations again in the background (after a bus resync,
/// when changes may have been missed).
fn reload_org_states(app: &Arc<App>) {
    let app = app.clone();
    tokio::spawn(async move {
        if let Err(e) = crate::accounts::service::load_org_states(&app).await {
            e.log();
        }
    });
}

/// Reloads per-operation costs in the background (another node changed them).
fn reload_costs(app: &Arc<App>) {
    let app = app.clone();
    tokio::spawn(async move {
        if let Err(e) = crate::limits::service::reload_operation_costs(&app).await {
            e.log();
        }
    });
}

/// Writes what components buffer (key counters, usage records, alert triggers), hourly prunes
/// expired OAuth codes and tokens, and each minute closes ended billing months and charges due
/// invoices; on a timer.
pub async fn flush(app: &App) {
    if let Err(e) = crate::keys::usage::flush(app).await {
        e.log();
    }
    if let Err(e) = app.meter.drain(&app.db).await {
        e.log();
    }
    if let Err(e) = crate::alerts::drain(app).await {
        e.log();
    }
    crate::oauth::retention::maybe_prune(app).await;
    maybe_purge_organizations(app).await;
    crate::billing::maybe_run(app).await;
    app.limiter.sweep(app.clock.now_ms());
    app.metrics.upkeep();
}

/// At shutdown: writes everything buffered (key counters, usage records, alert triggers), trying
/// again with growing pauses while the database refuses, for up to `deadline`. Returns whether
/// everything was written; what was not is logged as lost.
pub async fn flush_before_exit(app: &App, deadline: Duration) -> bool {
    let give_up = tokio::time::Instant::now() + deadline;
    let mut pause = Duration::from_millis(100);
    loop {
        let mut failed = Vec::new();
        if let Err(e) = crate::keys::usage::flush(app).await {
            failed.push(("key usage counters", e));
        }
        if let Err(e) = app.meter.drain(&app.db).await {
            failed.push(("usage records", e));
        }
        if let Err(e) = crate::alerts::drain(app).await {
            failed.push(("alert triggers", e));
        }
        if failed.is_empty() {
            app.limiter.sweep(app.clock.now_ms());
            return true;
        }
        if tokio::time::Instant::now() + pause > give_up {
            for (what, e) in failed {
                tracing::error!(error = %format!("{e:?}"), meter = ?app.meter.stats(), "shutdown: {what} could not be written before the deadline and are lost");
            }
            return false;
        }
        tracing::warn!(
            retry_in_ms = pause.as_millis() as u64,
            "shutdown: writing what is buffered failed; trying again"
        );
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(5));
    }
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

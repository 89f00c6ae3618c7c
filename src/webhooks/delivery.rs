//! The delivery engine: workers claim due deliveries (made by [`super::dispatch`]), POST them
//! signed, record each attempt and schedule the next; [`spawn`] runs the dispatcher and the
//! workers together. New deliveries are leased to the node as they are fanned out, as many as its
//! ready queue has room for, and start from memory as request slots free, without a claim;
//! retries, a backlog and what other nodes left are claimed.
//!
//! Claiming sets a delivery's lease (`leased_until`) to the endpoint's timeout plus a margin,
//! longer than its request may take (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so several nodes
//! never claim one row; one statement under SQLite's single writer). A delivery is due when its
//! `next_attempt_at` has passed and it has no live lease, so a node that dies mid-attempt leaves
//! it due again when the lease ends: at-least-once, nothing lost. The claim changes no indexed
//! column, so on PostgreSQL it is a HOT update (the table keeps free space for it). Completing an
//! attempt (`super::record`) is guarded by the attempt count it claimed, so a late worker cannot
//! overwrite a newer outcome.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel_async::{RunQueryDsl, SimpleAsyncConnection};

use super::model::*;
use super::signing::{SigningKey, signature_header};
use crate::app::App;
use crate::error::{Error, Result};
use crate::platform::db::schema::{events, webhook_deliveries, webhook_endpoints, webhook_secrets};
use crate::platform::ids::{DeliveryId, EventId, OrgId, WebhookId};
use crate::{transaction, with_conn};

/// Seconds after each failed attempt before the next (then the delivery fails): 5 s, 5 min,
/// 30 min, 2 h, 5 h, 10 h, 10 h, each ±20 %.
pub const DEFAULT_SCHEDULE_SECS: [i64; 7] = [5, 300, 1800, 7200, 18_000, 36_000, 36_000];
/// After a timeout or a 429, wait at least this long.
const MIN_BACKOFF_AFTER_THROTTLE_MS: i64 = 60_000;
/// `Retry-After` is honoured up to this.
const MAX_RETRY_AFTER_MS: i64 = 24 * 3600 * 1000;
/// While requests are in flight, free slots are gathered this long before claiming for them.
pub const CLAIM_GATHER: Duration = Duration::from_millis(10);
/// At most this many deliveries are claimed (or leased while fanned out) at once.
const CLAIM_BATCH: usize = 256;
/// Without a backlog, the database is asked for due deliveries at most this often.
const MIN_CLAIM_INTERVAL: Duration = Duration::from_millis(50);
/// Response bodies (and request bodies in the log) are kept up to this many bytes.
pub const LOG_BODY_BYTES: usize = 4096;

/// Runs the dispatcher and the delivery worker until `stop` fires; in-flight attempts finish.
pub fn spawn(app: Arc<App>, mut stop: tokio::sync::watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let poll = Duration::from_millis(app.config.webhook_poll_interval_ms);
        let mut last_dispatch = Instant::now();
        let mut outbox_full = false;
        loop {
            if *stop.borrow() {
                break;
            }
            let mut busy = false;
            // The outbox is read when events were raised, while it yields full batches, and every
            // poll interval (events another node raised without telling this one); not on every
            // finished request.
            let signalled = app.webhooks.events_pending.swap(false, std::sync::atomic::Ordering::AcqRel);
            if signalled || outbox_full || last_dispatch.elapsed() >= poll {
                last_dispatch = Instant::now();
                // New deliveries are leased to this node as they are made, as many as its ready
                // queue has room for — unless due deliveries nobody holds wait in the database:
                // those go first (claimed, oldest first), so no delivery waits behind newer ones.
                let lease = if std::sync::atomic::AtomicBool::load(&app.webhooks.backlog, Ordering::Acquire) {
                    0
                } else {
                    ready_room(&app)
                };
                match super::dispatch::fan_out(&app, lease).await {
                    Ok((n, leased, unleased)) => {
                        outbox_full = n as i64 == super::dispatch::DISPATCH_BATCH;
                        if unleased {
                            app.webhooks.backlog.store(true, Ordering::Release);
                        }
                        if let Err(e) = make_ready(&app, leased).await {
                            e.log();
                        }
                    }
                    Err(e) => {
                        outbox_full = false;
                        e.log()
                    }
                }
                busy |= outbox_full;
            }
            match work(&app).await {
                Ok(n) => busy |= n > 0,
                Err(e) => e.log(),
            }
            super::retention::maybe_prune(&app).await;
            if !busy {
                let pause = if std::sync::atomic::AtomicBool::load(
                    &app.webhooks.gathering,
                    std::sync::atomic::Ordering::Relaxed,
                ) {
                    CLAIM_GATHER
                } else {
                    poll
                };
                tokio::select! {
                    _ = app.webhooks.wake.notified() => {}
                    _ = tokio::time::sleep(pause) => {}
                    _ = stop.changed() => {}
                }
            }
        }
        // Deliveries leased but not started are due again at once (for any node), not when their
        // lease ends; attempts in flight finish and record their outcome.
        let unstarted: Vec<Claimed> = app.webhooks.ready.lock().drain(..).map(|r| r.d).collect();
        give_back(&app, &unstarted, app.clock.now_ms()).await;
        let all = app.config.webhook_concurrency as u32;
        let _ = tokio::time::timeout(Duration::from_secs(35), app.webhooks.slots.acquire_many(all)).await;
    })
}

#[derive(QueryableByName, Debug)]
pub(super) struct Claimed {
    #[diesel(sql_type = Text)]
    pub(super) id: DeliveryId,
    #[diesel(sql_type = Text)]
    pub(super) org_id: OrgId,
    #[diesel(sql_type = Text)]
    pub(super) endpoint_id: WebhookId,
    #[diesel(sql_type = Text)]
    pub(super) event_id: EventId,
    #[diesel(sql_type = Text)]
    pub(super) event_type: String,
    #[diesel(sql_type = BigInt)]
    pub(super) attempts: i64,
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    pub(super) last_error: Option<String>,
}

/// A delivery leased to this node with everything its attempt needs, waiting for a request slot.
pub(super) struct Ready {
    d: Claimed,
    endpoint: Arc<EndpointRow>,
    keys: Vec<SigningKey>,
    payload: Arc<str>,
    event_created_at: i64,
    leased_until: i64,
}

/// When a lease taken at `now` ends: the endpoint's timeout plus the lease margin, so a request
/// started in time never outlives it (the claim's SQL computes the same).
pub(super) fn lease_end(app: &App, endpoint: &EndpointRow, now: i64) -> i64 {
    now + app.config.webhook_lease_margin_secs * 1000 + endpoint.timeout_ms
}

/// How many more leased deliveries this node's ready queue takes: four per request slot, so a
/// slot that frees finds its next delivery in memory, and a lease (60 s beyond the endpoint's
/// timeout by default) never ends before its delivery starts.
fn ready_room(app: &App) -> usize {
    let max = app.config.webhook_concurrency * 4;
    max.saturating_sub(app.webhooks.ready.lock().len()).min(CLAIM_BATCH)
}

/// Starts ready deliveries (leased at fan-out or claimed) in free slots, then claims due ones from
/// the database when slots are still free and the database may hold any: a backlog nobody holds,
/// retries come due, deliveries another node left. Returns how many attempts it started.
pub async fn work(app: &Arc<App>) -> Result<usize> {
    let mut started = start_ready(app);
    let free = app.webhooks.slots.available_permits();
    if free == 0 {
        return Ok(started);
    }
    let in_flight = app.config.webhook_concurrency.saturating_sub(free);
    let since_last = app.webhooks.last_claim.lock().elapsed();
    let backlog = std::sync::atomic::AtomicBool::load(&app.webhooks.backlog, Ordering::Acquire);
    // Without a backlog, nothing new waits unheld (fan-out leases it): look for retries and other
    // nodes' leftovers now and then, not after every finished request.
    if !backlog && since_last < MIN_CLAIM_INTERVAL {
        app.webhooks.gathering.store(true, Ordering::Relaxed);
        return Ok(started);
    }
    // Claim in batches: while requests are in flight, wait until half the slots are free (each
    // finishing request wakes the loop) or the last claim is `CLAIM_GATHER` old, so a claim is not
    // one statement per delivery, nor do requests hanging on a slow endpoint hold the rest back.
    let gathering = in_flight > 0 && free < app.config.webhook_concurrency / 2 && since_last < CLAIM_GATHER;
    app.webhooks.gathering.store(gathering, Ordering::Relaxed);
    if gathering {
        return Ok(started);
    }
    *app.webhooks.last_claim.lock() = Instant::now();
    let now = app.clock.now_ms();
    let limit = (free + ready_room(app)).min(CLAIM_BATCH);
    let lock = if app.db.is_postgres() { " FOR UPDATE SKIP LOCKED" } else { "" };
    let claim = app.db.sql(&format!(
        "UPDATE webhook_deliveries SET \
         leased_until = ? + (SELECT e.timeout_ms FROM webhook_endpoints e WHERE e.id = webhook_deliveries.endpoint_id), \
         updated_at = ? WHERE id IN (\
         SELECT id FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= ? \
         AND (leased_until IS NULL OR leased_until <= ?) ORDER BY next_attempt_at LIMIT ?{lock}) \
         RETURNING id, org_id, endpoint_id, event_id, event_type, attempts, last_error"
    ));
    let pg = app.db.is_postgres();
    let claimed: Vec<Claimed> = transaction!(app.db, c => {
        if pg {
            c.batch_execute(crate::platform::db::QUEUE_HEAD_PLAN).await?;
        }
        diesel::sql_query(&claim)
            .bind::<BigInt, _>(now + app.config.webhook_lease_margin_secs * 1000)
            .bind::<BigInt, _>(now)
            .bind::<BigInt, _>(now)
            .bind::<BigInt, _>(now)
            .bind::<BigInt, _>(limit as i64)
            .load(c).await.map_err(Error::from)
    })?;
    // A full claim may have left more behind.
    app.webhooks.backlog.store(claimed.len() == limit, Ordering::Release);
    if claimed.is_empty() {
        return Ok(started);
    }
    let endpoint_ids: HashSet<&str> = claimed.iter().map(|d| d.endpoint_id.as_str()).collect();
    let event_ids: Vec<&str> = claimed.iter().map(|d| d.event_id.as_str()).collect();
    let read = async || -> Result<_> {
        Ok(with_conn!(app.db, c => {
            let endpoints: Vec<EndpointRow> = webhook_endpoints::table
                .filter(webhook_endpoints::id.eq_any(endpoint_ids.iter().copied()))
                .select(EndpointRow::as_select())
                .load(c).await?;
            let payloads: Vec<(EventId, String, i64)> = events::table
                .filter(events::id.eq_any(&event_ids))
                .select((events::id, events::payload, events::created_at))
                .load(c).await?;
            (endpoints, payloads)
        }))
    };
    let (endpoints, payloads) = match read().await {
        Ok(v) => v,
        Err(e) => {
            give_back(app, &claimed, now).await;
            return Err(e);
        }
    };
    let leased = super::dispatch::Leased {
        deliveries: claimed,
        endpoints: endpoints.into_iter().map(|e| (e.id.clone(), Arc::new(e))).collect(),
        payloads: payloads.into_iter().map(|(id, p, t)| (id, (p.into(), t))).collect(),
        now,
    };
    make_ready(app, leased).await?;
    started += start_ready(app);
    Ok(started)
}

/// Queues leased deliveries (claimed, or leased as they were made) with their endpoint's current
/// signing keys; a delivery whose endpoint was disabled meanwhile fails without a request, one
/// over its endpoint's own rate limit is given back for later.
async fn make_ready(app: &Arc<App>, leased: super::dispatch::Leased) -> Result<()> {
    let super::dispatch::Leased { deliveries, endpoints, payloads, now } = leased;
    if deliveries.is_empty() {
        return Ok(());
    }
    let endpoint_ids: Vec<&str> = endpoints.keys().map(|id| id.as_str()).collect();
    let read = async || -> Result<Vec<SecretRow>> {
        Ok(with_conn!(app.db, c => {
            webhook_secrets::table
                .filter(webhook_secrets::endpoint_id.eq_any(&endpoint_ids))
                .filter(webhook_secrets::expires_at.is_null().or(webhook_secrets::expires_at.gt(now)))
                .order(webhook_secrets::id.desc())
                .select(SecretRow::as_select())
                .load(c).await?
        }))
    };
    let secrets = match read().await {
        Ok(s) => s,
        Err(e) => {
            give_back(app, &deliveries, now).await;
            return Err(e);
        }
    };
    let mut keys: HashMap<WebhookId, Vec<SigningKey>> = HashMap::new();
    for s in secrets {
        keys.entry(s.endpoint_id).or_default().push(SigningKey::derive(&app.secret, &s.seed));
    }
    let mut ready = Vec::with_capacity(deliveries.len());
    for d in deliveries {
        let Some(endpoint) = endpoints.get(&d.endpoint_id).cloned() else { continue };
        // A release the database refuses leaves the delivery leased: due again when that ends.
        if !endpoint.enabled {
            // Disabled since the delivery was made: it fails without a request (recoverable once
            // the endpoint is enabled again).
            if let Err(e) = release(app, &d, None).await {
                e.log();
            }
            continue;
        }
        // A suspended (or deleted) organization's deliveries wait, without an attempt; lifting
        // the suspension makes them due at once.
        if app.org_states.denial(endpoint.org_id.as_str()).is_some() {
            if let Err(e) = release(app, &d, Some(now + PAUSED_RECHECK_MS)).await {
                e.log();
            }
            continue;
        }
        if let Some(wait_ms) = over_endpoint_limit(app, &endpoint, now).await {
            if let Err(e) = release(app, &d, Some(now + wait_ms)).await {
                e.log();
            }
            continue;
        }
        let Some((payload, event_created_at)) = payloads.get(&d.event_id).cloned() else { continue };
        let keys = keys.get(&d.endpoint_id).cloned().unwrap_or_default();
        let leased_until = lease_end(app, &endpoint, now);
        ready.push(Ready { d, endpoint, keys, payload, event_created_at, leased_until });
    }
    app.webhooks.ready.lock().extend(ready);
    Ok(())
}

/// How long a delivery of a suspended organization waits before it is looked at again.
pub const PAUSED_RECHECK_MS: i64 = 60_000;

/// Starts ready deliveries, oldest first, while request slots are free. A delivery whose lease
/// has too little left to outlast its request is left to end its lease and be claimed again.
fn start_ready(app: &Arc<App>) -> usize {
    let margin_ms = app.config.webhook_lease_margin_secs * 1000;
    let mut started = 0;
    loop {
        let Ok(permit) = app.webhooks.slots.clone().try_acquire_owned() else { break };
        let Some(r) = app.webhooks.ready.lock().pop_front() else { break };
        if app.clock.now_ms() > r.leased_until - r.endpoint.timeout_ms - margin_ms / 2 {
            continue;
        }
        started += 1;
        let app = app.clone();
        tokio::spawn(async move {
            let _permit = permit;
            if let Err(e) = attempt(&app, r.d, &r.endpoint, &r.keys, &r.payload, r.event_created_at).await {
                e.log();
            }
            app.webhooks.wake();
        });
    }
    started
}

/// When an endpoint has its own rate limit and it is spent, how long to wait (the limiter's
/// decision: in Redis, exact across nodes).
async fn over_endpoint_limit(app: &App, endpoint: &EndpointRow, now: i64) -> Option<i64> {
    let per_second = endpoint.rate_limit_per_second.filter(|r| *r > 0)? as u64;
    let policy = Arc::new(crate::limits::policy::Policy::webhook(per_second));
    let subject =
        crate::limits::limiter::Subject { rate: format!("whk:{}", endpoint.id), org: endpoint.org_id.to_string() };
    let (decision, _) = app.limiter.acquire(&subject, policy, 1, 0, now).await;
    (!decision.allowed()).then_some(decision.retry_after_ms.max(1))
}

/// Gives a claimed delivery back without an attempt: due again at `at`, or — with `None` — failed
/// because its endpoint is disabled.
async fn release(app: &App, d: &Claimed, at: Option<i64>) -> Result<()> {
    let (status, error) = match at {
        Some(_) => (PENDING, None),
        None => (FAILED, Some("the endpoint is disabled; no request was made")),
    };
    with_conn!(app.db, c => {
        diesel::update(still_claimed(d.id.as_str(), d.attempts))
        .set((
            webhook_deliveries::status.eq(status),
            webhook_deliveries::next_attempt_at.eq(at),
            webhook_deliveries::leased_until.eq(None::<i64>),
            webhook_deliveries::last_error.eq(error.or(d.last_error.as_deref())),
        ))
        .execute(c).await?
    });
    Ok(())
}

/// Leased deliveries this node will not start after all: due again at `now` (for any node), not
/// when their lease ends. One the database refuses to give back waits for its lease to end.
async fn give_back(app: &App, deliveries: &[Claimed], now: i64) {
    for d in deliveries {
        if let Err(e) = release(app, d, Some(now)).await {
            e.log();
        }
    }
}

/// The body every attempt of an event sends, byte for byte: `{"type","timestamp","data"}`.
pub fn body(event_type: &str, created_at: i64, payload: &str) -> String {
    format!(
        "{{\"type\":{},\"timestamp\":\"{}\",\"data\":{}}}",
        serde_json::Value::String(event_type.to_string()),
        crate::platform::clock::rfc3339(created_at),
        payload
    )
}

/// What one HTTP attempt came to.
pub(super) struct Outcome {
    pub(super) status: Option<u16>,
    pub(super) headers: Option<serde_json::Map<String, serde_json::Value>>,
    pub(super) body: Option<String>,
    pub(super) error_kind: Option<&'static str>,
    pub(super) error: Option<String>,
    pub(super) retry_after_ms: Option<i64>,
}

impl Outcome {
    /// A failed attempt in one short sentence, led by its kind — the delivery's `lastError`. The
    /// whole error chain stays in the attempt log.
    pub(super) fn summary(&self, timeout_ms: i64) -> Option<String> {
        Some(match self.error_kind? {
            "timeout" => format!("timeout: no answer within {} s", timeout_ms / 1000),
            "tls" => "tls: the TLS handshake failed (certificate or protocol)".into(),
            "refused" => "refused: the address is internal and webhooks may not reach it".into(),
            "http_status" => format!("http_status: the endpoint answered {}", self.status.unwrap_or(0)),
            _ => "connection: the connection could not be made or broke".into(),
        })
    }

    fn failed(kind: &'static str, message: String) -> Self {
        Self {
            status: None,
            headers: None,
            body: None,
            error_kind: Some(kind),
            error: Some(message),
            retry_after_ms: None,
        }
    }
}

/// `s` cut to at most `max` bytes on a character boundary, NUL characters replaced (PostgreSQL
/// text cannot hold them, and a receiver may answer anything).
pub(super) fn truncate(mut s: String, max: usize) -> String {
    if s.contains('\0') {
        s = s.replace('\0', "\u{FFFD}");
    }
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

fn classify(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        return "timeout";
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = source {
        if s.is::<super::ssrf::Refused>() {
            return "refused";
        }
        if is_tls(s) {
            return "tls";
        }
        source = s.source();
    }
    "connection"
}

/// A rustls error, or an io::Error wrapping one however deep: an io::Error's `source()` skips the
/// error it wraps, and the TLS stream's failure arrives as io::Error(io::Error(rustls::Error)).
fn is_tls(e: &(dyn std::error::Error + 'static)) -> bool {
    if e.is::<rustls::Error>() {
        return true;
    }
    match e.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
        Some(inner) => is_tls(inner),
        None => false,
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    truncate(out, 1000)
}

async fn send(app: &App, endpoint: &EndpointRow, headers: &reqwest::header::HeaderMap, body: &str) -> Outcome {
    let url = match url::Url::parse(&endpoint.url) {
        Ok(u) => u,
        Err(e) => return Outcome::failed("connection", format!("bad URL: {e}")),
    };
    if let Err(e) = app.webhooks.guard.check_literal(&url) {
        return Outcome::failed("refused", e.to_string());
    }
    let request = app
        .webhooks
        .client
        .post(url)
        .headers(headers.clone())
        .timeout(Duration::from_millis(endpoint.timeout_ms as u64))
        .body(body.to_string());
    let mut response = match request.send().await {
        Ok(r) => r,
        Err(e) => return Outcome::failed(classify(&e), error_chain(&e)),
    };
    let status = response.status().as_u16();
    let mut logged = serde_json::Map::new();
    for (name, value) in response.headers() {
        logged.insert(
            name.to_string(),
            serde_json::Value::String(String::from_utf8_lossy(value.as_bytes()).into_owned()),
        );
    }
    let retry_after_ms = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok())
        .map(|s| s.clamp(0, MAX_RETRY_AFTER_MS / 1000) * 1000);
    // Read at most the logged prefix of the body (the request's timeout covers the body too, so
    // an attempt never outlives the endpoint's timeout).
    let mut bytes = Vec::new();
    while bytes.len() < LOG_BODY_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            _ => break,
        }
    }
    bytes.truncate(LOG_BODY_BYTES);
    let text = truncate(String::from_utf8_lossy(&bytes).into_owned(), LOG_BODY_BYTES);
    let ok = (200..300).contains(&status);
    Outcome {
        status: Some(status),
        headers: Some(logged),
        body: Some(text),
        error_kind: (!ok).then_some("http_status"),
        error: (!ok).then(|| format!("HTTP {status}")),
        retry_after_ms,
    }
}

/// The delay before the next attempt after `done` failed attempts, or `None` when the schedule is
/// exhausted. `Retry-After` replaces the scheduled delay (within bounds); after a timeout or a
/// 429 the wait is at least 60 s.
pub fn next_delay_ms(
    schedule: &[i64],
    done: i64,
    outcome_throttled: bool,
    retry_after_ms: Option<i64>,
    jitter: f64,
) -> Option<i64> {
    let base = *schedule.get((done - 1).max(0) as usize)?;
    let mut delay = ((base * 1000) as f64 * jitter) as i64;
    if let Some(r) = retry_after_ms {
        delay = r.max(1000);
    }
    if outcome_throttled {
        delay = delay.max(MIN_BACKOFF_AFTER_THROTTLE_MS);
    }
    Some(delay)
}

async fn attempt(
    app: &Arc<App>,
    d: Claimed,
    endpoint: &EndpointRow,
    keys: &[SigningKey],
    payload: &str,
    event_created_at: i64,
) -> Result<()> {
    let body = body(&d.event_type, event_created_at, payload);
    let sent_at = app.clock.now_ms();
    let started = Instant::now();
    let timestamp = sent_at.div_euclid(1000);
    let mut headers = reqwest::header::HeaderMap::new();
    let mut put = |name: &str, value: &str| {
        if let (Ok(n), Ok(v)) =
            (reqwest::header::HeaderName::from_bytes(name.as_bytes()), reqwest::header::HeaderValue::from_str(value))
        {
            headers.insert(n, v);
        }
    };
    for (name, value) in endpoint.header_map() {
        if let Some(v) = value.as_str() {
            put(&name, v);
        }
    }
    put("content-type", "application/json");
    put("webhook-id", d.id.as_str());
    put("webhook-timestamp", &timestamp.to_string());
    put("webhook-signature", &signature_header(keys, d.id.as_str(), timestamp, body.as_bytes()));

    let outcome = send(app, endpoint, &headers, &body).await;
    let now = app.clock.now_ms();
    let latency_ms = started.elapsed().as_millis() as i64;
    let result = match (outcome.status, outcome.error_kind) {
        (Some(200..=299), _) => "success",
        (Some(_), _) => "http_status",
        (None, Some(kind)) => kind,
        (None, None) => "error",
    };
    app.metrics.record(|| {
        metrics::counter!("gantry_webhook_attempts_total", "outcome" => result).increment(1);
        metrics::histogram!("gantry_webhook_attempt_duration_seconds").record(started.elapsed().as_secs_f64());
    });
    if result != "success" {
        tracing::warn!(
            delivery = %d.id,
            endpoint = %endpoint.id,
            event_type = %d.event_type,
            attempt = d.attempts + 1,
            status = outcome.status,
            error = outcome.summary(endpoint.timeout_ms).as_deref().unwrap_or("-"),
            "webhook attempt failed"
        );
    }
    super::record::record(app, d, endpoint, &headers, &body, outcome, latency_ms, now).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_schedule_then_failure() {
        let s = DEFAULT_SCHEDULE_SECS;
        assert_eq!(next_delay_ms(&s, 1, false, None, 1.0), Some(5_000));
        assert_eq!(next_delay_ms(&s, 2, false, None, 1.0), Some(300_000));
        assert_eq!(next_delay_ms(&s, 7, false, None, 1.0), Some(36_000_000));
        assert_eq!(next_delay_ms(&s, 8, false, None, 1.0), None);
        // ±20 % jitter.
        assert_eq!(next_delay_ms(&s, 1, false, None, 0.8), Some(4_000));
        // A timeout or a 429 waits at least 60 s; Retry-After replaces the scheduled delay.
        assert_eq!(next_delay_ms(&s, 1, true, None, 1.0), Some(60_000));
        assert_eq!(next_delay_ms(&s, 1, false, Some(120_000), 1.0), Some(120_000));
        assert_eq!(next_delay_ms(&s, 1, true, Some(2_000), 1.0), Some(60_000));
        assert_eq!(next_delay_ms(&[], 1, false, None, 1.0), None);
    }

    #[test]
    fn the_body_is_the_standard_envelope() {
        let b = body("key.created", 0, r#"{"a":1}"#);
        assert_eq!(b, r#"{"type":"key.created","timestamp":"1970-01-01T00:00:00.000Z","data":{"a":1}}"#);
    }
}

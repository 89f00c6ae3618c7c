//! The end-to-end webhook benchmark's two outside processes (`benches/webhooks_e2e.sh`):
//!
//! - `webhook_receiver serve ADDR WHSEC_SECRET`: an external webhook receiver. It verifies every
//!   delivery's Standard Webhooks signature (`webhook-id`, `webhook-timestamp`,
//!   `webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">` under the bytes of
//!   the base64 after `whsec_`; the timestamp within 5 minutes), counts valid, invalid and repeated
//!   deliveries, and records each one's publish → receipt latency from the `sent_at_us` (Unix
//!   microseconds) the publisher put in the event's data. `GET /stats` answers the figures as
//!   JSON, `GET /wait?n=N` answers them once N distinct deliveries arrived, `GET /count` is the
//!   distinct count alone, `POST /reset` clears them; any other POST is a delivery (answered 204, or 401 when the
//!   signature does not verify).
//! - `webhook_receiver publish URL API_KEY TYPE --count N --concurrency C [--rate R]`: publishes N
//!   events with `POST /api/v1/events` over C concurrent connections (paced at R events/s when
//!   given, as fast as Gantry accepts them otherwise), each `{"type": TYPE, "payload": {"seq": i,
//!   "sent_at_us": <now>}}` stamped just before its request is written, then prints one JSON line:
//!   accepted, failed, elapsed and the publish call's own latency.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

fn now_us() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970").as_micros() as i64
}

fn percentile(sorted: &[i64], p: f64) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

// ---------------------------------------------------------------------------------------------
// Receiver

#[derive(Default)]
struct Stats {
    valid: u64,
    invalid: u64,
    /// Valid deliveries whose `webhook-id` was seen before (at-least-once repeats).
    repeated: u64,
    /// Valid deliveries without a usable `data.sent_at_us`.
    unstamped: u64,
    seen: HashSet<String>,
    /// Publish → receipt, microseconds, one per valid first delivery.
    latencies_us: Vec<i64>,
    first_receipt_us: Option<i64>,
    last_receipt_us: Option<i64>,
    min_sent_us: Option<i64>,
    max_sent_us: Option<i64>,
    last_invalid_reason: Option<String>,
}

struct Receiver {
    key: Vec<u8>,
    stats: parking_lot::Mutex<Stats>,
    /// Distinct valid deliveries so far, for `GET /wait` (no polling needed).
    distinct: tokio::sync::watch::Sender<u64>,
}

impl Receiver {
    /// Checks a delivery's signature (and timestamp tolerance); the reason when it fails.
    fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<String, String> {
        let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).ok_or_else(|| format!("no {n} header"));
        let id = h("webhook-id")?;
        let ts = h("webhook-timestamp")?;
        let sigs = h("webhook-signature")?;
        let ts_secs: i64 = ts.parse().map_err(|_| format!("bad webhook-timestamp {ts:?}"))?;
        if (now_us() / 1_000_000 - ts_secs).abs() > 300 {
            return Err(format!("webhook-timestamp {ts_secs} outside the 5-minute tolerance"));
        }
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(ts.as_bytes());
        mac.update(b".");
        mac.update(body);
        for sig in sigs.split(' ') {
            let Some(b64) = sig.strip_prefix("v1,") else { continue };
            let Ok(bytes) = STANDARD.decode(b64) else { continue };
            if mac.clone().verify_slice(&bytes).is_ok() {
                return Ok(id.to_string());
            }
        }
        Err(format!("no signature in {sigs:?} verifies"))
    }
}

async fn deliver(State(r): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let received = now_us();
    let verdict = r.verify(&headers, &body);
    let sent = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("data").and_then(|d| d.get("sent_at_us")).and_then(Value::as_i64));
    let mut s = r.stats.lock();
    match verdict {
        Err(reason) => {
            s.invalid += 1;
            s.last_invalid_reason = Some(reason);
            StatusCode::UNAUTHORIZED
        }
        Ok(id) => {
            s.valid += 1;
            s.first_receipt_us.get_or_insert(received);
            s.last_receipt_us = Some(received);
            if !s.seen.insert(id) {
                s.repeated += 1;
                return StatusCode::NO_CONTENT;
            }
            r.distinct.send_replace(s.seen.len() as u64);
            match sent {
                Some(t) => {
                    s.latencies_us.push(received - t);
                    s.min_sent_us = Some(s.min_sent_us.map_or(t, |m| m.min(t)));
                    s.max_sent_us = Some(s.max_sent_us.map_or(t, |m| m.max(t)));
                }
                None => s.unstamped += 1,
            }
            StatusCode::NO_CONTENT
        }
    }
}

async fn stats(State(r): State<Arc<Receiver>>) -> axum::Json<Value> {
    let (mut lat, s) = {
        let s = r.stats.lock();
        (
            s.latencies_us.clone(),
            json!({
                "valid": s.valid, "invalid": s.invalid, "repeated": s.repeated, "unstamped": s.unstamped,
                "distinct": s.seen.len(),
                "first_receipt_us": s.first_receipt_us, "last_receipt_us": s.last_receipt_us,
                "min_sent_us": s.min_sent_us, "max_sent_us": s.max_sent_us,
                "last_invalid_reason": s.last_invalid_reason,
            }),
        )
    };
    lat.sort_unstable();
    let mut out = s;
    let ms = |v: Option<i64>| v.map(|us| us as f64 / 1000.0);
    out["latency_ms"] = json!({
        "n": lat.len(),
        "min": ms(lat.first().copied()),
        "p50": ms(percentile(&lat, 50.0)),
        "p90": ms(percentile(&lat, 90.0)),
        "p99": ms(percentile(&lat, 99.0)),
        "p999": ms(percentile(&lat, 99.9)),
        "max": ms(lat.last().copied()),
    });
    axum::Json(out)
}

async fn reset(State(r): State<Arc<Receiver>>) -> StatusCode {
    let mut s = r.stats.lock();
    *s = Stats::default();
    r.distinct.send_replace(0);
    StatusCode::NO_CONTENT
}

/// `GET /wait?n=N&timeout_s=T`: answers the stats once N distinct deliveries arrived (or T
/// seconds passed, default 180), so a waiting script does not poll.
async fn wait(
    State(r): State<Arc<Receiver>>,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> axum::Json<Value> {
    let n: u64 = q.get("n").and_then(|v| v.parse().ok()).unwrap_or(0);
    let timeout: f64 = q.get("timeout_s").and_then(|v| v.parse().ok()).unwrap_or(180.0);
    let mut rx = r.distinct.subscribe();
    let reached = tokio::time::timeout(Duration::from_secs_f64(timeout), rx.wait_for(|c| *c >= n)).await.is_ok();
    let axum::Json(mut out) = stats(State(r)).await;
    out["reached"] = json!(reached);
    axum::Json(out)
}

/// `GET /count`: distinct valid deliveries so far, as a bare number.
async fn count(State(r): State<Arc<Receiver>>) -> String {
    r.distinct.borrow().to_string()
}

async fn serve(addr: String, secret: String) {
    let b64 = secret.strip_prefix("whsec_").unwrap_or(&secret);
    let key = STANDARD.decode(b64).expect("the secret is whsec_ + base64");
    let r = Arc::new(Receiver { key, stats: Default::default(), distinct: tokio::sync::watch::Sender::new(0) });
    let app = Router::new()
        .route("/stats", get(stats))
        .route("/reset", post(reset))
        .route("/wait", get(wait))
        .route("/count", get(count))
        .fallback(post(deliver))
        .with_state(r);
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
    eprintln!("webhook_receiver listening on {addr}");
    axum::serve(listener, app).await.expect("serve");
}

// ---------------------------------------------------------------------------------------------
// Publisher

struct PublishArgs {
    url: String,
    key: String,
    event_type: String,
    count: u64,
    concurrency: usize,
    rate: Option<f64>,
}

async fn publish(a: PublishArgs) {
    // reqwest is built without a TLS provider of its own (Gantry's choice); the publisher speaks
    // plain HTTP, but the builder wants one installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client =
        reqwest::Client::builder().pool_max_idle_per_host(a.concurrency).http1_only().build().expect("HTTP client");
    let next = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let first_error = Arc::new(parking_lot::Mutex::new(None::<String>));
    let a = Arc::new(a);
    let start = Instant::now();
    let started_us = now_us();
    let mut tasks = Vec::new();
    for _ in 0..a.concurrency {
        let (client, next, failed, first_error, a) =
            (client.clone(), next.clone(), failed.clone(), first_error.clone(), a.clone());
        tasks.push(tokio::spawn(async move {
            let mut call_us = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= a.count {
                    break;
                }
                if let Some(rate) = a.rate {
                    let due = start + Duration::from_secs_f64(i as f64 / rate);
                    tokio::time::sleep_until(due.into()).await;
                }
                let t0 = Instant::now();
                let body = json!({ "type": a.event_type, "payload": { "seq": i, "sent_at_us": now_us() } }).to_string();
                let sent = client
                    .post(&a.url)
                    .header("authorization", format!("Bearer {}", a.key))
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await;
                let ok = match sent {
                    Ok(resp) if resp.status().is_success() => {
                        let _ = resp.bytes().await;
                        true
                    }
                    Ok(resp) => {
                        let status = resp.status();
                        let text = resp.text().await.unwrap_or_default();
                        first_error.lock().get_or_insert(format!("HTTP {status}: {}", &text[..text.len().min(300)]));
                        false
                    }
                    Err(e) => {
                        first_error.lock().get_or_insert(e.to_string());
                        false
                    }
                };
                if ok {
                    call_us.push(t0.elapsed().as_micros() as i64);
                } else {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
            call_us
        }));
    }
    let mut calls = Vec::new();
    for t in tasks {
        calls.extend(t.await.expect("publisher task"));
    }
    let elapsed = start.elapsed().as_secs_f64();
    calls.sort_unstable();
    let ms = |v: Option<i64>| v.map(|us| us as f64 / 1000.0);
    println!(
        "{}",
        json!({
            "accepted": calls.len(), "failed": failed.load(Ordering::Relaxed),
            "first_error": *first_error.lock(),
            "started_us": started_us, "finished_us": now_us(), "elapsed_s": elapsed,
            "accepted_per_s": calls.len() as f64 / elapsed,
            "call_ms": { "p50": ms(percentile(&calls, 50.0)), "p99": ms(percentile(&calls, 99.0)), "max": ms(calls.last().copied()) },
        })
    );
}

// ---------------------------------------------------------------------------------------------

fn usage() -> ! {
    eprintln!(
        "usage: webhook_receiver serve ADDR WHSEC_SECRET\n       \
         webhook_receiver publish URL API_KEY TYPE [--count N] [--concurrency C] [--rate R]"
    );
    std::process::exit(2)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // One runtime thread by default: the benchmark's other processes (Gantry, PostgreSQL, Redis)
    // share the machine's cores with this one. RECEIVER_THREADS overrides it.
    let threads = std::env::var("RECEIVER_THREADS").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build().expect("runtime");
    match args.first().map(String::as_str) {
        Some("serve") if args.len() == 3 => rt.block_on(serve(args[1].clone(), args[2].clone())),
        Some("publish") if args.len() >= 4 => {
            let mut p = PublishArgs {
                url: args[1].clone(),
                key: args[2].clone(),
                event_type: args[3].clone(),
                count: 20_000,
                concurrency: 64,
                rate: None,
            };
            let mut rest = args[4..].iter();
            while let Some(flag) = rest.next() {
                let value = rest.next().unwrap_or_else(|| usage());
                match flag.as_str() {
                    "--count" => p.count = value.parse().unwrap_or_else(|_| usage()),
                    "--concurrency" => p.concurrency = value.parse().unwrap_or_else(|_| usage()),
                    "--rate" => p.rate = Some(value.parse().unwrap_or_else(|_| usage())),
                    _ => usage(),
                }
            }
            rt.block_on(publish(p))
        }
        _ => usage(),
    }
}

//! Webhook benchmarks, on SQLite and (when reachable) PostgreSQL, with a receiver on 127.0.0.1 in
//! the same process:
//! - deliveries per second: N events already in the outbox, fanned out and delivered (signed,
//!   logged) to one endpoint — against the baseline of plain POSTs of the same body from the same
//!   HTTP client at the same concurrency, to the same receiver, in the same run;
//! - latency from `publishEvent` (the service call returning) to the first attempt arriving;
//! - memory (RSS) of the process with a backlog of 100k pending deliveries.
//!
//! `cargo bench --bench webhooks` (env: EVENTS=20000, BACKLOG=100000, BACKENDS=sqlite,postgres).
//! Prints a Markdown section.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gantry::app::{App, AppOptions};
use gantry::config::Config;
use gantry::platform::db::schema::events;

#[derive(Default)]
struct Receiver {
    count: AtomicU64,
    arrived: tokio::sync::Notify,
}

async fn receiver() -> (Arc<Receiver>, String) {
    let r = Arc::new(Receiver::default());
    let state = r.clone();
    let app = axum::Router::new().fallback(move || {
        let state = state.clone();
        async move {
            state.count.fetch_add(1, Ordering::Relaxed);
            state.arrived.notify_waiters();
            "ok"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (r, format!("http://{addr}/hook"))
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_string())
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn err(e: gantry::error::Error) -> anyhow::Error {
    anyhow::anyhow!("{}", e.public_message())
}

/// Writes `n` events to the outbox in transactions of 1000, as the services do.
async fn fill_outbox(app: &App, org: &gantry::platform::ids::OrgId, n: usize) -> anyhow::Result<()> {
    use diesel_async::RunQueryDsl;
    let mut left = n;
    while left > 0 {
        let batch: Vec<_> = (0..left.min(1000))
            .map(|i| {
                gantry::events::PendingEvent::new(
                    app,
                    org,
                    "bench.tick",
                    serde_json::json!({ "n": i, "note": "x".repeat(200) }),
                )
                .row
            })
            .collect();
        left -= batch.len();
        gantry::transaction!(app.db, c => {
            for row in &batch {
                diesel::insert_into(events::table).values(row).execute(c).await?;
            }
            Ok::<_, gantry::error::Error>(())
        })
        .map_err(err)?;
    }
    Ok(())
}

async fn wait_count(r: &Receiver, n: u64, limit: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    while r.count.load(Ordering::Relaxed) < n {
        if Instant::now() > deadline {
            anyhow::bail!("only {} of {n} deliveries arrived", r.count.load(Ordering::Relaxed));
        }
        let _ = tokio::time::timeout(Duration::from_millis(50), r.arrived.notified()).await;
    }
    Ok(())
}

struct Figures {
    label: &'static str,
    deliveries_per_s: f64,
    baseline_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    rss_start_mib: f64,
    rss_backlog_mib: f64,
    rss_peak_mib: f64,
}

async fn run(label: &'static str, database_url: String, n: usize, backlog: usize) -> anyhow::Result<Figures> {
    let config = Config {
        database_url: Some(database_url),
        webhook_allow_http: true,
        webhook_allowed_networks: vec!["127.0.0.0/8".parse()?],
        workers: false,
        ..Config::default()
    };
    let app = gantry::server::build(config, AppOptions::default()).await?;
    let (user, session) = gantry::accounts::service::register(
        &app,
        gantry::accounts::service::RegisterInput {
            email: format!("bench-{}@example.com", std::process::id()),
            password: "correct horse battery".into(),
            name: None,
            invitation_token: None,
        },
        None,
    )
    .await
    .map_err(err)?;
    let _ = user;
    let principal =
        gantry::auth::authenticate(&app, &gantry::auth::Bearer { token: &session.token, ip: None, organization: None })
            .await
            .map_err(err)?;
    let (recv, url) = receiver().await;
    gantry::webhooks::service::create_endpoint(
        &app,
        &principal,
        gantry::webhooks::service::EndpointInput { url: Some(url.clone()), ..Default::default() },
    )
    .await
    .map_err(err)?;
    let org = principal.org_id.clone();
    let rss_start = rss_kib();

    // Baseline: the same body POSTed by the same client at the same concurrency, no database.
    let body = gantry::webhooks::delivery::body(
        "bench.tick",
        0,
        &serde_json::json!({ "n": 1, "note": "x".repeat(200) }).to_string(),
    );
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let sem = Arc::new(tokio::sync::Semaphore::new(app.config.webhook_concurrency));
    let t = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for _ in 0..n {
        let permit = sem.clone().acquire_owned().await?;
        let (client, url, body) = (client.clone(), url.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            let _p = permit;
            client.post(url).header("content-type", "application/json").body(body).send().await.map(|r| r.status())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let baseline_per_s = n as f64 / t.elapsed().as_secs_f64();
    recv.count.store(0, Ordering::Relaxed);

    // Throughput: n events in the outbox, then the dispatcher and workers run.
    fill_outbox(&app, &org, n).await?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let t = Instant::now();
    let worker = gantry::webhooks::delivery::spawn(app.clone(), stopped.clone());
    wait_count(&recv, n as u64, Duration::from_secs(600)).await?;
    let deliveries_per_s = n as f64 / t.elapsed().as_secs_f64();

    // Latency: one published event at a time, from the service call returning to its arrival.
    let admin = &principal;
    gantry::events::publish::create_type(
        &app,
        admin,
        "bench.published",
        gantry::events::publish::TypeInput {
            schema: Some(serde_json::json!({ "type": "object" })),
            ..Default::default()
        },
    )
    .await
    .map_err(err)?;
    let mut lat = Vec::new();
    for i in 0..200u64 {
        let before = recv.count.load(Ordering::Relaxed);
        let t = Instant::now();
        gantry::events::publish::publish(
            &app,
            admin,
            gantry::events::publish::Publish {
                event_type: "bench.published".into(),
                payload: serde_json::json!({ "i": i }),
                idempotency_key: None,
                organization_id: None,
            },
        )
        .await
        .map_err(err)?;
        wait_count(&recv, before + 1, Duration::from_secs(30)).await?;
        lat.push(t.elapsed());
    }
    lat.sort();
    let _ = stop.send(true);
    worker.await?;

    // Memory: a backlog of pending deliveries, then the first seconds of working it off.
    fill_outbox(&app, &org, backlog).await?;
    while gantry::webhooks::dispatch::dispatch(&app).await.map_err(err)? > 0 {}
    let rss_backlog = rss_kib();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let worker = gantry::webhooks::delivery::spawn(app.clone(), stopped);
    let mut peak = rss_backlog;
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(100)).await;
        peak = peak.max(rss_kib());
    }
    let _ = stop.send(true);
    worker.await?;
    Ok(Figures {
        label,
        deliveries_per_s,
        baseline_per_s,
        p50_ms: lat[lat.len() / 2].as_secs_f64() * 1000.0,
        p99_ms: lat[lat.len() * 99 / 100].as_secs_f64() * 1000.0,
        rss_start_mib: rss_start as f64 / 1024.0,
        rss_backlog_mib: rss_backlog as f64 / 1024.0,
        rss_peak_mib: peak as f64 / 1024.0,
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let n: usize = std::env::var("EVENTS").ok().and_then(|s| s.parse().ok()).unwrap_or(20_000);
    let backlog: usize = std::env::var("BACKLOG").ok().and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let backends = std::env::var("BACKENDS").unwrap_or_else(|_| "sqlite,postgres".into());
    let dir = tempfile::tempdir()?;
    let mut out = Vec::new();
    if backends.contains("sqlite") {
        out.push(run("SQLite", format!("sqlite://{}", dir.path().join("bench.db").display()), n, backlog).await?);
    }
    let pg = std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    if backends.contains("postgres") && tokio::net::TcpStream::connect("127.0.0.1:5432").await.is_ok() {
        let name = format!("gantry_whbench_{}", std::process::id());
        let created = tokio::process::Command::new("psql")
            .args([&pg, "-qc", &format!("CREATE DATABASE {name}")])
            .status()
            .await?;
        if created.success() {
            let url = format!("{}/{name}", pg.rsplit_once('/').map(|(base, _)| base).unwrap_or(&pg));
            let result = run("PostgreSQL", url, n, backlog).await;
            let _ = tokio::process::Command::new("psql")
                .args([&pg, "-qc", &format!("DROP DATABASE {name}")])
                .status()
                .await;
            out.push(result?);
        }
    }
    println!("## Webhooks: delivery throughput, latency, memory\n");
    println!(
        "Measured {} by `cargo bench --bench webhooks` on this machine (2 cores; the receiver runs in the same process). \
         {n} events to one endpoint, each signed, POSTed and logged; baseline: the same body POSTed by the same HTTP client \
         at the same concurrency ({}), no database.\n",
        chrono::Utc::now().format("%Y-%m-%d"),
        Config::default().webhook_concurrency
    );
    println!("| backend | deliveries/s | baseline POSTs/s | ratio | publish → first attempt p50 | p99 |");
    println!("|---|---|---|---|---|---|");
    for f in &out {
        println!(
            "| {} | **{:.0}** | {:.0} | {:.2}× | {:.1} ms | {:.1} ms |",
            f.label,
            f.deliveries_per_s,
            f.baseline_per_s,
            f.deliveries_per_s / f.baseline_per_s,
            f.p50_ms,
            f.p99_ms
        );
    }
    println!("\n| backend | RSS after start | with {backlog} pending deliveries | peak while delivering them |");
    println!("|---|---|---|---|");
    for f in &out {
        println!(
            "| {} | {:.0} MiB | {:.0} MiB | {:.0} MiB |",
            f.label, f.rss_start_mib, f.rss_backlog_mib, f.rss_peak_mib
        );
    }
    Ok(())
}

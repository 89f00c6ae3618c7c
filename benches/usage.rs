//! Usage benchmarks: the cost of metering a call (enqueue), ingest of 1M usage records through
//! the real writer (raw rows + roll-ups + histograms), and analytics queries over them — on SQLite
//! and, when reachable, PostgreSQL. Prints a Markdown section for BENCHMARKS.md.
//!
//! `cargo bench --bench usage` (env: RECORDS=1000000, DATABASE_URL for PostgreSQL, default
//! postgres://postgres@127.0.0.1:5432/postgres when reachable).

use std::sync::Arc;
use std::time::{Duration, Instant};

use gantry::app::AppOptions;
use gantry::config::Config;
use gantry::platform::ids::{KeyId, OrgId};
use gantry::usage::analytics::{self, Dim, Granularity, Scope};
use gantry::usage::meter::{HOUR_MS, Source, UsageRecord};

const KEYS: usize = 10;
const OPERATIONS: usize = 20;

/// A fixed-seed generator (xorshift): the same records every run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn records(n: usize, now: i64, org: &OrgId) -> Vec<UsageRecord> {
    let keys: Vec<KeyId> = (0..KEYS).map(|_| KeyId::generate(now)).collect();
    let ops: Vec<Arc<str>> = (0..OPERATIONS).map(|i| Arc::from(format!("query operation{i}"))).collect();
    let mut rng = Rng(0x9e3779b97f4a7c15);
    (0..n)
        .map(|i| {
            let r = rng.next();
            // Latency: 1–400 ms, skewed towards the fast end.
            let latency_us = 1_000 + (r % 20_000) * (1 + (r >> 40) % 20);
            let status = match r % 100 {
                0 => 500,
                1..=3 => 404,
                4 => 429,
                _ => 200,
            };
            UsageRecord {
                org_id: org.clone(),
                api_key_id: Some(keys[(r >> 8) as usize % KEYS].clone()),
                app_id: None,
                source: Source::Graphql,
                operation: ops[(r >> 16) as usize % OPERATIONS].clone(),
                status,
                latency_us,
                request_bytes: 200 + r % 300,
                response_bytes: 500 + r % 5000,
                cost_units: 1 + r % 50,
                quota_units: (status != 429) as u64,
                // Spread over the last 24 hours.
                at_ms: now - (i as i64 * 24 * HOUR_MS / n as i64),
            }
        })
        .collect()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

async fn run(label: &str, database_url: String, n: usize) -> anyhow::Result<String> {
    let config =
        Config { database_url: Some(database_url), usage_buffer: n + 1, usage_batch_size: 5_000, ..Config::default() };
    let app = gantry::server::build(config, AppOptions::default()).await?;
    let now = app.clock.now_ms();
    let org = OrgId::generate(now);
    let batch = records(n, now, &org);

    let t = Instant::now();
    for r in batch {
        app.meter.record(r);
    }
    let enqueue = t.elapsed();

    let t = Instant::now();
    let written = app.meter.drain(&app.db).await.map_err(|e| anyhow::anyhow!("{}", e.public_message()))?;
    let ingest = t.elapsed();
    assert_eq!(written, n);

    let scope = Scope {
        org: org.clone(),
        key: None,
        start: (now - 24 * HOUR_MS).div_euclid(HOUR_MS) * HOUR_MS,
        end: now + 1,
        granularity: Granularity::Hour,
    };
    let mut rows = Vec::new();
    for (name, dim) in [
        ("summary with p50/p95/p99 (`usage`)", Dim::None),
        ("per operation (`usageByEndpoint`)", Dim::Operation),
        ("per key (`usageByKey`)", Dim::Key),
        ("per hour (`usageHistory`)", Dim::Bucket),
    ] {
        let mut times = Vec::new();
        let mut calls = 0;
        for _ in 0..7 {
            let t = Instant::now();
            let out =
                analytics::grouped(&app, &scope, dim).await.map_err(|e| anyhow::anyhow!("{}", e.public_message()))?;
            let p99 = out.iter().filter_map(|(_, s)| s.percentile_ms(99.0)).count();
            times.push(t.elapsed());
            calls = out.iter().map(|(_, s)| s.calls).sum::<i64>();
            assert!(p99 > 0);
        }
        assert_eq!(calls, n as i64, "{name}: every record is in the answer");
        rows.push(format!("| {label} | {name} | {:.1} ms |", median(times).as_secs_f64() * 1000.0));
    }
    Ok(format!(
        "| {label} | {n} | {:.0} ns | {:.2} s | **{:.0}/s** |\n{}",
        enqueue.as_nanos() as f64 / n as f64,
        ingest.as_secs_f64(),
        n as f64 / ingest.as_secs_f64(),
        rows.join("\n")
    ))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let n: usize = std::env::var("RECORDS").ok().and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let dir = tempfile::tempdir()?;
    let mut out = vec![run("SQLite", format!("sqlite://{}", dir.path().join("bench.db").display()), n).await?];
    let pg = std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    if tokio::net::TcpStream::connect("127.0.0.1:5432").await.is_ok() {
        // A fresh database, so the figures do not depend on earlier runs.
        let name = format!("gantry_bench_{}", std::process::id());
        let admin = tokio::process::Command::new("psql")
            .args([&pg, "-qc", &format!("CREATE DATABASE {name}")])
            .status()
            .await?;
        if admin.success() {
            let url = format!("{}/{name}", pg.rsplit_once('/').map(|(base, _)| base).unwrap_or(&pg));
            out.push(run("PostgreSQL", url, n).await?);
            let _ = tokio::process::Command::new("psql")
                .args([&pg, "-qc", &format!("DROP DATABASE {name}")])
                .status()
                .await;
        }
    }
    let (ingest, queries): (Vec<_>, Vec<_>) = out
        .iter()
        .flat_map(|s| s.lines().map(str::to_string).collect::<Vec<_>>())
        .partition(|l| l.matches('|').count() == 6);
    println!("## Usage: metering, ingest and analytics\n");
    println!(
        "Measured {} by `cargo bench --bench usage` on this machine ({} cores): {n} records over 24 hours, {KEYS} keys, {OPERATIONS} operations, 5 statuses.\n",
        chrono::Utc::now().format("%Y-%m-%d"),
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );
    println!(
        "| backend | records | enqueue per call (request path) | write all | ingest rate |\n|---|---|---|---|---|"
    );
    println!("{}\n", ingest.join("\n"));
    println!("| backend | query over the 24 hours | median of 7 |\n|---|---|---|");
    println!("{}", queries.join("\n"));
    Ok(())
}

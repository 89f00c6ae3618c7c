//! The month close: closing one period for many organizations with usage — half on Starter (a
//! hard quota, a free invoice), half on Pro (the next month's fee in advance, and overage by the
//! graduated tiers for the usage of the month that ended) — on SQLite and, when reachable,
//! PostgreSQL. The baseline, in the same run on the same database: one bare write transaction per
//! organization (`UPDATE subscriptions … WHERE id = ?`), the floor of any close that writes each
//! organization's invoice in a transaction of its own. Prints a Markdown section for
//! BENCHMARKS.md.
//!
//! `cargo bench --bench billing` (env: ORGS=10000, DATABASE_URL for PostgreSQL, default
//! postgres://postgres@127.0.0.1:5432/postgres when reachable).

use std::sync::Arc;
use std::time::Instant;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use gantry::app::AppOptions;
use gantry::config::Config;
use gantry::error::Error;
use gantry::platform::clock::{Clock, ManualClock, parse_rfc3339};
use gantry::platform::db::schema::{invoices, organizations, subscriptions, usage_rollups};
use gantry::platform::ids::OrgId;

const PRO: &str = "pln_00000000000000000000000pro";
const STARTER: &str = "pln_0000000000000000000starter";

fn err(e: Error) -> anyhow::Error {
    anyhow::anyhow!("{}", e.public_message())
}

/// Pro organization `i`'s requests in the month: 2M to 62M, so every tier is crossed.
fn pro_usage(i: usize) -> i64 {
    2_000_000 + (i as i64 * 7_919_993) % 60_000_000
}

async fn seed(app: &gantry::app::App, n: usize, at: i64, day: i64) -> anyhow::Result<Vec<OrgId>> {
    let orgs: Vec<OrgId> = (0..n).map(|_| OrgId::generate(at)).collect();
    for (chunk_no, chunk) in orgs.chunks(500).enumerate() {
        let rows: Vec<_> = chunk
            .iter()
            .enumerate()
            .map(|(j, id)| {
                let i = chunk_no * 500 + j;
                (
                    organizations::id.eq(id.to_string()),
                    organizations::name.eq(format!("Org {i}")),
                    organizations::slug.eq(format!("org-{i}")),
                    organizations::is_personal.eq(false),
                    organizations::is_platform.eq(false),
                    organizations::created_at.eq(at),
                    organizations::updated_at.eq(at),
                    organizations::plan_id.eq(Some(if i % 2 == 0 { PRO } else { STARTER })),
                )
            })
            .collect();
        let usage: Vec<_> = chunk
            .iter()
            .enumerate()
            .map(|(j, id)| {
                let i = chunk_no * 500 + j;
                let used = if i % 2 == 0 { pro_usage(i) } else { 50_000 };
                (
                    usage_rollups::granularity.eq("day"),
                    usage_rollups::org_id.eq(id.to_string()),
                    usage_rollups::level.eq(3),
                    usage_rollups::bucket_start.eq(day),
                    usage_rollups::api_key_id.eq(""),
                    usage_rollups::operation.eq(""),
                    usage_rollups::status.eq(0),
                    usage_rollups::calls.eq(used),
                    usage_rollups::latency_us_sum.eq(used * 20_000),
                    usage_rollups::request_bytes.eq(used * 300),
                    usage_rollups::response_bytes.eq(used * 2_000),
                    usage_rollups::cost_units.eq(used),
                    usage_rollups::quota_units.eq(used),
                )
            })
            .collect();
        // A row per statement (SQLite has no multi-row insert in diesel), 500 to a transaction.
        gantry::transaction!(app.db, c => {
            for r in &rows {
                diesel::insert_into(organizations::table).values(r.clone()).execute(c).await?;
            }
            for u in &usage {
                diesel::insert_into(usage_rollups::table).values(u.clone()).execute(c).await?;
            }
            Ok::<_, Error>(())
        })
        .map_err(err)?;
    }
    for org in &orgs {
        gantry::billing::subscriptions::ensure(app, org).await.map_err(err)?;
    }
    Ok(orgs)
}

async fn run(label: &str, database_url: String, n: usize) -> anyhow::Result<String> {
    let config = Config { database_url: Some(database_url), usage_flush_interval_ms: 3_600_000, ..Config::default() };
    let clock = Arc::new(ManualClock::new(parse_rfc3339("2027-03-10T12:00:00Z").unwrap()));
    let app = gantry::server::build(config, AppOptions { clock: Some(clock.clone()) }).await?;
    let t = Instant::now();
    seed(&app, n, clock.now_ms(), parse_rfc3339("2027-03-10T00:00:00Z").unwrap()).await?;
    let seeded = t.elapsed();

    // The baseline: one bare write transaction per organization.
    let ids: Vec<String> = gantry::with_conn!(app.db, c => {
        Ok::<_, Error>(subscriptions::table.select(subscriptions::id).order(subscriptions::id.asc()).load(c).await?)
    })
    .map_err(err)?;
    let t = Instant::now();
    for id in &ids {
        gantry::transaction!(app.db, c => {
            diesel::update(subscriptions::table.filter(subscriptions::id.eq(id)))
                .set(subscriptions::updated_at.eq(1))
                .execute(c)
                .await?;
            Ok::<_, Error>(())
        })
        .map_err(err)?;
    }
    let baseline = t.elapsed();

    // Five minutes and a second after the month ends: the close's grace has passed.
    clock.set_ms(parse_rfc3339("2027-04-01T00:05:01Z").unwrap());
    let t = Instant::now();
    let made = gantry::billing::invoices::close_periods(&app).await.map_err(err)?;
    let close = t.elapsed();
    let totals: Vec<i64> = gantry::with_conn!(app.db, c => {
        Ok::<_, Error>(invoices::table.select(invoices::total_cents).load(c).await?)
    })
    .map_err(err)?;
    let (count, total) = (totals.len() as i64, totals.iter().sum::<i64>());
    assert_eq!(made as i64, count, "one invoice per organization");
    let orgs: i64 = gantry::with_conn!(app.db, c => {
        Ok::<_, Error>(organizations::table.count().get_result(c).await?)
    })
    .map_err(err)?;
    assert_eq!(count, orgs, "every organization is invoiced");
    // Nothing left: a second run closes nothing.
    assert_eq!(gantry::billing::invoices::close_periods(&app).await.map_err(err)?, 0);
    let expected_pro: i64 = (0..n).filter(|i| i % 2 == 0).map(|i| 9_900 + overage_cents(pro_usage(i))).sum();
    assert_eq!(total, expected_pro, "the invoices bill the fee and the graduated overage");

    let rate = n as f64 / close.as_secs_f64();
    let floor = n as f64 / baseline.as_secs_f64();
    Ok(format!(
        "| {label} | {n} | {:.1} s | {:.2} s | **{rate:.0}/s** | {floor:.0}/s | **{:.2}×** |",
        seeded.as_secs_f64(),
        close.as_secs_f64(),
        rate / floor
    ))
}

/// The default Pro tiers (10M included; 10M–20M at 0.10 per 1,000, 20M–50M at 0.08, above at
/// 0.05), in cents rounded half up once per tier line.
fn overage_cents(used: i64) -> i64 {
    let tiers = [(10_000_000, 20_000_000, 100), (20_000_000, 50_000_000, 80), (50_000_000, i64::MAX, 50)];
    tiers
        .iter()
        .filter(|(from, _, _)| used > *from)
        .map(|(from, to, micros)| {
            let q = used.min(*to) - from;
            (q * micros + 5_000) / 10_000
        })
        .sum()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let n: usize = std::env::var("ORGS").ok().and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let dir = tempfile::tempdir()?;
    let mut out = vec![run("SQLite", format!("sqlite://{}", dir.path().join("bench.db").display()), n).await?];
    let pg = std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    if tokio::net::TcpStream::connect("127.0.0.1:5432").await.is_ok() {
        let name = format!("gantry_bench_{}", std::process::id());
        let admin = tokio::process::Command::new("psql")
            .args([&pg, "-qc", &format!("CREATE DATABASE {name}")])
            .status()
            .await?;
        if admin.success() {
            let url = format!("{}/{name}", pg.rsplit_once('/').map(|(base, _)| base).unwrap_or(&pg));
            let r = run("PostgreSQL", url, n).await;
            let _ = tokio::process::Command::new("psql")
                .args([&pg, "-qc", &format!("DROP DATABASE {name}")])
                .status()
                .await;
            out.push(r?);
        }
    }
    println!("## Billing: the month close\n");
    println!(
        "Measured {} by `cargo bench --bench billing` on this machine ({} cores): {n} organizations, half on Starter, half on Pro with 2M–62M requests in the month.\n",
        chrono::Utc::now().format("%Y-%m-%d"),
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );
    println!(
        "| backend | organizations | seed | close | invoices/s | baseline: bare write transactions/s | ratio |\n|---|---|---|---|---|---|---|"
    );
    println!("{}", out.join("\n"));
    Ok(())
}

//! Limiter decisions (criterion): one decision over a policy with four request windows, the
//! query-cost bucket and a monthly quota (no concurrency cap: its release is a separate
//! fire-and-forget DECR when the request ends) — in memory, and in Redis (one Lua
//! script) when Redis is reachable at 127.0.0.1:6379. For Redis it also counts the commands Redis
//! processed per decision (`INFO stats` before and after), which is the round-trip count.
//!
//! `cargo bench --bench limiter`

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use gantry::limits::limiter::{Fallback, Limiter, MemoryLimiter, RedisLimiter, Subject};
use gantry::limits::model::PlanRow;
use gantry::limits::policy::Policy;

fn policy() -> Arc<Policy> {
    Arc::new(Policy::from_plan(Arc::new(PlanRow {
        id: "pln_bench".into(),
        slug: "bench".into(),
        name: "Bench".into(),
        description: String::new(),
        price_cents: None,
        annual_price_cents: None,
        currency: "USD".into(),
        is_default: false,
        // Far above what the bench sends: every decision admits (the common case).
        per_second: Some(1_000_000_000),
        per_minute: Some(60_000_000_000),
        per_hour: Some(3_600_000_000_000),
        per_day: Some(86_400_000_000_000),
        burst: 1000,
        monthly_quota: Some(i64::MAX / 4),
        concurrency: None,
        max_apps: None,
        max_webhook_endpoints: None,
        max_subscriptions: None,
        query_cost_max: 1000,
        query_cost_bucket: 1_000_000_000,
        query_cost_restore_rate: 1_000_000_000,
        created_at: 0,
        updated_at: 0,
        quota_mode: "hard".into(),
        overage_tiers: "[]".into(),
        max_members: None,
        max_api_keys: None,
    })))
}

/// Commands clients sent, by name, from `INFO commandstats` (commands a script runs inside Redis
/// are counted under their own names, so the client's round trips are EVALSHA/EVAL calls plus any
/// other command the client sent).
fn client_commands(conn: &mut redis::Connection) -> std::collections::HashMap<String, u64> {
    let info: String = redis::cmd("INFO").arg("commandstats").query(conn).unwrap_or_default();
    info.lines()
        .filter_map(|l| {
            let (name, rest) = l.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = rest.split(',').find_map(|kv| kv.strip_prefix("calls="))?.parse().ok()?;
            Some((name.to_string(), calls))
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let policy = policy();
    let subject = Subject { rate: "key_bench".into(), org: "org_bench".into() };
    let now = chrono::Utc::now().timestamp_millis();

    let memory = Limiter::Memory(MemoryLimiter::default());
    c.bench_function("limiter decision, memory (4 windows + cost bucket + quota)", |b| {
        b.iter(|| rt.block_on(memory.acquire(&subject, policy.clone(), 1, 2, now)))
    });

    let Ok(client) = redis::Client::open("redis://127.0.0.1:6379") else { return };
    let Ok(mut plain) = client.get_connection() else {
        eprintln!("Redis not reachable: skipping the Redis limiter bench");
        return;
    };
    let prefix = format!("gantry-bench-{}", std::process::id());
    let redis = rt.block_on(async {
        let conn = client.get_connection_manager().await.expect("redis");
        Limiter::Redis(RedisLimiter::new(conn, &prefix, Fallback::Local))
    });
    // Warm up (loads the script), then count what Redis processed for 1000 decisions.
    rt.block_on(redis.acquire(&subject, policy.clone(), 1, 2, now));
    let before = client_commands(&mut plain);
    for _ in 0..1000 {
        let (decision, _permit) = rt.block_on(redis.acquire(&subject, policy.clone(), 1, 2, now));
        assert!(decision.allowed() && !decision.degraded);
    }
    let after = client_commands(&mut plain);
    let delta = |name: &str| after.get(name).copied().unwrap_or(0) - before.get(name).copied().unwrap_or(0);
    let scripts = delta("evalsha") + delta("eval");
    // Commands the script runs inside Redis (never a round trip), and our own INFO.
    let inside = ["hmget", "hset", "hgetall", "pexpire", "get", "incrby", "incr", "set", "decr", "info", "pttl", "del"];
    let others: u64 = after
        .keys()
        .filter(|k| !inside.contains(&k.as_str()) && *k != "evalsha" && *k != "eval")
        .map(|k| delta(k))
        .sum();
    println!(
        "round trips per decision: {:.2} script call(s), {:.2} other client command(s)",
        scripts as f64 / 1000.0,
        others as f64 / 1000.0
    );
    c.bench_function("limiter decision, Redis (one EVALSHA)", |b| {
        b.iter(|| rt.block_on(redis.acquire(&subject, policy.clone(), 1, 2, now)))
    });
    let keys: Vec<String> = redis::cmd("KEYS").arg(format!("{prefix}:*")).query(&mut plain).unwrap_or_default();
    if !keys.is_empty() {
        let _: Result<(), _> = redis::cmd("DEL").arg(&keys).query(&mut plain);
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);

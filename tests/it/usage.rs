use std::sync::Arc;

use gantry::alerts::{KEY_EXCEEDED_EVENT, THRESHOLD_EVENT};
use gantry::usage::meter::{Source, UsageRecord};
use serde_json::{Value, json};

use crate::common::{Backend, TestApp, backends, code, refuse_inserts};

const STATS: &str = "calls errors clientErrors limitedCalls successRate avgLatencyMs p50LatencyMs p95LatencyMs p99LatencyMs requestBytes responseBytes costUnits quotaUnits";

async fn viewer(app: &TestApp, key: &str) -> u16 {
    app.http
        .post(app.url("/graphql"))
        .bearer_auth(key)
        .json(&json!({ "query": "{ viewer { id } }" }))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn by<'a>(list: &'a Value, field: &str, value: Value) -> &'a Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|e| e[field] == value)
        .unwrap_or_else(|| panic!("no entry with {field} = {value} in {list}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_is_metered_and_analytics_answer_what_was_sent() {
    for backend in backends() {
        // Only the test's flushes write usage: the analytics queries are calls too, and a timer
        // flush between two of them would count the first in the second's figures.
        let app = TestApp::with_config(backend, |c| c.usage_flush_interval_ms = 3_600_000).await;
        let s = app.register("dev@example.com").await;
        // Session calls: two createApiKey mutations and one verifyApiKey.
        let (key_a, id_a) = app.create_key(&s.token, &["*"]).await;
        let (key_b, id_b) = app.create_key(&s.token, &["keys:read"]).await;
        let verdict = app
            .gql_ok(
                Some(&s.token),
                "mutation($k: String!) { verifyApiKey(input: {key: $k}) { valid } }",
                json!({ "k": key_a }),
            )
            .await;
        assert_eq!(verdict["verifyApiKey"]["valid"], true);
        // Key A: five viewer queries and one NOT_FOUND.
        for _ in 0..5 {
            assert_eq!(viewer(&app, &key_a).await, 200);
        }
        let missing =
            app.gql(Some(&key_a), "{ apiKey(id: \"key_01jdzzzzzzzzzzzzzzzzzzzzzz\") { id } }", json!({})).await;
        assert_eq!(code(&missing), "NOT_FOUND");
        // Key B: three REST lists and one 404.
        for _ in 0..3 {
            assert_eq!(app.rest("GET", "/keys", Some(&key_b), None).await.0, 200);
        }
        assert_eq!(app.rest("GET", "/keys/key_01jdzzzzzzzzzzzzzzzzzzzzzz", Some(&key_b), None).await.0, 404);
        // Unauthenticated calls belong to no organization and are not metered.
        assert_eq!(viewer(&app, "gk_live_nope").await, 401);

        gantry::server::flush(&app.app).await;
        let q = format!(
            "{{ usage(period: LAST_24_HOURS) {{ start end stats {{ {STATS} }} }}
               usageByKey(period: LAST_24_HOURS) {{ keyId apiKey {{ id }} stats {{ calls errors }} }}
               usageByEndpoint(period: LAST_24_HOURS) {{ operation stats {{ calls errors costUnits }} }}
               topEndpoints(period: LAST_24_HOURS, limit: 2) {{ operation stats {{ calls }} }}
               errorBreakdown(period: LAST_24_HOURS) {{ status calls share }} }}"
        );
        let d = app.gql_ok(Some(&s.token), &q, json!({})).await;
        // 3 session calls + 6 by key A + 4 by key B + 1 verification of key A.
        let stats = &d["usage"]["stats"];
        assert_eq!(stats["calls"], 14, "[{backend:?}] {d}");
        assert_eq!(stats["errors"], 2);
        assert_eq!(stats["clientErrors"], 2);
        assert_eq!(stats["limitedCalls"], 0);
        assert_eq!(stats["successRate"].as_f64().unwrap(), 12.0 / 14.0);
        assert_eq!(stats["quotaUnits"], 14, "every call was admitted by the limiter");
        assert!(stats["requestBytes"].as_i64().unwrap() > 0 && stats["responseBytes"].as_i64().unwrap() > 0);
        assert!(stats["p50LatencyMs"].as_f64().unwrap() > 0.0);
        assert!(stats["p50LatencyMs"].as_f64() <= stats["p99LatencyMs"].as_f64());

        let keys = &d["usageByKey"];
        assert_eq!(by(keys, "keyId", json!(id_a))["stats"]["calls"], 7);
        assert_eq!(by(keys, "keyId", json!(id_a))["apiKey"]["id"], json!(id_a));
        assert_eq!(by(keys, "keyId", json!(id_b))["stats"], json!({ "calls": 4, "errors": 1 }));
        assert_eq!(by(keys, "keyId", Value::Null)["stats"]["calls"], 3, "signed-in calls");

        let ops = &d["usageByEndpoint"];
        for (op, calls, errors) in [
            ("query viewer", 5, 0),
            ("query apiKey", 1, 1),
            ("GET /api/v1/keys", 3, 0),
            ("GET /api/v1/keys/{id}", 1, 1),
            ("mutation createApiKey", 2, 0),
            ("mutation verifyApiKey", 1, 0),
            ("verifyApiKey", 1, 0),
        ] {
            let e = by(ops, "operation", json!(op));
            assert_eq!(
                (e["stats"]["calls"].as_i64(), e["stats"]["errors"].as_i64()),
                (Some(calls), Some(errors)),
                "{op}"
            );
        }
        assert_eq!(by(ops, "operation", json!("query viewer"))["stats"]["costUnits"], 10, "2 points each");
        assert_eq!(d["topEndpoints"][0], json!({ "operation": "query viewer", "stats": { "calls": 5 } }));
        assert_eq!(d["topEndpoints"].as_array().unwrap().len(), 2);
        assert_eq!(d["errorBreakdown"], json!([{ "status": 404, "calls": 2, "share": 2.0 / 14.0 }]));

        // History: hour buckets covering the calls, zeros included.
        let now = app.app.clock.now_ms();
        let h = app
            .gql_ok(
                Some(&s.token),
                "query($s: DateTime!, $e: DateTime!) { usageHistory(start: $s, end: $e, granularity: HOUR) { start stats { calls } } }",
                json!({ "s": iso(now - 3 * 3_600_000), "e": iso(now + 1) }),
            )
            .await;
        let points = h["usageHistory"].as_array().unwrap();
        assert_eq!(points.len(), 4);
        assert_eq!(points.iter().map(|p| p["stats"]["calls"].as_i64().unwrap()).sum::<i64>(), 14);
        let days = app
            .gql_ok(
                Some(&s.token),
                "query($s: DateTime!, $e: DateTime!) { usageHistory(start: $s, end: $e, granularity: DAY) { stats { calls } } }",
                json!({ "s": iso(now - 86_400_000), "e": iso(now + 1) }),
            )
            .await;
        let total: i64 =
            days["usageHistory"].as_array().unwrap().iter().map(|p| p["stats"]["calls"].as_i64().unwrap()).sum();
        assert_eq!(total, 14, "daily roll-ups hold the same calls");

        // One key's view, and the REST equivalents.
        let one = app
            .gql_ok(
                Some(&s.token),
                "query($k: ID) { usage(period: LAST_HOUR, keyId: $k) { stats { calls } } }",
                json!({ "k": id_b }),
            )
            .await;
        assert_eq!(one["usage"]["stats"]["calls"], 4);
        let (status, body) = app.rest("GET", "/analytics/usage?period=last_24_hours", Some(&s.token), None).await;
        assert_eq!(status, 200, "{body}");
        assert!(body["data"]["stats"]["calls"].as_i64().unwrap() >= 14, "{body}");
        let (status, body) = app.rest("GET", "/analytics/errors?period=last_24_hours", Some(&s.token), None).await;
        assert_eq!((status, &body["data"][0]["status"]), (200, &json!(404)), "{body}");
        let (status, body) = app.rest("GET", "/analytics/performance?period=last_24_hours", Some(&s.token), None).await;
        assert_eq!(status, 200);
        assert!(body["data"][0]["stats"]["p95_latency_ms"].is_number(), "{body}");
        let (status, body) = app.rest("GET", "/analytics/endpoints?period=last_24_hours", Some(&s.token), None).await;
        assert_eq!(status, 200);
        assert!(body["data"].as_array().unwrap().iter().any(|e| e["stats"]["cost_units"].as_i64() > Some(0)), "{body}");
        // Costs in money are the running month's invoice so far: Starter is free.
        let (status, body) = app.rest("GET", "/analytics/costs", Some(&s.token), None).await;
        assert_eq!((status, &body["data"]["total"]), (200, &json!({"amount": 0, "currency": "USD"})), "{body}");
        let (status, body) = app.rest("GET", "/analytics/endpoints?period=yesterday", Some(&s.token), None).await;
        assert_eq!((status, body["error"]["details"]["field"].as_str()), (422, Some("period")), "{body}");

        // Scopes: a key without usage:read sees nothing.
        assert_eq!(code(&app.gql(Some(&key_b), "{ usage { stats { calls } } }", json!({})).await), "FORBIDDEN");
    }
}

fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).unwrap().to_rfc3339()
}

fn record(app: &TestApp, org: &str, latency_us: u64, status: u16, at_ms: i64) -> UsageRecord {
    let _ = app;
    UsageRecord {
        org_id: org.parse().unwrap(),
        api_key_id: None,
        app_id: None,
        source: Source::Graphql,
        operation: Arc::from("query synthetic"),
        status,
        latency_us,
        request_bytes: 10,
        response_bytes: 100,
        cost_units: 1,
        quota_units: 1,
        at_ms,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn percentiles_are_within_the_histogram_bound_and_retention_prunes_raw_records() {
    for backend in backends() {
        let app = TestApp::new(backend).await;
        let s = app.register("dev@example.com").await;
        let now = app.app.clock.now_ms();
        // 1..=200 ms: mean 100.5 ms, p50 100 ms, p95 190 ms, p99 198 ms.
        for ms in 1..=200u64 {
            app.app.meter.record(record(&app, &s.org_id, ms * 1000, 200, now));
            if ms == 100 {
                // Two batches: the second merges into the histograms the first stored.
                gantry::server::flush(&app.app).await;
            }
        }
        // 100 days ago: past raw retention (90 days), still in the daily roll-ups.
        for _ in 0..3 {
            app.app.meter.record(record(&app, &s.org_id, 5_000, 500, now - 100 * 86_400_000));
        }
        gantry::server::flush(&app.app).await;
        let d = app
            .gql_ok(
                Some(&s.token),
                "{ usageByEndpoint(period: LAST_HOUR) { operation stats { calls avgLatencyMs p50LatencyMs p95LatencyMs p99LatencyMs } } }",
                json!({}),
            )
            .await;
        let st = &by(&d["usageByEndpoint"], "operation", json!("query synthetic"))["stats"];
        assert_eq!(st["calls"], 200);
        assert_eq!(st["avgLatencyMs"], 100.5);
        for (p, exact) in [("p50LatencyMs", 100.0), ("p95LatencyMs", 190.0), ("p99LatencyMs", 198.0)] {
            let got = st[p].as_f64().unwrap();
            assert!((got - exact).abs() / exact <= 0.025, "[{backend:?}] {p} = {got}, exact {exact}");
        }

        // Every raw record is stored, in segments that never span two days.
        let segments: Vec<(i32, String)> = {
            use diesel::prelude::*;
            use diesel_async::RunQueryDsl;
            use gantry::platform::db::schema::usage_segments as us;
            let r: Result<_, gantry::error::Error> = async {
                Ok(gantry::with_conn!(app.app.db, c => {
                    us::table.filter(us::org_id.eq(s.org_id.as_str())).select((us::record_count, us::records)).load(c).await?
                }))
            }
            .await;
            r.unwrap()
        };
        let raw: Vec<Vec<Value>> =
            segments.iter().flat_map(|(_, json)| serde_json::from_str::<Vec<Vec<Value>>>(json).unwrap()).collect();
        assert_eq!(segments.iter().map(|(n, _)| *n as usize).sum::<usize>(), raw.len());
        let synthetic: Vec<&Vec<Value>> = raw.iter().filter(|r| r[2] == "query synthetic").collect();
        assert_eq!(synthetic.len(), 203, "[{backend:?}]");
        let latencies: std::collections::BTreeSet<u64> = synthetic.iter().map(|r| r[4].as_u64().unwrap()).collect();
        assert_eq!(latencies.len(), 200, "1..=200 ms (the old ones took 5 ms)");
        assert!(synthetic.iter().all(|r| r.len() == 10 && (r[3] == 200 || r[3] == 500)));

        let pruned = gantry::usage::retention::prune(&app.app, now).await.unwrap();
        assert_eq!(
            (pruned.records, pruned.hourly_rollups, pruned.hourly_histograms),
            (3, 4, 4),
            "[{backend:?}] one hourly cell per cube level"
        );
        assert_eq!(gantry::usage::retention::prune(&app.app, now).await.unwrap(), Default::default());
        let old_day = now - 100 * 86_400_000;
        let h = app
            .gql_ok(
                Some(&s.token),
                "query($s: DateTime!, $e: DateTime!) { usageHistory(start: $s, end: $e, granularity: DAY) { stats { calls serverErrors } } }",
                json!({ "s": iso(old_day), "e": iso(old_day + 1) }),
            )
            .await;
        assert_eq!(h["usageHistory"][0]["stats"], json!({ "calls": 3, "serverErrors": 3 }), "daily roll-ups are kept");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_usage_buffer_drops_and_counts_records_and_never_blocks() {
    // No timer flush: the writer wakes only when the buffer overflows.
    let app = TestApp::with_config(Backend::SqliteMemory, |c| {
        c.usage_buffer = 100;
        c.usage_flush_interval_ms = 3_600_000;
    })
    .await;
    let s = app.register("dev@example.com").await;
    // The writer may take some meanwhile: at least 150 - 100 - (what it drained) are dropped.
    gantry::server::flush(&app.app).await;
    let before = app.app.meter.stats();
    for _ in 0..150 {
        app.app.meter.record(record(&app, &s.org_id, 1000, 200, app.app.clock.now_ms()));
    }
    gantry::server::flush(&app.app).await; // waits for a write in progress, then writes the rest
    let after = app.app.meter.stats();
    assert_eq!(after.buffered, 0);
    assert_eq!(after.written - before.written + after.dropped - before.dropped, 150, "{after:?}");
    assert!(after.dropped > before.dropped, "the 101st record found the buffer full: {after:?}");
    let ready: Value = app.http.get(app.url("/readyz")).send().await.unwrap().json().await.unwrap();
    assert_eq!(ready["metering"]["dropped"], json!(app.app.meter.stats().dropped));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_usage_accepts_each_idempotency_key_once() {
    for backend in backends() {
        let app = TestApp::new(backend).await;
        let admin = app.register("ops@example.com").await; // first user: platform administrator
        let dev = app.register("dev@example.com").await;
        let (key, _) = app.create_key(&dev.token, &["usage:write"]).await;
        let m = "mutation($i: RecordUsageInput!) { recordUsage(input: $i) { accepted duplicates results { idempotencyKey eventId status } } }";
        let events = json!([
            { "metric": "emails.sent", "quantity": 3, "idempotencyKey": "a-1", "properties": { "campaign": "x" } },
            { "metric": "emails.sent", "quantity": 1, "idempotencyKey": "a-2" },
            { "metric": "emails.sent", "quantity": 9, "idempotencyKey": "a-1" },
        ]);
        let first = app.gql_ok(Some(&key), m, json!({ "i": { "events": events } })).await["recordUsage"].clone();
        assert_eq!(
            (first["accepted"].as_i64(), first["duplicates"].as_i64()),
            (Some(2), Some(1)),
            "[{backend:?}] {first}"
        );
        let r = first["results"].as_array().unwrap();
        assert_eq!((r[0]["status"].as_str(), r[2]["status"].as_str()), (Some("ACCEPTED"), Some("DUPLICATE")));
        assert_eq!(r[0]["eventId"], r[2]["eventId"], "a repeat inside one call is the first event");

        // The same call again: nothing new, the same ids.
        let again = app.gql_ok(Some(&key), m, json!({ "i": { "events": events } })).await["recordUsage"].clone();
        assert_eq!((again["accepted"].as_i64(), again["duplicates"].as_i64()), (Some(0), Some(3)));
        assert_eq!(again["results"][1]["eventId"], r[1]["eventId"]);

        // Concurrent callers (within the plan's 5 in flight) share the writer; each key is stored once.
        let calls = (0..4).map(|i| {
            let app = &app;
            let key = &key;
            async move {
                let ev = json!([{ "metric": "api.calls", "quantity": 1, "idempotencyKey": format!("c-{}", i % 2) }]);
                app.gql_ok(Some(key), m, json!({ "i": { "events": ev } })).await
            }
        });
        let answers = futures_util::future::join_all(calls).await;
        let accepted: i64 = answers.iter().map(|a| a["recordUsage"]["accepted"].as_i64().unwrap()).sum();
        assert_eq!(accepted, 2, "[{backend:?}]");

        // REST, snake_case.
        let (status, body) = app
            .rest(
                "POST",
                "/usage/events",
                Some(&key),
                Some(json!({ "events": [{ "metric": "gb.stored", "quantity": 2, "idempotency_key": "r-1" }] })),
            )
            .await;
        assert_eq!((status, &body["data"]["accepted"]), (200, &json!(1)), "{body}");

        // Bad input names the event and field; nothing of the call is stored.
        let bad = app
            .gql(
                Some(&key),
                m,
                json!({ "i": { "events": [
                    { "metric": "ok", "quantity": 1, "idempotencyKey": "z-1" },
                    { "metric": "9bad", "quantity": 1, "idempotencyKey": "z-2" }
                ] } }),
            )
            .await;
        assert_eq!(code(&bad), "BAD_USER_INPUT");
        assert_eq!(bad["errors"][0]["extensions"]["field"], "events[1].metric");
        let neg = app
            .gql(
                Some(&key),
                m,
                json!({ "i": { "events": [{ "metric": "x", "quantity": -1, "idempotencyKey": "z-3" }] } }),
            )
            .await;
        assert_eq!(neg["errors"][0]["extensions"]["field"], "events[0].quantity");
        let retry = app
            .gql_ok(
                Some(&key),
                m,
                json!({ "i": { "events": [{ "metric": "ok", "quantity": 1, "idempotencyKey": "z-1" }] } }),
            )
            .await;
        assert_eq!(retry["recordUsage"]["accepted"], 1, "the refused call stored nothing");

        // Another organization: only a platform service key may name it.
        let other = app
            .gql(Some(&key), m, json!({ "i": { "organizationId": admin.org_id, "events": [{ "metric": "x", "quantity": 1, "idempotencyKey": "o-1" }] } }))
            .await;
        assert_eq!(code(&other), "FORBIDDEN");
        let (service, _) = app.create_key(&admin.token, &["usage:write"]).await;
        let for_dev = app
            .gql_ok(Some(&service), m, json!({ "i": { "organizationId": dev.org_id, "events": [{ "metric": "x", "quantity": 1, "idempotencyKey": "a-1" }] } }))
            .await;
        assert_eq!(for_dev["recordUsage"]["duplicates"], 1, "keys are per organization: a-1 exists for dev's");
        let for_admin = app
            .gql_ok(
                Some(&service),
                m,
                json!({ "i": { "events": [{ "metric": "x", "quantity": 1, "idempotencyKey": "a-1" }] } }),
            )
            .await;
        assert_eq!(for_admin["recordUsage"]["accepted"], 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_the_months_quota_count() {
    for backend in backends() {
        let app = TestApp::new(backend).await;
        let s = app.register("dev@example.com").await; // platform administrator, on the default plan
        let plan = "pln_0000000000000000000starter";
        let m = "mutation($id: ID!) { updatePlan(id: $id, input: {monthlyQuota: 10, perSecond: null, perDay: null}) { slug } }";
        app.gql_ok(Some(&s.token), m, json!({ "id": plan })).await; // quota call 1
        let (key, _) = app.create_key(&s.token, &["*"]).await; // 2
        for _ in 0..4 {
            assert_eq!(viewer(&app, &key).await, 200); // 3..=6
        }
        let redis_prefix = app.app.config.redis_prefix.clone();
        let app = app.restart().await;
        if backend == Backend::PostgresRedis {
            // Lose Redis's counter too: the count must come back from the roll-ups.
            let client = redis::Client::open(crate::common::REDIS_URL).unwrap();
            let mut conn = client.get_multiplexed_async_connection().await.unwrap();
            let keys: Vec<String> =
                redis::cmd("KEYS").arg(format!("{redis_prefix}:*quota*")).query_async(&mut conn).await.unwrap();
            assert!(!keys.is_empty());
            let _: () = redis::cmd("DEL").arg(&keys).query_async(&mut conn).await.unwrap();
            gantry::usage::reconcile_quotas(&app.app).await.unwrap();
        }
        let mut admitted = 0;
        for _ in 0..10 {
            match viewer(&app, &key).await {
                200 => admitted += 1,
                429 => break,
                other => panic!("unexpected {other}"),
            }
        }
        assert_eq!(admitted, 4, "[{backend:?}] 6 of 10 were used before the restart");
        let refused = app.gql(Some(&key), "{ viewer { id } }", json!({})).await;
        assert_eq!(code(&refused), "QUOTA_EXCEEDED");
    }
}

/// Sets the Starter plan's monthly quota to `n` and lifts its per-second and per-day windows
/// (`admin_token`: the platform administrator's).
async fn set_starter_quota(app: &TestApp, admin_token: &str, n: i64) {
    let m = format!(
        "mutation {{ updatePlan(id: \"pln_0000000000000000000starter\", input: {{monthlyQuota: {n}, perSecond: null, perDay: null}}) {{ slug }} }}"
    );
    app.gql_ok(Some(admin_token), &m, json!({})).await;
}

/// Reads the socket until each subscription id in `want` has had that many `next` payloads;
/// returns them by id, each in arrival order (messages of other subscriptions are skipped).
async fn collect(
    sock: &mut crate::common::ws::Socket,
    want: &[(&str, usize)],
) -> std::collections::HashMap<String, Vec<Value>> {
    let mut got: std::collections::HashMap<String, Vec<Value>> = std::collections::HashMap::new();
    while want.iter().any(|(id, n)| got.get(*id).map_or(0, Vec::len) < *n) {
        // `ws::next` gives up after 10 s without a message.
        let msg = crate::common::ws::next(sock).await.expect("message");
        if let (Some("next"), Some(id)) = (msg["type"].as_str(), msg["id"].as_str())
            && want.iter().any(|(w, _)| *w == id)
        {
            got.entry(id.to_string()).or_default().push(msg["payload"].clone());
        }
    }
    got
}

/// The next `next` payload of subscription `id` on the socket.
async fn next_of(sock: &mut crate::common::ws::Socket, id: &str) -> Value {
    loop {
        let msg = tokio::time::timeout(std::time::Duration::from_secs(10), crate::common::ws::next(sock))
            .await
            .expect("a message within 10 s")
            .expect("message");
        if msg["type"] == "next" && msg["id"] == id {
            return msg["payload"].clone();
        }
    }
}

/// The next message (`next` or `error`) of operation `id`, whole.
async fn message_of(sock: &mut crate::common::ws::Socket, id: &str) -> Value {
    loop {
        let msg = crate::common::ws::next(sock).await.expect("message");
        if msg["id"] == id && msg["type"] != "complete" {
            return msg;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crossing_quota_thresholds_and_a_key_refused_by_the_quota_reach_subscribers() {
    use crate::common::ws;
    for backend in backends() {
        let app = TestApp::new(backend).await;
        let s = app.register("dev@example.com").await; // platform administrator
        set_starter_quota(&app, &s.token, 50).await;
        let (key, key_id) = app.create_key(&s.token, &["*"]).await;
        let mut sock = ws::connect_authed(&app.ws_url(), &s.token).await;
        ws::subscribe(
            &mut sock,
            "t",
            "subscription { usageThresholdReached(threshold: 90) { type percent used quota severity } }",
        )
        .await;
        ws::subscribe(
            &mut sock,
            "k",
            &format!("subscription {{ apiKeyQuotaExceeded(keyId: \"{key_id}\") {{ type keyId severity }} }}"),
        )
        .await;
        // A bad threshold is refused with a code: a resolver error, a `next` payload with the error.
        ws::subscribe(&mut sock, "bad", "subscription { usageThresholdReached(threshold: 0) { percent } }").await;
        let msg = message_of(&mut sock, "bad").await;
        assert_eq!(msg["payload"]["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{msg}");
        assert_eq!(msg["payload"]["errors"][0]["extensions"]["field"], "threshold");
        // Both subscriptions are live once an event of a later one arrives.
        ws::subscribe(&mut sock, "sync", "subscription { events(types: [\"key.*\"]) { type } }").await;
        let mut synced = false;
        for _ in 0..10 {
            app.create_key(&s.token, &["keys:read"]).await;
            if tokio::time::timeout(std::time::Duration::from_millis(300), next_of(&mut sock, "sync")).await.is_ok() {
                synced = true;
                break;
            }
        }
        assert!(synced, "[{backend:?}] subscriptions never became live");
        let mut admitted = 0;
        loop {
            match viewer(&app, &key).await {
                200 => admitted += 1,
                429 => break,
                other => panic!("unexpected {other}"),
            }
            assert!(admitted <= 50);
        }
        assert!(admitted > 0);
        // Each subscription is its own stream: "k" may come before the second "t".
        let got = collect(&mut sock, &[("t", 2), ("k", 1)]).await;
        let first = &got["t"][0];
        assert_eq!(
            first["data"]["usageThresholdReached"],
            json!({ "type": "quota.threshold_reached", "percent": 90, "used": 45, "quota": 50, "severity": "HIGH" }),
            "[{backend:?}] 80 % is below the subscriber's threshold"
        );
        let second = &got["t"][1];
        assert_eq!(second["data"]["usageThresholdReached"]["percent"], 100);
        assert_eq!(second["data"]["usageThresholdReached"]["severity"], "CRITICAL");
        let refused = &got["k"][0];
        assert_eq!(
            refused["data"]["apiKeyQuotaExceeded"],
            json!({ "type": "quota.key_exceeded", "keyId": key_id, "severity": "CRITICAL" })
        );
        // Subscription starts are charged to the quota like any request: once it is used up, a new
        // one is refused.
        ws::subscribe(&mut sock, "late", "subscription { events { type } }").await;
        let late = message_of(&mut sock, "late").await;
        assert_eq!(
            (late["type"].as_str(), late["payload"][0]["extensions"]["code"].as_str()),
            (Some("error"), Some("QUOTA_EXCEEDED")),
            "{late}"
        );
    }
}

#[test]
fn each_threshold_is_crossed_by_exactly_one_count() {
    use gantry::alerts::crossed;
    let all: Vec<u64> = (1..=12).flat_map(|used| crossed(10, used, 1)).collect();
    assert_eq!(all, vec![80, 90, 100]);
    assert_eq!(crossed(10, 8, 1), vec![80]);
    assert_eq!(crossed(3, 3, 3), vec![80, 90, 100], "one large step crosses several");
}

async fn alerts_of(app: &TestApp, token: &str, status: &str) -> Vec<Value> {
    let q = format!(
        "{{ alerts(status: [{status}], first: 100) {{ totalCount edges {{ node {{ id kind severity status title occurrences data acknowledgedBy resolvedAt }} }} }} }}"
    );
    let d = app.gql_ok(Some(token), &q, json!({})).await;
    d["alerts"]["edges"].as_array().unwrap().iter().map(|e| e["node"].clone()).collect()
}

async fn event_count(app: &TestApp, event_type: &str) -> i64 {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use gantry::platform::db::schema::events;
    let n: Result<i64, gantry::error::Error> = async {
        Ok(gantry::with_conn!(app.app.db, c => {
            events::table.filter(events::event_type.eq(event_type)).count().get_result(c).await?
        }))
    }
    .await;
    n.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_that_cannot_be_stored_is_kept_and_stored_once_the_database_takes_it() {
    for backend in backends() {
        let app = TestApp::new(backend).await;
        let admin = app.register("ops@example.com").await; // platform administrator, another organization
        let s = app.register("dev@example.com").await;
        set_starter_quota(&app, &admin.token, 10).await;
        let (key, _) = app.create_key(&s.token, &["keys:read"]).await;
        gantry::alerts::drain(&app.app).await.unwrap();
        refuse_inserts(&app, "events", "1 = 1", true).await;
        // Through the quota: three thresholds crossed, then the key refused.
        while viewer(&app, &key).await == 200 {}
        assert!(
            gantry::alerts::drain(&app.app).await.is_err(),
            "[{backend:?}] the triggers are stored while the database refuses them"
        );
        assert_eq!(event_count(&app, THRESHOLD_EVENT).await, 0);
        refuse_inserts(&app, "events", "1 = 1", false).await;
        gantry::alerts::drain(&app.app).await.unwrap();
        assert_eq!(event_count(&app, THRESHOLD_EVENT).await, 3, "[{backend:?}] a threshold was lost");
        assert_eq!(event_count(&app, KEY_EXCEEDED_EVENT).await, 1, "[{backend:?}] the refusal was lost");
        set_starter_quota(&app, &admin.token, 1_000_000).await;
        assert_eq!(alerts_of(&app, &s.token, "OPEN").await.len(), 3);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_are_raised_acknowledged_and_resolved_when_their_condition_clears() {
    for backend in backends() {
        let app = TestApp::new(backend).await;
        // Five minutes into an hour, so "six minutes later" below is still the same hour.
        let hour = 3_600_000;
        app.clock.set_ms((app.app.clock.now_ms() / hour + 1) * hour + 5 * 60_000);
        let other = app.register("ops@example.com").await; // platform administrator, another organization
        let s = app.register("dev@example.com").await;
        set_starter_quota(&app, &other.token, 10).await;
        let (key_a, _) = app.create_key(&s.token, &["*"]).await; // dev's quota call 1
        let (key_b, _) = app
            .create_key_with(
                &s.token,
                json!({ "name": "b", "scopes": ["*"], "rateLimit": { "perSecond": 1, "burst": 0 } }),
            )
            .await; // 2
        for _ in 0..6 {
            assert_eq!(viewer(&app, &key_a).await, 200); // 3..=8: 80 % at 8
        }
        assert_eq!(viewer(&app, &key_b).await, 200); // 9: 90 %
        assert_eq!(viewer(&app, &key_b).await, 429); // refused by its per-second window
        // Room for the rest of the test (no threshold of the new quota is near).
        set_starter_quota(&app, &other.token, 1_000_000).await;
        gantry::alerts::drain(&app.app).await.unwrap();

        let open = alerts_of(&app, &s.token, "OPEN").await;
        let kinds: Vec<(&str, &str)> =
            open.iter().map(|a| (a["kind"].as_str().unwrap(), a["severity"].as_str().unwrap())).collect();
        assert_eq!(
            kinds,
            vec![("RATE_LIMIT_EXCEEDED", "MEDIUM"), ("QUOTA_THRESHOLD", "HIGH"), ("QUOTA_THRESHOLD", "MEDIUM")],
            "[{backend:?}] newest first: {open:?}"
        );
        assert_eq!(open[2]["data"]["percent"], 80);
        assert_eq!(open[2]["title"], "80 % of the monthly quota used (8 of 10)");
        assert!(alerts_of(&app, &other.token, "OPEN, ACKNOWLEDGED, RESOLVED").await.is_empty(), "per organization");

        // Acknowledge: idempotent, per organization.
        let ack = "mutation($id: ID!) { acknowledgeAlert(id: $id) { status acknowledgedBy } }";
        let id = open[2]["id"].as_str().unwrap();
        for _ in 0..2 {
            let a = app.gql_ok(Some(&s.token), ack, json!({ "id": id })).await;
            assert_eq!(a["acknowledgeAlert"], json!({ "status": "ACKNOWLEDGED", "acknowledgedBy": s.user_id }));
        }
        assert_eq!(code(&app.gql(Some(&other.token), ack, json!({ "id": id })).await), "NOT_FOUND");
        assert_eq!(alerts_of(&app, &s.token, "ACKNOWLEDGED").await.len(), 1);
        // An alert is a node, in its own organization only.
        let node = "query($id: ID!) { node(id: $id) { __typename ... on Alert { status } } }";
        let n = app.gql_ok(Some(&s.token), node, json!({ "id": id })).await;
        assert_eq!(n["node"], json!({ "__typename": "Alert", "status": "ACKNOWLEDGED" }), "[{backend:?}]");
        assert_eq!(code(&app.gql(Some(&other.token), node, json!({ "id": id })).await), "NOT_FOUND");

        // An error spike this hour: 30 calls, half of them 5xx, none before.
        let now = app.app.clock.now_ms();
        for i in 0..30 {
            app.app.meter.record(record(&app, &s.org_id, 2_000, if i % 2 == 0 { 500 } else { 200 }, now));
        }
        gantry::server::flush(&app.app).await;
        gantry::alerts::evaluate(&app.app, now).await.unwrap();
        let open = alerts_of(&app, &s.token, "OPEN").await;
        let spike =
            open.iter().find(|a| a["kind"] == "ERROR_SPIKE").unwrap_or_else(|| panic!("[{backend:?}] {open:?}"));
        assert_eq!(spike["severity"], "HIGH");
        assert!(open.iter().all(|a| a["kind"] != "UNUSUAL_ACTIVITY"), "30 calls are not unusual");
        // Evaluating again re-raises the same alert, not a new one.
        gantry::alerts::evaluate(&app.app, now).await.unwrap();
        let again = alerts_of(&app, &s.token, "OPEN").await;
        assert_eq!(again.iter().filter(|a| a["kind"] == "ERROR_SPIKE").count(), 1);
        assert_eq!(again.iter().find(|a| a["kind"] == "ERROR_SPIKE").unwrap()["occurrences"], 2);

        // Six minutes later the rate limit has been quiet: resolved; the spike holds this hour.
        gantry::alerts::evaluate(&app.app, now + 6 * 60_000).await.unwrap();
        let resolved = alerts_of(&app, &s.token, "RESOLVED").await;
        assert_eq!(
            resolved.iter().map(|a| a["kind"].as_str().unwrap()).collect::<Vec<_>>(),
            vec!["RATE_LIMIT_EXCEEDED"]
        );
        // The next hour is quiet: the spike clears. Next month: the quota alerts clear.
        let hour_later = now + 3_600_000;
        gantry::alerts::evaluate(&app.app, hour_later).await.unwrap();
        let next_month = now + gantry::platform::clock::month_reset_ms(now) + 1;
        gantry::alerts::evaluate(&app.app, next_month).await.unwrap();
        assert!(alerts_of(&app, &s.token, "OPEN, ACKNOWLEDGED").await.is_empty(), "[{backend:?}] all cleared");
        assert_eq!(alerts_of(&app, &s.token, "RESOLVED").await.len(), 4);

        // Each alert was one event when raised and one when resolved.
        assert_eq!(event_count(&app, "alert.triggered").await, 4, "[{backend:?}]");
        assert_eq!(event_count(&app, "alert.resolved").await, 4);
        assert_eq!(event_count(&app, "quota.threshold_reached").await, 2);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_usage_record_the_database_refuses_does_not_stop_metering() {
    for backend in backends() {
        let app = TestApp::with_config(backend, |c| c.usage_flush_interval_ms = 3_600_000).await;
        let s = app.register("dev@example.com").await;
        gantry::server::flush(&app.app).await;
        let now = app.app.clock.now_ms();
        let poison = gantry::platform::ids::OrgId::generate(now).to_string();
        refuse_inserts(&app, "usage_segments", &format!("NEW.org_id = '{poison}'"), true).await;
        app.app.meter.record(record(&app, &poison, 1_000, 200, now));
        for _ in 0..5 {
            app.app.meter.record(record(&app, &s.org_id, 1_000, 200, now));
        }
        // The batch fails as a whole twice (kept, as for an outage)…
        let before = app.app.meter.stats();
        for _ in 0..2 {
            assert!(app.app.meter.drain(&app.app.db).await.is_err(), "[{backend:?}]");
        }
        assert_eq!(app.app.meter.stats().written, before.written);
        assert_eq!(app.app.meter.stats().failing_writes, 2);
        // …and the third time, with the database answering, record by record: the good ones land,
        // the refused one is dropped.
        app.app.meter.drain(&app.app.db).await.unwrap();
        let after = app.app.meter.stats();
        assert_eq!(after.written - before.written, 5, "[{backend:?}] {after:?}");
        assert_eq!(after.dropped - before.dropped, 1, "{after:?}");
        assert_eq!(after.buffered, 0);
        let calls = "{ usage(period: LAST_HOUR) { stats { calls } } }";
        let d = app.gql_ok(Some(&s.token), calls, json!({})).await;
        assert_eq!(d["usage"]["stats"]["calls"], 5, "[{backend:?}] {d}");
        // While the database refuses everything, nothing is dropped.
        refuse_inserts(&app, "usage_segments", &format!("NEW.org_id = '{poison}'"), false).await;
        refuse_inserts(&app, "usage_segments", "1 = 1", true).await;
        app.app.meter.record(record(&app, &s.org_id, 1_000, 200, now));
        for _ in 0..4 {
            assert!(app.app.meter.drain(&app.app.db).await.is_err());
        }
        assert_eq!(app.app.meter.stats().dropped, after.dropped, "an outage drops nothing");
        refuse_inserts(&app, "usage_segments", "1 = 1", false).await;
        app.app.meter.drain(&app.app.db).await.unwrap();
        let last = app.app.meter.stats();
        // The held record, plus the analytics call above.
        assert_eq!((last.written - after.written, last.dropped, last.buffered), (2, after.dropped, 0), "[{backend:?}]");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_operation_name_and_a_forged_content_length_are_metered_within_bounds() {
    for backend in backends() {
        let app = TestApp::with_config(backend, |c| c.usage_flush_interval_ms = 3_600_000).await;
        let s = app.register("dev@example.com").await;
        let name = format!("Q{}", "x".repeat(4000));
        let r = app.gql(Some(&s.token), &format!("query {name} {{ viewer {{ id }} }}"), json!({})).await;
        assert!(r["errors"].is_null(), "{r}");
        // A GET whose body is never read (so never sent here), claiming the largest length there is.
        for _ in 0..2 {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut tcp = tokio::net::TcpStream::connect(app.addr).await.unwrap();
            let request = format!(
                "GET /graphql?query=%7B%20viewer%20%7B%20id%20%7D%20%7D HTTP/1.1\r\nhost: localhost\r\n\
                 authorization: Bearer {}\r\ncontent-length: 9223372036854775807\r\n\r\n",
                s.token
            );
            tcp.write_all(request.as_bytes()).await.unwrap();
            let mut head = vec![0u8; 12];
            tcp.read_exact(&mut head).await.unwrap();
            let status = String::from_utf8_lossy(&head[9..12]).to_string();
            assert!(status.as_str() < "500", "[{backend:?}] {status}");
        }
        app.app.meter.drain(&app.app.db).await.unwrap();
        let d = app
            .gql_ok(
                Some(&s.token),
                "{ usageByEndpoint(period: LAST_HOUR) { operation stats { calls requestBytes } } }",
                json!({}),
            )
            .await;
        let ops = d["usageByEndpoint"].as_array().unwrap();
        let long = ops.iter().find(|o| o["operation"].as_str().unwrap().starts_with("query Qxxx")).expect("metered");
        assert_eq!(long["operation"].as_str().unwrap().len(), 120, "[{backend:?}] cut to 120 bytes");
        let total: i64 = ops.iter().map(|o| o["stats"]["requestBytes"].as_i64().unwrap()).sum();
        assert!(total <= 10 * 1024 * 1024, "[{backend:?}] request bytes as claimed: {total}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_keeps_trying_to_write_what_it_buffered_until_a_deadline() {
    for backend in backends() {
        let app = TestApp::with_config(backend, |c| c.usage_flush_interval_ms = 3_600_000).await;
        let s = app.register("dev@example.com").await;
        gantry::server::flush(&app.app).await;
        let now = app.app.clock.now_ms();
        let before = app.app.meter.stats();
        refuse_inserts(&app, "usage_segments", "1 = 1", true).await;
        for _ in 0..3 {
            app.app.meter.record(record(&app, &s.org_id, 1_000, 200, now));
        }
        // With a short deadline it gives up, and says so; nothing is dropped meanwhile.
        assert!(
            !gantry::server::flush_before_exit(&app.app, std::time::Duration::from_millis(250)).await,
            "[{backend:?}]"
        );
        assert_eq!(app.app.meter.stats().dropped, before.dropped);
        // With time to spare, it writes everything once the database takes it again.
        let failing = app.app.meter.stats().failing_writes;
        let stopping = tokio::spawn({
            let app = app.app.clone();
            async move { gantry::server::flush_before_exit(&app, std::time::Duration::from_secs(30)).await }
        });
        for _ in 0..500 {
            if app.app.meter.stats().failing_writes > failing {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(app.app.meter.stats().failing_writes > failing, "[{backend:?}] the stopping flush never tried");
        refuse_inserts(&app, "usage_segments", "1 = 1", false).await;
        assert!(stopping.await.unwrap(), "[{backend:?}] everything is written before the deadline");
        let after = app.app.meter.stats();
        assert_eq!(
            (after.written - before.written, after.dropped, after.buffered),
            (3, before.dropped, 0),
            "[{backend:?}]"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_degradation_and_unusual_activity_are_raised_and_resolved() {
    for backend in backends() {
        let app = TestApp::new(backend).await;
        let hour = 3_600_000;
        app.clock.set_ms((app.app.clock.now_ms() / hour + 1) * hour + 5 * 60_000);
        let s = app.register("dev@example.com").await;
        let now = app.app.clock.now_ms();
        // The previous 24 hours: 200 calls at 10 ms, two hours back. This hour: 120 at 50 ms.
        for _ in 0..200 {
            app.app.meter.record(record(&app, &s.org_id, 10_000, 200, now - 2 * hour));
        }
        for _ in 0..120 {
            app.app.meter.record(record(&app, &s.org_id, 50_000, 200, now));
        }
        gantry::server::flush(&app.app).await;
        gantry::alerts::evaluate(&app.app, now).await.unwrap();
        let open = alerts_of(&app, &s.token, "OPEN").await;
        let find = |kind: &str| open.iter().find(|a| a["kind"] == kind).cloned();
        let latency = find("LATENCY_DEGRADATION").unwrap_or_else(|| panic!("[{backend:?}] {open:?}"));
        assert_eq!(latency["severity"], "MEDIUM");
        let p95 = latency["data"]["p95LatencyMs"].as_f64().unwrap();
        let before = latency["data"]["baselineP95LatencyMs"].as_f64().unwrap();
        assert!((p95 - 50.0).abs() <= 50.0 * 0.025 && (before - 10.0).abs() <= 10.0 * 0.025, "{latency}");
        let unusual = find("UNUSUAL_ACTIVITY").unwrap_or_else(|| panic!("[{backend:?}] {open:?}"));
        assert_eq!(unusual["severity"], "LOW");
        assert_eq!(unusual["data"]["calls"], 120);
        assert!(find("ERROR_SPIKE").is_none(), "no 5xx, no spike: {open:?}");
        // The next hour is quiet: both conditions cleared.
        gantry::alerts::evaluate(&app.app, now + hour).await.unwrap();
        let resolved: Vec<String> = alerts_of(&app, &s.token, "RESOLVED")
            .await
            .iter()
            .map(|a| a["kind"].as_str().unwrap().to_string())
            .collect();
        assert!(
            resolved.contains(&"LATENCY_DEGRADATION".into()) && resolved.contains(&"UNUSUAL_ACTIVITY".into()),
            "[{backend:?}] {resolved:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_forecast_projects_the_month_and_when_the_quota_runs_out() {
    for backend in backends() {
        let app = TestApp::new(backend).await;
        // Ten days into January 2027 (31 days).
        let start = chrono::DateTime::parse_from_rfc3339("2027-01-01T00:00:00Z").unwrap().timestamp_millis();
        let day = 86_400_000;
        app.clock.set_ms(start + 10 * day);
        let admin = app.register("ops@example.com").await;
        let s = app.register("dev@example.com").await;
        for _ in 0..1000 {
            app.app.meter.record(record(&app, &s.org_id, 1_000, 200, start + 10 * day - 3_600_000));
        }
        gantry::server::flush(&app.app).await;
        let q = "{ usageForecast { periodStart periodEnd calls projectedCalls quotaUsed projectedQuotaUsed monthlyQuota projectedPercentOfQuota quotaExhaustedAt } }";
        let f = app.gql_ok(Some(&s.token), q, json!({})).await;
        assert_eq!(
            f["usageForecast"],
            json!({
                "periodStart": "2027-01-01T00:00:00.000Z", "periodEnd": "2027-02-01T00:00:00.000Z",
                "calls": 1000, "projectedCalls": 3100, "quotaUsed": 1000, "projectedQuotaUsed": 3100,
                "monthlyQuota": 100000, "projectedPercentOfQuota": 3.1, "quotaExhaustedAt": null,
            }),
            "[{backend:?}]"
        );
        // At 100 a day, a quota of 2000 runs out on the 20th day. (The forecast queries
        // themselves count once the background flush writes them: computed from what it read.)
        set_starter_quota(&app, &admin.token, 2000).await;
        let f = app.gql_ok(Some(&s.token), q, json!({})).await;
        let used = f["usageForecast"]["quotaUsed"].as_i64().unwrap();
        assert!((1000..=1002).contains(&used), "[{backend:?}] {f}");
        let at = start + (2000.0 * (10 * day) as f64 / used as f64) as i64;
        assert_eq!(f["usageForecast"]["quotaExhaustedAt"], gantry::platform::clock::rfc3339(at), "[{backend:?}] {f}");
        if used == 1000 {
            assert_eq!(f["usageForecast"]["quotaExhaustedAt"], "2027-01-21T00:00:00.000Z");
            assert_eq!(f["usageForecast"]["projectedPercentOfQuota"], 155.0);
        }
    }
}

use std::sync::Arc;

use serde_json::{Value, json};

use crate::common::{Backend, TestApp, backends, code};

/// A viewer query with a key; returns (status, headers, body).
async fn call(app: &TestApp, key: &str) -> (u16, reqwest::header::HeaderMap, Value) {
    let resp = app
        .http
        .post(app.url("/graphql"))
        .bearer_auth(key)
        .json(&json!({ "query": "{ viewer { id } }" }))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.json().await.unwrap())
}

async fn key_with_limits(app: &TestApp, token: &str, rate_limit: Value) -> String {
    app.create_key_with(token, json!({ "name": "limited", "scopes": ["*"], "rateLimit": rate_limit })).await.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windows_admit_limit_plus_burst_then_refuse_with_retry_after() {
    for backend in backends() {
        let app = TestApp::new(backend).await;
        let s = app.register("dev@example.com").await;
        let key = key_with_limits(&app, &s.token, json!({ "perSecond": 2, "burst": 1 })).await;
        for i in 0..3 {
            let (status, headers, _) = call(&app, &key).await;
            assert_eq!(status, 200, "[{backend:?}] request {i}");
            assert_eq!(headers["x-ratelimit-limit"], "3");
            assert_eq!(headers["x-ratelimit-remaining"], (2 - i).to_string().as_str());
            assert!(headers["ratelimit-policy"].to_str().unwrap().contains("\"second\";q=3;w=2"));
            assert!(headers["ratelimit"].to_str().unwrap().starts_with("\"second\";r="));
        }
        let (status, headers, body) = call(&app, &key).await;
        assert_eq!((status, code(&body)), (429, "RATE_LIMITED"), "[{backend:?}] {body}");
        assert_eq!(body["errors"][0]["extensions"]["retryAfter"], 1);
        assert_eq!(body["errors"][0]["extensions"]["window"], "second");
        assert_eq!(headers["retry-after"], "1");
        // One request refills every 500 ms.
        app.clock.advance_ms(499);
        assert_eq!(call(&app, &key).await.0, 429);
        app.clock.advance_ms(1);
        assert_eq!(call(&app, &key).await.0, 200);

        // REST: the seeds' 429 body.
        let (status, body) = app.rest("GET", "/keys", Some(&key), None).await;
        assert_eq!(status, 429, "{body}");
        assert_eq!(body["error"]["type"], "rate_limit_exceeded");
        assert_eq!(body["error"]["details"], json!({ "limit": 2, "period": "1s", "retry_after": 1 }));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_in_one_window_charges_no_other_window() {
    for backend in backends() {
        let app = TestApp::new(backend).await;
        let s = app.register("dev@example.com").await;
        let key = key_with_limits(&app, &s.token, json!({ "perSecond": 5, "burst": 0, "perMinute": 6 })).await;
        for _ in 0..5 {
            assert_eq!(call(&app, &key).await.0, 200);
        }
        // Refused by the second window; the minute window (1 left) must not be charged.
        let (status, _, body) = call(&app, &key).await;
        assert_eq!(body["errors"][0]["extensions"]["window"], "second", "[{backend:?}] {body}");
        assert_eq!(status, 429);
        app.clock.advance_ms(1000);
        let (status, headers, _) = call(&app, &key).await;
        assert_eq!(status, 200, "[{backend:?}] the minute window still had one request left");
        assert_eq!(headers["x-ratelimit-remaining"], "0");
        let (status, _, body) = call(&app, &key).await;
        assert_eq!((status, body["errors"][0]["extensions"]["window"].as_str()), (429, Some("minute")));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_resolve_key_override_then_plan_then_default() {
    for backend in backends() {
        let app = TestApp::new(backend).await;
        let admin = app.register("admin@example.com").await;
        let s = app.register("dev@example.com").await;
        let q = "{ rateLimitStatus { policy source plan { slug } windows { name limit capacity remaining } monthlyQuota { limit used } concurrency } viewer { organization { plan { slug perSecond } } } }";
        let (plain, _) = app.create_key(&s.token, &["*"]).await;
        let data = app.gql_ok(Some(&plain), q, json!({})).await;
        let st = &data["rateLimitStatus"];
        assert_eq!(
            (st["policy"].as_str(), st["source"].as_str()),
            (Some("starter"), Some("PLAN")),
            "[{backend:?}] {data}"
        );
        assert_eq!(st["windows"][0], json!({ "name": "second", "limit": 10, "capacity": 20, "remaining": 19 }));
        assert_eq!(st["windows"][1]["name"], "day");
        // The organization's month so far: the session's createApiKey and this query.
        assert_eq!(st["monthlyQuota"], json!({ "limit": 100000, "used": 2 }));
        assert_eq!(st["concurrency"], 5);
        assert_eq!(data["viewer"]["organization"]["plan"]["slug"], "starter");

        let custom = key_with_limits(&app, &s.token, json!({ "perSecond": 3 })).await;
        let data = app.gql_ok(Some(&custom), q, json!({})).await;
        assert_eq!(data["rateLimitStatus"]["source"], "KEY");
        assert_eq!(data["rateLimitStatus"]["windows"][0]["limit"], 3);

        // Moving the organization to Pro applies at once (the plan cache is cleared).
        let pro = app.gql_ok(Some(&admin.token), "{ plans { id slug } }", json!({})).await;
        let pro_id = pro["plans"].as_array().unwrap().iter().find(|p| p["slug"] == "pro").unwrap()["id"].clone();
        let denied = app
            .gql(
                Some(&s.token),
                "mutation($o: ID!, $p: ID!) { setOrganizationPlan(organizationId: $o, planId: $p) { slug } }",
                json!({ "o": s.org_id, "p": pro_id }),
            )
            .await;
        assert_eq!(code(&denied), "FORBIDDEN", "only platform administrators change plans");
        app.gql_ok(
            Some(&admin.token),
            "mutation($o: ID!, $p: ID!) { setOrganizationPlan(organizationId: $o, planId: $p) { slug } }",
            json!({ "o": s.org_id, "p": pro_id }),
        )
        .await;
        let data = app.gql_ok(Some(&plain), q, json!({})).await;
        assert_eq!(data["rateLimitStatus"]["policy"], "pro");
        assert_eq!(data["rateLimitStatus"]["windows"][0]["limit"], 50);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_monthly_quota_refuses_with_quota_exceeded_and_verify_reports_it() {
    for backend in backends() {
        let app = TestApp::new(backend).await;
        let admin = app.register("admin@example.com").await;
        let s = app.register("dev@example.com").await;
        app.gql_ok(Some(&admin.token), "mutation { updatePlan(id: \"pln_0000000000000000000starter\", input: {monthlyQuota: 3}) { monthlyQuota } }", json!({})).await;
        // The session's createApiKey is the organization's first request of the month.
        let (key, _) = app.create_key(&s.token, &["*"]).await;
        for _ in 0..2 {
            assert_eq!(call(&app, &key).await.0, 200, "[{backend:?}]");
        }
        let (status, _, body) = call(&app, &key).await;
        assert_eq!((status, code(&body)), (429, "QUOTA_EXCEEDED"), "[{backend:?}] {body}");
        let (status, body) = app.rest("GET", "/keys", Some(&key), None).await;
        assert_eq!((status, body["error"]["type"].as_str()), (429, Some("quota_exceeded")));

        // verifyApiKey answers with the verdict instead of failing.
        let (verifier, _) = app.create_key(&admin.token, &["keys:verify"]).await;
        let v = app
            .gql_ok(Some(&verifier), "mutation($k: String!) { verifyApiKey(input: {key: $k}) { valid code rateLimit { monthlyUsed monthlyQuota retryAfter } } }", json!({ "k": key }))
            .await;
        assert_eq!(v["verifyApiKey"]["valid"], false);
        assert_eq!(v["verifyApiKey"]["code"], "QUOTA_EXCEEDED");
        assert_eq!(v["verifyApiKey"]["rateLimit"]["monthlyQuota"], 3);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_charges_the_verified_keys_limits() {
    for backend in backends() {
        let app = TestApp::new(backend).await;
        let admin = app.register("admin@example.com").await;
        let s = app.register("dev@example.com").await;
        let (verifier, _) = app.create_key(&admin.token, &["keys:verify"]).await;
        let key = key_with_limits(&app, &s.token, json!({ "perSecond": 1, "burst": 1 })).await;
        let q = "mutation($k: String!) { verifyApiKey(input: {key: $k}) { valid code rateLimit { window limit remaining retryAfter } } }";
        let codes: Vec<Value> = {
            let mut out = Vec::new();
            for _ in 0..3 {
                out.push(app.gql_ok(Some(&verifier), q, json!({ "k": key })).await["verifyApiKey"].clone());
            }
            out
        };
        assert_eq!(codes[0]["valid"], true, "[{backend:?}] {codes:?}");
        assert_eq!(
            codes[0]["rateLimit"],
            json!({ "window": "second", "limit": 2, "remaining": 1, "retryAfter": null })
        );
        assert_eq!(codes[1]["valid"], true);
        assert_eq!(codes[2]["code"], "RATE_LIMITED");
        assert_eq!(codes[2]["rateLimit"]["retryAfter"], 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_concurrency_cap_holds_until_a_request_ends() {
    use gantry::limits::limiter::{Limiter, MemoryLimiter, RedisLimiter, Subject};
    use gantry::limits::policy::Override;
    for backend in backends() {
        let app = TestApp::new(backend).await;
        let limiter = match backend {
            Backend::SqliteMemory => Limiter::Memory(MemoryLimiter::default()),
            Backend::PostgresRedis => {
                let client = redis::Client::open(crate::common::REDIS_URL).unwrap();
                let conn = client.get_connection_manager().await.unwrap();
                Limiter::Redis(RedisLimiter::new(
                    conn,
                    &crate::common::unique("conc-"),
                    gantry::limits::limiter::Fallback::Local,
                ))
            }
        };
        let plan = gantry::limits::service::plan_for_org(&app.app, &"org_00000000000000000000000000".parse().unwrap())
            .await
            .unwrap();
        let policy = Arc::new(gantry::limits::policy::Policy::with_override(
            plan,
            &Override { concurrency: Some(2), ..Default::default() },
        ));
        let subject = Subject { rate: "key_a".into(), org: "org_a".into() };
        let now = 1_800_000_000_000;
        let (d1, p1) = limiter.acquire(&subject, policy.clone(), 1, 0, now).await;
        let (d2, p2) = limiter.acquire(&subject, policy.clone(), 1, 0, now).await;
        assert!(d1.allowed() && d2.allowed(), "[{backend:?}]");
        let (d3, p3) = limiter.acquire(&subject, policy.clone(), 1, 0, now).await;
        assert_eq!(d3.refusal, Some(gantry::limits::limiter::Refusal::Concurrency), "[{backend:?}]");
        assert!(p3.is_none());
        drop(p1);
        // Redis releases asynchronously: poll (bounded) until the slot is back.
        let mut admitted = false;
        for _ in 0..50 {
            let (d, p) = limiter.acquire(&subject, policy.clone(), 1, 0, now).await;
            if d.allowed() {
                admitted = true;
                drop(p);
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(admitted, "[{backend:?}] a released slot is reusable");
        drop(p2);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_lost_mid_test_falls_back_to_local_limits_and_readyz_says_so() {
    if !crate::common::postgres_and_redis() {
        return;
    }
    let mut proxy = crate::common::RedisProxy::start().await;
    let url = proxy.url();
    let app = TestApp::with_config(Backend::PostgresRedis, move |c| c.redis_url = Some(url)).await;
    let s = app.register("dev@example.com").await;
    let key = key_with_limits(&app, &s.token, json!({ "perSecond": 3, "burst": 0 })).await;
    let status = app.gql_ok(Some(&key), "{ rateLimitStatus { degraded } }", json!({})).await;
    assert_eq!(status["rateLimitStatus"]["degraded"], false);

    proxy.cut().await;
    // Still served, with limits decided by this node alone.
    let data = app.gql_ok(Some(&key), "{ rateLimitStatus { degraded windows { remaining } } }", json!({})).await;
    assert_eq!(data["rateLimitStatus"]["degraded"], true, "{data}");
    assert_eq!(call(&app, &key).await.0, 200);
    assert_eq!(call(&app, &key).await.0, 200);
    let (status, _, body) = call(&app, &key).await;
    assert_eq!((status, code(&body)), (429, "RATE_LIMITED"), "local limits still hold: {body}");
    let ready: Value = app.http.get(app.url("/readyz")).send().await.unwrap().json().await.unwrap();
    assert_eq!(ready["status"], "degraded", "{ready}");
    assert_eq!(ready["checks"]["limiter"]["status"], "degraded");
    assert_eq!(ready["checks"]["database"]["status"], "ok");

    // Back to Redis once it returns (probed at most once a second of the injected clock).
    proxy.restore().await;
    app.clock.advance_ms(2_000);
    let mut back = false;
    for _ in 0..100 {
        let data = app.gql(Some(&key), "{ rateLimitStatus { degraded } }", json!({})).await;
        if data["data"]["rateLimitStatus"]["degraded"] == false {
            back = true;
            break;
        }
        app.clock.advance_ms(1_000);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(back, "the limiter returned to Redis");
    let ready: Value = app.http.get(app.url("/readyz")).send().await.unwrap().json().await.unwrap();
    assert_eq!(ready["checks"]["limiter"]["status"], "ok", "{ready}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_cost_is_reported_capped_and_charged_to_a_points_bucket() {
    for backend in backends() {
        let app = TestApp::new(backend).await;
        let admin = app.register("admin@example.com").await;
        let s = app.register("dev@example.com").await;
        let (key, _) = app.create_key(&s.token, &["*"]).await;
        let q = "{ apiKeys(first: 10) { edges { node { id name } } } }";
        let body = app.gql(Some(&key), q, json!({})).await;
        let cost = &body["extensions"]["cost"];
        let requested = cost["requestedQueryCost"].as_u64().unwrap();
        assert!(requested > 10, "[{backend:?}] a connection costs its page size: {body}");
        assert_eq!(cost["actualQueryCost"].as_u64(), Some(requested));
        assert_eq!(cost["throttleStatus"]["maximumAvailable"], 10000);
        assert_eq!(cost["throttleStatus"]["currentlyAvailable"].as_u64(), Some(10000 - requested));
        assert_eq!(cost["throttleStatus"]["restoreRate"], 500);

        // A small bucket: three queries fit, the fourth waits for points.
        let bucket = requested * 3;
        app.gql_ok(
            Some(&admin.token),
            "mutation($b: Int!) { updatePlan(id: \"pln_0000000000000000000starter\", input: {queryCostMax: 5000, queryCostBucket: $b, queryCostRestoreRate: 1}) { queryCostBucket } }",
            json!({ "b": bucket }),
        )
        .await;
        // A fresh key: its bucket starts full at the new size.
        let (key, _) = app.create_key(&s.token, &["*"]).await;
        for _ in 0..3 {
            let body = app.gql(Some(&key), q, json!({})).await;
            assert!(body.get("errors").is_none(), "[{backend:?}] {body}");
        }
        let (status, headers, body) = {
            let r =
                app.http.post(app.url("/graphql")).bearer_auth(&key).json(&json!({ "query": q })).send().await.unwrap();
            let status = r.status().as_u16();
            let headers = r.headers().clone();
            (status, headers, r.json::<Value>().await.unwrap())
        };
        assert_eq!((status, code(&body)), (429, "RATE_LIMITED"), "[{backend:?}] {body}");
        assert_eq!(headers["retry-after"].to_str().unwrap(), requested.to_string(), "one point a second");
        assert_eq!(body["data"], Value::Null, "refused before running");
        app.clock.advance_ms(requested as i64 * 1000);
        assert!(app.gql(Some(&key), q, json!({})).await.get("errors").is_none());

        // Above the per-query maximum: refused outright, whatever the bucket holds.
        app.gql_ok(Some(&admin.token), "mutation { updatePlan(id: \"pln_0000000000000000000starter\", input: {queryCostMax: 20}) { queryCostMax } }", json!({})).await;
        let body = app.gql(Some(&key), q, json!({})).await;
        assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
        assert!(body["errors"][0]["message"].as_str().unwrap().contains("exceeds the maximum of 20"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operation_with_a_cost_counts_as_that_many_requests() {
    for backend in backends() {
        let app = TestApp::new(backend).await;
        let admin = app.register("ops@example.com").await;
        let dev = app.register("dev@example.com").await;
        let key = key_with_limits(&app, &dev.token, json!({ "perSecond": 10, "burst": 0 })).await;
        let set = "mutation($o: String!, $c: Int!) { setOperationCost(operation: $o, cost: $c) { operation cost } }";
        let all = app.gql_ok(Some(&admin.token), set, json!({ "o": "Query.plans", "c": 4 })).await;
        assert_eq!(all["setOperationCost"], json!([{ "operation": "Query.plans", "cost": 4 }]));
        app.gql_ok(Some(&admin.token), set, json!({ "o": "GET /api/v1/keys", "c": 3 })).await;

        let plans = async || {
            let resp = app
                .http
                .post(app.url("/graphql"))
                .bearer_auth(&key)
                .json(&json!({ "query": "{ plans { slug } }" }))
                .send()
                .await
                .unwrap();
            (resp.status().as_u16(), resp.headers()["x-ratelimit-remaining"].to_str().unwrap().to_string())
        };
        assert_eq!(plans().await, (200, "6".to_string()), "[{backend:?}]");
        assert_eq!(call(&app, &key).await.1["x-ratelimit-remaining"], "5", "other fields cost 1");
        // REST: the route's cost.
        let (status, body) = app.rest("GET", "/keys", Some(&key), None).await;
        assert_eq!((status, &body["meta"]["rate_limit"]["remaining"]), (200, &json!(2)), "{body}");
        // 4 do not fit in the 2 left: refused whole, nothing charged.
        assert_eq!(plans().await.0, 429);
        assert_eq!(call(&app, &key).await.1["x-ratelimit-remaining"], "1");

        // Only platform administrators set costs; bad names and costs are refused; 1 removes.
        assert_eq!(code(&app.gql(Some(&dev.token), set, json!({ "o": "Query.plans", "c": 2 })).await), "FORBIDDEN");
        for (o, c, field) in [("plans", 2, "operation"), ("GET /keys", 2, "operation"), ("Query.plans", 0, "cost")] {
            let e = app.gql(Some(&admin.token), set, json!({ "o": o, "c": c })).await;
            assert_eq!(e["errors"][0]["extensions"]["field"], field, "{o} {c}: {e}");
        }
        app.gql_ok(Some(&admin.token), set, json!({ "o": "Query.plans", "c": 1 })).await;
        let left = app.gql_ok(Some(&dev.token), "{ operationCosts { operation cost } }", json!({})).await;
        assert_eq!(left["operationCosts"], json!([{ "operation": "GET /api/v1/keys", "cost": 3 }]));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_headers_status_and_envelope_state_one_set_of_numbers() {
    use gantry::platform::clock::Clock;
    for backend in backends() {
        let app = TestApp::new(backend).await;
        let _admin = app.register("admin@example.com").await;
        let s = app.register("dev@example.com").await;
        let (key, _) = app.create_key(&s.token, &["*"]).await;
        let q = "{ rateLimitStatus { windows { name limit capacity windowSeconds remaining } } }";
        let resp =
            app.http.post(app.url("/graphql")).bearer_auth(&key).json(&json!({ "query": q })).send().await.unwrap();
        let h = resp.headers().clone();
        let body: Value = resp.json().await.unwrap();
        // Starter: 10 a second with a burst of 10 — stated as 20 at once, refilled in 2 s.
        let policy = h["ratelimit-policy"].to_str().unwrap();
        assert!(policy.starts_with("\"second\";q=20;w=2, \"day\";q=10000;w=86400"), "[{backend:?}] {policy}");
        assert!(policy.contains("\"month\";q=100000;w=2592000"), "{policy}");
        assert_eq!(h["x-ratelimit-limit"], "20");
        assert_eq!(h["x-ratelimit-remaining"], "19");
        assert!(h["ratelimit"].to_str().unwrap().starts_with("\"second\";r=19;t="), "{:?}", h["ratelimit"]);
        assert_eq!(
            body["data"]["rateLimitStatus"]["windows"][0],
            json!({ "name": "second", "limit": 10, "capacity": 20, "windowSeconds": 2, "remaining": 19 }),
            "[{backend:?}] {body}"
        );
        // The REST envelope carries the headers' numbers.
        let resp = app.http.get(app.url("/api/v1/keys")).bearer_auth(&key).send().await.unwrap();
        let h = resp.headers().clone();
        let body: Value = resp.json().await.unwrap();
        let header_num = |name: &str| h[name].to_str().unwrap().parse::<u64>().unwrap();
        assert_eq!(
            body["meta"]["rate_limit"],
            json!({ "limit": header_num("x-ratelimit-limit"), "remaining": header_num("x-ratelimit-remaining"), "reset": header_num("x-ratelimit-reset") }),
            "[{backend:?}] {body}"
        );
        // Refused: `t`, Retry-After and X-RateLimit-Reset name the same instant.
        let refused = loop {
            let (status, headers, _) = call(&app, &key).await;
            if status == 429 {
                break headers;
            }
        };
        let retry: u64 = refused["retry-after"].to_str().unwrap().parse().unwrap();
        let rl = refused["ratelimit"].to_str().unwrap();
        assert_eq!(rl, format!("\"second\";r=0;t={retry}"), "[{backend:?}]");
        let now_secs = app.clock.now_ms() as u64 / 1000;
        assert_eq!(refused["x-ratelimit-reset"].to_str().unwrap(), (now_secs + retry).to_string());
        assert_eq!(refused["x-ratelimit-remaining"], "0");
    }
}

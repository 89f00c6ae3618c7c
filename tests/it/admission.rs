//! One admission pipeline for every surface: operations over WebSocket are limited, charged and
//! metered exactly like the same operation over HTTP; a key's own limits only tighten its plan;
//! subscriptions are bounded per principal.

use serde_json::{Value, json};

use crate::common::ws::{self, Socket};
use gantry::platform::clock::Clock;

use crate::common::{TestApp, backends, code};

/// Runs one operation over the socket; returns its first `next` or `error` message.
async fn ws_op(sock: &mut Socket, id: &str, query: &str) -> Value {
    ws::send(sock, json!({ "id": id, "type": "subscribe", "payload": { "query": query } })).await;
    loop {
        let msg = ws::next(sock).await.expect("message");
        if msg["id"] == id && msg["type"] != "complete" {
            return msg;
        }
    }
}

/// The error code of an `error` message (graphql-transport-ws: a list of errors).
fn ws_code(msg: &Value) -> &str {
    msg["payload"][0]["extensions"]["code"].as_str().unwrap_or("<none>")
}

async fn viewer_status(app: &TestApp, key: &str) -> (u16, Value) {
    app.gql_status(Some(key), "{ viewer { id } }", json!({})).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_operations_are_refused_after_the_same_number_as_over_http() {
    for backend in backends() {
        let app = TestApp::new(backend).await;
        let _admin = app.register("admin@example.com").await;
        let s = app.register("dev@example.com").await;
        // Starter: 10 requests a second with a burst of 10; the clock stands still.
        let (http_key, _) = app.create_key(&s.token, &["*"]).await;
        let (ws_key, _) = app.create_key(&s.token, &["*"]).await;
        let mut over_http = 0;
        loop {
            let (status, body) = viewer_status(&app, &http_key).await;
            if status == 429 {
                assert_eq!(code(&body), "RATE_LIMITED");
                break;
            }
            assert_eq!(status, 200, "[{backend:?}] {body}");
            over_http += 1;
            assert!(over_http <= 100, "HTTP never refused");
        }
        let mut sock = ws::connect_authed(&app.ws_url(), &ws_key).await;
        let mut over_ws = 0;
        loop {
            let msg = ws_op(&mut sock, &format!("q{over_ws}"), "{ viewer { id } }").await;
            if msg["type"] == "error" {
                assert_eq!(ws_code(&msg), "RATE_LIMITED", "[{backend:?}] {msg}");
                assert_eq!(msg["payload"][0]["extensions"]["window"], "second");
                break;
            }
            assert_eq!(msg["type"], "next", "[{backend:?}] {msg}");
            assert!(msg["payload"]["data"]["viewer"]["id"].is_string(), "{msg}");
            over_ws += 1;
            assert!(over_ws <= 100, "WebSocket never refused");
        }
        assert_eq!(over_http, 20, "[{backend:?}] limit plus burst");
        assert_eq!(over_ws, over_http, "[{backend:?}] the same number over both surfaces");
        // The window refills for both at the same rate.
        app.clock.advance_ms(100);
        assert_eq!(ws_op(&mut sock, "after", "{ viewer { id } }").await["type"], "next");
        assert_eq!(viewer_status(&app, &http_key).await.0, 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_operations_are_metered_and_charged_their_query_cost() {
    for backend in backends() {
        let app = TestApp::new(backend).await;
        let s = app.register("dev@example.com").await;
        let (key, key_id) = app.create_key(&s.token, &["*"]).await;
        let mut sock = ws::connect_authed(&app.ws_url(), &key).await;
        for i in 0..3 {
            let msg = ws_op(&mut sock, &format!("m{i}"), "query Metered { apiKeys(first: 5) { totalCount } }").await;
            assert_eq!(msg["type"], "next", "[{backend:?}] {msg}");
            // The cost is charged and reported as over HTTP: 1 + 5 × 1.
            assert_eq!(msg["payload"]["extensions"]["cost"]["requestedQueryCost"], 6, "{msg}");
        }
        // Too costly: refused before it runs, with the same code as over HTTP.
        let bomb = crate::common::fragment_chain("query Bomb { ...F0 }", 20, "viewer { id }");
        let msg = ws_op(&mut sock, "big", &bomb).await;
        assert_eq!((msg["type"].as_str(), ws_code(&msg)), (Some("error"), "BAD_USER_INPUT"), "[{backend:?}] {msg}");
        gantry::server::flush(&app.app).await;
        let data = app
            .gql_ok(
                Some(&s.token),
                "query($k: ID) { usageByEndpoint(period: LAST_24_HOURS, keyId: $k) { operation stats { calls costUnits } } }",
                json!({ "k": key_id }),
            )
            .await;
        let rows = data["usageByEndpoint"].as_array().unwrap();
        let metered =
            rows.iter().find(|r| r["operation"] == "query Metered").unwrap_or_else(|| panic!("[{backend:?}] {data}"));
        assert_eq!(metered["stats"], json!({ "calls": 3, "costUnits": 18 }), "[{backend:?}] {data}");
        assert!(rows.iter().any(|r| r["operation"] == "query Bomb"), "the refused query is metered too: {data}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quota_and_the_concurrency_cap_hold_across_http_and_websocket_together() {
    for backend in backends() {
        let app = TestApp::new(backend).await;
        let admin = app.register("admin@example.com").await;
        let s = app.register("dev@example.com").await;
        let (key, key_id) = app.create_key(&s.token, &["*"]).await; // the organization's 1st request
        let m = "mutation { updatePlan(id: \"pln_0000000000000000000starter\", input: {monthlyQuota: 5, perSecond: null, perDay: null}) { slug } }";
        app.gql_ok(Some(&admin.token), m, json!({})).await;
        let mut sock = ws::connect_authed(&app.ws_url(), &key).await;
        assert_eq!(viewer_status(&app, &key).await.0, 200);
        assert_eq!(ws_op(&mut sock, "1", "{ viewer { id } }").await["type"], "next");
        assert_eq!(viewer_status(&app, &key).await.0, 200);
        assert_eq!(ws_op(&mut sock, "2", "{ viewer { id } }").await["type"], "next");
        // Five used: both surfaces refuse the sixth.
        let (status, body) = viewer_status(&app, &key).await;
        assert_eq!((status, code(&body)), (429, "QUOTA_EXCEEDED"), "[{backend:?}] {body}");
        let msg = ws_op(&mut sock, "3", "{ viewer { id } }").await;
        assert_eq!(ws_code(&msg), "QUOTA_EXCEEDED", "[{backend:?}] {msg}");

        // The concurrency cap (Starter: 5 in flight per key), held by five requests in flight.
        let m = "mutation { updatePlan(id: \"pln_0000000000000000000starter\", input: {monthlyQuota: null}) { slug } }";
        app.gql_ok(Some(&admin.token), m, json!({})).await;
        let org: gantry::platform::ids::OrgId = s.org_id.parse().unwrap();
        let plan = gantry::limits::service::plan_for_org(&app.app, &org).await.unwrap();
        let policy = gantry::limits::service::policy_for(&app.app, plan, None, None);
        let subject = gantry::limits::limiter::Subject { rate: key_id.clone(), org: s.org_id.clone() };
        let mut held = Vec::new();
        for _ in 0..5 {
            let (d, permit) = app.app.limiter.acquire(&subject, policy.clone(), 1, 0, app.clock.now_ms()).await;
            assert!(d.allowed(), "[{backend:?}]");
            held.push(permit);
        }
        let (status, body) = viewer_status(&app, &key).await;
        assert_eq!((status, body["errors"][0]["extensions"]["window"].as_str()), (429, Some("concurrency")), "{body}");
        let msg = ws_op(&mut sock, "4", "{ viewer { id } }").await;
        assert_eq!(
            (ws_code(&msg), msg["payload"][0]["extensions"]["window"].as_str()),
            ("RATE_LIMITED", Some("concurrency")),
            "[{backend:?}] {msg}"
        );
        drop(held);
        // Redis gives slots back asynchronously: bounded wait for the cap to clear.
        let mut served = false;
        for i in 0..50 {
            if ws_op(&mut sock, &format!("w{i}"), "{ viewer { id } }").await["type"] == "next" {
                served = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(served, "[{backend:?}] served again once the requests ended");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keys_own_limits_only_tighten_its_plan_unless_an_administrator_raises_them() {
    for backend in backends() {
        let app = TestApp::new(backend).await;
        let admin = app.register("admin@example.com").await; // the platform administrator
        let s = app.register("dev@example.com").await;
        let create = "mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) { secret apiKey { id } } }";
        for (limit, field) in [
            (json!({ "perSecond": 100000, "burst": 100000 }), "rateLimit.perSecond"),
            (json!({ "burst": 11 }), "rateLimit.burst"),
            (json!({ "perDay": 10001 }), "rateLimit.perDay"),
            (json!({ "concurrency": 6 }), "rateLimit.concurrency"),
        ] {
            let r = app
                .gql(Some(&s.token), create, json!({ "i": { "name": "k", "scopes": ["*"], "rateLimit": limit } }))
                .await;
            assert_eq!(
                (code(&r), r["errors"][0]["extensions"]["field"].as_str()),
                ("BAD_USER_INPUT", Some(field)),
                "[{backend:?}] {limit}: {r}"
            );
            assert!(r["errors"][0]["message"].as_str().unwrap().contains("only tighten"), "{r}");
        }
        // Within the plan, and windows the plan does not have (a per-minute limit), are fine.
        let (tight, tight_id) = app
            .create_key_with(
                &s.token,
                json!({ "name": "t", "scopes": ["*"], "rateLimit": { "perSecond": 8, "burst": 2, "perMinute": 100 } }),
            )
            .await;
        // Raising it on update is refused the same way.
        let r = app
            .gql(
                Some(&s.token),
                "mutation($id: ID!) { updateApiKey(id: $id, input: {rateLimit: {perSecond: 50}}) { id } }",
                json!({ "id": tight_id }),
            )
            .await;
        assert_eq!(r["errors"][0]["extensions"]["field"], "rateLimit.perSecond", "[{backend:?}] {r}");
        // The issue as found: a burst of 200 with a self-raised key. Now the key is the plan's.
        let mut served = 0;
        for _ in 0..30 {
            if viewer_status(&app, &tight).await.0 == 200 {
                served += 1;
            }
        }
        assert_eq!(served, 10, "[{backend:?}] 8 a second with a burst of 2");
        // A plan lowered later still bounds the key: the applied limit is the smaller one.
        let m = "mutation { updatePlan(id: \"pln_0000000000000000000starter\", input: {perSecond: 5}) { slug } }";
        app.gql_ok(Some(&admin.token), m, json!({})).await;
        app.clock.advance_ms(10_000);
        let st = app.gql_ok(Some(&tight), "{ rateLimitStatus { source windows { name limit } } }", json!({})).await;
        assert_eq!(st["rateLimitStatus"]["windows"][0], json!({ "name": "second", "limit": 5 }), "[{backend:?}] {st}");

        // A platform administrator may raise a key's limits above its plan.
        let (raised, _) = app
            .create_key_with(
                &admin.token,
                json!({ "name": "r", "scopes": ["*"], "rateLimit": { "perSecond": 100000, "burst": 100000 } }),
            )
            .await;
        for i in 0..60 {
            assert_eq!(viewer_status(&app, &raised).await.0, 200, "[{backend:?}] request {i}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_principal_holds_a_bounded_number_of_subscriptions_across_connections() {
    for backend in backends() {
        let app = TestApp::new(backend).await;
        let admin = app.register("admin@example.com").await;
        let s = app.register("dev@example.com").await;
        let m = "mutation { updatePlan(id: \"pln_0000000000000000000starter\", input: {maxSubscriptions: 2, perSecond: null, perDay: null}) { maxSubscriptions } }";
        assert_eq!(app.gql_ok(Some(&admin.token), m, json!({})).await["updatePlan"]["maxSubscriptions"], 2);
        let (key, _) = app.create_key(&s.token, &["*"]).await;
        let mut a = ws::connect_authed(&app.ws_url(), &key).await;
        let mut b = ws::connect_authed(&app.ws_url(), &key).await;
        ws::subscribe(&mut a, "1", "subscription { events { type } }").await;
        ws::subscribe(&mut b, "1", "subscription { events { type } }").await;
        // Queries do not take a place; they still pass while both places are taken.
        assert_eq!(ws_op(&mut a, "q", "{ viewer { id } }").await["type"], "next");
        let third = ws_op(&mut b, "2", "subscription { events { type } }").await;
        assert_eq!(
            (third["type"].as_str(), ws_code(&third), third["payload"][0]["extensions"]["window"].as_str()),
            (Some("error"), "RATE_LIMITED", Some("subscriptions")),
            "[{backend:?}] {third}"
        );
        // Completing one gives its place back (Redis: asynchronously, so a bounded retry).
        ws::send(&mut a, json!({ "id": "1", "type": "complete" })).await;
        let mut admitted = false;
        for i in 0..50 {
            let id = format!("again{i}");
            ws::subscribe(&mut b, &id, "subscription { events { type } }").await;
            let got = tokio::time::timeout(std::time::Duration::from_millis(200), async {
                loop {
                    let msg = ws::next(&mut b).await.expect("message");
                    if msg["id"] == id.as_str() {
                        return msg;
                    }
                }
            })
            .await;
            match got {
                // No answer: the subscription is live, waiting for events.
                Err(_) => {
                    admitted = true;
                    break;
                }
                Ok(msg) if msg["type"] == "error" => assert_eq!(ws_code(&msg), "RATE_LIMITED", "{msg}"),
                // An event for it: admitted.
                Ok(_) => {
                    admitted = true;
                    break;
                }
            }
        }
        assert!(admitted, "[{backend:?}] a completed subscription's place was not given back");
        // A socket that closes gives its places back too.
        drop(a);
        drop(b);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_key_is_not_served_on_a_socket_opened_before() {
    for backend in backends() {
        let app = TestApp::new(backend).await;
        let s = app.register("dev@example.com").await;
        let (key, id) = app.create_key(&s.token, &["*"]).await;
        let mut sock = ws::connect_authed(&app.ws_url(), &key).await;
        assert_eq!(ws_op(&mut sock, "1", "{ viewer { id } }").await["type"], "next");
        app.gql_ok(Some(&s.token), "mutation($id: ID!) { revokeApiKey(id: $id) { id } }", json!({ "id": id })).await;
        ws::send(&mut sock, json!({ "id": "2", "type": "subscribe", "payload": { "query": "{ viewer { id } }" } }))
            .await;
        // Refused by its own admission, or the socket is closed first: never served.
        loop {
            match ws::next(&mut sock).await {
                Ok(msg) if msg["id"] == "2" => {
                    assert_eq!((msg["type"].as_str(), ws_code(&msg)), (Some("error"), "UNAUTHENTICATED"), "{msg}");
                }
                Ok(other) => assert_ne!(other["type"], "next", "[{backend:?}] served after revocation: {other}"),
                Err((code, why)) => {
                    assert_eq!(code, 4401, "[{backend:?}] {why}");
                    break;
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_error_has_no_data_and_costs_no_points() {
    let app = TestApp::new(crate::common::Backend::SqliteMemory).await;
    let s = app.register("dev@example.com").await;
    let (key, _) = app.create_key(&s.token, &["*"]).await;
    for accept in ["application/graphql-response+json", "application/json"] {
        let resp = app
            .http
            .post(app.url("/graphql"))
            .bearer_auth(&key)
            .header("accept", accept)
            .json(&json!({ "query": "{ viewer { nope } }" }))
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap();
        assert_eq!(status, if accept.starts_with("application/graphql") { 400 } else { 200 });
        let obj = body.as_object().unwrap();
        assert!(!obj.contains_key("data"), "{accept}: a request error has no data entry: {body}");
        assert_eq!(code(&body), "BAD_USER_INPUT");
    }
    // A query that fails validation is charged nothing from the cost bucket.
    let bucket = |body: &Value| body["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"].as_u64().unwrap();
    let before = app.gql(Some(&key), "{ apiKeys(first: 50) { totalCount } }", json!({})).await;
    let available = bucket(&before);
    let refused = app.gql(Some(&key), "{ apiKeys(first: 50) { totalCount nope } }", json!({})).await;
    assert_eq!(code(&refused), "BAD_USER_INPUT", "{refused}");
    assert_eq!(refused["extensions"]["cost"]["actualQueryCost"], 0, "{refused}");
    let after = app.gql(Some(&key), "{ apiKeys(first: 50) { totalCount } }", json!({})).await;
    assert_eq!(bucket(&after), available - 51, "only the two queries that ran were charged: {after}");
}

/// A batched GraphQL request (a JSON array): each operation admitted, limited, executed and
/// metered on its own, answered in order; more than the bound is refused with a clear message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batched_operations_each_pass_the_pipeline_and_are_bounded() {
    for backend in backends() {
        let app = TestApp::new(backend).await;
        let s = app.register("dev@example.com").await;
        let (key, key_id) = app.create_key(&s.token, &["*"]).await;
        let remaining =
            |r: &reqwest::Response| -> i64 { r.headers()["x-ratelimit-remaining"].to_str().unwrap().parse().unwrap() };
        let one = app
            .http
            .post(app.url("/graphql"))
            .bearer_auth(&key)
            .json(&json!({ "query": "{ viewer { id } }" }))
            .send()
            .await
            .unwrap();
        let before = remaining(&one);
        let batch = json!([
            { "query": "query First { viewer { id } }" },
            { "query": "query Second { viewer { kind } }" },
            { "query": "{ nope }" },
            7,
        ]);
        let r = app.http.post(app.url("/graphql")).bearer_auth(&key).json(&batch).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        // Three operations reached the limiter (the fourth is not an operation).
        assert_eq!(remaining(&r), before - 3, "[{backend:?}] each operation is charged");
        let answers: Value = r.json().await.unwrap();
        assert_eq!(answers.as_array().unwrap().len(), 4, "{answers}");
        assert_eq!(answers[0]["data"]["viewer"]["id"], key_id.as_str(), "{answers}");
        assert_eq!(answers[1]["data"]["viewer"]["kind"], "API_KEY", "{answers}");
        assert_eq!(code(&answers[2]), "BAD_USER_INPUT", "{answers}");
        assert!(answers[2].get("data").is_none(), "an invalid operation has no data: {answers}");
        assert_eq!(code(&answers[3]), "BAD_USER_INPUT", "{answers}");
        assert!(answers[3]["errors"][0]["message"].as_str().unwrap().contains("operation 3"), "{answers}");

        // Every operation is metered under its own name.
        gantry::server::flush(&app.app).await;
        let data = app
            .gql_ok(
                Some(&s.token),
                "query($k: ID) { usageByEndpoint(period: LAST_24_HOURS, keyId: $k) { operation stats { calls } } }",
                json!({ "k": key_id }),
            )
            .await;
        let calls = |op: &str| {
            data["usageByEndpoint"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["operation"] == op)
                .map(|r| r["stats"]["calls"].clone())
        };
        assert_eq!(calls("query First"), Some(json!(1)), "[{backend:?}] {data}");
        assert_eq!(calls("query Second"), Some(json!(1)), "[{backend:?}] {data}");

        // Bounded, and never a deserializer's message.
        let many: Vec<Value> = (0..11).map(|_| json!({ "query": "{ viewer { id } }" })).collect();
        let r = app.http.post(app.url("/graphql")).bearer_auth(&key).json(&many).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 400);
        let body: Value = r.json().await.unwrap();
        assert_eq!(code(&body), "BAD_USER_INPUT");
        assert!(body["errors"][0]["message"].as_str().unwrap().contains("1 to 10 operations"), "{body}");
        let r = app.http.post(app.url("/graphql")).bearer_auth(&key).json(&json!([])).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 400);
        // A batch with a bad credential: every operation refused alike, so the status says it.
        let r = app.http.post(app.url("/graphql")).bearer_auth("gk_live_nope").json(&batch).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200, "the malformed fourth answers 400 on its own");
        let two = json!([{ "query": "{ viewer { id } }" }, { "query": "{ viewer { id } }" }]);
        let r = app.http.post(app.url("/graphql")).bearer_auth("gk_live_nope").json(&two).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 401);
    }
}

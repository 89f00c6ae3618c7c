//! Endpoint health: a receiver that comes back, failure reports, disabling, pruning of old logs.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_down_for_a_while_gets_everything_when_it_returns() {
    for backend in backends() {
        let app = allowing_local(backend).await;
        let s = app.register("dev@example.com").await;
        app.lift_starter_limits(&s.token).await;
        // A port with nothing listening on it: the receiver is down.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let (endpoint, secret) = create_endpoint(
            &app,
            &s.token,
            json!({ "url": format!("http://127.0.0.1:{port}/in"), "filterTypes": ["key.created"] }),
        )
        .await;
        let mut created = Vec::new();
        for _ in 0..5 {
            created.push(app.create_key(&s.token, &["keys:read"]).await.1);
        }
        let q = "query($id: ID!) { webhookDeliveries(endpointId: $id) { edges { node { attemptCount attempts { errorKind } } } } }";
        let edges = until(&app, "the five first attempts fail", async || {
            let d = app.gql_ok(Some(&s.token), q, json!({ "id": endpoint })).await;
            let edges = d["webhookDeliveries"]["edges"].as_array().unwrap().clone();
            (edges.len() == 5 && edges.iter().all(|e| e["node"]["attemptCount"] == 1)).then_some(edges)
        })
        .await;
        assert!(edges.iter().all(|e| e["node"]["attempts"][0]["errorKind"] == "CONNECTION"), "[{backend:?}] {edges:?}");

        // The receiver comes back; the retries (5 s ± 20 % later) bring everything.
        let (receiver, _) = Receiver::serve(tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap());
        app.clock.advance_ms(6_000);
        let got = receiver.wait_for(&app, 5).await;
        let mut keys: Vec<String> = got
            .iter()
            .map(|r| {
                assert!(signed_by(&secret, r));
                serde_json::from_str::<Value>(&r.body).unwrap()["data"]["key"]["id"].as_str().unwrap().to_string()
            })
            .collect();
        keys.sort();
        created.sort();
        assert_eq!(keys, created, "[{backend:?}]");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_endpoint_is_reported_then_disabled_and_old_logs_are_pruned() {
    for backend in backends() {
        let app = allowing_local(backend).await;
        let s = app.register("dev@example.com").await;
        app.lift_starter_limits(&s.token).await;
        // Sessions expire in an hour; this test moves the clock by days.
        let (key, _) = app.create_key(&s.token, &["*"]).await;
        let (watcher, watcher_base) = Receiver::start().await;
        create_endpoint(&app, &key, json!({ "url": format!("{watcher_base}/ops"), "filterTypes": ["webhook.delivery.*", "webhook.endpoint.*"] }))
            .await;
        let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let (failing, _) = create_endpoint(
            &app,
            &key,
            json!({ "url": format!("http://127.0.0.1:{dead}/x"), "filterTypes": ["key.created"], "retrySchedule": [60, 60, 60, 259200, 259200, 259200] }),
        )
        .await;
        app.create_key(&key, &["keys:read"]).await;
        let list = "query($id: ID!) { webhookDeliveries(endpointId: $id) { edges { node { id } } } }";
        let id = until(&app, "a delivery to the failing endpoint", async || {
            let d = app.gql_ok(Some(&key), list, json!({ "id": failing })).await;
            d["webhookDeliveries"]["edges"][0]["node"]["id"].as_str().map(str::to_string)
        })
        .await;
        // Attempts 1–4 a minute apart (×1.2 jitter at most): the fourth raises `failing`.
        attempts(&app, &key, &id, 1).await;
        for n in 2..=4 {
            app.clock.advance_ms(73_000);
            attempts(&app, &key, &id, n).await;
        }
        let got = watcher.wait_for(&app, 1).await;
        let first: Value = serde_json::from_str(&got[0].body).unwrap();
        assert_eq!(first["type"], "webhook.delivery.failing", "[{backend:?}]");
        assert_eq!(first["data"]["attempts"], 4);
        assert_eq!(first["data"]["deliveryId"], id.as_str());
        // Still failing days later: once a failure comes five days after the first, the endpoint is
        // disabled. With ±20 % jitter that is the sixth or the seventh (last) attempt; when it is the
        // sixth, the delivery then fails without a request when it next comes due.
        for n in 5..=6 {
            app.clock.advance_ms(311_100_000);
            attempts(&app, &key, &id, n).await;
        }
        app.clock.advance_ms(311_100_000);
        let d = until(&app, "the delivery fails for good", async || {
            let d = delivery(&app, &key, &id).await;
            (d["status"] == "FAILED").then_some(d)
        })
        .await;
        let n = d["attemptCount"].as_i64().unwrap();
        assert!(n == 6 || n == 7, "{d}");
        assert!(
            d["attempts"].as_array().unwrap().iter().all(|a| a["errorKind"] == "CONNECTION"),
            "no attempt without a request: {d}"
        );
        let e = app
            .gql_ok(
                Some(&key),
                "query($id: ID!) { webhookEndpoint(id: $id) { enabled disabledReason } }",
                json!({ "id": failing }),
            )
            .await;
        assert_eq!(e["webhookEndpoint"]["enabled"], false, "{e}");
        assert!(e["webhookEndpoint"]["disabledReason"].as_str().unwrap().contains("5 days"), "{e}");
        let disabled = watcher.wait_for_type(&app, "webhook.endpoint.disabled").await;
        let event: Value = serde_json::from_str(&disabled.body).unwrap();
        assert_eq!(event["data"]["endpointId"], failing.as_str(), "[{backend:?}] {event}");
        // Before the jump, every notice raised so far (the exhausted one comes with a seventh
        // attempt) is fanned out and delivered, so nothing published before it is still on its way.
        gantry::webhooks::dispatch::dispatch(&app.app).await.unwrap();
        let pending = "{ webhookDeliveries(status: PENDING) { totalCount } }";
        until(&app, "no delivery is pending", async || {
            let d = app.gql_ok(Some(&key), pending, json!({})).await;
            (d["webhookDeliveries"]["totalCount"] == 0).then_some(())
        })
        .await;

        // 91 days on, the logs are gone: pruned by this call or, as the clock moved, by the worker's
        // own hourly pass first (so the outcome is checked, not what this call counted).
        app.clock.advance_ms(91 * 86_400_000);
        gantry::webhooks::retention::prune(&app.app, app.app.clock.now_ms()).await.unwrap();
        // Only what is past retention: the jump itself may raise new events (alerts resolving).
        let gone = "query($id: ID!, $attempt: ID!, $cutoff: DateTime!) { delivery: node(id: $id) { id } \
            attempt: node(id: $attempt) { id } deliveries: webhookDeliveries(until: $cutoff) { totalCount } \
            events(until: $cutoff) { totalCount } }";
        let attempt = &d["attempts"][0]["id"];
        let cutoff =
            chrono::DateTime::from_timestamp_millis(app.app.clock.now_ms() - 90 * 86_400_000).unwrap().to_rfc3339();
        let r = app.gql(Some(&key), gone, json!({ "id": id, "attempt": attempt, "cutoff": cutoff })).await;
        assert_eq!(r["data"]["delivery"], Value::Null, "[{backend:?}] {r}");
        assert_eq!(r["data"]["attempt"], Value::Null, "{r}");
        assert!(r["errors"].as_array().unwrap().iter().all(|e| e["extensions"]["code"] == "NOT_FOUND"), "{r}");
        assert_eq!(r["data"]["deliveries"]["totalCount"], 0, "{r}");
        assert_eq!(r["data"]["events"]["totalCount"], 0, "{r}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_in_a_row_disable_an_endpoint_when_the_operator_sets_a_limit() {
    for backend in backends() {
        let app = TestApp::with_config(backend, |c| {
            c.webhook_allow_http = true;
            c.webhook_allowed_networks = vec!["127.0.0.0/8".parse().unwrap()];
            c.webhook_poll_interval_ms = 50;
            c.webhook_disable_after_failures = 3;
        })
        .await;
        let s = app.register("dev@example.com").await;
        app.lift_starter_limits(&s.token).await;
        let state =
            "query($id: ID!) { webhookEndpoint(id: $id) { enabled disabledReason consecutiveFailures failingSince } }";
        // A success resets the count: 500, 500, then 200.
        let (receiver, base) = Receiver::start().await;
        receiver.then([reply(500), reply(500)]);
        let (flaky, _) = create_endpoint(
            &app,
            &s.token,
            json!({ "url": format!("{base}/flaky"), "filterTypes": ["webhook.test"], "retrySchedule": [1, 1, 1, 1] }),
        )
        .await;
        let id = send_test_event(&app, &s.token, &flaky).await;
        attempts(&app, &s.token, &id, 1).await;
        app.clock.advance_ms(1_300);
        attempts(&app, &s.token, &id, 2).await;
        let e = app.gql_ok(Some(&s.token), state, json!({ "id": flaky })).await;
        assert_eq!(e["webhookEndpoint"]["consecutiveFailures"], 2, "[{backend:?}] {e}");
        app.clock.advance_ms(1_300);
        let d = attempts(&app, &s.token, &id, 3).await;
        assert_eq!(d["status"], "SUCCEEDED", "{d}");
        let e = app.gql_ok(Some(&s.token), state, json!({ "id": flaky })).await;
        assert_eq!(e["webhookEndpoint"]["consecutiveFailures"], 0, "{e}");
        assert_eq!(e["webhookEndpoint"]["failingSince"], Value::Null, "{e}");
        assert_eq!(e["webhookEndpoint"]["enabled"], true, "{e}");

        // Three failures in a row (nothing listening) disable the endpoint, with an event.
        let (watcher, watcher_base) = Receiver::start().await;
        create_endpoint(
            &app,
            &s.token,
            json!({ "url": format!("{watcher_base}/ops"), "filterTypes": ["webhook.endpoint.*"] }),
        )
        .await;
        let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let (down, _) = create_endpoint(
            &app,
            &s.token,
            json!({ "url": format!("http://127.0.0.1:{dead}/x"), "filterTypes": ["webhook.test"], "retrySchedule": [1, 1, 1, 1] }),
        )
        .await;
        let id = send_test_event(&app, &s.token, &down).await;
        attempts(&app, &s.token, &id, 1).await;
        for n in 2..=3 {
            app.clock.advance_ms(1_300);
            attempts(&app, &s.token, &id, n).await;
        }
        let e = app.gql_ok(Some(&s.token), state, json!({ "id": down })).await;
        assert_eq!(e["webhookEndpoint"]["enabled"], false, "[{backend:?}] {e}");
        assert_eq!(e["webhookEndpoint"]["consecutiveFailures"], 3, "{e}");
        assert_eq!(e["webhookEndpoint"]["disabledReason"], "3 failed attempts in a row", "{e}");
        let got = watcher.wait_for(&app, 1).await;
        let event: Value = serde_json::from_str(&got[0].body).unwrap();
        assert_eq!(event["type"], "webhook.endpoint.disabled");
        assert_eq!(event["data"]["endpointId"], down.as_str());
        // No fourth attempt: the delivery fails without a request when it comes due.
        app.clock.advance_ms(1_300);
        let d = until(&app, "the delivery fails for good", async || {
            let d = delivery(&app, &s.token, &id).await;
            (d["status"] == "FAILED").then_some(d)
        })
        .await;
        assert_eq!(d["attemptCount"], 3, "{d}");
        // Enabling it again starts the count afresh.
        let e = app
            .gql_ok(
                Some(&s.token),
                "mutation($id: ID!) { updateWebhookEndpoint(id: $id, input: {enabled: true}) { enabled consecutiveFailures failingSince } }",
                json!({ "id": down }),
            )
            .await;
        assert_eq!(
            e["updateWebhookEndpoint"],
            json!({ "enabled": true, "consecutiveFailures": 0, "failingSince": null })
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_success_clears_failures_recorded_while_it_was_in_flight() {
    for backend in backends() {
        let Hooked { app, s, receiver, endpoint, .. } =
            hooked(backend, json!({ "filterTypes": ["webhook.test"], "retrySchedule": [3600] })).await;
        // The first request is held until the test lets it go; the second fails at once; a third
        // answers 200 with a NUL byte in its body, which PostgreSQL text cannot store as is.
        let release = Arc::new(tokio::sync::Notify::new());
        receiver.then([reply(200).held(&release), reply(500), reply(200).body("ok\0done")]);
        let state = "query($id: ID!) { webhookEndpoint(id: $id) { consecutiveFailures failingSince } }";
        let first = send_test_event(&app, &s.token, &endpoint).await;
        // Claimed while the endpoint was healthy, now in flight.
        receiver.wait_for(&app, 1).await;
        let second = send_test_event(&app, &s.token, &endpoint).await;
        attempts(&app, &s.token, &second, 1).await;
        let e = app.gql_ok(Some(&s.token), state, json!({ "id": endpoint })).await;
        assert_eq!(e["webhookEndpoint"]["consecutiveFailures"], 1, "[{backend:?}] {e}");
        // The held success ends the run of failures, although its claim saw none.
        release.notify_one();
        let d = attempts(&app, &s.token, &first, 1).await;
        assert_eq!(d["status"], "SUCCEEDED", "{d}");
        let e = app.gql_ok(Some(&s.token), state, json!({ "id": endpoint })).await;
        assert_eq!(e["webhookEndpoint"], json!({ "consecutiveFailures": 0, "failingSince": null }), "[{backend:?}]");
        // A body with a NUL byte is logged (the NUL replaced) and the delivery succeeds.
        let third = send_test_event(&app, &s.token, &endpoint).await;
        let d = attempts(&app, &s.token, &third, 1).await;
        assert_eq!(d["status"], "SUCCEEDED", "[{backend:?}] {d}");
        assert_eq!(d["attempts"][0]["responseBody"], "ok\u{FFFD}done", "{d}");
    }
}

//! Delivery: signed requests, the retry schedule, failure kinds, Retry-After, the endpoint's own
//! rate limit, and an attempt the database refuses to log.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_delivered_signed_and_retried_on_the_schedule() {
    for backend in backends() {
        let Hooked { app, s, receiver, endpoint, secret, .. } =
            hooked(backend, json!({ "filterTypes": ["key.*"], "headers": { "X-Team": "payments" } })).await;
        let mut sock = ws::connect_authed(&app.ws_url(), &s.token).await;
        ws::subscribe(
            &mut sock,
            "d",
            &format!("subscription {{ webhookDelivered(webhookId: \"{endpoint}\") {{ deliveryId attempt status responseStatus eventType }} }}"),
        )
        .await;

        // A key event reaches the receiver, signed; events outside the filter do not.
        app.create_key(&s.token, &["keys:read"]).await;
        let got = receiver.wait_for(&app, 1).await;
        let r = &got[0];
        assert_eq!(r.path, "/hooks");
        assert!(signed_by(&secret, r), "[{backend:?}] signature does not verify: {:?}", r.headers);
        assert_eq!(r.headers["content-type"], "application/json");
        assert_eq!(r.headers["x-team"], "payments");
        assert!(r.headers["user-agent"].to_str().unwrap().starts_with("Gantry-Webhooks/"));
        let msg_id = r.headers["webhook-id"].to_str().unwrap().to_string();
        assert!(msg_id.starts_with("msg_"));
        let body: Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(body["type"], "key.created");
        assert!(body["timestamp"].is_string());
        assert_eq!(body["data"]["key"]["scopes"], json!(["keys:read"]));
        let d = attempts(&app, &s.token, &msg_id, 1).await;
        assert_eq!(d["status"], "SUCCEEDED");
        assert_eq!(d["attempts"][0]["responseStatus"], 200);
        assert_eq!(d["attempts"][0]["responseBody"], "received");
        // The attempt and the event are nodes; the event is also served by REST.
        let q = "query($ids: [ID!]!) { nodes(ids: $ids) { __typename ... on WebhookAttempt { responseStatus } ... on Event { type } } }";
        let n = app.gql_ok(Some(&s.token), q, json!({ "ids": [d["attempts"][0]["id"], d["eventId"]] })).await;
        assert_eq!(
            n["nodes"],
            json!([{ "__typename": "WebhookAttempt", "responseStatus": 200 }, { "__typename": "Event", "type": "key.created" }]),
            "[{backend:?}]"
        );
        let (status, r) =
            app.rest("GET", &format!("/events/{}", d["eventId"].as_str().unwrap()), Some(&s.token), None).await;
        assert_eq!(status, 200, "{r}");
        assert_eq!(r["data"]["type"], "key.created");
        assert_eq!(r["data"]["data"]["key"]["scopes"], json!(["keys:read"]));
        let (status, _) = app.rest("GET", "/events/evt_01jd0000000000000000000000", Some(&s.token), None).await;
        assert_eq!(status, 404);

        // The stream reports the attempt (once the subscription is live: the first message may be
        // this one or, if the subscription started late, a later one).
        // A 500 is retried after 5 s (±20 %), with the same webhook-id; then it succeeds.
        receiver.then([reply(500)]);
        app.create_key(&s.token, &["keys:read"]).await;
        let got = receiver.wait_for(&app, 2).await;
        let second_id = got[1].headers["webhook-id"].to_str().unwrap().to_string();
        let d = attempts(&app, &s.token, &second_id, 1).await;
        assert_eq!(d["status"], "PENDING");
        assert_eq!(d["attempts"][0]["errorKind"], "HTTP_STATUS");
        assert_eq!(d["attempts"][0]["responseStatus"], 500);
        let wait = ms(&d["nextAttemptAt"]) - app.clock.now_ms();
        assert!((4_000..=6_000).contains(&wait), "[{backend:?}] next attempt in {wait} ms");
        // Not before it is due: nothing can be claimed yet.
        assert_eq!(gantry::webhooks::delivery::work(&app.app).await.unwrap(), 0, "retried before it was due");
        assert_eq!(receiver.count(), 2);
        app.clock.advance_ms(6_000);
        let got = receiver.wait_for(&app, 3).await;
        assert_eq!(got[2].headers["webhook-id"], second_id.as_str(), "webhook-id is stable across retries");
        assert!(signed_by(&secret, &got[2]));
        assert_eq!(got[2].body, got[1].body, "the body is the same on every attempt");
        let d = attempts(&app, &s.token, &second_id, 2).await;
        assert_eq!(d["status"], "SUCCEEDED");
        assert_eq!(d["attemptCount"], 2);

        // The second delivery's attempts were streamed to the subscriber, in order (the subscription
        // was live long before: the first delivery's round trip happened in between).
        let mut streamed = Vec::new();
        while streamed.last().is_none_or(|m: &Value| m["status"] != "SUCCEEDED") {
            let m =
                tokio::time::timeout(Duration::from_secs(10), ws::next_data(&mut sock)).await.expect("stream message");
            let m = m["data"]["webhookDelivered"].clone();
            if m["deliveryId"] == second_id.as_str() {
                streamed.push(m);
            }
        }
        assert_eq!(
            streamed,
            vec![
                json!({ "deliveryId": second_id, "attempt": 1, "status": "PENDING", "responseStatus": 500, "eventType": "key.created" }),
                json!({ "deliveryId": second_id, "attempt": 2, "status": "SUCCEEDED", "responseStatus": 200, "eventType": "key.created" }),
            ],
            "[{backend:?}]"
        );

        // The recovered delivery raised webhook.delivery.recovered (outside this endpoint's filter),
        // and a success leaves the endpoint not failing.
        let ev = app
            .gql_ok(Some(&s.token), "{ events(types: [\"webhook.delivery.recovered\"]) { totalCount } }", json!({}))
            .await;
        assert_eq!(ev["events"]["totalCount"], 1, "[{backend:?}] {ev}");
        let e = app
            .gql_ok(
                Some(&s.token),
                "query($id: ID!) { webhookEndpoint(id: $id) { failingSince } }",
                json!({ "id": endpoint }),
            )
            .await;
        assert_eq!(e["webhookEndpoint"]["failingSince"], Value::Null, "[{backend:?}] {e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_gone_redirects_timeouts_and_retry_after() {
    for backend in backends() {
        let Hooked { app, s, receiver, base, endpoint, .. } =
            hooked(backend, json!({ "filterTypes": ["key.created"], "timeoutSeconds": 1, "retrySchedule": [5, 5] }))
                .await;
        let (watcher, watcher_base) = Receiver::start().await;
        let (_, watcher_secret) = create_endpoint(
            &app,
            &s.token,
            json!({ "url": format!("{watcher_base}/ops"), "filterTypes": ["webhook.delivery.*", "webhook.endpoint.*"] }),
        )
        .await;
        let hold = reply(200).after(Duration::from_secs(3));
        receiver.then([
            reply(302).with_headers(vec![("location", format!("{base}/elsewhere"))]),
            hold,
            reply(503).with_headers(vec![("retry-after", "120".into())]),
            reply(429),
        ]);
        let mut ids = Vec::new();
        for n in 1..=4 {
            app.create_key(&s.token, &["keys:read"]).await;
            let got = receiver.wait_for(&app, n).await;
            ids.push(got[n - 1].headers["webhook-id"].to_str().unwrap().to_string());
        }
        let now = app.clock.now_ms();
        // 3xx: a failure, never followed.
        let d = attempts(&app, &s.token, &ids[0], 1).await;
        assert_eq!(d["attempts"][0]["responseStatus"], 302);
        assert_eq!(d["attempts"][0]["errorKind"], "HTTP_STATUS");
        assert_eq!(d["status"], "PENDING");
        assert!(receiver.got.lock().unwrap().iter().all(|r| r.path == "/hooks"), "a redirect was followed");
        // Timeout: at least 60 s before the next attempt.
        let d = attempts(&app, &s.token, &ids[1], 1).await;
        assert_eq!(d["attempts"][0]["errorKind"], "TIMEOUT", "{d}");
        assert!(ms(&d["nextAttemptAt"]) - now >= 60_000, "{d}");
        // Retry-After is honoured.
        let d = attempts(&app, &s.token, &ids[2], 1).await;
        assert_eq!(d["attempts"][0]["responseStatus"], 503);
        assert_eq!(ms(&d["nextAttemptAt"]) - now, 120_000, "{d}");
        // 429: at least 60 s.
        let d = attempts(&app, &s.token, &ids[3], 1).await;
        assert!(ms(&d["nextAttemptAt"]) - now >= 60_000, "{d}");

        // Exhausting the schedule (two retries here) fails the delivery and raises an event.
        receiver.then([reply(500), reply(500)]);
        app.clock.advance_ms(10_000);
        attempts(&app, &s.token, &ids[0], 2).await;
        app.clock.advance_ms(10_000);
        let d = attempts(&app, &s.token, &ids[0], 3).await;
        assert_eq!(d["status"], "FAILED", "{d}");
        assert_eq!(d["nextAttemptAt"], Value::Null);
        let ev = app
            .gql_ok(
                Some(&s.token),
                "{ auditLog: webhookDeliveries(eventType: \"key.created\", status: FAILED) { totalCount } }",
                json!({}),
            )
            .await;
        assert_eq!(ev["auditLog"]["totalCount"], 1);

        // A manual retry sends it again, same webhook-id.
        let before = receiver.count();
        app.gql_ok(Some(&s.token), "mutation($id: ID!) { retryDelivery(id: $id) { status } }", json!({ "id": ids[0] }))
            .await;
        let got = receiver.wait_for(&app, before + 1).await;
        assert_eq!(got[before].headers["webhook-id"], ids[0].as_str());
        let d = attempts(&app, &s.token, &ids[0], 4).await;
        assert_eq!(d["status"], "SUCCEEDED");

        // 410 Gone disables the endpoint and says so with an event.
        receiver.then([reply(410)]);
        app.create_key(&s.token, &["keys:read"]).await;
        let (_, gone_id) = {
            let n = receiver.count() + 1;
            let got = receiver.wait_for(&app, n).await;
            ((), got[n - 1].headers["webhook-id"].to_str().unwrap().to_string())
        };
        let d = attempts(&app, &s.token, &gone_id, 1).await;
        assert_eq!(d["status"], "FAILED");
        let e = app
            .gql_ok(
                Some(&s.token),
                "query($id: ID!) { webhookEndpoint(id: $id) { enabled disabledReason } }",
                json!({ "id": endpoint }),
            )
            .await;
        assert_eq!(e["webhookEndpoint"]["enabled"], false);
        assert!(e["webhookEndpoint"]["disabledReason"].as_str().unwrap().contains("410"));
        // The operational events reached the endpoint watching `webhook.*`, signed with its secret.
        let got = watcher.wait_for(&app, 3).await;
        let mut types: Vec<String> = got
            .iter()
            .map(|r| {
                assert!(signed_by(&watcher_secret, r));
                serde_json::from_str::<Value>(&r.body).unwrap()["type"].as_str().unwrap().to_string()
            })
            .collect();
        types.sort();
        assert_eq!(
            types,
            ["webhook.delivery.exhausted", "webhook.delivery.recovered", "webhook.endpoint.disabled"],
            "[{backend:?}]"
        );
        // A disabled endpoint gets nothing: once another endpoint got the event (dispatch is one
        // transaction for every endpoint), the disabled one still has no delivery of it.
        let count = "query($id: ID!) { webhookDeliveries(endpointId: $id) { totalCount } }";
        let before = app.gql_ok(Some(&s.token), count, json!({ "id": endpoint })).await;
        let (_, keys_secret) = create_endpoint(
            &app,
            &s.token,
            json!({ "url": format!("{watcher_base}/keys"), "filterTypes": ["key.created"] }),
        )
        .await;
        app.create_key(&s.token, &["keys:read"]).await;
        let got = watcher.wait_for(&app, 4).await;
        assert!(got.iter().any(|r| r.path == "/keys" && signed_by(&keys_secret, r)));
        let after = app.gql_ok(Some(&s.token), count, json!({ "id": endpoint })).await;
        assert_eq!(after, before, "a disabled endpoint got a delivery");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_rate_limit_spaces_deliveries_out() {
    for backend in backends() {
        let Hooked { app, s, receiver, endpoint, .. } =
            hooked(backend, json!({ "filterTypes": ["webhook.test"], "rateLimitPerSecond": 2 })).await;
        for _ in 0..5 {
            send_test_event(&app, &s.token, &endpoint).await;
        }
        // With the clock standing still, two go out and three wait for the window.
        receiver.wait_for(&app, 2).await;
        let pending = "query($id: ID!) { webhookDeliveries(endpointId: $id, status: PENDING) { edges { node { attemptCount nextAttemptAt } } } }";
        until(&app, "three deliveries held back by the limit", async || {
            let d = app.gql_ok(Some(&s.token), pending, json!({ "id": endpoint })).await;
            let edges = d["webhookDeliveries"]["edges"].as_array().unwrap().clone();
            (edges.len() == 3
                && edges
                    .iter()
                    .all(|e| e["node"]["attemptCount"] == 0 && ms(&e["node"]["nextAttemptAt"]) > app.clock.now_ms()))
            .then_some(())
        })
        .await;
        assert_eq!(receiver.count(), 2);
        app.clock.advance_ms(1_000);
        receiver.wait_for(&app, 4).await;
        app.clock.advance_ms(1_000);
        receiver.wait_for(&app, 5).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attempt_the_database_refuses_to_log_is_logged_once_it_takes_it() {
    for backend in backends() {
        let Hooked { app, s, receiver, endpoint, .. } =
            hooked(backend, json!({ "filterTypes": ["webhook.test"] })).await;
        refuse_inserts(&app, "webhook_attempts", "1 = 1", true).await;
        let failures = || app.app.webhooks.record_failures.load(std::sync::atomic::Ordering::Relaxed);
        let before = failures();
        let id = send_test_event(&app, &s.token, &endpoint).await;
        receiver.wait_for(&app, 1).await;
        until(&app, "writing the attempt fails", async || (failures() > before).then_some(())).await;
        refuse_inserts(&app, "webhook_attempts", "1 = 1", false).await;
        let d = attempts(&app, &s.token, &id, 1).await;
        assert_eq!(d["status"], "SUCCEEDED", "[{backend:?}] {d}");
        assert_eq!(d["attempts"].as_array().unwrap().len(), 1, "{d}");
        // Logged, so not sent again when the lease (30 s timeout + 60 s margin) would have ended.
        app.clock.advance_ms(91_000);
        assert_eq!(gantry::webhooks::delivery::work(&app.app).await.unwrap(), 0, "[{backend:?}] claimed again");
        assert_eq!(receiver.count(), 1, "[{backend:?}] sent again");
    }
}

//! The REST routes of webhooks: endpoints, delivery logs, stats and recovery.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_routes_logs_stats_and_recovery() {
    for backend in backends() {
        let app = allowing_local(backend).await;
        let s = app.register("dev@example.com").await;
        app.lift_starter_limits(&s.token).await;
        let (key, _) = app.create_key(&s.token, &["webhooks:read", "webhooks:write", "keys:write"]).await;
        let (receiver, base) = Receiver::start().await;
        let (status, created) = app
            .rest(
                "POST",
                "/webhooks",
                Some(&key),
                Some(json!({ "url": format!("{base}/r"), "filter_types": ["webhook.test"], "headers": { "X-Some_Header": "v" }, "retry_schedule": [60] })),
            )
            .await;
        assert_eq!(status, 201, "[{backend:?}] {created}");
        assert!(created["data"]["secret"].as_str().unwrap().starts_with("whsec_"));
        assert_eq!(
            created["data"]["endpoint"]["headers"],
            json!({ "X-Some_Header": "v" }),
            "custom header names kept as given"
        );
        let id = created["data"]["endpoint"]["id"].as_str().unwrap().to_string();
        let (status, bad) = app.rest("POST", "/webhooks", Some(&key), Some(json!({ "url": "ftp://x" }))).await;
        assert_eq!(status, 422, "{bad}");

        // One success, then one failure that waits a minute.
        receiver.then([reply(200), reply(500)]);
        let (status, test) = app.rest("POST", &format!("/webhooks/{id}/test"), Some(&key), None).await;
        assert_eq!(status, 201, "{test}");
        receiver.wait_for(&app, 1).await;
        let (_, test2) = app.rest("POST", &format!("/webhooks/{id}/test"), Some(&key), None).await;
        let failing = test2["data"]["id"].as_str().unwrap().to_string();
        receiver.wait_for(&app, 2).await;
        attempts(&app, &s.token, &failing, 1).await;

        let (status, got) = app.rest("GET", &format!("/webhooks/{id}"), Some(&key), None).await;
        assert_eq!(status, 200);
        let stats = &got["data"]["stats"];
        assert_eq!(
            (stats["succeeded"].as_i64(), stats["pending"].as_i64(), stats["failed"].as_i64()),
            (Some(1), Some(1), Some(0)),
            "{got}"
        );
        assert_eq!(stats["attempts_last24_hours"], 2, "{got}");
        let (status, list) =
            app.rest("GET", &format!("/webhooks/{id}/deliveries?status=pending"), Some(&key), None).await;
        assert_eq!(status, 200);
        assert_eq!(list["data"].as_array().unwrap().len(), 1, "{list}");
        assert_eq!(list["data"][0]["id"], failing.as_str());
        let (_, logs) = app.rest("GET", &format!("/webhooks/{id}/logs"), Some(&key), None).await;
        let attempts_logged: usize =
            logs["data"].as_array().unwrap().iter().map(|d| d["attempts"].as_array().unwrap().len()).sum();
        assert_eq!(attempts_logged, 2, "{logs}");
        let (status, _) = app.rest("GET", "/webhook-events", Some(&key), None).await;
        assert_eq!(status, 200);

        // Manual retry through REST; a wrong endpoint in the path is NOT_FOUND.
        let (status, _) = app
            .rest(
                "POST",
                &format!("/webhooks/whk_00000000000000000000000000/deliveries/{failing}/retry"),
                Some(&key),
                None,
            )
            .await;
        assert_eq!(status, 404);
        let (status, retried) =
            app.rest("POST", &format!("/webhooks/{id}/deliveries/{failing}/retry"), Some(&key), None).await;
        assert_eq!(status, 200, "{retried}");
        receiver.wait_for(&app, 3).await;
        let d = attempts(&app, &s.token, &failing, 2).await;
        assert_eq!(d["status"], "SUCCEEDED");

        // Recovery re-sends failed deliveries in the window, at most 14 days back.
        receiver.then([reply(410)]);
        let (_, t3) = app.rest("POST", &format!("/webhooks/{id}/test"), Some(&key), None).await;
        let gone = t3["data"]["id"].as_str().unwrap().to_string();
        receiver.wait_for(&app, 4).await;
        attempts(&app, &s.token, &gone, 1).await;
        let now = app.app.clock.now_ms();
        let since = chrono::DateTime::from_timestamp_millis(now - 3_600_000).unwrap().to_rfc3339();
        let (status, r) =
            app.rest("POST", &format!("/webhooks/{id}/recover"), Some(&key), Some(json!({ "since": since }))).await;
        assert_eq!(status, 409, "a disabled endpoint is not recovered: {r}");
        let (status, _) =
            app.rest("PUT", &format!("/webhooks/{id}"), Some(&key), Some(json!({ "enabled": true }))).await;
        assert_eq!(status, 200);
        let too_old = chrono::DateTime::from_timestamp_millis(now - 15 * 86_400_000).unwrap().to_rfc3339();
        let (status, _) =
            app.rest("POST", &format!("/webhooks/{id}/recover"), Some(&key), Some(json!({ "since": too_old }))).await;
        assert_eq!(status, 422);
        let (status, r) =
            app.rest("POST", &format!("/webhooks/{id}/recover"), Some(&key), Some(json!({ "since": since }))).await;
        assert_eq!(status, 200, "{r}");
        assert_eq!(r["data"], 1, "{r}");
        receiver.wait_for(&app, 5).await;
        let d = attempts(&app, &s.token, &gone, 2).await;
        assert_eq!(d["status"], "SUCCEEDED");

        let (status, _) = app.rest("DELETE", &format!("/webhooks/{id}"), Some(&key), None).await;
        assert_eq!(status, 204);
        let (status, _) = app.rest("GET", &format!("/webhooks/{id}"), Some(&key), None).await;
        assert_eq!(status, 404);
    }
}

/// `POST /api/v2/webhooks/batch-subscribe`: adds event types to an endpoint's filter, keeps the
/// ones it has, refuses unknown patterns and other organizations' endpoints.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_subscribe_adds_event_types_to_an_endpoint() {
    for backend in backends() {
        let app = allowing_local(backend).await;
        let s = app.register("dev@example.com").await;
        let (key, _) = app.create_key(&s.token, &["webhooks:read", "webhooks:write"]).await;
        let (_receiver, base) = Receiver::start().await;
        let (status, created) = app
            .rest(
                "POST",
                "/webhooks",
                Some(&key),
                Some(json!({ "url": format!("{base}/r"), "filter_types": ["key.created"] })),
            )
            .await;
        assert_eq!(status, 201, "[{backend:?}] {created}");
        let id = created["data"]["endpoint"]["id"].as_str().unwrap().to_string();
        let add = json!({ "endpoint_id": id, "event_types": ["key.deleted", "quota.*", "key.created"] });
        let (status, body) = app.rest_at("POST", "/api/v2/webhooks/batch-subscribe", Some(&key), Some(add)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["filter_types"], json!(["key.created", "key.deleted", "quota.*"]), "{body}");
        let (status, body) = app
            .rest_at(
                "POST",
                "/api/v2/webhooks/batch-subscribe",
                Some(&key),
                Some(json!({ "endpoint_id": id, "event_types": [] })),
            )
            .await;
        assert_eq!((status, body["error"]["details"]["field"].as_str()), (422, Some("event_types")), "{body}");
        let (status, body) = app
            .rest_at("POST", "/api/v2/webhooks/batch-subscribe", Some(&key), Some(json!({ "endpoint_id": id })))
            .await;
        assert_eq!((status, body["error"]["details"]["field"].as_str()), (422, Some("event_types")), "{body}");
        let other = app.register("other@example.com").await;
        let (their_key, _) = app.create_key(&other.token, &["webhooks:write"]).await;
        let (status, _) = app
            .rest_at(
                "POST",
                "/api/v2/webhooks/batch-subscribe",
                Some(&their_key),
                Some(json!({ "endpoint_id": id, "event_types": ["key.deleted"] })),
            )
            .await;
        assert_eq!(status, 404, "another organization's endpoint");
    }
}

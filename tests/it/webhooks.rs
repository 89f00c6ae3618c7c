//! Webhooks end to end: a real HTTP receiver on 127.0.0.1 that checks every signature with its
//! own HMAC code (not the server's), the worker's schedule driven by the injected clock.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};

use gantry::platform::clock::Clock;

use crate::common::{TestApp, backends, code, refuse_inserts, ws};

/// What the receiver answers next: a status, extra headers, a body, and a delay before answering
/// (or a signal to wait for).
#[derive(Clone)]
pub struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    delay: Duration,
    body: &'static str,
    release: Option<Arc<tokio::sync::Notify>>,
}

pub fn reply(status: u16) -> Reply {
    Reply { status, headers: vec![], delay: Duration::ZERO, body: "received", release: None }
}

impl Reply {
    fn with_headers(mut self, headers: Vec<(&'static str, String)>) -> Self {
        self.headers = headers;
        self
    }
    fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
    /// Answers only once `release` is notified.
    fn held(mut self, release: &Arc<tokio::sync::Notify>) -> Self {
        self.release = Some(release.clone());
        self
    }
    fn body(mut self, body: &'static str) -> Self {
        self.body = body;
        self
    }
}

#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: String,
}

/// A webhook receiver on 127.0.0.1: records every request and answers from a script (200 when
/// the script is empty), after `delay` unless the scripted reply has its own.
#[derive(Clone, Default)]
pub struct Receiver {
    /// Every request, recorded when it arrives.
    pub got: Arc<Mutex<Vec<Received>>>,
    /// Requests answered: recorded after the delay, so one cut off by a crash is not here.
    pub completed: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<VecDeque<Reply>>>,
    pub delay: Arc<Mutex<Duration>>,
}

impl Receiver {
    /// Starts a receiver on 127.0.0.1; returns it and its base URL.
    pub async fn start() -> (Receiver, String) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve(listener)
    }

    /// Serves on `listener` (so a test can bring a receiver up on a port it chose earlier).
    pub fn serve(listener: tokio::net::TcpListener) -> (Receiver, String) {
        let r = Receiver::default();
        let state = r.clone();
        let app = axum::Router::new().fallback(move |uri: axum::http::Uri, headers: HeaderMap, body: String| {
            let state = state.clone();
            async move {
                let received = Received { path: uri.path().to_string(), headers, body };
                state.got.lock().unwrap().push(received.clone());
                let delay = *state.delay.lock().unwrap();
                let next = state.script.lock().unwrap().pop_front().unwrap_or_else(|| reply(200).after(delay));
                tokio::time::sleep(next.delay).await;
                if let Some(release) = &next.release {
                    release.notified().await;
                }
                state.completed.lock().unwrap().push(received);
                let mut out = axum::http::Response::builder().status(StatusCode::from_u16(next.status).unwrap());
                for (k, v) in next.headers {
                    out = out.header(k, v);
                }
                out.body(axum::body::Body::from(next.body)).unwrap()
            }
        });
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (r, format!("http://{addr}"))
    }

    pub fn then(&self, replies: impl IntoIterator<Item = Reply>) {
        self.script.lock().unwrap().extend(replies);
    }

    pub fn count(&self) -> usize {
        self.got.lock().unwrap().len()
    }

    /// Waits (bounded) until the receiver has had `n` requests; returns them.
    async fn wait_for(&self, app: &TestApp, n: usize) -> Vec<Received> {
        until(app, &format!("the receiver gets {n} requests"), async || {
            (self.count() >= n).then(|| self.got.lock().unwrap().clone())
        })
        .await
    }

    /// Waits (bounded) until a request carrying an event of type `t` has arrived; returns the
    /// first. (A clock moved past a lease may legitimately bring a success again before its
    /// outcome was written — at least once — so tests find events by type, not by position.)
    async fn wait_for_type(&self, app: &TestApp, t: &str) -> Received {
        until(app, &format!("the receiver gets a {t} event"), async || {
            self.got.lock().unwrap().iter().find(|r| event_type(r) == t).cloned()
        })
        .await
    }
}

fn event_type(r: &Received) -> String {
    serde_json::from_str::<Value>(&r.body).unwrap()["type"].as_str().unwrap_or_default().to_string()
}

/// Polls `check` — waking the worker between tries, for at most ~10 s — until it gives a value.
async fn until<T>(app: &TestApp, what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    for _ in 0..500 {
        if let Some(v) = check().await {
            return v;
        }
        app.app.webhooks.wake();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("never happened: {what}");
}

/// Verifies a Standard Webhooks signature header independently of the server: true when one of
/// the space-separated `v1,` signatures is the HMAC-SHA256 of `id.timestamp.body` under `secret`.
pub fn signed_by(secret: &str, r: &Received) -> bool {
    let key = base64::engine::general_purpose::STANDARD.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
    let id = r.headers["webhook-id"].to_str().unwrap();
    let ts = r.headers["webhook-timestamp"].to_str().unwrap();
    let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{ts}.{}", r.body).as_bytes());
    let expected = format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()));
    r.headers["webhook-signature"].to_str().unwrap().split(' ').any(|s| s == expected)
}

async fn allowing_local(backend: crate::common::Backend) -> TestApp {
    TestApp::with_config(backend, |c| {
        c.webhook_allow_http = true;
        c.webhook_allowed_networks = vec!["127.0.0.0/8".parse().unwrap()];
        c.webhook_poll_interval_ms = 50;
    })
    .await
}

async fn create_endpoint(app: &TestApp, token: &str, input: Value) -> (String, String) {
    let r = app
        .gql_ok(
            Some(token),
            "mutation($input: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $input) { secret endpoint { id } } }",
            json!({ "input": input }),
        )
        .await;
    let p = &r["createWebhookEndpoint"];
    (p["endpoint"]["id"].as_str().unwrap().to_string(), p["secret"].as_str().unwrap().to_string())
}

const DELIVERY: &str = "query($id: ID!) { webhookDelivery(id: $id) { id status attemptCount nextAttemptAt lastStatusCode lastError eventType eventId \
    attempts { id attempt responseStatus errorKind errorMessage requestHeaders responseBody latencyMs } } }";

async fn delivery(app: &TestApp, token: &str, id: &str) -> Value {
    app.gql_ok(Some(token), DELIVERY, json!({ "id": id })).await["webhookDelivery"].clone()
}

/// Sends the endpoint a `webhook.test` event; returns the delivery id.
async fn send_test_event(app: &TestApp, token: &str, endpoint: &str) -> String {
    let r = app
        .gql_ok(Some(token), "mutation($id: ID!) { sendTestEvent(endpointId: $id) { id } }", json!({ "id": endpoint }))
        .await;
    r["sendTestEvent"]["id"].as_str().unwrap().to_string()
}

/// Waits (bounded) until the delivery has made `n` attempts; returns it.
async fn attempts(app: &TestApp, token: &str, id: &str, n: i64) -> Value {
    until(app, &format!("delivery {id} reaches {n} attempts"), async || {
        let d = delivery(app, token, id).await;
        (d["attemptCount"].as_i64() >= Some(n)).then_some(d)
    })
    .await
}

fn ms(rfc3339: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339.as_str().unwrap()).unwrap().timestamp_millis()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_are_validated_and_scoped_to_their_organization() {
    for backend in backends() {
        let app = TestApp::new(backend).await; // https only, nothing internal allowed
        let s = app.register("dev@example.com").await;
        app.lift_starter_limits(&s.token).await;
        let other = app.register("other@example.com").await;
        let m = "mutation($input: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $input) { secret endpoint { id url filterTypes timeoutSeconds retrySchedule enabled } } }";
        for (input, field) in [
            (json!({ "url": "ftp://example.com/x" }), "url"),
            (json!({ "url": "http://example.com/x" }), "url"),
            (json!({ "url": "not a url" }), "url"),
            (json!({ "url": "https://user:pw@example.com/x" }), "url"),
            (json!({ "url": "https://127.0.0.1/x" }), "url"),
            (json!({ "url": "https://10.0.0.8/x" }), "url"),
            (json!({ "url": "https://169.254.169.254/latest/meta-data" }), "url"),
            (json!({ "url": "https://[::1]/x" }), "url"),
            (json!({ "url": "https://example.com/x", "filterTypes": ["bad type"] }), "filterTypes"),
            (json!({ "url": "https://example.com/x", "filterTypes": [] }), "filterTypes"),
            (json!({ "url": "https://example.com/x", "headers": { "webhook-signature": "x" } }), "headers"),
            (json!({ "url": "https://example.com/x", "headers": { "X-Ok": 1 } }), "headers"),
            (json!({ "url": "https://example.com/x", "timeoutSeconds": 31 }), "timeoutSeconds"),
            (json!({ "url": "https://example.com/x", "retrySchedule": [0] }), "retrySchedule"),
            (json!({ "url": "https://example.com/x", "metadata": [1] }), "metadata"),
        ] {
            let r = app.gql(Some(&s.token), m, json!({ "input": input })).await;
            assert_eq!(code(&r), "BAD_USER_INPUT", "[{backend:?}] {input}: {r}");
            assert_eq!(r["errors"][0]["extensions"]["field"], field, "[{backend:?}] {input}: {r}");
        }
        let r = app.gql_ok(Some(&s.token), m, json!({ "input": { "url": "https://example.com/hooks" } })).await;
        let created = &r["createWebhookEndpoint"];
        let secret = created["secret"].as_str().unwrap();
        assert!(secret.starts_with("whsec_"));
        let raw = base64::engine::general_purpose::STANDARD.decode(&secret[6..]).unwrap();
        assert!(raw.len() >= 24, "secret of {} bytes", raw.len());
        assert_eq!(created["endpoint"]["filterTypes"], json!(["*"]));
        assert_eq!(created["endpoint"]["timeoutSeconds"], 30);
        assert_eq!(created["endpoint"]["retrySchedule"], json!([5, 300, 1800, 7200, 18000, 36000, 36000]));
        let id = created["endpoint"]["id"].as_str().unwrap().to_string();
        assert!(id.starts_with("whk_"));
        let node = app
            .gql_ok(
                Some(&s.token),
                "query($id: ID!) { node(id: $id) { id ... on WebhookEndpoint { url } } }",
                json!({ "id": id }),
            )
            .await;
        assert_eq!(node["node"]["url"], "https://example.com/hooks");

        // Another organization sees none of it.
        for q in [
            "query($id: ID!) { webhookEndpoint(id: $id) { id } }",
            "mutation($id: ID!) { deleteWebhookEndpoint(id: $id) { deletedId } }",
            "mutation($id: ID!) { rotateWebhookSecret(id: $id) { secret } }",
            "mutation($id: ID!) { sendTestEvent(endpointId: $id) { id } }",
            "mutation($id: ID!) { updateWebhookEndpoint(id: $id, input: {enabled: false}) { id } }",
            "query($id: ID!) { node(id: $id) { id } }",
        ] {
            let r = app.gql(Some(&other.token), q, json!({ "id": id })).await;
            assert_eq!(code(&r), "NOT_FOUND", "[{backend:?}] {q}: {r}");
        }
        let list = app.gql_ok(Some(&other.token), "{ webhookEndpoints { totalCount } }", json!({})).await;
        assert_eq!(list["webhookEndpoints"]["totalCount"], 0);
        // A key without webhook scopes is refused.
        let (key, _) = app.create_key(&s.token, &["keys:read"]).await;
        let r = app.gql(Some(&key), "{ webhookEndpoints { totalCount } }", json!({})).await;
        assert_eq!(code(&r), "FORBIDDEN", "{r}");

        let upd = app
            .gql_ok(
                Some(&s.token),
                "mutation($id: ID!) { updateWebhookEndpoint(id: $id, input: {filterTypes: [\"key.*\", \"alert.triggered\"], description: \"prod\", retrySchedule: [1, 2]}) { filterTypes description retrySchedule } }",
                json!({ "id": id }),
            )
            .await;
        assert_eq!(upd["updateWebhookEndpoint"]["filterTypes"], json!(["alert.triggered", "key.*"]));
        assert_eq!(upd["updateWebhookEndpoint"]["retrySchedule"], json!([1, 2]));
        let r = app
            .gql(
                Some(&s.token),
                "mutation($id: ID!) { updateWebhookEndpoint(id: $id, input: {url: \"https://192.168.1.1/\"}) { id } }",
                json!({ "id": id }),
            )
            .await;
        assert_eq!(code(&r), "BAD_USER_INPUT", "{r}");
        let del = app
            .gql_ok(
                Some(&s.token),
                "mutation($id: ID!) { deleteWebhookEndpoint(id: $id) { deletedId } }",
                json!({ "id": id }),
            )
            .await;
        assert_eq!(del["deleteWebhookEndpoint"]["deletedId"], id.as_str());
        let r =
            app.gql(Some(&s.token), "query($id: ID!) { webhookEndpoint(id: $id) { id } }", json!({ "id": id })).await;
        assert_eq!(code(&r), "NOT_FOUND");
        let types =
            app.gql_ok(Some(&s.token), "{ eventTypes { name category schema sample builtIn } }", json!({})).await;
        let names: Vec<&str> =
            types["eventTypes"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
        for n in ["key.created", "webhook.endpoint.disabled", "quota.threshold_reached", "alert.triggered"] {
            assert!(names.contains(&n), "{n} missing from the catalog");
        }

        // The plan caps endpoints per organization.
        app.gql_ok(
            Some(&s.token),
            "mutation { updatePlan(id: \"pln_0000000000000000000starter\", input: {maxWebhookEndpoints: 1}) { maxWebhookEndpoints } }",
            json!({}),
        )
        .await;
        app.gql_ok(Some(&s.token), m, json!({ "input": { "url": "https://example.com/one" } })).await;
        let r = app.gql(Some(&s.token), m, json!({ "input": { "url": "https://example.com/two" } })).await;
        assert_eq!(code(&r), "FORBIDDEN", "[{backend:?}] {r}");
        assert!(r["errors"][0]["message"].as_str().unwrap().contains("plan"), "{r}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_delivered_signed_and_retried_on_the_schedule() {
    for backend in backends() {
        let app = allowing_local(backend).await;
        let s = app.register("dev@example.com").await;
        app.lift_starter_limits(&s.token).await;
        let (receiver, base) = Receiver::start().await;
        let (endpoint, secret) = create_endpoint(
            &app,
            &s.token,
            json!({ "url": format!("{base}/hooks"), "filterTypes": ["key.*"], "headers": { "X-Team": "payments" } }),
        )
        .await;
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
        let app = allowing_local(backend).await;
        let s = app.register("dev@example.com").await;
        app.lift_starter_limits(&s.token).await;
        let (receiver, base) = Receiver::start().await;
        let (endpoint, _) = create_endpoint(
            &app,
            &s.token,
            json!({ "url": format!("{base}/hooks"), "filterTypes": ["key.created"], "timeoutSeconds": 1, "retrySchedule": [5, 5] }),
        )
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
async fn a_rotated_secret_signs_beside_the_new_one_until_its_grace_ends() {
    for backend in backends() {
        let app = allowing_local(backend).await;
        let s = app.register("dev@example.com").await;
        app.lift_starter_limits(&s.token).await;
        let (receiver, base) = Receiver::start().await;
        let (endpoint, old) =
            create_endpoint(&app, &s.token, json!({ "url": format!("{base}/hooks"), "filterTypes": ["webhook.test"] }))
                .await;
        let r = app
            .gql(
                Some(&s.token),
                "mutation($id: ID!) { rotateWebhookSecret(id: $id, gracePeriodSeconds: 604801) { secret } }",
                json!({ "id": endpoint }),
            )
            .await;
        assert_eq!(code(&r), "BAD_USER_INPUT");
        let r = app
            .gql_ok(
                Some(&s.token),
                "mutation($id: ID!) { rotateWebhookSecret(id: $id, gracePeriodSeconds: 600) { secret previousSecretExpiresAt } }",
                json!({ "id": endpoint }),
            )
            .await;
        let new = r["rotateWebhookSecret"]["secret"].as_str().unwrap().to_string();
        assert_ne!(new, old);
        let first = send_test_event(&app, &s.token, &endpoint).await;
        let got = receiver.wait_for(&app, 1).await;
        assert!(
            signed_by(&old, &got[0]) && signed_by(&new, &got[0]),
            "[{backend:?}] both secrets sign during the grace"
        );
        assert_eq!(got[0].headers["webhook-signature"].to_str().unwrap().split(' ').count(), 2);
        let body: Value = serde_json::from_str(&got[0].body).unwrap();
        assert_eq!(body["type"], "webhook.test");
        assert_eq!(body["data"]["message"], "This is a test event from Gantry.");

        // The outcome is written before the clock jumps past the attempt's lease: otherwise the
        // delivery would rightly be sent again, and taken here for the next one.
        let d = attempts(&app, &s.token, &first, 1).await;
        assert_eq!(d["status"], "SUCCEEDED", "{d}");
        app.clock.advance_ms(601_000);
        let second = send_test_event(&app, &s.token, &endpoint).await;
        let got = receiver.wait_for(&app, 2).await;
        assert_eq!(got[1].headers["webhook-id"], second.as_str());
        assert!(signed_by(&new, &got[1]));
        assert!(!signed_by(&old, &got[1]), "[{backend:?}] the old secret still signs after its grace");

        // A test event of a catalog type sends the type's sample.
        let r = app
            .gql_ok(
                Some(&s.token),
                "mutation($id: ID!) { sendTestEvent(endpointId: $id, type: \"key.created\") { eventType } }",
                json!({ "id": endpoint }),
            )
            .await;
        assert_eq!(r["sendTestEvent"]["eventType"], "key.created");
        let got = receiver.wait_for_type(&app, "key.created").await;
        let body: Value = serde_json::from_str(&got.body).unwrap();
        assert_eq!(body["data"]["key"]["name"], "production");
        let r = app
            .gql(
                Some(&s.token),
                "mutation($id: ID!) { sendTestEvent(endpointId: $id, type: \"no.such\") { id } }",
                json!({ "id": endpoint }),
            )
            .await;
        assert_eq!(code(&r), "BAD_USER_INPUT");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_addresses_are_refused_at_connect_time_unless_allowed() {
    for backend in backends() {
        // http allowed, but no internal network.
        let app = TestApp::with_config(backend, |c| {
            c.webhook_allow_http = true;
            c.webhook_poll_interval_ms = 50;
        })
        .await;
        let s = app.register("dev@example.com").await;
        app.lift_starter_limits(&s.token).await;
        let (receiver, base) = Receiver::start().await;
        let port = base.rsplit(':').next().unwrap();
        // Literal internal addresses are refused when the endpoint is saved…
        for url in [base.clone(), "http://10.1.2.3/x".into(), "http://169.254.169.254/latest".into()] {
            let r = app
                .gql(
                    Some(&s.token),
                    "mutation($u: String!) { createWebhookEndpoint(input: {url: $u}) { secret } }",
                    json!({ "u": url }),
                )
                .await;
            assert_eq!(code(&r), "BAD_USER_INPUT", "[{backend:?}] {url}: {r}");
        }
        // …so are names that resolve only to internal addresses when it is saved…
        for url in [format!("http://localhost:{port}/hooks"), "https://localhost/hooks".to_string()] {
            let r = app
                .gql(
                    Some(&s.token),
                    "mutation($u: String!) { createWebhookEndpoint(input: {url: $u}) { secret } }",
                    json!({ "u": url }),
                )
                .await;
            assert_eq!(
                (code(&r), r["errors"][0]["extensions"]["field"].as_str()),
                ("BAD_USER_INPUT", Some("url")),
                "[{backend:?}] {url}: {r}"
            );
            assert!(r["errors"][0]["message"].as_str().unwrap().contains("resolves to"), "{r}");
        }
        // …and a name that resolves to one only later is refused when connecting (DNS cannot
        // smuggle it in). A name that does not resolve when saved, then resolves to loopback, is
        // simulated by changing the stored URL.
        let (endpoint, _) = create_endpoint(
            &app,
            &s.token,
            json!({ "url": format!("http://later.invalid:{port}/hooks"), "filterTypes": ["webhook.test"] }),
        )
        .await;
        let rebound = format!("http://localhost:{port}/hooks");
        let done: Result<(), gantry::error::Error> = async {
            use diesel::prelude::*;
            use diesel_async::RunQueryDsl;
            use gantry::platform::db::schema::webhook_endpoints;
            gantry::with_conn!(app.app.db, c => diesel::update(webhook_endpoints::table.find(&endpoint)).set(webhook_endpoints::url.eq(&rebound)).execute(c).await?);
            Ok(())
        }
        .await;
        done.unwrap();
        let id = send_test_event(&app, &s.token, &endpoint).await;
        let d = attempts(&app, &s.token, &id, 1).await;
        assert_eq!(d["attempts"][0]["errorKind"], "REFUSED", "[{backend:?}] {d}");
        // Refused for good: no retry schedule against an address that stays refused, and a short
        // reason (the error chain is in the attempt).
        assert_eq!((d["status"].as_str(), &d["nextAttemptAt"]), (Some("FAILED"), &Value::Null), "[{backend:?}] {d}");
        assert!(d["lastError"].as_str().unwrap().starts_with("refused: "), "{d}");
        assert_eq!(receiver.count(), 0, "the internal receiver was reached");
    }
}

/// A TLS server on 127.0.0.1 whose certificate no client trusts (self-signed, in
/// `tests/fixtures`): counts the connections it accepted.
async fn untrusted_tls_server() -> (Arc<std::sync::atomic::AtomicUsize>, u16) {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let _ = rustls::crypto::ring::default_provider().install_default();
    let certs = vec![CertificateDer::from_pem_slice(include_bytes!("../fixtures/self-signed.crt")).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(include_bytes!("../fixtures/self-signed.key")).unwrap();
    let config = rustls::ServerConfig::builder().with_no_client_auth().with_single_cert(certs, key).unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = connections.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let acceptor = acceptor.clone();
            // The client aborts the handshake on the certificate; nothing is ever served.
            tokio::spawn(async move { acceptor.accept(stream).await.map(|_| ()) });
        }
    });
    (connections, port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_certificate_is_a_tls_failure_and_retried() {
    for backend in backends() {
        let app = allowing_local(backend).await;
        let s = app.register("dev@example.com").await;
        app.lift_starter_limits(&s.token).await;
        let (connections, port) = untrusted_tls_server().await;
        let (endpoint, _) = create_endpoint(
            &app,
            &s.token,
            json!({ "url": format!("https://localhost:{port}/hooks"), "filterTypes": ["webhook.test"] }),
        )
        .await;
        let id = send_test_event(&app, &s.token, &endpoint).await;
        let d = attempts(&app, &s.token, &id, 1).await;
        let attempt = &d["attempts"][0];
        assert_eq!(attempt["errorKind"], "TLS", "[{backend:?}] {d}");
        assert_eq!(attempt["responseStatus"], Value::Null, "{d}");
        let message = attempt["errorMessage"].as_str().unwrap().to_lowercase();
        assert!(message.contains("certificate"), "the log says why: {message}");
        // A TLS failure is retried on the schedule, like a connection failure.
        assert_eq!(d["status"], "PENDING", "{d}");
        assert!(d["nextAttemptAt"].is_string(), "{d}");
        assert!(connections.load(std::sync::atomic::Ordering::SeqCst) >= 1, "no connection reached the server");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_events_are_validated_published_once_and_delivered() {
    for backend in backends() {
        let app = allowing_local(backend).await;
        let admin = app.register("ops@example.com").await; // platform administrator
        app.lift_starter_limits(&admin.token).await;
        let dev = app.register("dev@example.com").await;
        let (service, _) = app.create_key(&admin.token, &["events:publish"]).await;
        let (dev_key, _) = app.create_key(&dev.token, &["events:publish", "org:read", "webhooks:write"]).await;

        // Only the operator defines types; names, schemas and samples are checked.
        let create =
            "mutation($input: CreateEventTypeInput!) { createEventType(input: $input) { name category builtIn } }";
        let schema = json!({ "type": "object", "properties": { "invoice_id": { "type": "string" }, "amount_cents": { "type": "integer", "minimum": 0 } }, "required": ["invoice_id", "amount_cents"] });
        let sample = json!({ "invoice_id": "in_1", "amount_cents": 1200 });
        let r = app.gql(Some(&dev_key), create, json!({ "input": { "name": "invoice.paid", "schema": schema } })).await;
        assert_eq!(code(&r), "FORBIDDEN", "[{backend:?}] {r}");
        for (input, field) in [
            (json!({ "name": "nodot" }), "name"),
            (json!({ "name": "bad name.x" }), "name"),
            (json!({ "name": "invoice.paid", "schema": { "type": 12 } }), "schema"),
            (json!({ "name": "invoice.paid", "schema": schema, "sample": { "invoice_id": 3 } }), "sample"),
        ] {
            let r = app.gql(Some(&service), create, json!({ "input": input })).await;
            assert_eq!(code(&r), "BAD_USER_INPUT", "[{backend:?}] {input}: {r}");
            assert_eq!(r["errors"][0]["extensions"]["field"], field, "{r}");
        }
        let r = app.gql(Some(&service), create, json!({ "input": { "name": "key.created" } })).await;
        assert_eq!(code(&r), "CONFLICT", "{r}");
        let t = app
            .gql_ok(Some(&service), create, json!({ "input": { "name": "invoice.paid", "description": "An invoice was paid.", "schema": schema, "sample": sample } }))
            .await;
        assert_eq!(t["createEventType"], json!({ "name": "invoice.paid", "category": "invoice", "builtIn": false }));
        let r = app.gql(Some(&service), create, json!({ "input": { "name": "invoice.paid" } })).await;
        assert_eq!(code(&r), "CONFLICT");

        // The developer's endpoint listens to invoices.
        let (receiver, base) = Receiver::start().await;
        let (endpoint, secret) =
            create_endpoint(&app, &dev.token, json!({ "url": format!("{base}/in"), "filterTypes": ["invoice.*"] }))
                .await;

        // Publishing: the payload must match; built-in and unknown types are refused.
        let publish = "mutation($input: PublishEventInput!) { publishEvent(input: $input) { replayed event { id type organizationId data } } }";
        for (input, field) in [
            (
                json!({ "type": "invoice.paid", "payload": { "invoice_id": "in_1", "amount_cents": -5 }, "organizationId": dev.org_id }),
                "payload",
            ),
            (
                json!({ "type": "invoice.paid", "payload": { "amount_cents": 5 }, "organizationId": dev.org_id }),
                "payload",
            ),
            (json!({ "type": "key.created", "payload": {}, "organizationId": dev.org_id }), "type"),
            (json!({ "type": "no.such", "payload": {}, "organizationId": dev.org_id }), "type"),
            (
                json!({ "type": "invoice.paid", "payload": sample, "organizationId": dev.org_id, "idempotencyKey": "" }),
                "idempotencyKey",
            ),
        ] {
            let r = app.gql(Some(&service), publish, json!({ "input": input })).await;
            assert_eq!(code(&r), "BAD_USER_INPUT", "[{backend:?}] {input}: {r}");
            assert_eq!(r["errors"][0]["extensions"]["field"], field, "{r}");
        }
        // A developer cannot publish into another organization.
        let r = app
            .gql(
                Some(&dev_key),
                publish,
                json!({ "input": { "type": "invoice.paid", "payload": sample, "organizationId": admin.org_id } }),
            )
            .await;
        assert_eq!(code(&r), "FORBIDDEN", "{r}");
        // The service key publishes to the developer's organization, once per idempotency key.
        let input = json!({ "type": "invoice.paid", "payload": sample, "organizationId": dev.org_id, "idempotencyKey": "inv-1-paid" });
        let first = app.gql_ok(Some(&service), publish, json!({ "input": input })).await;
        assert_eq!(first["publishEvent"]["replayed"], false);
        assert_eq!(first["publishEvent"]["event"]["organizationId"], dev.org_id.as_str());
        let again = app.gql_ok(Some(&service), publish, json!({ "input": input })).await;
        assert_eq!(again["publishEvent"]["replayed"], true);
        assert_eq!(again["publishEvent"]["event"]["id"], first["publishEvent"]["event"]["id"]);
        let got = receiver.wait_for(&app, 1).await;
        assert!(signed_by(&secret, &got[0]));
        let body: Value = serde_json::from_str(&got[0].body).unwrap();
        assert_eq!(body["type"], "invoice.paid");
        assert_eq!(body["data"], sample);

        // Through REST too, with the payload's own keys left as they are (not camelCased).
        let (status, rest) = app
            .rest(
                "POST",
                "/events",
                Some(&service),
                Some(json!({ "type": "invoice.paid", "payload": { "invoice_id": "in_2", "amount_cents": 1 }, "organization_id": dev.org_id, "idempotency_key": "inv-2" })),
            )
            .await;
        assert_eq!(status, 201, "{rest}");
        assert_eq!(rest["data"]["event"]["data"]["invoice_id"], "in_2");
        let got = receiver.wait_for(&app, 2).await;
        let body: Value = serde_json::from_str(&got[1].body).unwrap();
        assert_eq!(body["data"], json!({ "invoice_id": "in_2", "amount_cents": 1 }));
        // Exactly two deliveries: the repeat published nothing (events are dispatched in id order,
        // so the repeat's would precede the second one's, which has arrived).
        let d = app
            .gql_ok(
                Some(&dev.token),
                "query($id: ID!) { webhookDeliveries(endpointId: $id) { totalCount } }",
                json!({ "id": endpoint }),
            )
            .await;
        assert_eq!(d["webhookDeliveries"]["totalCount"], 2, "[{backend:?}] {d}");
        assert_eq!(receiver.count(), 2);

        // The developer's event list, filtered by category.
        let list = app
            .gql_ok(
                Some(&dev_key),
                "{ events(types: [\"invoice.*\"]) { totalCount edges { node { type } } } }",
                json!({}),
            )
            .await;
        assert_eq!(list["events"]["totalCount"], 2);
        let r = app.gql(Some(&dev_key), "{ events(types: [\"bad type\"]) { totalCount } }", json!({})).await;
        assert_eq!(code(&r), "BAD_USER_INPUT");

        // Changing and archiving.
        let r = app
            .gql(
                Some(&service),
                "mutation { updateEventType(name: \"invoice.paid\", input: {sample: {invoice_id: 1}}) { name } }",
                json!({}),
            )
            .await;
        assert_eq!(code(&r), "BAD_USER_INPUT", "a sample that breaks the schema: {r}");
        app.gql_ok(
            Some(&service),
            "mutation { updateEventType(name: \"invoice.paid\", input: {deprecated: true}) { deprecated } }",
            json!({}),
        )
        .await;
        let archived = app
            .gql_ok(Some(&service), "mutation { archiveEventType(name: \"invoice.paid\") { archivedAt } }", json!({}))
            .await;
        assert!(archived["archiveEventType"]["archivedAt"].is_string());
        let r = app
            .gql(
                Some(&service),
                publish,
                json!({ "input": { "type": "invoice.paid", "payload": sample, "organizationId": dev.org_id } }),
            )
            .await;
        assert_eq!(code(&r), "BAD_USER_INPUT", "an archived type is not published: {r}");
        let types = app.gql_ok(Some(&dev_key), "{ eventTypes(category: \"invoice\") { name } }", json!({})).await;
        assert_eq!(types["eventTypes"], json!([]));
        let types = app
            .gql_ok(
                Some(&dev_key),
                "{ eventTypes(category: \"invoice\", includeArchived: true) { name deprecated } }",
                json!({}),
            )
            .await;
        assert_eq!(types["eventTypes"], json!([{ "name": "invoice.paid", "deprecated": true }]));
        let r =
            app.gql(Some(&service), "mutation { archiveEventType(name: \"key.created\") { name } }", json!({})).await;
        assert_eq!(code(&r), "FORBIDDEN");
        // A test event of an operator type sends its sample.
        app.gql_ok(
            Some(&dev.token),
            "mutation($id: ID!) { sendTestEvent(endpointId: $id, type: \"invoice.paid\") { id } }",
            json!({ "id": endpoint }),
        )
        .await;
        let got = receiver.wait_for(&app, 3).await;
        assert_eq!(serde_json::from_str::<Value>(&got[2].body).unwrap()["data"], sample);
        // A test event stays out of the organization's event list.
        let list = app
            .gql_ok(Some(&dev_key), "{ events(types: [\"invoice.*\", \"INVOICE.*\"]) { totalCount } }", json!({}))
            .await;
        assert_eq!(list["events"]["totalCount"], 2, "[{backend:?}] {list}");
    }
}

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
        let app = allowing_local(backend).await;
        let s = app.register("dev@example.com").await;
        app.lift_starter_limits(&s.token).await;
        let (receiver, base) = Receiver::start().await;
        // The first request is held until the test lets it go; the second fails at once; a third
        // answers 200 with a NUL byte in its body, which PostgreSQL text cannot store as is.
        let release = Arc::new(tokio::sync::Notify::new());
        receiver.then([reply(200).held(&release), reply(500), reply(200).body("ok\0done")]);
        let (endpoint, _) = create_endpoint(
            &app,
            &s.token,
            json!({ "url": format!("{base}/hooks"), "filterTypes": ["webhook.test"], "retrySchedule": [3600] }),
        )
        .await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_rate_limit_spaces_deliveries_out() {
    for backend in backends() {
        let app = allowing_local(backend).await;
        let s = app.register("dev@example.com").await;
        app.lift_starter_limits(&s.token).await;
        let (receiver, base) = Receiver::start().await;
        let (endpoint, _) = create_endpoint(
            &app,
            &s.token,
            json!({ "url": format!("{base}/in"), "filterTypes": ["webhook.test"], "rateLimitPerSecond": 2 }),
        )
        .await;
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
        let app = allowing_local(backend).await;
        let s = app.register("dev@example.com").await;
        app.lift_starter_limits(&s.token).await;
        let (receiver, base) = Receiver::start().await;
        let (endpoint, _) =
            create_endpoint(&app, &s.token, json!({ "url": format!("{base}/hooks"), "filterTypes": ["webhook.test"] }))
                .await;
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

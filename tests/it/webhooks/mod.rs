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

use crate::common::{Backend, Session, TestApp, backends, code, refuse_inserts, ws};

mod delivery;
mod endpoints;
mod health;
mod operator_events;
mod rest;

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

/// The set-up most tests share: an app that may deliver to 127.0.0.1, a developer with the
/// Starter limits lifted, a receiver, and one endpoint on it at `{base}/hooks` with `fields`
/// added to its input.
pub struct Hooked {
    pub app: TestApp,
    pub s: Session,
    pub receiver: Receiver,
    pub base: String,
    pub endpoint: String,
    pub secret: String,
}

pub async fn hooked(backend: Backend, fields: Value) -> Hooked {
    let app = allowing_local(backend).await;
    let s = app.register("dev@example.com").await;
    app.lift_starter_limits(&s.token).await;
    let (receiver, base) = Receiver::start().await;
    let mut input = json!({ "url": format!("{base}/hooks") });
    input.as_object_mut().unwrap().extend(fields.as_object().unwrap().clone());
    let (endpoint, secret) = create_endpoint(&app, &s.token, input).await;
    Hooked { app, s, receiver, base, endpoint, secret }
}

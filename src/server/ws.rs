//! GraphQL over WebSocket: `graphql-transport-ws` and the legacy `graphql-ws`
//! (subscriptions-transport-ws). The protocol is served here, not by async-graphql's handler, so
//! that every operation passes the admission pipeline exactly like the same operation over HTTP:
//! each query and mutation is authenticated (the connection's credential, checked again through
//! the credential cache), screened, rate limited, charged to the quota, the concurrency cap and
//! the cost bucket, and metered; a subscription is admitted and metered once when it starts, and
//! holds one of its principal's subscription places (plan `maxSubscriptions`, counted across
//! nodes) until it ends. A refusal is an `error` message for that operation.
//!
//! The handshake: the first message must be `connection_init` with
//! `{"Authorization": "Bearer …"}` (optionally `X-Organization-Id`). A missing or bad token closes
//! the socket with 4401, a forbidden one (IP, organization) with 4403, silence for 10 s with 4408.
//! While the connection lives, the credential is checked again whenever a credential changes on
//! any node (revocation, roll, logout — bus messages) and every 30 s (expiry); once it no longer
//! works the socket closes with 4401 (or 4403) — and an operation sent meanwhile is refused by its
//! own admission.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::{FutureExt, SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::pipeline::{self, Admitted, Entrance, Wire};
use super::{ClientIp, RequestId, ServerState, client_ip, request_id};
use crate::auth::Bearer;
use crate::error::{Code, Error};
use crate::usage::meter::{Source, UsageTag};

const TRANSPORT_WS: &str = "graphql-transport-ws";
const LEGACY_WS: &str = "graphql-ws";

/// The two protocols; they differ in message names and in how errors are shaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    /// `graphql-transport-ws` (the graphql-ws library).
    Transport,
    /// `graphql-ws` (Apollo's subscriptions-transport-ws).
    Legacy,
}

impl Protocol {
    fn next(self) -> &'static str {
        match self {
            Protocol::Transport => "next",
            Protocol::Legacy => "data",
        }
    }
}

/// The protocol the client asks for (the first of its offers that Gantry speaks).
fn offered(headers: &HeaderMap) -> Option<Protocol> {
    headers
        .get_all(axum::http::header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|p| match p.trim() {
            TRANSPORT_WS => Some(Protocol::Transport),
            LEGACY_WS => Some(Protocol::Legacy),
            _ => None,
        })
}

pub async fn graphql_ws(
    State(s): State<ServerState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let Some(protocol) = offered(&headers) else {
        let body = json!({ "errors": [{
            "message": "Sec-WebSocket-Protocol must offer graphql-transport-ws or graphql-ws",
            "extensions": { "code": Code::BadUserInput.as_str(), "field": "sec-websocket-protocol" },
        }] });
        return (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
    };
    let ip = client_ip(&s.app, &headers, peer);
    let rid = request_id(&headers);
    upgrade.protocols([TRANSPORT_WS, LEGACY_WS]).on_upgrade(move |socket| serve(s, socket, protocol, ip, rid))
}

async fn close(mut socket: WebSocket, code: u16, reason: &str) {
    let _ = socket.send(Message::Close(Some(CloseFrame { code, reason: reason.to_string().into() }))).await;
}

/// A close frame's reason is at most 123 bytes.
fn reason(label: &str, message: &str) -> String {
    format!("{label}: {message}").chars().take(120).collect()
}

/// What every operation of one connection shares.
struct Connection {
    s: ServerState,
    protocol: Protocol,
    token: String,
    organization: Option<String>,
    ip: ClientIp,
    rid: RequestId,
    out: mpsc::Sender<Message>,
}

impl Connection {
    async fn send(&self, msg: Value) {
        let _ = self.out.send(Message::Text(msg.to_string().into())).await;
    }

    /// An `error` message for operation `id`: the errors (`graphql-transport-ws`), or the first
    /// one (`graphql-ws`, whose `error` payload is one object).
    async fn send_errors(&self, id: &str, errors: Vec<Value>) {
        let payload = match self.protocol {
            Protocol::Transport => Value::Array(errors),
            Protocol::Legacy => errors.into_iter().next().unwrap_or_else(|| json!({ "message": "error" })),
        };
        self.send(json!({ "id": id, "type": "error", "payload": payload })).await;
    }

    async fn send_error(&self, id: &str, e: &Error) {
        e.log();
        let mut ext = json!({ "code": e.code().as_str() });
        if let Some(f) = e.field() {
            ext["field"] = f.into();
        }
        if let Value::Object(extra) = e.extra_extensions() {
            ext.as_object_mut().into_iter().for_each(|o| o.extend(extra.clone()));
        }
        self.send_errors(id, vec![json!({ "message": e.public_message(), "extensions": ext })]).await;
    }

    /// Sends `msg` and returns its size, for metering.
    async fn send_sized(&self, msg: String) -> u64 {
        let n = msg.len() as u64;
        let _ = self.out.send(Message::Text(msg.into())).await;
        n
    }

    fn meter(
        &self,
        operation: &std::sync::Arc<str>,
        usage: Option<UsageTag>,
        status: u16,
        started: Instant,
        request_bytes: u64,
        response_bytes: u64,
    ) {
        super::observe::observe_request(
            &self.s.app,
            &super::observe::Observed {
                surface: "websocket",
                operation,
                status,
                seconds: started.elapsed().as_secs_f64(),
                request_id: &self.rid.0,
                method: "WS",
                path: "/graphql/ws",
            },
        );
        let Some(tag) = usage else { return };
        let latency_us = started.elapsed().as_micros() as u64;
        let at = self.s.app.clock.now_ms();
        let request_bytes = request_bytes.min(self.s.app.config.max_body_bytes as u64);
        self.s.app.meter.record(tag.into_record(status, latency_us, request_bytes, response_bytes, at));
    }
}

async fn serve(s: ServerState, mut socket: WebSocket, protocol: Protocol, ip: ClientIp, rid: RequestId) {
    let first = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(Ok(msg)) = socket.recv().await {
            match msg {
                Message::Text(t) => return Some(t.to_string()),
                Message::Binary(b) => return Some(String::from_utf8_lossy(&b).into_owned()),
                Message::Close(_) => return None,
                _ => continue,
            }
        }
        None
    })
    .await;
    let first = match first {
        Ok(Some(text)) => text,
        Ok(None) => return,
        Err(_) => return close(socket, 4408, "Connection initialisation timeout").await,
    };
    let msg: Value = match serde_json::from_str(&first) {
        Ok(v) => v,
        Err(_) => return close(socket, 4400, "Invalid message: not JSON").await,
    };
    if msg.get("type").and_then(|t| t.as_str()) != Some("connection_init") {
        return close(socket, 4401, "Unauthorized: send connection_init first").await;
    }
    let payload = msg.get("payload").cloned().unwrap_or(Value::Null);
    let field =
        |names: &[&str]| names.iter().find_map(|n| payload.get(*n).and_then(|v| v.as_str()).map(str::to_string));
    let token = match field(&["Authorization", "authorization"]) {
        Some(h) => crate::auth::parse_bearer(&h).map(str::to_string),
        None => field(&["token"])
            .ok_or_else(|| Error::unauthenticated("connection_init needs {\"Authorization\": \"Bearer …\"}")),
    };
    let organization = field(&["X-Organization-Id", "x-organization-id"]);
    let token = match token {
        Ok(t) => t,
        Err(e) => return close(socket, 4401, &reason("Unauthorized", &e.public_message())).await,
    };
    let bearer = Bearer { token: &token, ip: ip.0, organization: organization.as_deref() };
    if let Some(refused) = pipeline::blocked(&s.app, ip) {
        return close(socket, 4429, &reason("Too many requests", &refused.error.public_message())).await;
    }
    if let Err(e) = crate::auth::recheck(&s.app, &bearer).await {
        e.log();
        // Failed credentials are charged to the address, as over HTTP.
        if e.code() == Code::Unauthenticated
            && let Some(refused) = pipeline::charge_failed_credential(&s.app, ip).await
        {
            return close(socket, 4429, &reason("Too many requests", &refused.error.public_message())).await;
        }
        let (code, label) = if e.code() == Code::Forbidden { (4403, "Forbidden") } else { (4401, "Unauthorized") };
        return close(socket, code, &reason(label, &e.public_message())).await;
    }

    let (mut sink, mut incoming) = socket.split();
    // Outgoing messages go through a channel: operations run as tasks, and the credential
    // watcher can close the socket.
    let (tx, mut rx) = mpsc::channel::<Message>(64);
    // Messages already queued go out in one write (an operation's `next` and `complete`, the
    // results of pipelined operations): one flush per batch, not one per message.
    let forward = tokio::spawn(async move {
        'out: while let Some(mut msg) = rx.recv().await {
            loop {
                let closing = matches!(msg, Message::Close(_));
                if sink.feed(msg).await.is_err() {
                    break 'out;
                }
                if closing {
                    let _ = sink.flush().await;
                    break 'out;
                }
                match rx.try_recv() {
                    Ok(next) => msg = next,
                    Err(_) => break,
                }
            }
            if sink.flush().await.is_err() {
                break;
            }
        }
    });
    let conn = Arc::new(Connection { s, protocol, token, organization, ip, rid, out: tx });
    conn.send(json!({ "type": "connection_ack" })).await;

    let mut operations: HashMap<String, tokio::task::AbortHandle> = HashMap::new();
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<String>();
    let watcher = watch_credential(conn.clone());
    tokio::pin!(watcher);
    let mut closing = false;
    loop {
        let text = tokio::select! {
            msg = incoming.next() => match msg {
                Some(Ok(Message::Text(t))) => t.to_string(),
                Some(Ok(Message::Binary(b))) => String::from_utf8_lossy(&b).into_owned(),
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => continue,
            },
            Some(id) = done_rx.recv() => {
                operations.remove(&id);
                continue;
            }
            (code, why) = &mut watcher => {
                let _ = conn.out.send(Message::Close(Some(CloseFrame { code, reason: why.into() }))).await;
                closing = true;
                break;
            }
        };
        match handle(&conn, &text, &mut operations, &done_tx).await {
            Flow::Continue => {}
            Flow::Close(code, why) => {
                let _ = conn.out.send(Message::Close(Some(CloseFrame { code, reason: why.into() }))).await;
                closing = true;
                break;
            }
            Flow::End => break,
        }
    }
    for (_, op) in operations.drain() {
        op.abort();
    }
    drop(conn);
    let _ = forward.await;
    if closing {
        // The closing handshake: read (and drop) what the client still sends until its Close,
        // so the socket is not reset with unread data — which would lose our Close frame.
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while let Some(Ok(msg)) = incoming.next().await {
                if matches!(msg, Message::Close(_)) {
                    break;
                }
            }
        })
        .await;
    }
}

enum Flow {
    Continue,
    Close(u16, String),
    /// The client ended the connection (`connection_terminate`).
    End,
}

/// Handles one client message after the handshake.
async fn handle(
    conn: &Arc<Connection>,
    text: &str,
    operations: &mut HashMap<String, tokio::task::AbortHandle>,
    done: &mpsc::UnboundedSender<String>,
) -> Flow {
    let invalid = || Flow::Close(4400, "Invalid message received".into());
    let Ok(msg) = serde_json::from_str::<Value>(text) else { return invalid() };
    let Some(kind) = msg.get("type").and_then(Value::as_str) else { return invalid() };
    let id = msg.get("id").and_then(Value::as_str).map(str::to_string);
    match (conn.protocol, kind) {
        (_, "connection_init") => Flow::Close(4429, "Too many initialisation requests".into()),
        (Protocol::Transport, "ping") => {
            let mut pong = json!({ "type": "pong" });
            if let Some(p) = msg.get("payload") {
                pong["payload"] = p.clone();
            }
            conn.send(pong).await;
            Flow::Continue
        }
        (Protocol::Transport, "pong") => Flow::Continue,
        (Protocol::Transport, "subscribe") | (Protocol::Legacy, "start") => {
            let Some(id) = id else { return invalid() };
            if operations.get(&id).is_some_and(|op| !op.is_finished()) {
                return Flow::Close(4409, reason("Subscriber already exists", &id));
            }
            let payload = msg.get("payload").cloned().unwrap_or(Value::Null);
            let request_bytes = text.len() as u64;
            let task = tokio::spawn(run(conn.clone(), id.clone(), payload, request_bytes, done.clone()));
            operations.insert(id, task.abort_handle());
            Flow::Continue
        }
        (Protocol::Transport, "complete") | (Protocol::Legacy, "stop") => {
            let Some(id) = id else { return invalid() };
            if let Some(op) = operations.remove(&id) {
                op.abort();
                // The legacy protocol confirms a stop; graphql-transport-ws does not.
                if conn.protocol == Protocol::Legacy {
                    conn.send(json!({ "id": id, "type": "complete" })).await;
                }
            }
            Flow::Continue
        }
        (Protocol::Legacy, "connection_terminate") => Flow::End,
        _ => invalid(),
    }
}

/// Runs one operation: admission, then one response (query, mutation) or a stream of them
/// (subscription), then `complete`.
async fn run(
    conn: Arc<Connection>,
    id: String,
    payload: Value,
    request_bytes: u64,
    done: mpsc::UnboundedSender<String>,
) {
    operate(&conn, &id, payload, request_bytes).await;
    let _ = done.send(id);
}

async fn operate(conn: &Connection, id: &str, payload: Value, request_bytes: u64) {
    let started = Instant::now();
    let app = &conn.s.app;
    let request: async_graphql::Request = match serde_json::from_value(payload) {
        Ok(r) => r,
        Err(e) => {
            let error = Error::bad_input("payload", format!("not a GraphQL request: {e}"));
            return conn.send_error(id, &error).await;
        }
    };
    let entrance = Entrance {
        source: Source::Websocket,
        bearer: Some(Bearer { token: &conn.token, ip: conn.ip.0, organization: conn.organization.as_deref() }),
        ip: conn.ip,
        route: None,
    };
    let Admitted { mut request, mut ticket } = match pipeline::admit(app, entrance, request).await {
        Ok(admitted) => admitted,
        Err(refused) => {
            conn.send_error(id, &refused.error).await;
            let status = refused.error.code().http_status();
            return conn.meter(&std::sync::Arc::from("-"), refused.usage, status, started, request_bytes, 0);
        }
    };
    request.data.insert(conn.rid.clone());
    let rid = conn.rid.0.as_str();
    if !ticket.is_subscription() {
        let mut response = pipeline::execute(&conn.s.schemas, request, &ticket.operation).await;
        let ran = ticket.settle(app, &mut response, rid).await;
        if let Some(t) = ticket.throttle() {
            response.extensions.insert("cost".into(), t.to_value());
        }
        let status = ticket.usage.as_ref().and_then(|u| u.status).unwrap_or(200);
        let sent = if ran {
            let msg = next_message(conn.protocol, id, &response);
            let n = conn.send_sized(msg).await;
            conn.send(json!({ "id": id, "type": "complete" })).await;
            n
        } else {
            let errors = serde_json::to_value(&response.errors).ok().and_then(|v| v.as_array().cloned());
            conn.send_errors(id, errors.unwrap_or_default()).await;
            0
        };
        let op = if ran { ticket.operation.metric.clone() } else { std::sync::Arc::from("invalid") };
        return conn.meter(&op, ticket.usage.take(), status, started, request_bytes, sent);
    }

    // A subscription: one of the principal's places for as long as it runs.
    let max = ticket.decision.policy.plan.as_ref().and_then(|p| p.max_subscriptions).filter(|m| *m >= 0);
    let _place = match max {
        Some(max) => match app.limiter.hold_subscription(ticket.subject(), max as u64, app.clock.clone()).await {
            Some(place) => Some(place),
            None => {
                let error = Error::Limited {
                    code: Code::RateLimited,
                    message: format!("too many open subscriptions (at most {max} at once): complete one first"),
                    retry_after_secs: 1,
                    window: Some("subscriptions".into()),
                };
                conn.send_error(id, &error).await;
                let mut usage = ticket.usage.take();
                if let Some(t) = &mut usage {
                    t.status = Some(429);
                }
                return conn.meter(&ticket.operation.metric.clone(), usage, 429, started, request_bytes, 0);
            }
        },
        None => None,
    };
    ticket.end_request();
    let mut stream = conn.s.schemas.full.execute_stream(request);
    // A request error (parse, validation) is the stream's first item, at once; a live
    // subscription waits for its first event. Either way the start is metered now, once.
    let immediate = stream.next().now_or_never();
    let ended = matches!(immediate, Some(None));
    let mut first = match immediate {
        Some(Some(mut response)) => {
            let ran = ticket.settle(app, &mut response, rid).await;
            if !ran {
                let errors = serde_json::to_value(&response.errors).ok().and_then(|v| v.as_array().cloned());
                conn.send_errors(id, errors.unwrap_or_default()).await;
                let status = ticket.usage.as_ref().and_then(|u| u.status).unwrap_or(422);
                return conn.meter(
                    &std::sync::Arc::from("invalid"),
                    ticket.usage.take(),
                    status,
                    started,
                    request_bytes,
                    0,
                );
            }
            Some(response)
        }
        Some(None) => None,
        None => None,
    };
    let status = ticket.usage.as_ref().and_then(|u| u.status).unwrap_or(200);
    let op = ticket.operation.metric.clone();
    conn.meter(&op, ticket.usage.take(), status, started, request_bytes, 0);
    if !ended {
        loop {
            let mut response = match first.take() {
                Some(r) => r,
                None => match stream.next().await {
                    Some(r) => r,
                    None => break,
                },
            };
            pipeline::normalise_errors(&mut response.errors, &app.config, rid);
            conn.send_sized(next_message(conn.protocol, id, &response)).await;
        }
    }
    conn.send(json!({ "id": id, "type": "complete" })).await;
}

/// A `next` (or legacy `data`) message carrying one response.
fn next_message(protocol: Protocol, id: &str, response: &async_graphql::Response) -> String {
    #[derive(serde::Serialize)]
    struct Next<'a> {
        id: &'a str,
        #[serde(rename = "type")]
        kind: &'static str,
        payload: Wire<'a>,
    }
    serde_json::to_string(&Next { id, kind: protocol.next(), payload: Wire::of(response, true) })
        .unwrap_or_else(|_| json!({ "id": id, "type": protocol.next(), "payload": {} }).to_string())
}

/// Resolves when the connection's credential stops working, with the close code and reason.
async fn watch_credential(conn: Arc<Connection>) -> (u16, String) {
    let bearer = Bearer { token: &conn.token, ip: conn.ip.0, organization: conn.organization.as_deref() };
    let e = credential_refused(&conn.s.app, &bearer).await;
    let (code, label) = if e.code() == Code::Forbidden { (4403, "Forbidden") } else { (4401, "Unauthorized") };
    (code, reason(label, &e.public_message()))
}

/// Resolves, with the refusal, when a credential stops working: rechecked on every change the bus
/// announces (not events or delivery attempts) and every 30 s. WebSocket connections and REST
/// event streams end with it.
pub(crate) async fn credential_refused(app: &crate::app::App, bearer: &Bearer<'_>) -> Error {
    use crate::platform::bus::BusMessage;
    use tokio::sync::broadcast::error::RecvError;
    let mut rx = app.bus.subscribe();
    let mut tick = tokio::time::interval(Duration::from_secs(30));
    tick.tick().await;
    loop {
        let recheck = tokio::select! {
            msg = rx.recv() => match msg {
                Ok(m) => {
                    // Applied here too, so this recheck cannot run before the bus listener's.
                    app.org_states.on_bus(&m);
                    !matches!(&*m, BusMessage::Event(_) | BusMessage::DeliveryAttempt(_))
                }
                Err(RecvError::Lagged(_)) => true,
                Err(RecvError::Closed) => return std::future::pending().await,
            },
            _ = tick.tick() => true,
        };
        if recheck && let Err(e) = crate::auth::recheck(app, bearer).await {
            return e;
        }
    }
}

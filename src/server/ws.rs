//! GraphQL subscriptions over WebSocket (`graphql-transport-ws` and legacy `graphql-ws`).
//!
//! The handshake is ours: the first message must be `connection_init` with
//! `{"Authorization": "Bearer …"}` (optionally `X-Organization-Id`), checked before any operation.
//! A missing or bad token closes the socket with 4401, a forbidden one (IP, organization) with
//! 4403, silence for 10 s with 4408. Then the message is replayed into async-graphql's protocol
//! handler with the principal as connection data. While the connection lives, the credential is
//! checked again whenever a credential changes on any node (revocation, roll, logout — bus
//! messages) and every 30 s (expiry); once it no longer works the socket closes with 4401 (or 4403).

use std::net::SocketAddr;
use std::time::Duration;

use async_graphql::Data;
use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::Response;
use futures_util::StreamExt;

use super::{ClientIp, ServerState, client_ip, parse_bearer, request_id};
use crate::error::{Code, Error};
use crate::graphql::loaders::loaders;

pub async fn graphql_ws(
    State(s): State<ServerState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    protocol: GraphQLProtocol,
    upgrade: WebSocketUpgrade,
) -> Response {
    let ip = client_ip(&s.app, &headers, peer);
    let rid = request_id(&headers);
    upgrade.protocols(ALL_WEBSOCKET_PROTOCOLS).on_upgrade(move |socket| serve(s, socket, protocol, ip, rid))
}

async fn close(mut socket: WebSocket, code: u16, reason: &str) {
    let _ = socket.send(Message::Close(Some(CloseFrame { code, reason: reason.to_string().into() }))).await;
}

async fn serve(s: ServerState, mut socket: WebSocket, protocol: GraphQLProtocol, ip: ClientIp, rid: super::RequestId) {
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
    let msg: serde_json::Value = match serde_json::from_str(&first) {
        Ok(v) => v,
        Err(_) => return close(socket, 4400, "Invalid message: not JSON").await,
    };
    if msg.get("type").and_then(|t| t.as_str()) != Some("connection_init") {
        return close(socket, 4401, "Unauthorized: send connection_init first").await;
    }
    let payload = msg.get("payload").cloned().unwrap_or(serde_json::Value::Null);
    let field =
        |names: &[&str]| names.iter().find_map(|n| payload.get(*n).and_then(|v| v.as_str()).map(str::to_string));
    let token = match field(&["Authorization", "authorization"]) {
        Some(h) => parse_bearer(&h),
        None => field(&["token"])
            .ok_or_else(|| Error::unauthenticated("connection_init needs {\"Authorization\": \"Bearer …\"}")),
    };
    let org = field(&["X-Organization-Id", "x-organization-id"]);
    let token = match token {
        Ok(t) => t,
        Err(e) => return close(socket, 4401, &format!("Unauthorized: {}", e.public_message())).await,
    };
    let principal = crate::auth::authenticate(&s.app, &token, ip.0, org.as_deref()).await;
    let principal = match principal {
        Ok(p) => p,
        Err(e) => {
            e.log();
            let code = if e.code() == Code::Unauthenticated { 4401 } else { 4403 };
            let reason: String =
                format!("{}: {}", if code == 4401 { "Unauthorized" } else { "Forbidden" }, e.public_message());
            // Close reasons are limited to 123 bytes.
            let reason: String = reason.chars().take(120).collect();
            return close(socket, code, &reason).await;
        }
    };

    let mut data = Data::default();
    let screened_as = principal.clone();
    data.insert(principal);
    data.insert(loaders(s.app.clone()));
    data.insert(ip);
    data.insert(rid);
    let (sink, stream) = socket.split();
    // Outgoing messages go through a channel so the credential watcher can close the socket.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Message>(64);
    let forward = tokio::spawn(async move {
        let mut sink = sink;
        while let Some(msg) = rx.recv().await {
            let closing = matches!(msg, Message::Close(_));
            if futures_util::SinkExt::send(&mut sink, msg).await.is_err() || closing {
                break;
            }
        }
    });
    let out = futures_util::sink::unfold(tx.clone(), |tx, msg: Message| async move {
        tx.send(msg).await.map(|_| tx).map_err(|_| std::io::Error::other("socket closed"))
    });
    // Every operation is screened as over HTTP (NUL, query cost) before async-graphql sees it.
    let (app, refusals) = (s.app.clone(), tx.clone());
    let stream = stream.filter_map(move |msg| {
        let (app, principal, refusals) = (app.clone(), screened_as.clone(), refusals.clone());
        async move {
            if let Ok(Message::Text(text)) = &msg
                && let Some(refusal) = screen(&app, &principal, text).await
            {
                let _ = refusals.send(Message::Text(refusal.into())).await;
                return None;
            }
            Some(msg)
        }
    });
    let replay = futures_util::stream::once(async move { Ok(Message::Text(first.into())) }).chain(stream);
    let serve = GraphQLWebSocket::new_with_pair(out, replay, s.ws_schema.clone(), protocol)
        .on_connection_init(move |_| async move { Ok(data) })
        .serve();
    tokio::select! {
        _ = serve => {}
        (code, reason) = watch_credential(&s, &token, ip, org.as_deref()) => {
            let _ = tx.send(Message::Close(Some(CloseFrame { code, reason: reason.into() }))).await;
        }
    }
    drop(tx);
    let _ = forward.await;
}

/// The error message answering an operation (`subscribe`, or `start` in the legacy protocol) that
/// HTTP would refuse before running it: NUL in its text, or a query cost above the plan's maximum.
async fn screen(app: &crate::app::App, principal: &crate::auth::Principal, text: &str) -> Option<String> {
    let msg: serde_json::Value = serde_json::from_str(text).ok()?;
    if !matches!(msg["type"].as_str(), Some("subscribe" | "start")) {
        return None;
    }
    let payload = &msg["payload"];
    let mut request = async_graphql::Request::new(payload["query"].as_str()?)
        .variables(async_graphql::Variables::from_json(payload["variables"].clone()));
    if let Some(name) = payload["operationName"].as_str() {
        request = request.operation_name(name);
    }
    let refused = match crate::graphql::refuse_nul(&request) {
        Err(e) => e,
        Ok(()) => crate::limits::cost::measure(app, Some(principal), &mut request).await.err()?,
    };
    let refused = refused.to_graphql();
    let mut error = async_graphql::ServerError::new(refused.message, None);
    error.extensions = refused.extensions;
    Some(serde_json::json!({ "id": msg["id"], "type": "error", "payload": [error] }).to_string())
}

/// Resolves when the connection's credential stops working, with the close code and reason.
async fn watch_credential(s: &ServerState, token: &str, ip: ClientIp, org: Option<&str>) -> (u16, String) {
    use crate::platform::bus::BusMessage;
    use tokio::sync::broadcast::error::RecvError;
    let mut rx = s.app.bus.subscribe();
    let mut tick = tokio::time::interval(Duration::from_secs(30));
    tick.tick().await;
    loop {
        let recheck = tokio::select! {
            msg = rx.recv() => match msg {
                Ok(m) => !matches!(&*m, BusMessage::Event(_) | BusMessage::DeliveryAttempt(_)),
                Err(RecvError::Lagged(_)) => true,
                Err(RecvError::Closed) => return std::future::pending().await,
            },
            _ = tick.tick() => true,
        };
        if recheck && let Err(e) = crate::auth::recheck(&s.app, token, ip.0, org).await {
            let code = if e.code() == Code::Forbidden { 4403 } else { 4401 };
            let label = if code == 4401 { "Unauthorized" } else { "Forbidden" };
            return (code, format!("{label}: {}", e.public_message()).chars().take(120).collect());
        }
    }
}

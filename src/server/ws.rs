//! GraphQL subscriptions over WebSocket (`graphql-transport-ws` and legacy `graphql-ws`).
//!
//! The handshake is ours: the first message must be `connection_init` with
//! `{"Authorization": "Bearer …"}` (optionally `X-Organization-Id`), checked before any operation.
//! A missing or bad token closes the socket with 4401, a forbidden one (IP, organization) with
//! 4403, silence for 10 s with 4408. Then the message is replayed into async-graphql's protocol
//! handler with the principal as connection data.

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
    let principal = match token {
        Ok(t) => crate::auth::authenticate(&s.app, &t, ip.0, org.as_deref()).await,
        Err(e) => Err(e),
    };
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
    data.insert(principal);
    data.insert(loaders(s.app.clone()));
    data.insert(ip);
    data.insert(rid);
    let (sink, stream) = socket.split();
    let replay = futures_util::stream::once(async move { Ok(Message::Text(first.into())) }).chain(stream);
    GraphQLWebSocket::new_with_pair(sink, replay, s.schema.clone(), protocol)
        .on_connection_init(move |_| async move { Ok(data) })
        .keepalive_timeout(Duration::from_secs(60))
        .serve()
        .await;
}

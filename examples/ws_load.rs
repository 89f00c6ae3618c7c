//! The load benchmark's WebSocket client (`benches/load.sh`): one `graphql-transport-ws` socket
//! to Gantry, authenticated in `connection_init` with an API key, that keeps IN_FLIGHT
//! operations of QUERY running for SECS seconds (each new `subscribe` sent as soon as one
//! `complete` arrives) and prints one JSON line: completed operations, errors, seconds and
//! operations per second.
//!
//! Usage: `ws_load ws://127.0.0.1:18080/graphql/ws API_KEY [IN_FLIGHT] [SECS] [QUERY]`
//! (defaults: 32 in flight, 10 s, `{ viewer { id } }`).

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let usage = "usage: ws_load WS_URL API_KEY [IN_FLIGHT] [SECS] [QUERY]";
    let url = args.next().expect(usage);
    let key = args.next().expect(usage);
    let in_flight: usize = args.next().map(|a| a.parse().expect("IN_FLIGHT is a number")).unwrap_or(32);
    let secs: f64 = args.next().map(|a| a.parse().expect("SECS is a number")).unwrap_or(10.0);
    let query = args.next().unwrap_or_else(|| "{ viewer { id } }".to_string());

    let mut req = url.into_client_request().expect("a ws:// URL");
    req.headers_mut().insert("Sec-WebSocket-Protocol", "graphql-transport-ws".parse().expect("header value"));
    // No Nagle delay on the client either (the server sets TCP_NODELAY too).
    let (socket, _) = tokio_tungstenite::connect_async_with_config(req, None, true).await.expect("WebSocket connect");
    let (mut tx, mut rx) = socket.split();
    let init = json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {key}") } });
    tx.send(Message::Text(init.to_string().into())).await.expect("send connection_init");
    loop {
        match rx.next().await {
            Some(Ok(Message::Text(t))) => {
                let v: Value = serde_json::from_str(&t).expect("JSON message");
                if v["type"] == "connection_ack" {
                    break;
                }
            }
            Some(Ok(Message::Close(f))) => panic!("closed during the handshake: {f:?}"),
            Some(Ok(_)) => {}
            other => panic!("socket ended during the handshake: {other:?}"),
        }
    }

    let payload = json!({ "query": query });
    let subscribe = |id: u64| json!({ "id": id.to_string(), "type": "subscribe", "payload": payload }).to_string();
    let mut next_id = 0u64;
    for _ in 0..in_flight {
        next_id += 1;
        tx.send(Message::Text(subscribe(next_id).into())).await.expect("send subscribe");
    }
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(secs);
    let (mut completed, mut errors, mut outstanding) = (0u64, 0u64, in_flight);
    while outstanding > 0 {
        let Some(Ok(msg)) = rx.next().await else { break };
        let Message::Text(t) = msg else { continue };
        let v: Value = serde_json::from_str(&t).expect("JSON message");
        match v["type"].as_str() {
            Some("next") if v["payload"].get("errors").is_some() => errors += 1,
            Some("error") => {
                errors += 1;
                outstanding -= 1;
                if errors == 1 {
                    eprintln!("first error: {}", v["payload"]);
                }
            }
            Some("complete") => {
                completed += 1;
                outstanding -= 1;
            }
            _ => continue,
        }
        if matches!(v["type"].as_str(), Some("complete" | "error")) && Instant::now() < deadline {
            next_id += 1;
            outstanding += 1;
            tx.send(Message::Text(subscribe(next_id).into())).await.expect("send subscribe");
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "{}",
        json!({ "completed": completed, "errors": errors, "secs": elapsed, "per_s": completed as f64 / elapsed, "in_flight": in_flight })
    );
}

use serde_json::{Value, json};

use crate::common::ws::{self, Socket};
use crate::common::{TestApp, backends};

/// Triggers events until the subscription delivers one (the server registers a subscription
/// asynchronously, so the first trigger may precede it). Bounded: 40 tries.
pub async fn until_event(socket: &mut Socket, mut trigger: impl AsyncFnMut()) -> Value {
    for _ in 0..40 {
        trigger().await;
        let got = tokio::time::timeout(std::time::Duration::from_millis(250), ws::next_data(socket)).await;
        if let Ok(payload) = got {
            return payload;
        }
    }
    panic!("no event reached the subscription");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_handshake_refuses_missing_bad_and_forbidden_credentials() {
    for backend in backends() {
        let app = TestApp::new(backend).await;
        let s = app.register("dev@example.com").await;
        let (far_key, _) = app
            .create_key_with(&s.token, json!({ "name": "far", "scopes": ["*"], "allowedIps": ["10.0.0.0/8"] }))
            .await;
        for (payload, want) in [
            (json!({}), 4401),
            (json!({ "Authorization": "Bearer gk_live_nope" }), 4401),
            (json!({ "Authorization": "Basic xyz" }), 4401),
            (json!({ "Authorization": format!("Bearer {far_key}") }), 4403),
        ] {
            let mut sock = ws::connect(&app.ws_url(), "graphql-transport-ws").await;
            ws::send(&mut sock, json!({ "type": "connection_init", "payload": payload })).await;
            let closed = ws::next(&mut sock).await;
            assert_eq!(closed.as_ref().map_err(|e| e.0), Err(want), "[{backend:?}] {payload}: {closed:?}");
        }
        // An operation before connection_init is refused too.
        let mut sock = ws::connect(&app.ws_url(), "graphql-transport-ws").await;
        ws::subscribe(&mut sock, "1", "subscription { events { type } }").await;
        assert_eq!(ws::next(&mut sock).await.unwrap_err().0, 4401);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_stream_the_organizations_key_events_with_filters() {
    for backend in backends() {
        let app = TestApp::new(backend).await;
        let s = app.register("dev@example.com").await;
        let other = app.register("other@example.com").await;
        let (key, _) = app.create_key(&s.token, &["*"]).await;
        let mut sock = ws::connect_authed(&app.ws_url(), &key).await;
        ws::subscribe(
            &mut sock,
            "1",
            "subscription { events(types: [\"key.*\"]) { id type organizationId occurredAt data } }",
        )
        .await;
        let mut payload = until_event(&mut sock, async || {
            // Another organization's events never arrive here.
            app.create_key(&other.token, &["*"]).await;
            app.create_key_with(&s.token, json!({ "name": "watched", "scopes": ["keys:read"] })).await;
        })
        .await;
        // The subscribing key's own first use (a usage flush may come first) is a key event too.
        while payload["data"]["events"]["type"] == "key.used_from_new_ip" {
            assert_eq!(payload["data"]["events"]["organizationId"], s.org_id.as_str());
            payload = ws::next_data(&mut sock).await;
        }
        let e = &payload["data"]["events"];
        assert_eq!(e["type"], "key.created", "[{backend:?}] {payload}");
        assert_eq!(e["organizationId"], s.org_id.as_str());
        assert_eq!(e["data"]["key"]["name"], "watched");
        assert!(e["id"].as_str().unwrap().starts_with("evt_"));
        assert!(
            e["data"].to_string().find("gk_").is_none_or(|_| !e["data"].to_string().contains(&key)),
            "no secrets in events"
        );

        // A revocation arrives as key.revoked.
        let id = e["data"]["key"]["id"].as_str().unwrap().to_string();
        app.gql_ok(Some(&s.token), "mutation($id: ID!) { revokeApiKey(id: $id) { id } }", json!({ "id": id })).await;
        loop {
            let next = ws::next_data(&mut sock).await;
            let t = next["data"]["events"]["type"].as_str().unwrap().to_string();
            assert_eq!(next["data"]["events"]["organizationId"], s.org_id.as_str());
            if t == "key.revoked" {
                assert_eq!(next["data"]["events"]["data"]["key"]["id"], id.as_str());
                break;
            }
            assert!(t == "key.created" || t == "key.used_from_new_ip", "only key events and only ours: {next}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_legacy_graphql_ws_protocol_works_too() {
    for backend in backends() {
        let app = TestApp::new(backend).await;
        let s = app.register("dev@example.com").await;
        let mut sock = ws::connect(&app.ws_url(), "graphql-ws").await;
        ws::send(
            &mut sock,
            json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {}", s.token) } }),
        )
        .await;
        let ack = ws::next(&mut sock).await.unwrap();
        assert_eq!(ack["type"], "connection_ack", "[{backend:?}]");
        ws::send(
            &mut sock,
            json!({ "id": "1", "type": "start", "payload": { "query": "subscription { events { type } }" } }),
        )
        .await;
        let payload = until_event(&mut sock, async || {
            app.create_key(&s.token, &["keys:read"]).await;
        })
        .await;
        assert_eq!(payload["data"]["events"]["type"], "key.created");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_key_closes_its_open_subscriptions() {
    for backend in backends() {
        let app = TestApp::new(backend).await;
        let s = app.register("dev@example.com").await;
        let (key, id) = app.create_key(&s.token, &["*"]).await;
        let mut sock = ws::connect_authed(&app.ws_url(), &key).await;
        ws::subscribe(&mut sock, "1", "subscription { events { type } }").await;
        app.gql_ok(Some(&s.token), "mutation($id: ID!) { revokeApiKey(id: $id) { id } }", json!({ "id": id })).await;
        // The revocation's own event may arrive first; then the socket closes with 4401.
        let closed = loop {
            match ws::next(&mut sock).await {
                Ok(msg) => assert_eq!(msg["type"], "next", "[{backend:?}] {msg}"),
                Err(close) => break close,
            }
        };
        assert_eq!(closed.0, 4401, "[{backend:?}] {closed:?}");
        assert!(closed.1.contains("revoked"), "{closed:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_over_websocket_carry_codes_too() {
    let app = TestApp::new(crate::common::Backend::SqliteMemory).await;
    let s = app.register("dev@example.com").await;
    let (reader, _) = app.create_key(&s.token, &["keys:read"]).await;
    let mut sock = ws::connect_authed(&app.ws_url(), &reader).await;
    ws::subscribe(&mut sock, "1", "subscription { nope }").await;
    // async-graphql answers a refused operation as `next` with errors (or as `error`).
    let errors_of =
        |msg: &Value| if msg["type"] == "error" { msg["payload"].clone() } else { msg["payload"]["errors"].clone() };
    let msg = ws::next(&mut sock).await.unwrap();
    assert_eq!(errors_of(&msg)[0]["extensions"]["code"], "BAD_USER_INPUT", "{msg}");
    // A scope the key lacks: FORBIDDEN, not a silent stream.
    ws::subscribe(&mut sock, "2", "subscription { events { type } }").await;
    let msg = loop {
        let m = ws::next(&mut sock).await.unwrap();
        if m["id"] == "2" && m["type"] != "complete" {
            break m;
        }
    };
    assert_eq!(errors_of(&msg)[0]["extensions"]["code"], "FORBIDDEN", "{msg}");
    // Screened as over HTTP before async-graphql walks it: a fragment bomb, and NUL in text.
    let bomb = crate::common::fragment_chain("query A { __typename } query B { ...F0 }", 30, "__typename");
    for (id, payload) in [
        ("3", json!({ "query": bomb, "operationName": "A" })),
        (
            "4",
            json!({ "query": "subscription($t: [String!]) { events(types: $t) { type } }", "variables": { "t": ["a\u{0}"] } }),
        ),
    ] {
        ws::send(&mut sock, json!({ "id": id, "type": "subscribe", "payload": payload })).await;
        let msg = tokio::time::timeout(std::time::Duration::from_secs(5), async {
            loop {
                let m = ws::next(&mut sock).await.unwrap();
                if m["id"] == id {
                    break m;
                }
            }
        })
        .await
        .expect("answered within 5 s");
        assert_eq!(
            (msg["type"].as_str(), errors_of(&msg)[0]["extensions"]["code"].as_str()),
            (Some("error"), Some("BAD_USER_INPUT")),
            "{msg}"
        );
    }
}

use gantry::platform::clock::Clock;
use serde_json::{Value, json};

use crate::common::{TestApp, backends, code};

const KEY_FIELDS: &str = "id name description environment prefix maskedKey scopes status expiresAt allowedIps metadata totalRequests lastUsedAt revokedAt";

async fn verify(app: &TestApp, caller: &str, key: &str, extra: Value) -> Value {
    let mut input = json!({ "key": key });
    input.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    let data = app
        .gql_ok(
            Some(caller),
            "mutation($i: VerifyApiKeyInput!) { verifyApiKey(input: $i) { valid code keyId organizationId scopes metadata } }",
            json!({ "i": input }),
        )
        .await;
    data["verifyApiKey"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_created_key_is_shown_once_then_masked_and_authenticates() {
    for backend in backends() {
        let app = TestApp::new(backend).await;
        let s = app.register("dev@example.com").await;
        let (secret, id) = app
            .create_key_with(
                &s.token,
                json!({ "name": "ci", "environment": "LIVE", "scopes": ["keys:read", "org:read"], "metadata": { "plan": "pro" } }),
            )
            .await;
        assert!(secret.starts_with("gk_live_") && secret.len() >= 8 + 43, "{secret}");
        let data = app
            .gql_ok(
                Some(&s.token),
                &format!("{{ apiKeys(first: 10) {{ totalCount edges {{ node {{ {KEY_FIELDS} }} }} }} }}"),
                json!({}),
            )
            .await;
        let listed = data["apiKeys"]["edges"][0]["node"].clone();
        assert_eq!(data["apiKeys"]["totalCount"], 1);
        assert_eq!(listed["id"], id.as_str());
        assert_eq!(listed["maskedKey"], format!("gk_live_…{}", &secret[secret.len() - 4..]));
        assert_eq!(listed["environment"], "LIVE");
        assert_eq!(listed["status"], "ACTIVE");
        assert_eq!(listed["metadata"], json!({ "plan": "pro" }));
        assert!(!data.to_string().contains(&secret[8..]), "the secret never appears again");

        let viewer = app.gql_ok(Some(&secret), "{ viewer { id kind scopes organization { id } } }", json!({})).await;
        assert_eq!(viewer["viewer"]["id"], id.as_str());
        assert_eq!(viewer["viewer"]["kind"], "API_KEY");
        assert_eq!(viewer["viewer"]["organization"]["id"], s.org_id.as_str());

        // Usage counters: counted in memory, written by the batched flush.
        app.gql_ok(Some(&secret), "{ viewer { id } }", json!({})).await;
        gantry::server::flush(&app.app).await;
        let key = app.gql_ok(Some(&s.token), "query($id: ID!) { apiKey(id: $id) { totalRequests lastUsedAt lastUsedIp usage(days: 7) { date requests } } }", json!({ "id": id })).await;
        assert_eq!(key["apiKey"]["totalRequests"], 2, "[{backend:?}] {key}");
        assert_eq!(key["apiKey"]["lastUsedIp"], "127.0.0.1");
        assert_eq!(key["apiKey"]["usage"][0]["requests"], 2);
        assert!(key["apiKey"]["lastUsedAt"].is_string());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scopes_are_enforced_and_cannot_be_escalated() {
    for backend in backends() {
        let app = TestApp::new(backend).await;
        let s = app.register("dev@example.com").await;
        let (reader, _) = app.create_key(&s.token, &["keys:read"]).await;
        let (writer, _) = app.create_key(&s.token, &["keys:write"]).await;

        let denied = app
            .gql(
                Some(&reader),
                "mutation { createApiKey(input: {name: \"x\", scopes: [\"keys:read\"]}) { secret } }",
                json!({}),
            )
            .await;
        assert_eq!(code(&denied), "FORBIDDEN", "[{backend:?}] {denied}");
        assert!(denied["errors"][0]["message"].as_str().unwrap().contains("keys:write"));
        let no_org = app.gql(Some(&reader), "{ organizations { id } }", json!({})).await;
        assert_eq!(code(&no_org), "FORBIDDEN");
        // keys:write implies keys:read.
        app.gql_ok(Some(&writer), "{ apiKeys { totalCount } }", json!({})).await;
        // A key grants only what it holds.
        let escalate = app
            .gql(
                Some(&writer),
                "mutation { createApiKey(input: {name: \"x\", scopes: [\"*\"]}) { secret } }",
                json!({}),
            )
            .await;
        assert_eq!(code(&escalate), "BAD_USER_INPUT");
        assert_eq!(escalate["errors"][0]["extensions"]["field"], "scopes");
        let unknown = app
            .gql(
                Some(&s.token),
                "mutation { createApiKey(input: {name: \"x\", scopes: [\"keys:destroy\"]}) { secret } }",
                json!({}),
            )
            .await;
        assert_eq!(code(&unknown), "BAD_USER_INPUT");
        let data = app
            .gql_ok(
                Some(&writer),
                "mutation { createApiKey(input: {name: \"child\", scopes: [\"keys:read\"]}) { apiKey { scopes } } }",
                json!({}),
            )
            .await;
        assert_eq!(data["createApiKey"]["apiKey"]["scopes"], json!(["keys:read"]));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_key_is_rejected_on_every_surface_at_once() {
    for backend in backends() {
        let app = TestApp::new(backend).await;
        let s = app.register("dev@example.com").await;
        let (secret, id) = app.create_key(&s.token, &["*"]).await;
        // Warm the credential cache so revocation must clear it.
        app.gql_ok(Some(&secret), "{ viewer { id } }", json!({})).await;
        let data = app
            .gql_ok(
                Some(&s.token),
                "mutation($id: ID!) { revokeApiKey(id: $id, reason: \"leaked\") { status revokedAt revokedReason } }",
                json!({ "id": id }),
            )
            .await;
        assert_eq!(data["revokeApiKey"]["status"], "REVOKED");
        assert_eq!(data["revokeApiKey"]["revokedReason"], "leaked");

        let (status, body) = app.gql_status(Some(&secret), "{ viewer { id } }", json!({})).await;
        assert_eq!((status, code(&body)), (401, "UNAUTHENTICATED"), "[{backend:?}] GraphQL");
        let (status, body) = app.rest("GET", "/keys", Some(&secret), None).await;
        assert_eq!(status, 401, "REST: {body}");
        assert_eq!(body["error"]["type"], "authentication_error");
        let mut ws = crate::common::ws::connect(&app.ws_url(), "graphql-transport-ws").await;
        crate::common::ws::send(
            &mut ws,
            json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {secret}") } }),
        )
        .await;
        let closed = crate::common::ws::next(&mut ws).await;
        assert_eq!(closed.unwrap_err().0, 4401, "WebSocket");

        let verdict = verify(&app, &s.token, &secret, json!({})).await;
        assert_eq!(verdict["valid"], false);
        assert_eq!(verdict["code"], "REVOKED");
        // Revoked keys leave the default list but stay visible on request.
        let list = app
            .gql_ok(
                Some(&s.token),
                "{ a: apiKeys { totalCount } b: apiKeys(includeRevoked: true) { totalCount } }",
                json!({}),
            )
            .await;
        assert_eq!((list["a"]["totalCount"].as_i64(), list["b"]["totalCount"].as_i64()), (Some(0), Some(1)));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_and_roll_grace_follow_the_clock() {
    for backend in backends() {
        let app = TestApp::new(backend).await;
        let s = app.register("dev@example.com").await;
        let expires = gantry::platform::clock::rfc3339(app.clock.now_ms() + 1_200_000);
        let (short, _) =
            app.create_key_with(&s.token, json!({ "name": "short", "scopes": ["*"], "expiresAt": expires })).await;
        let (old, id) = app.create_key(&s.token, &["*"]).await;
        app.gql_ok(Some(&short), "{ viewer { id } }", json!({})).await;

        let rolled = app
            .gql_ok(Some(&s.token), "mutation($id: ID!) { rollApiKey(id: $id, expireOldInSeconds: 600) { secret previousSecretExpiresAt apiKey { maskedKey } } }", json!({ "id": id }))
            .await;
        let new = rolled["rollApiKey"]["secret"].as_str().unwrap().to_string();
        assert_ne!(new, old);
        assert!(rolled["rollApiKey"]["apiKey"]["maskedKey"].as_str().unwrap().ends_with(&new[new.len() - 4..]));
        // Both secrets work during the grace period.
        app.gql_ok(Some(&old), "{ viewer { id } }", json!({})).await;
        app.gql_ok(Some(&new), "{ viewer { id } }", json!({})).await;

        app.clock.advance_ms(601_000);
        let (status, body) = app.gql_status(Some(&old), "{ viewer { id } }", json!({})).await;
        assert_eq!(
            (status, code(&body)),
            (401, "UNAUTHENTICATED"),
            "[{backend:?}] the old secret expired with its grace"
        );
        assert_eq!(verify(&app, &s.token, &old, json!({})).await["code"], "EXPIRED");
        app.gql_ok(Some(&new), "{ viewer { id } }", json!({})).await;

        app.clock.advance_ms(600_000);
        let (status, _) = app.gql_status(Some(&short), "{ viewer { id } }", json!({})).await;
        assert_eq!(status, 401, "the key expired");
        let past = gantry::platform::clock::rfc3339(app.clock.now_ms() - 1000);
        let body = app.gql(Some(&s.token), "mutation($e: DateTime) { createApiKey(input: {name: \"x\", scopes: [\"*\"], expiresAt: $e}) { secret } }", json!({ "e": past })).await;
        assert_eq!(code(&body), "BAD_USER_INPUT");
        assert_eq!(body["errors"][0]["extensions"]["field"], "expiresAt");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ip_allow_lists_accept_v4_and_v6_cidrs_and_refuse_other_addresses() {
    for backend in backends() {
        let app = TestApp::new(backend).await;
        let s = app.register("dev@example.com").await;
        let (local, _) = app
            .create_key_with(
                &s.token,
                json!({ "name": "local", "scopes": ["*"], "allowedIps": ["127.0.0.0/8", "::1"] }),
            )
            .await;
        let (office, _) = app
            .create_key_with(
                &s.token,
                json!({ "name": "office", "scopes": ["*"], "allowedIps": ["10.0.0.0/8", "2001:db8::/32"] }),
            )
            .await;
        app.gql_ok(Some(&local), "{ viewer { id } }", json!({})).await;
        let (status, body) = app.gql_status(Some(&office), "{ viewer { id } }", json!({})).await;
        assert_eq!((status, code(&body)), (403, "FORBIDDEN"), "[{backend:?}] {body}");
        let (status, _) = app.rest("GET", "/auth/user", Some(&office), None).await;
        assert_eq!(status, 403);

        assert_eq!(verify(&app, &s.token, &office, json!({ "ip": "10.1.2.3" })).await["valid"], true);
        assert_eq!(verify(&app, &s.token, &office, json!({ "ip": "2001:db8::1" })).await["valid"], true);
        assert_eq!(verify(&app, &s.token, &office, json!({ "ip": "192.168.1.1" })).await["code"], "IP_NOT_ALLOWED");
        let bad = app.gql(Some(&s.token), "mutation { createApiKey(input: {name: \"x\", scopes: [\"*\"], allowedIps: [\"300.1.1.1\"]}) { secret } }", json!({})).await;
        assert_eq!(code(&bad), "BAD_USER_INPUT");
        assert_eq!(bad["errors"][0]["extensions"]["field"], "allowedIps");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_and_delete_change_exactly_what_was_asked() {
    for backend in backends() {
        let app = TestApp::new(backend).await;
        let s = app.register("dev@example.com").await;
        let (_, id) = app
            .create_key_with(&s.token, json!({ "name": "a", "description": "first", "scopes": ["keys:read"] }))
            .await;
        let q = "mutation($id: ID!, $i: UpdateApiKeyInput!) { updateApiKey(id: $id, input: $i) { name description scopes metadata } }";
        let data = app
            .gql_ok(Some(&s.token), q, json!({ "id": id, "i": { "name": "b", "metadata": { "team": "core" } } }))
            .await;
        assert_eq!(
            data["updateApiKey"],
            json!({ "name": "b", "description": "first", "scopes": ["keys:read"], "metadata": { "team": "core" } })
        );
        let data = app
            .gql_ok(
                Some(&s.token),
                q,
                json!({ "id": id, "i": { "description": null, "scopes": ["usage:read", "keys:read"] } }),
            )
            .await;
        assert_eq!(data["updateApiKey"]["description"], Value::Null);
        assert_eq!(data["updateApiKey"]["scopes"], json!(["keys:read", "usage:read"]));
        let bad = app.gql(Some(&s.token), q, json!({ "id": id, "i": { "metadata": [1, 2] } })).await;
        assert_eq!(code(&bad), "BAD_USER_INPUT");

        let data = app
            .gql_ok(Some(&s.token), "mutation($id: ID!) { deleteApiKey(id: $id) { deletedId } }", json!({ "id": id }))
            .await;
        assert_eq!(data["deleteApiKey"]["deletedId"], id.as_str());
        let gone = app.gql(Some(&s.token), "query($id: ID!) { apiKey(id: $id) { id } }", json!({ "id": id })).await;
        assert_eq!(code(&gone), "NOT_FOUND", "[{backend:?}]");
        let audit = app
            .gql_ok(Some(&s.token), "{ auditLog(first: 10) { edges { node { action targetId actorId } } } }", json!({}))
            .await;
        let actions: Vec<&str> = audit["auditLog"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["node"]["action"].as_str().unwrap())
            .collect();
        assert_eq!(&actions[..4], ["key.deleted", "key.updated", "key.updated", "key.created"], "{audit}");
        assert_eq!(audit["auditLog"]["edges"][0]["node"]["actorId"], s.user_id.as_str());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_organizations_key_ids_are_not_found_everywhere() {
    for backend in backends() {
        let app = TestApp::new(backend).await;
        let _admin = app.register("admin@example.com").await;
        let a = app.register("a@example.com").await;
        let b = app.register("b@example.com").await;
        let (_, a_key) = app.create_key(&a.token, &["*"]).await;
        let (b_secret, _) = app.create_key(&b.token, &["*"]).await;
        let vars = json!({ "id": a_key });
        for q in [
            "query($id: ID!) { apiKey(id: $id) { id } }",
            "query($id: ID!) { node(id: $id) { id } }",
            "mutation($id: ID!) { revokeApiKey(id: $id) { id } }",
            "mutation($id: ID!) { rollApiKey(id: $id) { secret } }",
            "mutation($id: ID!) { deleteApiKey(id: $id) { deletedId } }",
            "mutation($id: ID!) { updateApiKey(id: $id, input: {name: \"x\"}) { id } }",
        ] {
            for token in [&b.token, &b_secret] {
                let body = app.gql(Some(token), q, vars.clone()).await;
                assert_eq!(code(&body), "NOT_FOUND", "[{backend:?}] {q}: {body}");
            }
        }
        for (method, path) in [
            ("GET", format!("/keys/{a_key}")),
            ("PUT", format!("/keys/{a_key}")),
            ("DELETE", format!("/keys/{a_key}")),
            ("POST", format!("/keys/{a_key}/roll")),
            ("POST", format!("/keys/{a_key}/revoke")),
            ("GET", format!("/keys/{a_key}/usage")),
        ] {
            let body = if method == "PUT" { Some(json!({ "name": "x" })) } else { None };
            let (status, resp) = app.rest(method, &path, Some(&b_secret), body).await;
            assert_eq!(status, 404, "{method} {path}: {resp}");
            assert_eq!(resp["error"]["type"], "not_found");
        }
        // Nothing changed for A.
        let data = app.gql_ok(Some(&a.token), "query($id: ID!) { apiKey(id: $id) { name status } }", vars).await;
        assert_eq!(data["apiKey"], json!({ "name": "test key", "status": "ACTIVE" }));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_api_key_reports_reasons_and_respects_tenancy() {
    for backend in backends() {
        let app = TestApp::new(backend).await;
        let admin = app.register("operator@example.com").await;
        let dev = app.register("dev@example.com").await;
        let other = app.register("other@example.com").await;
        let (service_key, _) = app.create_key(&admin.token, &["keys:verify"]).await;
        let (dev_key, dev_key_id) = app
            .create_key_with(
                &dev.token,
                json!({ "name": "d", "scopes": ["usage:read"], "metadata": { "tier": "gold" } }),
            )
            .await;
        let (other_verifier, _) = app.create_key(&other.token, &["keys:verify"]).await;

        let ok = verify(&app, &service_key, &dev_key, json!({})).await;
        assert_eq!(ok["valid"], true, "[{backend:?}] a service key verifies any organization's key: {ok}");
        assert_eq!(ok["keyId"], dev_key_id.as_str());
        assert_eq!(ok["organizationId"], dev.org_id.as_str());
        assert_eq!(ok["metadata"], json!({ "tier": "gold" }));
        let scope = verify(&app, &service_key, &dev_key, json!({ "requiredScopes": ["keys:write"] })).await;
        assert_eq!(scope["code"], "INSUFFICIENT_SCOPE");
        let hidden = verify(&app, &other_verifier, &dev_key, json!({})).await;
        assert_eq!(
            hidden,
            json!({ "valid": false, "code": "NOT_FOUND", "keyId": null, "organizationId": null, "scopes": [], "metadata": null })
        );
        let unknown = verify(&app, &service_key, "gk_live_doesnotexist", json!({})).await;
        assert_eq!(unknown["code"], "NOT_FOUND");
        let denied = app
            .gql(Some(&dev_key), "mutation { verifyApiKey(input: {key: \"gk_test_x\"}) { valid } }", json!({}))
            .await;
        assert_eq!(code(&denied), "FORBIDDEN", "verifying needs keys:verify");

        // The REST twin gives the same verdict.
        let (status, body) = app
            .rest(
                "POST",
                "/keys/verify",
                Some(&service_key),
                Some(json!({ "key": dev_key, "required_scopes": ["usage:read"] })),
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(body["data"]["valid"], true);
        assert_eq!(body["data"]["organization_id"], dev.org_id.as_str());

        // Two valid verifications (GraphQL and REST) and one request made with the key itself; the
        // refused verifications do not count.
        gantry::server::flush(&app.app).await;
        let used = app
            .gql_ok(
                Some(&dev.token),
                "query($id: ID!) { apiKey(id: $id) { totalRequests } }",
                json!({ "id": dev_key_id }),
            )
            .await;
        assert_eq!(used["apiKey"]["totalRequests"], 3);
    }
}

/// Batch verification: one verdict per input in order, a key listed twice verified (and counted)
/// once, at most 100 keys, the same answers over REST.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_verifies_each_distinct_key_once_and_answers_in_order() {
    for backend in backends() {
        let app = TestApp::new(backend).await;
        let dev = app.register("dev@example.com").await;
        let (verifier, _) = app.create_key(&dev.token, &["keys:verify"]).await;
        let (a, a_id) = app.create_key(&dev.token, &["usage:read"]).await;
        let (b, b_id) = app.create_key(&dev.token, &["usage:read"]).await;
        let (gone, gone_id) = app.create_key(&dev.token, &["usage:read"]).await;
        app.gql_ok(Some(&dev.token), "mutation($id: ID!) { revokeApiKey(id: $id) { id } }", json!({ "id": gone_id }))
            .await;
        let q = "mutation($input: VerifyApiKeysInput!) { verifyApiKeys(input: $input) { valid invalid verified results { valid code keyId } } }";
        let keys = json!([a, b, a, gone, "gk_live_doesnotexist"]);
        let r = app.gql_ok(Some(&verifier), q, json!({ "input": { "keys": keys } })).await;
        let v = &r["verifyApiKeys"];
        assert_eq!(
            (v["valid"].as_i64(), v["invalid"].as_i64(), v["verified"].as_i64()),
            (Some(3), Some(2), Some(4)),
            "[{backend:?}] {v}"
        );
        let ids: Vec<Value> = v["results"].as_array().unwrap().iter().map(|r| r["keyId"].clone()).collect();
        assert_eq!(ids, vec![json!(a_id), json!(b_id), json!(a_id), json!(gone_id), Value::Null]);
        assert_eq!(v["results"][3]["code"], "REVOKED");
        assert_eq!(v["results"][4]["code"], "NOT_FOUND");

        // Over REST, the same verdicts.
        let (status, body) = app
            .rest(
                "POST",
                "/keys/verify/batch",
                Some(&verifier),
                Some(json!({ "keys": [b, "gk_live_x"], "required_scopes": ["usage:read"] })),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["results"][0]["key_id"], b_id.as_str());
        assert_eq!(body["data"]["results"][1]["valid"], false);

        // Bounds: none, more than 100, an empty key — refused naming the field.
        let many: Vec<String> = (0..101).map(|i| format!("gk_live_{i}")).collect();
        let r = app.gql(Some(&verifier), q, json!({ "input": { "keys": many } })).await;
        assert_eq!((code(&r), r["errors"][0]["extensions"]["field"].as_str()), ("BAD_USER_INPUT", Some("keys")), "{r}");
        let (status, body) = app.rest("POST", "/keys/verify/batch", Some(&verifier), Some(json!({ "keys": [] }))).await;
        assert_eq!((status, body["error"]["details"]["field"].as_str()), (422, Some("keys")), "{body}");
        let (status, body) =
            app.rest("POST", "/keys/verify/batch", Some(&verifier), Some(json!({ "keys": [a, " "] }))).await;
        assert_eq!((status, body["error"]["details"]["field"].as_str()), (422, Some("keys[1]")), "{body}");
        let denied = app.gql(Some(&a), q, json!({ "input": { "keys": [b] } })).await;
        assert_eq!(code(&denied), "FORBIDDEN", "verifying needs keys:verify");

        // Counted as uses of the verified keys: a once in the first batch although listed twice
        // (and once more for the refused call made with it), b once in each batch.
        gantry::server::flush(&app.app).await;
        let used = |id: String| {
            let app = &app;
            let token = dev.token.clone();
            async move {
                let r = app
                    .gql_ok(Some(&token), "query($id: ID!) { apiKey(id: $id) { totalRequests } }", json!({ "id": id }))
                    .await;
                r["apiKey"]["totalRequests"].as_i64().unwrap()
            }
        };
        assert_eq!(used(a_id.clone()).await, 2, "a key listed twice is counted once");
        assert_eq!(used(b_id.clone()).await, 2);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_roll_keeps_the_old_secret_for_24_hours_by_default_and_events_follow() {
    for backend in backends() {
        let app = TestApp::new(backend).await;
        let s = app.register("dev@example.com").await;
        let (old, id) = app.create_key(&s.token, &["*"]).await;
        // A key-authenticated watcher: a session would (rightly) be closed when the clock passes its expiry.
        let (watcher, _) = app.create_key(&s.token, &["org:read"]).await;
        let mut sock = crate::common::ws::connect_authed(&app.ws_url(), &watcher).await;
        crate::common::ws::subscribe(
            &mut sock,
            "1",
            "subscription { events(types: [\"key.rolled\", \"key.deleted\"]) { type data } }",
        )
        .await;
        let rolled = crate::subscriptions::until_event(&mut sock, async || {
            let _ = app.rest("POST", &format!("/keys/{id}/roll"), Some(&old), None).await;
        })
        .await;
        assert_eq!(rolled["data"]["events"]["type"], "key.rolled", "[{backend:?}] {rolled}");
        assert!(rolled["data"]["events"]["data"]["previousSecretExpiresAt"].is_string());
        // The secret in use now is the newest one; find it through a second roll's answer.
        let (status, body) = app.rest("POST", &format!("/keys/{id}/roll"), Some(&old), None).await;
        assert_eq!(status, 200, "{body}");
        let newest = body["data"]["secret"].as_str().unwrap().to_string();
        app.clock.advance_ms(24 * 3_600_000 - 1_000);
        let (status, _) = app.rest("GET", "/keys", Some(&old), None).await;
        assert_eq!(status, 200, "[{backend:?}] the first secret still works just before 24 h");
        app.clock.advance_ms(2_000);
        let (status, _) = app.rest("GET", "/keys", Some(&old), None).await;
        assert_eq!(status, 401, "[{backend:?}] and stops after");
        let (status, _) = app.rest("DELETE", &format!("/keys/{id}"), Some(&newest), None).await;
        assert_eq!(status, 204);
        let deleted = loop {
            let e = crate::common::ws::next_data(&mut sock).await;
            if e["data"]["events"]["type"] == "key.deleted" {
                break e;
            }
        };
        assert_eq!(deleted["data"]["events"]["data"]["key"]["id"], id.as_str());
        let audit = app.gql(Some(&newest), "{ auditLog { totalCount } }", json!({})).await;
        assert_eq!(code(&audit), "UNAUTHENTICATED", "a deleted key is gone");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_used_from_a_new_address_is_audited_and_published_once() {
    for backend in backends() {
        // Behind a trusted proxy the client address comes from X-Forwarded-For.
        let app = TestApp::with_config(backend, |c| c.trust_proxy = true).await;
        let s = app.register("dev@example.com").await;
        let (secret, key_id) = app.create_key(&s.token, &["keys:read"]).await;
        let call = async |ip: &str| {
            let r = app
                .http
                .post(app.url("/graphql"))
                .bearer_auth(&secret)
                .header("x-forwarded-for", ip)
                .json(&json!({ "query": "{ viewer { id } }" }))
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success(), "{}", r.status());
        };
        for ip in ["203.0.113.7", "203.0.113.7", "198.51.100.2"] {
            call(ip).await;
        }
        gantry::server::flush(&app.app).await;
        // A known address, in a later flush: nothing new.
        call("203.0.113.7").await;
        gantry::server::flush(&app.app).await;
        let audit = app
            .gql_ok(
                Some(&s.token),
                "{ auditLog(first: 50, action: \"key.used_from_new_ip\") { edges { node { targetId actorId ip } } } }",
                json!({}),
            )
            .await;
        let mut ips: Vec<String> = audit["auditLog"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                assert_eq!(e["node"]["targetId"], key_id.as_str());
                assert_eq!(e["node"]["actorId"], key_id.as_str());
                e["node"]["ip"].as_str().unwrap().to_string()
            })
            .collect();
        ips.sort();
        assert_eq!(ips, ["198.51.100.2", "203.0.113.7"], "[{backend:?}] {audit}");
        let events = app
            .gql_ok(
                Some(&s.token),
                "{ events(types: [\"key.used_from_new_ip\"]) { totalCount edges { node { data } } } }",
                json!({}),
            )
            .await;
        assert_eq!(events["events"]["totalCount"], 2, "[{backend:?}] {events}");
        for e in events["events"]["edges"].as_array().unwrap() {
            let data = &e["node"]["data"];
            assert_eq!(data["key"]["id"], key_id.as_str());
            assert!(["198.51.100.2", "203.0.113.7"].contains(&data["ip"].as_str().unwrap()), "{data}");
            assert!(data["firstSeenAt"].is_string(), "{data}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_updates_of_different_fields_both_land() {
    for backend in backends() {
        let app = TestApp::new(backend).await;
        let s = app.register("dev@example.com").await;
        // Twenty concurrent updates would hit the Starter plan's 10 requests/s.
        app.lift_starter_limits(&s.token).await;
        let (_, key_id) = app.create_key(&s.token, &["keys:read"]).await;
        let q = "mutation($id: ID!, $i: UpdateApiKeyInput!) { updateApiKey(id: $id, input: $i) { id } }";
        for round in 0..10 {
            let name = format!("name-{round}");
            let (a, b) = tokio::join!(
                app.gql_ok(Some(&s.token), q, json!({ "id": key_id, "i": { "name": name } })),
                app.gql_ok(Some(&s.token), q, json!({ "id": key_id, "i": { "metadata": { "round": round } } })),
            );
            assert_eq!(a["updateApiKey"]["id"], b["updateApiKey"]["id"]);
            let key = app
                .gql_ok(
                    Some(&s.token),
                    "query($id: ID!) { apiKey(id: $id) { name metadata } }",
                    json!({ "id": key_id }),
                )
                .await;
            assert_eq!(
                key["apiKey"],
                json!({ "name": name, "metadata": { "round": round } }),
                "[{backend:?}] round {round}"
            );
        }
    }
}

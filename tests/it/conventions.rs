use serde_json::{Value, json};

use crate::common::{TestApp, backends, code};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_page_forwards_and_backwards_within_bounds() {
    for backend in backends() {
        let app = TestApp::new(backend).await;
        let s = app.register("dev@example.com").await;
        let mut ids = Vec::new();
        for i in 0..5 {
            let (_, id) = app.create_key_with(&s.token, json!({ "name": format!("k{i}"), "scopes": ["*"] })).await;
            app.clock.advance_ms(1);
            ids.push(id);
        }
        ids.reverse(); // newest first
        let q = "query($f: Int, $a: String, $l: Int, $b: String) { apiKeys(first: $f, after: $a, last: $l, before: $b) { totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor } edges { cursor node { id } } } }";
        let page = |v: &Value| {
            v["apiKeys"]["edges"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["node"]["id"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        };
        let p1 = app.gql_ok(Some(&s.token), q, json!({ "f": 2 })).await;
        assert_eq!(page(&p1), ids[0..2], "[{backend:?}]");
        assert_eq!(p1["apiKeys"]["totalCount"], 5);
        assert_eq!(p1["apiKeys"]["pageInfo"]["hasNextPage"], true);
        let p2 = app.gql_ok(Some(&s.token), q, json!({ "f": 2, "a": p1["apiKeys"]["pageInfo"]["endCursor"] })).await;
        assert_eq!(page(&p2), ids[2..4]);
        assert_eq!(p2["apiKeys"]["pageInfo"]["hasPreviousPage"], true);
        let p3 = app.gql_ok(Some(&s.token), q, json!({ "f": 2, "a": p2["apiKeys"]["pageInfo"]["endCursor"] })).await;
        assert_eq!(page(&p3), ids[4..5]);
        assert_eq!(p3["apiKeys"]["pageInfo"]["hasNextPage"], false);
        let back =
            app.gql_ok(Some(&s.token), q, json!({ "l": 2, "b": p3["apiKeys"]["pageInfo"]["startCursor"] })).await;
        assert_eq!(page(&back), ids[2..4]);
        let tail = app.gql_ok(Some(&s.token), q, json!({ "l": 1 })).await;
        assert_eq!(page(&tail), ids[4..5]);

        for (vars, field) in [
            (json!({ "f": 0 }), "first"),
            (json!({ "f": 101 }), "first"),
            (json!({ "l": -1 }), "last"),
            (json!({ "f": 1, "l": 1 }), "first"),
            (json!({ "a": "garbage!" }), "after"),
        ] {
            let body = app.gql(Some(&s.token), q, vars.clone()).await;
            assert_eq!(code(&body), "BAD_USER_INPUT", "{vars}: {body}");
            assert_eq!(body["errors"][0]["extensions"]["field"], field);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_and_nodes_resolve_prefixed_ids() {
    for backend in backends() {
        let app = TestApp::new(backend).await;
        let s = app.register("dev@example.com").await;
        let (_, key) = app.create_key(&s.token, &["*"]).await;
        let latest = "{ events(first: 1) { edges { node { id type } } } }";
        let event = app.gql_ok(Some(&s.token), latest, json!({})).await["events"]["edges"][0]["node"].clone();
        assert_eq!(event["type"], "key.created");
        // Another organization's event is not found, exactly like one that does not exist.
        let other = app.register("other@example.com").await;
        app.create_key(&other.token, &["*"]).await;
        let theirs =
            app.gql_ok(Some(&other.token), latest, json!({})).await["events"]["edges"][0]["node"]["id"].clone();
        let q = "query($ids: [ID!]!) { nodes(ids: $ids) { __typename id ... on ApiKey { name } ... on Plan { slug } ... on Event { type } } }";
        let body = app
            .gql(
                Some(&s.token),
                q,
                json!({ "ids": [key, s.org_id, s.user_id, "pln_0000000000000000000starter", event["id"], "key_01jd0000000000000000000000", "nonsense", theirs, "pln_0000000000000000000missing"] }),
            )
            .await;
        let nodes = body["data"]["nodes"].as_array().unwrap();
        assert_eq!(nodes[0]["__typename"], "ApiKey", "[{backend:?}] {body}");
        assert_eq!(nodes[0]["name"], "test key");
        assert_eq!(nodes[1]["__typename"], "Organization");
        assert_eq!(nodes[2]["__typename"], "User");
        assert_eq!(nodes[3]["__typename"], "Plan");
        assert_eq!(nodes[3]["slug"], "starter");
        assert_eq!(nodes[4], json!({ "__typename": "Event", "id": event["id"], "type": "key.created" }));
        assert!(nodes[5..].iter().all(Value::is_null), "{body}");
        let errors = body["errors"].as_array().unwrap();
        assert_eq!(errors.len(), 4);
        assert!(errors.iter().all(|e| e["extensions"]["code"] == "NOT_FOUND"));
        // The same event by its own query and over REST.
        let one = app
            .gql_ok(Some(&s.token), "query($id: ID!) { event(id: $id) { type } }", json!({ "id": event["id"] }))
            .await;
        assert_eq!(one["event"]["type"], "key.created");
        let r = app.gql(Some(&s.token), "query($id: ID!) { event(id: $id) { type } }", json!({ "id": theirs })).await;
        assert_eq!(code(&r), "NOT_FOUND");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_codes_and_statuses_never_500() {
    for backend in backends() {
        let app = TestApp::with_config(backend, |c| c.graphql_max_depth = 6).await;
        let s = app.register("dev@example.com").await;
        let post = |body: &'static str, ct: &'static str| {
            app.http.post(app.url("/graphql")).header("content-type", ct).bearer_auth(&s.token).body(body).send()
        };
        let r = post("{not json", "application/json").await.unwrap();
        assert_eq!(r.status().as_u16(), 400);
        assert_eq!(code(&r.json::<Value>().await.unwrap()), "BAD_USER_INPUT");
        let r = post("{\"query\":\"{ viewer { id } }\"}", "text/plain").await.unwrap();
        assert_eq!(r.status().as_u16(), 415);
        let big = format!("{{\"query\":\"{{ viewer {{ id }} }}\", \"pad\": \"{}\"}}", "x".repeat(70 * 1024));
        let r = app
            .http
            .post(app.url("/graphql"))
            .header("content-type", "application/json")
            .body(big)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 413);
        assert_eq!(code(&r.json::<Value>().await.unwrap()), "PAYLOAD_TOO_LARGE");

        let syntax = app.gql(Some(&s.token), "{ viewer { id ", json!({})).await;
        assert_eq!(code(&syntax), "BAD_USER_INPUT");
        let unknown = app.gql(Some(&s.token), "{ viewer { nope } }", json!({})).await;
        assert_eq!(code(&unknown), "BAD_USER_INPUT");
        let deep = app
            .gql(Some(&s.token), "{ __schema { types { fields { type { ofType { ofType { name } } } } } } }", json!({}))
            .await;
        assert_eq!(code(&deep), "BAD_USER_INPUT", "{deep}");
        assert!(deep["errors"][0]["message"].as_str().unwrap().contains("maximum depth is 6"));
        // The stricter media type turns a request that never ran into a 400.
        let r = app
            .http
            .post(app.url("/graphql"))
            .header("accept", "application/graphql-response+json")
            .bearer_auth(&s.token)
            .json(&json!({ "query": "{ nope }" }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 400);
        assert_eq!(r.headers()["content-type"], "application/graphql-response+json");

        let (status, body) = app.gql_status(Some("gk_live_notarealkey"), "{ viewer { id } }", json!({})).await;
        assert_eq!((status, code(&body)), (401, "UNAUTHENTICATED"));
        let (status, body) = app.gql_status(Some("some-random-token"), "{ viewer { id } }", json!({})).await;
        assert_eq!((status, code(&body)), (401, "UNAUTHENTICATED"));
        let anonymous = app.gql(None, "{ viewer { id } }", json!({})).await;
        assert_eq!(code(&anonymous), "UNAUTHENTICATED");
        let r = app
            .http
            .post(app.url("/graphql"))
            .header("authorization", "Basic abc")
            .json(&json!({ "query": "{ viewer { id } }" }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 401);

        // GET works for queries and refuses mutations.
        let r = app
            .http
            .get(app.url("/graphql"))
            .query(&[("query", "{ viewer { id } }")])
            .bearer_auth(&s.token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let r = app
            .http
            .get(app.url("/graphql"))
            .query(&[("query", "mutation { logout }")])
            .bearer_auth(&s.token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 405);
        // Wrong variable types are input errors, not server errors.
        let body = app
            .gql(Some(&s.token), "query($f: Int) { apiKeys(first: $f) { totalCount } }", json!({ "f": "ten" }))
            .await;
        assert_eq!(code(&body), "BAD_USER_INPUT", "[{backend:?}] {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_readiness_name_their_checks() {
    for backend in backends() {
        let app = TestApp::new(backend).await;
        let r = app.http.get(app.url("/healthz")).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let r = app.http.get(app.url("/readyz")).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["status"], "ok");
        let (db, bus) = match backend {
            crate::common::Backend::SqliteMemory => ("sqlite", "memory"),
            crate::common::Backend::PostgresRedis => ("postgres", "redis"),
        };
        assert_eq!(body["checks"]["database"], json!({ "status": "ok", "backend": db }));
        assert_eq!(body["checks"]["redis"], json!({ "status": "ok", "backend": bus }));
        let r = app.http.get(app.url("/playground/")).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        assert!(r.text().await.unwrap().contains("/playground/assets/"), "the built playground is embedded");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn costly_queries_are_refused_before_running() {
    for backend in backends() {
        let app = TestApp::with_config(backend, |c| c.graphql_max_complexity = 200).await;
        let s = app.register("dev@example.com").await;
        app.gql_ok(Some(&s.token), "{ apiKeys(first: 10) { edges { node { id name } } } }", json!({})).await;
        let body = app
            .gql(Some(&s.token), "{ apiKeys(first: 100) { edges { node { id name scopes createdAt } } } }", json!({}))
            .await;
        assert_eq!(code(&body), "BAD_USER_INPUT", "[{backend:?}] {body}");
        assert!(body["errors"][0]["message"].as_str().unwrap().contains("maximum complexity is 200"));
        assert_eq!(body["data"], Value::Null);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_errors_carry_a_request_id_and_no_details() {
    for backend in backends() {
        let app = TestApp::new(backend).await;
        let s = app.register("dev@example.com").await;
        // Break the database under the server: the audit log table disappears.
        crate::common::execute_sql(&app, "ALTER TABLE audit_log RENAME TO audit_log_gone").await;
        let body = app.gql(Some(&s.token), "{ auditLog { totalCount } }", json!({})).await;
        assert_eq!(code(&body), "INTERNAL", "[{backend:?}] {body}");
        assert_eq!(body["errors"][0]["message"], "internal error");
        assert!(body["errors"][0]["extensions"]["requestId"].as_str().is_some_and(|r| r.len() >= 20));
        assert!(!body.to_string().to_lowercase().contains("audit_log"), "no database details leak: {body}");
        // A key creation writes an audit entry in its transaction: it fails whole, leaving no key.
        let created = app
            .gql(
                Some(&s.token),
                "mutation { createApiKey(input: {name: \"x\", scopes: [\"*\"]}) { secret } }",
                json!({}),
            )
            .await;
        assert_eq!(code(&created), "INTERNAL");
        let keys = app.gql_ok(Some(&s.token), "{ apiKeys(includeRevoked: true) { totalCount } }", json!({})).await;
        assert_eq!(keys["apiKeys"]["totalCount"], 0, "no partial write");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_query_strings_get_structured_errors() {
    let app = TestApp::new(crate::common::Backend::SqliteMemory).await;
    let s = app.register("dev@example.com").await;
    let r = app
        .http
        .get(format!("{}?query=%ZZ%7B&variables=%7Bbad", app.url("/graphql")))
        .bearer_auth(&s.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(code(&r.json::<Value>().await.unwrap()), "BAD_USER_INPUT");
    let r = app.http.get(format!("{}?limit=%ZZ", app.url("/api/v1/keys"))).bearer_auth(&s.token).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 422);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["details"]["field"], "limit", "{body}");
}

/// A cached operation without variables skips the validation rules after its first full pass
/// (`server::execute_operation`): its answers must not change, invalid documents stay invalid,
/// and operations with variables keep full validation (bad variable values are request errors).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_operations_keep_their_validation_verdict() {
    for backend in backends() {
        let app = TestApp::with_config(backend, |c| c.graphql_max_depth = 6).await;
        let s = app.register("dev@example.com").await;
        for _ in 0..3 {
            let ok = app.gql_ok(Some(&s.token), "{ viewer { id } }", json!({})).await;
            assert_eq!(ok["viewer"]["id"], s.user_id.as_str(), "[{backend:?}]");
            let unknown = app.gql(Some(&s.token), "{ viewer { nope } }", json!({})).await;
            assert_eq!(code(&unknown), "BAD_USER_INPUT", "[{backend:?}] {unknown}");
            let deep = "{ __schema { types { fields { type { ofType { ofType { name } } } } } } }";
            let deep = app.gql(Some(&s.token), deep, json!({})).await;
            assert!(deep["errors"][0]["message"].as_str().unwrap().contains("maximum depth is 6"), "{deep}");
        }
        // Two operations in one document: each is validated (and remembered) on its own run; the
        // whole document is validated each time, so an invalid sibling fails both.
        let named = |query: &'static str, op: &'static str| {
            let req = app.http.post(app.url("/graphql")).bearer_auth(&s.token);
            async move {
                let body = json!({ "query": query, "operationName": op });
                req.json(&body).send().await.unwrap().json::<Value>().await.unwrap()
            }
        };
        let two = "query A { viewer { id } } query B { viewer { __typename } }";
        for op in ["A", "B", "A", "B"] {
            let body = named(two, op).await;
            assert!(body["errors"].is_null(), "[{backend:?}] {op}: {body}");
        }
        let bad_sibling = "query A { viewer { id } } query B { viewer { nope } }";
        for _ in 0..2 {
            let body = named(bad_sibling, "A").await;
            assert_eq!(code(&body), "BAD_USER_INPUT", "[{backend:?}] {body}");
        }
        // With variables: full validation every time; a bad value is a request error.
        let q = "query($n: Int) { apiKeys(first: $n) { totalCount } }";
        assert_eq!(app.gql_ok(Some(&s.token), q, json!({ "n": 5 })).await["apiKeys"]["totalCount"], 0);
        let bad = app.gql(Some(&s.token), q, json!({ "n": "five" })).await;
        assert_eq!(code(&bad), "BAD_USER_INPUT", "[{backend:?}] {bad}");
        assert!(bad["data"].is_null() && bad["errors"][0].get("path").is_none(), "[{backend:?}] {bad}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_inputs_are_refused_with_codes_quickly() {
    for backend in backends() {
        let app = TestApp::new(backend).await;
        let s = app.register("dev@example.com").await;
        let within = |what: &'static str| {
            move |r: Result<Value, tokio::time::error::Elapsed>| r.unwrap_or_else(|_| panic!("{what} took over 5 s"))
        };
        let five = std::time::Duration::from_secs(5);

        // Fragments spreading the next one twice: 2^60 fields in a few KB, from anyone.
        let bomb = crate::common::fragment_chain("{ ...F0 }", 60, "__typename");
        let r = within("the fragment bomb")(tokio::time::timeout(five, app.gql(None, &bomb, json!({}))).await);
        assert_eq!(code(&r), "BAD_USER_INPUT", "[{backend:?}] {r}");
        assert!(r["errors"][0]["message"].as_str().unwrap().contains("query cost"), "{r}");
        // A cheap operation does not carry an expensive neighbour past the limit: validation walks
        // every operation of the document.
        let pair = crate::common::fragment_chain("query A { __typename } query B { ...F0 }", 30, "__typename");
        let post = app.http.post(app.url("/graphql")).json(&json!({ "query": pair, "operationName": "A" })).send();
        let r: Value = within("the cheap neighbour")(
            tokio::time::timeout(five, async { post.await.unwrap().json().await.unwrap() }).await,
        );
        assert_eq!(code(&r), "BAD_USER_INPUT", "[{backend:?}] {r}");
        // A fragment that spreads itself: a validation error, not an endless walk.
        let cycle = "{ ...A } fragment A on Query { __typename ...A ...A }";
        let r = within("the fragment cycle")(tokio::time::timeout(five, app.gql(None, cycle, json!({}))).await);
        assert_eq!(code(&r), "BAD_USER_INPUT", "[{backend:?}] {r}");

        // NUL in text, in variables or in a query literal, on either backend.
        let create = "mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) { secret } }";
        let r = app.gql(Some(&s.token), create, json!({ "i": { "name": "a\u{0}b", "scopes": ["*"] } })).await;
        assert_eq!(code(&r), "BAD_USER_INPUT", "[{backend:?}] {r}");
        let r = app
            .gql(
                Some(&s.token),
                r#"mutation { createApiKey(input: {name: "a\u0000b", scopes: ["*"]}) { secret } }"#,
                json!({}),
            )
            .await;
        assert_eq!(code(&r), "BAD_USER_INPUT", "[{backend:?}] {r}");
        let raw = "mutation { createApiKey(input: {name: \"a\u{0}b\", scopes: [\"*\"]}) { secret } }";
        let r = app.gql(Some(&s.token), raw, json!({})).await;
        assert_eq!(code(&r), "BAD_USER_INPUT", "[{backend:?}] a raw NUL in a literal: {r}");
        let (status, body) =
            app.rest("POST", "/keys", Some(&s.token), Some(json!({ "name": "a\u{0}b", "scopes": ["*"] }))).await;
        assert_eq!((status, body["error"]["details"]["field"].as_str()), (422, Some("name")), "[{backend:?}] {body}");
        let r = app
            .gql(
                None,
                "mutation($e: String!) { login(input: {email: $e, password: \"x\"}) { user { id } } }",
                json!({ "e": "dev\u{0}@example.com" }),
            )
            .await;
        assert_eq!(code(&r), "BAD_USER_INPUT", "[{backend:?}] {r}");
        let keys = app.gql_ok(Some(&s.token), "{ apiKeys { totalCount } }", json!({})).await;
        assert_eq!(keys["apiKeys"]["totalCount"], 0, "nothing was written");

        // Event-type filters are bounded.
        let many: Vec<String> = (0..51).map(|i| format!("c{i}.*")).collect();
        let r = app
            .gql(Some(&s.token), "query($t: [String!]) { events(types: $t) { totalCount } }", json!({ "t": many }))
            .await;
        assert_eq!((code(&r), &r["errors"][0]["extensions"]["field"]), ("BAD_USER_INPUT", &json!("types")), "{r}");

        // A key's rate-limit override is bounded (the limiter's arithmetic must not overflow).
        let r = app
            .gql(
                Some(&s.token),
                create,
                json!({ "i": { "name": "k", "scopes": ["*"], "rateLimit": { "perSecond": 18446744073709551615u64 } } }),
            )
            .await;
        assert_eq!(code(&r), "BAD_USER_INPUT", "[{backend:?}] {r}");
        let over = json!({ "i": { "name": "k", "scopes": ["*"], "rateLimit": { "perMinute": 2_000_000_000u64 } } });
        let r = app.gql(Some(&s.token), create, over).await;
        assert_eq!(r["errors"][0]["extensions"]["field"], "rateLimit.perMinute", "[{backend:?}] {r}");
        // The largest allowed values work: a per-day limit of 1 with the largest burst.
        let (key, _) = app
            .create_key_with(
                &s.token,
                json!({ "name": "k", "scopes": ["*"], "rateLimit": { "perDay": 1, "burst": 1_000_000_000 } }),
            )
            .await;
        let r = app.gql(Some(&key), "{ viewer { id } }", json!({})).await;
        assert!(r["errors"].is_null(), "[{backend:?}] {r}");
    }
}

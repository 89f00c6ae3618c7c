//! Every answer can be read: a JSON body with a code on unknown paths and methods (with `Allow`),
//! `WWW-Authenticate` on a 401, bounded messages for parse errors, and `data` in the order the
//! query asked for.

use serde_json::{Value, json};

use crate::common::{TestApp, backends, code};

async fn raw(
    app: &TestApp,
    method: &str,
    path: &str,
    token: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, String) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = app.http.request(method, app.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_paths_and_methods_answer_with_a_readable_body_and_allow() {
    let app = TestApp::new(crate::common::Backend::SqliteMemory).await;
    for (method, path, status) in
        [("GET", "/nope", 404), ("POST", "/graphql/nope", 404), ("PUT", "/graphql", 405), ("DELETE", "/healthz", 405)]
    {
        let (got, headers, body) = raw(&app, method, path, None).await;
        assert_eq!(got, status, "{method} {path}: {body}");
        assert!(headers["content-type"].to_str().unwrap().starts_with("application/json"), "{method} {path}");
        let body: Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("{method} {path}: not JSON: {body}"));
        assert!(body["errors"][0]["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
        assert!(body["errors"][0]["extensions"]["code"].is_string(), "{body}");
        if status == 405 {
            let allow = headers["allow"].to_str().unwrap();
            assert!(allow.contains("GET"), "{method} {path}: Allow {allow}");
        }
    }
    let (status, headers, _) = raw(&app, "PUT", "/graphql", None).await;
    assert_eq!(status, 405);
    let allow = headers["allow"].to_str().unwrap().replace(' ', "");
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
    // OPTIONS names the methods.
    let (status, headers, body) = raw(&app, "OPTIONS", "/graphql", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["allow"], "GET, POST, OPTIONS");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["allow"], json!(["GET", "POST", "OPTIONS"]));
    // REST answers in its envelope, with Allow on a 405.
    let (status, headers, body) = raw(&app, "PATCH", "/api/v1/keys", None).await;
    assert_eq!(status, 405, "{body}");
    assert!(headers["allow"].to_str().unwrap().contains("GET"), "{headers:?}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["error"]["type"], "method_not_allowed");
    let (status, _, body) = raw(&app, "GET", "/api/v1/nope", None).await;
    assert_eq!(
        (status, serde_json::from_str::<Value>(&body).unwrap()["error"]["type"].as_str()),
        (404, Some("not_found"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_credential_is_a_401_with_www_authenticate() {
    let app = TestApp::new(crate::common::Backend::SqliteMemory).await;
    let s = app.register("dev@example.com").await;
    let (key, id) = app.create_key(&s.token, &["*"]).await;
    app.gql_ok(Some(&s.token), "mutation($id: ID!) { revokeApiKey(id: $id) { id } }", json!({ "id": id })).await;
    for path in ["/graphql?query=%7Bviewer%7Bid%7D%7D", "/api/v1/keys"] {
        for token in ["gk_live_nope", key.as_str()] {
            let (status, headers, body) = raw(&app, "GET", path, Some(token)).await;
            assert_eq!(status, 401, "{path}: {body}");
            let challenge = headers["www-authenticate"].to_str().unwrap();
            assert!(challenge.starts_with("Bearer realm=\"gantry\", error=\"invalid_token\""), "{path}: {challenge}");
        }
    }
    let (_, headers, _) = raw(&app, "GET", "/api/v1/keys", Some(&key)).await;
    assert!(headers["www-authenticate"].to_str().unwrap().contains("revoked"), "the description says why");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parse_errors_are_one_bounded_sentence_without_data() {
    for backend in backends() {
        let app = TestApp::new(backend).await;
        let s = app.register("dev@example.com").await;
        // A deep query: before, its parse error echoed it back as a 52 KB excerpt.
        let deep = format!("{}{}", "{ a ".repeat(6000), "}".repeat(5999));
        for query in [deep.as_str(), "{ viewer { id }", "query { viewer { id } } }}}"] {
            let resp = app
                .http
                .post(app.url("/graphql"))
                .bearer_auth(&s.token)
                .json(&json!({ "query": query }))
                .send()
                .await
                .unwrap();
            let text = resp.text().await.unwrap();
            assert!(text.len() < 1024, "[{backend:?}] a {} byte answer to a {} byte query", text.len(), query.len());
            let body: Value = serde_json::from_str(&text).unwrap();
            assert!(body.get("data").is_none(), "{body}");
            assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
            let message = body["errors"][0]["message"].as_str().unwrap();
            assert!(!message.contains(" | "), "no excerpt of the query: {message}");
        }
        let r = app.gql(Some(&s.token), "{ viewer { id }", json!({})).await;
        assert!(r["errors"][0]["message"].as_str().unwrap().starts_with("syntax error: expected"), "{r}");
        assert!(r["errors"][0]["locations"][0]["line"].is_number(), "the location is in `locations`: {r}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_keys_come_back_in_the_order_of_the_query() {
    let app = TestApp::new(crate::common::Backend::SqliteMemory).await;
    let s = app.register("dev@example.com").await;
    for (query, keys) in [
        ("{ viewer { id } apiKeys { totalCount } plans { slug } }", ["viewer", "apiKeys", "plans"]),
        ("{ plans { slug } apiKeys { totalCount } viewer { id } }", ["plans", "apiKeys", "viewer"]),
        (
            "{ z: viewer { id } ...F a: plans { slug } } fragment F on Query { m: apiKeys { totalCount } }",
            ["z", "m", "a"],
        ),
    ] {
        let resp = app
            .http
            .post(app.url("/graphql"))
            .bearer_auth(&s.token)
            .json(&json!({ "query": query }))
            .send()
            .await
            .unwrap();
        let text = resp.text().await.unwrap();
        let at: Vec<usize> =
            keys.iter().map(|k| text.find(&format!("\"{k}\":")).unwrap_or_else(|| panic!("{k} in {text}"))).collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{query}: {text}");
    }
}

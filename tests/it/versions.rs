//! REST versions: the path or `X-API-Version` selects one, the answer says which, v1 announces its
//! deprecation and successor, v2 answers without the legacy `meta` wrapper, and usage splits calls
//! by version.

use serde_json::{Value, json};

use crate::common::{TestApp, backends};

async fn call(
    app: &TestApp,
    path: &str,
    token: Option<&str>,
    version: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut req = app.http.get(app.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(v) = version {
        req = req.header("x-api-version", v);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = r.json().await.unwrap_or(Value::Null);
    (status, headers, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_path_or_the_header_selects_a_version_and_v1_points_to_its_successor() {
    for backend in backends() {
        let app = TestApp::new(backend).await;
        let s = app.register("versions@example.com").await;
        let (key, key_id) = app.create_key(&s.token, &["*"]).await;

        // v1: the seed envelope, deprecated with dates from the version table and a successor.
        let (status, h, v1) = call(&app, "/api/v1/keys?limit=5", Some(&key), None).await;
        assert_eq!(status, 200, "[{backend:?}] {v1}");
        assert_eq!(h["x-api-version"], "v1");
        assert_eq!(h["deprecation"], "@1764547200");
        assert_eq!(h["sunset"], "Thu, 31 Dec 2026 00:00:00 GMT");
        assert_eq!(h["link"], "</api/v2/keys?limit=5>; rel=\"successor-version\"");
        assert_eq!(
            (v1["status"].as_str(), v1["meta"]["pagination"]["total_count"].as_i64()),
            (Some("success"), Some(1))
        );

        // v2: no meta wrapper, cursor pagination at the top, ids everywhere, not deprecated.
        let (status, h, v2) = call(&app, "/api/v2/keys?limit=5", Some(&key), None).await;
        assert_eq!(status, 200, "{v2}");
        assert_eq!(h["x-api-version"], "v2");
        assert!(h.get("deprecation").is_none() && h.get("sunset").is_none() && h.get("link").is_none());
        assert!(v2.get("meta").is_none() && v2.get("status").is_none(), "{v2}");
        assert!(v2["id"].as_str().unwrap().starts_with("req_"), "{v2}");
        assert_eq!(v2["data"][0]["id"], key_id.as_str());
        assert_eq!((v2["has_more"].as_bool(), v2["total_count"].as_i64()), (Some(false), Some(1)), "{v2}");
        assert!(v2.get("next_cursor").is_none());
        assert!(h.get("x-ratelimit-remaining").is_some(), "limits travel in headers");
        let (status, _, err) = call(&app, "/api/v2/keys", None, None).await;
        assert_eq!(status, 401);
        assert_eq!(err["error"]["type"], "authentication_error", "{err}");
        assert!(err.get("meta").is_none() && err["id"].is_string(), "{err}");
        let (status, _, err) = call(&app, "/api/v2/nope", Some(&key), None).await;
        assert_eq!((status, err["error"]["type"].as_str()), (404, Some("not_found")), "{err}");

        // The unversioned path: the header picks, by name or by date; v1 without one.
        let (_, h, by_date) = call(&app, "/api/keys", Some(&key), Some("2025-11-01")).await;
        assert_eq!(h["x-api-version"], "v2");
        assert_eq!(by_date["data"][0]["id"], key_id.as_str(), "{by_date}");
        let (_, h, _) = call(&app, "/api/keys", Some(&key), Some("2025-06-30")).await;
        assert_eq!(h["x-api-version"], "v1", "a date before v2: v1");
        let (_, h, plain) = call(&app, &format!("/api/keys/{key_id}"), Some(&key), None).await;
        assert_eq!(h["x-api-version"], "v1");
        assert_eq!(plain["data"]["id"], key_id.as_str(), "{plain}");
        let (status, _, bad) = call(&app, "/api/keys", Some(&key), Some("v9")).await;
        assert_eq!(status, 400, "{bad}");
        assert_eq!(bad["error"]["details"], json!({ "field": "X-API-Version", "location": "header" }), "{bad}");
        // A versioned path with a header naming another version is refused, not guessed.
        let (status, _, bad) = call(&app, "/api/v1/keys", Some(&key), Some("v2")).await;
        assert_eq!(status, 400, "{bad}");
        let (status, _, _) = call(&app, "/api/v1/keys", Some(&key), Some("v1")).await;
        assert_eq!(status, 200);

        // Routes only v2 has.
        let (status, _, found) =
            call(&app, "/api/v2/marketplace/search?q=nothing-like-it&sort=newest", None, None).await;
        assert_eq!(status, 200, "{found}");
        assert_eq!(found["data"], json!([]), "{found}");
        let (status, _, _) = call(&app, "/api/v1/marketplace/search", None, None).await;
        assert_eq!(status, 404, "v1 does not have it");
        let (status, _, forecast) = call(&app, "/api/v2/billing/usage-forecast", Some(&key), None).await;
        assert_eq!(status, 200, "{forecast}");
        assert!(forecast["data"]["projected_calls"].is_i64(), "{forecast}");

        // Usage splits calls by version: each route is metered under its versioned path.
        gantry::server::flush(&app.app).await;
        let usage = app.calls_by_operation(&s.token).await;
        let calls = |op: &str| usage.get(op).copied();
        assert_eq!(calls("GET /api/v1/keys"), Some(3), "[{backend:?}] {usage:?}");
        assert_eq!(calls("GET /api/v2/keys"), Some(2), "[{backend:?}] {usage:?}");
        assert_eq!(calls("GET /api/v2/billing/usage-forecast"), Some(1), "{usage:?}");
    }
}

/// `/api/v2/integrations/batch`: each sub-request authenticated, limited and metered on its own,
/// answered in order with its own status; at most 50.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_runs_each_rest_call_through_the_pipeline_in_order() {
    for backend in backends() {
        let app = TestApp::new(backend).await;
        let s = app.register("batch@example.com").await;
        let (key, key_id) = app.create_key(&s.token, &["*"]).await;
        let batch = json!({ "requests": [
            { "method": "GET", "path": "/keys?limit=1" },
            { "method": "POST", "path": "/keys", "body": { "name": "from-batch", "scopes": ["keys:read"] } },
            { "method": "GET", "path": "/keys/key_00000000000000000000000000" },
            { "method": "GET", "path": "/nope" },
            { "method": "post", "path": "/keys", "body": { "name": "x", "scopes": [], "colour": 1 } },
            { "method": "GET", "path": format!("/api/v1/keys/{key_id}") },
        ] });
        let r =
            app.http.post(app.url("/api/v2/integrations/batch")).bearer_auth(&key).json(&batch).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        assert!(r.headers().get("x-ratelimit-remaining").is_some(), "the last sub-request's limits");
        let body: Value = r.json().await.unwrap();
        let answers = body["data"].as_array().unwrap_or_else(|| panic!("[{backend:?}] {body}"));
        let statuses: Vec<i64> = answers.iter().map(|a| a["status"].as_i64().unwrap()).collect();
        assert_eq!(statuses, vec![200, 201, 404, 404, 422, 200], "[{backend:?}] {body}");
        assert_eq!(answers[0]["body"]["data"][0]["id"], key_id.as_str(), "v2 by default: {body}");
        assert!(answers[0]["body"].get("meta").is_none());
        assert_eq!(answers[1]["body"]["data"]["api_key"]["name"], "from-batch");
        assert_eq!(answers[4]["body"]["error"]["details"]["field"], "colour");
        assert_eq!(answers[5]["body"]["status"], "success", "a v1 path answers in v1: {body}");
        assert_eq!(answers[5]["api_version"], "v1");

        // The created key is there; every routed sub-request was metered as a call of its own.
        let (_, list) = app.rest("GET", "/keys", Some(&key), None).await;
        assert_eq!(list["meta"]["pagination"]["total_count"], 2, "{list}");
        gantry::server::flush(&app.app).await;
        let usage = app.calls_by_operation(&s.token).await;
        let calls = |op: &str| usage.get(op).copied();
        assert_eq!(calls("POST /api/v2/keys"), Some(2), "[{backend:?}] {usage:?}");
        assert_eq!(calls("GET /api/v2/keys/{id}"), Some(1), "{usage:?}");
        assert_eq!(calls("GET /api/v1/keys/{id}"), Some(1), "{usage:?}");

        // Without a credential each sub-request is refused on its own.
        let r = app.http.post(app.url("/api/v2/integrations/batch")).json(&batch).send().await.unwrap();
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["data"][0]["status"], 401, "{body}");
        assert_eq!(body["data"][1]["status"], 401, "{body}");
        // Bounds and shape.
        let many: Vec<Value> = (0..51).map(|_| json!({ "method": "GET", "path": "/keys" })).collect();
        let (status, bad) =
            app.rest_at("POST", "/api/v2/integrations/batch", Some(&key), Some(json!({ "requests": many }))).await;
        assert_eq!((status, bad["error"]["details"]["field"].as_str()), (422, Some("requests")), "{bad}");
        assert!(bad.get("meta").is_none() && bad["id"].is_string(), "the batch answers in v2's envelope: {bad}");
        let (status, bad) = app
            .rest_at(
                "POST",
                "/api/v2/integrations/batch",
                Some(&key),
                Some(json!({ "requests": [{ "method": "TRACE", "path": "/keys" }] })),
            )
            .await;
        assert_eq!((status, bad["error"]["details"]["field"].as_str()), (422, Some("requests[0].method")), "{bad}");
        let (status, bad) = app
            .rest_at(
                "POST",
                "/api/v2/integrations/batch",
                Some(&key),
                Some(json!({ "requests": [{ "method": "GET", "path": "/api/v2/integrations/batch" }] })),
            )
            .await;
        assert_eq!(status, 200, "{bad}");
        assert_eq!(bad["data"][0]["status"], 404, "no batch inside a batch: {bad}");
    }
}

/// `/api/v2/analytics/realtime`: the organization's events as Server-Sent Events from the bus,
/// snake_case like every REST answer, ending when the credential is revoked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn realtime_analytics_stream_events_and_end_with_the_credential() {
    for backend in backends() {
        let app = TestApp::new(backend).await;
        let s = app.register("sse@example.com").await;
        let (key, key_id) = app.create_key(&s.token, &["*"]).await;
        let (status, _) = app.rest_at("GET", "/api/v2/analytics/realtime", None, None).await;
        assert_eq!(status, 401, "a stream needs a credential");
        let mut resp = app
            .http
            .get(app.url("/api/v2/analytics/realtime?types=key.created"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200, "[{backend:?}]");
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        assert_eq!(resp.headers()["x-api-version"], "v2");
        app.gql_ok(
            Some(&s.token),
            "mutation { createApiKey(input: {name: \"streamed\", scopes: [\"keys:read\"]}) { secret } }",
            json!({}),
        )
        .await;
        let mut seen = String::new();
        let data = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            loop {
                let chunk = resp.chunk().await.unwrap().expect("the stream stays open");
                seen.push_str(&String::from_utf8_lossy(&chunk));
                if let Some(line) = seen.lines().find(|l| l.starts_with("data:")) {
                    return serde_json::from_str::<Value>(line.trim_start_matches("data:").trim()).unwrap();
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("[{backend:?}] no event within 10 s: {seen}"));
        assert!(seen.contains("event: event"), "{seen}");
        assert_eq!(data["type"], "key.created", "{data}");
        assert_eq!(data["organization_id"], s.org_id.as_str(), "snake_case keys: {data}");
        assert_eq!(data["data"]["key"]["name"], "streamed", "{data}");
        assert!(data["data"]["key"]["maskedKey"].is_string(), "the payload as published, keys untouched: {data}");

        // Revoking the stream's key ends it.
        app.gql_ok(Some(&s.token), "mutation($id: ID!) { revokeApiKey(id: $id) { id } }", json!({ "id": key_id }))
            .await;
        let ended = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            loop {
                match resp.chunk().await {
                    Ok(Some(_)) => continue,
                    _ => return,
                }
            }
        })
        .await;
        assert!(ended.is_ok(), "[{backend:?}] the stream did not end after the key was revoked");
    }
}

/// Each version has its document: v2's with its own envelopes and routes, both listing the version
/// table; v1's answers document their deprecation headers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_version_documents_its_envelopes_routes_and_dates() {
    let app = TestApp::new(crate::common::Backend::SqliteMemory).await;
    let v2: Value = app.http.get(app.url("/api/v2/openapi.json")).send().await.unwrap().json().await.unwrap();
    let v1: Value = app.http.get(app.url("/api/v1/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert_eq!(v2["info"]["title"], "Gantry REST API v2");
    assert_eq!(
        v1["info"]["x-api-versions"][0],
        json!({ "version": "v1", "released": "2024-01-01", "deprecated": "2025-12-01", "sunset": "2026-12-31" })
    );
    for path in [
        "/api/v2/keys",
        "/api/v2/marketplace/search",
        "/api/v2/integrations/batch",
        "/api/v2/analytics/realtime",
        "/api/v2/webhooks/batch-subscribe",
    ] {
        assert!(v2["paths"][path].is_object(), "v2 documents {path}");
    }
    assert!(v1["paths"]["/api/v2/keys"].is_null() && v1["paths"]["/api/v1/marketplace/search"].is_null());
    let list = &v2["paths"]["/api/v2/keys"]["get"]["responses"]["200"];
    assert_eq!(
        list["content"]["application/json"]["schema"]["required"],
        json!(["id", "data", "has_more", "total_count"])
    );
    assert_eq!(v2["components"]["schemas"]["Error"]["required"], json!(["id", "error"]));
    assert!(v2["components"]["schemas"]["Meta"].is_null(), "no meta wrapper in v2");
    assert!(list["headers"]["Deprecation"].is_null());
    let v1_list = &v1["paths"]["/api/v1/keys"]["get"]["responses"]["200"]["headers"];
    assert_eq!(v1_list["Sunset"]["$ref"], "#/components/headers/Sunset", "{v1_list}");
    assert!(v1["components"]["headers"]["Deprecation"]["description"].as_str().unwrap().contains("2025-12-01"));
    let events = &v2["paths"]["/api/v2/analytics/realtime"]["get"]["responses"]["200"]["content"];
    assert!(events["text/event-stream"].is_object(), "{events}");
    let page = app.http.get(app.url("/api/v2/docs")).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200, "the reference page for v2");
}

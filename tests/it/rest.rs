use serde_json::json;

use crate::common::{TestApp, backends};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_v1_key_lifecycle_speaks_the_seed_envelope() {
    for backend in backends() {
        let app = TestApp::new(backend).await;
        let (status, reg) = app
            .rest(
                "POST",
                "/auth/register",
                None,
                Some(json!({ "email": "rest@example.com", "password": "correct horse battery", "name": "Rest" })),
            )
            .await;
        assert_eq!(status, 201, "[{backend:?}] {reg}");
        assert_eq!(reg["status"], "success");
        assert_eq!(reg["code"], 201);
        let token = reg["data"]["session"]["token"].as_str().unwrap().to_string();
        let refresh = reg["data"]["session"]["refresh_token"].as_str().unwrap().to_string();
        assert!(reg["meta"]["trace_id"].is_string() && reg["meta"]["timestamp"].is_string());
        assert!(reg["data"]["user"]["personal_organization_id"].is_string(), "snake_case keys: {reg}");

        let (status, login) = app
            .rest(
                "POST",
                "/auth/login",
                None,
                Some(json!({ "email": "rest@example.com", "password": "correct horse battery" })),
            )
            .await;
        assert_eq!(status, 200, "{login}");
        let (status, me) = app.rest("GET", "/auth/user", Some(&token), None).await;
        assert_eq!(status, 200);
        assert_eq!(me["data"]["user"]["email"], "rest@example.com");

        let (status, created) = app
            .rest("POST", "/keys", Some(&token), Some(json!({ "name": "legacy", "scopes": ["keys:read", "keys:write"], "environment": "LIVE", "allowed_ips": ["127.0.0.1"], "metadata": { "customerId": 7 } })))
            .await;
        assert_eq!(status, 201, "{created}");
        let secret = created["data"]["secret"].as_str().unwrap().to_string();
        let id = created["data"]["api_key"]["id"].as_str().unwrap().to_string();
        assert_eq!(created["data"]["api_key"]["allowed_ips"], json!(["127.0.0.1/32"]));
        assert_eq!(created["data"]["api_key"]["metadata"], json!({ "customerId": 7 }), "user data keeps its keys");

        let (status, list) = app.rest("GET", "/keys?limit=1", Some(&secret), None).await;
        assert_eq!(status, 200);
        assert_eq!(list["data"].as_array().unwrap().len(), 1);
        assert_eq!(list["meta"]["pagination"]["total_count"], 1);
        assert_eq!(list["meta"]["pagination"]["has_more"], false);
        let (status, got) = app.rest("GET", &format!("/keys/{id}"), Some(&secret), None).await;
        assert_eq!(
            (status, got["data"]["masked_key"].as_str().unwrap().ends_with(&secret[secret.len() - 4..])),
            (200, true)
        );

        let (status, updated) =
            app.rest("PUT", &format!("/keys/{id}"), Some(&token), Some(json!({ "name": "renamed" }))).await;
        assert_eq!((status, updated["data"]["name"].as_str()), (200, Some("renamed")));
        let (status, bad) = app.rest("PUT", &format!("/keys/{id}"), Some(&token), Some(json!({ "name": "" }))).await;
        assert_eq!(status, 422, "{bad}");
        assert_eq!(bad["status"], "error");
        assert_eq!(bad["error"]["type"], "validation_error");
        assert_eq!(bad["error"]["details"]["field"], "name");

        let (status, rolled) = app.rest("POST", &format!("/keys/{id}/roll"), Some(&token), None).await;
        assert_eq!(status, 200, "{rolled}");
        let rolled_secret = rolled["data"]["secret"].as_str().unwrap().to_string();
        let (status, _) = app.rest("GET", "/keys", Some(&secret), None).await;
        assert_eq!(status, 200, "after /roll the old secret works for the default 24 h");
        let (status, regen) = app.rest("POST", &format!("/keys/{id}/regenerate"), Some(&token), None).await;
        assert_eq!(status, 200, "{regen}");
        let (status, _) = app.rest("GET", "/keys", Some(&rolled_secret), None).await;
        assert_eq!(status, 401, "after /regenerate the previous secret stops at once");
        let fresh = regen["data"]["secret"].as_str().unwrap().to_string();

        // The key's calls are counted by the background flush; write them now.
        gantry::server::flush(&app.app).await;
        let (status, usage) = app.rest("GET", &format!("/keys/{id}/usage?days=7"), Some(&token), None).await;
        assert_eq!(status, 200);
        assert!(usage["data"]["total_requests"].as_i64().unwrap() >= 3, "{usage}");

        let (status, revoked) = app
            .rest("POST", &format!("/keys/{id}/revoke"), Some(&token), Some(json!({ "reason": "rotated out" })))
            .await;
        assert_eq!((status, revoked["data"]["status"].as_str()), (200, Some("REVOKED")));
        let (status, _) = app.rest("GET", "/keys", Some(&fresh), None).await;
        assert_eq!(status, 401);
        let (status, body) = app.rest("DELETE", &format!("/keys/{id}"), Some(&token), None).await;
        assert_eq!((status, body), (204, serde_json::Value::Null));
        let (status, _) = app.rest("GET", &format!("/keys/{id}"), Some(&token), None).await;
        assert_eq!(status, 404);

        let (status, refreshed) =
            app.rest("POST", "/auth/refresh", None, Some(json!({ "refresh_token": refresh }))).await;
        assert_eq!(status, 200);
        let new_token = refreshed["data"]["session"]["token"].as_str().unwrap().to_string();
        let (status, _) = app.rest("POST", "/auth/logout", Some(&token), None).await;
        assert_eq!(status, 401, "refreshing revoked the old session");
        let (status, _) = app.rest("POST", "/auth/logout", Some(&new_token), None).await;
        assert_eq!(status, 204);
        let (status, _) = app.rest("GET", "/auth/user", Some(&new_token), None).await;
        assert_eq!(status, 401);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_errors_use_the_envelope_and_statuses() {
    for backend in backends() {
        let app = TestApp::new(backend).await;
        let s = app.register("dev@example.com").await;
        let (status, body) = app.rest("GET", "/keys", None, None).await;
        assert_eq!(
            (status, body["error"]["type"].as_str()),
            (401, Some("authentication_error")),
            "[{backend:?}] {body}"
        );
        let (status, body) = app.rest("GET", "/nope", Some(&s.token), None).await;
        assert_eq!((status, body["status"].as_str()), (404, Some("error")));
        let (status, _) = app.rest("PATCH", "/keys", Some(&s.token), None).await;
        assert_eq!(status, 405);
        let r = app
            .http
            .post(app.url("/api/v1/keys"))
            .bearer_auth(&s.token)
            .header("content-type", "application/json")
            .body("{oops")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 400);
        let r = app
            .http
            .post(app.url("/api/v1/keys"))
            .bearer_auth(&s.token)
            .header("content-type", "text/plain")
            .body("x")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 415);
        let (status, body) = app.rest("POST", "/keys", Some(&s.token), Some(json!({ "scopes": ["*"] }))).await;
        assert_eq!(status, 422, "a missing field is a validation error: {body}");
        let (status, body) = app
            .rest(
                "POST",
                "/auth/register",
                None,
                Some(json!({ "email": "dev@example.com", "password": "correct horse battery" })),
            )
            .await;
        assert_eq!((status, body["error"]["type"].as_str()), (409, Some("conflict")));
        let (reader_secret, _) = app.create_key(&s.token, &["keys:read"]).await;
        let (status, body) = app
            .rest("POST", "/keys", Some(&reader_secret), Some(json!({ "name": "x", "scopes": ["keys:read"] })))
            .await;
        assert_eq!((status, body["error"]["type"].as_str()), (403, Some("permission_error")));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_lists_every_route_typed() {
    let app = TestApp::new(crate::common::Backend::SqliteMemory).await;
    let r = app.http.get(app.url("/api/v1/openapi.json")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let doc: serde_json::Value = r.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    for route in gantry::rest::routes::table() {
        let op = &doc["paths"][format!("/api/v1{}", route.path)][route.method.as_str().to_lowercase()];
        assert!(op.is_object(), "{} {} missing", route.method, route.path);
        assert!(op["responses"][route.status.to_string()].is_object());
    }
    assert!(doc["paths"]["/api/v1/keys/{id}"]["get"]["parameters"][0]["name"] == "id");

    // Typed from the schema: query parameters, bodies, enums, defaults, security per route.
    let list = &doc["paths"]["/api/v1/keys"]["get"];
    let param = |op: &serde_json::Value, name: &str| {
        op["parameters"].as_array().unwrap().iter().find(|p| p["name"] == name).cloned().unwrap_or_default()
    };
    assert_eq!(param(list, "limit")["in"], "query");
    assert_eq!(param(list, "limit")["schema"]["type"], "integer");
    assert_eq!(param(list, "cursor")["in"], "query");
    assert_eq!(param(list, "include_revoked")["schema"]["default"], false);
    let env = param(list, "environment");
    let env_ref = env["schema"]["anyOf"][0]["$ref"].as_str().unwrap_or_else(|| panic!("{env}"));
    let env_name = env_ref.rsplit('/').next().unwrap();
    assert_eq!(doc["components"]["schemas"][env_name]["enum"], json!(["LIVE", "TEST"]));
    let create = &doc["paths"]["/api/v1/keys"]["post"];
    assert_eq!(create["requestBody"]["required"], true);
    let input = &doc["components"]["schemas"]["CreateApiKeyInput"];
    assert!(input["required"].as_array().unwrap().contains(&json!("name")), "{input}");
    assert_eq!(input["properties"]["allowed_ips"]["type"], "array", "{input}");
    assert_eq!(input["properties"]["allowed_ips"]["default"], json!([]), "{input}");
    assert_eq!(input["properties"]["description"]["type"], json!(["string", "null"]), "{input}");
    assert_eq!(input["additionalProperties"], false);
    // Output objects are components, shared by the routes selecting the same fields.
    let component = |r: &serde_json::Value| {
        let r = if r["allOf"].is_array() { &r["allOf"][0] } else { r };
        let name =
            r["$ref"].as_str().unwrap_or_else(|| panic!("not a $ref: {r}")).rsplit('/').next().unwrap().to_string();
        doc["components"]["schemas"][name].clone()
    };
    let created = component(&create["responses"]["201"]["content"]["application/json"]["schema"]["properties"]["data"]);
    assert_eq!(created["properties"]["secret"]["type"], "string", "{created}");
    let api_key = component(&created["properties"]["api_key"]);
    assert_eq!(api_key["properties"]["created_at"]["format"], "date-time", "{api_key}");
    assert!(api_key["required"].as_array().unwrap().contains(&json!("scopes")), "{api_key}");
    for status in ["401", "403", "409", "422", "429"] {
        assert!(create["responses"][status]["$ref"].is_string(), "POST /keys documents {status}");
    }
    assert!(doc["components"]["responses"]["TooManyRequests"]["headers"]["Retry-After"].is_object());
    assert_eq!(create["security"], json!([{ "bearer": [] }]));
    assert_eq!(doc["paths"]["/api/v1/auth/login"]["post"]["security"], json!([]));
    assert_eq!(doc["paths"]["/api/v1/auth/register"]["post"]["security"], json!([]));
    assert_eq!(doc["paths"]["/api/v1/apps"]["get"]["security"], json!([{}, { "bearer": [] }]));
    let listed = &list["responses"]["200"]["content"]["application/json"]["schema"];
    assert_eq!(listed["properties"]["data"]["type"], "array", "a list's data is its nodes");
    assert_eq!(listed["properties"]["meta"]["$ref"], "#/components/schemas/ListMeta");
    let kinds = &doc["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["type"]["enum"];
    assert!(kinds.as_array().unwrap().contains(&json!("rate_limit_exceeded")), "error types are documented");
    // The refresh route's body field is its REST name.
    let refresh = &doc["paths"]["/api/v1/auth/refresh"]["post"]["requestBody"]["content"]["application/json"]["schema"];
    assert_eq!(refresh["required"], json!(["refresh_token"]));

    // The same document as YAML and under /docs.
    let yaml = app.http.get(app.url("/api/v1/openapi.yaml")).send().await.unwrap();
    assert_eq!(yaml.headers()["content-type"], "application/yaml");
    let yaml: serde_json::Value = serde_norway::from_str(&yaml.text().await.unwrap()).unwrap();
    assert_eq!(yaml, doc);
    let again: serde_json::Value =
        app.http.get(app.url("/api/v1/docs/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert_eq!(again, doc);
}

/// REST speaks REST: fields named as the caller wrote them and where, unknown body fields refused,
/// the envelope's `id` and `rate_limit` on errors too, no `next_cursor` at the end, user data as
/// written, enum values spelled as in GraphQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_errors_name_rest_fields_and_envelopes_are_complete() {
    for backend in backends() {
        let app = TestApp::new(backend).await;
        let s = app.register("fields@example.com").await;
        let field = |b: &serde_json::Value| {
            (
                b["error"]["details"]["field"].as_str().map(str::to_string),
                b["error"]["details"]["location"].as_str().map(str::to_string),
            )
        };
        let named = |f: &str, l: &str| (Some(f.to_string()), Some(l.to_string()));

        // A query parameter is named as written, in the query.
        let (status, body) = app.rest("GET", "/keys?limit=-1", Some(&s.token), None).await;
        assert_eq!((status, field(&body)), (422, named("limit", "query")), "[{backend:?}] {body}");
        let (status, body) = app.rest("GET", "/keys?limit=ten", Some(&s.token), None).await;
        assert_eq!((status, field(&body)), (422, named("limit", "query")), "{body}");
        let (status, body) = app.rest("GET", "/keys?environment=staging", Some(&s.token), None).await;
        assert_eq!((status, field(&body)), (422, named("environment", "query")), "{body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("LIVE, TEST"), "{body}");
        // Every error envelope has an id and, once a limit applied, the rate limit figures.
        assert!(body["id"].as_str().unwrap().starts_with("req_"), "{body}");
        assert!(body["meta"]["rate_limit"]["limit"].as_u64().unwrap() > 0, "{body}");
        assert!(body["meta"]["rate_limit"]["remaining"].is_u64(), "{body}");

        // An unknown body field is refused by its REST name; nothing is created.
        let (status, body) = app
            .rest(
                "POST",
                "/keys",
                Some(&s.token),
                Some(json!({ "name": "x", "scopes": ["keys:read"], "colour": "red" })),
            )
            .await;
        assert_eq!((status, field(&body)), (422, named("colour", "body")), "{body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("allowed_ips"), "lists the fields: {body}");
        // camelCase is not the REST spelling.
        let (status, body) = app
            .rest(
                "POST",
                "/keys",
                Some(&s.token),
                Some(json!({ "name": "x", "scopes": ["keys:read"], "allowedIps": [] })),
            )
            .await;
        assert_eq!((status, field(&body)), (422, named("allowedIps", "body")), "{body}");
        let (status, body) =
            app.rest("POST", "/keys", Some(&s.token), Some(json!({ "name": 7, "scopes": ["keys:read"] }))).await;
        assert_eq!((status, field(&body)), (422, named("name", "body")), "{body}");
        let (status, body) = app.rest("POST", "/keys", Some(&s.token), Some(json!({ "scopes": ["keys:read"] }))).await;
        assert_eq!((status, field(&body)), (422, named("name", "body")), "{body}");
        assert_eq!(body["error"]["message"], "name: is required");
        // A route whose variables are body fields refuses others too.
        let (status, body) =
            app.rest("POST", "/auth/refresh", None, Some(json!({ "refresh_token": "x", "token": "y" }))).await;
        assert_eq!((status, field(&body)), (422, named("token", "body")), "{body}");
        // A field a resolver refuses is named as in the body.
        let (status, body) = app.rest("POST", "/keys", Some(&s.token), Some(json!({ "name": "", "scopes": [] }))).await;
        assert_eq!((status, field(&body)), (422, named("name", "body")), "{body}");
        let (_, list) = app.rest("GET", "/keys", Some(&s.token), None).await;
        assert_eq!(list["meta"]["pagination"]["total_count"], 0, "no refused request wrote anything: {list}");

        // A bad organization header is named as the header.
        let r = app
            .http
            .get(app.url("/api/v1/keys"))
            .bearer_auth(&s.token)
            .header("x-organization-id", "acme")
            .send()
            .await
            .unwrap();
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(field(&body), named("X-Organization-Id", "header"), "{body}");

        // User data keeps its keys both ways; enum values are the GraphQL spelling.
        let meta = json!({ "customerId": 7, "nested_key": { "deepKey": true } });
        let (status, created) = app
            .rest(
                "POST",
                "/keys",
                Some(&s.token),
                Some(json!({ "name": "a", "scopes": ["keys:read"], "environment": "test", "metadata": meta })),
            )
            .await;
        assert_eq!(status, 201, "{created}");
        assert_eq!(created["data"]["api_key"]["metadata"], meta);
        assert_eq!(created["data"]["api_key"]["environment"], "TEST");
        app.rest("POST", "/keys", Some(&s.token), Some(json!({ "name": "b", "scopes": ["keys:read"] }))).await;

        // Pages: a cursor while there is more, none at the end.
        let (status, page) = app.rest("GET", "/keys?limit=1", Some(&s.token), None).await;
        assert_eq!(status, 200);
        assert_eq!(page["meta"]["pagination"]["has_more"], true, "{page}");
        let cursor = page["meta"]["pagination"]["next_cursor"].as_str().unwrap().to_string();
        let (_, last) = app.rest("GET", &format!("/keys?limit=1&cursor={cursor}"), Some(&s.token), None).await;
        assert_eq!(last["data"].as_array().unwrap().len(), 1);
        assert_eq!(last["meta"]["pagination"]["has_more"], false, "{last}");
        assert!(last["meta"]["pagination"].get("next_cursor").is_none(), "no cursor at the end: {last}");
        assert!(last["meta"]["rate_limit"]["limit"].is_u64(), "{last}");

        // A route with a default: `regenerate` ends the old secret now, `roll` after the grace.
        let id = created["data"]["api_key"]["id"].as_str().unwrap();
        let (status, body) =
            app.rest("POST", &format!("/keys/{id}/roll"), Some(&s.token), Some(json!({ "grace": 5 }))).await;
        assert_eq!((status, field(&body)), (422, named("grace", "body")), "the REST name only: {body}");
        let (status, body) = app
            .rest("POST", &format!("/keys/{id}/roll"), Some(&s.token), Some(json!({ "expire_old_in_seconds": 60 })))
            .await;
        assert_eq!(status, 200, "{body}");
        assert!(body["data"]["previous_secret_expires_at"].is_string(), "{body}");
    }
}

/// A client generated from the document works: openapi-python-client (from PyPI) generates a
/// Python client, and a script runs the key lifecycle with it against this server. Required in CI;
/// elsewhere it runs when the generator is installed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_client_generated_from_the_document_runs_the_key_lifecycle() {
    let generator = std::env::var("OPENAPI_PYTHON_CLIENT").unwrap_or_else(|_| "openapi-python-client".into());
    let installed = std::process::Command::new(&generator).arg("--version").output().is_ok_and(|o| o.status.success());
    if !installed {
        assert!(
            !crate::common::in_ci(),
            "CI=true but {generator} is not installed (pip install openapi-python-client)"
        );
        eprintln!("note: {generator} missing; generated-client test not run");
        return;
    }
    let app = TestApp::new(crate::common::Backend::SqliteMemory).await;
    let doc = app.http.get(app.url("/api/v1/openapi.json")).send().await.unwrap().text().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let doc_path = dir.path().join("openapi.json");
    std::fs::write(&doc_path, doc).unwrap();
    let out = tokio::process::Command::new(&generator)
        .arg("generate")
        .arg("--path")
        .arg(&doc_path)
        .arg("--output-path")
        .arg(dir.path().join("gantry_client"))
        .args(["--meta", "none"])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "generation failed:\n{stdout}\n{stderr}");
    assert!(!stdout.contains("WARNING") && !stderr.contains("WARNING"), "every route generates:\n{stdout}\n{stderr}");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/key_lifecycle.py");
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(120),
        tokio::process::Command::new("python3")
            .arg(script)
            .env("CLIENT_DIR", dir.path())
            .env("GANTRY_URL", format!("http://{}", app.addr))
            .output(),
    )
    .await
    .expect("the script finishes within 120 s")
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the generated client failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("python-client: key lifecycle ok"), "{stdout}");
}

/// Schemathesis (from PyPI) generates requests for every operation of the document — its examples'
/// boundaries and random values — and checks each answer: no server error, a documented status, the
/// documented content type and a body matching the documented schema. Required in CI; elsewhere it
/// runs when `st` is installed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_or_answer_contradicting_the_document() {
    let st = std::env::var("SCHEMATHESIS").unwrap_or_else(|_| "st".into());
    let installed = std::process::Command::new(&st).arg("--version").output().is_ok_and(|o| o.status.success());
    if !installed {
        assert!(!crate::common::in_ci(), "CI=true but schemathesis ({st}) is not installed (pip install schemathesis)");
        eprintln!("note: schemathesis missing; property test not run");
        return;
    }
    // Both documents, each on a server of its own; v2's event stream never ends by itself and is
    // tested in versions.rs.
    for (version, excluded) in [("v1", None), ("v2", Some("/api/v2/analytics/realtime"))] {
        let app = TestApp::new(crate::common::Backend::SqliteMemory).await;
        // The first account administers the platform: it lifts its own limits so that answers are
        // about the input, not the rate limit.
        let admin = app.register("st@example.com").await;
        let enterprise = "pln_0000000000000000enterprise";
        app.gql_ok(
            Some(&admin.token),
            "mutation($id: ID!) { updatePlan(id: $id, input: {perSecond: null, perMinute: null, perHour: null, perDay: null, burst: null, monthlyQuota: null, concurrency: null, queryCostBucket: 100000000, queryCostRestoreRate: 100000000}) { slug } }",
            json!({ "id": enterprise }),
        )
        .await;
        app.gql_ok(
            Some(&admin.token),
            "mutation($o: ID!, $p: ID!) { setOrganizationPlan(organizationId: $o, planId: $p) { slug } }",
            json!({ "o": admin.org_id, "p": enterprise }),
        )
        .await;
        let (key, _) = app.create_key(&admin.token, &["*"]).await;
        let url = format!("http://{}/api/{version}/openapi.json", app.addr);
        let mut cmd = tokio::process::Command::new(&st);
        cmd.args(["run", &url, "--header", &format!("Authorization: Bearer {key}")])
            .args([
                "--checks",
                "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
            ])
            .args(["--phases", "coverage,fuzzing", "--max-examples", "5", "--seed", "7", "--request-timeout", "20"])
            .env("NO_COLOR", "1");
        if let Some(path) = excluded {
            cmd.args(["--exclude-path", path]);
        }
        // Time passes while it runs, a minute per tenth of a second: the credentials it sends
        // on purpose (missing, malformed) are charged to the address like anyone's, and under a
        // standing clock their per-minute window would never refill and block the rest of the run.
        let clock = app.clock.clone();
        let ticking = tokio::spawn(async move {
            let mut every = tokio::time::interval(std::time::Duration::from_millis(100));
            loop {
                every.tick().await;
                clock.advance_ms(60_000);
            }
        });
        let out = tokio::time::timeout(std::time::Duration::from_secs(600), cmd.output())
            .await
            .expect("schemathesis finishes within 600 s")
            .unwrap();
        ticking.abort();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        // What a call answers after the run (in a failure's message).
        let after =
            app.http.get(format!("http://{}/api/{version}/keys", app.addr)).bearer_auth(&key).send().await.unwrap();
        let after = format!("after the run GET /keys answered {}: {}", after.status(), after.text().await.unwrap());
        let summary =
            stdout.lines().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
        assert!(out.status.success(), "schemathesis found problems in {version}:\n{stdout}\n{stderr}");
        // Every operation of the document was exercised, and cases were generated and passed.
        let document = app.http.get(&url).send().await.unwrap().json::<serde_json::Value>().await.unwrap();
        let paths = document["paths"].as_object().unwrap();
        let operations = |p: &serde_json::Value| p.as_object().map_or(0, |m| m.len());
        let documented: usize = paths.values().map(operations).sum();
        let skipped = excluded.map_or(0, |path| operations(&paths[path]));
        assert!(skipped <= 1, "only the event stream is left out");
        let tested = documented - skipped;
        assert!(stdout.contains(&format!("Tested: {tested}")), "not every {version} operation was tested:\n{summary}");
        let passed = stdout
            .lines()
            .find_map(|l| l.trim().strip_suffix(" passed").and_then(|l| l.rsplit(' ').next()))
            .and_then(|n| n.parse::<usize>().ok());
        assert!(passed.is_some_and(|n| n >= tested), "too few {version} cases passed:\n{summary}");
        assert!(!stdout.contains("Rate limited"), "limits got in the way of {version}:\n{summary}\n{after}");
    }
}

/// The seeds' other spellings and routes: `/api-keys`, `/webhook-events/{type}`, `/api/usage/*`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_spellings_are_rows_over_the_same_resolvers() {
    for backend in backends() {
        let app = TestApp::new(backend).await;
        let s = app.register("seed@example.com").await;
        let (status, created) = app
            .rest("POST", "/api-keys", Some(&s.token), Some(json!({ "name": "spelled", "scopes": ["keys:read"] })))
            .await;
        assert_eq!(status, 201, "[{backend:?}] {created}");
        let id = created["data"]["api_key"]["id"].as_str().unwrap().to_string();
        let (status, got) = app.rest("GET", &format!("/keys/{id}"), Some(&s.token), None).await;
        assert_eq!((status, got["data"]["name"].as_str()), (200, Some("spelled")), "the same key under /keys");
        let (status, _) = app.rest("DELETE", &format!("/api-keys/{id}"), Some(&s.token), None).await;
        assert_eq!(status, 204);

        let (status, one) = app.rest("GET", "/webhook-events/key.created", Some(&s.token), None).await;
        assert_eq!((status, one["data"]["name"].as_str()), (200, Some("key.created")), "{one}");
        assert!(one["data"]["schema"].is_object(), "{one}");
        let (status, none) = app.rest("GET", "/webhook-events/no.such", Some(&s.token), None).await;
        assert_eq!((status, none["error"]["type"].as_str()), (404, Some("not_found")), "{none}");

        let (status, summary) = app.rest("GET", "/api/usage?period=last_7_days", Some(&s.token), None).await;
        assert_eq!(status, 200, "{summary}");
        assert!(summary["data"]["stats"]["calls"].is_i64(), "{summary}");
        let (status, by_key) = app.rest("GET", "/api/usage/by-key", Some(&s.token), None).await;
        assert_eq!((status, by_key["data"].is_array()), (200, true), "{by_key}");
        let (status, by_endpoint) = app.rest("GET", "/api/usage/by-endpoint", Some(&s.token), None).await;
        assert_eq!((status, by_endpoint["data"].is_array()), (200, true), "{by_endpoint}");
        let (status, missing) = app.rest("GET", "/api/usage/breakdown", Some(&s.token), None).await;
        assert_eq!((status, missing["error"]["details"]["field"].as_str()), (422, Some("start")), "{missing}");
        let (status, series) = app
            .rest(
                "GET",
                "/api/usage/breakdown?start=2026-01-01T00:00:00Z&end=2026-01-03T00:00:00Z&granularity=day",
                Some(&s.token),
                None,
            )
            .await;
        assert_eq!(status, 200, "{series}");
        assert!(series["data"].is_array(), "{series}");

        // Request logs: the calls above, one by one, newest first, from the usage records.
        gantry::server::flush(&app.app).await;
        let (status, logs) = app.rest("GET", "/api/logs?limit=3", Some(&s.token), None).await;
        assert_eq!(status, 200, "{logs}");
        let rows = logs["data"].as_array().unwrap();
        assert_eq!(rows.len(), 3, "{logs}");
        assert_eq!(rows[0]["operation"], "GET /api/v1/api/usage/breakdown", "newest first: {logs}");
        assert_eq!(rows[0]["source"], "rest");
        assert!(rows[0]["occurred_at"].as_str().unwrap() >= rows[2]["occurred_at"].as_str().unwrap(), "{logs}");
        let (_, only_404) = app.rest("GET", "/api/logs?status=404", Some(&s.token), None).await;
        let ops: Vec<&str> =
            only_404["data"].as_array().unwrap().iter().map(|r| r["operation"].as_str().unwrap()).collect();
        assert_eq!(ops, vec!["GET /api/v1/webhook-events/{type}"], "{only_404}");
        let cursor = rows[0]["occurred_at"].as_str().unwrap();
        let (_, older) = app.rest("GET", &format!("/api/logs?limit=100&before={cursor}"), Some(&s.token), None).await;
        assert!(
            older["data"].as_array().unwrap().iter().all(|r| r["occurred_at"].as_str().unwrap() < cursor),
            "{older}"
        );
        // Paging by time: two calls a second apart, one per page.
        app.clock.advance_ms(1000);
        app.rest("GET", "/keys", Some(&s.token), None).await;
        app.clock.advance_ms(1000);
        app.rest("GET", "/api/usage/by-key", Some(&s.token), None).await;
        gantry::server::flush(&app.app).await;
        let (_, first) = app.rest("GET", "/api/logs?limit=1", Some(&s.token), None).await;
        assert_eq!(first["data"][0]["operation"], "GET /api/v1/api/usage/by-key", "{first}");
        let cursor = first["data"][0]["occurred_at"].as_str().unwrap();
        let (_, next) = app.rest("GET", &format!("/api/logs?limit=1&before={cursor}"), Some(&s.token), None).await;
        assert_eq!(next["data"][0]["operation"], "GET /api/v1/keys", "the page before the cursor: {next}");
        assert!(next["data"][0]["occurred_at"].as_str().unwrap() < cursor, "{next}");
        // Paging by cursor: three calls in one millisecond, one per page, none skipped or repeated.
        app.clock.advance_ms(1000);
        for path in ["/keys", "/api/usage/by-key", "/api/usage/by-endpoint"] {
            app.rest("GET", path, Some(&s.token), None).await;
        }
        gantry::server::flush(&app.app).await;
        let mut seen = Vec::new();
        let mut after = String::new();
        for _ in 0..3 {
            let path = if after.is_empty() {
                "/api/logs?limit=1".to_string()
            } else {
                format!("/api/logs?limit=1&cursor={after}")
            };
            let (status, page) = app.rest("GET", &path, Some(&s.token), None).await;
            assert_eq!(status, 200, "{page}");
            seen.push(page["data"][0]["operation"].as_str().unwrap().to_string());
            after = page["data"][0]["cursor"].as_str().unwrap().to_string();
        }
        assert_eq!(
            seen,
            ["GET /api/v1/api/usage/by-endpoint", "GET /api/v1/api/usage/by-key", "GET /api/v1/keys"],
            "[{backend:?}] same-millisecond calls page in order"
        );
        let (status, bad) = app.rest("GET", "/api/logs?cursor=nonsense", Some(&s.token), None).await;
        assert_eq!((status, bad["error"]["details"]["field"].as_str()), (422, Some("cursor")), "{bad}");
        let (status, bad) = app.rest("GET", "/api/logs?limit=500", Some(&s.token), None).await;
        assert_eq!((status, bad["error"]["details"]["field"].as_str()), (422, Some("limit")), "{bad}");
    }
}

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
async fn the_openapi_document_lists_every_route() {
    let app = TestApp::new(crate::common::Backend::SqliteMemory).await;
    let r = app.http.get(app.url("/api/v1/openapi.json")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let doc: serde_json::Value = r.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.0.3");
    for route in gantry::rest::routes::table() {
        let op = &doc["paths"][format!("/api/v1{}", route.path)][route.method.as_str().to_lowercase()];
        assert!(op.is_object(), "{} {} missing", route.method, route.path);
        assert!(op["responses"][route.status.to_string()].is_object());
    }
    assert!(doc["paths"]["/api/v1/keys/{id}"]["get"]["parameters"][0]["name"] == "id");
}

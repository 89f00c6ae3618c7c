//! Feature flags: managed by platform administrators, checked per organization (overrides, the
//! default, a stable percentage rollout), from memory on every node, over GraphQL and REST.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::common::{Backend, TestApp, backends, code};

const CREATE: &str =
    "mutation($i: CreateFeatureFlagInput!) { createFeatureFlag(input: $i) { id key enabled rolloutPercentage } }";
const CHECK: &str = "query($k: String!, $o: ID) { isFeatureEnabled(key: $k, organizationId: $o) }";

async fn check(t: &TestApp, token: &str, key: &str, org: Option<&str>) -> Value {
    t.gql(Some(token), CHECK, json!({ "k": key, "o": org })).await
}

async fn is_on(t: &TestApp, token: &str, key: &str) -> bool {
    let r = check(t, token, key, None).await;
    r["data"]["isFeatureEnabled"].as_bool().unwrap_or_else(|| panic!("{r}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn administrators_manage_flags_and_each_organization_gets_its_answer() {
    for backend in backends() {
        let t = TestApp::new(backend).await;
        let admin = t.register("admin@example.com").await;
        t.lift_starter_limits(&admin.token).await;
        let dev = t.register("dev@example.com").await;
        let other = t.register("other@example.com").await;

        // Only platform administrators manage and list flags.
        let input = json!({ "i": { "key": "new-dashboard", "description": "The new dashboard" } });
        assert_eq!(code(&t.gql(Some(&dev.token), CREATE, input.clone()).await), "FORBIDDEN");
        assert_eq!(code(&t.gql(Some(&dev.token), "{ featureFlags { key } }", json!({})).await), "FORBIDDEN");
        let r = t.gql_ok(Some(&admin.token), CREATE, input.clone()).await;
        let id = r["createFeatureFlag"]["id"].as_str().unwrap().to_string();
        assert_eq!(r["createFeatureFlag"]["enabled"], false, "off unless said otherwise");
        assert_eq!(code(&t.gql(Some(&admin.token), CREATE, input).await), "CONFLICT");
        for (bad, field) in [
            (json!({ "key": "Not A Key" }), "key"),
            (json!({ "key": "ok", "rolloutPercentage": 101 }), "rolloutPercentage"),
            (json!({ "key": "ok", "metadata": [1] }), "metadata"),
        ] {
            let r = t.gql(Some(&admin.token), CREATE, json!({ "i": bad })).await;
            assert_eq!(
                (code(&r), r["errors"][0]["extensions"]["field"].as_str()),
                ("BAD_USER_INPUT", Some(field)),
                "{r}"
            );
        }

        // Off; toggled on for everyone; a 0 % rollout takes it away; an override gives it back.
        assert!(!is_on(&t, &dev.token, "new-dashboard").await);
        let r = t
            .gql_ok(
                Some(&admin.token),
                "mutation($id: ID!) { toggleFeatureFlag(id: $id) { enabled } }",
                json!({ "id": id }),
            )
            .await;
        assert_eq!(r["toggleFeatureFlag"]["enabled"], true);
        assert!(is_on(&t, &dev.token, "new-dashboard").await && is_on(&t, &other.token, "new-dashboard").await);
        t.gql_ok(
            Some(&admin.token),
            "mutation($id: ID!) { updateFeatureFlag(id: $id, input: {rolloutPercentage: 0}) { rolloutPercentage } }",
            json!({ "id": id }),
        )
        .await;
        assert!(!is_on(&t, &dev.token, "new-dashboard").await);
        let set = "mutation($id: ID!, $o: ID!, $e: Boolean) { setFeatureOverride(id: $id, organizationId: $o, enabled: $e) { overrides { organizationId enabled } } }";
        let r = t.gql_ok(Some(&admin.token), set, json!({ "id": id, "o": dev.org_id, "e": true })).await;
        assert_eq!(r["setFeatureOverride"]["overrides"], json!([{ "organizationId": dev.org_id, "enabled": true }]));
        assert!(is_on(&t, &dev.token, "new-dashboard").await, "the override wins over the rollout");
        assert!(!is_on(&t, &other.token, "new-dashboard").await);
        let r = t.gql_ok(Some(&dev.token), "{ enabledFeatures }", json!({})).await;
        assert_eq!(r["enabledFeatures"], json!(["new-dashboard"]));

        // Another organization's answer is for platform callers (and service keys) only.
        assert_eq!(code(&check(&t, &dev.token, "new-dashboard", Some(&other.org_id)).await), "FORBIDDEN");
        let r = check(&t, &admin.token, "new-dashboard", Some(&dev.org_id)).await;
        assert_eq!(r["data"]["isFeatureEnabled"], true, "{r}");
        let (service_key, _) = t.create_key(&admin.token, &["features:read"]).await;
        let r = check(&t, &service_key, "new-dashboard", Some(&other.org_id)).await;
        assert_eq!(r["data"]["isFeatureEnabled"], false, "{r}");
        assert_eq!(
            code(&check(&t, &service_key, "new-dashboard", Some("org_00000000000000000000000000")).await),
            "NOT_FOUND"
        );
        // An unknown flag is off, not an error.
        assert!(!is_on(&t, &dev.token, "no-such-flag").await);

        // REST: the seed's routes over the same resolvers.
        let (status, body) = t.rest("GET", "/features/check/new-dashboard", Some(&dev.token), None).await;
        assert_eq!((status, body["data"].clone()), (200, json!(true)), "{body}");
        let (status, body) = t
            .rest("POST", "/features", Some(&admin.token), Some(json!({ "key": "beta-export", "enabled": true })))
            .await;
        assert_eq!(status, 201, "{body}");
        let beta = body["data"]["id"].as_str().unwrap().to_string();
        let (status, body) = t
            .rest("PATCH", &format!("/features/{beta}"), Some(&admin.token), Some(json!({ "rollout_percentage": 100 })))
            .await;
        assert_eq!((status, body["data"]["rollout_percentage"].clone()), (200, json!(100)), "{body}");
        let (status, body) = t.rest("POST", &format!("/features/{beta}/toggle"), Some(&admin.token), None).await;
        assert_eq!((status, body["data"]["enabled"].clone()), (200, json!(false)), "{body}");
        let (status, body) = t
            .rest(
                "PUT",
                &format!("/features/{beta}/overrides/{}", other.org_id),
                Some(&admin.token),
                Some(json!({ "enabled": true })),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let (_, body) = t.rest("GET", "/features/check/beta-export", Some(&other.token), None).await;
        assert_eq!(body["data"], true);
        let (status, body) = t.rest("GET", "/features", Some(&admin.token), None).await;
        assert_eq!(status, 200);
        let keys: Vec<&str> = body["data"].as_array().unwrap().iter().map(|f| f["key"].as_str().unwrap()).collect();
        assert_eq!(keys, ["beta-export", "new-dashboard"]);
        let (status, _) = t.rest("GET", "/features", Some(&dev.token), None).await;
        assert_eq!(status, 403);
        let (status, _) = t.rest("DELETE", &format!("/features/{beta}"), Some(&admin.token), None).await;
        assert_eq!(status, 204);
        let (_, body) = t.rest("GET", "/features/check/beta-export", Some(&other.token), None).await;
        assert_eq!(body["data"], false, "a deleted flag is off");

        // Every change is an event and an audit entry of the administrator's organization.
        let r = t.gql_ok(Some(&admin.token), "{ events(first: 50, types: [\"feature.*\"]) { edges { node { type } } } auditLog(first: 50) { edges { node { action } } } }", json!({})).await;
        let types: Vec<&str> =
            r["events"]["edges"].as_array().unwrap().iter().map(|e| e["node"]["type"].as_str().unwrap()).collect();
        assert!(
            types.contains(&"feature.created")
                && types.contains(&"feature.updated")
                && types.contains(&"feature.deleted"),
            "{types:?}"
        );
        let actions: Vec<&str> =
            r["auditLog"]["edges"].as_array().unwrap().iter().map(|e| e["node"]["action"].as_str().unwrap()).collect();
        for a in ["feature.created", "feature.toggled", "feature.updated", "feature.override_set", "feature.deleted"] {
            assert!(actions.contains(&a), "[{backend:?}] {a} missing from {actions:?}");
        }
    }
}

fn principal_of(org: &str) -> gantry::auth::Principal {
    gantry::auth::Principal {
        actor: gantry::auth::Actor::ApiKey {
            key_id: "key_01jdxq3z8m0000000000000000".parse().unwrap(),
            created_by: None,
        },
        org_id: org.parse().unwrap(),
        role: None,
        scopes: Arc::new(vec!["*".into()]),
        is_platform: false,
        ip: None,
        rate_override: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_read_no_database_and_a_change_on_one_node_reaches_every_node() {
    for backend in backends() {
        let t = TestApp::new(backend).await;
        let admin = t.register("admin@example.com").await;
        t.lift_starter_limits(&admin.token).await;
        let dev = t.register("dev@example.com").await;
        let r = t.gql_ok(Some(&admin.token), CREATE, json!({ "i": { "key": "fast", "enabled": false } })).await;
        let id = r["createFeatureFlag"]["id"].as_str().unwrap().to_string();

        let before = t.app.features.loads();
        for _ in 0..50 {
            assert!(!is_on(&t, &dev.token, "fast").await);
        }
        assert_eq!(t.app.features.loads(), before + 1, "[{backend:?}] fifty checks, one read");

        // Another node (PostgreSQL + Redis: the same database and bus) answers from its own copy,
        // and sees a change made on this one.
        if backend != Backend::PostgresRedis {
            continue;
        }
        let b = t.second_node().await;
        let p = principal_of(&dev.org_id);
        assert!(!gantry::features::service::is_enabled(&b, &p, "fast", None).await.unwrap());
        assert_eq!(b.features.loads(), 1);
        t.gql_ok(
            Some(&admin.token),
            "mutation($id: ID!) { toggleFeatureFlag(id: $id) { enabled } }",
            json!({ "id": id }),
        )
        .await;
        let mut seen = false;
        for _ in 0..500 {
            if gantry::features::service::is_enabled(&b, &p, "fast", None).await.unwrap() {
                seen = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(seen, "the other node never saw the toggle");
        assert_eq!(b.features.loads(), 2, "dropped once by the bus, read once again");
        // A 50 % rollout gives each organization the same answer on both nodes.
        t.gql_ok(
            Some(&admin.token),
            "mutation($id: ID!) { updateFeatureFlag(id: $id, input: {rolloutPercentage: 50}) { id } }",
            json!({ "id": id }),
        )
        .await;
        let here = is_on(&t, &dev.token, "fast").await;
        let mut agreed = false;
        for _ in 0..500 {
            if b.features.loads() >= 3 {
                agreed = gantry::features::service::is_enabled(&b, &p, "fast", None).await.unwrap() == here;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            let _ = gantry::features::service::is_enabled(&b, &p, "fast", None).await;
        }
        assert!(agreed, "both nodes give the organization the same rollout answer");
    }
}

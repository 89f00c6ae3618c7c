//! Every change users may subscribe to is an event, in the catalog with its schema: key updates
//! and webhook endpoint changes as well as the rest.

use serde_json::{Value, json};

use crate::common::{TestApp, backends};

async fn events_of(app: &TestApp, token: &str, types: &[&str]) -> Vec<Value> {
    let r = app
        .gql_ok(
            Some(token),
            "query($t: [String!]) { events(first: 50, types: $t) { edges { node { type data } } } }",
            json!({ "t": types }),
        )
        .await;
    r["events"]["edges"].as_array().unwrap().iter().map(|e| e["node"].clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_updates_and_endpoint_changes_are_published_events_with_schemas() {
    for backend in backends() {
        let app = TestApp::new(backend).await;
        let s = app.register("dev@example.com").await;
        let (_, key) = app.create_key(&s.token, &["*"]).await;
        app.gql_ok(
            Some(&s.token),
            "mutation($id: ID!) { updateApiKey(id: $id, input: {scopes: [\"keys:read\"], allowedIps: [\"10.0.0.0/8\"]}) { id } }",
            json!({ "id": key }),
        )
        .await;
        let updated = events_of(&app, &s.token, &["key.updated"]).await;
        assert_eq!(updated.len(), 1, "[{backend:?}] {updated:?}");
        assert_eq!(updated[0]["data"]["key"]["id"], key.as_str());
        assert_eq!(updated[0]["data"]["key"]["scopes"], json!(["keys:read"]));
        assert_eq!(updated[0]["data"]["changes"], json!(["scopes", "allowedIps"]));

        let r = app
            .gql_ok(
                Some(&s.token),
                "mutation { createWebhookEndpoint(input: {url: \"https://hooks.invalid/in\"}) { secret endpoint { id } } }",
                json!({}),
            )
            .await;
        let secret = r["createWebhookEndpoint"]["secret"].as_str().unwrap().to_string();
        let id = r["createWebhookEndpoint"]["endpoint"]["id"].as_str().unwrap().to_string();
        for m in [
            "mutation($id: ID!) { updateWebhookEndpoint(id: $id, input: {filterTypes: [\"key.*\"]}) { id } }",
            "mutation($id: ID!) { rotateWebhookSecret(id: $id, gracePeriodSeconds: 60) { secret } }",
            "mutation($id: ID!) { deleteWebhookEndpoint(id: $id) { deletedId } }",
        ] {
            app.gql_ok(Some(&s.token), m, json!({ "id": id })).await;
        }
        let mut changes = events_of(&app, &s.token, &["webhook.*"]).await;
        changes.reverse(); // oldest first
        let types: Vec<&str> = changes.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(
            types,
            ["webhook.created", "webhook.updated", "webhook.secret_rotated", "webhook.deleted"],
            "[{backend:?}]"
        );
        assert!(changes.iter().all(|e| e["data"]["endpoint"]["id"] == id.as_str()), "{changes:?}");
        assert_eq!(changes[1]["data"]["endpoint"]["filterTypes"], json!(["key.*"]));
        assert!(changes[2]["data"]["secretsExpireAt"].is_string(), "{:?}", changes[2]);
        assert!(!serde_json::to_string(&changes).unwrap().contains(&secret), "no secrets in events");

        // Each is in the catalog with a schema, and its payloads match it.
        let catalog = app.gql_ok(Some(&s.token), "{ eventTypes { name schema } }", json!({})).await;
        for name in ["key.updated", "webhook.created", "webhook.updated", "webhook.deleted", "webhook.secret_rotated"] {
            let entry = catalog["eventTypes"].as_array().unwrap().iter().find(|t| t["name"] == name);
            let schema = &entry.unwrap_or_else(|| panic!("{name} is not in the catalog"))["schema"];
            let validator = jsonschema::validator_for(schema).unwrap();
            for e in updated.iter().chain(&changes).filter(|e| e["type"] == name) {
                assert!(validator.is_valid(&e["data"]), "{name}: {} does not match its schema", e["data"]);
            }
        }
    }
}

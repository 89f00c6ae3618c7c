//! Operator-defined event types: validation, publishing once, delivery.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_events_are_validated_published_once_and_delivered() {
    for backend in backends() {
        let app = allowing_local(backend).await;
        let admin = app.register("ops@example.com").await; // platform administrator
        app.lift_starter_limits(&admin.token).await;
        let dev = app.register("dev@example.com").await;
        let (service, _) = app.create_key(&admin.token, &["events:publish"]).await;
        let (dev_key, _) = app.create_key(&dev.token, &["events:publish", "org:read", "webhooks:write"]).await;

        // Only the operator defines types; names, schemas and samples are checked.
        let create =
            "mutation($input: CreateEventTypeInput!) { createEventType(input: $input) { name category builtIn } }";
        let schema = json!({ "type": "object", "properties": { "invoice_id": { "type": "string" }, "amount_cents": { "type": "integer", "minimum": 0 } }, "required": ["invoice_id", "amount_cents"] });
        let sample = json!({ "invoice_id": "in_1", "amount_cents": 1200 });
        let r = app.gql(Some(&dev_key), create, json!({ "input": { "name": "invoice.paid", "schema": schema } })).await;
        assert_eq!(code(&r), "FORBIDDEN", "[{backend:?}] {r}");
        for (input, field) in [
            (json!({ "name": "nodot" }), "name"),
            (json!({ "name": "bad name.x" }), "name"),
            (json!({ "name": "invoice.paid", "schema": { "type": 12 } }), "schema"),
            (json!({ "name": "invoice.paid", "schema": schema, "sample": { "invoice_id": 3 } }), "sample"),
        ] {
            let r = app.gql(Some(&service), create, json!({ "input": input })).await;
            assert_eq!(code(&r), "BAD_USER_INPUT", "[{backend:?}] {input}: {r}");
            assert_eq!(r["errors"][0]["extensions"]["field"], field, "{r}");
        }
        let r = app.gql(Some(&service), create, json!({ "input": { "name": "key.created" } })).await;
        assert_eq!(code(&r), "CONFLICT", "{r}");
        let t = app
            .gql_ok(Some(&service), create, json!({ "input": { "name": "invoice.paid", "description": "An invoice was paid.", "schema": schema, "sample": sample } }))
            .await;
        assert_eq!(t["createEventType"], json!({ "name": "invoice.paid", "category": "invoice", "builtIn": false }));
        let r = app.gql(Some(&service), create, json!({ "input": { "name": "invoice.paid" } })).await;
        assert_eq!(code(&r), "CONFLICT");

        // The developer's endpoint listens to invoices.
        let (receiver, base) = Receiver::start().await;
        let (endpoint, secret) =
            create_endpoint(&app, &dev.token, json!({ "url": format!("{base}/in"), "filterTypes": ["invoice.*"] }))
                .await;

        // Publishing: the payload must match; built-in and unknown types are refused.
        let publish = "mutation($input: PublishEventInput!) { publishEvent(input: $input) { replayed event { id type organizationId data } } }";
        for (input, field) in [
            (
                json!({ "type": "invoice.paid", "payload": { "invoice_id": "in_1", "amount_cents": -5 }, "organizationId": dev.org_id }),
                "payload",
            ),
            (
                json!({ "type": "invoice.paid", "payload": { "amount_cents": 5 }, "organizationId": dev.org_id }),
                "payload",
            ),
            (json!({ "type": "key.created", "payload": {}, "organizationId": dev.org_id }), "type"),
            (json!({ "type": "no.such", "payload": {}, "organizationId": dev.org_id }), "type"),
            (
                json!({ "type": "invoice.paid", "payload": sample, "organizationId": dev.org_id, "idempotencyKey": "" }),
                "idempotencyKey",
            ),
        ] {
            let r = app.gql(Some(&service), publish, json!({ "input": input })).await;
            assert_eq!(code(&r), "BAD_USER_INPUT", "[{backend:?}] {input}: {r}");
            assert_eq!(r["errors"][0]["extensions"]["field"], field, "{r}");
        }
        // A developer cannot publish into another organization.
        let r = app
            .gql(
                Some(&dev_key),
                publish,
                json!({ "input": { "type": "invoice.paid", "payload": sample, "organizationId": admin.org_id } }),
            )
            .await;
        assert_eq!(code(&r), "FORBIDDEN", "{r}");
        // The service key publishes to the developer's organization, once per idempotency key.
        let input = json!({ "type": "invoice.paid", "payload": sample, "organizationId": dev.org_id, "idempotencyKey": "inv-1-paid" });
        let first = app.gql_ok(Some(&service), publish, json!({ "input": input })).await;
        assert_eq!(first["publishEvent"]["replayed"], false);
        assert_eq!(first["publishEvent"]["event"]["organizationId"], dev.org_id.as_str());
        let again = app.gql_ok(Some(&service), publish, json!({ "input": input })).await;
        assert_eq!(again["publishEvent"]["replayed"], true);
        assert_eq!(again["publishEvent"]["event"]["id"], first["publishEvent"]["event"]["id"]);
        let got = receiver.wait_for(&app, 1).await;
        assert!(signed_by(&secret, &got[0]));
        let body: Value = serde_json::from_str(&got[0].body).unwrap();
        assert_eq!(body["type"], "invoice.paid");
        assert_eq!(body["data"], sample);

        // Through REST too, with the payload's own keys left as they are (not camelCased).
        let (status, rest) = app
            .rest(
                "POST",
                "/events",
                Some(&service),
                Some(json!({ "type": "invoice.paid", "payload": { "invoice_id": "in_2", "amount_cents": 1 }, "organization_id": dev.org_id, "idempotency_key": "inv-2" })),
            )
            .await;
        assert_eq!(status, 201, "{rest}");
        assert_eq!(rest["data"]["event"]["data"]["invoice_id"], "in_2");
        let got = receiver.wait_for(&app, 2).await;
        let body: Value = serde_json::from_str(&got[1].body).unwrap();
        assert_eq!(body["data"], json!({ "invoice_id": "in_2", "amount_cents": 1 }));
        // Exactly two deliveries: the repeat published nothing (events are dispatched in id order,
        // so the repeat's would precede the second one's, which has arrived).
        let d = app
            .gql_ok(
                Some(&dev.token),
                "query($id: ID!) { webhookDeliveries(endpointId: $id) { totalCount } }",
                json!({ "id": endpoint }),
            )
            .await;
        assert_eq!(d["webhookDeliveries"]["totalCount"], 2, "[{backend:?}] {d}");
        assert_eq!(receiver.count(), 2);

        // The developer's event list, filtered by category.
        let list = app
            .gql_ok(
                Some(&dev_key),
                "{ events(types: [\"invoice.*\"]) { totalCount edges { node { type } } } }",
                json!({}),
            )
            .await;
        assert_eq!(list["events"]["totalCount"], 2);
        let r = app.gql(Some(&dev_key), "{ events(types: [\"bad type\"]) { totalCount } }", json!({})).await;
        assert_eq!(code(&r), "BAD_USER_INPUT");

        // Concurrent publishes with one key (written together, in one statement; four, the plan's
        // concurrency cap is five): one event.
        let racing = json!({ "type": "invoice.paid", "payload": sample, "organizationId": dev.org_id, "idempotencyKey": "inv-race" });
        let answers = futures_util::future::join_all(
            (0..4).map(|_| app.gql_ok(Some(&service), publish, json!({ "input": racing.clone() }))),
        )
        .await;
        let ids: std::collections::HashSet<String> =
            answers.iter().map(|a| a["publishEvent"]["event"]["id"].as_str().unwrap().to_string()).collect();
        assert_eq!(ids.len(), 1, "[{backend:?}] {answers:?}");
        let fresh = answers.iter().filter(|a| a["publishEvent"]["replayed"] == false).count();
        assert_eq!(fresh, 1, "[{backend:?}] exactly one publish wrote the event: {answers:?}");

        // Changing and archiving.
        let r = app
            .gql(
                Some(&service),
                "mutation { updateEventType(name: \"invoice.paid\", input: {sample: {invoice_id: 1}}) { name } }",
                json!({}),
            )
            .await;
        assert_eq!(code(&r), "BAD_USER_INPUT", "a sample that breaks the schema: {r}");
        app.gql_ok(
            Some(&service),
            "mutation { updateEventType(name: \"invoice.paid\", input: {deprecated: true}) { deprecated } }",
            json!({}),
        )
        .await;
        let archived = app
            .gql_ok(Some(&service), "mutation { archiveEventType(name: \"invoice.paid\") { archivedAt } }", json!({}))
            .await;
        assert!(archived["archiveEventType"]["archivedAt"].is_string());
        let r = app
            .gql(
                Some(&service),
                publish,
                json!({ "input": { "type": "invoice.paid", "payload": sample, "organizationId": dev.org_id } }),
            )
            .await;
        assert_eq!(code(&r), "BAD_USER_INPUT", "an archived type is not published: {r}");
        let types = app.gql_ok(Some(&dev_key), "{ eventTypes(category: \"invoice\") { name } }", json!({})).await;
        assert_eq!(types["eventTypes"], json!([]));
        let types = app
            .gql_ok(
                Some(&dev_key),
                "{ eventTypes(category: \"invoice\", includeArchived: true) { name deprecated } }",
                json!({}),
            )
            .await;
        assert_eq!(types["eventTypes"], json!([{ "name": "invoice.paid", "deprecated": true }]));
        let r =
            app.gql(Some(&service), "mutation { archiveEventType(name: \"key.created\") { name } }", json!({})).await;
        assert_eq!(code(&r), "FORBIDDEN");
        // A test event of an operator type sends its sample.
        app.gql_ok(
            Some(&dev.token),
            "mutation($id: ID!) { sendTestEvent(endpointId: $id, type: \"invoice.paid\") { id } }",
            json!({ "id": endpoint }),
        )
        .await;
        // The first publish, the raced one and the test event carry the sample; REST's does not.
        let got = receiver.wait_for(&app, 4).await;
        let with_sample =
            got.iter().filter(|g| serde_json::from_str::<Value>(&g.body).unwrap()["data"] == sample).count();
        assert_eq!(with_sample, 3, "[{backend:?}]");
        // A test event stays out of the organization's event list.
        let list = app
            .gql_ok(Some(&dev_key), "{ events(types: [\"invoice.*\", \"INVOICE.*\"]) { totalCount } }", json!({}))
            .await;
        assert_eq!(list["events"]["totalCount"], 3, "[{backend:?}] {list}");
    }
}

//! Endpoints: validation, organization scope, secret rotation, the SSRF guard at save and
//! connect time, TLS failures.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_are_validated_and_scoped_to_their_organization() {
    for backend in backends() {
        let app = TestApp::new(backend).await; // https only, nothing internal allowed
        let s = app.register("dev@example.com").await;
        app.lift_starter_limits(&s.token).await;
        let other = app.register("other@example.com").await;
        let m = "mutation($input: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $input) { secret endpoint { id url filterTypes timeoutSeconds retrySchedule enabled } } }";
        for (input, field) in [
            (json!({ "url": "ftp://example.com/x" }), "url"),
            (json!({ "url": "http://example.com/x" }), "url"),
            (json!({ "url": "not a url" }), "url"),
            (json!({ "url": "https://user:pw@example.com/x" }), "url"),
            (json!({ "url": "https://127.0.0.1/x" }), "url"),
            (json!({ "url": "https://10.0.0.8/x" }), "url"),
            (json!({ "url": "https://169.254.169.254/latest/meta-data" }), "url"),
            (json!({ "url": "https://[::1]/x" }), "url"),
            (json!({ "url": "https://example.com/x", "filterTypes": ["bad type"] }), "filterTypes"),
            (json!({ "url": "https://example.com/x", "filterTypes": [] }), "filterTypes"),
            (json!({ "url": "https://example.com/x", "headers": { "webhook-signature": "x" } }), "headers"),
            (json!({ "url": "https://example.com/x", "headers": { "X-Ok": 1 } }), "headers"),
            (json!({ "url": "https://example.com/x", "timeoutSeconds": 31 }), "timeoutSeconds"),
            (json!({ "url": "https://example.com/x", "retrySchedule": [0] }), "retrySchedule"),
            (json!({ "url": "https://example.com/x", "metadata": [1] }), "metadata"),
        ] {
            let r = app.gql(Some(&s.token), m, json!({ "input": input })).await;
            assert_eq!(code(&r), "BAD_USER_INPUT", "[{backend:?}] {input}: {r}");
            assert_eq!(r["errors"][0]["extensions"]["field"], field, "[{backend:?}] {input}: {r}");
        }
        let r = app.gql_ok(Some(&s.token), m, json!({ "input": { "url": "https://example.com/hooks" } })).await;
        let created = &r["createWebhookEndpoint"];
        let secret = created["secret"].as_str().unwrap();
        assert!(secret.starts_with("whsec_"));
        let raw = base64::engine::general_purpose::STANDARD.decode(&secret[6..]).unwrap();
        assert!(raw.len() >= 24, "secret of {} bytes", raw.len());
        assert_eq!(created["endpoint"]["filterTypes"], json!(["*"]));
        assert_eq!(created["endpoint"]["timeoutSeconds"], 30);
        assert_eq!(created["endpoint"]["retrySchedule"], json!([5, 300, 1800, 7200, 18000, 36000, 36000]));
        let id = created["endpoint"]["id"].as_str().unwrap().to_string();
        assert!(id.starts_with("whk_"));
        let node = app
            .gql_ok(
                Some(&s.token),
                "query($id: ID!) { node(id: $id) { id ... on WebhookEndpoint { url } } }",
                json!({ "id": id }),
            )
            .await;
        assert_eq!(node["node"]["url"], "https://example.com/hooks");

        // Another organization sees none of it.
        for q in [
            "query($id: ID!) { webhookEndpoint(id: $id) { id } }",
            "mutation($id: ID!) { deleteWebhookEndpoint(id: $id) { deletedId } }",
            "mutation($id: ID!) { rotateWebhookSecret(id: $id) { secret } }",
            "mutation($id: ID!) { sendTestEvent(endpointId: $id) { id } }",
            "mutation($id: ID!) { updateWebhookEndpoint(id: $id, input: {enabled: false}) { id } }",
            "query($id: ID!) { node(id: $id) { id } }",
        ] {
            let r = app.gql(Some(&other.token), q, json!({ "id": id })).await;
            assert_eq!(code(&r), "NOT_FOUND", "[{backend:?}] {q}: {r}");
        }
        let list = app.gql_ok(Some(&other.token), "{ webhookEndpoints { totalCount } }", json!({})).await;
        assert_eq!(list["webhookEndpoints"]["totalCount"], 0);
        // A key without webhook scopes is refused.
        let (key, _) = app.create_key(&s.token, &["keys:read"]).await;
        let r = app.gql(Some(&key), "{ webhookEndpoints { totalCount } }", json!({})).await;
        assert_eq!(code(&r), "FORBIDDEN", "{r}");

        let upd = app
            .gql_ok(
                Some(&s.token),
                "mutation($id: ID!) { updateWebhookEndpoint(id: $id, input: {filterTypes: [\"key.*\", \"alert.triggered\"], description: \"prod\", retrySchedule: [1, 2]}) { filterTypes description retrySchedule } }",
                json!({ "id": id }),
            )
            .await;
        assert_eq!(upd["updateWebhookEndpoint"]["filterTypes"], json!(["alert.triggered", "key.*"]));
        assert_eq!(upd["updateWebhookEndpoint"]["retrySchedule"], json!([1, 2]));
        let r = app
            .gql(
                Some(&s.token),
                "mutation($id: ID!) { updateWebhookEndpoint(id: $id, input: {url: \"https://192.168.1.1/\"}) { id } }",
                json!({ "id": id }),
            )
            .await;
        assert_eq!(code(&r), "BAD_USER_INPUT", "{r}");
        let del = app
            .gql_ok(
                Some(&s.token),
                "mutation($id: ID!) { deleteWebhookEndpoint(id: $id) { deletedId } }",
                json!({ "id": id }),
            )
            .await;
        assert_eq!(del["deleteWebhookEndpoint"]["deletedId"], id.as_str());
        let r =
            app.gql(Some(&s.token), "query($id: ID!) { webhookEndpoint(id: $id) { id } }", json!({ "id": id })).await;
        assert_eq!(code(&r), "NOT_FOUND");
        let types =
            app.gql_ok(Some(&s.token), "{ eventTypes { name category schema sample builtIn } }", json!({})).await;
        let names: Vec<&str> =
            types["eventTypes"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
        for n in ["key.created", "webhook.endpoint.disabled", "quota.threshold_reached", "alert.triggered"] {
            assert!(names.contains(&n), "{n} missing from the catalog");
        }

        // The plan caps endpoints per organization.
        app.gql_ok(
            Some(&s.token),
            "mutation { updatePlan(id: \"pln_0000000000000000000starter\", input: {maxWebhookEndpoints: 1}) { maxWebhookEndpoints } }",
            json!({}),
        )
        .await;
        app.gql_ok(Some(&s.token), m, json!({ "input": { "url": "https://example.com/one" } })).await;
        let r = app.gql(Some(&s.token), m, json!({ "input": { "url": "https://example.com/two" } })).await;
        assert_eq!(code(&r), "FORBIDDEN", "[{backend:?}] {r}");
        assert!(r["errors"][0]["message"].as_str().unwrap().contains("plan"), "{r}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_secret_signs_beside_the_new_one_until_its_grace_ends() {
    for backend in backends() {
        let Hooked { app, s, receiver, endpoint, secret: old, .. } =
            hooked(backend, json!({ "filterTypes": ["webhook.test"] })).await;
        let r = app
            .gql(
                Some(&s.token),
                "mutation($id: ID!) { rotateWebhookSecret(id: $id, gracePeriodSeconds: 604801) { secret } }",
                json!({ "id": endpoint }),
            )
            .await;
        assert_eq!(code(&r), "BAD_USER_INPUT");
        let r = app
            .gql_ok(
                Some(&s.token),
                "mutation($id: ID!) { rotateWebhookSecret(id: $id, gracePeriodSeconds: 600) { secret previousSecretExpiresAt } }",
                json!({ "id": endpoint }),
            )
            .await;
        let new = r["rotateWebhookSecret"]["secret"].as_str().unwrap().to_string();
        assert_ne!(new, old);
        let first = send_test_event(&app, &s.token, &endpoint).await;
        let got = receiver.wait_for(&app, 1).await;
        assert!(
            signed_by(&old, &got[0]) && signed_by(&new, &got[0]),
            "[{backend:?}] both secrets sign during the grace"
        );
        assert_eq!(got[0].headers["webhook-signature"].to_str().unwrap().split(' ').count(), 2);
        let body: Value = serde_json::from_str(&got[0].body).unwrap();
        assert_eq!(body["type"], "webhook.test");
        assert_eq!(body["data"]["message"], "This is a test event from Gantry.");

        // The outcome is written before the clock jumps past the attempt's lease: otherwise the
        // delivery would rightly be sent again, and taken here for the next one.
        let d = attempts(&app, &s.token, &first, 1).await;
        assert_eq!(d["status"], "SUCCEEDED", "{d}");
        app.clock.advance_ms(601_000);
        let second = send_test_event(&app, &s.token, &endpoint).await;
        let got = receiver.wait_for(&app, 2).await;
        assert_eq!(got[1].headers["webhook-id"], second.as_str());
        assert!(signed_by(&new, &got[1]));
        assert!(!signed_by(&old, &got[1]), "[{backend:?}] the old secret still signs after its grace");

        // A test event of a catalog type sends the type's sample.
        let r = app
            .gql_ok(
                Some(&s.token),
                "mutation($id: ID!) { sendTestEvent(endpointId: $id, type: \"key.created\") { eventType } }",
                json!({ "id": endpoint }),
            )
            .await;
        assert_eq!(r["sendTestEvent"]["eventType"], "key.created");
        let got = receiver.wait_for_type(&app, "key.created").await;
        let body: Value = serde_json::from_str(&got.body).unwrap();
        assert_eq!(body["data"]["key"]["name"], "production");
        let r = app
            .gql(
                Some(&s.token),
                "mutation($id: ID!) { sendTestEvent(endpointId: $id, type: \"no.such\") { id } }",
                json!({ "id": endpoint }),
            )
            .await;
        assert_eq!(code(&r), "BAD_USER_INPUT");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_addresses_are_refused_at_connect_time_unless_allowed() {
    for backend in backends() {
        // http allowed, but no internal network.
        let app = TestApp::with_config(backend, |c| {
            c.webhook_allow_http = true;
            c.webhook_poll_interval_ms = 50;
        })
        .await;
        let s = app.register("dev@example.com").await;
        app.lift_starter_limits(&s.token).await;
        let (receiver, base) = Receiver::start().await;
        let port = base.rsplit(':').next().unwrap();
        // Literal internal addresses are refused when the endpoint is saved…
        for url in [base.clone(), "http://10.1.2.3/x".into(), "http://169.254.169.254/latest".into()] {
            let r = app
                .gql(
                    Some(&s.token),
                    "mutation($u: String!) { createWebhookEndpoint(input: {url: $u}) { secret } }",
                    json!({ "u": url }),
                )
                .await;
            assert_eq!(code(&r), "BAD_USER_INPUT", "[{backend:?}] {url}: {r}");
        }
        // …so are names that resolve only to internal addresses when it is saved…
        for url in [format!("http://localhost:{port}/hooks"), "https://localhost/hooks".to_string()] {
            let r = app
                .gql(
                    Some(&s.token),
                    "mutation($u: String!) { createWebhookEndpoint(input: {url: $u}) { secret } }",
                    json!({ "u": url }),
                )
                .await;
            assert_eq!(
                (code(&r), r["errors"][0]["extensions"]["field"].as_str()),
                ("BAD_USER_INPUT", Some("url")),
                "[{backend:?}] {url}: {r}"
            );
            assert!(r["errors"][0]["message"].as_str().unwrap().contains("resolves to"), "{r}");
        }
        // …and a name that resolves to one only later is refused when connecting (DNS cannot
        // smuggle it in). A name that does not resolve when saved, then resolves to loopback, is
        // simulated by changing the stored URL.
        let (endpoint, _) = create_endpoint(
            &app,
            &s.token,
            json!({ "url": format!("http://later.invalid:{port}/hooks"), "filterTypes": ["webhook.test"] }),
        )
        .await;
        let rebound = format!("http://localhost:{port}/hooks");
        let done: Result<(), gantry::error::Error> = async {
            use diesel::prelude::*;
            use diesel_async::RunQueryDsl;
            use gantry::platform::db::schema::webhook_endpoints;
            gantry::with_conn!(app.app.db, c => diesel::update(webhook_endpoints::table.find(&endpoint)).set(webhook_endpoints::url.eq(&rebound)).execute(c).await?);
            Ok(())
        }
        .await;
        done.unwrap();
        let id = send_test_event(&app, &s.token, &endpoint).await;
        let d = attempts(&app, &s.token, &id, 1).await;
        assert_eq!(d["attempts"][0]["errorKind"], "REFUSED", "[{backend:?}] {d}");
        // Refused for good: no retry schedule against an address that stays refused, and a short
        // reason (the error chain is in the attempt).
        assert_eq!((d["status"].as_str(), &d["nextAttemptAt"]), (Some("FAILED"), &Value::Null), "[{backend:?}] {d}");
        assert!(d["lastError"].as_str().unwrap().starts_with("refused: "), "{d}");
        assert_eq!(receiver.count(), 0, "the internal receiver was reached");
    }
}

/// A TLS server on 127.0.0.1 whose certificate no client trusts (self-signed, in
/// `tests/fixtures`): counts the connections it accepted.
async fn untrusted_tls_server() -> (Arc<std::sync::atomic::AtomicUsize>, u16) {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let _ = rustls::crypto::ring::default_provider().install_default();
    let certs = vec![CertificateDer::from_pem_slice(include_bytes!("../../fixtures/self-signed.crt")).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(include_bytes!("../../fixtures/self-signed.key")).unwrap();
    let config = rustls::ServerConfig::builder().with_no_client_auth().with_single_cert(certs, key).unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = connections.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let acceptor = acceptor.clone();
            // The client aborts the handshake on the certificate; nothing is ever served.
            tokio::spawn(async move { acceptor.accept(stream).await.map(|_| ()) });
        }
    });
    (connections, port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_certificate_is_a_tls_failure_and_retried() {
    for backend in backends() {
        let app = allowing_local(backend).await;
        let s = app.register("dev@example.com").await;
        app.lift_starter_limits(&s.token).await;
        let (connections, port) = untrusted_tls_server().await;
        let (endpoint, _) = create_endpoint(
            &app,
            &s.token,
            json!({ "url": format!("https://localhost:{port}/hooks"), "filterTypes": ["webhook.test"] }),
        )
        .await;
        let id = send_test_event(&app, &s.token, &endpoint).await;
        let d = attempts(&app, &s.token, &id, 1).await;
        let attempt = &d["attempts"][0];
        assert_eq!(attempt["errorKind"], "TLS", "[{backend:?}] {d}");
        assert_eq!(attempt["responseStatus"], Value::Null, "{d}");
        let message = attempt["errorMessage"].as_str().unwrap().to_lowercase();
        assert!(message.contains("certificate"), "the log says why: {message}");
        // A TLS failure is retried on the schedule, like a connection failure.
        assert_eq!(d["status"], "PENDING", "{d}");
        assert!(d["nextAttemptAt"].is_string(), "{d}");
        assert!(connections.load(std::sync::atomic::Ordering::SeqCst) >= 1, "no connection reached the server");
    }
}

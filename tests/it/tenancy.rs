//! Another organization's id is NOT_FOUND everywhere, exactly as an unknown id: every id-taking
//! GraphQL field and argument, and every REST route with an id in its path or query.

use serde_json::{Value, json};

use crate::common::ws;
use crate::common::{TestApp, backends, code};

/// The variables of a field, from one organization's ids.
type Ids = fn(&Owned) -> Value;

/// Ids of one organization's things.
struct Owned {
    key: String,
    endpoint: String,
    delivery: String,
    event: String,
    org: String,
    /// A DRAFT app (visible only to its organization) and an installation of it there.
    app: String,
    installation: String,
    /// A card and the invoice of an upgrade to Pro, charged to it.
    payment_method: String,
    invoice: String,
    /// The organization's owner (a member of no other organization) and an invitation it sent.
    user: String,
    invitation: String,
    export: String,
}

async fn owned(app: &TestApp, token: &str, org: &str, user: &str) -> Owned {
    let (_, key) = app.create_key(token, &["*"]).await;
    // `.invalid` never resolves: the endpoint is accepted, its deliveries fail to connect.
    let r = app
        .gql_ok(
            Some(token),
            "mutation { createWebhookEndpoint(input: {url: \"https://hooks.invalid/in\", filterTypes: [\"webhook.test\"]}) { endpoint { id } } }",
            json!({}),
        )
        .await;
    let endpoint = r["createWebhookEndpoint"]["endpoint"]["id"].as_str().unwrap().to_string();
    let r = app
        .gql_ok(
            Some(token),
            "mutation($id: ID!) { sendTestEvent(endpointId: $id) { id eventId } }",
            json!({ "id": endpoint }),
        )
        .await;
    let delivery = r["sendTestEvent"]["id"].as_str().unwrap().to_string();
    let r = app
        .gql_ok(Some(token), "{ events(first: 1, types: [\"key.created\"]) { edges { node { id } } } }", json!({}))
        .await;
    let event = r["events"]["edges"][0]["node"]["id"].as_str().unwrap().to_string();
    let r = app
        .gql_ok(
            Some(token),
            "mutation($n: String!) { createApp(input: {name: $n, description: \"d\", category: STORAGE, requestedScopes: [\"keys:read\"], redirectUris: [\"https://own.example.com/cb\"]}) { app { id } } }",
            json!({ "n": format!("Own {org}") }),
        )
        .await;
    let app_id = r["createApp"]["app"]["id"].as_str().unwrap().to_string();
    let r = app
        .gql_ok(
            Some(token),
            "mutation($id: String!) { authorizeApp(input: {clientId: $id}) { installation { id } } }",
            json!({ "id": app_id }),
        )
        .await;
    let installation = r["authorizeApp"]["installation"]["id"].as_str().unwrap().to_string();
    let r = app
        .gql_ok(
            Some(token),
            "mutation { addPaymentMethod(input: {number: \"4242 4242 4242 4242\", expMonth: 12, expYear: 2040, cvc: \"123\"}) { id } }",
            json!({}),
        )
        .await;
    let payment_method = r["addPaymentMethod"]["id"].as_str().unwrap().to_string();
    let r = app
        .gql_ok(
            Some(token),
            "mutation { changeSubscription(planId: \"pln_00000000000000000000000pro\") { invoice { id } } }",
            json!({}),
        )
        .await;
    let invoice = r["changeSubscription"]["invoice"]["id"].as_str().unwrap().to_string();
    let r = app
        .gql_ok(
            Some(token),
            "mutation($e: String!) { inviteMember(input: {email: $e, role: MEMBER}) { invitation { id } } }",
            json!({ "e": format!("invitee-{org}@example.com") }),
        )
        .await;
    let invitation = r["inviteMember"]["invitation"]["id"].as_str().unwrap().to_string();
    let r = app.gql_ok(Some(token), "mutation { exportOrganization { id } }", json!({})).await;
    let export = r["exportOrganization"]["id"].as_str().unwrap().to_string();
    Owned {
        key,
        endpoint,
        delivery,
        event,
        org: org.to_string(),
        app: app_id,
        installation,
        payment_method,
        invoice,
        user: user.to_string(),
        invitation,
        export,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_organizations_ids_are_not_found_on_every_field_and_route() {
    for backend in backends() {
        let app = TestApp::with_config(backend, |c| c.webhook_poll_interval_ms = 50).await;
        let admin = app.register("admin@example.com").await;
        app.lift_starter_limits(&admin.token).await;
        // Both organizations upgrade to Pro (for an invoice): lift its limits too.
        let lift_pro = crate::common::LIFT_STARTER_LIMITS
            .replace("pln_0000000000000000000starter", "pln_00000000000000000000000pro");
        app.gql_ok(Some(&admin.token), &lift_pro, json!({})).await;
        let a = app.register("a@example.com").await;
        let b = app.register("b@example.com").await;
        let theirs = owned(&app, &a.token, &a.org_id, &a.user_id).await;
        let mine = owned(&app, &b.token, &b.org_id, &b.user_id).await;
        let (b_key, b_key_id) = app.create_key(&b.token, &["*"]).await;

        // GraphQL: each field with each id-taking argument, with A's ids from B — and, as a
        // control, with B's own ids (which must not be NOT_FOUND).
        let fields: &[(&str, Ids)] = &[
            ("query($id: ID!) { apiKey(id: $id) { id } }", |o| json!({ "id": o.key })),
            ("query($id: ID!) { organization(id: $id) { id } }", |o| json!({ "id": o.org })),
            ("query($id: ID!) { usage(keyId: $id) { stats { calls } } }", |o| json!({ "id": o.key })),
            (
                "query($id: ID!) { usageHistory(keyId: $id, start: \"2026-01-01T00:00:00Z\", end: \"2026-01-02T00:00:00Z\") { start } }",
                |o| json!({ "id": o.key }),
            ),
            ("query($id: ID!) { usageByEndpoint(keyId: $id) { operation } }", |o| json!({ "id": o.key })),
            ("query($id: ID!) { errorBreakdown(keyId: $id) { status } }", |o| json!({ "id": o.key })),
            ("query($id: ID!) { event(id: $id) { id } }", |o| json!({ "id": o.event })),
            ("query($id: ID!) { webhookEndpoint(id: $id) { id } }", |o| json!({ "id": o.endpoint })),
            ("query($id: ID!) { webhookDeliveries(endpointId: $id) { totalCount } }", |o| json!({ "id": o.endpoint })),
            ("query($id: ID!) { webhookDeliveries(eventId: $id) { totalCount } }", |o| json!({ "id": o.event })),
            ("query($id: ID!) { webhookDelivery(id: $id) { id } }", |o| json!({ "id": o.delivery })),
            ("query($id: ID!) { node(id: $id) { id } }", |o| json!({ "id": o.key })),
            ("query($id: ID!) { node(id: $id) { id } }", |o| json!({ "id": o.delivery })),
            ("mutation($id: ID!) { updateApiKey(id: $id, input: {name: \"x\"}) { id } }", |o| json!({ "id": o.key })),
            (
                "mutation($id: ID!) { rollApiKey(id: $id, expireOldInSeconds: 0) { secret } }",
                |o| json!({ "id": o.key }),
            ),
            (
                "mutation($id: ID!) { updateWebhookEndpoint(id: $id, input: {enabled: true}) { id } }",
                |o| json!({ "id": o.endpoint }),
            ),
            ("mutation($id: ID!) { rotateWebhookSecret(id: $id) { secret } }", |o| json!({ "id": o.endpoint })),
            (
                "mutation($id: ID!, $since: DateTime!) { recoverEndpoint(id: $id, since: $since) }",
                |o| json!({ "id": o.endpoint, "since": "SINCE" }),
            ),
            ("mutation($id: ID!) { sendTestEvent(endpointId: $id) { id } }", |o| json!({ "id": o.endpoint })),
            ("mutation($id: ID!) { retryDelivery(id: $id) { id } }", |o| json!({ "id": o.delivery })),
            ("query($id: ID!) { app(id: $id) { id } }", |o| json!({ "id": o.app })),
            ("query($id: ID!) { node(id: $id) { id } }", |o| json!({ "id": o.app })),
            (
                "mutation($id: ID!) { updateApp(id: $id, input: {version: \"2.0.0\"}) { id } }",
                |o| json!({ "id": o.app }),
            ),
            ("mutation($id: ID!) { rotateAppClientSecret(id: $id) { clientSecret } }", |o| json!({ "id": o.app })),
            ("mutation($id: ID!) { submitAppReview(appId: $id, rating: 5) { created } }", |o| json!({ "id": o.app })),
            (
                "mutation($id: ID!) { uninstallApp(id: $id) { installation { id } } }",
                |o| json!({ "id": o.installation }),
            ),
            (
                "mutation($id: ID!) { changeMemberRole(userId: $id, role: VIEWER) { role } }",
                |o| json!({ "id": o.user }),
            ),
            ("mutation($id: ID!) { resendInvitation(id: $id) { mailSent } }", |o| json!({ "id": o.invitation })),
            ("query($id: ID!) { organizationExport(id: $id) { status } }", |o| json!({ "id": o.export })),
            ("mutation($id: ID!) { revokeApiKey(id: $id) { id } }", |o| json!({ "id": o.key })),
            ("mutation($id: ID!) { removeMember(userId: $id) }", |o| json!({ "id": o.user })),
            ("mutation($id: ID!) { revokeInvitation(id: $id) { id } }", |o| json!({ "id": o.invitation })),
            ("mutation($id: ID!) { deleteWebhookEndpoint(id: $id) { deletedId } }", |o| json!({ "id": o.endpoint })),
            ("mutation($id: ID!) { deleteApiKey(id: $id) { deletedId } }", |o| json!({ "id": o.key })),
            ("mutation($id: ID!) { deleteApp(id: $id) { deletedId } }", |o| json!({ "id": o.app })),
            ("query($id: ID!) { invoice(id: $id) { id } }", |o| json!({ "id": o.invoice })),
            ("mutation($id: ID!) { payInvoice(invoiceId: $id) { payment { id } } }", |o| json!({ "id": o.invoice })),
            ("mutation($id: ID!) { setDefaultPaymentMethod(id: $id) { id } }", |o| json!({ "id": o.payment_method })),
            ("mutation($id: ID!) { removePaymentMethod(id: $id) }", |o| json!({ "id": o.payment_method })),
        ];
        use gantry::platform::clock::Clock;
        let since = gantry::platform::clock::rfc3339(app.clock.now_ms() - 3_600_000);
        let vars =
            |f: Ids, o: &Owned| -> Value { serde_json::from_str(&f(o).to_string().replace("SINCE", &since)).unwrap() };
        for (q, f) in fields {
            let r = app.gql(Some(&b_key), q, vars(*f, &theirs)).await;
            assert_eq!(code(&r), "NOT_FOUND", "[{backend:?}] another organization's id: {q}: {r}");
            let unknown = vars(*f, &theirs).to_string().replace("01", "00");
            let r = app.gql(Some(&b_key), q, serde_json::from_str(&unknown).unwrap()).await;
            assert_eq!(code(&r), "NOT_FOUND", "[{backend:?}] an unknown id: {q}: {r}");
        }
        // The control: the same fields with B's own ids are found (the deleting ones last).
        for (q, f) in fields {
            let r = app.gql(Some(&b_key), q, vars(*f, &mine)).await;
            assert_ne!(code(&r), "NOT_FOUND", "[{backend:?}] own id: {q}: {r}");
        }

        // Subscriptions: the key and endpoint filters are refused as unknown.
        let mut sock = ws::connect_authed(&app.ws_url(), &b.token).await;
        for (id, q) in [
            ("1", format!("subscription {{ apiKeyQuotaExceeded(keyId: \"{}\") {{ keyId }} }}", theirs.key)),
            ("2", format!("subscription {{ webhookDelivered(webhookId: \"{}\") {{ attemptId }} }}", theirs.endpoint)),
        ] {
            ws::subscribe(&mut sock, id, &q).await;
            let msg = loop {
                let m = ws::next(&mut sock).await.expect("message");
                if m["id"] == id {
                    break m;
                }
            };
            let errors = if msg["type"] == "error" { msg["payload"].clone() } else { msg["payload"]["errors"].clone() };
            assert_eq!(errors[0]["extensions"]["code"], "NOT_FOUND", "[{backend:?}] {q}: {msg}");
        }

        // REST: every route with an id in its path, with A's ids from B.
        for route in gantry::rest::routes::table() {
            // The review queue, users, feature flags and the event catalog are platform-wide, not an
            // organization's.
            if !route.path.contains('{')
                || route.path.starts_with("/admin/")
                || route.path.starts_with("/features/")
                || route.path.starts_with("/webhook-events/")
            {
                continue;
            }
            let path = route
                .path
                .replace("/api-keys/{id}", &format!("/api-keys/{}", theirs.key))
                .replace("/keys/{id}", &format!("/keys/{}", theirs.key))
                .replace("/webhooks/{id}", &format!("/webhooks/{}", theirs.endpoint))
                .replace("/events/{id}", &format!("/events/{}", theirs.event))
                .replace("{delivery_id}", &theirs.delivery)
                .replace("/apps/{id}", &format!("/apps/{}", theirs.app))
                .replace("{install_id}", &theirs.installation)
                .replace("/invoices/{id}", &format!("/invoices/{}", theirs.invoice))
                .replace("/payment-methods/{id}", &format!("/payment-methods/{}", theirs.payment_method))
                .replace("/members/{user_id}", &format!("/members/{}", theirs.user))
                .replace("/invitations/{id}", &format!("/invitations/{}", theirs.invitation))
                .replace("/exports/{id}", &format!("/exports/{}", theirs.export));
            assert!(!path.contains('{'), "a route this test does not know how to fill: {}", route.path);
            let body = match (route.method.as_str(), route.path.ends_with("/recover")) {
                (_, true) => Some(json!({ "since": since })),
                ("POST", false) if route.path.ends_with("/reviews") => Some(json!({ "rating": 5 })),
                ("PATCH", false) if route.path.contains("/members/") => Some(json!({ "role": "VIEWER" })),
                ("POST" | "PUT", false) => Some(json!({})),
                _ => None,
            };
            let (status, resp) = app.rest(route.method.as_str(), &path, Some(&b_key), body).await;
            assert_eq!(status, 404, "[{backend:?}] {} {path}: {resp}", route.method);
            assert_eq!(resp["error"]["type"], "not_found", "{resp}");
        }
        // …and every route that filters by a key.
        for path in ["/analytics/usage", "/analytics/endpoints", "/analytics/errors", "/analytics/performance"] {
            let (status, resp) = app.rest("GET", &format!("{path}?key_id={}", theirs.key), Some(&b_key), None).await;
            assert_eq!(status, 404, "[{backend:?}] {path}: {resp}");
            let (status, _) = app.rest("GET", &format!("{path}?key_id={b_key_id}"), Some(&b_key), None).await;
            assert_eq!(status, 200, "[{backend:?}] own key: {path}");
        }

        // Over zero calls there is no success rate (not a perfect one).
        let (_, unused_id) = app.create_key(&b.token, &["keys:read"]).await;
        let r = app
            .gql_ok(
                Some(&b_key),
                "query($k: ID) { usage(keyId: $k, period: LAST_HOUR) { stats { calls successRate } } }",
                json!({ "k": unused_id }),
            )
            .await;
        assert_eq!(r["usage"]["stats"], json!({ "calls": 0, "successRate": null }), "[{backend:?}] {r}");
    }
}

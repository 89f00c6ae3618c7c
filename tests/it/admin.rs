//! Platform administration: users and organizations listed, searched, suspended and restored on
//! every node and surface, a user erased, administration granted and revoked (also by the `gantry
//! admin` command), access to another organization audited, and platform analytics.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{Backend, TestApp, backends, code, ws};
use crate::teams::gql_in;

fn reason(body: &Value) -> &str {
    body["errors"][0]["extensions"]["reason"].as_str().unwrap_or("<none>")
}

async fn login(t: &TestApp, email: &str) -> Value {
    t.gql(
        None,
        "mutation($e: String!) { login(input: {email: $e, password: \"correct horse battery\"}) { session { token } } }",
        json!({ "e": email }),
    )
    .await
}

/// Waits (bounded) for a condition the server reaches on its own.
async fn until<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    for _ in 0..500 {
        if let Some(v) = check().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("never happened: {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn administrators_find_and_suspend_users_whose_sessions_end_everywhere() {
    for backend in backends() {
        let t = TestApp::new(backend).await;
        let admin = t.register("admin@example.com").await;
        t.lift_starter_limits(&admin.token).await;
        let dev = t.register("dev@example.com").await;
        t.register("grace@example.com").await;
        let list = "query($s: String) { adminUsers(search: $s, first: 10) { totalCount edges { node { id email suspendedAt } } } }";
        assert_eq!(code(&t.gql(Some(&dev.token), list, json!({})).await), "FORBIDDEN");
        let r = t.gql_ok(Some(&admin.token), list, json!({ "s": "DEV@" })).await;
        assert_eq!(r["adminUsers"]["totalCount"], 1, "{r}");
        assert_eq!(r["adminUsers"]["edges"][0]["node"]["id"], dev.user_id.as_str());
        let r = t.gql_ok(Some(&admin.token), list, json!({ "s": "%" })).await;
        assert_eq!(r["adminUsers"]["totalCount"], 0, "LIKE's own characters are literal: {r}");
        let (status, body) = t.rest("GET", "/admin/users?search=example.com", Some(&admin.token), None).await;
        assert_eq!((status, body["data"].as_array().map(Vec::len)), (200, Some(3)), "{body}");
        let (status, body) = t.rest("GET", &format!("/admin/users/{}", dev.user_id), Some(&admin.token), None).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["memberships"][0]["role"], "OWNER", "{body}");

        // An open subscription, and the same session on another node (PostgreSQL + Redis).
        let mut sock = ws::connect_authed(&t.ws_url(), &dev.token).await;
        let other_node = if backend == Backend::PostgresRedis { Some(t.second_node().await) } else { None };
        let bearer = gantry::auth::Bearer { token: &dev.token, ip: None, organization: None };
        if let Some(b) = &other_node {
            assert!(gantry::auth::authenticate(b, &bearer).await.is_ok(), "cached on the other node");
        }

        assert_eq!(
            code(
                &t.gql(
                    Some(&admin.token),
                    "mutation($id: ID!) { suspendUser(id: $id, reason: \"me\") { id } }",
                    json!({ "id": admin.user_id })
                )
                .await
            ),
            "BAD_USER_INPUT",
            "not oneself"
        );
        let r = t
            .gql_ok(
                Some(&admin.token),
                "mutation($id: ID!) { suspendUser(id: $id, reason: \"spam\") { suspendedAt suspendedReason } }",
                json!({ "id": dev.user_id }),
            )
            .await;
        assert_eq!(r["suspendUser"]["suspendedReason"], "spam");
        // Every session ended, on every node and on the open socket; sign-in says why.
        let (status, _) = t.gql_status(Some(&dev.token), "{ viewer { id } }", json!({})).await;
        assert_eq!(status, 401);
        let closed = ws::next(&mut sock).await.expect_err("the socket is closed");
        assert_eq!(closed.0, 4401, "{closed:?}");
        if let Some(b) = &other_node {
            until("the other node drops the session", async || {
                gantry::auth::authenticate(b, &bearer).await.is_err().then_some(())
            })
            .await;
        }
        let r = login(&t, "dev@example.com").await;
        assert_eq!((code(&r), reason(&r)), ("FORBIDDEN", "USER_SUSPENDED"), "{r}");
        let (status, body) = t
            .rest(
                "POST",
                "/auth/login",
                None,
                Some(json!({ "email": "dev@example.com", "password": "correct horse battery" })),
            )
            .await;
        assert_eq!((status, body["error"]["details"]["reason"].clone()), (403, json!("USER_SUSPENDED")), "{body}");
        let r = login(&t, "dev@example.com").await;
        assert_eq!(code(&r), "FORBIDDEN", "still suspended: {r}");

        // Restored through REST's PUT.
        let (status, body) = t
            .rest(
                "PUT",
                &format!("/admin/users/{}", dev.user_id),
                Some(&admin.token),
                Some(json!({ "suspended": false })),
            )
            .await;
        assert_eq!((status, body["data"]["suspended_at"].clone()), (200, Value::Null), "{body}");
        let r = login(&t, "dev@example.com").await;
        let token = r["data"]["login"]["session"]["token"].as_str().unwrap_or_else(|| panic!("{r}")).to_string();
        let r = t
            .gql_ok(Some(&token), "{ events(first: 20, types: [\"user.*\"]) { edges { node { type } } } }", json!({}))
            .await;
        let types: Vec<&str> =
            r["events"]["edges"].as_array().unwrap().iter().map(|e| e["node"]["type"].as_str().unwrap()).collect();
        assert!(types.contains(&"user.suspended") && types.contains(&"user.unsuspended"), "{types:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_organization_is_refused_everywhere_and_its_webhooks_wait() {
    for backend in backends() {
        let t = TestApp::with_config(backend, |c| {
            c.webhook_allow_http = true;
            c.webhook_allowed_networks = vec!["127.0.0.0/8".parse().unwrap()];
            c.webhook_poll_interval_ms = 50;
        })
        .await;
        let admin = t.register("admin@example.com").await;
        t.lift_starter_limits(&admin.token).await;
        let dev = t.register("dev@example.com").await;
        let (key, _) = t.create_key(&dev.token, &["*"]).await;
        let (receiver, base) = crate::webhooks::Receiver::start().await;
        t.gql_ok(
            Some(&dev.token),
            "mutation($u: String!) { createWebhookEndpoint(input: {url: $u, filterTypes: [\"webhook.test\"]}) { endpoint { id } } }",
            json!({ "u": format!("{base}/in") }),
        )
        .await;
        let endpoint = t.gql_ok(Some(&dev.token), "{ webhookEndpoints { edges { node { id } } } }", json!({})).await["webhookEndpoints"]
            ["edges"][0]["node"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let mut sock = ws::connect_authed(&t.ws_url(), &key).await;

        let (status, body) = t
            .rest(
                "POST",
                &format!("/admin/organizations/{}/suspend", dev.org_id),
                Some(&admin.token),
                Some(json!({ "reason": "unpaid abuse" })),
            )
            .await;
        assert_eq!((status, body["data"]["suspended_reason"].clone()), (200, json!("unpaid abuse")), "{body}");

        // Every credential acting for it is refused, with the reason, on every surface.
        let r = t.gql(Some(&key), "{ apiKeys { totalCount } }", json!({})).await;
        assert_eq!((code(&r), reason(&r)), ("FORBIDDEN", "ORGANIZATION_SUSPENDED"), "{r}");
        let r = t.gql(Some(&dev.token), "{ viewer { id } }", json!({})).await;
        assert_eq!(reason(&r), "ORGANIZATION_SUSPENDED", "{r}");
        let (status, body) = t.rest("GET", "/keys", Some(&key), None).await;
        assert_eq!(
            (status, body["error"]["details"]["reason"].clone()),
            (403, json!("ORGANIZATION_SUSPENDED")),
            "{body}"
        );
        let closed = ws::next(&mut sock).await.expect_err("the socket is closed");
        assert_eq!(closed.0, 4403, "{closed:?}");

        // A platform administrator may look at it (audited there); an event raised meanwhile waits.
        let r = gql_in(
            &t,
            &admin.token,
            &dev.org_id,
            "mutation($id: ID!) { sendTestEvent(endpointId: $id) { id } }",
            json!({ "id": endpoint }),
        )
        .await;
        assert_eq!(code(&r), "FORBIDDEN", "a visiting administrator reads, it does not act: {r}");
        // The suspension's own event (org.suspended) is not subscribed: raise one that is, the way
        // Gantry raises its own (the outbox), while the organization is suspended.
        let delivery = {
            use gantry::platform::ids::OrgId;
            let org: OrgId = dev.org_id.parse().unwrap();
            let event = gantry::events::PendingEvent::new(&t.app, &org, "webhook.test", json!({ "message": "held" }));
            let written: Result<gantry::events::PendingEvent, gantry::error::Error> = async {
                gantry::transaction!(t.app.db, c => {
                    let e = gantry::outbox!(c, event);
                    Ok::<_, gantry::error::Error>(e)
                })
            }
            .await;
            written.unwrap().publish(&t.app).await;
            let q = "{ webhookDeliveries(first: 1) { edges { node { id status attemptCount nextAttemptAt } } } }";
            until("the paused delivery is looked at and put back", async || {
                let r = gql_in(&t, &admin.token, &dev.org_id, q, json!({})).await;
                let node = r["data"]["webhookDeliveries"]["edges"][0]["node"].clone();
                let next = node["nextAttemptAt"].as_str().and_then(gantry::platform::clock::parse_rfc3339)?;
                use gantry::platform::clock::Clock;
                (next > t.clock.now_ms()).then_some(node)
            })
            .await
        };
        assert_eq!(
            (delivery["status"].as_str(), delivery["attemptCount"].as_i64()),
            (Some("PENDING"), Some(0)),
            "{delivery}"
        );
        assert_eq!(receiver.count(), 0, "nothing was sent while suspended");
        let r = gql_in(
            &t,
            &admin.token,
            &dev.org_id,
            "{ auditLog(first: 20) { edges { node { action actorId data } } } }",
            json!({}),
        )
        .await;
        let audited = r["data"]["auditLog"]["edges"]
            .as_array()
            .unwrap_or_else(|| panic!("{r}"))
            .iter()
            .any(|e| e["node"]["action"] == "admin.accessed" && e["node"]["actorId"] == admin.user_id.as_str());
        assert!(audited, "[{backend:?}] the administrator's visit is in the organization's audit log: {r}");

        // Lifted: credentials work again and the waiting delivery goes at once.
        t.gql_ok(
            Some(&admin.token),
            "mutation($id: ID!) { unsuspendOrganization(id: $id) { suspendedAt } }",
            json!({ "id": dev.org_id }),
        )
        .await;
        t.gql_ok(Some(&key), "{ apiKeys { totalCount } }", json!({})).await;
        until("the held delivery arrives", async || {
            t.app.webhooks.wake();
            (receiver.count() >= 1).then_some(())
        })
        .await;
        assert!(receiver.got.lock().unwrap()[0].body.contains("held"));
        let r = t
            .gql_ok(Some(&key), "{ events(first: 20, types: [\"org.*\"]) { edges { node { type } } } }", json!({}))
            .await;
        let types: Vec<&str> =
            r["events"]["edges"].as_array().unwrap().iter().map(|e| e["node"]["type"].as_str().unwrap()).collect();
        assert!(types.contains(&"org.suspended") && types.contains(&"org.unsuspended"), "{types:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasing_a_user_scrubs_their_data_and_deletes_their_personal_organization() {
    for backend in backends() {
        let smtp = crate::smtp::SmtpServer::start().await;
        let url = smtp.url();
        let t = TestApp::with_config(backend, move |c| c.smtp_url = Some(url)).await;
        let admin = t.register("admin@example.com").await;
        t.lift_starter_limits(&admin.token).await;
        let owner = t.register("owner@example.com").await;
        let dev = t.register("leaving@example.com").await;
        let (dev_key, _) = t.create_key(&dev.token, &["keys:read"]).await;
        let r = gql_in(
            &t,
            &owner.token,
            &owner.org_id,
            "mutation { inviteMember(input: {email: \"leaving@example.com\", role: MEMBER}) { mailSent } }",
            json!({}),
        )
        .await;
        assert_eq!(r["data"]["inviteMember"]["mailSent"], true, "{r}");
        let token = smtp.nth("leaving@example.com", 2).await.token();
        t.gql_ok(
            Some(&dev.token),
            "mutation($t: String!) { acceptInvitation(token: $t) { id } }",
            json!({ "t": token }),
        )
        .await;
        // A team of which the user is the last OWNER, with another member: refused until handed over.
        let r = t
            .gql_ok(Some(&dev.token), "mutation { createOrganization(name: \"Side project\") { id } }", json!({}))
            .await;
        let side = r["createOrganization"]["id"].as_str().unwrap().to_string();
        gql_in(
            &t,
            &dev.token,
            &side,
            "mutation { inviteMember(input: {email: \"owner@example.com\", role: ADMIN}) { mailSent } }",
            json!({}),
        )
        .await;
        let token = smtp.nth("owner@example.com", 2).await.token();
        t.gql_ok(
            Some(&owner.token),
            "mutation($t: String!) { acceptInvitation(token: $t) { id } }",
            json!({ "t": token }),
        )
        .await;
        let erase = "mutation($id: ID!) { deleteUser(id: $id) }";
        let r = t.gql(Some(&admin.token), erase, json!({ "id": dev.user_id })).await;
        assert_eq!(code(&r), "CONFLICT", "{r}");
        assert!(r["errors"][0]["message"].as_str().unwrap().contains("Side project"), "{r}");
        gql_in(
            &t,
            &dev.token,
            &side,
            "mutation($u: ID!) { transferOwnership(userId: $u) }",
            json!({ "u": owner.user_id }),
        )
        .await;

        let (status, body) = t.rest("DELETE", &format!("/admin/users/{}", dev.user_id), Some(&admin.token), None).await;
        assert_eq!(status, 204, "[{backend:?}] {body}");
        // The account is gone: no sign-in, no session, no key of its personal organization.
        assert_eq!(code(&login(&t, "leaving@example.com").await), "UNAUTHENTICATED");
        let (status, _) = t.gql_status(Some(&dev.token), "{ viewer { id } }", json!({})).await;
        assert_eq!(status, 401);
        let (status, _) = t.gql_status(Some(&dev_key), "{ viewer { id } }", json!({})).await;
        assert_eq!(status, 401, "its keys were revoked");
        assert_eq!(
            code(
                &t.gql(
                    Some(&admin.token),
                    "query($id: ID!) { adminUser(id: $id) { id } }",
                    json!({ "id": dev.user_id })
                )
                .await
            ),
            "NOT_FOUND"
        );
        // Out of the teams, and its address scrubbed from their events and audit entries.
        let r = gql_in(&t, &owner.token, &owner.org_id, "{ members { email } events(first: 50) { edges { node { type data } } } auditLog(first: 50) { edges { node { data } } } }", json!({})).await;
        let text = r["data"].to_string();
        assert!(!text.contains("leaving@example.com"), "[{backend:?}] the address survives: {text}");
        assert!(text.contains("member.joined"), "{text}");
        assert_eq!(r["data"]["members"], json!([{ "email": "owner@example.com" }]));
        // Its personal organization is deleted (its invoices would be kept).
        let r = t
            .gql_ok(
                Some(&admin.token),
                "query($s: String) { adminOrganizations(search: $s) { edges { node { id deletedAt purgeAfter } } } }",
                json!({ "s": "personal" }),
            )
            .await;
        let personal = r["adminOrganizations"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["node"]["id"] == dev.org_id.as_str())
            .cloned();
        let personal = personal.unwrap_or_else(|| panic!("{r}"));
        assert!(personal["node"]["deletedAt"].is_string() && personal["node"]["purgeAfter"].is_string(), "{personal}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn administration_is_granted_and_revoked_and_the_last_administrator_stays() {
    for backend in backends() {
        let t = TestApp::new(backend).await;
        let admin = t.register("admin@example.com").await;
        t.lift_starter_limits(&admin.token).await;
        let dev = t.register("dev@example.com").await;
        let list = "{ adminUsers { totalCount } }";
        assert_eq!(code(&t.gql(Some(&dev.token), list, json!({})).await), "FORBIDDEN");
        let revoke = "mutation($id: ID!) { revokePlatformAdmin(userId: $id) { isPlatformAdmin } }";
        let grant = "mutation($id: ID!) { grantPlatformAdmin(userId: $id) { isPlatformAdmin } }";
        assert_eq!(
            code(&t.gql(Some(&admin.token), revoke, json!({ "id": admin.user_id })).await),
            "BAD_USER_INPUT",
            "not oneself"
        );
        let r = t.gql_ok(Some(&admin.token), grant, json!({ "id": dev.user_id })).await;
        assert_eq!(r["grantPlatformAdmin"]["isPlatformAdmin"], true);
        // The same session is an administrator at once (its cached flag was dropped).
        t.gql_ok(Some(&dev.token), list, json!({})).await;
        let r = t.gql_ok(Some(&dev.token), revoke, json!({ "id": admin.user_id })).await;
        assert_eq!(r["revokePlatformAdmin"]["isPlatformAdmin"], false);
        assert_eq!(code(&t.gql(Some(&admin.token), list, json!({})).await), "FORBIDDEN");

        // The command line, on the same database: a clear message for an unknown address; the last
        // administrator is kept.
        if backend != Backend::SqliteMemory {
            continue;
        }
        let db = t.app.config.database_url.clone().unwrap();
        let run = |args: &[&str]| {
            std::process::Command::new(env!("CARGO_BIN_EXE_gantry"))
                .args(args)
                .env("DATABASE_URL", &db)
                .env("GANTRY_DATA_DIR", &t.app.config.data_dir)
                .env("GANTRY_LOG", "warn")
                .output()
                .unwrap()
        };
        let out = run(&["admin", "grant", "nobody@example.com"]);
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("nobody@example.com"), "{out:?}");
        let out = run(&["admin", "revoke", "dev@example.com"]);
        assert!(!out.status.success(), "the last administrator: {out:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("last platform administrator"), "{out:?}");
        let out = run(&["admin", "grant", "admin@example.com"]);
        assert!(out.status.success(), "{out:?}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("admin@example.com"), "{out:?}");
        let r = login(&t, "admin@example.com").await;
        let fresh = r["data"]["login"]["session"]["token"].as_str().unwrap();
        t.gql_ok(Some(fresh), list, json!({})).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn platform_analytics_count_people_calls_deliveries_and_revenue() {
    for backend in backends() {
        let t = TestApp::new(backend).await;
        let admin = t.register("admin@example.com").await;
        t.lift_starter_limits(&admin.token).await;
        let dev = t.register("dev@example.com").await;
        let (key, _) = t.create_key(&dev.token, &["*"]).await;
        for _ in 0..5 {
            t.gql_ok(Some(&key), "{ viewer { id } }", json!({})).await;
        }
        t.gql_ok(
            Some(&dev.token),
            "mutation { addPaymentMethod(input: {number: \"4242 4242 4242 4242\", expMonth: 12, expYear: 2040, cvc: \"123\"}) { id } }",
            json!({}),
        )
        .await;
        let r = t
            .gql_ok(Some(&dev.token), "mutation { changeSubscription(planId: \"pln_00000000000000000000000pro\") { invoice { status total { amount } } } }", json!({}))
            .await;
        let paid = r["changeSubscription"]["invoice"]["total"]["amount"].as_i64().unwrap();
        assert_eq!(r["changeSubscription"]["invoice"]["status"], "PAID");
        gantry::server::flush(&t.app).await;
        use gantry::platform::clock::Clock;
        let start = gantry::platform::clock::rfc3339(t.clock.now_ms() - 86_400_000);
        let end = gantry::platform::clock::rfc3339(t.clock.now_ms() + 86_400_000);
        let (status, body) =
            t.rest("GET", &format!("/admin/analytics?start={start}&end={end}"), Some(&admin.token), None).await;
        assert_eq!(status, 200, "{body}");
        let a = &body["data"];
        assert_eq!(
            (a["users"].as_i64(), a["new_users"].as_i64(), a["organizations"].as_i64()),
            (Some(2), Some(2), Some(2)),
            "{a}"
        );
        let by_plan: Vec<(String, i64)> = a["organizations_by_plan"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p["plan_name"].as_str().unwrap().to_string(), p["organizations"].as_i64().unwrap()))
            .collect();
        assert!(by_plan.contains(&("Pro".into(), 1)) && by_plan.contains(&("Starter".into(), 1)), "{by_plan:?}");
        assert!(a["api_calls"].as_i64().unwrap() >= 5, "{a}");
        let revenue = &a["revenue"][0];
        assert_eq!((revenue["amount"].as_i64(), revenue["invoices"].as_i64()), (Some(paid), Some(1)), "{a}");
        let (status, _) = t.rest("GET", "/admin/analytics", Some(&dev.token), None).await;
        assert_eq!(status, 403);
    }
}

//! The end of an organization's data: exports (everything it owns, never a secret, written in
//! chunks by a background job, downloaded through a signed link that expires) and deletion
//! (everything revoked at once, the subscription ended with the month, the data purged in batches
//! after the export window, the invoices kept).

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde_json::{Value, json};

use crate::billing::{app_at, ms};
use crate::common::{TestApp, backends, code};

use crate::teams::gql_in;

const EXPORT: &str = "query($id: ID!) { organizationExport(id: $id) { id status bytes downloadUrl expiresAt } }";

/// Asks for an export acting in `org` and waits (bounded) until it is ready; returns it.
async fn exported(t: &TestApp, token: &str, org: &str) -> Value {
    let r = gql_in(t, token, org, "mutation { exportOrganization { id status } }", json!({})).await;
    let id = r["data"]["exportOrganization"]["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_string();
    for _ in 0..500 {
        let r = gql_in(t, token, org, EXPORT, json!({ "id": id })).await;
        let e = &r["data"]["organizationExport"];
        match e["status"].as_str() {
            Some("READY") => return e.clone(),
            Some("PENDING" | "RUNNING") => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
            _ => panic!("{r}"),
        }
    }
    panic!("the export never became ready");
}

fn path_of(url: &str) -> String {
    let u = url::Url::parse(url).unwrap();
    format!("{}?{}", u.path(), u.query().unwrap_or(""))
}

async fn count(t: &TestApp, table: &str, org: &str) -> i64 {
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let sql = t.app.db.sql(&format!("SELECT CAST(COUNT(*) AS BIGINT) AS n FROM {table} WHERE org_id = ?"));
    let n: Result<i64, gantry::error::Error> = async {
        Ok(gantry::with_conn!(t.app.db, c => {
            diesel::sql_query(&sql).bind::<diesel::sql_types::Text, _>(org).get_result::<N>(c).await?.n
        }))
    }
    .await;
    n.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_holds_what_the_organization_owns_never_a_secret_and_its_link_expires() {
    for backend in backends() {
        let t = app_at(backend, "2027-03-10T12:00:00Z").await;
        let admin = t.register("admin@example.com").await;
        t.lift_starter_limits(&admin.token).await;
        let dev = t.register("dev@example.com").await;
        let (secret, key_id) = t.create_key(&dev.token, &["*"]).await;
        t.gql_ok(
            Some(&dev.token),
            "mutation { createWebhookEndpoint(input: {url: \"https://hooks.example.com/in\", headers: {Authorization: \"Bearer topsecret-receiver\"}}) { endpoint { id } } }",
            json!({}),
        )
        .await;
        t.gql_ok(
            Some(&dev.token),
            "mutation { addPaymentMethod(input: {number: \"4242 4242 4242 4242\", expMonth: 12, expYear: 2040, cvc: \"123\"}) { id } }",
            json!({}),
        )
        .await;
        t.gql_ok(
            Some(&dev.token),
            "mutation { changeSubscription(planId: \"pln_00000000000000000000000pro\") { invoice { id } } }",
            json!({}),
        )
        .await;
        for _ in 0..3 {
            t.gql_ok(Some(&secret), "{ viewer { id } }", json!({})).await;
        }
        gantry::server::flush(&t.app).await;
        // A long audit log, so the document is written (and read back) in several chunks.
        let org: gantry::platform::ids::OrgId = dev.org_id.parse().unwrap();
        let entries: Vec<gantry::events::NewAudit> = (0..1500)
            .map(|i| {
                gantry::events::NewAudit::raw(
                    &t.app,
                    &org,
                    "user",
                    &dev.user_id,
                    None,
                    "test.filler",
                    "thing",
                    &format!("t{i}"),
                    json!({ "n": i, "pad": "x".repeat(120) }),
                )
            })
            .collect();
        let written: Result<(), gantry::error::Error> = async {
            gantry::transaction!(t.app.db, c => {
                for e in &entries {
                    diesel::insert_into(gantry::platform::db::schema::audit_log::table).values(e.clone()).execute(c).await?;
                }
                Ok::<_, gantry::error::Error>(())
            })
        }
        .await;
        written.unwrap();

        // Only OWNER and ADMIN export.
        let (reader, _) = t.create_key(&dev.token, &["keys:read", "org:read"]).await;
        assert_eq!(code(&t.gql(Some(&reader), "mutation { exportOrganization { id } }", json!({})).await), "FORBIDDEN");

        let e = exported(&t, &dev.token, &dev.org_id).await;
        let url = e["downloadUrl"].as_str().unwrap().to_string();
        assert!(e["bytes"].as_i64().unwrap() > 256 * 1024, "{e}");
        let resp = t.http.get(t.url(&path_of(&url))).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "application/json");
        assert!(resp.headers()["content-disposition"].to_str().unwrap().starts_with("attachment"));
        let text = resp.text().await.unwrap();
        assert_eq!(text.len() as i64, e["bytes"].as_i64().unwrap());
        for never in [secret.as_str(), "topsecret-receiver", "$argon2"] {
            assert!(!text.contains(never), "[{backend:?}] the export holds a secret: {never}");
        }
        let doc: Value = serde_json::from_str(&text).expect("one JSON document");
        assert_eq!(doc["organization"]["id"], dev.org_id.as_str());
        assert_eq!(doc["members"][0]["email"], "dev@example.com");
        let keys: Vec<&str> = doc["apiKeys"].as_array().unwrap().iter().map(|k| k["id"].as_str().unwrap()).collect();
        assert!(keys.contains(&key_id.as_str()), "{keys:?}");
        assert_eq!(doc["webhookEndpoints"][0]["headerNames"], json!(["Authorization"]));
        assert_eq!(doc["subscription"]["planId"], "pln_00000000000000000000000pro");
        assert!(!doc["invoices"][0]["lines"].as_array().unwrap().is_empty(), "{}", doc["invoices"]);
        assert!(!doc["usageRollups"].as_array().unwrap().is_empty());
        assert_eq!(doc["paymentMethods"][0]["last4"], "4242");
        let fillers = doc["auditLog"].as_array().unwrap().iter().filter(|a| a["action"] == "test.filler").count();
        assert_eq!(fillers, 1500);

        // A link with another token is refused; after a day the link is dead and the document gone.
        let forged = path_of(&url).replace("token=", "token=0");
        assert_eq!(t.http.get(t.url(&forged)).send().await.unwrap().status(), 404);
        t.clock.advance_ms(24 * 3_600_000 + 1000);
        assert_eq!(t.http.get(t.url(&path_of(&url))).send().await.unwrap().status(), 404);
        gantry::server::flush(&t.app).await;
        let r = gql_in(&t, &dev.token, &dev.org_id, EXPORT, json!({ "id": e["id"] })).await;
        assert_eq!(r["data"]["organizationExport"]["status"], "EXPIRED", "{r}");
        assert_eq!(r["data"]["organizationExport"]["downloadUrl"], Value::Null);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_organization_is_refused_at_once_billed_to_its_month_and_purged_after_the_window() {
    for backend in backends() {
        let t = app_at(backend, "2027-03-10T12:00:00Z").await;
        let admin = t.register("admin@example.com").await;
        t.lift_starter_limits(&admin.token).await;
        let owner = t.register("owner@example.com").await;
        let r = t
            .gql_ok(Some(&owner.token), "mutation { createOrganization(name: \"Acme Corp\") { id slug } }", json!({}))
            .await;
        let org = r["createOrganization"]["id"].as_str().unwrap().to_string();
        let slug = r["createOrganization"]["slug"].as_str().unwrap().to_string();
        let r = gql_in(
            &t,
            &owner.token,
            &org,
            "mutation { createApiKey(input: {name: \"k\", scopes: [\"*\"]}) { secret } }",
            json!({}),
        )
        .await;
        let key = r["data"]["createApiKey"]["secret"].as_str().unwrap_or_else(|| panic!("{r}")).to_string();
        gql_in(
            &t,
            &owner.token,
            &org,
            "mutation { createWebhookEndpoint(input: {url: \"https://hooks.example.com/in\"}) { endpoint { id } } }",
            json!({}),
        )
        .await;
        let card = "mutation { addPaymentMethod(input: {number: \"4242 4242 4242 4242\", expMonth: 12, expYear: 2040, cvc: \"123\"}) { id } }";
        gql_in(&t, &owner.token, &org, card, json!({})).await;
        let r = gql_in(
            &t,
            &owner.token,
            &org,
            "mutation { changeSubscription(planId: \"pln_00000000000000000000000pro\") { invoice { status } } }",
            json!({}),
        )
        .await;
        assert_eq!(r["data"]["changeSubscription"]["invoice"]["status"], "PAID", "{r}");
        let export = exported(&t, &owner.token, &org).await;

        // Only its OWNER deletes it, typing its slug; a personal organization goes with its user.
        let del = "mutation($c: String!) { deleteOrganization(confirm: $c) { id purgeAfter } }";
        let r = gql_in(&t, &key, &org, del, json!({ "c": slug })).await;
        assert_eq!(code(&r), "FORBIDDEN", "a key is not an OWNER: {r}");
        let r = gql_in(&t, &owner.token, &org, del, json!({ "c": "acme" })).await;
        assert_eq!(
            (code(&r), r["errors"][0]["extensions"]["field"].as_str()),
            ("BAD_USER_INPUT", Some("confirm")),
            "{r}"
        );
        let r = t.gql(Some(&owner.token), del, json!({ "c": "whatever" })).await;
        assert_eq!(code(&r), "BAD_USER_INPUT", "a personal organization: {r}");
        let (status, body) = t
            .http
            .delete(t.url(&format!("/api/v1/organization?confirm={slug}")))
            .bearer_auth(&owner.token)
            .header("x-organization-id", &org)
            .send()
            .await
            .map(|r| (r.status().as_u16(), r))
            .unwrap();
        let body: Value = body.json().await.unwrap();
        assert_eq!(status, 200, "[{backend:?}] {body}");
        assert_eq!(body["data"]["purge_after"], "2027-04-09T12:00:00.000Z", "30 days later");
        // An export is made at deletion; its link (mailed to the owner) works until the purge.
        let last = body["data"]["export_id"].as_str().unwrap_or_else(|| panic!("{body}")).to_string();
        let mailed = async || -> Option<String> {
            let dir = t.app.config.data_dir.join("mail");
            std::fs::read_dir(&dir)
                .ok()?
                .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
                .map(|m| crate::smtp::decode_qp(&m))
                .find(|m| m.contains(&format!("/exports/{last}/download")))
        };
        let mut mail = None;
        for _ in 0..500 {
            mail = mailed().await;
            if mail.is_some() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let mail = mail.expect("the export's link is mailed");
        let mailed_link =
            path_of(mail.split_whitespace().find(|w| w.contains(&format!("/exports/{last}/download"))).unwrap());
        assert!(mail.contains("removed when the link stops working"), "{mail}");

        // Refused at once: its key is revoked, the owner's session cannot act in it, it is gone
        // from their organizations; the export's link still works through the window.
        let (status, _) = t.gql_status(Some(&key), "{ viewer { id } }", json!({})).await;
        assert_eq!(status, 401, "revoked");
        let r = gql_in(&t, &owner.token, &org, "{ viewer { id } }", json!({})).await;
        assert_eq!(r["errors"][0]["extensions"]["reason"], "ORGANIZATION_DELETED", "{r}");
        let r = t.gql_ok(Some(&owner.token), "{ organizations { id } }", json!({})).await;
        assert!(!r["organizations"].to_string().contains(&org), "{r}");
        let link = path_of(export["downloadUrl"].as_str().unwrap());
        assert_eq!(t.http.get(t.url(&link)).send().await.unwrap().status(), 200);

        // Billed for the month it was deleted in, then nothing more.
        let before = count(&t, "invoices", &org).await;
        t.clock.set_ms(ms("2027-04-01T00:10:00Z"));
        gantry::billing::run(&t.app).await;
        assert_eq!(count(&t, "invoices", &org).await, before + 1, "the month of the deletion is invoiced");
        assert_eq!(
            t.http.get(t.url(&mailed_link)).send().await.unwrap().status(),
            200,
            "three weeks later, within the window"
        );
        t.clock.set_ms(ms("2027-05-01T00:10:00Z"));
        gantry::billing::run(&t.app).await;
        assert_eq!(count(&t, "invoices", &org).await, before + 1, "and nothing after it");

        // Past the window its data is purged; what billing keeps stays.
        for table in ["api_keys", "webhook_endpoints", "events", "audit_log", "memberships", "org_exports"] {
            assert!(count(&t, table, &org).await > 0, "{table} had rows");
        }
        t.clock.set_ms(ms("2027-05-10T00:00:00Z"));
        gantry::server::flush(&t.app).await;
        for table in
            ["api_keys", "webhook_endpoints", "events", "audit_log", "memberships", "org_exports", "usage_rollups"]
        {
            assert_eq!(count(&t, table, &org).await, 0, "[{backend:?}] {table} still has rows");
        }
        assert_eq!(count(&t, "invoices", &org).await, before + 1, "invoices are kept");
        assert_eq!(t.http.get(t.url(&mailed_link)).send().await.unwrap().status(), 404, "the window is over");
        assert!(count(&t, "payments", &org).await > 0, "payments are kept");
        let r = t
            .gql_ok(
                Some(&admin.token),
                "query($s: String) { adminOrganizations(search: $s) { edges { node { id deletedAt } } } }",
                json!({ "s": "acme" }),
            )
            .await;
        assert_eq!(
            r["adminOrganizations"]["edges"][0]["node"]["id"],
            org.as_str(),
            "the organization's row stays: {r}"
        );
    }
}

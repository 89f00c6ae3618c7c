//! Billing through REST on every backend: plans, the subscription, an upgrade and a downgrade,
//! invoices as JSON and as a printable page, payment methods, and `/analytics/costs` reading the
//! same numbers as `upcomingInvoice`.

use serde_json::json;

use crate::common::{TestApp, backends};

const PRO: &str = "pln_00000000000000000000000pro";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn billing_rest_rows_answer_with_the_graphql_numbers() {
    for backend in backends() {
        let t = TestApp::with_config(backend, |c| c.session_ttl_secs = 400 * 86_400).await;
        t.clock.set_ms(gantry::platform::clock::parse_rfc3339("2027-05-11T06:00:00Z").unwrap());
        let admin = t.register("admin@rest-billing.test").await;
        t.lift_starter_limits(&admin.token).await;
        let s = t.register("owner@rest-billing.test").await;
        let tok = Some(s.token.as_str());

        let (status, plans) = t.rest("GET", "/billing/plans", tok, None).await;
        assert_eq!(status, 200, "[{backend:?}] {plans}");
        let pro = plans["data"].as_array().unwrap().iter().find(|p| p["slug"] == "pro").expect("pro").clone();
        assert_eq!((pro["id"].as_str(), pro["quota_mode"].as_str()), (Some(PRO), Some("OVERAGE")), "{pro}");

        let (status, cur) = t.rest("GET", "/billing/current", tok, None).await;
        assert_eq!((status, cur["data"]["plan"]["slug"].as_str()), (200, Some("starter")), "{cur}");
        assert_eq!(cur["data"]["billing_cycle"], "MONTHLY");

        // Bad input names the REST field.
        let (status, e) = t.rest("POST", "/billing/upgrade", tok, Some(json!({ "billing_cycle": "weekly" }))).await;
        assert_eq!((status, e["error"]["details"]["field"].as_str()), (422, Some("plan_id")), "{e}");
        let bad = json!({ "plan_id": PRO, "billing_cycle": "weekly" });
        let (status, e) = t.rest("POST", "/billing/upgrade", tok, Some(bad)).await;
        assert_eq!((status, e["error"]["details"]["field"].as_str()), (422, Some("billing_cycle")), "{e}");

        // An upgrade without a card is refused and changes nothing.
        let (status, e) = t.rest("POST", "/billing/upgrade", tok, Some(json!({ "plan_id": PRO }))).await;
        assert_eq!((status, e["error"]["type"].as_str()), (409, Some("conflict")), "[{backend:?}] {e}");
        let (_, cur) = t.rest("GET", "/billing/current", tok, None).await;
        assert_eq!(cur["data"]["plan"]["slug"], "starter");

        let card = json!({ "number": "4242 4242 4242 4242", "exp_month": 12, "exp_year": 2040, "cvc": "123" });
        let (status, pm) = t.rest("POST", "/billing/payment-methods", tok, Some(card)).await;
        assert_eq!(
            (status, pm["data"]["last4"].as_str(), pm["data"]["is_default"].as_bool()),
            (201, Some("4242"), Some(true)),
            "{pm}"
        );
        let (status, preview) = t.rest("POST", "/billing/preview", tok, Some(json!({ "plan_id": PRO }))).await;
        assert_eq!((status, preview["data"]["immediate"].as_bool()), (200, Some(true)), "{preview}");
        let (status, up) = t.rest("POST", "/billing/upgrade", tok, Some(json!({ "plan_id": PRO }))).await;
        assert_eq!((status, up["data"]["subscription"]["plan"]["slug"].as_str()), (200, Some("pro")), "{up}");
        let inv = up["data"]["invoice"].clone();
        assert_eq!(inv["status"], "PAID", "{inv}");
        // The charge is the preview's total, to the cent.
        assert_eq!(inv["total"], preview["data"]["total"], "{inv}");

        // The invoice: JSON in the list and alone, and a printable page with the same numbers.
        let (status, list) = t.rest("GET", "/billing/invoices?status=paid", tok, None).await;
        assert_eq!(status, 200, "{list}");
        assert_eq!(list["data"][0]["id"], inv["id"], "{list}");
        assert_eq!(list["meta"]["pagination"]["total_count"], 1);
        let (status, e) = t.rest("GET", "/billing/invoices?status=late", tok, None).await;
        assert_eq!((status, e["error"]["details"]["field"].as_str()), (422, Some("status")), "{e}");
        let id = inv["id"].as_str().unwrap();
        let (status, one) = t.rest("GET", &format!("/billing/invoices/{id}"), tok, None).await;
        assert_eq!((status, &one["data"]["lines"]), (200, &inv["lines"]), "{one}");

        let page = t
            .http
            .get(t.url(&format!("/api/v1/billing/invoices/{id}/html")))
            .bearer_auth(&s.token)
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 200);
        assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
        assert_eq!(page.headers()["cache-control"], "private, no-store");
        let html = page.text().await.unwrap();
        let number = inv["number"].as_str().unwrap();
        let total = inv["total"]["amount"].as_i64().unwrap();
        assert!(html.contains(&format!("Invoice {number}")), "{html}");
        assert!(html.contains(&gantry::billing::html::minor(total)), "total {total} not in {html}");
        for line in inv["lines"].as_array().unwrap() {
            assert!(html.contains(line["description"].as_str().unwrap()), "{line} not in the page");
        }
        // Without billing:read, or for a stranger, no page.
        let (key, _) = t.create_key(&s.token, &["keys:read"]).await;
        let (status, e) = t.rest("GET", &format!("/billing/invoices/{id}/html"), Some(&key), None).await;
        assert_eq!((status, e["error"]["type"].as_str()), (403, Some("permission_error")), "{e}");
        let other = t.register("stranger@rest-billing.test").await;
        let (status, _) = t.rest("GET", &format!("/billing/invoices/{id}/html"), Some(&other.token), None).await;
        assert_eq!(status, 404);

        // Costs: the running month so far, the same answer as upcomingInvoice.
        let (status, costs) = t.rest("GET", "/analytics/costs", tok, None).await;
        assert_eq!(status, 200, "{costs}");
        let (_, upcoming) = t.rest("GET", "/billing/invoices/upcoming", tok, None).await;
        assert_eq!(costs["data"]["total"], upcoming["data"]["total"], "{costs} vs {upcoming}");
        let g = t
            .gql_ok(tok, "{ upcomingInvoice { total { amount currency } forecastTotal { amount } } }", json!({}))
            .await;
        assert_eq!(costs["data"]["total"], g["upcomingInvoice"]["total"]);
        assert_eq!(costs["data"]["forecast_total"]["amount"], g["upcomingInvoice"]["forecastTotal"]["amount"]);

        // A downgrade waits for the period end; resume undoes it; cancel schedules the free plan.
        let (status, down) = t
            .rest("POST", "/billing/downgrade", tok, Some(json!({ "plan_id": "pln_0000000000000000000starter" })))
            .await;
        assert_eq!(status, 200, "{down}");
        assert_eq!(down["data"]["subscription"]["plan"]["slug"], "pro");
        assert_eq!(down["data"]["subscription"]["scheduled_change"]["plan"]["slug"], "starter", "{down}");
        assert!(down["data"]["invoice"].is_null());
        let (status, res) = t.rest("POST", "/billing/resume", tok, None).await;
        assert_eq!((status, &res["data"]["scheduled_change"]), (200, &json!(null)), "{res}");
        let (status, c) = t.rest("POST", "/billing/cancel", tok, None).await;
        assert_eq!((status, c["data"]["cancel_at_period_end"].as_bool()), (200, Some(true)), "{c}");

        // Payment methods: listed, removed (204), then gone.
        let pm_id = pm["data"]["id"].as_str().unwrap();
        let (status, pms) = t.rest("GET", "/billing/payment-methods", tok, None).await;
        assert_eq!((status, pms["data"][0]["id"].as_str()), (200, Some(pm_id)), "{pms}");
        let (status, _) = t.rest("DELETE", &format!("/billing/payment-methods/{pm_id}"), tok, None).await;
        assert_eq!(status, 204);
        let (status, e) = t.rest("DELETE", &format!("/billing/payment-methods/{pm_id}"), tok, None).await;
        assert_eq!((status, e["error"]["type"].as_str()), (404, Some("not_found")), "{e}");
    }
}

//! Usage-based billing on every backend: a spend cap turning overage into a hard stop, billable
//! metrics over reported usage priced per plan, the upcoming invoice, the marketplace revenue
//! share, and invoices closed unpaid by an administrator.

use serde_json::{Value, json};

use crate::billing::{PRO, add_card, app_at, ms};
use crate::common::{TestApp, backends, code};

async fn upgrade(t: &TestApp, token: &str) {
    let q = "mutation { changeSubscription(planId: \"pln_00000000000000000000000pro\") { subscription { plan { slug } } } }";
    t.gql_ok(Some(token), q, json!({})).await;
}

const LINES: &str = "lines { kind description quantity unitPriceMicros amount { amount } appId }";

fn kinds_and_amounts(lines: &Value) -> Vec<(String, i64)> {
    lines
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["kind"].as_str().unwrap().to_string(), l["amount"]["amount"].as_i64().unwrap()))
        .collect()
}

async fn invoices(t: &TestApp, token: &str) -> Vec<Value> {
    let q = format!(
        "{{ invoices(first: 100) {{ edges {{ node {{ id status kind periodStart total {{ amount }} {LINES} }} }} }} }}"
    );
    let d = t.gql_ok(Some(token), &q, json!({})).await;
    d["invoices"]["edges"].as_array().unwrap().iter().map(|e| e["node"].clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spend_cap_turns_overage_into_a_hard_stop() {
    for backend in backends() {
        let t = app_at(backend, "2027-03-16T12:00:00Z").await;
        let admin = t.register("admin@cap.test").await;
        let capped = t.register("capped@cap.test").await;
        let open = t.register("open@cap.test").await;
        // Pro: 3 requests included, then 0.10 each.
        let edit = "mutation($i: UpdatePlanInput!) { updatePlan(id: \"pln_00000000000000000000000pro\", input: $i) { quotaMode } }";
        let tiers = json!([{ "upTo": null, "unitPriceMicros": 100_000 }]);
        t.gql_ok(
            Some(&admin.token),
            edit,
            json!({ "i": { "monthlyQuota": 3, "quotaMode": "OVERAGE", "overageTiers": tiers } }),
        )
        .await;
        for s in [&capped, &open] {
            let q = "mutation($o: ID!) { setOrganizationPlan(organizationId: $o, planId: \"pln_00000000000000000000000pro\") { slug } }";
            t.gql_ok(Some(&admin.token), q, json!({ "o": s.org_id })).await;
        }
        let set = "mutation($a: Int) { setSpendCap(amount: $a) { spendCap { amount currency } } }";
        let bad = t.gql(Some(&capped.token), set, json!({ "a": -1 })).await;
        assert_eq!(code(&bad), "BAD_USER_INPUT", "[{backend:?}] {bad}");
        assert_eq!(bad["errors"][0]["extensions"]["field"], "amount");
        // 0.25 pays for two requests past the quota: the stop is at 5 requests this month.
        let r = t.gql_ok(Some(&capped.token), set, json!({ "a": 25 })).await;
        assert_eq!(r["setSpendCap"]["spendCap"], json!({ "amount": 25, "currency": "USD" }));
        let mut served = 0;
        let mut refused = None;
        for _ in 0..10 {
            let r = t.gql(Some(&capped.token), "{ viewer { kind } }", json!({})).await;
            if r.get("errors").is_some() {
                refused = Some(r);
                break;
            }
            served += 1;
        }
        let refused = refused.unwrap_or_else(|| panic!("[{backend:?}] the cap never stopped the requests"));
        assert_eq!(code(&refused), "QUOTA_EXCEEDED", "[{backend:?}] {refused}");
        // Billing calls are not counted: five requests are served, the sixth refused.
        assert_eq!(served, 5, "[{backend:?}] a stop at 5 requests");
        // Stopped, the organization can still see what it owes and lift the cap; then it is served.
        let q = "{ subscription { spendCap { amount } } upcomingInvoice { total { amount } } }";
        let seen = t.gql_ok(Some(&capped.token), q, json!({})).await;
        assert_eq!(seen["subscription"]["spendCap"]["amount"], 25, "[{backend:?}] {seen}");
        // A billing field beside any other is an ordinary request, refused while stopped.
        let mixed = t.gql(Some(&capped.token), "{ subscription { id } viewer { kind } }", json!({})).await;
        assert_eq!(code(&mixed), "QUOTA_EXCEEDED", "[{backend:?}] {mixed}");
        let r = t.gql_ok(Some(&capped.token), set, json!({ "a": null })).await;
        assert_eq!(r["setSpendCap"]["spendCap"], Value::Null);
        t.gql_ok(Some(&capped.token), "{ viewer { kind } }", json!({})).await;
        // Without a cap the same plan keeps serving past its quota.
        for _ in 0..8 {
            t.gql_ok(Some(&open.token), "{ viewer { kind } }", json!({})).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_paid_apps_are_billed_previewed_and_shared_with_the_app_owner() {
    for backend in backends() {
        let t = app_at(backend, "2027-03-16T12:00:00Z").await;
        let admin = t.register("admin@metered.test").await;
        t.lift_starter_limits(&admin.token).await;
        let dev = t.register("customer@metered.test").await;
        let maker = t.register("maker@metered.test").await;

        // The operator defines two metrics and prices them on Pro.
        let create = "mutation($i: CreateBillableMetricInput!) { createBillableMetric(input: $i) { id code aggregation fieldName } }";
        let bad = t
            .gql(
                Some(&admin.token),
                create,
                json!({ "i": { "code": "users", "name": "Users", "aggregation": "UNIQUE_COUNT" } }),
            )
            .await;
        assert_eq!(bad["errors"][0]["extensions"]["field"], "fieldName", "[{backend:?}] {bad}");
        let forbidden =
            t.gql(Some(&dev.token), create, json!({ "i": { "code": "x", "name": "X", "aggregation": "COUNT" } })).await;
        assert_eq!(code(&forbidden), "FORBIDDEN");
        let storage = t
            .gql_ok(
                Some(&admin.token),
                create,
                json!({ "i": { "code": "storage_gb", "name": "Storage (GB)", "aggregation": "SUM" } }),
            )
            .await;
        let storage = storage["createBillableMetric"]["id"].as_str().unwrap().to_string();
        let users = t.gql_ok(Some(&admin.token), create, json!({ "i": { "code": "active_users", "name": "Active users", "aggregation": "UNIQUE_COUNT", "fieldName": "user" } })).await;
        let users = users["createBillableMetric"]["id"].as_str().unwrap().to_string();
        let dup = t
            .gql(
                Some(&admin.token),
                create,
                json!({ "i": { "code": "storage_gb", "name": "Again", "aggregation": "SUM" } }),
            )
            .await;
        assert_eq!(code(&dup), "CONFLICT");
        let charge = "mutation($i: SetPlanChargeInput!) { setPlanCharge(input: $i) { model freeUnits packageSize tiers { upTo unitPriceMicros } } }";
        // 10 GB included, then 1.00 per GB; 5.00 per started 5 users.
        t.gql_ok(Some(&admin.token), charge, json!({ "i": { "planId": PRO, "metricId": storage, "model": "GRADUATED", "freeUnits": 10, "tiers": [{ "upTo": null, "unitPriceMicros": 1_000_000 }] } })).await;
        t.gql_ok(Some(&admin.token), charge, json!({ "i": { "planId": PRO, "metricId": users, "model": "PACKAGE", "packageSize": 5, "tiers": [{ "upTo": null, "unitPriceMicros": 5_000_000 }] } })).await;
        let bad = t.gql(Some(&admin.token), charge, json!({ "i": { "planId": PRO, "metricId": users, "model": "PACKAGE", "packageSize": 0, "tiers": [{ "upTo": null, "unitPriceMicros": 1 }] } })).await;
        assert_eq!(bad["errors"][0]["extensions"]["field"], "packageSize", "[{backend:?}] {bad}");

        // A paid app (30.00 a month) by another organization, installed mid-March by the customer.
        let q = "mutation($i: CreateAppInput!) { createApp(input: $i) { app { id } } }";
        let i = json!({ "name": "Ledger Sync", "description": "Syncs ledgers", "category": "INTEGRATIONS",
            "requestedScopes": ["usage:read"], "redirectUris": ["https://app.example.com/cb"],
            "pricing": { "model": "FIXED", "amount": 3000, "currency": "USD" } });
        let r = t.gql(Some(&maker.token), q, json!({ "i": i })).await;
        let app_id = r["data"]["createApp"]["app"]["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_string();
        install(&t, &app_id, &dev.org_id, ms("2027-03-16T12:00:00Z")).await;

        add_card(&t, &dev.token, "4242424242424242", false).await;
        upgrade(&t, &dev.token).await;
        let rec = "mutation($i: RecordUsageInput!) { recordUsage(input: $i) { accepted } }";
        let mut events = vec![
            json!({ "metric": "storage_gb", "quantity": 7, "idempotencyKey": "s1" }),
            json!({ "metric": "storage_gb", "quantity": 8, "idempotencyKey": "s2" }),
        ];
        for (n, u) in ["a", "b", "c", "a", "d", "e", "f"].iter().enumerate() {
            events.push(json!({ "metric": "active_users", "quantity": 1, "idempotencyKey": format!("u{n}"), "properties": { "user": u } }));
        }
        let r = t.gql_ok(Some(&dev.token), rec, json!({ "i": { "events": events } })).await;
        assert_eq!(r["recordUsage"]["accepted"], 9);

        // Four days into the installation: what the month holds so far, and where it is heading.
        t.clock.set_ms(ms("2027-03-20T12:00:00Z"));
        let u = t
            .gql_ok(Some(&dev.token), "{ billableUsage { metric { code } value amount { amount } } }", json!({}))
            .await;
        let got: Vec<(String, i64, i64)> = u["billableUsage"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| {
                (
                    b["metric"]["code"].as_str().unwrap().to_string(),
                    b["value"].as_i64().unwrap(),
                    b["amount"]["amount"].as_i64().unwrap(),
                )
            })
            .collect();
        assert_eq!(got, vec![("active_users".into(), 6, 1000), ("storage_gb".into(), 15, 500)], "[{backend:?}] {u}");
        let q = format!(
            "{{ upcomingInvoice {{ status periodStart periodEnd total {{ amount }} forecastTotal {{ amount }} {LINES} forecastLines {{ kind amount {{ amount }} }} }} }}"
        );
        let up = t.gql_ok(Some(&dev.token), &q, json!({})).await["upcomingInvoice"].clone();
        assert_eq!(up["periodEnd"], "2027-04-01T00:00:00.000Z");
        assert_eq!(up["status"], "DRAFT", "the running month's invoice is a draft until the close");
        // 4 of 31 days of 30.00 = 3.87; the fee of April in advance.
        assert_eq!(
            kinds_and_amounts(&up["lines"]),
            vec![("METERED".into(), 1000), ("METERED".into(), 500), ("APP_FEE".into(), 387), ("PLAN_FEE".into(), 9900)],
            "[{backend:?}] {up}"
        );
        assert_eq!(up["total"]["amount"], 500 + 1000 + 387 + 9900);
        let forecast = kinds_and_amounts(&up["forecastLines"]);
        // The app stays installed to the month end (15.5 of 31 days = 15.00); storage at the pace so far.
        assert!(forecast.contains(&("APP_FEE".into(), 1500)), "[{backend:?}] {forecast:?}");
        assert_eq!(up["forecastTotal"]["amount"], forecast.iter().map(|f| f.1).sum::<i64>());
        assert!(up["forecastTotal"]["amount"].as_i64() > up["total"]["amount"].as_i64());

        // The month closes with the same lines; paid, 70 % of the app line is the maker's.
        t.clock.set_ms(ms("2027-04-01T00:10:00Z"));
        gantry::billing::run(&t.app).await;
        let all = invoices(&t, &dev.token).await;
        let march = all.iter().find(|i| i["kind"] == "PERIOD").expect("March");
        assert_eq!(
            kinds_and_amounts(&march["lines"]),
            vec![
                ("METERED".into(), 1000),
                ("METERED".into(), 500),
                ("APP_FEE".into(), 1500),
                ("PLAN_FEE".into(), 9900)
            ],
            "[{backend:?}] {march}"
        );
        assert_eq!(march["lines"][2]["appId"], app_id.as_str());
        assert_eq!(march["status"], "PAID");
        let e = "query($a: ID!) { appEarnings(appId: $a) { totals { gross { amount } developerShare { amount } platformShare { amount } invoiceCount } entries { organizationId gross { amount } } } }";
        let earned = t.gql_ok(Some(&maker.token), e, json!({ "a": app_id })).await;
        assert_eq!(
            earned["appEarnings"]["totals"],
            json!({ "gross": { "amount": 1500 }, "developerShare": { "amount": 1050 }, "platformShare": { "amount": 450 }, "invoiceCount": 1 }),
            "[{backend:?}] {earned}"
        );
        assert_eq!(earned["appEarnings"]["entries"][0]["organizationId"], dev.org_id.as_str());
        let other = t.gql(Some(&dev.token), e, json!({ "a": app_id })).await;
        assert_eq!(code(&other), "NOT_FOUND", "[{backend:?}] only the app's owner reads its earnings");
        let rev = t
            .gql_ok(
                Some(&admin.token),
                "{ marketplaceRevenue { totals { platformShare { amount } } apps { appId } } }",
                json!({}),
            )
            .await;
        assert_eq!(rev["marketplaceRevenue"]["totals"]["platformShare"]["amount"], 450);
        // Running again bills and shares nothing twice.
        gantry::billing::run(&t.app).await;
        let again = t.gql_ok(Some(&maker.token), e, json!({ "a": app_id })).await;
        assert_eq!(again["appEarnings"]["totals"]["invoiceCount"], 1);
    }
}

/// An install as the OAuth consent writes it to the install log (the flow itself is tested with
/// the OAuth client in `oauth.rs`).
async fn install(t: &TestApp, app_id: &str, org: &str, at: i64) {
    let sql =
        format!("INSERT INTO app_install_log (app_id, org_id, kind, at) VALUES ('{app_id}', '{org}', 'install', {at})");
    crate::common::execute_sql(t, &sql).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_voids_an_unpaid_invoice_or_marks_it_uncollectible() {
    for backend in backends() {
        let t = app_at(backend, "2027-03-16T12:00:00Z").await;
        let admin = t.register("admin@void.test").await;
        let late = t.register("late@void.test").await;
        let gone = t.register("gone@void.test").await;
        for s in [&late, &gone] {
            add_card(&t, &s.token, "4242424242424242", false).await;
            upgrade(&t, &s.token).await;
            // From now on the default card is declined: April's fee stays OPEN.
            add_card(&t, &s.token, "4000000000000002", true).await;
        }
        t.clock.set_ms(ms("2027-04-01T00:10:00Z"));
        gantry::billing::run(&t.app).await;
        let open = |s: &str| {
            let s = s.to_string();
            let t = &t;
            async move {
                invoices(t, &s).await.into_iter().find(|i| i["status"] == "OPEN").expect("an open invoice")["id"]
                    .as_str()
                    .unwrap()
                    .to_string()
            }
        };
        let (a, b) = (open(&late.token).await, open(&gone.token).await);
        let status = "{ subscription { status } }";
        assert_eq!(t.gql_ok(Some(&late.token), status, json!({})).await["subscription"]["status"], "PAST_DUE");
        let void = "mutation($id: ID!) { voidInvoice(id: $id) { status } }";
        let r = t.gql(Some(&late.token), void, json!({ "id": a })).await;
        assert_eq!(code(&r), "FORBIDDEN", "[{backend:?}] {r}");
        let r = t.gql_ok(Some(&admin.token), void, json!({ "id": a })).await;
        assert_eq!(r["voidInvoice"]["status"], "VOID");
        assert_eq!(t.gql_ok(Some(&late.token), status, json!({})).await["subscription"]["status"], "ACTIVE");
        let again = t.gql(Some(&admin.token), void, json!({ "id": a })).await;
        assert_eq!(code(&again), "CONFLICT");
        let unc = "mutation($id: ID!) { markInvoiceUncollectible(id: $id) { status } }";
        let r = t.gql_ok(Some(&admin.token), unc, json!({ "id": b })).await;
        assert_eq!(r["markInvoiceUncollectible"]["status"], "UNCOLLECTIBLE");
        // No more retries: the dunning days pass without a charge.
        t.clock.set_ms(ms("2027-04-20T00:00:00Z"));
        gantry::billing::run(&t.app).await;
        let inv = invoices(&t, &gone.token).await;
        assert_eq!(inv.iter().find(|i| i["id"] == b.as_str()).unwrap()["status"], "UNCOLLECTIBLE");
        assert_eq!(t.gql_ok(Some(&gone.token), status, json!({})).await["subscription"]["status"], "PAST_DUE");
    }
}

//! Billing on every backend: proration of upgrades to the second, scheduled downgrades and
//! cancellations, the month close with graduated overage (exactly once, across nodes and crashes),
//! charges through the test provider, dunning to SUSPENDED and back.

use serde_json::{Value, json};

use crate::common::{TestApp, backends, code, refuse_inserts};

pub(crate) const PRO: &str = "pln_00000000000000000000000pro";
const STARTER: &str = "pln_0000000000000000000starter";
const DAY: i64 = 86_400_000;

pub(crate) fn ms(rfc: &str) -> i64 {
    gantry::platform::clock::parse_rfc3339(rfc).unwrap()
}

/// A server whose clock stands at `at`, with sessions that outlive the months a test walks. Only
/// the test's own flushes write the calls' usage (and the test runs billing itself): a timer flush
/// would add the test's requests to the usage a close bills, or close a month mid-test.
pub(crate) async fn app_at(backend: crate::common::Backend, at: &str) -> TestApp {
    let t = TestApp::with_config(backend, |c| {
        c.session_ttl_secs = 400 * 86_400;
        c.usage_flush_interval_ms = 3_600_000;
    })
    .await;
    t.clock.set_ms(ms(at));
    t
}

const SUB: &str = "{ subscription { id status billingCycle plan { slug } currentPeriodStart currentPeriodEnd \
    nextBillingDate autoRenew cancelAtPeriodEnd scheduledChange { plan { slug } billingCycle effectiveAt cancels } } \
    rateLimitStatus { plan { slug } } }";

const INVOICE_FIELDS: &str = "id number status kind total { amount currency } amountDue { amount } periodStart periodEnd \
    attemptCount nextPaymentAttempt lines { kind description quantity unitPriceMicros amount { amount } periodStart periodEnd plan { slug } } \
    payments { status failureCode amount { amount } }";

pub(crate) async fn add_card(t: &TestApp, token: &str, number: &str, make_default: bool) -> Value {
    let q = "mutation($i: AddPaymentMethodInput!) { addPaymentMethod(input: $i) { id brand last4 expMonth expYear isDefault } }";
    let i = json!({ "number": number, "expMonth": 12, "expYear": 2030, "cvc": "123", "makeDefault": make_default });
    t.gql_ok(Some(token), q, json!({ "i": i })).await["addPaymentMethod"].clone()
}

async fn change(t: &TestApp, token: &str, plan: &str, cycle: &str) -> Value {
    let q = format!(
        "mutation($p: ID!, $c: BillingCycle!) {{ changeSubscription(planId: $p, billingCycle: $c) {{ \
         subscription {{ status billingCycle plan {{ slug }} currentPeriodStart currentPeriodEnd scheduledChange {{ plan {{ slug }} }} }} \
         invoice {{ {INVOICE_FIELDS} }} }} }}"
    );
    t.gql(Some(token), &q, json!({ "p": plan, "c": cycle })).await
}

async fn invoices(t: &TestApp, token: &str) -> Vec<Value> {
    let q = format!("{{ invoices(first: 100) {{ totalCount edges {{ node {{ {INVOICE_FIELDS} }} }} }} }}");
    let d = t.gql_ok(Some(token), &q, json!({})).await;
    d["invoices"]["edges"].as_array().unwrap().iter().map(|e| e["node"].clone()).collect()
}

/// Event types in an organization's outbox, oldest first.
async fn event_types(t: &TestApp, org: &str) -> Vec<String> {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use gantry::platform::db::schema::events;
    let org = org.to_string();
    let r: Result<Vec<String>, gantry::error::Error> = async {
        Ok(gantry::with_conn!(t.app.db, c => events::table.filter(events::org_id.eq(&org)).order(events::id.asc()).select(events::event_type).load(c).await?))
    }
    .await;
    r.unwrap()
}

/// Writes `requests` quota units for an organization on a day, as the usage writer does.
async fn record_usage(t: &TestApp, org: &str, day_ms: i64, requests: i64) {
    let sql = format!(
        "INSERT INTO usage_rollups (granularity, org_id, level, bucket_start, api_key_id, operation, status, calls, \
         latency_us_sum, request_bytes, response_bytes, cost_units, quota_units) \
         VALUES ('day', '{org}', 3, {day_ms}, '*', '*', 200, {requests}, 0, 0, 0, {requests}, {requests})"
    );
    crate::common::execute_sql(t, &sql).await;
}

fn amounts(inv: &Value) -> Vec<i64> {
    inv["lines"].as_array().unwrap().iter().map(|l| l["amount"]["amount"].as_i64().unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrades_prorate_to_the_second_and_change_limits_at_once() {
    for backend in backends() {
        let t = app_at(backend, "2027-03-16T12:00:00Z").await;
        let owner = t.register("owner@billing.test").await;
        let tok = owner.token.as_str();
        let s = t.gql_ok(Some(tok), SUB, json!({})).await;
        assert_eq!(s["subscription"]["plan"]["slug"], "starter", "[{backend:?}] a fresh organization is on Starter");
        assert_eq!(s["subscription"]["status"], "ACTIVE");
        assert_eq!(s["subscription"]["billingCycle"], "MONTHLY");
        assert_eq!(s["subscription"]["currentPeriodStart"], "2027-03-01T00:00:00.000Z");
        assert_eq!(s["subscription"]["currentPeriodEnd"], "2027-04-01T00:00:00.000Z");
        assert_eq!(s["subscription"]["autoRenew"], true);

        // An upgrade is charged at once: without a card it is refused and nothing changes.
        let r = change(&t, tok, PRO, "MONTHLY").await;
        assert_eq!(code(&r), "CONFLICT", "[{backend:?}] {r}");
        // Bad cards are refused by field; only brand, last four and expiry come back.
        let q = "mutation($i: AddPaymentMethodInput!) { addPaymentMethod(input: $i) { id } }";
        let bad = t
            .gql(
                Some(tok),
                q,
                json!({ "i": { "number": "4242424242424241", "expMonth": 12, "expYear": 2030, "cvc": "123" } }),
            )
            .await;
        assert_eq!(code(&bad), "BAD_USER_INPUT");
        assert_eq!(bad["errors"][0]["extensions"]["field"], "card.number", "{bad}");
        let expired = t
            .gql(
                Some(tok),
                q,
                json!({ "i": { "number": "4242424242424242", "expMonth": 2, "expYear": 2027, "cvc": "123" } }),
            )
            .await;
        assert_eq!(code(&expired), "BAD_USER_INPUT");
        let card = add_card(&t, tok, "4242 4242 4242 4242", false).await;
        assert_eq!(
            (card["brand"].as_str(), card["last4"].as_str(), card["isDefault"].as_bool()),
            (Some("visa"), Some("4242"), Some(true))
        );

        // Half of March is left: exactly half of 99.00.
        let pq = "query($p: ID!, $c: BillingCycle!) { previewSubscriptionChange(planId: $p, billingCycle: $c) { immediate effectiveAt periodEnd \
                  total { amount } lines { kind quantity unitPriceMicros amount { amount } periodStart periodEnd } } }";
        let p = t.gql_ok(Some(tok), pq, json!({ "p": PRO, "c": "MONTHLY" })).await["previewSubscriptionChange"].clone();
        assert_eq!(p["immediate"], true);
        assert_eq!(p["total"]["amount"], 4950, "[{backend:?}] {p}");
        assert_eq!(p["lines"].as_array().unwrap().len(), 1, "Starter paid nothing: no credit line");
        assert_eq!(p["lines"][0]["unitPriceMicros"], 49_500_000);
        assert_eq!(p["lines"][0]["periodStart"], "2027-03-16T12:00:00.000Z");
        assert_eq!(p["lines"][0]["periodEnd"], "2027-04-01T00:00:00.000Z");

        let r = change(&t, tok, PRO, "MONTHLY").await;
        assert!(r.get("errors").is_none(), "[{backend:?}] {r}");
        let c = &r["data"]["changeSubscription"];
        assert_eq!(c["subscription"]["plan"]["slug"], "pro");
        let inv = &c["invoice"];
        assert_eq!((inv["status"].as_str(), inv["kind"].as_str()), (Some("PAID"), Some("PRORATION")), "{inv}");
        assert_eq!(inv["total"]["amount"], 4950);
        assert_eq!(
            inv["lines"][0]["amount"]["amount"], p["lines"][0]["amount"]["amount"],
            "the preview is what is invoiced"
        );
        assert_eq!(inv["payments"][0]["status"], "SUCCEEDED");
        assert!(inv["number"].as_str().unwrap().starts_with("INV-"));
        // The limits changed at once.
        let s = t.gql_ok(Some(tok), SUB, json!({})).await;
        assert_eq!(s["rateLimitStatus"]["plan"]["slug"], "pro", "[{backend:?}] {s}");

        // Monthly to annual a week later: a credit for the rest of March, the year from March 1.
        t.clock.set_ms(ms("2027-03-24T00:00:00Z"));
        let r = change(&t, tok, PRO, "ANNUAL").await;
        assert!(r.get("errors").is_none(), "[{backend:?}] {r}");
        let c = &r["data"]["changeSubscription"];
        assert_eq!(c["subscription"]["billingCycle"], "ANNUAL");
        assert_eq!(c["subscription"]["currentPeriodStart"], "2027-03-01T00:00:00.000Z");
        assert_eq!(c["subscription"]["currentPeriodEnd"], "2028-03-01T00:00:00.000Z");
        // 99.00 × 8/31 days = 25.548… → −25.55; 1,188.00 × 343/366 days = 1,113.344… → 1,113.34.
        assert_eq!(amounts(&c["invoice"]), vec![-2555, 111_334], "[{backend:?}] {}", c["invoice"]);
        assert_eq!(c["invoice"]["total"]["amount"], 108_779);
        assert_eq!(c["invoice"]["lines"][0]["kind"], "PRORATION_CREDIT");

        // The same plan again is refused; Enterprise has custom pricing.
        assert_eq!(code(&change(&t, tok, PRO, "ANNUAL").await), "CONFLICT");
        let e = change(&t, tok, "pln_0000000000000000enterprise", "MONTHLY").await;
        assert_eq!(code(&e), "BAD_USER_INPUT", "{e}");

        let all = invoices(&t, tok).await;
        assert_eq!(all.len(), 2);
        let types = event_types(&t, &owner.org_id).await;
        for want in ["billing.subscription_updated", "billing.invoice_finalized", "billing.invoice_paid"] {
            assert_eq!(types.iter().filter(|e| *e == want).count(), 2, "[{backend:?}] {want} twice in {types:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_upgrade_changes_nothing() {
    for backend in backends() {
        let t = app_at(backend, "2027-03-16T12:00:00Z").await;
        let owner = t.register("declined@billing.test").await;
        let tok = owner.token.as_str();
        add_card(&t, tok, "4000 0000 0000 0002", false).await;
        let r = change(&t, tok, PRO, "MONTHLY").await;
        assert_eq!(code(&r), "CONFLICT", "[{backend:?}] {r}");
        assert!(r["errors"][0]["message"].as_str().unwrap().contains("card_declined"), "{r}");
        let s = t.gql_ok(Some(tok), SUB, json!({})).await;
        assert_eq!(s["subscription"]["plan"]["slug"], "starter");
        assert_eq!(s["rateLimitStatus"]["plan"]["slug"], "starter");
        assert!(invoices(&t, tok).await.is_empty(), "no invoice for a refused upgrade");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downgrades_and_cancellations_wait_for_the_period_end_and_can_be_undone() {
    for backend in backends() {
        let t = app_at(backend, "2027-03-16T12:00:00Z").await;
        let owner = t.register("down@billing.test").await;
        let tok = owner.token.as_str();
        add_card(&t, tok, "4242424242424242", false).await;
        assert!(change(&t, tok, PRO, "MONTHLY").await.get("errors").is_none());

        let r = change(&t, tok, STARTER, "MONTHLY").await;
        let c = &r["data"]["changeSubscription"];
        assert!(c["invoice"].is_null(), "[{backend:?}] {r}");
        assert_eq!(c["subscription"]["plan"]["slug"], "pro", "a downgrade waits");
        assert_eq!(c["subscription"]["scheduledChange"]["plan"]["slug"], "starter");
        // Choosing the current plan again undoes it.
        let r = change(&t, tok, PRO, "MONTHLY").await;
        assert!(r["data"]["changeSubscription"]["subscription"]["scheduledChange"].is_null(), "{r}");
        let resume = "mutation { resumeSubscription { cancelAtPeriodEnd } }";
        assert_eq!(code(&t.gql(Some(tok), resume, json!({})).await), "CONFLICT", "nothing to resume");

        let s = t.gql_ok(Some(tok), "mutation { cancelSubscription { cancelAtPeriodEnd autoRenew scheduledChange { cancels effectiveAt plan { slug } } } }", json!({})).await;
        assert_eq!(s["cancelSubscription"]["autoRenew"], false);
        assert_eq!(s["cancelSubscription"]["scheduledChange"]["cancels"], true);
        assert_eq!(s["cancelSubscription"]["scheduledChange"]["effectiveAt"], "2027-04-01T00:00:00.000Z");
        assert!(t.gql_ok(Some(tok), resume, json!({})).await["resumeSubscription"]["cancelAtPeriodEnd"] == false);
        t.gql_ok(Some(tok), "mutation { cancelSubscription { cancelAtPeriodEnd } }", json!({})).await;

        // Still Pro until the period ends; then on Starter, CANCELED, and March billed at 0.00.
        t.clock.set_ms(ms("2027-03-31T23:59:00Z"));
        gantry::billing::run(&t.app).await;
        assert_eq!(t.gql_ok(Some(tok), SUB, json!({})).await["subscription"]["plan"]["slug"], "pro");
        t.clock.set_ms(ms("2027-04-01T00:10:00Z"));
        gantry::billing::run(&t.app).await;
        let s = t.gql_ok(Some(tok), SUB, json!({})).await;
        assert_eq!(s["subscription"]["status"], "CANCELED", "[{backend:?}] {s}");
        assert_eq!(s["subscription"]["plan"]["slug"], "starter");
        assert_eq!(s["rateLimitStatus"]["plan"]["slug"], "starter");
        let all = invoices(&t, tok).await;
        let march = all.iter().find(|i| i["kind"] == "PERIOD").expect("the March invoice");
        assert_eq!((march["status"].as_str(), march["total"]["amount"].as_i64()), (Some("PAID"), Some(0)), "{march}");
        assert_eq!(march["periodStart"], "2027-03-01T00:00:00.000Z");

        // A canceled subscription can be upgraded again.
        let r = change(&t, tok, PRO, "MONTHLY").await;
        assert_eq!(r["data"]["changeSubscription"]["subscription"]["status"], "ACTIVE", "{r}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_month_close_bills_graduated_overage_in_arrears_and_the_fee_in_advance_once() {
    for backend in backends() {
        let t = app_at(backend, "2027-03-16T12:00:00Z").await;
        let owner = t.register("overage@billing.test").await;
        let tok = owner.token.as_str();
        let small = t.register("small@billing.test").await;
        let edge = t.register("edge@billing.test").await;
        for s in [&owner, &edge] {
            add_card(&t, &s.token, "4242424242424242", false).await;
            assert!(change(&t, &s.token, PRO, "MONTHLY").await.get("errors").is_none());
        }
        // 60M requests in March (over two days), 10,000,001 for the edge, 10,000 on Starter.
        record_usage(&t, &owner.org_id, ms("2027-03-10T00:00:00Z"), 25_000_000).await;
        record_usage(&t, &owner.org_id, ms("2027-03-20T00:00:00Z"), 35_000_000).await;
        record_usage(&t, &owner.org_id, ms("2027-04-01T00:00:00Z"), 7).await;
        record_usage(&t, &edge.org_id, ms("2027-03-20T00:00:00Z"), 10_000_001).await;
        record_usage(&t, &small.org_id, ms("2027-03-20T00:00:00Z"), 10_000).await;

        // Within the grace after the month's end nothing is closed yet.
        t.clock.set_ms(ms("2027-04-01T00:01:00Z"));
        assert_eq!(gantry::billing::invoices::close_periods(&t.app).await.unwrap(), 0);
        t.clock.set_ms(ms("2027-04-01T00:10:00Z"));
        // Two nodes close at once: one invoice per organization and month.
        let other = t.second_node().await;
        let (a, b) = tokio::join!(
            gantry::billing::invoices::close_periods(&t.app),
            gantry::billing::invoices::close_periods(&other)
        );
        a.unwrap();
        b.unwrap();
        gantry::billing::run(&t.app).await;
        gantry::billing::run(&other).await;

        let all = invoices(&t, tok).await;
        assert_eq!(all.len(), 2, "[{backend:?}] the upgrade and March: {all:?}");
        let march = &all[0];
        assert_eq!(march["kind"], "PERIOD");
        assert_eq!(march["periodStart"], "2027-03-01T00:00:00.000Z");
        // 10M–20M at 0.10 per 1,000, 20M–50M at 0.08, above at 0.05; then April's fee in advance.
        assert_eq!(amounts(march), vec![100_000, 240_000, 50_000, 9_900], "[{backend:?}] {march}");
        let q: Vec<i64> = march["lines"].as_array().unwrap().iter().map(|l| l["quantity"].as_i64().unwrap()).collect();
        assert_eq!(q, vec![10_000_000, 30_000_000, 10_000_000, 1]);
        assert_eq!(march["lines"][0]["unitPriceMicros"], 100);
        assert_eq!(march["lines"][3]["kind"], "PLAN_FEE");
        assert_eq!(march["lines"][3]["periodStart"], "2027-04-01T00:00:00.000Z");
        assert_eq!(march["total"]["amount"], 399_900);
        assert_eq!(march["status"], "PAID", "charged to the default card: {march}");
        assert_eq!(march["payments"].as_array().unwrap().len(), 1, "charged once by two nodes");

        // One request over the quota is priced (0.0001) and rounds to 0.00 once, on its line.
        let e = invoices(&t, &edge.token).await;
        assert_eq!(amounts(&e[0]), vec![0, 9_900], "{}", e[0]);
        assert_eq!(e[0]["lines"][0]["quantity"], 1);
        // Starter's quota is hard: no overage, no fee, 0.00 paid.
        let s = invoices(&t, &small.token).await;
        assert_eq!(s.len(), 1);
        assert_eq!((s[0]["total"]["amount"].as_i64(), s[0]["status"].as_str()), (Some(0), Some("PAID")));

        // Running again changes nothing; numbers have no gaps across the installation.
        assert_eq!(gantry::billing::invoices::close_periods(&t.app).await.unwrap(), 0);
        let mut numbers: Vec<i64> = Vec::new();
        for s in [&owner, &small, &edge] {
            for i in invoices(&t, &s.token).await {
                numbers.push(i["number"].as_str().unwrap()[4..].parse().unwrap());
            }
        }
        numbers.sort();
        assert_eq!(numbers, (1..=numbers.len() as i64).collect::<Vec<_>>(), "[{backend:?}]");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_in_the_middle_of_a_close_leaves_nothing_and_resumes_without_a_duplicate() {
    for backend in backends() {
        let t = app_at(backend, "2027-03-16T12:00:00Z").await;
        let owner = t.register("crash@billing.test").await;
        let tok = owner.token.as_str();
        add_card(&t, tok, "4242424242424242", false).await;
        assert!(change(&t, tok, PRO, "MONTHLY").await.get("errors").is_none());
        record_usage(&t, &owner.org_id, ms("2027-03-20T00:00:00Z"), 12_000_000).await;
        // Two months end; the second month's lines cannot be written.
        refuse_inserts(&t, "invoice_lines", "NEW.period_start >= 1809129600000", true).await;
        t.clock.set_ms(ms("2027-05-01T00:10:00Z"));
        assert!(gantry::billing::invoices::close_periods(&t.app).await.is_err(), "[{backend:?}]");
        assert_eq!(invoices(&t, tok).await.len(), 1, "[{backend:?}] nothing of the failed close stays");
        refuse_inserts(&t, "invoice_lines", "", false).await;
        gantry::billing::run(&t.app).await;
        let all = invoices(&t, tok).await;
        assert_eq!(all.len(), 3, "[{backend:?}] March and April, once each: {all:?}");
        // 2M requests over the quota at 0.10 per 1,000 and April's fee on March's invoice; May's fee on April's.
        assert_eq!(amounts(&all[1]), vec![20_000, 9_900], "{}", all[1]);
        assert_eq!(amounts(&all[0]), vec![9_900]);
        let numbers: Vec<&str> = all.iter().map(|i| i["number"].as_str().unwrap()).collect();
        assert_eq!(numbers, vec!["INV-000003", "INV-000002", "INV-000001"], "no number was lost to the crash");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_charges_are_retried_then_suspend_and_paying_restores_the_plan() {
    for backend in backends() {
        let t = app_at(backend, "2027-03-16T12:00:00Z").await;
        let owner = t.register("dunning@billing.test").await;
        let tok = owner.token.as_str();
        add_card(&t, tok, "4242424242424242", false).await;
        assert!(change(&t, tok, PRO, "MONTHLY").await.get("errors").is_none());
        add_card(&t, tok, "4000000000000002", true).await;

        t.clock.set_ms(ms("2027-04-01T00:10:00Z"));
        gantry::billing::run(&t.app).await;
        let inv = invoices(&t, tok).await[0].clone();
        assert_eq!(inv["status"], "OPEN", "[{backend:?}] {inv}");
        assert_eq!(inv["attemptCount"], 1);
        assert_eq!(inv["nextPaymentAttempt"], "2027-04-04T00:10:00.000Z");
        assert_eq!(inv["payments"][0]["failureCode"], "card_declined");
        assert_eq!(t.gql_ok(Some(tok), SUB, json!({})).await["subscription"]["status"], "PAST_DUE");
        // A plan change waits for the invoice.
        assert_eq!(code(&change(&t, tok, STARTER, "MONTHLY").await), "CONFLICT");

        // Retries after 3, 5 and 7 days; nothing happens between them.
        let mut at = ms("2027-04-01T00:10:00Z");
        for (days, attempts) in [(3, 2), (5, 3), (7, 4)] {
            t.clock.set_ms(at + days * DAY - 60_000);
            gantry::billing::run(&t.app).await;
            assert_eq!(invoices(&t, tok).await[0]["attemptCount"], attempts - 1, "[{backend:?}] not due yet");
            at += days * DAY;
            t.clock.set_ms(at);
            gantry::billing::run(&t.app).await;
            assert_eq!(invoices(&t, tok).await[0]["attemptCount"], attempts, "[{backend:?}]");
        }
        let inv = invoices(&t, tok).await[0].clone();
        assert!(inv["nextPaymentAttempt"].is_null(), "no retry left: {inv}");
        let s = t.gql_ok(Some(tok), SUB, json!({})).await;
        assert_eq!(s["subscription"]["status"], "SUSPENDED", "[{backend:?}] {s}");
        assert_eq!(s["subscription"]["plan"]["slug"], "pro", "still what is paid for");
        assert_eq!(s["rateLimitStatus"]["plan"]["slug"], "starter", "served with Starter's limits");

        let pay = "mutation($i: ID!, $m: ID) { payInvoice(invoiceId: $i, paymentMethodId: $m) { invoice { status amountDue { amount } } payment { status failureCode } } }";
        let poor = add_card(&t, tok, "4000000000009995", false).await;
        let r = t.gql_ok(Some(tok), pay, json!({ "i": inv["id"], "m": poor["id"] })).await;
        assert_eq!(r["payInvoice"]["payment"]["failureCode"], "insufficient_funds");
        assert_eq!(r["payInvoice"]["invoice"]["status"], "OPEN");
        assert_eq!(t.gql_ok(Some(tok), SUB, json!({})).await["subscription"]["status"], "SUSPENDED");
        let good = add_card(&t, tok, "5555 5555 5555 4444", false).await;
        let r = t.gql_ok(Some(tok), pay, json!({ "i": inv["id"], "m": good["id"] })).await;
        assert_eq!(r["payInvoice"]["payment"]["status"], "SUCCEEDED", "[{backend:?}] {r}");
        assert_eq!(r["payInvoice"]["invoice"]["status"], "PAID");
        let s = t.gql_ok(Some(tok), SUB, json!({})).await;
        assert_eq!(s["subscription"]["status"], "ACTIVE", "[{backend:?}] {s}");
        assert_eq!(s["rateLimitStatus"]["plan"]["slug"], "pro", "the plan is restored at once");
        assert_eq!(code(&t.gql(Some(tok), pay, json!({ "i": inv["id"] })).await), "CONFLICT", "paid already");

        let types = event_types(&t, &owner.org_id).await;
        assert_eq!(types.iter().filter(|e| *e == "billing.payment_failed").count(), 5, "[{backend:?}] {types:?}");
        // Another organization sees none of it.
        let stranger = t.register("stranger@billing.test").await;
        let r =
            t.gql(Some(&stranger.token), "query($i: ID!) { invoice(id: $i) { id } }", json!({ "i": inv["id"] })).await;
        assert_eq!(code(&r), "NOT_FOUND");
        let r = t.gql(Some(&stranger.token), pay, json!({ "i": inv["id"] })).await;
        assert_eq!(code(&r), "NOT_FOUND");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overage_plan_serves_past_its_quota_and_bills_exactly_what_the_limiter_counted() {
    for backend in backends() {
        let t = app_at(backend, "2027-03-16T12:00:00Z").await;
        let admin = t.register("admin@billing.test").await;
        let dev = t.register("metered@billing.test").await;
        // The operator's tiers: requests 4–5 at 0.10 each, the rest at 0.05; 3 included.
        let edit = "mutation($i: UpdatePlanInput!) { updatePlan(id: \"pln_00000000000000000000000pro\", input: $i) { quotaMode monthlyQuota overageTiers { upTo unitPriceMicros } } }";
        let bad = t.gql(Some(&admin.token), edit, json!({ "i": { "overageTiers": [{ "upTo": null, "unitPriceMicros": 1 }, { "upTo": 5, "unitPriceMicros": 1 }] } })).await;
        assert_eq!(code(&bad), "BAD_USER_INPUT", "[{backend:?}] {bad}");
        assert_eq!(bad["errors"][0]["extensions"]["field"], "overageTiers");
        let tiers = json!([{ "upTo": 5, "unitPriceMicros": 100_000 }, { "upTo": null, "unitPriceMicros": 50_000 }]);
        let r = t
            .gql_ok(
                Some(&admin.token),
                edit,
                json!({ "i": { "monthlyQuota": 3, "quotaMode": "OVERAGE", "overageTiers": tiers } }),
            )
            .await;
        assert_eq!(r["updatePlan"]["quotaMode"], "OVERAGE");
        assert_eq!(r["updatePlan"]["overageTiers"], tiers);
        t.gql_ok(Some(&admin.token), "mutation($o: ID!) { setOrganizationPlan(organizationId: $o, planId: \"pln_00000000000000000000000pro\") { slug } }", json!({ "o": dev.org_id })).await;

        // Past the included 3 requests the plan keeps serving.
        for _ in 0..6 {
            t.gql_ok(Some(&dev.token), "{ viewer { kind } }", json!({})).await;
        }
        let s = t
            .gql_ok(
                Some(&dev.token),
                "{ rateLimitStatus { monthlyQuota { limit used } } subscription { plan { slug } } }",
                json!({}),
            )
            .await;
        assert_eq!(
            s["subscription"]["plan"]["slug"], "pro",
            "[{backend:?}] an administrator's plan is the subscription's"
        );
        let used = s["rateLimitStatus"]["monthlyQuota"]["used"].as_i64().unwrap();
        assert!(used > 6, "[{backend:?}] {s}");
        gantry::server::flush(&t.app).await;

        t.clock.set_ms(ms("2027-04-01T00:10:00Z"));
        gantry::billing::invoices::close_periods(&t.app).await.unwrap();
        let inv = invoices(&t, &dev.token).await;
        let march = inv.iter().find(|i| i["periodStart"] == "2027-03-01T00:00:00.000Z").expect("March");
        let overage: Vec<(i64, i64)> = march["lines"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| l["kind"] == "OVERAGE")
            .map(|l| (l["quantity"].as_i64().unwrap(), l["amount"]["amount"].as_i64().unwrap()))
            .collect();
        assert_eq!(overage, vec![(2, 20), (used - 5, (used - 5) * 5)], "[{backend:?}] {used} requests: {march}");
    }
}

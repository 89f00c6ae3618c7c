//! REST routes of billing: plans, the subscription, invoices, payment methods and what the running
//! month costs so far.

use axum::http::Method;

use super::*;

const MONEY: &str = "amount currency";
const PLAN: &str = "id slug name description monthlyPrice { amount currency } annualPrice { amount currency } isDefault perSecond perMinute perHour perDay burst monthlyQuota concurrency maxWebhookEndpoints maxApps quotaMode overageTiers { upTo unitPriceMicros }";
const SUBSCRIPTION: &str = "id plan { id slug name } status billingCycle currentPeriodStart currentPeriodEnd nextBillingDate autoRenew cancelAtPeriodEnd scheduledChange { plan { id slug name } billingCycle effectiveAt cancels } spendCap { amount currency } canceledAt createdAt";
const LINE: &str = "kind description periodStart periodEnd quantity unitPriceMicros amount { amount currency } appId";
const PAYMENT_METHOD: &str = "id brand last4 expMonth expYear isDefault createdAt";

fn invoice() -> String {
    format!(
        "id number status kind currency total {{ {MONEY} }} amountPaid {{ {MONEY} }} amountDue {{ {MONEY} }} periodStart periodEnd dueAt finalizedAt paidAt attemptCount nextPaymentAttempt lines {{ {LINE} }} payments {{ id status amount {{ {MONEY} }} failureCode paymentMethodId createdAt }} createdAt"
    )
}

pub(super) fn routes() -> Vec<Route> {
    use Method as M;
    let invoice = invoice();
    // `/upgrade` and `/downgrade` are one operation: the price decides when a change takes effect.
    let change_doc = leak(format!(
        "mutation($planId: ID!, $billingCycle: BillingCycle! = MONTHLY) {{ changeSubscription(planId: $planId, billingCycle: $billingCycle) {{ subscription {{ {SUBSCRIPTION} }} invoice {{ {invoice} }} }} }}"
    ));
    vec![
        r(
            M::GET,
            "/billing/plans",
            "The plans an organization can subscribe to",
            leak(format!("{{ plans {{ {PLAN} }} }}")),
            "plans",
            200,
            &[],
            Shape::AsIs,
        ),
        r(
            M::GET,
            "/billing/current",
            "The organization's subscription",
            leak(format!("{{ subscription {{ {SUBSCRIPTION} }} }}")),
            "subscription",
            200,
            &[],
            Shape::AsIs,
        ),
        r(
            M::POST,
            "/billing/preview",
            "What a change of plan or cycle would cost ({\"plan_id\", \"billing_cycle\"}); changes nothing",
            leak(format!(
                "query($planId: ID!, $billingCycle: BillingCycle! = MONTHLY) {{ previewSubscriptionChange(planId: $planId, billingCycle: $billingCycle) {{ plan {{ id slug name }} billingCycle immediate effectiveAt periodEnd lines {{ {LINE} }} total {{ {MONEY} }} }} }}"
            )),
            "previewSubscriptionChange",
            200,
            &[],
            Shape::AsIs,
        ),
        r(
            M::POST,
            "/billing/upgrade",
            "Change to a plan or cycle ({\"plan_id\", \"billing_cycle\"}): an upgrade is prorated and charged at once",
            change_doc,
            "changeSubscription",
            200,
            &[],
            Shape::AsIs,
        ),
        r(
            M::POST,
            "/billing/downgrade",
            "Change to a plan or cycle ({\"plan_id\", \"billing_cycle\"}): a downgrade takes effect at the period end",
            change_doc,
            "changeSubscription",
            200,
            &[],
            Shape::AsIs,
        ),
        r(
            M::POST,
            "/billing/cancel",
            "Cancel at the period end (the organization continues on the free plan)",
            leak(format!("mutation {{ cancelSubscription {{ {SUBSCRIPTION} }} }}")),
            "cancelSubscription",
            200,
            &[],
            Shape::AsIs,
        ),
        r(
            M::POST,
            "/billing/resume",
            "Undo a scheduled downgrade or cancellation",
            leak(format!("mutation {{ resumeSubscription {{ {SUBSCRIPTION} }} }}")),
            "resumeSubscription",
            200,
            &[],
            Shape::AsIs,
        ),
        r(
            M::GET,
            "/billing/invoices",
            "The organization's invoices, newest first (?status=open&limit=&cursor=)",
            leak(format!(
                "query($first: Int, $after: String, $status: InvoiceStatus) {{ invoices(first: $first, after: $after, status: $status) {{ totalCount pageInfo {{ hasNextPage endCursor }} edges {{ node {{ {invoice} }} }} }} }}"
            )),
            "invoices",
            200,
            &[],
            Shape::List,
        ),
        r(
            M::GET,
            "/billing/invoices/upcoming",
            "The running month's invoice so far and its forecast to the month's end",
            leak(format!(
                "{{ upcomingInvoice {{ periodStart periodEnd lines {{ {LINE} }} total {{ {MONEY} }} forecastLines {{ {LINE} }} forecastTotal {{ {MONEY} }} }} }}"
            )),
            "upcomingInvoice",
            200,
            &[],
            Shape::AsIs,
        ),
        r(
            M::GET,
            "/billing/invoices/{id}",
            "One invoice with its lines and payments",
            leak(format!("query($id: ID!) {{ invoice(id: $id) {{ {invoice} }} }}")),
            "invoice",
            200,
            &[],
            Shape::AsIs,
        ),
        r(
            M::GET,
            "/billing/invoices/{id}/html",
            "One invoice as a printable page (text/html)",
            leak(format!("query($id: ID!) {{ invoice(id: $id) {{ {invoice} }} }}")),
            "invoice",
            200,
            &[],
            Shape::Html(crate::billing::html::render),
        ),
        r(
            M::POST,
            "/billing/invoices/{id}/pay",
            "Pay an open invoice ({\"payment_method_id\"} optional: the default card)",
            leak(format!(
                "mutation($invoiceId: ID!, $paymentMethodId: ID) {{ payInvoice(invoiceId: $invoiceId, paymentMethodId: $paymentMethodId) {{ invoice {{ {invoice} }} payment {{ id status amount {{ {MONEY} }} failureCode paymentMethodId createdAt }} }} }}"
            )),
            "payInvoice",
            200,
            &[("id", "invoiceId")],
            Shape::AsIs,
        ),
        r(
            M::GET,
            "/billing/payment-methods",
            "The organization's cards on file",
            leak(format!("{{ paymentMethods {{ {PAYMENT_METHOD} }} }}")),
            "paymentMethods",
            200,
            &[],
            Shape::AsIs,
        ),
        r(
            M::POST,
            "/billing/payment-methods",
            "Add a card ({\"number\", \"exp_month\", \"exp_year\", \"cvc\", \"make_default\"})",
            leak(format!(
                "mutation($input: AddPaymentMethodInput!) {{ addPaymentMethod(input: $input) {{ {PAYMENT_METHOD} }} }}"
            )),
            "addPaymentMethod",
            201,
            &[],
            Shape::AsIs,
        ),
        r(
            M::DELETE,
            "/billing/payment-methods/{id}",
            "Remove a card",
            "mutation($id: ID!) { removePaymentMethod(id: $id) }",
            "removePaymentMethod",
            204,
            &[],
            Shape::AsIs,
        ),
    ]
}

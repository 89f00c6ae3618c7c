//! The event catalog: Gantry's own event types, built in, beside the operator's (`event_types`).
//! Every type has a name (`category.action`), a description, a JSON Schema of its payload and a
//! sample payload, which test events send.

use serde_json::{Value, json};

/// A built-in event type.
pub struct BuiltIn {
    pub name: &'static str,
    pub description: &'static str,
    schema: fn() -> Value,
    sample: fn() -> Value,
}

impl BuiltIn {
    pub fn category(&self) -> &'static str {
        self.name.split('.').next().unwrap_or(self.name)
    }
    pub fn schema(&self) -> Value {
        (self.schema)()
    }
    pub fn sample(&self) -> Value {
        (self.sample)()
    }
}

fn object(properties: Value, required: &[&str]) -> Value {
    json!({ "$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object", "properties": properties, "required": required })
}

fn key_schema() -> Value {
    object(
        json!({ "key": { "type": "object", "properties": {
            "id": { "type": "string" }, "name": { "type": "string" }, "environment": { "enum": ["live", "test"] },
            "maskedKey": { "type": "string" }, "scopes": { "type": "array", "items": { "type": "string" } },
            "revokedAt": { "type": ["string", "null"], "format": "date-time" } },
            "required": ["id", "name", "environment", "maskedKey", "scopes"] } }),
        &["key"],
    )
}

fn key_sample() -> Value {
    json!({ "key": { "id": "key_01jdxq3z8m0000000000000000", "name": "production", "environment": "live",
        "maskedKey": "gk_live_…a1B2", "scopes": ["keys:read"], "revokedAt": null } })
}

fn key_ip_schema() -> Value {
    let mut schema = key_schema();
    schema["properties"]["ip"] = json!({ "type": "string" });
    schema["properties"]["firstSeenAt"] = json!({ "type": "string", "format": "date-time" });
    schema["required"] = json!(["key", "ip", "firstSeenAt"]);
    schema
}

fn key_ip_sample() -> Value {
    let mut sample = key_sample();
    sample["ip"] = json!("203.0.113.7");
    sample["firstSeenAt"] = json!("2026-12-01T09:30:00.000Z");
    sample
}

fn quota_schema() -> Value {
    object(
        json!({ "percent": { "type": ["integer", "null"] }, "used": { "type": "integer" }, "quota": { "type": "integer" },
            "keyId": { "type": ["string", "null"] }, "period": { "type": "string" } }),
        &[],
    )
}

fn quota_sample() -> Value {
    json!({ "percent": 80, "used": 80000, "quota": 100000, "period": "2026-12" })
}

fn alert_schema() -> Value {
    object(
        json!({ "id": { "type": "string" }, "kind": { "type": "string" }, "severity": { "enum": ["LOW", "MEDIUM", "HIGH", "CRITICAL"] },
            "status": { "type": "string" }, "title": { "type": "string" }, "data": { "type": "object" }, "occurrences": { "type": "integer" } }),
        &["id", "kind", "severity", "title"],
    )
}

fn alert_sample() -> Value {
    json!({ "id": "alr_01jdxq3z8m0000000000000000", "kind": "error_spike", "severity": "HIGH", "status": "ACTIVE",
        "title": "Error rate 34 % over the last 5 minutes", "data": { "errorRate": 0.34 }, "occurrences": 1 })
}

fn endpoint_schema() -> Value {
    object(
        json!({ "endpointId": { "type": "string" }, "url": { "type": "string" }, "reason": { "type": "string" } }),
        &["endpointId"],
    )
}

fn endpoint_sample() -> Value {
    json!({ "endpointId": "whk_01jdxq3z8m0000000000000000", "url": "https://example.com/webhooks", "reason": "failing for 5 days" })
}

fn endpoint_change_schema() -> Value {
    object(
        json!({ "endpoint": { "type": "object", "properties": {
            "id": { "type": "string" }, "url": { "type": "string" }, "description": { "type": ["string", "null"] },
            "filterTypes": { "type": "array", "items": { "type": "string" } }, "enabled": { "type": "boolean" } },
            "required": ["id", "url", "filterTypes", "enabled"] },
            "secretsExpireAt": { "type": "string", "format": "date-time" } }),
        &["endpoint"],
    )
}

fn endpoint_change_sample() -> Value {
    json!({ "endpoint": { "id": "whk_01jdxq3z8m0000000000000000", "url": "https://example.com/webhooks",
        "description": "billing events", "filterTypes": ["key.*"], "enabled": true } })
}

fn key_update_schema() -> Value {
    let mut schema = key_schema();
    schema["properties"]["changes"] = json!({ "type": "array", "items": { "enum": [
        "name", "description", "scopes", "expiresAt", "allowedIps", "metadata", "rateLimit"] } });
    schema["required"] = json!(["key", "changes"]);
    schema
}

fn key_update_sample() -> Value {
    let mut sample = key_sample();
    sample["changes"] = json!(["scopes", "allowedIps"]);
    sample
}

fn delivery_schema() -> Value {
    object(
        json!({ "endpointId": { "type": "string" }, "deliveryId": { "type": "string" }, "eventId": { "type": "string" },
            "eventType": { "type": "string" }, "attempts": { "type": "integer" }, "lastStatusCode": { "type": ["integer", "null"] },
            "lastError": { "type": ["string", "null"] } }),
        &["endpointId", "deliveryId", "eventId", "eventType", "attempts"],
    )
}

fn delivery_sample() -> Value {
    json!({ "endpointId": "whk_01jdxq3z8m0000000000000000", "deliveryId": "msg_01jdxq3z8m0000000000000000",
        "eventId": "evt_01jdxq3z8m0000000000000000", "eventType": "key.created", "attempts": 4,
        "lastStatusCode": 503, "lastError": "HTTP 503" })
}

fn user_schema() -> Value {
    object(
        json!({ "user": { "type": "object", "properties": { "id": { "type": "string" }, "email": { "type": "string" } } } }),
        &["user"],
    )
}

fn user_sample() -> Value {
    json!({ "user": { "id": "usr_01jdxq3z8m0000000000000000", "email": "ada@example.com" } })
}

fn member_schema() -> Value {
    object(
        json!({
            "member": { "type": "object", "properties": {
                "userId": { "type": "string" }, "email": { "type": "string" },
                "role": { "enum": ["OWNER", "ADMIN", "MEMBER", "BILLING", "VIEWER"] } },
                "required": ["userId", "email", "role"] },
            "previousRole": { "enum": ["OWNER", "ADMIN", "MEMBER", "BILLING", "VIEWER"] },
            "left": { "type": "boolean" },
            "invitationId": { "type": "string" }
        }),
        &["member"],
    )
}

fn member_sample() -> Value {
    json!({ "member": { "userId": "usr_01jdxq3z8m0000000000000000", "email": "ada@example.com", "role": "ADMIN" },
        "previousRole": "MEMBER" })
}

fn invitation_schema() -> Value {
    object(
        json!({ "invitation": { "type": "object", "properties": {
            "id": { "type": "string" }, "email": { "type": "string" },
            "role": { "enum": ["OWNER", "ADMIN", "MEMBER", "BILLING", "VIEWER"] },
            "expiresAt": { "type": "string", "format": "date-time" } },
            "required": ["id", "email", "role", "expiresAt"] } }),
        &["invitation"],
    )
}

fn invitation_sample() -> Value {
    json!({ "invitation": { "id": "ivt_01jdxq3z8m0000000000000000", "email": "grace@example.com", "role": "MEMBER",
        "expiresAt": "2026-12-14T10:00:00.000Z" } })
}

fn feature_schema() -> Value {
    object(
        json!({
            "feature": { "type": "object", "properties": {
                "id": { "type": "string" }, "key": { "type": "string" }, "enabled": { "type": "boolean" },
                "rolloutPercentage": { "type": ["integer", "null"], "minimum": 0, "maximum": 100 } },
                "required": ["id", "key", "enabled"] },
            "previous": { "type": "object" },
            "override": { "type": "object", "properties": {
                "organizationId": { "type": "string" }, "enabled": { "type": ["boolean", "null"] } } }
        }),
        &["feature"],
    )
}

fn feature_sample() -> Value {
    json!({ "feature": { "id": "ff_01jdxq3z8m0000000000000000", "key": "new-dashboard", "enabled": true, "rolloutPercentage": 25 },
        "override": { "organizationId": "org_01jdxq3z8m0000000000000000", "enabled": true } })
}

fn export_schema() -> Value {
    object(
        json!({ "export": { "type": "object", "properties": {
            "id": { "type": "string" }, "bytes": { "type": "integer" },
            "expiresAt": { "type": "string", "format": "date-time" } },
            "required": ["id", "bytes", "expiresAt"] } }),
        &["export"],
    )
}

fn export_sample() -> Value {
    json!({ "export": { "id": "exp_01jdxq3z8m0000000000000000", "bytes": 48213, "expiresAt": "2026-12-08T10:00:00.000Z" } })
}

fn org_schema() -> Value {
    object(
        json!({ "organization": { "type": "object", "properties": { "id": { "type": "string" }, "name": { "type": "string" } } } }),
        &["organization"],
    )
}

fn org_sample() -> Value {
    json!({ "organization": { "id": "org_01jdxq3z8m0000000000000000", "name": "Acme" } })
}

fn ping_schema() -> Value {
    object(json!({ "message": { "type": "string" } }), &[])
}

fn ping_sample() -> Value {
    json!({ "message": "This is a test event from Gantry." })
}

fn app_schema() -> Value {
    object(
        json!({
            "app": { "type": "object", "properties": {
                "id": { "type": "string" }, "name": { "type": "string" }, "slug": { "type": "string" },
                "status": { "enum": ["DRAFT", "PENDING", "APPROVED", "REJECTED", "ACTIVE", "DEPRECATED"] },
                "version": { "type": "string" }, "ownerOrganizationId": { "type": "string" } },
                "required": ["id", "name", "slug", "status", "version", "ownerOrganizationId"] },
            "from": { "type": "string" }, "to": { "type": "string" }, "reason": { "type": ["string", "null"] },
            "changes": { "type": "array", "items": { "type": "string" } }
        }),
        &["app"],
    )
}

fn app_sample() -> Value {
    json!({ "app": { "id": "app_01jdxq3z8m0000000000000000", "name": "Slack Integration", "slug": "slack-integration",
        "status": "APPROVED", "version": "2.1.0", "ownerOrganizationId": "org_01jdxq3z8m0000000000000000" },
        "from": "PENDING", "to": "APPROVED", "reason": null })
}

fn install_schema() -> Value {
    object(
        json!({ "installation": { "type": "object", "properties": {
            "id": { "type": "string" }, "appId": { "type": "string" }, "appName": { "type": "string" },
            "organizationId": { "type": "string" }, "scopes": { "type": "array", "items": { "type": "string" } },
            "uninstalledAt": { "type": ["string", "null"], "format": "date-time" } },
            "required": ["id", "appId", "appName", "organizationId", "scopes"] } }),
        &["installation"],
    )
}

fn install_sample() -> Value {
    json!({ "installation": { "id": "ins_01jdxq3z8m0000000000000000", "appId": "app_01jdxq3z8m0000000000000000",
        "appName": "Slack Integration", "organizationId": "org_01jdxq3z8m0000000000000000",
        "scopes": ["keys:read", "usage:read"], "uninstalledAt": null } })
}

fn subscription_schema() -> Value {
    object(
        json!({
            "subscription": { "type": "object", "properties": {
                "id": { "type": "string" }, "organizationId": { "type": "string" }, "planId": { "type": "string" },
                "status": { "enum": ["ACTIVE", "PAST_DUE", "CANCELED", "SUSPENDED"] },
                "billingCycle": { "enum": ["MONTHLY", "ANNUAL"] },
                "currentPeriodStart": { "type": "string", "format": "date-time" },
                "currentPeriodEnd": { "type": "string", "format": "date-time" },
                "cancelAtPeriodEnd": { "type": "boolean" }, "scheduledPlanId": { "type": ["string", "null"] } },
                "required": ["id", "organizationId", "planId", "status", "billingCycle", "currentPeriodStart", "currentPeriodEnd", "cancelAtPeriodEnd"] },
            "action": { "type": "string" },
            "previousPlanId": { "type": "string" }, "invoiceId": { "type": "string" }
        }),
        &["subscription", "action"],
    )
}

fn subscription_sample() -> Value {
    json!({ "subscription": { "id": "sub_01jdxq3z8m0000000000000000", "organizationId": "org_01jdxq3z8m0000000000000000",
        "planId": "pln_00000000000000000000000pro", "status": "ACTIVE", "billingCycle": "MONTHLY",
        "currentPeriodStart": "2026-12-01T00:00:00.000Z", "currentPeriodEnd": "2027-01-01T00:00:00.000Z",
        "cancelAtPeriodEnd": false, "scheduledPlanId": null },
        "action": "subscription.upgraded", "previousPlanId": "pln_0000000000000000000starter",
        "invoiceId": "inv_01jdxq3z8m0000000000000000" })
}

fn invoice_schema() -> Value {
    object(
        json!({
            "invoice": { "type": "object", "properties": {
                "id": { "type": "string" }, "organizationId": { "type": "string" }, "number": { "type": ["string", "null"] },
                "status": { "enum": ["DRAFT", "OPEN", "PAID", "VOID", "UNCOLLECTIBLE"] },
                "total": { "type": "integer" }, "amountPaid": { "type": "integer" }, "currency": { "type": "string" },
                "periodStart": { "type": "string", "format": "date-time" }, "periodEnd": { "type": "string", "format": "date-time" },
                "attemptCount": { "type": "integer" }, "nextPaymentAttempt": { "type": ["string", "null"], "format": "date-time" } },
                "required": ["id", "organizationId", "status", "total", "amountPaid", "currency", "periodStart", "periodEnd"] },
            "payment": { "type": "object", "properties": {
                "id": { "type": "string" }, "status": { "enum": ["SUCCEEDED", "FAILED"] }, "amount": { "type": "integer" },
                "failureCode": { "type": ["string", "null"] } }, "required": ["id", "status", "amount"] }
        }),
        &["invoice"],
    )
}

fn invoice_sample() -> Value {
    json!({ "invoice": { "id": "inv_01jdxq3z8m0000000000000000", "organizationId": "org_01jdxq3z8m0000000000000000",
        "number": "INV-000042", "status": "OPEN", "total": 19900, "amountPaid": 0, "currency": "USD",
        "periodStart": "2026-11-01T00:00:00.000Z", "periodEnd": "2026-12-01T00:00:00.000Z",
        "attemptCount": 1, "nextPaymentAttempt": "2026-12-04T00:05:00.000Z" },
        "payment": { "id": "pay_01jdxq3z8m0000000000000000", "status": "FAILED", "amount": 19900, "failureCode": "card_declined" } })
}

macro_rules! builtin {
    ($name:literal, $desc:literal, $schema:ident, $sample:ident) => {
        BuiltIn { name: $name, description: $desc, schema: $schema, sample: $sample }
    };
}

/// Every event Gantry raises itself.
pub static BUILT_IN: &[BuiltIn] = &[
    builtin!("key.created", "An API key was created.", key_schema, key_sample),
    builtin!(
        "key.rolled",
        "An API key got a new secret; the previous one works until its expiry.",
        key_schema,
        key_sample
    ),
    builtin!(
        "key.updated",
        "An API key's name, description, scopes, expiry, IP allow-list, metadata or limits changed (`changes` names them).",
        key_update_schema,
        key_update_sample
    ),
    builtin!("key.revoked", "An API key was revoked.", key_schema, key_sample),
    builtin!("key.deleted", "An API key was deleted.", key_schema, key_sample),
    builtin!(
        "key.used_from_new_ip",
        "An API key was used from an IP address it had not been used from before (its first use included).",
        key_ip_schema,
        key_ip_sample
    ),
    builtin!("user.created", "A user registered.", user_schema, user_sample),
    builtin!(
        "user.email_verified",
        "A user confirmed their email address with the link mailed to it.",
        user_schema,
        user_sample
    ),
    builtin!(
        "user.password_reset",
        "A user set a new password with a reset link; every session of the account ended.",
        user_schema,
        user_sample
    ),
    builtin!(
        "member.invited",
        "An address was invited to join the organization with a role.",
        invitation_schema,
        invitation_sample
    ),
    builtin!(
        "member.invitation_revoked",
        "A pending invitation was revoked; its link no longer works.",
        invitation_schema,
        invitation_sample
    ),
    builtin!(
        "member.joined",
        "A user accepted an invitation and joined the organization.",
        member_schema,
        member_sample
    ),
    builtin!(
        "member.role_changed",
        "A member's role changed (`previousRole` says from what), also by a transfer of ownership.",
        member_schema,
        member_sample
    ),
    builtin!(
        "member.removed",
        "A member was removed from the organization, or left it (`left`).",
        member_schema,
        member_sample
    ),
    builtin!("org.created", "An organization was created.", org_schema, org_sample),
    builtin!(
        "org.suspended",
        "A platform administrator suspended the organization (`reason`): its credentials are refused and its webhooks wait.",
        org_schema,
        org_sample
    ),
    builtin!(
        "org.unsuspended",
        "A platform administrator lifted the organization's suspension.",
        org_schema,
        org_sample
    ),
    builtin!(
        "org.deleted",
        "The organization was deleted (`by` its owner or a platform administrator); its data is purged at `purgeAfter`.",
        org_schema,
        org_sample
    ),
    builtin!(
        "org.export_ready",
        "An export of the organization's data is ready; read its download link with organizationExport(id).",
        export_schema,
        export_sample
    ),
    builtin!(
        "user.suspended",
        "A platform administrator suspended the user (`reason`): sessions ended, sign-in refused.",
        user_schema,
        user_sample
    ),
    builtin!("user.unsuspended", "A platform administrator lifted the user's suspension.", user_schema, user_sample),
    builtin!(
        "user.deleted",
        "A platform administrator erased a user's account (raised in the administrator's organization).",
        user_schema,
        user_sample
    ),
    builtin!(
        "quota.threshold_reached",
        "The organization used 80, 90 or 100 % of its monthly quota.",
        quota_schema,
        quota_sample
    ),
    builtin!(
        "quota.key_exceeded",
        "A key was refused because the monthly quota is used up.",
        quota_schema,
        quota_sample
    ),
    builtin!("alert.triggered", "A usage alert was raised.", alert_schema, alert_sample),
    builtin!("alert.resolved", "A usage alert's condition cleared.", alert_schema, alert_sample),
    builtin!("webhook.created", "A webhook endpoint was created.", endpoint_change_schema, endpoint_change_sample),
    builtin!(
        "webhook.updated",
        "A webhook endpoint's URL, filters, headers, limits or state changed.",
        endpoint_change_schema,
        endpoint_change_sample
    ),
    builtin!("webhook.deleted", "A webhook endpoint was deleted.", endpoint_change_schema, endpoint_change_sample),
    builtin!(
        "webhook.secret_rotated",
        "A webhook endpoint got a new signing secret; the previous ones sign until `secretsExpireAt`.",
        endpoint_change_schema,
        endpoint_change_sample
    ),
    builtin!(
        "webhook.endpoint.disabled",
        "An endpoint was disabled (it answered 410, or failed for too long).",
        endpoint_schema,
        endpoint_sample
    ),
    builtin!("webhook.delivery.failing", "A delivery failed four attempts in a row.", delivery_schema, delivery_sample),
    builtin!(
        "webhook.delivery.exhausted",
        "A delivery failed every attempt of its retry schedule.",
        delivery_schema,
        delivery_sample
    ),
    builtin!(
        "webhook.delivery.recovered",
        "A delivery succeeded after failed attempts.",
        delivery_schema,
        delivery_sample
    ),
    builtin!("app.created", "A marketplace app was created (in DRAFT).", app_schema, app_sample),
    builtin!(
        "app.updated",
        "An app's listing or OAuth client settings changed (`changes` names them).",
        app_schema,
        app_sample
    ),
    builtin!("app.submitted", "An app was submitted for review.", app_schema, app_sample),
    builtin!("app.approved", "A platform administrator approved an app.", app_schema, app_sample),
    builtin!("app.rejected", "A platform administrator rejected an app (`reason` says why).", app_schema, app_sample),
    builtin!("app.published", "An approved app was published to the marketplace.", app_schema, app_sample),
    builtin!("app.deprecated", "An app was taken off the marketplace.", app_schema, app_sample),
    builtin!("app.deleted", "An app was deleted.", app_schema, app_sample),
    builtin!(
        "app.secret_rotated",
        "An app got a new client secret; the previous ones work until the rotation's expiry.",
        app_schema,
        app_sample
    ),
    builtin!(
        "install.created",
        "An app was installed in an organization (also sent to the app's owner).",
        install_schema,
        install_sample
    ),
    builtin!(
        "install.updated",
        "An installation's granted scopes grew after a new consent.",
        install_schema,
        install_sample
    ),
    builtin!(
        "install.deleted",
        "An app was uninstalled; every token of the installation stopped working.",
        install_schema,
        install_sample
    ),
    builtin!(
        "billing.subscription_updated",
        "A subscription changed: upgraded, a downgrade or cancellation scheduled or undone, renewed onto another plan, past due, suspended or restored (`action` says which).",
        subscription_schema,
        subscription_sample
    ),
    builtin!(
        "billing.invoice_finalized",
        "An invoice was finalized and numbered (a month's close or an upgrade's proration).",
        invoice_schema,
        invoice_sample
    ),
    builtin!("billing.invoice_paid", "An invoice was paid in full.", invoice_schema, invoice_sample),
    builtin!(
        "billing.payment_failed",
        "A charge of an invoice failed; `nextPaymentAttempt` says when it is retried (null: no retry left).",
        invoice_schema,
        invoice_sample
    ),
    builtin!("feature.created", "A platform administrator created a feature flag.", feature_schema, feature_sample),
    builtin!(
        "feature.updated",
        "A feature flag changed: its default (a toggle), rollout, description or metadata (`previous` has the flag before), or an organization's override (`override`).",
        feature_schema,
        feature_sample
    ),
    builtin!("feature.deleted", "A feature flag was deleted.", feature_schema, feature_sample),
    builtin!("webhook.test", "A test event sent with sendTestEvent.", ping_schema, ping_sample),
];

pub fn built_in(name: &str) -> Option<&'static BuiltIn> {
    BUILT_IN.iter().find(|b| b.name == name)
}

/// Events about deliveries: a delivery of one of these never raises another (no feedback loop
/// when the endpoint receiving them is the one failing).
pub fn is_delivery_event(event_type: &str) -> bool {
    event_type.starts_with("webhook.delivery.")
}

/// Whether an endpoint's filter list admits an event type.
pub fn filter_matches(filters: &[String], event_type: &str) -> bool {
    filters.iter().any(|f| crate::events::filters::type_matches(f, event_type))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_names_are_unique_and_well_formed() {
        let mut names: Vec<_> = BUILT_IN.iter().map(|b| b.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), BUILT_IN.len());
        for b in BUILT_IN {
            assert!(crate::events::filters::check_filter("type", b.name).is_ok(), "{}", b.name);
            assert!(b.schema().is_object() && b.sample().is_object());
        }
    }

    #[test]
    fn every_sample_is_valid_against_its_schema() {
        for b in BUILT_IN {
            let validator = jsonschema::validator_for(&b.schema()).expect("a valid JSON Schema");
            assert!(validator.is_valid(&b.sample()), "the sample of {} does not match its schema", b.name);
        }
    }

    #[test]
    fn filters_match_exact_names_categories_and_everything() {
        let f = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(filter_matches(&f(&["*"]), "key.created"));
        assert!(filter_matches(&f(&["key.*"]), "key.created"));
        assert!(filter_matches(&f(&["webhook.*"]), "webhook.delivery.failing"));
        assert!(!filter_matches(&f(&["key.created"]), "key.revoked"));
        assert!(!filter_matches(&f(&[]), "key.created"));
    }
}

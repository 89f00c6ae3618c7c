//! The scope vocabulary shared by API keys, sessions (through their role) and OAuth tokens
//! (SPEC §2), and the checks on scope lists.

use crate::error::{Error, Result};

/// The scope vocabulary shared by API keys and OAuth tokens (SPEC §2). `*` grants everything;
/// a `:write` scope implies the `:read` scope of the same resource.
pub const SCOPES: &[&str] = &[
    "keys:read",
    "keys:write",
    "keys:verify",
    "apps:read",
    "apps:write",
    "webhooks:read",
    "webhooks:write",
    "events:publish",
    "usage:read",
    "usage:write",
    "billing:read",
    "billing:write",
    "org:read",
    "org:write",
    "user:read",
    "user:write",
    "marketplace:read",
    "marketplace:write",
    "features:read",
    "features:write",
];

/// Checks a requested scope list: each entry known (or `*`), no duplicates. Returns it sorted.
pub fn validate_scopes(field: &str, scopes: &[String]) -> Result<Vec<String>> {
    if scopes.is_empty() {
        return Err(Error::bad_input(field, "at least one scope is required"));
    }
    let mut out = Vec::with_capacity(scopes.len());
    for s in scopes {
        if s != "*" && !SCOPES.contains(&s.as_str()) {
            return Err(Error::bad_input(field, format!("unknown scope `{s}`; known scopes: * {}", SCOPES.join(" "))));
        }
        if !out.contains(s) {
            out.push(s.clone());
        }
    }
    out.sort();
    Ok(out)
}

/// Whether a granted scope list allows `wanted`.
pub fn scopes_allow(granted: &[String], wanted: &str) -> bool {
    granted.iter().any(|g| {
        g == "*"
            || g == wanted
            || (wanted.ends_with(":read") && g.strip_suffix(":write") == wanted.strip_suffix(":read"))
    })
}

/// A scope in words, for consent screens.
pub fn describe_scope(scope: &str) -> &'static str {
    match scope {
        "keys:read" => "See your API keys (masked) and their usage",
        "keys:write" => "Create, change and revoke your API keys",
        "keys:verify" => "Verify API keys",
        "apps:read" => "See your apps and installed apps",
        "apps:write" => "Create and change your apps",
        "webhooks:read" => "See your webhook endpoints and deliveries",
        "webhooks:write" => "Create and change your webhook endpoints",
        "events:publish" => "Publish events to your webhooks",
        "usage:read" => "See your usage and analytics",
        "usage:write" => "Report metered usage",
        "billing:read" => "See your subscription and invoices",
        "billing:write" => "Change your subscription and payment methods",
        "org:read" => "See your organization",
        "org:write" => "Change your organization's settings",
        "user:read" => "See your profile",
        "user:write" => "Change your profile",
        "marketplace:read" => "Browse the marketplace",
        "marketplace:write" => "Review apps in the marketplace",
        "features:read" => "See which features are enabled for your organization",
        "features:write" => "Manage feature flags",
        _ => "Everything you can do",
    }
}

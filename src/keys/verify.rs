//! `verifyApiKey`: the operator's backend asks whether a key presented to it is valid, and is told
//! the verdict with a reason code, the key's organization, scopes and metadata, and the rate-limit
//! state. The check is the one authentication uses (`auth::check_key`); a valid verification
//! counts as a use of the key, charged to its own limits and metered for its organization.

use std::net::IpAddr;
use std::sync::Arc;

use crate::app::App;
use crate::auth::{KeyCredential, KeyRefusal, Principal, scopes_allow};
use crate::error::{Error, Result};

/// The verdict on a key presented to the operator's backend.
#[derive(Debug)]
pub struct Verdict {
    pub key: Option<Arc<KeyCredential>>,
    pub refusal: Option<KeyRefusal>,
    /// The key's rate-limit state after this verification (when it got that far).
    pub limit: Option<crate::limits::limiter::Decision>,
}

/// Verifies a key for the operator's backend. A service key (platform organization, `keys:verify`)
/// verifies any organization's keys; other credentials only their own organization's, and another
/// organization's key is reported as NOT_FOUND. A valid verification counts as a use of the key.
pub async fn verify_key(
    app: &App,
    principal: &Principal,
    token: &str,
    ip: Option<IpAddr>,
    required_scopes: &[String],
) -> Result<Verdict> {
    principal.require_scope("keys:verify")?;
    if token.trim().is_empty() {
        return Err(Error::bad_input("key", "must not be empty"));
    }
    for s in required_scopes {
        if s != "*" && !crate::auth::SCOPES.contains(&s.as_str()) {
            return Err(Error::bad_input("requiredScopes", format!("unknown scope `{s}`")));
        }
    }
    let started = std::time::Instant::now();
    let checked = crate::auth::check_key(app, token.trim(), ip).await;
    let visible = |k: &KeyCredential| principal.is_platform || k.org_id == principal.org_id;
    let verdict = match checked {
        Ok(key) if !visible(&key) => Verdict { key: None, refusal: Some(KeyRefusal::NotFound), limit: None },
        Ok(key) => {
            if required_scopes.iter().any(|s| !scopes_allow(&key.scopes, s)) {
                Verdict { key: Some(key), refusal: Some(KeyRefusal::InsufficientScope), limit: None }
            } else {
                // The use is charged to the verified key's own limits and quota.
                let decision = crate::limits::service::check_key_use(app, &key).await?;
                crate::alerts::observe(app, &key.org_id, Some(&key.key_id), &decision, 1, app.clock.now_ms());
                let refusal = match decision.refusal {
                    None => None,
                    Some(crate::limits::limiter::Refusal::Quota) => Some(KeyRefusal::QuotaExceeded),
                    Some(_) => Some(KeyRefusal::RateLimited),
                };
                if refusal.is_none() {
                    app.key_usage.record(&key.key_id, app.clock.now_ms(), ip);
                }
                Verdict { key: Some(key), refusal, limit: Some(decision) }
            }
        }
        Err(f) if f.reason == KeyRefusal::Unavailable => return Err(f.into_error()),
        Err(f) => match f.key {
            Some(k) if visible(&k) => Verdict { key: Some(k), refusal: Some(f.reason), limit: None },
            _ => Verdict { key: None, refusal: Some(KeyRefusal::NotFound), limit: None },
        },
    };
    meter_verification(app, &verdict, started);
    Ok(verdict)
}

/// A verification counts as a use of the verified key: metered for the key's organization, with
/// the status a request made with the key would have had.
fn meter_verification(app: &App, verdict: &Verdict, started: std::time::Instant) {
    static OPERATION: std::sync::LazyLock<Arc<str>> = std::sync::LazyLock::new(|| Arc::from("verifyApiKey"));
    let Some(key) = &verdict.key else { return };
    let status = match verdict.refusal {
        None => 200,
        Some(KeyRefusal::RateLimited | KeyRefusal::QuotaExceeded) => 429,
        Some(KeyRefusal::IpNotAllowed | KeyRefusal::InsufficientScope) => 403,
        Some(KeyRefusal::NotFound | KeyRefusal::Revoked | KeyRefusal::Expired) => 401,
        Some(KeyRefusal::Unavailable) => 503,
    };
    let admitted = verdict.limit.as_ref().is_some_and(|d| d.allowed());
    app.meter.record(crate::usage::meter::UsageRecord {
        org_id: key.org_id.clone(),
        api_key_id: Some(key.key_id.clone()),
        app_id: None,
        source: crate::usage::meter::Source::Verify,
        operation: OPERATION.clone(),
        status,
        latency_us: started.elapsed().as_micros() as u64,
        request_bytes: 0,
        response_bytes: 0,
        cost_units: 0,
        quota_units: admitted as u64,
        at_ms: app.clock.now_ms(),
    });
}

//! GraphQL types and resolvers for API keys.

use async_graphql::{Context, Enum, ID, InputObject, Json, MaybeUndefined, Object, SimpleObject};

use super::model::KeyRow;
use super::service::{self, CreateKey, Environment, KeyFilter, UpdateKey};
use crate::accounts::graphql::{Organization, User};
use crate::auth::KeyRefusal as Refusal;
use crate::graphql::connection::{Conn, connection};
use crate::graphql::context::{ContextExt, Scope};
use crate::graphql::loaders::{Loaders, loader_error};
use crate::graphql::page_complexity;
use crate::graphql::patch;
use crate::graphql::scalars::DateTime;
use crate::limits::graphql::RateLimitOverride;
use crate::pagination::PageRequest;

/// Where a key may be used: live data or test data. The environment is part of the key's prefix.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum ApiKeyEnvironment {
    /// `gk_live_…`
    Live,
    /// `gk_test_…`
    Test,
}

impl From<ApiKeyEnvironment> for Environment {
    fn from(e: ApiKeyEnvironment) -> Self {
        match e {
            ApiKeyEnvironment::Live => Environment::Live,
            ApiKeyEnvironment::Test => Environment::Test,
        }
    }
}

/// Whether a key works right now.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum ApiKeyStatus {
    /// Usable.
    Active,
    /// Revoked; it will never work again.
    Revoked,
    /// Past its expiry.
    Expired,
}

/// An API key. Its secret is never shown again after creation or roll; `maskedKey` identifies it.
pub struct ApiKey(pub KeyRow);

/// An API key. Its secret is never shown again after creation or roll; `maskedKey` identifies it.
#[Object]
impl ApiKey {
    /// Global id (`key_…`).
    pub async fn id(&self) -> ID {
        self.0.id.clone().into()
    }
    /// Name given by its creator.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// Free-form description.
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    /// Live or test.
    async fn environment(&self) -> ApiKeyEnvironment {
        if self.0.environment == "live" { ApiKeyEnvironment::Live } else { ApiKeyEnvironment::Test }
    }
    /// The key's prefix, `gk_live_` or `gk_test_`.
    async fn prefix(&self) -> &str {
        &self.0.start
    }
    /// Prefix and last four characters of the current secret, e.g. `gk_live_…a1B2`.
    async fn masked_key(&self) -> String {
        self.0.masked()
    }
    /// What the key may do (`resource:action`, or `*`).
    async fn scopes(&self) -> Vec<String> {
        self.0.scope_list()
    }
    /// When the key stops working (null = never).
    async fn expires_at(&self) -> Option<DateTime> {
        self.0.expires_at.map(DateTime)
    }
    /// IP addresses and CIDR ranges (v4 and v6) the key may be used from; empty = anywhere.
    async fn allowed_ips(&self) -> Vec<String> {
        self.0.allowed_ip_list()
    }
    /// Your own key-value data, returned by `verifyApiKey`.
    async fn metadata(&self) -> Json<serde_json::Value> {
        Json(self.0.metadata_value())
    }
    /// The key's own rate limits (null = its organization's plan).
    async fn rate_limit(&self) -> Option<RateLimitOverride> {
        self.0.rate_override().map(Into::into)
    }
    /// Active, revoked or expired, now.
    async fn status(&self, ctx: &Context<'_>) -> ApiKeyStatus {
        let now = ctx.app().clock.now_ms();
        if self.0.revoked_at.is_some() {
            ApiKeyStatus::Revoked
        } else if self.0.expires_at.is_some_and(|t| t <= now) {
            ApiKeyStatus::Expired
        } else {
            ApiKeyStatus::Active
        }
    }
    /// The user who created the key (null if that user is gone).
    #[graphql(guard = "Scope(\"user:read\")")]
    async fn created_by(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        let Some(id) = self.0.created_by.clone() else {
            return Ok(None);
        };
        Ok(ctx.data_unchecked::<Loaders>().get().load_one(id).await.map_err(loader_error)?.map(User))
    }
    /// The organization that owns the key.
    #[graphql(guard = "Scope(\"org:read\")")]
    async fn organization(&self, ctx: &Context<'_>) -> async_graphql::Result<Organization> {
        let row = ctx
            .data_unchecked::<Loaders>()
            .get()
            .load_one(self.0.org_id.clone())
            .await
            .map_err(loader_error)?
            .ok_or(crate::error::Error::NotFound("organization"))?;
        let role = ctx.principal().ok().filter(|p| p.org_id == row.id).and_then(|p| p.role);
        Ok(Organization { row, role })
    }
    /// When the key was created.
    async fn created_at(&self) -> DateTime {
        self.0.created_at.into()
    }
    /// When the key was last changed.
    async fn updated_at(&self) -> DateTime {
        self.0.updated_at.into()
    }
    /// When the key was last used (counters are written in batches every few seconds).
    async fn last_used_at(&self, ctx: &Context<'_>) -> Option<DateTime> {
        let (_, pending) = ctx.app().key_usage.unflushed(&self.0.id);
        self.0.last_used_at.max(pending).map(DateTime)
    }
    /// The IP address of the last use.
    async fn last_used_ip(&self) -> Option<&str> {
        self.0.last_used_ip.as_deref()
    }
    /// Requests made with the key, ever.
    async fn total_requests(&self, ctx: &Context<'_>) -> i64 {
        self.0.total_requests + ctx.app().key_usage.unflushed(&self.0.id).0
    }
    /// When the key was revoked.
    async fn revoked_at(&self) -> Option<DateTime> {
        self.0.revoked_at.map(DateTime)
    }
    /// Why the key was revoked.
    async fn revoked_reason(&self) -> Option<&str> {
        self.0.revoked_reason.as_deref()
    }
    /// Requests per UTC day over the last `days` days (newest first; days without requests omitted).
    #[graphql(guard = "Scope(\"keys:read\")")]
    async fn usage(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 30, desc = "1 to 366.")] days: i32,
    ) -> async_graphql::Result<Vec<ApiKeyUsageDay>> {
        let rows = service::key_usage_days(ctx.app(), ctx.principal()?, &self.0.id, days as i64).await?;
        Ok(rows.into_iter().map(|r| ApiKeyUsageDay { date: r.day, requests: r.requests }).collect())
    }
}

/// Requests made with a key on one UTC day.
#[derive(SimpleObject)]
pub struct ApiKeyUsageDay {
    /// The day, `YYYY-MM-DD` (UTC).
    pub date: String,
    /// Requests that day.
    pub requests: i64,
}

/// A new key.
#[derive(InputObject)]
pub struct CreateApiKeyInput {
    /// 1 to 100 characters.
    pub name: String,
    /// Up to 1000 characters.
    pub description: Option<String>,
    /// Live or test (default TEST).
    #[graphql(default_with = "ApiKeyEnvironment::Test")]
    pub environment: ApiKeyEnvironment,
    /// What the key may do; you can grant only scopes you hold.
    pub scopes: Vec<String>,
    /// When the key stops working (must be in the future).
    pub expires_at: Option<DateTime>,
    /// IP addresses / CIDR ranges (v4 or v6) allowed to use the key; empty = anywhere. At most 100.
    #[graphql(default)]
    pub allowed_ips: Vec<String>,
    /// A JSON object (≤ 50 keys, ≤ 8 KiB) returned by `verifyApiKey`.
    pub metadata: Option<Json<serde_json::Value>>,
    /// The key's own rate limits, replacing its plan's where set.
    pub rate_limit: Option<RateLimitOverride>,
}

/// Changes to a key; omitted fields stay as they are, `null` clears a nullable field.
#[derive(InputObject)]
pub struct UpdateApiKeyInput {
    /// 1 to 100 characters.
    pub name: Option<String>,
    /// Up to 1000 characters; `null` clears it.
    pub description: MaybeUndefined<String>,
    /// Replaces the scopes.
    pub scopes: Option<Vec<String>>,
    /// A new expiry; `null` = never expires.
    pub expires_at: MaybeUndefined<DateTime>,
    /// Replaces the allow-list; `[]` = anywhere.
    pub allowed_ips: Option<Vec<String>>,
    /// Replaces the metadata object.
    pub metadata: Option<Json<serde_json::Value>>,
    /// Replaces the key's own rate limits; `null` returns the key to its plan's.
    pub rate_limit: MaybeUndefined<RateLimitOverride>,
}

/// A created key and its secret.
#[derive(SimpleObject)]
pub struct CreateApiKeyPayload {
    /// The key.
    pub api_key: ApiKey,
    /// The full secret. Shown only now: store it safely.
    pub secret: String,
}

/// A rolled key and its new secret.
#[derive(SimpleObject)]
pub struct RollApiKeyPayload {
    /// The key.
    pub api_key: ApiKey,
    /// The new secret. Shown only now.
    pub secret: String,
    /// Until when the previous secret keeps working.
    pub previous_secret_expires_at: DateTime,
}

/// A deleted key.
#[derive(SimpleObject)]
pub struct DeleteApiKeyPayload {
    /// Id of the key that was deleted.
    pub deleted_id: ID,
}

/// Why a key is not valid.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum VerifyApiKeyCode {
    /// No such key (or not one you may verify).
    NotFound,
    /// The key was revoked.
    Revoked,
    /// The key (or this secret, after a roll) has expired.
    Expired,
    /// The key may not be used from the given IP.
    IpNotAllowed,
    /// The key lacks one of `requiredScopes`.
    InsufficientScope,
    /// The key is over a rate limit.
    RateLimited,
    /// The key's organization is over its monthly quota.
    QuotaExceeded,
}

impl From<Refusal> for VerifyApiKeyCode {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::NotFound | Refusal::Unavailable => VerifyApiKeyCode::NotFound,
            Refusal::Revoked => VerifyApiKeyCode::Revoked,
            Refusal::Expired => VerifyApiKeyCode::Expired,
            Refusal::IpNotAllowed => VerifyApiKeyCode::IpNotAllowed,
            Refusal::InsufficientScope => VerifyApiKeyCode::InsufficientScope,
            Refusal::RateLimited => VerifyApiKeyCode::RateLimited,
            Refusal::QuotaExceeded => VerifyApiKeyCode::QuotaExceeded,
        }
    }
}

/// Keys per `verifyApiKeys` call.
pub const MAX_BATCH_VERIFY: usize = 100;

fn parse_ip(ip: Option<&str>) -> Result<Option<std::net::IpAddr>, crate::error::Error> {
    match ip.map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => Ok(Some(
            s.parse::<std::net::IpAddr>()
                .map_err(|_| crate::error::Error::bad_input("ip", "not an IP address"))?
                .to_canonical(),
        )),
        None => Ok(None),
    }
}

fn verify_result(verdict: super::verify::Verdict, now: i64) -> VerifyApiKeyResult {
    let key = verdict.key;
    let rate_limit = verdict.limit.as_ref().map(|d| {
        let w = d.policy.windows.get(d.binding);
        let s = d.windows.get(d.binding);
        VerifyRateLimit {
            window: w.map(|w| w.name.to_string()),
            limit: w.map(|w| w.capacity as i64),
            remaining: s.map(|s| s.remaining as i64),
            reset_at: s.map(|s| DateTime(now + s.reset_ms)),
            retry_after: (!d.allowed()).then(|| ((d.retry_after_ms + 999) / 1000).max(1)),
            monthly_used: d.quota_used as i64,
            monthly_quota: d.policy.monthly_quota.map(|q| q as i64),
        }
    });
    VerifyApiKeyResult {
        rate_limit,
        valid: verdict.refusal.is_none(),
        code: verdict.refusal.map(Into::into),
        key_id: key.as_ref().map(|k| k.key_id.clone().into()),
        organization_id: key.as_ref().map(|k| k.org_id.clone().into()),
        name: key.as_ref().map(|k| k.name.clone()),
        environment: key
            .as_ref()
            .map(|k| if k.environment == "live" { ApiKeyEnvironment::Live } else { ApiKeyEnvironment::Test }),
        scopes: key.as_ref().map(|k| k.scopes.to_vec()).unwrap_or_default(),
        metadata: key.as_ref().map(|k| Json(k.metadata.clone())),
        expires_at: key.as_ref().and_then(|k| k.expires_at).map(DateTime),
    }
}

/// Keys to verify in one call.
#[derive(InputObject)]
pub struct VerifyApiKeysInput {
    /// The full keys as your users sent them (1 to 100; a key listed twice is verified once).
    pub keys: Vec<String>,
    /// The IP address the calls came from, checked against each key's allow-list.
    pub ip: Option<String>,
    /// Scopes each key must hold.
    #[graphql(default)]
    pub required_scopes: Vec<String>,
}

/// The verdicts of a batch, one per key given, in order.
#[derive(SimpleObject)]
pub struct VerifyApiKeysResult {
    /// One verdict per key given, in the order given.
    pub results: Vec<VerifyApiKeyResult>,
    /// How many of the inputs are valid.
    pub valid: i32,
    /// How many are not.
    pub invalid: i32,
    /// Distinct keys verified (and counted).
    pub verified: i32,
}

/// A key to verify.
#[derive(InputObject)]
pub struct VerifyApiKeyInput {
    /// The full key as your user sent it.
    pub key: String,
    /// The IP address your user called from, checked against the key's allow-list.
    pub ip: Option<String>,
    /// Scopes the key must hold for this call.
    #[graphql(default)]
    pub required_scopes: Vec<String>,
}

/// The verdict on a key.
#[derive(SimpleObject, Clone)]
pub struct VerifyApiKeyResult {
    /// Whether the key may be used for this call.
    pub valid: bool,
    /// Why not, when `valid` is false.
    pub code: Option<VerifyApiKeyCode>,
    /// The key's id (when found and yours to see).
    pub key_id: Option<ID>,
    /// The organization that owns the key.
    pub organization_id: Option<ID>,
    /// The key's name.
    pub name: Option<String>,
    /// Live or test.
    pub environment: Option<ApiKeyEnvironment>,
    /// The key's scopes.
    pub scopes: Vec<String>,
    /// The key's metadata.
    pub metadata: Option<Json<serde_json::Value>>,
    /// When the key expires.
    pub expires_at: Option<DateTime>,
    /// The key's rate-limit state after this verification (null when it was refused before).
    pub rate_limit: Option<VerifyRateLimit>,
}

/// The verified key's limits, for your backend's own headers.
#[derive(SimpleObject, Clone)]
pub struct VerifyRateLimit {
    /// The binding window: `second`, `minute`, `hour` or `day`.
    pub window: Option<String>,
    /// Requests the window admits at once.
    pub limit: Option<i64>,
    /// Requests left in it.
    pub remaining: Option<i64>,
    /// When it is full again.
    pub reset_at: Option<DateTime>,
    /// Seconds to wait when refused.
    pub retry_after: Option<i64>,
    /// Requests counted this month for the key's organization.
    pub monthly_used: i64,
    /// The organization's monthly quota (null = unlimited).
    pub monthly_quota: Option<i64>,
}

#[derive(Default)]
pub struct KeysQuery;

#[Object]
impl KeysQuery {
    /// The organization's API keys, newest first.
    #[graphql(guard = "Scope(\"keys:read\")", complexity = "page_complexity(first, last, child_complexity)")]
    #[allow(clippy::too_many_arguments)]
    async fn api_keys(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size from the start, 1–100 (default 20).")] first: Option<i32>,
        #[graphql(desc = "Cursor to continue after.")] after: Option<String>,
        #[graphql(desc = "Page size from the end, 1–100.")] last: Option<i32>,
        #[graphql(desc = "Cursor to continue before.")] before: Option<String>,
        #[graphql(desc = "Only keys of this environment.")] environment: Option<ApiKeyEnvironment>,
        #[graphql(default, desc = "Include revoked keys.")] include_revoked: bool,
    ) -> async_graphql::Result<Conn<ApiKey>> {
        let page = PageRequest::from_args(first, after, last, before)?;
        let filter = KeyFilter { environment: environment.map(Into::into), include_revoked };
        let rows = service::list_keys(ctx.app(), ctx.principal()?, &filter, &page).await?;
        Ok(connection(rows, |k| k.id.to_string(), ApiKey))
    }

    /// One API key of the organization.
    #[graphql(guard = "Scope(\"keys:read\")")]
    async fn api_key(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Key id (`key_…`).")] id: ID,
    ) -> async_graphql::Result<ApiKey> {
        Ok(ApiKey(service::get_key(ctx.app(), ctx.principal()?, &id).await?))
    }
}

#[derive(Default)]
pub struct KeysMutation;

#[Object]
impl KeysMutation {
    /// Creates a key. The secret is in the response and never shown again.
    #[graphql(guard = "Scope(\"keys:write\")")]
    async fn create_api_key(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The new key.")] input: CreateApiKeyInput,
    ) -> async_graphql::Result<CreateApiKeyPayload> {
        let (key, secret) = service::create_key(
            ctx.app(),
            ctx.principal()?,
            CreateKey {
                name: input.name,
                description: input.description,
                environment: input.environment.into(),
                scopes: input.scopes,
                expires_at: input.expires_at.map(|d| d.0),
                allowed_ips: input.allowed_ips,
                metadata: input.metadata.map(|j| j.0),
                rate_limit: input.rate_limit.map(Into::into),
            },
        )
        .await?;
        Ok(CreateApiKeyPayload { api_key: ApiKey(key), secret })
    }

    /// Changes a key's name, description, scopes, expiry, allow-list or metadata.
    #[graphql(guard = "Scope(\"keys:write\")")]
    async fn update_api_key(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Key id.")] id: ID,
        #[graphql(desc = "The changes; omitted fields stay as they are.")] input: UpdateApiKeyInput,
    ) -> async_graphql::Result<ApiKey> {
        let patch_input = UpdateKey {
            name: input.name,
            description: patch(input.description, |d| d),
            scopes: input.scopes,
            expires_at: patch(input.expires_at, |d| d.0),
            allowed_ips: input.allowed_ips,
            metadata: input.metadata.map(|j| j.0),
            rate_limit: patch(input.rate_limit, Into::into),
        };
        Ok(ApiKey(service::update_key(ctx.app(), ctx.principal()?, &id, patch_input).await?))
    }

    /// Revokes a key on every node at once. It can never be used again.
    #[graphql(guard = "Scope(\"keys:write\")")]
    async fn revoke_api_key(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Key id.")] id: ID,
        #[graphql(desc = "Why (kept in the audit log).")] reason: Option<String>,
    ) -> async_graphql::Result<ApiKey> {
        Ok(ApiKey(service::revoke_key(ctx.app(), ctx.principal()?, &id, reason).await?))
    }

    /// Deletes a key and its counters.
    #[graphql(guard = "Scope(\"keys:write\")")]
    async fn delete_api_key(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Key id.")] id: ID,
    ) -> async_graphql::Result<DeleteApiKeyPayload> {
        let id = service::delete_key(ctx.app(), ctx.principal()?, &id).await?;
        Ok(DeleteApiKeyPayload { deleted_id: id.into() })
    }

    /// Issues a new secret. The previous one keeps working for `expireOldInSeconds` (default 24 h, 0 = stop now, max 30 days).
    #[graphql(guard = "Scope(\"keys:write\")")]
    async fn roll_api_key(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Key id.")] id: ID,
        #[graphql(desc = "Seconds the previous secret keeps working.")] expire_old_in_seconds: Option<i32>,
    ) -> async_graphql::Result<RollApiKeyPayload> {
        let (key, secret, old) =
            service::roll_key(ctx.app(), ctx.principal()?, &id, expire_old_in_seconds.map(i64::from)).await?;
        Ok(RollApiKeyPayload { api_key: ApiKey(key), secret, previous_secret_expires_at: old.into() })
    }

    /// Verifies a key your users sent you (needs `keys:verify`). Never fails for a bad key: the
    /// verdict says why. A service key (platform organization) verifies any organization's keys.
    #[graphql(guard = "Scope(\"keys:verify\")")]
    async fn verify_api_key(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The key and the context of the call.")] input: VerifyApiKeyInput,
    ) -> async_graphql::Result<VerifyApiKeyResult> {
        let ip = parse_ip(input.ip.as_deref())?;
        let verdict =
            super::verify::verify_key(ctx.app(), ctx.principal()?, &input.key, ip, &input.required_scopes).await?;
        Ok(verify_result(verdict, ctx.app().clock.now_ms()))
    }

    /// Verifies up to 100 keys in one call (needs `keys:verify`), with one context (address,
    /// required scopes). Each distinct key is verified once — and counted once, as a use of that
    /// key, like `verifyApiKey` — and every input gets its verdict, in order.
    #[graphql(guard = "Scope(\"keys:verify\")")]
    async fn verify_api_keys(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The keys and the context of the calls.")] input: VerifyApiKeysInput,
    ) -> async_graphql::Result<VerifyApiKeysResult> {
        use futures_util::StreamExt;
        if input.keys.is_empty() {
            return Err(crate::error::Error::bad_input("keys", "must list at least one key").into());
        }
        if input.keys.len() > MAX_BATCH_VERIFY {
            let msg = format!("at most {MAX_BATCH_VERIFY} keys per call (got {})", input.keys.len());
            return Err(crate::error::Error::bad_input("keys", msg).into());
        }
        if let Some(i) = input.keys.iter().position(|k| k.trim().is_empty()) {
            return Err(crate::error::Error::bad_input(format!("keys[{i}]"), "must not be empty").into());
        }
        let ip = parse_ip(input.ip.as_deref())?;
        let principal = ctx.principal()?;
        let app = ctx.app();
        let mut unique: Vec<String> = Vec::with_capacity(input.keys.len());
        let slots: Vec<usize> = input
            .keys
            .iter()
            .map(|k| match unique.iter().position(|u| u == k.trim()) {
                Some(i) => i,
                None => {
                    unique.push(k.trim().to_string());
                    unique.len() - 1
                }
            })
            .collect();
        let scopes = &input.required_scopes;
        // Ten at a time: a batch shares the database and the limiter with everything else.
        let verdicts: Vec<_> = futures_util::stream::iter(unique.clone())
            .map(|k: String| async move { super::verify::verify_key(app, principal, &k, ip, scopes).await })
            .buffered(10)
            .collect()
            .await;
        let now = app.clock.now_ms();
        let mut results = Vec::with_capacity(unique.len());
        for v in verdicts {
            results.push(verify_result(v?, now));
        }
        let answers: Vec<VerifyApiKeyResult> = slots.iter().map(|&i| results[i].clone()).collect();
        let valid = answers.iter().filter(|r| r.valid).count() as i32;
        Ok(VerifyApiKeysResult {
            valid,
            invalid: answers.len() as i32 - valid,
            verified: unique.len() as i32,
            results: answers,
        })
    }
}

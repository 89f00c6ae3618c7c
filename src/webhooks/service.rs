//! Webhook endpoint rules: validation, CRUD, secrets and their rotation, and the delivery log
//! queries. Every query is scoped to the principal's organization here.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::model::*;
use super::signing::SigningKey;
use crate::app::App;
use crate::auth::Principal;
use crate::error::{Error, Result};
use crate::events::NewAudit;
use crate::pagination::{Page, PageRequest};
use crate::platform::crypto;
use crate::platform::db::schema::{events, webhook_attempts, webhook_deliveries, webhook_endpoints, webhook_secrets};
use crate::platform::ids::{AttemptId, DeliveryId, WebhookId, WebhookSecretId};
use crate::platform::patch::Patch;
use crate::{find_in_org, keyset_page, transaction, with_conn};

pub const DEFAULT_TIMEOUT_SECS: i64 = 30;
pub const DEFAULT_ROTATION_GRACE_SECS: i64 = 24 * 3600;
const MAX_ROTATION_GRACE_SECS: i64 = 7 * 24 * 3600;
const MAX_HEADERS: usize = 20;
const MAX_SCHEDULE: usize = 20;
/// Headers Gantry sets itself; an endpoint may not override them.
const RESERVED_HEADERS: &[&str] =
    &["content-type", "content-length", "host", "user-agent", "connection", "transfer-encoding", "te", "upgrade"];

/// What a new endpoint is made of (validated here).
#[derive(Debug, Default)]
pub struct EndpointInput {
    pub url: Option<String>,
    pub description: Patch<String>,
    pub filters: Option<Vec<String>>,
    /// Types added to the filter (kept as they are: an endpoint on `*` already receives them).
    pub add_filters: Option<Vec<String>>,
    pub headers: Option<serde_json::Value>,
    pub enabled: Option<bool>,
    pub rate_limit_per_second: Patch<i64>,
    pub retry_schedule: Patch<Vec<i64>>,
    pub timeout_secs: Option<i64>,
    pub metadata: Option<serde_json::Value>,
}

async fn check_url(app: &App, raw: &str) -> Result<String> {
    let bad = |m: &str| Error::bad_input("url", m);
    if raw.len() > 2048 {
        return Err(bad("at most 2048 characters"));
    }
    let url = url::Url::parse(raw.trim()).map_err(|e| bad(&format!("not a URL: {e}")))?;
    match url.scheme() {
        "https" => {}
        "http" if app.config.webhook_allow_http => {}
        "http" => return Err(bad("must use https (the operator has not allowed http endpoints)")),
        _ => return Err(bad("must be an https URL")),
    }
    if url.host().is_none() {
        return Err(bad("must name a host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("must not contain credentials; use custom headers"));
    }
    if url.fragment().is_some() {
        return Err(bad("must not contain a fragment"));
    }
    // Literals are refused now. Names are checked on every connection (after resolution, so DNS
    // cannot smuggle an internal address in later), and refused now too when they resolve now to
    // internal addresses only: such an endpoint could never be delivered to.
    app.webhooks.guard.check_literal(&url).map_err(|e| bad(&e.to_string()))?;
    if let Some(url::Host::Domain(name)) = url.host() {
        let port = url.port_or_known_default().unwrap_or(443);
        let lookup = tokio::time::timeout(std::time::Duration::from_secs(2), tokio::net::lookup_host((name, port)));
        if let Ok(Ok(addrs)) = lookup.await {
            let refusals: Vec<_> = addrs.map(|a| (a.ip(), app.webhooks.guard.refusal(a.ip()))).collect();
            if let Some((ip, Some(reason))) = refusals.as_slice().first()
                && refusals.iter().all(|(_, r)| r.is_some())
            {
                return Err(bad(&format!(
                    "`{name}` resolves to {ip} ({reason}): webhooks may not reach internal addresses"
                )));
            }
        }
    }
    Ok(url.to_string())
}

/// Types one `subscribeWebhookEndpoint` call adds.
pub const MAX_ADDED_FILTERS: usize = 50;

fn check_filters(filters: &[String]) -> Result<String> {
    if filters.is_empty() {
        return Err(Error::bad_input("filterTypes", "give at least one event type (`*` for all)"));
    }
    crate::events::filters::check_filters("filterTypes", filters)?;
    let mut sorted = filters.to_vec();
    sorted.sort();
    sorted.dedup();
    Ok(serde_json::to_string(&sorted).expect("strings serialize"))
}

fn check_headers(headers: &serde_json::Value) -> Result<String> {
    let bad = |m: String| Error::bad_input("headers", m);
    let obj = headers.as_object().ok_or_else(|| bad("must be an object of header names to string values".into()))?;
    if obj.len() > MAX_HEADERS {
        return Err(bad(format!("at most {MAX_HEADERS} headers")));
    }
    for (name, value) in obj {
        let lower = name.to_ascii_lowercase();
        if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(bad(format!("`{name}` is not a valid header name")));
        }
        if RESERVED_HEADERS.contains(&lower.as_str()) || lower.starts_with("webhook-") {
            return Err(bad(format!("`{name}` is set by Gantry and cannot be overridden")));
        }
        let Some(v) = value.as_str() else { return Err(bad(format!("the value of `{name}` must be a string"))) };
        if v.len() > 1024 || reqwest::header::HeaderValue::from_str(v).is_err() {
            return Err(bad(format!("the value of `{name}` is not a valid header value (≤ 1024 characters)")));
        }
    }
    Ok(headers.to_string())
}

fn check_schedule(schedule: &[i64]) -> Result<String> {
    if schedule.len() > MAX_SCHEDULE || schedule.iter().any(|s| !(1..=604_800).contains(s)) {
        return Err(Error::bad_input(
            "retrySchedule",
            format!("at most {MAX_SCHEDULE} delays, each 1 to 604800 seconds (7 days)"),
        ));
    }
    Ok(serde_json::to_string(schedule).expect("integers serialize"))
}

fn check_metadata(v: &serde_json::Value) -> Result<String> {
    let s = v.to_string();
    if !v.is_object() || s.len() > 8192 {
        return Err(Error::bad_input("metadata", "must be a JSON object of at most 8 KiB"));
    }
    Ok(s)
}

fn check_description(d: &str) -> Result<String> {
    if d.chars().count() > 1000 {
        return Err(Error::bad_input("description", "at most 1000 characters"));
    }
    Ok(d.to_string())
}

fn check_timeout(secs: i64) -> Result<i64> {
    if !(1..=30).contains(&secs) {
        return Err(Error::bad_input("timeoutSeconds", "must be between 1 and 30"));
    }
    Ok(secs * 1000)
}

fn check_rate(r: i64) -> Result<i64> {
    if !(1..=10_000).contains(&r) {
        return Err(Error::bad_input("rateLimitPerSecond", "must be between 1 and 10000"));
    }
    Ok(r)
}

fn new_secret(app: &App, endpoint_id: &WebhookId, now: i64) -> (SecretRow, String) {
    let seed = crypto::random_base62(32);
    let shown = SigningKey::derive(&app.secret, &seed).expose();
    let row = SecretRow {
        id: WebhookSecretId::generate(now),
        endpoint_id: endpoint_id.clone(),
        seed,
        created_at: now,
        expires_at: None,
    };
    (row, shown)
}

pub async fn create_endpoint(app: &App, principal: &Principal, input: EndpointInput) -> Result<(EndpointRow, String)> {
    principal.require_scope("webhooks:write")?;
    let url = check_url(app, input.url.as_deref().ok_or_else(|| Error::bad_input("url", "is required"))?).await?;
    let now = app.clock.now_ms();
    let id = WebhookId::generate(now);
    let row = EndpointRow {
        id: id.clone(),
        org_id: principal.org_id.clone(),
        url,
        description: input.description.into_value().as_deref().map(check_description).transpose()?,
        event_filter: check_filters(input.filters.as_deref().unwrap_or(&["*".to_string()]))?,
        headers: check_headers(input.headers.as_ref().unwrap_or(&serde_json::json!({})))?,
        enabled: input.enabled.unwrap_or(true),
        disabled_reason: None,
        rate_limit_per_second: input.rate_limit_per_second.into_value().map(check_rate).transpose()?,
        retry_schedule: input.retry_schedule.into_value().as_deref().map(check_schedule).transpose()?,
        timeout_ms: check_timeout(input.timeout_secs.unwrap_or(DEFAULT_TIMEOUT_SECS))?,
        metadata: check_metadata(input.metadata.as_ref().unwrap_or(&serde_json::json!({})))?,
        failing_since: None,
        consecutive_failures: 0,
        created_at: now,
        updated_at: now,
    };
    let max = crate::limits::service::plan_for_org(app, &principal.org_id).await?.max_webhook_endpoints;
    let (secret, shown) = new_secret(app, &id, now);
    let lock_org = app.db.is_postgres();
    let endpoint = transaction!(app.db, c => {
        if let Some(max) = max {
            // Serialize concurrent creates of one organization (SQLite's writer lock already does).
            crate::lock_row!(c, lock_org, "organizations", &row.org_id);
            let count: i64 = webhook_endpoints::table.filter(webhook_endpoints::org_id.eq(&row.org_id)).count().get_result(c).await?;
            if count >= max {
                return Err(Error::forbidden(format!("your plan allows {max} webhook endpoints; delete one or change plans")));
            }
        }
        diesel::insert_into(webhook_endpoints::table).values(&row).execute(c).await?;
        diesel::insert_into(webhook_secrets::table).values(&secret).execute(c).await?;
        let event = crate::outbox!(
            c,
            endpoint_event(app, principal, "webhook.created", &row, None),
            NewAudit::by(app, principal, "webhook.created", "webhook_endpoint", id.as_str(), serde_json::json!({ "url": row.url }))
        );
        Ok::<_, Error>((row, event))
    })?;
    let (endpoint, event) = endpoint;
    event.publish(app).await;
    Ok((endpoint, shown))
}

/// A `webhook.*` event about an endpoint change (`secretsExpireAt` for a rotation). Secrets never
/// appear in events.
fn endpoint_event(
    app: &App,
    principal: &Principal,
    event_type: &str,
    e: &EndpointRow,
    secrets_expire_at: Option<i64>,
) -> crate::events::PendingEvent {
    let mut data = serde_json::json!({ "endpoint": {
        "id": e.id, "url": e.url, "description": e.description, "filterTypes": e.filters(), "enabled": e.enabled,
    } });
    if let Some(at) = secrets_expire_at {
        data["secretsExpireAt"] = serde_json::json!(crate::platform::clock::rfc3339(at));
    }
    crate::events::PendingEvent::new(app, &principal.org_id, event_type, data)
}

async fn find_endpoint(app: &App, principal: &Principal, id: &str) -> Result<EndpointRow> {
    find_in_org!(app.db, principal.org_id.as_str(), webhook_endpoints, EndpointRow, WebhookId, id, "webhook endpoint")
}

pub async fn get_endpoint(app: &App, principal: &Principal, id: &str) -> Result<EndpointRow> {
    principal.require_scope("webhooks:read")?;
    find_endpoint(app, principal, id).await
}

pub async fn list_endpoints(app: &App, principal: &Principal, page: &PageRequest) -> Result<Page<EndpointRow>> {
    principal.require_scope("webhooks:read")?;
    let org = principal.org_id.as_str();
    let (rows, total) = with_conn!(app.db, c => keyset_page!(
        c,
        webhook_endpoints::table.filter(webhook_endpoints::org_id.eq(org)).into_boxed(),
        webhook_endpoints::id,
        EndpointRow,
        page
    ));
    Ok(Page::from_rows(rows, page, total))
}

/// Applies the given changes; re-enabling an endpoint clears its failure run.
pub async fn update_endpoint(app: &App, principal: &Principal, id: &str, input: EndpointInput) -> Result<EndpointRow> {
    principal.require_scope("webhooks:write")?;
    let url = match input.url.as_deref() {
        Some(u) => Some(check_url(app, u).await?),
        None => None,
    };
    let description = input.description.try_map(|d| check_description(&d))?;
    let filters = input.filters.as_deref().map(check_filters).transpose()?;
    if let Some(add) = &input.add_filters {
        if add.is_empty() || add.len() > MAX_ADDED_FILTERS {
            return Err(Error::bad_input("eventTypes", format!("give 1 to {MAX_ADDED_FILTERS} event types")));
        }
        crate::events::filters::check_filters("eventTypes", add)?;
    }
    let headers = input.headers.as_ref().map(check_headers).transpose()?;
    let rate = input.rate_limit_per_second.try_map(check_rate)?;
    let schedule = input.retry_schedule.try_map(|s| check_schedule(&s))?;
    let timeout = input.timeout_secs.map(check_timeout).transpose()?;
    let metadata = input.metadata.as_ref().map(check_metadata).transpose()?;
    let now = app.clock.now_ms();
    let existing = find_endpoint(app, principal, id).await?;
    let pg = app.db.is_postgres();
    let updated = transaction!(app.db, c => {
        // The row is read and written back whole: on PostgreSQL lock it first, so a failure counted
        // or an automatic disable recorded meanwhile is not overwritten (SQLite's writer is single).
        crate::lock_row!(c, pg, "webhook_endpoints", &existing.id);
        let mut row: EndpointRow = webhook_endpoints::table.find(&existing.id).select(EndpointRow::as_select()).first(c).await?;
        if let Some(u) = url { row.url = u; }
        row.description = description.clone().apply(row.description.take());
        if let Some(f) = filters { row.event_filter = f; }
        if let Some(add) = &input.add_filters {
            let mut all: Vec<String> = row.filters();
            if !all.iter().any(|f| f == "*") {
                all.extend(add.iter().cloned());
                row.event_filter = check_filters(&all)?;
            }
        }
        if let Some(h) = headers { row.headers = h; }
        row.rate_limit_per_second = rate.clone().apply(row.rate_limit_per_second);
        row.retry_schedule = schedule.clone().apply(row.retry_schedule.take());
        if let Some(t) = timeout { row.timeout_ms = t; }
        if let Some(m) = metadata { row.metadata = m; }
        if let Some(e) = input.enabled {
            if e && !row.enabled {
                row.disabled_reason = None;
                row.failing_since = None;
                row.consecutive_failures = 0;
            }
            if !e && row.enabled {
                row.disabled_reason = Some("disabled by a user".into());
            }
            row.enabled = e;
        }
        row.updated_at = now;
        diesel::update(webhook_endpoints::table.find(&row.id)).set(&row).execute(c).await?;
        let event = crate::outbox!(
            c,
            endpoint_event(app, principal, "webhook.updated", &row, None),
            NewAudit::by(app, principal, "webhook.updated", "webhook_endpoint", row.id.as_str(), serde_json::json!({}))
        );
        Ok::<_, Error>((row, event))
    })?;
    let (updated, event) = updated;
    event.publish(app).await;
    app.webhooks.wake();
    Ok(updated)
}

/// Deletes an endpoint with its secrets, deliveries and attempts.
pub async fn delete_endpoint(app: &App, principal: &Principal, id: &str) -> Result<String> {
    principal.require_scope("webhooks:write")?;
    let existing = find_endpoint(app, principal, id).await?;
    transaction!(app.db, c => {
        let deliveries = webhook_deliveries::table.filter(webhook_deliveries::endpoint_id.eq(&existing.id)).select(webhook_deliveries::id);
        diesel::delete(webhook_attempts::table.filter(webhook_attempts::delivery_id.eq_any(deliveries))).execute(c).await?;
        diesel::delete(webhook_deliveries::table.filter(webhook_deliveries::endpoint_id.eq(&existing.id))).execute(c).await?;
        diesel::delete(webhook_secrets::table.filter(webhook_secrets::endpoint_id.eq(&existing.id))).execute(c).await?;
        diesel::delete(webhook_endpoints::table.find(&existing.id)).execute(c).await?;
        let event = crate::outbox!(
            c,
            endpoint_event(app, principal, "webhook.deleted", &existing, None),
            NewAudit::by(app, principal, "webhook.deleted", "webhook_endpoint", existing.id.as_str(), serde_json::json!({ "url": existing.url }))
        );
        Ok::<_, Error>(event)
    })?
    .publish(app)
    .await;
    Ok(existing.id.to_string())
}

/// Issues a new secret; the current ones keep signing for `grace_secs` (default 24 h, at most 7
/// days, 0 = stop now). Returns the endpoint, the new secret and when the old ones stop.
pub async fn rotate_secret(
    app: &App,
    principal: &Principal,
    id: &str,
    grace_secs: Option<i64>,
) -> Result<(EndpointRow, String, i64)> {
    principal.require_scope("webhooks:write")?;
    let grace = grace_secs.unwrap_or(DEFAULT_ROTATION_GRACE_SECS);
    if !(0..=MAX_ROTATION_GRACE_SECS).contains(&grace) {
        return Err(Error::bad_input("gracePeriodSeconds", "must be between 0 and 604800 (7 days)"));
    }
    let existing = find_endpoint(app, principal, id).await?;
    let now = app.clock.now_ms();
    let until = now + grace * 1000;
    let (secret, shown) = new_secret(app, &existing.id, now);
    transaction!(app.db, c => {
        // Drop secrets already past their grace; shorten the current ones to the new grace.
        diesel::delete(webhook_secrets::table.filter(webhook_secrets::endpoint_id.eq(&existing.id)).filter(webhook_secrets::expires_at.le(now)))
            .execute(c).await?;
        diesel::update(
            webhook_secrets::table
                .filter(webhook_secrets::endpoint_id.eq(&existing.id))
                .filter(webhook_secrets::expires_at.is_null().or(webhook_secrets::expires_at.gt(until))),
        )
        .set(webhook_secrets::expires_at.eq(until))
        .execute(c).await?;
        diesel::insert_into(webhook_secrets::table).values(&secret).execute(c).await?;
        let event = crate::outbox!(
            c,
            endpoint_event(app, principal, "webhook.secret_rotated", &existing, Some(until)),
            NewAudit::by(app, principal, "webhook.secret_rotated", "webhook_endpoint", existing.id.as_str(), serde_json::json!({ "graceSeconds": grace }))
        );
        Ok::<_, Error>(event)
    })?
    .publish(app)
    .await;
    Ok((existing, shown, until))
}

/// Filters for the delivery log.
#[derive(Debug, Default)]
pub struct DeliveryFilter {
    pub endpoint_id: Option<String>,
    pub event_id: Option<String>,
    pub status: Option<&'static str>,
    pub event_type: Option<String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
}

pub async fn list_deliveries(
    app: &App,
    principal: &Principal,
    filter: &DeliveryFilter,
    page: &PageRequest,
) -> Result<Page<DeliveryRow>> {
    principal.require_scope("webhooks:read")?;
    if let Some(e) = &filter.endpoint_id {
        find_endpoint(app, principal, e).await?;
    }
    let org = principal.org_id.as_str();
    if let Some(e) = &filter.event_id {
        let n: i64 = with_conn!(app.db, c => {
            events::table.find(e).filter(events::org_id.eq(org)).count().get_result(c).await?
        });
        if n == 0 {
            return Err(Error::NotFound("event"));
        }
    }
    macro_rules! base {
        () => {{
            let mut q = webhook_deliveries::table.filter(webhook_deliveries::org_id.eq(org)).into_boxed();
            if let Some(e) = &filter.endpoint_id {
                q = q.filter(webhook_deliveries::endpoint_id.eq(e));
            }
            if let Some(e) = &filter.event_id {
                q = q.filter(webhook_deliveries::event_id.eq(e));
            }
            if let Some(s) = filter.status {
                q = q.filter(webhook_deliveries::status.eq(s));
            }
            if let Some(t) = &filter.event_type {
                q = q.filter(webhook_deliveries::event_type.eq(t));
            }
            if let Some(t) = filter.since {
                q = q.filter(webhook_deliveries::created_at.ge(t));
            }
            if let Some(t) = filter.until {
                q = q.filter(webhook_deliveries::created_at.lt(t));
            }
            q
        }};
    }
    let (rows, total) = with_conn!(app.db, c => keyset_page!(c, base!(), webhook_deliveries::id, DeliveryRow, page));
    Ok(Page::from_rows(rows, page, total))
}

pub async fn get_delivery(app: &App, principal: &Principal, id: &str) -> Result<DeliveryRow> {
    principal.require_scope("webhooks:read")?;
    find_in_org!(app.db, principal.org_id.as_str(), webhook_deliveries, DeliveryRow, DeliveryId, id, "webhook delivery")
}

/// One attempt of a delivery of the caller's organization.
pub async fn get_attempt(app: &App, principal: &Principal, id: &str) -> Result<AttemptRow> {
    principal.require_scope("webhooks:read")?;
    find_in_org!(app.db, principal.org_id.as_str(), webhook_attempts, AttemptRow, AttemptId, id, "webhook attempt")
}

/// Attempts of a delivery, oldest first (at most 100: a schedule has at most 21 attempts, plus
/// manual retries).
pub async fn attempts_of(app: &App, org_id: &str, delivery_id: &str) -> Result<Vec<AttemptRow>> {
    Ok(with_conn!(app.db, c => {
        webhook_attempts::table
            .filter(webhook_attempts::delivery_id.eq(delivery_id))
            .filter(webhook_attempts::org_id.eq(org_id))
            .order(webhook_attempts::id.asc())
            .limit(100)
            .select(AttemptRow::as_select())
            .load(c).await?
    }))
}

/// Makes a delivery due now: a pending one keeps its schedule, a failed one gets one more attempt
/// (and, if its schedule had not run out, the rest of it).
pub async fn retry_delivery(
    app: &App,
    principal: &Principal,
    id: &str,
    endpoint_id: Option<&str>,
) -> Result<DeliveryRow> {
    principal.require_scope("webhooks:write")?;
    let existing = get_delivery(app, principal, id).await?;
    if endpoint_id.is_some_and(|e| e != existing.endpoint_id.as_str()) {
        return Err(Error::NotFound("webhook delivery"));
    }
    let endpoint = find_endpoint(app, principal, existing.endpoint_id.as_str()).await?;
    if !endpoint.enabled {
        return Err(Error::Conflict("the endpoint is disabled; enable it before retrying its deliveries".into()));
    }
    let now = app.clock.now_ms();
    let row: Option<DeliveryRow> = with_conn!(app.db, c => {
        diesel::update(
            webhook_deliveries::table
                .find(&existing.id)
                // Not while an attempt is in flight: that would send the same message twice at once.
                .filter(webhook_deliveries::leased_until.is_null().or(webhook_deliveries::leased_until.le(now))),
        )
        .set((
            webhook_deliveries::status.eq(PENDING),
            webhook_deliveries::next_attempt_at.eq(now),
            webhook_deliveries::leased_until.eq(None::<i64>),
            webhook_deliveries::updated_at.eq(now),
        ))
        .returning(DeliveryRow::as_returning())
        .get_result(c).await.optional()?
    });
    let row = row.ok_or_else(|| {
        Error::Conflict("an attempt of this delivery is in progress; retry once it has finished".into())
    })?;
    app.webhooks.wake();
    Ok(row)
}

/// Sends one event of `event_type` with the type's sample payload to one endpoint only (not to
/// the organization's other endpoints): the event and its delivery are written together.
pub async fn send_test_event(
    app: &App,
    principal: &Principal,
    endpoint_id: &str,
    event_type: Option<&str>,
) -> Result<DeliveryRow> {
    principal.require_scope("webhooks:write")?;
    let event_type = event_type.unwrap_or("webhook.test");
    let sample = match crate::events::publish::find_type(app, event_type).await? {
        Some(t) => t.sample,
        None => return Err(Error::bad_input("type", format!("`{event_type}` is not an event type of the catalog"))),
    };
    let endpoint = find_endpoint(app, principal, endpoint_id).await?;
    let now = app.clock.now_ms();
    let event = crate::events::PendingEvent::new(app, &principal.org_id, event_type, sample);
    let delivery = super::dispatch::new_delivery(&endpoint.org_id, &endpoint.id, &event.row.id, event_type, now);
    transaction!(app.db, c => {
        use crate::platform::db::schema::events;
        diesel::insert_into(events::table).values(&event.row).execute(c).await?;
        diesel::update(events::table.find(&event.row.id))
            .set((events::dispatched_at.eq(now), events::is_test.eq(true)))
            .execute(c).await?;
        diesel::insert_into(webhook_deliveries::table).values(&delivery).execute(c).await?;
        Ok::<_, Error>(())
    })?;
    app.webhooks.wake();
    Ok(delivery)
}

const MAX_RECOVERY_MS: i64 = 14 * 86_400_000;

/// Sends again every failed delivery of an endpoint created in `[since, until)` (`until`
/// defaults to now; the window reaches at most 14 days back). Returns how many were queued.
pub async fn recover_endpoint(
    app: &App,
    principal: &Principal,
    id: &str,
    since: i64,
    until: Option<i64>,
) -> Result<i64> {
    principal.require_scope("webhooks:write")?;
    let now = app.clock.now_ms();
    // Without `until`, everything created up to this instant (inclusive).
    let until = until.unwrap_or(now + 1);
    if since < now - MAX_RECOVERY_MS {
        return Err(Error::bad_input("since", "recovery reaches at most 14 days back"));
    }
    if until <= since {
        return Err(Error::bad_input("until", "must be after `since`"));
    }
    let endpoint = find_endpoint(app, principal, id).await?;
    if !endpoint.enabled {
        return Err(Error::Conflict("the endpoint is disabled; enable it before recovering its deliveries".into()));
    }
    let queued = with_conn!(app.db, c => {
        diesel::update(
            webhook_deliveries::table
                .filter(webhook_deliveries::endpoint_id.eq(&endpoint.id))
                .filter(webhook_deliveries::status.eq(FAILED))
                .filter(webhook_deliveries::created_at.ge(since))
                .filter(webhook_deliveries::created_at.lt(until)),
        )
        .set((
            webhook_deliveries::status.eq(PENDING),
            webhook_deliveries::next_attempt_at.eq(now),
            webhook_deliveries::leased_until.eq(None::<i64>),
            webhook_deliveries::updated_at.eq(now),
        ))
        .execute(c).await?
    });
    app.webhooks.wake();
    Ok(queued as i64)
}

/// How an endpoint is doing.
#[derive(Debug, Default)]
pub struct EndpointStats {
    pub succeeded: i64,
    pub pending: i64,
    pub failed: i64,
    /// Attempts in the last 24 hours, and how many of them succeeded.
    pub attempts_24h: i64,
    pub succeeded_24h: i64,
}

pub async fn endpoint_stats(app: &App, org_id: &str, endpoint_id: &str) -> Result<EndpointStats> {
    let since = app.clock.now_ms() - 86_400_000;
    type Counts<K> = Vec<(K, i64)>;
    let (by_status, attempts): (Counts<String>, Counts<Option<String>>) = with_conn!(app.db, c => {
        let by_status = webhook_deliveries::table
            .filter(webhook_deliveries::endpoint_id.eq(endpoint_id))
            .filter(webhook_deliveries::org_id.eq(org_id))
            .group_by(webhook_deliveries::status)
            .select((webhook_deliveries::status, diesel::dsl::count_star()))
            .load(c).await?;
        let attempts = webhook_attempts::table
            .filter(webhook_attempts::endpoint_id.eq(endpoint_id))
            .filter(webhook_attempts::org_id.eq(org_id))
            .filter(webhook_attempts::created_at.ge(since))
            .group_by(webhook_attempts::error_kind.is_null())
            .select((diesel::dsl::sql::<diesel::sql_types::Nullable<diesel::sql_types::Text>>("MIN(error_kind)"), diesel::dsl::count_star()))
            .load(c).await?;
        (by_status, attempts)
    });
    let mut stats = EndpointStats::default();
    for (status, n) in by_status {
        match status.as_str() {
            SUCCEEDED => stats.succeeded = n,
            FAILED => stats.failed = n,
            _ => stats.pending = n,
        }
    }
    for (kind, n) in attempts {
        stats.attempts_24h += n;
        if kind.is_none() {
            stats.succeeded_24h += n;
        }
    }
    Ok(stats)
}

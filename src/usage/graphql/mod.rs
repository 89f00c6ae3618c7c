//! GraphQL for usage: analytics queries (from roll-ups) and `recordUsage`; the quota event
//! subscriptions in `stream`.

mod stream;

pub use stream::UsageSubscription;

use async_graphql::{Context, Enum, ID, InputObject, Json, Object, SimpleObject};

use super::analytics::{self, Dim, Granularity, Stats};
use super::meter::HOUR_MS;
use super::reported::{self, EventInput, Outcome};
use crate::auth::Principal;
use crate::error::Error;
use crate::graphql::context::{ContextExt, Scope};
use crate::graphql::scalars::DateTime;
use crate::keys::graphql::ApiKey;
use crate::platform::clock::month_start;

/// A period of time analytics cover. Hour-aligned; the current hour is included.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum UsagePeriod {
    /// The current hour.
    LastHour,
    /// The current hour and the 23 before it.
    Last24Hours,
    /// The last 7 × 24 hours.
    Last7Days,
    /// The last 30 × 24 hours.
    Last30Days,
    /// Since the start of the current calendar month (UTC): the quota period.
    CurrentMonth,
    /// The previous calendar month (UTC).
    PreviousMonth,
}

/// Hour or day buckets.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum UsageGranularity {
    /// One bucket per hour (UTC).
    Hour,
    /// One bucket per day (UTC).
    Day,
}

impl UsagePeriod {
    /// `[start, end)` in epoch ms at `now_ms`.
    pub fn range(self, now_ms: i64) -> (i64, i64) {
        let next_hour = now_ms.div_euclid(HOUR_MS) * HOUR_MS + HOUR_MS;
        match self {
            UsagePeriod::LastHour => (next_hour - HOUR_MS, next_hour),
            UsagePeriod::Last24Hours => (next_hour - 24 * HOUR_MS, next_hour),
            UsagePeriod::Last7Days => (next_hour - 7 * 24 * HOUR_MS, next_hour),
            UsagePeriod::Last30Days => (next_hour - 30 * 24 * HOUR_MS, next_hour),
            UsagePeriod::CurrentMonth => (month_start(now_ms, 0), next_hour),
            UsagePeriod::PreviousMonth => (month_start(now_ms, 1), month_start(now_ms, 0)),
        }
    }

    /// Parses the REST spelling (`last_7_days`).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_lowercase().as_str() {
            "last_hour" => UsagePeriod::LastHour,
            "last_24_hours" => UsagePeriod::Last24Hours,
            "last_7_days" => UsagePeriod::Last7Days,
            "last_30_days" => UsagePeriod::Last30Days,
            "current_month" => UsagePeriod::CurrentMonth,
            "previous_month" => UsagePeriod::PreviousMonth,
            _ => return None,
        })
    }
}

/// Figures for a set of API calls.
pub struct UsageStats(pub Stats);

/// Figures for a set of API calls. Latency percentiles come from histograms with bins 5 % wide:
/// each is within 2.5 % of the exact value.
#[Object]
impl UsageStats {
    /// Calls made (every status, including refusals).
    async fn calls(&self) -> i64 {
        self.0.calls
    }
    /// Calls answered with a 4xx or 5xx status.
    async fn errors(&self) -> i64 {
        self.0.errors
    }
    /// Calls answered 4xx.
    async fn client_errors(&self) -> i64 {
        self.0.client_errors
    }
    /// Calls answered 5xx.
    async fn server_errors(&self) -> i64 {
        self.0.server_errors
    }
    /// Calls refused by a rate limit or quota (429).
    async fn limited_calls(&self) -> i64 {
        self.0.limited
    }
    /// Share of calls without an error, 0–1 (null when there were no calls).
    async fn success_rate(&self) -> Option<f64> {
        self.0.success_rate()
    }
    /// Mean latency in milliseconds (null without calls).
    async fn avg_latency_ms(&self) -> Option<f64> {
        self.0.avg_latency_ms()
    }
    /// Median latency in milliseconds.
    async fn p50_latency_ms(&self) -> Option<f64> {
        self.0.percentile_ms(50.0)
    }
    /// 95th percentile latency in milliseconds.
    async fn p95_latency_ms(&self) -> Option<f64> {
        self.0.percentile_ms(95.0)
    }
    /// 99th percentile latency in milliseconds.
    async fn p99_latency_ms(&self) -> Option<f64> {
        self.0.percentile_ms(99.0)
    }
    /// Request body bytes received.
    async fn request_bytes(&self) -> i64 {
        self.0.request_bytes
    }
    /// Response body bytes sent.
    async fn response_bytes(&self) -> i64 {
        self.0.response_bytes
    }
    /// Request plus response bytes.
    async fn bandwidth_bytes(&self) -> i64 {
        self.0.request_bytes + self.0.response_bytes
    }
    /// Cost units charged (GraphQL query cost points).
    async fn cost_units(&self) -> i64 {
        self.0.cost_units
    }
    /// Calls counted against the monthly quota.
    async fn quota_units(&self) -> i64 {
        self.0.quota_units
    }
}

/// Usage over a period.
#[derive(SimpleObject)]
pub struct UsageSummary {
    /// First instant covered.
    pub start: DateTime,
    /// First instant after the period.
    pub end: DateTime,
    /// The figures.
    pub stats: UsageStats,
}

/// One bucket of a usage history.
#[derive(SimpleObject)]
pub struct UsagePoint {
    /// Start of the hour or day (UTC).
    pub start: DateTime,
    /// The figures of the bucket (zeros when idle).
    pub stats: UsageStats,
}

/// Calls made in this organization by one installed marketplace app (its OAuth access tokens).
#[derive(async_graphql::SimpleObject)]
#[graphql(complex)]
pub struct AppUsage {
    /// The app's id.
    pub app_id: ID,
    #[graphql(skip)]
    stats: Stats,
}

#[async_graphql::ComplexObject]
impl AppUsage {
    /// The app's name (the calls were made in this organization as the app, so its name is known
    /// here whatever the app's marketplace status); null when the app was deleted.
    async fn app_name(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<String>> {
        use crate::graphql::loaders::{Loaders, loader_error};
        let Ok(id) = self.app_id.0.parse::<crate::platform::ids::AppId>() else { return Ok(None) };
        let row = ctx.data_unchecked::<Loaders>().get().load_one(id).await.map_err(loader_error)?;
        Ok(row.map(|r| r.name))
    }

    /// The figures.
    async fn stats(&self) -> UsageStats {
        UsageStats(self.stats.clone())
    }
}

/// Usage of one API key (or of signed-in users, without a key).
pub struct KeyUsage {
    key_id: Option<String>,
    stats: Stats,
}

/// Usage of one API key (or of signed-in users, without a key).
#[Object]
impl KeyUsage {
    /// The key's id; null for calls made with a session (signed-in users).
    async fn key_id(&self) -> Option<ID> {
        self.key_id.clone().map(ID)
    }
    /// The key, if it still exists.
    async fn api_key(&self, ctx: &Context<'_>) -> Option<ApiKey> {
        let id = self.key_id.as_deref()?;
        let p = ctx.principal().ok()?;
        crate::keys::service::get_key(ctx.app(), p, id).await.ok().map(ApiKey)
    }
    /// The figures.
    async fn stats(&self) -> UsageStats {
        UsageStats(self.stats.clone())
    }
}

/// Usage of one operation: a GraphQL operation (its name, or its root fields) or a REST route.
#[derive(SimpleObject)]
pub struct EndpointUsage {
    /// `query viewer`, `mutation createApiKey`, `GET /api/v1/keys/{id}`, `verifyApiKey`, …
    pub operation: String,
    /// The figures.
    pub stats: UsageStats,
}

/// Calls answered with one status code.
#[derive(SimpleObject)]
pub struct StatusCount {
    /// HTTP status code.
    pub status: i32,
    /// Calls answered with it.
    pub calls: i64,
    /// Share of all calls in the period, 0–1.
    pub share: f64,
}

/// Where the current month is heading, projected linearly from its pace so far.
#[derive(SimpleObject)]
pub struct UsageForecast {
    /// Start of the month (UTC).
    pub period_start: DateTime,
    /// End of the month: when the quota resets.
    pub period_end: DateTime,
    /// Calls so far this month.
    pub calls: i64,
    /// Calls expected by the end of the month at the pace so far.
    pub projected_calls: i64,
    /// Calls counted against the quota so far.
    pub quota_used: i64,
    /// Quota use expected by the end of the month.
    pub projected_quota_used: i64,
    /// The plan's monthly quota (null = unlimited).
    pub monthly_quota: Option<i64>,
    /// Projected use as a percentage of the quota (null = unlimited).
    pub projected_percent_of_quota: Option<f64>,
    /// When the quota runs out at this pace, if before the month ends.
    pub quota_exhausted_at: Option<DateTime>,
}

/// One metered event for `recordUsage`.
#[derive(InputObject)]
pub struct MeteredEventInput {
    /// What is metered: a letter, then letters, digits, `_`, `.`, `:` or `-` (≤ 100).
    pub metric: String,
    /// How much (≥ 0).
    pub quantity: i64,
    /// Unique per organization; a repeat is accepted once (≤ 255 characters).
    pub idempotency_key: String,
    /// When it happened (default now; at most 35 days ago).
    pub timestamp: Option<DateTime>,
    /// A JSON object (≤ 4 KiB) kept with the event.
    pub properties: Option<Json<serde_json::Value>>,
}

/// Input of `recordUsage`.
#[derive(InputObject)]
pub struct RecordUsageInput {
    /// The organization the usage belongs to: a platform service key names it; others may omit it
    /// (their own organization).
    pub organization_id: Option<ID>,
    /// 1 to 1000 events.
    pub events: Vec<MeteredEventInput>,
}

/// Whether an event was new.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum MeteredEventStatus {
    /// Stored now.
    Accepted,
    /// Its idempotency key was seen before: nothing stored, the first event's id returned.
    Duplicate,
}

/// The fate of one reported event.
#[derive(SimpleObject)]
pub struct MeteredEventResult {
    /// The key it was sent with.
    pub idempotency_key: String,
    /// The stored event (`mev_…`): the first one for a repeated key.
    pub event_id: ID,
    /// Accepted or duplicate.
    pub status: MeteredEventStatus,
}

/// What `recordUsage` did.
#[derive(SimpleObject)]
pub struct RecordUsagePayload {
    /// Events stored now.
    pub accepted: i32,
    /// Events whose key was seen before.
    pub duplicates: i32,
    /// One result per event sent, in order.
    pub results: Vec<MeteredEventResult>,
}

#[derive(Default)]
pub struct UsageQuery;

async fn scope(
    ctx: &Context<'_>,
    start: i64,
    end: i64,
    key: Option<&ID>,
    g: Granularity,
) -> async_graphql::Result<analytics::Scope> {
    let p: &Principal = ctx.principal()?;
    Ok(analytics::Scope::of(ctx.app(), p, start, end, key.map(|k| k.as_str()), g).await?)
}

#[Object]
impl UsageQuery {
    /// The caller's organization's usage over a period (optionally one key's).
    #[graphql(guard = "Scope(\"usage:read\")")]
    async fn usage(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The period (default: the current month).", default_with = "UsagePeriod::CurrentMonth")]
        period: UsagePeriod,
        #[graphql(desc = "Only this key's calls.")] key_id: Option<ID>,
    ) -> async_graphql::Result<UsageSummary> {
        let (start, end) = period.range(ctx.app().clock.now_ms());
        let s = scope(ctx, start, end, key_id.as_ref(), Granularity::Hour).await?;
        let stats = analytics::summary(ctx.app(), &s).await?;
        Ok(UsageSummary { start: DateTime(start), end: DateTime(end), stats: UsageStats(stats) })
    }

    /// Usage bucket by bucket between two instants (at most 1000 buckets).
    #[graphql(guard = "Scope(\"usage:read\")")]
    async fn usage_history(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "From (rounded down to the bucket).")] start: DateTime,
        #[graphql(desc = "Until (exclusive).")] end: DateTime,
        #[graphql(desc = "Hour or day buckets.", default_with = "UsageGranularity::Hour")]
        granularity: UsageGranularity,
        #[graphql(desc = "Only this key's calls.")] key_id: Option<ID>,
    ) -> async_graphql::Result<Vec<UsagePoint>> {
        if end.0 <= start.0 {
            return Err(Error::bad_input("end", "must be after start").into());
        }
        let g = match granularity {
            UsageGranularity::Hour => Granularity::Hour,
            UsageGranularity::Day => Granularity::Day,
        };
        let s = scope(ctx, start.0, end.0, key_id.as_ref(), g).await?;
        let points = analytics::history(ctx.app(), &s).await?;
        Ok(points.into_iter().map(|(b, stats)| UsagePoint { start: DateTime(b), stats: UsageStats(stats) }).collect())
    }

    /// Usage per API key over a period, busiest first.
    #[graphql(guard = "Scope(\"usage:read\")")]
    async fn usage_by_key(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The period (default: the current month).", default_with = "UsagePeriod::CurrentMonth")]
        period: UsagePeriod,
    ) -> async_graphql::Result<Vec<KeyUsage>> {
        let (start, end) = period.range(ctx.app().clock.now_ms());
        let s = scope(ctx, start, end, None, Granularity::Hour).await?;
        let mut rows = analytics::grouped(ctx.app(), &s, Dim::Key).await?;
        rows.sort_by(|a, b| b.1.calls.cmp(&a.1.calls).then(a.0.cmp(&b.0)));
        // The credential column also holds apps (`app_…`): those are `usageByApp`'s.
        rows.retain(|(k, _)| !k.starts_with(crate::platform::ids::AppId::PREFIX));
        Ok(rows.into_iter().map(|(k, stats)| KeyUsage { key_id: (!k.is_empty()).then_some(k), stats }).collect())
    }

    /// Usage per installed marketplace app (calls made with its access tokens) over a period,
    /// busiest first.
    #[graphql(guard = "Scope(\"usage:read\")")]
    async fn usage_by_app(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The period (default: the current month).", default_with = "UsagePeriod::CurrentMonth")]
        period: UsagePeriod,
    ) -> async_graphql::Result<Vec<AppUsage>> {
        let (start, end) = period.range(ctx.app().clock.now_ms());
        let s = scope(ctx, start, end, None, Granularity::Hour).await?;
        let mut rows = analytics::grouped(ctx.app(), &s, Dim::Key).await?;
        rows.retain(|(k, _)| k.starts_with(crate::platform::ids::AppId::PREFIX));
        rows.sort_by(|a, b| b.1.calls.cmp(&a.1.calls).then(a.0.cmp(&b.0)));
        Ok(rows.into_iter().map(|(k, stats)| AppUsage { app_id: ID(k), stats }).collect())
    }

    /// Usage per operation or route over a period, busiest first (optionally one key's).
    #[graphql(guard = "Scope(\"usage:read\")")]
    async fn usage_by_endpoint(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The period (default: the current month).", default_with = "UsagePeriod::CurrentMonth")]
        period: UsagePeriod,
        #[graphql(desc = "Only this key's calls.")] key_id: Option<ID>,
    ) -> async_graphql::Result<Vec<EndpointUsage>> {
        endpoints(ctx, period, key_id.as_ref(), usize::MAX).await
    }

    /// The organization's calls one by one, newest first, as metered (kept as long as usage
    /// retention keeps raw records). Page with `after`: the `cursor` of the last one seen.
    #[graphql(guard = "Scope(\"usage:read\")")]
    #[allow(clippy::too_many_arguments)] // the resolver's arguments are the query's
    async fn request_logs(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many (1–100, default 50).", default = 50)] first: i32,
        #[graphql(
            desc = "The `cursor` of the last call seen: the page continues with the calls older than it (those of the same millisecond included)."
        )]
        after: Option<String>,
        #[graphql(desc = "Only calls before this time.")] before: Option<DateTime>,
        #[graphql(desc = "Only calls at or after this time.")] since: Option<DateTime>,
        #[graphql(desc = "Only this key's calls.")] key_id: Option<ID>,
        #[graphql(desc = "Only calls answered with this HTTP status.")] status: Option<i32>,
    ) -> async_graphql::Result<Vec<RequestLog>> {
        if !(1..=100).contains(&first) {
            return Err(Error::bad_input("first", "must be between 1 and 100").into());
        }
        let principal = ctx.principal()?;
        let after = match after {
            Some(a) => Some(
                super::logs::Cursor::decode(&a)
                    .ok_or_else(|| Error::bad_input("after", "is not a `cursor` from requestLogs"))?,
            ),
            None => None,
        };
        let filter = super::logs::LogFilter {
            after,
            before: before.map(|d| d.0),
            since: since.map(|d| d.0),
            key_id: key_id.map(|k| k.0),
            status,
            limit: first as usize,
        };
        let rows = super::logs::recent(ctx.app(), &principal.org_id, &filter).await?;
        Ok(rows
            .into_iter()
            .map(|r| RequestLog {
                cursor: r.cursor.encode(),
                occurred_at: DateTime(r.occurred_at),
                key_id: r.api_key_id.map(ID),
                source: r.source,
                operation: r.operation,
                status: r.status,
                latency_ms: r.latency_us as f64 / 1000.0,
                request_bytes: r.request_bytes,
                response_bytes: r.response_bytes,
            })
            .collect())
    }

    /// The busiest operations and routes over a period.
    #[graphql(guard = "Scope(\"usage:read\")")]
    async fn top_endpoints(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The period (default: the current month).", default_with = "UsagePeriod::CurrentMonth")]
        period: UsagePeriod,
        #[graphql(desc = "How many (1–100, default 10).", default = 10)] limit: i32,
    ) -> async_graphql::Result<Vec<EndpointUsage>> {
        if !(1..=100).contains(&limit) {
            return Err(Error::bad_input("limit", "must be between 1 and 100").into());
        }
        endpoints(ctx, period, None, limit as usize).await
    }

    /// Calls per status code (4xx and 5xx) over a period.
    #[graphql(guard = "Scope(\"usage:read\")")]
    async fn error_breakdown(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The period (default: the current month).", default_with = "UsagePeriod::CurrentMonth")]
        period: UsagePeriod,
        #[graphql(desc = "Only this key's calls.")] key_id: Option<ID>,
    ) -> async_graphql::Result<Vec<StatusCount>> {
        let (start, end) = period.range(ctx.app().clock.now_ms());
        let s = scope(ctx, start, end, key_id.as_ref(), Granularity::Hour).await?;
        let all = analytics::by_status(ctx.app(), &s).await?;
        let total: i64 = all.iter().map(|(_, n)| n).sum();
        Ok(all
            .into_iter()
            .filter(|(status, _)| *status >= 400)
            .map(|(status, calls)| StatusCount { status, calls, share: calls as f64 / total.max(1) as f64 })
            .collect())
    }

    /// The current month projected to its end at the pace so far, against the plan's quota.
    #[graphql(guard = "Scope(\"usage:read\")")]
    async fn usage_forecast(&self, ctx: &Context<'_>) -> async_graphql::Result<UsageForecast> {
        let app = ctx.app();
        let p = ctx.principal()?;
        let now = app.clock.now_ms();
        let (start, end) = (month_start(now, 0), now + crate::platform::clock::month_reset_ms(now));
        let s = scope(ctx, start, end, None, Granularity::Hour).await?;
        let stats = analytics::summary(app, &s).await?;
        let plan = crate::limits::service::plan_for_org(app, &p.org_id).await?;
        let elapsed = (now - start).max(HOUR_MS) as f64;
        let total = (end - start) as f64;
        let project = |n: i64| (n as f64 * total / elapsed).round() as i64;
        let projected_quota = project(stats.quota_units);
        let exhausted = plan.monthly_quota.filter(|_| stats.quota_units > 0).and_then(|q| {
            let rate = stats.quota_units as f64 / elapsed;
            let at = start + (q as f64 / rate) as i64;
            (at < end).then_some(DateTime(at.max(now.min(at))))
        });
        Ok(UsageForecast {
            period_start: DateTime(start),
            period_end: DateTime(end),
            calls: stats.calls,
            projected_calls: project(stats.calls),
            quota_used: stats.quota_units,
            projected_quota_used: projected_quota,
            monthly_quota: plan.monthly_quota,
            projected_percent_of_quota: plan.monthly_quota.map(|q| projected_quota as f64 * 100.0 / q.max(1) as f64),
            quota_exhausted_at: exhausted,
        })
    }
}

async fn endpoints(
    ctx: &Context<'_>,
    period: UsagePeriod,
    key: Option<&ID>,
    limit: usize,
) -> async_graphql::Result<Vec<EndpointUsage>> {
    let (start, end) = period.range(ctx.app().clock.now_ms());
    let s = scope(ctx, start, end, key, Granularity::Hour).await?;
    let mut rows = analytics::grouped(ctx.app(), &s, Dim::Operation).await?;
    rows.sort_by(|a, b| b.1.calls.cmp(&a.1.calls).then(a.0.cmp(&b.0)));
    Ok(rows
        .into_iter()
        .take(limit)
        .map(|(operation, stats)| EndpointUsage { operation, stats: UsageStats(stats) })
        .collect())
}

#[derive(Default)]
pub struct UsageMutation;

#[Object]
impl UsageMutation {
    /// Reports metered usage (the operator's backend): each event once per idempotency key.
    /// Answered after the events are stored.
    #[graphql(guard = "Scope(\"usage:write\")")]
    async fn record_usage(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The events.")] input: RecordUsageInput,
    ) -> async_graphql::Result<RecordUsagePayload> {
        let p = ctx.principal()?;
        let events = input
            .events
            .into_iter()
            .map(|e| EventInput {
                metric: e.metric,
                quantity: e.quantity,
                idempotency_key: e.idempotency_key,
                timestamp_ms: e.timestamp.map(|t| t.0),
                properties: e.properties.map(|j| j.0),
            })
            .collect();
        let results =
            reported::record(ctx.app(), p, input.organization_id.as_ref().map(|i| i.as_str()), events).await?;
        let accepted = results.iter().filter(|r| r.outcome == Outcome::Accepted).count() as i32;
        Ok(RecordUsagePayload {
            accepted,
            duplicates: results.len() as i32 - accepted,
            results: results
                .into_iter()
                .map(|r| MeteredEventResult {
                    idempotency_key: r.idempotency_key,
                    event_id: ID(r.event_id),
                    status: match r.outcome {
                        Outcome::Accepted => MeteredEventStatus::Accepted,
                        Outcome::Duplicate => MeteredEventStatus::Duplicate,
                    },
                })
                .collect(),
        })
    }
}

/// One call as metered.
#[derive(SimpleObject)]
pub struct RequestLog {
    /// Its place in the log: pass it as `after` for the calls older than it.
    pub cursor: String,
    /// When it was answered.
    pub occurred_at: DateTime,
    /// The key that made it (null for a signed-in user or an app).
    pub key_id: Option<ID>,
    /// The surface: `graphql`, `rest`, `websocket`, `verify`.
    pub source: String,
    /// The operation or route (`query Viewer`, `GET /api/v1/keys/{id}`).
    pub operation: String,
    /// The HTTP status it was answered with.
    pub status: i32,
    /// Time to answer, in milliseconds.
    pub latency_ms: f64,
    /// Size of the request body.
    pub request_bytes: i64,
    /// Size of the response body.
    pub response_bytes: i64,
}

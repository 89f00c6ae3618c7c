//! GraphQL for usage alerts: `alerts`, `acknowledgeAlert` and the `Alert` node.

use async_graphql::{Context, Enum, ID, Json, Object};

use crate::alerts as service;
use crate::graphql::context::{ContextExt, Scope};
use crate::graphql::scalars::DateTime;

/// What an alert is about.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum AlertKind {
    /// 80 %, 90 % or 100 % of the monthly quota used (once per threshold per month).
    QuotaThreshold,
    /// Calls refused by a rate window or the concurrency cap (resolves 5 minutes after the last).
    RateLimitExceeded,
    /// This hour ≥ 20 calls, ≥ 10 % of them 5xx, and at least 3× the previous 24 hours' 5xx rate.
    ErrorSpike,
    /// This hour's p95 latency ≥ 2× the previous 24 hours' (≥ 20 calls now, ≥ 100 before).
    LatencyDegradation,
    /// This hour ≥ 100 calls and ≥ 5× the hourly average of the previous 7 days.
    UnusualActivity,
}

impl AlertKind {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "quota_threshold" => AlertKind::QuotaThreshold,
            "rate_limit_exceeded" => AlertKind::RateLimitExceeded,
            "error_spike" => AlertKind::ErrorSpike,
            "latency_degradation" => AlertKind::LatencyDegradation,
            "unusual_activity" => AlertKind::UnusualActivity,
            _ => return None,
        })
    }
}

/// How urgent an alert is.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum AlertSeverity {
    /// Worth a look.
    Low,
    /// Needs attention soon.
    Medium,
    /// Needs attention now.
    High,
    /// Calls are being refused or failing.
    Critical,
}

/// Where an alert stands.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum AlertStatus {
    /// Active, not yet acknowledged.
    Open,
    /// Active, acknowledged by someone.
    Acknowledged,
    /// The condition cleared (resolved automatically).
    Resolved,
}

/// A usage alert of the organization.
pub struct Alert(pub service::AlertRow);

/// A usage alert of the organization.
#[Object]
impl Alert {
    /// Alert id (`alr_…`).
    pub async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// What it is about.
    async fn kind(&self) -> Option<AlertKind> {
        AlertKind::parse(&self.0.kind)
    }
    /// How urgent it is.
    async fn severity(&self) -> AlertSeverity {
        match self.0.severity.as_str() {
            "LOW" => AlertSeverity::Low,
            "HIGH" => AlertSeverity::High,
            "CRITICAL" => AlertSeverity::Critical,
            _ => AlertSeverity::Medium,
        }
    }
    /// Open, acknowledged or resolved.
    async fn status(&self) -> AlertStatus {
        match self.0.status() {
            "RESOLVED" => AlertStatus::Resolved,
            "ACKNOWLEDGED" => AlertStatus::Acknowledged,
            _ => AlertStatus::Open,
        }
    }
    /// One line for people.
    async fn title(&self) -> &str {
        &self.0.title
    }
    /// Figures behind it (threshold, rates, latencies, …).
    async fn data(&self) -> Json<serde_json::Value> {
        Json(serde_json::from_str(&self.0.data).unwrap_or_default())
    }
    /// How many times the condition was seen while active.
    async fn occurrences(&self) -> i64 {
        self.0.occurrences
    }
    /// When it was raised.
    async fn triggered_at(&self) -> DateTime {
        DateTime(self.0.triggered_at)
    }
    /// When the condition was last seen.
    async fn last_seen_at(&self) -> DateTime {
        DateTime(self.0.last_seen_at)
    }
    /// When someone acknowledged it.
    async fn acknowledged_at(&self) -> Option<DateTime> {
        self.0.acknowledged_at.map(DateTime)
    }
    /// Who acknowledged it (`usr_…` or `key_…`).
    async fn acknowledged_by(&self) -> Option<ID> {
        self.0.acknowledged_by.clone().map(ID)
    }
    /// When the condition cleared.
    async fn resolved_at(&self) -> Option<DateTime> {
        self.0.resolved_at.map(DateTime)
    }
}

#[derive(Default)]
pub struct AlertsQuery;

#[Object]
impl AlertsQuery {
    /// The organization's alerts, newest first (default: open and acknowledged ones).
    #[graphql(
        guard = "Scope(\"usage:read\")",
        complexity = "crate::graphql::page_complexity(first, last, child_complexity)"
    )]
    async fn alerts(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only these statuses (default: OPEN and ACKNOWLEDGED).")] status: Option<Vec<AlertStatus>>,
        #[graphql(desc = "Page size from the start, 1–100 (default 20).")] first: Option<i32>,
        #[graphql(desc = "Cursor to continue after.")] after: Option<String>,
        #[graphql(desc = "Page size from the end, 1–100.")] last: Option<i32>,
        #[graphql(desc = "Cursor to continue before.")] before: Option<String>,
    ) -> async_graphql::Result<crate::graphql::connection::Conn<Alert>> {
        let page = crate::pagination::PageRequest::from_args(first, after, last, before)?;
        let statuses: Vec<&str> = status
            .unwrap_or_else(|| vec![AlertStatus::Open, AlertStatus::Acknowledged])
            .into_iter()
            .map(|s| match s {
                AlertStatus::Open => "OPEN",
                AlertStatus::Acknowledged => "ACKNOWLEDGED",
                AlertStatus::Resolved => "RESOLVED",
            })
            .collect();
        let rows = service::list(ctx.app(), ctx.principal()?, &statuses, &page).await?;
        Ok(crate::graphql::connection::connection(rows, |r| r.id.to_string(), Alert))
    }
}

#[derive(Default)]
pub struct AlertsMutation;

#[Object]
impl AlertsMutation {
    /// Marks an alert as seen; it stays active until its condition clears. Idempotent.
    #[graphql(guard = "Scope(\"usage:write\")")]
    async fn acknowledge_alert(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Alert id (`alr_…`).")] id: ID,
    ) -> async_graphql::Result<Alert> {
        Ok(Alert(service::acknowledge(ctx.app(), ctx.principal()?, &id).await?))
    }
}

//! Usage alerts. Raised two ways:
//!
//! - **On the request path**, by arithmetic on the limiter's decision (no I/O): the call that takes
//!   an organization's monthly count across 80 %, 90 % or 100 % of its quota (the counter is atomic
//!   in memory or Redis, so exactly one call crosses each threshold per month, on whichever node),
//!   a call refused by a rate window or the concurrency cap, and a key's call refused by the quota.
//!   The trigger is queued; a background task stores it.
//! - **By the evaluator** (every minute, over the hourly roll-ups): error spike, latency
//!   degradation and unusual activity — rules below — raised while they hold and resolved when
//!   they clear.
//!
//! An alert is one row per organization and condition while active (`dedupe_key`, a partial
//! unique index): a repeat bumps `occurrences` and `lastSeenAt`. A new alert and a resolution are
//! each an event in the outbox (`alert.triggered`, `alert.resolved`, and for thresholds
//! `quota.threshold_reached`; refused keys raise `quota.key_exceeded`), published on the bus for
//! subscriptions on every node.
//!
//! Rules (evaluated for organizations with calls in the current hour):
//! - `error_spike` (HIGH): this hour ≥ 20 calls, ≥ 10 % answered 5xx, and at least 3× the 5xx rate
//!   of the previous 24 hours.
//! - `latency_degradation` (MEDIUM): this hour ≥ 20 calls and p95 latency ≥ 2× the p95 of the
//!   previous 24 hours (which needs ≥ 100 calls).
//! - `unusual_activity` (LOW): this hour ≥ 100 calls and ≥ 5× the hourly average of the previous
//!   7 days.
//! - `rate_limit_exceeded` (MEDIUM): resolved 5 minutes after the last refusal.
//! - `quota_threshold` (MEDIUM 80 %, HIGH 90 %, CRITICAL 100 %): resolved when the month ends.

use std::sync::Arc;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel_async::RunQueryDsl;
use tokio::sync::mpsc;

use super::analytics::{self, Granularity, Scope};
use super::meter::HOUR_MS;
use crate::app::App;
use crate::auth::Principal;
use crate::error::{Error, Result};
use crate::events::PendingEvent;
use crate::limits::limiter::{Decision, Refusal};
use crate::pagination::{Page, PageRequest};
use crate::platform::db::schema::{alerts, events};
use crate::platform::ids::{AlertId, KeyId, OrgId};
use crate::{find_in_org, keyset_page, transaction, with_conn};

/// Percentages of the monthly quota that raise an alert.
pub const THRESHOLDS: [u64; 3] = [80, 90, 100];

pub const THRESHOLD_EVENT: &str = "quota.threshold_reached";
pub const KEY_EXCEEDED_EVENT: &str = "quota.key_exceeded";
pub const TRIGGERED_EVENT: &str = "alert.triggered";
pub const RESOLVED_EVENT: &str = "alert.resolved";

const RATE_LIMIT_QUIET_MS: i64 = 5 * 60_000;
const EVALUATE_EVERY_MS: i64 = 60_000;
/// How long a trigger that cannot be stored is tried again before it is dropped (logged).
const GIVE_UP_AFTER_MS: i64 = 10 * 60_000;

/// Thresholds crossed by the call that took the month's count from `used - cost` to `used`.
pub fn crossed(quota: u64, used: u64, cost: u64) -> Vec<u64> {
    let before = used.saturating_sub(cost);
    THRESHOLDS
        .into_iter()
        .filter(|t| {
            let at = (quota * t).div_ceil(100).max(1);
            before < at && used >= at
        })
        .collect()
}

/// Something that raises (or re-raises) an alert, or only an event.
#[derive(Debug, Clone)]
pub struct Trigger {
    pub org_id: OrgId,
    /// `None`: an event only (`quota.key_exceeded`).
    pub kind: Option<&'static str>,
    pub severity: &'static str,
    pub dedupe_key: String,
    pub title: String,
    pub data: serde_json::Value,
    /// An extra event raised with a new alert (or alone).
    pub event: Option<&'static str>,
}

/// Looks at a decision just made for `org` (and the key, if the call used one) and queues what it
/// raises. O(1), no I/O.
pub fn observe(app: &App, org: &OrgId, key: Option<&KeyId>, decision: &Decision, units: u64, now_ms: i64) {
    let month = crate::limits::limiter::month_of(now_ms);
    match (decision.allowed(), decision.refusal) {
        (true, _) => {
            let Some(quota) = decision.policy.monthly_quota else { return };
            for percent in crossed(quota, decision.quota_used, units) {
                let severity = match percent {
                    100 => "CRITICAL",
                    90 => "HIGH",
                    _ => "MEDIUM",
                };
                app.notices.send(Trigger {
                    org_id: org.clone(),
                    kind: Some("quota_threshold"),
                    severity,
                    dedupe_key: format!("quota:{month}:{percent}"),
                    title: format!("{percent} % of the monthly quota used ({} of {quota})", decision.quota_used),
                    data: serde_json::json!({
                        "percent": percent, "used": decision.quota_used, "quota": quota, "month": month,
                        "severity": severity,
                    }),
                    event: Some(THRESHOLD_EVENT),
                });
            }
        }
        (false, Some(Refusal::Quota)) => {
            if let Some(key) = key {
                app.notices.send_once(format!("key:{key}:{month}"), || Trigger {
                    org_id: org.clone(),
                    kind: None,
                    severity: "CRITICAL",
                    dedupe_key: String::new(),
                    title: format!("key {key} refused: monthly quota used up"),
                    data: serde_json::json!({ "keyId": key.as_str(), "month": month, "severity": "CRITICAL" }),
                    event: Some(KEY_EXCEEDED_EVENT),
                });
            }
        }
        (false, _) => {
            // One trigger per organization per minute per node keeps `lastSeenAt` fresh.
            let window = match decision.refusal {
                Some(Refusal::Rate(i)) => decision.policy.windows.get(i).map(|w| w.name).unwrap_or("rate"),
                _ => "concurrency",
            };
            app.notices.send_once(format!("rl:{org}:{}", now_ms / 60_000), || Trigger {
                org_id: org.clone(),
                kind: Some("rate_limit_exceeded"),
                severity: "MEDIUM",
                dedupe_key: "rate_limit".into(),
                title: "requests are being refused by rate limits".into(),
                data: serde_json::json!({ "window": window, "severity": "MEDIUM" }),
                event: None,
            });
        }
    }
}

/// Triggers waiting to be stored, and the one that failed to be (with when it first failed): it is
/// tried first on the next drain, so a database error delays a trigger instead of losing it.
struct Queue {
    rx: mpsc::Receiver<Trigger>,
    held: Option<(Trigger, i64)>,
}

/// The queue of triggers and a per-node memory of what was queued recently.
pub struct Notices {
    tx: mpsc::Sender<Trigger>,
    queue: tokio::sync::Mutex<Queue>,
    recent: moka::sync::Cache<String, ()>,
    last_evaluation_ms: std::sync::atomic::AtomicI64,
}

impl Default for Notices {
    fn default() -> Self {
        let (tx, rx) = mpsc::channel(10_000);
        Self {
            tx,
            queue: tokio::sync::Mutex::new(Queue { rx, held: None }),
            recent: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(std::time::Duration::from_secs(35 * 86_400))
                .build(),
            last_evaluation_ms: Default::default(),
        }
    }
}

impl Notices {
    /// Queues a trigger; false when the queue is full (the trigger is dropped, with a warning).
    fn send(&self, t: Trigger) -> bool {
        let sent = self.tx.try_send(t).is_ok();
        if !sent {
            tracing::warn!("alert queue full: an alert trigger was dropped");
        }
        sent
    }

    /// Queues the trigger `make` builds unless one under `key` was queued before on this node. A
    /// trigger the full queue refused is not remembered, so the next occurrence queues it.
    fn send_once(&self, key: String, make: impl FnOnce() -> Trigger) {
        if !self.recent.contains_key(&key) && self.send(make()) {
            self.recent.insert(key, ());
        }
    }

    /// Stores every queued trigger, oldest first. On an error the trigger is held for the next
    /// drain (for up to [`GIVE_UP_AFTER_MS`]) and the error returned.
    pub async fn drain(&self, app: &App) -> Result<usize> {
        let mut q = self.queue.lock().await;
        let mut n = 0;
        loop {
            let now = app.clock.now_ms();
            let (t, since) = match q.held.take() {
                Some(held) => held,
                None => match q.rx.try_recv() {
                    Ok(t) => (t, now),
                    Err(_) => return Ok(n),
                },
            };
            if let Err(e) = raise(app, t.clone(), now).await {
                if now - since < GIVE_UP_AFTER_MS {
                    q.held = Some((t, since));
                } else {
                    tracing::error!(org = %t.org_id, title = %t.title, "an alert trigger could not be stored for 10 minutes; dropped");
                }
                return Err(e);
            }
            n += 1;
        }
    }
}

/// An alert as stored.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = alerts)]
pub struct AlertRow {
    pub id: String,
    pub org_id: String,
    pub kind: String,
    pub severity: String,
    pub dedupe_key: String,
    pub title: String,
    pub data: String,
    pub occurrences: i64,
    pub triggered_at: i64,
    pub last_seen_at: i64,
    pub acknowledged_at: Option<i64>,
    pub acknowledged_by: Option<String>,
    pub resolved_at: Option<i64>,
}

impl AlertRow {
    pub fn status(&self) -> &'static str {
        match (self.resolved_at, self.acknowledged_at) {
            (Some(_), _) => "RESOLVED",
            (None, Some(_)) => "ACKNOWLEDGED",
            (None, None) => "OPEN",
        }
    }

    fn payload(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id, "kind": self.kind, "severity": self.severity, "status": self.status(),
            "title": self.title, "data": serde_json::from_str::<serde_json::Value>(&self.data).unwrap_or_default(),
            "occurrences": self.occurrences,
        })
    }
}

#[derive(diesel::QueryableByName)]
struct Upserted {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = BigInt)]
    occurrences: i64,
}

/// Stores a trigger: a new alert (with its events), or a repeat of an active one.
pub async fn raise(app: &App, t: Trigger, now: i64) -> Result<()> {
    let Some(kind) = t.kind else {
        if let Some(event) = t.event {
            let e = PendingEvent::new(app, &t.org_id, event, t.data);
            transaction!(app.db, c => {
                diesel::insert_into(events::table).values(&e.row).execute(c).await?;
                Ok::<_, Error>(())
            })?;
            e.publish(app).await;
        }
        return Ok(());
    };
    let sql = app.db.sql(
        "INSERT INTO alerts (id, org_id, kind, severity, dedupe_key, title, data, occurrences, triggered_at, last_seen_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, ?) \
         ON CONFLICT (org_id, dedupe_key) WHERE resolved_at IS NULL \
         DO UPDATE SET occurrences = alerts.occurrences + 1, last_seen_at = excluded.last_seen_at \
         RETURNING id, occurrences",
    );
    let id = AlertId::generate(now).to_string();
    let data = t.data.to_string();
    let mut published = Vec::new();
    transaction!(app.db, c => {
        let up: Upserted = diesel::sql_query(sql.as_str())
            .bind::<Text, _>(&id)
            .bind::<Text, _>(t.org_id.as_str())
            .bind::<Text, _>(kind)
            .bind::<Text, _>(t.severity)
            .bind::<Text, _>(&t.dedupe_key)
            .bind::<Text, _>(&t.title)
            .bind::<Text, _>(&data)
            .bind::<BigInt, _>(now)
            .bind::<BigInt, _>(now)
            .get_result(c).await?;
        if up.occurrences == 1 {
            let row: AlertRow = alerts::table.find(&up.id).select(AlertRow::as_select()).first(c).await?;
            let mut pending = vec![PendingEvent::new(app, &t.org_id, TRIGGERED_EVENT, row.payload())];
            if let Some(event) = t.event {
                pending.push(PendingEvent::new(app, &t.org_id, event, t.data.clone()));
            }
            for e in &pending {
                diesel::insert_into(events::table).values(&e.row).execute(c).await?;
            }
            published = pending;
        }
        Ok::<_, Error>(())
    })?;
    for e in published {
        e.publish(app).await;
    }
    Ok(())
}

/// Resolves an active alert (with its `alert.resolved` event).
async fn resolve(app: &App, row: AlertRow, now: i64) -> Result<()> {
    let resolved = transaction!(app.db, c => {
        let n = diesel::update(alerts::table.find(&row.id).filter(alerts::resolved_at.is_null()))
            .set(alerts::resolved_at.eq(now))
            .execute(c).await?;
        if n == 0 {
            return Ok::<_, Error>(None);
        }
        let row = AlertRow { resolved_at: Some(now), ..row.clone() };
        let org: OrgId = row.org_id.parse().map_err(|_| Error::internal(anyhow::anyhow!("bad org id in alerts")))?;
        let e = PendingEvent::new(app, &org, RESOLVED_EVENT, row.payload());
        diesel::insert_into(events::table).values(&e.row).execute(c).await?;
        Ok(Some(e))
    })?;
    if let Some(e) = resolved {
        e.publish(app).await;
    }
    Ok(())
}

/// Evaluates the periodic rules at `now` and resolves what cleared. Returns alerts raised.
pub async fn evaluate(app: &App, now: i64) -> Result<usize> {
    let active: Vec<AlertRow> = with_conn!(app.db, c => {
        alerts::table.filter(alerts::resolved_at.is_null()).select(AlertRow::as_select()).load(c).await?
    });
    let month = crate::limits::limiter::month_of(now);
    for a in &active {
        let cleared = match a.kind.as_str() {
            "quota_threshold" => !a.dedupe_key.starts_with(&format!("quota:{month}:")),
            "rate_limit_exceeded" => now - a.last_seen_at >= RATE_LIMIT_QUIET_MS,
            _ => false,
        };
        if cleared {
            resolve(app, a.clone(), now).await?;
        }
    }
    // Organizations with calls this hour.
    let hour = now.div_euclid(HOUR_MS) * HOUR_MS;
    let orgs: Vec<String> = with_conn!(app.db, c => {
        crate::platform::db::schema::usage_rollups::table
            .filter(crate::platform::db::schema::usage_rollups::granularity.eq("hour"))
            .filter(crate::platform::db::schema::usage_rollups::level.eq(3))
            .filter(crate::platform::db::schema::usage_rollups::bucket_start.eq(hour))
            .select(crate::platform::db::schema::usage_rollups::org_id)
            .distinct()
            .load(c).await?
    });
    let mut raised = 0;
    for org in orgs {
        let Ok(org_id) = org.parse::<OrgId>() else { continue };
        let scope = |start, end| Scope { org: org_id.clone(), key: None, start, end, granularity: Granularity::Hour };
        let current = analytics::summary(app, &scope(hour, hour + HOUR_MS)).await?;
        let day = analytics::summary(app, &scope(hour - 24 * HOUR_MS, hour)).await?;
        let week = analytics::summary(app, &scope(hour - 7 * 24 * HOUR_MS, hour)).await?;
        let rate = |s: &analytics::Stats| if s.calls == 0 { 0.0 } else { s.server_errors as f64 / s.calls as f64 };
        let error_spike = current.calls >= 20 && rate(&current) >= 0.10 && rate(&current) >= 3.0 * rate(&day);
        let p95_now = current.percentile_ms(95.0);
        let p95_before = day.percentile_ms(95.0).filter(|_| day.calls >= 100);
        let latency = current.calls >= 20 && matches!((p95_now, p95_before), (Some(n), Some(b)) if n >= 2.0 * b);
        let hourly_avg = week.calls as f64 / (7.0 * 24.0);
        let unusual = current.calls >= 100 && current.calls as f64 >= 5.0 * hourly_avg;
        let rules: [(&str, &str, bool, String, serde_json::Value); 3] = [
            (
                "error_spike",
                "HIGH",
                error_spike,
                format!("{:.0} % of calls this hour failed with 5xx", rate(&current) * 100.0),
                serde_json::json!({ "errorRate": rate(&current), "baselineErrorRate": rate(&day), "calls": current.calls }),
            ),
            (
                "latency_degradation",
                "MEDIUM",
                latency,
                format!("p95 latency this hour is {:.0} ms", p95_now.unwrap_or(0.0)),
                serde_json::json!({ "p95LatencyMs": p95_now, "baselineP95LatencyMs": p95_before }),
            ),
            (
                "unusual_activity",
                "LOW",
                unusual,
                format!(
                    "{} calls this hour, {:.0}× the hourly average of the last 7 days",
                    current.calls,
                    current.calls as f64 / hourly_avg.max(1.0)
                ),
                serde_json::json!({ "calls": current.calls, "hourlyAverage": hourly_avg }),
            ),
        ];
        for (kind, severity, holds, title, data) in rules {
            let active_one = active.iter().find(|a| a.org_id == org && a.kind == kind && a.resolved_at.is_none());
            if holds {
                let mut data = data;
                data["severity"] = severity.into();
                raise(
                    app,
                    Trigger {
                        org_id: org_id.clone(),
                        kind: Some(kind),
                        severity,
                        dedupe_key: kind.into(),
                        title,
                        data,
                        event: None,
                    },
                    now,
                )
                .await?;
                raised += 1;
            } else if let Some(a) = active_one {
                resolve(app, a.clone(), now).await?;
            }
        }
    }
    // Rules of organizations quiet this hour have cleared.
    for a in
        active.iter().filter(|a| matches!(a.kind.as_str(), "error_spike" | "latency_degradation" | "unusual_activity"))
    {
        let busy: i64 = with_conn!(app.db, c => {
            crate::platform::db::schema::usage_rollups::table
                .filter(crate::platform::db::schema::usage_rollups::granularity.eq("hour"))
                .filter(crate::platform::db::schema::usage_rollups::org_id.eq(&a.org_id))
                .filter(crate::platform::db::schema::usage_rollups::level.eq(3))
                .filter(crate::platform::db::schema::usage_rollups::bucket_start.eq(hour))
                .count()
                .get_result(c).await?
        });
        if busy == 0 {
            resolve(app, a.clone(), now).await?;
        }
    }
    Ok(raised)
}

/// Lists an organization's alerts, newest first, optionally by status.
pub async fn list(app: &App, principal: &Principal, statuses: &[&str], page: &PageRequest) -> Result<Page<AlertRow>> {
    principal.require_scope("usage:read")?;
    let org = principal.org_id.as_str();
    let open = statuses.contains(&"OPEN");
    let acked = statuses.contains(&"ACKNOWLEDGED");
    let resolved = statuses.contains(&"RESOLVED");
    macro_rules! base {
        () => {{
            let mut q = alerts::table.filter(alerts::org_id.eq(org)).into_boxed();
            if !statuses.is_empty() {
                let mut cond: Box<dyn BoxableExpression<alerts::table, _, SqlType = diesel::sql_types::Bool>> =
                    Box::new(diesel::dsl::sql::<diesel::sql_types::Bool>("1 = 0"));
                if open {
                    cond = Box::new(cond.or(alerts::resolved_at.is_null().and(alerts::acknowledged_at.is_null())));
                }
                if acked {
                    cond = Box::new(cond.or(alerts::resolved_at.is_null().and(alerts::acknowledged_at.is_not_null())));
                }
                if resolved {
                    cond = Box::new(cond.or(alerts::resolved_at.is_not_null()));
                }
                q = q.filter(cond);
            }
            q
        }};
    }
    let (rows, total) = with_conn!(app.db, c => keyset_page!(c, base!(), alerts::id, AlertRow, page));
    Ok(Page::from_rows(rows, page, total))
}

/// One alert of the caller's organization.
pub async fn get(app: &App, principal: &Principal, id: &str) -> Result<AlertRow> {
    principal.require_scope("usage:read")?;
    find_in_org!(app.db, principal.org_id.as_str(), alerts, AlertRow, AlertId, id, "alert")
}

/// Acknowledges an active alert of the caller's organization (idempotent).
pub async fn acknowledge(app: &App, principal: &Principal, id: &str) -> Result<AlertRow> {
    principal.require_scope("usage:write")?;
    let id: AlertId = id.parse().map_err(|_| Error::NotFound("alert"))?;
    let now = app.clock.now_ms();
    let actor = principal.actor_id();
    transaction!(app.db, c => {
        let row: AlertRow = alerts::table
            .find(id.as_str())
            .filter(alerts::org_id.eq(principal.org_id.as_str()))
            .select(AlertRow::as_select())
            .first(c).await.optional()?
            .ok_or(Error::NotFound("alert"))?;
        if row.acknowledged_at.is_some() || row.resolved_at.is_some() {
            return Ok(row);
        }
        diesel::update(alerts::table.find(id.as_str()))
            .set((alerts::acknowledged_at.eq(now), alerts::acknowledged_by.eq(&actor)))
            .execute(c).await?;
        Ok::<_, Error>(AlertRow { acknowledged_at: Some(now), acknowledged_by: Some(actor.clone()), ..row })
    })
}

/// Stores queued triggers as they come and evaluates the rules every minute, until `stop` fires.
pub fn spawn(app: Arc<App>, mut stop: tokio::sync::watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(100));
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => return,
            }
            if let Err(e) = app.notices.drain(&app).await {
                e.log();
            }
            let now = app.clock.now_ms();
            let last = std::sync::atomic::AtomicI64::load(
                &app.notices.last_evaluation_ms,
                std::sync::atomic::Ordering::Relaxed,
            );
            if now - last >= EVALUATE_EVERY_MS {
                app.notices.last_evaluation_ms.store(now, std::sync::atomic::Ordering::Relaxed);
                if let Err(e) = evaluate(&app, now).await {
                    e.log();
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trigger() -> Trigger {
        Trigger {
            org_id: OrgId::generate(0),
            kind: None,
            severity: "CRITICAL",
            dedupe_key: String::new(),
            title: "t".into(),
            data: serde_json::json!({}),
            event: Some(KEY_EXCEEDED_EVENT),
        }
    }

    #[tokio::test]
    async fn a_trigger_the_full_queue_refused_is_queued_on_its_next_occurrence() {
        let notices = Notices::default();
        while notices.send(trigger()) {}
        notices.send_once("key:k:2026-12".into(), trigger);
        assert!(!notices.recent.contains_key("key:k:2026-12"), "refused, so not remembered");
        notices.queue.lock().await.rx.try_recv().unwrap();
        notices.send_once("key:k:2026-12".into(), trigger);
        assert!(notices.recent.contains_key("key:k:2026-12"));
        // Queued once: a second occurrence queues nothing (the queue has room for it).
        notices.queue.lock().await.rx.try_recv().unwrap();
        notices.send_once("key:k:2026-12".into(), || panic!("built again"));
    }
}

//! Recording attempts: the attempt log row, the delivery's next state (succeeded, due again on the
//! schedule, or failed), the endpoint's failing/disabled state and the events those raise, all in
//! one transaction; then the `webhookDelivered` stream.
//!
//! Plain successes — the bulk of the traffic — are written in batches by group commit
//! ([`crate::platform::group_commit`]): one statement per batch on PostgreSQL, one transaction per
//! batch on SQLite. An attempt's outcome is published only once it is written.

use std::sync::Arc;

use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Nullable, Text};
use diesel_async::RunQueryDsl;
use rand::Rng;

use super::delivery::{Claimed, LOG_BODY_BYTES, Outcome, next_delay_ms, truncate};
use super::model::*;
use crate::app::App;
use crate::error::{Error, Result};
use crate::events::PendingEvent;
use crate::events::catalog;
use crate::platform::bus::{AttemptEnvelope, BusMessage};
use crate::platform::db::schema::{events, webhook_attempts, webhook_deliveries, webhook_endpoints};
use crate::platform::ids::{AttemptId, DeliveryId, OrgId};
use crate::transaction;

/// A success ends its endpoint's run of failures (no row is written when there is none). A macro,
/// because it runs inside `transaction!` on either backend's connection.
macro_rules! clear_failing {
    ($c:expr, $endpoint_ids:expr) => {
        diesel::update(webhook_endpoints::table.filter(webhook_endpoints::id.eq_any($endpoint_ids)).filter(
            webhook_endpoints::failing_since.is_not_null().or(webhook_endpoints::consecutive_failures.gt(0i64)),
        ))
        .set((webhook_endpoints::failing_since.eq(None::<i64>), webhook_endpoints::consecutive_failures.eq(0i64)))
        .execute($c)
        .await?
    };
}

/// A plain success waiting for its batch.
pub struct Success {
    delivery_id: DeliveryId,
    /// The attempt count the delivery had when claimed: the write applies only if it still has.
    claimed_attempts: i64,
    attempt: AttemptRow,
}

/// Per success: whether the delivery's new state applied (`None`: the batch was not written),
/// and the attempt row back for the stream.
pub type Written = (Option<bool>, AttemptRow);

#[allow(clippy::too_many_arguments)]
pub(super) async fn record(
    app: &Arc<App>,
    d: Claimed,
    endpoint: &EndpointRow,
    headers: &reqwest::header::HeaderMap,
    body: &str,
    outcome: Outcome,
    latency_ms: i64,
    now: i64,
) -> Result<()> {
    let done = d.attempts + 1;
    let succeeded = outcome.error_kind.is_none();
    let gone = outcome.status == Some(410);
    let throttled = outcome.error_kind == Some("timeout") || outcome.status == Some(429);
    let jitter = rand::rng().random_range(0.8..1.2);
    // An address the SSRF guard refuses stays refused: retrying would only repeat it.
    let refused = outcome.error_kind == Some("refused");
    let next = if succeeded || gone || refused {
        None
    } else {
        next_delay_ms(&endpoint.schedule(), done, throttled, outcome.retry_after_ms, jitter).map(|ms| now + ms)
    };
    let status = if succeeded {
        SUCCEEDED
    } else if next.is_some() {
        PENDING
    } else {
        FAILED
    };
    let last_error = outcome.summary(endpoint.timeout_ms);
    let mut logged_headers = serde_json::Map::new();
    for (name, value) in headers {
        logged_headers.insert(
            name.to_string(),
            serde_json::Value::String(String::from_utf8_lossy(value.as_bytes()).into_owned()),
        );
    }
    let attempt = AttemptRow {
        id: AttemptId::generate(now),
        delivery_id: d.id.clone(),
        endpoint_id: d.endpoint_id.clone(),
        org_id: d.org_id.clone(),
        attempt: done,
        url: endpoint.url.clone(),
        request_headers: serde_json::Value::Object(logged_headers).to_string(),
        request_body: truncate(body.to_string(), LOG_BODY_BYTES),
        response_status: outcome.status.map(i64::from),
        response_headers: outcome.headers.map(|h| serde_json::Value::Object(h).to_string()),
        response_body: outcome.body,
        latency_ms,
        error_kind: outcome.error_kind.map(str::to_string),
        error_message: outcome.error.clone(),
        created_at: now,
    };
    let org: OrgId = d.org_id.clone();
    let quiet = catalog::is_delivery_event(&d.event_type) || d.event_type == "webhook.endpoint.disabled";
    let delivery_data = |attempts: i64| {
        serde_json::json!({
            "endpointId": d.endpoint_id, "deliveryId": d.id, "eventId": d.event_id, "eventType": d.event_type,
            "attempts": attempts, "lastStatusCode": outcome.status, "lastError": last_error,
        })
    };
    let mut raised = Vec::new();
    if !quiet {
        if succeeded && d.attempts > 0 {
            raised.push(PendingEvent::new(app, &org, "webhook.delivery.recovered", delivery_data(done)));
        }
        if !succeeded && done == 4 && next.is_some() {
            raised.push(PendingEvent::new(app, &org, "webhook.delivery.failing", delivery_data(done)));
        }
        if !succeeded && next.is_none() && !gone && done == endpoint.schedule().len() as i64 + 1 {
            raised.push(PendingEvent::new(app, &org, "webhook.delivery.exhausted", delivery_data(done)));
        }
    }
    let disable_after_ms = app.config.webhook_disable_after_secs * 1000;
    // The common case — a success with nothing to raise — is written together with the other
    // successes finishing meanwhile (group commit), which also clears its endpoint's failure state
    // as the database has it (not as it was when the delivery was claimed).
    let mut attempt = attempt;
    if succeeded && raised.is_empty() {
        let success = Success { delivery_id: d.id.clone(), claimed_attempts: d.attempts, attempt };
        let (applied, returned) = app
            .webhooks
            .successes
            .submit(success, |batch| write_successes(app, batch))
            .await
            .map_err(|_| Error::internal(anyhow::anyhow!("a batch of webhook successes was abandoned")))?;
        match applied {
            Some(true) => {
                publish_attempt(app, d, returned, status, latency_ms, next, now).await;
                return Ok(());
            }
            Some(false) => {
                tracing::warn!(delivery = %d.id, "a delivery attempt finished after its lease; its outcome is logged only");
                return Ok(());
            }
            // Not written (the writer logged why): written below on its own, tried again.
            None => attempt = returned,
        }
    }
    // Tried again while the database refuses, for part of the lease's margin: the request was
    // made, and its attempt must be logged (the delivery would be sent again after the lease
    // anyway — at least once — but the attempt itself would be lost).
    let give_up = tokio::time::Instant::now()
        + std::time::Duration::from_secs((app.config.webhook_lease_margin_secs / 2).clamp(1, 10) as u64);
    let mut pause = std::time::Duration::from_millis(50);
    // A closure, so a failed connection checkout (the `?` inside) is retried too.
    let write = async || -> Result<(bool, Option<PendingEvent>)> {
        transaction!(app.db, c => {
            diesel::insert_into(webhook_attempts::table).values(&attempt).execute(c).await?;
            let applied = diesel::update(still_claimed(d.id.as_str(), d.attempts))
            .set((
                webhook_deliveries::status.eq(status),
                webhook_deliveries::attempts.eq(done),
                webhook_deliveries::next_attempt_at.eq(next),
                webhook_deliveries::leased_until.eq(None::<i64>),
                webhook_deliveries::last_status_code.eq(outcome.status.map(i64::from)),
                webhook_deliveries::last_error.eq(last_error.as_deref()),
                webhook_deliveries::updated_at.eq(now),
            ))
            .execute(c).await? == 1;
            if !applied {
                return Ok::<_, Error>((false, None));
            }
            let mut disabled_now = None;
            if succeeded {
                clear_failing!(c, std::slice::from_ref(&d.endpoint_id));
            } else {
                // Counted in the database (concurrent failures each add one), not from a snapshot.
                let state: Option<CountedFailure> = diesel::sql_query(app.db.sql(
                    "UPDATE webhook_endpoints SET consecutive_failures = consecutive_failures + 1, \
                     failing_since = COALESCE(failing_since, ?) WHERE id = ? RETURNING failing_since, consecutive_failures",
                ))
                .bind::<BigInt, _>(now)
                .bind::<Text, _>(&d.endpoint_id)
                .get_result(c).await.optional()?;
                let Some(CountedFailure { failing_since: since, consecutive_failures: failures }) = state else {
                    return Ok::<_, Error>((true, None));
                };
                let since = since.unwrap_or(now);
                let max_failures = app.config.webhook_disable_after_failures;
                let reason = if gone {
                    Some("the endpoint answered 410 Gone".to_string())
                } else if now - since >= disable_after_ms {
                    Some(format!("failing continuously for {} days", app.config.webhook_disable_after_secs / 86_400))
                } else if max_failures > 0 && failures >= max_failures {
                    Some(format!("{failures} failed attempts in a row"))
                } else {
                    None
                };
                if let Some(reason) = reason {
                    let changed = diesel::update(webhook_endpoints::table.find(&d.endpoint_id).filter(webhook_endpoints::enabled.eq(true)))
                        .set((
                            webhook_endpoints::enabled.eq(false),
                            webhook_endpoints::disabled_reason.eq(&reason),
                            webhook_endpoints::updated_at.eq(now),
                        ))
                        .execute(c).await?;
                    if changed == 1 {
                        let e = PendingEvent::new(app, &org, "webhook.endpoint.disabled", serde_json::json!({
                            "endpointId": d.endpoint_id, "url": endpoint.url, "reason": reason,
                        }));
                        diesel::insert_into(events::table).values(&e.row).execute(c).await?;
                        disabled_now = Some(e);
                    }
                }
            }
            for e in &raised {
                diesel::insert_into(events::table).values(&e.row).execute(c).await?;
            }
            Ok::<_, Error>((true, disabled_now))
        })
    };
    let (applied, disabled_now) = loop {
        match write().await {
            Ok(v) => break v,
            // Written by an earlier try whose commit answer was lost: the attempt id is taken.
            Err(Error::Conflict(_)) => break (true, None),
            Err(e) if !e.is_transient() => {
                app.webhooks.record_failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return Err(e);
            }
            Err(e) => {
                app.webhooks.record_failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if tokio::time::Instant::now() + pause > give_up {
                    return Err(e);
                }
                tracing::warn!(delivery = %d.id, "writing a delivery attempt failed; trying again");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(std::time::Duration::from_secs(1));
            }
        }
    };
    if !applied {
        tracing::warn!(delivery = %d.id, "a delivery attempt finished after its lease; its outcome is logged only");
        return Ok(());
    }
    let any_events = !raised.is_empty() || disabled_now.is_some();
    for e in raised.into_iter().chain(disabled_now) {
        e.publish(app).await;
    }
    publish_attempt(app, d, attempt, status, latency_ms, next, now).await;
    if any_events {
        app.webhooks.events_arrived();
    }
    Ok(())
}

/// Tells `webhookDelivered` subscribers (on every node) how an attempt went.
async fn publish_attempt(
    app: &App,
    d: Claimed,
    attempt: AttemptRow,
    status: &str,
    latency_ms: i64,
    next: Option<i64>,
    now: i64,
) {
    app.bus
        .publish(BusMessage::DeliveryAttempt(AttemptEnvelope {
            attempt_id: attempt.id,
            org_id: d.org_id,
            endpoint_id: d.endpoint_id,
            delivery_id: d.id,
            event_id: d.event_id,
            event_type: d.event_type,
            attempt: attempt.attempt,
            status: status.to_string(),
            response_status: attempt.response_status,
            error_kind: attempt.error_kind,
            latency_ms,
            next_attempt_at_ms: next,
            at_ms: now,
        }))
        .await;
}

#[derive(QueryableByName)]
struct CountedFailure {
    #[diesel(sql_type = Nullable<BigInt>)]
    failing_since: Option<i64>,
    #[diesel(sql_type = BigInt)]
    consecutive_failures: i64,
}

/// Writes a batch of plain successes: every attempt row, each delivery marked succeeded if it is
/// still the claim that made the attempt (a late worker never overwrites a newer outcome), and
/// their endpoints' failure state cleared. A batch that cannot be written (a row another request
/// deleted meanwhile, say) is written again one success at a time, so one bad row fails alone.
async fn write_successes(app: &App, batch: Vec<Success>) -> Vec<Written> {
    let write = async |items: &[Success]| {
        if app.db.is_postgres() {
            write_successes_pg(app, items).await
        } else {
            write_successes_sqlite(app, items).await
        }
    };
    let applied: Vec<Option<bool>> = match write(&batch).await {
        Ok(applied) => applied.into_iter().map(Some).collect(),
        Err(e) if batch.len() == 1 => {
            e.log();
            vec![None]
        }
        Err(_) => {
            let mut applied = Vec::with_capacity(batch.len());
            for item in batch.chunks(1) {
                applied.push(match write(item).await {
                    Ok(a) => <[bool]>::first(&a).copied(),
                    Err(e) => {
                        e.log();
                        None
                    }
                });
            }
            applied
        }
    };
    batch.into_iter().zip(applied).map(|(s, a)| (a, s.attempt)).collect()
}

#[derive(QueryableByName)]
struct UpdatedRow {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// One statement for the whole batch: the rows arrive as arrays, `unnest` turns them into a
/// table (numbered, so a delivery twice in one batch is told apart), and data-modifying CTEs
/// insert the attempts, update the deliveries and clear their endpoints' failure state.
async fn write_successes_pg(app: &App, batch: &[Success]) -> Result<Vec<bool>> {
    const SQL: &str = "WITH v AS (SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], \
        $6::text[], $7::text[], $8::text[], $9::bigint[], $10::text[], $11::text[], $12::bigint[], $13::bigint[]) \
        WITH ORDINALITY AS t(delivery_id, claimed, attempt_id, endpoint_id, org_id, url, request_headers, \
        request_body, response_status, response_headers, response_body, latency_ms, created_at, n)), \
        upd AS (UPDATE webhook_deliveries d SET status = 'succeeded', attempts = v.claimed + 1, \
        next_attempt_at = NULL, leased_until = NULL, last_status_code = v.response_status, last_error = NULL, \
        updated_at = v.created_at FROM v WHERE d.id = v.delivery_id AND d.attempts = v.claimed \
        AND d.status = 'pending' RETURNING v.n), \
        rst AS (UPDATE webhook_endpoints e SET failing_since = NULL, consecutive_failures = 0 \
        WHERE e.id IN (SELECT endpoint_id FROM v) AND (e.failing_since IS NOT NULL OR e.consecutive_failures > 0)), \
        ins AS (INSERT INTO webhook_attempts (id, delivery_id, endpoint_id, org_id, attempt, url, request_headers, \
        request_body, response_status, response_headers, response_body, latency_ms, error_kind, error_message, \
        created_at) SELECT attempt_id, delivery_id, endpoint_id, org_id, claimed + 1, url, request_headers, \
        request_body, response_status, response_headers, response_body, latency_ms, NULL, NULL, created_at FROM v) \
        SELECT n FROM upd";
    let crate::platform::db::Conn::Pg(mut c) = app.db.get().await? else {
        return Err(Error::internal(anyhow::anyhow!("not a PostgreSQL connection")));
    };
    let col = |f: fn(&Success) -> String| batch.iter().map(f).collect::<Vec<String>>();
    let num = |f: fn(&Success) -> i64| batch.iter().map(f).collect::<Vec<i64>>();
    let opt = |f: fn(&Success) -> Option<String>| batch.iter().map(f).collect::<Vec<Option<String>>>();
    let updated: Vec<UpdatedRow> = diesel::sql_query(SQL)
        .bind::<Array<Text>, _>(col(|s| s.delivery_id.to_string()))
        .bind::<Array<BigInt>, _>(num(|s| s.claimed_attempts))
        .bind::<Array<Text>, _>(col(|s| s.attempt.id.to_string()))
        .bind::<Array<Text>, _>(col(|s| s.attempt.endpoint_id.to_string()))
        .bind::<Array<Text>, _>(col(|s| s.attempt.org_id.to_string()))
        .bind::<Array<Text>, _>(col(|s| s.attempt.url.clone()))
        .bind::<Array<Text>, _>(col(|s| s.attempt.request_headers.clone()))
        .bind::<Array<Text>, _>(col(|s| s.attempt.request_body.clone()))
        .bind::<Array<Nullable<BigInt>>, _>(batch.iter().map(|s| s.attempt.response_status).collect::<Vec<_>>())
        .bind::<Array<Nullable<Text>>, _>(opt(|s| s.attempt.response_headers.clone()))
        .bind::<Array<Nullable<Text>>, _>(opt(|s| s.attempt.response_body.clone()))
        .bind::<Array<BigInt>, _>(num(|s| s.attempt.latency_ms))
        .bind::<Array<BigInt>, _>(num(|s| s.attempt.created_at))
        .load(&mut *c)
        .await?;
    let mut applied = vec![false; batch.len()];
    for u in updated {
        applied[(u.n - 1) as usize] = true;
    }
    Ok(applied)
}

/// One transaction for the whole batch (SQLite has one writer; its cost is the commit).
async fn write_successes_sqlite(app: &App, batch: &[Success]) -> Result<Vec<bool>> {
    transaction!(app.db, c => {
        let mut applied = Vec::with_capacity(batch.len());
        for s in batch {
            diesel::insert_into(webhook_attempts::table).values(&s.attempt).execute(c).await?;
            let n = diesel::update(still_claimed(s.delivery_id.as_str(), s.claimed_attempts))
            .set((
                webhook_deliveries::status.eq(SUCCEEDED),
                webhook_deliveries::attempts.eq(s.attempt.attempt),
                webhook_deliveries::next_attempt_at.eq(None::<i64>),
                webhook_deliveries::leased_until.eq(None::<i64>),
                webhook_deliveries::last_status_code.eq(s.attempt.response_status),
                webhook_deliveries::last_error.eq(None::<String>),
                webhook_deliveries::updated_at.eq(s.attempt.created_at),
            ))
            .execute(c).await?;
            applied.push(n == 1);
        }
        let endpoints: Vec<String> = batch.iter().map(|s| s.attempt.endpoint_id.to_string()).collect();
        clear_failing!(c, &endpoints);
        Ok::<_, Error>(applied)
    })
}

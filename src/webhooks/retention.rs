//! Retention of webhook logs: attempts, final deliveries and dispatched events older than
//! `GANTRY_WEBHOOK_RETENTION_DAYS` (default 90) are deleted; a pending delivery keeps its event
//! (its payload is still to be sent). Runs from the delivery loop at most once an hour.

use std::sync::atomic::Ordering;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::model::PENDING;
use crate::app::App;
use crate::error::{Error, Result};
use crate::platform::db::schema::{events, webhook_attempts, webhook_deliveries};
use crate::transaction;

const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;

/// Rows deleted by one run.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    pub attempts: usize,
    pub deliveries: usize,
    pub events: usize,
}

/// Deletes what is past retention at `now_ms`.
pub async fn prune(app: &App, now_ms: i64) -> Result<Pruned> {
    let cutoff = now_ms - app.config.webhook_retention_days * DAY_MS;
    let pruned = transaction!(app.db, c => {
        let attempts = diesel::delete(webhook_attempts::table.filter(webhook_attempts::created_at.lt(cutoff))).execute(c).await?;
        let old_final = webhook_deliveries::table
            .filter(webhook_deliveries::status.ne(PENDING))
            .filter(webhook_deliveries::updated_at.lt(cutoff))
            .select(webhook_deliveries::id);
        // Attempts of an old delivery may be newer than the cutoff only if it was retried late;
        // they go with it.
        diesel::delete(webhook_attempts::table.filter(webhook_attempts::delivery_id.eq_any(old_final))).execute(c).await?;
        let deliveries = diesel::delete(
            webhook_deliveries::table
                .filter(webhook_deliveries::status.ne(PENDING))
                .filter(webhook_deliveries::updated_at.lt(cutoff)),
        )
        .execute(c).await?;
        let events = diesel::delete(
            events::table
                .filter(events::created_at.lt(cutoff))
                .filter(events::dispatched_at.is_not_null())
                .filter(diesel::dsl::not(diesel::dsl::exists(
                    webhook_deliveries::table.filter(webhook_deliveries::event_id.eq(events::id)),
                ))),
        )
        .execute(c).await?;
        Ok::<_, Error>(Pruned { attempts, deliveries, events })
    })?;
    if pruned != Pruned::default() {
        tracing::info!(?pruned, "webhook retention");
    }
    Ok(pruned)
}

/// Runs [`prune`] if it has not run in the last hour on this node.
pub async fn maybe_prune(app: &App) {
    let now = app.clock.now_ms();
    let last = std::sync::atomic::AtomicI64::load(&app.webhooks.last_prune_ms, Ordering::Relaxed);
    if now - last < HOUR_MS {
        return;
    }
    app.webhooks.last_prune_ms.store(now, Ordering::Relaxed);
    if let Err(e) = prune(app, now).await {
        e.log();
    }
}

//! Retention: raw usage records and hourly roll-ups older than `GANTRY_USAGE_RETENTION_DAYS`
//! (default 90) are deleted — raw records a segment at a time, once the segment's last record is
//! past retention (segments never span two days); daily roll-ups are kept (they are what history and billing read).
//! Runs from the usage writer at most once an hour.

use std::sync::atomic::Ordering;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::meter::{DAY_MS, HOUR_MS};
use crate::app::App;
use crate::error::{Error, Result};
use crate::platform::db::schema::{usage_latency, usage_rollups, usage_segments};
use crate::transaction;

/// Rows deleted by one retention run.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    pub records: usize,
    pub hourly_rollups: usize,
    pub hourly_histograms: usize,
}

/// Deletes what is past retention at `now_ms`.
pub async fn prune(app: &App, now_ms: i64) -> Result<Pruned> {
    let cutoff = now_ms - app.config.usage_retention_days * DAY_MS;
    let hour_cutoff = cutoff.div_euclid(HOUR_MS) * HOUR_MS;
    let pruned = transaction!(app.db, c => {
        let expired = usage_segments::table.filter(usage_segments::last_at.lt(cutoff));
        let records: Option<i64> = expired.select(diesel::dsl::sum(usage_segments::record_count)).get_result(c).await?;
        diesel::delete(expired).execute(c).await?;
        let records = records.unwrap_or(0) as usize;
        let hourly_rollups = diesel::delete(
            usage_rollups::table
                .filter(usage_rollups::granularity.eq("hour"))
                .filter(usage_rollups::bucket_start.lt(hour_cutoff)),
        ).execute(c).await?;
        let hourly_histograms = diesel::delete(
            usage_latency::table
                .filter(usage_latency::granularity.eq("hour"))
                .filter(usage_latency::bucket_start.lt(hour_cutoff)),
        ).execute(c).await?;
        Ok::<_, Error>(Pruned { records, hourly_rollups, hourly_histograms })
    })?;
    if pruned != Pruned::default() {
        tracing::info!(?pruned, "usage retention");
    }
    Ok(pruned)
}

/// Runs [`prune`] if it has not run in the last hour.
pub async fn maybe_prune(app: &App) {
    let now = app.clock.now_ms();
    let last = std::sync::atomic::AtomicI64::load(&app.meter.last_prune_ms, Ordering::Relaxed);
    if now - last < HOUR_MS {
        return;
    }
    app.meter.last_prune_ms.store(now, Ordering::Relaxed);
    if let Err(e) = prune(app, now).await {
        e.log();
    }
}

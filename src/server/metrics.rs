//! `GET /metrics`: the Prometheus text format — what the app counted as it went (requests,
//! limiter decisions, webhook attempts, bus messages) and what is read at the scrape (the database
//! pool, the usage writer, the webhook queue). Behind `Authorization: Bearer <GANTRY_METRICS_TOKEN>`
//! when that is set.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::ServerState;
use crate::app::App;
use crate::platform::db::schema::webhook_deliveries;
use crate::with_conn;

/// Webhook deliveries waiting for an attempt (pending), and of those the ones due now.
pub async fn webhook_queue(app: &App) -> crate::error::Result<(i64, i64)> {
    let now = app.clock.now_ms();
    Ok(with_conn!(app.db, c => {
        let pending: i64 = webhook_deliveries::table.filter(webhook_deliveries::status.eq("pending")).count().get_result(c).await?;
        let due: i64 = webhook_deliveries::table
            .filter(webhook_deliveries::status.eq("pending"))
            .filter(webhook_deliveries::next_attempt_at.le(now))
            .count().get_result(c).await?;
        (pending, due)
    }))
}

/// Free bytes on the file system of the SQLite database (`None` on PostgreSQL, or when unknown).
pub fn free_disk_bytes(app: &App) -> Option<u64> {
    if app.db.is_postgres() {
        return None;
    }
    statvfs_free(&app.config.data_dir)
}

#[cfg(target_os = "linux")]
fn statvfs_free(path: &std::path::Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: an all-zero `statvfs` is a valid value of this plain C struct.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a NUL-terminated path and `st` a valid out-parameter of the right size.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    (rc == 0).then(|| (st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

#[cfg(not(target_os = "linux"))]
fn statvfs_free(_path: &std::path::Path) -> Option<u64> {
    None
}

pub async fn metrics(State(s): State<ServerState>, headers: HeaderMap) -> Response {
    let app = &s.app;
    if let Some(token) = &app.config.metrics_token {
        let given =
            headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
        if !given.is_some_and(|g| crate::platform::crypto::constant_time_eq(g.trim().as_bytes(), token.as_bytes())) {
            let mut r = (StatusCode::UNAUTHORIZED, "metrics need `Authorization: Bearer <GANTRY_METRICS_TOKEN>`\n")
                .into_response();
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"gantry-metrics\""));
            return r;
        }
    }
    let (size, idle, waiting, max) = app.db.pool_status();
    let usage = app.meter.stats();
    let queue = webhook_queue(app).await;
    let free = free_disk_bytes(app);
    app.metrics.record(|| {
        use metrics::gauge;
        gauge!("gantry_db_pool_connections", "state" => "in_use").set(size.saturating_sub(idle) as f64);
        gauge!("gantry_db_pool_connections", "state" => "idle").set(idle as f64);
        gauge!("gantry_db_pool_max_connections").set(max as f64);
        gauge!("gantry_db_pool_waiting").set(waiting as f64);
        gauge!("gantry_usage_buffered_records").set(usage.buffered as f64);
        metrics::counter!("gantry_usage_records_written_total").absolute(usage.written);
        metrics::counter!("gantry_usage_records_dropped_total").absolute(usage.dropped);
        metrics::counter!("gantry_usage_batches_total").absolute(usage.batches);
        gauge!("gantry_usage_write_lag_seconds").set(usage.lag_ms as f64 / 1000.0);
        gauge!("gantry_usage_failing_writes").set(usage.failing_writes as f64);
        if let Ok((pending, due)) = &queue {
            gauge!("gantry_webhook_queue_deliveries", "state" => "pending").set(*pending as f64);
            gauge!("gantry_webhook_queue_deliveries", "state" => "due").set(*due as f64);
        }
        if let Some(free) = free {
            gauge!("gantry_disk_free_bytes").set(free as f64);
        }
    });
    if let Err(e) = queue {
        e.log();
    }
    let mut r = app.metrics.render().into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

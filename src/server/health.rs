//! `/healthz` (the process answers) and `/readyz` (the database and the bus are reachable; the
//! webhook queue's depth; free disk for SQLite), each check named in a JSON body.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;

use super::ServerState;

pub async fn healthz() -> impl IntoResponse {
    Json(serde_json::json!({ "status": "ok" }))
}

pub async fn readyz(State(s): State<ServerState>) -> impl IntoResponse {
    let app = &s.app;
    let db = match tokio::time::timeout(Duration::from_secs(2), app.db.ping()).await {
        Ok(Ok(())) => serde_json::json!({ "status": "ok", "backend": app.db.backend_name() }),
        Ok(Err(e)) => {
            serde_json::json!({ "status": "error", "backend": app.db.backend_name(), "error": e.to_string() })
        }
        Err(_) => {
            serde_json::json!({ "status": "error", "backend": app.db.backend_name(), "error": "timed out after 2 s" })
        }
    };
    let bus = match tokio::time::timeout(Duration::from_secs(2), app.bus.check()).await {
        Ok(Ok(())) => serde_json::json!({ "status": "ok", "backend": app.bus.backend_name() }),
        Ok(Err(e)) => {
            serde_json::json!({ "status": "error", "backend": app.bus.backend_name(), "error": e })
        }
        Err(_) => {
            serde_json::json!({ "status": "error", "backend": app.bus.backend_name(), "error": "timed out after 2 s" })
        }
    };
    let limiter = match app.limiter.health() {
        Ok(backend) => serde_json::json!({ "status": "ok", "backend": backend }),
        Err(why) => serde_json::json!({ "status": "degraded", "backend": "redis", "error": why }),
    };
    // Without the database nothing works: 503. Without Redis the node still serves with per-node
    // limits and local fan-out: 200, but `degraded`, naming what is missing.
    let db_ok = db["status"] == "ok";
    let all_ok = db_ok && bus["status"] == "ok" && limiter["status"] == "ok";
    let status = if db_ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let queue = match tokio::time::timeout(Duration::from_secs(2), super::metrics::webhook_queue(app)).await {
        Ok(Ok((pending, due))) => serde_json::json!({ "status": "ok", "pending": pending, "due": due }),
        Ok(Err(e)) => {
            e.log();
            serde_json::json!({ "status": "error", "error": "the queue could not be read" })
        }
        Err(_) => serde_json::json!({ "status": "error", "error": "timed out after 2 s" }),
    };
    let mut checks = serde_json::json!({ "database": db, "redis": bus, "limiter": limiter, "webhook_queue": queue });
    if let Some(free) = super::metrics::free_disk_bytes(app) {
        // SQLite keeps everything on this disk: below 100 MiB free it is about to fail writes.
        let low = free < 100 * 1024 * 1024;
        checks["disk"] = serde_json::json!({
            "status": if low { "low" } else { "ok" },
            "free_bytes": free,
            "path": app.config.data_dir.display().to_string(),
        });
    }
    let body = serde_json::json!({
        "status": if all_ok { "ok" } else if db_ok { "degraded" } else { "unavailable" },
        "checks": checks,
        // Usage records waiting for the writer, written and dropped (buffer full) since start.
        "metering": app.meter.stats(),
    });
    (status, Json(body))
}

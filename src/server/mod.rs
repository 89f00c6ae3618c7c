//! The HTTP server: one axum router for GraphQL (HTTP and WebSocket), the REST compatibility
//! layer, the playground and health checks, behind request-id and tracing layers. There is no
//! per-request timer (it cost ~7 % of throughput): slow work is bounded where it happens — the
//! database statement timeout and SQLite busy timeout (`GANTRY_DATABASE_TIMEOUT_SECS`).

mod authorize;
mod compose;
pub use compose::{build, flush, flush_before_exit};
mod graphql_http;
pub use graphql_http::tagged;
pub use observe::MetricOp;
pub(crate) mod console;
mod health;
mod metrics;
mod oauth;
pub mod observe;
pub mod pages;
pub mod pipeline;
pub(crate) mod playground;
pub(crate) mod ws;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::get;

use crate::app::App;
use crate::error::{Error, Result};
use crate::graphql::GantrySchema;
pub use crate::graphql::context::ClientIp;

/// Request ids unique across nodes and restarts without a random draw per request: a random
/// per-process prefix and a counter (`q7f3kx2m-000000000001a2`).
#[derive(Clone)]
pub struct SequentialRequestId {
    prefix: Arc<str>,
    counter: Arc<std::sync::atomic::AtomicU64>,
}

impl SequentialRequestId {
    pub fn new() -> Self {
        let prefix = crate::platform::crypto::random_base62(10).to_ascii_lowercase();
        Self { prefix: prefix.into(), counter: Arc::default() }
    }
}

impl Default for SequentialRequestId {
    fn default() -> Self {
        Self::new()
    }
}

impl SequentialRequestId {
    /// The next id: the prefix, `-`, and the counter as 12 or more hex digits.
    pub fn next(&self) -> axum::http::HeaderValue {
        let n = self.counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let digits = (64 - n.leading_zeros()).div_ceil(4).max(12) as usize;
        let mut id = Vec::with_capacity(self.prefix.len() + 1 + digits);
        id.extend_from_slice(self.prefix.as_bytes());
        id.push(b'-');
        for i in (0..digits).rev() {
            id.push(b"0123456789abcdef"[((n >> (i * 4)) & 0xf) as usize]);
        }
        // The prefix is base62 and the rest hex: always a valid header value.
        axum::http::HeaderValue::from_maybe_shared(axum::body::Bytes::from(id))
            .unwrap_or_else(|_| axum::http::HeaderValue::from_static("-"))
    }
}

/// The request id (`x-request-id`), for logs and `INTERNAL` errors.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// The schema for HTTP requests, twice: with full validation, and for operations already known to
/// pass it (see [`execute_operation`]).
#[derive(Clone)]
pub struct Schemas {
    pub full: GantrySchema,
    pub validated: GantrySchema,
}

#[derive(Clone)]
pub struct ServerState {
    pub app: Arc<App>,
    pub schemas: Schemas,
}

pub fn router(app: Arc<App>) -> Router {
    use crate::rest::versions::Version;
    let schemas = Schemas {
        full: crate::graphql::build(app.clone(), async_graphql::ValidationMode::Strict),
        validated: crate::graphql::build(app.clone(), async_graphql::ValidationMode::Fast),
    };
    let types = std::sync::Arc::new(crate::rest::typed::Types::from_sdl(&schemas.full.sdl()));
    let state = ServerState { app: app.clone(), schemas };
    Router::new()
        .route(
            "/graphql",
            get(graphql_http::get_graphql)
                .post(graphql_http::post_graphql)
                .options(|| async { options("GET, POST, OPTIONS") }),
        )
        .route("/graphql/ws", get(ws::graphql_ws))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::metrics))
        .merge(playground::routes())
        .merge(console::routes())
        .merge(oauth::routes())
        .merge(pages::routes())
        .nest("/api/v1", crate::rest::routes(types.clone(), Version::V1))
        .nest("/api/v2", crate::rest::routes(types.clone(), Version::V2))
        .merge(crate::rest::unversioned(types))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .layer(tower::util::option_layer(cors(&app)))
        .layer(observe::ObserveLayer { app, ids: SequentialRequestId::new() })
}

/// CORS for browsers on the configured origins (`GANTRY_CORS_ORIGINS`; none: no CORS headers, so
/// browsers on other origins cannot call). Preflight requests are answered here.
fn cors(app: &App) -> Option<tower_http::cors::CorsLayer> {
    use axum::http::{HeaderName, Method, header};
    use tower_http::cors::{AllowOrigin, CorsLayer};
    let origins = &app.config.cors_origins;
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| axum::http::HeaderValue::from_str(o).ok()))
    };
    let h = HeaderName::from_static;
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE, Method::OPTIONS])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::ACCEPT,
                h("x-organization-id"),
                h("x-request-id"),
                h("x-api-version"),
                h("idempotency-key"),
            ])
            .expose_headers([
                h("ratelimit"),
                h("ratelimit-policy"),
                h("x-ratelimit-limit"),
                h("x-ratelimit-remaining"),
                h("x-ratelimit-reset"),
                header::RETRY_AFTER,
                h("x-request-id"),
                header::LOCATION,
            ])
            .max_age(Duration::from_secs(600)),
    )
}

/// A JSON error body in GraphQL's shape, for answers no handler gives.
fn json_error(status: axum::http::StatusCode, code: crate::error::Code, message: String) -> axum::response::Response {
    use axum::response::IntoResponse;
    let body = serde_json::json!({ "errors": [{ "message": message, "extensions": { "code": code.as_str() } }] });
    (status, axum::Json(body)).into_response()
}

/// Every unknown path: a body a person can read, pointing at what exists.
async fn not_found(method: axum::http::Method, uri: axum::http::Uri) -> axum::response::Response {
    json_error(
        axum::http::StatusCode::NOT_FOUND,
        crate::error::Code::NotFound,
        format!(
            "no route for {method} {}: GraphQL is at /graphql (WebSocket /graphql/ws), REST at /api/v1, the playground at /playground/, the console at /console/",
            uri.path()
        ),
    )
}

/// A known path asked with a method it does not take (axum adds `Allow`).
async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> axum::response::Response {
    json_error(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        crate::error::Code::BadUserInput,
        format!("{} does not take {method}; the Allow header lists what it takes", uri.path()),
    )
}

/// `OPTIONS`: the methods a path takes, in `Allow` and in the body.
fn options(allow: &'static str) -> axum::response::Response {
    use axum::response::IntoResponse;
    let methods: Vec<&str> = allow.split(", ").collect();
    ([(axum::http::header::ALLOW, allow)], axum::Json(serde_json::json!({ "allow": methods }))).into_response()
}

/// The client IP of a request: behind a trusted proxy, the address it forwarded; else the peer.
pub fn client_ip(app: &App, headers: &HeaderMap, peer: SocketAddr) -> ClientIp {
    let forwarded = if app.config.trust_proxy { forwarded_for(headers) } else { None };
    ClientIp(Some(forwarded.unwrap_or(peer.ip()).to_canonical()))
}

/// The address a trusted proxy forwarded: the last `X-Forwarded-For` entry, which it appended.
/// Earlier entries are whatever the client sent and must not be believed (they would bypass IP
/// allow-lists); so when the last entry is not an address, none is taken.
fn forwarded_for(headers: &HeaderMap) -> Option<IpAddr> {
    let last = headers.get_all("x-forwarded-for").iter().next_back()?.to_str().ok()?;
    last.rsplit(',').next()?.trim().parse().ok()
}

pub fn request_id(headers: &HeaderMap) -> RequestId {
    RequestId(headers.get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("").to_string())
}

/// Query-string parameters, decoded leniently (never a rejection).
pub fn query_params(raw: Option<&str>) -> std::collections::HashMap<String, String> {
    url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()).into_owned().collect()
}

/// The bearer token of `Authorization`, if any. A malformed header is an error, not anonymity.
pub fn bearer(headers: &HeaderMap) -> Result<Option<&str>> {
    let Some(value) = headers.get(axum::http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| Error::unauthenticated("malformed Authorization header"))?;
    crate::auth::parse_bearer(value).map(Some)
}

/// `WWW-Authenticate` for a 401 (RFC 6750): the scheme, and why the token presented was refused.
pub fn www_authenticate(e: &Error) -> axum::http::HeaderValue {
    let why: String = e
        .public_message()
        .chars()
        .filter(|c| c.is_ascii() && !c.is_ascii_control() && *c != '"' && *c != '\\')
        .take(200)
        .collect();
    axum::http::HeaderValue::from_str(&format!(
        "Bearer realm=\"gantry\", error=\"invalid_token\", error_description=\"{why}\""
    ))
    .unwrap_or_else(|_| axum::http::HeaderValue::from_static("Bearer realm=\"gantry\""))
}

/// Takes the listening address. Done first, so a start that cannot bind fails before it migrates
/// or writes anything.
pub async fn bind(config: &crate::config::Config) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(config.bind)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.bind))
}

/// Serves on `listener` until SIGINT/SIGTERM, then drains connections and flushes buffered counters.
pub async fn serve(listener: tokio::net::TcpListener, app: Arc<App>) -> anyhow::Result<()> {
    run(listener, app, shutdown_signal()).await
}

/// The start-up lines a person reads: where to click, and — on a fresh installation — who becomes
/// the platform administrator.
async fn announce(app: &App, addr: SocketAddr) {
    let base = match &app.config.public_url {
        Some(u) => u.trim_end_matches('/').to_string(),
        None => format!("http://{addr}"),
    };
    tracing::info!(
        address = %addr,
        "Gantry is listening on {addr}: console {base}/console/ · playground {base}/playground/ · REST {base}/api/v1 · overview {base}/ · metrics {base}/metrics"
    );
    let fresh: Result<bool> = async {
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        let n: i64 =
            crate::with_conn!(app.db, c => crate::platform::db::schema::users::table.count().get_result(c).await?);
        Ok(n == 0)
    }
    .await;
    if matches!(fresh, Ok(true)) {
        tracing::info!("no account yet: the first account to register becomes the platform administrator");
    }
    tracing::info!(to = %app.mailer.destination, "mail goes to");
}

/// Serves on `listener` until `shutdown` completes, then flushes buffered counters.
pub async fn run(
    listener: tokio::net::TcpListener,
    app: Arc<App>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    announce(&app, listener.local_addr()?).await;
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let flusher = spawn_flusher(app.clone(), stopped);
    let (stop_writer, writer_stopped) = tokio::sync::watch::channel(false);
    let notices = crate::alerts::spawn(app.clone(), writer_stopped.clone());
    let writer = crate::usage::writer::spawn_writer(app.clone(), writer_stopped.clone());
    let webhooks = app.config.workers.then(|| crate::webhooks::delivery::spawn(app.clone(), writer_stopped));
    // No Nagle delay: a WebSocket frame or a streamed body written after another must not wait
    // for the peer's delayed ACK (~40 ms).
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, router(app.clone()).into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await?;
    // Let a flush in progress finish (never abort it mid-write), then write what is left.
    let _ = stop.send(());
    let _ = stop_writer.send(true);
    let _ = flusher.await;
    let _ = writer.await;
    let _ = notices.await;
    if let Some(w) = webhooks {
        let _ = w.await;
    }
    if flush_before_exit(&app, FLUSH_DEADLINE).await {
        tracing::info!("stopped cleanly");
    }
    Ok(())
}

/// How long a stopping process keeps trying to write what it buffered while the database refuses
/// (well inside the 90 s a container runtime usually grants after SIGTERM, with the 35 s that
/// webhook attempts in flight may take).
const FLUSH_DEADLINE: Duration = Duration::from_secs(30);

/// Runs the webhook dispatcher and workers alone (`gantry worker`), with the counter flusher,
/// until SIGINT/SIGTERM; attempts in flight finish first.
pub async fn work(app: Arc<App>) -> anyhow::Result<()> {
    tracing::info!("Gantry worker started: dispatching events and delivering webhooks");
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let worker = crate::webhooks::delivery::spawn(app.clone(), stopped);
    shutdown_signal().await;
    let _ = stop.send(true);
    let _ = worker.await;
    if flush_before_exit(&app, FLUSH_DEADLINE).await {
        tracing::info!("stopped cleanly");
    }
    Ok(())
}

/// Writes buffered counters on a timer until `stop` fires.
pub fn spawn_flusher(app: Arc<App>, mut stop: tokio::sync::oneshot::Receiver<()>) -> tokio::task::JoinHandle<()> {
    let every = Duration::from_millis(app.config.usage_flush_interval_ms.max(100));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    flush(&app).await;
                    look_for_exports(&app);
                }
                _ = &mut stop => return,
            }
        }
    })
}

/// Every 30 s, starts the export job on this node if it is idle: it takes exports nobody started
/// (or whose node stopped renewing its claim).
fn look_for_exports(app: &Arc<App>) {
    use std::sync::atomic::Ordering;
    let now = app.clock.now_ms();
    if now - app.exports_checked_at_ms.load(Ordering::Relaxed) < 30_000 || app.exports_running.load(Ordering::Relaxed) {
        return;
    }
    app.exports_checked_at_ms.store(now, Ordering::Relaxed);
    tokio::spawn(crate::exports::service::run(app.clone()));
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutdown signal received; draining");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_entry_the_proxy_appended_is_believed() {
        let forwarded = |values: &[&str]| {
            let mut h = HeaderMap::new();
            for v in values {
                h.append("x-forwarded-for", v.parse().unwrap());
            }
            forwarded_for(&h)
        };
        assert_eq!(forwarded(&["198.51.100.1"]), Some("198.51.100.1".parse().unwrap()));
        assert_eq!(forwarded(&["10.0.0.1, 203.0.113.9"]), Some("203.0.113.9".parse().unwrap()));
        assert_eq!(forwarded(&["10.0.0.1", "2001:db8::1"]), Some("2001:db8::1".parse().unwrap()));
        // A spoofed first entry never wins, even when the last one is garbage.
        assert_eq!(forwarded(&["10.0.0.1, not-an-ip"]), None);
        assert_eq!(forwarded(&[]), None);
    }
}

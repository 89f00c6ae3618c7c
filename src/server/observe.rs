//! The outermost per-request layer: the request id (the caller's `X-Request-Id`, or a new one, set
//! on the request and echoed on the response), a `request` tracing span carrying it (so every log
//! line inside the request has it), the response time, metering — a handler that served a
//! metered call leaves a [`UsageTag`] in the response extensions, and this layer completes it with
//! what only it knows (status, latency, sizes) and hands it to the meter —, the request metrics
//! (`gantry_requests_total` by surface, operation and status; `gantry_request_duration_seconds`),
//! and the request log: a refused request (401, 403, 429) at `info`, a failed one (5xx) at `warn`,
//! every request at `debug`. One layer, one clock read at each end, no boxing.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::HttpBody as _;
use axum::http::{HeaderName, HeaderValue, Request, Response};
use tower::{Layer, Service};
use tracing::Instrument;

use crate::app::App;
use crate::usage::meter::UsageTag;

const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The operation a response served, as metrics name it (a REST route template, a validated GraphQL
/// operation's type and root fields): left in the response extensions by the handler.
#[derive(Clone)]
pub struct MetricOp(pub Arc<str>);

/// The surface a path belongs to (a bounded label).
fn surface_of(path: &str) -> &'static str {
    if path == "/graphql" {
        "graphql"
    } else if path == "/graphql/ws" {
        "websocket"
    } else if path.starts_with("/api/") {
        "rest"
    } else if path.starts_with("/oauth/") || path.starts_with("/.well-known/") {
        "oauth"
    } else if matches!(path, "/healthz" | "/readyz" | "/metrics") {
        "operations"
    } else {
        "page"
    }
}

/// A status as a label without allocating (the statuses Gantry answers with; others are `other`).
pub fn status_label(status: u16) -> &'static str {
    match status {
        101 => "101",
        200 => "200",
        201 => "201",
        202 => "202",
        204 => "204",
        301 => "301",
        303 => "303",
        304 => "304",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        405 => "405",
        409 => "409",
        413 => "413",
        415 => "415",
        422 => "422",
        429 => "429",
        500 => "500",
        503 => "503",
        _ => "other",
    }
}

/// One request as metrics and the log see it.
pub struct Observed<'a> {
    pub surface: &'static str,
    pub operation: &'a Arc<str>,
    pub status: u16,
    pub seconds: f64,
    pub request_id: &'a str,
    pub method: &'a str,
    pub path: &'a str,
}

/// Records one request in the metrics and the log.
pub fn observe_request(app: &App, o: &Observed<'_>) {
    let (surface, label) = (o.surface, status_label(o.status));
    let op = o.operation.clone();
    app.metrics.record(|| {
        metrics::counter!("gantry_requests_total", "surface" => surface, "operation" => op, "status" => label)
            .increment(1);
        metrics::histogram!("gantry_request_duration_seconds", "surface" => surface).record(o.seconds);
    });
    let (request_id, status, operation, method, path) = (o.request_id, o.status, &**o.operation, o.method, o.path);
    match status {
        401 | 403 | 429 => tracing::info!(request_id, status, surface, operation, method, path, "request refused"),
        500.. => tracing::warn!(request_id, status, surface, operation, method, path, "request failed"),
        _ => tracing::debug!(request_id, status, surface, operation, method, path, seconds = o.seconds, "request"),
    }
}

fn no_operation() -> Arc<str> {
    static NONE: std::sync::LazyLock<Arc<str>> = std::sync::LazyLock::new(|| Arc::from("-"));
    NONE.clone()
}

#[derive(Clone)]
pub struct ObserveLayer {
    pub app: Arc<App>,
    pub ids: super::SequentialRequestId,
}

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Observe { inner, app: self.app.clone(), ids: self.ids.clone() }
    }
}

#[derive(Clone)]
pub struct Observe<S> {
    inner: S,
    app: Arc<App>,
    ids: super::SequentialRequestId,
}

impl<S, B> Service<Request<B>> for Observe<S>
where
    S: Service<Request<B>, Response = Response<axum::body::Body>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ObserveFuture<tracing::instrument::Instrumented<S::Future>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let id = match req.headers().get(&X_REQUEST_ID) {
            Some(v) => v.clone(),
            None => {
                let v = self.ids.next();
                req.headers_mut().insert(X_REQUEST_ID, v.clone());
                v
            }
        };
        let span = tracing::info_span!("request", request_id = id.to_str().unwrap_or("-"));
        let request_bytes = req
            .headers()
            .get(axum::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
            // The client's claim, not what was read (a GET's body is never read): bounded by what
            // the server would accept, so a forged header cannot overflow the roll-up sums.
            .min(self.app.config.max_body_bytes as u64);
        let surface = surface_of(req.uri().path());
        let method = req.method().clone();
        let uri = req.uri().clone();
        ObserveFuture {
            inner: self.inner.call(req).instrument(span),
            started: Instant::now(),
            request_bytes,
            app: self.app.clone(),
            id: Some(id),
            surface,
            method,
            uri,
        }
    }
}

pin_project_lite::pin_project! {
    pub struct ObserveFuture<F> {
        #[pin]
        inner: F,
        started: Instant,
        request_bytes: u64,
        app: Arc<App>,
        id: Option<HeaderValue>,
        surface: &'static str,
        method: axum::http::Method,
        uri: axum::http::Uri,
    }
}

impl<F, E> Future for ObserveFuture<F>
where
    F: Future<Output = Result<Response<axum::body::Body>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut result = match this.inner.poll(cx) {
            Poll::Ready(r) => r,
            Poll::Pending => return Poll::Pending,
        };
        let Ok(resp) = &mut result else {
            return Poll::Ready(result);
        };
        let id = this.id.take();
        let elapsed = this.started.elapsed();
        let op = resp.extensions_mut().remove::<MetricOp>().map_or_else(no_operation, |m| m.0);
        let mut status = resp.status().as_u16();
        if let Some(tag) = resp.extensions_mut().remove::<UsageTag>() {
            // A GraphQL answer with errors is 200 on the wire: its first error's status counts.
            status = tag.status.unwrap_or(status);
            let response_bytes = resp.body().size_hint().exact().unwrap_or(0);
            let at = this.app.clock.now_ms();
            this.app.meter.record(tag.into_record(
                resp.status().as_u16(),
                elapsed.as_micros() as u64,
                *this.request_bytes,
                response_bytes,
                at,
            ));
        }
        // A WebSocket's operations are observed one by one on the socket, not its upgrade.
        if status != 101 {
            let rid = id.as_ref().and_then(|v| v.to_str().ok()).unwrap_or("-");
            observe_request(
                this.app,
                &Observed {
                    surface: this.surface,
                    operation: &op,
                    status,
                    seconds: elapsed.as_secs_f64(),
                    request_id: rid,
                    method: this.method.as_str(),
                    path: this.uri.path(),
                },
            );
        }
        if let Some(id) = id {
            resp.headers_mut().insert(X_REQUEST_ID, id);
        }
        Poll::Ready(result)
    }
}

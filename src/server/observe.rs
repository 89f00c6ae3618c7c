//! The outermost per-request layer: the request id (the caller's `X-Request-Id`, or a new one, set
//! on the request and echoed on the response), a `request` tracing span carrying it (so every log
//! line inside the request has it), the response time, and metering — a handler that served a
//! metered call leaves a [`UsageTag`] in the response extensions, and this layer completes it with
//! what only it knows (status, latency, sizes) and hands it to the meter. One layer, one clock read
//! at each end, no boxing.

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
        ObserveFuture {
            inner: self.inner.call(req).instrument(span),
            started: Instant::now(),
            request_bytes,
            app: self.app.clone(),
            id: Some(id),
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
        if let Some(id) = this.id.take() {
            resp.headers_mut().insert(X_REQUEST_ID, id);
        }
        if let Some(tag) = resp.extensions_mut().remove::<UsageTag>() {
            let latency_us = this.started.elapsed().as_micros() as u64;
            let response_bytes = resp.body().size_hint().exact().unwrap_or(0);
            let at = this.app.clock.now_ms();
            this.app.meter.record(tag.into_record(
                resp.status().as_u16(),
                latency_us,
                *this.request_bytes,
                response_bytes,
                at,
            ));
        }
        Poll::Ready(result)
    }
}

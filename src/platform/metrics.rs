//! Prometheus metrics: a recorder owned by the app (not the process-wide one, so several apps in a
//! process — tests, embedders — keep their own counts), fed by `metrics` calls through
//! [`Metrics::record`] and rendered in the text format by `GET /metrics`. Knows no domain: the
//! callers name the series.
//!
//! Durations are histograms with fixed buckets (seconds); everything else is a counter or a gauge.
//! Label values come from bounded sets only (surfaces, route templates, schema fields, outcomes),
//! never from free client input.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

/// Request and attempt latencies, in seconds: 1 ms to 30 s.
const SECONDS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let builder = PrometheusBuilder::new();
        let builder =
            builder.set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS).unwrap_or_else(|_| {
                // Only an empty bucket list is refused, and this one is not.
                PrometheusBuilder::new()
            });
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        let m = Metrics { recorder, handle };
        m.record(|| {
            metrics::describe_gauge!("gantry_build_info", "The running build: its version, always 1.");
            metrics::gauge!("gantry_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
        });
        m
    }

    /// Runs `f` with this app's recorder: the `metrics` macros inside record here.
    pub fn record<T>(&self, f: impl FnOnce() -> T) -> T {
        metrics::with_local_recorder(&self.recorder, f)
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        self.handle.render()
    }

    /// Folds recorded histogram samples into their buckets (on the periodic flush), so memory does
    /// not grow between scrapes.
    pub fn upkeep(&self) {
        self.handle.run_upkeep();
    }
}

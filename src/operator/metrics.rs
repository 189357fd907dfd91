//! The operator's Prometheus metrics and its `/metrics`, `/healthz` and `/readyz`
//! routes.
//!
//! NOTE: the HTTP shim is building a shared health and metrics router; this small
//! router serves the operator until the two are joined.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::crd::ImportOutcome;

/// The `outcome` label of import metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: String,
}

/// The operator's metrics.
pub struct Metrics {
    registry: Registry,
    imports: Family<OutcomeLabels, Counter>,
    duration: Family<OutcomeLabels, Histogram>,
    lock_wait: Histogram,
    in_flight: Gauge,
    leader: Gauge,
    ready: AtomicBool,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let imports = Family::<OutcomeLabels, Counter>::default();
        let duration = Family::<OutcomeLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.1, 2.0, 14))
        });
        let lock_wait = Histogram::new(exponential_buckets(0.01, 2.0, 16));
        let in_flight = Gauge::default();
        let leader = Gauge::default();

        let mut registry = Registry::with_prefix("tenant_operator");
        registry.register("imports", "Import attempts by outcome", imports.clone());
        registry.register(
            "import_duration_seconds",
            "Duration of import attempts, fetch included, by outcome",
            duration.clone(),
        );
        registry.register(
            "lock_wait_seconds",
            "Time spent waiting for a target cluster's Lease",
            lock_wait.clone(),
        );
        registry.register(
            "imports_in_flight",
            "Import attempts running now",
            in_flight.clone(),
        );
        registry.register(
            "leader",
            "1 while this replica holds the leader Lease, 0 otherwise",
            leader.clone(),
        );
        Self {
            registry,
            imports,
            duration,
            lock_wait,
            in_flight,
            leader,
            ready: AtomicBool::new(false),
        }
    }

    /// Records the end of an import attempt.
    pub fn record_import(&self, outcome: ImportOutcome, duration: Duration) {
        let labels = OutcomeLabels {
            outcome: format!("{outcome:?}"),
        };
        self.imports.get_or_create(&labels).inc();
        self.duration
            .get_or_create(&labels)
            .observe(duration.as_secs_f64());
    }

    /// Records the time spent waiting for a Lease.
    pub fn record_lock_wait(&self, waited: Duration) {
        self.lock_wait.observe(waited.as_secs_f64());
    }

    /// Counts an attempt as running until the returned guard drops.
    pub fn start_import(self: &Arc<Self>) -> InFlight {
        self.in_flight.inc();
        InFlight {
            metrics: self.clone(),
        }
    }

    /// Records whether this replica leads.
    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
    }

    /// Marks the operator ready to serve, once its API client works.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

/// Decrements the in-flight gauge when dropped.
pub struct InFlight {
    metrics: Arc<Metrics>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.metrics.in_flight.dec();
    }
}

/// Builds the router of `/metrics`, `/healthz` and `/readyz`.
pub fn router(metrics: Arc<Metrics>) -> axum::Router {
    axum::Router::new()
        .route("/metrics", axum::routing::get(serve_metrics))
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        .route("/readyz", axum::routing::get(serve_ready))
        .with_state(metrics)
}

async fn serve_metrics(State(metrics): State<Arc<Metrics>>) -> axum::response::Response {
    match metrics.encode() {
        Ok(text) => {
            let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
            ([(header::CONTENT_TYPE, content_type)], text).into_response()
        }
        Err(error) => {
            tracing::error!(error = %error, "failed to encode metrics");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

async fn serve_ready(State(metrics): State<Arc<Metrics>>) -> (StatusCode, &'static str) {
    if metrics.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imports_are_counted_by_outcome() {
        let metrics = Metrics::new();
        metrics.record_import(ImportOutcome::Imported, Duration::from_millis(250));
        metrics.record_import(ImportOutcome::Failed, Duration::from_secs(1));
        metrics.record_import(ImportOutcome::Failed, Duration::from_secs(2));

        let text = metrics.encode().expect("encode");
        assert!(
            text.contains("tenant_operator_imports_total{outcome=\"Imported\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("tenant_operator_imports_total{outcome=\"Failed\"} 2"),
            "{text}"
        );
    }

    #[test]
    fn in_flight_gauge_follows_guard() {
        let metrics = Arc::new(Metrics::new());
        let guard = metrics.start_import();
        assert!(
            metrics
                .encode()
                .expect("encode")
                .contains("tenant_operator_imports_in_flight 1")
        );
        drop(guard);
        assert!(
            metrics
                .encode()
                .expect("encode")
                .contains("tenant_operator_imports_in_flight 0")
        );
    }
}

//! The operator's Prometheus metrics and its readiness check.
//!
//! `run` serves them with the shim's [`health_router`](crate::shim::health_router), so
//! the operator and the shim serve `/healthz`, `/readyz` and `/metrics` alike.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::crd::ImportOutcome;
use crate::shim::ReadinessCheck;

/// The `outcome` label of import metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: String,
}

/// The operator's metrics.
#[derive(Debug)]
pub struct Metrics {
    imports: Family<OutcomeLabels, Counter>,
    duration: Family<OutcomeLabels, Histogram>,
    lock_wait: Histogram,
    in_flight: Gauge,
    leader: Gauge,
}

/// Ready once the operator has built its API client and controller.
///
/// A standby replica is ready too, because it serves its health routes while it waits
/// for leadership.
#[derive(Debug, Default)]
pub struct StartupReadiness {
    started: AtomicBool,
}

impl StartupReadiness {
    /// Marks the operator as started.
    pub fn set_started(&self) {
        self.started.store(true, Ordering::Relaxed);
    }
}

#[async_trait::async_trait]
impl ReadinessCheck for StartupReadiness {
    async fn check(&self) -> Result<(), String> {
        if self.started.load(Ordering::Relaxed) {
            Ok(())
        } else {
            Err("the operator is starting".to_owned())
        }
    }
}

impl Metrics {
    /// Creates every metric and registers it in `registry`, whose prefix should be
    /// `tenant_operator`.
    pub fn register(registry: &mut Registry) -> Self {
        let imports = Family::<OutcomeLabels, Counter>::default();
        let duration = Family::<OutcomeLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.1, 2.0, 14))
        });
        let lock_wait = Histogram::new(exponential_buckets(0.01, 2.0, 16));
        let in_flight = Gauge::default();
        let leader = Gauge::default();

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
            imports,
            duration,
            lock_wait,
            in_flight,
            leader,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn registered() -> (Registry, Arc<Metrics>) {
        let mut registry = Registry::with_prefix("tenant_operator");
        let metrics = Arc::new(Metrics::register(&mut registry));
        (registry, metrics)
    }

    fn encode(registry: &Registry) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, registry).expect("encode");
        text
    }

    #[test]
    fn imports_are_counted_by_outcome() {
        let (registry, metrics) = registered();
        metrics.record_import(ImportOutcome::Imported, Duration::from_millis(250));
        metrics.record_import(ImportOutcome::Failed, Duration::from_secs(1));
        metrics.record_import(ImportOutcome::Failed, Duration::from_secs(2));

        let text = encode(&registry);
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
        let (registry, metrics) = registered();
        let guard = metrics.start_import();
        let text = encode(&registry);
        assert!(
            text.contains("tenant_operator_imports_in_flight 1"),
            "{text}"
        );

        drop(guard);
        let text = encode(&registry);
        assert!(
            text.contains("tenant_operator_imports_in_flight 0"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn readiness_follows_startup() {
        let readiness = StartupReadiness::default();
        assert!(readiness.check().await.is_err(), "ready before start");

        readiness.set_started();
        assert_eq!(readiness.check().await, Ok(()));
    }
}

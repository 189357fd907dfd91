//! Metrics, health and readiness routes, and the per-request span and log line.
//!
//! [`health_router`] is public so that the operator serves the same `/healthz`,
//! `/readyz` and `/metrics` routes from its own registry and readiness check.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tracing::Instrument;

use crate::db::Database;
use crate::engine::Outcome;

/// The content type of the Prometheus text format served at `/metrics`.
const OPENMETRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The paths of the health routes, in the order `/healthz`, `/readyz`, `/metrics`.
pub const HEALTH_PATHS: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

/// Labels of the request metrics.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The HTTP method.
    pub method: String,
    /// The route template (`/configapi/v2/tenant/{tenant_url}`), never the raw path, so
    /// the number of series stays bounded.
    pub route: String,
    /// The response status code.
    pub status: u16,
}

/// Labels of the request duration histogram.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// The HTTP method.
    pub method: String,
    /// The route template.
    pub route: String,
}

/// Labels of the import counter.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// `Imported`, `Conflict`, `LockTimeout`, `Invalid` or `Failed`.
    pub outcome: String,
}

/// The shim's metrics.
#[derive(Debug, Clone)]
pub struct Metrics {
    requests: Family<RequestLabels, Counter>,
    durations: Family<RouteLabels, Histogram>,
    imports: Family<OutcomeLabels, Counter>,
    imports_in_progress: Gauge,
}

/// An import counted as in progress; dropping it ends the count.
#[derive(Debug)]
pub struct InProgress(Gauge);

impl Drop for InProgress {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// A check that decides whether the process is ready to serve.
#[async_trait::async_trait]
pub trait ReadinessCheck: Send + Sync {
    /// Returns `Err` with a reason when the process is not ready.
    async fn check(&self) -> Result<(), String>;
}

/// Ready while the configuration database responds to a query.
#[derive(Debug, Clone)]
pub struct DatabaseReadiness(pub Database);

/// The state of the health routes.
#[derive(Clone)]
struct HealthState {
    registry: Arc<Registry>,
    readiness: Arc<dyn ReadinessCheck>,
}

/// The tenant URL a handler worked on, put into the response extensions so the
/// request log line can name it.
#[derive(Debug, Clone)]
pub struct TenantUrl(pub String);

impl Metrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let requests = Family::<RequestLabels, Counter>::default();
        let durations = Family::<RouteLabels, Histogram>::new_with_constructor(
            new_duration_histogram as fn() -> Histogram,
        );
        let imports = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by method, route and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request duration in seconds, by method and route",
            durations.clone(),
        );
        registry.register(
            "tenant_imports",
            "Tenant imports by outcome (Failed: the import stopped on an infrastructure error)",
            imports.clone(),
        );
        let imports_in_progress = Gauge::default();
        registry.register(
            "tenant_imports_in_progress",
            "Imports of this process that wait for the lock or run",
            imports_in_progress.clone(),
        );
        Self {
            requests,
            durations,
            imports,
            imports_in_progress,
        }
    }

    /// Counts one import with the given verdict.
    pub fn record_import(&self, outcome: Option<Outcome>) {
        let outcome = outcome.map_or_else(|| "Failed".to_owned(), |outcome| format!("{outcome:?}"));
        self.imports.get_or_create(&OutcomeLabels { outcome }).inc();
    }

    /// Counts an import as in progress until the returned guard is dropped.
    pub fn track_import(&self) -> InProgress {
        self.imports_in_progress.inc();
        InProgress(self.imports_in_progress.clone())
    }

    fn record_request(&self, method: &str, route: &str, status: StatusCode, seconds: f64) {
        let route_labels = RouteLabels {
            method: method.to_owned(),
            route: route.to_owned(),
        };
        self.durations.get_or_create(&route_labels).observe(seconds);
        let labels = RequestLabels {
            method: route_labels.method,
            route: route_labels.route,
            status: status.as_u16(),
        };
        self.requests.get_or_create(&labels).inc();
    }
}

fn new_duration_histogram() -> Histogram {
    // 5 ms to about 164 s, because an import of a large tenant takes minutes.
    Histogram::new(exponential_buckets(0.005, 2.0, 16))
}

#[async_trait::async_trait]
impl ReadinessCheck for DatabaseReadiness {
    async fn check(&self) -> Result<(), String> {
        let result = match &self.0 {
            Database::Postgres(pool) => sqlx::query("SELECT 1").execute(pool).await.map(drop),
            Database::Sqlite(pool) => sqlx::query("SELECT 1").execute(pool).await.map(drop),
        };
        result.map_err(|error| {
            tracing::warn!(error = %error, "readiness check failed");
            "the configuration database is unreachable".to_owned()
        })
    }
}

/// Builds the `/healthz`, `/readyz` and `/metrics` routes over a registry and a
/// readiness check. `/healthz` always returns 200 while the process serves requests.
pub fn health_router(registry: Arc<Registry>, readiness: Arc<dyn ReadinessCheck>) -> Router {
    let [healthz_path, readyz_path, metrics_path] = HEALTH_PATHS;
    Router::new()
        .route(healthz_path, get(healthz))
        .route(readyz_path, get(readyz))
        .route(metrics_path, get(metrics))
        .with_state(HealthState {
            registry,
            readiness,
        })
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<HealthState>) -> Response {
    match state.readiness.check().await {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {reason}\n"),
        )
            .into_response(),
    }
}

async fn metrics(State(state): State<HealthState>) -> Response {
    let mut text = String::new();
    if let Err(error) = prometheus_client::encoding::text::encode(&mut text, &state.registry) {
        tracing::error!(error = %error, "failed to encode metrics");
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    let mut response = text.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(OPENMETRICS_CONTENT_TYPE),
    );
    response
}

/// Runs each request in a span, records its metrics and writes one log line with
/// method, route, status, duration and, where known, the tenant URL.
pub async fn observe_request(
    State(metrics): State<Metrics>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let span = tracing::info_span!(
        "request",
        method = %method,
        route = %route,
        client_id = tracing::field::Empty,
    );
    let response = next.run(request).instrument(span.clone()).await;
    let status = response.status();
    let elapsed = started.elapsed();
    metrics.record_request(&method, &route, status, elapsed.as_secs_f64());
    let tenant_url = response
        .extensions()
        .get::<TenantUrl>()
        .map(|url| url.0.as_str());
    span.in_scope(|| {
        tracing::info!(
            status = status.as_u16(),
            duration_ms = elapsed.as_millis() as u64,
            tenant_url,
            "request finished"
        );
    });
    response
}

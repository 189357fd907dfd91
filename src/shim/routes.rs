//! The route table: every route of `serve`, with its method, path and access.
//!
//! [`api_endpoints`] is the one place that lists the provider API routes. The router is
//! built from it, and [`route_table`] returns it for the test that compares the router
//! with `docs/openapi.yaml`.

use std::sync::Arc;

use axum::Router;
use axum::extract::FromRef;
use axum::handler::Handler;
use axum::http::Method;
use axum::middleware::from_fn_with_state;
use axum::routing::{MethodRouter, delete, get, post, put};
use prometheus_client::registry::Registry;

use super::auth::{self, Authenticator};
use super::error::ApiError;
use super::locking::ImportReadiness;
use super::state::AppState;
use super::telemetry::{self, DatabaseReadiness, Metrics};
use super::{numbers, tenants};

/// The access rule of a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone who reaches the port.
    Public,
    /// Only requests with a valid bearer token (unless `--insecure-no-auth`).
    Bearer,
}

/// One provider API route.
pub struct Endpoint {
    /// The HTTP method.
    pub method: Method,
    /// The path template, in axum's `{name}` syntax (the same as OpenAPI's).
    pub path: &'static str,
    /// The access rule.
    pub access: Access,
    handler: MethodRouter<AppState>,
}

impl FromRef<AppState> for Option<Authenticator> {
    fn from_ref(state: &AppState) -> Self {
        state.auth.clone()
    }
}

impl FromRef<AppState> for Metrics {
    fn from_ref(state: &AppState) -> Self {
        state.metrics.clone()
    }
}

/// Lists the provider API routes and their handlers.
fn api_endpoints() -> Vec<Endpoint> {
    use Access::{Bearer, Public};
    let endpoint = |method: Method, path, access, handler| Endpoint {
        method,
        path,
        access,
        handler,
    };
    vec![
        endpoint(
            Method::PUT,
            "/configapi/v2/tenant",
            Bearer,
            put(tenants::import),
        ),
        endpoint(
            Method::GET,
            "/configapi/v2/tenant/{tenant_url}",
            Bearer,
            get(tenants::export),
        ),
        endpoint(
            Method::DELETE,
            "/configapi/v2/tenant/{tenant_url}",
            Bearer,
            delete(tenants::delete),
        ),
        endpoint(
            Method::POST,
            "/configapi/v2/tenant/{tenant_url}/activate",
            Bearer,
            post(tenants::activate),
        ),
        endpoint(
            Method::POST,
            "/configapi/v2/tenant/{tenant_url}/deactivate",
            Bearer,
            post(tenants::deactivate),
        ),
        endpoint(
            Method::GET,
            "/configapi/v2/tenants",
            Bearer,
            get(tenants::list),
        ),
        endpoint(
            Method::POST,
            "/configapi/v2/accessnumbers",
            Bearer,
            post(numbers::create),
        ),
        endpoint(
            Method::GET,
            "/configapi/v2/accessnumbers",
            Bearer,
            get(numbers::list),
        ),
        endpoint(
            Method::DELETE,
            "/configapi/v2/accessnumbers",
            Bearer,
            delete(numbers::delete),
        ),
        endpoint(
            Method::POST,
            "/configapi/v2/selfservice/trunk/{name}",
            Bearer,
            post(numbers::create_trunk),
        ),
        endpoint(
            Method::POST,
            "/configapi/v2/oauth/token",
            Public,
            post(auth::token),
        ),
    ]
}

/// Returns the method and path of every route of `serve`, the health routes
/// included.
pub fn route_table() -> Vec<(Method, &'static str)> {
    let api = api_endpoints()
        .into_iter()
        .map(|endpoint| (endpoint.method, endpoint.path));
    let health = telemetry::HEALTH_PATHS
        .iter()
        .map(|path| (Method::GET, *path));
    api.chain(health).collect()
}

/// Builds the whole application: the API routes behind authentication where required,
/// the health routes, and the request span, log line and metrics around every route.
pub fn build_router(state: AppState, registry: Arc<Registry>) -> Router {
    let mut public = Router::new();
    let mut protected = Router::new();
    for endpoint in api_endpoints() {
        match endpoint.access {
            Access::Public => public = public.route(endpoint.path, endpoint.handler),
            Access::Bearer => protected = protected.route(endpoint.path, endpoint.handler),
        }
    }
    let protected =
        protected.route_layer(from_fn_with_state(state.auth.clone(), auth::require_bearer));
    let readiness = Arc::new(ImportReadiness {
        database: DatabaseReadiness(state.db.clone()),
        locking: state.locking.clone(),
    });
    let metrics = state.metrics.clone();
    let not_found = route_not_found.layer(from_fn_with_state(
        metrics.clone(),
        telemetry::observe_request,
    ));

    public
        .merge(protected)
        .with_state(state)
        .merge(telemetry::health_router(registry, readiness))
        .route_layer(from_fn_with_state(metrics, telemetry::observe_request))
        .fallback(not_found)
}

async fn route_not_found() -> ApiError {
    ApiError::NotFound("no route matches this method and path; see docs/openapi.yaml".to_owned())
}

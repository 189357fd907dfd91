//! The Kubernetes operator: the TenantImport resource and its controller.
//!
//! `tenant-operator run` elects a leader among its replicas ([`leader`]), watches
//! TenantImports, and reconciles each one ([`reconcile`]). A reconcile fetches the
//! archive ([`fetch`]), takes the target cluster's Lease ([`lease`]), runs the import
//! engine and records the outcome in the status and in an Event.

pub mod crd;
pub mod decision;
pub mod fetch;
pub mod leader;
pub mod lease;
pub mod metrics;
pub mod reconcile;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use futures::StreamExt;
use kube::runtime::controller::{self, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::cli::LimitArgs;
use crate::shim::health_router;
use crd::TenantImport;
use decision::Backoff;
use lease::LeaseClaim;
use metrics::{Metrics, StartupReadiness};
use reconcile::{Context, Settings};

/// Options of `run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The operator's own namespace, where the import and leader Leases live.
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub namespace: String,

    /// Watch TenantImports in this namespace only; all namespaces without it.
    #[arg(long, env = "WATCH_NAMESPACE")]
    pub watch_namespace: Option<String>,

    /// This replica's identity in Leases; a random one without it.
    #[arg(long, env = "POD_NAME")]
    pub holder_identity: Option<String>,

    /// Seconds a Lease holder may go without renewing before others take it over.
    #[arg(long, default_value_t = 15, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(3..=600))]
    pub lease_duration: u64,

    /// Address of the /metrics, /healthz and /readyz routes.
    #[arg(long, env = "METRICS_LISTEN", default_value = "0.0.0.0:8080")]
    pub metrics_listen: SocketAddr,

    /// Maximum number of TenantImports reconciled at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: u16,

    /// Seconds before the first retry of LockTimeout and Failed; doubled per attempt.
    #[arg(long, default_value_t = 5, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub retry_initial_delay: u64,

    /// Maximum delay between retries, in seconds.
    #[arg(long, default_value_t = 300, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub retry_max_delay: u64,

    /// Prefix of reporting database names; the tenant GUID in hex follows it.
    #[arg(
        long,
        env = "REPORTING_DATABASE_PREFIX",
        default_value = "tenant_report_"
    )]
    pub reporting_database_prefix: String,

    /// Folder for downloaded archives; the system's temporary folder without it.
    #[arg(long, env = "SPOOL_DIR")]
    pub spool_dir: Option<PathBuf>,

    /// Archive limits.
    #[command(flatten)]
    pub limits: LimitArgs,
}

/// Runs the controller until SIGTERM or Ctrl-C.
///
/// # Errors
///
/// Returns an error when no kubeconfig or in-cluster configuration is found, the
/// metrics address cannot be bound, or this replica loses leadership.
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let client = Client::try_default().await?;
    let holder = args.holder_identity.clone().unwrap_or_else(|| {
        format!(
            "tenant-operator-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        )
    });
    let mut registry = Registry::with_prefix("tenant_operator");
    let metrics = Arc::new(Metrics::register(&mut registry));
    let readiness = Arc::new(StartupReadiness::default());
    let listener = tokio::net::TcpListener::bind(args.metrics_listen)
        .await
        .with_context(|| {
            format!(
                "failed to listen on {}; is the port in use?",
                args.metrics_listen
            )
        })?;
    tracing::info!(address = %listener.local_addr()?, "serving metrics and health");
    let router = health_router(Arc::new(registry), readiness.clone());
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, router).await {
            tracing::error!(error = %error, "metrics server failed");
        }
    });

    let shutdown = CancellationToken::new();
    tokio::spawn(signal_shutdown(shutdown.clone()));

    let lease_duration = Duration::from_secs(args.lease_duration);
    let claim = LeaseClaim::new(
        client.clone(),
        &args.namespace,
        leader::LEADER_LEASE.to_owned(),
        holder.clone(),
        lease_duration,
    );
    let reporter = Reporter {
        controller: "tenant-operator".to_owned(),
        instance: Some(holder.clone()),
    };
    let context = Arc::new(Context {
        client: client.clone(),
        recorder: Recorder::new(client.clone(), reporter),
        metrics: metrics.clone(),
        settings: Settings {
            lease_namespace: args.namespace.clone(),
            holder_identity: holder.clone(),
            lease_duration,
            limits: args.limits.to_limits(),
            reporting_prefix: args.reporting_database_prefix.clone(),
            spool_dir: args.spool_dir.clone(),
            backoff: Backoff {
                initial: Duration::from_secs(args.retry_initial_delay),
                max: Duration::from_secs(args.retry_max_delay),
            },
        },
    });
    let api: Api<TenantImport> = match &args.watch_namespace {
        Some(namespace) => Api::namespaced(client, namespace),
        None => Api::all(client),
    };

    readiness.set_started();
    tracing::info!(holder, namespace = args.namespace, "operator started");
    let concurrency = args.concurrency;
    leader::run(claim, &metrics, shutdown, |stop| {
        run_controller(api, context, concurrency, stop)
    })
    .await?;
    tracing::info!("operator stopped");
    Ok(())
}

async fn run_controller(
    api: Api<TenantImport>,
    context: Arc<Context>,
    concurrency: u16,
    stop: CancellationToken,
) {
    let config = controller::Config::default().concurrency(concurrency);
    Controller::new(api, watcher::Config::default().any_semantic())
        .with_config(config)
        .graceful_shutdown_on(async move { stop.cancelled().await })
        .run(reconcile_in_span, reconcile::error_policy, context)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(error = %error, "controller reported an error");
            }
        })
        .await;
}

/// Runs a reconcile in a span that names the resource.
async fn reconcile_in_span(
    resource: Arc<TenantImport>,
    context: Arc<Context>,
) -> Result<controller::Action, reconcile::ReconcileError> {
    let span = tracing::info_span!(
        "reconcile",
        namespace = resource.namespace().unwrap_or_default(),
        name = resource.name_any()
    );
    reconcile::reconcile(resource, context)
        .instrument(span)
        .await
}

async fn signal_shutdown(shutdown: CancellationToken) {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(error = %error, "failed to listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
    tracing::info!("shutdown requested");
    shutdown.cancel();
}

/// Prints the CRD as YAML.
///
/// # Errors
///
/// Returns an error when the CRD cannot be encoded.
pub fn print_crd() -> anyhow::Result<()> {
    let yaml = crd::crd_yaml()?;
    write_stdout(&yaml);
    Ok(())
}

#[allow(clippy::print_stdout)]
fn write_stdout(text: &str) {
    print!("{text}");
}

//! The HTTP shim: the provider API routes over the import engine.
//!
//! `tenant-operator serve` serves `PUT /configapi/v2/tenant` (import), the tenant,
//! access-number and trunk administration routes, an OAuth 2.0 token route, and the
//! health and metrics routes. `docs/openapi.yaml` describes every route and
//! `docs/http-api.md` explains set-up and use.
//!
//! A request flows through the span and metrics layer, then the bearer-token check
//! (every `/configapi` route except the token route), then its handler. An upload is
//! spooled to a temporary file and imported on a task of its own, one import at a time
//! per process in arrival order. Each import takes the engine's database lock or, with
//! `--lease-cluster`, the target cluster's Lease that the operator takes too.

mod auth;
mod error;
mod locking;
mod numbers;
mod routes;
mod server;
mod state;
mod telemetry;
mod tenants;
mod upload;

use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use prometheus_client::registry::Registry;

pub use auth::{AuthArgs, AuthConfigError, hash_secret};
pub use error::ApiError;
pub use locking::{ImportLocking, LeaseArgs, LeaseSetupError};
pub use routes::route_table;
pub use telemetry::{DatabaseReadiness, Metrics, ReadinessCheck, health_router};

use crate::cli::{DatabaseArgs, LimitArgs};
use crate::engine::Engine;
use state::{AppState, ImportQueue, UploadSettings};

/// Options of `serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The configuration database.
    #[command(flatten)]
    pub database: DatabaseArgs,

    /// Archive limits; `--archive-max-bytes` also limits the upload size.
    #[command(flatten)]
    pub limits: LimitArgs,

    /// Authentication.
    #[command(flatten)]
    pub auth: AuthArgs,

    /// The target cluster's Lease, shared with the operator.
    #[command(flatten)]
    pub lease: LeaseArgs,

    /// Address and port to listen on; port 0 picks a free port.
    #[arg(long, env = "LISTEN_ADDRESS", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// File to write the bound address (`127.0.0.1:PORT`) to once the server listens.
    #[arg(long, value_name = "PATH")]
    pub port_file: Option<PathBuf>,

    /// Seconds an upload may send no data before it is cut off with 408.
    #[arg(
        long,
        env = "UPLOAD_READ_TIMEOUT",
        default_value_t = 30,
        value_name = "SECONDS"
    )]
    pub upload_read_timeout: u64,

    /// Seconds a whole archive upload may take before it is cut off with 408.
    #[arg(
        long,
        env = "UPLOAD_TIMEOUT",
        default_value_t = 1800,
        value_name = "SECONDS"
    )]
    pub upload_timeout: u64,

    /// Seconds a client may take to send its request headers before the connection is
    /// closed.
    #[arg(
        long,
        env = "HEADER_READ_TIMEOUT",
        default_value_t = 30,
        value_name = "SECONDS"
    )]
    pub header_read_timeout: u64,

    /// Folder of temporary upload and export files; the system's temporary folder
    /// when absent.
    #[arg(long, env = "UPLOAD_DIR", value_name = "PATH")]
    pub upload_dir: Option<PathBuf>,

    /// Read a client secret from standard input, print its argon2 hash for the clients
    /// file, and exit without serving.
    #[arg(long)]
    pub hash_secret: bool,
}

/// Runs `serve` until SIGTERM or SIGINT, then stops accepting connections and waits
/// for running requests and imports to end.
///
/// # Errors
///
/// Returns an error when the authentication settings are invalid, the database is
/// unreachable, or the address cannot be bound.
pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    if args.hash_secret {
        return print_secret_hash();
    }
    let authenticator = args.auth.load()?;
    if authenticator.is_none() {
        tracing::warn!(
            "authentication is turned off (--insecure-no-auth): anyone who reaches the port can import and delete tenants"
        );
    }
    let db = args.database.connect().await?;
    let locking = ImportLocking::from_args(&args.lease, &db).await?;
    let reporting = args.database.reporting_config();
    let engine = Engine::new(db.clone(), args.limits.to_limits(), reporting);

    let upload_dir = args.upload_dir.clone().unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&upload_dir).with_context(|| {
        format!(
            "failed to create the upload folder {}",
            upload_dir.display()
        )
    })?;

    let mut registry = Registry::with_prefix("tenant_operator");
    let metrics = Metrics::register(&mut registry);
    let imports = ImportQueue::default();
    let state = AppState {
        engine,
        db,
        locking,
        auth: authenticator,
        metrics,
        upload: UploadSettings {
            max_bytes: args.limits.archive_max_bytes,
            read_timeout: Duration::from_secs(args.upload_read_timeout),
            total_timeout: Duration::from_secs(args.upload_timeout),
            dir: upload_dir,
        },
        imports: imports.clone(),
    };
    let router = routes::build_router(state, Arc::new(registry));

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("failed to listen on {}; is the port in use?", args.listen))?;
    let address = listener.local_addr()?;
    if let Some(path) = &args.port_file {
        write_port_file(path, address)?;
    }
    tracing::info!(address = %address, "listening");

    let header_read_timeout = Duration::from_secs(args.header_read_timeout);
    server::serve_connections(listener, router, header_read_timeout, shutdown_signal()).await;
    tracing::info!("waiting for running imports to end");
    imports.wait_idle().await;
    tracing::info!("stopped");
    Ok(())
}

/// Writes the address through a temporary file and a rename, so a reader never sees
/// a partly written file.
fn write_port_file(path: &Path, address: SocketAddr) -> anyhow::Result<()> {
    let dir = path.parent().filter(|dir| !dir.as_os_str().is_empty());
    let mut temp = tempfile::NamedTempFile::new_in(dir.unwrap_or(Path::new(".")))?;
    temp.write_all(address.to_string().as_bytes())?;
    temp.persist(path)?;
    Ok(())
}

fn print_secret_hash() -> anyhow::Result<()> {
    let mut secret = String::new();
    std::io::stdin().lock().read_line(&mut secret)?;
    let secret = secret.trim_end_matches(['\r', '\n']);
    if secret.is_empty() {
        anyhow::bail!(
            "no secret on standard input; pipe the secret in, for example `printf %s \"$SECRET\" | tenant-operator serve --hash-secret`"
        );
    }
    let hash = hash_secret(secret)?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{hash}")?;
    Ok(())
}

/// Completes on the first SIGTERM or SIGINT.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(error = %error, "failed to listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {}
        () = terminate => {}
    }
    tracing::info!("shutdown signal received; no longer accepting connections");
}

//! The import lock that `serve` takes: the engine's database lock standalone, or in a
//! cluster the same Kubernetes Lease as the operator's controller.
//!
//! With `--lease-cluster NAME`, an upload and a TenantImport whose `spec.target.cluster`
//! is NAME both take the Lease `tenant-import-NAME` in the operator's namespace, so they
//! wait for each other. The engine's transaction-level fence in the database stays
//! underneath either lock.

use std::time::Duration;

use super::telemetry::{DatabaseReadiness, ReadinessCheck};
use crate::db::Database;
use crate::lock::ImportLock;
use crate::operator::lease::{DEFAULT_LEASE_DURATION, LeaseLock};

/// Options that make `serve` take a target cluster's Lease instead of the database lock.
#[derive(Debug, Clone, clap::Args)]
pub struct LeaseArgs {
    /// Target cluster name whose Lease `tenant-import-NAME` serialises imports with the
    /// operator; the database lock without it. Uses the in-cluster configuration or
    /// KUBECONFIG.
    #[arg(long, env = "LEASE_CLUSTER", value_name = "NAME")]
    pub lease_cluster: Option<String>,

    /// Namespace of the Lease, the operator's own namespace.
    #[arg(long, env = "POD_NAMESPACE", value_name = "NAMESPACE")]
    pub lease_namespace: Option<String>,

    /// This process's identity in the Lease; a random one without it.
    #[arg(long, env = "POD_NAME", value_name = "NAME")]
    pub holder_identity: Option<String>,

    /// Seconds the Lease holder may go without renewing before others take it over.
    #[arg(
        long,
        default_value_t = DEFAULT_LEASE_DURATION.as_secs(),
        value_name = "SECONDS",
        value_parser = clap::value_parser!(u64).range(3..=600)
    )]
    pub lease_duration: u64,
}

/// A failure to set up the Lease lock.
#[derive(Debug, thiserror::Error)]
pub enum LeaseSetupError {
    /// `--lease-cluster` was given without a namespace.
    #[error(
        "--lease-cluster {cluster} needs the Lease namespace; set --lease-namespace or POD_NAMESPACE to the operator's namespace"
    )]
    MissingNamespace {
        /// The cluster name.
        cluster: String,
    },
    /// `--lease-cluster` names no valid Lease.
    #[error(
        "invalid --lease-cluster {cluster:?}: use the TenantImports' spec.target.cluster, a DNS label of at most 63 lowercase letters, digits and '-'"
    )]
    InvalidCluster {
        /// The cluster name.
        cluster: String,
    },
    /// No Kubernetes client configuration was found or it is invalid.
    #[error(
        "failed to configure the Kubernetes client for --lease-cluster; run in a pod or set KUBECONFIG"
    )]
    Client(#[source] kube::Error),
}

/// The lock every upload takes.
#[derive(Clone)]
pub enum ImportLocking {
    /// The configuration database's advisory lock.
    Standalone(Database),
    /// The Lease of a target cluster, shared with the operator.
    Lease(LeaseLock),
}

impl ImportLocking {
    /// Builds the Lease lock when `--lease-cluster` is set, and the database lock
    /// otherwise.
    ///
    /// # Errors
    ///
    /// Returns [`LeaseSetupError`] when the cluster name is invalid, the namespace is
    /// missing, or no Kubernetes client configuration is found.
    pub async fn from_args(args: &LeaseArgs, db: &Database) -> Result<Self, LeaseSetupError> {
        let Some(cluster) = &args.lease_cluster else {
            return Ok(Self::Standalone(db.clone()));
        };
        if !is_dns_label(cluster) {
            return Err(LeaseSetupError::InvalidCluster {
                cluster: cluster.clone(),
            });
        }
        let Some(namespace) = args.lease_namespace.as_deref().filter(|n| !n.is_empty()) else {
            return Err(LeaseSetupError::MissingNamespace {
                cluster: cluster.clone(),
            });
        };
        let holder = args.holder_identity.clone().unwrap_or_else(|| {
            format!(
                "tenant-operator-serve-{}",
                &uuid::Uuid::new_v4().simple().to_string()[..8]
            )
        });
        let client = kube::Client::try_default()
            .await
            .map_err(LeaseSetupError::Client)?;
        let lock = LeaseLock::with_duration(
            client,
            namespace,
            cluster,
            &holder,
            Duration::from_secs(args.lease_duration),
        );
        tracing::info!(
            lease = lock.lease_name(),
            namespace,
            holder,
            "imports take the target cluster's Lease"
        );
        Ok(Self::Lease(lock))
    }

    /// Returns the lock for one import.
    pub fn lock(&self) -> Box<dyn ImportLock> {
        match self {
            Self::Standalone(db) => Box::new(db.standalone_lock()),
            Self::Lease(lock) => Box::new(lock.clone()),
        }
    }
}

/// Ready while the configuration database responds and, with `--lease-cluster`, the
/// API server serves the Lease, so a pod cut off from either gets no uploads.
pub struct ImportReadiness {
    /// The configuration database's check.
    pub database: DatabaseReadiness,
    /// The lock whose backend must be reachable too.
    pub locking: ImportLocking,
}

#[async_trait::async_trait]
impl ReadinessCheck for ImportReadiness {
    async fn check(&self) -> Result<(), String> {
        self.database.check().await?;
        let ImportLocking::Lease(lock) = &self.locking else {
            return Ok(());
        };
        lock.check_readable().await.map_err(|error| {
            tracing::warn!(error = ?error, lease = lock.lease_name(), "readiness check failed");
            format!(
                "reading Lease {} from the Kubernetes API server failed; check that the API server is reachable and that the service account may get leases",
                lock.lease_name()
            )
        })
    }
}

/// Tells whether `cluster` is a DNS label (at most 63 lowercase letters, digits and
/// '-', starting and ending with a letter or digit), the rule that the TenantImport CRD
/// sets for `spec.target.cluster`.
fn is_dns_label(cluster: &str) -> bool {
    let alphanumeric = |byte: &u8| byte.is_ascii_lowercase() || byte.is_ascii_digit();
    let bytes = cluster.as_bytes();
    (1..=63).contains(&bytes.len())
        && bytes.first().is_some_and(alphanumeric)
        && bytes.last().is_some_and(alphanumeric)
        && bytes.iter().all(|byte| alphanumeric(byte) || *byte == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_cluster_must_be_dns_label() {
        let longest = "a".repeat(63);
        for valid in ["eu-west", "cluster1", "a", longest.as_str()] {
            assert!(is_dns_label(valid), "{valid} rejected");
        }
        let too_long = "a".repeat(64);
        let invalid = ["", "EU", "eu_west", "-eu", "eu-", "eu.west", "eu west"];
        for name in invalid.into_iter().chain([too_long.as_str()]) {
            assert!(!is_dns_label(name), "{name} accepted");
        }
    }
}

//! Leader election over the Lease `tenant-operator-leader`: one replica reconciles,
//! the others wait and take over when the leader releases the Lease or stops
//! renewing it.
//!
//! A leader that loses its Lease to another replica stops with an error, so that
//! Kubernetes restarts it as a standby. An import it is running is dropped, which
//! rolls back the import's transaction.

use std::future::Future;

use tokio_util::sync::CancellationToken;

use super::lease::{Claim, LeaseClaim, LeaseError};
use super::metrics::Metrics;

/// The name of the leader election Lease.
pub const LEADER_LEASE: &str = "tenant-operator-leader";

/// The failure that ends leading.
#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    /// Another replica took the Lease while this one led.
    #[error("lost the leader Lease {lease} to another replica; restarting as a standby")]
    Lost {
        /// The Lease name.
        lease: String,
    },
    /// The Lease could not be released on shutdown.
    #[error("failed to release the leader Lease")]
    Release(#[source] LeaseError),
}

/// Waits for leadership, then runs `lead` until `shutdown` is cancelled or the Lease
/// is lost. `lead` receives a token that is cancelled when it must stop.
///
/// # Errors
///
/// Returns [`LeaderError::Lost`] when another replica took the Lease.
pub(crate) async fn run<F, Fut>(
    claim: LeaseClaim,
    metrics: &Metrics,
    shutdown: CancellationToken,
    lead: F,
) -> Result<(), LeaderError>
where
    F: FnOnce(CancellationToken) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some((resource_version, taken_at)) = wait_for_leadership(&claim, &shutdown).await else {
        return Ok(());
    };
    tracing::info!(lease = claim.name(), "leading");
    metrics.set_leader(true);

    let renewal = claim.spawn_renewal(resource_version, taken_at);
    let mut held = renewal.held_until.clone();
    let stop = shutdown.child_token();
    let leading = lead(stop.clone());
    let lost = async move {
        let _ = held.wait_for(Option::is_none).await;
    };
    let outcome = tokio::select! {
        () = leading => Ok(()),
        () = lost => Err(LeaderError::Lost { lease: claim.name().to_owned() }),
    };
    stop.cancel();
    metrics.set_leader(false);
    renewal.stop().await;

    if outcome.is_ok() {
        claim.release().await.map_err(LeaderError::Release)?;
        tracing::info!(lease = claim.name(), "released leadership");
    }
    outcome
}

/// Waits until this replica holds the Lease and returns its resourceVersion and the
/// start of the write that took it, or `None` on shutdown.
async fn wait_for_leadership(
    claim: &LeaseClaim,
    shutdown: &CancellationToken,
) -> Option<(String, tokio::time::Instant)> {
    let mut announced = false;
    loop {
        let attempt = tokio::select! {
            () = shutdown.cancelled() => return None,
            attempt = claim.try_take() => attempt,
        };
        let until = match attempt {
            Ok(Claim::Taken {
                resource_version,
                taken_at,
            }) => return Some((resource_version, taken_at)),
            Ok(Claim::Held {
                holder,
                expires_at,
                resource_version,
            }) => {
                if !announced {
                    tracing::info!(lease = claim.name(), leader = holder, "standing by");
                    announced = true;
                }
                let remaining = (expires_at - chrono::Utc::now())
                    .to_std()
                    .unwrap_or_default();
                let until =
                    tokio::time::Instant::now() + remaining + std::time::Duration::from_millis(50);
                Some((resource_version, until))
            }
            Err(error) => {
                tracing::warn!(lease = claim.name(), error = %error, "failed to read leader lease; retrying");
                None
            }
        };
        match until {
            Some((resource_version, until)) => tokio::select! {
                () = shutdown.cancelled() => return None,
                () = claim.wait_for_change(&resource_version, until) => {}
            },
            None => tokio::select! {
                () = shutdown.cancelled() => return None,
                () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
            },
        }
    }
}

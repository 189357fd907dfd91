//! Leases on `coordination.k8s.io/v1`: the per-cluster import lock and the claim
//! that leader election builds on.
//!
//! A Lease is taken with resourceVersion compare-and-swap: a create that fails with
//! 409 when the Lease exists, or a replace that fails with 409 when another writer
//! changed it since it was read. A free Lease has no holder. A Lease whose holder
//! stopped renewing (`renewTime + leaseDurationSeconds` in the past) is taken over.
//! While a Lease is held, a background task renews it every third of its duration.
//! A waiter watches the Lease, so it wakes as soon as the holder releases it.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{ObjectMeta, PostParams, WatchEvent, WatchParams};
use kube::{Api, Client};
use tokio::sync::{Mutex, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::Instrument;

use crate::lock::{ImportLock, LockError, LockGuard};

/// The default time a holder may go without renewing before others take its Lease.
pub const DEFAULT_LEASE_DURATION: Duration = Duration::from_secs(15);

/// The failure of a Lease operation.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// The API server rejected or failed a request on the Lease.
    #[error("API request on Lease {lease} failed")]
    Api {
        /// The Lease name.
        lease: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
}

/// The result of one attempt to take a Lease.
#[derive(Debug)]
pub(crate) enum Claim {
    /// The Lease is ours at this resourceVersion, from a write that started at
    /// `taken_at`.
    Taken {
        resource_version: String,
        taken_at: Instant,
    },
    /// Another holder has it until `expires_at`; `resource_version` is what was read.
    Held {
        holder: String,
        expires_at: DateTime<Utc>,
        resource_version: String,
    },
}

/// One named Lease in one namespace, claimed under one holder identity.
#[derive(Clone)]
pub(crate) struct LeaseClaim {
    api: Api<Lease>,
    name: String,
    holder: String,
    duration: Duration,
}

impl LeaseClaim {
    pub(crate) fn new(
        client: Client,
        namespace: &str,
        name: String,
        holder: String,
        duration: Duration,
    ) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            name,
            holder,
            duration,
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    fn api_error(&self, source: kube::Error) -> LeaseError {
        LeaseError::Api {
            lease: self.name.clone(),
            source,
        }
    }

    fn duration_seconds(&self) -> i32 {
        i32::try_from(self.duration.as_secs().max(1)).unwrap_or(i32::MAX)
    }

    /// Makes one compare-and-swap attempt to take the Lease, retrying only when a
    /// concurrent writer made the read stale.
    pub(crate) async fn try_take(&self) -> Result<Claim, LeaseError> {
        loop {
            let now = Utc::now();
            let taken_at = Instant::now();
            let Some(mut lease) = self
                .api
                .get_opt(&self.name)
                .await
                .map_err(|e| self.api_error(e))?
            else {
                let lease = self.new_lease(now);
                match self.api.create(&PostParams::default(), &lease).await {
                    Ok(created) => {
                        return Ok(Claim::Taken {
                            resource_version: version_of(&created),
                            taken_at,
                        });
                    }
                    Err(error) if is_conflict(&error) => continue,
                    Err(error) => return Err(self.api_error(error)),
                }
            };

            let spec = lease.spec.clone().unwrap_or_default();
            let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
            let expires_at = expiry(&spec);
            if let Some(holder) = holder {
                if expires_at > now {
                    let resource_version = version_of(&lease);
                    return Ok(Claim::Held {
                        holder,
                        expires_at,
                        resource_version,
                    });
                }
                tracing::info!(
                    lease = self.name,
                    previous_holder = holder,
                    "taking over expired lease"
                );
            }

            let transitions = spec.lease_transitions.unwrap_or(0);
            lease.spec = Some(LeaseSpec {
                holder_identity: Some(self.holder.clone()),
                lease_duration_seconds: Some(self.duration_seconds()),
                acquire_time: Some(MicroTime(now)),
                renew_time: Some(MicroTime(now)),
                lease_transitions: Some(transitions.saturating_add(1)),
                ..spec
            });
            match self
                .api
                .replace(&self.name, &PostParams::default(), &lease)
                .await
            {
                Ok(replaced) => {
                    return Ok(Claim::Taken {
                        resource_version: version_of(&replaced),
                        taken_at,
                    });
                }
                Err(error) if is_conflict(&error) => continue,
                Err(error) => return Err(self.api_error(error)),
            }
        }
    }

    fn new_lease(&self, now: DateTime<Utc>) -> Lease {
        Lease {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(self.holder.clone()),
                lease_duration_seconds: Some(self.duration_seconds()),
                acquire_time: Some(MicroTime(now)),
                renew_time: Some(MicroTime(now)),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            }),
        }
    }

    /// Waits until the Lease changes after `resource_version`, `until` passes, or the
    /// watch ends, whichever comes first.
    pub(crate) async fn wait_for_change(
        &self,
        resource_version: &str,
        until: tokio::time::Instant,
    ) {
        let params = WatchParams::default()
            .fields(&format!("metadata.name={}", self.name))
            .timeout(290);
        let stream = match self.api.watch(&params, resource_version).await {
            Ok(stream) => stream,
            Err(error) => {
                tracing::warn!(lease = self.name, error = %error, "failed to watch lease");
                let retry = tokio::time::Instant::now() + Duration::from_secs(1);
                tokio::time::sleep_until(retry.min(until)).await;
                return;
            }
        };
        let mut stream = std::pin::pin!(stream.into_stream());
        let changed = async {
            while let Ok(Some(event)) = stream.try_next().await {
                if !matches!(event, WatchEvent::Bookmark(_)) {
                    return;
                }
            }
        };
        tokio::select! {
            () = changed => {}
            () = tokio::time::sleep_until(until) => {}
        }
    }

    /// Renews the Lease at `resource_version`. Returns the new resourceVersion, or
    /// `None` when another holder has taken it.
    pub(crate) async fn renew(&self, resource_version: &str) -> Result<Option<String>, LeaseError> {
        let mut expected = resource_version.to_owned();
        loop {
            let Some(mut lease) = self
                .api
                .get_opt(&self.name)
                .await
                .map_err(|e| self.api_error(e))?
            else {
                return Ok(None);
            };
            let spec = lease.spec.clone().unwrap_or_default();
            if spec.holder_identity.as_deref() != Some(self.holder.as_str()) {
                return Ok(None);
            }
            if version_of(&lease) != expected {
                tracing::debug!(
                    lease = self.name,
                    "lease changed under its holder; renewing the new version"
                );
                expected = version_of(&lease);
            }
            lease.spec = Some(LeaseSpec {
                renew_time: Some(MicroTime(Utc::now())),
                ..spec
            });
            match self
                .api
                .replace(&self.name, &PostParams::default(), &lease)
                .await
            {
                Ok(renewed) => return Ok(Some(version_of(&renewed))),
                Err(error) if is_conflict(&error) => continue,
                Err(error) => return Err(self.api_error(error)),
            }
        }
    }

    /// Clears the holder when it is still us.
    pub(crate) async fn release(&self) -> Result<(), LeaseError> {
        loop {
            let Some(mut lease) = self
                .api
                .get_opt(&self.name)
                .await
                .map_err(|e| self.api_error(e))?
            else {
                return Ok(());
            };
            let spec = lease.spec.clone().unwrap_or_default();
            if spec.holder_identity.as_deref() != Some(self.holder.as_str()) {
                return Ok(());
            }
            lease.spec = Some(LeaseSpec {
                holder_identity: None,
                acquire_time: None,
                renew_time: None,
                ..spec
            });
            match self
                .api
                .replace(&self.name, &PostParams::default(), &lease)
                .await
            {
                Ok(_) => return Ok(()),
                Err(error) if is_conflict(&error) => continue,
                Err(error) => return Err(self.api_error(error)),
            }
        }
    }

    /// Starts the background renewal of the Lease taken at `taken_at`, which reports
    /// through [`Renewal::held_until`] and ends when the [`Renewal`] is stopped.
    pub(crate) fn spawn_renewal(&self, resource_version: String, taken_at: Instant) -> Renewal {
        let (stop, mut stopped) = watch::channel(false);
        let (held_sender, held_until) = watch::channel(Some(taken_at + self.duration));
        let claim = self.clone();
        let interval = self.duration / 3;
        let span = tracing::info_span!("lease_renewal", lease = self.name);
        let task = tokio::spawn(
            async move {
                let mut version = resource_version;
                let mut expiry_logged = false;
                loop {
                    tokio::select! {
                        _ = stopped.changed() => return,
                        () = tokio::time::sleep(interval) => {}
                    }
                    // The renewal writes a renewTime taken after this instant, so with
                    // clocks in agreement the local deadline ends before others' one.
                    let attempted_at = Instant::now();
                    match claim.renew(&version).await {
                        Ok(Some(next)) => {
                            version = next;
                            expiry_logged = false;
                            let _ = held_sender.send(Some(attempted_at + claim.duration));
                        }
                        Ok(None) => {
                            tracing::error!("lease lost to another holder");
                            let _ = held_sender.send(None);
                            return;
                        }
                        Err(error) => {
                            tracing::warn!(error = %error, "failed to renew lease; retrying");
                            let expired = held_sender
                                .borrow()
                                .is_none_or(|until| Instant::now() >= until);
                            if expired && !expiry_logged {
                                tracing::error!(
                                    "lease expired without renewal; others may take it"
                                );
                                expiry_logged = true;
                            }
                        }
                    }
                }
            }
            .instrument(span),
        );
        Renewal {
            stop,
            held_until,
            task,
        }
    }
}

/// A running renewal of a held Lease.
pub(crate) struct Renewal {
    stop: watch::Sender<bool>,
    /// The local time until which the Lease is ours, one lease duration after the
    /// start of the last successful write, or `None` once another holder has it.
    /// After a failed renewal the deadline stays, so it passes during an API outage.
    /// A later successful renewal moves it on, because a renewal succeeds only while
    /// this holder's identity is still in the Lease and every takeover or release
    /// replaces it.
    pub(crate) held_until: watch::Receiver<Option<Instant>>,
    task: JoinHandle<()>,
}

impl Renewal {
    /// Stops renewing and waits for the task to finish.
    pub(crate) async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

fn version_of(lease: &Lease) -> String {
    lease.metadata.resource_version.clone().unwrap_or_default()
}

fn expiry(spec: &LeaseSpec) -> DateTime<Utc> {
    let renewed = spec
        .renew_time
        .as_ref()
        .or(spec.acquire_time.as_ref())
        .map_or(DateTime::<Utc>::MIN_UTC, |time| time.0);
    let seconds = i64::from(spec.lease_duration_seconds.unwrap_or(0));
    renewed + chrono::Duration::seconds(seconds)
}

fn is_conflict(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 409)
}

/// The import lock of one target cluster: the Lease `tenant-import-<cluster>` in the
/// operator's namespace.
#[derive(Clone)]
pub struct LeaseLock {
    claim: LeaseClaim,
}

impl LeaseLock {
    /// Creates the lock of `cluster`, held under `holder` (the pod name) in
    /// `namespace`, with the [`DEFAULT_LEASE_DURATION`].
    pub fn new(client: Client, namespace: &str, cluster: &str, holder: &str) -> Self {
        Self::with_duration(client, namespace, cluster, holder, DEFAULT_LEASE_DURATION)
    }

    /// Creates the lock of `cluster` with a chosen lease duration.
    pub fn with_duration(
        client: Client,
        namespace: &str,
        cluster: &str,
        holder: &str,
        duration: Duration,
    ) -> Self {
        let name = lease_name(cluster);
        let claim = LeaseClaim::new(client, namespace, name, holder.to_owned(), duration);
        Self { claim }
    }

    /// Returns the Lease name.
    pub fn lease_name(&self) -> &str {
        self.claim.name()
    }

    /// Reads the Lease once, to check that the API server is reachable and lets this
    /// process read it. A Lease that does not exist yet is fine.
    ///
    /// # Errors
    ///
    /// Returns [`LeaseError::Api`] when the request fails.
    pub async fn check_readable(&self) -> Result<(), LeaseError> {
        self.claim
            .api
            .get_opt(&self.claim.name)
            .await
            .map(drop)
            .map_err(|source| self.claim.api_error(source))
    }
}

/// Returns the Lease name that locks imports into `cluster`.
pub fn lease_name(cluster: &str) -> String {
    format!("tenant-import-{cluster}")
}

#[async_trait::async_trait]
impl ImportLock for LeaseLock {
    async fn acquire(&self, timeout: Duration) -> Result<Box<dyn LockGuard>, LockError> {
        let started = tokio::time::Instant::now();
        let deadline = started + timeout;
        loop {
            let claim = self
                .claim
                .try_take()
                .await
                .map_err(|error| LockError::Backend(Box::new(error)))?;
            match claim {
                Claim::Taken {
                    resource_version,
                    taken_at,
                } => {
                    tracing::debug!(lease = self.claim.name(), "import lock taken");
                    let renewal = self.claim.spawn_renewal(resource_version, taken_at);
                    let guard = LeaseGuard {
                        claim: self.claim.clone(),
                        held_until: renewal.held_until.clone(),
                        renewal: Arc::new(Mutex::new(Some(renewal))),
                    };
                    return Ok(Box::new(guard));
                }
                Claim::Held {
                    holder,
                    expires_at,
                    resource_version,
                } => {
                    let now = tokio::time::Instant::now();
                    if now >= deadline {
                        return Err(LockError::Timeout {
                            waited: now - started,
                            holder,
                        });
                    }
                    let until_expiry = (expires_at - Utc::now()).to_std().unwrap_or_default();
                    let wake = deadline.min(now + until_expiry + Duration::from_millis(50));
                    self.claim.wait_for_change(&resource_version, wake).await;
                }
            }
        }
    }
}

/// A held import Lease; renewed until released.
struct LeaseGuard {
    claim: LeaseClaim,
    /// A copy of the renewal's [`Renewal::held_until`], readable without the lock.
    held_until: watch::Receiver<Option<Instant>>,
    renewal: Arc<Mutex<Option<Renewal>>>,
}

#[async_trait::async_trait]
impl LockGuard for LeaseGuard {
    fn is_held(&self) -> bool {
        self.held_until
            .borrow()
            .is_some_and(|until| Instant::now() < until)
    }

    async fn release(self: Box<Self>) -> Result<(), LockError> {
        if let Some(renewal) = self.renewal.lock().await.take() {
            renewal.stop().await;
        }
        self.claim
            .release()
            .await
            .map_err(|error| LockError::Backend(Box::new(error)))
    }
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        let renewal = self.renewal.clone();
        let claim = self.claim.clone();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            let Some(renewal) = renewal.lock().await.take() else {
                return;
            };
            renewal.stop().await;
            if let Err(error) = claim.release().await {
                tracing::warn!(lease = claim.name(), error = %error, "failed to release dropped lease");
            }
        });
    }
}

//! The import lock: one import at a time per target cluster.
//!
//! The engine takes an [`ImportLock`] before it writes. Standalone, the configuration
//! database provides it (see [`crate::db`]); in a Kubernetes cluster the operator
//! provides a Lease-based one. Either way the engine also takes a transaction-level
//! lock inside the import transaction as a fence, so that two imports can never write
//! at once, even when an outer lock is lost.

use std::time::Duration;

/// The reason the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another import held the lock for the whole wait.
    #[error("timed out after {waited:?} waiting for the import lock held by {holder}")]
    Timeout {
        /// How long the caller waited.
        waited: Duration,
        /// The holder of the lock, when known ("another import" otherwise).
        holder: String,
    },
    /// The lock backend failed (database or API server unreachable).
    #[error("failed to take the import lock")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// A held lock. Dropping it releases the lock, but [`LockGuard::release`] does so
/// promptly and reports errors.
#[async_trait::async_trait]
pub trait LockGuard: Send + Sync {
    /// Tells whether the lock is still held, from state the guard keeps, without a
    /// request to the backend.
    ///
    /// A Kubernetes Lease is no longer held once another holder took it or its lease
    /// duration passed without a successful renewal. The standalone locks return
    /// `true`: they keep no such state, and the engine's fence covers a PostgreSQL
    /// lock session that ended early.
    fn is_held(&self) -> bool;

    /// Releases the lock.
    ///
    /// # Errors
    ///
    /// Returns [`LockError::Backend`] when the backend could not be reached.
    async fn release(self: Box<Self>) -> Result<(), LockError>;
}

/// A lock that serialises imports into one target.
#[async_trait::async_trait]
pub trait ImportLock: Send + Sync {
    /// Waits up to `timeout` for the lock and returns a guard that holds it.
    ///
    /// # Errors
    ///
    /// Returns [`LockError::Timeout`] when the wait ran out, and
    /// [`LockError::Backend`] when the backend failed.
    async fn acquire(&self, timeout: Duration) -> Result<Box<dyn LockGuard>, LockError>;
}

//! Locks that are always free, as an outer lock that was lost would be, so only the
//! engine's transaction fence keeps imports apart. [`LostLock`]'s guard reports the
//! lock as held, as a holder that has not yet noticed its loss would, and
//! [`KnownLostLock`]'s guard reports it as lost.

#![allow(dead_code)]

use std::time::Duration;

use tenant_operator::lock::{ImportLock, LockError, LockGuard};

/// An [`ImportLock`] that every caller acquires at once, without noticing the loss.
pub struct LostLock;

/// An [`ImportLock`] that every caller acquires at once and whose guard reports the
/// lock as no longer held.
pub struct KnownLostLock;

struct NoGuard {
    held: bool,
}

#[async_trait::async_trait]
impl ImportLock for LostLock {
    async fn acquire(&self, _timeout: Duration) -> Result<Box<dyn LockGuard>, LockError> {
        Ok(Box::new(NoGuard { held: true }))
    }
}

#[async_trait::async_trait]
impl ImportLock for KnownLostLock {
    async fn acquire(&self, _timeout: Duration) -> Result<Box<dyn LockGuard>, LockError> {
        Ok(Box::new(NoGuard { held: false }))
    }
}

#[async_trait::async_trait]
impl LockGuard for NoGuard {
    fn is_held(&self) -> bool {
        self.held
    }

    async fn release(self: Box<Self>) -> Result<(), LockError> {
        Ok(())
    }
}

//! A lock that is always free, as an outer lock that was lost would be, so only the
//! engine's transaction fence keeps imports apart.

use std::time::Duration;

use tenant_operator::lock::{ImportLock, LockError, LockGuard};

/// An [`ImportLock`] that every caller acquires at once.
pub struct LostLock;

struct NoGuard;

#[async_trait::async_trait]
impl ImportLock for LostLock {
    async fn acquire(&self, _timeout: Duration) -> Result<Box<dyn LockGuard>, LockError> {
        Ok(Box::new(NoGuard))
    }
}

#[async_trait::async_trait]
impl LockGuard for NoGuard {
    async fn release(self: Box<Self>) -> Result<(), LockError> {
        Ok(())
    }
}

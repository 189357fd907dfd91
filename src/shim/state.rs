//! The state shared by the request handlers, and the bookkeeping of running imports.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, OwnedMutexGuard, OwnedRwLockReadGuard, RwLock};

use super::auth::Authenticator;
use super::locking::ImportLocking;
use super::telemetry::Metrics;
use crate::db::Database;
use crate::engine::Engine;

/// Settings of archive uploads.
#[derive(Debug, Clone)]
pub struct UploadSettings {
    /// Maximum archive size in bytes; a larger body gets 413.
    pub max_bytes: u64,
    /// How long an upload may send no data before it is cut off with 408.
    pub read_timeout: Duration,
    /// How long a whole upload may take before it is cut off with 408.
    pub total_timeout: Duration,
    /// Folder of the temporary upload files.
    pub dir: PathBuf,
}

/// Everything a handler needs.
#[derive(Clone)]
pub struct AppState {
    /// The import engine.
    pub engine: Engine,
    /// The configuration database.
    pub db: Database,
    /// The lock each import takes.
    pub locking: ImportLocking,
    /// The authenticator, or `None` with `--insecure-no-auth`.
    pub auth: Option<Authenticator>,
    /// The shim's metrics.
    pub metrics: Metrics,
    /// Upload settings.
    pub upload: UploadSettings,
    /// Imports waiting and running in this process.
    pub imports: ImportQueue,
}

/// Serialises the imports of this process in arrival order and lets shutdown wait for
/// the running ones.
///
/// The queue is a fair mutex, so waiting requests are served in turn; the engine's
/// own lock still serialises imports across replicas. Every import task holds a read
/// guard of `running` until it ends; shutdown takes the write guard, which it gets
/// only when no import runs.
#[derive(Debug, Clone, Default)]
pub struct ImportQueue {
    turn: Arc<Mutex<()>>,
    running: Arc<RwLock<()>>,
}

impl ImportQueue {
    /// Marks an import as running until the returned guard is dropped.
    pub async fn start(&self) -> OwnedRwLockReadGuard<()> {
        Arc::clone(&self.running).read_owned().await
    }

    /// Waits up to `timeout` for this process's turn to import.
    pub async fn wait_turn(&self, timeout: Duration) -> Option<OwnedMutexGuard<()>> {
        tokio::time::timeout(timeout, Arc::clone(&self.turn).lock_owned())
            .await
            .ok()
    }

    /// Waits until no import runs.
    pub async fn wait_idle(&self) {
        let _idle = self.running.write().await;
    }
}

//! Fault-injection points for the crash and race tests. This is a test hook, not a
//! setting for operators.
//!
//! When the environment variable [`PAUSE_VARIABLE`] names a point, an import that
//! reaches that point writes the line [`MARKER`] followed by the point's name to
//! standard error, then waits until standard input delivers a line or reaches its
//! end. A test either kills the process there (SIGKILL) or writes a line to let the
//! import go on. The variable is read once per process. When it is unset, every point
//! costs one comparison and nothing else.
//!
//! The points, in the order an import reaches them:
//!
//! | point | where the import is |
//! |---|---|
//! | `lock:acquired` | holds the outer lock, no transaction yet |
//! | `fence:taken` | transaction open, fence held |
//! | `journal:replay-checked` | import id looked up inside the transaction |
//! | `tenant:checked` | tenant GUID, URL and name found free |
//! | `objects:N` | object batch N (from 1) written to the staging table |
//! | `objects:staged` | every object staged |
//! | `objects:checked` | no duplicate GUID in the archive, none in the target |
//! | `tenant:inserted` | tenant row written |
//! | `objects:inserted` | objects copied from the staging table |
//! | `numbers:loaded` | the ranges loaded into a temporary table |
//! | `numbers:skipped` | the ranges holding an owned number removed |
//! | `numbers:assigned` | the free numbers assigned |
//! | `numbers:created` | the missing numbers created |
//! | `numbers:done` | every range taken or skipped |
//! | `reporting:empty` | reporting database created, schema not yet written |
//! | `reporting:schema` | reporting schema written, its transaction not committed |
//! | `reporting:created` | reporting database created with its schema |
//! | `reporting:recorded` | reporting database name stored in the tenant row |
//! | `journal:before` | journal row not yet written |
//! | `journal:written` | journal row written |
//! | `commit:before` | everything written, transaction not committed |
//! | `commit:after` | committed, outer lock still held |
//! | `lock:released` | committed, outer lock released |
//!
//! [`BATCH_SIZE_VARIABLE`] sets the number of objects per staging batch, so that a
//! small test archive gives many `objects:N` points.

use std::io::{BufRead, Write};
use std::sync::OnceLock;

/// Environment variable naming the point at which an import pauses.
pub const PAUSE_VARIABLE: &str = "TENANT_OPERATOR_FAULT_PAUSE";

/// Environment variable setting the objects per staging batch, from 1 up to the
/// engine's own batch size.
pub const BATCH_SIZE_VARIABLE: &str = "TENANT_OPERATOR_FAULT_BATCH_SIZE";

/// Start of the line written to standard error when an import pauses; the point's
/// name follows it.
pub const MARKER: &str = "tenant-operator fault point reached: ";

static PAUSE_POINT: OnceLock<Option<String>> = OnceLock::new();

static BATCH_SIZE: OnceLock<Option<usize>> = OnceLock::new();

/// Pauses the import when [`PAUSE_VARIABLE`] names `point`.
pub(super) async fn point(point: &str) {
    if pause_point() == Some(point) {
        pause(point.to_owned()).await;
    }
}

/// Pauses the import when [`PAUSE_VARIABLE`] names `<prefix>:<index>`.
pub(super) async fn indexed_point(prefix: &str, index: u64) {
    let Some(configured) = pause_point() else {
        return;
    };
    let name = format!("{prefix}:{index}");
    if configured == name {
        pause(name).await;
    }
}

/// Returns the objects per staging batch: `default`, or the value of
/// [`BATCH_SIZE_VARIABLE`] limited to `1..=default`.
pub(super) fn batch_size(default: usize) -> usize {
    let configured = BATCH_SIZE.get_or_init(|| {
        std::env::var(BATCH_SIZE_VARIABLE)
            .ok()
            .and_then(|value| value.trim().parse().ok())
    });
    configured.map_or(default, |size| size.clamp(1, default))
}

fn pause_point() -> Option<&'static str> {
    PAUSE_POINT
        .get_or_init(|| {
            std::env::var(PAUSE_VARIABLE)
                .ok()
                .filter(|value| !value.is_empty())
        })
        .as_deref()
}

async fn pause(point: String) {
    tracing::warn!(point, "import paused at a fault-injection point");
    write_marker(&point);
    let waited = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)
    })
    .await;
    tracing::warn!(
        point,
        resumed = waited.is_ok(),
        "import resumed after a fault-injection point"
    );
}

/// Writes the marker line. A failed write is ignored because the test waiting for the
/// marker then times out and reports that.
fn write_marker(point: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "{MARKER}{point}");
    let _ = stderr.flush();
}

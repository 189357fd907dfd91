//! The hostile archive corpus sent to `tenant-operator serve` as uploads.
//!
//! One server process receives the whole corpus, one case after another, except that
//! a case with its own archive limits gets a server started with them. Every upload
//! must get 400 `invalid_archive` with a message that names the problem, the same
//! phrases that the command-line test checks. The one exception is a body over the
//! upload limit, which gets 413 `payload_too_large` before the archive is read.
//! After each case the database dump must be byte-for-byte the seeded one, and no
//! reporting database may appear. The server's temporary folder (its upload folder and
//! `TMPDIR`) must never have held much more than the uploaded archive, and must be
//! empty again. The server's memory may grow by at most [`MAX_RSS_GROWTH_KIB`] during one
//! upload, and after the corpus it must still respond to `/healthz`.

#[path = "support/archives.rs"]
mod archives;
#[path = "support/engine_fixtures.rs"]
mod engine_fixtures;
#[path = "support/hostile.rs"]
mod hostile;
#[path = "support/resources.rs"]
mod resources;
#[path = "support/shim.rs"]
mod shim;
#[path = "support/snapshot.rs"]
mod snapshot;
mod support;

use std::path::Path;

use hostile::{BuiltCase, OptionGroup};
use resources::{
    FolderSampler, folder_bytes, high_water_mark_kib, reset_high_water_mark, status_path,
};
use shim::{Shim, ShimOptions};
use snapshot::{Snapshot, seeded_database};
use support::{Backend, TestDatabase};

/// Seconds an upload may wait for the import lock. No hostile archive should take the
/// lock for long, so only a hang would reach it.
const LOCK_TIMEOUT_SECONDS: u64 = 60;

/// Growth of the server's resident memory allowed during one rejected upload, from
/// before the request to the peak: 100 MiB, the bound that a whole rejected
/// command-line import meets.
const MAX_RSS_GROWTH_KIB: u64 = 100 * 1024;

/// Bytes allowed in the temporary folder beyond the spooled upload. Reading a spooled
/// archive writes no further temporary files, so anything sizeable here is a finding.
const MAX_EXTRA_TEMP_BYTES: u64 = 1 << 20;

/// Cases whose archive is larger than the server's upload limit (`--archive-max-bytes`).
/// The server stops reading the body and returns 413, the status for a body over a
/// size limit, before the archive is read. The command line and the controller report
/// the same archive as Invalid.
const OVER_UPLOAD_LIMIT: &[&str] = &["archive_over_size_limit"];

#[tokio::test]
async fn corpus_rejected_over_http_on_postgres() {
    check_corpus(Backend::Postgres).await;
}

#[tokio::test]
async fn corpus_rejected_over_http_on_sqlite() {
    check_corpus(Backend::Sqlite).await;
}

/// Seeds one database, then sends every case to a server on it.
async fn check_corpus(backend: Backend) {
    let test_db = seeded_database(backend).await;
    let seeded = Snapshot::take(&test_db).await;
    let archives = tempfile::tempdir().expect("archive folder");

    let groups = hostile::build_corpus_by_options(archives.path());
    let mut checked = 0;
    for group in &groups {
        checked += check_group(&test_db, group, &seeded).await;
    }
    assert_eq!(checked, hostile::CORPUS.len(), "{backend:?}: cases checked");
}

/// Starts a server with the group's options and sends it the group's cases one after
/// another. Returns the number of cases checked.
async fn check_group(test_db: &TestDatabase, group: &OptionGroup, seeded: &Snapshot) -> usize {
    let temp = tempfile::tempdir().expect("server temporary folder");
    let options = ShimOptions {
        args: group.options.clone(),
        temp_dir: Some(temp.path().to_path_buf()),
        ..ShimOptions::default()
    };
    let shim = Shim::start(&test_db.url, &test_db.reporting_prefix, options).await;
    let api = shim.client().await;
    let sampler = FolderSampler::start(temp.path());

    let mut largest_spool = 0;
    for case in &group.cases {
        let what = format!("{} on {:?}", case.name, test_db.backend);
        sampler.start_period();
        let resident_kib = reset_high_water_mark(shim.pid());
        let response = api.import(&case.archive.path, LOCK_TIMEOUT_SECONDS).await;
        let status = response.status().as_u16();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        let peak_kib = high_water_mark_kib(&status_path(shim.pid())).expect("server status");
        let growth_kib = peak_kib.saturating_sub(resident_kib);
        let peak_temp_bytes = sampler.peak_bytes();
        eprintln!(
            "{what}: {status}, memory growth {growth_kib} KiB, temporary bytes \
             {peak_temp_bytes}, body {body}"
        );

        check_response(case, &what, status, &body);
        assert!(
            growth_kib < MAX_RSS_GROWTH_KIB,
            "{what}: the server grew by {growth_kib} KiB, limit {MAX_RSS_GROWTH_KIB} KiB"
        );
        check_temp_folder(&case.archive.path, temp.path(), &what, peak_temp_bytes);
        seeded.assert_unchanged(test_db, &what).await;
        largest_spool = largest_spool.max(peak_temp_bytes);
    }

    let health = shim
        .http
        .get(shim.url("/healthz"))
        .send()
        .await
        .expect("GET /healthz after the corpus");
    assert_eq!(health.status(), 200, "/healthz after the corpus");
    if group.cases.len() > 1 {
        // Some cases take seconds to reject, so the sampler must have measured their
        // spooled uploads. Otherwise the temporary folder bound could never fail.
        assert!(largest_spool > 0, "no spooled upload was ever sampled");
    }
    group.cases.len()
}

/// Checks the status, the error code and the message of one rejected upload.
fn check_response(case: &BuiltCase, what: &str, status: u16, body: &serde_json::Value) {
    let (expected_status, expected_code) = if OVER_UPLOAD_LIMIT.contains(&case.name) {
        (413, "payload_too_large")
    } else {
        (400, "invalid_archive")
    };
    assert_eq!(status, expected_status, "{what}: status; body {body}");
    assert_eq!(body["error"], expected_code, "{what}: error code");
    let message = body["message"].as_str().unwrap_or_default();
    case.archive.assert_message(message, what);
}

/// Checks that the temporary folder held at most the uploaded archive and a little
/// more, and that the spooled upload is gone now that the response has arrived.
fn check_temp_folder(archive: &Path, temp: &Path, what: &str, peak_temp_bytes: u64) {
    let archive_bytes = std::fs::metadata(archive).expect("archive size").len();
    assert!(
        peak_temp_bytes <= archive_bytes + MAX_EXTRA_TEMP_BYTES,
        "{what}: {peak_temp_bytes} bytes in the temporary folder for an archive of \
         {archive_bytes} bytes"
    );
    assert_eq!(
        folder_bytes(temp),
        0,
        "{what}: the temporary folder is not empty after the response"
    );
}

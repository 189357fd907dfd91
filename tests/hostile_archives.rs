//! Hostile archives run through the real binary on PostgreSQL and SQLite.
//!
//! Each case seeds a fresh database with one imported tenant, a trunk and free numbers
//! that the hostile archive's ranges cover, then runs `tenant-operator import` on the
//! archive as a process. The import must exit with code 5 and outcome Invalid, and its
//! message must name the problem. A dump of the database must be byte-for-byte the
//! same afterwards, and no reporting database may appear. The process must stay under
//! [`MAX_PEAK_RSS_KIB`] of memory and [`MAX_TEMP_BYTES`] in its temporary folder.

#[path = "support/archives.rs"]
mod archives;
#[path = "support/engine_fixtures.rs"]
mod engine_fixtures;
#[path = "support/hostile.rs"]
mod hostile;
#[path = "support/resources.rs"]
mod resources;
#[path = "support/snapshot.rs"]
mod snapshot;
mod support;

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hostile::BuildCase;
use resources::{SAMPLE_INTERVAL, folder_bytes, high_water_mark_kib, status_path};
use snapshot::{Snapshot, query_text, seeded_database};
use support::{Backend, TestDatabase};

/// Peak resident memory allowed for one rejected import: 100 MiB, against bombs that
/// inflate to 3 GiB and 10 MB strings.
const MAX_PEAK_RSS_KIB: u64 = 100 * 1024;

/// Bytes allowed in the import's temporary folder at any sampled moment. Importing a
/// local file spools nothing, so anything sizeable here is a finding.
const MAX_TEMP_BYTES: u64 = 1 << 20;

/// Wall time allowed for one rejected import; a bomb must be rejected from the central
/// directory or early in the stream.
const MAX_IMPORT_TIME: Duration = Duration::from_secs(20);

/// What one run of the binary produced.
struct ImportRun {
    code: i32,
    report: serde_json::Value,
    stderr: String,
    peak_rss_kib: u64,
    peak_temp_bytes: u64,
    elapsed: Duration,
}

/// Declares one test per case and backend, named `CASE::postgres` and `CASE::sqlite`.
macro_rules! hostile_cases {
    ($($case:ident),* $(,)?) => {$(
        mod $case {
            use super::{Backend, check_rejected};

            #[tokio::test]
            async fn postgres() {
                check_rejected(stringify!($case), crate::hostile::$case, Backend::Postgres).await;
            }

            #[tokio::test]
            async fn sqlite() {
                check_rejected(stringify!($case), crate::hostile::$case, Backend::Sqlite).await;
            }
        }
    )*};
}

crate::hostile_case_names!(hostile_cases);

/// Builds the case's archive, imports it into a seeded database and checks that it is
/// rejected without a trace and within the resource bounds.
async fn check_rejected(case: &str, build: BuildCase, backend: Backend) {
    let test_db = seeded_database(backend).await;
    let dir = tempfile::tempdir().expect("archive folder");
    let archive = build(dir.path());

    let before = Snapshot::take(&test_db).await;
    let run = run_import(&test_db, &archive.path, &archive.options);

    let message = run.report["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    eprintln!(
        "{case} on {backend:?}: exit {}, {} ms, peak RSS {} KiB, temporary bytes {}, message: {message}",
        run.code,
        run.elapsed.as_millis(),
        run.peak_rss_kib,
        run.peak_temp_bytes,
    );

    assert_eq!(
        run.code, 5,
        "{case} on {backend:?}: exit code; report {}, stderr {}",
        run.report, run.stderr
    );
    assert_eq!(
        run.report["outcome"], "Invalid",
        "{case} on {backend:?}: outcome"
    );
    archive.assert_message(&message, &format!("{case} on {backend:?}"));
    before
        .assert_unchanged(&test_db, &format!("{case} on {backend:?}"))
        .await;
    assert!(
        run.peak_rss_kib > 0,
        "{case} on {backend:?}: memory was never sampled"
    );
    assert!(
        run.peak_rss_kib < MAX_PEAK_RSS_KIB,
        "{case} on {backend:?}: peak RSS {} KiB, limit {MAX_PEAK_RSS_KIB} KiB",
        run.peak_rss_kib
    );
    assert!(
        run.peak_temp_bytes <= MAX_TEMP_BYTES,
        "{case} on {backend:?}: {} bytes in the temporary folder, limit {MAX_TEMP_BYTES}",
        run.peak_temp_bytes
    );
    assert!(
        run.elapsed < MAX_IMPORT_TIME,
        "{case} on {backend:?}: import took {:?}",
        run.elapsed
    );
}

/// A tenant name that reads as SQL is valid: it is imported as plain text and every
/// table survives.
#[tokio::test]
async fn sql_tenant_name_is_plain_text() {
    for backend in [Backend::Postgres, Backend::Sqlite] {
        let test_db = seeded_database(backend).await;
        let dir = tempfile::tempdir().expect("archive folder");
        let archive = hostile::sql_in_name(dir.path());

        let run = run_import(&test_db, &archive, &[]);
        assert_eq!(run.code, 0, "{backend:?}: {}", run.report);
        assert_eq!(run.report["outcome"], "Imported", "{backend:?}");

        let names = query_text(&test_db, "SELECT name FROM tenants ORDER BY name_key").await;
        assert_eq!(
            names,
            vec![hostile::SQL_NAME.to_owned(), "seed Care".to_owned()],
            "{backend:?}"
        );
    }
}

/// Runs `tenant-operator import --output json` on `archive` with a fresh temporary
/// folder, sampling the child's peak memory and the folder's size until it exits.
fn run_import(test_db: &TestDatabase, archive: &Path, options: &[String]) -> ImportRun {
    let temp = tempfile::tempdir().expect("temporary folder");
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tenant-operator"))
        .arg("import")
        .args(["--output", "json", "--database-url", &test_db.url])
        .args(options)
        .arg(archive)
        .env("REPORTING_DATABASE_PREFIX", &test_db.reporting_prefix)
        .env("TMPDIR", temp.path())
        .env_remove("DATABASE_URL")
        .env_remove("REPORTING_DATABASE_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tenant-operator");

    let stdout = read_in_background(child.stdout.take().expect("stdout"));
    let stderr = read_in_background(child.stderr.take().expect("stderr"));
    let status_path = status_path(child.id());
    let mut peak_rss_kib = 0;
    let mut peak_temp_bytes = 0;
    let status = loop {
        if let Some(rss) = high_water_mark_kib(&status_path) {
            peak_rss_kib = peak_rss_kib.max(rss);
        }
        peak_temp_bytes = peak_temp_bytes.max(folder_bytes(temp.path()));
        if let Some(status) = child.try_wait().expect("wait for tenant-operator") {
            break status;
        }
        if started.elapsed() > MAX_IMPORT_TIME * 3 {
            let _ = child.kill();
            let _ = child.wait();
            panic!("tenant-operator import of {} hung", archive.display());
        }
        std::thread::sleep(SAMPLE_INTERVAL);
    };
    let elapsed = started.elapsed();

    let stdout = stdout.join().expect("stdout reader");
    let stderr = stderr.join().expect("stderr reader");
    let report = serde_json::from_str(&stdout)
        .unwrap_or_else(|_| panic!("no JSON report; stdout {stdout:?}, stderr {stderr:?}"));
    ImportRun {
        code: status.code().unwrap_or(-1),
        report,
        stderr,
        peak_rss_kib,
        peak_temp_bytes,
        elapsed,
    }
}

fn read_in_background(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

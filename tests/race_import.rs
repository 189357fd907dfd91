//! Imports racing each other as separate `import` processes: the same archive ten
//! times, one import id five times, tenants whose access-number ranges overlap, and
//! an import whose outer lock is lost while it writes. The import journal's `[started_at, finished_at]`
//! intervals of committed imports must never overlap.

#[path = "support/crash.rs"]
mod crash;
#[path = "support/engine_fixtures.rs"]
mod engine_fixtures;
#[path = "support/import_results.rs"]
mod import_results;
#[path = "support/lost_lock.rs"]
mod lost_lock;
mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sqlx::Connection;

use crash::{ImportCommand, wait};
use engine_fixtures::TenantFixture;
use import_results::{assert_intervals_disjoint, fence_waiter, migrated, project, serial_result};
use lost_lock::LostLock;
use support::{Backend, TestDatabase};
use tenant_operator::archive::Limits;
use tenant_operator::db::{Database, STANDALONE_LOCK_KEY};
use tenant_operator::engine::{Engine, ImportRequest, Outcome, ReportingConfig};

const BACKENDS: [Backend; 2] = [Backend::Postgres, Backend::Sqlite];

/// Every order of three imports.
const ORDERS: [[usize; 3]; 6] = [
    [0, 1, 2],
    [0, 2, 1],
    [1, 0, 2],
    [1, 2, 0],
    [2, 0, 1],
    [2, 1, 0],
];

#[tokio::test]
async fn ten_processes_import_once() {
    for backend in BACKENDS {
        let test_db = migrated(backend).await;
        race_ten_processes(&test_db, "ten-racers").await;
    }
}

/// The first use of a database migrates it, so ten processes that start on a fresh
/// one also race to create the schema.
#[tokio::test]
async fn ten_processes_on_fresh_database() {
    for backend in BACKENDS {
        let test_db = TestDatabase::new(backend).await;
        race_ten_processes(&test_db, "fresh-racers").await;
    }
}

/// Retries that run at once with one import id, as a retry loop that started twice
/// would: one imports, the others return its recorded report.
#[tokio::test]
async fn same_import_id_imports_once() {
    for backend in BACKENDS {
        let test_db = migrated(backend).await;
        let dir = tempfile::tempdir().expect("archive folder");
        let fixture = TenantFixture::new("same-id", 100).with_range("5558000", "5558009", "text");
        let archive = fixture.write_v3(dir.path());
        let command = ImportCommand::new(&test_db.url, &test_db.reporting_prefix, &archive)
            .import_id("same-id-retry");

        let children: Vec<_> = (0..5).map(|_| command.start()).collect();
        let finished: Vec<_> = children.into_iter().map(wait).collect();

        for run in &finished {
            assert_eq!(run.code, 0, "{backend:?}: {}\n{}", run.report, run.stderr);
            assert_eq!(run.report["outcome"], "Imported", "{backend:?}");
        }
        let fresh = finished
            .iter()
            .filter(|run| run.report["replayed"] == false)
            .count();
        assert_eq!(fresh, 1, "{backend:?}: imports that were not replays");
        let projection = project(&test_db.url).await;
        assert_eq!(projection.reports.len(), 1, "{backend:?}: journal rows");
        assert_eq!(projection.numbers.len(), 10, "{backend:?}");
        assert_eq!(test_db.reporting_databases().await.len(), 1, "{backend:?}");
    }
}

#[tokio::test]
async fn overlapping_tenants_match_a_serial_order() {
    let dir = tempfile::tempdir().expect("archive folder");
    let archives = overlapping_archives(dir.path());
    let mut serial = Vec::new();
    for order in ORDERS {
        let ordered: Vec<&Path> = order
            .iter()
            .map(|index| archives[*index].as_path())
            .collect();
        serial.push(serial_result(&ordered).await);
    }

    for backend in BACKENDS {
        let test_db = migrated(backend).await;
        let children: Vec<_> = archives
            .iter()
            .map(|archive| {
                ImportCommand::new(&test_db.url, &test_db.reporting_prefix, archive).start()
            })
            .collect();
        let finished: Vec<_> = children.into_iter().map(wait).collect();
        for run in &finished {
            assert_eq!(run.code, 0, "{backend:?}: {}\n{}", run.report, run.stderr);
        }

        let actual = project(&test_db.url).await;
        assert!(
            serial.contains(&actual),
            "{backend:?}: the concurrent result matches no serial order: {actual:#?}"
        );
        assert_intervals_disjoint(&test_db.url, backend).await;
    }
}

/// Process A loses its standalone lock after taking the fence, process B takes the
/// lock and must wait at the fence until A has committed.
#[tokio::test]
async fn lost_lock_waits_at_fence() {
    let test_db = migrated(Backend::Postgres).await;
    let dir = tempfile::tempdir().expect("archive folder");
    let first = TenantFixture::new("lost-lock-a", 50).with_range("5554000", "5554019", "voice");
    let second = TenantFixture::new("lost-lock-b", 50).with_range("5554010", "5554029", "voice");
    let first_archive = first.write_v3(dir.path());
    let second_archive = second.write_v3(dir.path());
    let mut conn = sqlx::PgConnection::connect(&test_db.url)
        .await
        .expect("connect");

    let mut holder = ImportCommand::new(&test_db.url, &test_db.reporting_prefix, &first_archive)
        .start_paused("fence:taken");
    assert!(
        holder.reached("fence:taken"),
        "first import: {}",
        holder.stderr()
    );
    let terminated: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' \
         AND granted AND objsubid = 1 AND ((classid::bigint << 32) | objid::bigint) = $1 \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .bind(STANDALONE_LOCK_KEY)
    .fetch_all(&mut conn)
    .await
    .expect("end the first import's lock session");
    assert_eq!(terminated, [true], "the first import's lock session");

    let mut next = ImportCommand::new(&test_db.url, &test_db.reporting_prefix, &second_archive)
        .start_paused("lock:acquired");
    assert!(
        next.reached("lock:acquired"),
        "second import: {}",
        next.stderr()
    );
    let waiting_started = Instant::now();
    let resumed_next = std::thread::spawn(move || next.resume());
    while !fence_waiter(&mut conn).await {
        if resumed_next.is_finished() {
            let finished = resumed_next.join().expect("second import thread");
            panic!(
                "the second import ended while the first held the fence: {}\n{}",
                finished.report, finished.stderr
            );
        }
        assert!(
            waiting_started.elapsed() < Duration::from_secs(30),
            "the second import never waited at the fence"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let first_done = holder.resume();
    let second_done = resumed_next.join().expect("second import thread");
    assert_eq!(first_done.code, 0, "first: {}", first_done.stderr);
    assert_eq!(second_done.code, 0, "second: {}", second_done.stderr);
    assert_eq!(second_done.report["accessNumbers"]["skipped"], 20);
    assert_intervals_disjoint(&test_db.url, Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fence_without_lock_keeps_journal_disjoint() {
    for backend in BACKENDS {
        let test_db = migrated(backend).await;
        let dir = tempfile::tempdir().expect("archive folder");
        let db = Database::connect(&test_db.url).await.expect("connect");
        let reporting = ReportingConfig {
            server_url: None,
            name_prefix: test_db.reporting_prefix.clone(),
        };
        let engine = Engine::new(db, Limits::default(), reporting);
        let mut tasks = Vec::new();
        for index in 0..6 {
            let first = 5555000 + index * 10;
            let fixture = TenantFixture::new(&format!("fenced-{index}"), 150).with_range(
                &first.to_string(),
                &(first + 14).to_string(),
                "voice",
            );
            let request = ImportRequest {
                archive: fixture.write_v3(dir.path()),
                import_id: Some(format!("fenced-{index}")),
                lock_timeout: Duration::from_secs(60),
            };
            let engine = engine.clone();
            tasks.push(tokio::spawn(async move {
                engine.import(&request, &LostLock).await
            }));
        }
        for task in tasks {
            let report = task.await.expect("import task").expect("import runs");
            assert_eq!(
                report.outcome,
                Outcome::Imported,
                "{backend:?}: {}",
                report.message
            );
        }
        assert_intervals_disjoint(&test_db.url, backend).await;
    }
}

/// Runs ten processes that import the same archive at once, and checks that one
/// imported it and nine met a conflict.
async fn race_ten_processes(test_db: &TestDatabase, label: &str) {
    let backend = test_db.backend;
    let dir = tempfile::tempdir().expect("archive folder");
    let fixture = TenantFixture::new(label, 200).with_range("5553000", "5553049", "voice");
    let archive = fixture.write_v3(dir.path());
    let command = ImportCommand::new(&test_db.url, &test_db.reporting_prefix, &archive);

    let children: Vec<_> = (0..10).map(|_| command.start()).collect();
    let finished: Vec<_> = children.into_iter().map(wait).collect();

    let codes: Vec<i32> = finished.iter().map(|run| run.code).collect();
    let failures: Vec<&str> = finished
        .iter()
        .filter(|run| run.code != 0 && run.code != 3)
        .map(|run| run.stderr.as_str())
        .collect();
    assert!(
        failures.is_empty(),
        "{backend:?}: failed runs: {failures:#?}"
    );
    let imported = codes.iter().filter(|code| **code == 0).count();
    assert_eq!(imported, 1, "{backend:?}: exit codes {codes:?}");
    let conflicts = codes.iter().filter(|code| **code == 3).count();
    assert_eq!(conflicts, 9, "{backend:?}: exit codes {codes:?}");
    for run in finished.iter().filter(|run| run.code == 3) {
        assert_eq!(run.report["outcome"], "Conflict", "{backend:?}");
    }
    let projection = project(&test_db.url).await;
    let tenant = format!("{}|200", fixture.url);
    assert_eq!(projection.tenants, [tenant], "{backend:?}");
    assert_eq!(projection.reports.len(), 1, "{backend:?}");
    assert_eq!(projection.numbers.len(), 50, "{backend:?}");
    assert_eq!(test_db.reporting_databases().await.len(), 1, "{backend:?}");
    assert_intervals_disjoint(&test_db.url, backend).await;
}

/// Three tenants: the second one's shared range overlaps the first's and the
/// third's, and each also has a range of its own.
fn overlapping_archives(dir: &Path) -> Vec<PathBuf> {
    let tenants = [
        TenantFixture::new("overlap-a", 30)
            .with_range("5556000", "5556019", "voice")
            .with_range("5557000", "5557004", "text"),
        TenantFixture::new("overlap-b", 30)
            .with_range("5556010", "5556029", "voice")
            .with_range("5557100", "5557104", "text"),
        TenantFixture::new("overlap-c", 30)
            .with_range("5556025", "5556039", "voice_text")
            .with_range("5557200", "5557204", "text"),
    ];
    tenants.iter().map(|tenant| tenant.write_v3(dir)).collect()
}

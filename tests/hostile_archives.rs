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
mod support;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sqlx::Connection;
use tokio::sync::OnceCell;

use engine_fixtures::TenantFixture;
use hostile::BuildCase;
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

/// How often the child's memory and temporary folder are sampled.
const SAMPLE_INTERVAL: Duration = Duration::from_millis(2);

/// The seeded PostgreSQL database as a `pg_dump` script, made once per test process.
static POSTGRES_SEED: OnceCell<String> = OnceCell::const_new();

/// The seeded SQLite database file, made once per test process.
static SQLITE_SEED: OnceCell<Vec<u8>> = OnceCell::const_new();

/// What one run of the binary produced.
struct ImportRun {
    code: i32,
    report: serde_json::Value,
    stderr: String,
    peak_rss_kib: u64,
    peak_temp_bytes: u64,
    elapsed: Duration,
}

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

hostile_cases! {
    bomb_declared_size,
    bomb_lying_size,
    bomb_ratio,
    bomb_total_size,
    nested_archive_by_name,
    nested_archive_by_content,
    huge_entry_count,
    name_traversal,
    name_absolute,
    name_backslash,
    name_drive_letter,
    name_invalid_utf8,
    name_duplicate,
    name_duplicate_v2,
    name_duplicate_v1,
    name_duplicate_fake_end_record,
    name_differs_in_case,
    central_directory_truncated,
    file_truncated,
    crc_mismatch_v2,
    crc_mismatch_v1,
    manifest_checksum_mismatch,
    manifest_size_mismatch,
    zip_size_mismatch,
    manifest_file_unlisted,
    invalid_utf8_json,
    invalid_utf8_csv,
    json_deep_document,
    json_deep_line,
    long_object_name,
    long_tenant_name,
    long_tenant_settings,
    long_manifest,
    long_attribute_v2,
    long_attribute_v1,
    number_too_long,
    number_too_long_v1,
    range_count_overflow,
    range_count_huge,
    ranges_overlap,
    ranges_many_overlap,
    ranges_many_overlap_v2,
    range_huge,
    guid_repeated_object,
    object_type_mismatch,
    guid_braced_v3,
    guid_upper_case_v3,
    guid_unbraced_v1,
    guid_lower_case_v1,
    guid_not_uuid,
    guid_empty,
    future_format_version,
    future_schema_version,
    missing_v3_manifest,
    missing_v3_tenant,
    missing_v3_access_numbers,
    missing_v2_tenant,
    missing_v1_properties,
    missing_v1_access_numbers,
    missing_v1_objects,
    sql_in_url,
    control_character_in_name,
    control_character_in_url,
    control_character_in_name_v1,
}

/// Builds the case's archive, imports it into a seeded database and checks that it is
/// rejected without a trace and within the resource bounds.
async fn check_rejected(case: &str, build: BuildCase, backend: Backend) {
    let test_db = seeded_database(backend).await;
    let dir = tempfile::tempdir().expect("archive folder");
    let archive = build(dir.path());

    let dump_before = dump(&test_db).await;
    let reporting_before = test_db.reporting_databases().await;
    let run = run_import(&test_db, &archive.path, &archive.options);
    let dump_after = dump(&test_db).await;
    let reporting_after = test_db.reporting_databases().await;

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
    for phrase in &archive.phrases {
        assert!(
            message.to_lowercase().contains(&phrase.to_lowercase()),
            "{case} on {backend:?}: message {message:?} lacks {phrase:?}"
        );
    }
    assert_same_dump(case, backend, &dump_before, &dump_after);
    assert_eq!(
        reporting_before, reporting_after,
        "{case} on {backend:?}: reporting databases changed"
    );
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

/// Creates a fresh database with the content of the seeded one. The seed is made by the
/// binary once per backend and copied into each case's database, because importing it
/// for every case would double the run time of this file.
async fn seeded_database(backend: Backend) -> TestDatabase {
    let test_db = TestDatabase::new(backend).await;
    match backend {
        Backend::Postgres => {
            let script = POSTGRES_SEED.get_or_init(capture_postgres_seed).await;
            let mut psql = Command::new("psql")
                .args(["--quiet", "--no-psqlrc", "--set", "ON_ERROR_STOP=1"])
                .args(["--dbname", &test_db.url])
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .spawn()
                .expect("run psql");
            std::io::Write::write_all(&mut psql.stdin.take().expect("stdin"), script.as_bytes())
                .expect("send the seed script to psql");
            let status = psql.wait().expect("wait for psql");
            assert!(status.success(), "restoring the seed failed: {status}");
        }
        Backend::Sqlite => {
            let file = SQLITE_SEED.get_or_init(capture_sqlite_seed).await;
            std::fs::write(sqlite_path(&test_db), file).expect("copy the seed database");
        }
    }

    let free_numbers = query_text(
        &test_db,
        "SELECT CAST(count(*) AS TEXT) FROM access_numbers WHERE tenant_guid IS NULL",
    )
    .await;
    assert_eq!(free_numbers, vec!["4".to_owned()], "{backend:?}: seed copy");
    test_db
}

async fn capture_postgres_seed() -> String {
    let template = TestDatabase::new(Backend::Postgres).await;
    let dir = tempfile::tempdir().expect("seed folder");
    seed(&template, dir.path()).await;
    let output = Command::new("pg_dump")
        .args(["--no-owner", "--no-privileges", "--dbname", &template.url])
        .output()
        .expect("run pg_dump");
    assert!(output.status.success(), "pg_dump of the seed failed");
    String::from_utf8(output.stdout).expect("UTF-8 dump")
}

async fn capture_sqlite_seed() -> Vec<u8> {
    let template = TestDatabase::new(Backend::Sqlite).await;
    let dir = tempfile::tempdir().expect("seed folder");
    seed(&template, dir.path()).await;
    let mut connection = sqlx::SqliteConnection::connect(&template.url)
        .await
        .expect("connect");
    // Moves every page from the write-ahead log into the file, so the file alone is
    // the whole database.
    sqlx::raw_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&mut connection)
        .await
        .expect("checkpoint the seed database");
    connection.close().await.expect("close");
    std::fs::read(sqlite_path(&template)).expect("read the seed database")
}

fn sqlite_path(test_db: &TestDatabase) -> PathBuf {
    PathBuf::from(
        test_db
            .url
            .strip_prefix("sqlite://")
            .expect("an sqlite:// URL"),
    )
}

/// Imports one valid tenant with a range, then adds a trunk and free numbers inside the
/// ranges of every base archive of the corpus, so a partial write would show.
async fn seed(test_db: &TestDatabase, dir: &Path) {
    let seed_dir = dir.join("seed");
    std::fs::create_dir(&seed_dir).expect("seed folder");
    let fixture = TenantFixture::new("seed", 4).with_range("16175550000", "16175550009", "voice");
    let archive = fixture.write_v3(&seed_dir);
    let run = run_import(test_db, &archive, &[]);
    assert_eq!(
        run.code, 0,
        "seed import failed: {} {}",
        run.report, run.stderr
    );

    let statements = "
        INSERT INTO trunks (name, domain, carrier) VALUES ('carrier-a', 'sip.carrier-a.test', 'Carrier A');
        INSERT INTO access_numbers (digits, value, tenant_guid, trunk_id, media) VALUES
            (11, 14155550150, NULL, (SELECT id FROM trunks WHERE name = 'carrier-a'), 'voice'),
            (11, 12125550005, NULL, NULL, 'text'),
            (11, 16505550003, NULL, NULL, 'voice_text'),
            (12, 442071838760, NULL, NULL, 'voice');
    ";
    match test_db.backend {
        Backend::Postgres => {
            let mut connection = sqlx::PgConnection::connect(&test_db.url)
                .await
                .expect("connect");
            sqlx::raw_sql(statements)
                .execute(&mut connection)
                .await
                .expect("seed free numbers");
        }
        Backend::Sqlite => {
            let mut connection = sqlx::SqliteConnection::connect(&test_db.url)
                .await
                .expect("connect");
            sqlx::raw_sql(statements)
                .execute(&mut connection)
                .await
                .expect("seed free numbers");
        }
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
    let status_path = PathBuf::from(format!("/proc/{}/status", child.id()));
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

/// Reads `VmHWM`, the peak resident set size in KiB, from a `/proc/PID/status` file.
/// Returns `None` once the process has exited.
fn high_water_mark_kib(status_path: &Path) -> Option<u64> {
    let status = std::fs::read_to_string(status_path).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Sums the sizes of every file under `dir`.
fn folder_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut total = 0;
    for entry in entries.flatten() {
        let Ok(metadata) = entry.metadata() else {
            continue;
        };
        total += if metadata.is_dir() {
            folder_bytes(&entry.path())
        } else {
            metadata.len()
        };
    }
    total
}

/// Dumps the whole configuration database, schema and data, deterministically.
async fn dump(test_db: &TestDatabase) -> String {
    match test_db.backend {
        Backend::Postgres => {
            let output = Command::new("pg_dump")
                .args(["--inserts", "--no-owner", "--no-privileges", "--dbname"])
                .arg(&test_db.url)
                .output()
                .expect("run pg_dump");
            assert!(
                output.status.success(),
                "pg_dump failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            // pg_dump 15.14 and later fence the script with `\restrict KEY` lines
            // whose key is random per run; they are not database content.
            String::from_utf8(output.stdout)
                .expect("UTF-8 dump")
                .lines()
                .filter(|line| !line.starts_with("\\restrict") && !line.starts_with("\\unrestrict"))
                .collect::<Vec<_>>()
                .join("\n")
        }
        Backend::Sqlite => dump_sqlite(test_db).await,
    }
}

/// Dumps every schema object of an SQLite database, then every row of every table as
/// SQL literals ordered by primary key (by rowid for a table without one).
async fn dump_sqlite(test_db: &TestDatabase) -> String {
    let mut lines = query_text(
        test_db,
        "SELECT type || ' ' || name || ' ' || tbl_name || ': ' || coalesce(sql, '') \
         FROM sqlite_master ORDER BY type, name",
    )
    .await;
    let tables = query_text(
        test_db,
        "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name",
    )
    .await;
    for table in tables {
        let columns = query_text(
            test_db,
            &format!("SELECT name FROM pragma_table_info('{table}') ORDER BY cid"),
        )
        .await;
        let keys = query_text(
            test_db,
            &format!("SELECT name FROM pragma_table_info('{table}') WHERE pk > 0 ORDER BY pk"),
        )
        .await;
        let row: Vec<String> = columns
            .iter()
            .map(|column| format!("quote(\"{column}\")"))
            .collect();
        let order = if keys.is_empty() {
            "rowid".to_owned()
        } else {
            keys.iter()
                .map(|key| format!("\"{key}\""))
                .collect::<Vec<_>>()
                .join(", ")
        };
        lines.push(format!("table {table}:"));
        lines.extend(
            query_text(
                test_db,
                &format!(
                    "SELECT {} FROM \"{table}\" ORDER BY {order}",
                    row.join(" || ',' || ")
                ),
            )
            .await,
        );
    }
    lines.join("\n")
}

/// Runs a query whose one column is text and returns the rows in query order.
async fn query_text(test_db: &TestDatabase, sql: &str) -> Vec<String> {
    match test_db.backend {
        Backend::Postgres => {
            let mut connection = sqlx::PgConnection::connect(&test_db.url)
                .await
                .expect("connect");
            sqlx::query_scalar(sql)
                .fetch_all(&mut connection)
                .await
                .unwrap_or_else(|error| panic!("query {sql:?} failed: {error}"))
        }
        Backend::Sqlite => {
            let mut connection = sqlx::SqliteConnection::connect(&test_db.url)
                .await
                .expect("connect");
            sqlx::query_scalar(sql)
                .fetch_all(&mut connection)
                .await
                .unwrap_or_else(|error| panic!("query {sql:?} failed: {error}"))
        }
    }
}

/// Compares two dumps and names the first line that differs.
fn assert_same_dump(case: &str, backend: Backend, before: &str, after: &str) {
    if before == after {
        return;
    }
    let first_difference = before
        .lines()
        .zip(after.lines())
        .find(|(left, right)| left != right);
    panic!(
        "{case} on {backend:?}: the database changed; first differing line {first_difference:?}, \
         {} lines before and {} after",
        before.lines().count(),
        after.lines().count()
    );
}

//! Import benchmark: runs the release binary's `import` against PostgreSQL and SQLite
//! and prints one Markdown table.
//!
//! For each archive size it generates a deterministic archive, imports it into a copy
//! of a seeded PostgreSQL database, loads the same rows into another copy with
//! `COPY ... FROM STDIN` (the baseline), imports the archive again to time the
//! conflict verdict, and imports it into an empty SQLite database. Every database it
//! creates carries one run-unique prefix and is dropped at the end, also after a
//! failure.
//!
//! Run with `cargo bench --bench import -- --sizes 10k,100k,1m`; `--help` lists the
//! options.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use clap::Parser;
use futures::TryStreamExt;
use sqlx::{Connection, PgConnection};
use tokio::io::AsyncWriteExt;

use tenant_operator::archive::{Archive, Limits};
use tenant_operator::db::Database;
use tenant_operator::generator::{GenerateOptions, generate_file};
use tenant_operator::model::NumberRange;

/// The import binary, built by Cargo in the bench profile.
const IMPORT_BINARY: &str = env!("CARGO_BIN_EXE_tenant-operator");

/// GNU time, which reports the peak resident set size that `wait4` returns.
const GNU_TIME: &str = "/usr/bin/time";

/// Seed of every generated archive.
const ARCHIVE_SEED: u64 = 7;

/// Existing numbers outside the archives' ranges start here, 11 digits like theirs.
const FILLER_START: i64 = 13_105_550_000;

/// Trunks in the seeded database.
const TRUNKS: i64 = 50;

/// Options of the benchmark.
#[derive(Debug, Parser)]
#[command(about = "Benchmarks tenant imports against PostgreSQL and SQLite")]
struct Options {
    /// Archive sizes in objects, comma-separated: `10k`, `100k`, `1m` or a number.
    /// Each archive has one range per 50 objects and one access number per 2 objects.
    #[arg(long, value_delimiter = ',', default_value = "10k", value_parser = parse_size)]
    sizes: Vec<u64>,

    /// Access numbers in the PostgreSQL target before each import.
    #[arg(long, default_value_t = 2_000_000)]
    existing_numbers: i64,

    /// Tenants in the PostgreSQL target before each import.
    #[arg(long, default_value_t = 10_000)]
    tenants: i64,

    /// Tenants among them that own access numbers.
    #[arg(long, default_value_t = 1_000)]
    owners: i64,

    /// Imports and COPY loads per size; the table shows the median time and the
    /// largest peak memory.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    repeat: u32,

    /// Conflict verdicts to time per size; the table shows the median.
    #[arg(long, default_value_t = 5)]
    conflict_runs: usize,

    /// Skips the SQLite imports.
    #[arg(long)]
    skip_sqlite: bool,

    /// PostgreSQL server, without a database name.
    #[arg(
        long,
        env = "BENCH_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432"
    )]
    postgres_url: String,

    /// Set by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

/// One archive of the run.
struct Subject {
    objects: u64,
    ranges: Vec<NumberRange>,
    numbers: u64,
    path: PathBuf,
    tenant_guid: uuid::Uuid,
}

/// The measurements and report of one child import.
struct ChildRun {
    elapsed: Duration,
    peak_rss_kib: u64,
    report: serde_json::Value,
}

/// One measured size.
struct Row {
    objects: u64,
    ranges: usize,
    numbers: u64,
    postgres: ChildRun,
    rows_written: u64,
    copy: Duration,
    conflict: Duration,
    sqlite: Option<ChildRun>,
}

/// The databases of one run, named under one prefix so that cleanup finds them all.
struct Server {
    url: String,
    prefix: String,
}

fn main() -> anyhow::Result<()> {
    let options = Options::parse();
    ensure!(
        Path::new(GNU_TIME).exists(),
        "{GNU_TIME} is missing; install GNU time, which reports the import's peak memory"
    );
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(run(&options))
}

async fn run(options: &Options) -> anyhow::Result<()> {
    let token = uuid::Uuid::new_v4().simple().to_string();
    let server = Server {
        url: options.postgres_url.trim_end_matches('/').to_owned(),
        prefix: format!("tenant_bench_{}_", &token[..8]),
    };
    let work = tempfile::tempdir()?;
    let load_before = load_average();
    let result = measure(options, &server, work.path()).await;
    let cleanup = server.drop_all().await;
    let rows = result?;
    cleanup?;
    print_table(options, &rows, &load_before, &load_average())?;
    Ok(())
}

async fn measure(options: &Options, server: &Server, work: &Path) -> anyhow::Result<Vec<Row>> {
    let mut subjects = Vec::new();
    for (index, objects) in options.sizes.iter().enumerate() {
        eprintln!("generating the {objects}-object archive");
        subjects.push(make_subject(*objects, index, work)?);
    }
    let seed = server.database("seed");
    eprintln!(
        "seeding {seed} with {} access numbers",
        options.existing_numbers
    );
    seed_target(options, server, &seed, &subjects).await?;

    let mut rows = Vec::new();
    for subject in &subjects {
        rows.push(measure_size(options, server, &seed, subject, work).await?);
    }
    Ok(rows)
}

async fn measure_size(
    options: &Options,
    server: &Server,
    seed: &str,
    subject: &Subject,
    work: &Path,
) -> anyhow::Result<Row> {
    let objects = subject.objects;
    let mut imports = Vec::new();
    let mut conflict = Duration::ZERO;
    let mut files = None;
    for attempt in 0..options.repeat {
        let target = server.database(&format!("import_{objects}_{attempt}"));
        server.clone_database(seed, &target).await?;
        eprintln!("importing {objects} objects into PostgreSQL");
        let run = import(&server.database_url(&target), server, &subject.path, 0)?;
        ensure!(
            run.report["outcome"] == "Imported",
            "the PostgreSQL import did not succeed: {}",
            run.report
        );
        imports.push(run);
        if files.is_none() {
            conflict = time_conflicts(options, server, &target, subject)?;
            files = Some(dump_written(server, &target, subject, work).await?);
        }
        server.drop_database(&target).await?;
    }
    let peak_rss_kib = imports.iter().map(|run| run.peak_rss_kib).max();
    imports.sort_by_key(|run| run.elapsed);
    let mut postgres = imports.swap_remove(imports.len() / 2);
    postgres.peak_rss_kib = peak_rss_kib.unwrap_or_default();
    let rows_written = rows_written(&postgres.report)?;

    let files = files.context("no import ran; --repeat must be at least 1")?;
    let mut copies = Vec::new();
    for _ in 0..options.repeat {
        eprintln!("loading the same rows with COPY");
        copies.push(copy_baseline(server, seed, subject, &files).await?);
    }
    let copy = median(copies);

    let sqlite = if options.skip_sqlite {
        None
    } else {
        eprintln!("importing {objects} objects into SQLite");
        Some(import_sqlite(server, subject, work).await?)
    };
    Ok(Row {
        objects,
        ranges: subject.ranges.len(),
        numbers: subject.numbers,
        postgres,
        rows_written,
        copy,
        conflict,
        sqlite,
    })
}

/// Imports the archive again into `target`, which already has its tenant, and returns
/// the median time to the conflict verdict.
fn time_conflicts(
    options: &Options,
    server: &Server,
    target: &str,
    subject: &Subject,
) -> anyhow::Result<Duration> {
    eprintln!("timing {} conflict verdicts", options.conflict_runs);
    let mut times = Vec::new();
    for _ in 0..options.conflict_runs {
        let run = import(&server.database_url(target), server, &subject.path, 3)?;
        ensure!(
            run.report["outcome"] == "Conflict",
            "the repeated import did not end in a conflict: {}",
            run.report
        );
        times.push(run.elapsed);
    }
    Ok(median(times))
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times.get(times.len() / 2).copied().unwrap_or_default()
}

/// Generates the archive of one size. Each size gets its own number block, so all
/// archives' ranges can be seeded into one database.
fn make_subject(objects: u64, index: usize, work: &Path) -> anyhow::Result<Subject> {
    let path = work.join(format!("tenant-{objects}.zip"));
    let block = 14_155_550_000_u64 + 100_000_000 * index as u64;
    let options = GenerateOptions {
        seed: ARCHIVE_SEED,
        objects,
        ranges: (objects / 50).max(1),
        numbers: (objects / 2).max(1),
        format: 3,
        tenant_url: format!("bench-{objects}.cc.example.com"),
        tenant_name: format!("Bench Tenant {objects}"),
        number_start: block.to_string(),
    };
    generate_file(&options, &path)?;
    let archive = Archive::open(&path, &Limits::default())?;
    Ok(Subject {
        objects,
        numbers: archive.summary.numbers,
        tenant_guid: archive.tenant.identity.guid,
        ranges: archive.ranges,
        path,
    })
}

/// Creates the seeded database: tenants, trunks, and access numbers that hit every
/// archive's ranges in three ways, then filler numbers up to `existing_numbers`.
///
/// Range `i` of an archive is owned elsewhere when `i % 20 == 0` (its middle number
/// belongs to another tenant and the numbers before it are free), else entirely free
/// when `i % 3 == 0`, else every even number free when `i % 3 == 1`, else missing.
/// Filler numbers alternate between free (every other one on a trunk) and owned.
async fn seed_target(
    options: &Options,
    server: &Server,
    name: &str,
    subjects: &[Subject],
) -> anyhow::Result<()> {
    server.create_database(name).await?;
    let url = server.database_url(name);
    let db = Database::connect(&url).await?;
    db.migrate().await?;
    close(db).await;

    let mut conn = PgConnection::connect(&url).await?;
    sqlx::query(
        "INSERT INTO tenants (guid, url, url_key, name, name_key, status) \
         SELECT md5('bench-tenant-' || i)::uuid, 'other-' || i || '.cc.example.com', \
                'other-' || i || '.cc.example.com', 'Other Tenant ' || i, 'other tenant ' || i, \
                'active' \
         FROM generate_series(1, $1::bigint) AS i",
    )
    .bind(options.tenants)
    .execute(&mut conn)
    .await?;
    sqlx::query(
        "INSERT INTO trunks (name, domain, carrier) \
         SELECT 'trunk-' || i, 'sip' || i || '.carrier.example.net', 'carrier-' || i % 5 \
         FROM generate_series(1, $1::bigint) AS i",
    )
    .bind(TRUNKS)
    .execute(&mut conn)
    .await?;
    sqlx::query(
        "CREATE TEMP TABLE bench_ranges (ordinal bigint, digits smallint, first bigint, last bigint)",
    )
    .execute(&mut conn)
    .await?;
    for subject in subjects {
        let ordinals: Vec<i64> = (0..subject.ranges.len() as i64).collect();
        let digits: Vec<i16> = subject
            .ranges
            .iter()
            .map(|range| i16::from(range.first.digits))
            .collect();
        let firsts: Vec<i64> = subject
            .ranges
            .iter()
            .map(|range| range.first.value)
            .collect();
        let lasts: Vec<i64> = subject
            .ranges
            .iter()
            .map(|range| range.last.value)
            .collect();
        sqlx::query("INSERT INTO bench_ranges SELECT * FROM UNNEST($1, $2, $3, $4)")
            .bind(ordinals)
            .bind(digits)
            .bind(firsts)
            .bind(lasts)
            .execute(&mut conn)
            .await?;
    }
    let owner = format!(
        "md5('bench-tenant-' || (1 + ordinal % {}))::uuid",
        options.owners
    );
    let statements = [
        format!(
            "INSERT INTO access_numbers (digits, value, tenant_guid, trunk_id, media) \
             SELECT digits, v, CASE WHEN v = (first + last) / 2 THEN {owner} END, NULL, 'voice' \
             FROM bench_ranges, generate_series(first, (first + last) / 2) AS v \
             WHERE ordinal % 20 = 0"
        ),
        format!(
            "INSERT INTO access_numbers (digits, value, tenant_guid, trunk_id, media) \
             SELECT digits, v, NULL, CASE WHEN v % 3 <> 0 THEN 1 + v % {TRUNKS} END, 'voice' \
             FROM bench_ranges, generate_series(first, last) AS v \
             WHERE ordinal % 20 <> 0 AND ordinal % 3 = 0"
        ),
        format!(
            "INSERT INTO access_numbers (digits, value, tenant_guid, trunk_id, media) \
             SELECT digits, v, NULL, CASE WHEN v % 3 <> 0 THEN 1 + v % {TRUNKS} END, 'text' \
             FROM bench_ranges, generate_series(first, last) AS v \
             WHERE ordinal % 20 <> 0 AND ordinal % 3 = 1 AND v % 2 = 0"
        ),
    ];
    for statement in &statements {
        sqlx::query(statement).execute(&mut conn).await?;
    }
    let seeded: i64 = sqlx::query_scalar("SELECT count(*) FROM access_numbers")
        .fetch_one(&mut conn)
        .await?;
    let filler = (options.existing_numbers - seeded).max(0);
    sqlx::query(&format!(
        "INSERT INTO access_numbers (digits, value, tenant_guid, trunk_id, media) \
         SELECT 11, $1::bigint + i, \
                CASE WHEN i % 2 = 1 THEN md5('bench-tenant-' || (1 + i / 2 % {owners}))::uuid END, \
                CASE WHEN i % 4 = 0 THEN 1 + i / 4 % {TRUNKS} END, 'voice_text' \
         FROM generate_series(0, $2::bigint - 1) AS i",
        owners = options.owners
    ))
    .bind(FILLER_START)
    .bind(filler)
    .execute(&mut conn)
    .await?;
    sqlx::query("VACUUM ANALYZE").execute(&mut conn).await?;
    sqlx::query("CHECKPOINT").execute(&mut conn).await?;
    conn.close().await?;
    Ok(())
}

/// Runs `tenant-operator import` under GNU time and returns its wall time, its peak
/// resident set size and its JSON report. Fails unless it exits with `expected_exit`.
fn import(
    database_url: &str,
    server: &Server,
    archive: &Path,
    expected_exit: i32,
) -> anyhow::Result<ChildRun> {
    let rss_file = tempfile::NamedTempFile::new()?;
    let started = Instant::now();
    let output = Command::new(GNU_TIME)
        .arg("--format=%M")
        .arg("--output")
        .arg(rss_file.path())
        .arg(IMPORT_BINARY)
        .args(["import", "--output", "json", "--lock-timeout", "10"])
        .arg("--database-url")
        .arg(database_url)
        .arg("--reporting-database-prefix")
        .arg(format!("{}r_", server.prefix))
        .arg(archive)
        .env_remove("DATABASE_URL")
        .env_remove("REPORTING_DATABASE_URL")
        .output()?;
    let elapsed = started.elapsed();
    if output.status.code() != Some(expected_exit) {
        bail!(
            "tenant-operator import exited with {} instead of {expected_exit}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let rss = std::fs::read_to_string(rss_file.path())?;
    let peak_rss_kib = rss
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .parse()
        .with_context(|| format!("GNU time printed no peak memory: {rss:?}"))?;
    let report = serde_json::from_slice(&output.stdout).context("the import printed no JSON")?;
    Ok(ChildRun {
        elapsed,
        peak_rss_kib,
        report,
    })
}

/// Rows an import wrote: the tenant, its objects and its access numbers.
fn rows_written(report: &serde_json::Value) -> anyhow::Result<u64> {
    let count = |value: &serde_json::Value| value.as_u64().context("a count is missing");
    let numbers = &report["accessNumbers"];
    Ok(1 + count(&report["objects"])? + count(&numbers["created"])? + count(&numbers["assigned"])?)
}

/// The COPY files of what an import wrote.
struct WrittenFiles {
    tenant: PathBuf,
    objects: PathBuf,
    numbers: PathBuf,
}

/// Dumps the rows the import wrote into COPY text files, the baseline's input.
async fn dump_written(
    server: &Server,
    database: &str,
    subject: &Subject,
    work: &Path,
) -> anyhow::Result<WrittenFiles> {
    let mut conn = PgConnection::connect(&server.database_url(database)).await?;
    let guid = subject.tenant_guid;
    let files = WrittenFiles {
        tenant: work.join(format!("tenant-{}.copy", subject.objects)),
        objects: work.join(format!("objects-{}.copy", subject.objects)),
        numbers: work.join(format!("numbers-{}.copy", subject.objects)),
    };
    let dumps = [
        (
            &files.tenant,
            format!(
                "COPY (SELECT guid, url, url_key, name, name_key, status, sip_domain, created_at, \
                 settings, reporting_database FROM tenants WHERE guid = '{guid}') TO STDOUT"
            ),
        ),
        (
            &files.objects,
            format!(
                "COPY (SELECT guid, tenant_guid, object_type, name, attributes FROM config_objects \
                 WHERE tenant_guid = '{guid}') TO STDOUT"
            ),
        ),
        (
            &files.numbers,
            format!(
                "COPY (SELECT digits, value, tenant_guid, trunk_id, media FROM access_numbers \
                 WHERE tenant_guid = '{guid}') TO STDOUT"
            ),
        ),
    ];
    for (path, statement) in dumps {
        let mut file = tokio::fs::File::create(path).await?;
        let mut stream = conn.copy_out_raw(&statement).await?;
        while let Some(chunk) = stream.try_next().await? {
            file.write_all(&chunk).await?;
        }
        file.flush().await?;
    }
    conn.close().await?;
    Ok(files)
}

/// Loads the rows the import wrote into a fresh copy of the seeded database with
/// `COPY ... FROM STDIN` in one transaction, and returns how long that took.
///
/// The free numbers that the import assigned are deleted from the copy first (not
/// timed), so that COPY inserts every row the import wrote.
async fn copy_baseline(
    server: &Server,
    seed: &str,
    subject: &Subject,
    files: &WrittenFiles,
) -> anyhow::Result<Duration> {
    let target = server.database(&format!("copy_{}", subject.objects));
    server.clone_database(seed, &target).await?;
    let mut conn = PgConnection::connect(&server.database_url(&target)).await?;
    sqlx::query("CREATE TEMP TABLE bench_taken (LIKE access_numbers)")
        .execute(&mut conn)
        .await?;
    copy_file(&mut conn, "COPY bench_taken FROM STDIN", &files.numbers).await?;
    sqlx::query(
        "DELETE FROM access_numbers a USING bench_taken t \
         WHERE a.digits = t.digits AND a.value = t.value",
    )
    .execute(&mut conn)
    .await?;
    sqlx::query("VACUUM ANALYZE access_numbers")
        .execute(&mut conn)
        .await?;
    sqlx::query("CHECKPOINT").execute(&mut conn).await?;

    let started = Instant::now();
    let mut tx = conn.begin().await?;
    copy_file(
        &mut tx,
        "COPY tenants (guid, url, url_key, name, name_key, status, sip_domain, created_at, \
         settings, reporting_database) FROM STDIN",
        &files.tenant,
    )
    .await?;
    copy_file(
        &mut tx,
        "COPY config_objects (guid, tenant_guid, object_type, name, attributes) FROM STDIN",
        &files.objects,
    )
    .await?;
    copy_file(
        &mut tx,
        "COPY access_numbers (digits, value, tenant_guid, trunk_id, media) FROM STDIN",
        &files.numbers,
    )
    .await?;
    tx.commit().await?;
    let elapsed = started.elapsed();

    conn.close().await?;
    server.drop_database(&target).await?;
    Ok(elapsed)
}

async fn copy_file(conn: &mut PgConnection, statement: &str, path: &Path) -> anyhow::Result<u64> {
    let file = tokio::fs::File::open(path).await?;
    let mut copy = conn.copy_in_raw(statement).await?;
    copy.read_from(file).await?;
    Ok(copy.finish().await?)
}

/// Imports the archive into an empty, migrated SQLite database.
async fn import_sqlite(
    server: &Server,
    subject: &Subject,
    work: &Path,
) -> anyhow::Result<ChildRun> {
    let folder = work.join(format!("sqlite-{}", subject.objects));
    std::fs::create_dir_all(&folder)?;
    let url = format!("sqlite://{}", folder.join("config.db").display());
    let db = Database::connect(&url).await?;
    db.migrate().await?;
    close(db).await;
    let run = import(&url, server, &subject.path, 0)?;
    std::fs::remove_dir_all(&folder)?;
    Ok(run)
}

impl Server {
    fn database(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.prefix)
    }

    fn database_url(&self, name: &str) -> String {
        format!("{}/{name}", self.url)
    }

    async fn admin(&self) -> anyhow::Result<PgConnection> {
        let url = self.database_url("postgres");
        PgConnection::connect(&url)
            .await
            .with_context(|| format!("failed to connect to PostgreSQL at {}", self.url))
    }

    async fn create_database(&self, name: &str) -> anyhow::Result<()> {
        let mut admin = self.admin().await?;
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut admin)
            .await?;
        Ok(())
    }

    async fn clone_database(&self, template: &str, name: &str) -> anyhow::Result<()> {
        let mut admin = self.admin().await?;
        sqlx::query(&format!(
            "CREATE DATABASE \"{name}\" TEMPLATE \"{template}\""
        ))
        .execute(&mut admin)
        .await?;
        sqlx::query("CHECKPOINT").execute(&mut admin).await?;
        Ok(())
    }

    async fn drop_database(&self, name: &str) -> anyhow::Result<()> {
        let mut admin = self.admin().await?;
        sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .execute(&mut admin)
            .await?;
        Ok(())
    }

    /// Drops every database under the run's prefix, reporting databases included.
    async fn drop_all(&self) -> anyhow::Result<()> {
        let mut admin = self.admin().await?;
        let names: Vec<String> =
            sqlx::query_scalar("SELECT datname FROM pg_database WHERE starts_with(datname, $1)")
                .bind(&self.prefix)
                .fetch_all(&mut admin)
                .await?;
        for name in names {
            self.drop_database(&name).await?;
        }
        Ok(())
    }
}

/// Closes the pool, so that no connection keeps a template database busy.
async fn close(db: Database) {
    match db {
        Database::Postgres(pool) => pool.close().await,
        Database::Sqlite(pool) => pool.close().await,
    }
}

fn parse_size(text: &str) -> Result<u64, String> {
    let lower = text.trim().to_ascii_lowercase();
    let (digits, factor) = if let Some(digits) = lower.strip_suffix('k') {
        (digits, 1_000)
    } else if let Some(digits) = lower.strip_suffix('m') {
        (digits, 1_000_000)
    } else {
        (lower.as_str(), 1)
    };
    let count: u64 = digits
        .parse()
        .map_err(|_| format!("invalid size {text:?}; expected a number such as 10k, 100k or 1m"))?;
    match count.checked_mul(factor) {
        Some(objects) if objects > 0 => Ok(objects),
        _ => Err(format!(
            "invalid size {text:?}; expected at least one object"
        )),
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "unknown".to_owned())
}

fn print_table(
    options: &Options,
    rows: &[Row],
    load_before: &str,
    load_after: &str,
) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "PostgreSQL target: {} existing access numbers, {} tenants ({} own numbers); \
         load average {load_before} before, {load_after} after",
        options.existing_numbers, options.tenants, options.owners
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "| objects | ranges | numbers | backend | import s | COPY s | import / COPY | rows written | rows/s | peak RSS MiB | conflict ms |"
    )?;
    writeln!(
        out,
        "|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|"
    )?;
    for row in rows {
        let import = row.postgres.elapsed.as_secs_f64();
        let copy = row.copy.as_secs_f64();
        writeln!(
            out,
            "| {} | {} | {} | PostgreSQL | {import:.2} | {copy:.2} | {:.2} | {} | {:.0} | {:.0} | {:.0} |",
            row.objects,
            row.ranges,
            row.numbers,
            import / copy,
            row.rows_written,
            row.rows_written as f64 / import,
            row.postgres.peak_rss_kib as f64 / 1024.0,
            row.conflict.as_secs_f64() * 1000.0,
        )?;
        if let Some(sqlite) = &row.sqlite {
            let seconds = sqlite.elapsed.as_secs_f64();
            let written = rows_written(&sqlite.report)?;
            writeln!(
                out,
                "| {} | {} | {} | SQLite | {seconds:.2} | | | {written} | {:.0} | {:.0} | |",
                row.objects,
                row.ranges,
                row.numbers,
                written as f64 / seconds,
                sqlite.peak_rss_kib as f64 / 1024.0,
            )?;
        }
    }
    Ok(())
}

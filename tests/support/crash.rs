//! Runs the `tenant-operator import` process for crash and race tests: with a
//! fault-injection pause, killed with SIGKILL or resumed through standard input, and
//! dumps every table of a PostgreSQL or SQLite database as sorted JSON rows.
//!
//! Include it with `#[path = "support/crash.rs"] mod crash;` next to `mod support;`.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use sqlx::Connection;
use tenant_operator::engine::fault::{BATCH_SIZE_VARIABLE, MARKER, PAUSE_VARIABLE};

/// How long a test waits for a process to reach its fault point.
pub const MARKER_TIMEOUT: Duration = Duration::from_secs(60);

/// Columns left out of a normalized dump: times that differ between two runs of the
/// same import, the journal's surrogate key (its sequence also counts killed
/// attempts), and the id each configuration database draws for itself.
const VOLATILE_COLUMNS: [(&str, &[&str]); 5] = [
    ("tenants", &["imported_at"]),
    ("trunks", &["created_at"]),
    ("import_journal", &["id", "started_at", "finished_at"]),
    ("cluster_info", &["database_id"]),
    ("_sqlx_migrations", &["installed_on", "execution_time"]),
];

/// The finished `import` process.
#[derive(Debug)]
pub struct Finished {
    /// Exit code, or -1 when a signal ended the process.
    pub code: i32,
    /// The JSON report on standard output, or `Null` when there was none.
    pub report: serde_json::Value,
    /// Standard error.
    pub stderr: String,
}

/// An `import` process paused at a fault point.
pub struct Paused {
    child: Child,
    stdin: Option<ChildStdin>,
    stderr_lines: mpsc::Receiver<String>,
    stderr: Vec<String>,
}

/// The configuration of one `import` process.
#[derive(Debug, Clone)]
pub struct ImportCommand {
    /// Configuration database URL.
    pub database_url: String,
    /// Reporting database prefix.
    pub reporting_prefix: String,
    /// The archive.
    pub archive: std::path::PathBuf,
    /// The import id, if any.
    pub import_id: Option<String>,
    /// Objects per staging batch.
    pub batch_size: Option<usize>,
    /// Seconds to wait for the lock.
    pub lock_timeout: u64,
}

impl ImportCommand {
    /// Creates an import of `archive` into `database_url` with a 60-second lock
    /// timeout.
    pub fn new(database_url: &str, reporting_prefix: &str, archive: &Path) -> Self {
        Self {
            database_url: database_url.to_owned(),
            reporting_prefix: reporting_prefix.to_owned(),
            archive: archive.to_path_buf(),
            import_id: None,
            batch_size: None,
            lock_timeout: 60,
        }
    }

    /// Sets the import id.
    pub fn import_id(mut self, import_id: &str) -> Self {
        self.import_id = Some(import_id.to_owned());
        self
    }

    /// Sets the objects per staging batch.
    pub fn batch_size(mut self, size: usize) -> Self {
        self.batch_size = Some(size);
        self
    }

    fn command(&self, pause: Option<&str>) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tenant-operator"));
        command
            .arg("import")
            .arg("--output")
            .arg("json")
            .arg("--lock-timeout")
            .arg(self.lock_timeout.to_string());
        if let Some(import_id) = &self.import_id {
            command.arg("--import-id").arg(import_id);
        }
        command
            .arg(&self.archive)
            .env("DATABASE_URL", &self.database_url)
            .env("REPORTING_DATABASE_PREFIX", &self.reporting_prefix)
            .env("RUST_LOG", "warn")
            .env_remove("REPORTING_DATABASE_URL")
            .env_remove(PAUSE_VARIABLE)
            .env_remove(BATCH_SIZE_VARIABLE);
        if let Some(size) = self.batch_size {
            command.env(BATCH_SIZE_VARIABLE, size.to_string());
        }
        if let Some(point) = pause {
            command.env(PAUSE_VARIABLE, point);
        }
        command
    }

    /// Runs the import to its end.
    pub fn run(&self) -> Finished {
        let output = self
            .command(None)
            .stdin(Stdio::null())
            .output()
            .expect("run tenant-operator import");
        finished(
            output.status.code(),
            &output.stdout,
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    /// Starts the import without a pause and without waiting for it.
    pub fn start(&self) -> Child {
        self.command(None)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tenant-operator import")
    }

    /// Starts the import with a pause at `point`, without waiting for it.
    pub fn start_paused(&self, point: &str) -> Paused {
        let mut child = self
            .command(Some(point))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tenant-operator import");
        let stdin = child.stdin.take();
        let stderr = child.stderr.take().expect("piped standard error");
        let (sender, stderr_lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Paused {
            child,
            stdin,
            stderr_lines,
            stderr: Vec::new(),
        }
    }
}

impl Paused {
    /// Waits until the process writes the marker of `point`. Returns `false`, with the
    /// process's standard error kept for [`Paused::stderr`], when it ends or stays
    /// silent for [`MARKER_TIMEOUT`] first.
    pub fn reached(&mut self, point: &str) -> bool {
        let expected = format!("{MARKER}{point}");
        loop {
            match self.stderr_lines.recv_timeout(MARKER_TIMEOUT) {
                Ok(line) => {
                    let found = line == expected;
                    self.stderr.push(line);
                    if found {
                        return true;
                    }
                }
                Err(_) => return false,
            }
        }
    }

    /// Standard error read so far.
    pub fn stderr(&self) -> String {
        self.stderr.join("\n")
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Kills the process with SIGKILL and waits for it to end.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL the import");
        self.child.wait().expect("wait for the killed import");
    }

    /// Lets the paused import go on and waits for its end.
    pub fn resume(mut self) -> Finished {
        if let Some(mut stdin) = self.stdin.take() {
            stdin.write_all(b"\n").expect("resume the import");
        }
        let mut stdout = Vec::new();
        if let Some(mut out) = self.child.stdout.take() {
            out.read_to_end(&mut stdout).expect("read standard output");
        }
        let status = self.child.wait().expect("wait for the import");
        while let Ok(line) = self.stderr_lines.recv_timeout(Duration::from_secs(5)) {
            self.stderr.push(line);
        }
        finished(status.code(), &stdout, self.stderr.join("\n"))
    }
}

impl Drop for Paused {
    fn drop(&mut self) {
        // A test that fails while a process is paused must not leave it running.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A PostgreSQL database copied from a template database, with a reporting prefix of
/// its own. It and every reporting database under its prefix are dropped on drop.
///
/// Copying a seeded template spares each case the seeding, and its reporting
/// database: every DROP DATABASE makes PostgreSQL write a checkpoint, which is the
/// slowest part of a case.
pub struct TemplateCopy {
    /// URL of the copy.
    pub url: String,
    /// A prefix unique to this copy for reporting database names.
    pub reporting_prefix: String,
    name: String,
}

impl TemplateCopy {
    /// Copies the database at `template_url`, which must have no open sessions.
    pub async fn new(template_url: &str) -> Self {
        let template = template_url
            .rsplit('/')
            .next()
            .expect("template database name");
        let token = uuid::Uuid::new_v4().simple().to_string();
        let name = format!("tenant_operator_test_{}", &token[..16]);
        let mut admin = crate::support::admin_connection().await;
        let statement = format!(
            "CREATE DATABASE {} TEMPLATE {}",
            quote(&name),
            quote(template)
        );
        sqlx::query(&statement)
            .execute(&mut admin)
            .await
            .expect("copy the template database");
        let _ = admin.close().await;
        Self {
            url: format!("{}/{name}", crate::support::postgres_server_url()),
            reporting_prefix: format!("r{}_", &token[16..26]),
            name,
        }
    }

    /// Lists the reporting databases under this copy's prefix.
    pub async fn reporting_databases(&self) -> Vec<String> {
        let mut admin = crate::support::admin_connection().await;
        let names = sqlx::query_scalar(
            "SELECT datname::text FROM pg_database WHERE starts_with(datname, $1) ORDER BY datname",
        )
        .bind(&self.reporting_prefix)
        .fetch_all(&mut admin)
        .await
        .expect("list reporting databases");
        let _ = admin.close().await;
        names
    }
}

impl Drop for TemplateCopy {
    fn drop(&mut self) {
        crate::support::drop_postgres_databases(&self.name, &self.reporting_prefix);
    }
}

/// Every table of the `public` schema as sorted JSON rows, exactly as stored.
pub async fn exact_dump(database_url: &str) -> BTreeMap<String, Vec<String>> {
    dump(database_url, &[]).await
}

/// Every table of the `public` schema as sorted JSON rows, without the columns that
/// differ between two runs of the same import, and with `reporting_prefix` replaced
/// by `<prefix>` so databases of different tests compare equal.
pub async fn normalized_dump(
    database_url: &str,
    reporting_prefix: &str,
) -> BTreeMap<String, Vec<String>> {
    let mut tables = dump(database_url, &VOLATILE_COLUMNS).await;
    for rows in tables.values_mut() {
        for row in rows.iter_mut() {
            *row = row.replace(reporting_prefix, "<prefix>");
        }
        rows.sort();
    }
    tables
}

/// Lists the tables whose rows differ between two dumps, with the rows only one has.
pub fn dump_difference(
    before: &BTreeMap<String, Vec<String>>,
    after: &BTreeMap<String, Vec<String>>,
) -> String {
    let mut lines = Vec::new();
    let names: std::collections::BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    let empty = Vec::new();
    for name in names {
        let old = before.get(name).unwrap_or(&empty);
        let new = after.get(name).unwrap_or(&empty);
        let only_before: Vec<&String> = old.iter().filter(|row| !new.contains(row)).collect();
        let only_after: Vec<&String> = new.iter().filter(|row| !old.contains(row)).collect();
        if only_before.is_empty() && only_after.is_empty() && old.len() == new.len() {
            continue;
        }
        lines.push(format!(
            "{name}: {} rows before, {} after; {} only before, {} only after, first only after: {:?}",
            old.len(),
            new.len(),
            only_before.len(),
            only_after.len(),
            only_after.first()
        ));
    }
    lines.join("\n")
}

async fn dump(database_url: &str, volatile: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
    if database_url.starts_with("sqlite:") {
        sqlite_dump(database_url, volatile).await
    } else {
        postgres_dump(database_url, volatile).await
    }
}

fn skipped_columns(volatile: &[(&str, &[&str])], table: &str) -> Vec<String> {
    volatile
        .iter()
        .filter(|(name, _)| *name == table)
        .flat_map(|(_, columns)| columns.iter().map(|column| (*column).to_owned()))
        .collect()
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

async fn postgres_dump(
    database_url: &str,
    volatile: &[(&str, &[&str])],
) -> BTreeMap<String, Vec<String>> {
    let mut conn = sqlx::PgConnection::connect(database_url)
        .await
        .expect("connect for a dump");
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables \
         WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1",
    )
    .fetch_all(&mut conn)
    .await
    .expect("list tables");
    let mut dumped = BTreeMap::new();
    for table in tables {
        let skipped = skipped_columns(volatile, &table);
        let sql = format!(
            "SELECT (to_jsonb(t) - $1::text[])::text FROM {} t",
            quote(&table)
        );
        let mut rows: Vec<String> = sqlx::query_scalar(&sql)
            .bind(&skipped)
            .fetch_all(&mut conn)
            .await
            .unwrap_or_else(|error| panic!("dump {table}: {error}"));
        rows.sort();
        dumped.insert(table, rows);
    }
    let _ = conn.close().await;
    dumped
}

/// Dumps every table of an SQLite database, each row as a `json_object` of the
/// columns that `pragma_table_info` lists.
async fn sqlite_dump(
    database_url: &str,
    volatile: &[(&str, &[&str])],
) -> BTreeMap<String, Vec<String>> {
    let mut conn = sqlx::SqliteConnection::connect(database_url)
        .await
        .expect("connect for a dump");
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' \
         AND name NOT LIKE 'sqlite!_%' ESCAPE '!' ORDER BY name",
    )
    .fetch_all(&mut conn)
    .await
    .expect("list tables");
    let mut dumped = BTreeMap::new();
    for table in tables {
        let skipped = skipped_columns(volatile, &table);
        let columns: Vec<String> =
            sqlx::query_scalar("SELECT name FROM pragma_table_info(?1) ORDER BY cid")
                .bind(&table)
                .fetch_all(&mut conn)
                .await
                .expect("list columns");
        let pairs: Vec<String> = columns
            .iter()
            .filter(|column| !skipped.contains(column))
            .map(|column| {
                let quoted = quote(column);
                // JSON cannot hold a BLOB, so BLOBs (migration checksums) are hex.
                format!(
                    "'{}', CASE typeof({quoted}) WHEN 'blob' THEN hex({quoted}) ELSE {quoted} END",
                    column.replace('\'', "''")
                )
            })
            .collect();
        let sql = format!(
            "SELECT json_object({}) FROM {}",
            pairs.join(", "),
            quote(&table)
        );
        let mut rows: Vec<String> = sqlx::query_scalar(&sql)
            .fetch_all(&mut conn)
            .await
            .unwrap_or_else(|error| panic!("dump {table}: {error}"));
        rows.sort();
        dumped.insert(table, rows);
    }
    let _ = conn.close().await;
    dumped
}

/// Waits for a process from [`ImportCommand::start`] to end.
pub fn wait(child: Child) -> Finished {
    let output = child.wait_with_output().expect("wait for the import");
    finished(
        output.status.code(),
        &output.stdout,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn finished(code: Option<i32>, stdout: &[u8], stderr: String) -> Finished {
    let text = String::from_utf8_lossy(stdout);
    let report = text
        .lines()
        .rev()
        .find_map(|line| serde_json::from_str(line).ok())
        .unwrap_or(serde_json::Value::Null);
    Finished {
        code: code.unwrap_or(-1),
        report,
        stderr,
    }
}

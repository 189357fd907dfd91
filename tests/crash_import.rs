//! Kills the `import` process with SIGKILL at every fault-injection point, on
//! PostgreSQL and SQLite, and checks what the crash left behind. A kill before the
//! commit must leave nothing and a kill after it everything. A retry with the same
//! import id must end equal to an import that was never interrupted.
//!
//! Each case seeds a fresh database with a neighbour tenant, a trunk and free access
//! numbers, so the import assigns, creates and skips numbers, and a stray write to
//! anything outside the tenant shows up in the dump.

#[path = "support/crash.rs"]
mod crash;
#[path = "support/engine_fixtures.rs"]
mod engine_fixtures;
mod support;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crash::{ImportCommand, TemplateCopy, dump_difference, exact_dump, normalized_dump};
use engine_fixtures::TenantFixture;
use support::{Backend, TestDatabase};
use tenant_operator::archive::Limits;
use tenant_operator::db::Database;
use tenant_operator::engine::{Engine, ImportRequest, Outcome, ReportingConfig};

/// Objects of the imported archive.
const OBJECTS: usize = 300;

/// Objects per staging batch, so the archive gives `OBJECTS / BATCH_SIZE` batches.
const BATCH_SIZE: usize = 25;

/// The import id of every attempt, so the retry replays a committed attempt.
const IMPORT_ID: &str = "crash-retry";

/// Points before the object batches, in the order an import reaches them.
const EARLY_POINTS: [&str; 4] = [
    "lock:acquired",
    "fence:taken",
    "journal:replay-checked",
    "tenant:checked",
];

/// Points after the object batches up to the access numbers.
const MIDDLE_POINTS: [&str; 4] = [
    "objects:staged",
    "objects:checked",
    "tenant:inserted",
    "objects:inserted",
];

/// Points between the set-based access-number steps.
const NUMBER_POINTS: [&str; 4] = [
    "numbers:loaded",
    "numbers:skipped",
    "numbers:assigned",
    "numbers:created",
];

/// Points from the end of the access numbers to the end of the import.
const LATE_POINTS: [&str; 10] = [
    "numbers:done",
    "reporting:empty",
    "reporting:schema",
    "reporting:created",
    "reporting:recorded",
    "journal:before",
    "journal:written",
    "commit:before",
    "commit:after",
    "lock:released",
];

/// Points at which the import has committed.
const COMMITTED_POINTS: [&str; 2] = ["commit:after", "lock:released"];

/// The archives of a crash test, written once and imported into every case.
struct Scenario {
    backend: Backend,
    _dir: tempfile::TempDir,
    target: PathBuf,
    target_fixture: TenantFixture,
    neighbour: PathBuf,
    /// On PostgreSQL, the seeded database that every case copies.
    template: Option<TestDatabase>,
    /// The normalized dump of a seeded database after an uninterrupted import.
    reference: BTreeMap<String, Vec<String>>,
}

impl Scenario {
    async fn new(backend: Backend) -> Self {
        let dir = tempfile::tempdir().expect("archive folder");
        let target_fixture = TenantFixture::new("crash-target", OBJECTS)
            .with_range("5550100", "5550119", "voice")
            .with_range("5550200", "5550209", "text")
            .with_range("5550300", "5550329", "voice_text")
            .with_range("05550400", "05550404", "voice");
        let neighbour_fixture =
            TenantFixture::new("crash-neighbour", 40).with_range("5550205", "5550215", "voice");
        let target = target_fixture.write_v3(dir.path());
        let neighbour = neighbour_fixture.write_v3(dir.path());
        let mut scenario = Self {
            backend,
            _dir: dir,
            target,
            target_fixture,
            neighbour,
            template: None,
            reference: BTreeMap::new(),
        };
        if backend == Backend::Postgres {
            scenario.template = Some(scenario.seed(backend).await);
        }

        let test_db = scenario.case_database().await;
        let finished = scenario.command(&test_db).run();
        assert_eq!(finished.code, 0, "reference import: {}", finished.stderr);
        scenario.reference = normalized_dump(test_db.url(), test_db.reporting_prefix()).await;
        scenario
    }

    /// Returns the number of object batches the archive gives.
    fn batches(&self) -> usize {
        self.target_fixture.objects.len().div_ceil(BATCH_SIZE)
    }

    /// Lists the `objects:N` points, one per batch.
    fn batch_points(&self) -> Vec<String> {
        (1..=self.batches())
            .map(|batch| format!("objects:{batch}"))
            .collect()
    }

    fn command(&self, test_db: &CaseDatabase) -> ImportCommand {
        ImportCommand::new(test_db.url(), test_db.reporting_prefix(), &self.target)
            .import_id(IMPORT_ID)
            .batch_size(BATCH_SIZE)
    }

    /// Creates a migrated database with a trunk, a neighbour tenant that owns numbers
    /// inside the archive's second range, and free numbers: some inside the first
    /// range (with the trunk), one beside it, and one of the same value as the fourth
    /// range's first number but with fewer digits.
    async fn seed(&self, backend: Backend) -> TestDatabase {
        let test_db = TestDatabase::new(backend).await;
        let db = Database::connect(&test_db.url).await.expect("connect");
        db.migrate().await.expect("migrate");
        execute(
            &db,
            "INSERT INTO trunks (name, domain, carrier) VALUES ('carrier-x', 'sip.carrier-x.test', 'x'); \
             INSERT INTO trunk_prefixes (trunk_id, prefix, cost) VALUES (1, '555', 0.25)",
        )
        .await;

        let reporting = ReportingConfig {
            server_url: None,
            name_prefix: test_db.reporting_prefix.clone(),
        };
        let engine = Engine::new(db.clone(), Limits::default(), reporting);
        let request = ImportRequest {
            archive: self.neighbour.clone(),
            import_id: None,
            lock_timeout: Duration::from_secs(30),
        };
        let report = engine
            .import(&request, &db.standalone_lock())
            .await
            .expect("import the neighbour");
        assert_eq!(report.outcome, Outcome::Imported, "{}", report.message);

        execute(
            &db,
            "INSERT INTO access_numbers (digits, value, tenant_guid, trunk_id, media) VALUES \
             (7, 5550105, NULL, 1, 'text'), (7, 5550106, NULL, 1, 'text'), \
             (7, 5550107, NULL, 1, 'text'), (7, 5550108, NULL, 1, 'text'), \
             (7, 5550109, NULL, 1, 'text'), (7, 5550120, NULL, 1, 'voice'), \
             (7, 5550400, NULL, NULL, 'voice')",
        )
        .await;
        match db {
            Database::Postgres(pool) => pool.close().await,
            Database::Sqlite(pool) => pool.close().await,
        }
        test_db
    }

    /// Returns a seeded database for one case: a copy of the template on PostgreSQL,
    /// a newly seeded one on SQLite.
    async fn case_database(&self) -> CaseDatabase {
        match &self.template {
            Some(template) => CaseDatabase::Copy(TemplateCopy::new(&template.url).await),
            None => CaseDatabase::Own(self.seed(self.backend).await),
        }
    }

    /// Kills an import at `point`, checks what it left, retries, and checks the end.
    async fn crash_at(&self, point: &str) {
        let test_db = self.case_database().await;
        let before = exact_dump(test_db.url()).await;
        let reporting_before = test_db.reporting_databases().await;
        let extension = match self.backend {
            Backend::Postgres => "",
            Backend::Sqlite => ".db",
        };
        let target_reporting = format!(
            "{}{}{extension}",
            test_db.reporting_prefix(),
            self.target_fixture.guid.simple()
        );
        let committed = COMMITTED_POINTS.contains(&point);

        let command = self.command(&test_db);
        let mut paused = command.start_paused(point);
        assert!(
            paused.reached(point),
            "{point}: the import never reached the point; stderr:\n{}",
            paused.stderr()
        );
        paused.kill();

        if committed {
            let after = normalized_dump(test_db.url(), test_db.reporting_prefix()).await;
            assert!(
                after == self.reference,
                "{point}: a kill after the commit lost data:\n{}",
                dump_difference(&self.reference, &after)
            );
        } else {
            let after = exact_dump(test_db.url()).await;
            assert!(
                after == before,
                "{point}: a kill before the commit changed the database:\n{}",
                dump_difference(&before, &after)
            );
        }
        let leftovers: Vec<String> = test_db
            .reporting_databases()
            .await
            .into_iter()
            .filter(|name| !reporting_before.contains(name))
            .collect();
        // On SQLite the leftover may come with its rollback journal file.
        assert!(
            leftovers
                .iter()
                .all(|name| name.starts_with(&target_reporting)),
            "{point}: reporting databases other than the tenant's were left: {leftovers:?}"
        );

        let retry = command.run();
        assert_eq!(
            retry.code, 0,
            "{point}: the retry failed: {}\n{}",
            retry.report, retry.stderr
        );
        assert_eq!(retry.report["outcome"], "Imported", "{point}");
        assert_eq!(retry.report["replayed"], committed, "{point}");
        let again = command.run();
        assert_eq!(again.code, 0, "{point}: second retry: {}", again.report);
        assert_eq!(again.report["replayed"], true, "{point}");

        let after = normalized_dump(test_db.url(), test_db.reporting_prefix()).await;
        assert!(
            after == self.reference,
            "{point}: the retried import differs from an uninterrupted one:\n{}",
            dump_difference(&self.reference, &after)
        );
        let mut expected_reporting = reporting_before.clone();
        expected_reporting.push(target_reporting);
        expected_reporting.sort();
        assert_eq!(
            test_db.reporting_databases().await,
            expected_reporting,
            "{point}"
        );
    }
}

#[tokio::test]
async fn kill_up_to_last_object_batch() {
    let scenario = Scenario::new(Backend::Postgres).await;
    let batches = scenario.batch_points();
    assert!(batches.len() >= 10, "the archive gives only {batches:?}");
    let mut points: Vec<String> = EARLY_POINTS.map(str::to_owned).to_vec();
    points.extend(batches);
    for point in points {
        scenario.crash_at(&point).await;
    }
}

#[tokio::test]
async fn kill_from_staging_to_lock_release() {
    let scenario = Scenario::new(Backend::Postgres).await;
    let mut points: Vec<String> = MIDDLE_POINTS.map(str::to_owned).to_vec();
    points.extend(NUMBER_POINTS.map(str::to_owned));
    points.extend(LATE_POINTS.map(str::to_owned));
    for point in points {
        scenario.crash_at(&point).await;
    }
}

#[tokio::test]
async fn kill_at_every_point_on_sqlite() {
    let scenario = Scenario::new(Backend::Sqlite).await;
    let mut points: Vec<String> = EARLY_POINTS.map(str::to_owned).to_vec();
    points.extend(scenario.batch_points());
    points.extend(MIDDLE_POINTS.map(str::to_owned));
    points.extend(NUMBER_POINTS.map(str::to_owned));
    points.extend(LATE_POINTS.map(str::to_owned));
    for point in points {
        scenario.crash_at(&point).await;
    }
}

/// The database of one case.
enum CaseDatabase {
    /// A copy of the scenario's seeded template (PostgreSQL).
    Copy(TemplateCopy),
    /// A database seeded for the case alone (SQLite).
    Own(TestDatabase),
}

impl CaseDatabase {
    fn url(&self) -> &str {
        match self {
            Self::Copy(copy) => &copy.url,
            Self::Own(test_db) => &test_db.url,
        }
    }

    fn reporting_prefix(&self) -> &str {
        match self {
            Self::Copy(copy) => &copy.reporting_prefix,
            Self::Own(test_db) => &test_db.reporting_prefix,
        }
    }

    async fn reporting_databases(&self) -> Vec<String> {
        match self {
            Self::Copy(copy) => copy.reporting_databases().await,
            Self::Own(test_db) => test_db.reporting_databases().await,
        }
    }
}

/// Runs statements separated by `;`.
async fn execute(db: &Database, sql: &str) {
    let result = match db {
        Database::Postgres(pool) => sqlx::raw_sql(sql).execute(pool).await.map(|_| ()),
        Database::Sqlite(pool) => sqlx::raw_sql(sql).execute(pool).await.map(|_| ()),
    };
    result.unwrap_or_else(|error| panic!("statement {sql:?} failed: {error}"));
}

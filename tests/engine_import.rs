//! The import engine against real PostgreSQL and SQLite: formats, access numbers,
//! conflicts, invalid archives, failures, reporting databases and import ids.

#[path = "support/engine_fixtures.rs"]
mod engine_fixtures;
#[path = "support/engine_harness.rs"]
mod engine_harness;
mod support;

use std::path::PathBuf;
use std::time::Duration;

use engine_fixtures::TenantFixture;
use engine_harness::{BACKENDS, Harness};
use support::Backend;
use tenant_operator::archive::{Limits, MAX_OBJECT_NAME_CHARS};
use tenant_operator::engine::{
    Collision, Engine, ImportError, ImportRequest, NumberCounts, Outcome, RangeBounds,
    ReportingConfig,
};

type Writer = fn(&TenantFixture, &std::path::Path) -> PathBuf;

const FORMATS: [(u32, Writer); 3] = [
    (1, TenantFixture::write_v1),
    (2, TenantFixture::write_v2),
    (3, TenantFixture::write_v3),
];

#[tokio::test]
async fn each_format_version_imports() {
    for backend in BACKENDS {
        for (version, write) in FORMATS {
            let harness = Harness::new(backend).await;
            let fixture = TenantFixture::new(&format!("format{version}"), 7)
                .with_range("14155550100", "14155550104", "voice")
                .with_range("18005550123", "18005550123", "voice_text");
            let report = harness.import(&write(&fixture, harness.dir.path())).await;
            let case = format!("{backend:?} format {version}");

            assert_eq!(
                report.outcome,
                Outcome::Imported,
                "{case}: {}",
                report.message
            );
            assert_eq!(report.format_version, Some(version), "{case}");
            assert_eq!(report.objects, 7, "{case}");
            assert_eq!(report.access_numbers.created, 6, "{case}");
            assert!(!report.replayed, "{case}");
            let guid = fixture.guid.to_string();
            let stored = harness.rows("SELECT CAST(guid AS TEXT) FROM tenants").await;
            assert_eq!(stored, vec![guid.clone()], "{case}: GUID stored lower-case");
            let objects = harness
                .rows("SELECT CAST(guid AS TEXT) FROM config_objects")
                .await;
            let mut expected: Vec<String> =
                fixture.objects.iter().map(|o| o.guid.to_string()).collect();
            expected.sort();
            assert_eq!(objects, expected, "{case}: object GUIDs kept");
            let reporting = report
                .reporting_database
                .clone()
                .expect("reporting database");
            assert!(
                harness
                    .test_db
                    .reporting_databases()
                    .await
                    .iter()
                    .any(|name| name.starts_with(&reporting)),
                "{case}: reporting database {reporting} missing"
            );
        }
    }
}

#[tokio::test]
async fn access_numbers_created_assigned_skipped() {
    for backend in BACKENDS {
        let harness = Harness::new(backend).await;
        let other = TenantFixture::new("other", 1).with_range("5550300", "5550300", "voice");
        let other_report = harness.import(&other.write_v3(harness.dir.path())).await;
        assert_eq!(
            other_report.outcome,
            Outcome::Imported,
            "{}",
            other_report.message
        );
        harness
            .execute(
                "INSERT INTO trunks (name, domain, carrier) VALUES ('carrier-x', 'x.example', 'X'); \
                 INSERT INTO access_numbers (digits, value, tenant_guid, trunk_id, media) VALUES \
                 (7, 5550105, NULL, 1, 'text'), (7, 5550106, NULL, 1, 'text'), \
                 (7, 5550107, NULL, NULL, 'voice'), (7, 5550296, NULL, 1, 'voice'), \
                 (3, 100, NULL, 1, 'voice')",
            )
            .await;

        let fixture = TenantFixture::new("numbers", 2)
            .with_range("5550100", "5550109", "voice_text")
            .with_range("5550295", "5550304", "voice")
            .with_range("0100", "0101", "text");
        let report = harness.import(&fixture.write_v3(harness.dir.path())).await;
        let case = format!("{backend:?}");

        assert_eq!(
            report.outcome,
            Outcome::Imported,
            "{case}: {}",
            report.message
        );
        let expected_counts = NumberCounts {
            created: 7 + 2,
            assigned: 3,
            skipped: 10,
        };
        assert_eq!(report.access_numbers, expected_counts, "{case}");
        let skipped = vec![RangeBounds {
            first: "5550295".to_owned(),
            last: "5550304".to_owned(),
        }];
        assert_eq!(report.skipped_ranges, skipped, "{case}");

        let mine = fixture.guid.to_string();
        let theirs = other.guid.to_string();
        let mut expected = Vec::new();
        for value in 5550100..=5550109 {
            let trunk = match value {
                5550105 | 5550106 => "1",
                _ => "-",
            };
            expected.push(format!("7|{value}|{mine}|{trunk}|voice_text"));
        }
        expected.push("7|5550296|-|1|voice".to_owned());
        expected.push(format!("7|5550300|{theirs}|-|voice"));
        expected.push(format!("4|100|{mine}|-|text"));
        expected.push(format!("4|101|{mine}|-|text"));
        expected.push("3|100|-|1|voice".to_owned());
        expected.sort();
        let columns = harness.row_text("digits, value, tenant_guid, trunk_id, media");
        let rows = harness
            .rows(&format!("SELECT {columns} FROM access_numbers"))
            .await;
        assert_eq!(rows, expected, "{case}: every access number row");
    }
}

#[tokio::test]
async fn conflicts_write_nothing() {
    for backend in BACKENDS {
        let harness = Harness::new(backend).await;
        let stored = TenantFixture::new("stored", 4).with_range("5551000", "5551009", "voice");
        let first = harness.import(&stored.write_v3(harness.dir.path())).await;
        assert_eq!(first.outcome, Outcome::Imported, "{}", first.message);

        let mut same_guid = TenantFixture::new("sameguid", 2);
        same_guid.guid = stored.guid;
        let mut same_url = TenantFixture::new("sameurl", 2);
        same_url.url = stored.url.to_uppercase();
        let mut same_name = TenantFixture::new("samename", 2);
        same_name.name = format!("  {}\t ", stored.name.to_uppercase());
        let mut same_object = TenantFixture::new("sameobject", 2);
        same_object.objects[1].guid = stored.objects[2].guid;

        let cases: [(&str, PathBuf, Vec<Collision>); 4] = [
            (
                "braced v1 GUID",
                same_guid.write_v1(harness.dir.path()),
                vec![Collision::TenantGuid],
            ),
            (
                "URL in upper case",
                same_url.write_v3(harness.dir.path()),
                vec![Collision::TenantUrl],
            ),
            (
                "name case and spacing",
                same_name.write_v3(harness.dir.path()),
                vec![Collision::TenantName],
            ),
            (
                "object GUID",
                same_object.write_v3(harness.dir.path()),
                vec![Collision::ObjectGuid {
                    guid: stored.objects[2].guid,
                }],
            ),
        ];
        for (name, archive, collisions) in cases {
            let case = format!("{backend:?} {name}");
            let before = harness.snapshot().await;
            let reporting_before = harness.test_db.reporting_databases().await;
            let report = harness.import(&archive).await;

            assert_eq!(
                report.outcome,
                Outcome::Conflict,
                "{case}: {}",
                report.message
            );
            assert_eq!(report.collisions, collisions, "{case}");
            assert!(
                !report.message.contains(&stored.url),
                "{case}: message reveals the URL"
            );
            assert!(
                !report.message.contains(&stored.guid.to_string()),
                "{case}: message reveals the GUID"
            );
            assert_eq!(harness.snapshot().await, before, "{case}: tables changed");
            assert_eq!(
                harness.test_db.reporting_databases().await,
                reporting_before,
                "{case}"
            );
        }
    }
}

#[tokio::test]
async fn all_tenant_collisions_listed() {
    for backend in BACKENDS {
        let harness = Harness::new(backend).await;
        let stored = TenantFixture::new("twice", 1);
        harness.import(&stored.write_v3(harness.dir.path())).await;
        let again = harness.import(&stored.write_v2(harness.dir.path())).await;
        assert_eq!(again.outcome, Outcome::Conflict, "{backend:?}");
        let all = vec![
            Collision::TenantGuid,
            Collision::TenantUrl,
            Collision::TenantName,
        ];
        assert_eq!(again.collisions, all, "{backend:?}");
        assert!(
            again.message.contains("GUID and URL and name"),
            "{}",
            again.message
        );
    }
}

/// The tenant conflict is decided from the archive's header, before the pass over
/// every object, so an archive whose tenant exists gets `Conflict` even when one of
/// its objects is invalid. The same archive for a new tenant is `Invalid`, and its
/// report still names the tenant that the header gave.
#[tokio::test]
async fn tenant_conflict_decided_before_objects() {
    for backend in BACKENDS {
        let harness = Harness::new(backend).await;
        let stored = TenantFixture::new("early", 3);
        let first = harness.import(&stored.write_v3(harness.dir.path())).await;
        assert_eq!(first.outcome, Outcome::Imported, "{}", first.message);

        let mut again = TenantFixture::new("earlyagain", 3);
        again.guid = stored.guid;
        again.objects[2].name = "x".repeat(MAX_OBJECT_NAME_CHARS + 1);
        let before = harness.snapshot().await;
        let conflict = harness.import(&again.write_v3(harness.dir.path())).await;
        assert_eq!(
            conflict.outcome,
            Outcome::Conflict,
            "{backend:?}: {}",
            conflict.message
        );
        assert_eq!(
            conflict.collisions,
            vec![Collision::TenantGuid],
            "{backend:?}"
        );

        let mut fresh = again.clone();
        fresh.guid = uuid::Uuid::new_v4();
        let invalid = harness.import(&fresh.write_v3(harness.dir.path())).await;
        assert_eq!(
            invalid.outcome,
            Outcome::Invalid,
            "{backend:?}: {}",
            invalid.message
        );
        assert!(
            invalid.message.contains("objects/user.jsonl line 2"),
            "{backend:?}: {}",
            invalid.message
        );
        let tenant = invalid.tenant.as_ref().map(|tenant| tenant.guid);
        assert_eq!(tenant, Some(fresh.guid), "{backend:?}");
        assert_eq!(harness.snapshot().await, before, "{backend:?}");
    }
}

#[tokio::test]
async fn duplicate_object_guid_is_invalid() {
    for backend in BACKENDS {
        let harness = Harness::new(backend).await;
        let mut fixture =
            TenantFixture::new("duplicate", 5).with_range("5552000", "5552001", "voice");
        fixture.objects[3].guid = fixture.objects[0].guid;
        let before = harness.snapshot().await;
        let report = harness.import(&fixture.write_v3(harness.dir.path())).await;

        assert_eq!(
            report.outcome,
            Outcome::Invalid,
            "{backend:?}: {}",
            report.message
        );
        let guid = fixture.objects[0].guid.to_string();
        assert!(report.message.contains(&guid), "{}", report.message);
        assert!(
            report.message.contains("objects/user.jsonl line 1"),
            "{}",
            report.message
        );
        assert!(
            report.message.contains("objects/team.jsonl line 2"),
            "{}",
            report.message
        );
        assert_eq!(harness.snapshot().await, before, "{backend:?}");
        assert!(
            harness.test_db.reporting_databases().await.is_empty(),
            "{backend:?}"
        );
    }
}

#[tokio::test]
async fn unreadable_archive_is_invalid() {
    for backend in BACKENDS {
        let harness = Harness::new(backend).await;
        let path = harness.dir.path().join("not-a-zip.zip");
        std::fs::write(&path, b"this is not a zip file").expect("write file");
        let report = harness.import(&path).await;
        assert_eq!(report.outcome, Outcome::Invalid, "{backend:?}");
        assert!(report.tenant.is_none(), "{backend:?}");
        assert!(
            report.message.starts_with("invalid archive"),
            "{}",
            report.message
        );
    }
}

#[tokio::test]
async fn failed_import_leaves_no_trace() {
    for backend in BACKENDS {
        let harness = Harness::new(backend).await;
        let trigger = match backend {
            Backend::Postgres => {
                "CREATE FUNCTION reject_journal() RETURNS trigger LANGUAGE plpgsql AS \
                 $$ BEGIN RAISE EXCEPTION 'journal rejected by the test'; END $$; \
                 CREATE TRIGGER reject_journal BEFORE INSERT ON import_journal \
                 FOR EACH ROW EXECUTE FUNCTION reject_journal()"
            }
            Backend::Sqlite => {
                "CREATE TRIGGER reject_journal BEFORE INSERT ON import_journal \
                 BEGIN SELECT RAISE(ABORT, 'journal rejected by the test'); END"
            }
        };
        harness.execute(trigger).await;
        let fixture = TenantFixture::new("failing", 3).with_range("5553000", "5553004", "voice");
        let before = harness.snapshot().await;
        let result = harness
            .try_import(&fixture.write_v3(harness.dir.path()), None)
            .await;

        assert!(
            matches!(result, Err(ImportError::Database(_))),
            "{backend:?}: {result:?}"
        );
        assert_eq!(
            harness.snapshot().await,
            before,
            "{backend:?}: tables changed"
        );
        assert!(
            harness.test_db.reporting_databases().await.is_empty(),
            "{backend:?}: reporting database left behind"
        );
    }
}

#[tokio::test]
async fn leftover_reporting_database_is_replaced() {
    for backend in BACKENDS {
        let harness = Harness::new(backend).await;
        let fixture = TenantFixture::new("leftover", 3).with_range("5554000", "5554001", "voice");
        let archive = fixture.write_v3(harness.dir.path());
        let first = harness.import(&archive).await;
        assert_eq!(first.outcome, Outcome::Imported, "{}", first.message);
        // An interrupted attempt leaves the reporting database but no committed tenant.
        harness
            .execute(
                "DELETE FROM import_journal; DELETE FROM access_numbers; \
                 DELETE FROM config_objects; DELETE FROM tenants",
            )
            .await;
        let leftovers = harness.test_db.reporting_databases().await;
        assert_eq!(leftovers.len(), 1, "{backend:?}");

        let retry = harness.import(&archive).await;
        assert_eq!(
            retry.outcome,
            Outcome::Imported,
            "{backend:?}: {}",
            retry.message
        );
        assert_eq!(
            retry.reporting_database, first.reporting_database,
            "{backend:?}"
        );
        assert_eq!(
            harness.test_db.reporting_databases().await,
            leftovers,
            "{backend:?}"
        );
    }
}

#[tokio::test]
async fn foreign_reporting_database_is_kept() {
    for backend in BACKENDS {
        let harness = Harness::new(backend).await;
        let fixture = TenantFixture::new("foreign", 2);
        let name = harness
            .engine
            .reporting_database_name(fixture.guid)
            .expect("name");
        create_foreign_database(&harness, &name).await;
        let before = harness.snapshot().await;

        let result = harness
            .try_import(&fixture.write_v3(harness.dir.path()), None)
            .await;
        let Err(ImportError::ForeignReportingDatabase { name: reported }) = result else {
            panic!("{backend:?}: expected a foreign reporting database error, got {result:?}");
        };
        assert_eq!(reported, name, "{backend:?}");
        assert!(
            foreign_data_kept(&reported, &harness).await,
            "{backend:?}: foreign data gone"
        );
        assert_eq!(harness.snapshot().await, before, "{backend:?}");

        let dropped = harness.engine.drop_reporting_database(fixture.guid).await;
        assert!(
            matches!(dropped, Err(ImportError::ForeignReportingDatabase { .. })),
            "{backend:?}: drop_reporting_database removed a foreign database"
        );
        assert!(
            foreign_data_kept(&reported, &harness).await,
            "{backend:?}: foreign data gone"
        );
    }
}

#[tokio::test]
async fn drop_reporting_database_removes_own() {
    for backend in BACKENDS {
        let harness = Harness::new(backend).await;
        let fixture = TenantFixture::new("dropped", 1);
        let report = harness.import(&fixture.write_v3(harness.dir.path())).await;
        assert_eq!(report.outcome, Outcome::Imported, "{}", report.message);
        assert_eq!(
            harness.test_db.reporting_databases().await.len(),
            1,
            "{backend:?}"
        );

        harness
            .engine
            .drop_reporting_database(fixture.guid)
            .await
            .expect("drop");
        assert!(
            harness.test_db.reporting_databases().await.is_empty(),
            "{backend:?}"
        );
        harness
            .engine
            .drop_reporting_database(fixture.guid)
            .await
            .expect("drop of a missing one");
    }
}

#[tokio::test]
async fn committed_import_id_replays() {
    for backend in BACKENDS {
        let harness = Harness::new(backend).await;
        let fixture = TenantFixture::new("replay", 3).with_range("5555000", "5555002", "voice");
        let archive = fixture.write_v3(harness.dir.path());
        let first = harness
            .try_import(&archive, Some("job-1"))
            .await
            .expect("first import");
        assert_eq!(first.outcome, Outcome::Imported, "{}", first.message);
        let before = harness.snapshot().await;

        let again = harness
            .try_import(&archive, Some("job-1"))
            .await
            .expect("retry");
        assert_eq!(
            again.outcome,
            Outcome::Imported,
            "{backend:?}: {}",
            again.message
        );
        assert!(again.replayed, "{backend:?}");
        assert_eq!(again.access_numbers, first.access_numbers, "{backend:?}");
        assert_eq!(
            again.reporting_database, first.reporting_database,
            "{backend:?}"
        );
        assert_eq!(harness.snapshot().await, before, "{backend:?}");

        let without_id = harness.try_import(&archive, None).await.expect("import");
        assert_eq!(without_id.outcome, Outcome::Conflict, "{backend:?}");

        let other = TenantFixture::new("reused", 1).write_v3(harness.dir.path());
        let reused = harness.try_import(&other, Some("job-1")).await;
        assert!(
            matches!(reused, Err(ImportError::ImportIdReused { .. })),
            "{backend:?}: {reused:?}"
        );
    }
}

async fn create_foreign_database(harness: &Harness, name: &str) {
    match harness.backend() {
        Backend::Postgres => {
            let mut admin = support::admin_connection().await;
            sqlx::query(&format!("CREATE DATABASE \"{name}\""))
                .execute(&mut admin)
                .await
                .expect("create foreign database");
            let url = format!("{}/{name}", support::postgres_server_url());
            let pool = sqlx::PgPool::connect(&url).await.expect("connect foreign");
            sqlx::raw_sql("CREATE TABLE keep_me (id int); INSERT INTO keep_me VALUES (42)")
                .execute(&pool)
                .await
                .expect("fill foreign database");
            pool.close().await;
        }
        Backend::Sqlite => {
            let folder = harness.test_db.dir.as_ref().expect("folder").path();
            let url = format!("sqlite://{}?mode=rwc", folder.join(name).display());
            let pool = sqlx::SqlitePool::connect(&url)
                .await
                .expect("create foreign file");
            sqlx::raw_sql("CREATE TABLE keep_me (id int); INSERT INTO keep_me VALUES (42)")
                .execute(&pool)
                .await
                .expect("fill foreign file");
            pool.close().await;
        }
    }
}

/// Returns whether the foreign database still has its row.
async fn foreign_data_kept(name: &str, harness: &Harness) -> bool {
    let query = "SELECT id FROM keep_me";
    match harness.backend() {
        Backend::Postgres => {
            let url = format!("{}/{name}", support::postgres_server_url());
            let Ok(pool) = sqlx::PgPool::connect(&url).await else {
                return false;
            };
            let id: Result<i32, _> = sqlx::query_scalar(query).fetch_one(&pool).await;
            pool.close().await;
            id.ok() == Some(42)
        }
        Backend::Sqlite => {
            let folder = harness.test_db.dir.as_ref().expect("folder").path();
            let url = format!("sqlite://{}?mode=ro", folder.join(name).display());
            let Ok(pool) = sqlx::SqlitePool::connect(&url).await else {
                return false;
            };
            let id: Result<i32, _> = sqlx::query_scalar(query).fetch_one(&pool).await;
            pool.close().await;
            id.ok() == Some(42)
        }
    }
}

#[tokio::test]
async fn invalid_reporting_settings_write_nothing() {
    let long_prefix = "p".repeat(32);
    let cases: [(Backend, &str, Option<&str>); 4] = [
        (Backend::Sqlite, "../escape_", None),
        (Backend::Postgres, "bad prefix", None),
        (Backend::Postgres, &long_prefix, None),
        (
            Backend::Postgres,
            "ok_",
            Some("mysql://127.0.0.1/reporting"),
        ),
    ];
    for (backend, prefix, server_url) in cases {
        let harness = Harness::new(backend).await;
        let reporting = ReportingConfig {
            server_url: server_url.map(str::to_owned),
            name_prefix: prefix.to_owned(),
        };
        let engine = Engine::new(harness.db.clone(), Limits::default(), reporting);
        let fixture = TenantFixture::new("settings", 2).with_range("5561000", "5561001", "voice");
        let request = ImportRequest {
            archive: fixture.write_v3(harness.dir.path()),
            import_id: None,
            lock_timeout: Duration::from_secs(10),
        };
        let before = harness.snapshot().await;
        let result = engine.import(&request, &harness.db.standalone_lock()).await;
        let case = format!("{backend:?} prefix {prefix:?} server {server_url:?}");

        let expected = match result {
            Err(ImportError::InvalidReportingPrefix { .. }) => server_url.is_none(),
            Err(ImportError::InvalidReportingServer) => server_url.is_some(),
            _ => false,
        };
        assert!(expected, "{case}: {result:?}");
        assert_eq!(harness.snapshot().await, before, "{case}: tables changed");
    }
}

#[tokio::test]
async fn reporting_server_url_is_used() {
    let harness = Harness::new(Backend::Postgres).await;
    let reporting = ReportingConfig {
        server_url: Some(format!("{}/postgres", support::postgres_server_url())),
        name_prefix: harness.test_db.reporting_prefix.clone(),
    };
    let engine = Engine::new(harness.db.clone(), Limits::default(), reporting);
    let fixture = TenantFixture::new("server", 2);
    let request = ImportRequest {
        archive: fixture.write_v3(harness.dir.path()),
        import_id: None,
        lock_timeout: Duration::from_secs(10),
    };
    let report = engine
        .import(&request, &harness.db.standalone_lock())
        .await
        .expect("import runs");
    assert_eq!(report.outcome, Outcome::Imported, "{}", report.message);
    let name = report.reporting_database.expect("reporting database");
    assert_eq!(
        harness.test_db.reporting_databases().await,
        vec![name.clone()]
    );
    let stored = harness.rows("SELECT reporting_database FROM tenants").await;
    assert_eq!(stored, vec![name]);
}

//! The import and export commands of the binary, run as a process on SQLite and
//! PostgreSQL: exit codes, the JSON report and the exported file.

#[path = "support/engine_fixtures.rs"]
mod engine_fixtures;
mod support;

use std::path::Path;
use std::process::Command;

use engine_fixtures::TenantFixture;
use support::{Backend, TestDatabase};

fn run(database_url: &str, reporting_prefix: &str, args: &[&str]) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_tenant-operator"))
        .args(args)
        .env("DATABASE_URL", database_url)
        .env("REPORTING_DATABASE_PREFIX", reporting_prefix)
        .env_remove("REPORTING_DATABASE_URL")
        .output()
        .expect("run tenant-operator");
    let code = output.status.code().unwrap_or(-1);
    (code, String::from_utf8_lossy(&output.stdout).into_owned())
}

fn import(test_db: &TestDatabase, archive: &Path) -> (i32, serde_json::Value) {
    let archive = archive.to_str().expect("UTF-8 path");
    let (code, stdout) = run(
        &test_db.url,
        &test_db.reporting_prefix,
        &["import", "--output", "json", archive],
    );
    let report = serde_json::from_str(&stdout).unwrap_or_else(|_| panic!("JSON report: {stdout}"));
    (code, report)
}

#[tokio::test]
async fn import_and_export_commands() {
    for backend in [Backend::Postgres, Backend::Sqlite] {
        let test_db = TestDatabase::new(backend).await;
        let dir = tempfile::tempdir().expect("folder");
        let fixture = TenantFixture::new("command", 5).with_range("5560000", "5560009", "voice");
        let archive = fixture.write_v3(dir.path());

        let (code, report) = import(&test_db, &archive);
        assert_eq!(code, 0, "{backend:?}: {report}");
        assert_eq!(report["outcome"], "Imported", "{backend:?}");
        assert_eq!(report["accessNumbers"]["created"], 10, "{backend:?}");

        let (code, report) = import(&test_db, &archive);
        assert_eq!(code, 3, "{backend:?}: {report}");
        assert_eq!(report["outcome"], "Conflict", "{backend:?}");

        let broken = dir.path().join("broken.zip");
        std::fs::write(&broken, b"not a zip").expect("write");
        let (code, report) = import(&test_db, &broken);
        assert_eq!(code, 5, "{backend:?}: {report}");
        assert_eq!(report["outcome"], "Invalid", "{backend:?}");

        let exported = dir.path().join("exported.zip");
        let output = exported.to_str().expect("UTF-8 path");
        let args = ["export", "--tenant-url", &fixture.url, "-o", output];
        let (code, _) = run(&test_db.url, &test_db.reporting_prefix, &args);
        assert_eq!(code, 0, "{backend:?}: export failed");
        assert!(exported.exists(), "{backend:?}: no exported file");

        let args = ["export", "--tenant-url", "nobody.cc.test", "-o", output];
        let (code, _) = run(&test_db.url, &test_db.reporting_prefix, &args);
        assert_eq!(code, 1, "{backend:?}: export of an unknown tenant");
    }
}

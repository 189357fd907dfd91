//! Export of a tenant as a format-3 archive: import, export, then import into an
//! empty database keeps every GUID, object, attribute and access number.

#[path = "support/engine_fixtures.rs"]
mod engine_fixtures;
#[path = "support/engine_harness.rs"]
mod engine_harness;
mod support;

use engine_fixtures::TenantFixture;
use engine_harness::{BACKENDS, Harness};
use tenant_operator::engine::Outcome;
use tenant_operator::export::{ExportError, export_tenant};

/// Rows of one tenant that a round trip must keep, as text.
async fn tenant_rows(harness: &Harness, guid: &str) -> Vec<Vec<String>> {
    let tenant = harness.row_text("guid, url, name, status, sip_domain, created_at, settings");
    let object = harness.row_text("guid, object_type, name, attributes");
    let number = harness.row_text("digits, value, media");
    vec![
        harness
            .rows(&format!(
                "SELECT {tenant} FROM tenants WHERE guid = '{guid}'"
            ))
            .await,
        harness
            .rows(&format!(
                "SELECT {object} FROM config_objects WHERE tenant_guid = '{guid}'"
            ))
            .await,
        harness
            .rows(&format!(
                "SELECT {number} FROM access_numbers WHERE tenant_guid = '{guid}'"
            ))
            .await,
    ]
}

#[tokio::test]
async fn export_then_import_keeps_everything() {
    for backend in BACKENDS {
        let source = Harness::new(backend).await;
        let fixture = TenantFixture::new("roundtrip", 1200)
            .with_range("14155550100", "14155550199", "voice")
            .with_range("0123", "0125", "text")
            .with_range("18005550123", "18005550123", "voice_text");
        source
            .execute(
                "INSERT INTO trunks (name, domain, carrier) VALUES ('carrier-a', 'a.example', 'A'); \
                 INSERT INTO access_numbers (digits, value, trunk_id, media) \
                 VALUES (11, 14155550150, 1, 'text'), (11, 14155550151, 1, 'text')",
            )
            .await;
        let imported = source.import(&fixture.write_v3(source.dir.path())).await;
        assert_eq!(imported.outcome, Outcome::Imported, "{}", imported.message);
        assert_eq!(imported.access_numbers.assigned, 2, "{backend:?}");

        let exported = source.dir.path().join("exported.zip");
        let url = fixture.url.to_uppercase();
        let summary = export_tenant(&source.db, &url, &exported)
            .await
            .expect("export");
        assert_eq!(summary.objects, 1200, "{backend:?}");
        assert_eq!(summary.numbers, 104, "{backend:?}");

        let target = Harness::new(backend).await;
        let again = target.import(&exported).await;
        assert_eq!(
            again.outcome,
            Outcome::Imported,
            "{backend:?}: {}",
            again.message
        );
        assert_eq!(again.format_version, Some(3), "{backend:?}");
        assert_eq!(again.objects, 1200, "{backend:?}");
        assert_eq!(again.access_numbers.created, 104, "{backend:?}");

        let guid = fixture.guid.to_string();
        let before = tenant_rows(&source, &guid).await;
        let after = tenant_rows(&target, &guid).await;
        assert_eq!(after, before, "{backend:?}: round trip changed the tenant");
    }
}

#[tokio::test]
async fn exported_ranges_name_trunks() {
    for backend in BACKENDS {
        let harness = Harness::new(backend).await;
        let fixture = TenantFixture::new("trunked", 1).with_range("5558000", "5558004", "voice");
        harness
            .execute(
                "INSERT INTO trunks (name, domain, carrier) VALUES ('carrier-b', 'b.example', 'B'); \
                 INSERT INTO access_numbers (digits, value, trunk_id, media) \
                 VALUES (7, 5558002, 1, 'voice'), (7, 5558003, 1, 'voice')",
            )
            .await;
        harness.import(&fixture.write_v3(harness.dir.path())).await;
        let exported = harness.dir.path().join("trunked.zip");
        export_tenant(&harness.db, &fixture.url, &exported)
            .await
            .expect("export");

        let file = std::fs::File::open(&exported).expect("open export");
        let mut zip = zip::ZipArchive::new(file).expect("read export");
        let entry = zip
            .by_name("access-numbers.json")
            .expect("access numbers entry");
        let ranges: serde_json::Value = serde_json::from_reader(entry).expect("json");
        let expected = serde_json::json!([
            {"first": "5558000", "last": "5558001", "media": "voice"},
            {"first": "5558002", "last": "5558003", "media": "voice", "trunk": "carrier-b"},
            {"first": "5558004", "last": "5558004", "media": "voice"},
        ]);
        assert_eq!(ranges, expected, "{backend:?}");
    }
}

#[tokio::test]
async fn export_of_unknown_tenant_fails() {
    for backend in BACKENDS {
        let harness = Harness::new(backend).await;
        let path = harness.dir.path().join("missing.zip");
        let result = export_tenant(&harness.db, "nobody.cc.test", &path).await;
        assert!(
            matches!(result, Err(ExportError::TenantNotFound { .. })),
            "{backend:?}: {result:?}"
        );
        assert!(!path.exists(), "{backend:?}: a file was written");
    }
}

#[tokio::test]
async fn sample_archives_round_trip() {
    let Some(examples) = support::shared_examples() else {
        return;
    };
    for backend in BACKENDS {
        let source = Harness::new(backend).await;
        let target = Harness::new(backend).await;
        for file in ["acme-v3.zip", "globex-v2.zip", "initech-v1.zip"] {
            let case = format!("{backend:?} {file}");
            let imported = source.import(&examples.join(file)).await;
            assert_eq!(
                imported.outcome,
                Outcome::Imported,
                "{case}: {}",
                imported.message
            );
            let tenant = imported.tenant.expect("tenant");

            let exported = source.dir.path().join(file);
            export_tenant(&source.db, &tenant.url, &exported)
                .await
                .expect("export");
            let again = target.import(&exported).await;
            assert_eq!(
                again.outcome,
                Outcome::Imported,
                "{case}: {}",
                again.message
            );

            let guid = tenant.guid.to_string();
            let before = tenant_rows(&source, &guid).await;
            let after = tenant_rows(&target, &guid).await;
            assert_eq!(after, before, "{case}: round trip changed the tenant");
        }
    }
}

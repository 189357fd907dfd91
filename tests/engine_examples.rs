//! The four sample archives imported in the order of their README, on both backends:
//! every access number created by its owner, umbrella's overlapping range of 20
//! numbers skipped whole, and a second import of each a conflict that changes nothing.

#[path = "support/engine_harness.rs"]
mod engine_harness;
mod support;

use engine_harness::{BACKENDS, Harness};
use tenant_operator::engine::{NumberCounts, Outcome, RangeBounds};

/// What importing one sample archive must report.
struct Expected {
    file: &'static str,
    url: &'static str,
    objects: u64,
    created: u64,
    skipped: Option<(&'static str, &'static str)>,
}

/// The sample archives in import order.
const EXPECTED: [Expected; 4] = [
    Expected {
        file: "acme-v3.zip",
        url: "acme.cc.example.com",
        objects: 400,
        created: 151,
        skipped: None,
    },
    Expected {
        file: "globex-v2.zip",
        url: "globex.cc.example.com",
        objects: 150,
        created: 21,
        skipped: None,
    },
    Expected {
        file: "initech-v1.zip",
        url: "initech.cc.example.com",
        objects: 80,
        created: 11,
        skipped: None,
    },
    Expected {
        file: "umbrella-v3.zip",
        url: "umbrella.cc.example.com",
        objects: 60,
        created: 5,
        skipped: Some(("14155550190", "14155550209")),
    },
];

#[tokio::test]
async fn sample_archives_import_in_order() {
    let Some(examples) = support::shared_examples() else {
        return;
    };
    for backend in BACKENDS {
        let harness = Harness::new(backend).await;
        for expected in &EXPECTED {
            let case = format!("{backend:?} {}", expected.file);
            let report = harness.import(&examples.join(expected.file)).await;

            let outcome = report.outcome;
            assert_eq!(outcome, Outcome::Imported, "{case}: {}", report.message);
            let url = report.tenant.as_ref().map(|t| t.url.as_str());
            assert_eq!(url, Some(expected.url), "{case}");
            assert_eq!(report.objects, expected.objects, "{case}");
            let counts = NumberCounts {
                created: expected.created,
                assigned: 0,
                skipped: if expected.skipped.is_some() { 20 } else { 0 },
            };
            assert_eq!(report.access_numbers, counts, "{case}");
            let bounds: Vec<RangeBounds> = expected
                .skipped
                .iter()
                .map(|(first, last)| RangeBounds {
                    first: (*first).to_owned(),
                    last: (*last).to_owned(),
                })
                .collect();
            assert_eq!(report.skipped_ranges, bounds, "{case}");
        }

        let trunks = harness
            .rows("SELECT CAST(value AS TEXT) FROM access_numbers WHERE trunk_id IS NOT NULL")
            .await;
        assert!(
            trunks.is_empty(),
            "{backend:?}: a created number has a trunk"
        );
        let umbrella_owned = harness
            .rows(
                "SELECT CAST(n.value AS TEXT) FROM access_numbers n JOIN tenants t \
                 ON t.guid = n.tenant_guid WHERE t.url = 'umbrella.cc.example.com'",
            )
            .await;
        let expected: Vec<String> = (13105550000_i64..=13105550004)
            .map(|v| v.to_string())
            .collect();
        assert_eq!(
            umbrella_owned, expected,
            "{backend:?}: umbrella owns only its second range"
        );
        let unowned = harness
            .rows("SELECT CAST(value AS TEXT) FROM access_numbers WHERE tenant_guid IS NULL")
            .await;
        assert!(
            unowned.is_empty(),
            "{backend:?}: skipped numbers were created"
        );

        let before = harness.snapshot().await;
        let reporting_before = harness.test_db.reporting_databases().await;
        assert_eq!(reporting_before.len(), 4, "{backend:?}");
        for expected in &EXPECTED {
            let again = harness.import(&examples.join(expected.file)).await;
            let case = format!("{backend:?} {} again", expected.file);
            assert_eq!(again.outcome, Outcome::Conflict, "{case}");
        }
        assert_eq!(
            harness.snapshot().await,
            before,
            "{backend:?}: second imports changed tables"
        );
        assert_eq!(
            harness.test_db.reporting_databases().await,
            reporting_before,
            "{backend:?}"
        );
    }
}

#[tokio::test]
async fn own_sample_archive_imports() {
    for backend in BACKENDS {
        let harness = Harness::new(backend).await;
        let report = harness.import(&support::own_example()).await;
        assert_eq!(
            report.outcome,
            Outcome::Imported,
            "{backend:?}: {}",
            report.message
        );
        assert!(report.objects > 0, "{backend:?}");
        let reporting = harness.test_db.reporting_databases().await;
        assert_eq!(reporting.len(), 1, "{backend:?}");
    }
}

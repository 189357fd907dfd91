//! The engine's bulk paths on both backends. Objects stream over several batches (COPY
//! on PostgreSQL) with every character that COPY text format escapes. Hundreds of
//! ranges are taken with set-based statements on PostgreSQL and range by range on
//! SQLite, and both must give the same rows.

#[path = "support/engine_fixtures.rs"]
mod engine_fixtures;
#[path = "support/engine_harness.rs"]
mod engine_harness;
mod support;

use engine_fixtures::TenantFixture;
use engine_harness::{BACKENDS, Harness};
use serde_json::{Value, json};
use support::Backend;
use tenant_operator::engine::{NumberCounts, Outcome, RangeBounds};

/// Ranges of the many-ranges test, ten numbers each, 20 apart.
const RANGES: i64 = 300;

/// First value of the many-ranges test's numbers, seven digits.
const BASE: i64 = 5_000_000;

#[tokio::test]
async fn objects_keep_escaped_characters() {
    for backend in BACKENDS {
        let harness = Harness::new(backend).await;
        let mut fixture = TenantFixture::new("escapes", 1203);
        for (index, object) in fixture.objects.iter_mut().enumerate() {
            object.name = format!("tab\there {index} back\\slash\nnew\rline \\N");
            object.attributes = json!({
                "text": format!("a\tb\\c\nd\re \\N \u{1} Zoë {index}"),
                "\\key\t": [null, "\\\\", 1.5],
            });
        }
        let report = harness.import(&fixture.write_v3(harness.dir.path())).await;
        let case = format!("{backend:?}");
        assert_eq!(
            report.outcome,
            Outcome::Imported,
            "{case}: {}",
            report.message
        );
        assert_eq!(report.objects, 1203, "{case}");

        let stored = stored_objects(&harness).await;
        assert_eq!(stored.len(), fixture.objects.len(), "{case}");
        for object in &fixture.objects {
            let found = stored
                .iter()
                .find(|(guid, _, _)| *guid == object.guid.to_string());
            let Some((_, name, attributes)) = found else {
                panic!("{case}: object {} missing", object.guid);
            };
            assert_eq!(name, &object.name, "{case}: name of {}", object.guid);
            assert_eq!(
                attributes, &object.attributes,
                "{case}: attributes of {}",
                object.guid
            );
        }
    }
}

#[tokio::test]
async fn many_ranges_same_on_both_backends() {
    let fixture = many_ranges_fixture();
    let other = TenantFixture::new("owner", 1);
    let mut results = Vec::new();
    for backend in BACKENDS {
        let harness = Harness::new(backend).await;
        seed_numbers(&harness, &other).await;
        let report = harness.import(&fixture.write_v3(harness.dir.path())).await;
        let case = format!("{backend:?}");

        assert_eq!(
            report.outcome,
            Outcome::Imported,
            "{case}: {}",
            report.message
        );
        let expected = NumberCounts {
            created: 60 * 5 + 120 * 10,
            assigned: 60 * 10 + 60 * 5,
            skipped: 60 * 10,
        };
        assert_eq!(report.access_numbers, expected, "{case}");
        assert_eq!(
            report.skipped_ranges,
            expected_skipped(),
            "{case}: skipped in archive order"
        );
        let first_owned = range_first(0);
        let free_in_skipped = harness
            .rows(&format!(
                "SELECT {} FROM access_numbers WHERE value = {first_owned}",
                harness.row_text("tenant_guid, trunk_id")
            ))
            .await;
        assert_eq!(
            free_in_skipped,
            vec!["-|1".to_owned()],
            "{case}: a free number of a skipped range stays free"
        );
        let columns = harness.row_text("digits, value, tenant_guid, trunk_id, media");
        let rows = harness
            .rows(&format!("SELECT {columns} FROM access_numbers"))
            .await;
        results.push((report, rows));
    }
    let [
        (postgres_report, postgres_rows),
        (sqlite_report, sqlite_rows),
    ] = <[_; 2]>::try_from(results).expect("one result per backend");
    assert_eq!(postgres_report.access_numbers, sqlite_report.access_numbers);
    assert_eq!(postgres_report.skipped_ranges, sqlite_report.skipped_ranges);
    assert_eq!(postgres_rows, sqlite_rows, "same access_numbers rows");
}

/// First value of range `index`.
fn range_first(index: i64) -> i64 {
    BASE + index * 20
}

/// Builds a tenant with [`RANGES`] ranges of ten numbers, written in descending order so that
/// archive order differs from value order.
fn many_ranges_fixture() -> TenantFixture {
    let mut fixture = TenantFixture::new("many", 3);
    for index in (0..RANGES).rev() {
        let first = range_first(index);
        let media = ["voice", "text", "voice_text"][(index % 3) as usize];
        fixture = fixture.with_range(&first.to_string(), &(first + 9).to_string(), media);
    }
    fixture
}

/// Lists the ranges that contain an owned number, in the fixture's descending order.
fn expected_skipped() -> Vec<RangeBounds> {
    (0..RANGES)
        .rev()
        .filter(|index| index % 5 == 0)
        .map(|index| RangeBounds {
            first: range_first(index).to_string(),
            last: (range_first(index) + 9).to_string(),
        })
        .collect()
}

/// Seeds numbers so that range `i` hits one case by `i % 5`. Case 0 contains a number
/// owned by `other` (its fifth) and a free one (its first), 1 is all free, 2 has its
/// even numbers free, and 3 and 4 are missing. Free numbers are on trunk 1.
async fn seed_numbers(harness: &Harness, other: &TenantFixture) {
    let mut owner = other.clone();
    for index in (0..RANGES).filter(|index| index % 5 == 0) {
        let owned = (range_first(index) + 4).to_string();
        owner = owner.with_range(&owned, &owned, "voice");
    }
    let report = harness.import(&owner.write_v3(harness.dir.path())).await;
    assert_eq!(report.outcome, Outcome::Imported, "{}", report.message);

    let mut free = Vec::new();
    for index in 0..RANGES {
        let first = range_first(index);
        let values: Vec<i64> = match index % 5 {
            0 => vec![first],
            1 => (first..first + 10).collect(),
            2 => (first..first + 10).step_by(2).collect(),
            _ => Vec::new(),
        };
        free.extend(values);
    }
    let rows: Vec<String> = free
        .iter()
        .map(|value| format!("(7, {value}, NULL, 1, 'voice')"))
        .collect();
    harness
        .execute(&format!(
            "INSERT INTO trunks (name, domain, carrier) VALUES ('carrier-x', 'x.example', 'X'); \
             INSERT INTO access_numbers (digits, value, tenant_guid, trunk_id, media) VALUES {}",
            rows.join(", ")
        ))
        .await;
}

/// Returns every object as (GUID, name, attributes).
async fn stored_objects(harness: &Harness) -> Vec<(String, String, Value)> {
    let sql = match harness.backend() {
        Backend::Postgres => "SELECT guid::text, name, attributes::text FROM config_objects",
        Backend::Sqlite => "SELECT guid, name, attributes FROM config_objects",
    };
    let rows: Vec<(String, String, String)> = match &harness.db {
        tenant_operator::db::Database::Postgres(pool) => sqlx::query_as(sql).fetch_all(pool).await,
        tenant_operator::db::Database::Sqlite(pool) => sqlx::query_as(sql).fetch_all(pool).await,
    }
    .expect("read objects");
    rows.into_iter()
        .map(|(guid, name, attributes)| {
            let attributes = serde_json::from_str(&attributes).expect("attributes are JSON");
            (guid, name, attributes)
        })
        .collect()
}

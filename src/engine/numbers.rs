//! Access numbers, against the primary key `(digits, value)`:
//!
//! - a range with any number owned by a tenant is skipped whole;
//! - otherwise the range's existing numbers (all free) are assigned to the tenant,
//!   keeping their trunk and taking the archive's media;
//! - and its missing numbers are created, owned by the tenant, with no trunk.
//!
//! On PostgreSQL all ranges go into a temporary table and each of the three steps is
//! one statement over all of them, so the number of round trips does not grow with
//! the number of ranges. SQLite runs in-process and takes the ranges one at a time.
//! Both give the same result, because the ranges of an archive never overlap.

use sqlx::postgres::PgConnection;
use sqlx::sqlite::SqliteConnection;
use uuid::Uuid;

use super::fault;
use super::transaction::{Conn, guid_text};
use super::{NumberCounts, RangeBounds};
use crate::model::NumberRange;

/// The result of taking the archive's access numbers.
#[derive(Debug, Default)]
pub(super) struct NumbersResult {
    /// Created, assigned and skipped counts.
    pub counts: NumberCounts,
    /// Ranges skipped whole, as written in the archive.
    pub skipped_ranges: Vec<RangeBounds>,
}

/// Takes every range of the archive for `tenant`.
pub(super) async fn import(
    conn: Conn<'_>,
    tenant: Uuid,
    ranges: &[NumberRange],
) -> Result<NumbersResult, sqlx::Error> {
    match conn {
        Conn::Postgres(conn) => import_postgres(conn, tenant, ranges).await,
        Conn::Sqlite(conn) => import_by_range(conn, tenant, ranges).await,
    }
}

/// Takes all ranges with one statement per step: find the ranges that hold an owned
/// number, assign the free numbers of the others, then create their missing numbers.
async fn import_postgres(
    conn: &mut PgConnection,
    tenant: Uuid,
    ranges: &[NumberRange],
) -> Result<NumbersResult, sqlx::Error> {
    let mut result = NumbersResult::default();
    if ranges.is_empty() {
        return Ok(result);
    }
    load_ranges(conn, ranges).await?;
    fault::point("numbers:loaded").await;

    // Each range probes the partial index of owned numbers once.
    let owned: Vec<i32> = sqlx::query_scalar(
        "SELECT r.ordinal FROM import_ranges r WHERE EXISTS (SELECT 1 FROM access_numbers a \
         WHERE a.digits = r.digits AND a.value BETWEEN r.first AND r.last \
         AND a.tenant_guid IS NOT NULL) ORDER BY r.ordinal",
    )
    .fetch_all(&mut *conn)
    .await?;
    for ordinal in &owned {
        let Some(range) = usize::try_from(*ordinal).ok().and_then(|i| ranges.get(i)) else {
            continue;
        };
        result.counts.skipped += range.len().unsigned_abs();
        result.skipped_ranges.push(RangeBounds {
            first: range.first.to_string(),
            last: range.last.to_string(),
        });
    }
    sqlx::query("DELETE FROM import_ranges WHERE ordinal = ANY($1)")
        .bind(&owned)
        .execute(&mut *conn)
        .await?;
    fault::point("numbers:skipped").await;

    result.counts.assigned = sqlx::query(
        "UPDATE access_numbers a SET tenant_guid = $1, media = r.media FROM import_ranges r \
         WHERE a.digits = r.digits AND a.value BETWEEN r.first AND r.last \
         AND a.tenant_guid IS NULL",
    )
    .bind(tenant)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    fault::point("numbers:assigned").await;
    result.counts.created = sqlx::query(
        "INSERT INTO access_numbers (digits, value, tenant_guid, trunk_id, media) \
         SELECT r.digits, value, $1, NULL, r.media \
         FROM import_ranges r CROSS JOIN LATERAL generate_series(r.first, r.last) AS value \
         ON CONFLICT (digits, value) DO NOTHING",
    )
    .bind(tenant)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    fault::point("numbers:created").await;

    sqlx::query("DROP TABLE import_ranges")
        .execute(&mut *conn)
        .await?;
    Ok(result)
}

/// Creates the temporary table `import_ranges` with one row per range, `ordinal`
/// being the range's index in the archive, and gives the planner its statistics.
async fn load_ranges(conn: &mut PgConnection, ranges: &[NumberRange]) -> Result<(), sqlx::Error> {
    sqlx::query("DROP TABLE IF EXISTS import_ranges")
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "CREATE TEMP TABLE import_ranges (ordinal integer PRIMARY KEY, digits smallint NOT NULL, \
         first bigint NOT NULL, last bigint NOT NULL, media text NOT NULL) ON COMMIT DROP",
    )
    .execute(&mut *conn)
    .await?;

    let count = i32::try_from(ranges.len()).unwrap_or(i32::MAX);
    let ordinals: Vec<i32> = (0..count).collect();
    let digits: Vec<i16> = ranges
        .iter()
        .map(|range| i16::from(range.first.digits))
        .collect();
    let firsts: Vec<i64> = ranges.iter().map(|range| range.first.value).collect();
    let lasts: Vec<i64> = ranges.iter().map(|range| range.last.value).collect();
    let media: Vec<&str> = ranges.iter().map(|range| range.media.as_str()).collect();
    sqlx::query(
        "INSERT INTO import_ranges (ordinal, digits, first, last, media) \
         SELECT * FROM UNNEST($1::int4[], $2::int2[], $3::int8[], $4::int8[], $5::text[])",
    )
    .bind(ordinals)
    .bind(digits)
    .bind(firsts)
    .bind(lasts)
    .bind(media)
    .execute(&mut *conn)
    .await?;

    // Autovacuum never analyses temporary tables. Without statistics the planner may
    // join the ranges to all access numbers instead of probing the index.
    sqlx::query("ANALYZE import_ranges")
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Takes the ranges one at a time, in archive order.
async fn import_by_range(
    conn: &mut SqliteConnection,
    tenant: Uuid,
    ranges: &[NumberRange],
) -> Result<NumbersResult, sqlx::Error> {
    let mut result = NumbersResult::default();
    for (index, range) in (1..).zip(ranges) {
        if is_owned(conn, range).await? {
            result.counts.skipped += range.len().unsigned_abs();
            result.skipped_ranges.push(RangeBounds {
                first: range.first.to_string(),
                last: range.last.to_string(),
            });
        } else {
            result.counts.assigned += assign_free(conn, tenant, range).await?;
            result.counts.created += create_missing(conn, tenant, range).await?;
        }
        fault::indexed_point("numbers", index).await;
    }
    Ok(result)
}

/// Returns whether any number of the range is owned by a tenant.
async fn is_owned(conn: &mut SqliteConnection, range: &NumberRange) -> Result<bool, sqlx::Error> {
    let (digits, first, last) = bounds(range);
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM access_numbers WHERE digits = ?1 \
         AND value BETWEEN ?2 AND ?3 AND tenant_guid IS NOT NULL)",
    )
    .bind(digits)
    .bind(first)
    .bind(last)
    .fetch_one(conn)
    .await
}

/// Assigns the range's existing numbers, all free, to `tenant`. Returns how many.
async fn assign_free(
    conn: &mut SqliteConnection,
    tenant: Uuid,
    range: &NumberRange,
) -> Result<u64, sqlx::Error> {
    let (digits, first, last) = bounds(range);
    let done = sqlx::query(
        "UPDATE access_numbers SET tenant_guid = ?4, media = ?5 \
         WHERE digits = ?1 AND value BETWEEN ?2 AND ?3 AND tenant_guid IS NULL",
    )
    .bind(digits)
    .bind(first)
    .bind(last)
    .bind(guid_text(tenant))
    .bind(range.media.as_str())
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// Creates the range's missing numbers, owned by `tenant`, with no trunk. Returns how
/// many.
async fn create_missing(
    conn: &mut SqliteConnection,
    tenant: Uuid,
    range: &NumberRange,
) -> Result<u64, sqlx::Error> {
    let (digits, first, last) = bounds(range);
    // SQLite has no generate_series without an extension, so a recursive CTE counts
    // through the range. `WHERE true` resolves the parsing ambiguity of an upsert
    // after a SELECT.
    let done = sqlx::query(
        "WITH RECURSIVE series(value) AS (SELECT ?2 UNION ALL \
         SELECT value + 1 FROM series WHERE value < ?3) \
         INSERT INTO access_numbers (digits, value, tenant_guid, trunk_id, media) \
         SELECT ?1, value, ?4, NULL, ?5 FROM series WHERE true \
         ON CONFLICT (digits, value) DO NOTHING",
    )
    .bind(digits)
    .bind(first)
    .bind(last)
    .bind(guid_text(tenant))
    .bind(range.media.as_str())
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

fn bounds(range: &NumberRange) -> (i64, i64, i64) {
    (
        i64::from(range.first.digits),
        range.first.value,
        range.last.value,
    )
}

//! Access numbers, against the primary key `(digits, value)`:
//!
//! - a range with any number owned by a tenant is skipped whole;
//! - otherwise the range's existing numbers (all free) are assigned to the tenant,
//!   keeping their trunk and taking the archive's media;
//! - and its missing numbers are created, owned by the tenant, with no trunk.
//!
//! On both backends all ranges go into a temporary table and each of the three steps
//! is one statement over all of them, so the number of statements does not grow with
//! the number of ranges. Taking the ranges together gives the same result as taking
//! them one at a time, because the ranges of an archive never overlap.

use sqlx::QueryBuilder;
use sqlx::postgres::PgConnection;
use sqlx::sqlite::{Sqlite, SqliteConnection};
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
        Conn::Sqlite(conn) => import_sqlite(conn, tenant, ranges).await,
    }
}

/// Adds the ranges at `ordinals`, indexes into `ranges`, to the skipped ones.
fn record_skipped(result: &mut NumbersResult, ranges: &[NumberRange], ordinals: &[i64]) {
    for ordinal in ordinals {
        let Some(range) = usize::try_from(*ordinal).ok().and_then(|i| ranges.get(i)) else {
            continue;
        };
        result.counts.skipped += range.len().unsigned_abs();
        result.skipped_ranges.push(RangeBounds {
            first: range.first.to_string(),
            last: range.last.to_string(),
        });
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
    let ordinals: Vec<i64> = owned.iter().copied().map(i64::from).collect();
    record_skipped(&mut result, ranges, &ordinals);
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

/// Takes all ranges with one statement per step, as on PostgreSQL: remove the ranges
/// that hold an owned number, assign the free numbers of the others, then create
/// their missing numbers.
async fn import_sqlite(
    conn: &mut SqliteConnection,
    tenant: Uuid,
    ranges: &[NumberRange],
) -> Result<NumbersResult, sqlx::Error> {
    let mut result = NumbersResult::default();
    if ranges.is_empty() {
        return Ok(result);
    }
    load_ranges_sqlite(conn, ranges).await?;
    fault::point("numbers:loaded").await;

    // Each range searches the primary key over its own numbers once.
    let mut owned: Vec<i64> = sqlx::query_scalar(
        "DELETE FROM import_ranges AS r WHERE EXISTS (SELECT 1 FROM access_numbers a \
         WHERE a.digits = r.digits AND a.value BETWEEN r.first AND r.last \
         AND a.tenant_guid IS NOT NULL) RETURNING ordinal",
    )
    .fetch_all(&mut *conn)
    .await?;
    owned.sort_unstable();
    record_skipped(&mut result, ranges, &owned);
    fault::point("numbers:skipped").await;

    let tenant = guid_text(tenant);
    result.counts.assigned = sqlx::query(
        "UPDATE access_numbers SET tenant_guid = ?1, media = r.media FROM import_ranges r \
         WHERE access_numbers.digits = r.digits \
         AND access_numbers.value BETWEEN r.first AND r.last \
         AND access_numbers.tenant_guid IS NULL",
    )
    .bind(&tenant)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    fault::point("numbers:assigned").await;

    // SQLite has no generate_series without an extension, so a recursive CTE counts
    // through every range. Its ORDER BY makes the queue yield numbers in key order, so
    // they go into the primary key in order. Without it the queue is first in, first
    // out, and the numbers of all ranges would come interleaved. `WHERE true` resolves
    // the parsing ambiguity of an upsert after a SELECT.
    result.counts.created = sqlx::query(
        "WITH RECURSIVE series(digits, value, last, media) AS ( \
         SELECT digits, first, last, media FROM import_ranges UNION ALL \
         SELECT digits, value + 1, last, media FROM series WHERE value < last \
         ORDER BY 1, 2) \
         INSERT INTO access_numbers (digits, value, tenant_guid, trunk_id, media) \
         SELECT digits, value, ?1, NULL, media FROM series WHERE true \
         ON CONFLICT (digits, value) DO NOTHING",
    )
    .bind(&tenant)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    fault::point("numbers:created").await;

    sqlx::query("DROP TABLE temp.import_ranges")
        .execute(&mut *conn)
        .await?;
    Ok(result)
}

/// Creates the temporary table `import_ranges` on SQLite, like [`load_ranges`], with
/// multi-row inserts.
async fn load_ranges_sqlite(
    conn: &mut SqliteConnection,
    ranges: &[NumberRange],
) -> Result<(), sqlx::Error> {
    /// Rows per insert: five parameters each, well under SQLite's default limit of
    /// 32,766 parameters per statement.
    const ROWS_PER_INSERT: usize = 1000;

    sqlx::query("DROP TABLE IF EXISTS temp.import_ranges")
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "CREATE TEMP TABLE import_ranges (ordinal INTEGER PRIMARY KEY, \
         digits INTEGER NOT NULL, first INTEGER NOT NULL, last INTEGER NOT NULL, \
         media TEXT NOT NULL)",
    )
    .execute(&mut *conn)
    .await?;
    for (chunk_index, chunk) in ranges.chunks(ROWS_PER_INSERT).enumerate() {
        let offset = chunk_index * ROWS_PER_INSERT;
        let mut insert: QueryBuilder<Sqlite> =
            QueryBuilder::new("INSERT INTO import_ranges (ordinal, digits, first, last, media) ");
        insert.push_values(chunk.iter().enumerate(), |mut row, (index, range)| {
            let (digits, first, last) = bounds(range);
            row.push_bind(i64::try_from(offset + index).unwrap_or(i64::MAX))
                .push_bind(digits)
                .push_bind(first)
                .push_bind(last)
                .push_bind(range.media.as_str());
        });
        insert.build().execute(&mut *conn).await?;
    }
    Ok(())
}

fn bounds(range: &NumberRange) -> (i64, i64, i64) {
    (
        i64::from(range.first.digits),
        range.first.value,
        range.last.value,
    )
}

//! Access numbers, one archive range at a time, set-based against the primary key
//! `(digits, value)`:
//!
//! - a range with any number owned by a tenant is skipped whole;
//! - otherwise the range's existing numbers (all free) are assigned to the tenant,
//!   keeping their trunk and taking the archive's media;
//! - and its missing numbers are created, owned by the tenant, with no trunk.

use uuid::Uuid;

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
    mut conn: Conn<'_>,
    tenant: Uuid,
    ranges: &[NumberRange],
) -> Result<NumbersResult, sqlx::Error> {
    let mut result = NumbersResult::default();
    for range in ranges {
        if is_owned(conn.reborrow(), range).await? {
            result.counts.skipped += range.len().unsigned_abs();
            result.skipped_ranges.push(RangeBounds {
                first: range.first.to_string(),
                last: range.last.to_string(),
            });
            continue;
        }
        result.counts.assigned += assign_free(conn.reborrow(), tenant, range).await?;
        result.counts.created += create_missing(conn.reborrow(), tenant, range).await?;
    }
    Ok(result)
}

/// Returns whether any number of the range is owned by a tenant.
async fn is_owned(conn: Conn<'_>, range: &NumberRange) -> Result<bool, sqlx::Error> {
    let (digits, first, last) = bounds(range);
    match conn {
        Conn::Postgres(conn) => {
            sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM access_numbers WHERE digits = $1 \
                 AND value BETWEEN $2 AND $3 AND tenant_guid IS NOT NULL)",
            )
            .bind(i16::from(range.first.digits))
            .bind(first)
            .bind(last)
            .fetch_one(conn)
            .await
        }
        Conn::Sqlite(conn) => {
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
    }
}

/// Assigns the range's existing numbers, all free, to `tenant`. Returns how many.
async fn assign_free(
    conn: Conn<'_>,
    tenant: Uuid,
    range: &NumberRange,
) -> Result<u64, sqlx::Error> {
    let (digits, first, last) = bounds(range);
    let media = range.media.as_str();
    let done = match conn {
        Conn::Postgres(conn) => sqlx::query(
            "UPDATE access_numbers SET tenant_guid = $4, media = $5 \
                 WHERE digits = $1 AND value BETWEEN $2 AND $3 AND tenant_guid IS NULL",
        )
        .bind(i16::from(range.first.digits))
        .bind(first)
        .bind(last)
        .bind(tenant)
        .bind(media)
        .execute(conn)
        .await?
        .rows_affected(),
        Conn::Sqlite(conn) => sqlx::query(
            "UPDATE access_numbers SET tenant_guid = ?4, media = ?5 \
             WHERE digits = ?1 AND value BETWEEN ?2 AND ?3 AND tenant_guid IS NULL",
        )
        .bind(digits)
        .bind(first)
        .bind(last)
        .bind(guid_text(tenant))
        .bind(media)
        .execute(conn)
        .await?
        .rows_affected(),
    };
    Ok(done)
}

/// Creates the range's missing numbers, owned by `tenant`, with no trunk. Returns how
/// many.
async fn create_missing(
    conn: Conn<'_>,
    tenant: Uuid,
    range: &NumberRange,
) -> Result<u64, sqlx::Error> {
    let (digits, first, last) = bounds(range);
    let media = range.media.as_str();
    let done = match conn {
        Conn::Postgres(conn) => sqlx::query(
            "INSERT INTO access_numbers (digits, value, tenant_guid, trunk_id, media) \
             SELECT $1, value, $4, NULL, $5 FROM generate_series($2::bigint, $3::bigint) AS value \
             ON CONFLICT (digits, value) DO NOTHING",
        )
        .bind(i16::from(range.first.digits))
        .bind(first)
        .bind(last)
        .bind(tenant)
        .bind(media)
        .execute(conn)
        .await?
        .rows_affected(),
        // SQLite has no generate_series without an extension, so a recursive CTE
        // counts through the range. `WHERE true` resolves the parsing ambiguity of
        // an upsert after a SELECT.
        Conn::Sqlite(conn) => sqlx::query(
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
        .bind(media)
        .execute(conn)
        .await?
        .rows_affected(),
    };
    Ok(done)
}

fn bounds(range: &NumberRange) -> (i64, i64, i64) {
    (
        i64::from(range.first.digits),
        range.first.value,
        range.last.value,
    )
}

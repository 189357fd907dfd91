//! Administration queries for tenants, access numbers and trunks, on PostgreSQL and
//! SQLite.
//!
//! The HTTP shim calls these; they know nothing of HTTP. Each query is written once
//! in SQL that both backends accept: GUIDs are read as text with `CAST(guid AS TEXT)`
//! and tenants are found by `url_key`, so no query binds a backend-specific UUID type.
//! Write transactions on SQLite start with `BEGIN IMMEDIATE`, so two writers wait on
//! the busy timeout instead of failing on a lock upgrade.

use std::collections::HashMap;

use serde::Serialize;

use super::Database;
use crate::model::{AccessNumber, Media, NumberRange, TenantStatus, url_key};

/// The largest number of access numbers one create or delete request may cover.
pub const MAX_NUMBERS_PER_REQUEST: i64 = 100_000;

/// Runs `$body` with `$pool` bound to the backend's pool and `$begin` to the statement
/// that opens a write transaction on it.
macro_rules! on_pool {
    ($db:expr, |$pool:ident, $begin:ident| $body:expr) => {
        match $db {
            Database::Postgres($pool) => {
                let $begin = "BEGIN";
                let _ = $begin;
                $body
            }
            Database::Sqlite($pool) => {
                let $begin = "BEGIN IMMEDIATE";
                let _ = $begin;
                $body
            }
        }
    };
}

/// An error of an administration request.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// No tenant has this URL.
    #[error("tenant {url:?} does not exist")]
    TenantNotFound {
        /// The URL requested.
        url: String,
    },
    /// The tenant must be deactivated first.
    #[error("tenant {url:?} is active; deactivate it before deleting it")]
    TenantActive {
        /// The tenant's URL.
        url: String,
    },
    /// No trunk has this name.
    #[error("trunk {name:?} does not exist; create it with the trunk route first")]
    TrunkNotFound {
        /// The trunk name.
        name: String,
    },
    /// A trunk with this name exists.
    #[error("trunk {name:?} already exists")]
    TrunkExists {
        /// The trunk name.
        name: String,
    },
    /// Some numbers of the range exist.
    #[error("{existing} of the access numbers {first}-{last} already exist; nothing was created")]
    NumbersExist {
        /// First number of the range.
        first: String,
        /// Last number of the range.
        last: String,
        /// How many of them exist.
        existing: i64,
    },
    /// None of the numbers of the range exist.
    #[error("none of the access numbers {first}-{last} exist")]
    NumbersNotFound {
        /// First number of the range.
        first: String,
        /// Last number of the range.
        last: String,
    },
    /// A request value is invalid; the message names it.
    #[error("{0}")]
    InvalidArgument(String),
    /// The database failed.
    #[error("database operation failed")]
    Database(#[from] sqlx::Error),
}

/// A tenant as the list route shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TenantSummary {
    /// GUID, lower-case hyphenated.
    pub guid: String,
    /// URL as imported.
    pub url: String,
    /// Name.
    pub name: String,
    /// `active` or `inactive`.
    pub status: String,
}

/// The rows and databases a tenant deletion removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletedTenant {
    /// The deleted tenant.
    pub tenant: TenantSummary,
    /// Its reporting database, which the caller drops after the commit.
    pub reporting_database: Option<String>,
    /// Access numbers deleted (without keepAccessNumbers).
    pub numbers_deleted: u64,
    /// Access numbers left in place, now free (with keepAccessNumbers).
    pub numbers_freed: u64,
    /// Configuration objects deleted.
    pub objects_deleted: u64,
}

/// A trunk and one of its prefixes, as an access-number creation request names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrunkPrefix {
    /// The trunk name.
    pub name: String,
    /// Digits that a number must start with to use this trunk; empty matches every
    /// number.
    pub prefix: String,
}

/// A request to create consecutive access numbers.
#[derive(Debug, Clone)]
pub struct NewNumbers {
    /// The numbers to create.
    pub range: NumberRange,
    /// The owning tenant's URL, or `None` for free numbers.
    pub tenant_url: Option<String>,
    /// Candidate trunks: each number gets the trunk whose prefix is the longest prefix
    /// of the number, or no trunk when none matches.
    pub trunks: Vec<TrunkPrefix>,
}

/// One access number as the list route shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NumberListing {
    /// The digits.
    pub number: String,
    /// The owning tenant's URL, `null` when free.
    pub tenant_url: Option<String>,
    /// The trunk's name, `null` when none.
    pub trunk: Option<String>,
    /// `VOICE`, `TEXT` or `VOICE_AND_TEXT`.
    pub media: &'static str,
}

/// A new trunk.
#[derive(Debug, Clone)]
pub struct NewTrunk {
    /// Unique name.
    pub name: String,
    /// SIP domain.
    pub domain: String,
    /// Carrier name.
    pub carrier: String,
    /// Routing prefixes and their cost per minute.
    pub prefixes: Vec<(String, f64)>,
}

/// guid, url, name, status, reporting database.
type TenantRow = (String, String, String, String, Option<String>);
/// digits, value, tenant URL, trunk name, media.
type NumberRow = (i32, i64, Option<String>, Option<String>, String);

/// Lists every tenant, ordered by URL.
///
/// # Errors
///
/// Returns [`AdminError::Database`] when the query fails.
pub async fn list_tenants(db: &Database) -> Result<Vec<TenantSummary>, AdminError> {
    const SQL: &str = "SELECT CAST(guid AS TEXT), url, name, status, reporting_database \
                       FROM tenants ORDER BY url_key";
    let rows: Vec<TenantRow> = on_pool!(db, |pool, _begin| sqlx::query_as(SQL)
        .fetch_all(pool)
        .await?);
    Ok(rows.into_iter().map(|row| summary(row).0).collect())
}

/// Finds a tenant by URL, compared case-insensitively.
///
/// # Errors
///
/// Returns [`AdminError::Database`] when the query fails.
pub async fn find_tenant(db: &Database, url: &str) -> Result<Option<TenantSummary>, AdminError> {
    const SQL: &str = "SELECT CAST(guid AS TEXT), url, name, status, reporting_database \
                       FROM tenants WHERE url_key = $1";
    let key = url_key(url);
    let row: Option<TenantRow> = on_pool!(db, |pool, _begin| sqlx::query_as(SQL)
        .bind(&key)
        .fetch_optional(pool)
        .await?);
    Ok(row.map(|row| summary(row).0))
}

/// Sets a tenant's status.
///
/// # Errors
///
/// Returns [`AdminError::TenantNotFound`] for an unknown URL.
pub async fn set_tenant_status(
    db: &Database,
    url: &str,
    status: TenantStatus,
) -> Result<TenantSummary, AdminError> {
    const SQL: &str = "UPDATE tenants SET status = $1 WHERE url_key = $2";
    let key = url_key(url);
    let updated = on_pool!(db, |pool, _begin| sqlx::query(SQL)
        .bind(status.as_str())
        .bind(&key)
        .execute(pool)
        .await?
        .rows_affected());
    if updated == 0 {
        return Err(AdminError::TenantNotFound {
            url: url.to_owned(),
        });
    }
    find_tenant(db, url)
        .await?
        .ok_or_else(|| AdminError::TenantNotFound {
            url: url.to_owned(),
        })
}

/// Deletes an inactive tenant and its objects in one transaction. Its access numbers
/// are deleted, or with `keep_numbers` left in place as free numbers that keep their
/// trunk. The caller drops the returned reporting database after this returns.
///
/// # Errors
///
/// Returns [`AdminError::TenantNotFound`] for an unknown URL and
/// [`AdminError::TenantActive`] for an active tenant; nothing is changed then.
pub async fn delete_tenant(
    db: &Database,
    url: &str,
    keep_numbers: bool,
) -> Result<DeletedTenant, AdminError> {
    const FIND: &str = "SELECT CAST(guid AS TEXT), url, name, status, reporting_database \
                        FROM tenants WHERE url_key = $1";
    const FREE_NUMBERS: &str = "UPDATE access_numbers SET tenant_guid = NULL \
        WHERE tenant_guid = (SELECT guid FROM tenants WHERE url_key = $1)";
    const DELETE_NUMBERS: &str = "DELETE FROM access_numbers \
        WHERE tenant_guid = (SELECT guid FROM tenants WHERE url_key = $1)";
    const DELETE_OBJECTS: &str = "DELETE FROM config_objects \
        WHERE tenant_guid = (SELECT guid FROM tenants WHERE url_key = $1)";
    const DELETE_TENANT: &str = "DELETE FROM tenants WHERE url_key = $1";

    let key = url_key(url);
    on_pool!(db, |pool, begin| {
        let mut tx = pool.begin_with(begin).await?;
        let row: Option<TenantRow> = sqlx::query_as(FIND)
            .bind(&key)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            return Err(AdminError::TenantNotFound {
                url: url.to_owned(),
            });
        };
        let (tenant, reporting_database) = summary(row);
        if tenant.status == TenantStatus::Active.as_str() {
            return Err(AdminError::TenantActive { url: tenant.url });
        }
        let numbers_sql = if keep_numbers {
            FREE_NUMBERS
        } else {
            DELETE_NUMBERS
        };
        let numbers = sqlx::query(numbers_sql)
            .bind(&key)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let objects_deleted = sqlx::query(DELETE_OBJECTS)
            .bind(&key)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query(DELETE_TENANT)
            .bind(&key)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(DeletedTenant {
            tenant,
            reporting_database,
            numbers_deleted: if keep_numbers { 0 } else { numbers },
            numbers_freed: if keep_numbers { numbers } else { 0 },
            objects_deleted,
        })
    })
}

/// Creates a trunk with its prefixes.
///
/// # Errors
///
/// Returns [`AdminError::InvalidArgument`] for a blank field, a prefix that is not
/// digits, a repeated prefix or a cost that is negative or not finite, and
/// [`AdminError::TrunkExists`] when the name is taken.
pub async fn create_trunk(db: &Database, trunk: &NewTrunk) -> Result<(), AdminError> {
    const INSERT_TRUNK: &str =
        "INSERT INTO trunks (name, domain, carrier) VALUES ($1, $2, $3) RETURNING id";
    const INSERT_PREFIX: &str =
        "INSERT INTO trunk_prefixes (trunk_id, prefix, cost) VALUES ($1, $2, $3)";

    validate_trunk(trunk)?;
    // The async block keeps `?` inside, so a unique violation reaches the match below.
    let result: Result<(), sqlx::Error> = on_pool!(db, |pool, begin| async {
        let mut tx = pool.begin_with(begin).await?;
        let id: i64 = sqlx::query_scalar(INSERT_TRUNK)
            .bind(&trunk.name)
            .bind(&trunk.domain)
            .bind(&trunk.carrier)
            .fetch_one(&mut *tx)
            .await?;
        for (prefix, cost) in &trunk.prefixes {
            sqlx::query(INSERT_PREFIX)
                .bind(id)
                .bind(prefix)
                .bind(cost)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await
    }
    .await);
    match result {
        Err(error) if is_unique_violation(&error) => Err(AdminError::TrunkExists {
            name: trunk.name.clone(),
        }),
        other => Ok(other?),
    }
}

/// Creates consecutive access numbers, all or none.
///
/// # Errors
///
/// Returns [`AdminError::TenantNotFound`] or [`AdminError::TrunkNotFound`] for an
/// unknown name, [`AdminError::InvalidArgument`] for a range over
/// [`MAX_NUMBERS_PER_REQUEST`] or an ambiguous trunk choice, and
/// [`AdminError::NumbersExist`] when any of the numbers exists.
pub async fn create_access_numbers(db: &Database, request: &NewNumbers) -> Result<u64, AdminError> {
    const COUNT_EXISTING: &str = "SELECT COUNT(*) FROM access_numbers \
        WHERE digits = $1 AND value BETWEEN $2 AND $3";
    const TENANT_EXISTS: &str = "SELECT COUNT(*) FROM tenants WHERE url_key = $1";
    const TRUNK_ID: &str = "SELECT id FROM trunks WHERE name = $1";
    // One statement per run of numbers that share a trunk; the recursive CTE counts
    // from the run's first value to its last.
    const INSERT_RUN: &str = "WITH RECURSIVE seq(v) AS ( \
            SELECT CAST($1 AS BIGINT) UNION ALL SELECT v + 1 FROM seq WHERE v < $2) \
        INSERT INTO access_numbers (digits, value, tenant_guid, trunk_id, media) \
        SELECT $3, v, (SELECT guid FROM tenants WHERE url_key = $4), $5, $6 FROM seq";

    let range = &request.range;
    check_request_size(range)?;
    validate_trunk_prefixes(&request.trunks)?;
    let tenant_key = request.tenant_url.as_deref().map(url_key);
    let digits = i16::from(range.first.digits);
    let (first, last) = (range.first.to_string(), range.last.to_string());

    let result: Result<u64, AdminError> = on_pool!(db, |pool, begin| async {
        let mut tx = pool.begin_with(begin).await?;
        if let (Some(url), Some(key)) = (&request.tenant_url, &tenant_key) {
            let found: i64 = sqlx::query_scalar(TENANT_EXISTS)
                .bind(key)
                .fetch_one(&mut *tx)
                .await?;
            if found == 0 {
                return Err(AdminError::TenantNotFound { url: url.clone() });
            }
        }
        let mut trunk_ids: HashMap<&str, i64> = HashMap::new();
        for trunk in &request.trunks {
            let id: Option<i64> = sqlx::query_scalar(TRUNK_ID)
                .bind(&trunk.name)
                .fetch_optional(&mut *tx)
                .await?;
            let id = id.ok_or_else(|| AdminError::TrunkNotFound {
                name: trunk.name.clone(),
            })?;
            trunk_ids.insert(trunk.name.as_str(), id);
        }
        let existing: i64 = sqlx::query_scalar(COUNT_EXISTING)
            .bind(digits)
            .bind(range.first.value)
            .bind(range.last.value)
            .fetch_one(&mut *tx)
            .await?;
        if existing > 0 {
            return Err(AdminError::NumbersExist {
                first: first.clone(),
                last: last.clone(),
                existing,
            });
        }
        for run in trunk_runs(range, &request.trunks) {
            let trunk_id = run.trunk.map(|name| trunk_ids[name]);
            sqlx::query(INSERT_RUN)
                .bind(run.first)
                .bind(run.last)
                .bind(digits)
                .bind(&tenant_key)
                .bind(trunk_id)
                .bind(range.media.as_str())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(range.len() as u64)
    }
    .await);
    match result {
        Err(AdminError::Database(error)) if is_unique_violation(&error) => {
            Err(AdminError::NumbersExist {
                first,
                last,
                existing: 1,
            })
        }
        other => other,
    }
}

/// Lists access numbers in order of length and value, `limit` at most, starting after
/// `after`, optionally only those of one tenant.
///
/// # Errors
///
/// Returns [`AdminError::TenantNotFound`] when `tenant_url` names no tenant.
pub async fn list_access_numbers(
    db: &Database,
    tenant_url: Option<&str>,
    after: Option<AccessNumber>,
    limit: u32,
) -> Result<Vec<NumberListing>, AdminError> {
    // Keyset pagination on the primary key (digits, value): the row comparison is
    // written out so both backends use the index.
    const ALL: &str = "SELECT CAST(n.digits AS INTEGER), n.value, t.url, k.name, n.media \
        FROM access_numbers n \
        LEFT JOIN tenants t ON t.guid = n.tenant_guid \
        LEFT JOIN trunks k ON k.id = n.trunk_id \
        WHERE (n.digits > $1 OR (n.digits = $1 AND n.value > $2)) \
        ORDER BY n.digits, n.value LIMIT $3";
    const OF_TENANT: &str = "SELECT CAST(n.digits AS INTEGER), n.value, t.url, k.name, n.media \
        FROM access_numbers n \
        JOIN tenants t ON t.guid = n.tenant_guid \
        LEFT JOIN trunks k ON k.id = n.trunk_id \
        WHERE (n.digits > $1 OR (n.digits = $1 AND n.value > $2)) AND t.url_key = $3 \
        ORDER BY n.digits, n.value LIMIT $4";

    let (after_digits, after_value) = after.map_or((0_i16, -1_i64), |number| {
        (i16::from(number.digits), number.value)
    });
    let limit = i64::from(limit);
    let rows: Vec<NumberRow> = match tenant_url {
        None => on_pool!(db, |pool, _begin| sqlx::query_as(ALL)
            .bind(after_digits)
            .bind(after_value)
            .bind(limit)
            .fetch_all(pool)
            .await?),
        Some(url) => {
            if find_tenant(db, url).await?.is_none() {
                return Err(AdminError::TenantNotFound {
                    url: url.to_owned(),
                });
            }
            let key = url_key(url);
            on_pool!(db, |pool, _begin| sqlx::query_as(OF_TENANT)
                .bind(after_digits)
                .bind(after_value)
                .bind(&key)
                .bind(limit)
                .fetch_all(pool)
                .await?)
        }
    };
    rows.into_iter()
        .map(|(digits, value, tenant_url, trunk, media)| {
            let number = AccessNumber {
                digits: u8::try_from(digits).map_err(|_| {
                    AdminError::InvalidArgument(format!("stored digit count {digits} is invalid"))
                })?,
                value,
            };
            let media = Media::parse(&media)
                .map_err(|error| AdminError::InvalidArgument(error.to_string()))?;
            Ok(NumberListing {
                number: number.to_string(),
                tenant_url,
                trunk,
                media: media.as_legacy_str(),
            })
        })
        .collect()
}

/// Deletes the existing numbers of a range, owned or free, and returns how many.
///
/// # Errors
///
/// Returns [`AdminError::NumbersNotFound`] when none of them exists.
pub async fn delete_access_numbers(db: &Database, range: &NumberRange) -> Result<u64, AdminError> {
    const SQL: &str = "DELETE FROM access_numbers WHERE digits = $1 AND value BETWEEN $2 AND $3";
    check_request_size(range)?;
    let deleted = on_pool!(db, |pool, _begin| sqlx::query(SQL)
        .bind(i16::from(range.first.digits))
        .bind(range.first.value)
        .bind(range.last.value)
        .execute(pool)
        .await?
        .rows_affected());
    if deleted == 0 {
        return Err(AdminError::NumbersNotFound {
            first: range.first.to_string(),
            last: range.last.to_string(),
        });
    }
    Ok(deleted)
}

/// A run of consecutive numbers that get the same trunk.
#[derive(Debug, PartialEq, Eq)]
struct TrunkRun<'a> {
    first: i64,
    last: i64,
    trunk: Option<&'a str>,
}

/// Splits a range into runs by trunk: each number gets the trunk whose prefix is the
/// longest prefix of the number's digits, or no trunk when none matches.
fn trunk_runs<'a>(range: &NumberRange, trunks: &'a [TrunkPrefix]) -> Vec<TrunkRun<'a>> {
    let mut runs: Vec<TrunkRun<'a>> = Vec::new();
    for value in range.first.value..=range.last.value {
        let digits = AccessNumber {
            digits: range.first.digits,
            value,
        }
        .to_string();
        let trunk = trunks
            .iter()
            .filter(|trunk| digits.starts_with(&trunk.prefix))
            .max_by_key(|trunk| trunk.prefix.len())
            .map(|trunk| trunk.name.as_str());
        match runs.last_mut() {
            Some(run) if run.trunk == trunk => run.last = value,
            _ => runs.push(TrunkRun {
                first: value,
                last: value,
                trunk,
            }),
        }
    }
    runs
}

fn check_request_size(range: &NumberRange) -> Result<(), AdminError> {
    if range.len() > MAX_NUMBERS_PER_REQUEST {
        return Err(AdminError::InvalidArgument(format!(
            "count {} is over the limit of {MAX_NUMBERS_PER_REQUEST} numbers per request; split the request",
            range.len()
        )));
    }
    Ok(())
}

fn validate_trunk_prefixes(trunks: &[TrunkPrefix]) -> Result<(), AdminError> {
    for (index, trunk) in trunks.iter().enumerate() {
        if trunk.name.trim().is_empty() {
            return Err(AdminError::InvalidArgument(format!(
                "trunks[{index}].name is blank"
            )));
        }
        check_prefix_digits(&trunk.prefix, &format!("trunks[{index}].prefix"))?;
        let repeated = trunks[..index]
            .iter()
            .any(|earlier| earlier.prefix == trunk.prefix);
        if repeated {
            return Err(AdminError::InvalidArgument(format!(
                "trunks[{index}].prefix {:?} appears twice, so the trunk of its numbers is ambiguous",
                trunk.prefix
            )));
        }
    }
    Ok(())
}

fn validate_trunk(trunk: &NewTrunk) -> Result<(), AdminError> {
    let name = &trunk.name;
    let valid_name = !name.is_empty()
        && name.len() <= 255
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !valid_name {
        return Err(AdminError::InvalidArgument(format!(
            "trunk name {:?} is invalid; use 1 to 255 letters, digits, '-', '_' and '.'",
            crate::model::truncate_for_message(name)
        )));
    }
    for (field, value) in [("domain", &trunk.domain), ("carrier", &trunk.carrier)] {
        if value.trim().is_empty() || value.len() > 255 {
            return Err(AdminError::InvalidArgument(format!(
                "{field} must be 1 to 255 characters and not blank"
            )));
        }
    }
    for (index, (prefix, cost)) in trunk.prefixes.iter().enumerate() {
        check_prefix_digits(prefix, &format!("prefixes[{index}].prefix"))?;
        if prefix.is_empty() {
            return Err(AdminError::InvalidArgument(format!(
                "prefixes[{index}].prefix is empty; a trunk prefix has 1 to 15 digits"
            )));
        }
        if !cost.is_finite() || *cost < 0.0 {
            return Err(AdminError::InvalidArgument(format!(
                "prefixes[{index}].cost {cost} is invalid; expected a number of 0 or more"
            )));
        }
        if trunk.prefixes[..index]
            .iter()
            .any(|(earlier, _)| earlier == prefix)
        {
            return Err(AdminError::InvalidArgument(format!(
                "prefixes[{index}].prefix {prefix:?} appears twice"
            )));
        }
    }
    Ok(())
}

fn check_prefix_digits(prefix: &str, field: &str) -> Result<(), AdminError> {
    let valid =
        prefix.len() <= crate::model::MAX_DIGITS && prefix.bytes().all(|b| b.is_ascii_digit());
    if valid {
        return Ok(());
    }
    Err(AdminError::InvalidArgument(format!(
        "{field} {:?} is invalid; expected 0 to {} ASCII digits",
        crate::model::truncate_for_message(prefix),
        crate::model::MAX_DIGITS
    )))
}

fn summary((guid, url, name, status, reporting): TenantRow) -> (TenantSummary, Option<String>) {
    (
        TenantSummary {
            guid,
            url,
            name,
            status,
        },
        reporting,
    )
}

fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(database) if database.is_unique_violation())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(first: &str, count: i64) -> NumberRange {
        let first = AccessNumber::parse(first).expect("number");
        NumberRange::from_count(first, count, Media::Voice, None).expect("range")
    }

    fn trunk(name: &str, prefix: &str) -> TrunkPrefix {
        TrunkPrefix {
            name: name.to_owned(),
            prefix: prefix.to_owned(),
        }
    }

    #[test]
    fn trunk_runs_pick_longest_prefix() {
        let trunks = [trunk("wide", "1415"), trunk("narrow", "141555500")];
        let runs = trunk_runs(&range("14155550098", 4), &trunks);
        assert_eq!(
            runs,
            vec![
                TrunkRun {
                    first: 14155550098,
                    last: 14155550099,
                    trunk: Some("narrow")
                },
                TrunkRun {
                    first: 14155550100,
                    last: 14155550101,
                    trunk: Some("wide")
                },
            ]
        );
    }

    #[test]
    fn trunk_runs_without_match_have_no_trunk() {
        let trunks = [trunk("t", "01")];
        let runs = trunk_runs(&range("0099", 2), &trunks);
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[0].trunk, None);
        assert_eq!(runs[1].trunk, Some("t"));
    }

    #[test]
    fn trunk_prefixes_reject_repeats_and_letters() {
        assert!(validate_trunk_prefixes(&[trunk("a", "1"), trunk("b", "1")]).is_err());
        assert!(validate_trunk_prefixes(&[trunk("a", "1x")]).is_err());
        assert!(validate_trunk_prefixes(&[trunk("a", ""), trunk("b", "1")]).is_ok());
    }

    #[test]
    fn request_size_is_bounded() {
        assert!(check_request_size(&range("1", 9)).is_ok());
        assert!(check_request_size(&range("100000000", MAX_NUMBERS_PER_REQUEST + 1)).is_err());
    }
}

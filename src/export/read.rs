//! Reading one tenant back from the configuration database.

use futures::TryStreamExt;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::ExportError;
use super::ranges::{RangeMerger, StoredNumber};
use crate::db::Database;
use crate::model::{
    AccessNumber, ConfigObject, Media, NumberRange, TenantIdentity, TenantRecord, TenantStatus,
    url_key,
};

/// A tenant row: guid, url, name, status, sip_domain, created_at and settings as text.
type TenantRow = (
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
);

/// An object row: guid, type, name and attributes as text.
type ObjectRow = (String, String, String, String);

/// A number row: digits, value, media and trunk name.
type NumberRow = (i64, i64, String, Option<String>);

/// Reads the tenant whose URL matches `url` case-insensitively.
pub(super) async fn tenant(db: &Database, url: &str) -> Result<TenantRecord, ExportError> {
    let key = url_key(url);
    let row: Option<TenantRow> = match db {
        Database::Postgres(pool) => {
            sqlx::query_as(
                "SELECT guid::text, url, name, status, sip_domain, created_at, settings::text \
                 FROM tenants WHERE url_key = $1",
            )
            .bind(&key)
            .fetch_optional(pool)
            .await?
        }
        Database::Sqlite(pool) => {
            sqlx::query_as(
                "SELECT guid, url, name, status, sip_domain, created_at, settings \
                 FROM tenants WHERE url_key = ?1",
            )
            .bind(&key)
            .fetch_optional(pool)
            .await?
        }
    };
    let Some((guid, url, name, status, sip_domain, created_at, settings)) = row else {
        return Err(ExportError::TenantNotFound {
            url: url.to_owned(),
        });
    };
    Ok(TenantRecord {
        identity: TenantIdentity {
            guid: parse_guid(&guid)?,
            url,
            name,
        },
        status: TenantStatus::parse(&status).map_err(invalid)?,
        sip_domain,
        created_at,
        settings: serde_json::from_str(&settings).map_err(invalid)?,
    })
}

/// Reads the tenant's access numbers and merges them into ranges.
pub(super) async fn ranges(db: &Database, tenant: Uuid) -> Result<Vec<NumberRange>, ExportError> {
    let mut merger = RangeMerger::default();
    match db {
        Database::Postgres(pool) => {
            let mut rows = sqlx::query_as::<_, NumberRow>(
                "SELECT n.digits::int8, n.value, n.media, t.name FROM access_numbers n \
                 LEFT JOIN trunks t ON t.id = n.trunk_id \
                 WHERE n.tenant_guid = $1 ORDER BY n.digits, n.value",
            )
            .bind(tenant)
            .fetch(pool);
            while let Some(row) = rows.try_next().await? {
                merger.push(stored_number(row)?);
            }
        }
        Database::Sqlite(pool) => {
            let mut rows = sqlx::query_as::<_, NumberRow>(
                "SELECT n.digits, n.value, n.media, t.name FROM access_numbers n \
                 LEFT JOIN trunks t ON t.id = n.trunk_id \
                 WHERE n.tenant_guid = ?1 ORDER BY n.digits, n.value",
            )
            .bind(tenant.hyphenated().to_string())
            .fetch(pool);
            while let Some(row) = rows.try_next().await? {
                merger.push(stored_number(row)?);
            }
        }
    }
    Ok(merger.finish())
}

/// Streams the tenant's objects in `(type, guid)` order to `sender` in batches. Stops
/// without error when the receiver is gone, because the writer reports its own error.
pub(super) async fn objects(
    db: &Database,
    tenant: Uuid,
    batch_size: usize,
    sender: mpsc::Sender<Vec<ConfigObject>>,
) -> Result<(), ExportError> {
    let mut batch = Vec::with_capacity(batch_size);
    match db {
        Database::Postgres(pool) => {
            let mut rows = sqlx::query_as::<_, ObjectRow>(
                "SELECT guid::text, object_type, name, attributes::text FROM config_objects \
                 WHERE tenant_guid = $1 ORDER BY object_type COLLATE \"C\", guid",
            )
            .bind(tenant)
            .fetch(pool);
            while let Some(row) = rows.try_next().await? {
                batch.push(config_object(row)?);
                if batch.len() == batch_size && !send(&sender, &mut batch, batch_size).await {
                    return Ok(());
                }
            }
        }
        Database::Sqlite(pool) => {
            let mut rows = sqlx::query_as::<_, ObjectRow>(
                "SELECT guid, object_type, name, attributes FROM config_objects \
                 WHERE tenant_guid = ?1 ORDER BY object_type, guid",
            )
            .bind(tenant.hyphenated().to_string())
            .fetch(pool);
            while let Some(row) = rows.try_next().await? {
                batch.push(config_object(row)?);
                if batch.len() == batch_size && !send(&sender, &mut batch, batch_size).await {
                    return Ok(());
                }
            }
        }
    }
    if !batch.is_empty() {
        send(&sender, &mut batch, batch_size).await;
    }
    Ok(())
}

/// Sends the batch and starts a new one; returns `false` when the receiver is gone.
async fn send(
    sender: &mpsc::Sender<Vec<ConfigObject>>,
    batch: &mut Vec<ConfigObject>,
    batch_size: usize,
) -> bool {
    let full = std::mem::replace(batch, Vec::with_capacity(batch_size));
    sender.send(full).await.is_ok()
}

fn stored_number((digits, value, media, trunk): NumberRow) -> Result<StoredNumber, ExportError> {
    let digits = u8::try_from(digits).map_err(invalid)?;
    Ok(StoredNumber {
        number: AccessNumber { digits, value },
        media: Media::parse(&media).map_err(invalid)?,
        trunk,
    })
}

fn config_object(
    (guid, object_type, name, attributes): ObjectRow,
) -> Result<ConfigObject, ExportError> {
    Ok(ConfigObject {
        guid: parse_guid(&guid)?,
        object_type,
        name,
        attributes: serde_json::from_str(&attributes).map_err(invalid)?,
    })
}

fn parse_guid(text: &str) -> Result<Uuid, ExportError> {
    Uuid::parse_str(text).map_err(invalid)
}

fn invalid(error: impl std::fmt::Display) -> ExportError {
    ExportError::InvalidData(error.to_string())
}

//! The tenant row: the conflict decision on GUID, URL and name, and the insert.

use sqlx::types::Json;

use super::Collision;
use super::transaction::{Conn, guid_text};
use crate::model::{TenantIdentity, TenantRecord};

/// Returns which of the identity's GUID, URL key and name key an existing tenant has,
/// in that order.
pub(super) async fn collisions(
    conn: Conn<'_>,
    identity: &TenantIdentity,
) -> Result<Vec<Collision>, sqlx::Error> {
    let url_key = identity.url_key();
    let name_key = identity.name_key();
    let (guid, url, name): (bool, bool, bool) = match conn {
        Conn::Postgres(conn) => {
            sqlx::query_as(
                "SELECT EXISTS (SELECT 1 FROM tenants WHERE guid = $1), \
                        EXISTS (SELECT 1 FROM tenants WHERE url_key = $2), \
                        EXISTS (SELECT 1 FROM tenants WHERE name_key = $3)",
            )
            .bind(identity.guid)
            .bind(&url_key)
            .bind(&name_key)
            .fetch_one(conn)
            .await?
        }
        Conn::Sqlite(conn) => {
            sqlx::query_as(
                "SELECT EXISTS (SELECT 1 FROM tenants WHERE guid = ?1), \
                        EXISTS (SELECT 1 FROM tenants WHERE url_key = ?2), \
                        EXISTS (SELECT 1 FROM tenants WHERE name_key = ?3)",
            )
            .bind(guid_text(identity.guid))
            .bind(&url_key)
            .bind(&name_key)
            .fetch_one(conn)
            .await?
        }
    };
    let found = [
        (guid, Collision::TenantGuid),
        (url, Collision::TenantUrl),
        (name, Collision::TenantName),
    ];
    Ok(found
        .into_iter()
        .filter_map(|(exists, collision)| exists.then_some(collision))
        .collect())
}

/// Inserts the tenant row, with the keys that URL and name uniqueness is decided on.
pub(super) async fn insert(conn: Conn<'_>, tenant: &TenantRecord) -> Result<(), sqlx::Error> {
    let identity = &tenant.identity;
    match conn {
        Conn::Postgres(conn) => {
            sqlx::query(
                "INSERT INTO tenants (guid, url, url_key, name, name_key, status, sip_domain, \
                 created_at, settings) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(identity.guid)
            .bind(&identity.url)
            .bind(identity.url_key())
            .bind(&identity.name)
            .bind(identity.name_key())
            .bind(tenant.status.as_str())
            .bind(&tenant.sip_domain)
            .bind(&tenant.created_at)
            .bind(Json(&tenant.settings))
            .execute(conn)
            .await?;
        }
        Conn::Sqlite(conn) => {
            sqlx::query(
                "INSERT INTO tenants (guid, url, url_key, name, name_key, status, sip_domain, \
                 created_at, settings) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )
            .bind(guid_text(identity.guid))
            .bind(&identity.url)
            .bind(identity.url_key())
            .bind(&identity.name)
            .bind(identity.name_key())
            .bind(tenant.status.as_str())
            .bind(&tenant.sip_domain)
            .bind(&tenant.created_at)
            .bind(Json(&tenant.settings))
            .execute(conn)
            .await?;
        }
    }
    Ok(())
}

/// Stores the name of the tenant's reporting database.
pub(super) async fn set_reporting_database(
    conn: Conn<'_>,
    guid: uuid::Uuid,
    name: &str,
) -> Result<(), sqlx::Error> {
    match conn {
        Conn::Postgres(conn) => {
            sqlx::query("UPDATE tenants SET reporting_database = $2 WHERE guid = $1")
                .bind(guid)
                .bind(name)
                .execute(conn)
                .await?;
        }
        Conn::Sqlite(conn) => {
            sqlx::query("UPDATE tenants SET reporting_database = ?2 WHERE guid = ?1")
                .bind(guid_text(guid))
                .bind(name)
                .execute(conn)
                .await?;
        }
    }
    Ok(())
}

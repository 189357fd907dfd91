//! PostgreSQL connection set-up.

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use uuid::Uuid;

/// Opens a pool to the PostgreSQL database at `url`.
pub(super) async fn connect(url: &str) -> Result<PgPool, sqlx::Error> {
    let options: PgConnectOptions = url.parse()?;
    PgPoolOptions::new()
        .max_connections(8)
        .connect_with(options)
        .await
}

/// Reads `cluster_info`: the schema version and the database id.
pub(super) async fn cluster_info(pool: &PgPool) -> Result<(i32, Uuid), sqlx::Error> {
    sqlx::query_as("SELECT schema_version, database_id FROM cluster_info")
        .fetch_one(pool)
        .await
}

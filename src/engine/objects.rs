//! Configuration objects: streamed from the archive into a staging table, checked
//! set-based (a GUID twice in the archive, a GUID already in the target), then copied
//! into `config_objects` with one statement.
//!
//! The archive reader runs on a blocking thread and sends batches through a bounded
//! channel, so memory holds at most a few batches whatever the archive's size.

use std::sync::Arc;

use sqlx::QueryBuilder;
use sqlx::postgres::PgConnection;
use sqlx::sqlite::SqliteConnection;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::ImportError;
use super::fault;
use super::transaction::{Conn, guid_text};
use crate::archive::{Archive, ArchiveError, InvalidArchive, LocatedObject};

/// Objects per batch sent from the reader to the writer. Six columns per row keep a
/// batch far below SQLite's limit of 32766 bound parameters per statement.
const BATCH_SIZE: usize = 500;

/// Batches in flight between the reader thread and the writer.
const CHANNEL_DEPTH: usize = 4;

/// The largest number of object GUID collisions listed in a report.
pub const MAX_LISTED_COLLISIONS: i64 = 100;

/// The reason staging the objects stopped.
#[derive(Debug)]
pub(super) enum StageError {
    /// The archive broke a rule while it was streamed again.
    Invalid(InvalidArchive),
    /// The database, the disk or the reader task failed.
    Failed(ImportError),
}

/// The reason the reader thread stopped early.
#[derive(Debug)]
enum ReadError {
    Archive(ArchiveError),
    WriterGone,
}

/// One batch of objects on its way from the reader thread to the writer.
enum Batch {
    /// Objects for a multi-row INSERT (SQLite).
    Objects {
        objects: Vec<LocatedObject>,
        first_ordinal: i64,
    },
    /// Rows already encoded for COPY (PostgreSQL).
    CopyText { text: Vec<u8>, count: u64 },
}

/// A GUID that appears twice in one archive, with its first two locations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Duplicate {
    /// The GUID.
    pub guid: Uuid,
    /// Its first location.
    pub first: String,
    /// Its second location.
    pub second: String,
}

impl Batch {
    fn len(&self) -> u64 {
        match self {
            Self::Objects { objects, .. } => objects.len() as u64,
            Self::CopyText { count, .. } => *count,
        }
    }
}

impl From<ArchiveError> for ReadError {
    fn from(error: ArchiveError) -> Self {
        Self::Archive(error)
    }
}

impl From<sqlx::Error> for StageError {
    fn from(error: sqlx::Error) -> Self {
        Self::Failed(ImportError::Database(error))
    }
}

/// Creates the staging table and streams every object of the archive into it.
/// Returns the number of objects staged.
pub(super) async fn stage(mut conn: Conn<'_>, archive: Arc<Archive>) -> Result<u64, StageError> {
    create_staging(conn.reborrow()).await?;
    let (sender, receiver) = mpsc::channel::<Batch>(CHANNEL_DEPTH);
    let encode = matches!(conn, Conn::Postgres(_));
    let reader = tokio::task::spawn_blocking(move || read_batches(&archive, encode, &sender));
    let written = match conn {
        Conn::Postgres(conn) => copy_batches(conn, receiver).await,
        Conn::Sqlite(conn) => insert_batches(conn, receiver).await,
    };
    let read_result = reader.await;
    let staged = written?;
    match read_result {
        Ok(Ok(())) => Ok(staged),
        Ok(Err(ReadError::Archive(ArchiveError::Invalid(invalid)))) => {
            Err(StageError::Invalid(invalid))
        }
        Ok(Err(ReadError::Archive(error))) => Err(StageError::Failed(ImportError::Archive(error))),
        Ok(Err(ReadError::WriterGone)) => Err(StageError::Failed(ImportError::Other(
            "the object writer stopped before the archive reader".to_owned(),
        ))),
        Err(error) => Err(StageError::Failed(ImportError::Other(format!(
            "the archive reader task failed: {error}"
        )))),
    }
}

/// Streams the archive's objects to the writer, as COPY text when `encode` is set
/// (PostgreSQL) and as objects otherwise (SQLite). Encoding here, on the reader's
/// thread, keeps the writer free to send while the next batch is parsed.
fn read_batches(
    archive: &Archive,
    encode: bool,
    sender: &mpsc::Sender<Batch>,
) -> Result<(), ReadError> {
    let mut ordinal: i64 = 0;
    archive.for_each_object_batch(fault::batch_size(BATCH_SIZE), |objects| {
        let batch = if encode {
            let count = objects.len() as u64;
            let text = copy_text(&objects, ordinal);
            Batch::CopyText { text, count }
        } else {
            Batch::Objects {
                objects,
                first_ordinal: ordinal,
            }
        };
        ordinal += i64::try_from(batch.len()).unwrap_or(i64::MAX);
        sender
            .blocking_send(batch)
            .map_err(|_| ReadError::WriterGone)
    })
}

/// Writes the batches into the staging table with one `COPY ... FROM STDIN`. A failed
/// send aborts the COPY. When the reader stops early, the COPY ends with the rows sent
/// so far, and the caller rolls the transaction back because of the reader's error.
async fn copy_batches(
    conn: &mut PgConnection,
    mut receiver: mpsc::Receiver<Batch>,
) -> Result<u64, StageError> {
    let mut copy = conn
        .copy_in_raw(
            "COPY import_staging (ordinal, guid, object_type, name, attributes, location) \
             FROM STDIN",
        )
        .await?;
    let mut staged: u64 = 0;
    let mut batches: u64 = 0;
    while let Some(batch) = receiver.recv().await {
        let count = batch.len();
        let Batch::CopyText { text, .. } = batch else {
            continue;
        };
        if let Err(error) = copy.send(text).await {
            drop(receiver);
            let _ = copy.abort("the import stopped").await;
            return Err(error.into());
        }
        staged += count;
        batches += 1;
        fault::indexed_point("objects", batches).await;
    }
    copy.finish().await?;
    Ok(staged)
}

/// Writes the batches into the staging table, one multi-row INSERT per batch.
async fn insert_batches(
    conn: &mut SqliteConnection,
    mut receiver: mpsc::Receiver<Batch>,
) -> Result<u64, StageError> {
    let mut staged: u64 = 0;
    let mut batches: u64 = 0;
    while let Some(batch) = receiver.recv().await {
        let count = batch.len();
        let Batch::Objects {
            objects,
            first_ordinal,
        } = batch
        else {
            continue;
        };
        insert_sqlite_batch(conn, &objects, first_ordinal).await?;
        staged += count;
        batches += 1;
        fault::indexed_point("objects", batches).await;
    }
    Ok(staged)
}

/// Returns one GUID that appears more than once among the staged objects.
pub(super) async fn find_duplicate(conn: Conn<'_>) -> Result<Option<Duplicate>, sqlx::Error> {
    let rows: Vec<(String, String)> = match conn {
        Conn::Postgres(conn) => {
            sqlx::query_as(
                "WITH duplicate AS (SELECT guid FROM import_staging GROUP BY guid \
                 HAVING count(*) > 1 ORDER BY min(ordinal) LIMIT 1) \
                 SELECT s.guid::text, s.location FROM import_staging s \
                 JOIN duplicate USING (guid) ORDER BY s.ordinal LIMIT 2",
            )
            .fetch_all(conn)
            .await?
        }
        Conn::Sqlite(conn) => {
            sqlx::query_as(
                "WITH duplicate AS (SELECT guid FROM import_staging GROUP BY guid \
                 HAVING count(*) > 1 ORDER BY min(ordinal) LIMIT 1) \
                 SELECT s.guid, s.location FROM import_staging s \
                 JOIN duplicate USING (guid) ORDER BY s.ordinal LIMIT 2",
            )
            .fetch_all(conn)
            .await?
        }
    };
    let [(guid, first), (_, second)] = <[(String, String); 2]>::try_from(rows).unwrap_or_default();
    if guid.is_empty() {
        return Ok(None);
    }
    let guid = parse_guid(&guid)?;
    Ok(Some(Duplicate {
        guid,
        first,
        second,
    }))
}

/// Returns up to [`MAX_LISTED_COLLISIONS`] staged GUIDs that an object of the target
/// already has, in archive order.
pub(super) async fn collisions(conn: Conn<'_>) -> Result<Vec<Uuid>, sqlx::Error> {
    match conn {
        Conn::Postgres(conn) => {
            sqlx::query_scalar(
                "SELECT s.guid FROM import_staging s JOIN config_objects o ON o.guid = s.guid \
                 ORDER BY s.ordinal LIMIT $1",
            )
            .bind(MAX_LISTED_COLLISIONS)
            .fetch_all(conn)
            .await
        }
        Conn::Sqlite(conn) => {
            let guids: Vec<String> = sqlx::query_scalar(
                "SELECT s.guid FROM import_staging s JOIN config_objects o ON o.guid = s.guid \
                 ORDER BY s.ordinal LIMIT ?1",
            )
            .bind(MAX_LISTED_COLLISIONS)
            .fetch_all(conn)
            .await?;
            guids.iter().map(|guid| parse_guid(guid)).collect()
        }
    }
}

/// Copies the staged objects into `config_objects`, owned by `tenant`, and drops the
/// staging table. Returns the number of objects inserted.
pub(super) async fn insert(mut conn: Conn<'_>, tenant: Uuid) -> Result<u64, sqlx::Error> {
    // No ORDER BY: the order of rows in `config_objects` means nothing, and sorting
    // every staged object would add a sort of the whole archive to the import.
    let inserted = match conn.reborrow() {
        Conn::Postgres(conn) => sqlx::query(
            "INSERT INTO config_objects (guid, tenant_guid, object_type, name, attributes) \
             SELECT guid, $1, object_type, name, attributes FROM import_staging",
        )
        .bind(tenant)
        .execute(conn)
        .await?
        .rows_affected(),
        Conn::Sqlite(conn) => sqlx::query(
            "INSERT INTO config_objects (guid, tenant_guid, object_type, name, attributes) \
             SELECT guid, ?1, object_type, name, attributes FROM import_staging",
        )
        .bind(guid_text(tenant))
        .execute(conn)
        .await?
        .rows_affected(),
    };
    drop_staging(conn).await?;
    Ok(inserted)
}

async fn create_staging(mut conn: Conn<'_>) -> Result<(), sqlx::Error> {
    drop_staging(conn.reborrow()).await?;
    match conn {
        Conn::Postgres(conn) => {
            sqlx::query(
                "CREATE TEMP TABLE import_staging (ordinal bigint NOT NULL, guid uuid NOT NULL, \
                 object_type text NOT NULL, name text NOT NULL, attributes jsonb NOT NULL, \
                 location text NOT NULL) ON COMMIT DROP",
            )
            .execute(conn)
            .await?;
        }
        Conn::Sqlite(conn) => {
            sqlx::query(
                "CREATE TEMP TABLE import_staging (ordinal INTEGER NOT NULL, guid TEXT NOT NULL, \
                 object_type TEXT NOT NULL, name TEXT NOT NULL, attributes TEXT NOT NULL, \
                 location TEXT NOT NULL)",
            )
            .execute(conn)
            .await?;
        }
    }
    Ok(())
}

async fn drop_staging(conn: Conn<'_>) -> Result<(), sqlx::Error> {
    let statement = "DROP TABLE IF EXISTS import_staging";
    match conn {
        Conn::Postgres(conn) => {
            sqlx::query(statement).execute(conn).await?;
        }
        Conn::Sqlite(conn) => {
            sqlx::query(statement).execute(conn).await?;
        }
    }
    Ok(())
}

/// Inserts one batch with one multi-row VALUES list. `start` is the ordinal of the
/// batch's first object.
async fn insert_sqlite_batch(
    conn: &mut SqliteConnection,
    batch: &[LocatedObject],
    start: i64,
) -> Result<(), sqlx::Error> {
    let mut builder = QueryBuilder::new(
        "INSERT INTO import_staging (ordinal, guid, object_type, name, attributes, location) ",
    );
    builder.push_values(batch.iter().zip(start..), |mut row, (located, ordinal)| {
        let object = &located.object;
        row.push_bind(ordinal)
            .push_bind(guid_text(object.guid))
            .push_bind(object.object_type.clone())
            .push_bind(object.name.clone())
            .push_bind(attributes_json(object))
            .push_bind(located.location.to_string());
    });
    builder.build().execute(conn).await?;
    Ok(())
}

/// Encodes a batch as rows of PostgreSQL's COPY text format, the first with ordinal
/// `start`.
fn copy_text(batch: &[LocatedObject], start: i64) -> Vec<u8> {
    let mut text = String::with_capacity(batch.len() * 256);
    for (located, ordinal) in batch.iter().zip(start..) {
        let object = &located.object;
        text.push_str(&ordinal.to_string());
        text.push('\t');
        text.push_str(&object.guid.hyphenated().to_string());
        text.push('\t');
        push_copy_field(&mut text, &object.object_type);
        text.push('\t');
        push_copy_field(&mut text, &object.name);
        text.push('\t');
        push_copy_field(&mut text, &attributes_json(object));
        text.push('\t');
        push_copy_field(&mut text, &located.location.to_string());
        text.push('\n');
    }
    text.into_bytes()
}

/// Appends `value` as one field of COPY text format: backslash, tab, newline and
/// carriage return are escaped with a backslash, everything else is literal.
fn push_copy_field(text: &mut String, value: &str) {
    for character in value.chars() {
        match character {
            '\\' => text.push_str("\\\\"),
            '\t' => text.push_str("\\t"),
            '\n' => text.push_str("\\n"),
            '\r' => text.push_str("\\r"),
            other => text.push(other),
        }
    }
}

fn attributes_json(object: &crate::model::ConfigObject) -> String {
    serde_json::Value::from(object.attributes.clone()).to_string()
}

fn parse_guid(text: &str) -> Result<Uuid, sqlx::Error> {
    Uuid::parse_str(text).map_err(|error| sqlx::Error::Decode(Box::new(error)))
}

//! The `media` and `media_thumbnails` tables: what each `mxc://` URI holds (the bytes are files,
//! see `media::store`), and the thumbnails generated from it.

use ruma::{ServerName, UserId};
use sqlx::{Executor, Row, any::AnyRow};

/// One `mxc://` URI as stored.
#[derive(Clone, Debug)]
pub struct MediaRow {
    /// Who uploaded it (local media only).
    pub uploader: Option<String>,
    /// Its content, or `None` while the URI is reserved but not uploaded yet.
    pub content: Option<Content>,
    /// When an unused reservation expires (milliseconds since the epoch).
    pub unused_expires_at: Option<i64>,
}

/// The bytes behind a URI (or a thumbnail) and how to serve them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Content {
    /// The `Content-Type` given at upload.
    pub content_type: String,
    /// The file name given at upload.
    pub filename: Option<String>,
    /// Size in bytes.
    pub size: u64,
    /// Lower-case hex SHA-256 of the bytes: the file's name in the store.
    pub sha256: String,
}

/// Reserves a URI for `uploader` without content (`POST /media/v1/create`).
pub async fn reserve<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    server_name: &ServerName,
    media_id: &str,
    uploader: &UserId,
    now: i64,
    unused_expires_at: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO media (server_name, media_id, uploader, created_ts, unused_expires_at)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(server_name.as_str())
    .bind(media_id)
    .bind(uploader.as_str())
    .bind(now)
    .bind(unused_expires_at)
    .execute(executor)
    .await?;
    Ok(())
}

/// Stores a new URI with its content (`POST /media/v3/upload`; no uploader for another
/// server's media cached here).
pub async fn insert<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    server_name: &ServerName,
    media_id: &str,
    uploader: Option<&UserId>,
    content: &Content,
    now: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO media (server_name, media_id, uploader, content_type, filename, size, sha256, created_ts)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(server_name.as_str())
    .bind(media_id)
    .bind(uploader.map(UserId::as_str))
    .bind(&content.content_type)
    .bind(content.filename.as_deref())
    .bind(size_column(content.size))
    .bind(&content.sha256)
    .bind(now)
    .execute(executor)
    .await?;
    Ok(())
}

/// Gives a reserved URI its content, unless it has some already; whether it was filled.
pub async fn fill<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    server_name: &ServerName,
    media_id: &str,
    content: &Content,
) -> sqlx::Result<bool> {
    let result = sqlx::query(
        "UPDATE media SET content_type = $3, filename = $4, size = $5, sha256 = $6, unused_expires_at = NULL
         WHERE server_name = $1 AND media_id = $2 AND sha256 IS NULL",
    )
    .bind(server_name.as_str())
    .bind(media_id)
    .bind(&content.content_type)
    .bind(content.filename.as_deref())
    .bind(size_column(content.size))
    .bind(&content.sha256)
    .execute(executor)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Loads a URI.
pub async fn get<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    server_name: &ServerName,
    media_id: &str,
) -> sqlx::Result<Option<MediaRow>> {
    let row = sqlx::query(
        "SELECT uploader, content_type, filename, size, sha256, unused_expires_at
         FROM media WHERE server_name = $1 AND media_id = $2",
    )
    .bind(server_name.as_str())
    .bind(media_id)
    .fetch_optional(executor)
    .await?;
    row.map(|row| {
        Ok(MediaRow {
            uploader: row.try_get("uploader")?,
            content: content(&row)?,
            unused_expires_at: row.try_get("unused_expires_at")?,
        })
    })
    .transpose()
}

/// Bytes `uploader` has stored so far, for the quota.
pub async fn bytes_used<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    uploader: &UserId,
) -> sqlx::Result<u64> {
    // SUM is NUMERIC on PostgreSQL: cast it back to the column type.
    let row =
        sqlx::query("SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) AS used FROM media WHERE uploader = $1")
            .bind(uploader.as_str())
            .fetch_one(executor)
            .await?;
    Ok(u64::try_from(row.try_get::<i64, _>("used")?).unwrap_or(0))
}

/// How many reservations of `uploader` are still waiting for content at `now`.
pub async fn pending_count<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    uploader: &UserId,
    now: i64,
) -> sqlx::Result<u64> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS pending FROM media
         WHERE uploader = $1 AND sha256 IS NULL AND unused_expires_at > $2",
    )
    .bind(uploader.as_str())
    .bind(now)
    .fetch_one(executor)
    .await?;
    Ok(u64::try_from(row.try_get::<i64, _>("pending")?).unwrap_or(0))
}

/// Which thumbnail: size and method (`crop` or `scale`).
#[derive(Clone, Copy, Debug)]
pub struct ThumbnailKey<'a> {
    /// The media it was made from.
    pub server_name: &'a ServerName,
    /// The media ID it was made from.
    pub media_id: &'a str,
    /// Requested (snapped) width.
    pub width: u32,
    /// Requested (snapped) height.
    pub height: u32,
    /// `crop` or `scale`.
    pub method: &'a str,
}

/// Loads a generated thumbnail.
pub async fn get_thumbnail<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    key: ThumbnailKey<'_>,
) -> sqlx::Result<Option<Content>> {
    let row = sqlx::query(
        "SELECT content_type, size, sha256 FROM media_thumbnails
         WHERE server_name = $1 AND media_id = $2 AND width = $3 AND height = $4 AND method = $5",
    )
    .bind(key.server_name.as_str())
    .bind(key.media_id)
    .bind(i64::from(key.width))
    .bind(i64::from(key.height))
    .bind(key.method)
    .fetch_optional(executor)
    .await?;
    row.map(|row| {
        Ok(Content {
            content_type: row.try_get("content_type")?,
            filename: None,
            size: u64::try_from(row.try_get::<i64, _>("size")?).unwrap_or(0),
            sha256: row.try_get("sha256")?,
        })
    })
    .transpose()
}

/// Records a generated thumbnail; a concurrent request may have recorded the same one first.
pub async fn insert_thumbnail<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    key: ThumbnailKey<'_>,
    content: &Content,
    now: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO media_thumbnails
           (server_name, media_id, width, height, method, content_type, size, sha256, created_ts)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (server_name, media_id, width, height, method) DO NOTHING",
    )
    .bind(key.server_name.as_str())
    .bind(key.media_id)
    .bind(i64::from(key.width))
    .bind(i64::from(key.height))
    .bind(key.method)
    .bind(&content.content_type)
    .bind(size_column(content.size))
    .bind(&content.sha256)
    .bind(now)
    .execute(executor)
    .await?;
    Ok(())
}

fn size_column(size: u64) -> i64 {
    i64::try_from(size).unwrap_or(i64::MAX)
}

/// The content columns of a row, `None` while not uploaded.
fn content(row: &AnyRow) -> sqlx::Result<Option<Content>> {
    let Some(sha256) = row.try_get::<Option<String>, _>("sha256")? else {
        return Ok(None);
    };
    Ok(Some(Content {
        content_type: row.try_get::<Option<String>, _>("content_type")?.unwrap_or_default(),
        filename: row.try_get("filename")?,
        size: u64::try_from(row.try_get::<Option<i64>, _>("size")?.unwrap_or(0)).unwrap_or(0),
        sha256,
    }))
}

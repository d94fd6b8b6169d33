//! Key backup tables: `e2e_backup_versions` (a user's backups; deleted ones stay, flagged) and
//! `e2e_backup_keys` (the encrypted megolm session keys of each version).

use ruma::UserId;
use sqlx::{Row, any::AnyRow};

use super::Conn;

/// A backup version.
#[derive(Clone, Debug)]
pub struct VersionRow {
    /// Its ID, unique across users.
    pub version: i64,
    /// The backup algorithm.
    pub algorithm: String,
    /// The algorithm's `auth_data` object, as JSON.
    pub auth_data: String,
    /// Grows with every change to the version's keys.
    pub etag: i64,
    /// Whether the version was deleted.
    pub deleted: bool,
}

/// A backed-up session key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRow {
    /// The room of the megolm session.
    pub room_id: String,
    /// The megolm session.
    pub session_id: String,
    /// The first message index the key can decrypt.
    pub first_message_index: i64,
    /// How often the key was forwarded between devices.
    pub forwarded_count: i64,
    /// Whether the backing-up device had verified the key's origin.
    pub is_verified: bool,
    /// The encrypted session data object, as JSON.
    pub session_data: String,
}

const VERSION_COLUMNS: &str = "version, algorithm, auth_data, etag, deleted";
const KEY_COLUMNS: &str =
    "room_id, session_id, first_message_index, forwarded_count, is_verified, session_data";

fn version_row(row: AnyRow) -> sqlx::Result<VersionRow> {
    Ok(VersionRow {
        version: row.try_get("version")?,
        algorithm: row.try_get("algorithm")?,
        auth_data: row.try_get("auth_data")?,
        etag: row.try_get("etag")?,
        deleted: row.try_get::<i64, _>("deleted")? != 0,
    })
}

fn key_row(row: AnyRow) -> sqlx::Result<KeyRow> {
    Ok(KeyRow {
        room_id: row.try_get("room_id")?,
        session_id: row.try_get("session_id")?,
        first_message_index: row.try_get("first_message_index")?,
        forwarded_count: row.try_get("forwarded_count")?,
        is_verified: row.try_get::<i64, _>("is_verified")? != 0,
        session_data: row.try_get("session_data")?,
    })
}

// === versions ===

/// Creates a backup version; returns its ID.
pub async fn create_version(
    conn: &mut Conn,
    user_id: &UserId,
    algorithm: &str,
    auth_data: &str,
) -> sqlx::Result<i64> {
    sqlx::query("INSERT INTO e2e_backup_versions (user_id, algorithm, auth_data) VALUES ($1, $2, $3) RETURNING version")
        .bind(user_id.as_str())
        .bind(algorithm)
        .bind(auth_data)
        .fetch_one(conn)
        .await?
        .try_get("version")
}

/// One of the user's versions, deleted or not.
pub async fn version(conn: &mut Conn, user_id: &UserId, version: i64) -> sqlx::Result<Option<VersionRow>> {
    let sql =
        format!("SELECT {VERSION_COLUMNS} FROM e2e_backup_versions WHERE user_id = $1 AND version = $2");
    let row = sqlx::query(&sql).bind(user_id.as_str()).bind(version).fetch_optional(conn).await?;
    row.map(version_row).transpose()
}

/// The user's newest version that is not deleted: the current one.
pub async fn current_version(conn: &mut Conn, user_id: &UserId) -> sqlx::Result<Option<VersionRow>> {
    let sql = format!(
        "SELECT {VERSION_COLUMNS} FROM e2e_backup_versions WHERE user_id = $1 AND deleted = 0 \
         ORDER BY version DESC LIMIT 1"
    );
    let row = sqlx::query(&sql).bind(user_id.as_str()).fetch_optional(conn).await?;
    row.map(version_row).transpose()
}

/// Replaces a version's `auth_data`.
pub async fn set_auth_data(conn: &mut Conn, version: i64, auth_data: &str) -> sqlx::Result<()> {
    sqlx::query("UPDATE e2e_backup_versions SET auth_data = $1 WHERE version = $2")
        .bind(auth_data)
        .bind(version)
        .execute(conn)
        .await?;
    Ok(())
}

/// Flags a version deleted and deletes its keys.
pub async fn delete_version(conn: &mut Conn, version: i64) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM e2e_backup_keys WHERE version = $1").bind(version).execute(&mut *conn).await?;
    sqlx::query("UPDATE e2e_backup_versions SET deleted = 1 WHERE version = $1")
        .bind(version)
        .execute(conn)
        .await?;
    Ok(())
}

/// Advances a version's etag (its keys changed); returns the new one.
pub async fn bump_etag(conn: &mut Conn, version: i64) -> sqlx::Result<i64> {
    sqlx::query("UPDATE e2e_backup_versions SET etag = etag + 1 WHERE version = $1 RETURNING etag")
        .bind(version)
        .fetch_one(conn)
        .await?
        .try_get("etag")
}

// === keys ===

/// How many keys a version holds.
pub async fn count_keys(conn: &mut Conn, version: i64) -> sqlx::Result<i64> {
    sqlx::query("SELECT COUNT(*) AS n FROM e2e_backup_keys WHERE version = $1")
        .bind(version)
        .fetch_one(conn)
        .await?
        .try_get("n")
}

/// A version's keys, of one room or one session if given, ordered by room and session.
pub async fn keys(
    conn: &mut Conn,
    version: i64,
    room_id: Option<&str>,
    session_id: Option<&str>,
) -> sqlx::Result<Vec<KeyRow>> {
    let sql = format!(
        "SELECT {KEY_COLUMNS} FROM e2e_backup_keys WHERE version = $1 \
         AND ($2 IS NULL OR room_id = $2) AND ($3 IS NULL OR session_id = $3) ORDER BY room_id, session_id"
    );
    let rows = sqlx::query(&sql).bind(version).bind(room_id).bind(session_id).fetch_all(conn).await?;
    rows.into_iter().map(key_row).collect()
}

/// Stores (or replaces) a key.
pub async fn put_key(conn: &mut Conn, version: i64, key: &KeyRow) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO e2e_backup_keys (version, room_id, session_id, first_message_index, forwarded_count, \
         is_verified, session_data) VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (version, room_id, session_id) DO UPDATE SET \
         first_message_index = excluded.first_message_index, forwarded_count = excluded.forwarded_count, \
         is_verified = excluded.is_verified, session_data = excluded.session_data",
    )
    .bind(version)
    .bind(&key.room_id)
    .bind(&key.session_id)
    .bind(key.first_message_index)
    .bind(key.forwarded_count)
    .bind(i64::from(key.is_verified))
    .bind(&key.session_data)
    .execute(conn)
    .await?;
    Ok(())
}

/// Deletes a version's keys, of one room or one session if given; returns how many.
pub async fn delete_keys(
    conn: &mut Conn,
    version: i64,
    room_id: Option<&str>,
    session_id: Option<&str>,
) -> sqlx::Result<u64> {
    let result = sqlx::query(
        "DELETE FROM e2e_backup_keys WHERE version = $1 AND ($2 IS NULL OR room_id = $2) \
         AND ($3 IS NULL OR session_id = $3)",
    )
    .bind(version)
    .bind(room_id)
    .bind(session_id)
    .execute(conn)
    .await?;
    Ok(result.rows_affected())
}

//! The `devices` table: one row per logged-in device of a local user. Deleting a device deletes
//! its access tokens and its end-to-end encryption keys (explicitly, and by foreign key cascade).

use ruma::{DeviceId, OwnedDeviceId, UserId};
use sqlx::{Executor, Row, any::AnyRow};

use super::Conn;

/// A device as stored.
#[derive(Clone, Debug)]
pub struct DeviceRow {
    /// The device ID.
    pub device_id: OwnedDeviceId,
    /// Name the user gave it.
    pub display_name: Option<String>,
    /// When it last made a request (ms since the epoch).
    pub last_seen_ts: Option<i64>,
    /// The IP address it last made a request from.
    pub last_seen_ip: Option<String>,
}

const COLUMNS: &str = "device_id, display_name, last_seen_ts, last_seen_ip";

fn from_row(row: AnyRow) -> sqlx::Result<DeviceRow> {
    Ok(DeviceRow {
        device_id: row.try_get::<String, _>("device_id")?.into(),
        display_name: row.try_get("display_name")?,
        last_seen_ts: row.try_get("last_seen_ts")?,
        last_seen_ip: row.try_get("last_seen_ip")?,
    })
}

/// Creates the device, or renames it when it already exists and a name is given.
pub async fn upsert(
    conn: &mut Conn,
    user_id: &UserId,
    device_id: &DeviceId,
    display_name: Option<&str>,
    now_ms: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO devices (user_id, device_id, display_name, last_seen_ts, created_ts) \
         VALUES ($1, $2, $3, $4, $4) ON CONFLICT (user_id, device_id) DO UPDATE SET \
         display_name = COALESCE(excluded.display_name, devices.display_name)",
    )
    .bind(user_id.as_str())
    .bind(device_id.as_str())
    .bind(display_name)
    .bind(now_ms)
    .execute(conn)
    .await?;
    Ok(())
}

/// Every device of a user, ordered by ID.
pub async fn list<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    user_id: &UserId,
) -> sqlx::Result<Vec<DeviceRow>> {
    let sql = format!("SELECT {COLUMNS} FROM devices WHERE user_id = $1 ORDER BY device_id");
    let rows = sqlx::query(&sql).bind(user_id.as_str()).fetch_all(executor).await?;
    rows.into_iter().map(from_row).collect()
}

/// One device of a user.
pub async fn get<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    user_id: &UserId,
    device_id: &DeviceId,
) -> sqlx::Result<Option<DeviceRow>> {
    let sql = format!("SELECT {COLUMNS} FROM devices WHERE user_id = $1 AND device_id = $2");
    let row =
        sqlx::query(&sql).bind(user_id.as_str()).bind(device_id.as_str()).fetch_optional(executor).await?;
    row.map(from_row).transpose()
}

/// Renames a device; returns `false` when it does not exist.
pub async fn set_display_name<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    user_id: &UserId,
    device_id: &DeviceId,
    display_name: Option<&str>,
) -> sqlx::Result<bool> {
    let result = sqlx::query("UPDATE devices SET display_name = $1 WHERE user_id = $2 AND device_id = $3")
        .bind(display_name)
        .bind(user_id.as_str())
        .bind(device_id.as_str())
        .execute(executor)
        .await?;
    Ok(result.rows_affected() > 0)
}

/// Records activity of a device.
pub async fn touch<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    user_id: &UserId,
    device_id: &DeviceId,
    ip: Option<&str>,
    now_ms: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE devices SET last_seen_ts = $1, last_seen_ip = COALESCE($2, last_seen_ip) \
         WHERE user_id = $3 AND device_id = $4",
    )
    .bind(now_ms)
    .bind(ip)
    .bind(user_id.as_str())
    .bind(device_id.as_str())
    .execute(executor)
    .await?;
    Ok(())
}

/// Deletes one device; returns whether it existed. Its tokens and encryption keys go with it:
/// their tables reference `devices` with `ON DELETE CASCADE` (foreign keys are on for SQLite,
/// see `Db::connect`).
pub async fn delete(conn: &mut Conn, user_id: &UserId, device_id: &DeviceId) -> sqlx::Result<bool> {
    let result = sqlx::query("DELETE FROM devices WHERE user_id = $1 AND device_id = $2")
        .bind(user_id.as_str())
        .bind(device_id.as_str())
        .execute(conn)
        .await?;
    Ok(result.rows_affected() > 0)
}

/// Deletes every device of a user except `keep`, if given (tokens and keys cascade); returns
/// the IDs of those deleted.
pub async fn delete_all_except(
    conn: &mut Conn,
    user_id: &UserId,
    keep: Option<&DeviceId>,
) -> sqlx::Result<Vec<OwnedDeviceId>> {
    let rows = sqlx::query("DELETE FROM devices WHERE user_id = $1 AND device_id <> $2 RETURNING device_id")
        .bind(user_id.as_str())
        .bind(keep.map_or("", |d| d.as_str()))
        .fetch_all(conn)
        .await?;
    rows.iter().map(|r| Ok(r.try_get::<String, _>("device_id")?.into())).collect()
}

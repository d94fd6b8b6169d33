//! The end-to-end encryption key tables of local devices: `e2e_device_keys` (identity keys),
//! `e2e_one_time_keys` (unclaimed one-time keys, oldest first) and `e2e_fallback_keys` (one per
//! device and algorithm). Keys are stored as the canonical JSON the client uploaded.

use ruma::{DeviceId, OwnedDeviceId, OwnedUserId, UserId};
use sqlx::{Executor, Row};

use super::{Backend, Conn};

/// Users looked up per statement by [`device_keys_of_users`]: far below the bind-parameter
/// limits of both backends.
const USERS_PER_QUERY: usize = 500;

/// The stored identity keys of one device, with the name its user gave the device.
#[derive(Clone, Debug)]
pub struct DeviceKeysRow {
    /// The owner.
    pub user_id: OwnedUserId,
    /// The device.
    pub device_id: OwnedDeviceId,
    /// The canonical JSON of the uploaded `DeviceKeys` object.
    pub key_json: String,
    /// The device's display name from the `devices` table.
    pub display_name: Option<String>,
}

/// A device's fallback key for one algorithm.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FallbackKeyRow {
    /// The key ID (without the algorithm).
    pub key_id: String,
    /// The canonical JSON of the key object.
    pub key_json: String,
    /// Whether it was handed out by a claim since it was uploaded.
    pub used: bool,
}

// === device keys ===

/// The stored identity keys of a device, as canonical JSON.
pub async fn device_keys<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    user_id: &UserId,
    device_id: &DeviceId,
) -> sqlx::Result<Option<String>> {
    let row = sqlx::query("SELECT key_json FROM e2e_device_keys WHERE user_id = $1 AND device_id = $2")
        .bind(user_id.as_str())
        .bind(device_id.as_str())
        .fetch_optional(executor)
        .await?;
    row.map(|r| r.try_get("key_json")).transpose()
}

/// Stores (or replaces) the identity keys of a device.
pub async fn set_device_keys(
    conn: &mut Conn,
    user_id: &UserId,
    device_id: &DeviceId,
    key_json: &str,
    now_ms: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO e2e_device_keys (user_id, device_id, key_json, updated_ts) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (user_id, device_id) DO UPDATE SET key_json = excluded.key_json, \
         updated_ts = excluded.updated_ts",
    )
    .bind(user_id.as_str())
    .bind(device_id.as_str())
    .bind(key_json)
    .bind(now_ms)
    .execute(conn)
    .await?;
    Ok(())
}

/// The identity keys of every device of `user_ids` that uploaded some, ordered by user and
/// device.
pub async fn device_keys_of_users(conn: &mut Conn, user_ids: &[&UserId]) -> sqlx::Result<Vec<DeviceKeysRow>> {
    let mut found = Vec::new();
    for chunk in user_ids.chunks(USERS_PER_QUERY) {
        let placeholders: Vec<String> = (1..=chunk.len()).map(|n| format!("${n}")).collect();
        let sql = format!(
            "SELECT k.user_id, k.device_id, k.key_json, d.display_name FROM e2e_device_keys k \
             JOIN devices d ON d.user_id = k.user_id AND d.device_id = k.device_id \
             WHERE k.user_id IN ({}) ORDER BY k.user_id, k.device_id",
            placeholders.join(", ")
        );
        let mut query = sqlx::query(&sql);
        for user_id in chunk {
            query = query.bind(user_id.as_str());
        }
        for row in query.fetch_all(&mut *conn).await? {
            let user_id: String = row.try_get("user_id")?;
            found.push(DeviceKeysRow {
                user_id: user_id.try_into().map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
                device_id: row.try_get::<String, _>("device_id")?.into(),
                key_json: row.try_get("key_json")?,
                display_name: row.try_get("display_name")?,
            });
        }
    }
    Ok(found)
}

// === one-time keys ===

/// Adds a one-time key; returns `false` (and changes nothing) when the device already has an
/// unclaimed key with this algorithm and ID.
pub async fn insert_one_time_key(
    conn: &mut Conn,
    user_id: &UserId,
    device_id: &DeviceId,
    algorithm: &str,
    key_id: &str,
    key_json: &str,
) -> sqlx::Result<bool> {
    let result = sqlx::query(
        "INSERT INTO e2e_one_time_keys (user_id, device_id, algorithm, key_id, key_json) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_id, device_id, algorithm, key_id) DO NOTHING",
    )
    .bind(user_id.as_str())
    .bind(device_id.as_str())
    .bind(algorithm)
    .bind(key_id)
    .bind(key_json)
    .execute(conn)
    .await?;
    Ok(result.rows_affected() > 0)
}

/// The canonical JSON of an unclaimed one-time key.
pub async fn one_time_key(
    conn: &mut Conn,
    user_id: &UserId,
    device_id: &DeviceId,
    algorithm: &str,
    key_id: &str,
) -> sqlx::Result<Option<String>> {
    let row = sqlx::query(
        "SELECT key_json FROM e2e_one_time_keys WHERE user_id = $1 AND device_id = $2 \
         AND algorithm = $3 AND key_id = $4",
    )
    .bind(user_id.as_str())
    .bind(device_id.as_str())
    .bind(algorithm)
    .bind(key_id)
    .fetch_optional(conn)
    .await?;
    row.map(|r| r.try_get("key_json")).transpose()
}

/// How many unclaimed one-time keys the device has, per algorithm.
pub async fn one_time_key_counts<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    user_id: &UserId,
    device_id: &DeviceId,
) -> sqlx::Result<Vec<(String, i64)>> {
    let rows = sqlx::query(
        "SELECT algorithm, COUNT(*) AS n FROM e2e_one_time_keys WHERE user_id = $1 AND device_id = $2 \
         GROUP BY algorithm ORDER BY algorithm",
    )
    .bind(user_id.as_str())
    .bind(device_id.as_str())
    .fetch_all(executor)
    .await?;
    rows.iter().map(|r| Ok((r.try_get("algorithm")?, r.try_get("n")?))).collect()
}

/// Removes and returns the device's oldest one-time key of `algorithm`: `(key_id, key_json)`.
/// One statement, so no two claims get the same key: SQLite has a single writer, and on
/// PostgreSQL a concurrent claim skips the row this one locked.
pub async fn claim_one_time_key(
    conn: &mut Conn,
    backend: Backend,
    user_id: &UserId,
    device_id: &DeviceId,
    algorithm: &str,
) -> sqlx::Result<Option<(String, String)>> {
    let lock = match backend {
        Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    let sql = format!(
        "DELETE FROM e2e_one_time_keys WHERE id = (SELECT id FROM e2e_one_time_keys \
         WHERE user_id = $1 AND device_id = $2 AND algorithm = $3 ORDER BY id LIMIT 1{lock}) \
         RETURNING key_id, key_json"
    );
    let row = sqlx::query(&sql)
        .bind(user_id.as_str())
        .bind(device_id.as_str())
        .bind(algorithm)
        .fetch_optional(conn)
        .await?;
    row.map(|r| Ok((r.try_get("key_id")?, r.try_get("key_json")?))).transpose()
}

// === fallback keys ===

/// The device's fallback key for `algorithm`.
pub async fn fallback_key(
    conn: &mut Conn,
    user_id: &UserId,
    device_id: &DeviceId,
    algorithm: &str,
) -> sqlx::Result<Option<FallbackKeyRow>> {
    let row = sqlx::query(
        "SELECT key_id, key_json, used FROM e2e_fallback_keys WHERE user_id = $1 AND device_id = $2 \
         AND algorithm = $3",
    )
    .bind(user_id.as_str())
    .bind(device_id.as_str())
    .bind(algorithm)
    .fetch_optional(conn)
    .await?;
    row.map(|r| {
        Ok(FallbackKeyRow {
            key_id: r.try_get("key_id")?,
            key_json: r.try_get("key_json")?,
            used: r.try_get::<i64, _>("used")? != 0,
        })
    })
    .transpose()
}

/// Sets the device's fallback key for `algorithm`, replacing the previous one. Uploading the
/// current key again changes nothing (a used key stays used).
pub async fn set_fallback_key(
    conn: &mut Conn,
    user_id: &UserId,
    device_id: &DeviceId,
    algorithm: &str,
    key_id: &str,
    key_json: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO e2e_fallback_keys (user_id, device_id, algorithm, key_id, key_json, used) \
         VALUES ($1, $2, $3, $4, $5, 0) ON CONFLICT (user_id, device_id, algorithm) DO UPDATE SET \
         key_id = excluded.key_id, key_json = excluded.key_json, used = 0 \
         WHERE e2e_fallback_keys.key_id <> excluded.key_id OR e2e_fallback_keys.key_json <> excluded.key_json",
    )
    .bind(user_id.as_str())
    .bind(device_id.as_str())
    .bind(algorithm)
    .bind(key_id)
    .bind(key_json)
    .execute(conn)
    .await?;
    Ok(())
}

/// Marks the device's fallback key for `algorithm` as handed out.
pub async fn mark_fallback_key_used(
    conn: &mut Conn,
    user_id: &UserId,
    device_id: &DeviceId,
    algorithm: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE e2e_fallback_keys SET used = 1 WHERE user_id = $1 AND device_id = $2 AND algorithm = $3",
    )
    .bind(user_id.as_str())
    .bind(device_id.as_str())
    .bind(algorithm)
    .execute(conn)
    .await?;
    Ok(())
}

/// The device's unclaimed one-time keys counted per algorithm, and the algorithms for which it
/// has a fallback key that no claim has handed out yet — what every `/sync` reports, in one
/// statement.
pub async fn key_counts<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    user_id: &UserId,
    device_id: &DeviceId,
) -> sqlx::Result<(Vec<(String, i64)>, Vec<String>)> {
    let rows = sqlx::query(
        "SELECT CAST(0 AS BIGINT) AS fallback, algorithm, COUNT(*) AS n FROM e2e_one_time_keys \
         WHERE user_id = $1 AND device_id = $2 GROUP BY algorithm \
         UNION ALL SELECT CAST(1 AS BIGINT), algorithm, CAST(0 AS BIGINT) FROM e2e_fallback_keys \
         WHERE user_id = $1 AND device_id = $2 AND used = 0 ORDER BY 1, 2",
    )
    .bind(user_id.as_str())
    .bind(device_id.as_str())
    .fetch_all(executor)
    .await?;
    let (mut one_time, mut fallback) = (Vec::new(), Vec::new());
    for row in rows {
        let algorithm: String = row.try_get("algorithm")?;
        match row.try_get::<i64, _>("fallback")? {
            0 => one_time.push((algorithm, row.try_get("n")?)),
            _ => fallback.push(algorithm),
        }
    }
    Ok((one_time, fallback))
}

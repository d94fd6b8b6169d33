//! The `access_tokens` table. Only SHA-256 digests of tokens are stored.

use ruma::{DeviceId, OwnedDeviceId, OwnedUserId, UserId};
use sqlx::{Executor, Row};

use super::{Conn, users::parse_user_id};

/// Who a token belongs to.
#[derive(Clone, Debug)]
pub struct TokenOwner {
    /// The user.
    pub user_id: OwnedUserId,
    /// The device the token was issued to.
    pub device_id: OwnedDeviceId,
    /// Whether the user is a server admin.
    pub is_admin: bool,
}

/// Stores a token digest for a device, replacing any earlier token of that device.
pub async fn replace_for_device(
    conn: &mut Conn,
    token_hash: &str,
    user_id: &UserId,
    device_id: &DeviceId,
    now_ms: i64,
) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM access_tokens WHERE user_id = $1 AND device_id = $2")
        .bind(user_id.as_str())
        .bind(device_id.as_str())
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO access_tokens (token_hash, user_id, device_id, created_ts) VALUES ($1, $2, $3, $4)",
    )
    .bind(token_hash)
    .bind(user_id.as_str())
    .bind(device_id.as_str())
    .bind(now_ms)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Finds the live (non-deactivated) owner of a token digest.
pub async fn owner<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    token_hash: &str,
) -> sqlx::Result<Option<TokenOwner>> {
    let row = sqlx::query(
        "SELECT t.user_id, t.device_id, u.is_admin FROM access_tokens t \
         JOIN users u ON u.user_id = t.user_id WHERE t.token_hash = $1 AND u.deactivated = 0",
    )
    .bind(token_hash)
    .fetch_optional(executor)
    .await?;
    row.map(|row| {
        Ok(TokenOwner {
            user_id: parse_user_id(row.try_get("user_id")?)?,
            device_id: row.try_get::<String, _>("device_id")?.into(),
            is_admin: row.try_get::<i64, _>("is_admin")? != 0,
        })
    })
    .transpose()
}

//! The `users` table: one row per local account, deactivated ones included (a user ID is never
//! handed out twice).

use ruma::{OwnedUserId, UserId};
use sqlx::{Executor, Row};

use super::Conn;

/// A local account as stored.
#[derive(Clone, Debug)]
pub struct UserRow {
    /// The full user ID.
    pub user_id: OwnedUserId,
    /// argon2 PHC string; `None` for deactivated users or accounts without a password.
    pub password_hash: Option<String>,
    /// Profile display name.
    pub displayname: Option<String>,
    /// Profile avatar (`mxc://` URI).
    pub avatar_url: Option<String>,
    /// Whether this user may use the admin API.
    pub is_admin: bool,
    /// Whether the account has been deactivated.
    pub deactivated: bool,
}

/// Creates a user; returns `false` (and changes nothing) when the ID is already taken.
pub async fn insert(
    conn: &mut Conn,
    user_id: &UserId,
    password_hash: Option<&str>,
    displayname: Option<&str>,
    is_admin: bool,
    now_ms: i64,
) -> sqlx::Result<bool> {
    let result = sqlx::query(
        "INSERT INTO users (user_id, password_hash, displayname, is_admin, deactivated, created_ts) \
         VALUES ($1, $2, $3, $4, 0, $5) ON CONFLICT (user_id) DO NOTHING",
    )
    .bind(user_id.as_str())
    .bind(password_hash)
    .bind(displayname)
    .bind(i64::from(is_admin))
    .bind(now_ms)
    .execute(conn)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Loads a user by ID.
pub async fn get<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    user_id: &UserId,
) -> sqlx::Result<Option<UserRow>> {
    let row = sqlx::query(
        "SELECT user_id, password_hash, displayname, avatar_url, is_admin, deactivated \
         FROM users WHERE user_id = $1",
    )
    .bind(user_id.as_str())
    .fetch_optional(executor)
    .await?;
    row.map(|row| {
        Ok(UserRow {
            user_id: parse_user_id(row.try_get("user_id")?)?,
            password_hash: row.try_get("password_hash")?,
            displayname: row.try_get("displayname")?,
            avatar_url: row.try_get("avatar_url")?,
            is_admin: row.try_get::<i64, _>("is_admin")? != 0,
            deactivated: row.try_get::<i64, _>("deactivated")? != 0,
        })
    })
    .transpose()
}

/// Whether a user ID has ever been registered (deactivated accounts included).
pub async fn exists<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    user_id: &UserId,
) -> sqlx::Result<bool> {
    let row = sqlx::query("SELECT 1 AS found FROM users WHERE user_id = $1")
        .bind(user_id.as_str())
        .fetch_optional(executor)
        .await?;
    Ok(row.is_some())
}

/// Replaces the password hash.
pub async fn set_password_hash(conn: &mut Conn, user_id: &UserId, hash: &str) -> sqlx::Result<()> {
    sqlx::query("UPDATE users SET password_hash = $1 WHERE user_id = $2")
        .bind(hash)
        .bind(user_id.as_str())
        .execute(conn)
        .await?;
    Ok(())
}

/// Marks the account deactivated and forgets its password and profile.
pub async fn deactivate(conn: &mut Conn, user_id: &UserId) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE users SET deactivated = 1, password_hash = NULL, displayname = NULL, \
         avatar_url = NULL WHERE user_id = $1",
    )
    .bind(user_id.as_str())
    .execute(conn)
    .await?;
    Ok(())
}

/// Sets the display name (`None` removes it).
pub async fn set_displayname<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    user_id: &UserId,
    displayname: Option<&str>,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE users SET displayname = $1 WHERE user_id = $2")
        .bind(displayname)
        .bind(user_id.as_str())
        .execute(executor)
        .await?;
    Ok(())
}

/// Sets the avatar URL (`None` removes it).
pub async fn set_avatar_url<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    user_id: &UserId,
    avatar_url: Option<&str>,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE users SET avatar_url = $1 WHERE user_id = $2")
        .bind(avatar_url)
        .bind(user_id.as_str())
        .execute(executor)
        .await?;
    Ok(())
}

/// Parses an ID read back from the database; a bad one means the row was corrupted.
pub(super) fn parse_user_id(raw: String) -> sqlx::Result<OwnedUserId> {
    OwnedUserId::try_from(raw).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

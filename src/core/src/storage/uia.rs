//! The `uia_sessions` table: progress of user-interactive authentication, kept in the database
//! so that any process of a deployment can continue a session another one started.

use ruma::{OwnedUserId, UserId};
use sqlx::{Executor, Row};

use super::users::parse_user_id;

/// A stored UIA session.
#[derive(Clone, Debug)]
pub struct UiaSession {
    /// The user the session authenticates, once known.
    pub user_id: Option<OwnedUserId>,
    /// Stage types completed so far.
    pub completed: Vec<String>,
    /// When the session started (ms since the epoch).
    pub created_ts: i64,
}

/// Creates a session.
pub async fn create<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    session_id: &str,
    user_id: Option<&UserId>,
    now_ms: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO uia_sessions (session_id, user_id, completed, created_ts) VALUES ($1, $2, '[]', $3)",
    )
    .bind(session_id)
    .bind(user_id.map(UserId::as_str))
    .bind(now_ms)
    .execute(executor)
    .await?;
    Ok(())
}

/// Loads a session.
pub async fn get<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    session_id: &str,
) -> sqlx::Result<Option<UiaSession>> {
    let row = sqlx::query("SELECT user_id, completed, created_ts FROM uia_sessions WHERE session_id = $1")
        .bind(session_id)
        .fetch_optional(executor)
        .await?;
    row.map(|row| {
        let completed: String = row.try_get("completed")?;
        Ok(UiaSession {
            user_id: row.try_get::<Option<String>, _>("user_id")?.map(parse_user_id).transpose()?,
            completed: serde_json::from_str(&completed).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
            created_ts: row.try_get("created_ts")?,
        })
    })
    .transpose()
}

/// Records the completed stages (and the user, once known).
pub async fn update<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    session_id: &str,
    user_id: Option<&UserId>,
    completed: &[String],
) -> sqlx::Result<()> {
    let completed = serde_json::to_string(completed).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    sqlx::query(
        "UPDATE uia_sessions SET completed = $1, user_id = COALESCE($2, user_id) WHERE session_id = $3",
    )
    .bind(completed)
    .bind(user_id.map(UserId::as_str))
    .bind(session_id)
    .execute(executor)
    .await?;
    Ok(())
}

/// Ends a session (after its request succeeded) and drops sessions older than `expired_before`.
pub async fn delete<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    session_id: &str,
    expired_before: i64,
) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM uia_sessions WHERE session_id = $1 OR created_ts < $2")
        .bind(session_id)
        .bind(expired_before)
        .execute(executor)
        .await?;
    Ok(())
}

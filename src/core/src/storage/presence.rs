//! The `presence` table: the presence state and status message each user last set, when they
//! were last active, and the position of the latest change in the presence stream.

use ruma::UserId;
use sqlx::{Executor, Row};

use super::Conn;

/// A user's stored presence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PresenceRow {
    /// `online`, `unavailable` or `offline`.
    pub state: String,
    /// The status message, if one was set.
    pub status_msg: Option<String>,
    /// When the user was last active (ms since the epoch).
    pub last_active_ts: i64,
    /// Position of this change in the presence stream.
    pub stream_id: i64,
}

/// A user's stored presence, if they ever set one.
pub async fn get<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    user_id: &UserId,
) -> sqlx::Result<Option<PresenceRow>> {
    let row =
        sqlx::query("SELECT state, status_msg, last_active_ts, stream_id FROM presence WHERE user_id = $1")
            .bind(user_id.as_str())
            .fetch_optional(executor)
            .await?;
    row.map(|r| {
        Ok(PresenceRow {
            state: r.try_get("state")?,
            status_msg: r.try_get("status_msg")?,
            last_active_ts: r.try_get("last_active_ts")?,
            stream_id: r.try_get("stream_id")?,
        })
    })
    .transpose()
}

/// Creates or replaces a user's presence (`stream_id` from
/// [`streams::next_position`](super::streams::next_position) in the same transaction).
pub async fn put(
    conn: &mut Conn,
    user_id: &UserId,
    state: &str,
    status_msg: Option<&str>,
    last_active_ts: i64,
    stream_id: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO presence (user_id, state, status_msg, last_active_ts, stream_id) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (user_id) DO UPDATE SET state = $2, status_msg = $3, last_active_ts = $4, stream_id = $5",
    )
    .bind(user_id.as_str())
    .bind(state)
    .bind(status_msg)
    .bind(last_active_ts)
    .bind(stream_id)
    .execute(conn)
    .await?;
    Ok(())
}

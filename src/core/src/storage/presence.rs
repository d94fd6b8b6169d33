//! The `presence` table: the presence state and status message each user last set, when they
//! were last active and last seen, and the position of the latest change in the presence stream.

use ruma::{OwnedUserId, UserId};
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
    /// When the server last saw the user (ms since the epoch).
    pub last_seen_ts: i64,
}

const COLUMNS: &str = "state, status_msg, last_active_ts, stream_id, last_seen_ts";

fn from_row(row: &sqlx::any::AnyRow) -> sqlx::Result<PresenceRow> {
    Ok(PresenceRow {
        state: row.try_get("state")?,
        status_msg: row.try_get("status_msg")?,
        last_active_ts: row.try_get("last_active_ts")?,
        stream_id: row.try_get("stream_id")?,
        last_seen_ts: row.try_get("last_seen_ts")?,
    })
}

/// A user's stored presence, if they ever set one.
pub async fn get<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    user_id: &UserId,
) -> sqlx::Result<Option<PresenceRow>> {
    let sql = format!("SELECT {COLUMNS} FROM presence WHERE user_id = $1");
    let row = sqlx::query(&sql).bind(user_id.as_str()).fetch_optional(executor).await?;
    row.as_ref().map(from_row).transpose()
}

/// Creates or replaces a user's presence (`stream_id` from
/// [`streams::next_position`](super::streams::next_position) in the same transaction); the user
/// counts as seen at `seen_ts`.
pub async fn put(
    conn: &mut Conn,
    user_id: &UserId,
    state: &str,
    status_msg: Option<&str>,
    (last_active_ts, seen_ts): (i64, i64),
    stream_id: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO presence (user_id, state, status_msg, last_active_ts, stream_id, last_seen_ts) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (user_id) DO UPDATE SET state = $2, status_msg = $3, \
         last_active_ts = $4, stream_id = $5, last_seen_ts = $6",
    )
    .bind(user_id.as_str())
    .bind(state)
    .bind(status_msg)
    .bind(last_active_ts)
    .bind(stream_id)
    .bind(seen_ts)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records that `user_id` was seen at `seen_ts`, changing nothing anyone sees.
pub async fn seen<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    user_id: &UserId,
    seen_ts: i64,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE presence SET last_seen_ts = $2 WHERE user_id = $1")
        .bind(user_id.as_str())
        .bind(seen_ts)
        .execute(executor)
        .await?;
    Ok(())
}

/// Users who are not offline but were last seen before `before`, with their stored presence.
pub async fn unseen_since<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    before: i64,
) -> sqlx::Result<Vec<(OwnedUserId, PresenceRow)>> {
    let sql =
        format!("SELECT user_id, {COLUMNS} FROM presence WHERE last_seen_ts < $1 AND state <> 'offline'");
    let rows = sqlx::query(&sql).bind(before).fetch_all(executor).await?;
    rows.iter().map(|row| Ok((super::id_column(row, "user_id")?, from_row(row)?))).collect()
}

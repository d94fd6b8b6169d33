//! The `device_list_changes` table (one row per change of a user's device list, at its
//! position in the device list stream: changes of local users, and those other servers announce
//! of theirs) and the membership reads that `/sync`'s `device_lists` and `/keys/changes`
//! combine it with.

use ruma::{OwnedRoomId, OwnedUserId, RoomId, UserId};
use sqlx::{Executor, Row};

use super::Conn;

/// A membership event of a room, as far as device list tracking needs it.
#[derive(Clone, Debug)]
pub struct MemberEvent {
    /// The room.
    pub room_id: OwnedRoomId,
    /// The user whose membership it sets (its `state_key`).
    pub target: OwnedUserId,
    /// The event's JSON, whose `content.membership` says what happened.
    pub json: String,
}

/// Records that `user_id`'s device list changed at `stream_id` (from
/// [`streams::next_position`](super::streams::next_position) in the same transaction).
pub async fn insert(conn: &mut Conn, user_id: &UserId, stream_id: i64) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO device_list_changes (stream_id, user_id) VALUES ($1, $2)")
        .bind(stream_id)
        .bind(user_id.as_str())
        .execute(conn)
        .await?;
    Ok(())
}

/// The position of `user_id`'s latest change, if any.
pub async fn last_position<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    user_id: &UserId,
) -> sqlx::Result<Option<i64>> {
    let row = sqlx::query("SELECT MAX(stream_id) AS last FROM device_list_changes WHERE user_id = $1")
        .bind(user_id.as_str())
        .fetch_one(executor)
        .await?;
    row.try_get("last")
}

/// The users whose device lists changed at a position in `(from, to]`, each once.
pub async fn changed_between(conn: &mut Conn, from: i64, to: i64) -> sqlx::Result<Vec<OwnedUserId>> {
    let rows = sqlx::query(
        "SELECT DISTINCT user_id FROM device_list_changes WHERE stream_id > $1 AND stream_id <= $2",
    )
    .bind(from)
    .bind(to)
    .fetch_all(conn)
    .await?;
    rows.iter().map(|r| user(r, "user_id")).collect()
}

/// The membership events at event stream positions in `(from, to]` of the rooms `viewer` has
/// any membership in now, in stream order. Rejected and soft-failed events changed nothing.
pub async fn member_events_between(
    conn: &mut Conn,
    viewer: &UserId,
    from: i64,
    to: i64,
) -> sqlx::Result<Vec<MemberEvent>> {
    let rows = sqlx::query(
        "SELECT e.room_id, e.state_key, e.json FROM events e \
         WHERE e.type = 'm.room.member' AND e.stream_ordering > $2 AND e.stream_ordering <= $3 \
         AND e.outlier = 0 AND e.rejected = 0 AND e.soft_failed = 0 \
         AND e.room_id IN (SELECT room_id FROM current_state WHERE type = 'm.room.member' AND state_key = $1) \
         ORDER BY e.stream_ordering",
    )
    .bind(viewer.as_str())
    .bind(from)
    .bind(to)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            let room_id: String = r.try_get("room_id")?;
            Ok(MemberEvent {
                room_id: room_id.try_into().map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
                target: user(r, "state_key")?,
                json: r.try_get("json")?,
            })
        })
        .collect()
}

/// The users joined to `room_id` now.
pub async fn joined_members(conn: &mut Conn, room_id: &RoomId) -> sqlx::Result<Vec<OwnedUserId>> {
    let rows = sqlx::query(
        "SELECT state_key FROM current_state WHERE room_id = $1 AND type = 'm.room.member' \
         AND membership = 'join'",
    )
    .bind(room_id.as_str())
    .fetch_all(conn)
    .await?;
    rows.iter().map(|r| user(r, "state_key")).collect()
}

fn user(row: &sqlx::any::AnyRow, column: &str) -> sqlx::Result<OwnedUserId> {
    super::id_column(row, column)
}

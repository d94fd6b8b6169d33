//! The `rooms` and `forward_extremities` tables.

use ruma::{OwnedRoomId, OwnedUserId, RoomId, RoomVersionId, UserId};
use sqlx::{Executor, Row};

use super::Conn;

/// Records a new room.
pub async fn insert(
    conn: &mut Conn,
    room_id: &RoomId,
    version: &RoomVersionId,
    creator: &UserId,
    now_ms: i64,
) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO rooms (room_id, room_version, creator, created_ts) VALUES ($1, $2, $3, $4)")
        .bind(room_id.as_str())
        .bind(version.as_str())
        .bind(creator.as_str())
        .bind(now_ms)
        .execute(conn)
        .await?;
    Ok(())
}

/// The room's version, or `None` for rooms this server does not know.
pub async fn version<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    room_id: &RoomId,
) -> sqlx::Result<Option<RoomVersionId>> {
    let row = sqlx::query("SELECT room_version FROM rooms WHERE room_id = $1")
        .bind(room_id.as_str())
        .fetch_optional(executor)
        .await?;
    row.map(|r| {
        let v: String = r.try_get("room_version")?;
        RoomVersionId::try_from(v).map_err(|e| sqlx::Error::Decode(Box::new(e)))
    })
    .transpose()
}

/// How many rooms this server knows.
pub async fn count<'c>(executor: impl Executor<'c, Database = sqlx::Any>) -> sqlx::Result<i64> {
    sqlx::query("SELECT COUNT(*) AS n FROM rooms").fetch_one(executor).await?.try_get("n")
}

/// Every room this server knows, by ID.
pub async fn all_ids<'c>(executor: impl Executor<'c, Database = sqlx::Any>) -> sqlx::Result<Vec<String>> {
    let rows = sqlx::query("SELECT room_id FROM rooms").fetch_all(executor).await?;
    rows.iter().map(|r| r.try_get("room_id")).collect()
}

/// The rooms `user_id` forgot.
pub async fn forgotten<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    user_id: &UserId,
) -> sqlx::Result<Vec<String>> {
    let rows = sqlx::query("SELECT room_id FROM forgotten_rooms WHERE user_id = $1")
        .bind(user_id.as_str())
        .fetch_all(executor)
        .await?;
    rows.iter().map(|r| r.try_get("room_id")).collect()
}

/// The state group of the room's state while it has several forward extremities.
pub async fn forked_state_group<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    room_id: &RoomId,
) -> sqlx::Result<Option<i64>> {
    let row = sqlx::query("SELECT forked_state_group FROM rooms WHERE room_id = $1")
        .bind(room_id.as_str())
        .fetch_optional(executor)
        .await?;
    Ok(row.map(|r| r.try_get("forked_state_group")).transpose()?.flatten())
}

/// Records the state group of the room's resolved state when it has several extremities.
pub async fn set_forked_state_group<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    room_id: &RoomId,
    group: Option<i64>,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE rooms SET forked_state_group = $1 WHERE room_id = $2")
        .bind(group)
        .bind(room_id.as_str())
        .execute(executor)
        .await?;
    Ok(())
}

/// A forward extremity: an event with no children yet.
#[derive(Clone, Debug)]
pub struct Extremity {
    /// Interned event ID.
    pub event_nid: i64,
    /// The event ID.
    pub event_id: String,
    /// Its depth.
    pub depth: i64,
    /// The state after it.
    pub state_group: Option<i64>,
}

/// The room's forward extremities.
pub async fn extremities(conn: &mut Conn, room_id: &RoomId) -> sqlx::Result<Vec<Extremity>> {
    let rows = sqlx::query(
        "SELECT e.event_nid, e.event_id, e.depth, e.state_group FROM forward_extremities f \
         JOIN events e ON e.event_nid = f.event_nid WHERE f.room_id = $1 ORDER BY e.depth DESC, e.event_nid",
    )
    .bind(room_id.as_str())
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(Extremity {
                event_nid: r.try_get("event_nid")?,
                event_id: r.try_get("event_id")?,
                depth: r.try_get("depth")?,
                state_group: r.try_get("state_group")?,
            })
        })
        .collect()
}

/// Moves the single forward extremity of several rooms at once: `(room, old, new)` triples.
/// Returns how many rooms were updated (fewer than asked means some room had forked).
pub async fn replace_extremities(conn: &mut Conn, moves: &[(&RoomId, i64, i64)]) -> sqlx::Result<u64> {
    if moves.is_empty() {
        return Ok(0);
    }
    let mut case = String::from("CASE");
    let mut matches = Vec::with_capacity(moves.len());
    for i in 0..moves.len() {
        let b = i * 3;
        case.push_str(&format!(" WHEN room_id = ${} AND event_nid = ${} THEN ${}", b + 1, b + 2, b + 3));
        matches.push(format!("(room_id = ${} AND event_nid = ${})", b + 1, b + 2));
    }
    case.push_str(" END");
    let sql = format!("UPDATE forward_extremities SET event_nid = {case} WHERE {}", matches.join(" OR "));
    let mut query = sqlx::query(&sql);
    for (room, old, new) in moves {
        query = query.bind(room.as_str()).bind(*old).bind(*new);
    }
    Ok(query.execute(conn).await?.rows_affected())
}

/// Replaces the room's forward extremities.
pub async fn set_extremities(conn: &mut Conn, room_id: &RoomId, event_nids: &[i64]) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM forward_extremities WHERE room_id = $1")
        .bind(room_id.as_str())
        .execute(&mut *conn)
        .await?;
    for nid in event_nids {
        sqlx::query("INSERT INTO forward_extremities (room_id, event_nid) VALUES ($1, $2)")
            .bind(room_id.as_str())
            .bind(nid)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Rooms in which the user's current membership is `membership`.
pub async fn rooms_with_membership<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    user_id: &UserId,
    membership: &str,
) -> sqlx::Result<Vec<OwnedRoomId>> {
    let rows = sqlx::query(
        "SELECT room_id FROM current_state WHERE type = 'm.room.member' AND state_key = $1 \
         AND membership = $2 ORDER BY room_id",
    )
    .bind(user_id.as_str())
    .bind(membership)
    .fetch_all(executor)
    .await?;
    rows.iter().map(|r| super::id_column(r, "room_id")).collect()
}

/// Lists or unlists a room in the room directory.
pub async fn set_public<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    room_id: &RoomId,
    public: bool,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE rooms SET is_public = $1 WHERE room_id = $2")
        .bind(i64::from(public))
        .bind(room_id.as_str())
        .execute(executor)
        .await?;
    Ok(())
}

/// Marks a room forgotten by a user.
pub async fn forget<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    user_id: &UserId,
    room_id: &RoomId,
) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO forgotten_rooms (user_id, room_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .bind(user_id.as_str())
        .bind(room_id.as_str())
        .execute(executor)
        .await?;
    Ok(())
}

/// Whether a user has forgotten a room.
pub async fn is_forgotten<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    user_id: &UserId,
    room_id: &RoomId,
) -> sqlx::Result<bool> {
    let row = sqlx::query("SELECT 1 AS found FROM forgotten_rooms WHERE user_id = $1 AND room_id = $2")
        .bind(user_id.as_str())
        .bind(room_id.as_str())
        .fetch_optional(executor)
        .await?;
    Ok(row.is_some())
}

/// Whether a room is listed in the room directory; `None` for rooms this server does not know.
pub async fn is_public<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    room_id: &RoomId,
) -> sqlx::Result<Option<bool>> {
    let row = sqlx::query("SELECT is_public FROM rooms WHERE room_id = $1")
        .bind(room_id.as_str())
        .fetch_optional(executor)
        .await?;
    row.map(|r| r.try_get::<i64, _>("is_public").map(|p| p != 0)).transpose()
}

/// Whether two users are both joined to at least one room.
pub async fn share_a_room<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    a: &UserId,
    b: &UserId,
) -> sqlx::Result<bool> {
    let row = sqlx::query(
        "SELECT 1 AS found FROM current_state x JOIN current_state y ON y.room_id = x.room_id \
         WHERE x.type = 'm.room.member' AND x.state_key = $1 AND x.membership = 'join' \
         AND y.type = 'm.room.member' AND y.state_key = $2 AND y.membership = 'join' LIMIT 1",
    )
    .bind(a.as_str())
    .bind(b.as_str())
    .fetch_optional(executor)
    .await?;
    Ok(row.is_some())
}

/// Users joined to, invited to or knocking on a room: those its changes concern.
pub async fn members_to_notify<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    room_id: &RoomId,
) -> sqlx::Result<Vec<OwnedUserId>> {
    let rows = sqlx::query(
        "SELECT state_key FROM current_state WHERE room_id = $1 AND type = 'm.room.member' \
         AND membership IN ('join', 'invite', 'knock')",
    )
    .bind(room_id.as_str())
    .fetch_all(executor)
    .await?;
    rows.iter().map(|r| super::id_column(r, "state_key")).collect()
}

/// Users joined to at least one room `user` is joined to (`user` included).
pub async fn users_sharing_rooms_with<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    user: &UserId,
) -> sqlx::Result<Vec<OwnedUserId>> {
    let rows = sqlx::query(
        "SELECT DISTINCT y.state_key FROM current_state x JOIN current_state y ON y.room_id = x.room_id \
         WHERE x.type = 'm.room.member' AND x.state_key = $1 AND x.membership = 'join' \
         AND y.type = 'm.room.member' AND y.membership = 'join'",
    )
    .bind(user.as_str())
    .fetch_all(executor)
    .await?;
    rows.iter().map(|r| super::id_column(r, "state_key")).collect()
}

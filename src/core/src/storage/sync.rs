//! The queries `/sync` needs beyond reading single rooms: a user's membership in every room as
//! of a stream position, which rooms changed in a window of the stream, the state events of a
//! window, and what changed in the account data and presence streams.

use ruma::{OwnedRoomId, RoomId, UserId};
use sqlx::{Executor, Row};

use super::events::{COLUMNS, StoredEvent, from_row};

/// A user's latest membership event in one room.
#[derive(Clone, Debug)]
pub struct MembershipRow {
    /// The room.
    pub room_id: OwnedRoomId,
    /// The membership event.
    pub event: StoredEvent,
}

/// `user`'s latest membership event in every room, as of stream position `upto`.
pub async fn memberships_at<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    user: &UserId,
    upto: i64,
) -> sqlx::Result<Vec<MembershipRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM events WHERE stream_ordering IN ( \
             SELECT MAX(stream_ordering) FROM events WHERE type = 'm.room.member' AND state_key = $1 \
             AND stream_ordering <= $2 AND outlier = 0 AND rejected = 0 AND soft_failed = 0 \
             GROUP BY room_id)"
    );
    let rows = sqlx::query(&sql).bind(user.as_str()).bind(upto).fetch_all(executor).await?;
    rows.into_iter()
        .map(|row| {
            let event = from_row(row)?;
            let room_id = OwnedRoomId::try_from(event.room_id.as_str())
                .map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
            Ok(MembershipRow { room_id, event })
        })
        .collect()
}

/// Rooms where `user`'s membership changed in the stream window `(from, to]`.
pub async fn membership_changed<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    user: &UserId,
    from: i64,
    to: i64,
) -> sqlx::Result<Vec<OwnedRoomId>> {
    let rows = sqlx::query(
        "SELECT DISTINCT room_id FROM events WHERE type = 'm.room.member' AND state_key = $1 \
         AND stream_ordering > $2 AND stream_ordering <= $3",
    )
    .bind(user.as_str())
    .bind(from)
    .bind(to)
    .fetch_all(executor)
    .await?;
    rows.iter().map(|row| super::id_column(row, "room_id")).collect()
}

/// Rooms with timeline events in the stream window `(from, to]`.
pub async fn rooms_changed<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    from: i64,
    to: i64,
) -> sqlx::Result<Vec<OwnedRoomId>> {
    let rows = sqlx::query(
        "SELECT DISTINCT room_id FROM events WHERE stream_ordering > $1 AND stream_ordering <= $2",
    )
    .bind(from)
    .bind(to)
    .fetch_all(executor)
    .await?;
    rows.iter().map(|row| super::id_column(row, "room_id")).collect()
}

/// The state events of `room_id` in the stream window `(from, before)`, oldest first.
pub async fn state_events_between<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    room_id: &RoomId,
    from: i64,
    before: i64,
) -> sqlx::Result<Vec<StoredEvent>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM events WHERE room_id = $1 AND stream_ordering > $2 AND stream_ordering < $3 \
         AND state_key IS NOT NULL AND outlier = 0 AND rejected = 0 AND soft_failed = 0 \
         ORDER BY stream_ordering"
    );
    let rows = sqlx::query(&sql).bind(room_id.as_str()).bind(from).bind(before).fetch_all(executor).await?;
    rows.into_iter().map(from_row).collect()
}

/// A changed piece of account data: `(room_id or "", type, content)`.
pub type AccountDataChange = (String, String, String);

/// `user`'s account data written in the stream window `(from, to]`.
pub async fn account_data_changed<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    user: &UserId,
    from: i64,
    to: i64,
) -> sqlx::Result<Vec<AccountDataChange>> {
    let rows = sqlx::query(
        "SELECT room_id, type, content FROM account_data WHERE user_id = $1 AND stream_id > $2 \
         AND stream_id <= $3 ORDER BY stream_id",
    )
    .bind(user.as_str())
    .bind(from)
    .bind(to)
    .fetch_all(executor)
    .await?;
    rows.into_iter().map(|r| Ok((r.try_get("room_id")?, r.try_get("type")?, r.try_get("content")?))).collect()
}

/// The users whose presence changed in the stream window `(from, to]` among `user` and the
/// users sharing a joined room with them.
pub async fn presence_changed<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    user: &UserId,
    from: i64,
    to: i64,
) -> sqlx::Result<Vec<ruma::OwnedUserId>> {
    let rows = sqlx::query(
        "SELECT p.user_id FROM presence p WHERE p.stream_id > $2 AND p.stream_id <= $3 AND ( \
             p.user_id = $1 OR EXISTS ( \
                 SELECT 1 FROM current_state x JOIN current_state y ON y.room_id = x.room_id \
                 WHERE x.type = 'm.room.member' AND x.state_key = $1 AND x.membership = 'join' \
                 AND y.type = 'm.room.member' AND y.state_key = p.user_id AND y.membership = 'join')) \
         ORDER BY p.stream_id",
    )
    .bind(user.as_str())
    .bind(from)
    .bind(to)
    .fetch_all(executor)
    .await?;
    rows.iter().map(|r| super::id_column(r, "user_id")).collect()
}

/// How many users are joined to and invited to `room_id`.
pub async fn member_counts<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    room_id: &RoomId,
) -> sqlx::Result<(i64, i64)> {
    let row = sqlx::query(
        "SELECT COALESCE(SUM(CASE WHEN membership = 'join' THEN 1 ELSE 0 END), 0) AS joined, \
         COALESCE(SUM(CASE WHEN membership = 'invite' THEN 1 ELSE 0 END), 0) AS invited \
         FROM current_state WHERE room_id = $1 AND type = 'm.room.member'",
    )
    .bind(room_id.as_str())
    .fetch_one(executor)
    .await?;
    Ok((row.try_get("joined")?, row.try_get("invited")?))
}

/// Up to `limit` joined or invited members of `room_id` other than `user`, by user ID: the
/// room's heroes, which clients name unnamed rooms after.
pub async fn heroes<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    room_id: &RoomId,
    user: &UserId,
    limit: i64,
) -> sqlx::Result<Vec<String>> {
    let rows = sqlx::query(
        "SELECT state_key FROM current_state WHERE room_id = $1 AND type = 'm.room.member' \
         AND state_key <> $2 AND membership IN ('join', 'invite') ORDER BY state_key LIMIT $3",
    )
    .bind(room_id.as_str())
    .bind(user.as_str())
    .bind(limit)
    .fetch_all(executor)
    .await?;
    rows.into_iter().map(|r| r.try_get("state_key")).collect()
}

//! The queries `/sync` needs beyond reading single rooms: a user's membership in every room as
//! of a stream position, which rooms changed in a window of the stream, the state events of a
//! window, what changed in the account data and presence streams, and the timelines and
//! summaries of many rooms at once.

use std::collections::HashMap;

use ruma::{OwnedRoomId, RoomId, UserId};
use sqlx::{Executor, Row};

use super::{
    Conn, IDS_PER_STATEMENT, Params,
    events::{COLUMNS, StoredEvent, from_row},
};

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

/// The newest `per_room` accepted timeline events of each room of `rooms` in its window of
/// stream positions (`(room, after, upto)`: above `after`, at or below `upto`), newest first
/// within each room: the timelines of a sync in one query (per [`IDS_PER_STATEMENT`] rooms). A
/// room with fewer rows has no older events in its window. An incremental sync passes its
/// `since` as `after`, so a quiet room costs no rows however long the timeline limit.
pub async fn latest_events(
    conn: &mut Conn,
    rooms: &[(&RoomId, i64, i64)],
    per_room: i64,
) -> sqlx::Result<Vec<StoredEvent>> {
    let mut events = Vec::new();
    for chunk in rooms.chunks(IDS_PER_STATEMENT) {
        let mut params = Params::new(conn);
        let values = (0..chunk.len())
            .map(|_| format!("({}, {}, {})", params.one(), params.one(), params.one()))
            .collect::<Vec<_>>()
            .join(", ");
        let columns = COLUMNS.split(", ").map(|c| format!("e.{c}")).collect::<Vec<_>>().join(", ");
        let accepted = "e.outlier = 0 AND e.rejected = 0 AND e.soft_failed = 0";
        let sqlite = conn.backend_name() == "SQLite";
        let sql = if sqlite {
            // SQLite has no LATERAL: per room, the position of its `per_room`-th newest event
            // bounds an index range scan.
            format!(
                "WITH r (room_id, after_pos, upto) AS (VALUES {values}), \
                 b (room_id, upto, low) AS (SELECT r.room_id, r.upto, COALESCE(( \
                     SELECT e.stream_ordering FROM events e WHERE e.room_id = r.room_id \
                     AND e.stream_ordering > r.after_pos AND e.stream_ordering <= r.upto AND {accepted} \
                     ORDER BY e.stream_ordering DESC LIMIT 1 OFFSET {}), r.after_pos + 1) FROM r) \
                 SELECT {columns} FROM b JOIN events e ON e.room_id = b.room_id \
                 AND e.stream_ordering >= b.low AND e.stream_ordering <= b.upto WHERE {accepted}",
                params.one(),
            )
        } else {
            format!(
                "SELECT {columns} FROM (VALUES {values}) AS r (room_id, after_pos, upto) CROSS JOIN LATERAL ( \
                     SELECT * FROM events e WHERE e.room_id = r.room_id AND e.stream_ordering > r.after_pos \
                     AND e.stream_ordering <= r.upto AND {accepted} \
                     ORDER BY e.stream_ordering DESC LIMIT {}) AS e",
                params.one(),
            )
        };
        let mut query = sqlx::query(&sql);
        for (room, after, upto) in chunk {
            query = query.bind(room.as_str()).bind(*after).bind(*upto);
        }
        query = query.bind(if sqlite { per_room.saturating_sub(1).max(0) } else { per_room });
        for row in query.fetch_all(&mut *conn).await? {
            events.push(from_row(row)?);
        }
    }
    // Sorted here: in SQL the sort of whole rows spilled to temporary files.
    events.sort_unstable_by(|a, b| {
        a.room_id.cmp(&b.room_id).then_with(|| b.stream_ordering.cmp(&a.stream_ordering))
    });
    Ok(events)
}

/// A room's member counts and heroes (spec: `RoomSummary`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Joined members.
    pub joined: i64,
    /// Invited users.
    pub invited: i64,
    /// Up to the asked number of joined or invited members other than the user, by user ID,
    /// which clients name unnamed rooms after.
    pub heroes: Vec<String>,
}

/// The summaries of `rooms` as `user` sees them, with up to `heroes` heroes each, in two
/// queries (per [`IDS_PER_STATEMENT`] rooms). Rooms without members are absent.
pub async fn summaries(
    conn: &mut Conn,
    rooms: &[&RoomId],
    user: &UserId,
    heroes: i64,
) -> sqlx::Result<HashMap<String, Summary>> {
    let mut summaries: HashMap<String, Summary> = HashMap::new();
    for chunk in rooms.chunks(IDS_PER_STATEMENT) {
        let sql = format!(
            "SELECT room_id, COALESCE(SUM(CASE WHEN membership = 'join' THEN 1 ELSE 0 END), 0) AS joined, \
             COALESCE(SUM(CASE WHEN membership = 'invite' THEN 1 ELSE 0 END), 0) AS invited \
             FROM current_state WHERE room_id IN ({}) AND type = 'm.room.member' GROUP BY room_id",
            Params::new(conn).list(chunk.len())
        );
        let mut query = sqlx::query(&sql);
        for room in chunk {
            query = query.bind(room.as_str());
        }
        for row in query.fetch_all(&mut *conn).await? {
            let summary = summaries.entry(row.try_get("room_id")?).or_default();
            (summary.joined, summary.invited) = (row.try_get("joined")?, row.try_get("invited")?);
        }

        let mut params = Params::new(conn);
        let sql = format!(
            "SELECT room_id, state_key FROM ( \
                 SELECT room_id, state_key, ROW_NUMBER() OVER (PARTITION BY room_id ORDER BY state_key) AS n \
                 FROM current_state WHERE room_id IN ({}) AND type = 'm.room.member' \
                 AND state_key <> {} AND membership IN ('join', 'invite')) h \
             WHERE n <= {} ORDER BY room_id, state_key",
            params.list(chunk.len()),
            params.one(),
            params.one(),
        );
        let mut query = sqlx::query(&sql);
        for room in chunk {
            query = query.bind(room.as_str());
        }
        for row in query.bind(user.as_str()).bind(heroes).fetch_all(&mut *conn).await? {
            summaries.entry(row.try_get("room_id")?).or_default().heroes.push(row.try_get("state_key")?);
        }
    }
    Ok(summaries)
}

//! Queries behind reading a room's history: the accepted events at one state key in stream
//! order (a user's membership changes, the history visibility changes), and the state group at
//! a stream position.

use ruma::RoomId;
use sqlx::{Executor, Row};

use super::events;

/// A state event's place in the stream and its canonical JSON.
#[derive(Clone, Debug)]
pub struct StateChange {
    /// Position in the global stream.
    pub stream_ordering: i64,
    /// Canonical JSON of the event.
    pub json: String,
}

/// Every accepted timeline event at `(type, state_key)` in each of `room_ids` (one query per 500
/// rooms, each served by the index `events_room_state_key`): `(room, change)` pairs, each room's
/// changes oldest first.
pub async fn state_changes(
    pool: &sqlx::AnyPool,
    room_ids: &[&str],
    kind: &str,
    state_key: &str,
) -> sqlx::Result<Vec<(String, StateChange)>> {
    let mut changes = Vec::new();
    for chunk in room_ids.chunks(500) {
        let sql = format!(
            "SELECT room_id, stream_ordering, json FROM events \
             WHERE room_id IN ({}) AND type = $1 AND state_key = $2 AND stream_ordering IS NOT NULL \
             AND outlier = 0 AND rejected = 0 AND soft_failed = 0 ORDER BY stream_ordering",
            super::placeholders(3, chunk.len())
        );
        let mut query = sqlx::query(&sql).bind(kind).bind(state_key);
        for room_id in chunk {
            query = query.bind(*room_id);
        }
        for row in query.fetch_all(pool).await? {
            let change =
                StateChange { stream_ordering: row.try_get("stream_ordering")?, json: row.try_get("json")? };
            changes.push((row.try_get("room_id")?, change));
        }
    }
    Ok(changes)
}

/// The accepted timeline `m.room.member` events of `room_id` whose user is of `server`, in
/// stream order: `(user, change)` pairs.
pub async fn member_changes_of_server(
    pool: &sqlx::AnyPool,
    room_id: &RoomId,
    server: &str,
) -> sqlx::Result<Vec<(String, StateChange)>> {
    let rows = sqlx::query(
        "SELECT state_key, stream_ordering, json FROM events \
         WHERE room_id = $1 AND type = 'm.room.member' AND state_key LIKE $2 AND stream_ordering IS NOT NULL \
         AND outlier = 0 AND rejected = 0 AND soft_failed = 0 ORDER BY stream_ordering",
    )
    .bind(room_id.as_str())
    // Server names hold no `%` or `_` (spec: Server names), so the pattern matches the suffix only.
    .bind(format!("%:{server}"))
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|row| {
            let change =
                StateChange { stream_ordering: row.try_get("stream_ordering")?, json: row.try_get("json")? };
            Ok((row.try_get("state_key")?, change))
        })
        .collect()
}

/// The state group after the last accepted event of a room at or before stream position
/// `position`, if the room had any event by then.
pub async fn state_group_at<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    room_id: &RoomId,
    position: i64,
) -> sqlx::Result<Option<i64>> {
    let row = sqlx::query(
        "SELECT state_group FROM events WHERE room_id = $1 AND stream_ordering <= $2 \
         AND state_group IS NOT NULL AND outlier = 0 AND rejected = 0 AND soft_failed = 0 \
         ORDER BY stream_ordering DESC LIMIT 1",
    )
    .bind(room_id.as_str())
    .bind(position)
    .fetch_optional(executor)
    .await?;
    row.map(|r| r.try_get("state_group")).transpose()
}

/// The earliest accepted timeline event of a room above stream position `position` that has a
/// state group (backfilled history has none): `(position, group)`.
pub async fn grouped_above<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    room_id: &RoomId,
    position: i64,
) -> sqlx::Result<Option<(i64, i64)>> {
    let row = sqlx::query(
        "SELECT stream_ordering, state_group FROM events WHERE room_id = $1 AND stream_ordering > $2 \
         AND state_group > 0 AND outlier = 0 AND rejected = 0 AND soft_failed = 0 \
         ORDER BY stream_ordering LIMIT 1",
    )
    .bind(room_id.as_str())
    .bind(position)
    .fetch_optional(executor)
    .await?;
    row.map(|r| Ok((r.try_get("stream_ordering")?, r.try_get("state_group")?))).transpose()
}

/// The accepted timeline state events of a room at stream positions in `(after, upto]`, oldest
/// first.
pub async fn state_events_between<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    room_id: &RoomId,
    after: i64,
    upto: i64,
) -> sqlx::Result<Vec<events::StoredEvent>> {
    let sql = format!(
        "SELECT {} FROM events WHERE room_id = $1 AND stream_ordering > $2 AND stream_ordering <= $3 \
         AND state_key IS NOT NULL AND outlier = 0 AND rejected = 0 AND soft_failed = 0 \
         ORDER BY stream_ordering",
        events::COLUMNS
    );
    let rows = sqlx::query(&sql).bind(room_id.as_str()).bind(after).bind(upto).fetch_all(executor).await?;
    rows.into_iter().map(events::from_row).collect()
}

//! Queries behind reading a room's history: the accepted events at one state key in stream
//! order (a user's membership changes, the history visibility changes), and the state group at
//! a stream position.

use std::collections::HashMap;

use ruma::RoomId;
use sqlx::{Executor, Row};

use super::{Conn, IDS_PER_STATEMENT, Params};

/// A state event's place in the stream and its canonical JSON.
#[derive(Clone, Debug)]
pub struct StateChange {
    /// Position in the global stream.
    pub stream_ordering: i64,
    /// Canonical JSON of the event.
    pub json: String,
}

/// Every accepted timeline event at `(type, state_key)` of each of `rooms`, in one query (per
/// [`IDS_PER_STATEMENT`] rooms; served by the partial index `events_room_state_key`): room ID →
/// its changes, oldest first; rooms without any are absent.
pub async fn state_changes_in_rooms(
    conn: &mut Conn,
    rooms: &[&RoomId],
    kind: &str,
    state_key: &str,
) -> sqlx::Result<HashMap<String, Vec<StateChange>>> {
    let mut changes: HashMap<String, Vec<StateChange>> = HashMap::new();
    for chunk in rooms.chunks(IDS_PER_STATEMENT) {
        let mut params = Params::new(conn);
        let sql = format!(
            "SELECT room_id, stream_ordering, json FROM events \
             WHERE room_id IN ({}) AND type = {} AND state_key = {} AND stream_ordering IS NOT NULL \
             AND outlier = 0 AND rejected = 0 AND soft_failed = 0 ORDER BY room_id, stream_ordering",
            params.list(chunk.len()),
            params.one(),
            params.one(),
        );
        let mut query = sqlx::query(&sql);
        for room in chunk {
            query = query.bind(room.as_str());
        }
        for row in query.bind(kind).bind(state_key).fetch_all(&mut *conn).await? {
            changes.entry(row.try_get("room_id")?).or_default().push(StateChange {
                stream_ordering: row.try_get("stream_ordering")?,
                json: row.try_get("json")?,
            });
        }
    }
    Ok(changes)
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

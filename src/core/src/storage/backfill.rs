//! The `backfill_rooms` table and the queries behind backfilling (spec: Server-Server API ›
//! Backfilling and retrieving missing events): rooms joined through another server, the
//! earliest events of a room's timeline, and events taken into the timeline from below.

use ruma::RoomId;
use sqlx::{Executor, Row};

use super::{Conn, events};

/// What is kept about a room joined through another server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackfillRoom {
    /// The server it was joined through.
    pub joined_via: String,
    /// The earliest timeline event when the servers asked had nothing older.
    pub exhausted_at: Option<String>,
}

/// Records a room just joined through `joined_via`, with the history visibility event of the
/// state it was joined with. A room already recorded keeps its row.
pub async fn insert<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    room_id: &RoomId,
    joined_via: &str,
    visibility_event: Option<&str>,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO backfill_rooms (room_id, joined_via, visibility_event) VALUES ($1, $2, $3) \
         ON CONFLICT (room_id) DO NOTHING",
    )
    .bind(room_id.as_str())
    .bind(joined_via)
    .bind(visibility_event)
    .execute(executor)
    .await?;
    Ok(())
}

/// The row of a room joined through another server.
pub async fn get<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    room_id: &RoomId,
) -> sqlx::Result<Option<BackfillRoom>> {
    let row = sqlx::query("SELECT joined_via, exhausted_at FROM backfill_rooms WHERE room_id = $1")
        .bind(room_id.as_str())
        .fetch_optional(executor)
        .await?;
    row.map(|r| {
        Ok(BackfillRoom { joined_via: r.try_get("joined_via")?, exhausted_at: r.try_get("exhausted_at")? })
    })
    .transpose()
}

/// Notes that backfilling from `earliest`, the room's earliest timeline event, brought nothing.
pub async fn set_exhausted<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    room_id: &RoomId,
    earliest: &str,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE backfill_rooms SET exhausted_at = $1 WHERE room_id = $2")
        .bind(earliest)
        .bind(room_id.as_str())
        .execute(executor)
        .await?;
    Ok(())
}

/// Of `room_ids`, those whose join-time history visibility event is not in the timeline yet:
/// `(room, its canonical JSON)`.
pub async fn pending_visibility(
    pool: &sqlx::AnyPool,
    room_ids: &[&str],
) -> sqlx::Result<Vec<(String, String)>> {
    let mut found = Vec::new();
    for chunk in room_ids.chunks(super::IDS_PER_STATEMENT) {
        let sql = format!(
            "SELECT b.room_id, e.json FROM backfill_rooms b JOIN events e ON e.event_id = b.visibility_event \
             WHERE b.room_id IN ({}) AND e.stream_ordering IS NULL",
            super::placeholders(1, chunk.len())
        );
        let mut query = sqlx::query(&sql);
        for room_id in chunk {
            query = query.bind(*room_id);
        }
        for row in query.fetch_all(pool).await? {
            found.push((row.try_get("room_id")?, row.try_get("json")?));
        }
    }
    Ok(found)
}

/// The `limit` earliest events of a room's timeline, oldest first.
pub async fn earliest<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    room_id: &RoomId,
    limit: i64,
) -> sqlx::Result<Vec<events::StoredEvent>> {
    let sql = format!(
        "SELECT {} FROM events WHERE room_id = $1 AND stream_ordering IS NOT NULL \
         ORDER BY stream_ordering LIMIT $2",
        events::COLUMNS
    );
    let rows = sqlx::query(&sql).bind(room_id.as_str()).bind(limit).fetch_all(executor).await?;
    rows.into_iter().map(events::from_row).collect()
}

/// Of `event_ids`, those stored as more than an outlier: in a timeline, rejected or
/// soft-failed (nothing backfill would add to).
pub async fn settled_among(conn: &mut Conn, event_ids: &[&str]) -> sqlx::Result<Vec<String>> {
    let mut settled = Vec::new();
    for chunk in event_ids.chunks(super::IDS_PER_STATEMENT) {
        let sql = format!(
            "SELECT event_id FROM events WHERE outlier = 0 AND event_id IN ({})",
            super::placeholders(1, chunk.len())
        );
        let mut query = sqlx::query(&sql);
        for id in chunk {
            query = query.bind(*id);
        }
        for row in query.fetch_all(&mut *conn).await? {
            settled.push(row.try_get("event_id")?);
        }
    }
    Ok(settled)
}

/// Takes an outlier into the timeline at the backfill position `stream_ordering`. The state
/// after it stays known only if it was (a state group above 0).
pub async fn promote(conn: &mut Conn, event_nid: i64, stream_ordering: i64) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE events SET outlier = 0, stream_ordering = $1, \
         state_group = CASE WHEN state_group > 0 THEN state_group ELSE NULL END WHERE event_nid = $2",
    )
    .bind(stream_ordering)
    .bind(event_nid)
    .execute(conn)
    .await?;
    Ok(())
}

/// The lowest backfill position handed out so far: the lowest stored position, or 0 when none
/// is below 1 (backfilled events descend from -1).
pub async fn lowest_position<'c>(executor: impl Executor<'c, Database = sqlx::Any>) -> sqlx::Result<i64> {
    sqlx::query("SELECT COALESCE(MIN(stream_ordering), 0) AS lowest FROM events")
        .fetch_one(executor)
        .await?
        .try_get::<i64, _>("lowest")
        .map(|lowest| lowest.min(0))
}

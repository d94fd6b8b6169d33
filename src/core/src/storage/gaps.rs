//! The `timeline_gaps` table (0027): gaps inside a room's timeline, where another server's
//! history from while no local user was in the room is missing (spec: Server-Server API ›
//! Backfilling and retrieving missing events). A join through another server to a room this
//! server knows takes its stream position above a block of positions reserved for that history;
//! backfill fills the block downwards (`rooms::gap`).

use ruma::RoomId;
use sqlx::{Executor, Row, any::AnyRow};

/// A gap below one event of a room's timeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gap {
    /// The event above the gap (a join through another server).
    pub event_id: String,
    /// Its stream position.
    pub position: i64,
    /// The lowest position reserved below it.
    pub lowest: i64,
    /// The next position backfill takes; the block is full below `lowest`.
    pub next_free: i64,
}

impl Gap {
    /// How many more events the block holds.
    pub fn room_left(&self) -> usize {
        usize::try_from(self.next_free - self.lowest + 1).unwrap_or(0)
    }
}

/// Records the gap below `event_id` at `position`, whose block of free positions is
/// `lowest..=highest` (below `position`; other rooms' events may sit between).
pub async fn insert<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    room_id: &RoomId,
    event_id: &str,
    position: i64,
    (lowest, highest): (i64, i64),
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO timeline_gaps (room_id, event_id, position, lowest, next_free, open) \
         VALUES ($1, $2, $3, $4, $5, 1)",
    )
    .bind(room_id.as_str())
    .bind(event_id)
    .bind(position)
    .bind(lowest)
    .bind(highest)
    .execute(executor)
    .await?;
    Ok(())
}

const COLUMNS: &str = "event_id, position, lowest, next_free";

fn from_row(row: AnyRow) -> sqlx::Result<Gap> {
    Ok(Gap {
        event_id: row.try_get("event_id")?,
        position: row.try_get("position")?,
        lowest: row.try_get("lowest")?,
        next_free: row.try_get("next_free")?,
    })
}

/// The highest open gap of `room_id` whose unfilled part starts in `(above, at]`: what a page
/// of `/messages` that read those positions backwards went past.
pub async fn open_crossed<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    room_id: &RoomId,
    above: i64,
    at: i64,
) -> sqlx::Result<Option<Gap>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM timeline_gaps WHERE room_id = $1 AND open = 1 \
         AND next_free > $2 AND next_free <= $3 ORDER BY next_free DESC LIMIT 1"
    );
    let row = sqlx::query(&sql).bind(room_id.as_str()).bind(above).bind(at).fetch_optional(executor).await?;
    row.map(from_row).transpose()
}

/// The gap below the event at `position` of `room_id`, if it is still open.
pub async fn open_at<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    room_id: &RoomId,
    position: i64,
) -> sqlx::Result<Option<Gap>> {
    let sql =
        format!("SELECT {COLUMNS} FROM timeline_gaps WHERE room_id = $1 AND position = $2 AND open = 1");
    let row = sqlx::query(&sql).bind(room_id.as_str()).bind(position).fetch_optional(executor).await?;
    row.map(from_row).transpose()
}

/// Moves the gap's next free position down to `next_free` (its block took the ones above).
pub async fn set_next_free<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    room_id: &RoomId,
    position: i64,
    next_free: i64,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE timeline_gaps SET next_free = $1 WHERE room_id = $2 AND position = $3")
        .bind(next_free)
        .bind(room_id.as_str())
        .bind(position)
        .execute(executor)
        .await?;
    Ok(())
}

/// Closes the gap below the event at `position`: nothing more is fetched into it.
pub async fn close<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    room_id: &RoomId,
    position: i64,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE timeline_gaps SET open = 0 WHERE room_id = $1 AND position = $2")
        .bind(room_id.as_str())
        .bind(position)
        .execute(executor)
        .await?;
    Ok(())
}

/// The events of `room_id` that had a gap below them, open or closed: the joins through
/// another server to the room.
pub async fn events_above_gaps<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    room_id: &RoomId,
) -> sqlx::Result<Vec<String>> {
    let rows = sqlx::query("SELECT event_id FROM timeline_gaps WHERE room_id = $1")
        .bind(room_id.as_str())
        .fetch_all(executor)
        .await?;
    rows.iter().map(|row| row.try_get("event_id")).collect()
}

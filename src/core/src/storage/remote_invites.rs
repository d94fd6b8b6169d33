//! The `remote_invites` table: the stripped state that came with invites of local users to rooms
//! this server is not in.

use ruma::RoomId;
use sqlx::{Executor, Row};

/// Keeps the stripped state (a JSON array) of the invite `event_id`.
pub async fn insert<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    event_id: &str,
    room_id: &RoomId,
    stripped_state: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO remote_invites (event_id, room_id, stripped_state) VALUES ($1, $2, $3) \
         ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(event_id)
    .bind(room_id.as_str())
    .bind(stripped_state)
    .execute(executor)
    .await?;
    Ok(())
}

/// The stripped state kept for the invite `event_id`, if it came over federation.
pub async fn stripped_state<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    event_id: &str,
) -> sqlx::Result<Option<String>> {
    let row = sqlx::query("SELECT stripped_state FROM remote_invites WHERE event_id = $1")
        .bind(event_id)
        .fetch_optional(executor)
        .await?;
    row.map(|r| r.try_get("stripped_state")).transpose()
}

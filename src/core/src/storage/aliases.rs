//! The `room_aliases` table: local aliases and the rooms they point at.

use ruma::{OwnedRoomAliasId, OwnedRoomId, RoomAliasId, RoomId, UserId};
use sqlx::{Executor, Row};

/// Creates an alias; `false` if it already exists.
pub async fn insert<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    alias: &RoomAliasId,
    room_id: &RoomId,
    creator: &UserId,
    now_ms: i64,
) -> sqlx::Result<bool> {
    let result = sqlx::query(
        "INSERT INTO room_aliases (alias, room_id, creator, created_ts) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (alias) DO NOTHING",
    )
    .bind(alias.as_str())
    .bind(room_id.as_str())
    .bind(creator.as_str())
    .bind(now_ms)
    .execute(executor)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// The room an alias points at, and who created the alias.
pub async fn get<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    alias: &RoomAliasId,
) -> sqlx::Result<Option<(OwnedRoomId, String)>> {
    let row = sqlx::query("SELECT room_id, creator FROM room_aliases WHERE alias = $1")
        .bind(alias.as_str())
        .fetch_optional(executor)
        .await?;
    row.map(|r| {
        let room: String = r.try_get("room_id")?;
        let room = OwnedRoomId::try_from(room).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
        Ok((room, r.try_get("creator")?))
    })
    .transpose()
}

/// Removes an alias; `false` if it did not exist.
pub async fn delete<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    alias: &RoomAliasId,
) -> sqlx::Result<bool> {
    let result = sqlx::query("DELETE FROM room_aliases WHERE alias = $1")
        .bind(alias.as_str())
        .execute(executor)
        .await?;
    Ok(result.rows_affected() == 1)
}

/// Every local alias of a room, sorted.
pub async fn for_room<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    room_id: &RoomId,
) -> sqlx::Result<Vec<OwnedRoomAliasId>> {
    let rows = sqlx::query("SELECT alias FROM room_aliases WHERE room_id = $1 ORDER BY alias")
        .bind(room_id.as_str())
        .fetch_all(executor)
        .await?;
    rows.into_iter()
        .map(|r| {
            let alias: String = r.try_get("alias")?;
            OwnedRoomAliasId::try_from(alias).map_err(|e| sqlx::Error::Decode(Box::new(e)))
        })
        .collect()
}

/// Points every alias of `old` at `new` (room upgrades move local aliases).
pub async fn repoint<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    old: &RoomId,
    new: &RoomId,
) -> sqlx::Result<u64> {
    let result = sqlx::query("UPDATE room_aliases SET room_id = $1 WHERE room_id = $2")
        .bind(new.as_str())
        .bind(old.as_str())
        .execute(executor)
        .await?;
    Ok(result.rows_affected())
}

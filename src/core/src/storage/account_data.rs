//! The `account_data` table: a user's global (`room_id` = '') and per-room account data, stored
//! as the JSON object content of each type, with its position in the account data stream.

use ruma::UserId;
use sqlx::{Executor, Row};

use super::Conn;

/// The `room_id` column of global account data.
pub const GLOBAL: &str = "";

/// The content of one type of account data (`room_id` [`GLOBAL`] for global account data).
pub async fn get<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    user_id: &UserId,
    room_id: &str,
    kind: &str,
) -> sqlx::Result<Option<String>> {
    let row =
        sqlx::query("SELECT content FROM account_data WHERE user_id = $1 AND room_id = $2 AND type = $3")
            .bind(user_id.as_str())
            .bind(room_id)
            .bind(kind)
            .fetch_optional(executor)
            .await?;
    row.map(|r| r.try_get("content")).transpose()
}

/// Creates or replaces one type of account data at stream position `stream_id` (from
/// [`streams::next_position`](super::streams::next_position) in the same transaction).
pub async fn put(
    conn: &mut Conn,
    user_id: &UserId,
    room_id: &str,
    kind: &str,
    content: &str,
    stream_id: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO account_data (user_id, room_id, type, content, stream_id) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (user_id, room_id, type) DO UPDATE SET content = $4, stream_id = $5",
    )
    .bind(user_id.as_str())
    .bind(room_id)
    .bind(kind)
    .bind(content)
    .bind(stream_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// The global account data of type `kind` of each of `user_ids` that has it: `(user_id,
/// content)` pairs (push rule sets of a room's members, loaded together).
pub async fn get_global_many(
    conn: &mut Conn,
    user_ids: &[&str],
    kind: &str,
) -> sqlx::Result<Vec<(String, String)>> {
    let mut found = Vec::new();
    for chunk in user_ids.chunks(500) {
        let sql = format!(
            "SELECT user_id, content FROM account_data WHERE room_id = $1 AND type = $2 AND user_id IN ({})",
            super::placeholders(3, chunk.len())
        );
        let mut query = sqlx::query(&sql).bind(GLOBAL).bind(kind);
        for user_id in chunk {
            query = query.bind(*user_id);
        }
        for row in query.fetch_all(&mut *conn).await? {
            found.push((row.try_get("user_id")?, row.try_get("content")?));
        }
    }
    Ok(found)
}

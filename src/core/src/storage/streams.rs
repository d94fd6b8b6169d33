//! Positions in the streams that are not room events (account data, presence, receipts,
//! to-device messages, device list changes): each row written to such a stream carries the
//! position of its latest change in a `stream_id` column, which `/sync` compares with the
//! position in a sync token.
//!
//! A reader may only advance to a position below which every write has committed (DESIGN §3).
//! Positions come from the stream's row in `stream_positions`, bumped inside the write
//! transaction: the row lock serialises the stream's writers until they commit, so positions
//! become visible in the order they were handed out (on SQLite the single writer does the same).

use sqlx::Row;

use super::Conn;

/// A stream with its own positions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// The `account_data` table (global and room account data, tags, fully read markers).
    AccountData,
    /// The `presence` table.
    Presence,
    /// Read receipts.
    Receipts,
    /// Messages sent to devices.
    ToDevice,
    /// Changes to users' device lists and keys.
    DeviceLists,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Stream::AccountData => "account_data",
            Stream::Presence => "presence",
            Stream::Receipts => "receipts",
            Stream::ToDevice => "to_device",
            Stream::DeviceLists => "device_lists",
        }
    }
}

/// The next position of `stream`; call inside a write transaction from
/// [`Db::begin`](super::Db::begin), before reading rows the write depends on (this also
/// serialises read-modify-write cycles of the stream, such as editing room tags).
pub async fn next_position(conn: &mut Conn, stream: Stream) -> sqlx::Result<i64> {
    sqlx::query("UPDATE stream_positions SET position = position + 1 WHERE stream = $1 RETURNING position")
        .bind(stream.name())
        .fetch_one(conn)
        .await?
        .try_get("position")
}

/// The highest committed position of every stream, in one query.
pub async fn current_all(conn: &mut Conn) -> sqlx::Result<Positions> {
    let rows = sqlx::query("SELECT stream, position FROM stream_positions").fetch_all(conn).await?;
    let mut positions = Positions::default();
    for row in rows {
        let (stream, position): (String, i64) = (row.try_get("stream")?, row.try_get("position")?);
        let slot = match stream.as_str() {
            "account_data" => &mut positions.account_data,
            "presence" => &mut positions.presence,
            "receipts" => &mut positions.receipts,
            "to_device" => &mut positions.to_device,
            "device_lists" => &mut positions.device_lists,
            _ => continue,
        };
        *slot = position;
    }
    Ok(positions)
}

/// The committed positions of the streams in `stream_positions`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Positions {
    /// [`Stream::AccountData`].
    pub account_data: i64,
    /// [`Stream::Presence`].
    pub presence: i64,
    /// [`Stream::Receipts`].
    pub receipts: i64,
    /// [`Stream::ToDevice`].
    pub to_device: i64,
    /// [`Stream::DeviceLists`].
    pub device_lists: i64,
}

/// The highest position of `stream` whose write has committed.
pub async fn current(conn: &mut Conn, stream: Stream) -> sqlx::Result<i64> {
    sqlx::query("SELECT position FROM stream_positions WHERE stream = $1")
        .bind(stream.name())
        .fetch_one(conn)
        .await?
        .try_get("position")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn positions_grow_with_every_write_including_rewrites() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = crate::storage::test_db(&dir).await;

        let mut positions = Vec::new();
        for content in ["{}", "{\"a\":1}", "{}"] {
            let mut tx = db.begin().await.expect("begin");
            let position = next_position(&mut tx, Stream::AccountData).await.expect("position");
            sqlx::query(
                "INSERT INTO account_data (user_id, room_id, type, content, stream_id) \
                 VALUES ('@a:x', '', 't', $1, $2) \
                 ON CONFLICT (user_id, room_id, type) DO UPDATE SET content = $1, stream_id = $2",
            )
            .bind(content)
            .bind(position)
            .execute(&mut *tx)
            .await
            .expect("write");
            tx.commit().await.expect("commit");
            positions.push(position);
        }
        assert_eq!(positions, [1, 2, 3], "a rewritten row still takes a new, higher position");
        let mut tx = db.begin().await.expect("begin");
        assert_eq!(next_position(&mut tx, Stream::Presence).await.expect("presence"), 1);
    }
}

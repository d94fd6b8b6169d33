//! Positions in the streams that are not room events (account data, presence, receipts,
//! to-device messages, device list changes): each row written to such a stream carries the
//! position of its latest change in a `stream_id` column, which `/sync` compares with the
//! position in a sync token.
//!
//! A reader may only advance to a position below which every write has committed (DESIGN §3).
//! Positions come from the stream's row in `stream_positions`, bumped inside the write
//! transaction: the row lock serialises the stream's writers until they commit, so positions
//! become visible in the order they were handed out (on SQLite the single writer does the same).
//! Each write transaction publishes the positions it took to [`Committed`] after its commit, so
//! readers learn every stream's position without a query.

use std::sync::atomic::{AtomicI64, Ordering};

use sqlx::Row;

use super::{Conn, WriteTx};

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
    const ALL: [Stream; 5] =
        [Stream::AccountData, Stream::Presence, Stream::Receipts, Stream::ToDevice, Stream::DeviceLists];

    fn index(self) -> usize {
        self as usize
    }

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

/// The next position of `stream`, published when `tx` commits; take it before reading rows the
/// write depends on (this also serialises read-modify-write cycles of the stream, such as
/// editing room tags).
pub async fn next_position(tx: &mut WriteTx, stream: Stream) -> sqlx::Result<i64> {
    let position = sqlx::query(
        "UPDATE stream_positions SET position = position + 1 WHERE stream = $1 RETURNING position",
    )
    .bind(stream.name())
    .fetch_one(&mut **tx)
    .await?
    .try_get("position")?;
    tx.took(stream, position);
    Ok(position)
}

/// Every stream's highest committed position, in memory (loaded at start-up, then published by
/// each write transaction after its commit). Like the event stream's positions, this assumes one
/// writing process per database.
#[derive(Default)]
pub struct Committed([AtomicI64; 5]);

impl Committed {
    /// Starts from the stored positions.
    pub(super) fn load(&self, positions: Positions) {
        for stream in Stream::ALL {
            self.publish(stream, positions.get(stream));
        }
    }

    /// `stream` committed up to `position`.
    pub(super) fn publish(&self, stream: Stream, position: i64) {
        self.0[stream.index()].fetch_max(position, Ordering::SeqCst);
    }

    /// The highest committed position of `stream`.
    pub fn current(&self, stream: Stream) -> i64 {
        self.0[stream.index()].load(Ordering::SeqCst)
    }

    /// The highest committed position of every stream.
    pub fn all(&self) -> Positions {
        Positions {
            account_data: self.current(Stream::AccountData),
            presence: self.current(Stream::Presence),
            receipts: self.current(Stream::Receipts),
            to_device: self.current(Stream::ToDevice),
            device_lists: self.current(Stream::DeviceLists),
        }
    }
}

/// The highest committed position of every stream as stored, in one query.
pub(super) async fn current_all(conn: &mut Conn) -> sqlx::Result<Positions> {
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

impl Positions {
    fn get(&self, stream: Stream) -> i64 {
        match stream {
            Stream::AccountData => self.account_data,
            Stream::Presence => self.presence,
            Stream::Receipts => self.receipts,
            Stream::ToDevice => self.to_device,
            Stream::DeviceLists => self.device_lists,
        }
    }
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

    #[tokio::test]
    async fn readers_see_a_position_once_its_write_committed_and_never_a_rolled_back_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = crate::storage::test_db(&dir).await;

        let mut tx = db.begin().await.expect("begin");
        assert_eq!(next_position(&mut tx, Stream::Receipts).await.expect("position"), 1);
        assert_eq!(db.streams().current(Stream::Receipts), 0, "not before the commit");
        tx.commit().await.expect("commit");
        assert_eq!(db.streams().current(Stream::Receipts), 1);

        let mut tx = db.begin().await.expect("begin");
        assert_eq!(next_position(&mut tx, Stream::Receipts).await.expect("position"), 2);
        drop(tx);
        assert_eq!(db.streams().current(Stream::Receipts), 1, "a rollback publishes nothing");
        assert_eq!(db.streams().all().receipts, 1);
    }
}

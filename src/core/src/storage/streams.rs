//! Positions in the streams that are not room events (account data, presence): each table keeps
//! the position of its rows' latest change in a `stream_id` column, which `/sync` compares with
//! the position in a sync token.
//!
//! A reader may only advance to a position below which every write has committed (DESIGN §3).
//! SQLite has one writer at a time ([`Db::begin`](super::Db::begin) queues them), so `MAX + 1`
//! inside the write transaction is enough. On PostgreSQL, transactions drawing from the same
//! sequence could commit out of order, so a writer first takes a transaction-scoped advisory
//! lock for the stream: positions then commit in the order they were handed out. The lock is
//! held only for the short transaction that writes the row.

use sqlx::Row;

use super::{Backend, Conn};

/// A stream with its own positions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// The `account_data` table (global and room account data, tags, fully read markers).
    AccountData,
    /// The `presence` table.
    Presence,
}

impl Stream {
    fn table(self) -> &'static str {
        match self {
            Stream::AccountData => "account_data",
            Stream::Presence => "presence",
        }
    }

    fn sequence(self) -> &'static str {
        match self {
            Stream::AccountData => "account_data_stream_seq",
            Stream::Presence => "presence_stream_seq",
        }
    }

    /// The PostgreSQL advisory lock key that serialises this stream's writers.
    fn lock_key(self) -> i64 {
        match self {
            Stream::AccountData => 0x4845_4152_5448_0001,
            Stream::Presence => 0x4845_4152_5448_0002,
        }
    }
}

/// The next position of `stream`; call inside a write transaction from
/// [`Db::begin`](super::Db::begin), before reading rows the write depends on (on PostgreSQL this
/// also serialises read-modify-write cycles of the stream, such as editing room tags).
pub async fn next_position(conn: &mut Conn, backend: Backend, stream: Stream) -> sqlx::Result<i64> {
    match backend {
        Backend::Sqlite => {
            let sql = format!("SELECT COALESCE(MAX(stream_id), 0) + 1 AS next FROM {}", stream.table());
            sqlx::query(&sql).fetch_one(conn).await?.try_get("next")
        }
        Backend::Postgres => {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(stream.lock_key())
                .execute(&mut *conn)
                .await?;
            let sql = format!("SELECT nextval('{}') AS next", stream.sequence());
            sqlx::query(&sql).fetch_one(conn).await?.try_get("next")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{config::DatabaseConfig, storage::Db};

    #[tokio::test]
    async fn positions_grow_with_every_write_including_rewrites() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}/h.db", dir.path().display());
        let db = Db::connect(&DatabaseConfig { url, max_connections: 2 }).await.expect("connect");
        db.migrate().await.expect("migrate");

        let mut positions = Vec::new();
        for content in ["{}", "{\"a\":1}", "{}"] {
            let mut tx = db.begin().await.expect("begin");
            let position = next_position(&mut tx, db.backend(), Stream::AccountData).await.expect("position");
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
        assert_eq!(next_position(&mut tx, db.backend(), Stream::Presence).await.expect("presence"), 1);
    }
}

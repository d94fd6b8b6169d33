//! The `receipts` table: each user's latest read receipt per room, receipt type and thread,
//! with its position in the receipts stream.

use std::collections::HashMap;

use ruma::{RoomId, UserId};
use sqlx::Row;

use super::{Conn, IDS_PER_STATEMENT, Params};

/// The `thread_id` column of an unthreaded receipt.
pub const UNTHREADED: &str = "";

/// One receipt to store.
#[derive(Clone, Copy, Debug)]
pub struct NewReceipt<'a> {
    /// The room.
    pub room_id: &'a RoomId,
    /// Whose receipt it is.
    pub user_id: &'a UserId,
    /// `m.read` or `m.read.private`.
    pub receipt_type: &'a str,
    /// [`UNTHREADED`], `main` or a thread root's event ID.
    pub thread_id: &'a str,
    /// The event read up to.
    pub event_id: &'a str,
    /// That event's position in the room event stream.
    pub event_stream_ordering: i64,
    /// When the receipt was sent (ms since the epoch).
    pub ts: i64,
    /// Its position in the receipts stream.
    pub stream_id: i64,
}

/// A stored receipt, as `/sync` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceiptRow {
    /// The room.
    pub room_id: String,
    /// Whose receipt it is.
    pub user_id: String,
    /// `m.read` or `m.read.private`.
    pub receipt_type: String,
    /// [`UNTHREADED`], `main` or a thread root's event ID.
    pub thread_id: String,
    /// The event read up to.
    pub event_id: String,
    /// When the receipt was sent.
    pub ts: i64,
}

/// Creates the user's receipt of this type and thread, or moves it to a later event; whether it
/// was written (a receipt at the same event or a later one stays where it is).
pub async fn put_if_later(conn: &mut Conn, receipt: &NewReceipt<'_>) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "INSERT INTO receipts (room_id, user_id, receipt_type, thread_id, event_id, event_stream_ordering, ts, \
         stream_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (room_id, user_id, receipt_type, thread_id) \
         DO UPDATE SET event_id = $5, event_stream_ordering = $6, ts = $7, stream_id = $8 \
         WHERE receipts.event_stream_ordering < $6",
    )
    .bind(receipt.room_id.as_str())
    .bind(receipt.user_id.as_str())
    .bind(receipt.receipt_type)
    .bind(receipt.thread_id)
    .bind(receipt.event_id)
    .bind(receipt.event_stream_ordering)
    .bind(receipt.ts)
    .bind(receipt.stream_id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Receipts in `room_ids` whose position is in `(from, to]`, oldest first: every `m.read`, the
/// `io.hearth.delivered` ones of events `owner` sent (delivery matters to the sender only: shown
/// to every member, or even to the recipient, each message made every member's next sync carry
/// deliveries), and `owner`'s own other receipts (`m.read.private`).
pub async fn changed(
    conn: &mut Conn,
    room_ids: &[&str],
    owner: &UserId,
    from: i64,
    to: i64,
) -> sqlx::Result<Vec<ReceiptRow>> {
    let mut found = Vec::new();
    for chunk in room_ids.chunks(500) {
        let list: Vec<String> = (6..chunk.len() + 6).map(|n| format!("${n}")).collect();
        let sql = format!(
            "SELECT room_id, user_id, receipt_type, thread_id, event_id, ts FROM receipts \
             WHERE stream_id > $1 AND stream_id <= $2 AND (receipt_type = $3 \
             OR (user_id = $5 AND receipt_type <> $4) \
             OR (receipt_type = $4 AND EXISTS (SELECT 1 FROM events \
                 WHERE events.event_id = receipts.event_id AND events.sender = $5))) \
             AND room_id IN ({}) ORDER BY stream_id",
            list.join(", ")
        );
        let public = ("m.read", crate::receipts::DELIVERED);
        let mut query =
            sqlx::query(&sql).bind(from).bind(to).bind(public.0).bind(public.1).bind(owner.as_str());
        for room_id in chunk {
            query = query.bind(*room_id);
        }
        for row in query.fetch_all(&mut *conn).await? {
            found.push(ReceiptRow {
                room_id: row.try_get("room_id")?,
                user_id: row.try_get("user_id")?,
                receipt_type: row.try_get("receipt_type")?,
                thread_id: row.try_get("thread_id")?,
                event_id: row.try_get("event_id")?,
                ts: row.try_get("ts")?,
            });
        }
    }
    Ok(found)
}

/// Per room of `rooms` (all the user's rooms when `None`) with any, per thread ID
/// ([`UNTHREADED`], `main`, thread roots): the furthest event stream position `user_id`'s
/// `m.read` and `m.read.private` receipts point at, in one query (per [`IDS_PER_STATEMENT`]
/// rooms).
pub async fn read_positions(
    conn: &mut Conn,
    user_id: &UserId,
    rooms: Option<&[&RoomId]>,
) -> sqlx::Result<HashMap<String, Vec<(String, i64)>>> {
    let mut positions: HashMap<String, Vec<(String, i64)>> = HashMap::new();
    let chunks: Vec<Option<&[&RoomId]>> = match rooms {
        Some(rooms) => rooms.chunks(IDS_PER_STATEMENT).map(Some).collect(),
        None => vec![None],
    };
    for chunk in chunks {
        let mut params = Params::new(conn);
        let in_rooms = chunk.map(|rooms| format!("room_id IN ({}) AND ", params.list(rooms.len())));
        let sql = format!(
            "SELECT room_id, thread_id, MAX(event_stream_ordering) AS upto FROM receipts \
             WHERE {}user_id = {} AND receipt_type IN ('m.read', 'm.read.private') \
             GROUP BY room_id, thread_id",
            in_rooms.unwrap_or_default(),
            params.one()
        );
        let mut query = sqlx::query(&sql);
        for room in chunk.into_iter().flatten() {
            query = query.bind(room.as_str());
        }
        for r in query.bind(user_id.as_str()).fetch_all(&mut *conn).await? {
            positions
                .entry(r.try_get("room_id")?)
                .or_default()
                .push((r.try_get("thread_id")?, r.try_get("upto")?));
        }
    }
    Ok(positions)
}

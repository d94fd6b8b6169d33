//! Read receipts (spec: Client-Server API › Receipts, › Read and unread markers): how far each
//! user has read a room, per receipt type (`m.read`, visible to the room, and `m.read.private`,
//! visible only to its sender) and per thread (unthreaded, `main`, or a thread root). Each new
//! receipt replaces the user's previous one of the same type and thread and takes a new position
//! in the receipts stream, which `/sync` delivers from ([`changed_since`]); unread counts start
//! after [`read_upto`].

use std::{collections::HashMap, sync::Arc};

use ruma::{
    EventId, MilliSecondsSinceUnixEpoch, OwnedEventId, OwnedRoomId, OwnedUserId, RoomId, ServerName, UInt,
    UserId,
    api::client::receipt::create_receipt::v3::ReceiptType as RequestedType,
    events::receipt::{Receipt, ReceiptEventContent, ReceiptThread, ReceiptType},
};
use serde_json::Value;

use crate::{
    Error, Homeserver, Result, account_data,
    delivery::Delivery,
    rooms::{Pdu, history, membership::membership_of},
    storage::{
        Conn, WriteTx, events, outbox,
        receipts::{self, NewReceipt, UNTHREADED},
        streams::{self, Stream},
    },
    time::now_ms,
};

/// The thread ID of a receipt threaded on the main timeline.
const MAIN: &str = "main";

/// Hearth's receipt type for delivery: a device of the user received the room up to the event
/// (docs/WEBSOCKET.md). Public like `m.read`, it reaches Matrix clients in `m.receipt`, which
/// ignore types they do not know; it never counts as read.
pub const DELIVERED: &str = "io.hearth.delivered";

/// `POST /rooms/{roomId}/receipt/{receiptType}/{eventId}`: `m.read` and `m.read.private` are
/// stored as receipts, `m.fully_read` moves the fully read marker as `/read_markers` does (and
/// takes no `thread_id`). The user must be joined (403) and able to see the event (404); other
/// receipt types and malformed thread IDs are 400 `M_INVALID_PARAM`.
pub async fn create(
    hs: &Homeserver,
    user: &UserId,
    room_id: &RoomId,
    receipt_type: &RequestedType,
    event_id: &EventId,
    thread: &ReceiptThread,
) -> Result<()> {
    let stored_type = match receipt_type {
        RequestedType::Read => ReceiptType::Read,
        RequestedType::ReadPrivate => ReceiptType::ReadPrivate,
        RequestedType::FullyRead if *thread == ReceiptThread::Unthreaded => {
            return account_data::set_read_markers(hs, user, room_id, Some(event_id)).await;
        }
        RequestedType::FullyRead => {
            return Err(Error::invalid_param("m.fully_read takes no thread_id"));
        }
        other => {
            return Err(Error::invalid_param(format!(
                "Unknown receipt type {}: use m.read, m.read.private or m.fully_read",
                other.as_str()
            )));
        }
    };
    let thread_id = thread_id(thread)?;
    ensure_joined(hs, user, room_id).await?;
    let pdu = history::event(hs, user, room_id, event_id.as_str()).await?;
    check_thread(&pdu, thread_id)?;
    store(hs, user, room_id, &stored_type, event_id, thread_id).await?;
    if stored_type == ReceiptType::Read {
        // Public receipts reach the other servers in the room.
        let mut data = serde_json::json!({ "ts": now_ms() });
        if thread_id != UNTHREADED {
            data["thread_id"] = Value::String(thread_id.to_owned());
        }
        let edu = serde_json::json!({
            "edu_type": "m.receipt",
            "content": { room_id.as_str(): { "m.read": { user.as_str(): { "event_ids": [event_id], "data": data } } } },
        });
        crate::rooms::outbound::queue_edu(hs, room_id, &edu).await?;
    }
    Ok(())
}

/// An `m.read` receipt from another server's `user` (joined to the room) at `event_id`, with
/// its thread (`None`: unthreaded). Unknown events are ignored.
pub async fn receive_remote(
    hs: &Homeserver,
    user: &UserId,
    room_id: &RoomId,
    event_id: &EventId,
    thread: Option<&str>,
) -> Result<()> {
    ensure_joined(hs, user, room_id).await?;
    match store(hs, user, room_id, &ReceiptType::Read, event_id, thread.unwrap_or(UNTHREADED)).await {
        Err(Error::Matrix { status, .. }) if status == http::StatusCode::NOT_FOUND => Ok(()),
        other => other,
    }
}

/// `POST /rooms/{roomId}/read_markers`: moves the fully read marker and sets the unthreaded
/// `m.read` and `m.read.private` receipts given, exactly as the receipt endpoint would. Every
/// event is checked (403 not joined, 404 not visible) before anything is written.
pub async fn set_read_markers(
    hs: &Homeserver,
    user: &UserId,
    room_id: &RoomId,
    fully_read: Option<&EventId>,
    read: Option<&EventId>,
    read_private: Option<&EventId>,
) -> Result<()> {
    ensure_joined(hs, user, room_id).await?;
    for event_id in [read, read_private].into_iter().flatten() {
        history::event(hs, user, room_id, event_id.as_str()).await?;
    }
    if fully_read.is_some() {
        account_data::set_read_markers(hs, user, room_id, fully_read).await?;
    }
    if let Some(event_id) = read {
        store(hs, user, room_id, &ReceiptType::Read, event_id, UNTHREADED).await?;
    }
    if let Some(event_id) = read_private {
        store(hs, user, room_id, &ReceiptType::ReadPrivate, event_id, UNTHREADED).await?;
    }
    Ok(())
}

/// Replaces the user's receipt of this type and thread, unless it already points at the event or
/// at a later one (a stale client cannot move a receipt back, as in Synapse), then wakes whoever
/// may see it.
async fn store(
    hs: &Homeserver,
    user: &UserId,
    room_id: &RoomId,
    receipt_type: &ReceiptType,
    event_id: &EventId,
    thread_id: &str,
) -> Result<()> {
    if write(hs, user, room_id, receipt_type, event_id, thread_id).await? {
        if matches!(receipt_type, ReceiptType::Read | ReceiptType::ReadPrivate) {
            hs.read_positions().forget(user);
        }
        if *receipt_type == ReceiptType::ReadPrivate {
            hs.notifier().wake_users([user]);
        } else {
            hs.notifier().wake_room(room_id.to_owned());
        }
    }
    Ok(())
}

/// The write of [`store`], waking nobody; whether the receipt moved.
async fn write(
    hs: &Homeserver,
    user: &UserId,
    room_id: &RoomId,
    receipt_type: &ReceiptType,
    event_id: &EventId,
    thread_id: &str,
) -> Result<bool> {
    let mut tx = hs.db().begin().await?;
    // Taken first: it serialises the receipt writers, so the write below compares with the
    // receipt as it is at commit.
    let stream_id = streams::next_position(&mut tx, Stream::Receipts).await?;
    let Some(event_position) = event_position(&mut tx, event_id).await? else {
        return Err(Error::not_found("Event not found"));
    };
    let receipt = NewReceipt {
        room_id,
        user_id: user,
        receipt_type: receipt_type.as_str(),
        thread_id,
        event_id: event_id.as_str(),
        event_stream_ordering: event_position,
        ts: now_ms(),
        stream_id,
    };
    if !receipts::put_if_later(&mut tx, &receipt).await? {
        return Ok(false);
    }
    // Recorded before the commit publishes the position (see `receipt_activity`).
    match receipt_type {
        ReceiptType::Read => hs.receipt_activity().shared(room_id, stream_id),
        _ => hs.receipt_activity().private(user, stream_id),
    }
    tx.commit().await?;
    Ok(true)
}

/// Records deliveries (see [`crate::delivery`]) in one transaction: per recipient and delivery,
/// a [`DELIVERED`] receipt, moved only forward; deliveries of events this server does not know
/// are skipped. Only the senders whose messages moved are woken: delivery matters to them, and
/// waking the whole room for each recipient would make every message cost a sync of every member
/// per member; the others see it in their next sync.
pub(crate) async fn write_delivered(hs: &Homeserver, batch: &[(OwnedUserId, Delivery)]) -> Result<()> {
    let mut tx = hs.db().begin().await?;
    let stream_id = streams::next_position(&mut tx, Stream::Receipts).await?;
    let mut positions: HashMap<&EventId, Option<i64>> = HashMap::new();
    let mut moved = Vec::new();
    let ts = now_ms();
    for (user, delivery) in batch {
        let position = match positions.get(&*delivery.event_id) {
            Some(position) => *position,
            None => {
                let position = event_position(&mut tx, &delivery.event_id).await?;
                *positions.entry(&delivery.event_id).or_insert(position)
            }
        };
        let Some(event_stream_ordering) = position else { continue };
        let receipt = NewReceipt {
            room_id: &delivery.room_id,
            user_id: user,
            receipt_type: DELIVERED,
            thread_id: UNTHREADED,
            event_id: delivery.event_id.as_str(),
            event_stream_ordering,
            ts,
            stream_id,
        };
        if receipts::put_if_later(&mut tx, &receipt).await? {
            // Only the sender sees it; recorded before the commit publishes the position.
            hs.receipt_activity().private(&delivery.sender, stream_id);
            moved.push((user, delivery));
        }
    }
    queue_remote_deliveries(hs, &mut tx, &moved, ts).await?;
    tx.commit().await?;
    hs.notifier().wake_users(moved.iter().map(|(_, delivery)| &*delivery.sender));
    Ok(())
}

/// Tells the servers of remote senders that their messages were delivered: per server, one
/// `m.receipt` EDU with the [`DELIVERED`] receipts of its users' events (only the sender's
/// server learns of a delivery, as only the sender sees it).
async fn queue_remote_deliveries(
    hs: &Homeserver,
    tx: &mut WriteTx,
    moved: &[(&OwnedUserId, &Delivery)],
    ts: i64,
) -> Result<()> {
    let mut per_server: HashMap<&ServerName, Value> = HashMap::new();
    for (user, delivery) in moved {
        let server = delivery.sender.server_name();
        if server == hs.server_name() {
            continue;
        }
        let content = per_server.entry(server).or_insert_with(|| serde_json::json!({}));
        content[delivery.room_id.as_str()][DELIVERED][user.as_str()] =
            serde_json::json!({ "event_ids": [delivery.event_id], "data": { "ts": ts } });
    }
    for (server, content) in per_server {
        let edu = serde_json::json!({ "edu_type": "m.receipt", "content": content });
        outbox::push_edu(tx, &[server.as_str()], &edu.to_string(), now_ms()).await?;
        tx.queued_for_federation([server.as_str()]);
    }
    Ok(())
}

/// A [`DELIVERED`] receipt from another Hearth server: a device of its `user` (joined to the
/// room) received `room_id` up to `event_id`. Events not known here are ignored.
pub async fn receive_remote_delivered(
    hs: &Homeserver,
    user: &UserId,
    room_id: &RoomId,
    event_id: &EventId,
) -> Result<()> {
    ensure_joined(hs, user, room_id).await?;
    let Some(pdu) = crate::rooms::timeline::event_by_id(hs, room_id, event_id.as_str()).await? else {
        return Ok(());
    };
    let delivery =
        Delivery { room_id: room_id.to_owned(), event_id: event_id.to_owned(), sender: pdu.sender };
    crate::delivery::record(hs, user, &[delivery]).await
}

/// The receipts `viewer` may see in `rooms` that changed at a position in `(from, to]` (`from` 0
/// for an initial sync, `to` the receipts stream's [`streams::current`] position): per room with
/// any, the content of its `m.receipt` event. `m.read.private` receipts are included only when
/// they are the viewer's own.
pub async fn changed_since(
    conn: &mut Conn,
    viewer: &UserId,
    rooms: &[OwnedRoomId],
    from: i64,
    to: i64,
) -> Result<HashMap<OwnedRoomId, ReceiptEventContent>> {
    let room_ids: Vec<&str> = rooms.iter().map(|r| r.as_str()).collect();
    let rows = receipts::changed(conn, &room_ids, viewer, from, to).await?;
    let mut contents: HashMap<OwnedRoomId, ReceiptEventContent> = HashMap::new();
    for row in rows {
        // Rows are only written from parsed IDs; one that does not parse is skipped, not fatal.
        let (Ok(room_id), Ok(event_id), Ok(user_id)) = (
            OwnedRoomId::try_from(row.room_id),
            OwnedEventId::try_from(row.event_id),
            OwnedUserId::try_from(row.user_id),
        ) else {
            continue;
        };
        let mut receipt =
            Receipt::new(MilliSecondsSinceUnixEpoch(UInt::try_from(row.ts).unwrap_or_default()));
        receipt.thread = match row.thread_id.as_str() {
            UNTHREADED => ReceiptThread::Unthreaded,
            MAIN => ReceiptThread::Main,
            root => match OwnedEventId::try_from(root) {
                Ok(root) => ReceiptThread::Thread(root),
                Err(_) => continue,
            },
        };
        let content = contents.entry(room_id).or_insert_with(|| ReceiptEventContent(Default::default()));
        let by_type = content.entry(event_id).or_default();
        by_type.entry(ReceiptType::from(row.receipt_type.as_str())).or_default().insert(user_id, receipt);
    }
    Ok(contents)
}

/// How far `user` has read `room_id`, for unread counts: the event stream position
/// (`events.stream_ordering`) of the event their receipt points at, taking the further of
/// `m.read` and `m.read.private`; 0 where they sent none.
///
/// The first value is for the main timeline: the further of the unthreaded receipt and the
/// `main` threaded one. The map holds, for each thread root with a threaded receipt, the further
/// of that receipt and the unthreaded one (an unthreaded receipt covers every thread). A thread
/// without an entry is read up to the unthreaded receipt alone.
pub async fn read_upto(conn: &mut Conn, user: &UserId, room_id: &RoomId) -> Result<ReadUpto> {
    Ok(read_upto_in(conn, user, &[room_id]).await?.remove(room_id.as_str()).unwrap_or_default())
}

/// How far `user` has read a room: main timeline, and per thread root with a threaded receipt.
pub type ReadUpto = (i64, HashMap<OwnedEventId, i64>);

/// [`read_upto`] for each of `rooms` with any receipt of `user`, in one query: room ID → its
/// read positions (rooms without receipts are absent: nothing read).
pub async fn read_upto_in(
    conn: &mut Conn,
    user: &UserId,
    rooms: &[&RoomId],
) -> Result<HashMap<String, ReadUpto>> {
    Ok(read_upto_of(receipts::read_positions(conn, user, Some(rooms)).await?))
}

/// [`read_upto_in`] of every room, as `/sync` reads it on every request: kept per user until
/// their next read receipt.
pub async fn read_upto_everywhere(hs: &Homeserver, user: &UserId) -> Result<Arc<HashMap<String, ReadUpto>>> {
    hs.read_positions()
        .get(user, || async {
            let mut conn = hs.db().pool().acquire().await?;
            Ok(Arc::new(read_upto_of(receipts::read_positions(&mut conn, user, None).await?)))
        })
        .await
}

/// Read positions per room, from the stored receipts' positions per room and thread.
fn read_upto_of(stored: HashMap<String, Vec<(String, i64)>>) -> HashMap<String, ReadUpto> {
    let mut read = HashMap::new();
    for (room_id, positions) in stored {
        let unthreaded =
            positions.iter().find(|(thread, _)| thread == UNTHREADED).map_or(0, |(_, upto)| *upto);
        let mut main = unthreaded;
        let mut threads = HashMap::new();
        for (thread, upto) in positions {
            match thread.as_str() {
                UNTHREADED => {}
                MAIN => main = main.max(upto),
                root => {
                    if let Ok(root) = OwnedEventId::try_from(root) {
                        threads.insert(root, upto.max(unthreaded));
                    }
                }
            }
        }
        read.insert(room_id, (main, threads));
    }
    read
}

/// The stored form of a receipt's thread: 400 `M_INVALID_PARAM` for anything but `main` or an
/// event ID (ruma keeps other strings, the empty one included, as custom values).
fn thread_id(thread: &ReceiptThread) -> Result<&str> {
    match thread {
        ReceiptThread::Unthreaded => Ok(UNTHREADED),
        ReceiptThread::Main => Ok(MAIN),
        ReceiptThread::Thread(root) => Ok(root.as_str()),
        _ => Err(Error::invalid_param("thread_id must be \"main\" or the event ID of a thread root")),
    }
}

/// 400 `M_INVALID_PARAM` when the event is in a thread other than `thread_id` says: a reply in
/// thread `$A` cannot be read in `main` or in thread `$B`. Only the event's own `m.thread`
/// relation is looked at; an event related to a thread indirectly (a reaction to a reply) is
/// accepted for any thread root.
fn check_thread(pdu: &Pdu, thread_id: &str) -> Result<()> {
    if thread_id == UNTHREADED || !pdu.content.get().contains("m.thread") {
        return Ok(());
    }
    let content: Value = serde_json::from_str(pdu.content.get()).unwrap_or(Value::Null);
    let relates_to = &content["m.relates_to"];
    if relates_to["rel_type"] != "m.thread" {
        return Ok(());
    }
    match relates_to["event_id"].as_str() {
        Some(root) if root != thread_id => {
            Err(Error::invalid_param(format!("The event is in thread {root}, not in {thread_id}")))
        }
        _ => Ok(()),
    }
}

/// Fails with 403 unless `user` is joined to `room_id`.
async fn ensure_joined(hs: &Homeserver, user: &UserId, room_id: &RoomId) -> Result<()> {
    match membership_of(hs, room_id, user).await?.as_deref() {
        Some("join") => Ok(()),
        _ => Err(Error::forbidden("You are not joined to this room")),
    }
}

/// An event's position in the room event stream (`None` for outliers and unknown events).
async fn event_position(conn: &mut Conn, event_id: &EventId) -> Result<Option<i64>> {
    Ok(events::get(conn, event_id.as_str()).await?.and_then(|row| row.stream_ordering))
}

#[cfg(test)]
mod tests {
    use ruma::{owned_room_id, owned_user_id};

    use super::*;
    use crate::storage::{Db, test_db};

    async fn db(dir: &tempfile::TempDir) -> Db {
        test_db(dir).await
    }

    /// Writes a receipt at event position `at`, receipts stream position `stream_id`.
    async fn write(
        db: &Db,
        room: &str,
        user: &str,
        kind: &str,
        thread: &str,
        at: i64,
        stream_id: i64,
    ) -> bool {
        let (room_id, user_id) = (RoomId::parse(room).expect("room"), UserId::parse(user).expect("user"));
        let event_id = format!("$e{at}");
        let receipt = NewReceipt {
            room_id: &room_id,
            user_id: &user_id,
            receipt_type: kind,
            thread_id: thread,
            event_id: &event_id,
            event_stream_ordering: at,
            ts: 1_000 + at,
            stream_id,
        };
        let mut tx = db.begin().await.expect("begin");
        let wrote = receipts::put_if_later(&mut tx, &receipt).await.expect("write");
        tx.commit().await.expect("commit");
        wrote
    }

    async fn changed(db: &Db, viewer: &str, rooms: &[OwnedRoomId], from: i64, to: i64) -> Value {
        let mut conn = db.pool().acquire().await.expect("conn");
        let viewer = UserId::parse(viewer).expect("user");
        let found = changed_since(&mut conn, &viewer, rooms, from, to).await.expect("changed");
        serde_json::to_value(found).expect("json")
    }

    #[tokio::test]
    async fn a_receipt_only_moves_forward() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = db(&dir).await;
        assert!(write(&db, "!r:x", "@a:x", "m.read", "", 5, 1).await);
        assert!(!write(&db, "!r:x", "@a:x", "m.read", "", 3, 2).await, "an earlier event is ignored");
        assert!(!write(&db, "!r:x", "@a:x", "m.read", "", 5, 3).await, "the same event is ignored");
        assert!(write(&db, "!r:x", "@a:x", "m.read", "main", 3, 4).await, "another thread is separate");
        assert!(write(&db, "!r:x", "@a:x", "m.read.private", "", 2, 5).await, "another type is separate");
        assert!(write(&db, "!r:x", "@a:x", "m.read", "", 9, 6).await);

        let room = owned_room_id!("!r:x");
        let all = changed(&db, "@a:x", std::slice::from_ref(&room), 0, 6).await;
        assert_eq!(
            all["!r:x"],
            serde_json::json!({
                "$e9": { "m.read": { "@a:x": { "ts": 1009 } } },
                "$e3": { "m.read": { "@a:x": { "ts": 1003, "thread_id": "main" } } },
                "$e2": { "m.read.private": { "@a:x": { "ts": 1002 } } },
            }),
            "one receipt per type and thread, the latest"
        );
    }

    #[tokio::test]
    async fn changed_since_returns_the_rooms_receipts_in_the_range_and_private_ones_only_to_their_owner() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = db(&dir).await;
        write(&db, "!r:x", "@a:x", "m.read", "", 1, 1).await;
        write(&db, "!r:x", "@b:x", "m.read.private", "", 2, 2).await;
        write(&db, "!other:x", "@a:x", "m.read", "", 3, 3).await;
        write(&db, "!r:x", "@c:x", "m.read", "$root", 4, 4).await;
        write(&db, "!r:x", "@d:x", "m.read", "", 5, 5).await;
        let rooms = [owned_room_id!("!r:x"), owned_room_id!("!empty:x")];

        let seen_by_a = changed(&db, "@a:x", &rooms, 0, 4).await;
        assert_eq!(
            seen_by_a,
            serde_json::json!({ "!r:x": {
                "$e1": { "m.read": { "@a:x": { "ts": 1001 } } },
                "$e4": { "m.read": { "@c:x": { "ts": 1004, "thread_id": "$root" } } },
            } }),
            "not b's private receipt, not other rooms, not past `to`, no empty rooms"
        );
        let seen_by_b = changed(&db, "@b:x", &rooms, 1, 4).await;
        assert_eq!(
            seen_by_b["!r:x"],
            serde_json::json!({
                "$e2": { "m.read.private": { "@b:x": { "ts": 1002 } } },
                "$e4": { "m.read": { "@c:x": { "ts": 1004, "thread_id": "$root" } } },
            }),
            "b sees their own private receipt; nothing at or before `from`"
        );
        assert_eq!(changed(&db, "@a:x", &rooms, 5, 5).await, serde_json::json!({}));
    }

    #[tokio::test]
    async fn read_upto_takes_the_further_of_public_and_private_receipts_per_thread() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = db(&dir).await;
        let (user, room) = (owned_user_id!("@a:x"), owned_room_id!("!r:x"));
        let read_upto = |db: &Db| {
            let (db, user, room) = (db.pool().clone(), user.clone(), room.clone());
            async move {
                let mut conn = db.acquire().await.expect("conn");
                read_upto(&mut conn, &user, &room).await.expect("read_upto")
            }
        };
        assert_eq!(read_upto(&db).await, (0, HashMap::new()), "nothing read");

        write(&db, "!r:x", "@a:x", "m.read", "", 10, 1).await;
        write(&db, "!r:x", "@a:x", "m.read.private", "", 20, 2).await;
        write(&db, "!r:x", "@b:x", "m.read", "", 99, 3).await;
        write(&db, "!other:x", "@a:x", "m.read", "", 98, 4).await;
        assert_eq!(read_upto(&db).await.0, 20, "the private receipt is further");

        write(&db, "!r:x", "@a:x", "m.read", "main", 30, 5).await;
        write(&db, "!r:x", "@a:x", "m.read", "$t1", 15, 6).await;
        write(&db, "!r:x", "@a:x", "m.read.private", "$t2", 40, 7).await;
        let (main, threads) = read_upto(&db).await;
        assert_eq!(main, 30, "the main-timeline receipt is further than the unthreaded one");
        let expected: HashMap<OwnedEventId, i64> = [
            (OwnedEventId::try_from("$t1").expect("id"), 20), // the unthreaded receipt covers the thread
            (OwnedEventId::try_from("$t2").expect("id"), 40),
        ]
        .into_iter()
        .collect();
        assert_eq!(threads, expected);
    }
}

//! Reading notifications back (spec: Client-Server API › Receiving notifications, Listing
//! Notifications): the unread counts `/sync` reports per room and thread, and the pages of
//! `GET /notifications`.
//!
//! A notification is unread while it lies after the user's read position: the stream position
//! of the event their latest read receipt (`m.read` or `m.read.private`, whichever is further)
//! points at. Receipts are not stored yet; callers pass the positions (see each function).

use std::collections::{BTreeMap, HashMap};

use ruma::{OwnedEventId, OwnedRoomId, RoomId, UserId, push::Action};
use serde_json::Value;

use crate::{
    Error, Homeserver, Result,
    receipts::ReadUpto,
    rooms::{Pdu, serve},
    storage::{Conn, push_actions},
};

/// Default and largest page of `GET /notifications`.
const DEFAULT_LIMIT: u64 = 20;
const MAX_LIMIT: u64 = 100;

/// Unread notifications of one user in one room.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UnreadCounts {
    /// Notifying events of the main timeline after the read position.
    pub notification_count: u64,
    /// Of those, the highlighted ones.
    pub highlight_count: u64,
    /// Per thread root: `(notifications, highlights)` after the thread's read position; threads
    /// without unread notifications are left out.
    pub per_thread: BTreeMap<OwnedEventId, (u64, u64)>,
}

impl UnreadCounts {
    /// Main timeline and every thread together: what `/sync` reports as `unread_notifications`
    /// when the client did not ask for `unread_thread_notifications`.
    pub fn total(&self) -> (u64, u64) {
        self.per_thread
            .values()
            .fold((self.notification_count, self.highlight_count), |(n, h), (tn, th)| (n + tn, h + th))
    }
}

/// `user`'s unread notifications in `room_id` (spec: Receiving notifications; threaded read
/// receipts partition them per thread).
///
/// `main_read_upto` is the stream position the user has read the main timeline up to;
/// `thread_read_upto` the position per thread root for threads with a threaded receipt. A
/// thread without an entry counts from `main_read_upto`. An unthreaded receipt covers every
/// thread, so the caller passes for each thread the later of it and the thread's own receipt,
/// and for the main timeline the later of it and the `main` receipt. 0 means nothing read.
pub async fn unread_counts(
    conn: &mut Conn,
    user: &UserId,
    room_id: &RoomId,
    main_read_upto: i64,
    thread_read_upto: &HashMap<OwnedEventId, i64>,
) -> Result<UnreadCounts> {
    let read = HashMap::from([(room_id.as_str().to_owned(), (main_read_upto, thread_read_upto.clone()))]);
    Ok(unread_counts_in(conn, user, &[room_id], &read).await?.remove(room_id.as_str()).unwrap_or_default())
}

/// [`unread_counts`] for each of `rooms`, the main timelines counted in one query: `read` holds
/// the read positions of the rooms with any (see [`crate::receipts::read_upto_in`]), the others
/// count from the start. Room ID → its counts; rooms without unread notifications are absent.
pub async fn unread_counts_in(
    conn: &mut Conn,
    user: &UserId,
    rooms: &[&RoomId],
    read: &HashMap<String, ReadUpto>,
) -> Result<HashMap<String, UnreadCounts>> {
    let rows: Vec<(&str, &str, i64)> =
        rooms.iter().map(|room| (user.as_str(), room.as_str(), main_read(read, room))).collect();
    let counted = push_actions::count_by_thread(&mut *conn, &rows, i64::MAX).await?;
    let mut all = main_counts(counted, read);
    add_thread_counts(conn, user, rooms, read, &mut all).await?;
    Ok(all)
}

/// [`unread_counts_in`] for a `/sync`: the main timelines are counted in one statement with the
/// other syncs asking at the same moment ([`UnreadBatch`](super::unread_batch::UnreadBatch)):
/// a message to a room wakes every member's sync at once.
pub async fn unread_counts_batched(
    hs: &Homeserver,
    user: &UserId,
    rooms: &[&RoomId],
    read: &HashMap<String, ReadUpto>,
) -> Result<HashMap<String, UnreadCounts>> {
    let rows: Vec<(String, i64)> =
        rooms.iter().map(|room| (room.to_string(), main_read(read, room))).collect();
    let counted = hs.unread_batch().count(hs, user, rows).await?;
    let mut all = main_counts(counted, read);
    if rooms.iter().any(|room| read.get(room.as_str()).is_some_and(|(_, threads)| !threads.is_empty())) {
        let mut conn = hs.db().pool().acquire().await?;
        add_thread_counts(&mut conn, user, rooms, read, &mut all).await?;
    }
    Ok(all)
}

/// The main timeline's read position in `room` (0: nothing read).
fn main_read(read: &HashMap<String, ReadUpto>, room: &RoomId) -> i64 {
    read.get(room.as_str()).map_or(0, |(main, _)| *main)
}

/// Counts of the main timelines and of the threads without a read position of their own.
fn main_counts(
    counted: Vec<push_actions::Counted>,
    read: &HashMap<String, ReadUpto>,
) -> HashMap<String, UnreadCounts> {
    let no_threads = HashMap::new();
    let read_of = |room: &str| read.get(room).map_or(&no_threads, |(_, threads)| threads);
    let mut all: HashMap<String, UnreadCounts> = HashMap::new();
    for counted in counted {
        let (n, h) = (non_negative(counted.notifications), non_negative(counted.highlights));
        let threads = read_of(&counted.room_id);
        let counts = all.entry(counted.room_id).or_default();
        match counted.thread_id.and_then(|id| OwnedEventId::try_from(id).ok()) {
            None => (counts.notification_count, counts.highlight_count) = (n, h),
            Some(thread) if threads.contains_key(&thread) => {}
            Some(thread) => {
                counts.per_thread.insert(thread, (n, h));
            }
        }
    }
    all
}

/// Threads with their own read position are counted from it.
async fn add_thread_counts(
    conn: &mut Conn,
    user: &UserId,
    rooms: &[&RoomId],
    read: &HashMap<String, ReadUpto>,
    all: &mut HashMap<String, UnreadCounts>,
) -> Result<()> {
    let no_threads = HashMap::new();
    let read_of = |room: &str| read.get(room).map_or(&no_threads, |(_, threads)| threads);
    for room_id in rooms {
        for (thread, upto) in read_of(room_id.as_str()) {
            let counted = push_actions::count_in_thread(
                &mut *conn,
                user.as_str(),
                room_id.as_str(),
                thread.as_str(),
                *upto,
            )
            .await?;
            if counted.notifications > 0 {
                all.entry(room_id.as_str().to_owned()).or_default().per_thread.insert(
                    thread.clone(),
                    (non_negative(counted.notifications), non_negative(counted.highlights)),
                );
            }
        }
    }
    Ok(())
}

fn non_negative(count: i64) -> u64 {
    u64::try_from(count).unwrap_or(0)
}

/// One entry of `GET /notifications`.
#[derive(Clone, Debug)]
pub struct NotificationItem {
    /// The event's room.
    pub room_id: OwnedRoomId,
    /// The event, served as the user sees it, without `room_id`.
    pub event: Value,
    /// The actions of the rule that matched.
    pub actions: Vec<Action>,
    /// Whether the user's read position is at or after the event.
    pub read: bool,
    /// When the event was sent.
    pub ts: i64,
}

/// A page of `GET /notifications`.
#[derive(Clone, Debug)]
pub struct NotificationPage {
    /// Newest first.
    pub notifications: Vec<NotificationItem>,
    /// Where the next (older) page starts; `None` at the end.
    pub next_token: Option<String>,
}

/// `user`'s notifications, newest first (`GET /notifications`): from the token `from` (a page's
/// `next_token`), at most `limit` (default 20, at most 100), only highlights when
/// `only_highlight`. A notification is `read` when the user's read receipt in its room (main
/// timeline, see [`crate::receipts::read_upto`]) is at or past it.
pub async fn list(
    hs: &Homeserver,
    user: &UserId,
    from: Option<&str>,
    limit: Option<u64>,
    only_highlight: bool,
) -> Result<NotificationPage> {
    let before = from
        .map(|token| token.parse::<i64>().map_err(|_| Error::invalid_param("Unknown pagination token")))
        .transpose()?;
    let limit = limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    let rows = push_actions::list(
        hs.db().pool(),
        user.as_str(),
        before,
        i64::try_from(limit).unwrap_or(20),
        only_highlight,
    )
    .await?;
    let next_token = (rows.len() as u64 == limit)
        .then(|| rows.last().and_then(|r| r.event.stream_ordering))
        .flatten()
        .map(|position| position.to_string());

    let mut pdus = Vec::with_capacity(rows.len());
    for row in &rows {
        let room_id = OwnedRoomId::try_from(row.event.room_id.as_str())
            .map_err(|e| Error::Internal(anyhow::anyhow!("stored room ID: {e}")))?;
        let event_id = OwnedEventId::try_from(row.event.event_id.as_str())
            .map_err(|e| Error::Internal(anyhow::anyhow!("stored event ID: {e}")))?;
        let pdu = Pdu::from_stored(event_id, &row.event.json, &room_id)
            .map_err(|e| Error::Internal(anyhow::anyhow!("stored event {}: {e}", row.event.event_id)))?;
        pdus.push(pdu);
    }
    let served = serve::client_events(hs, user, &pdus).await?;
    let mut read_upto: HashMap<OwnedRoomId, i64> = HashMap::new();
    let mut conn = hs.db().pool().acquire().await?;
    for pdu in &pdus {
        if !read_upto.contains_key(&pdu.room_id) {
            let (main, _) = crate::receipts::read_upto(&mut conn, user, &pdu.room_id).await?;
            read_upto.insert(pdu.room_id.clone(), main);
        }
    }

    let mut notifications = Vec::with_capacity(rows.len());
    for ((row, pdu), mut event) in rows.iter().zip(&pdus).zip(served) {
        if let Value::Object(object) = &mut event {
            object.remove("room_id");
        }
        let actions: Vec<Action> = serde_json::from_str(&row.actions)
            .map_err(|e| Error::Internal(anyhow::anyhow!("stored push actions: {e}")))?;
        let position = row.event.stream_ordering.unwrap_or(0);
        let read = read_upto.get(&pdu.room_id).is_some_and(|upto| position <= *upto);
        notifications.push(NotificationItem {
            room_id: pdu.room_id.clone(),
            event,
            actions,
            read,
            ts: row.ts,
        });
    }
    Ok(NotificationPage { notifications, next_token })
}

#[cfg(test)]
mod tests {
    use ruma::{owned_event_id, room_id, user_id};

    use super::*;
    use crate::storage::{Db, push_actions::NewPushAction};

    const THREAD: &str = "$thread";

    /// Bob's notifications in one room: positions 1–3 in the main timeline (2 highlights), 4–6
    /// in a thread (6 highlights), 7 in the main timeline; and one for Carol.
    async fn database() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = crate::storage::test_db(&dir).await;
        let ids: Vec<String> = (1..=8).map(|n| format!("$e{n}")).collect();
        let row = |user_id, n: usize, thread_id, highlight| NewPushAction {
            user_id,
            room_id: "!r:x",
            event_id: &ids[n - 1],
            stream_ordering: n as i64,
            thread_id,
            notify: true,
            highlight,
            actions: "[\"notify\"]",
            ts: 0,
        };
        let rows = [
            row("@bob:x", 1, None, false),
            row("@bob:x", 2, None, true),
            row("@bob:x", 3, None, false),
            row("@bob:x", 4, Some(THREAD), false),
            row("@bob:x", 5, Some(THREAD), false),
            row("@bob:x", 6, Some(THREAD), true),
            row("@bob:x", 7, None, false),
            row("@carol:x", 8, None, true),
        ];
        let mut tx = db.begin().await.expect("begin");
        crate::storage::push_actions::insert_many(&mut tx, &rows).await.expect("insert");
        tx.commit().await.expect("commit");
        (dir, db)
    }

    #[tokio::test]
    async fn unread_counts_are_split_into_the_main_timeline_and_threads() {
        let (_dir, db) = database().await;
        let mut conn = db.pool().acquire().await.expect("conn");
        let (bob, room) = (user_id!("@bob:x"), room_id!("!r:x"));

        let nothing_read = unread_counts(&mut conn, bob, room, 0, &HashMap::new()).await.expect("counts");
        assert_eq!((nothing_read.notification_count, nothing_read.highlight_count), (4, 1));
        assert_eq!(nothing_read.per_thread.get(&owned_event_id!("$thread")), Some(&(3, 1)));
        assert_eq!(nothing_read.total(), (7, 2));

        let read_to_2 = unread_counts(&mut conn, bob, room, 2, &HashMap::new()).await.expect("counts");
        assert_eq!((read_to_2.notification_count, read_to_2.highlight_count), (2, 0));
        assert_eq!(read_to_2.per_thread.get(&owned_event_id!("$thread")), Some(&(3, 1)));

        // The thread read up to 6, the main timeline only up to 1.
        let thread_read = HashMap::from([(owned_event_id!("$thread"), 6)]);
        let counts = unread_counts(&mut conn, bob, room, 1, &thread_read).await.expect("counts");
        assert_eq!((counts.notification_count, counts.highlight_count), (3, 1));
        assert!(counts.per_thread.is_empty(), "{counts:?}");

        // A thread receipt older than the main one still counts the thread from it.
        let thread_behind = HashMap::from([(owned_event_id!("$thread"), 4)]);
        let counts = unread_counts(&mut conn, bob, room, 7, &thread_behind).await.expect("counts");
        assert_eq!(counts.notification_count, 0);
        assert_eq!(counts.per_thread.get(&owned_event_id!("$thread")), Some(&(2, 1)));
    }
}

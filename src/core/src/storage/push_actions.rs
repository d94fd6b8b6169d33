//! Which events notify which local users (spec: Client-Server API › Push Notifications), the
//! unread counts derived from it, and the few reads push rule evaluation needs (member events by
//! interned ID, an event's relation).
//!
//! An event that notifies its recipients by default has one row in `event_notifications`; it
//! applies to every local member joined since before the event (`current_state.joined_at`)
//! other than its sender. A recipient whose outcome differs has a row of their own in
//! `event_push_actions` (`notify = 0` when they are not notified), which replaces the default
//! for them. Counting for a user is then: default rows after their join and read position
//! without an exception of theirs, plus their notifying exception rows.

use sqlx::{Executor, Row};

use super::{
    Conn, IDS_PER_STATEMENT, Params,
    events::{StoredEvent, from_row},
};

/// Columns per row in [`insert_many`].
const COLUMNS_PER_ROW: usize = 9;
/// Rows per multi-row insert: well below the parameter limits of SQLite (32 766)
/// and PostgreSQL (65 535).
const ROWS_PER_STATEMENT: usize = 3_000;

/// An exception to an event's default notification: how one user is notified of it, or that
/// they are not (`notify` false).
#[derive(Clone, Debug)]
pub struct NewPushAction<'a> {
    /// The recipient.
    pub user_id: &'a str,
    /// The event's room.
    pub room_id: &'a str,
    /// The event.
    pub event_id: &'a str,
    /// The event's position in the room event stream.
    pub stream_ordering: i64,
    /// The thread root, for events in a thread.
    pub thread_id: Option<&'a str>,
    /// Whether the actions notify.
    pub notify: bool,
    /// Whether the actions highlight.
    pub highlight: bool,
    /// The actions, as a JSON array.
    pub actions: &'a str,
    /// When the event was sent (ms since the epoch).
    pub ts: i64,
}

/// The default notification of one event.
#[derive(Clone, Debug)]
pub struct NewDefault<'a> {
    /// The event's position in the room event stream.
    pub stream_ordering: i64,
    /// The event's room.
    pub room_id: &'a str,
    /// The event's sender.
    pub sender: &'a str,
    /// The thread root, for events in a thread.
    pub thread_id: Option<&'a str>,
    /// Whether the actions highlight.
    pub highlight: bool,
    /// The actions, as a JSON array.
    pub actions: &'a str,
}

/// Inserts default notifications with multi-row statements (one per 3 000 rows).
pub async fn insert_defaults(conn: &mut Conn, rows: &[NewDefault<'_>]) -> sqlx::Result<()> {
    const COLUMNS: usize = 6;
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO event_notifications (stream_ordering, room_id, sender, thread_id, highlight, actions) \
             VALUES {}",
            super::row_values(conn, chunk.len(), COLUMNS)
        );
        let mut query = sqlx::query(&sql);
        for row in chunk {
            query = query
                .bind(row.stream_ordering)
                .bind(row.room_id)
                .bind(row.sender)
                .bind(row.thread_id)
                .bind(i64::from(row.highlight))
                .bind(row.actions);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Inserts exception rows with multi-row statements (one per 3 000 rows).
pub async fn insert_many(conn: &mut Conn, rows: &[NewPushAction<'_>]) -> sqlx::Result<()> {
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO event_push_actions (user_id, room_id, event_id, stream_ordering, thread_id, \
             notify, highlight, actions, ts) VALUES {}",
            super::row_values(conn, chunk.len(), COLUMNS_PER_ROW)
        );
        let mut query = sqlx::query(&sql);
        for row in chunk {
            query = query
                .bind(row.user_id)
                .bind(row.room_id)
                .bind(row.event_id)
                .bind(row.stream_ordering)
                .bind(row.thread_id)
                .bind(i64::from(row.notify))
                .bind(i64::from(row.highlight))
                .bind(row.actions)
                .bind(row.ts);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Notifying rows and highlights of one thread (or the main timeline) of one room.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counted {
    /// Whose notifications.
    pub user_id: String,
    /// The room.
    pub room_id: String,
    /// The thread root; `None` for the main timeline.
    pub thread_id: Option<String>,
    /// Rows that notify.
    pub notifications: i64,
    /// Of those, rows that highlight.
    pub highlights: i64,
}

/// Notifications per user, room and thread: for each `(user ID, room ID, after)` those of the
/// user in the room after the stream position and at or before `upto`, in one query (per
/// [`IDS_PER_STATEMENT`] rows; the rows may be of many users). Rooms and threads without
/// notifications are absent.
pub async fn count_by_thread(
    conn: &mut Conn,
    rows: &[(&str, &str, i64)],
    upto: i64,
) -> sqlx::Result<Vec<Counted>> {
    let mut counted = Vec::new();
    for chunk in rows.chunks(IDS_PER_STATEMENT) {
        counted.extend(count_unread(conn, chunk, None, upto).await?);
    }
    Ok(counted)
}

/// `user_id`'s notifications in one thread of `room_id` after stream position `after`.
pub async fn count_in_thread(
    conn: &mut Conn,
    user_id: &str,
    room_id: &str,
    thread_id: &str,
    after: i64,
) -> sqlx::Result<Counted> {
    let counted = count_unread(conn, &[(user_id, room_id, after)], Some(thread_id), i64::MAX).await?;
    Ok(counted.into_iter().next().unwrap_or_else(|| Counted {
        user_id: user_id.to_owned(),
        room_id: room_id.to_owned(),
        thread_id: Some(thread_id.to_owned()),
        ..Counted::default()
    }))
}

/// The notifications of each `(user ID, room ID, after)`: the user's in the room after the
/// position and at or before `upto` (only in `thread`, if given), per user, room and thread: the room's default
/// notifications since the user's current join, not sent by them, and not replaced by an
/// exception; then the user's notifying exceptions.
async fn count_unread(
    conn: &mut Conn,
    rows: &[(&str, &str, i64)],
    thread: Option<&str>,
    upto: i64,
) -> sqlx::Result<Vec<Counted>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let mut p = Params::new(conn);
    let values = (0..rows.len())
        .map(|_| format!("({}, {}, {})", p.one(), p.one(), p.one()))
        .collect::<Vec<_>>()
        .join(", ");
    let in_thread =
        |p: &mut Params| thread.map(|_| format!("AND d.thread_id = {}", p.one())).unwrap_or_default();
    // Placeholders in text order: the rows, then `upto` and `[thread]`, twice.
    let (upto_1, thread_1) = (p.one(), in_thread(&mut p));
    let (upto_2, thread_2) = (p.one(), in_thread(&mut p));
    let sql = format!(
        "WITH r (user_id, room_id, read_to) AS (VALUES {values}) \
         SELECT user_id, room_id, thread_id, COUNT(*) AS notifications, \
         COUNT(CASE WHEN highlight = 1 THEN 1 END) AS highlights FROM ( \
             SELECT r.user_id, d.room_id, d.thread_id, d.highlight FROM r JOIN event_notifications d \
             ON d.room_id = r.room_id AND d.stream_ordering > r.read_to \
             WHERE d.stream_ordering <= {upto_1} AND d.sender <> r.user_id {thread_1} \
             AND d.stream_ordering > (SELECT c.joined_at FROM current_state c \
                 WHERE c.room_id = r.room_id AND c.type = 'm.room.member' AND c.state_key = r.user_id) \
             AND NOT EXISTS (SELECT 1 FROM event_push_actions x \
                 WHERE x.user_id = r.user_id AND x.room_id = r.room_id AND x.stream_ordering = d.stream_ordering) \
             UNION ALL \
             SELECT r.user_id, d.room_id, d.thread_id, d.highlight FROM r JOIN event_push_actions d \
             ON d.room_id = r.room_id AND d.stream_ordering > r.read_to \
             WHERE d.user_id = r.user_id AND d.notify = 1 AND d.stream_ordering <= {upto_2} {thread_2} \
         ) unread GROUP BY user_id, room_id, thread_id"
    );
    let mut query = sqlx::query(&sql);
    for (user_id, room_id, after) in rows {
        query = query.bind(*user_id).bind(*room_id).bind(*after);
    }
    for _ in 0..2 {
        query = query.bind(upto);
        if let Some(thread) = thread {
            query = query.bind(thread);
        }
    }
    query
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(|r| {
            Ok(Counted {
                user_id: r.try_get("user_id")?,
                room_id: r.try_get("room_id")?,
                thread_id: r.try_get("thread_id")?,
                notifications: r.try_get("notifications")?,
                highlights: r.try_get("highlights")?,
            })
        })
        .collect()
}

/// One notification with its event, for `GET /notifications`.
#[derive(Clone, Debug)]
pub struct Notification {
    /// The event.
    pub event: StoredEvent,
    /// The actions, as a JSON array.
    pub actions: String,
    /// When the event was sent.
    pub ts: i64,
}

/// `user_id`'s notifications before stream position `before` (all when `None`), newest first,
/// at most `limit`; only highlights when `only_highlight`. Default notifications count in the
/// rooms the user is joined to now, since their join (see the module documentation).
pub async fn list<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    user_id: &str,
    before: Option<i64>,
    limit: i64,
    only_highlight: bool,
) -> sqlx::Result<Vec<Notification>> {
    let rows = sqlx::query(
        "SELECT e.event_nid, e.event_id, e.room_id, e.json, e.stream_ordering, e.state_group, \
         e.redacted_by, p.actions, e.origin_server_ts AS ts FROM ( \
           SELECT d.stream_ordering, d.actions FROM event_notifications d \
           JOIN current_state c ON c.room_id = d.room_id AND c.type = 'm.room.member' \
             AND c.state_key = $1 AND d.stream_ordering > c.joined_at \
           WHERE d.stream_ordering < $2 AND d.highlight >= $3 AND d.sender <> $1 \
           AND NOT EXISTS (SELECT 1 FROM event_push_actions x \
               WHERE x.user_id = $1 AND x.room_id = d.room_id AND x.stream_ordering = d.stream_ordering) \
           UNION ALL \
           SELECT stream_ordering, actions FROM event_push_actions \
           WHERE user_id = $1 AND stream_ordering < $2 AND notify = 1 AND highlight >= $3 \
         ) AS p JOIN events e ON e.stream_ordering = p.stream_ordering \
         ORDER BY p.stream_ordering DESC LIMIT $4",
    )
    .bind(user_id)
    .bind(before.unwrap_or(i64::MAX))
    .bind(i64::from(only_highlight))
    .bind(limit)
    .fetch_all(executor)
    .await?;
    rows.into_iter()
        .map(|row| {
            let actions = row.try_get("actions")?;
            let ts = row.try_get("ts")?;
            Ok(Notification { event: from_row(row)?, actions, ts })
        })
        .collect()
}

// === Reads for evaluation ===

/// `(event_nid, json)` of events by interned ID, in no particular order (member events whose
/// membership and display name the evaluation needs).
pub async fn event_json_by_nids(conn: &mut Conn, nids: &[i64]) -> sqlx::Result<Vec<(i64, String)>> {
    let mut found = Vec::with_capacity(nids.len());
    for chunk in nids.chunks(500) {
        let list: Vec<String> = (1..=chunk.len()).map(|n| format!("${n}")).collect();
        let sql = format!("SELECT event_nid, json FROM events WHERE event_nid IN ({})", list.join(", "));
        let mut query = sqlx::query(&sql);
        for nid in chunk {
            query = query.bind(nid);
        }
        for row in query.fetch_all(&mut *conn).await? {
            found.push((row.try_get("event_nid")?, row.try_get("json")?));
        }
    }
    Ok(found)
}

/// The relation `event_id` itself has: `(rel_type, parent event ID)`.
pub async fn relation_of<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    event_id: &str,
) -> sqlx::Result<Option<(String, String)>> {
    let row = sqlx::query(
        "SELECT r.rel_type, r.parent_id FROM event_relations r JOIN events e ON e.event_nid = r.event_nid \
         WHERE e.event_id = $1",
    )
    .bind(event_id)
    .fetch_optional(executor)
    .await?;
    row.map(|r| Ok((r.try_get("rel_type")?, r.try_get("parent_id")?))).transpose()
}

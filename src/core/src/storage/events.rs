//! The `events` table: every PDU this server has, as canonical JSON beside indexed columns.

use ruma::RoomId;
use sqlx::{Executor, Row, any::AnyRow};

use super::Conn;

/// A new event row.
#[derive(Clone, Debug)]
pub struct NewEvent<'a> {
    /// The event ID.
    pub event_id: &'a str,
    /// The room.
    pub room_id: &'a RoomId,
    /// The event type.
    pub kind: &'a str,
    /// The state key, for state events.
    pub state_key: Option<&'a str>,
    /// The sender.
    pub sender: &'a str,
    /// DAG depth.
    pub depth: i64,
    /// `origin_server_ts`.
    pub origin_server_ts: i64,
    /// Position in the global stream (`None` for events in no timeline: outliers, rejected
    /// and soft-failed events).
    pub stream_ordering: Option<i64>,
    /// The state after the event (`None`: not known here, as for backfilled events).
    pub state_group: Option<i64>,
    /// Canonical JSON.
    pub json: &'a str,
}

/// An event row as loaded.
#[derive(Clone, Debug)]
pub struct StoredEvent {
    /// Interned ID.
    pub event_nid: i64,
    /// The event ID.
    pub event_id: String,
    /// The room.
    pub room_id: String,
    /// Canonical JSON.
    pub json: String,
    /// Position in the global stream (`None` for outliers).
    pub stream_ordering: Option<i64>,
    /// The state after the event.
    pub state_group: Option<i64>,
    /// The redaction that redacted it, if any.
    pub redacted_by: Option<String>,
}

/// The columns [`from_row`] reads, for queries in sibling modules.
pub(crate) const COLUMNS: &str =
    "event_nid, event_id, room_id, json, stream_ordering, state_group, redacted_by";

/// Reads a row selected with [`COLUMNS`].
pub(crate) fn from_row(row: AnyRow) -> sqlx::Result<StoredEvent> {
    Ok(StoredEvent {
        event_nid: row.try_get("event_nid")?,
        event_id: row.try_get("event_id")?,
        room_id: row.try_get("room_id")?,
        json: row.try_get("json")?,
        stream_ordering: row.try_get("stream_ordering")?,
        state_group: row.try_get("state_group")?,
        redacted_by: row.try_get("redacted_by")?,
    })
}

/// Inserts many timeline events in one statement; returns `(event_id, event_nid)` pairs.
pub async fn insert_many(conn: &mut Conn, events: &[NewEvent<'_>]) -> sqlx::Result<Vec<(String, i64)>> {
    insert_rows(conn, events, None).await
}

/// Inserts events this server knows without the state before them (a joined room's state and
/// auth chain), flagged as outliers, a statement per [`ROWS_PER_STATEMENT`]; returns
/// `(event_id, event_nid)` pairs. A join to a room of 10 000 members stored them one by one.
pub async fn insert_outliers(conn: &mut Conn, events: &[NewEvent<'_>]) -> sqlx::Result<Vec<(String, i64)>> {
    let mut inserted = Vec::with_capacity(events.len());
    for chunk in events.chunks(ROWS_PER_STATEMENT) {
        inserted.extend(insert_rows(conn, chunk, Some(Flag::Outlier)).await?);
    }
    Ok(inserted)
}

/// Rows of [`insert_outliers`] per statement (ten parameters each).
const ROWS_PER_STATEMENT: usize = 500;

/// One multi-row insert of `events`, with `flag` set on each.
async fn insert_rows(
    conn: &mut Conn,
    events: &[NewEvent<'_>],
    flag: Option<Flag>,
) -> sqlx::Result<Vec<(String, i64)>> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let mut params = super::Params::new(conn);
    let values: Vec<String> = (0..events.len())
        .map(|_| match flag {
            Some(_) => format!("({}, 1)", params.list(10)),
            None => format!("({})", params.list(10)),
        })
        .collect();
    let flag_column = flag.map_or(String::new(), |flag| format!(", {}", flag.column()));
    let sql = format!(
        "INSERT INTO events (event_id, room_id, type, state_key, sender, depth, origin_server_ts, \
         stream_ordering, state_group, json{flag_column}) VALUES {} RETURNING event_id, event_nid",
        values.join(", ")
    );
    let mut query = sqlx::query(&sql);
    for event in events {
        query = query
            .bind(event.event_id)
            .bind(event.room_id.as_str())
            .bind(event.kind)
            .bind(event.state_key)
            .bind(event.sender)
            .bind(event.depth)
            .bind(event.origin_server_ts)
            .bind(event.stream_ordering)
            .bind(event.state_group)
            .bind(event.json);
    }
    let rows = query.fetch_all(conn).await?;
    rows.into_iter().map(|r| Ok((r.try_get("event_id")?, r.try_get("event_nid")?))).collect()
}

/// Inserts a timeline event and returns its interned ID.
pub async fn insert(conn: &mut Conn, event: &NewEvent<'_>) -> sqlx::Result<i64> {
    let inserted = insert_many(conn, std::slice::from_ref(event)).await?;
    inserted.first().map(|(_, nid)| *nid).ok_or(sqlx::Error::RowNotFound)
}

/// Loads one event by ID.
pub async fn get<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    event_id: &str,
) -> sqlx::Result<Option<StoredEvent>> {
    let sql = format!("SELECT {COLUMNS} FROM events WHERE event_id = $1");
    sqlx::query(&sql).bind(event_id).fetch_optional(executor).await?.map(from_row).transpose()
}

/// Loads those of `event_ids` stored, in no particular order.
pub async fn get_by_ids(conn: &mut Conn, event_ids: &[&str]) -> sqlx::Result<Vec<StoredEvent>> {
    let mut events = Vec::with_capacity(event_ids.len());
    for chunk in event_ids.chunks(super::IDS_PER_STATEMENT) {
        let sql = format!(
            "SELECT {COLUMNS} FROM events WHERE event_id IN ({})",
            super::Params::new(conn).list(chunk.len())
        );
        let mut query = sqlx::query(&sql);
        for id in chunk {
            query = query.bind(*id);
        }
        for row in query.fetch_all(&mut *conn).await? {
            events.push(from_row(row)?);
        }
    }
    Ok(events)
}

/// Loads events by interned ID, in no particular order.
pub async fn get_by_nids(conn: &mut Conn, nids: &[i64]) -> sqlx::Result<Vec<StoredEvent>> {
    let mut events = Vec::with_capacity(nids.len());
    for chunk in nids.chunks(500) {
        let sql = format!(
            "SELECT {COLUMNS} FROM events WHERE event_nid IN ({})",
            super::placeholders(1, chunk.len())
        );
        let mut query = sqlx::query(&sql);
        for nid in chunk {
            query = query.bind(nid);
        }
        for row in query.fetch_all(&mut *conn).await? {
            events.push(from_row(row)?);
        }
    }
    Ok(events)
}

/// Loads events by stream position (at most [`super::IDS_PER_STATEMENT`]), in no particular
/// order.
pub async fn get_by_positions<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    positions: &[i64],
) -> sqlx::Result<Vec<StoredEvent>> {
    if positions.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT {COLUMNS} FROM events WHERE stream_ordering IN ({})",
        super::placeholders(1, positions.len())
    );
    let mut query = sqlx::query(&sql);
    for position in positions {
        query = query.bind(position);
    }
    query.fetch_all(executor).await?.into_iter().map(from_row).collect()
}

/// A page of a room's timeline: events with stream positions strictly between `after` and
/// `before`, newest first when `backwards`, else oldest first.
pub async fn timeline_page<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    room_id: &RoomId,
    after: i64,
    before: i64,
    backwards: bool,
    limit: i64,
) -> sqlx::Result<Vec<StoredEvent>> {
    let order = if backwards { "DESC" } else { "ASC" };
    let sql = format!(
        "SELECT {COLUMNS} FROM events WHERE room_id = $1 AND stream_ordering > $2 AND stream_ordering < $3 \
         AND outlier = 0 AND rejected = 0 AND soft_failed = 0 ORDER BY stream_ordering {order} LIMIT $4"
    );
    let rows = sqlx::query(&sql)
        .bind(room_id.as_str())
        .bind(after)
        .bind(before)
        .bind(limit)
        .fetch_all(executor)
        .await?;
    rows.into_iter().map(from_row).collect()
}

/// The highest stream position handed out so far.
pub async fn max_stream_ordering<'c>(executor: impl Executor<'c, Database = sqlx::Any>) -> sqlx::Result<i64> {
    sqlx::query("SELECT COALESCE(MAX(stream_ordering), 0) AS max FROM events")
        .fetch_one(executor)
        .await?
        .try_get("max")
}

/// The stream positions of those of `event_ids` stored (`None`: in no timeline).
pub async fn positions_of(
    conn: &mut Conn,
    event_ids: &[&str],
) -> sqlx::Result<std::collections::HashMap<String, Option<i64>>> {
    let rows = rows_of(conn, event_ids, "stream_ordering").await?;
    rows.iter().map(|row| Ok((row.try_get("event_id")?, row.try_get("stream_ordering")?))).collect()
}

/// The interned IDs of those of `event_ids` stored.
pub async fn nids_of(
    conn: &mut Conn,
    event_ids: &[&str],
) -> sqlx::Result<std::collections::HashMap<String, i64>> {
    let rows = rows_of(conn, event_ids, "event_nid").await?;
    rows.iter().map(|row| Ok((row.try_get("event_id")?, row.try_get("event_nid")?))).collect()
}

/// `event_id` and `column` of those of `event_ids` stored.
async fn rows_of(conn: &mut Conn, event_ids: &[&str], column: &str) -> sqlx::Result<Vec<AnyRow>> {
    let mut rows = Vec::with_capacity(event_ids.len());
    for chunk in event_ids.chunks(super::IDS_PER_STATEMENT) {
        let sql = format!(
            "SELECT event_id, {column} FROM events WHERE event_id IN ({})",
            super::placeholders(1, chunk.len())
        );
        let mut query = sqlx::query(&sql);
        for id in chunk {
            query = query.bind(*id);
        }
        rows.extend(query.fetch_all(&mut *conn).await?);
    }
    Ok(rows)
}

/// Those of `event_ids` stored as rejected.
pub async fn rejected_among(conn: &mut Conn, event_ids: &[&str]) -> sqlx::Result<Vec<String>> {
    let stored = stored_among(conn, event_ids).await?;
    Ok(stored.into_iter().filter(|(_, rejected)| *rejected).map(|(id, _)| id).collect())
}

/// Those of `event_ids` stored here, each with whether it was rejected.
pub async fn stored_among(conn: &mut Conn, event_ids: &[&str]) -> sqlx::Result<Vec<(String, bool)>> {
    let mut stored = Vec::new();
    for chunk in event_ids.chunks(super::IDS_PER_STATEMENT) {
        let sql = format!(
            "SELECT event_id, rejected FROM events WHERE event_id IN ({})",
            super::Params::new(conn).list(chunk.len())
        );
        let mut query = sqlx::query(&sql);
        for id in chunk {
            query = query.bind(*id);
        }
        for row in query.fetch_all(&mut *conn).await? {
            stored.push((row.try_get("event_id")?, row.try_get::<i64, _>("rejected")? != 0));
        }
    }
    Ok(stored)
}

/// Flags of an event in no timeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flag {
    /// Known without the state before it.
    Outlier,
    /// It failed the auth rules.
    Rejected,
    /// It failed the auth rules against the room's current state only (spec: Server-Server API
    /// › Soft failure).
    SoftFailed,
}

impl Flag {
    /// Its column.
    fn column(self) -> &'static str {
        match self {
            Flag::Outlier => "outlier",
            Flag::Rejected => "rejected",
            Flag::SoftFailed => "soft_failed",
        }
    }
}

/// Flags an event.
pub async fn set_flag(conn: &mut Conn, event_nid: i64, flag: Flag) -> sqlx::Result<()> {
    let column = flag.column();
    sqlx::query(&format!("UPDATE events SET {column} = 1 WHERE event_nid = $1"))
        .bind(event_nid)
        .execute(conn)
        .await?;
    Ok(())
}

/// Points an event at the state group created for it.
pub async fn set_state_group(conn: &mut Conn, event_nid: i64, group: i64) -> sqlx::Result<()> {
    sqlx::query("UPDATE events SET state_group = $1 WHERE event_nid = $2")
        .bind(group)
        .bind(event_nid)
        .execute(conn)
        .await?;
    Ok(())
}

/// The event of a room closest to `ts` (`origin_server_ts`): the last at or before it when
/// `backwards`, else the first at or after it. `(event_id, origin_server_ts)`.
pub async fn closest_to_ts<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    room_id: &RoomId,
    ts: i64,
    backwards: bool,
) -> sqlx::Result<Option<(String, i64)>> {
    let (cmp, order) = if backwards { ("<=", "DESC") } else { (">=", "ASC") };
    let sql = format!(
        "SELECT event_id, origin_server_ts FROM events WHERE room_id = $1 AND origin_server_ts {cmp} $2 \
         AND outlier = 0 AND rejected = 0 AND soft_failed = 0 \
         ORDER BY origin_server_ts {order}, stream_ordering {order} LIMIT 1"
    );
    let row = sqlx::query(&sql).bind(room_id.as_str()).bind(ts).fetch_optional(executor).await?;
    row.map(|r| Ok((r.try_get("event_id")?, r.try_get("origin_server_ts")?))).transpose()
}

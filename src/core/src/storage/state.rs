//! Room state storage: interned `(type, state_key)` pairs, state groups stored as deltas against
//! a parent (a full snapshot when the chain grows long, see [`needs_snapshot`]), and the
//! `current_state` table.

use std::collections::HashMap;

use ruma::RoomId;
use sqlx::{Executor, Row};

use super::{Conn, IDS_PER_STATEMENT, Params};

/// Delta chains may always grow this long before a full snapshot is written.
pub const MAX_CHAIN: i64 = 16;

/// A larger state's chain may grow to its size divided by this (see [`needs_snapshot`]).
const ENTRIES_PER_LINK: i64 = 4;

/// Rows of `state_group_entries` (or keys of `state_keys`) one statement writes or reads.
const ROWS_PER_STATEMENT: usize = 1_000;

/// Whether the next state group after one `chain_len` deltas from a snapshot, for a state of
/// `state_len` entries, must be a full snapshot. A snapshot costs a row per entry, so with a
/// fixed chain length a room's state storage (and the time to write it) grew with the square of
/// its size: a room joined by 10 000 members one at a time wrote 3 million rows. Letting the
/// chain grow to a quarter of the state's size keeps that to a few rows per state event, while
/// loading a group still reads at most 1.25 times the rows of its state.
pub fn needs_snapshot(chain_len: i64, state_len: usize) -> bool {
    let state_len = i64::try_from(state_len).unwrap_or(i64::MAX);
    chain_len >= MAX_CHAIN.max(state_len / ENTRIES_PER_LINK)
}

/// One entry of a state map: `(type, state_key) → event`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateEntry {
    /// Event type.
    pub kind: String,
    /// State key.
    pub state_key: String,
    /// Interned event ID.
    pub event_nid: i64,
    /// Event ID.
    pub event_id: String,
}

/// Interns a `(type, state_key)` pair.
pub async fn intern_key(conn: &mut Conn, kind: &str, state_key: &str) -> sqlx::Result<i64> {
    sqlx::query(
        "INSERT INTO state_keys (type, state_key) VALUES ($1, $2) ON CONFLICT (type, state_key) DO NOTHING",
    )
    .bind(kind)
    .bind(state_key)
    .execute(&mut *conn)
    .await?;
    sqlx::query("SELECT state_key_nid FROM state_keys WHERE type = $1 AND state_key = $2")
        .bind(kind)
        .bind(state_key)
        .fetch_one(&mut *conn)
        .await?
        .try_get("state_key_nid")
}

/// Interns many `(type, state_key)` pairs; their IDs in the same order. Two statements per
/// [`ROWS_PER_STATEMENT`] pairs, where [`intern_key`] takes two per pair (a snapshot of a room
/// of 10 000 members interned them one by one).
pub async fn intern_keys(conn: &mut Conn, keys: &[(&str, &str)]) -> sqlx::Result<Vec<i64>> {
    let mut found: HashMap<(String, String), i64> = HashMap::with_capacity(keys.len());
    for chunk in keys.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO state_keys (type, state_key) VALUES {} ON CONFLICT (type, state_key) DO NOTHING",
            super::row_values(conn, chunk.len(), 2)
        );
        let mut query = sqlx::query(&sql);
        for (kind, state_key) in chunk {
            query = query.bind(*kind).bind(*state_key);
        }
        query.execute(&mut *conn).await?;
        let sql = format!(
            // A join from the wanted pairs probes the unique index once per pair.
            "SELECT k.state_key_nid, k.type, k.state_key FROM (VALUES {}) AS v \
             JOIN state_keys k ON k.type = v.column1 AND k.state_key = v.column2",
            super::row_values(conn, chunk.len(), 2)
        );
        let mut query = sqlx::query(&sql);
        for (kind, state_key) in chunk {
            query = query.bind(*kind).bind(*state_key);
        }
        for row in query.fetch_all(&mut *conn).await? {
            found.insert((row.try_get("type")?, row.try_get("state_key")?), row.try_get("state_key_nid")?);
        }
    }
    keys.iter()
        .map(|(kind, state_key)| {
            found.get(&((*kind).to_owned(), (*state_key).to_owned())).copied().ok_or(sqlx::Error::RowNotFound)
        })
        .collect()
}

/// Length of a group's delta chain (0 for a full snapshot).
pub async fn chain_len(conn: &mut Conn, group_id: i64) -> sqlx::Result<i64> {
    sqlx::query("SELECT chain_len FROM state_groups WHERE group_id = $1")
        .bind(group_id)
        .fetch_one(conn)
        .await?
        .try_get("chain_len")
}

/// Writes a state group: a delta against `parent`, or a full snapshot when `parent` is `None`.
/// `entries` are `(state_key_nid, event_nid)` pairs.
pub async fn insert_group(
    conn: &mut Conn,
    room_id: &RoomId,
    parent: Option<(i64, i64)>,
    entries: &[(i64, i64)],
) -> sqlx::Result<i64> {
    let (parent_id, chain_len) = match parent {
        Some((id, len)) => (Some(id), len + 1),
        None => (None, 0),
    };
    let group_id: i64 = sqlx::query(
        "INSERT INTO state_groups (room_id, parent, chain_len) VALUES ($1, $2, $3) RETURNING group_id",
    )
    .bind(room_id.as_str())
    .bind(parent_id)
    .bind(chain_len)
    .fetch_one(&mut *conn)
    .await?
    .try_get("group_id")?;
    for chunk in entries.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO state_group_entries (group_id, state_key_nid, event_nid) VALUES {}",
            super::row_values(conn, chunk.len(), 3)
        );
        let mut query = sqlx::query(&sql);
        for (key_nid, event_nid) in chunk {
            query = query.bind(group_id).bind(*key_nid).bind(*event_nid);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(group_id)
}

/// The full state of a group: its chain read in one recursive query, nearer links overriding.
pub async fn load_group(conn: &mut Conn, group_id: i64) -> sqlx::Result<Vec<StateEntry>> {
    Ok(load_groups(conn, &[group_id]).await?.remove(&group_id).unwrap_or_default())
}

/// The full state of each of `groups` (absent: unknown groups), their chains read in one
/// recursive query per [`IDS_PER_STATEMENT`] groups.
pub async fn load_groups(conn: &mut Conn, groups: &[i64]) -> sqlx::Result<HashMap<i64, Vec<StateEntry>>> {
    // `(group, level, key, entry)`: applied per group furthest ancestor first, so that nearer
    // links override (sorted here, not in SQL, where the sort spilled to temporary files).
    let mut rows = Vec::new();
    for chunk in groups.chunks(IDS_PER_STATEMENT) {
        let sql = format!(
            "WITH RECURSIVE chain (root, group_id, parent, lvl) AS ( \
                 SELECT group_id, group_id, parent, 0 FROM state_groups WHERE group_id IN ({}) \
                 UNION ALL \
                 SELECT c.root, g.group_id, g.parent, c.lvl + 1 FROM state_groups g \
                 JOIN chain c ON g.group_id = c.parent \
             ) \
             SELECT c.root, c.lvl, k.state_key_nid, k.type, k.state_key, e.event_nid, e.event_id \
             FROM chain c \
             JOIN state_group_entries s ON s.group_id = c.group_id \
             JOIN state_keys k ON k.state_key_nid = s.state_key_nid \
             JOIN events e ON e.event_nid = s.event_nid",
            Params::new(conn).list(chunk.len())
        );
        let mut query = sqlx::query(&sql);
        for group in chunk {
            query = query.bind(*group);
        }
        for row in query.fetch_all(&mut *conn).await? {
            let entry = StateEntry {
                kind: row.try_get("type")?,
                state_key: row.try_get("state_key")?,
                event_nid: row.try_get("event_nid")?,
                event_id: row.try_get("event_id")?,
            };
            let (group, level): (i64, i64) = (row.try_get("root")?, row.try_get("lvl")?);
            rows.push((group, level, row.try_get::<i64, _>("state_key_nid")?, entry));
        }
    }
    rows.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| b.1.cmp(&a.1)));
    let mut by_group: HashMap<i64, HashMap<i64, StateEntry>> = HashMap::new();
    for (group, _, key, entry) in rows {
        by_group.entry(group).or_default().insert(key, entry);
    }
    Ok(by_group.into_iter().map(|(group, entries)| (group, entries.into_values().collect())).collect())
}

/// Sets one entry of a room's current state to the event `event_nid` at stream position
/// `stream_ordering` (see [`set_current_many`]).
pub async fn set_current(
    conn: &mut Conn,
    room_id: &RoomId,
    kind: &str,
    state_key: &str,
    position: (i64, i64),
    membership: Option<&str>,
) -> sqlx::Result<()> {
    set_current_many(conn, room_id, &[CurrentEntry { kind, state_key, position, membership }]).await
}

/// One entry of a room's current state to set.
#[derive(Clone, Copy, Debug)]
pub struct CurrentEntry<'a> {
    /// Event type.
    pub kind: &'a str,
    /// State key.
    pub state_key: &'a str,
    /// The event: `(event_nid, stream_ordering)`.
    pub position: (i64, i64),
    /// For a member event, its membership.
    pub membership: Option<&'a str>,
}

/// Sets entries of a room's current state, a statement per [`ROWS_PER_STATEMENT`] entries. A
/// member entry remembers where its run of `join` began (`joined_at`): from a join to a join (a
/// profile change) it is kept.
pub async fn set_current_many(
    conn: &mut Conn,
    room_id: &RoomId,
    entries: &[CurrentEntry<'_>],
) -> sqlx::Result<()> {
    for chunk in entries.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO current_state (room_id, type, state_key, event_nid, membership, joined_at) \
             VALUES {} \
             ON CONFLICT (room_id, type, state_key) DO UPDATE SET event_nid = excluded.event_nid, \
             membership = excluded.membership, joined_at = CASE \
               WHEN excluded.membership = 'join' AND current_state.membership = 'join' THEN current_state.joined_at \
               ELSE excluded.joined_at END",
            super::row_values(conn, chunk.len(), 6)
        );
        let mut query = sqlx::query(&sql);
        for entry in chunk {
            let (event_nid, stream_ordering) = entry.position;
            let joined_at = (entry.membership == Some("join")).then_some(stream_ordering);
            query = query
                .bind(room_id.as_str())
                .bind(entry.kind)
                .bind(entry.state_key)
                .bind(event_nid)
                .bind(entry.membership)
                .bind(joined_at);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Removes one entry of a room's current state (state resolution dropped it).
pub async fn delete_current<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    room_id: &RoomId,
    kind: &str,
    state_key: &str,
) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM current_state WHERE room_id = $1 AND type = $2 AND state_key = $3")
        .bind(room_id.as_str())
        .bind(kind)
        .bind(state_key)
        .execute(executor)
        .await?;
    Ok(())
}

/// The current state event ID at `(type, state_key)`.
pub async fn current_event_id<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    room_id: &RoomId,
    kind: &str,
    state_key: &str,
) -> sqlx::Result<Option<String>> {
    let row = sqlx::query(
        "SELECT e.event_id FROM current_state c JOIN events e ON e.event_nid = c.event_nid \
         WHERE c.room_id = $1 AND c.type = $2 AND c.state_key = $3",
    )
    .bind(room_id.as_str())
    .bind(kind)
    .bind(state_key)
    .fetch_optional(executor)
    .await?;
    row.map(|r| r.try_get("event_id")).transpose()
}

/// Whether a user of `server` is joined to the room. Stops at the first one: every join of a
/// local user asks, and reading all members made each join cost the room's size.
pub async fn has_joined_member_of<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    room_id: &RoomId,
    server: &ruma::ServerName,
) -> sqlx::Result<bool> {
    // A user ID ends in `:server` (its server name is all after the first colon, and a
    // localpart has none). `substr` and `length` mean the same on both engines; `LIKE` does
    // not (SQLite's ignores case).
    let suffix = format!(":{server}");
    let row = sqlx::query(
        "SELECT 1 AS found FROM current_state WHERE room_id = $1 AND type = 'm.room.member' \
         AND membership = 'join' AND substr(state_key, CAST(length(state_key) - $2 + 1 AS INTEGER)) = $3 LIMIT 1",
    )
    .bind(room_id.as_str())
    .bind(i64::try_from(suffix.chars().count()).unwrap_or(i64::MAX))
    .bind(&suffix)
    .fetch_optional(executor)
    .await?;
    Ok(row.is_some())
}

/// A user's current membership in a room (`join`, `invite`, `leave`, `ban`, `knock`).
pub async fn membership<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    room_id: &RoomId,
    user_id: &str,
) -> sqlx::Result<Option<String>> {
    let row = sqlx::query(
        "SELECT membership FROM current_state WHERE room_id = $1 AND type = 'm.room.member' AND state_key = $2",
    )
    .bind(room_id.as_str())
    .bind(user_id)
    .fetch_optional(executor)
    .await?;
    Ok(row.map(|r| r.try_get("membership")).transpose()?.flatten())
}

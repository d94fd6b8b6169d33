//! Room state storage: interned `(type, state_key)` pairs, state groups stored as deltas against
//! a parent (a full snapshot every [`MAX_CHAIN`] links), and the `current_state` table.

use std::collections::HashMap;

use ruma::RoomId;
use sqlx::{Executor, Row};

use super::{Conn, IDS_PER_STATEMENT, Params};

/// Longest delta chain before a full snapshot is written.
pub const MAX_CHAIN: i64 = 16;

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
    for (key_nid, event_nid) in entries {
        sqlx::query(
            "INSERT INTO state_group_entries (group_id, state_key_nid, event_nid) VALUES ($1, $2, $3)",
        )
        .bind(group_id)
        .bind(key_nid)
        .bind(event_nid)
        .execute(&mut *conn)
        .await?;
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
/// `stream_ordering`. A member entry remembers where its run of `join` began (`joined_at`):
/// from a join to a join (a profile change) it is kept.
pub async fn set_current(
    conn: &mut Conn,
    room_id: &RoomId,
    kind: &str,
    state_key: &str,
    (event_nid, stream_ordering): (i64, i64),
    membership: Option<&str>,
) -> sqlx::Result<()> {
    let joined_at = (membership == Some("join")).then_some(stream_ordering);
    sqlx::query(
        "INSERT INTO current_state (room_id, type, state_key, event_nid, membership, joined_at) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (room_id, type, state_key) DO UPDATE SET event_nid = excluded.event_nid, \
         membership = excluded.membership, joined_at = CASE \
           WHEN excluded.membership = 'join' AND current_state.membership = 'join' THEN current_state.joined_at \
           ELSE excluded.joined_at END",
    )
    .bind(room_id.as_str())
    .bind(kind)
    .bind(state_key)
    .bind(event_nid)
    .bind(membership)
    .bind(joined_at)
    .execute(conn)
    .await?;
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

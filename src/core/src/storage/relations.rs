//! The `event_relations` table: which event relates to which, by `m.relates_to` (spec:
//! Client-Server API › Forming relationships between events), and the queries that aggregate
//! and page through children.

use ruma::RoomId;
use sqlx::{Executor, Row};

use super::{
    Conn, IDS_PER_STATEMENT, Params,
    events::{COLUMNS, StoredEvent, from_row},
    placeholders,
};

/// Only events in the timeline take part in relations.
const VISIBLE: &str = "outlier = 0 AND rejected = 0 AND soft_failed = 0";

/// `$first, $first+1, …` for `count` parameters, for `IN (…)` lists.
/// A relation of a new child event.
#[derive(Clone, Copy, Debug)]
pub struct NewRelation<'a> {
    /// The child's interned ID.
    pub event_nid: i64,
    /// The room of both events.
    pub room_id: &'a RoomId,
    /// The parent's event ID.
    pub parent_id: &'a str,
    /// `rel_type`.
    pub rel_type: &'a str,
    /// `key`, for annotations.
    pub key: Option<&'a str>,
}

/// Records a relation.
pub async fn insert(conn: &mut Conn, relation: &NewRelation<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO event_relations (event_nid, room_id, parent_id, rel_type, aggregation_key) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (event_nid) DO NOTHING",
    )
    .bind(relation.event_nid)
    .bind(relation.room_id.as_str())
    .bind(relation.parent_id)
    .bind(relation.rel_type)
    .bind(relation.key)
    .execute(conn)
    .await?;
    Ok(())
}

/// Forgets the relation of a child (once it is redacted, the relation is broken).
pub async fn remove(conn: &mut Conn, event_nid: i64) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM event_relations WHERE event_nid = $1").bind(event_nid).execute(conn).await?;
    Ok(())
}

/// The `rel_type` of the relation `event_id` itself has, if any.
pub async fn rel_type_of<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    event_id: &str,
) -> sqlx::Result<Option<String>> {
    let row = sqlx::query(
        "SELECT rel_type FROM event_relations \
         WHERE event_nid = (SELECT event_nid FROM events WHERE event_id = $1)",
    )
    .bind(event_id)
    .fetch_optional(executor)
    .await?;
    row.map(|r| r.try_get("rel_type")).transpose()
}

/// How many children of each of `rel_types` each parent has: `(parent_id, rel_type, count)`.
pub async fn counts(
    conn: &mut Conn,
    parent_ids: &[&str],
    rel_types: &[&str],
) -> sqlx::Result<Vec<(String, String, i64)>> {
    let mut counts = Vec::new();
    if rel_types.is_empty() {
        return Ok(counts);
    }
    for chunk in parent_ids.chunks(IDS_PER_STATEMENT) {
        let mut params = Params::new(conn);
        let sql = format!(
            "SELECT parent_id, rel_type, COUNT(*) AS n FROM event_relations WHERE parent_id IN ({}) \
             AND rel_type IN ({}) GROUP BY parent_id, rel_type",
            params.list(chunk.len()),
            params.list(rel_types.len()),
        );
        let mut query = sqlx::query(&sql);
        for id in chunk.iter().chain(rel_types) {
            query = query.bind(*id);
        }
        for r in query.fetch_all(&mut *conn).await? {
            counts.push((r.try_get("parent_id")?, r.try_get("rel_type")?, r.try_get("n")?));
        }
    }
    Ok(counts)
}

/// Which children to page through.
#[derive(Clone, Copy, Debug)]
pub struct ChildFilter<'a> {
    /// The room of the parents.
    pub room_id: &'a RoomId,
    /// Only this `rel_type`.
    pub rel_type: Option<&'a str>,
    /// Only this event type.
    pub event_type: Option<&'a str>,
}

/// The IDs of the children of `parent_ids` that pass `filter`.
pub async fn child_ids(
    conn: &mut Conn,
    parent_ids: &[String],
    filter: ChildFilter<'_>,
) -> sqlx::Result<Vec<String>> {
    if parent_ids.is_empty() {
        return Ok(Vec::new());
    }
    let (sql, binds) = children_sql("event_id", parent_ids, filter);
    let mut query = sqlx::query(&sql);
    for value in &binds {
        query = query.bind(value.as_str());
    }
    let rows = query.fetch_all(conn).await?;
    rows.into_iter().map(|r| r.try_get("event_id")).collect()
}

/// A page of children of `parent_ids`, with stream positions strictly between `after` and
/// `before`, newest first when `backwards`.
pub async fn children(
    conn: &mut Conn,
    parent_ids: &[String],
    filter: ChildFilter<'_>,
    (after, before): (i64, i64),
    backwards: bool,
    limit: i64,
) -> sqlx::Result<Vec<StoredEvent>> {
    if parent_ids.is_empty() {
        return Ok(Vec::new());
    }
    let (mut sql, binds) = children_sql(COLUMNS, parent_ids, filter);
    let n = binds.len();
    let order = if backwards { "DESC" } else { "ASC" };
    sql.push_str(&format!(
        " AND stream_ordering > ${} AND stream_ordering < ${} ORDER BY stream_ordering {order} LIMIT ${}",
        n + 1,
        n + 2,
        n + 3
    ));
    let mut query = sqlx::query(&sql);
    for value in &binds {
        query = query.bind(value.as_str());
    }
    let rows = query.bind(after).bind(before).bind(limit).fetch_all(conn).await?;
    rows.into_iter().map(from_row).collect()
}

/// `SELECT columns FROM events WHERE <child of parent_ids passing filter>` and its parameters.
fn children_sql(columns: &str, parent_ids: &[String], filter: ChildFilter<'_>) -> (String, Vec<String>) {
    let mut binds = vec![filter.room_id.to_string()];
    binds.extend(parent_ids.iter().cloned());
    let mut relation = format!(
        "SELECT event_nid FROM event_relations WHERE room_id = $1 AND parent_id IN ({})",
        placeholders(2, parent_ids.len())
    );
    if let Some(rel_type) = filter.rel_type {
        binds.push(rel_type.to_owned());
        relation.push_str(&format!(" AND rel_type = ${}", binds.len()));
    }
    let mut sql = format!("SELECT {columns} FROM events WHERE event_nid IN ({relation}) AND {VISIBLE}");
    if let Some(event_type) = filter.event_type {
        binds.push(event_type.to_owned());
        sql.push_str(&format!(" AND type = ${}", binds.len()));
    }
    (sql, binds)
}

/// The latest event of a thread (topologically, then by arrival).
pub async fn latest_in_thread<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    root_id: &str,
) -> sqlx::Result<Option<StoredEvent>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM events WHERE event_nid IN \
         (SELECT event_nid FROM event_relations WHERE parent_id = $1 AND rel_type = 'm.thread') \
         AND {VISIBLE} ORDER BY depth DESC, stream_ordering DESC LIMIT 1"
    );
    sqlx::query(&sql).bind(root_id).fetch_optional(executor).await?.map(from_row).transpose()
}

/// Whether `user_id` sent an event into the thread rooted at `root_id`.
pub async fn sent_in_thread<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    root_id: &str,
    user_id: &str,
) -> sqlx::Result<bool> {
    let sql = format!(
        "SELECT 1 AS found FROM events WHERE event_nid IN \
         (SELECT event_nid FROM event_relations WHERE parent_id = $1 AND rel_type = 'm.thread') \
         AND sender = $2 AND {VISIBLE} LIMIT 1"
    );
    Ok(sqlx::query(&sql).bind(root_id).bind(user_id).fetch_optional(executor).await?.is_some())
}

/// Candidate replacements of `parent_id` by `sender` of `event_type`, most recent first
/// (`origin_server_ts`, then the larger event ID).
pub async fn replacements<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    parent_id: &str,
    sender: &str,
    event_type: &str,
    limit: i64,
) -> sqlx::Result<Vec<StoredEvent>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM events WHERE event_nid IN \
         (SELECT event_nid FROM event_relations WHERE parent_id = $1 AND rel_type = 'm.replace') \
         AND sender = $2 AND type = $3 AND state_key IS NULL AND {VISIBLE} \
         ORDER BY origin_server_ts DESC, event_id DESC LIMIT $4"
    );
    let rows = sqlx::query(&sql)
        .bind(parent_id)
        .bind(sender)
        .bind(event_type)
        .bind(limit)
        .fetch_all(executor)
        .await?;
    rows.into_iter().map(from_row).collect()
}

/// IDs of the events that `m.reference` `parent_id`, oldest first.
pub async fn references<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    parent_id: &str,
    limit: i64,
) -> sqlx::Result<Vec<String>> {
    let sql = format!(
        "SELECT event_id FROM events WHERE event_nid IN \
         (SELECT event_nid FROM event_relations WHERE parent_id = $1 AND rel_type = 'm.reference') \
         AND {VISIBLE} ORDER BY stream_ordering LIMIT $2"
    );
    let rows = sqlx::query(&sql).bind(parent_id).bind(limit).fetch_all(executor).await?;
    rows.into_iter().map(|r| r.try_get("event_id")).collect()
}

/// Whether `sender` already annotated `parent_id` with `key` in an event of `event_type`.
pub async fn has_annotation<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    parent_id: &str,
    sender: &str,
    event_type: &str,
    key: &str,
) -> sqlx::Result<bool> {
    let sql = format!(
        "SELECT 1 AS found FROM events WHERE event_nid IN \
         (SELECT event_nid FROM event_relations WHERE parent_id = $1 AND rel_type = 'm.annotation' \
          AND aggregation_key = $2) AND sender = $3 AND type = $4 AND {VISIBLE} LIMIT 1"
    );
    let row =
        sqlx::query(&sql).bind(parent_id).bind(key).bind(sender).bind(event_type).fetch_optional(executor);
    Ok(row.await?.is_some())
}

/// Thread roots of a room whose latest thread event is before stream position `before`, most
/// recently active first: `(root_id, latest stream position)`. With `participant`, only threads
/// that user started or sent into.
pub async fn thread_roots<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    room_id: &RoomId,
    participant: Option<&str>,
    before: i64,
    limit: i64,
) -> sqlx::Result<Vec<(String, i64)>> {
    let participated = if participant.is_some() {
        " AND (MAX(CASE WHEN e.sender = $4 THEN 1 ELSE 0 END) = 1 OR EXISTS \
         (SELECT 1 FROM events root WHERE root.event_id = r.parent_id AND root.sender = $4))"
    } else {
        ""
    };
    let sql = format!(
        "SELECT r.parent_id, MAX(e.stream_ordering) AS latest FROM event_relations r \
         JOIN events e ON e.event_nid = r.event_nid \
         WHERE r.room_id = $1 AND r.rel_type = 'm.thread' AND e.outlier = 0 AND e.rejected = 0 \
         AND e.soft_failed = 0 GROUP BY r.parent_id HAVING MAX(e.stream_ordering) < $2{participated} \
         ORDER BY latest DESC LIMIT $3"
    );
    let mut query = sqlx::query(&sql).bind(room_id.as_str()).bind(before).bind(limit);
    if let Some(user) = participant {
        query = query.bind(user);
    }
    let rows = query.fetch_all(executor).await?;
    rows.into_iter().map(|r| Ok((r.try_get("parent_id")?, r.try_get("latest")?))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_from_the_first() {
        assert_eq!(placeholders(2, 3), "$2, $3, $4");
        assert_eq!(placeholders(1, 0), "");
    }
}

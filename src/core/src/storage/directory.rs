//! The public room directory: which rooms are listed, in what order, and the few state events
//! each listing shows, read from `current_state` in a fixed number of queries per page.

use sqlx::{Row, any::AnyRow};

use super::{Backend, Conn};

/// The state events a directory entry is built from (all with an empty state key).
pub const SUMMARY_TYPES: [&str; 8] = [
    "m.room.create",
    "m.room.name",
    "m.room.topic",
    "m.room.canonical_alias",
    "m.room.avatar",
    "m.room.join_rules",
    "m.room.history_visibility",
    "m.room.guest_access",
];

/// A listed room and its joined-member count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    /// The room.
    pub room_id: String,
    /// How many users are joined.
    pub joined: i64,
}

/// One summary state event of a listed room.
#[derive(Clone, Debug)]
pub struct SummaryEvent {
    /// The room.
    pub room_id: String,
    /// The event type (one of [`SUMMARY_TYPES`]).
    pub kind: String,
    /// The event's canonical JSON.
    pub json: String,
}

/// `AND …` matching rooms whose name, topic or canonical alias contains the bound pattern
/// `$param` (already lower-cased, `LIKE`-escaped with `\` and wrapped in `%`).
fn search_clause(backend: Backend, param: usize) -> String {
    let text = ["name", "topic", "alias"]
        .map(|field| format!("COALESCE({}, '')", super::content_field(backend, "e", field)))
        .join(" || ' ' || ");
    format!(
        " AND EXISTS (SELECT 1 FROM current_state c JOIN events e ON e.event_nid = c.event_nid \
         WHERE c.room_id = r.room_id AND c.state_key = '' \
         AND c.type IN ('m.room.name', 'm.room.topic', 'm.room.canonical_alias') \
         AND LOWER({text}) LIKE ${param} ESCAPE '\\')"
    )
}

/// Turns a search term into a case-insensitive `LIKE` pattern matching it anywhere.
/// (SQLite's `LOWER` folds ASCII only, so non-ASCII capitals match only on PostgreSQL.)
pub fn like_pattern(term: &str) -> String {
    format!("%{}%", super::escape_like(&term.to_lowercase()))
}

/// How many rooms are listed (matching `pattern`, if given).
pub async fn count(conn: &mut Conn, backend: Backend, pattern: Option<&str>) -> sqlx::Result<i64> {
    let search = pattern.map(|_| search_clause(backend, 1)).unwrap_or_default();
    let sql = format!("SELECT COUNT(*) AS n FROM rooms r WHERE r.is_public = 1{search}");
    let mut query = sqlx::query(&sql);
    if let Some(pattern) = pattern {
        query = query.bind(pattern);
    }
    query.fetch_one(conn).await?.try_get("n")
}

/// A page of listed rooms (matching `pattern`, if given), most joined members first, then by
/// room ID so the order is stable between pages.
pub async fn page(
    conn: &mut Conn,
    backend: Backend,
    pattern: Option<&str>,
    limit: i64,
    offset: i64,
) -> sqlx::Result<Vec<Listed>> {
    let search = pattern.map(|_| search_clause(backend, 3)).unwrap_or_default();
    let sql = format!(
        "SELECT r.room_id, (SELECT COUNT(*) FROM current_state m WHERE m.room_id = r.room_id \
         AND m.type = 'm.room.member' AND m.membership = 'join') AS joined \
         FROM rooms r WHERE r.is_public = 1{search} \
         ORDER BY joined DESC, r.room_id LIMIT $1 OFFSET $2"
    );
    let mut query = sqlx::query(&sql).bind(limit).bind(offset);
    if let Some(pattern) = pattern {
        query = query.bind(pattern);
    }
    let rows = query.fetch_all(conn).await?;
    rows.into_iter()
        .map(|r| Ok(Listed { room_id: r.try_get("room_id")?, joined: r.try_get("joined")? }))
        .collect()
}

/// The current [`SUMMARY_TYPES`] events of `room_ids`, in one query.
pub async fn summary_events(conn: &mut Conn, room_ids: &[String]) -> sqlx::Result<Vec<SummaryEvent>> {
    if room_ids.is_empty() {
        return Ok(Vec::new());
    }
    let types = SUMMARY_TYPES.map(|t| format!("'{t}'")).join(", ");
    let placeholders: Vec<String> = (1..=room_ids.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT c.room_id, c.type, e.json FROM current_state c JOIN events e ON e.event_nid = c.event_nid \
         WHERE c.state_key = '' AND c.type IN ({types}) AND c.room_id IN ({})",
        placeholders.join(", ")
    );
    let mut query = sqlx::query(&sql);
    for room_id in room_ids {
        query = query.bind(room_id);
    }
    query.fetch_all(conn).await?.into_iter().map(summary_from_row).collect()
}

fn summary_from_row(row: AnyRow) -> sqlx::Result<SummaryEvent> {
    Ok(SummaryEvent {
        room_id: row.try_get("room_id")?,
        kind: row.try_get("type")?,
        json: row.try_get("json")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_terms_become_escaped_lower_case_patterns() {
        assert_eq!(like_pattern("Tea"), "%tea%");
        assert_eq!(like_pattern("50%_off\\"), "%50\\%\\_off\\\\%");
    }
}

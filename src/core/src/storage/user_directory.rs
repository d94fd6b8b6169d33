//! The user directory query (`POST /user_directory/search`), answered from `current_state`: the
//! users joined to a room the searcher is joined to, or to a public room (join rule `public` or
//! history visibility `world_readable`), whose user ID or display name in one of those rooms
//! matches every word of the search. No table of its own: membership and profile changes are
//! member events, which `current_state` already follows.

use sqlx::{Executor, Row};

use super::{Backend, content_field, escape_like};

/// A user the searcher may find.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The user ID.
    pub user_id: String,
    /// A display name of theirs, from a member event in a visible room.
    pub display_name: Option<String>,
    /// An avatar of theirs, likewise.
    pub avatar_url: Option<String>,
}

/// Up to `limit` users visible to `searcher` matching every one of `words` (lower-case, each a
/// prefix of the user ID's localpart or of a word of the display name), by user ID.
pub async fn search<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    backend: Backend,
    searcher: &str,
    words: &[String],
    limit: i64,
) -> sqlx::Result<Vec<Entry>> {
    let name = format!("LOWER(COALESCE({}, ''))", content_field(backend, "e", "displayname"));
    let mut clauses = Vec::with_capacity(words.len());
    for i in 0..words.len() {
        let p = 3 + 3 * i;
        clauses.push(format!(
            " AND (LOWER(c.state_key) LIKE ${} ESCAPE '\\' OR {name} LIKE ${} ESCAPE '\\' OR {name} LIKE ${} ESCAPE '\\')",
            p,
            p + 1,
            p + 2
        ));
    }
    let sql = format!(
        "SELECT c.state_key AS user_id, MIN({}) AS display_name, MIN({}) AS avatar_url \
         FROM current_state c JOIN events e ON e.event_nid = c.event_nid \
         WHERE c.type = 'm.room.member' AND c.membership = 'join' AND c.room_id IN ( \
             SELECT room_id FROM current_state WHERE type = 'm.room.member' AND state_key = $1 \
             AND membership = 'join' \
             UNION SELECT v.room_id FROM current_state v JOIN events ve ON ve.event_nid = v.event_nid \
             WHERE v.state_key = '' AND ((v.type = 'm.room.join_rules' AND {} = 'public') \
             OR (v.type = 'm.room.history_visibility' AND {} = 'world_readable'))){} \
         GROUP BY c.state_key ORDER BY c.state_key LIMIT $2",
        content_field(backend, "e", "displayname"),
        content_field(backend, "e", "avatar_url"),
        content_field(backend, "ve", "join_rule"),
        content_field(backend, "ve", "history_visibility"),
        clauses.concat(),
    );
    let mut query = sqlx::query(&sql).bind(searcher).bind(limit);
    for word in words {
        let escaped = escape_like(word);
        query = query.bind(format!("@{escaped}%")).bind(format!("{escaped}%")).bind(format!("% {escaped}%"));
    }
    let rows = query.fetch_all(executor).await?;
    rows.into_iter()
        .map(|row| {
            Ok(Entry {
                user_id: row.try_get("user_id")?,
                display_name: row.try_get("display_name")?,
                avatar_url: row.try_get("avatar_url")?,
            })
        })
        .collect()
}

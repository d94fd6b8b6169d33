//! The full-text index behind `POST /search` (`event_search`): SQLite FTS5 (contentless, rowid =
//! stream position, ranked by `bm25`) or a PostgreSQL `tsvector` with a GIN index (ranked by
//! `ts_rank`). The words come already normalised (`search::index`), so both engines match the
//! same tokens; every query word matches as a prefix.
//!
//! Every filter is answered by the index alone: PostgreSQL keeps room, sender and type beside the
//! words; SQLite keeps them as hashed tokens in a second FTS column (`meta`), so the room
//! restriction is part of the full-text query and FTS5 intersects the word's and the rooms'
//! posting lists instead of looking every hit up. Only the page's rows are joined to `events`.
//! Rooms the searcher may read only in part (history visibility, a leave) get one more query
//! branch each, with their readable ranges of stream positions.

use sha2::{Digest, Sha256};
use sqlx::{Executor, Row, any::AnyRow};

use super::{
    Backend, Conn,
    events::{COLUMNS, StoredEvent, from_row},
};

/// How many event types the index holds (`search::index::KEYS`).
pub const INDEXED_TYPES: usize = 3;

/// The order results come in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// Best match first (then newest first).
    Rank,
    /// Newest first.
    Recent,
}

/// The last result a previous page ended with; the next page starts after it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Cursor {
    /// Its score (used by [`Order::Rank`]).
    pub score: f64,
    /// Its stream position.
    pub stream_ordering: i64,
}

/// One room the searcher may read, and which of its stream positions (inclusive ranges).
#[derive(Clone, Debug)]
pub struct RoomScope {
    /// The room.
    pub room_id: String,
    /// Sorted, disjoint ranges of stream positions the searcher may read.
    pub ranges: Vec<(i64, i64)>,
}

/// What to look for and where.
#[derive(Clone, Debug)]
pub struct Query<'a> {
    /// Normalised words; all must match (each as a prefix). Not empty.
    pub words: &'a [String],
    /// The event types to search (a subset of the indexed ones). Not empty.
    pub types: &'a [&'a str],
    /// The rooms and positions the searcher may read. Not empty.
    pub rooms: &'a [RoomScope],
    /// Only events from these senders, if given.
    pub senders: Option<&'a [String]>,
    /// Never events from these senders (ignored users, `not_senders`).
    pub not_senders: &'a [String],
    /// The newest stream position looked at, so that paging sees a fixed set of events.
    pub upto: i64,
}

/// A matching event and its score (higher is better).
#[derive(Clone, Debug)]
pub struct Hit {
    /// How well it matches; higher is closer.
    pub score: f64,
    /// The event.
    pub event: StoredEvent,
}

/// An event to index.
#[derive(Clone, Copy, Debug)]
pub struct Entry<'a> {
    /// Its stream position.
    pub stream_ordering: i64,
    /// Its room.
    pub room_id: &'a str,
    /// Its sender.
    pub sender: &'a str,
    /// Its type.
    pub kind: &'a str,
    /// Its normalised words, space-separated.
    pub words: &'a str,
}

/// Adds events to the index, in one statement.
pub async fn insert_many(conn: &mut Conn, backend: Backend, entries: &[Entry<'_>]) -> sqlx::Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let mut sql = Sql::default();
    let mut values = Vec::with_capacity(entries.len());
    for entry in entries {
        let position = sql.bind(Arg::Int(entry.stream_ordering));
        values.push(match backend {
            Backend::Sqlite => {
                let meta = [room_token(entry.room_id), sender_token(entry.sender), type_token(entry.kind)];
                let meta = sql.bind(Arg::Text(meta.join(" ")));
                format!("({position}, {}, {meta})", sql.bind(Arg::Text(entry.words.to_owned())))
            }
            Backend::Postgres => format!(
                "({position}, {}, {}, {}, to_tsvector('simple', {}))",
                sql.bind(Arg::Text(entry.room_id.to_owned())),
                sql.bind(Arg::Text(entry.sender.to_owned())),
                sql.bind(Arg::Text(entry.kind.to_owned())),
                sql.bind(Arg::Text(entry.words.to_owned())),
            ),
        });
    }
    let columns = match backend {
        Backend::Sqlite => "rowid, words, meta",
        Backend::Postgres => "stream_ordering, room_id, sender, type, words",
    };
    let text = format!("INSERT INTO event_search ({columns}) VALUES {}", values.join(", "));
    sql.query(&text).execute(conn).await?;
    Ok(())
}

/// Takes the event at stream position `position` out of the index (it was redacted).
pub async fn remove(conn: &mut Conn, backend: Backend, position: i64) -> sqlx::Result<()> {
    let sql = match backend {
        Backend::Sqlite => "DELETE FROM event_search WHERE rowid = $1",
        Backend::Postgres => "DELETE FROM event_search WHERE stream_ordering = $1",
    };
    sqlx::query(sql).bind(position).execute(conn).await?;
    Ok(())
}

/// Up to `limit` matching events in `order`, after `after` if given.
pub async fn page<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    backend: Backend,
    query: &Query<'_>,
    order: Order,
    after: Option<Cursor>,
    limit: i64,
) -> sqlx::Result<Vec<Hit>> {
    let mut sql = Sql::default();
    let limit = sql.bind(Arg::Int(limit));
    let page = Page { order, after, limit: Some(&limit) };
    let hits = match backend {
        Backend::Sqlite => sqlite_hits(&mut sql, query, &page),
        Backend::Postgres => postgres_hits(&mut sql, query, &page),
    };
    let columns: Vec<String> = COLUMNS.split(", ").map(|c| format!("e.{c}")).collect();
    let text = format!(
        // CROSS JOIN keeps the page as SQLite's outer loop (else it may walk `events`).
        "SELECT {}, h.score FROM ({hits} ORDER BY {order} LIMIT {limit}) h \
         CROSS JOIN events e WHERE e.stream_ordering = h.pos ORDER BY {order}",
        columns.join(", "),
        order = order_by(order),
    );
    let rows = sql.query(&text).fetch_all(executor).await?;
    rows.into_iter().map(hit_from_row).collect()
}

/// How many events match (ignoring paging).
pub async fn count<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    backend: Backend,
    query: &Query<'_>,
) -> sqlx::Result<i64> {
    let mut sql = Sql::default();
    let page = Page { order: Order::Recent, after: None, limit: None };
    let hits = match backend {
        Backend::Sqlite => sqlite_hits(&mut sql, query, &page),
        Backend::Postgres => postgres_hits(&mut sql, query, &page),
    };
    let text = format!("SELECT COUNT(*) AS n FROM ({hits}) h");
    sql.query(&text).fetch_one(executor).await?.try_get("n")
}

fn hit_from_row(row: AnyRow) -> sqlx::Result<Hit> {
    let score = row.try_get("score")?;
    Ok(Hit { score, event: from_row(row)? })
}

/// Which part of the hits a query wants.
struct Page<'a> {
    order: Order,
    after: Option<Cursor>,
    /// The bound limit of each query branch, if any.
    limit: Option<&'a str>,
}

/// `ORDER BY` over hits (`pos`, `score`).
fn order_by(order: Order) -> &'static str {
    match order {
        Order::Recent => "pos DESC",
        Order::Rank => "score DESC, pos DESC",
    }
}

/// `AND …` resuming after `after`, given the score and position expressions.
fn resume(sql: &mut Sql, page: &Page<'_>, score: &str, position: &str) -> String {
    match (page.after, page.order) {
        (None, _) => String::new(),
        (Some(cursor), Order::Recent) => {
            format!(" AND {position} < {}", sql.bind(Arg::Int(cursor.stream_ordering)))
        }
        (Some(cursor), Order::Rank) => {
            let (s, p) = (sql.bind(Arg::Float(cursor.score)), sql.bind(Arg::Int(cursor.stream_ordering)));
            format!(" AND ({score} < {s} OR ({score} = {s} AND {position} < {p}))")
        }
    }
}

/// Rooms readable up to `upto` in full.
fn is_whole(room: &RoomScope, upto: i64) -> bool {
    matches!(room.ranges.as_slice(), [(low, high)] if *low <= 1 && *high >= upto)
}

/// SQLite: one FTS5 query for the rooms readable in full and one per room readable in part,
/// each cut to the page (FTS5 hands rows out by descending rowid without sorting, and ranks
/// without reading `events`), merged by `UNION ALL`. Hits are `(pos, score)`.
fn sqlite_hits(sql: &mut Sql, query: &Query<'_>, page: &Page<'_>) -> String {
    const SCORE: &str = "(-bm25(event_search, 1.0, 0.0))";
    let quoted =
        |tokens: Vec<String>| tokens.iter().map(|t| format!("\"{t}\"")).collect::<Vec<_>>().join(" OR ");
    // `"word"*`: a quoted token (no query syntax inside) matched as a prefix.
    let words: Vec<String> = query.words.iter().map(|w| format!("\"{w}\"*")).collect();
    let mut filters = format!("words : ({})", words.join(" AND "));
    // Every event carries a type token, so matching all of them would only cost time.
    if query.types.len() < INDEXED_TYPES {
        filters.push_str(&format!(
            " AND meta : ({})",
            quoted(query.types.iter().map(|t| type_token(t)).collect())
        ));
    }
    if let Some(senders) = query.senders {
        filters.push_str(&format!(
            " AND meta : ({})",
            quoted(senders.iter().map(|s| sender_token(s)).collect())
        ));
    }
    let not_senders = if query.not_senders.is_empty() {
        String::new()
    } else {
        format!(" NOT meta : ({})", quoted(query.not_senders.iter().map(|s| sender_token(s)).collect()))
    };
    let (whole, partial): (Vec<&RoomScope>, Vec<&RoomScope>) =
        query.rooms.iter().partition(|r| is_whole(r, query.upto));
    let mut branches = Vec::new();
    let groups = (!whole.is_empty()).then_some((whole, None)).into_iter();
    for (rooms, ranges) in groups.chain(partial.into_iter().map(|room| (vec![room], Some(&room.ranges)))) {
        let rooms = quoted(rooms.iter().map(|r| room_token(&r.room_id)).collect());
        let matches = sql.bind(Arg::Text(format!("({filters} AND meta : ({rooms})){not_senders}")));
        let upto = sql.bind(Arg::Int(query.upto));
        let mut condition = format!("event_search MATCH {matches} AND rowid <= {upto}");
        if let Some(ranges) = ranges {
            let ranges: Vec<String> = ranges
                .iter()
                .map(|(low, high)| {
                    format!("rowid BETWEEN {} AND {}", sql.bind(Arg::Int(*low)), sql.bind(Arg::Int(*high)))
                })
                .collect();
            condition.push_str(&format!(" AND ({})", ranges.join(" OR ")));
        }
        condition.push_str(&resume(sql, page, SCORE, "rowid"));
        let cut = page
            .limit
            .map(|limit| format!(" ORDER BY {} LIMIT {limit}", order_by(page.order)))
            .unwrap_or_default();
        branches.push(format!(
            "SELECT * FROM (SELECT rowid AS pos, {SCORE} AS score FROM event_search WHERE {condition}{cut})"
        ));
    }
    if branches.is_empty() {
        return "SELECT 0 AS pos, 0.0 AS score WHERE 1 = 0".to_owned();
    }
    branches.join(" UNION ALL ")
}

/// PostgreSQL: one query over `event_search`, whose copies of room, sender and type answer the
/// filters. Hits are `(pos, score)`.
fn postgres_hits(sql: &mut Sql, query: &Query<'_>, page: &Page<'_>) -> String {
    // Words hold letters and digits only, so they carry no tsquery syntax.
    let words: Vec<String> = query.words.iter().map(|w| format!("{w}:*")).collect();
    let tsquery = format!("to_tsquery('simple', {})", sql.bind(Arg::Text(words.join(" & "))));
    let score = format!("ts_rank(s.words, {tsquery})::float8");
    let mut condition =
        format!("s.words @@ {tsquery} AND s.stream_ordering <= {}", sql.bind(Arg::Int(query.upto)));
    let types = sql.list(query.types.iter().map(|t| (*t).to_owned()));
    condition.push_str(&format!(" AND s.type IN ({types})"));
    let mut rooms = Vec::new();
    let whole: Vec<String> =
        query.rooms.iter().filter(|r| is_whole(r, query.upto)).map(|r| r.room_id.clone()).collect();
    if !whole.is_empty() {
        rooms.push(format!("s.room_id IN ({})", sql.list(whole.into_iter())));
    }
    for room in query.rooms.iter().filter(|r| !is_whole(r, query.upto)) {
        let room_id = sql.bind(Arg::Text(room.room_id.clone()));
        let ranges: Vec<String> = room
            .ranges
            .iter()
            .map(|(low, high)| {
                format!(
                    "s.stream_ordering BETWEEN {} AND {}",
                    sql.bind(Arg::Int(*low)),
                    sql.bind(Arg::Int(*high))
                )
            })
            .collect();
        rooms.push(format!("(s.room_id = {room_id} AND ({}))", ranges.join(" OR ")));
    }
    condition.push_str(&format!(
        " AND ({})",
        if rooms.is_empty() { "1 = 0".to_owned() } else { rooms.join(" OR ") }
    ));
    if let Some(senders) = query.senders {
        condition.push_str(&format!(" AND s.sender IN ({})", sql.list(senders.iter().cloned())));
    }
    if !query.not_senders.is_empty() {
        condition
            .push_str(&format!(" AND s.sender NOT IN ({})", sql.list(query.not_senders.iter().cloned())));
    }
    condition.push_str(&resume(sql, page, &score, "s.stream_ordering"));
    format!("SELECT s.stream_ordering AS pos, {score} AS score FROM event_search s WHERE {condition}")
}

/// The `meta` token of a room: a hash, since room IDs are not FTS tokens. 128 bits leave no
/// practical chance that two rooms share one.
fn room_token(room_id: &str) -> String {
    format!("r{}", hash(room_id))
}

/// The `meta` token of a sender.
fn sender_token(sender: &str) -> String {
    format!("s{}", hash(sender))
}

/// The `meta` token of an event type: its letters and digits.
fn type_token(kind: &str) -> String {
    let letters: String = kind.chars().filter(char::is_ascii_alphanumeric).collect();
    format!("t{}", letters.to_ascii_lowercase())
}

fn hash(text: &str) -> String {
    hex::encode(&Sha256::digest(text.as_bytes())[..16])
}

/// A bound argument.
enum Arg {
    Text(String),
    Int(i64),
    Float(f64),
}

/// A statement's arguments, numbered as they are added.
#[derive(Default)]
struct Sql {
    args: Vec<Arg>,
}

impl Sql {
    /// Adds an argument; its placeholder.
    fn bind(&mut self, arg: Arg) -> String {
        self.args.push(arg);
        format!("${}", self.args.len())
    }

    /// Binds every value; their placeholders, comma-separated.
    fn list(&mut self, values: impl Iterator<Item = String>) -> String {
        values.map(|v| self.bind(Arg::Text(v))).collect::<Vec<_>>().join(", ")
    }

    /// The statement with every argument bound.
    fn query<'q>(&'q self, text: &'q str) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
        let mut query = sqlx::query(text);
        for arg in &self.args {
            query = match arg {
                Arg::Text(text) => query.bind(text.as_str()),
                Arg::Int(n) => query.bind(*n),
                Arg::Float(f) => query.bind(*f),
            };
        }
        query
    }
}

#[cfg(test)]
mod tests {
    use super::{room_token, type_token};

    #[test]
    fn meta_tokens_are_plain_fts_tokens() {
        assert_eq!(type_token("m.room.message"), "tmroommessage");
        let token = room_token("!abc:example.org");
        assert_eq!(token.len(), 33);
        assert!(token.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(token, room_token("!abd:example.org"));
    }
}

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

/// One room the searcher may read only in part, and which of its stream positions.
#[derive(Clone, Debug)]
pub struct RoomScope {
    /// The room.
    pub room_id: String,
    /// Sorted, disjoint ranges of stream positions the searcher may read.
    pub ranges: Vec<(i64, i64)>,
}

/// The rooms the searcher may read in full, named by whichever list is shorter: a user in most
/// rooms of the server searches the whole index but a few rooms, which costs the index far less
/// than naming every room (SQLite intersects the hits with each named room's posting list).
#[derive(Clone, Debug)]
pub enum WholeRooms {
    /// These rooms.
    Only(Vec<String>),
    /// Every room of the server except these.
    AllBut(Vec<String>),
}

/// What to look for and where.
#[derive(Clone, Debug)]
pub struct Query<'a> {
    /// Normalised words; all must match (each as a prefix). Not empty.
    pub words: &'a [String],
    /// The event types to search (a subset of the indexed ones). Not empty.
    pub types: &'a [&'a str],
    /// The rooms the searcher may read in full (up to `upto`).
    pub whole: &'a WholeRooms,
    /// The rooms the searcher may read only in part; none of them is in `whole`.
    pub partial: &'a [RoomScope],
    /// Only events from these senders, if given.
    pub senders: Option<&'a [String]>,
    /// Never events from these senders (ignored users, `not_senders`).
    pub not_senders: &'a [String],
    /// The newest stream position looked at, so that paging sees a fixed set of events.
    pub upto: i64,
}

/// The newest hits counted by [`count_newest`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counted {
    /// How many (at most the cap asked for).
    pub hits: i64,
    /// The oldest one's stream position; `None` when there is none.
    pub oldest: Option<i64>,
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

/// Up to `limit` matching events in `order`, after `after` if given. [`Order::Rank`] ranks the
/// newest `window` matches (all of them when there are fewer): scoring costs per match, so a
/// word in a large share of a big index could not be ranked in full within a request's time.
pub async fn page<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    backend: Backend,
    query: &Query<'_>,
    order: Order,
    after: Option<Cursor>,
    limit: i64,
    window: i64,
) -> sqlx::Result<Vec<Hit>> {
    let mut sql = Sql::default();
    let hits = match order {
        Order::Recent => {
            let limit = sql.bind(Arg::Int(limit));
            newest(&mut sql, backend, query, true, after.map(|c| c.stream_ordering), &limit)
        }
        Order::Rank => {
            let window = sql.bind(Arg::Int(window));
            let candidates = newest(&mut sql, backend, query, true, None, &window);
            let resume = match after {
                None => String::new(),
                Some(cursor) => {
                    let s = sql.bind(Arg::Float(cursor.score));
                    let p = sql.bind(Arg::Int(cursor.stream_ordering));
                    format!(" WHERE score < {s} OR (score = {s} AND pos < {p})")
                }
            };
            let limit = sql.bind(Arg::Int(limit));
            format!(
                "SELECT pos, score FROM ({candidates}) w{resume} ORDER BY {} LIMIT {limit}",
                order_by(order)
            )
        }
    };
    let columns: Vec<String> = COLUMNS.split(", ").map(|c| format!("e.{c}")).collect();
    let text = format!(
        // CROSS JOIN keeps the page as SQLite's outer loop (else it may walk `events`).
        "SELECT {}, h.score FROM ({hits}) h CROSS JOIN events e WHERE e.stream_ordering = h.pos \
         ORDER BY {order}",
        columns.join(", "),
        order = order_by(order),
    );
    let rows = sql.query(&text).fetch_all(executor).await?;
    rows.into_iter().map(hit_from_row).collect()
}

/// Counts the newest matching events, up to `cap` of them; the caller estimates beyond.
pub async fn count_newest<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    backend: Backend,
    query: &Query<'_>,
    cap: i64,
) -> sqlx::Result<Counted> {
    let mut sql = Sql::default();
    let cap = sql.bind(Arg::Int(cap));
    let hits = newest(&mut sql, backend, query, false, None, &cap);
    let text = format!("SELECT COUNT(*) AS n, MIN(pos) AS oldest FROM ({hits}) h");
    let row = sql.query(&text).fetch_one(executor).await?;
    Ok(Counted { hits: row.try_get("n")?, oldest: row.try_get("oldest")? })
}

fn hit_from_row(row: AnyRow) -> sqlx::Result<Hit> {
    let score = row.try_get("score")?;
    Ok(Hit { score, event: from_row(row)? })
}

/// `ORDER BY` over hits (`pos`, `score`).
fn order_by(order: Order) -> &'static str {
    match order {
        Order::Recent => "pos DESC",
        Order::Rank => "score DESC, pos DESC",
    }
}

/// The newest `n` (a bound placeholder) matching events below stream position `before` (if
/// given), newest first, as rows `(pos)` or, when `scored`, `(pos, score)`. Each query branch is
/// cut to `n` on its own, walking its index newest first and stopping there, then the branches
/// are merged.
fn newest(
    sql: &mut Sql,
    backend: Backend,
    query: &Query<'_>,
    scored: bool,
    before: Option<i64>,
    n: &str,
) -> String {
    let conditions = match backend {
        Backend::Sqlite => sqlite_branches(sql, query),
        Backend::Postgres => postgres_branches(sql, query),
    };
    let (table, position, score) = match backend {
        Backend::Sqlite => ("event_search", "rowid", SQLITE_SCORE.to_owned()),
        Backend::Postgres => ("event_search s", "s.stream_ordering", postgres_score(sql, query)),
    };
    let score = if scored { format!(", {score} AS score") } else { String::new() };
    let before = before.map(|b| format!(" AND {position} < {}", sql.bind(Arg::Int(b)))).unwrap_or_default();
    let branches: Vec<String> = conditions
        .iter()
        .map(|condition| {
            format!(
                "SELECT {position} AS pos{score} FROM {table} WHERE {condition}{before} \
                 ORDER BY {position} DESC LIMIT {n}"
            )
        })
        .collect();
    match branches.as_slice() {
        [] => format!("SELECT 0 AS pos{} WHERE 1 = 0", if scored { ", 0.0 AS score" } else { "" }),
        [one] => one.clone(),
        many => {
            let arms: Vec<String> =
                many.iter().enumerate().map(|(i, b)| format!("SELECT * FROM ({b}) b{i}")).collect();
            format!("SELECT * FROM ({}) u ORDER BY pos DESC LIMIT {n}", arms.join(" UNION ALL "))
        }
    }
}

/// SQLite's score: `bm25` over the words (the `meta` column weighs nothing), higher is better.
const SQLITE_SCORE: &str = "(-bm25(event_search, 1.0, 0.0))";

/// SQLite: the `WHERE` of each FTS5 query branch: one for the rooms readable in full, one per room
/// readable in part (with its ranges of positions). Every filter is part of the `MATCH`.
fn sqlite_branches(sql: &mut Sql, query: &Query<'_>) -> Vec<String> {
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
    let excluded: Vec<String> = query.not_senders.iter().map(|s| sender_token(s)).collect();
    let not = |mut excluded: Vec<String>, extra: &[String]| {
        excluded.extend(extra.iter().map(|r| room_token(r)));
        if excluded.is_empty() { String::new() } else { format!(" NOT meta : ({})", quoted(excluded)) }
    };
    let upto = sql.bind(Arg::Int(query.upto));
    let mut branches = Vec::new();
    let whole = match query.whole {
        WholeRooms::Only(rooms) if rooms.is_empty() => None,
        WholeRooms::Only(rooms) => Some(format!(
            "({filters} AND meta : ({})){}",
            quoted(rooms.iter().map(|r| room_token(r)).collect()),
            not(excluded.clone(), &[])
        )),
        WholeRooms::AllBut(rooms) => Some(format!("({filters}){}", not(excluded.clone(), rooms))),
    };
    if let Some(matches) = whole {
        branches.push(format!("event_search MATCH {} AND rowid <= {upto}", sql.bind(Arg::Text(matches))));
    }
    for room in query.partial {
        let matches = format!(
            "({filters} AND meta : (\"{}\")){}",
            room_token(&room.room_id),
            not(excluded.clone(), &[])
        );
        let ranges: Vec<String> = room
            .ranges
            .iter()
            .map(|(low, high)| {
                format!("rowid BETWEEN {} AND {}", sql.bind(Arg::Int(*low)), sql.bind(Arg::Int(*high)))
            })
            .collect();
        branches.push(format!(
            "event_search MATCH {} AND rowid <= {upto} AND ({})",
            sql.bind(Arg::Text(matches)),
            ranges.join(" OR ")
        ));
    }
    branches
}

/// PostgreSQL's score: `ts_rank` of the words.
fn postgres_score(sql: &mut Sql, query: &Query<'_>) -> String {
    format!("ts_rank(s.words, {})::float8", postgres_tsquery(sql, query))
}

/// The words as a `tsquery`, each matching as a prefix.
fn postgres_tsquery(sql: &mut Sql, query: &Query<'_>) -> String {
    // Words hold letters and digits only, so they carry no tsquery syntax.
    let words: Vec<String> = query.words.iter().map(|w| format!("{w}:*")).collect();
    format!("to_tsquery('simple', {})", sql.bind(Arg::Text(words.join(" & "))))
}

/// PostgreSQL: the `WHERE` of the one query over `event_search`, whose copies of room, sender and
/// type answer the filters; none when no room is searched.
fn postgres_branches(sql: &mut Sql, query: &Query<'_>) -> Vec<String> {
    let mut condition = format!(
        "s.words @@ {} AND s.stream_ordering <= {}",
        postgres_tsquery(sql, query),
        sql.bind(Arg::Int(query.upto))
    );
    let types = sql.list(query.types.iter().map(|t| (*t).to_owned()));
    condition.push_str(&format!(" AND s.type IN ({types})"));
    let mut rooms = Vec::new();
    match query.whole {
        WholeRooms::Only(whole) if whole.is_empty() => {}
        WholeRooms::Only(whole) => rooms.push(format!("s.room_id IN ({})", sql.list(whole.iter().cloned()))),
        WholeRooms::AllBut(except) if except.is_empty() => rooms.push("TRUE".to_owned()),
        WholeRooms::AllBut(except) => {
            rooms.push(format!("s.room_id NOT IN ({})", sql.list(except.iter().cloned())));
        }
    }
    for room in query.partial {
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
    if rooms.is_empty() {
        return Vec::new();
    }
    condition.push_str(&format!(" AND ({})", rooms.join(" OR ")));
    if let Some(senders) = query.senders {
        condition.push_str(&format!(" AND s.sender IN ({})", sql.list(senders.iter().cloned())));
    }
    if !query.not_senders.is_empty() {
        condition
            .push_str(&format!(" AND s.sender NOT IN ({})", sql.list(query.not_senders.iter().cloned())));
    }
    vec![condition]
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

//! The full-text index behind `POST /search` (`event_search`): SQLite FTS5 (contentless, rowid =
//! stream position, ranked by `bm25`) or a PostgreSQL `tsvector` with a GIN index (ranked by
//! `ts_rank`). The words come already normalised (`search::index`), so both engines match the
//! same tokens; every query word matches as a prefix.
//!
//! A query is driven by the index: the matching rows come from it in the order asked for (FTS5
//! hands rows out by descending rowid without sorting), are joined to `events` by stream
//! position and kept when they fall in a range of a room the searcher may read. The room
//! restriction is therefore a filter on the index's hits, not a second index: cheap when the
//! searcher reads most rooms with hits, a scan of the word's hits when they read few of them.

use sqlx::{Executor, Row, any::AnyRow};

use super::{
    Backend, Conn,
    events::{COLUMNS, StoredEvent, from_row},
};

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

/// Adds events' words to the index: `(stream position, words)`, one statement.
pub async fn insert_many(conn: &mut Conn, backend: Backend, rows: &[(i64, &str)]) -> sqlx::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let value = match backend {
        Backend::Sqlite => |i: usize| format!("(${}, ${})", 2 * i + 1, 2 * i + 2),
        Backend::Postgres => |i: usize| format!("(${}, to_tsvector('simple', ${}))", 2 * i + 1, 2 * i + 2),
    };
    let values: Vec<String> = (0..rows.len()).map(value).collect();
    let columns = match backend {
        Backend::Sqlite => "rowid, words",
        Backend::Postgres => "stream_ordering, words",
    };
    let sql = format!("INSERT INTO event_search ({columns}) VALUES {}", values.join(", "));
    let mut query = sqlx::query(&sql);
    for (position, words) in rows {
        query = query.bind(*position).bind(*words);
    }
    query.execute(conn).await?;
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
    let dialect = Dialect::of(backend);
    let mut sql = Sql::default();
    let filter = sql.filter(&dialect, query);
    let (score, position) = (dialect.score, dialect.position);
    let resume = match (after, order) {
        (None, _) => String::new(),
        (Some(cursor), Order::Recent) => {
            format!(" AND {position} < {}", sql.bind(Arg::Int(cursor.stream_ordering)))
        }
        (Some(cursor), Order::Rank) => {
            let (s, p) = (sql.bind(Arg::Float(cursor.score)), sql.bind(Arg::Int(cursor.stream_ordering)));
            format!(" AND ({score} < {s} OR ({score} = {s} AND {position} < {p}))")
        }
    };
    let order_by = match order {
        Order::Recent => format!("{position} DESC"),
        Order::Rank => format!("score DESC, {position} DESC"),
    };
    let limit = sql.bind(Arg::Int(limit));
    let columns: Vec<String> = COLUMNS.split(", ").map(|c| format!("e.{c}")).collect();
    let text = format!(
        "SELECT {}, {score} AS score {}{filter}{resume} ORDER BY {order_by} LIMIT {limit}",
        columns.join(", "),
        dialect.from,
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
    let dialect = Dialect::of(backend);
    let mut sql = Sql::default();
    let filter = sql.filter(&dialect, query);
    let text = format!("SELECT COUNT(*) AS n {}{filter}", dialect.from);
    sql.query(&text).fetch_one(executor).await?.try_get("n")
}

fn hit_from_row(row: AnyRow) -> sqlx::Result<Hit> {
    let score = row.try_get("score")?;
    Ok(Hit { score, event: from_row(row)? })
}

/// The SQL that differs between the engines.
struct Dialect {
    /// `FROM …` joining the index to `events e`.
    from: &'static str,
    /// The match condition on the query bound as `$1`.
    matches: &'static str,
    /// The score expression (higher is better).
    score: &'static str,
    /// The indexed stream position (the one the index can order and cut by).
    position: &'static str,
    /// Builds the match query from the words.
    query: fn(&[String]) -> String,
}

impl Dialect {
    fn of(backend: Backend) -> Dialect {
        match backend {
            // CROSS JOIN keeps the index as the outer loop: SQLite would otherwise be free to walk
            // every event of the searched rooms and probe the index for each.
            Backend::Sqlite => Dialect {
                from: "FROM event_search CROSS JOIN events e ON e.stream_ordering = event_search.rowid",
                matches: "event_search MATCH $1",
                score: "(-bm25(event_search))",
                position: "event_search.rowid",
                // `"word"*`: a quoted token (no query syntax inside) matched as a prefix.
                query: |words| words.iter().map(|w| format!("\"{w}\"*")).collect::<Vec<_>>().join(" "),
            },
            Backend::Postgres => Dialect {
                from: "FROM event_search s JOIN events e ON e.stream_ordering = s.stream_ordering",
                matches: "s.words @@ to_tsquery('simple', $1)",
                score: "ts_rank(s.words, to_tsquery('simple', $1))::float8",
                position: "s.stream_ordering",
                // Words hold letters and digits only, so they carry no tsquery syntax.
                query: |words| words.iter().map(|w| format!("{w}:*")).collect::<Vec<_>>().join(" & "),
            },
        }
    }
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

    /// ` WHERE …`: the match (bound first, as `$1`), the positions looked at, the types,
    /// the readable ranges of the searched rooms and the senders.
    fn filter(&mut self, dialect: &Dialect, query: &Query<'_>) -> String {
        let matches = self.bind(Arg::Text((dialect.query)(query.words)));
        debug_assert_eq!(matches, "$1");
        let mut clause = format!(
            " WHERE {} AND {} <= {}",
            dialect.matches,
            dialect.position,
            self.bind(Arg::Int(query.upto))
        );
        clause.push_str(
            " AND e.redacted_by IS NULL AND e.outlier = 0 AND e.rejected = 0 AND e.soft_failed = 0",
        );
        let types = self.list(query.types.iter().map(|t| (*t).to_owned()));
        clause.push_str(&format!(" AND e.type IN ({types})"));
        clause.push_str(&format!(" AND ({})", self.rooms(query.rooms, query.upto)));
        if let Some(senders) = query.senders {
            let list = self.list(senders.iter().cloned());
            clause.push_str(&format!(" AND e.sender IN ({list})"));
        }
        if !query.not_senders.is_empty() {
            let list = self.list(query.not_senders.iter().cloned());
            clause.push_str(&format!(" AND e.sender NOT IN ({list})"));
        }
        clause
    }

    /// Rooms readable in full (up to `upto`) go in one `IN` list; the others each get their
    /// ranges.
    fn rooms(&mut self, rooms: &[RoomScope], upto: i64) -> String {
        let whole =
            |room: &&RoomScope| matches!(room.ranges.as_slice(), [(low, high)] if *low <= 1 && *high >= upto);
        let mut alternatives = Vec::new();
        let full: Vec<String> = rooms.iter().filter(whole).map(|r| r.room_id.clone()).collect();
        if !full.is_empty() {
            alternatives.push(format!("e.room_id IN ({})", self.list(full.into_iter())));
        }
        for room in rooms.iter().filter(|room| !whole(room)) {
            let room_id = self.bind(Arg::Text(room.room_id.clone()));
            let ranges: Vec<String> = room
                .ranges
                .iter()
                .map(|(low, high)| {
                    let (low, high) = (self.bind(Arg::Int(*low)), self.bind(Arg::Int(*high)));
                    format!("e.stream_ordering BETWEEN {low} AND {high}")
                })
                .collect();
            alternatives.push(format!("(e.room_id = {room_id} AND ({}))", ranges.join(" OR ")));
        }
        if alternatives.is_empty() { "1 = 0".to_owned() } else { alternatives.join(" OR ") }
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

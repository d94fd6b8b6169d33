//! The full-text index behind `POST /search` (`event_search`): SQLite FTS5 (contentless, rowid =
//! stream position) or a PostgreSQL `tsvector` under a GIN index. The words come already
//! normalised (`search::index`), so both engines match the same tokens.
//!
//! Every filter is answered by the index alone: room, sender and type are tokens of their own
//! (SQLite: a second FTS column, `meta`; PostgreSQL: `~`-marked lexemes of the same `tsvector`),
//! so the room restriction is part of the full-text query and the engine intersects the word's
//! and the rooms' posting lists instead of looking every hit up. Rooms the searcher may read only
//! in part (history visibility, a leave) get one more query branch each, with their readable
//! ranges of stream positions.
//!
//! Each indexed event's words are kept again, uncompressed: what `rank` order scores
//! ([`newest_words`]), a compact row per event instead of the event's JSON. SQLite keeps them in
//! `event_search_text` (FTS5's contentless table keeps no text), PostgreSQL in the index row
//! (`event_search.words_text`), which the GIN bitmap scan reads anyway.
//!
//! A query word matches the indexed words it begins. `search_terms` lists every indexed word, so
//! that a query names them ([`WordMatch::Terms`]): both engines walk the posting lists of named
//! words newest first and stop at what they need, while a prefix query (`"word"*`, `word:*`)
//! first merges every matching word's postings in memory, one full pass for a common word.

mod matching;
mod statement;

use std::collections::BTreeSet;

use sqlx::{AnyPool, Executor, Row, any::AnyRow};

use super::{Backend, Conn};
use matching::{Match, filter_tokens, room_token, sender_token, type_token};
use statement::{Arg, Sql, fetch_planned};

/// How many event types the index holds (`search::index::KEYS`).
pub const INDEXED_TYPES: usize = 3;

/// What one query word matches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WordMatch {
    /// These indexed words (the ones that begin with the query word); none: nothing matches.
    Terms(Vec<String>),
    /// Every indexed word that begins with this (too many to name).
    Prefix(String),
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
/// than naming every room (the engine intersects the hits with each named room's posting list).
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
    /// What each query word matches; all must match. Not empty.
    pub words: &'a [WordMatch],
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

/// Most rows per `search_terms` insert.
const TERMS_PER_INSERT: usize = 500;

/// A matching event's stream position and its words, space-separated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Words {
    /// Its stream position.
    pub stream_ordering: i64,
    /// Its words, space-separated (normalised, or as sent for events indexed before the words
    /// were kept: split them with `search::index::words`).
    pub words: String,
}

/// Adds events to the index, their words where they are kept ([`kept_words`]) and to
/// `search_terms`.
pub async fn insert_many(conn: &mut Conn, backend: Backend, entries: &[Entry<'_>]) -> sqlx::Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let mut index = Sql::default();
    let mut index_rows = Vec::with_capacity(entries.len());
    for entry in entries {
        let tokens = index.bind(Arg::Text(filter_tokens(backend, entry.room_id, entry.sender, entry.kind)));
        let position = index.bind(Arg::Int(entry.stream_ordering));
        let words = index.bind(Arg::Text(entry.words.to_owned()));
        index_rows.push(match backend {
            Backend::Sqlite => format!("({position}, {words}, {tokens})"),
            // The words are lexemes as they are: split and lower-cased already, like the query.
            Backend::Postgres => format!(
                "({position}, array_to_tsvector(string_to_array({words} || ' ' || {tokens}, ' ')), {words})"
            ),
        });
    }
    let columns = match backend {
        Backend::Sqlite => "rowid, words, meta",
        Backend::Postgres => "stream_ordering, words, words_text",
    };
    let text = format!("INSERT INTO event_search ({columns}) VALUES {}", index_rows.join(", "));
    index.query(&text).execute(&mut *conn).await?;
    if backend == Backend::Sqlite {
        let mut kept = Sql::default();
        let kept_rows: Vec<String> = entries
            .iter()
            .map(|e| {
                let position = kept.bind(Arg::Int(e.stream_ordering));
                format!("({position}, {})", kept.bind(Arg::Text(e.words.to_owned())))
            })
            .collect();
        let text =
            format!("INSERT INTO event_search_text (stream_ordering, words) VALUES {}", kept_rows.join(", "));
        kept.query(&text).execute(&mut *conn).await?;
    }

    // Sorted, so that concurrent writers take the terms' index entries in one order.
    let terms: BTreeSet<&str> = entries.iter().flat_map(|e| e.words.split(' ')).collect();
    let terms: Vec<&str> = terms.into_iter().collect();
    for chunk in terms.chunks(TERMS_PER_INSERT) {
        let text = format!(
            "INSERT INTO search_terms (term) VALUES {} ON CONFLICT DO NOTHING",
            (1..=chunk.len()).map(|i| format!("(${i})")).collect::<Vec<_>>().join(", ")
        );
        let mut query = sqlx::query(&text);
        for term in chunk {
            query = query.bind(*term);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Takes the event at stream position `position` out of the index (it was redacted). Its words
/// stay in `search_terms`: a word no event holds any more only costs a query a posting lookup.
pub async fn remove(conn: &mut Conn, backend: Backend, position: i64) -> sqlx::Result<()> {
    let sql = match backend {
        Backend::Sqlite => "DELETE FROM event_search WHERE rowid = $1",
        Backend::Postgres => "DELETE FROM event_search WHERE stream_ordering = $1",
    };
    sqlx::query(sql).bind(position).execute(&mut *conn).await?;
    if backend == Backend::Sqlite {
        sqlx::query("DELETE FROM event_search_text WHERE stream_ordering = $1")
            .bind(position)
            .execute(conn)
            .await?;
    }
    Ok(())
}

/// What each of `words` matches: the indexed words it begins (itself included), or a prefix
/// match when it begins more than `most` of them.
pub async fn word_matches<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    words: &[String],
    most: usize,
) -> sqlx::Result<Vec<WordMatch>> {
    let mut sql = Sql::default();
    let limit = sql.bind(Arg::Int(i64::try_from(most + 1).unwrap_or(i64::MAX)));
    let arms: Vec<String> = words
        .iter()
        .enumerate()
        .map(|(i, word)| {
            let low = sql.bind(Arg::Text(word.clone()));
            // Above every word that begins with `word` (char::MAX sorts last, bytewise too).
            let high = sql.bind(Arg::Text(format!("{word}{}", char::MAX)));
            format!(
                "SELECT term FROM (SELECT term FROM search_terms WHERE term >= {low} AND term < {high} \
                 ORDER BY term LIMIT {limit}) t{i}"
            )
        })
        .collect();
    let rows = sql.query(&arms.join(" UNION ")).fetch_all(executor).await?;
    let terms: Vec<String> = rows.iter().map(|row| row.try_get("term")).collect::<sqlx::Result<_>>()?;
    // A word's own arm stops after `most + 1` terms; the union holds at least those.
    Ok(words
        .iter()
        .map(|word| {
            let begun: Vec<String> = terms.iter().filter(|t| t.starts_with(word.as_str())).cloned().collect();
            if begun.len() > most { WordMatch::Prefix(word.clone()) } else { WordMatch::Terms(begun) }
        })
        .collect())
}

/// The stream positions of the newest `n` matching events below `before` (if given), newest
/// first.
pub async fn newest_positions(
    pool: &AnyPool,
    backend: Backend,
    query: &Query<'_>,
    before: Option<i64>,
    n: i64,
) -> sqlx::Result<Vec<i64>> {
    let mut sql = Sql::default();
    let hits = newest(&mut sql, backend, query, before, n, "");
    let rows = fetch_planned(pool, backend, &sql, &hits).await?;
    rows.iter().map(|row| row.try_get("pos")).collect()
}

/// The words of the indexed events at `positions` (at most [`super::IDS_PER_STATEMENT`]), newest
/// first.
pub async fn words_at<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    backend: Backend,
    positions: &[i64],
) -> sqlx::Result<Vec<Words>> {
    if positions.is_empty() {
        return Ok(Vec::new());
    }
    let (table, words) = kept_words(backend);
    let text = format!(
        "SELECT stream_ordering AS pos, {words} AS words FROM {table} WHERE stream_ordering IN ({}) \
         ORDER BY stream_ordering DESC",
        super::placeholders(1, positions.len())
    );
    let mut query = sqlx::query(&text);
    for position in positions {
        query = query.bind(position);
    }
    query.fetch_all(executor).await?.iter().map(words_from_row).collect()
}

/// The newest `n` matching events below stream position `before` (if given), newest first, with
/// their words.
pub async fn newest_words(
    pool: &AnyPool,
    backend: Backend,
    query: &Query<'_>,
    before: Option<i64>,
    n: i64,
) -> sqlx::Result<Vec<Words>> {
    let mut sql = Sql::default();
    let text = match backend {
        Backend::Sqlite => {
            let hits = newest(&mut sql, backend, query, before, n, "");
            // CROSS JOIN keeps the hits as SQLite's outer loop.
            format!(
                "SELECT h.pos, w.words FROM ({hits}) h CROSS JOIN event_search_text w \
                 WHERE w.stream_ordering = h.pos ORDER BY h.pos DESC"
            )
        }
        // In the rows that the index scan reads anyway.
        Backend::Postgres => newest(&mut sql, backend, query, before, n, ", words_text AS words"),
    };
    let rows = fetch_planned(pool, backend, &sql, &text).await?;
    rows.iter().map(words_from_row).collect()
}

fn words_from_row(row: &AnyRow) -> sqlx::Result<Words> {
    Ok(Words { stream_ordering: row.try_get("pos")?, words: row.try_get("words")? })
}

/// The newest `n` matching events below stream position `before` (if given), newest first, as
/// rows `(pos)` and the columns `also` selects (`", column AS name"`). Each query branch is cut to
/// `n` on its own, walking its index newest first and stopping there, then the branches are
/// merged.
fn newest(
    sql: &mut Sql,
    backend: Backend,
    query: &Query<'_>,
    before: Option<i64>,
    n: i64,
    also: &str,
) -> String {
    let position = match backend {
        Backend::Sqlite => "rowid",
        Backend::Postgres => "stream_ordering",
    };
    let conditions = branches(sql, backend, query, position);
    let n = sql.bind(Arg::Int(n));
    let before = before.map(|b| format!(" AND {position} < {}", sql.bind(Arg::Int(b)))).unwrap_or_default();
    let branches: Vec<String> = conditions
        .iter()
        .map(|condition| {
            format!(
                "SELECT {position} AS pos{also} FROM event_search WHERE {condition}{before} \
                 ORDER BY {position} DESC LIMIT {n}"
            )
        })
        .collect();
    match branches.as_slice() {
        [] => format!("SELECT {position} AS pos{also} FROM event_search WHERE 1 = 0"),
        [one] => one.clone(),
        many => {
            let arms: Vec<String> =
                many.iter().enumerate().map(|(i, b)| format!("SELECT * FROM ({b}) b{i}")).collect();
            format!("SELECT * FROM ({}) u ORDER BY pos DESC LIMIT {n}", arms.join(" UNION ALL "))
        }
    }
}

/// The `WHERE` of each query branch: one for the rooms readable in full, one per room readable in
/// part (with its ranges of positions). Every filter is part of the full-text match.
fn branches(sql: &mut Sql, backend: Backend, query: &Query<'_>, position: &str) -> Vec<String> {
    if query.words.iter().any(|w| *w == WordMatch::Terms(Vec::new())) {
        return Vec::new();
    }
    let mut filters = Vec::new();
    // Every event carries a type token, so matching all of them would only cost time.
    if query.types.len() < INDEXED_TYPES {
        filters.push(query.types.iter().map(|t| type_token(t)).collect());
    }
    if let Some(senders) = query.senders {
        filters.push(senders.iter().map(|s| sender_token(s)).collect());
    }
    let excluded: Vec<String> = query.not_senders.iter().map(|s| sender_token(s)).collect();
    let matches = |sql: &mut Sql, rooms: Option<Vec<String>>, not_rooms: &[String]| {
        let mut all_of: Vec<Vec<String>> = filters.clone();
        all_of.extend(rooms);
        let mut none_of = excluded.clone();
        none_of.extend(not_rooms.iter().map(|r| room_token(r)));
        let text = Match { words: query.words, all_of, none_of }.text(backend);
        let text = sql.bind(Arg::Text(text));
        match backend {
            Backend::Sqlite => format!("event_search MATCH {text}"),
            Backend::Postgres => format!("words @@ CAST({text} AS tsquery)"),
        }
    };
    let upto = sql.bind(Arg::Int(query.upto));
    let mut branches = Vec::new();
    let whole = match query.whole {
        WholeRooms::Only(rooms) if rooms.is_empty() => None,
        WholeRooms::Only(rooms) => {
            Some(matches(sql, Some(rooms.iter().map(|r| room_token(r)).collect()), &[]))
        }
        WholeRooms::AllBut(rooms) => Some(matches(sql, None, rooms)),
    };
    if let Some(matches) = whole {
        branches.push(format!("{matches} AND {position} <= {upto}"));
    }
    for room in query.partial {
        let matches = matches(sql, Some(vec![room_token(&room.room_id)]), &[]);
        let ranges: Vec<String> = room
            .ranges
            .iter()
            .map(|(low, high)| {
                format!("{position} BETWEEN {} AND {}", sql.bind(Arg::Int(*low)), sql.bind(Arg::Int(*high)))
            })
            .collect();
        branches.push(format!("{matches} AND {position} <= {upto} AND ({})", ranges.join(" OR ")));
    }
    branches
}

/// Where each engine keeps an indexed event's words, as `(table, column)`: SQLite in
/// `event_search_text` beside its FTS5 table (contentless: it keeps no text), PostgreSQL in the
/// index row itself, which the GIN bitmap scan reads anyway (migration 0026).
fn kept_words(backend: Backend) -> (&'static str, &'static str) {
    match backend {
        Backend::Sqlite => ("event_search_text", "words"),
        Backend::Postgres => ("event_search", "words_text"),
    }
}

//! What `POST /search` costs at a million messages: one-word queries through the real core
//! search function (`search::room_events::search`: rooms, visibility, index, the page's events,
//! `count`), for a user in 1, 10 and 100 of the corpus's 100 rooms, in `rank` and `recent`
//! order, for a rare, a medium, a common and a very common word.
//!
//! The corpus: 100 public rooms made through the real room paths (create, joins, one real
//! message each), then `SEARCH_BENCH_MESSAGES` (default 1 000 000) messages written in bulk
//! through the storage layer (`storage::events::insert_many` and `storage::search::insert_many`,
//! the statements the send path uses) in large transactions: bodies of 4–16 words drawn from a
//! 30 000-word vocabulary with Zipf frequencies (exponent 1), spread evenly over the rooms. It is
//! built once and kept in `SEARCH_BENCH_DIR` (default `/tmp/hearth-search-bench`); delete the
//! directory to rebuild. `SEARCH_BENCH_DB=postgres://…` runs on PostgreSQL instead (a database
//! that must exist and is used as it is when it already holds the corpus; run `VACUUM ANALYZE`
//! on it after the build, as autovacuum would, before timing: docs/BENCHMARKS.md › Search).
//!
//! `cargo bench -p hearth-core --bench search` (std::time only; prints p50 / p99 / max in ms).

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use hearth_core::{
    Config, Homeserver,
    rooms::{
        NewEvent as Message,
        create::{CreateRoom, create_room},
        membership, timeline,
    },
    search::{index, room_events},
    storage::{events, search, users},
};
use ruma::{
    OwnedRoomId, OwnedUserId,
    api::client::search::search_events::v3::{Criteria, OrderBy},
    device_id,
};
use serde_json::{Value, json};

const ROOMS: usize = 100;
const VOCABULARY: usize = 30_000;
/// Messages per write transaction and per statement.
const BATCH: usize = 20_000;
const STATEMENT_ROWS: usize = 1_000;
/// Timed runs per case, after one warm-up run.
const RUNS: usize = 25;
/// Zipf ranks of the words searched for (rank 1 is the most frequent word).
const QUERY_RANKS: [(&str, usize); 4] =
    [("rare", 1_000), ("medium", 100), ("common", 10), ("very common", 1)];

fn main() {
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    runtime.block_on(run());
}

async fn run() {
    let messages: usize =
        std::env::var("SEARCH_BENCH_MESSAGES").ok().and_then(|n| n.parse().ok()).unwrap_or(1_000_000);
    let base = PathBuf::from(
        std::env::var("SEARCH_BENCH_DIR").unwrap_or_else(|_| "/tmp/hearth-search-bench".to_owned()),
    );
    let postgres = std::env::var("SEARCH_BENCH_DB").ok();
    let name = if postgres.is_some() { "postgres" } else { "sqlite" };
    let dir = base.join(format!("{name}-{messages}"));
    let marker = dir.join("complete");
    if postgres.is_none() && !marker.exists() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    let mut config = Config::default();
    config.storage.data_dir = dir.clone();
    config.database.url = postgres.clone().unwrap_or_else(|| format!("sqlite://{}/hearth.db", dir.display()));
    config.rate_limits.enabled = false;
    let hs = Homeserver::open(config).await.expect("homeserver");
    let vocabulary = Vocabulary::new();
    let users = Users::new(&hs);
    if !marker.exists() {
        let started = Instant::now();
        build(&hs, &users, &vocabulary, messages).await;
        std::fs::write(&marker, "").expect("marker");
        println!("corpus built in {:.1} s", started.elapsed().as_secs_f64());
    }
    println!(
        "search, {name}, {messages} messages in {ROOMS} rooms, {RUNS} runs per case (after a warm-up), \
         limit 10, ms"
    );
    println!(
        "{:>8} {:>6} {:>12} {:>9} {:>8} {:>8} {:>8}",
        "rooms", "order", "word", "count", "p50", "p99", "max"
    );
    for (rooms, user) in [(1, &users.one), (10, &users.ten), (ROOMS, &users.all)] {
        for order in [OrderBy::Rank, OrderBy::Recent] {
            for (class, rank) in QUERY_RANKS {
                let word = vocabulary.word(rank - 1);
                let mut criteria = Criteria::new(word.to_owned());
                criteria.order_by = Some(order.clone());
                let request = room_events::Request { criteria: &criteria, context: None, next_batch: None };
                let device = device_id!("BENCH");
                let first = room_events::search(&hs, user, device, request).await.expect("search");
                assert!(first.results.len() == 10 || first.next_batch.is_none(), "a short page with more");
                let mut times = Vec::with_capacity(RUNS);
                for _ in 0..RUNS {
                    let started = Instant::now();
                    std::hint::black_box(
                        room_events::search(&hs, user, device, request).await.expect("search"),
                    );
                    times.push(started.elapsed());
                }
                times.sort();
                println!(
                    "{rooms:>8} {:>6} {:>12} {:>9} {:>8.1} {:>8.1} {:>8.1}",
                    order.as_str(),
                    class,
                    first.count,
                    ms(times[RUNS / 2]),
                    ms(times[(RUNS * 99).div_ceil(100) - 1]),
                    ms(times[RUNS - 1]),
                );
            }
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The corpus's users: who creates the rooms, who talks, and the three searchers.
struct Users {
    owner: OwnedUserId,
    talkers: Vec<OwnedUserId>,
    /// In room 0.
    one: OwnedUserId,
    /// In rooms 0–9.
    ten: OwnedUserId,
    /// In every room.
    all: OwnedUserId,
}

impl Users {
    fn new(hs: &Homeserver) -> Users {
        let user = |name: &str| OwnedUserId::try_from(format!("@{name}:{}", hs.server_name())).expect("user");
        Users {
            owner: user("owner"),
            talkers: (0..8).map(|i| user(&format!("talker{i}"))).collect(),
            one: user("one"),
            ten: user("ten"),
            all: user("all"),
        }
    }
}

/// Creates the rooms and members through the real paths, then writes the messages in bulk.
async fn build(hs: &Homeserver, users: &Users, vocabulary: &Vocabulary, messages: usize) {
    let mut conn = hs.db().pool().acquire().await.expect("conn");
    let everyone = [&users.owner, &users.one, &users.ten, &users.all].into_iter().chain(&users.talkers);
    for user in everyone {
        users::insert(&mut conn, user, None, Some(user.localpart()), false, 0).await.expect("user");
    }
    drop(conn);
    let mut rooms = Vec::with_capacity(ROOMS);
    for r in 0..ROOMS {
        let request = CreateRoom { public: true, name: Some(format!("room {r}")), ..Default::default() };
        let room_id = create_room(hs, &users.owner, request).await.expect("room");
        let mut members: Vec<&OwnedUserId> = users.talkers.iter().collect();
        members.push(&users.all);
        if r < 10 {
            members.push(&users.ten);
        }
        if r == 0 {
            members.push(&users.one);
        }
        for user in members {
            membership::join(hs, user, &room_id, Default::default(), &[]).await.expect("join");
        }
        // One real message: the template of the room's bulk messages.
        let hello = Message::message("m.room.message", json!({ "msgtype": "m.text", "body": "hello" }));
        let event_id =
            timeline::send_with_txn(hs, &users.owner, device_id!("BENCH"), &room_id, "hello", &hello)
                .await
                .expect("send");
        let stored = events::get(hs.db().pool(), event_id.as_str()).await.expect("get").expect("stored");
        rooms.push(Template::new(room_id, &stored));
    }

    let senders: Vec<&str> = users.talkers.iter().map(|u| u.as_str()).collect();
    let mut random = Random(0x5eed_5eed_5eed_5eed);
    let mut written = 0;
    let started = Instant::now();
    while written < messages {
        let n = BATCH.min(messages - written);
        let mut tx = hs.db().begin().await.expect("begin");
        let positions = tx.next_stream_orderings(n);
        let drafts: Vec<Draft> = positions
            .iter()
            .map(|&position| {
                let room = random.below(ROOMS);
                let length = 4 + random.below(13);
                let body: Vec<&str> =
                    (0..length).map(|_| vocabulary.word(vocabulary.sample(&mut random))).collect();
                let sender = senders[random.below(senders.len())];
                rooms[room].draft(room, position, sender, body.join(" "))
            })
            .collect();
        for chunk in drafts.chunks(STATEMENT_ROWS) {
            let rows: Vec<events::NewEvent<'_>> = chunk
                .iter()
                .map(|d| events::NewEvent {
                    event_id: &d.event_id,
                    room_id: &rooms[d.room].room_id,
                    kind: "m.room.message",
                    state_key: None,
                    sender: d.sender,
                    depth: d.position,
                    origin_server_ts: d.position,
                    stream_ordering: Some(d.position),
                    state_group: Some(rooms[d.room].state_group),
                    json: &d.json,
                })
                .collect();
            events::insert_many(&mut tx, &rows).await.expect("events");
            let words: Vec<String> = chunk
                .iter()
                .map(|d| index::indexed_words("m.room.message", &d.content).expect("indexed"))
                .collect();
            let entries: Vec<search::Entry<'_>> = chunk
                .iter()
                .zip(&words)
                .map(|(d, words)| search::Entry {
                    stream_ordering: d.position,
                    room_id: rooms[d.room].room_id.as_str(),
                    sender: d.sender,
                    kind: "m.room.message",
                    words,
                })
                .collect();
            search::insert_many(&mut tx, hs.db().backend(), &entries).await.expect("index");
        }
        tx.commit().await.expect("commit");
        written += n;
        if written % 100_000 < BATCH {
            println!("{written} messages written ({:.0} s)", started.elapsed().as_secs_f64());
        }
    }
}

/// A room's real message, whose JSON the bulk messages copy with their own body.
struct Template {
    room_id: OwnedRoomId,
    state_group: i64,
    event: Value,
}

/// One bulk message, ready to insert.
struct Draft<'a> {
    room: usize,
    position: i64,
    sender: &'a str,
    event_id: String,
    json: String,
    content: Box<serde_json::value::RawValue>,
}

impl Template {
    fn new(room_id: OwnedRoomId, stored: &events::StoredEvent) -> Template {
        let event = serde_json::from_str(&stored.json).expect("template JSON");
        Template { room_id, state_group: stored.state_group.expect("state group"), event }
    }

    fn draft<'a>(&self, room: usize, position: i64, sender: &'a str, body: String) -> Draft<'a> {
        let content = json!({ "msgtype": "m.text", "body": body });
        let mut event = self.event.clone();
        event["content"] = content.clone();
        event["sender"] = json!(sender);
        event["depth"] = json!(position);
        event["origin_server_ts"] = json!(1_700_000_000_000_i64 + position);
        Draft {
            room,
            position,
            sender,
            event_id: format!("$bench{position:012}"),
            json: event.to_string(),
            content: serde_json::value::to_raw_value(&content).expect("raw"),
        }
    }
}

/// Pseudo-words and their Zipf distribution.
struct Vocabulary {
    words: Vec<String>,
    /// Cumulative weights of the ranks.
    cumulative: Vec<f64>,
}

impl Vocabulary {
    fn new() -> Vocabulary {
        const SYLLABLES: [&str; 24] = [
            "ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "ba", "de", "fi", "go", "ha", "ju", "ke", "li",
            "mo", "nu", "pa", "re", "si", "to", "ve", "zu",
        ];
        let mut random = Random(0xc0ffee);
        let mut seen = std::collections::HashSet::new();
        let mut words = Vec::with_capacity(VOCABULARY);
        while words.len() < VOCABULARY {
            let syllables = 2 + random.below(3);
            let word: String = (0..syllables).map(|_| SYLLABLES[random.below(SYLLABLES.len())]).collect();
            if seen.insert(word.clone()) {
                words.push(word);
            }
        }
        let mut total = 0.0;
        let cumulative = (1..=VOCABULARY)
            .map(|rank| {
                total += 1.0 / rank as f64;
                total
            })
            .collect();
        Vocabulary { words, cumulative }
    }

    fn word(&self, index: usize) -> &str {
        &self.words[index]
    }

    /// A word index drawn with Zipf frequencies.
    fn sample(&self, random: &mut Random) -> usize {
        let total = self.cumulative[VOCABULARY - 1];
        let x = random.unit() * total;
        self.cumulative.partition_point(|&c| c < x).min(VOCABULARY - 1)
    }
}

/// xorshift64*: deterministic and dependency-free.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

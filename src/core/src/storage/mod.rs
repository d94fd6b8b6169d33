//! Storage: the only place in Hearth that speaks SQL. One API over SQLite (the embedded default)
//! and PostgreSQL (production and scale-out), through sqlx's `Any` driver; queries use `$n`
//! parameters, which both backends accept. Dialect differences live behind small functions here.
//!
//! Callers own transactions: `let mut tx = hs.db().begin().await?; users::insert(&mut tx, ..)`.

pub mod account_data;
pub mod activity;
pub mod aliases;
pub mod backfill;
pub mod backup;
mod checkpoint;
pub mod cross_signing;
pub mod device_lists;
pub mod devices;
pub mod directory;
pub mod e2ee_keys;
pub mod events;
pub mod federation_txns;
pub mod filters;
pub mod gaps;
pub mod history;
pub mod media;
pub mod nonces;
pub mod outbox;
pub mod positions;
pub mod presence;
pub mod push_actions;
pub mod pushers;
pub mod receipts;
pub mod recent;
pub mod redactions;
pub mod relations;
pub mod remote_invites;
pub mod rooms;
pub mod search;
pub mod server_keys;
pub mod state;
pub mod streams;
pub mod sync;
pub mod to_device;
pub mod tokens;
pub mod txns;
pub mod uia;
pub mod unread_log;
pub mod user_directory;
pub mod users;

use std::{str::FromStr, sync::Arc, time::Duration};

use anyhow::Context;
use sqlx::{
    Any, AnyPool, Executor, Transaction,
    any::{AnyConnectOptions, AnyPoolOptions},
    migrate::Migrator,
};

use self::{
    positions::{EventPositions, Held, Written},
    streams::{Committed, Stream},
    unread_log::UnreadNote,
};
use crate::config::DatabaseConfig;

/// SQLite has one writer, and every connection is a thread of its own in sqlx: beyond a few,
/// connections only add thread switches. With 50 syncing clients, 4 instead of 16 cut the
/// fan-out delivery p99 from 247 to 199 ms and send p99 from 67 to 44 ms (docs/BENCHMARKS.md).
const SQLITE_MAX_CONNECTIONS: u32 = 4;

/// A wait for SQLite's writer lock, or a write transaction, longer than this is logged (debug),
/// to find stalls.
const SLOW_WRITER_WAIT: Duration = Duration::from_millis(50);

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/postgres");

/// A connection usable inside or outside a transaction (`&mut *tx` or `&mut *pool_conn`).
pub type Conn = sqlx::AnyConnection;

/// Which database engine backs a [`Db`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// An embedded SQLite file in WAL mode.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// The database pool of one homeserver.
pub struct Db {
    pool: AnyPool,
    /// Where write transactions run: on SQLite a pool of one connection that only the holder of
    /// `sqlite_writer` uses; on PostgreSQL the same pool as reads.
    write_pool: AnyPool,
    backend: Backend,
    /// The event stream's positions, handed out to and released by write transactions.
    events: Arc<EventPositions>,
    /// The other streams' committed positions.
    streams: Arc<Committed>,
    /// Queues SQLite writers in FIFO order (see [`Db::begin`]).
    sqlite_writer: Arc<tokio::sync::Mutex<()>>,
    /// SQLite's WAL checkpointer (see [`checkpoint`]).
    checkpointer: Option<tokio::task::AbortHandle>,
    /// Signalled after a transaction that queued rows in the federation outbox committed.
    outbox: Arc<outbox::Signal>,
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Some(checkpointer) = &self.checkpointer {
            checkpointer.abort();
        }
    }
}

/// A write transaction; rolled back when dropped without [`commit`](WriteTx::commit).
pub struct WriteTx {
    tx: Transaction<'static, Any>,
    held: Held,
    /// Positions taken in the other streams, published after the commit.
    streams: Vec<(Stream, i64)>,
    committed: Arc<Committed>,
    /// The destinations this transaction queued federation outbox rows for, and whom to tell
    /// after commit.
    outbox_queued: std::collections::BTreeSet<String>,
    outbox: Arc<outbox::Signal>,
    _writer: Option<tokio::sync::OwnedMutexGuard<()>>,
    /// When the transaction began, to log ones that held the writer long (stalls).
    began: std::time::Instant,
}

impl WriteTx {
    /// Commits, then releases the event positions taken (telling the commit hook what was
    /// written) and lets the next writer in.
    pub async fn commit(self) -> sqlx::Result<()> {
        let WriteTx { tx, mut held, streams, committed, outbox_queued, outbox, _writer, began } = self;
        let committing = std::time::Instant::now();
        tx.commit().await?;
        if began.elapsed() > SLOW_WRITER_WAIT {
            tracing::debug!(
                held_ms = began.elapsed().as_secs_f64() * 1e3,
                commit_ms = committing.elapsed().as_secs_f64() * 1e3,
                "a write transaction held the writer long"
            );
        }
        held.mark_committed();
        for (stream, position) in streams {
            committed.publish(stream, position);
        }
        if !outbox_queued.is_empty() {
            outbox.queued(outbox_queued);
        }
        Ok(())
    }

    /// Notes that this transaction queued rows in the federation outbox for `destinations`: the
    /// sender is told once it commits.
    pub fn queued_for_federation<S: Into<String>>(&mut self, destinations: impl IntoIterator<Item = S>) {
        self.outbox_queued.extend(destinations.into_iter().map(Into::into));
    }

    /// Records a position taken in `stream`, to publish after the commit.
    fn took(&mut self, stream: Stream, position: i64) {
        self.streams.push((stream, position));
    }

    /// The next position in the global event stream, in flight until this transaction ends.
    pub fn next_stream_ordering(&mut self) -> i64 {
        self.held.take(1)[0]
    }

    /// `n` consecutive positions, like [`next_stream_ordering`](Self::next_stream_ordering).
    pub fn next_stream_orderings(&mut self, n: usize) -> Vec<i64> {
        self.held.take(n)
    }

    /// `n` positions for backfilled events, descending, each below every position handed out
    /// before (spec: Backfilling): older history sorts before the room's events without ever
    /// appearing to `/sync` as new.
    pub fn backfill_stream_orderings(&mut self, n: usize) -> Vec<i64> {
        self.held.take_backfill(n)
    }

    /// Sets the next `n` positions aside, never handed out: a block below the next position
    /// for history backfilled later into the middle of a room's timeline (`rooms::gap`);
    /// returns the lowest. Like backfill positions they are never in flight, so `/sync`, which
    /// will have read past them, never shows what fills them as new.
    pub fn reserve_stream_orderings(&mut self, n: usize) -> i64 {
        self.held.reserve(n)
    }

    /// Records an event written at one of this transaction's positions, for the commit hook.
    pub fn record(&mut self, written: Written) {
        self.held.record(written);
    }

    /// Records how an event at one of this transaction's positions notified its room's members,
    /// or that the room's state moved, for the in-memory unread counts.
    pub fn note_unread(&mut self, note: UnreadNote) {
        self.held.note_unread(note);
    }
}

impl std::ops::Deref for WriteTx {
    type Target = Conn;

    fn deref(&self) -> &Conn {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut Conn {
        &mut self.tx
    }
}

/// A pool of at most `max_connections` for `backend`, every connection set up for it.
fn pool_options(backend: Backend, max_connections: u32) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(30))
        // sqlx pings every connection it hands out by default: one more round trip to the
        // connection's worker thread per query run on the pool, which doubled the cost of
        // small queries. A broken connection fails its query instead, and is replaced.
        .test_before_acquire(false)
        .after_connect(move |conn, _meta| {
            Box::pin(async move {
                if backend == Backend::Sqlite {
                    // WAL lets readers proceed during a write; NORMAL sync is durable in WAL
                    // mode except against power loss of the last transactions; busy_timeout
                    // makes a second writer wait instead of failing. Statement journals in
                    // memory, reads through a memory map and a larger page cache keep the
                    // write section off the file system (a profile of sends showed 8 % in
                    // statement journal writes and 8 % in page reads); checkpoints run in
                    // the background (see `checkpoint`).
                    conn.execute(
                        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                         PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON; \
                         PRAGMA temp_store = MEMORY; PRAGMA mmap_size = 1073741824; \
                         PRAGMA cache_size = -32000; PRAGMA wal_autocheckpoint = 0;",
                    )
                    .await?;
                }
                Ok(())
            })
        })
}

impl Db {
    /// Connects to `config.url`, creating the SQLite file (and its directory) if needed.
    pub async fn connect(config: &DatabaseConfig) -> anyhow::Result<Db> {
        sqlx::any::install_default_drivers();
        let backend = if config.url.starts_with("sqlite:") { Backend::Sqlite } else { Backend::Postgres };
        let url = match backend {
            Backend::Sqlite => sqlite_url(&config.url)?,
            Backend::Postgres => config.url.clone(),
        };
        let options = AnyConnectOptions::from_str(&url).context("parsing database.url")?;
        let connect = |max_connections: u32| {
            let options = options.clone();
            async move {
                pool_options(backend, max_connections)
                    .connect_with(options)
                    .await
                    .with_context(|| format!("connecting to database {}", redact_url(&config.url)))
            }
        };
        let pool = connect(match backend {
            Backend::Sqlite => config.max_connections.min(SQLITE_MAX_CONNECTIONS),
            Backend::Postgres => config.max_connections,
        })
        .await?;
        let sqlite_writer = Arc::new(tokio::sync::Mutex::new(()));
        let (write_pool, checkpointer) = match backend {
            Backend::Sqlite => {
                // The one writer has a connection of its own: a writer that had to wait for a
                // reader's connection while every reader waited for the writer lock (a sync
                // that writes, say) wedged the pool under load.
                let write_pool = connect(1).await?;
                let mut wal = sqlite_file(&url).into_os_string();
                wal.push("-wal");
                let connections = checkpoint::Connections {
                    readers: pool.clone(),
                    writer: write_pool.clone(),
                    writer_lock: sqlite_writer.clone(),
                };
                let checkpointer = checkpoint::spawn(connections, wal.into());
                (write_pool, Some(checkpointer))
            }
            Backend::Postgres => (pool.clone(), None),
        };
        let (events, streams) = (Arc::new(EventPositions::default()), Arc::new(Committed::default()));
        let outbox = Arc::new(outbox::Signal::default());
        Ok(Db { pool, write_pool, backend, events, streams, sqlite_writer, checkpointer, outbox })
    }

    /// Applies every pending migration of this backend.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        let migrator = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.run(&self.pool).await.context("applying database migrations")?;
        let last =
            events::max_stream_ordering(&self.pool).await.context("reading the last event position")?;
        self.events.start_after(last);
        let lowest =
            backfill::lowest_position(&self.pool).await.context("reading the lowest event position")?;
        self.events.start_backfill_below(lowest);
        let mut conn = self.pool.acquire().await.context("reading the stream positions")?;
        self.streams.load(streams::current_all(&mut conn).await.context("reading the stream positions")?);
        Ok(())
    }

    /// Which engine this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The pool, for single statements outside a transaction.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Starts a write transaction. On SQLite, writers first queue on an in-process lock (SQLite
    /// allows one writer; waiting in SQLite's busy handler sleeps and retries, which wrecks tail
    /// latency), then take the database lock up front with `BEGIN IMMEDIATE` (a deferred
    /// transaction that reads and then writes can fail with `SQLITE_BUSY` instead of waiting).
    pub async fn begin(&self) -> sqlx::Result<WriteTx> {
        match self.backend {
            Backend::Sqlite => {
                let started = std::time::Instant::now();
                let guard = self.sqlite_writer.clone().lock_owned().await;
                let tx = self.write_pool.begin_with("BEGIN IMMEDIATE").await?;
                let waited = started.elapsed();
                if waited > SLOW_WRITER_WAIT {
                    tracing::debug!(
                        waited_ms = waited.as_secs_f64() * 1e3,
                        "a writer waited for the writer lock"
                    );
                }
                Ok(self.write_tx(tx, Some(guard)))
            }
            Backend::Postgres => {
                let tx = self.write_pool.begin().await?;
                Ok(self.write_tx(tx, None))
            }
        }
    }

    fn write_tx(
        &self,
        tx: Transaction<'static, Any>,
        writer: Option<tokio::sync::OwnedMutexGuard<()>>,
    ) -> WriteTx {
        let held = Held::new(self.events.clone());
        WriteTx {
            tx,
            held,
            streams: Vec::new(),
            committed: self.streams.clone(),
            outbox_queued: Default::default(),
            outbox: self.outbox.clone(),
            _writer: writer,
            began: std::time::Instant::now(),
        }
    }

    /// Notified after every commit that queued rows in the federation outbox (the sender waits
    /// on it; see `storage::outbox`).
    pub fn outbox_signal(&self) -> &outbox::Signal {
        &self.outbox
    }

    /// The other streams' committed positions.
    pub fn streams(&self) -> &Committed {
        &self.streams
    }

    /// The event stream's positions: how far readers may go, and the commit hook.
    pub fn events(&self) -> &EventPositions {
        &self.events
    }

    /// Open and idle connection counts, for metrics.
    pub fn pool_stats(&self) -> (u32, usize) {
        (self.pool.size(), self.pool.num_idle())
    }

    /// Closes every connection; waits for checked-out ones to come back.
    pub async fn close(&self) {
        self.pool.close().await;
        self.write_pool.close().await;
    }
}

/// A fresh, migrated SQLite database in `dir`, for unit tests.
#[cfg(test)]
pub(crate) async fn test_db(dir: &tempfile::TempDir) -> Db {
    let url = format!("sqlite://{}/h.db", dir.path().display());
    let db = Db::connect(&DatabaseConfig { url, max_connections: 2 }).await.expect("connect");
    db.migrate().await.expect("migrate");
    db
}

/// Whether `write`, started while another transaction holds the writer, runs before a writer
/// that queued after it: that it waits in the writer queue (FIFO), not in SQLite's busy handler,
/// which lets later writers pass. For tests of writes outside a caller's transaction.
#[cfg(test)]
pub(crate) async fn writes_in_turn(db: &Db, write: impl Future<Output = sqlx::Result<()>>) -> bool {
    let holder = db.begin().await.expect("begin");
    let done = std::sync::atomic::AtomicBool::new(false);
    let write = async {
        write.await.expect("the write");
        done.store(true, std::sync::atomic::Ordering::SeqCst);
    };
    let later = async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let tx = db.begin().await.expect("begin");
        let in_turn = done.load(std::sync::atomic::Ordering::SeqCst);
        tx.commit().await.expect("commit");
        in_turn
    };
    let release = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        holder.commit().await.expect("commit");
    };
    let ((), in_turn, ()) = tokio::join!(write, later, release);
    in_turn
}

/// Reads `column` as a typed Matrix ID (user, room…); a stored ID that does not parse is a
/// decode error.
pub(crate) fn id_column<T>(row: &sqlx::any::AnyRow, column: &str) -> sqlx::Result<T>
where
    T: TryFrom<String>,
    T::Error: std::error::Error + Send + Sync + 'static,
{
    let id: String = sqlx::Row::try_get(row, column)?;
    T::try_from(id).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

/// A string field of the content of the event in `alias.json`, extracted in SQL (the dialects
/// differ). `alias` and `field` are SQL text, never user input.
pub(crate) fn content_field(backend: Backend, alias: &str, field: &str) -> String {
    match backend {
        Backend::Sqlite => format!("json_extract({alias}.json, '$.content.{field}')"),
        Backend::Postgres => format!("({alias}.json::json -> 'content' ->> '{field}')"),
    }
}

/// Escapes `LIKE`'s wildcards (`%`, `_`) and its escape character `\` (queries say
/// `ESCAPE '\'`), so user input matches literally.
pub(crate) fn escape_like(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// `$first, $first+1, …`: `count` numbered parameters for an `IN (…)` list.
pub(crate) fn placeholders(first: usize, count: usize) -> String {
    (first..first + count).map(|n| format!("${n}")).collect::<Vec<_>>().join(", ")
}

/// Most IDs one statement takes in an `IN (…)` list; longer lists are split, well under both
/// engines' parameter limits.
pub(crate) const IDS_PER_STATEMENT: usize = 500;

/// Placeholders for a statement whose parameter count grows with its input (`IN` lists over
/// many rooms or events), handed out in binding order: anonymous (`?`) on SQLite, where binding
/// numbered ones is quadratic (see [`row_values`]), `$n` on PostgreSQL. A statement must take
/// all of its placeholders from one `Params`, and bind a value once per placeholder.
pub(crate) struct Params {
    anonymous: bool,
    next: usize,
}

impl Params {
    /// Placeholders for a statement run on `conn`.
    pub(crate) fn new(conn: &Conn) -> Params {
        Params { anonymous: conn.backend_name() == "SQLite", next: 1 }
    }

    /// The next placeholder.
    pub(crate) fn one(&mut self) -> String {
        self.next += 1;
        if self.anonymous { "?".to_owned() } else { format!("${}", self.next - 1) }
    }

    /// `count` placeholders separated by commas, for an `IN (…)` list.
    pub(crate) fn list(&mut self, count: usize) -> String {
        (0..count).map(|_| self.one()).collect::<Vec<_>>().join(", ")
    }
}

/// `($1, $2, …), (…), …`: the `VALUES` list of a multi-row insert of `rows` rows of `columns`
/// columns, with [`Params`] (anonymous on SQLite: a thousand rows with numbered parameters took
/// tens of milliseconds to bind).
pub(crate) fn row_values(conn: &Conn, rows: usize, columns: usize) -> String {
    let mut params = Params::new(conn);
    (0..rows).map(|_| format!("({})", params.list(columns))).collect::<Vec<_>>().join(", ")
}

/// The database file of a SQLite URL.
fn sqlite_file(url: &str) -> std::path::PathBuf {
    let path = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
    std::path::PathBuf::from(path.split('?').next().unwrap_or_default())
}

/// Adds `mode=rwc` (create if missing) to a SQLite URL and creates the parent directory.
fn sqlite_url(url: &str) -> anyhow::Result<String> {
    let file = sqlite_file(url);
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    Ok(if url.contains("mode=") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    })
}

/// The URL without its password, for logs and `config check`.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_the_logs() {
        assert_eq!(redact_url("postgres://bob:secret@db:5432/x"), "postgres://bob:***@db:5432/x");
        assert_eq!(redact_url("postgres://bob@db/x"), "postgres://bob@db/x");
        assert_eq!(redact_url("sqlite://data/hearth.db"), "sqlite://data/hearth.db");
    }

    #[test]
    fn sqlite_urls_create_missing_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}/sub/h.db", dir.path().display());
        assert!(sqlite_url(&url).expect("url").ends_with("h.db?mode=rwc"));
        assert!(dir.path().join("sub").is_dir());
    }

    /// Regression: with every read connection held by tasks that then wanted to write, the
    /// writer waited for a read connection it could never get (500 WebSocket members recording
    /// deliveries wedged the server). The writer's connection is its own.
    #[tokio::test]
    async fn a_writer_never_waits_for_a_read_connection() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = test_db(&dir).await;
        let mut readers = Vec::new();
        while let Ok(Ok(conn)) = tokio::time::timeout(Duration::from_millis(200), db.pool().acquire()).await {
            readers.push(conn);
        }
        assert!(!readers.is_empty(), "the pool handed out its connections");
        let tx = tokio::time::timeout(Duration::from_secs(5), db.begin()).await;
        let tx = tx.expect("begin does not wait for the readers").expect("begin");
        tx.commit().await.expect("commit");
    }
}

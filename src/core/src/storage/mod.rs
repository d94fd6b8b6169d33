//! Storage: the only place in Hearth that speaks SQL. One API over SQLite (the embedded default)
//! and PostgreSQL (production and scale-out), through sqlx's `Any` driver; queries use `$n`
//! parameters, which both backends accept. Dialect differences live behind small functions here.
//!
//! Callers own transactions: `let mut tx = hs.db().begin().await?; users::insert(&mut tx, ..)`.

pub mod account_data;
pub mod aliases;
pub mod devices;
pub mod directory;
pub mod e2ee_keys;
pub mod events;
pub mod filters;
pub mod history;
pub mod nonces;
pub mod presence;
pub mod redactions;
pub mod relations;
pub mod rooms;
pub mod state;
pub mod streams;
pub mod tokens;
pub mod txns;
pub mod uia;
pub mod users;

use std::{
    str::FromStr,
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
    time::Duration,
};

use anyhow::Context;
use sqlx::{
    Any, AnyPool, Executor, Transaction,
    any::{AnyConnectOptions, AnyPoolOptions},
    migrate::Migrator,
};

use crate::config::DatabaseConfig;

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
    backend: Backend,
    /// SQLite's last stream position, read once inside a write transaction and then counted in
    /// memory: SQLite has one writer, holding the write lock while it takes the next position.
    sqlite_stream: tokio::sync::OnceCell<AtomicI64>,
    /// Queues SQLite writers in FIFO order (see [`Db::begin`]).
    sqlite_writer: Arc<tokio::sync::Mutex<()>>,
}

/// A write transaction; rolled back when dropped without [`commit`](WriteTx::commit).
pub struct WriteTx {
    tx: Transaction<'static, Any>,
    _writer: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl WriteTx {
    /// Commits, then lets the next writer in.
    pub async fn commit(self) -> sqlx::Result<()> {
        self.tx.commit().await
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
        let pool = AnyPoolOptions::new()
            .max_connections(config.max_connections)
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers proceed during a write; NORMAL sync is durable in WAL
                        // mode except against power loss of the last transactions; busy_timeout
                        // makes a second writer wait instead of failing.
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                             PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON;",
                        )
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .with_context(|| format!("connecting to database {}", redact_url(&config.url)))?;
        Ok(Db {
            pool,
            backend,
            sqlite_stream: tokio::sync::OnceCell::new(),
            sqlite_writer: Arc::new(tokio::sync::Mutex::new(())),
        })
    }

    /// Applies every pending migration of this backend.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        let migrator = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.run(&self.pool).await.context("applying database migrations")
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
                let guard = self.sqlite_writer.clone().lock_owned().await;
                let tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
                Ok(WriteTx { tx, _writer: Some(guard) })
            }
            Backend::Postgres => Ok(WriteTx { tx: self.pool.begin().await?, _writer: None }),
        }
    }

    /// The next position in the global event stream; call inside a write transaction. SQLite
    /// counts in memory, PostgreSQL takes it from a sequence.
    pub async fn next_stream_ordering(&self, conn: &mut Conn) -> sqlx::Result<i64> {
        match self.backend {
            Backend::Postgres => events::stream_ordering_in_tx(conn, self.backend).await,
            Backend::Sqlite => {
                let counter = self
                    .sqlite_stream
                    .get_or_try_init(|| async {
                        events::stream_ordering_in_tx(conn, self.backend).await.map(AtomicI64::new)
                    })
                    .await?;
                Ok(counter.fetch_add(1, Ordering::SeqCst) + 1)
            }
        }
    }

    /// `n` consecutive stream positions, like [`next_stream_ordering`](Self::next_stream_ordering).
    pub async fn next_stream_orderings(&self, conn: &mut Conn, n: usize) -> sqlx::Result<Vec<i64>> {
        match self.backend {
            Backend::Postgres => {
                let rows = sqlx::query(
                    "SELECT nextval('events_stream_seq') AS next FROM generate_series(1, $1) ORDER BY next",
                )
                .bind(i64::try_from(n).unwrap_or(i64::MAX))
                .fetch_all(conn)
                .await?;
                rows.iter().map(|r| sqlx::Row::try_get(r, "next")).collect()
            }
            Backend::Sqlite => {
                let mut positions = Vec::with_capacity(n);
                for _ in 0..n {
                    positions.push(self.next_stream_ordering(&mut *conn).await?);
                }
                Ok(positions)
            }
        }
    }

    /// Open and idle connection counts, for metrics.
    pub fn pool_stats(&self) -> (u32, usize) {
        (self.pool.size(), self.pool.num_idle())
    }

    /// Closes every connection; waits for checked-out ones to come back.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Adds `mode=rwc` (create if missing) to a SQLite URL and creates the parent directory.
fn sqlite_url(url: &str) -> anyhow::Result<String> {
    let path = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
    let file = path.split('?').next().unwrap_or_default();
    if let Some(dir) = std::path::Path::new(file).parent().filter(|d| !d.as_os_str().is_empty()) {
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
}

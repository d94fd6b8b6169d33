//! SQLite WAL checkpoints, off the write path. By default SQLite checkpoints inside the commit
//! that fills the WAL past 1 000 pages: that commit, and every writer queued behind it, waits
//! for the copy and its fsync (12 % of the send path's time in a profile). Hearth turns the
//! automatic checkpoint off and runs one here twice a second in `PASSIVE` mode on a reader's
//! connection, which copies what it can without blocking writers or readers.
//!
//! The WAL file only starts over from its beginning when a writer begins after a checkpoint
//! copied *every* frame back and no reader is left on an older snapshot (sqlx keeps a
//! connection's last statement, and with it its snapshot, until the connection's next query);
//! the connections' `journal_size_limit` then has that writer cut the file back to
//! [`WAL_RESTART_BYTES`]. Under constant load that rarely happens by itself, so once the WAL
//! passes [`WAL_RESTART_BYTES`] the checkpointer runs a `RESTART` checkpoint on the writer's
//! connection under the writer lock — only at a moment the writer is idle (`try_lock`: it never
//! queues behind writers), with little left to copy (the passive one did the bulk), waiting at
//! most 20 ms for readers (a long reader must not hold commits up; the next round tries again)
//! — unless the WAL has passed [`WAL_FORCE_BYTES`], when it waits for the writer lock and for
//! every reader: the bound on the WAL. A `TRUNCATE` checkpoint used to do this, queued for the
//! writer lock whatever the load, waiting up to the 10 s busy timeout for readers and
//! truncating the file under the lock: 104–197 ms per stall under load (docs/BENCHMARKS.md).

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use sqlx::{AnyPool, Row};
use tokio::task::AbortHandle;

/// WAL size past which the checkpointer makes the WAL start over, and the size the writer cuts
/// its file back to when it does (the connections' `journal_size_limit`).
pub(super) const WAL_RESTART_BYTES: u64 = 64 * 1024 * 1024;
/// WAL size past which the checkpointer waits for the writer rather than for a moment when it
/// is idle: the bound on the WAL under a writer that never rests.
const WAL_FORCE_BYTES: u64 = 4 * WAL_RESTART_BYTES;
/// How long a `RESTART` checkpoint below [`WAL_FORCE_BYTES`] waits for readers.
const BRIEF_BUSY_TIMEOUT: &str = "PRAGMA busy_timeout = 20";

/// The database's connections as the checkpointer uses them: passive checkpoints run on a
/// reader's connection, so writers never wait for them; the catching-up one on the writer's
/// connection, under the writer lock.
pub(super) struct Connections {
    /// The read pool.
    pub readers: AnyPool,
    /// The writer's own connection.
    pub writer: AnyPool,
    /// The writer lock.
    pub writer_lock: Arc<tokio::sync::Mutex<()>>,
}

/// When the checkpointer runs and how far it lets the WAL grow.
#[derive(Clone, Copy, Debug)]
struct Limits {
    /// How often the WAL is checkpointed.
    interval: Duration,
    /// See [`WAL_RESTART_BYTES`].
    restart_above: u64,
    /// See [`WAL_FORCE_BYTES`].
    force_above: u64,
}

const LIMITS: Limits = Limits {
    interval: Duration::from_millis(500),
    restart_above: WAL_RESTART_BYTES,
    force_above: WAL_FORCE_BYTES,
};

/// Starts the checkpointer of the database whose WAL file is `wal`; it runs until the read pool
/// closes or the returned handle aborts it.
pub(super) fn spawn(connections: Connections, wal: PathBuf) -> AbortHandle {
    spawn_with(connections, wal, LIMITS)
}

/// What a checkpoint reported: `PRAGMA wal_checkpoint`'s row.
#[derive(Clone, Copy, Debug)]
struct Progress {
    /// Frames in the WAL.
    log: i64,
    /// Of those, frames copied back to the database.
    checkpointed: i64,
}

impl Progress {
    /// Whether every frame is back in the database, so the next writer starts the WAL over.
    fn caught_up(&self) -> bool {
        self.checkpointed >= self.log
    }
}

/// Runs `PRAGMA wal_checkpoint(mode)` on a connection of `pool`.
async fn wal_checkpoint(pool: &AnyPool, mode: Mode) -> sqlx::Result<Progress> {
    let sql = match mode {
        Mode::Passive => "PRAGMA wal_checkpoint(PASSIVE)",
        Mode::Restart => "PRAGMA wal_checkpoint(RESTART)",
    };
    let row = sqlx::query(sql).fetch_one(pool).await?;
    Ok(Progress { log: row.try_get(1)?, checkpointed: row.try_get(2)? })
}

/// The checkpoint modes used (SQLite: Checkpoint a database).
#[derive(Clone, Copy, Debug)]
enum Mode {
    /// Copies what it can; never waits for anyone.
    Passive,
    /// Waits for readers on old snapshots, then copies everything, and has the next writer
    /// start the WAL over.
    Restart,
}

fn spawn_with(connections: Connections, wal: PathBuf, limits: Limits) -> AbortHandle {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(limits.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if connections.readers.is_closed() {
                return;
            }
            if let Err(error) = checkpoint(&connections, &wal, &limits).await {
                tracing::warn!(%error, "SQLite WAL checkpoint failed");
            }
        }
    })
    .abort_handle()
}

/// One round of the checkpointer.
async fn checkpoint(connections: &Connections, wal: &Path, limits: &Limits) -> sqlx::Result<()> {
    let started = std::time::Instant::now();
    let progress = wal_checkpoint(&connections.readers, Mode::Passive).await?;
    let wal_bytes = std::fs::metadata(wal).map_or(0, |m| m.len());
    tracing::debug!(
        elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
        wal_bytes,
        caught_up = progress.caught_up(),
        "passive WAL checkpoint"
    );
    if wal_bytes <= limits.restart_above {
        return Ok(());
    }
    // Caught up or not, the WAL only starts over once no reader is left on a snapshot from
    // before the last checkpoint (sqlx keeps a connection's last statement, and its snapshot,
    // until the connection's next query), which only a `RESTART` checkpoint waits for. With
    // commits held off it has little left to copy: the passive one did the bulk.
    let waited = std::time::Instant::now();
    let force = wal_bytes > limits.force_above;
    let writers_wait = if force {
        Some(connections.writer_lock.lock().await)
    } else {
        connections.writer_lock.try_lock().ok()
    };
    let Some(_writers_wait) = writers_wait else { return Ok(()) };
    let locked = std::time::Instant::now();
    // Readers on old snapshots are waited for briefly (unless the WAL is past the bound): a
    // long one, such as an export, must not hold every commit up; the next round tries again.
    let progress = if force {
        wal_checkpoint(&connections.writer, Mode::Restart).await
    } else {
        sqlx::query(BRIEF_BUSY_TIMEOUT).execute(&connections.writer).await?;
        let progress = wal_checkpoint(&connections.writer, Mode::Restart).await;
        sqlx::query(super::BUSY_TIMEOUT).execute(&connections.writer).await?;
        progress
    }?;
    tracing::debug!(
        lock_wait_ms = (locked - waited).as_secs_f64() * 1e3,
        held_ms = locked.elapsed().as_secs_f64() * 1e3,
        caught_up = progress.caught_up(),
        "WAL restarting checkpoint, writers paused"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{Db, test_db};

    /// The connections of `db`, the writer's cutting the WAL file back to nothing when it
    /// starts over.
    async fn connections(db: &Db) -> Connections {
        sqlx::query("PRAGMA journal_size_limit = 0").execute(&db.write_pool).await.expect("pragma");
        Connections {
            readers: db.pool.clone(),
            writer: db.write_pool.clone(),
            writer_lock: db.sqlite_writer.clone(),
        }
    }

    /// Commits a row of `bytes` bytes into the `filler` table.
    async fn write(db: &Db, bytes: usize) {
        let mut tx = db.begin().await.expect("begin");
        sqlx::query("INSERT INTO filler VALUES ($1)")
            .bind("x".repeat(bytes))
            .execute(&mut *tx)
            .await
            .expect("insert");
        tx.commit().await.expect("commit");
    }

    async fn filler_db(dir: &tempfile::TempDir) -> Db {
        let db = test_db(dir).await;
        sqlx::query("CREATE TABLE filler (x TEXT)").execute(db.pool()).await.expect("create");
        db
    }

    fn size(wal: &std::path::Path) -> u64 {
        std::fs::metadata(wal).map_or(0, |m| m.len())
    }

    #[tokio::test]
    async fn the_wal_stays_bounded_under_sustained_writes_and_reads() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = filler_db(&dir).await;
        let wal = dir.path().join("h.db-wal");
        let limits = Limits { interval: Duration::ZERO, restart_above: 1 << 20, force_above: 4 << 20 };
        let connections = connections(&db).await;
        let reading = std::sync::atomic::AtomicBool::new(true);
        let reader = async {
            while reading.load(std::sync::atomic::Ordering::SeqCst) {
                sqlx::query("SELECT count(*) FROM filler").fetch_one(db.pool()).await.expect("read");
            }
        };
        let writer = async {
            let mut largest = 0;
            // About 40 MiB written in all, a checkpoint round after each 100 kB.
            for i in 0..4_000 {
                write(&db, 10_000).await;
                largest = largest.max(size(&wal));
                if i % 10 == 9 {
                    checkpoint(&connections, &wal, &limits).await.expect("checkpoint");
                }
            }
            reading.store(false, std::sync::atomic::Ordering::SeqCst);
            largest
        };
        let ((), largest) = tokio::join!(reader, writer);
        assert!(largest < (4 << 20) + (1 << 20), "the WAL reached {largest} bytes");
    }

    /// Regression: past the size limit, a `TRUNCATE` checkpoint took the writer lock and then
    /// waited (up to the 10 s busy timeout) for every reader on an older snapshot to finish,
    /// and every commit waited with it.
    #[tokio::test]
    async fn a_reader_on_an_old_snapshot_never_holds_up_writers_through_the_checkpointer() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = filler_db(&dir).await;
        let wal = dir.path().join("h.db-wal");
        write(&db, 100_000).await;
        let mut old_reader = db.pool().acquire().await.expect("reader");
        sqlx::query("BEGIN").execute(&mut *old_reader).await.expect("begin");
        sqlx::query("SELECT count(*) FROM filler").fetch_one(&mut *old_reader).await.expect("read");
        write(&db, 100_000).await;

        let limits = Limits { interval: Duration::from_millis(10), restart_above: 0, force_above: u64::MAX };
        let checkpointer = spawn_with(connections(&db).await, wal.clone(), limits);
        // Many checkpoints pass while the reader stays; every commit still goes through.
        let start = std::time::Instant::now();
        while start.elapsed() < limits.interval * 30 {
            let committed = tokio::time::timeout(Duration::from_secs(5), write(&db, 1_000)).await;
            assert!(committed.is_ok(), "a commit waited for the checkpointer");
        }
        sqlx::query("COMMIT").execute(&mut *old_reader).await.expect("end the read");
        drop(old_reader);

        // Once the reader is gone the WAL starts over and its file is cut back.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            write(&db, 10).await;
            if size(&wal) < 50_000 {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "the WAL never started over: {} bytes", size(&wal));
            tokio::time::sleep(limits.interval).await;
        }
        checkpointer.abort();
    }
}

/// A/B of the checkpointer against the `TRUNCATE` one it replaced, on the same workload:
/// `cargo test -p hearth-core --lib checkpoint::bench -- --ignored --nocapture`.
#[cfg(test)]
mod bench {
    use std::time::Instant;

    use super::*;
    use crate::storage::{Db, test_db};

    /// The checkpointer before: a `TRUNCATE` checkpoint under the writer lock past the limit.
    fn truncating(connections: Connections, wal: PathBuf, limits: Limits) -> AbortHandle {
        let Connections { readers, writer, writer_lock } = connections;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(limits.interval);
            loop {
                tick.tick().await;
                let _ = wal_checkpoint(&readers, Mode::Passive).await;
                if std::fs::metadata(&wal).map_or(0, |m| m.len()) > limits.restart_above {
                    let _writers_wait = writer_lock.lock().await;
                    let _ = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&writer).await;
                }
            }
        })
        .abort_handle()
    }

    /// 20 s of 200 write transactions a second (20 indexed rows of 1 kB each, like a batch of
    /// messages) with two readers; the writers' waits for the writer lock.
    async fn run(db: &Db, wal: &std::path::Path) -> (Vec<f64>, u64) {
        let stop = Instant::now() + Duration::from_secs(20);
        let reader = || async {
            let mut n = 0i64;
            while Instant::now() < stop {
                n += 1;
                let read = sqlx::query("SELECT count(*) FROM bench WHERE k BETWEEN $1 AND $2")
                    .bind(n * 7919 % 1_000_000)
                    .bind(n * 7919 % 1_000_000 + 1000)
                    .fetch_one(db.pool())
                    .await;
                if let Err(error) = read {
                    println!("a read failed: {error}");
                }
            }
        };
        let writer = async {
            let (mut waits, mut largest, mut n) = (Vec::new(), 0, 0i64);
            let mut tick = tokio::time::interval(Duration::from_millis(5));
            while Instant::now() < stop {
                tick.tick().await;
                let asked = Instant::now();
                let mut tx = db.begin().await.expect("begin");
                waits.push(asked.elapsed().as_secs_f64() * 1e3);
                for _ in 0..20 {
                    n += 1;
                    sqlx::query("INSERT INTO bench (k, v) VALUES ($1, $2)")
                        .bind(n * 104_729 % 1_000_000)
                        .bind("v".repeat(1000))
                        .execute(&mut *tx)
                        .await
                        .expect("insert");
                }
                tx.commit().await.expect("commit");
                largest = largest.max(std::fs::metadata(wal).map_or(0, |m| m.len()));
            }
            (waits, largest)
        };
        let ((), (), result) = tokio::join!(reader(), reader(), writer);
        result
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "a 40 s benchmark"]
    async fn bench_writer_waits_with_each_checkpointer() {
        let limits =
            Limits { interval: Duration::from_millis(500), restart_above: 16 << 20, force_above: 64 << 20 };
        for old in [true, false] {
            let dir = tempfile::tempdir().expect("tempdir");
            let db = test_db(&dir).await;
            sqlx::query("CREATE TABLE bench (k BIGINT, v TEXT)").execute(db.pool()).await.expect("create");
            sqlx::query("CREATE INDEX bench_k ON bench (k)").execute(db.pool()).await.expect("index");
            let wal = dir.path().join("h.db-wal");
            let connections = Connections {
                readers: db.pool.clone(),
                writer: db.write_pool.clone(),
                writer_lock: db.sqlite_writer.clone(),
            };
            let checkpointer = if old {
                truncating(connections, wal.clone(), limits)
            } else {
                sqlx::query("PRAGMA journal_size_limit = 16777216")
                    .execute(&db.write_pool)
                    .await
                    .expect("limit");
                spawn_with(connections, wal.clone(), limits)
            };
            let (mut waits, largest) = run(&db, &wal).await;
            checkpointer.abort();
            waits.sort_by(f64::total_cmp);
            let at = |q: f64| waits[((waits.len() - 1) as f64 * q) as usize];
            let over = |ms: f64| waits.iter().filter(|w| **w > ms).count();
            println!(
                "{}: {} writes, writer-lock wait p50 {:.2} ms, p99 {:.2}, p99.9 {:.2}, max {:.1}; \
                 waits over 20 ms: {}, over 50 ms: {}; largest WAL {:.1} MiB",
                if old { "TRUNCATE under the writer lock" } else { "RESTART when the writer is idle" },
                waits.len(),
                at(0.5),
                at(0.99),
                at(0.999),
                at(1.0),
                over(20.0),
                over(50.0),
                largest as f64 / (1 << 20) as f64
            );
        }
    }
}

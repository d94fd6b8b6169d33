//! SQLite WAL checkpoints, off the write path. By default SQLite checkpoints inside the commit
//! that fills the WAL past 1 000 pages: that commit, and every writer queued behind it, waits
//! for the copy and its fsync (12 % of the send path's time in a profile). Hearth turns the
//! automatic checkpoint off and runs one here twice a second in `PASSIVE` mode, which copies
//! what it can without blocking writers or readers. Under a constant write load a passive
//! checkpoint never catches up with the end of the WAL, so the WAL cannot restart from the
//! beginning; once it passes [`WAL_TRUNCATE_BYTES`] the checkpointer follows the passive
//! checkpoint with a `TRUNCATE` one under the writer lock, which copies the few frames written
//! meanwhile and empties the file.

use std::{path::PathBuf, sync::Arc, time::Duration};

use sqlx::AnyPool;
use tokio::task::AbortHandle;

/// How often the WAL is checkpointed.
const INTERVAL: Duration = Duration::from_millis(500);
/// WAL size past which writers are paused for a checkpoint that empties it.
const WAL_TRUNCATE_BYTES: u64 = 64 * 1024 * 1024;

/// The database's connections as the checkpointer uses them: passive checkpoints run on a
/// reader's connection, so writers never wait for them; truncating ones on the writer's
/// connection, under the writer lock.
pub(super) struct Connections {
    /// The read pool.
    pub readers: AnyPool,
    /// The writer's own connection.
    pub writer: AnyPool,
    /// The writer lock.
    pub writer_lock: Arc<tokio::sync::Mutex<()>>,
}

/// Starts the checkpointer of the database whose WAL file is `wal`; it runs until the read pool
/// closes or the returned handle aborts it.
pub(super) fn spawn(connections: Connections, wal: PathBuf) -> AbortHandle {
    spawn_truncating_above(connections, wal, WAL_TRUNCATE_BYTES)
}

fn spawn_truncating_above(connections: Connections, wal: PathBuf, truncate_above: u64) -> AbortHandle {
    let Connections { readers, writer, writer_lock } = connections;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if readers.is_closed() {
                return;
            }
            // The passive checkpoint copies most of the WAL without stopping anyone; a WAL
            // that is still too long is then emptied with writers paused, which only has the
            // frames written during the passive copy left to copy.
            let started = std::time::Instant::now();
            let mut result = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&readers).await;
            let wal_bytes = std::fs::metadata(&wal).map_or(0, |m| m.len());
            tracing::debug!(
                elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
                wal_bytes,
                "passive WAL checkpoint"
            );
            if result.is_ok() && wal_bytes > truncate_above {
                let waited = std::time::Instant::now();
                let _writers_wait = writer_lock.lock().await;
                let locked = std::time::Instant::now();
                result = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&writer).await;
                tracing::debug!(
                    lock_wait_ms = (locked - waited).as_secs_f64() * 1e3,
                    elapsed_ms = locked.elapsed().as_secs_f64() * 1e3,
                    "truncating WAL checkpoint, writers paused"
                );
            }
            if let Err(error) = result {
                tracing::warn!(%error, "SQLite WAL checkpoint failed");
            }
        }
    })
    .abort_handle()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_wal_is_checkpointed_and_emptied_in_the_background() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = super::super::test_db(&dir).await;
        let wal = dir.path().join("h.db-wal");
        let mut tx = db.begin().await.expect("begin");
        sqlx::query("CREATE TABLE filler (x TEXT)").execute(&mut *tx).await.expect("create");
        sqlx::query("INSERT INTO filler VALUES ($1)")
            .bind("x".repeat(100_000))
            .execute(&mut *tx)
            .await
            .expect("fill");
        tx.commit().await.expect("commit");
        assert!(
            std::fs::metadata(&wal).expect("wal").len() > 100_000,
            "the write is in the WAL, not checkpointed"
        );

        let connections = Connections {
            readers: db.pool.clone(),
            writer: db.write_pool.clone(),
            writer_lock: db.sqlite_writer.clone(),
        };
        let checkpointer = spawn_truncating_above(connections, wal.clone(), 0);
        tokio::time::sleep(INTERVAL + Duration::from_millis(500)).await;
        checkpointer.abort();
        assert_eq!(std::fs::metadata(&wal).expect("wal").len(), 0);
    }
}

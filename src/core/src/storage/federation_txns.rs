//! The `federation_txns` table: the answer given to each transaction another server sent, so
//! that a retried transaction is answered the same without being processed again.

use sqlx::{Executor, Row};

/// The answer recorded for `(origin, txn_id)`, if that transaction was processed.
pub async fn get<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    origin: &str,
    txn_id: &str,
) -> sqlx::Result<Option<String>> {
    let row = sqlx::query("SELECT response FROM federation_txns WHERE origin = $1 AND txn_id = $2")
        .bind(origin)
        .bind(txn_id)
        .fetch_optional(executor)
        .await?;
    row.map(|r| r.try_get("response")).transpose()
}

/// Records the answer to `(origin, txn_id)` (the first one wins), in a write transaction of its
/// own. Through the writer queue like every write: on SQLite a write on a reader's connection
/// waits in SQLite's busy handler, which sleeps and polls while the queued writers hand the
/// lock on among themselves, and the sending server, which has one transaction in flight to
/// us, waited with it (docs/BENCHMARKS.md › Federation).
pub async fn insert(
    db: &super::Db,
    origin: &str,
    txn_id: &str,
    response: &str,
    now_ms: i64,
) -> sqlx::Result<()> {
    let mut tx = db.begin().await?;
    record(&mut *tx, origin, txn_id, response, now_ms).await?;
    tx.commit().await
}

/// Records the answer to `(origin, txn_id)` (the first one wins) in the caller's write
/// transaction: the one that stores the transaction's last PDUs, so the answer commits with them.
pub async fn record<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    origin: &str,
    txn_id: &str,
    response: &str,
    now_ms: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO federation_txns (origin, txn_id, response, created_ts) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (origin, txn_id) DO NOTHING",
    )
    .bind(origin)
    .bind(txn_id)
    .bind(response)
    .bind(now_ms)
    .execute(executor)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: the answer was recorded on a reader's connection, outside the writer queue,
    /// and waited behind every writer that came after it.
    #[tokio::test]
    async fn recording_an_answer_takes_its_turn_among_writers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = crate::storage::test_db(&dir).await;
        let record = insert(&db, "a.test", "t1", "{}", 0);
        assert!(crate::storage::writes_in_turn(&db, record).await);
        assert_eq!(get(db.pool(), "a.test", "t1").await.expect("get").as_deref(), Some("{}"));
    }
}

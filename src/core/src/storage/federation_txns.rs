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

/// Records the answer to `(origin, txn_id)` (the first one wins).
pub async fn insert<'c>(
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

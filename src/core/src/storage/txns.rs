//! The `transaction_ids` table: which event a client transaction ID produced.

use ruma::{DeviceId, UserId};
use sqlx::{Executor, Row};

/// The event a transaction produced, if it was seen before.
pub async fn get<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    user_id: &UserId,
    device_id: &DeviceId,
    txn_id: &str,
) -> sqlx::Result<Option<String>> {
    let row = sqlx::query(
        "SELECT event_id FROM transaction_ids WHERE user_id = $1 AND device_id = $2 AND txn_id = $3",
    )
    .bind(user_id.as_str())
    .bind(device_id.as_str())
    .bind(txn_id)
    .fetch_optional(executor)
    .await?;
    row.map(|r| r.try_get("event_id")).transpose()
}

/// Records the event a transaction produced.
pub async fn insert<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    user_id: &UserId,
    device_id: &DeviceId,
    txn_id: &str,
    event_id: &str,
) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO transaction_ids (user_id, device_id, txn_id, event_id) VALUES ($1, $2, $3, $4)")
        .bind(user_id.as_str())
        .bind(device_id.as_str())
        .bind(txn_id)
        .bind(event_id)
        .execute(executor)
        .await?;
    Ok(())
}

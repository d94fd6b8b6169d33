//! The `transaction_ids` table: which event a client transaction ID produced.

use ruma::{DeviceId, UserId};
use sqlx::{Executor, Row};

/// The event a transaction produced, if it was seen before. `scope` names the endpoint (and
/// its path parameters): transaction IDs are only unique per device and endpoint.
pub async fn get<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    user_id: &UserId,
    device_id: &DeviceId,
    scope: &str,
    txn_id: &str,
) -> sqlx::Result<Option<String>> {
    let row = sqlx::query(
        "SELECT event_id FROM transaction_ids WHERE user_id = $1 AND device_id = $2 AND scope = $3 \
         AND txn_id = $4",
    )
    .bind(user_id.as_str())
    .bind(device_id.as_str())
    .bind(scope)
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
    scope: &str,
    txn_id: &str,
    event_id: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO transaction_ids (user_id, device_id, scope, txn_id, event_id) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(user_id.as_str())
    .bind(device_id.as_str())
    .bind(scope)
    .bind(txn_id)
    .bind(event_id)
    .execute(executor)
    .await?;
    Ok(())
}

/// The transaction IDs with which `user_id` sent any of `event_ids` from `device_id`:
/// `(event_id, txn_id)` pairs.
pub async fn for_events<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    user_id: &UserId,
    device_id: &DeviceId,
    event_ids: &[&str],
) -> sqlx::Result<Vec<(String, String)>> {
    if event_ids.is_empty() {
        return Ok(Vec::new());
    }
    let placeholders: Vec<String> = (3..event_ids.len() + 3).map(|n| format!("${n}")).collect();
    let sql = format!(
        "SELECT event_id, txn_id FROM transaction_ids WHERE user_id = $1 AND device_id = $2 \
         AND event_id IN ({})",
        placeholders.join(", ")
    );
    let mut query = sqlx::query(&sql).bind(user_id.as_str()).bind(device_id.as_str());
    for event_id in event_ids {
        query = query.bind(*event_id);
    }
    let rows = query.fetch_all(executor).await?;
    rows.into_iter().map(|r| Ok((r.try_get("event_id")?, r.try_get("txn_id")?))).collect()
}

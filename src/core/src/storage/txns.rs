//! The `transaction_ids` table: which event a client transaction ID produced.

use ruma::{DeviceId, UserId};
use sqlx::{Executor, Row};

use super::{Conn, IDS_PER_STATEMENT, Params};

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
pub async fn for_events(
    conn: &mut Conn,
    user_id: &UserId,
    device_id: &DeviceId,
    event_ids: &[&str],
) -> sqlx::Result<Vec<(String, String)>> {
    // Looked up by event ID alone (each event has at most one row), then filtered here: given
    // the user and device as well, SQLite walks the primary key's (user, device) prefix, that
    // is every transaction the device ever sent.
    let mut found = Vec::new();
    for chunk in event_ids.chunks(IDS_PER_STATEMENT) {
        let sql = format!(
            "SELECT event_id, txn_id, user_id, device_id FROM transaction_ids WHERE event_id IN ({})",
            Params::new(conn).list(chunk.len())
        );
        let mut query = sqlx::query(&sql);
        for event_id in chunk {
            query = query.bind(*event_id);
        }
        for row in query.fetch_all(&mut *conn).await? {
            let (user, device): (String, String) = (row.try_get("user_id")?, row.try_get("device_id")?);
            if user == user_id.as_str() && device == device_id.as_str() {
                found.push((row.try_get("event_id")?, row.try_get("txn_id")?));
            }
        }
    }
    Ok(found)
}

/// A transaction to look up or record in bulk.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TxnKey {
    /// The user.
    pub user_id: String,
    /// The device.
    pub device_id: String,
    /// The endpoint scope.
    pub scope: String,
    /// The client's transaction ID.
    pub txn_id: String,
}

/// The events already produced by any of `keys`, in one query.
pub async fn get_many(conn: &mut super::Conn, keys: &[&TxnKey]) -> sqlx::Result<Vec<(TxnKey, String)>> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    // One primary-key lookup per key (an OR of full keys uses the index; `txn_id IN (..)`
    // alone would scan the table).
    let matches: Vec<String> = (0..keys.len())
        .map(|i| {
            let b = i * 4;
            format!(
                "(user_id = ${} AND device_id = ${} AND scope = ${} AND txn_id = ${})",
                b + 1,
                b + 2,
                b + 3,
                b + 4
            )
        })
        .collect();
    let sql = format!(
        "SELECT user_id, device_id, scope, txn_id, event_id FROM transaction_ids WHERE {}",
        matches.join(" OR ")
    );
    let mut query = sqlx::query(&sql);
    for key in keys {
        query = query
            .bind(key.user_id.as_str())
            .bind(key.device_id.as_str())
            .bind(key.scope.as_str())
            .bind(key.txn_id.as_str());
    }
    let rows = query.fetch_all(conn).await?;
    let mut found = Vec::new();
    for row in rows {
        let key = TxnKey {
            user_id: row.try_get("user_id")?,
            device_id: row.try_get("device_id")?,
            scope: row.try_get("scope")?,
            txn_id: row.try_get("txn_id")?,
        };
        if keys.contains(&&key) {
            found.push((key, row.try_get("event_id")?));
        }
    }
    Ok(found)
}

/// Records many transactions in one statement.
pub async fn insert_many(conn: &mut super::Conn, rows: &[(&TxnKey, &str)]) -> sqlx::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let values: Vec<String> = (0..rows.len())
        .map(|i| {
            let b = i * 5;
            format!("(${}, ${}, ${}, ${}, ${})", b + 1, b + 2, b + 3, b + 4, b + 5)
        })
        .collect();
    let sql = format!(
        "INSERT INTO transaction_ids (user_id, device_id, scope, txn_id, event_id) VALUES {}",
        values.join(", ")
    );
    let mut query = sqlx::query(&sql);
    for (key, event_id) in rows {
        query = query
            .bind(key.user_id.as_str())
            .bind(key.device_id.as_str())
            .bind(key.scope.as_str())
            .bind(key.txn_id.as_str())
            .bind(*event_id);
    }
    query.execute(conn).await?;
    Ok(())
}

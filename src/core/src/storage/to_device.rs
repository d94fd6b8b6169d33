//! The `device_inbox` table: send-to-device messages waiting for a local device, in order of
//! their position in the to-device stream.

use ruma::{DeviceId, UserId};
use sqlx::{Executor, Row};

use super::Conn;

/// Parameters per row in [`insert_many`]'s statement.
const PARAMS_PER_ROW: usize = 3;
/// Rows per statement, well below both backends' parameter limits.
const ROWS_PER_STATEMENT: usize = 1_000;

/// One message for one device.
#[derive(Clone, Copy, Debug)]
pub struct Delivery<'a> {
    /// The recipient.
    pub user_id: &'a UserId,
    /// The recipient's device.
    pub device_id: &'a DeviceId,
    /// The message content (a JSON object).
    pub content: &'a str,
}

/// A message waiting in a device's inbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InboxRow {
    /// Its position in the to-device stream.
    pub stream_id: i64,
    /// Who sent it.
    pub sender: String,
    /// The event type.
    pub kind: String,
    /// The content (a JSON object).
    pub content: String,
}

/// Queues messages of one request (`sender`, `kind`, one position) for their devices. Devices
/// that do not exist (any more) are skipped: the join against `devices` decides in the same
/// statement, so a device deleted meanwhile cannot fail the request.
pub async fn insert_many(
    conn: &mut Conn,
    stream_id: i64,
    sender: &UserId,
    kind: &str,
    deliveries: &[Delivery<'_>],
) -> sqlx::Result<()> {
    for chunk in deliveries.chunks(ROWS_PER_STATEMENT) {
        let values: Vec<String> = (0..chunk.len())
            .map(|i| {
                let b = 3 + i * PARAMS_PER_ROW;
                format!("(${}, ${}, ${})", b + 1, b + 2, b + 3)
            })
            .collect();
        let sql = format!(
            "WITH v (user_id, device_id, content) AS (VALUES {}) \
             INSERT INTO device_inbox (user_id, device_id, stream_id, sender, type, content) \
             SELECT d.user_id, d.device_id, $1, $2, $3, v.content \
             FROM v JOIN devices d ON d.user_id = v.user_id AND d.device_id = v.device_id",
            values.join(", ")
        );
        let mut query = sqlx::query(&sql).bind(stream_id).bind(sender.as_str()).bind(kind);
        for delivery in chunk {
            query = query
                .bind(delivery.user_id.as_str())
                .bind(delivery.device_id.as_str())
                .bind(delivery.content);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// The position of the oldest message waiting for the device, if any.
pub async fn oldest<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    user_id: &UserId,
    device_id: &DeviceId,
) -> sqlx::Result<Option<i64>> {
    let row = sqlx::query(
        "SELECT MIN(stream_id) AS oldest FROM device_inbox WHERE user_id = $1 AND device_id = $2",
    )
    .bind(user_id.as_str())
    .bind(device_id.as_str())
    .fetch_one(executor)
    .await?;
    row.try_get("oldest")
}

/// Deletes the device's messages up to and including position `upto`.
pub async fn delete_upto(
    conn: &mut Conn,
    user_id: &UserId,
    device_id: &DeviceId,
    upto: i64,
) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM device_inbox WHERE user_id = $1 AND device_id = $2 AND stream_id <= $3")
        .bind(user_id.as_str())
        .bind(device_id.as_str())
        .bind(upto)
        .execute(conn)
        .await?;
    Ok(())
}

/// At most `limit` of the device's messages with a position in `(after, upto]`, oldest first.
pub async fn page<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    user_id: &UserId,
    device_id: &DeviceId,
    after: i64,
    upto: i64,
    limit: i64,
) -> sqlx::Result<Vec<InboxRow>> {
    let rows = sqlx::query(
        "SELECT stream_id, sender, type, content FROM device_inbox \
         WHERE user_id = $1 AND device_id = $2 AND stream_id > $3 AND stream_id <= $4 \
         ORDER BY stream_id LIMIT $5",
    )
    .bind(user_id.as_str())
    .bind(device_id.as_str())
    .bind(after)
    .bind(upto)
    .bind(limit)
    .fetch_all(executor)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(InboxRow {
                stream_id: r.try_get("stream_id")?,
                sender: r.try_get("sender")?,
                kind: r.try_get("type")?,
                content: r.try_get("content")?,
            })
        })
        .collect()
}

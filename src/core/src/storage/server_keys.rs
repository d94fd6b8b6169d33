//! The `server_keys` table: other servers' ed25519 verify keys, fetched over federation.

use ruma::ServerName;
use sqlx::{Executor, Row};

/// One stored verify key of a remote server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredKey {
    /// The key ID, e.g. `ed25519:abc`.
    pub key_id: String,
    /// The public key, unpadded base64.
    pub public_key: String,
    /// Until when (ms) the server said the key may be used without asking again.
    pub valid_until_ts: i64,
    /// For a key the server no longer uses: when it stopped (ms).
    pub expired_ts: Option<i64>,
    /// When we learnt the key (ms).
    pub fetched_ts: i64,
    /// The signed `/_matrix/key/v2/server` response the key came in.
    pub response_json: String,
}

/// Stores `keys` of `server_name`, replacing what was stored under the same key IDs.
pub async fn upsert(pool: &sqlx::AnyPool, server_name: &ServerName, keys: &[StoredKey]) -> sqlx::Result<()> {
    for key in keys {
        sqlx::query(
            "INSERT INTO server_keys \
             (server_name, key_id, public_key, valid_until_ts, expired_ts, fetched_ts, response_json) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (server_name, key_id) DO UPDATE SET public_key = $3, \
             valid_until_ts = $4, expired_ts = $5, fetched_ts = $6, response_json = $7",
        )
        .bind(server_name.as_str())
        .bind(&key.key_id)
        .bind(&key.public_key)
        .bind(key.valid_until_ts)
        .bind(key.expired_ts)
        .bind(key.fetched_ts)
        .bind(&key.response_json)
        .execute(pool)
        .await?;
    }
    Ok(())
}

/// Every stored key of `server_name`.
pub async fn get<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    server_name: &ServerName,
) -> sqlx::Result<Vec<StoredKey>> {
    let rows = sqlx::query(
        "SELECT key_id, public_key, valid_until_ts, expired_ts, fetched_ts, response_json FROM server_keys \
         WHERE server_name = $1 ORDER BY key_id",
    )
    .bind(server_name.as_str())
    .fetch_all(executor)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(StoredKey {
                key_id: row.try_get("key_id")?,
                public_key: row.try_get("public_key")?,
                valid_until_ts: row.try_get("valid_until_ts")?,
                expired_ts: row.try_get("expired_ts")?,
                fetched_ts: row.try_get("fetched_ts")?,
                response_json: row.try_get("response_json")?,
            })
        })
        .collect()
}

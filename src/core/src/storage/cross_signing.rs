//! Cross-signing tables: `e2e_cross_signing_keys` (each local user's master, self-signing and
//! user-signing keys as uploaded) and `e2e_key_signatures` (signatures uploaded later, merged
//! into the keys they sign when queried).

use ruma::{OwnedUserId, UserId};
use sqlx::Row;

use super::{Conn, placeholders};

/// Users looked up per statement: far below the bind-parameter limits of both backends.
const USERS_PER_QUERY: usize = 500;

/// A stored cross-signing key.
#[derive(Clone, Debug)]
pub struct CrossSigningKeyRow {
    /// The owner.
    pub user_id: OwnedUserId,
    /// `master`, `self_signing` or `user_signing`.
    pub key_type: String,
    /// The ed25519 public key (unpadded base64) that names it.
    pub public_key: String,
    /// The canonical JSON uploaded.
    pub key_json: String,
}

/// A signature uploaded with `/keys/signatures/upload`.
#[derive(Clone, Debug)]
pub struct SignatureRow {
    /// The owner of the signed key.
    pub target_user_id: OwnedUserId,
    /// The signed key: a device ID or a cross-signing public key.
    pub target_key_id: String,
    /// Who signed.
    pub signer_user_id: String,
    /// With which key (`ed25519:...`).
    pub signer_key_id: String,
    /// The signature.
    pub signature: String,
}

/// The cross-signing keys of `user_ids`.
pub async fn keys_of_users(conn: &mut Conn, user_ids: &[&UserId]) -> sqlx::Result<Vec<CrossSigningKeyRow>> {
    let mut found = Vec::new();
    for chunk in user_ids.chunks(USERS_PER_QUERY) {
        let sql = format!(
            "SELECT user_id, key_type, public_key, key_json FROM e2e_cross_signing_keys WHERE user_id IN ({})",
            placeholders(1, chunk.len())
        );
        let mut query = sqlx::query(&sql);
        for user_id in chunk {
            query = query.bind(user_id.as_str());
        }
        for row in query.fetch_all(&mut *conn).await? {
            found.push(CrossSigningKeyRow {
                user_id: user(&row, "user_id")?,
                key_type: row.try_get("key_type")?,
                public_key: row.try_get("public_key")?,
                key_json: row.try_get("key_json")?,
            });
        }
    }
    Ok(found)
}

/// Stores (or replaces) one of a user's cross-signing keys.
pub async fn set_key(
    conn: &mut Conn,
    user_id: &UserId,
    key_type: &str,
    public_key: &str,
    key_json: &str,
    now_ms: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO e2e_cross_signing_keys (user_id, key_type, public_key, key_json, updated_ts) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_id, key_type) DO UPDATE SET \
         public_key = excluded.public_key, key_json = excluded.key_json, updated_ts = excluded.updated_ts",
    )
    .bind(user_id.as_str())
    .bind(key_type)
    .bind(public_key)
    .bind(key_json)
    .bind(now_ms)
    .execute(conn)
    .await?;
    Ok(())
}

/// Stores (or replaces) a signature.
pub async fn set_signature(conn: &mut Conn, row: &SignatureRow) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO e2e_key_signatures (target_user_id, target_key_id, signer_user_id, signer_key_id, signature) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (target_user_id, target_key_id, signer_user_id, signer_key_id) \
         DO UPDATE SET signature = excluded.signature",
    )
    .bind(row.target_user_id.as_str())
    .bind(&row.target_key_id)
    .bind(&row.signer_user_id)
    .bind(&row.signer_key_id)
    .bind(&row.signature)
    .execute(conn)
    .await?;
    Ok(())
}

/// The uploaded signatures of `user_ids`' keys that `viewer` may see: those made by the key's
/// owner, and those made by `viewer` (spec: Cross-signing › Key and signature security).
pub async fn signatures_visible_to(
    conn: &mut Conn,
    user_ids: &[&UserId],
    viewer: Option<&UserId>,
) -> sqlx::Result<Vec<SignatureRow>> {
    let mut found = Vec::new();
    for chunk in user_ids.chunks(USERS_PER_QUERY) {
        let sql = format!(
            "SELECT target_user_id, target_key_id, signer_user_id, signer_key_id, signature \
             FROM e2e_key_signatures WHERE target_user_id IN ({}) \
             AND (signer_user_id = target_user_id OR signer_user_id = $1)",
            placeholders(2, chunk.len())
        );
        // No viewer (another server asks): only the owners' own signatures, as no signer is `''`.
        let mut query = sqlx::query(&sql).bind(viewer.map_or("", UserId::as_str));
        for user_id in chunk {
            query = query.bind(user_id.as_str());
        }
        for row in query.fetch_all(&mut *conn).await? {
            found.push(SignatureRow {
                target_user_id: user(&row, "target_user_id")?,
                target_key_id: row.try_get("target_key_id")?,
                signer_user_id: row.try_get("signer_user_id")?,
                signer_key_id: row.try_get("signer_key_id")?,
                signature: row.try_get("signature")?,
            });
        }
    }
    Ok(found)
}

fn user(row: &sqlx::any::AnyRow, column: &str) -> sqlx::Result<OwnedUserId> {
    super::id_column(row, column)
}

//! The `registration_nonces` table: one-shot nonces of shared-secret admin registration.

use sqlx::Executor;

/// Stores a fresh nonce.
pub async fn insert<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    nonce: &str,
    now_ms: i64,
) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO registration_nonces (nonce, created_ts) VALUES ($1, $2)")
        .bind(nonce)
        .bind(now_ms)
        .execute(executor)
        .await?;
    Ok(())
}

/// Consumes a nonce: `true` if it existed and was issued at or after `not_before`. Either way
/// it can never be used again; stale nonces are swept at the same time.
pub async fn take<'c>(
    executor: impl Executor<'c, Database = sqlx::Any> + Copy,
    nonce: &str,
    not_before: i64,
) -> sqlx::Result<bool> {
    let taken = sqlx::query("DELETE FROM registration_nonces WHERE nonce = $1 AND created_ts >= $2")
        .bind(nonce)
        .bind(not_before)
        .execute(executor)
        .await?
        .rows_affected()
        == 1;
    sqlx::query("DELETE FROM registration_nonces WHERE nonce = $1 OR created_ts < $2")
        .bind(nonce)
        .bind(not_before)
        .execute(executor)
        .await?;
    Ok(taken)
}

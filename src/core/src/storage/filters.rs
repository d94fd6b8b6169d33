//! The `filters` table: sync filters a user uploaded, stored as the JSON they sent.

use ruma::UserId;
use sqlx::{Executor, Row};

/// Stores a filter under a new ID.
pub async fn insert<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    user_id: &UserId,
    filter_id: &str,
    json: &str,
) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO filters (user_id, filter_id, filter_json) VALUES ($1, $2, $3)")
        .bind(user_id.as_str())
        .bind(filter_id)
        .bind(json)
        .execute(executor)
        .await?;
    Ok(())
}

/// Loads a filter's JSON.
pub async fn get<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    user_id: &UserId,
    filter_id: &str,
) -> sqlx::Result<Option<String>> {
    let row = sqlx::query("SELECT filter_json FROM filters WHERE user_id = $1 AND filter_id = $2")
        .bind(user_id.as_str())
        .bind(filter_id)
        .fetch_optional(executor)
        .await?;
    row.map(|r| r.try_get("filter_json")).transpose()
}

//! The `pushers` table: where a user's notifications would be pushed (spec: Client-Server API ›
//! Push Notifications › Client behaviour), each pusher kept as the JSON the client set.

use sqlx::{Executor, Row};

use super::Conn;

/// A pusher to store.
#[derive(Clone, Debug)]
pub struct NewPusher<'a> {
    /// Its owner.
    pub user_id: &'a str,
    /// `app_id`.
    pub app_id: &'a str,
    /// `pushkey`.
    pub pushkey: &'a str,
    /// `kind` (`http`, `email`…).
    pub kind: &'a str,
    /// The pusher as JSON.
    pub pusher: &'a str,
    /// When it was set (ms since the epoch).
    pub created_ts: i64,
}

/// The JSON of every pusher of `user_id`, oldest first.
pub async fn for_user<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    user_id: &str,
) -> sqlx::Result<Vec<String>> {
    let rows =
        sqlx::query("SELECT pusher FROM pushers WHERE user_id = $1 ORDER BY created_ts, app_id, pushkey")
            .bind(user_id)
            .fetch_all(executor)
            .await?;
    rows.into_iter().map(|r| r.try_get("pusher")).collect()
}

/// Creates or replaces the pusher `(app_id, pushkey)` of its user.
pub async fn put(conn: &mut Conn, pusher: &NewPusher<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO pushers (user_id, app_id, pushkey, kind, pusher, created_ts) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (app_id, pushkey, user_id) DO UPDATE SET kind = excluded.kind, pusher = excluded.pusher",
    )
    .bind(pusher.user_id)
    .bind(pusher.app_id)
    .bind(pusher.pushkey)
    .bind(pusher.kind)
    .bind(pusher.pusher)
    .bind(pusher.created_ts)
    .execute(conn)
    .await?;
    Ok(())
}

/// Deletes the pusher `(app_id, pushkey)` of `user_id`.
pub async fn delete(conn: &mut Conn, user_id: &str, app_id: &str, pushkey: &str) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM pushers WHERE user_id = $1 AND app_id = $2 AND pushkey = $3")
        .bind(user_id)
        .bind(app_id)
        .bind(pushkey)
        .execute(conn)
        .await?;
    Ok(())
}

/// Deletes the pushers `(app_id, pushkey)` of every user but `user_id` (a pusher set without
/// `append` takes the push key over).
pub async fn delete_for_others(
    conn: &mut Conn,
    user_id: &str,
    app_id: &str,
    pushkey: &str,
) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM pushers WHERE app_id = $1 AND pushkey = $2 AND user_id <> $3")
        .bind(app_id)
        .bind(pushkey)
        .bind(user_id)
        .execute(conn)
        .await?;
    Ok(())
}

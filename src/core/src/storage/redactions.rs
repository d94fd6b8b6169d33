//! The `events.redacted_by` column: which redaction took effect on an event. The event's own
//! JSON is kept as signed (federation serves and checks it); clients get the redacted form.

use std::collections::HashMap;

use sqlx::{Executor, Row};

use super::Conn;

/// Marks an event redacted by `redaction_id`; an earlier redaction stays the recorded one.
pub async fn mark(conn: &mut Conn, event_nid: i64, redaction_id: &str) -> sqlx::Result<()> {
    sqlx::query("UPDATE events SET redacted_by = $1 WHERE event_nid = $2 AND redacted_by IS NULL")
        .bind(redaction_id)
        .bind(event_nid)
        .execute(conn)
        .await?;
    Ok(())
}

/// For those of `event_ids` that are redacted: event ID → the redaction's event ID.
pub async fn redacted_by<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    event_ids: &[&str],
) -> sqlx::Result<HashMap<String, String>> {
    if event_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let list = (1..=event_ids.len()).map(|n| format!("${n}")).collect::<Vec<_>>().join(", ");
    let sql = format!(
        "SELECT event_id, redacted_by FROM events WHERE event_id IN ({list}) AND redacted_by IS NOT NULL"
    );
    let mut query = sqlx::query(&sql);
    for id in event_ids {
        query = query.bind(*id);
    }
    let rows = query.fetch_all(executor).await?;
    rows.into_iter().map(|r| Ok((r.try_get("event_id")?, r.try_get("redacted_by")?))).collect()
}

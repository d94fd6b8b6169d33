//! The `events.redacted_by` column: which redaction took effect on an event. The event's own
//! JSON is kept as signed (federation serves and checks it); clients get the redacted form.

use std::collections::HashMap;

use sqlx::Row;

use super::{Conn, IDS_PER_STATEMENT, Params};

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
pub async fn redacted_by(conn: &mut Conn, event_ids: &[&str]) -> sqlx::Result<HashMap<String, String>> {
    let mut redacted = HashMap::new();
    for chunk in event_ids.chunks(IDS_PER_STATEMENT) {
        let sql = format!(
            "SELECT event_id, redacted_by FROM events WHERE event_id IN ({}) AND redacted_by IS NOT NULL",
            Params::new(conn).list(chunk.len())
        );
        let mut query = sqlx::query(&sql);
        for id in chunk {
            query = query.bind(*id);
        }
        for row in query.fetch_all(&mut *conn).await? {
            redacted.insert(row.try_get("event_id")?, row.try_get("redacted_by")?);
        }
    }
    Ok(redacted)
}

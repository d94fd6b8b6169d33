//! The `federation_outbox` table: PDUs and EDUs waiting to be sent to other servers, one row per
//! destination, written in the transaction of the event that caused them (DESIGN §1) and deleted
//! once the destination accepted them.

use std::{collections::BTreeSet, sync::Mutex};

use sqlx::{Executor, Row};

use super::Conn;

/// How the federation sender learns of rows queued for a destination: each commit that queued
/// some adds their destinations and wakes it, so it need not look for destinations with pending
/// rows after every commit (one query per commit), only at start-up.
#[derive(Default)]
pub struct Signal {
    wake: tokio::sync::Notify,
    // A std mutex: held only to add or take, never across an await.
    destinations: Mutex<BTreeSet<String>>,
}

impl Signal {
    /// Called after a commit that queued rows for `destinations`.
    pub(super) fn queued(&self, destinations: BTreeSet<String>) {
        self.destinations.lock().unwrap_or_else(|p| p.into_inner()).extend(destinations);
        // One sender waits; a permit is stored while it is busy, so no commit is missed.
        self.wake.notify_one();
    }

    /// Waits until a commit queued rows (at once if one did since the last wait).
    pub async fn notified(&self) {
        self.wake.notified().await;
    }

    /// The destinations rows were queued for since the last call.
    pub fn take(&self) -> BTreeSet<String> {
        std::mem::take(&mut *self.destinations.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// One pending item, in sending order.
#[derive(Clone, Debug)]
pub struct Pending {
    /// Its position in the outbox (increasing per destination).
    pub outbox_id: i64,
    /// A PDU's canonical JSON, for PDU rows.
    pub pdu: Option<String>,
    /// An EDU's JSON, for EDU rows.
    pub edu: Option<String>,
}

/// Queues PDUs: `(destination, event_id)` rows, in order.
pub async fn push_pdus(conn: &mut Conn, rows: &[(&str, &str)], now_ms: i64) -> sqlx::Result<()> {
    let rows: Vec<(&str, Option<&str>, Option<&str>)> =
        rows.iter().map(|(destination, event_id)| (*destination, Some(*event_id), None)).collect();
    push(conn, &rows, now_ms).await
}

/// Queues an EDU (its JSON) for every destination in `destinations`.
pub async fn push_edu(conn: &mut Conn, destinations: &[&str], edu: &str, now_ms: i64) -> sqlx::Result<()> {
    let rows: Vec<(&str, Option<&str>, Option<&str>)> =
        destinations.iter().map(|destination| (*destination, None, Some(edu))).collect();
    push(conn, &rows, now_ms).await
}

/// Inserts `(destination, event_id, edu)` rows, as few statements as the parameter limits allow.
async fn push(conn: &mut Conn, rows: &[(&str, Option<&str>, Option<&str>)], now_ms: i64) -> sqlx::Result<()> {
    for chunk in rows.chunks(super::IDS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO federation_outbox (destination, event_id, edu, created_ts) VALUES {}",
            super::row_values(conn, chunk.len(), 4)
        );
        let mut query = sqlx::query(&sql);
        for (destination, event_id, edu) in chunk {
            query = query.bind(*destination).bind(*event_id).bind(*edu).bind(now_ms);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// The oldest `limit` pending items for `destination`, in outbox order (a PDU row whose event
/// is gone has neither `pdu` nor `edu`).
pub async fn pending<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    destination: &str,
    limit: i64,
) -> sqlx::Result<Vec<Pending>> {
    pending_after(executor, destination, 0, limit).await
}

/// [`pending`], but only the items after outbox ID `after` (the sender's rows delivered but
/// not deleted yet; outbox IDs are positive).
pub async fn pending_after<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    destination: &str,
    after: i64,
    limit: i64,
) -> sqlx::Result<Vec<Pending>> {
    let rows = sqlx::query(
        "SELECT o.outbox_id, e.json, o.edu FROM federation_outbox o \
         LEFT JOIN events e ON e.event_id = o.event_id \
         WHERE o.destination = $1 AND o.outbox_id > $2 ORDER BY o.outbox_id LIMIT $3",
    )
    .bind(destination)
    .bind(after)
    .bind(limit)
    .fetch_all(executor)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(Pending {
                outbox_id: r.try_get("outbox_id")?,
                pdu: r.try_get("json")?,
                edu: r.try_get("edu")?,
            })
        })
        .collect()
}

/// Deletes `destination`'s rows up to and including `outbox_id` (they were delivered).
pub async fn delete_upto<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
    destination: &str,
    outbox_id: i64,
) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM federation_outbox WHERE destination = $1 AND outbox_id <= $2")
        .bind(destination)
        .bind(outbox_id)
        .execute(executor)
        .await?;
    Ok(())
}

/// Deletes `destination`'s rows up to `outbox_id` (delivered) in a write transaction of its
/// own. Through the writer queue like every write: on SQLite a write on a reader's connection
/// waits in SQLite's busy handler, which sleeps and polls while the queued writers hand the
/// lock on among themselves, and the sender waited for it (docs/BENCHMARKS.md › Federation).
pub async fn delete_delivered(db: &super::Db, destination: &str, outbox_id: i64) -> sqlx::Result<()> {
    let mut tx = db.begin().await?;
    delete_upto(&mut *tx, destination, outbox_id).await?;
    tx.commit().await
}

/// Every destination with something pending.
pub async fn destinations<'c>(
    executor: impl Executor<'c, Database = sqlx::Any>,
) -> sqlx::Result<Vec<String>> {
    // A loose index scan: one index probe per destination (`SELECT DISTINCT` walks every queued
    // row of the backlog). The sender asks at start; after that, commits tell it ([`Signal`]).
    let rows = sqlx::query(
        "WITH RECURSIVE d (destination) AS ( \
             SELECT MIN(destination) FROM federation_outbox \
             UNION ALL \
             SELECT (SELECT MIN(o.destination) FROM federation_outbox o WHERE o.destination > d.destination) \
             FROM d WHERE d.destination IS NOT NULL) \
         SELECT destination FROM d WHERE destination IS NOT NULL",
    )
    .fetch_all(executor)
    .await?;
    rows.iter().map(|r| r.try_get("destination")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn each_destination_with_pending_rows_is_listed_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = crate::storage::test_db(&dir).await;
        assert!(destinations(db.pool()).await.expect("destinations").is_empty());
        let mut tx = db.begin().await.expect("begin");
        for edu in ["{}", "{}", "{}"] {
            push_edu(&mut tx, &["c.test", "a.test", "b.test"], edu, 0).await.expect("push");
        }
        push_edu(&mut tx, &["a.test"], "{}", 0).await.expect("push");
        tx.commit().await.expect("commit");
        let mut listed = destinations(db.pool()).await.expect("destinations");
        listed.sort();
        assert_eq!(listed, ["a.test", "b.test", "c.test"]);
    }

    /// Regression: the sender deleted delivered rows on a reader's connection, outside the
    /// writer queue, and waited behind every writer that came after it.
    #[tokio::test]
    async fn deleting_delivered_rows_takes_its_turn_among_writers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = crate::storage::test_db(&dir).await;
        let mut tx = db.begin().await.expect("begin");
        push_edu(&mut tx, &["a.test"], "{}", 0).await.expect("push");
        tx.commit().await.expect("commit");
        let delivered = pending(db.pool(), "a.test", 10).await.expect("pending")[0].outbox_id;
        let delete = delete_delivered(&db, "a.test", delivered);
        assert!(crate::storage::writes_in_turn(&db, delete).await);
        assert!(pending(db.pool(), "a.test", 10).await.expect("pending").is_empty());
    }
}

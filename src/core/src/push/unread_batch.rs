//! Unread counts of many `/sync`s in a few statements. A message to a room wakes every member's
//! sync at once, and each then asks for its unread counts: one statement each, every one a
//! round trip to the database connection's thread, was most of a woken sync's cost. Each asker
//! queues its rows; whoever holds the reader's lock takes everything queued and counts it in a
//! few statements side by side ([`push_actions::count_by_thread`] takes rows of many users), so
//! while one batch runs the next one gathers.

use std::{
    collections::{HashMap, HashSet},
    sync::{Mutex, MutexGuard},
};

use ruma::{OwnedUserId, UserId};
use tokio::sync::oneshot;

use crate::{Error, Homeserver, Result, storage::push_actions::Counted};

/// Statements one batch runs side by side (SQLite's read pool holds 4 connections).
const STATEMENTS_AT_ONCE: usize = 4;

/// Askers waiting for their counts, and the lock of the batch reader.
#[derive(Default)]
pub struct UnreadBatch {
    queued: Mutex<Vec<Waiting>>,
    reader: tokio::sync::Mutex<()>,
}

/// One asker: its user, `(room ID, read position)` per room, where the answer goes.
struct Waiting {
    user: OwnedUserId,
    rooms: Vec<(String, i64)>,
    reply: oneshot::Sender<std::result::Result<Vec<Counted>, String>>,
}

impl UnreadBatch {
    /// `user`'s notifications after each room's read position, per room and thread, counted in
    /// one statement with whatever other syncs asked meanwhile.
    pub async fn count(
        &self,
        hs: &Homeserver,
        user: &UserId,
        rooms: Vec<(String, i64)>,
    ) -> Result<Vec<Counted>> {
        let (reply, answer) = oneshot::channel();
        self.queued().push(Waiting { user: user.to_owned(), rooms, reply });
        {
            let _reading = self.reader.lock().await;
            let batch = std::mem::take(&mut *self.queued());
            if !batch.is_empty() {
                // Spawned: a caller that goes away (a client hanging up) must not leave the
                // others of its batch without an answer.
                let run = tokio::spawn(run(hs.clone(), batch));
                run.await.map_err(|e| Error::Internal(e.into()))?;
            }
        }
        let counted =
            answer.await.map_err(|_| Error::Internal(anyhow::anyhow!("the unread count was dropped")))?;
        counted.map_err(|e| Error::Internal(anyhow::anyhow!("counting unread notifications: {e}")))
    }

    fn queued(&self) -> MutexGuard<'_, Vec<Waiting>> {
        // Held for a push or a take only, never across an await.
        self.queued.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Counts `batch` and answers each asker with its own rows: one statement for the first asker
/// of each user, another for the second (a user syncing on two devices), and so on, as the
/// statement's rows must name a user and room once.
async fn run(hs: Homeserver, mut batch: Vec<Waiting>) {
    while !batch.is_empty() {
        let mut users = HashSet::new();
        let (round, later): (Vec<Waiting>, Vec<Waiting>) =
            batch.into_iter().partition(|w| users.insert(w.user.clone()));
        // A few statements side by side on the pool's connections: one statement for everyone
        // would keep all waiting on one connection while the others idle.
        let per_statement = round.len().div_ceil(STATEMENTS_AT_ONCE);
        let mut statements = Vec::new();
        let mut round = round.into_iter().peekable();
        while round.peek().is_some() {
            statements.push(run_round(&hs, round.by_ref().take(per_statement).collect()));
        }
        futures::future::join_all(statements).await;
        batch = later;
    }
}

/// Counts askers of distinct users in one statement.
async fn run_round(hs: &Homeserver, batch: Vec<Waiting>) {
    let rows: Vec<(&str, &str, i64)> = batch
        .iter()
        .flat_map(|w| w.rooms.iter().map(|(room, after)| (w.user.as_str(), room.as_str(), *after)))
        .collect();
    let counted = async {
        let mut conn = hs.db().pool().acquire().await?;
        crate::storage::push_actions::count_by_thread(&mut conn, &rows).await
    }
    .await;
    match counted {
        Ok(counted) => {
            let mut by_user: HashMap<String, Vec<Counted>> = HashMap::new();
            for row in counted {
                by_user.entry(row.user_id.clone()).or_default().push(row);
            }
            for waiting in batch {
                let mine = by_user.remove(waiting.user.as_str()).unwrap_or_default();
                // An asker that went away no longer listens.
                let _ = waiting.reply.send(Ok(mine));
            }
        }
        Err(e) => {
            for waiting in batch {
                let _ = waiting.reply.send(Err(e.to_string()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use ruma::user_id;

    use super::*;
    use crate::storage::push_actions::{NewPushAction, insert_many};

    /// Bob's notifications at positions 1–3 (2 highlights), Carol's at 4.
    async fn homeserver() -> (tempfile::TempDir, Homeserver) {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = crate::Config::default();
        config.storage.data_dir = dir.path().to_owned();
        config.database.url = format!("sqlite://{}/hearth.db", dir.path().display());
        let hs = Homeserver::open(config).await.expect("homeserver");
        let ids: Vec<String> = (1..=4).map(|n| format!("$e{n}")).collect();
        let row = |user_id, n: usize, highlight| NewPushAction {
            user_id,
            room_id: "!r:x",
            event_id: &ids[n - 1],
            stream_ordering: n as i64,
            thread_id: None,
            notify: true,
            highlight,
            actions: "[\"notify\"]",
            ts: 0,
        };
        let rows = [
            row("@bob:x", 1, true),
            row("@bob:x", 2, false),
            row("@bob:x", 3, true),
            row("@carol:x", 4, false),
        ];
        let mut tx = hs.db().begin().await.expect("begin");
        insert_many(&mut tx, &rows).await.expect("insert");
        tx.commit().await.expect("commit");
        (dir, hs)
    }

    fn main_counts(counted: Result<Vec<Counted>>) -> Vec<(String, i64, i64)> {
        let counted = counted.expect("counts");
        counted.into_iter().map(|c| (c.user_id, c.notifications, c.highlights)).collect()
    }

    #[tokio::test]
    async fn each_asker_gets_its_own_counts_even_a_user_asking_twice_at_once() {
        let (_dir, hs) = homeserver().await;
        let batch = hs.unread_batch();
        let room = || vec![("!r:x".to_owned(), 0)];
        // Carol's count runs alone; both of Bob's then wait for the same batch.
        let (carol, bob_all, bob_after_2) = tokio::join!(
            batch.count(&hs, user_id!("@carol:x"), room()),
            batch.count(&hs, user_id!("@bob:x"), room()),
            batch.count(&hs, user_id!("@bob:x"), vec![("!r:x".to_owned(), 2)]),
        );
        assert_eq!(main_counts(carol), [("@carol:x".to_owned(), 1, 0)]);
        assert_eq!(main_counts(bob_all), [("@bob:x".to_owned(), 3, 2)]);
        assert_eq!(main_counts(bob_after_2), [("@bob:x".to_owned(), 1, 1)]);
    }
}

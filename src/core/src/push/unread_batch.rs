//! Unread counts of many `/sync`s, mostly from memory. A message to a room wakes every member's
//! sync at once, and each then asks for its unread counts.
//!
//! A count once taken is kept per user and room with the read position it counted from and the
//! stream position it is true at, and brought up to date from the
//! [`UnreadLog`](crate::storage::unread_log::UnreadLog) (how each recent event notified): a
//! woken sync adds the one new message instead of counting every unread notification again.
//! Counts the log cannot carry forward (a new read position, the user's own membership moved,
//! a gap in the log) are taken again from the database, bounded by a committed position so the
//! log carries them on exactly from there.
//!
//! Those counts are batched: each asker queues its rows; whoever holds the reader's lock takes
//! everything queued and counts it in a few statements side by side
//! ([`push_actions::count_by_thread`] takes rows of many users), so while one batch runs the
//! next one gathers.

use std::{
    collections::{HashMap, HashSet},
    sync::{Mutex, MutexGuard},
};

use ruma::{OwnedUserId, RoomId, UserId};
use tokio::sync::oneshot;

use crate::{Error, Homeserver, Result, storage::push_actions::Counted};

/// Statements one batch runs side by side (SQLite's read pool holds 4 connections).
const STATEMENTS_AT_ONCE: usize = 4;

/// Counts kept past this many (user, room) pairs are all dropped.
const KEPT: usize = 200_000;

/// Askers waiting for their counts, the lock of the batch reader, and the counts kept.
#[derive(Default)]
pub struct UnreadBatch {
    queued: Mutex<Vec<Waiting>>,
    reader: tokio::sync::Mutex<()>,
    kept: Mutex<Kept>,
}

/// One asker: its user, `(room ID, read position)` per room, where the answer goes.
struct Waiting {
    user: OwnedUserId,
    rooms: Vec<(String, i64)>,
    reply: oneshot::Sender<std::result::Result<(i64, Vec<Counted>), String>>,
}

/// Counts kept: user → room → count.
#[derive(Default)]
struct Kept {
    users: HashMap<String, HashMap<String, KeptCount>>,
    len: usize,
}

/// One user's notifications in one room after `read_to` and up to `upto`, per thread.
struct KeptCount {
    read_to: i64,
    upto: i64,
    threads: HashMap<Option<String>, (i64, i64)>,
}

impl UnreadBatch {
    /// `user`'s notifications after each room's read position, per room and thread: carried
    /// forward from memory where possible, else counted in one statement with whatever other
    /// syncs asked meanwhile.
    pub async fn count(
        &self,
        hs: &Homeserver,
        user: &UserId,
        rooms: Vec<(String, i64)>,
    ) -> Result<Vec<Counted>> {
        let (mut counted, missing) = self.carried_forward(hs, user, rooms);
        if missing.is_empty() {
            return Ok(counted);
        }
        let (upto, fresh) = self.count_in_database(hs, user, missing.clone()).await?;
        self.keep(user, &missing, upto, &fresh);
        counted.extend(fresh);
        Ok(counted)
    }

    /// The kept counts of `rooms` brought up to the committed position, and the rooms without.
    fn carried_forward(
        &self,
        hs: &Homeserver,
        user: &UserId,
        rooms: Vec<(String, i64)>,
    ) -> (Vec<Counted>, Vec<(String, i64)>) {
        let events = hs.db().events();
        let upto = events.upto();
        let (mut counted, mut missing) = (Vec::new(), Vec::new());
        let mut kept = self.kept();
        let Some(mine) = kept.users.get_mut(user.as_str()) else { return (counted, rooms) };
        for (room, read_to) in rooms {
            let Some(count) = mine.get_mut(&room).filter(|count| count.read_to == read_to) else {
                missing.push((room, read_to));
                continue;
            };
            let room_id = <&RoomId>::try_from(room.as_str()).ok();
            match room_id.and_then(|room_id| events.unread().catch_up(room_id, user, count.upto, upto)) {
                Some(unread) => {
                    for (thread, highlight) in unread {
                        let (n, h) = count.threads.entry(thread).or_default();
                        *n += 1;
                        *h += i64::from(highlight);
                    }
                    count.upto = count.upto.max(upto);
                    counted.extend(count.threads.iter().map(|(thread, (n, h))| Counted {
                        user_id: user.to_string(),
                        room_id: room.clone(),
                        thread_id: thread.clone(),
                        notifications: *n,
                        highlights: *h,
                    }));
                }
                None => missing.push((room, read_to)),
            }
        }
        (counted, missing)
    }

    /// Keeps the counts of `rooms` taken at `upto`.
    fn keep(&self, user: &UserId, rooms: &[(String, i64)], upto: i64, counted: &[Counted]) {
        let mut kept = self.kept();
        if kept.len + rooms.len() > KEPT {
            *kept = Kept::default();
        }
        let Kept { users, len } = &mut *kept;
        let mine = users.entry(user.to_string()).or_default();
        for (room, read_to) in rooms {
            let threads = counted
                .iter()
                .filter(|c| &c.room_id == room)
                .map(|c| (c.thread_id.clone(), (c.notifications, c.highlights)))
                .collect();
            let count = KeptCount { read_to: *read_to, upto, threads };
            match mine.get(room) {
                // A concurrent asker kept a later count.
                Some(other) if other.read_to == *read_to && other.upto > upto => {}
                _ => *len += usize::from(mine.insert(room.clone(), count).is_none()),
            }
        }
    }

    /// Counts `rooms` in the database with the other askers of the moment; the committed
    /// position the counts are true at.
    async fn count_in_database(
        &self,
        hs: &Homeserver,
        user: &UserId,
        rooms: Vec<(String, i64)>,
    ) -> Result<(i64, Vec<Counted>)> {
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

    fn kept(&self) -> MutexGuard<'_, Kept> {
        // Held for map operations only, never across an await.
        self.kept.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Counts `batch` and answers each asker with its own rows: one statement for the first asker
/// of each user, another for the second (a user syncing on two devices), and so on, as the
/// statement's rows must name a user and room once.
async fn run(hs: Homeserver, mut batch: Vec<Waiting>) {
    // Bounded by a committed position, from which the unread log carries the counts on.
    let upto = hs.db().events().upto();
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
            statements.push(run_round(&hs, round.by_ref().take(per_statement).collect(), upto));
        }
        futures::future::join_all(statements).await;
        batch = later;
    }
}

/// Counts askers of distinct users in one statement, up to `upto`.
async fn run_round(hs: &Homeserver, batch: Vec<Waiting>, upto: i64) {
    let rows: Vec<(&str, &str, i64)> = batch
        .iter()
        .flat_map(|w| w.rooms.iter().map(|(room, after)| (w.user.as_str(), room.as_str(), *after)))
        .collect();
    let counted = async {
        let mut conn = hs.db().pool().acquire().await?;
        crate::storage::push_actions::count_by_thread(&mut conn, &rows, upto).await
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
                let _ = waiting.reply.send(Ok((upto, mine)));
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
    use std::sync::Arc;

    use ruma::{OwnedUserId, owned_room_id, user_id};

    use super::*;
    use crate::storage::{
        positions::Written,
        push_actions::{NewDefault, NewPushAction, count_by_thread, insert_defaults, insert_many},
        state::set_current,
        unread_log::{Notified, UnreadNote},
    };

    async fn homeserver() -> (tempfile::TempDir, Homeserver) {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = crate::Config::default();
        config.storage.data_dir = dir.path().to_owned();
        config.database.url = format!("sqlite://{}/hearth.db", dir.path().display());
        let hs = Homeserver::open(config).await.expect("homeserver");
        (dir, hs)
    }

    /// One event in `!r:x`, written as the send path writes it.
    enum Step {
        /// The user's membership becomes this.
        Member(&'static str, &'static str),
        /// A message from Alice notifying every member by default.
        Message,
        /// A message from Alice notifying only this user, highlighted or not.
        Only(&'static str, bool),
    }

    /// Commits `steps` in one transaction at consecutive positions.
    async fn commit(hs: &Homeserver, steps: &[Step]) {
        let user = |u: &str| OwnedUserId::try_from(u).expect("user id");
        let mut tx = hs.db().begin().await.expect("begin");
        for (step, position) in steps.iter().zip(tx.next_stream_orderings(steps.len())) {
            let note = |default, exceptions| {
                let sender = user("@alice:x");
                let room_id = owned_room_id!("!r:x");
                UnreadNote::Notified(Arc::new(Notified {
                    room_id,
                    position,
                    sender,
                    thread_id: None,
                    default,
                    exceptions,
                }))
            };
            let event_id = format!("$e{position}");
            let (member, note) = match *step {
                Step::Member(who, membership) => {
                    set_current(
                        &mut tx,
                        &owned_room_id!("!r:x"),
                        "m.room.member",
                        who,
                        (position, position),
                        Some(membership),
                    )
                    .await
                    .expect("member");
                    (Some(user(who)), None)
                }
                Step::Message => {
                    let row = NewDefault {
                        stream_ordering: position,
                        room_id: "!r:x",
                        sender: "@alice:x",
                        thread_id: None,
                        highlight: false,
                        actions: "[\"notify\"]",
                    };
                    insert_defaults(&mut tx, &[row]).await.expect("default");
                    (None, Some(note(Some(false), Vec::new())))
                }
                Step::Only(who, highlight) => {
                    let row = NewPushAction {
                        user_id: who,
                        room_id: "!r:x",
                        event_id: &event_id,
                        stream_ordering: position,
                        thread_id: None,
                        notify: true,
                        highlight,
                        actions: "[\"notify\"]",
                        ts: 0,
                    };
                    insert_many(&mut tx, &[row]).await.expect("exception");
                    (None, Some(note(None, vec![(user(who), Some(highlight))])))
                }
            };
            tx.record(Written { position, room_id: owned_room_id!("!r:x"), member, event: None });
            if let Some(note) = note {
                tx.note_unread(note);
            }
        }
        tx.commit().await.expect("commit");
    }

    fn main_counts(counted: Result<Vec<Counted>>) -> Vec<(String, i64, i64)> {
        let counted = counted.expect("counts");
        counted.into_iter().map(|c| (c.user_id, c.notifications, c.highlights)).collect()
    }

    /// Bob's count as the database has it now.
    async fn bob_in_database(hs: &Homeserver, after: i64) -> Vec<(String, i64, i64)> {
        let mut conn = hs.db().pool().acquire().await.expect("connection");
        main_counts(Ok(count_by_thread(&mut conn, &[("@bob:x", "!r:x", after)], i64::MAX)
            .await
            .expect("count")))
    }

    /// The position Bob's kept count in `!r:x` is true at.
    fn kept_upto(hs: &Homeserver) -> Option<i64> {
        let kept = hs.unread_batch().kept();
        kept.users.get("@bob:x").and_then(|rooms| rooms.get("!r:x")).map(|count| count.upto)
    }

    #[tokio::test]
    async fn each_asker_gets_its_own_counts_even_a_user_asking_twice_at_once() {
        let (_dir, hs) = homeserver().await;
        let steps = [
            Step::Only("@bob:x", true),
            Step::Only("@bob:x", false),
            Step::Only("@bob:x", true),
            Step::Only("@carol:x", false),
        ];
        commit(&hs, &steps).await;
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

    #[tokio::test]
    async fn a_kept_count_is_carried_forward_until_the_read_position_or_the_membership_moves() {
        let (_dir, hs) = homeserver().await;
        let batch = hs.unread_batch();
        let bob = user_id!("@bob:x");
        let room = |after| vec![("!r:x".to_owned(), after)];
        commit(&hs, &[Step::Member("@bob:x", "join"), Step::Message, Step::Only("@bob:x", true)]).await;
        assert_eq!(main_counts(batch.count(&hs, bob, room(0)).await), [("@bob:x".to_owned(), 2, 1)]);
        assert_eq!(kept_upto(&hs), Some(3));

        commit(&hs, &[Step::Message, Step::Only("@carol:x", false), Step::Only("@bob:x", true)]).await;
        let carried = main_counts(batch.count(&hs, bob, room(0)).await);
        assert_eq!(carried, [("@bob:x".to_owned(), 4, 2)]);
        assert_eq!(carried, bob_in_database(&hs, 0).await);
        assert_eq!(kept_upto(&hs), Some(6), "carried forward from the log");

        // A new read position is counted again.
        assert_eq!(main_counts(batch.count(&hs, bob, room(3)).await), [("@bob:x".to_owned(), 2, 1)]);
        // So is a count across Bob's own membership moves: after leaving and joining again,
        // only what came after the new join counts by default.
        commit(&hs, &[Step::Member("@bob:x", "leave"), Step::Member("@bob:x", "join"), Step::Message]).await;
        let recounted = main_counts(batch.count(&hs, bob, room(3)).await);
        assert_eq!(recounted, [("@bob:x".to_owned(), 2, 1)], "the message at 4 no longer counts");
        assert_eq!(recounted, bob_in_database(&hs, 3).await);
    }
}

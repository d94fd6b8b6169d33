//! The notifier (DESIGN §5): wakes exactly the waiting `/sync` requests of the users a change
//! concerns. A waiter subscribes for its user before it reads, then sleeps on its user's slot;
//! nothing polls the database.
//!
//! Room events reach it through the event stream's commit hook, with the position below which
//! everything committed: an event is announced only once it is readable, so a woken sync always
//! finds it. A background task turns rooms into their local members (cached per room, reloaded
//! after membership changes) and wakes those users. Other streams (account data, receipts,
//! typing, to-device, presence) announce their changes after they commit.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex, MutexGuard, Weak},
};

use ruma::{OwnedRoomId, OwnedServerName, OwnedUserId, UserId};
use tokio::sync::{mpsc, watch};

use crate::storage::{
    self, Db,
    positions::{CommitHook, Written},
};

/// The wake-up slots of the users with a waiting request.
#[derive(Default)]
struct Slots(Mutex<HashMap<OwnedUserId, Weak<watch::Sender<u64>>>>);

impl Slots {
    fn lock(&self) -> MutexGuard<'_, HashMap<OwnedUserId, Weak<watch::Sender<u64>>>> {
        // Held for a map operation only, never across an await.
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn wake<'a>(&self, users: impl IntoIterator<Item = &'a UserId>) {
        let mut slots = self.lock();
        for user in users {
            match slots.get(user).map(Weak::upgrade) {
                Some(Some(slot)) => slot.send_modify(|n| *n = n.wrapping_add(1)),
                Some(None) => {
                    slots.remove(user);
                }
                None => {}
            }
        }
    }
}

enum Message {
    /// Events committed, and the position below which everything has.
    Events(Vec<Written>, i64),
    /// Something changed for everyone in a room (receipts, typing).
    Room(OwnedRoomId),
    /// Something changed for everyone sharing a room with a user (presence, device lists).
    SharingWith(OwnedUserId),
}

/// Wakes waiting requests; one per homeserver.
pub struct Notifier {
    slots: Arc<Slots>,
    queue: mpsc::UnboundedSender<Message>,
}

/// A subscription of one user's requests: [`wait`](Listener::wait) returns once something for
/// the user changed after the subscription (or the last wait).
pub struct Listener {
    slot: Arc<watch::Sender<u64>>,
    rx: watch::Receiver<u64>,
    slots: Arc<Slots>,
    user: OwnedUserId,
}

impl Listener {
    /// Waits until something for the user changed, or until `deadline`; `false` on timeout.
    pub async fn wait(&mut self, deadline: tokio::time::Instant) -> bool {
        tokio::time::timeout_at(deadline, self.rx.changed()).await.is_ok()
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let mut slots = self.slots.lock();
        // The map holds a weak reference; ours is the last strong one.
        if Arc::strong_count(&self.slot) == 1 {
            slots.remove(&self.user);
        }
    }
}

impl Notifier {
    /// Starts the notifier's task and hooks it to `db`'s event commits.
    pub fn start(db: &Db, server_name: OwnedServerName) -> Notifier {
        let slots = Arc::new(Slots::default());
        let (queue, rx) = mpsc::unbounded_channel();
        let hook_queue = queue.clone();
        let hook: CommitHook = Box::new(move |written, upto| {
            let _ = hook_queue.send(Message::Events(written, upto));
        });
        db.events().set_hook(hook);
        // The task ends when the homeserver (holding every sender) is dropped.
        let worker =
            Worker { slots: slots.clone(), pool: db.pool().clone(), server_name, members: HashMap::new() };
        tokio::spawn(worker.run(rx));
        Notifier { slots, queue }
    }

    /// Subscribes to `user`'s changes.
    pub fn listen(&self, user: &UserId) -> Listener {
        let mut slots = self.slots.lock();
        let slot = match slots.get(user).and_then(Weak::upgrade) {
            Some(slot) => slot,
            None => {
                let slot = Arc::new(watch::channel(0).0);
                slots.insert(user.to_owned(), Arc::downgrade(&slot));
                slot
            }
        };
        let rx = slot.subscribe();
        Listener { slot, rx, slots: self.slots.clone(), user: user.to_owned() }
    }

    /// Wakes `users` (their own streams changed: account data, to-device messages).
    pub fn wake_users<'a>(&self, users: impl IntoIterator<Item = &'a UserId>) {
        self.slots.wake(users);
    }

    /// Wakes the local members of a room (its receipts or typing changed).
    pub fn wake_room(&self, room_id: OwnedRoomId) {
        let _ = self.queue.send(Message::Room(room_id));
    }

    /// [`wake_room`](Self::wake_room) as a function, for a background task that outlives any
    /// request (typing timeouts).
    pub fn room_waker(&self) -> impl Fn(OwnedRoomId) + Send + Sync + 'static {
        let queue = self.queue.clone();
        move |room_id| {
            let _ = queue.send(Message::Room(room_id));
        }
    }

    /// Wakes every local user sharing a room with `user` (and `user`).
    pub fn wake_sharing_with(&self, user: OwnedUserId) {
        let _ = self.queue.send(Message::SharingWith(user));
    }
}

/// The notifier's task: resolves rooms to local members and wakes them.
struct Worker {
    slots: Arc<Slots>,
    pool: sqlx::AnyPool,
    server_name: OwnedServerName,
    /// Local users joined, invited or knocking per room; dropped on membership changes.
    members: HashMap<OwnedRoomId, Arc<Vec<OwnedUserId>>>,
}

impl Worker {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Message>) {
        let mut pending: Vec<Written> = Vec::new();
        while let Some(message) = rx.recv().await {
            match message {
                Message::Events(written, upto) => {
                    pending.extend(written);
                    let (ready, later): (Vec<Written>, Vec<Written>) =
                        pending.drain(..).partition(|w| w.position <= upto);
                    pending = later;
                    self.announce(ready).await;
                }
                Message::Room(room_id) => {
                    let members = self.members(&room_id).await;
                    self.slots.wake(members.iter().map(|u| u.as_ref()));
                }
                Message::SharingWith(user) => {
                    match storage::rooms::users_sharing_rooms_with(&self.pool, &user).await {
                        Ok(users) => self.slots.wake(users.iter().map(|u| u.as_ref()).chain([user.as_ref()])),
                        Err(e) => tracing::warn!(error = %e, "loading users to wake"),
                    }
                }
            }
        }
    }

    async fn announce(&mut self, ready: Vec<Written>) {
        let mut rooms = HashSet::new();
        let mut users: HashSet<OwnedUserId> = HashSet::new();
        for written in ready {
            if let Some(member) = written.member {
                self.members.remove(&written.room_id);
                users.insert(member);
            }
            rooms.insert(written.room_id);
        }
        for room_id in rooms {
            users.extend(self.members(&room_id).await.iter().cloned());
        }
        self.slots.wake(users.iter().map(|u| u.as_ref()));
    }

    async fn members(&mut self, room_id: &OwnedRoomId) -> Arc<Vec<OwnedUserId>> {
        if let Some(members) = self.members.get(room_id) {
            return members.clone();
        }
        let members = match storage::rooms::members_to_notify(&self.pool, room_id).await {
            Ok(members) => Arc::new(
                members.into_iter().filter(|u| u.server_name() == self.server_name).collect::<Vec<_>>(),
            ),
            Err(e) => {
                // Not cached: the next change retries.
                tracing::warn!(error = %e, %room_id, "loading room members to wake");
                return Arc::new(Vec::new());
            }
        };
        self.members.insert(room_id.clone(), members.clone());
        members
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn user(id: &str) -> OwnedUserId {
        id.try_into().expect("user id")
    }

    #[tokio::test]
    async fn a_wake_reaches_only_the_users_it_names() {
        let slots = Arc::new(Slots::default());
        let (queue, _rx) = mpsc::unbounded_channel();
        let notifier = Notifier { slots, queue };
        let mut alice = notifier.listen(&user("@alice:x"));
        let mut bob = notifier.listen(&user("@bob:x"));

        notifier.wake_users([user("@alice:x").as_ref()]);

        let soon = || tokio::time::Instant::now() + Duration::from_millis(50);
        assert!(alice.wait(soon()).await, "alice was woken");
        assert!(!bob.wait(soon()).await, "bob was not");
        assert!(!alice.wait(soon()).await, "a wake is consumed by the wait that saw it");
    }

    #[tokio::test]
    async fn a_wake_before_the_wait_is_not_lost() {
        let slots = Arc::new(Slots::default());
        let (queue, _rx) = mpsc::unbounded_channel();
        let notifier = Notifier { slots, queue };
        let mut alice = notifier.listen(&user("@alice:x"));
        notifier.wake_users([user("@alice:x").as_ref()]);
        assert!(alice.wait(tokio::time::Instant::now()).await);
    }

    #[tokio::test]
    async fn slots_are_freed_when_the_last_listener_goes() {
        let slots = Arc::new(Slots::default());
        let (queue, _rx) = mpsc::unbounded_channel();
        let notifier = Notifier { slots: slots.clone(), queue };
        let first = notifier.listen(&user("@alice:x"));
        let second = notifier.listen(&user("@alice:x"));
        drop(first);
        assert_eq!(slots.lock().len(), 1);
        drop(second);
        assert!(slots.lock().is_empty());
    }
}

//! Typing notifications (spec: Client-Server API › Typing Notifications): who is typing in each
//! room, for `m.typing` ephemeral events. Nothing is stored: the set lives in memory on the
//! homeserver handle and is lost on restart, which costs at most one timeout of stale state.
//!
//! Every change of a room's set takes a new position in the typing stream, a counter that starts
//! at the current time in milliseconds, so positions keep growing across restarts and a sync
//! token from before one still compares sensibly. Entries end at their timeout: one background
//! task sleeps until the earliest deadline (deadlines are kept sorted), removes what expired and
//! wakes the rooms whose set changed; nothing polls.
//!
//! `/sync` reads the stream cheaply: [`Typing::position`] for the token (read it *before* the
//! rooms, so a change racing the sync is sent again rather than lost), then
//! [`Typing::changed_since`] per room.

use std::{
    collections::{BTreeSet, HashMap},
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use ruma::{OwnedRoomId, OwnedUserId, RoomId, UserId};
use tokio::{sync::Notify, task::JoinHandle, time::Instant};

use crate::{Error, Homeserver, Result, rooms::membership::membership_of, time::now_ms};

/// The longest a user is shown typing without renewing (Synapse's cap too): clients renew every
/// 20–30 s, and a client that vanished stops showing after this at most.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(120);

/// `PUT /rooms/{roomId}/typing/{userId}`: `user` starts typing in `room_id` for `timeout`
/// (capped at [`MAX_TIMEOUT`]), or stops when `timeout` is `None`. Only for oneself (403) and in
/// a room one is joined to (403). Wakes the room's members when its set of typing users changed.
pub async fn set(
    hs: &Homeserver,
    user: &UserId,
    target: &UserId,
    room_id: &RoomId,
    timeout: Option<Duration>,
) -> Result<()> {
    if user != target {
        return Err(Error::forbidden("You cannot set the typing state of another user"));
    }
    if membership_of(hs, room_id, user).await?.as_deref() != Some("join") {
        return Err(Error::forbidden("You are not joined to this room"));
    }
    if hs.typing().set_typing(room_id, user, timeout.map(|t| t.min(MAX_TIMEOUT))) {
        hs.notifier().wake_room(room_id.to_owned());
    }
    // Other servers in the room are told each time (a renewal keeps them showing it).
    let edu = serde_json::json!({
        "edu_type": "m.typing",
        "content": { "room_id": room_id, "user_id": user, "typing": timeout.is_some() },
    });
    crate::rooms::outbound::queue_edu(hs, room_id, &edu).await
}

/// An `m.typing` EDU from another server: `user` (of that server, joined to the room) starts
/// or stops typing; remote typing lasts 30 s unless renewed (spec: Typing Notifications).
pub async fn receive_remote(hs: &Homeserver, user: &UserId, room_id: &RoomId, typing: bool) -> Result<()> {
    if membership_of(hs, room_id, user).await?.as_deref() != Some("join") {
        return Err(Error::forbidden("The user is not joined to this room"));
    }
    let timeout = typing.then_some(REMOTE_TIMEOUT);
    if hs.typing().set_typing(room_id, user, timeout) {
        hs.notifier().wake_room(room_id.to_owned());
    }
    Ok(())
}

/// How long a remote user is shown typing after their server's last `m.typing` EDU.
const REMOTE_TIMEOUT: Duration = Duration::from_secs(30);

/// The typing users of every room; one per homeserver.
pub struct Typing {
    shared: Arc<Shared>,
    /// The expiry task, stopped when the homeserver goes.
    task: JoinHandle<()>,
}

struct Shared {
    state: Mutex<State>,
    /// Signalled when a deadline earlier than every other one is added.
    earlier_deadline: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Held for map operations only, never across an await.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Typing {
    /// Starts the expiry task; `wake_room` is called with each room whose set a timeout changed.
    pub fn start(wake_room: impl Fn(OwnedRoomId) + Send + Sync + 'static) -> Typing {
        let shared =
            Arc::new(Shared { state: Mutex::new(State::new(now_ms())), earlier_deadline: Notify::new() });
        let task = tokio::spawn(expire_forever(shared.clone(), wake_room));
        Typing { shared, task }
    }

    /// Marks `user` typing in `room_id` for `timeout`, or not typing for `None`; whether the
    /// room's set of typing users changed (renewing a timeout does not change it).
    pub fn set_typing(&self, room_id: &RoomId, user: &UserId, timeout: Option<Duration>) -> bool {
        let mut state = self.shared.lock();
        match timeout {
            Some(timeout) => {
                let deadline = Instant::now() + timeout;
                if state.next_deadline().is_none_or(|next| deadline < next) {
                    self.shared.earlier_deadline.notify_one();
                }
                state.start(room_id, user, deadline, now_ms())
            }
            None => state.stop(room_id, user, now_ms()),
        }
    }

    /// The typing stream's current position, for sync tokens.
    pub fn position(&self) -> i64 {
        self.shared.lock().position
    }

    /// The users typing in `room_id` (sorted), if that set changed after position `since`
    /// (an empty list when everyone stopped); `None` when nothing changed.
    pub fn changed_since(&self, room_id: &RoomId, since: i64) -> Option<Vec<OwnedUserId>> {
        self.shared.lock().changed_since(room_id, since)
    }
}

impl Drop for Typing {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The expiry task: sleeps until the earliest deadline (or until an earlier one is added),
/// then removes every expired entry and wakes the rooms that changed.
async fn expire_forever(shared: Arc<Shared>, wake_room: impl Fn(OwnedRoomId)) {
    loop {
        let (expired, next) = {
            let mut state = shared.lock();
            (state.expire(Instant::now(), now_ms()), state.next_deadline())
        };
        for room_id in expired {
            wake_room(room_id);
        }
        match next {
            Some(deadline) => {
                tokio::select! {
                    () = tokio::time::sleep_until(deadline) => {}
                    () = shared.earlier_deadline.notified() => {}
                }
            }
            None => shared.earlier_deadline.notified().await,
        }
    }
}

/// Who types where, and until when.
struct State {
    /// The last position handed out.
    position: i64,
    /// Rooms whose set ever changed; a room whose users all stopped keeps its entry (an empty
    /// set), so syncs behind its last change learn that nobody types any more.
    rooms: HashMap<OwnedRoomId, RoomTyping>,
    /// Every entry's deadline, earliest first.
    deadlines: BTreeSet<(Instant, OwnedRoomId, OwnedUserId)>,
}

#[derive(Default)]
struct RoomTyping {
    /// Typing users and their deadlines.
    users: HashMap<OwnedUserId, Instant>,
    /// The position of the set's last change.
    changed_at: i64,
}

impl State {
    fn new(now_ms: i64) -> State {
        State { position: now_ms, rooms: HashMap::new(), deadlines: BTreeSet::new() }
    }

    /// The next position: one more than the last, or the clock if that is ahead, so positions
    /// stay near the clock and above those of an earlier run.
    fn advance(&mut self, now_ms: i64) -> i64 {
        self.position = (self.position + 1).max(now_ms);
        self.position
    }

    fn start(&mut self, room_id: &RoomId, user: &UserId, deadline: Instant, now_ms: i64) -> bool {
        let room = self.rooms.entry(room_id.to_owned()).or_default();
        let previous = room.users.insert(user.to_owned(), deadline);
        if let Some(previous) = previous {
            self.deadlines.remove(&(previous, room_id.to_owned(), user.to_owned()));
        }
        self.deadlines.insert((deadline, room_id.to_owned(), user.to_owned()));
        if previous.is_some() {
            return false;
        }
        let position = self.advance(now_ms);
        self.rooms.entry(room_id.to_owned()).or_default().changed_at = position;
        true
    }

    fn stop(&mut self, room_id: &RoomId, user: &UserId, now_ms: i64) -> bool {
        let Some(deadline) = self.rooms.get_mut(room_id).and_then(|room| room.users.remove(user)) else {
            return false;
        };
        self.deadlines.remove(&(deadline, room_id.to_owned(), user.to_owned()));
        let position = self.advance(now_ms);
        self.rooms.entry(room_id.to_owned()).or_default().changed_at = position;
        true
    }

    /// Removes the entries due at `now`; the rooms whose set changed.
    fn expire(&mut self, now: Instant, now_ms: i64) -> Vec<OwnedRoomId> {
        let mut changed = Vec::new();
        while let Some((deadline, _, _)) = self.deadlines.first() {
            if *deadline > now {
                break;
            }
            let Some((_, room_id, user)) = self.deadlines.pop_first() else { break };
            if let Some(room) = self.rooms.get_mut(&room_id) {
                room.users.remove(&user);
            }
            if !changed.contains(&room_id) {
                changed.push(room_id);
            }
        }
        for room_id in &changed {
            let position = self.advance(now_ms);
            if let Some(room) = self.rooms.get_mut(room_id) {
                room.changed_at = position;
            }
        }
        changed
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.first().map(|(deadline, _, _)| *deadline)
    }

    fn changed_since(&self, room_id: &RoomId, since: i64) -> Option<Vec<OwnedUserId>> {
        let room = self.rooms.get(room_id).filter(|room| room.changed_at > since)?;
        let mut users: Vec<OwnedUserId> = room.users.keys().cloned().collect();
        users.sort();
        Some(users)
    }
}

#[cfg(test)]
mod tests {
    use ruma::{owned_room_id, owned_user_id};
    use tokio::sync::mpsc;

    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn starting_and_stopping_change_the_set_and_take_new_positions() {
        let (room, alice, bob) =
            (owned_room_id!("!r:x"), owned_user_id!("@alice:x"), owned_user_id!("@bob:x"));
        let now = Instant::now();
        let mut state = State::new(1_000);
        assert_eq!(state.changed_since(&room, 0), None, "a room nobody typed in never changed");

        assert!(state.start(&room, &alice, now + SECOND, 1_000));
        assert_eq!(state.position, 1_001, "the counter moves on even when the clock does not");
        assert!(state.start(&room, &bob, now + SECOND, 5_000));
        assert_eq!(state.position, 5_000, "the counter follows the clock when it is ahead");
        assert_eq!(state.changed_since(&room, 1_001), Some(vec![alice.clone(), bob.clone()]));
        assert_eq!(state.changed_since(&room, 5_000), None, "nothing after the last change");

        assert!(!state.start(&room, &alice, now + 3 * SECOND, 5_000), "renewing is no change");
        assert_eq!(state.position, 5_000);
        assert_eq!(state.deadlines.len(), 2, "the old deadline was replaced");

        assert!(state.stop(&room, &alice, 5_000));
        assert!(!state.stop(&room, &alice, 5_000), "stopping twice changes nothing");
        assert_eq!(state.changed_since(&room, 5_000), Some(vec![bob.clone()]));
        assert!(state.stop(&room, &bob, 5_000));
        assert_eq!(state.changed_since(&room, 5_001), Some(vec![]), "an empty set is still news");
        assert!(state.deadlines.is_empty());
    }

    #[test]
    fn expiry_removes_exactly_the_entries_that_are_due() {
        let (room, other) = (owned_room_id!("!r:x"), owned_room_id!("!other:x"));
        let (alice, bob) = (owned_user_id!("@alice:x"), owned_user_id!("@bob:x"));
        let now = Instant::now();
        let mut state = State::new(0);
        state.start(&room, &alice, now + SECOND, 0);
        state.start(&room, &bob, now + 5 * SECOND, 0);
        state.start(&other, &alice, now + 2 * SECOND, 0);
        assert_eq!(state.next_deadline(), Some(now + SECOND));

        assert_eq!(state.expire(now, 0), Vec::<OwnedRoomId>::new(), "nothing due yet");
        let before = state.position;
        assert_eq!(state.expire(now + 2 * SECOND, 0), vec![room.clone(), other.clone()]);
        assert_eq!(state.changed_since(&room, before), Some(vec![bob.clone()]));
        assert_eq!(state.changed_since(&other, before), Some(vec![]));
        assert_eq!(state.next_deadline(), Some(now + 5 * SECOND));

        state.start(&room, &bob, now + 10 * SECOND, 0);
        assert!(state.expire(now + 5 * SECOND, 0).is_empty(), "a renewed entry outlives its old deadline");
    }

    #[tokio::test]
    async fn the_expiry_task_ends_typing_at_the_timeout_and_wakes_the_room() {
        let (tx, mut woken) = mpsc::unbounded_channel();
        let typing = Typing::start(move |room_id| {
            let _ = tx.send(room_id);
        });
        let (slow, warm_up, fast) =
            (owned_room_id!("!slow:x"), owned_room_id!("!warm:x"), owned_room_id!("!fast:x"));
        let alice = owned_user_id!("@alice:x");
        assert!(typing.set_typing(&slow, &alice, Some(60 * SECOND)));
        assert!(typing.set_typing(&warm_up, &alice, Some(Duration::from_millis(10))));
        let room = tokio::time::timeout(10 * SECOND, woken.recv()).await.expect("woken in time");
        assert_eq!(room, Some(warm_up), "the first timeout ended");

        // The task now waits for !slow's deadline: a shorter timeout added later must not.
        assert!(typing.set_typing(&fast, &alice, Some(Duration::from_millis(50))));
        let since = typing.position();
        assert_eq!(typing.changed_since(&fast, since - 1), Some(vec![alice.clone()]));

        let room = tokio::time::timeout(10 * SECOND, woken.recv()).await.expect("woken in time");
        assert_eq!(room, Some(fast.clone()));
        assert_eq!(typing.changed_since(&fast, since), Some(vec![]), "alice stopped typing in !fast");
        assert_eq!(typing.changed_since(&slow, since), None, "but still types in !slow");
        assert!(typing.position() > since);
    }
}

//! How each room's recent events notified its local users, in memory, as the event stream
//! committed them: an unread count taken from the database at one position is brought up to
//! date from here instead of counting again (a message to a room of N members otherwise costs N
//! counts, each walking every unread notification).
//!
//! Like the [`RecentEvents`](super::recent::RecentEvents), a room's notes are recorded before
//! readers' `upto` passes them, so every note of a room above its `above` mark and the floor is
//! here once readable. Besides notifications, a room remembers where a member's membership
//! moved: a count cannot be carried across its own user's join or leave (which moves the point
//! their default notifications start from). A write that changes the room's state other than
//! through its own event (a state resolution over a fork) raises the room's mark past itself.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
};

use ruma::{OwnedRoomId, OwnedUserId, RoomId, UserId};

use super::positions::Written;

/// Notes kept per room.
const PER_ROOM: usize = 128;
/// Notes kept in all.
const TOTAL: usize = 50_000;

/// How one event at a stream position notifies the room's local members (see
/// [`push_actions`](super::push_actions) for the default-and-exceptions model).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notified {
    /// The event's room.
    pub room_id: OwnedRoomId,
    /// Its position.
    pub position: i64,
    /// Its sender, never notified.
    pub sender: OwnedUserId,
    /// Its thread root.
    pub thread_id: Option<String>,
    /// The default for members joined before it: whether it highlights, `None` when the default
    /// does not notify.
    pub default: Option<bool>,
    /// Members whose outcome differs: whether it highlights for them, `None` when not notified.
    pub exceptions: Vec<(OwnedUserId, Option<bool>)>,
}

impl Notified {
    /// Whether `user` is notified, and if so whether it highlights. `user` must have been
    /// joined since before the event.
    fn highlight_for(&self, user: &UserId) -> Option<bool> {
        if self.sender == user {
            return None;
        }
        match self.exceptions.iter().find(|(u, _)| u == user) {
            Some((_, outcome)) => *outcome,
            None => self.default,
        }
    }
}

/// What a transaction tells the log besides its [`Written`] events.
#[derive(Clone, Debug)]
pub enum UnreadNote {
    /// An event's notifications.
    Notified(Arc<Notified>),
    /// The room's state moved at this position other than through the event's own key: counts
    /// from below it must be taken again.
    Barrier(OwnedRoomId, i64),
}

/// One unread notification found in a catch-up: its thread and whether it highlights.
pub type Unread = (Option<String>, bool);

/// The recent notifications of every room; one per database.
#[derive(Default)]
pub struct UnreadLog(Mutex<Inner>);

#[derive(Default)]
struct Inner {
    /// Catch-ups starting below this position are not answered.
    floor: i64,
    /// The highest position recorded.
    newest: i64,
    rooms: HashMap<OwnedRoomId, Notes>,
    total: usize,
}

#[derive(Default)]
struct Notes {
    /// Every note of the room above this position is in `notes`.
    above: i64,
    notes: BTreeMap<i64, Note>,
}

#[derive(Default)]
struct Note {
    /// The user whose membership this event changed.
    member: Option<OwnedUserId>,
    notified: Option<Arc<Notified>>,
}

impl UnreadLog {
    /// Catch-ups starting at or above `position` can be answered.
    pub(super) fn start_at(&self, position: i64) {
        let mut inner = self.lock();
        inner.floor = inner.floor.max(position);
    }

    /// Records a committed transaction; `undescribed` as for the activity.
    pub(super) fn record(&self, written: &[Written], notes: &[UnreadNote], undescribed: Option<i64>) {
        let mut inner = self.lock();
        if let Some(position) = undescribed {
            inner.floor = inner.floor.max(position);
        }
        for w in written.iter().filter(|w| w.member.is_some()) {
            inner.note(&w.room_id, w.position, |note| note.member = w.member.clone());
        }
        for note in notes {
            match note {
                UnreadNote::Notified(n) => {
                    inner.note(&n.room_id, n.position, |note| note.notified = Some(n.clone()))
                }
                UnreadNote::Barrier(room_id, position) => {
                    let room = inner.rooms.entry(room_id.clone()).or_default();
                    room.above = room.above.max(*position);
                }
            }
        }
        if inner.total > TOTAL {
            inner.floor = inner.floor.max(inner.newest);
            inner.rooms.clear();
            inner.total = 0;
        }
    }

    /// `user`'s notifications in `room_id` at positions in `(after, upto]`, for a user joined
    /// since before `after`; `None` when some may be missing here or their membership moved in
    /// between (count again).
    pub fn catch_up(&self, room_id: &RoomId, user: &UserId, after: i64, upto: i64) -> Option<Vec<Unread>> {
        if upto <= after {
            return Some(Vec::new());
        }
        let inner = self.lock();
        if after < inner.floor {
            return None;
        }
        let Some(room) = inner.rooms.get(room_id) else { return Some(Vec::new()) };
        if after < room.above {
            return None;
        }
        let mut unread = Vec::new();
        for note in room.notes.range(after + 1..=upto).map(|(_, note)| note) {
            if note.member.as_deref() == Some(user) {
                return None;
            }
            if let Some(n) = &note.notified
                && let Some(highlight) = n.highlight_for(user)
            {
                unread.push((n.thread_id.clone(), highlight));
            }
        }
        Some(unread)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Held for map operations only, never across an await.
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Inner {
    /// Updates (or adds) the room's note at `position`, dropping its oldest past [`PER_ROOM`].
    fn note(&mut self, room_id: &RoomId, position: i64, update: impl FnOnce(&mut Note)) {
        self.newest = self.newest.max(position);
        let room = self.rooms.entry(room_id.to_owned()).or_default();
        let before = room.notes.len();
        update(room.notes.entry(position).or_default());
        let mut added = room.notes.len() - before;
        if room.notes.len() > PER_ROOM
            && let Some((dropped, _)) = room.notes.pop_first()
        {
            room.above = room.above.max(dropped);
            added -= 1;
        }
        self.total += added;
    }
}

#[cfg(test)]
mod tests {
    use ruma::{owned_room_id, owned_user_id};

    use super::*;

    fn room() -> OwnedRoomId {
        owned_room_id!("!r:x")
    }

    fn notified(position: i64, default: Option<bool>, exceptions: &[(&str, Option<bool>)]) -> UnreadNote {
        UnreadNote::Notified(Arc::new(Notified {
            room_id: room(),
            position,
            sender: owned_user_id!("@alice:x"),
            thread_id: (position % 2 == 0).then(|| "$root".to_owned()),
            default,
            exceptions: exceptions
                .iter()
                .map(|(u, h)| (OwnedUserId::try_from(*u).expect("user id"), *h))
                .collect(),
        }))
    }

    fn member(position: i64, user: &str) -> Written {
        Written {
            position,
            room_id: room(),
            member: Some(OwnedUserId::try_from(user).expect("user id")),
            event: None,
        }
    }

    #[test]
    fn a_catch_up_applies_defaults_exceptions_and_skips_the_sender() {
        let log = UnreadLog::default();
        log.start_at(10);
        // Out of commit order, as concurrent transactions release.
        log.record(&[], &[notified(12, Some(false), &[("@bob:x", Some(true)), ("@carol:x", None)])], None);
        log.record(&[], &[notified(11, Some(false), &[])], None);
        log.record(&[], &[notified(13, None, &[("@carol:x", Some(false))])], None);
        let bob = owned_user_id!("@bob:x");
        let carol = owned_user_id!("@carol:x");
        let alice = owned_user_id!("@alice:x");
        assert_eq!(
            log.catch_up(&room(), &bob, 10, 13),
            Some(vec![(None, false), (Some("$root".to_owned()), true)])
        );
        assert_eq!(log.catch_up(&room(), &carol, 10, 13), Some(vec![(None, false), (None, false)]));
        assert_eq!(log.catch_up(&room(), &alice, 10, 13), Some(vec![]), "the sender is never notified");
        assert_eq!(log.catch_up(&room(), &bob, 11, 11), Some(vec![]));
        assert_eq!(log.catch_up(&room(), &bob, 12, 12 + 5), Some(vec![]), "only up to what is recorded");
        assert_eq!(log.catch_up(&room(), &bob, 9, 13), None, "below the floor");
        assert_eq!(log.catch_up(&owned_room_id!("!other:x"), &bob, 10, 13), Some(vec![]));
    }

    #[test]
    fn a_membership_move_a_barrier_and_dropped_notes_send_counts_to_the_database() {
        let log = UnreadLog::default();
        log.record(
            &[member(2, "@bob:x")],
            &[notified(1, Some(false), &[]), notified(3, Some(false), &[])],
            None,
        );
        let bob = owned_user_id!("@bob:x");
        let carol = owned_user_id!("@carol:x");
        assert_eq!(log.catch_up(&room(), &bob, 0, 3), None, "bob's own join or leave at 2");
        assert_eq!(log.catch_up(&room(), &bob, 2, 3), Some(vec![(None, false)]));
        assert_eq!(log.catch_up(&room(), &carol, 0, 3).map(|u| u.len()), Some(2));

        log.record(&[], &[UnreadNote::Barrier(room(), 4)], None);
        assert_eq!(log.catch_up(&room(), &carol, 3, 5), None, "the state moved at 4");
        assert_eq!(log.catch_up(&room(), &carol, 4, 5), Some(vec![]));

        // 1, 2, 3 and 5 are dropped past the room's last PER_ROOM notes.
        let many: Vec<UnreadNote> =
            (5..=5 + PER_ROOM as i64).map(|p| notified(p, Some(false), &[])).collect();
        log.record(&[], &many, None);
        assert_eq!(log.catch_up(&room(), &carol, 4, 1_000), None, "5 was dropped");
        assert_eq!(log.catch_up(&room(), &carol, 5, 1_000).map(|u| u.len()), Some(PER_ROOM));

        log.record(&[], &[], Some(2_000));
        assert_eq!(log.catch_up(&room(), &carol, 1_000, 2_001), None, "a position nobody described");
    }
}

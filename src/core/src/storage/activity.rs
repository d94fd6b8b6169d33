//! What the event stream wrote since this process started, in memory: per room the position of
//! its latest event and of its latest membership event, per user the positions where their own
//! membership changed. A woken `/sync` asks it which of its user's rooms have news instead of
//! asking the database (each query a round trip to the database thread, the bulk of a woken
//! sync's cost).
//!
//! Answers are conservative: a room named may have nothing in the window (its latest event came
//! after the reader's `now`), but a room with an event in the window is always named, because
//! [`EventPositions`](super::positions::EventPositions) records a commit here before it lets
//! readers' `upto` pass it. A window starting below [`floor`](Activity::floor) (before this
//! process started, or across a committed position nobody described) gets `None`: ask the
//! database.

use std::{
    collections::HashMap,
    sync::{
        Mutex, MutexGuard,
        atomic::{AtomicI64, Ordering},
    },
};

use ruma::{OwnedRoomId, OwnedUserId, RoomId, UserId};

use super::positions::Written;

/// The event stream's recent activity; one per database.
#[derive(Default)]
pub struct Activity {
    /// Everything committed above this position is recorded.
    floor: AtomicI64,
    marks: Mutex<Marks>,
}

#[derive(Default)]
struct Marks {
    /// Per room: (latest event, latest membership event).
    rooms: HashMap<OwnedRoomId, (i64, i64)>,
    /// Per user: the latest position where their membership in each room changed.
    members: HashMap<OwnedUserId, HashMap<OwnedRoomId, i64>>,
}

impl Activity {
    /// Windows starting at or above `position` can be answered.
    pub(super) fn start_at(&self, position: i64) {
        self.floor.fetch_max(position, Ordering::SeqCst);
    }

    /// Windows starting below this position cannot be answered.
    pub fn floor(&self) -> i64 {
        self.floor.load(Ordering::SeqCst)
    }

    /// Records committed events; `undescribed` is the highest committed position that came
    /// without a description (none should), below which nothing can be answered any more.
    pub(super) fn record(&self, written: &[Written], undescribed: Option<i64>) {
        if let Some(position) = undescribed {
            self.start_at(position);
        }
        if written.is_empty() {
            return;
        }
        let mut marks = self.lock();
        for w in written {
            let room = marks.rooms.entry(w.room_id.clone()).or_default();
            room.0 = room.0.max(w.position);
            if let Some(member) = &w.member {
                room.1 = room.1.max(w.position);
                let moves = marks.members.entry(member.clone()).or_default();
                let at = moves.entry(w.room_id.clone()).or_default();
                *at = (*at).max(w.position);
            }
        }
    }

    /// Of `rooms`, those with an event after `since`; `None` when `since` is below the floor.
    pub fn rooms_with_events_after<'a>(
        &self,
        since: i64,
        rooms: impl IntoIterator<Item = &'a RoomId>,
    ) -> Option<Vec<OwnedRoomId>> {
        self.answerable(since)?;
        let marks = self.lock();
        Some(
            rooms
                .into_iter()
                .filter(|room| marks.rooms.get(*room).is_some_and(|(latest, _)| *latest > since))
                .map(RoomId::to_owned)
                .collect(),
        )
    }

    /// Whether any of `rooms` had a membership event after `since`; `None` when `since` is
    /// below the floor.
    pub fn member_events_after<'a>(
        &self,
        since: i64,
        mut rooms: impl Iterator<Item = &'a RoomId>,
    ) -> Option<bool> {
        self.answerable(since)?;
        let marks = self.lock();
        Some(rooms.any(|room| marks.rooms.get(room).is_some_and(|(_, member)| *member > since)))
    }

    /// The rooms where `user`'s membership changed after `since`; `None` when `since` is below
    /// the floor.
    pub fn membership_moves_after(&self, user: &UserId, since: i64) -> Option<Vec<OwnedRoomId>> {
        self.answerable(since)?;
        let marks = self.lock();
        let moves = marks.members.get(user).into_iter().flatten();
        Some(moves.filter(|(_, at)| **at > since).map(|(room, _)| room.clone()).collect())
    }

    fn answerable(&self, since: i64) -> Option<()> {
        (since >= self.floor()).then_some(())
    }

    fn lock(&self) -> MutexGuard<'_, Marks> {
        // Held for map operations only, never across an await.
        self.marks.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use ruma::{owned_room_id, owned_user_id, room_id, user_id};

    use super::*;

    fn event(position: i64, room: &str, member: Option<&str>) -> Written {
        Written {
            position,
            room_id: room.try_into().expect("room id"),
            member: member.map(|m| m.try_into().expect("user id")),
            event: None,
        }
    }

    #[test]
    fn windows_below_the_floor_are_not_answered() {
        let activity = Activity::default();
        activity.start_at(10);
        assert_eq!(activity.rooms_with_events_after(9, [room_id!("!a:x")]), None);
        assert_eq!(activity.membership_moves_after(user_id!("@u:x"), 3), None);
        assert_eq!(activity.rooms_with_events_after(10, [room_id!("!a:x")]), Some(vec![]));
    }

    #[test]
    fn rooms_are_named_when_they_have_events_after_the_position() {
        let activity = Activity::default();
        activity.record(&[event(1, "!a:x", None), event(2, "!b:x", None), event(3, "!a:x", None)], None);
        let rooms = [room_id!("!a:x"), room_id!("!b:x"), room_id!("!c:x")];
        assert_eq!(activity.rooms_with_events_after(2, rooms), Some(vec![owned_room_id!("!a:x")]));
        assert_eq!(activity.rooms_with_events_after(0, rooms).map(|r| r.len()), Some(2));
        assert_eq!(activity.rooms_with_events_after(3, rooms), Some(vec![]));
    }

    #[test]
    fn membership_moves_are_per_user_and_per_room() {
        let activity = Activity::default();
        activity.record(&[event(4, "!a:x", Some("@u:x")), event(5, "!b:x", Some("@v:x"))], None);
        assert_eq!(activity.membership_moves_after(user_id!("@u:x"), 3), Some(vec![owned_room_id!("!a:x")]));
        assert_eq!(activity.membership_moves_after(user_id!("@u:x"), 4), Some(vec![]));
        assert_eq!(activity.member_events_after(4, [room_id!("!b:x")].into_iter()), Some(true));
        assert_eq!(activity.member_events_after(4, [room_id!("!a:x")].into_iter()), Some(false));
        let _ = owned_user_id!("@u:x");
    }

    #[test]
    fn an_undescribed_commit_raises_the_floor() {
        let activity = Activity::default();
        activity.record(&[], Some(7));
        assert_eq!(activity.rooms_with_events_after(6, [room_id!("!a:x")]), None);
        assert_eq!(activity.floor(), 7);
    }
}

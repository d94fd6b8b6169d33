//! Which receipts were written since this process started, in memory: per room the position of
//! its latest receipt every member sees (`m.read`), per user the position of the latest receipt
//! only they see (their own `m.read.private`, deliveries of the events they sent). A `/sync` asks
//! it whether anything its user may see moved before it queries the receipts table: delivery
//! receipts move the receipts stream once per recipient of every message, and every member's
//! next sync would otherwise run that query for receipts that are none of its business.
//!
//! Answers are conservative, like the event stream's
//! [`Activity`](crate::storage::activity::Activity): a receipt is recorded before its
//! transaction commits, so before its stream position is published to readers (one that then
//! rolls back only makes a reader look in vain). A window starting below the position the
//! process started at gets `None`: ask the database.

use std::{collections::HashMap, sync::Mutex};

use ruma::{OwnedRoomId, OwnedUserId, RoomId, UserId};

/// The receipts stream's recent activity; one per homeserver.
pub struct ReceiptActivity {
    /// Every receipt written above this position is recorded.
    floor: i64,
    marks: Mutex<Marks>,
}

#[derive(Default)]
struct Marks {
    /// Per room: the latest receipt its members all see.
    shared: HashMap<OwnedRoomId, i64>,
    /// Per user: the latest receipt only they see.
    private: HashMap<OwnedUserId, i64>,
}

impl ReceiptActivity {
    /// Records everything written after `floor`, the stream's position when the process started.
    pub fn starting_at(floor: i64) -> Self {
        Self { floor, marks: Mutex::default() }
    }

    /// A receipt in `room_id` every member sees, at `position`.
    pub fn shared(&self, room_id: &RoomId, position: i64) {
        let mut marks = self.marks.lock().expect("receipt activity lock poisoned");
        let at = marks.shared.entry(room_id.to_owned()).or_default();
        *at = (*at).max(position);
    }

    /// A receipt only `user` sees, at `position`.
    pub fn private(&self, user: &UserId, position: i64) {
        let mut marks = self.marks.lock().expect("receipt activity lock poisoned");
        let at = marks.private.entry(user.to_owned()).or_default();
        *at = (*at).max(position);
    }

    /// Whether `user` may see a receipt written after `since` in one of `rooms`; `None` when
    /// `since` is below the floor.
    pub fn any_after<'a>(
        &self,
        since: i64,
        user: &UserId,
        rooms: impl IntoIterator<Item = &'a RoomId>,
    ) -> Option<bool> {
        if since < self.floor {
            return None;
        }
        let marks = self.marks.lock().expect("receipt activity lock poisoned");
        if marks.private.get(user).is_some_and(|at| *at > since) {
            return Some(true);
        }
        Some(rooms.into_iter().any(|room| marks.shared.get(room).is_some_and(|at| *at > since)))
    }
}

#[cfg(test)]
mod tests {
    use ruma::{room_id, user_id};

    use super::*;

    #[test]
    fn a_window_below_the_floor_is_not_answered() {
        let activity = ReceiptActivity::starting_at(10);
        assert_eq!(activity.any_after(9, user_id!("@a:x"), [room_id!("!r:x")]), None);
        assert_eq!(activity.any_after(10, user_id!("@a:x"), [room_id!("!r:x")]), Some(false));
    }

    #[test]
    fn shared_receipts_concern_the_rooms_members_and_private_ones_their_user() {
        let activity = ReceiptActivity::starting_at(0);
        activity.shared(room_id!("!r:x"), 5);
        activity.private(user_id!("@a:x"), 7);

        assert_eq!(activity.any_after(4, user_id!("@b:x"), [room_id!("!r:x")]), Some(true));
        assert_eq!(activity.any_after(5, user_id!("@b:x"), [room_id!("!r:x")]), Some(false));
        assert_eq!(activity.any_after(4, user_id!("@b:x"), [room_id!("!other:x")]), Some(false));
        assert_eq!(activity.any_after(6, user_id!("@a:x"), [room_id!("!other:x")]), Some(true));
        assert_eq!(activity.any_after(7, user_id!("@a:x"), [room_id!("!r:x")]), Some(false));
    }
}

//! History visibility (spec: Client-Server API › Room History Visibility,
//! <https://spec.matrix.org/latest/client-server-api/#room-history-visibility>): which events of
//! a room a user may read.
//!
//! Whether a user may see an event depends on the room's `history_visibility` and the user's
//! membership *at that event*. Both change only at a few events (the user's own `m.room.member`
//! events and the `m.room.history_visibility` events), so instead of loading the state at every
//! event, [`Readable::load`] reads those changes once per request and turns them into the sorted
//! ranges of stream positions the user may read; checking an event is then a binary search on
//! its stream position. The changes are taken in stream order, which is the room's order for
//! events this server appended; events that state resolution later overrode are not looked at.
//! In a room joined through another server, the history before the join is backfilled later
//! (`rooms::backfill`): until the history visibility event of the state it was joined with is
//! among it, that event's value applies to everything before the first change in the timeline.

use std::collections::{HashMap, HashSet};

use ruma::{OwnedRoomId, RoomId, UserId};
use serde_json::Value;

use crate::{
    Homeserver, Result,
    storage::{backfill, history, rooms, state},
};

/// The `history_visibility` of a room at some event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HistoryVisibility {
    /// Anyone may read, member or not.
    WorldReadable,
    /// Members may read everything, including what was sent before they joined.
    Shared,
    /// Members may read from the point they were invited.
    Invited,
    /// Members may read from the point they joined.
    Joined,
}

impl HistoryVisibility {
    /// The value of an `m.room.history_visibility` content; anything not understood is `shared`,
    /// as the spec requires.
    pub fn from_content(content: &Value) -> HistoryVisibility {
        match content.get("history_visibility").and_then(Value::as_str) {
            Some("world_readable") => HistoryVisibility::WorldReadable,
            Some("invited") => HistoryVisibility::Invited,
            Some("joined") => HistoryVisibility::Joined,
            _ => HistoryVisibility::Shared,
        }
    }
}

/// The part of a user's membership that decides what they may read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Membership {
    /// Joined.
    Join,
    /// Invited.
    Invite,
    /// Anything else: never a member, left, kicked, banned, knocking.
    Other,
}

impl Membership {
    /// The membership an `m.room.member` content sets.
    pub fn from_content(content: &Value) -> Membership {
        match content.get("membership").and_then(Value::as_str) {
            Some("join") => Membership::Join,
            Some("invite") => Membership::Invite,
            _ => Membership::Other,
        }
    }
}

/// The spec's rule for one event, given the visibility and the user's membership at it, and
/// whether the user was joined at any point after it.
pub fn may_see(visibility: HistoryVisibility, membership: Membership, joined_afterwards: bool) -> bool {
    match visibility {
        HistoryVisibility::WorldReadable => true,
        _ if membership == Membership::Join => true,
        HistoryVisibility::Shared => joined_afterwards,
        HistoryVisibility::Invited => membership == Membership::Invite,
        HistoryVisibility::Joined => false,
    }
}

/// What one user may read of one room: sorted, disjoint, non-adjacent inclusive ranges of
/// stream positions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Readable {
    ranges: Vec<(i64, i64)>,
}

impl Readable {
    /// Computes the readable ranges from the user's membership changes and the room's history
    /// visibility changes, each `(stream position, new value)` in stream order, `initial` being
    /// the visibility before the first change. An event at a position where one of them changes
    /// is that membership or visibility event itself, which the user may see if the rule allows
    /// it with the value before *or* after it.
    pub fn compute(
        initial: HistoryVisibility,
        memberships: &[(i64, Membership)],
        visibilities: &[(i64, HistoryVisibility)],
    ) -> Readable {
        // The user was joined at some point after position p iff p < joined_until.
        let mut joined_until = i64::MIN;
        let mut joined_since: Option<i64> = None;
        for &(position, membership) in memberships {
            match (membership == Membership::Join, joined_since) {
                (true, None) => joined_since = Some(position),
                (false, Some(_)) => {
                    joined_until = position;
                    joined_since = None;
                }
                _ => {}
            }
        }
        if joined_since.is_some() {
            joined_until = i64::MAX;
        }

        let mut points: Vec<i64> =
            memberships.iter().map(|c| c.0).chain(visibilities.iter().map(|c| c.0)).collect();
        points.sort_unstable();
        points.dedup();
        let (mut membership, mut visibility) = (Membership::Other, initial);
        let (mut m, mut v) = (memberships.iter().peekable(), visibilities.iter().peekable());
        let mut readable = Readable::default();
        let mut segment_start = i64::MIN;
        for point in points {
            // Between the previous change and this one, nothing changes.
            if may_see(visibility, membership, point <= joined_until) {
                readable.push(segment_start, point - 1);
            }
            let before = (visibility, membership);
            while let Some(&&(_, value)) = m.peek().filter(|c| c.0 == point) {
                membership = value;
                m.next();
            }
            while let Some(&&(_, value)) = v.peek().filter(|c| c.0 == point) {
                visibility = value;
                v.next();
            }
            let joined_afterwards = point < joined_until;
            if may_see(before.0, before.1, joined_afterwards)
                || may_see(visibility, membership, joined_afterwards)
            {
                readable.push(point, point);
            }
            segment_start = point + 1;
        }
        if may_see(visibility, membership, joined_until == i64::MAX) {
            readable.push(segment_start, i64::MAX);
        }
        readable
    }

    fn push(&mut self, low: i64, high: i64) {
        if low > high {
            return;
        }
        match self.ranges.last_mut() {
            Some(last) if last.1.saturating_add(1) >= low => last.1 = last.1.max(high),
            _ => self.ranges.push((low, high)),
        }
    }

    /// Everything: what a user joined throughout a stretch of the timeline may read of it.
    pub fn all() -> Readable {
        Readable { ranges: vec![(i64::MIN, i64::MAX)] }
    }

    /// The readable ranges: sorted, disjoint, inclusive.
    pub fn ranges(&self) -> &[(i64, i64)] {
        &self.ranges
    }

    /// Whether the user may read nothing at all.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Whether the user may read the event at `position`.
    pub fn contains(&self, position: i64) -> bool {
        let index = self.ranges.partition_point(|r| r.1 < position);
        self.ranges.get(index).is_some_and(|r| r.0 <= position)
    }

    /// The last readable position: `Some(i64::MAX)` when the user may read on into the future.
    pub fn last(&self) -> Option<i64> {
        self.ranges.last().map(|r| r.1)
    }

    /// The highest readable range that starts at or below `at`, cut at `at`.
    pub fn at_or_below(&self, at: i64) -> Option<(i64, i64)> {
        let index = self.ranges.partition_point(|r| r.0 <= at);
        index.checked_sub(1).and_then(|i| self.ranges.get(i)).map(|r| (r.0, r.1.min(at)))
    }

    /// The lowest readable range that ends above `after`, cut to start above it.
    pub fn above(&self, after: i64) -> Option<(i64, i64)> {
        let index = self.ranges.partition_point(|r| r.1 <= after);
        self.ranges.get(index).map(|r| (r.0.max(after.saturating_add(1)), r.1))
    }

    /// What `user` may read of `room_id`; `None` for rooms this server does not know. After
    /// `/forget`, a user who is not back in the room reads it as if never a member.
    pub async fn load(hs: &Homeserver, user: &UserId, room_id: &RoomId) -> Result<Option<Readable>> {
        if rooms::version(hs.db().pool(), room_id).await?.is_none() {
            return Ok(None);
        }
        let mut loaded = Readable::load_many(hs, user, &[room_id.to_owned()]).await?;
        Ok(loaded.remove(room_id))
    }

    /// [`load`](Self::load) for many rooms this server knows, in a few queries whatever their
    /// number.
    pub async fn load_many(
        hs: &Homeserver,
        user: &UserId,
        room_ids: &[OwnedRoomId],
    ) -> Result<HashMap<OwnedRoomId, Readable>> {
        let pool = hs.db().pool();
        let mut forgotten = HashSet::new();
        for room_id in rooms::forgotten(pool, user).await? {
            let Ok(room_id) = OwnedRoomId::try_from(room_id) else { continue };
            if room_ids.contains(&room_id)
                && !matches!(
                    state::membership(pool, &room_id, user.as_str()).await?.as_deref(),
                    Some("join" | "invite")
                )
            {
                forgotten.insert(room_id);
            }
        }
        let ids: Vec<&str> = room_ids.iter().map(|r| r.as_str()).collect();
        let mut memberships =
            changes(pool, &ids, "m.room.member", user.as_str(), Membership::from_content).await?;
        let mut visibilities =
            changes(pool, &ids, "m.room.history_visibility", "", HistoryVisibility::from_content).await?;
        let mut initial: HashMap<String, HistoryVisibility> = HashMap::new();
        for (room_id, json) in backfill::pending_visibility(pool, &ids).await? {
            let event: Value = serde_json::from_str(&json).unwrap_or(Value::Null);
            initial.insert(room_id, HistoryVisibility::from_content(&event["content"]));
        }
        Ok(room_ids
            .iter()
            .map(|room_id| {
                let memberships = match forgotten.contains(room_id) {
                    true => Vec::new(),
                    false => memberships.remove(room_id.as_str()).unwrap_or_default(),
                };
                let visibilities = visibilities.remove(room_id.as_str()).unwrap_or_default();
                let initial = initial.remove(room_id.as_str()).unwrap_or(HistoryVisibility::Shared);
                (room_id.clone(), Readable::compute(initial, &memberships, &visibilities))
            })
            .collect())
    }
}

/// The changes at `(kind, state_key)` in each of `room_ids`, oldest first, as values.
async fn changes<T>(
    pool: &sqlx::AnyPool,
    room_ids: &[&str],
    kind: &str,
    state_key: &str,
    value: impl Fn(&Value) -> T,
) -> Result<HashMap<String, Vec<(i64, T)>>> {
    let mut changes: HashMap<String, Vec<(i64, T)>> = HashMap::new();
    for (room_id, row) in history::state_changes(pool, room_ids, kind, state_key).await? {
        let event: Value = serde_json::from_str(&row.json).unwrap_or(Value::Null);
        changes.entry(room_id).or_default().push((row.stream_ordering, value(&event["content"])));
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::{
        HistoryVisibility::{self, *},
        Membership::{self, *},
        Readable, may_see,
    };

    fn readable(memberships: &[(i64, Membership)], visibilities: &[(i64, HistoryVisibility)]) -> Readable {
        Readable::compute(Shared, memberships, visibilities)
    }

    #[test]
    fn the_rule_follows_the_spec_table() {
        for membership in [Join, Invite, Other] {
            assert!(may_see(WorldReadable, membership, false));
        }
        for visibility in [Shared, Invited, Joined] {
            assert!(may_see(visibility, Join, false), "{visibility:?}");
        }
        assert!(may_see(Shared, Other, true));
        assert!(!may_see(Shared, Other, false));
        assert!(!may_see(Shared, Invite, false));
        assert!(may_see(Invited, Invite, false));
        assert!(!may_see(Invited, Other, true));
        assert!(!may_see(Joined, Invite, true));
        assert!(!may_see(Joined, Other, true));
    }

    #[test]
    fn unknown_visibility_is_shared() {
        let content = serde_json::json!({ "history_visibility": "something_new" });
        assert_eq!(HistoryVisibility::from_content(&content), Shared);
        assert_eq!(HistoryVisibility::from_content(&serde_json::Value::Null), Shared);
    }

    #[test]
    fn a_non_member_reads_nothing_unless_world_readable() {
        assert!(readable(&[], &[(3, Shared)]).is_empty());
        assert!(readable(&[], &[(3, Joined)]).is_empty());
        let peek = readable(&[], &[(3, Shared), (10, WorldReadable), (20, Joined)]);
        // Both visibility changes around the world-readable stretch are visible.
        assert_eq!(peek.ranges, vec![(10, 20)]);
    }

    #[test]
    fn shared_history_is_readable_from_the_start_by_a_member() {
        let r = readable(&[(50, Join)], &[(3, Shared)]);
        assert!(r.contains(1) && r.contains(3) && r.contains(49) && r.contains(50) && r.contains(1000));
        assert_eq!(r.last(), Some(i64::MAX));
    }

    #[test]
    fn a_user_who_left_reads_up_to_their_leave_and_nothing_after() {
        let r = readable(&[(5, Join), (20, Other)], &[(3, Shared)]);
        assert!(r.contains(1) && r.contains(19));
        assert!(r.contains(20), "their own leave event");
        assert!(!r.contains(21));
        assert_eq!(r.last(), Some(20));
    }

    #[test]
    fn joined_visibility_hides_what_came_before_the_join() {
        let r = readable(&[(10, Join)], &[(3, Joined)]);
        assert!(!r.contains(9));
        assert!(r.contains(10), "their own join event");
        assert!(r.contains(11));
    }

    #[test]
    fn invited_visibility_starts_at_the_invite() {
        let r = readable(&[(10, Invite), (15, Join)], &[(3, Invited)]);
        assert!(!r.contains(9));
        assert!(r.contains(10) && r.contains(12) && r.contains(15));
        let shared = readable(&[(10, Invite)], &[(3, Shared)]);
        assert!(shared.is_empty(), "an invitee does not read shared history before joining");
    }

    #[test]
    fn visibility_applies_as_it_was_when_each_event_was_sent() {
        // Joined-only until 30, shared after; the user joins at 40 and later leaves at 60.
        let r = readable(&[(40, Join), (60, Other)], &[(3, Joined), (30, Shared)]);
        assert!(!r.contains(29));
        assert!(r.contains(30), "the change to shared is visible with the value after it");
        assert!(r.contains(35) && r.contains(60));
        assert!(!r.contains(61));
        // Before the first visibility event the default, shared, applied.
        assert_eq!(r.ranges, vec![(i64::MIN, 3), (30, 60)]);
    }

    #[test]
    fn rejoining_under_joined_visibility_leaves_a_gap() {
        let r = readable(&[(10, Join), (20, Other), (30, Join)], &[(3, Joined)]);
        // Up to and including the change to `joined`, the default (shared) applied.
        assert_eq!(r.ranges, vec![(i64::MIN, 3), (10, 20), (30, i64::MAX)]);
        assert_eq!(r.at_or_below(25), Some((10, 20)));
        assert_eq!(r.at_or_below(15), Some((10, 15)));
        assert_eq!(r.at_or_below(9), Some((i64::MIN, 3)));
        assert_eq!(r.at_or_below(i64::MIN), Some((i64::MIN, i64::MIN)));
        assert_eq!(Readable::default().at_or_below(5), None);
        assert_eq!(r.above(2), Some((3, 3)));
        assert_eq!(r.above(25), Some((30, i64::MAX)));
        assert_eq!(r.above(12), Some((13, 20)));
        assert_eq!(r.above(20), Some((30, i64::MAX)));
    }

    #[test]
    fn the_visibility_a_room_was_joined_with_applies_before_its_first_change_here() {
        // Joined over federation at 10 under `joined`; history backfilled below it.
        let r = Readable::compute(Joined, &[(10, Join)], &[]);
        assert_eq!(r.ranges, vec![(10, i64::MAX)]);
        assert_eq!(r.at_or_below(9), None, "nothing to page back into");
        // Once the change to `joined` is backfilled (at -3), what came before it is shared.
        let r = Readable::compute(Shared, &[(10, Join)], &[(-3, Joined)]);
        assert_eq!(r.ranges, vec![(i64::MIN, -3), (10, i64::MAX)]);
    }

    #[test]
    fn shared_history_from_a_gap_is_readable_after_rejoining() {
        let r = readable(&[(10, Join), (20, Other), (30, Join)], &[(3, Shared)]);
        assert_eq!(r.ranges, vec![(i64::MIN, i64::MAX)]);
    }
}

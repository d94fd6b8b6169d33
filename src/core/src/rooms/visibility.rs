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

use ruma::{OwnedRoomId, RoomId, ServerName, UserId};
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

    /// Adds what `other` may read.
    pub fn union(&mut self, other: &Readable) {
        let mut ranges: Vec<(i64, i64)> = self.ranges.iter().chain(&other.ranges).copied().collect();
        ranges.sort_unstable();
        *self = Readable::default();
        for (low, high) in ranges {
            self.push(low, high);
        }
    }

    /// What the users of `server` may read of `room_id`, together: a server may see an event
    /// if any of its users could (spec: Server-Server API › Retrieving events; the rule is the
    /// client one). Anyone reads world-readable stretches.
    pub async fn load_for_server(hs: &Homeserver, room_id: &RoomId, server: &ServerName) -> Result<Readable> {
        let pool = hs.db().pool();
        let ids = [room_id.as_str()];
        let (mut visibilities, mut initial) = visibility_changes(pool, &ids).await?;
        let visibilities = visibilities.remove(room_id.as_str()).unwrap_or_default();
        let initial = initial.remove(room_id.as_str()).unwrap_or(HistoryVisibility::Shared);
        let mut by_user: HashMap<String, Vec<(i64, Membership)>> = HashMap::new();
        for (user, change) in history::member_changes_of_server(pool, room_id, server.as_str()).await? {
            if UserId::parse(user.as_str()).map_or(true, |user| user.server_name() != server) {
                continue;
            }
            let event: Value = serde_json::from_str(&change.json).unwrap_or(Value::Null);
            by_user
                .entry(user)
                .or_default()
                .push((change.stream_ordering, Membership::from_content(&event["content"])));
        }
        let mut readable = Readable::compute(initial, &[], &visibilities);
        for memberships in by_user.values() {
            readable.union(&Readable::compute(initial, memberships, &visibilities));
        }
        Ok(readable)
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
        let (mut visibilities, mut initial) = visibility_changes(pool, &ids).await?;
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

/// Per room of `room_ids`, the history visibility changes in the timeline, oldest first, and the
/// visibility before the first of them when it is not the default (a room joined through another
/// server whose join-time visibility event is not backfilled yet).
#[allow(clippy::type_complexity)]
async fn visibility_changes(
    pool: &sqlx::AnyPool,
    room_ids: &[&str],
) -> Result<(HashMap<String, Vec<(i64, HistoryVisibility)>>, HashMap<String, HistoryVisibility>)> {
    let changes =
        changes(pool, room_ids, "m.room.history_visibility", "", HistoryVisibility::from_content).await?;
    let mut initial = HashMap::new();
    for (room_id, json) in backfill::pending_visibility(pool, room_ids).await? {
        let event: Value = serde_json::from_str(&json).unwrap_or(Value::Null);
        initial.insert(room_id, HistoryVisibility::from_content(&event["content"]));
    }
    Ok((changes, initial))
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
#[path = "visibility_tests.rs"]
mod tests;

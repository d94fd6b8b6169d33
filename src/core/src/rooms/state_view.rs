//! The room state a user may read (spec: Client-Server API › `GET /rooms/{roomId}/state`,
//! `/state/{eventType}/{stateKey}`, `/members`): the current state while they may read on
//! (joined, or the room is world-readable), else the state at the last event they may read — for
//! a user who left, the state right after their leave, so nothing that happened later shows.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use ruma::{EventId, RoomId, UserId, events::TimelineEventType};

use super::{
    Pdu,
    history::readable,
    timeline::{self, StreamToken, parse},
};
use crate::{
    Homeserver, Result,
    storage::{events, history, state::StateEntry},
};

/// Which state a user sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum View {
    /// The room's current state.
    Current,
    /// The state after the last event at or before this stream position.
    At(i64),
}

/// The state `user` may read, at `at` if given (never past what they may read); 403 if they may
/// read nothing of the room.
async fn view(hs: &Homeserver, user: &UserId, room_id: &RoomId, at: Option<StreamToken>) -> Result<View> {
    let last = readable(hs, user, room_id).await?.last().unwrap_or(i64::MAX);
    Ok(match at {
        Some(at) => View::At(at.0.min(last)),
        None if last == i64::MAX => View::Current,
        None => View::At(last),
    })
}

/// The full state `user` may read.
pub async fn state(hs: &Homeserver, user: &UserId, room_id: &RoomId) -> Result<Vec<Pdu>> {
    match view(hs, user, room_id, None).await? {
        View::Current => timeline::current_state(hs, room_id).await,
        View::At(position) => state_at(hs, room_id, position, |_, _| true).await,
    }
}

/// One state event `user` may read, if there is one at `(kind, state_key)`.
pub async fn state_event(
    hs: &Homeserver,
    user: &UserId,
    room_id: &RoomId,
    kind: &str,
    state_key: &str,
) -> Result<Option<Pdu>> {
    match view(hs, user, room_id, None).await? {
        View::Current => timeline::current_state_event(hs, room_id, kind, state_key).await,
        View::At(position) => {
            let found = state_at(hs, room_id, position, |k, s| k == kind && s == state_key).await?;
            Ok(found.into_iter().next())
        }
    }
}

/// The `m.room.member` events `user` may read, at `at` if given.
pub async fn members(
    hs: &Homeserver,
    user: &UserId,
    room_id: &RoomId,
    at: Option<StreamToken>,
) -> Result<Vec<Pdu>> {
    match view(hs, user, room_id, at).await? {
        View::Current => timeline::members(hs, room_id).await,
        View::At(position) => {
            let member = TimelineEventType::RoomMember.to_string();
            state_at(hs, room_id, position, |k, _| k == member).await
        }
    }
}

/// The state events after the last event at or before `position` whose `(type, state_key)`
/// passes `wanted`.
pub(crate) async fn state_at(
    hs: &Homeserver,
    room_id: &RoomId,
    position: i64,
    wanted: impl Fn(&str, &str) -> bool,
) -> Result<Vec<Pdu>> {
    if position < 0 {
        return backfilled_state_at(hs, room_id, position, wanted).await;
    }
    match history::state_group_at(hs.db().pool(), room_id, position).await? {
        Some(group) => state_in_group(hs, room_id, group, wanted).await,
        None => Ok(Vec::new()),
    }
}

/// The state after the backfilled event at `position` (below 0, where events have no state
/// group: see `rooms::backfill`), as far as this server can tell: the backfilled state events
/// up to it, in order (exact when the history here reaches the create event, as backfilled
/// history is one line), and for the keys none of them set, the state after the room's
/// earliest event with a state group, unless an event between changed that key (its value at
/// `position` is then unknown and left out).
async fn backfilled_state_at(
    hs: &Homeserver,
    room_id: &RoomId,
    position: i64,
    wanted: impl Fn(&str, &str) -> bool,
) -> Result<Vec<Pdu>> {
    let pool = hs.db().pool();
    let mut state: HashMap<(String, String), Pdu> = HashMap::new();
    for row in history::state_events_between(pool, room_id, i64::MIN, position).await? {
        let pdu = parse(&row, room_id)?;
        if let Some(key) = pdu.state_key.clone() {
            state.insert((pdu.kind.to_string(), key), pdu);
        }
    }
    if let Some((above, group)) = history::grouped_above(pool, room_id, position).await? {
        let mut changed: HashSet<(String, String)> = HashSet::new();
        for row in history::state_events_between(pool, room_id, position, above).await? {
            let pdu = parse(&row, room_id)?;
            changed.extend(pdu.state_key.map(|key| (pdu.kind.to_string(), key)));
        }
        let entries = entries_in_group(hs, group, |kind, key| {
            let key = (kind.to_owned(), key.to_owned());
            !state.contains_key(&key) && !changed.contains(&key)
        })
        .await?;
        for pdu in state_events(hs, room_id, &entries).await? {
            if let Some(key) = pdu.state_key.clone() {
                state.insert((pdu.kind.to_string(), key), Arc::unwrap_or_clone(pdu));
            }
        }
    }
    Ok(state.into_iter().filter(|((kind, key), _)| wanted(kind, key)).map(|(_, pdu)| pdu).collect())
}

/// The state events of state group `group` whose `(type, state_key)` passes `wanted`; only
/// those are loaded.
pub(crate) async fn state_in_group(
    hs: &Homeserver,
    room_id: &RoomId,
    group: i64,
    wanted: impl Fn(&str, &str) -> bool,
) -> Result<Vec<Pdu>> {
    let entries = entries_in_group(hs, group, wanted).await?;
    Ok(state_events(hs, room_id, &entries).await?.into_iter().map(Arc::unwrap_or_clone).collect())
}

/// The entries of state group `group` whose `(type, state_key)` passes `wanted`.
pub(crate) async fn entries_in_group(
    hs: &Homeserver,
    group: i64,
    wanted: impl Fn(&str, &str) -> bool,
) -> Result<Vec<StateEntry>> {
    let cache = hs.room_cache();
    // A connection only on a miss (see `RoomCache::load_state_groups`): every woken sync that
    // lazy-loads members asks for its room's group, and would otherwise queue for the pool.
    let entries = match cache.cached_group(group) {
        Some(entries) => entries,
        None => cache.state_group(&mut *hs.db().pool().acquire().await?, group).await?,
    };
    Ok(entries.iter().filter(|e| wanted(&e.kind, &e.state_key)).cloned().collect())
}

/// The events of state `entries` of `room_id`, shared with the event cache (which keeps those
/// it lacked).
pub(crate) async fn state_events(
    hs: &Homeserver,
    room_id: &RoomId,
    entries: &[StateEntry],
) -> Result<Vec<Arc<Pdu>>> {
    let cache = hs.room_cache();
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for entry in entries {
        match EventId::parse(&entry.event_id).ok().and_then(|id| cache.event(&id)) {
            Some(pdu) => found.push(pdu),
            None => missing.push(entry.event_nid),
        }
    }
    if missing.is_empty() {
        return Ok(found);
    }
    let mut conn = hs.db().pool().acquire().await?;
    for row in events::get_by_nids(&mut conn, &missing).await? {
        let pdu = Arc::new(parse(&row, room_id)?);
        cache.put_event(pdu.clone());
        found.push(pdu);
    }
    Ok(found)
}

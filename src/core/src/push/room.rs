//! A room's push context: who receives its events' notifications (local joined members, with
//! the display names the `contains_display_name` condition looks for), how many members it has
//! (`room_member_count`) and its power levels (`sender_notification_permission`).
//!
//! It is derived from the room head's state map and remembers which map: message events share
//! the head's map, so a busy room builds its context once. A state event gives the head a new
//! map; the context is then rebuilt from the previous one, loading only the member events that
//! changed, so a join to a room of ten thousand members reads one event, not ten thousand.

use std::{collections::HashMap, sync::Arc};

use ruma::{OwnedEventId, OwnedRoomId, OwnedUserId, UInt, push::PushConditionPowerLevelsCtx};
use serde::Deserialize;

use super::source::Source;
use crate::{
    Error, Homeserver, Result,
    rooms::{RoomHead, head::StateMap, power},
    storage::push_actions,
};

/// One local member who may be notified.
#[derive(Clone, Debug)]
pub struct LocalMember {
    /// The user.
    pub user_id: OwnedUserId,
    /// Their display name in the room (their user ID when they set none, so that an empty name
    /// never matches an empty body).
    pub display_name: String,
}

/// The push context of one room at one state.
#[derive(Debug)]
pub struct RoomContext {
    /// The room.
    pub room_id: OwnedRoomId,
    /// Joined members on every server.
    pub joined: UInt,
    /// Joined members of this server, by user ID.
    pub local_joined: Vec<LocalMember>,
    /// Power levels, for `sender_notification_permission`.
    pub power: Option<PushConditionPowerLevelsCtx>,
    /// The state map this context was built from.
    state: Arc<StateMap>,
    /// Every member event in that state, for the next incremental rebuild.
    members: HashMap<String, Member>,
    /// The create and power levels event IDs the power levels came from.
    power_source: (Option<String>, Option<String>),
}

#[derive(Clone, Debug)]
struct Member {
    /// Its member event (an ID, not the interned number: a rolled-back write may have cached
    /// a context whose numbers SQLite hands out again).
    event_id: String,
    joined: bool,
    display_name: Option<String>,
}

#[derive(Deserialize)]
struct MemberContent {
    membership: Option<String>,
    displayname: Option<String>,
}

impl RoomContext {
    /// A context from known members, for tests and benchmarks.
    pub fn new(
        room_id: OwnedRoomId,
        joined: UInt,
        local_joined: Vec<LocalMember>,
        power: Option<PushConditionPowerLevelsCtx>,
    ) -> RoomContext {
        RoomContext {
            room_id,
            joined,
            local_joined,
            power,
            state: Arc::default(),
            members: HashMap::new(),
            power_source: (None, None),
        }
    }

    /// Whether this context describes the state of `head`.
    pub fn built_on(&self, head: &RoomHead) -> bool {
        Arc::ptr_eq(&self.state, &head.state)
    }
}

/// The push context of `head`'s room at `head`'s state: cached, or rebuilt from the cached one.
pub async fn context(hs: &Homeserver, db: &mut Source<'_>, head: &RoomHead) -> Result<Arc<RoomContext>> {
    let previous = hs.push_cache().room(&head.room_id);
    if let Some(context) = previous.as_ref().filter(|c| c.built_on(head)) {
        return Ok(context.clone());
    }
    let context = Arc::new(build(hs, db, head, previous.as_deref()).await?);
    hs.push_cache().set_room(context.clone());
    Ok(context)
}

async fn build(
    hs: &Homeserver,
    db: &mut Source<'_>,
    head: &RoomHead,
    previous: Option<&RoomContext>,
) -> Result<RoomContext> {
    let mut members = previous.map(|p| p.members.clone()).unwrap_or_default();
    let mut changed: Vec<(&str, i64, &str)> = Vec::new();
    for ((kind, state_key), (nid, event_id)) in head.state.iter() {
        if kind == "m.room.member" && members.get(state_key).is_none_or(|m| m.event_id != *event_id) {
            changed.push((state_key, *nid, event_id));
        }
    }
    // Member events recently sent are in the event cache; the rest are read in one go.
    let mut to_load = Vec::new();
    for (state_key, nid, event_id) in changed {
        let cached = OwnedEventId::try_from(event_id).ok().and_then(|id| hs.room_cache().event(&id));
        match cached {
            Some(pdu) => {
                members.insert(state_key.to_owned(), member(event_id, pdu.content.get()));
            }
            None => to_load.push((state_key, nid, event_id)),
        }
    }
    if !to_load.is_empty() {
        let nids: Vec<i64> = to_load.iter().map(|(_, nid, _)| *nid).collect();
        let loaded: HashMap<i64, String> =
            push_actions::event_json_by_nids(db.conn().await?, &nids).await?.into_iter().collect();
        for (state_key, nid, event_id) in to_load {
            let json = loaded.get(&nid).ok_or_else(|| {
                Error::Internal(anyhow::anyhow!("member event {nid} of the room state is missing"))
            })?;
            let content = serde_json::from_str::<ContentOf>(json)
                .map_err(|e| Error::Internal(anyhow::anyhow!("stored member event {nid}: {e}")))?;
            members.insert(state_key.to_owned(), member(event_id, content.content.get()));
        }
    }

    let server_name = hs.server_name();
    let mut joined = 0u64;
    let mut local_joined = Vec::new();
    for (user_id, member) in &members {
        if !member.joined {
            continue;
        }
        joined += 1;
        if let Ok(user_id) = OwnedUserId::try_from(user_id.as_str())
            && user_id.server_name() == server_name
        {
            let display_name = member.display_name.clone().unwrap_or_else(|| user_id.to_string());
            local_joined.push(LocalMember { user_id, display_name });
        }
    }
    local_joined.sort_by(|a, b| a.user_id.cmp(&b.user_id));

    let power_source = (
        head.state_event_id("m.room.create", "").map(str::to_owned),
        head.state_event_id("m.room.power_levels", "").map(str::to_owned),
    );
    let power = match previous.filter(|p| p.power_source == power_source) {
        Some(previous) => previous.power.clone(),
        None if power_source.0.is_none() => None,
        None => Some(power::levels(hs, db.conn().await?, head).await?.into()),
    };

    Ok(RoomContext {
        room_id: head.room_id.clone(),
        joined: UInt::new_saturating(joined),
        local_joined,
        power,
        state: head.state.clone(),
        members,
        power_source,
    })
}

#[derive(Deserialize)]
struct ContentOf {
    content: Box<serde_json::value::RawValue>,
}

/// A member from its event content; unreadable content counts as not joined.
fn member(event_id: &str, content: &str) -> Member {
    let content: Option<MemberContent> = serde_json::from_str(content).ok();
    let joined = content.as_ref().and_then(|c| c.membership.as_deref()) == Some("join");
    let display_name = content.and_then(|c| c.displayname).filter(|name| !name.is_empty());
    Member { event_id: event_id.to_owned(), joined, display_name }
}

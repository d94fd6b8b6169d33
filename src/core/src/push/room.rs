//! A room's push context: who receives its events' notifications (local joined members, with
//! the display names the `contains_display_name` condition looks for), how many members it has
//! (`room_member_count`) and its power levels (`sender_notification_permission`).
//!
//! It is derived from the room head's state map and remembers which map: message events share
//! the head's map, so a busy room builds its context once. A state event gives the head a new
//! map; the context is then brought from the previous one to it by the entries that differ (the
//! maps are persistent and share their unchanged subtrees, so finding those costs what changed,
//! not the room's size), loading only the member events that changed: a join to a room of ten
//! thousand members reads one event and copies nothing.

use std::{collections::HashMap, sync::Arc};

use imbl::{OrdMap, ordmap::DiffItem};
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
    /// Joined members of this server, by user ID (persistent: the next context shares it).
    pub local_joined: OrdMap<OwnedUserId, LocalMember>,
    /// Power levels, for `sender_notification_permission`.
    pub power: Option<PushConditionPowerLevelsCtx>,
    /// The state map this context was built from.
    state: Arc<StateMap>,
    /// Every member event in that state, by state key, for the next incremental rebuild.
    members: OrdMap<String, Member>,
    /// The create and power levels event IDs the power levels came from.
    power_source: (Option<String>, Option<String>),
}

/// A member as the context needs it. Which event it came from is in the state map, and the next
/// diff tells when that changes (it compares event IDs too, so a rolled-back write whose
/// interned numbers SQLite hands out again is still told apart).
#[derive(Clone, Debug)]
struct Member {
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
            local_joined: local_joined.into_iter().map(|m| (m.user_id.clone(), m)).collect(),
            power,
            state: Arc::default(),
            members: OrdMap::new(),
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
    let mut context = match previous {
        Some(p) => Counted {
            members: p.members.clone(),
            local_joined: p.local_joined.clone(),
            joined: u64::from(p.joined),
        },
        None => Counted::default(),
    };
    // The member entries that differ from the previous context's state.
    let empty = StateMap::new();
    let base = previous.map_or(&empty, |p| &*p.state);
    let mut changed: Vec<(&str, i64, &str)> = Vec::new();
    for item in base.diff(&head.state) {
        match item {
            DiffItem::Add((kind, state_key), (nid, event_id))
            | DiffItem::Update { new: ((kind, state_key), (nid, event_id)), .. }
                if kind == "m.room.member" =>
            {
                changed.push((state_key, *nid, event_id));
            }
            DiffItem::Remove((kind, state_key), _) if kind == "m.room.member" => {
                context.set(hs, state_key, None);
            }
            _ => {}
        }
    }
    // Member events recently sent are in the event cache; the rest are read in one go.
    let mut to_load = Vec::new();
    for (state_key, nid, event_id) in changed {
        let cached = OwnedEventId::try_from(event_id).ok().and_then(|id| hs.room_cache().event(&id));
        match cached {
            Some(pdu) => context.set(hs, state_key, Some(member(pdu.content.get()))),
            None => to_load.push((state_key, nid, event_id)),
        }
    }
    if !to_load.is_empty() {
        let nids: Vec<i64> = to_load.iter().map(|(_, nid, _)| *nid).collect();
        let loaded: HashMap<i64, String> =
            push_actions::event_json_by_nids(db.conn().await?, &nids).await?.into_iter().collect();
        for (state_key, nid, _) in to_load {
            let json = loaded.get(&nid).ok_or_else(|| {
                Error::Internal(anyhow::anyhow!("member event {nid} of the room state is missing"))
            })?;
            let content = serde_json::from_str::<ContentOf>(json)
                .map_err(|e| Error::Internal(anyhow::anyhow!("stored member event {nid}: {e}")))?;
            context.set(hs, state_key, Some(member(content.content.get())));
        }
    }

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
        joined: UInt::new_saturating(context.joined),
        local_joined: context.local_joined,
        power,
        state: head.state.clone(),
        members: context.members,
        power_source,
    })
}

/// The members of a context being brought to a new state, with what is derived from them.
#[derive(Default)]
struct Counted {
    members: OrdMap<String, Member>,
    local_joined: OrdMap<OwnedUserId, LocalMember>,
    joined: u64,
}

impl Counted {
    /// Sets (or with `None`, removes) the member at `state_key`, keeping the joined count and
    /// the local joined members in step.
    fn set(&mut self, hs: &Homeserver, state_key: &str, member: Option<Member>) {
        let old = match &member {
            Some(member) => self.members.insert(state_key.to_owned(), member.clone()),
            None => self.members.remove(state_key),
        };
        let user_id = OwnedUserId::try_from(state_key).ok();
        let local = user_id.as_ref().filter(|user_id| user_id.server_name() == hs.server_name());
        if old.is_some_and(|old| old.joined) {
            self.joined -= 1;
            if let Some(user_id) = local {
                self.local_joined.remove(user_id);
            }
        }
        if let Some(member) = member.filter(|member| member.joined) {
            self.joined += 1;
            if let Some(user_id) = local {
                let display_name = member.display_name.unwrap_or_else(|| user_id.to_string());
                self.local_joined
                    .insert(user_id.clone(), LocalMember { user_id: user_id.clone(), display_name });
            }
        }
    }
}

#[derive(Deserialize)]
struct ContentOf {
    content: Box<serde_json::value::RawValue>,
}

/// A member from its event content; unreadable content counts as not joined.
fn member(content: &str) -> Member {
    let content: Option<MemberContent> = serde_json::from_str(content).ok();
    let joined = content.as_ref().and_then(|c| c.membership.as_deref()) == Some("join");
    let display_name = content.and_then(|c| c.displayname).filter(|name| !name.is_empty());
    Member { joined, display_name }
}

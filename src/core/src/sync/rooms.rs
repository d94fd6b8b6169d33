//! The `rooms` section of `/sync`: for each room, the user's membership as of the sync's end
//! decides the section — joined rooms with news, invites and knocks made since the last sync
//! (as stripped state), rooms left since then (up to the leave).
//!
//! A joined room's timeline is the newest events of the window, `limited` when older ones were
//! left out, with a `prev_batch` token for `/messages` to page back from. Its `state` brings the
//! client from the previous sync to the start of the timeline: the full state for initial syncs,
//! `full_state` and newly joined rooms, else the state events of the gap a limited timeline left.

use std::collections::{HashMap, HashSet};

use ruma::{
    OwnedRoomId, OwnedUserId, RoomId, UserId,
    api::client::filter::{LazyLoadOptions, RoomEventFilter},
    events::TimelineEventType,
};
use serde_json::{Map, Value, json};

use super::{SyncRequest, SyncToken};
use crate::{
    Error, Homeserver, Result,
    push::notifications,
    receipts,
    rooms::{
        Pdu,
        event_filter::matches,
        history::{self, MessagesQuery},
        serve::client_events,
        state_view::state_in_group,
        timeline::{StreamToken, parse},
        visibility::Readable,
    },
    storage::{
        self,
        sync::{self as queries, AccountDataChange},
    },
};

/// Timeline length when the filter sets none (the spec's example; Synapse's default).
const DEFAULT_TIMELINE_LIMIT: usize = 10;
/// The state events an invite or knock shows of its room (spec: Stripped state).
const STRIPPED_STATE: [&str; 7] = [
    "m.room.create",
    "m.room.join_rules",
    "m.room.name",
    "m.room.avatar",
    "m.room.canonical_alias",
    "m.room.encryption",
    "m.room.topic",
];

/// The four room sections, by room ID.
#[derive(Debug, Default)]
pub struct Rooms {
    join: Map<String, Value>,
    invite: Map<String, Value>,
    leave: Map<String, Value>,
    knock: Map<String, Value>,
}

impl Rooms {
    pub(super) fn is_empty(&self) -> bool {
        self.join.is_empty() && self.invite.is_empty() && self.leave.is_empty() && self.knock.is_empty()
    }

    pub(super) fn into_json(self) -> Value {
        json!({ "join": self.join, "invite": self.invite, "leave": self.leave, "knock": self.knock })
    }
}

/// What the sync reads for every room.
struct Window<'a> {
    hs: &'a Homeserver,
    user: &'a UserId,
    since: Option<SyncToken>,
    timeline_filter: RoomEventFilter,
    state_filter: &'a RoomEventFilter,
    lazy: bool,
    limit: usize,
}

/// The rooms section for `request` over `(since, now]`.
pub(super) async fn collect(
    hs: &Homeserver,
    request: &SyncRequest<'_>,
    since: Option<SyncToken>,
    now: SyncToken,
    ignored: &[OwnedUserId],
    account_data: Vec<AccountDataChange>,
) -> Result<Rooms> {
    let pool = hs.db().pool();
    let room_filter = &request.filter.room;
    let mut timeline_filter = room_filter.timeline.clone();
    // Lazy-loaded members are chosen here, not by the history reader.
    timeline_filter.lazy_load_options = LazyLoadOptions::Disabled;
    timeline_filter.not_senders.extend(ignored.iter().cloned());
    let window = Window {
        hs,
        user: request.user,
        since,
        limit: room_filter
            .timeline
            .limit
            .map_or(DEFAULT_TIMELINE_LIMIT, |l| usize::try_from(u64::from(l)).unwrap_or(usize::MAX))
            .max(1),
        lazy: !room_filter.state.lazy_load_options.is_disabled(),
        timeline_filter,
        state_filter: &room_filter.state,
    };

    let memberships = queries::memberships_at(pool, request.user, now.events).await?;
    // Where the user's membership changed in the window, and what it was before; elsewhere it
    // stayed what it is now throughout.
    let (moved, before, changed): (HashSet<OwnedRoomId>, HashMap<OwnedRoomId, String>, HashSet<OwnedRoomId>) =
        match since {
            Some(since) => {
                let moved: HashSet<OwnedRoomId> =
                    queries::membership_changed(pool, request.user, since.events, now.events)
                        .await?
                        .into_iter()
                        .collect();
                let before = if moved.is_empty() {
                    HashMap::new()
                } else {
                    queries::memberships_at(pool, request.user, since.events)
                        .await?
                        .into_iter()
                        .map(|row| (row.room_id, membership_of(&row.event.json)))
                        .collect()
                };
                let changed =
                    queries::rooms_changed(pool, since.events, now.events).await?.into_iter().collect();
                (moved, before, changed)
            }
            None => Default::default(),
        };
    let mut room_account_data: HashMap<String, Vec<Value>> = HashMap::new();
    for (room_id, kind, content) in account_data {
        if super::allows_room_data(&room_filter.account_data, &kind) {
            room_account_data.entry(room_id).or_default().push(super::account_data_event(&kind, &content));
        }
    }

    let memberships: Vec<(String, queries::MembershipRow)> =
        memberships.into_iter().map(|row| (membership_of(&row.event.json), row)).collect();
    let joined: Vec<OwnedRoomId> = memberships
        .iter()
        .filter(|(membership, row)| membership == "join" && room_wanted(room_filter, &row.room_id))
        .map(|(_, row)| row.room_id.clone())
        .collect();
    let mut ephemeral = ephemeral(hs, request, since, now, &joined).await?;

    let mut rooms = Rooms::default();
    for (membership, row) in memberships {
        let room_id = row.room_id;
        if !room_wanted(room_filter, &room_id) {
            continue;
        }
        let position = row.event.stream_ordering.unwrap_or(0);
        let new_since_token = since.is_none_or(|s| position > s.events);
        let member_event = parse(&row.event, &room_id)?;
        match membership.as_str() {
            "join" => {
                let newly_joined = since.is_some()
                    && new_since_token
                    && before.get(&room_id).map(String::as_str) != Some("join");
                let full = since.is_none() || request.full_state || newly_joined;
                let account_data = room_account_data.remove(room_id.as_str()).unwrap_or_default();
                let ephemeral = ephemeral.remove(&room_id).unwrap_or_default();
                if !full && !changed.contains(&room_id) && account_data.is_empty() && ephemeral.is_empty() {
                    continue;
                }
                // Joined throughout the window: everything in it is readable.
                let readable = (since.is_some() && !moved.contains(&room_id)).then(Readable::all);
                let mut joined = window.room(&room_id, now.events, full, readable).await?;
                joined["account_data"] = json!({ "events": account_data });
                joined["ephemeral"] = json!({ "events": ephemeral });
                unread_counts(hs, request, &room_id, &mut joined).await?;
                rooms.join.insert(room_id.to_string(), joined);
            }
            "invite" | "knock" if new_since_token => {
                if membership == "invite" && ignored.contains(&member_event.sender) {
                    continue;
                }
                let state = stripped_state(hs, &room_id, &row.event, &member_event).await?;
                let (section, key) = match membership.as_str() {
                    "invite" => (&mut rooms.invite, "invite_state"),
                    _ => (&mut rooms.knock, "knock_state"),
                };
                section.insert(room_id.to_string(), json!({ key: { "events": state } }));
            }
            "leave" | "ban" if new_since_token => {
                let wanted = since.is_some() || room_filter.include_leave;
                if !wanted || storage::rooms::is_forgotten(pool, request.user, &room_id).await? {
                    continue;
                }
                let mut left = window.room(&room_id, position, since.is_none(), None).await?;
                if left["timeline"]["events"].as_array().is_none_or(Vec::is_empty) {
                    // Nothing readable (a rejected invite): the leave itself still shows.
                    let served = client_events(hs, request.user, std::slice::from_ref(&member_event)).await?;
                    left["timeline"]["events"] =
                        Value::Array(served.into_iter().map(without_room_id).collect());
                }
                left["account_data"] =
                    json!({ "events": room_account_data.remove(room_id.as_str()).unwrap_or_default() });
                rooms.leave.insert(room_id.to_string(), left);
            }
            _ => {}
        }
    }
    Ok(rooms)
}

impl Window<'_> {
    /// A joined or left room up to stream position `upto`: its timeline, the state before the
    /// timeline (all of it when `full`) and, when membership changed, its summary.
    async fn room(
        &self,
        room_id: &RoomId,
        upto: i64,
        full: bool,
        readable: Option<Readable>,
    ) -> Result<Value> {
        let lower = self.since.map_or(0, |s| s.events);
        let query = MessagesQuery {
            from: Some(StreamToken(upto)),
            to: Some(StreamToken(lower)),
            backwards: true,
            limit: self.limit,
            filter: &self.timeline_filter,
        };
        let page = match &readable {
            Some(readable) => history::page(self.hs, readable, room_id, query).await,
            None => history::messages(self.hs, self.user, room_id, query).await,
        };
        let (mut events, mut positions, limited) = match page {
            Ok(page) => (page.events, page.positions, page.end.is_some()),
            Err(e)
                if matches!(e, Error::Matrix { .. })
                    && e.kind() == ruma::api::error::ErrorKind::Forbidden =>
            {
                (Vec::new(), Vec::new(), false)
            }
            Err(e) => return Err(e),
        };
        events.reverse();
        positions.reverse();
        let start = positions.first().map_or(upto, |first| first - 1);

        let state = self.state_before(room_id, start, lower, full, limited, &events).await?;
        // Lazy-loaded members are no change; a limited timeline may have skipped some.
        let members_changed = limited || events.iter().any(|pdu| pdu.kind == TimelineEventType::RoomMember);
        let mut room = json!({
            "timeline": {
                "events": serve(self.hs, self.user, &events).await?,
                "limited": limited,
                "prev_batch": StreamToken(start).to_string(),
            },
            "state": { "events": serve(self.hs, self.user, &state).await? },
        });
        if full || members_changed {
            room["summary"] = summary(self.hs, room_id, self.user).await?;
        }
        Ok(room)
    }

    /// The state at stream position `start` the client lacks: everything when `full`, else the
    /// state events between the previous sync (`lower`) and `start` that a limited timeline
    /// skipped — with lazy-loading, members only for the timeline's senders (and the user).
    async fn state_before(
        &self,
        room_id: &RoomId,
        start: i64,
        lower: i64,
        full: bool,
        limited: bool,
        timeline: &[Pdu],
    ) -> Result<Vec<Pdu>> {
        if !full && !limited && !self.lazy {
            // The timeline carries every state change since the previous sync.
            return Ok(Vec::new());
        }
        let pool = self.hs.db().pool();
        let Some(group) = storage::history::state_group_at(pool, room_id, start).await? else {
            return Ok(Vec::new());
        };
        let senders: HashSet<&str> = timeline.iter().map(|pdu| pdu.sender.as_str()).collect();
        let lazy = self.lazy;
        let user = self.user.as_str();
        let wanted_member = |key: &str| !lazy || key == user || senders.contains(key);
        let mut state = if full {
            state_in_group(self.hs, room_id, group, |kind, key| kind != "m.room.member" || wanted_member(key))
                .await?
        } else {
            let mut state = Vec::new();
            if limited {
                let current: HashSet<String> = {
                    let mut conn = pool.acquire().await?;
                    let entries = self.hs.room_cache().state_group(&mut conn, group).await?;
                    entries.iter().map(|e| e.event_id.clone()).collect()
                };
                let mut seen = HashSet::new();
                let gap = queries::state_events_between(pool, room_id, lower, start + 1).await?;
                for row in gap.iter().rev().filter(|row| current.contains(&row.event_id)) {
                    let pdu = parse(row, room_id)?;
                    let key = (pdu.kind.to_string(), pdu.state_key.clone().unwrap_or_default());
                    if (key.0 != "m.room.member" || wanted_member(&key.1)) && seen.insert(key) {
                        state.push(pdu);
                    }
                }
                state.reverse();
            }
            if lazy {
                // Members of the timeline's senders the client may not have loaded yet.
                let have: HashSet<String> = state.iter().map(|pdu| pdu.event_id.to_string()).collect();
                let in_timeline: HashSet<String> =
                    timeline.iter().map(|pdu| pdu.event_id.to_string()).collect();
                let members = state_in_group(self.hs, room_id, group, |kind, key| {
                    kind == "m.room.member" && senders.contains(key)
                })
                .await?;
                state.extend(members.into_iter().filter(|pdu| {
                    !have.contains(pdu.event_id.as_str()) && !in_timeline.contains(pdu.event_id.as_str())
                }));
            }
            state
        };
        state.retain(|pdu| matches(self.state_filter, pdu));
        Ok(state)
    }
}

/// The ephemeral events (`m.typing`, `m.receipt`) of the joined rooms that have any in the
/// window, without `room_id`.
async fn ephemeral(
    hs: &Homeserver,
    request: &SyncRequest<'_>,
    since: Option<SyncToken>,
    now: SyncToken,
    joined: &[OwnedRoomId],
) -> Result<HashMap<OwnedRoomId, Vec<Value>>> {
    let filter = &request.filter.room.ephemeral;
    let mut events: HashMap<OwnedRoomId, Vec<Value>> = HashMap::new();
    if super::allows_room_data(filter, "m.typing") {
        for room_id in joined {
            match hs.typing().changed_since(room_id, since.map_or(0, |s| s.typing)) {
                // An initial sync has no typing display to clear.
                Some(users) if users.is_empty() && since.is_none() => {}
                Some(users) => events
                    .entry(room_id.clone())
                    .or_default()
                    .push(json!({ "type": "m.typing", "content": { "user_ids": users } })),
                None => {}
            }
        }
    }
    if super::allows_room_data(filter, "m.receipt") && since.is_none_or(|s| s.receipts < now.receipts) {
        let mut conn = hs.db().pool().acquire().await?;
        let from = since.map_or(0, |s| s.receipts);
        for (room_id, content) in
            receipts::changed_since(&mut conn, request.user, joined, from, now.receipts).await?
        {
            events.entry(room_id).or_default().push(json!({ "type": "m.receipt", "content": content }));
        }
    }
    Ok(events)
}

/// Sets a joined room's `unread_notifications` (and, when the filter asks for them,
/// `unread_thread_notifications`) from the user's push actions after their read receipts.
async fn unread_counts(
    hs: &Homeserver,
    request: &SyncRequest<'_>,
    room_id: &RoomId,
    room: &mut Value,
) -> Result<()> {
    let mut conn = hs.db().pool().acquire().await?;
    let (main, threads) = receipts::read_upto(&mut conn, request.user, room_id).await?;
    let counts = notifications::unread_counts(&mut conn, request.user, room_id, main, &threads).await?;
    if request.filter.room.timeline.unread_thread_notifications {
        room["unread_notifications"] = json!({ "notification_count": counts.notification_count, "highlight_count": counts.highlight_count });
        let per_thread: Map<String, Value> = counts
            .per_thread
            .iter()
            .map(|(root, (n, h))| {
                (root.to_string(), json!({ "notification_count": n, "highlight_count": h }))
            })
            .collect();
        room["unread_thread_notifications"] = Value::Object(per_thread);
    } else {
        let (n, h) = counts.total();
        room["unread_notifications"] = json!({ "notification_count": n, "highlight_count": h });
    }
    Ok(())
}

/// The room's heroes and member counts (spec: `RoomSummary`).
async fn summary(hs: &Homeserver, room_id: &RoomId, user: &UserId) -> Result<Value> {
    let pool = hs.db().pool();
    let (joined, invited) = queries::member_counts(pool, room_id).await?;
    let heroes = queries::heroes(pool, room_id, user, 5).await?;
    Ok(json!({
        "m.heroes": heroes,
        "m.joined_member_count": joined,
        "m.invited_member_count": invited,
    }))
}

/// The stripped state an invite or knock shows: the room's descriptive state at the membership
/// event, the sender's member event and the membership event itself.
async fn stripped_state(
    hs: &Homeserver,
    room_id: &RoomId,
    row: &storage::events::StoredEvent,
    member_event: &Pdu,
) -> Result<Vec<Value>> {
    let mut events = match row.state_group {
        Some(group) => {
            let sender = member_event.sender.as_str();
            state_in_group(hs, room_id, group, |kind, key| {
                (STRIPPED_STATE.contains(&kind) && key.is_empty())
                    || (kind == "m.room.member" && key == sender)
            })
            .await?
        }
        None => Vec::new(),
    };
    events.retain(|pdu| pdu.event_id != member_event.event_id);
    events.push(member_event.clone());
    Ok(events
        .iter()
        .map(|pdu| {
            json!({
                "type": pdu.kind.to_string(),
                "state_key": pdu.state_key.clone().unwrap_or_default(),
                "sender": pdu.sender.to_string(),
                "content": pdu.content_value(),
            })
        })
        .collect())
}

/// Events in the client format sync uses (without `room_id`: the section names the room).
async fn serve(hs: &Homeserver, user: &UserId, pdus: &[Pdu]) -> Result<Vec<Value>> {
    Ok(client_events(hs, user, pdus).await?.into_iter().map(without_room_id).collect())
}

fn without_room_id(mut event: Value) -> Value {
    if let Some(object) = event.as_object_mut() {
        object.remove("room_id");
    }
    event
}

/// The `membership` of a stored member event.
fn membership_of(json: &str) -> String {
    let event: Value = serde_json::from_str(json).unwrap_or(Value::Null);
    event["content"]["membership"].as_str().unwrap_or_default().to_owned()
}

/// Whether the room filter's `rooms` / `not_rooms` let `room_id` through.
fn room_wanted(filter: &ruma::api::client::filter::RoomFilter, room_id: &RoomId) -> bool {
    !filter.not_rooms.iter().any(|r| r == room_id)
        && filter.rooms.as_ref().is_none_or(|rooms| rooms.iter().any(|r| r == room_id))
}

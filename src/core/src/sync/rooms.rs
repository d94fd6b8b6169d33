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
    api::client::filter::{LazyLoadOptions, RoomEventFilter, RoomFilter},
};
use serde_json::{Map, Value, json};

use super::{
    SyncRequest, SyncToken, events,
    memberships::{membership_of, rooms},
    object,
    window::{Pending, Window},
};
use crate::{
    Homeserver, Result,
    push::notifications::{self, UnreadCounts},
    receipts,
    rooms::{
        Pdu,
        serve::{Redactions, client_events, client_events_of},
        state_view::state_in_group,
        timeline::{StreamToken, parse},
        visibility::Readable,
    },
    storage::{
        self,
        sync::{self as queries, AccountDataChange, MembershipRow},
    },
};

/// Timeline length when the filter sets none (the spec's example; Synapse's default).
const DEFAULT_TIMELINE_LIMIT: usize = 10;
/// Heroes in a room summary (the spec's recommendation).
const HEROES: i64 = 5;
use crate::rooms::remote_invite::STRIPPED_STATE;

/// The four room sections, by room ID.
#[derive(Debug, Default)]
pub struct Rooms {
    join: Map<String, Value>,
    invite: Map<String, Value>,
    leave: Map<String, Value>,
    knock: Map<String, Value>,
}

impl Rooms {
    /// The `join` section.
    pub(super) fn joined(&self) -> &Map<String, Value> {
        &self.join
    }

    pub(super) fn is_empty(&self) -> bool {
        self.join.is_empty() && self.invite.is_empty() && self.leave.is_empty() && self.knock.is_empty()
    }

    pub(super) fn into_json(self) -> Value {
        object([
            ("join", Value::Object(self.join)),
            ("invite", Value::Object(self.invite)),
            ("leave", Value::Object(self.leave)),
            ("knock", Value::Object(self.knock)),
        ])
    }
}

/// The rooms section for `request` (whose room filter is `room_filter`) over `(since, now]`.
pub(super) async fn collect(
    hs: &Homeserver,
    (request, room_filter): (&SyncRequest<'_>, &RoomFilter),
    (since, now): (Option<SyncToken>, SyncToken),
    memberships: &[(String, MembershipRow)],
    known_members: &HashSet<String>,
    ignored: &[OwnedUserId],
    account_data: Vec<AccountDataChange>,
) -> Result<Rooms> {
    let pool = hs.db().pool();
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
        known_members,
        timeline_filter,
        state_filter: &room_filter.state,
    };

    let activity = hs.db().events().activity();
    // Where the user's membership changed in the window, and what it was before; elsewhere it
    // stayed what it is now throughout. The activity in memory answers for windows since this
    // process started (naming at most a few rooms too many), the database for older ones.
    let (moved, before, changed): (HashSet<OwnedRoomId>, HashMap<OwnedRoomId, String>, HashSet<OwnedRoomId>) =
        match since {
            Some(since) => {
                let moved: HashSet<OwnedRoomId> =
                    match activity.membership_moves_after(request.user, since.events) {
                        Some(moves) => moves.into_iter().collect(),
                        None => queries::membership_changed(pool, request.user, since.events, now.events)
                            .await?
                            .into_iter()
                            .collect(),
                    };
                let before = if moved.is_empty() {
                    HashMap::new()
                } else {
                    queries::memberships_at(pool, request.user, since.events)
                        .await?
                        .into_iter()
                        .map(|row| (row.room_id, membership_of(&row.event.json)))
                        .collect()
                };
                let changed = match activity.rooms_with_events_after(since.events, rooms(memberships)) {
                    Some(rooms) => rooms.into_iter().collect(),
                    None => {
                        queries::rooms_changed(pool, since.events, now.events).await?.into_iter().collect()
                    }
                };
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

    let joined: Vec<OwnedRoomId> = memberships
        .iter()
        .filter(|(membership, row)| membership == "join" && room_wanted(room_filter, &row.room_id))
        .map(|(_, row)| row.room_id.clone())
        .collect();
    let mut ephemeral = ephemeral(hs, request.user, &room_filter.ephemeral, (since, now), &joined).await?;

    let mut rooms = Rooms::default();
    let mut pending = Vec::new();
    for (membership, row) in memberships.iter() {
        let room_id = row.room_id.clone();
        if !room_wanted(room_filter, &room_id) {
            continue;
        }
        let position = row.event.stream_ordering.unwrap_or(0);
        let new_since_token = since.is_none_or(|s| position > s.events);
        // Parsed only where used: a joined room (nearly every room of a woken sync) needs none.
        let member_event = || parse(&row.event, &room_id);
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
                let extra = vec![("account_data", events(account_data)), ("ephemeral", events(ephemeral))];
                pending.push(Pending { room_id, left: None, upto: now.events, full, readable, extra });
            }
            "invite" | "knock" if new_since_token => {
                let member_event = member_event()?;
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
                let account_data = room_account_data.remove(room_id.as_str()).unwrap_or_default();
                let extra = vec![("account_data", events(account_data))];
                let left = Some(member_event()?);
                pending.push(Pending {
                    room_id,
                    left,
                    upto: position,
                    full: since.is_none(),
                    readable: None,
                    extra,
                });
            }
            _ => {}
        }
    }

    let pages = window.pages(&pending).await?;
    let joined: Vec<&RoomId> = pending.iter().filter(|p| p.left.is_none()).map(|p| &*p.room_id).collect();
    let mut unread = unread_counts(hs, request, &joined).await?;
    let summarised: Vec<&RoomId> =
        pending.iter().zip(&pages).filter(|(_, page)| page.summary).map(|(p, _)| &*p.room_id).collect();
    let mut summaries = if summarised.is_empty() {
        HashMap::new()
    } else {
        queries::summaries(&mut *pool.acquire().await?, &summarised, request.user, HEROES).await?
    };

    // Every event of the response served at once: timelines then state, room after room.
    let pdus: Vec<&Pdu> =
        pages.iter().flat_map(|page| page.events.iter().chain(&page.state).map(|pdu| &**pdu)).collect();
    // Timeline rows carried their redactions; only the state events (from the event cache) are
    // looked up.
    let mut redacted: HashMap<String, String> = pages
        .iter()
        .flat_map(|page| page.redactions.iter().map(|(id, by)| (id.clone(), by.clone())))
        .collect();
    let state_ids: Vec<&str> =
        pages.iter().flat_map(|page| page.state.iter().map(|pdu| pdu.event_id.as_str())).collect();
    if !state_ids.is_empty() {
        redacted.extend(hs.db().events().redactions().redacted_by(pool, &state_ids).await?);
    }
    let known = if pages.iter().any(|page| page.related) {
        Redactions::Known(&redacted)
    } else {
        Redactions::KnownUnrelated(&redacted)
    };
    let mut served = client_events_of(hs, request.user, &pdus, known).await?.into_iter().map(without_room_id);
    drop(pdus);
    for (pending, page) in pending.into_iter().zip(pages) {
        let mut timeline: Vec<Value> = served.by_ref().take(page.events.len()).collect();
        let state: Vec<Value> = served.by_ref().take(page.state.len()).collect();
        if let (Some(member_event), true) = (&pending.left, timeline.is_empty()) {
            // Nothing readable (a rejected invite): the leave itself still shows.
            timeline = serve(hs, request.user, std::slice::from_ref(member_event)).await?;
        }
        let timeline = object([
            ("events", Value::Array(timeline)),
            ("limited", Value::Bool(page.limited)),
            ("prev_batch", Value::String(StreamToken(page.start).to_string())),
        ]);
        let mut room = object([("timeline", timeline), ("state", events(state))]);
        if page.summary {
            let summary = summaries.remove(pending.room_id.as_str()).unwrap_or_default();
            room["summary"] = json!({
                "m.heroes": summary.heroes,
                "m.joined_member_count": summary.joined,
                "m.invited_member_count": summary.invited,
            });
        }
        for (key, value) in pending.extra {
            room[key] = value;
        }
        let section = match pending.left {
            Some(_) => &mut rooms.leave,
            None => {
                let counts = unread.remove(pending.room_id.as_str()).unwrap_or_default();
                set_unread_counts(room_filter.timeline.unread_thread_notifications, &counts, &mut room);
                &mut rooms.join
            }
        };
        section.insert(pending.room_id.to_string(), room);
    }
    Ok(rooms)
}

/// The ephemeral events (`m.typing`, `m.receipt`) of the joined rooms that have any in the
/// window, without `room_id`.
async fn ephemeral(
    hs: &Homeserver,
    user: &UserId,
    filter: &RoomEventFilter,
    (since, now): (Option<SyncToken>, SyncToken),
    joined: &[OwnedRoomId],
) -> Result<HashMap<OwnedRoomId, Vec<Value>>> {
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
    // Delivery receipts move the stream for every message; most syncs have none to see.
    let moved_for_user = |s: SyncToken| {
        let rooms = joined.iter().map(|room| &**room);
        s.receipts < now.receipts && hs.receipt_activity().any_after(s.receipts, user, rooms) != Some(false)
    };
    if super::allows_room_data(filter, "m.receipt") && since.is_none_or(moved_for_user) {
        let mut conn = hs.db().pool().acquire().await?;
        let from = since.map_or(0, |s| s.receipts);
        for (room_id, content) in receipts::changed_since(&mut conn, user, joined, from, now.receipts).await?
        {
            events.entry(room_id).or_default().push(json!({ "type": "m.receipt", "content": content }));
        }
    }
    Ok(events)
}

/// The unread notifications of the user in `rooms` (rooms without any are absent).
async fn unread_counts(
    hs: &Homeserver,
    request: &SyncRequest<'_>,
    rooms: &[&RoomId],
) -> Result<HashMap<String, UnreadCounts>> {
    if rooms.is_empty() {
        return Ok(HashMap::new());
    }
    let read = receipts::read_upto_everywhere(hs, request.user).await?;
    notifications::unread_counts_batched(hs, request.user, rooms, &read).await
}

/// Sets a joined room's `unread_notifications` (and, when the filter asks for them,
/// `unread_thread_notifications`) from its unread `counts`.
fn set_unread_counts(threads: bool, counts: &UnreadCounts, room: &mut Value) {
    if threads {
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
    let mut stripped: Vec<Value> = events
        .iter()
        .map(|pdu| {
            json!({
                "type": pdu.kind.to_string(),
                "state_key": pdu.state_key.clone().unwrap_or_default(),
                "sender": pdu.sender.to_string(),
                "content": pdu.content_value(),
            })
        })
        .collect();
    // An invite received over federation: the state its server sent along.
    let sent =
        storage::remote_invites::stripped_state(hs.db().pool(), member_event.event_id.as_str()).await?;
    if let Some(Value::Array(sent)) = sent.and_then(|json| serde_json::from_str(&json).ok()) {
        let fields = ["type", "state_key", "sender", "content"];
        stripped.extend(sent.iter().map(|event| {
            Value::Object(fields.iter().map(|f| ((*f).to_owned(), event[*f].clone())).collect())
        }));
    }
    Ok(stripped)
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

/// Whether the room filter's `rooms` / `not_rooms` let `room_id` through.
fn room_wanted(filter: &ruma::api::client::filter::RoomFilter, room_id: &RoomId) -> bool {
    !filter.not_rooms.iter().any(|r| r == room_id)
        && filter.rooms.as_ref().is_none_or(|rooms| rooms.iter().any(|r| r == room_id))
}

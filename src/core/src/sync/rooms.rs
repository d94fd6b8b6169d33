//! The `rooms` section of `/sync`: for each room, the user's membership as of the sync's end
//! decides the section — joined rooms with news, invites and knocks made since the last sync
//! (as stripped state), rooms left since then (up to the leave).
//!
//! A joined room's timeline is the newest events of the window, `limited` when older ones were
//! left out, with a `prev_batch` token for `/messages` to page back from. Its `state` brings the
//! client from the previous sync to the start of the timeline: the full state for initial syncs,
//! `full_state` and newly joined rooms, else the state events of the gap a limited timeline left.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use ruma::{
    OwnedRoomId, OwnedUserId, RoomId, UserId,
    api::client::filter::{LazyLoadOptions, RoomEventFilter},
    events::TimelineEventType,
};
use serde_json::{Map, Value, json};

use super::{SyncRequest, SyncToken, events, object};
use crate::{
    Homeserver, Result,
    push::notifications::{self, UnreadCounts},
    receipts,
    rooms::{
        Pdu,
        event_filter::matches,
        history::{self, MessagesQuery, Prefetched},
        serve::{Redactions, client_events, client_events_of},
        state_view::{entries_in_group, state_events, state_in_group},
        timeline::{StreamToken, parse},
        visibility::Readable,
    },
    storage::{
        self,
        state::StateEntry,
        sync::{self as queries, AccountDataChange},
    },
};

/// Timeline length when the filter sets none (the spec's example; Synapse's default).
const DEFAULT_TIMELINE_LIMIT: usize = 10;
/// Heroes in a room summary (the spec's recommendation).
const HEROES: i64 = 5;
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
        object([
            ("join", Value::Object(self.join)),
            ("invite", Value::Object(self.invite)),
            ("leave", Value::Object(self.leave)),
            ("knock", Value::Object(self.knock)),
        ])
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
    let mut pending = Vec::new();
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
                let extra = vec![("account_data", events(account_data)), ("ephemeral", events(ephemeral))];
                pending.push(Pending { room_id, left: None, upto: now.events, full, readable, extra });
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
                let account_data = room_account_data.remove(room_id.as_str()).unwrap_or_default();
                let extra = vec![("account_data", events(account_data))];
                let left = Some(member_event);
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
    let mut summaries = {
        let mut conn = pool.acquire().await?;
        queries::summaries(&mut conn, &summarised, request.user, HEROES).await?
    };

    // Every event of the response served at once: timelines then state, room after room.
    let pdus: Vec<&Pdu> =
        pages.iter().flat_map(|page| page.events.iter().chain(page.state.iter().map(|pdu| &**pdu))).collect();
    // Timeline rows carried their redactions; only the state events (from the event cache) are
    // looked up.
    let mut redacted: HashMap<String, String> = pages
        .iter()
        .flat_map(|page| page.redactions.iter().map(|(id, by)| (id.clone(), by.clone())))
        .collect();
    {
        let state_ids: Vec<&str> =
            pages.iter().flat_map(|page| page.state.iter().map(|pdu| pdu.event_id.as_str())).collect();
        let mut conn = pool.acquire().await?;
        redacted.extend(storage::redactions::redacted_by(&mut conn, &state_ids).await?);
    }
    let known = Redactions::Known(&redacted);
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
                set_unread_counts(request, &counts, &mut room);
                &mut rooms.join
            }
        };
        section.insert(pending.room_id.to_string(), room);
    }
    Ok(rooms)
}

/// A joined or left room whose section this sync fills.
struct Pending {
    room_id: OwnedRoomId,
    /// For a left room, the leave (or ban), shown when nothing else is readable.
    left: Option<Pdu>,
    /// The stream position the room is read up to.
    upto: i64,
    /// Whether its full state is sent.
    full: bool,
    /// What the user may read, when known without reading the room.
    readable: Option<Readable>,
    /// The fields the section adds (`account_data`, `ephemeral`).
    extra: Vec<(&'static str, Value)>,
}

/// A room's timeline and the state before it, not served yet.
struct RoomPage {
    events: Vec<Pdu>,
    /// Of `events`, the redacted ones, as read with them.
    redactions: HashMap<String, String>,
    limited: bool,
    /// The stream position before the timeline (its `prev_batch`).
    start: i64,
    state: Vec<Arc<Pdu>>,
    /// Whether the room's summary is sent.
    summary: bool,
}

/// The timeline of one room, before the state before it is read.
struct Timeline {
    events: Vec<Pdu>,
    redactions: HashMap<String, String>,
    limited: bool,
    start: i64,
    /// The state group at `start`.
    group: Option<i64>,
}

impl Window<'_> {
    /// The pages of `pending` rooms, read for all of them at once: the newest events of every
    /// room, what the user may read of each, the state groups and state events in a few
    /// queries; only what those do not answer is read room by room.
    async fn pages(&self, pending: &[Pending]) -> Result<Vec<RoomPage>> {
        let per_room = history::rows_to_read(self.limit, &self.timeline_filter);
        // The timelines never reach below the previous sync (see `timeline`).
        let after = self.since.map_or(0, |s| s.events);
        let mut rows: HashMap<String, Vec<storage::events::StoredEvent>> = HashMap::new();
        if !pending.is_empty() {
            let mut conn = self.hs.db().pool().acquire().await?;
            let rooms: Vec<(&RoomId, i64, i64)> =
                pending.iter().map(|p| (&*p.room_id, after, p.upto)).collect();
            let per_room = i64::try_from(per_room).unwrap_or(i64::MAX);
            for row in queries::latest_events(&mut conn, &rooms, per_room).await? {
                rows.entry(row.room_id.clone()).or_default().push(row);
            }
        }
        let unknown: Vec<OwnedRoomId> =
            pending.iter().filter(|p| p.readable.is_none()).map(|p| p.room_id.clone()).collect();
        let mut readable = if unknown.is_empty() {
            HashMap::new()
        } else {
            Readable::load_many(self.hs, self.user, &unknown).await?
        };

        let mut timelines = Vec::with_capacity(pending.len());
        for room in pending {
            let rows = rows.get(room.room_id.as_str()).map_or(&[][..], Vec::as_slice);
            let complete = rows.len() < per_room;
            let prefetched = Prefetched { rows, upto: room.upto, above: after, complete };
            let readable = room.readable.clone().or_else(|| readable.remove(&room.room_id));
            timelines.push(self.timeline(&room.room_id, room.upto, readable, &prefetched).await?);
        }

        let cache = self.hs.room_cache();
        {
            let groups: Vec<i64> = timelines.iter().filter_map(|t| t.group).collect();
            let mut conn = self.hs.db().pool().acquire().await?;
            cache.load_state_groups(&mut conn, &groups).await?;
        }
        let mut states = Vec::with_capacity(pending.len());
        for (room, timeline) in pending.iter().zip(&timelines) {
            states.push(self.state_before(&room.room_id, room.full, timeline).await?);
        }
        {
            let wanted: Vec<(i64, &str)> = states
                .iter()
                .flat_map(|s| s.entries.iter().map(|e| (e.event_nid, e.event_id.as_str())))
                .collect();
            let mut conn = self.hs.db().pool().acquire().await?;
            cache.load_events(&mut conn, &wanted).await?;
        }

        let mut pages = Vec::with_capacity(pending.len());
        for ((room, timeline), state) in pending.iter().zip(timelines).zip(states) {
            let mut events: Vec<Arc<Pdu>> = state.events.into_iter().map(Arc::new).collect();
            events.extend(state_events(self.hs, &room.room_id, &state.entries).await?);
            events.retain(|pdu| matches(self.state_filter, pdu));
            // Lazy-loaded members are no change; a limited timeline may have skipped some.
            let members_changed = timeline.limited
                || timeline.events.iter().any(|pdu| pdu.kind == TimelineEventType::RoomMember);
            pages.push(RoomPage {
                summary: room.full || members_changed,
                events: timeline.events,
                redactions: timeline.redactions,
                limited: timeline.limited,
                start: timeline.start,
                state: events,
            });
        }
        Ok(pages)
    }

    /// A room's timeline up to stream position `upto`, as far as `readable` lets the user read
    /// (nothing without it), and the state group before it.
    async fn timeline(
        &self,
        room_id: &RoomId,
        upto: i64,
        readable: Option<Readable>,
        prefetched: &Prefetched<'_>,
    ) -> Result<Timeline> {
        let lower = self.since.map_or(0, |s| s.events);
        let query = MessagesQuery {
            from: Some(StreamToken(upto)),
            to: Some(StreamToken(lower)),
            backwards: true,
            limit: self.limit,
            filter: &self.timeline_filter,
        };
        let (mut events, mut positions, limited, redactions) = match readable.filter(|r| !r.is_empty()) {
            Some(readable) => {
                let page = history::page_from(self.hs, &readable, room_id, query, Some(prefetched)).await?;
                (page.events, page.positions, page.end.is_some(), page.redactions)
            }
            None => (Vec::new(), Vec::new(), false, HashMap::new()),
        };
        events.reverse();
        positions.reverse();
        let start = positions.first().map_or(upto, |first| first - 1);
        let group = match prefetched.state_group_at(start) {
            Some(group) => group,
            None => storage::history::state_group_at(self.hs.db().pool(), room_id, start).await?,
        };
        Ok(Timeline { events, redactions, limited, start, group })
    }

    /// The state at the start of `timeline` the client lacks: everything when `full`, else the
    /// state events between the previous sync and the start that a limited timeline skipped —
    /// with lazy-loading, members only for the timeline's senders (and the user). Events of
    /// the state group are left as entries, to be loaded for all rooms at once.
    async fn state_before(&self, room_id: &RoomId, full: bool, timeline: &Timeline) -> Result<StateBefore> {
        let mut state = StateBefore::default();
        let Some(group) = timeline.group else {
            return Ok(state);
        };
        if !full && !timeline.limited && !self.lazy {
            // The timeline carries every state change since the previous sync.
            return Ok(state);
        }
        let senders: HashSet<&str> = timeline.events.iter().map(|pdu| pdu.sender.as_str()).collect();
        let lazy = self.lazy;
        let user = self.user.as_str();
        let wanted_member = |key: &str| !lazy || key == user || senders.contains(key);
        if full {
            state.entries =
                entries_in_group(self.hs, group, |kind, key| kind != "m.room.member" || wanted_member(key))
                    .await?;
            return Ok(state);
        }
        if timeline.limited {
            let lower = self.since.map_or(0, |s| s.events);
            let pool = self.hs.db().pool();
            let current: HashSet<String> = entries_in_group(self.hs, group, |_, _| true)
                .await?
                .into_iter()
                .map(|e| e.event_id)
                .collect();
            let mut seen = HashSet::new();
            let gap = queries::state_events_between(pool, room_id, lower, timeline.start + 1).await?;
            for row in gap.iter().rev().filter(|row| current.contains(&row.event_id)) {
                let pdu = parse(row, room_id)?;
                let key = (pdu.kind.to_string(), pdu.state_key.clone().unwrap_or_default());
                if (key.0 != "m.room.member" || wanted_member(&key.1)) && seen.insert(key) {
                    state.events.push(pdu);
                }
            }
            state.events.reverse();
        }
        if lazy {
            // Members of the timeline's senders the client may not have loaded yet.
            let have: HashSet<String> = state.events.iter().map(|pdu| pdu.event_id.to_string()).collect();
            let in_timeline: HashSet<String> =
                timeline.events.iter().map(|pdu| pdu.event_id.to_string()).collect();
            let members = entries_in_group(self.hs, group, |kind, key| {
                kind == "m.room.member" && senders.contains(key)
            })
            .await?;
            state.entries = members
                .into_iter()
                .filter(|e| !have.contains(&e.event_id) && !in_timeline.contains(&e.event_id))
                .collect();
        }
        Ok(state)
    }
}

/// State before a timeline: events already read, and state group entries whose events are not.
#[derive(Default)]
struct StateBefore {
    events: Vec<Pdu>,
    entries: Vec<StateEntry>,
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

/// The unread notifications of the user in `rooms` (rooms without any are absent).
async fn unread_counts(
    hs: &Homeserver,
    request: &SyncRequest<'_>,
    rooms: &[&RoomId],
) -> Result<HashMap<String, UnreadCounts>> {
    if rooms.is_empty() {
        return Ok(HashMap::new());
    }
    let mut conn = hs.db().pool().acquire().await?;
    let read = receipts::read_upto_in(&mut conn, request.user, rooms).await?;
    notifications::unread_counts_in(&mut conn, request.user, rooms, &read).await
}

/// Sets a joined room's `unread_notifications` (and, when the filter asks for them,
/// `unread_thread_notifications`) from its unread `counts`.
fn set_unread_counts(request: &SyncRequest<'_>, counts: &UnreadCounts, room: &mut Value) {
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

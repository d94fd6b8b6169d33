//! What `/sync` reads of each room it serves, for all of them at once: the timeline (the newest
//! events of the window, `limited` when older ones were left out) and the state before it (the
//! full state, or the state events of the gap a limited timeline left), in a few queries
//! whatever the number of rooms. Serving them is `super::rooms`.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use ruma::{OwnedRoomId, RoomId, UserId, api::client::filter::RoomEventFilter, events::TimelineEventType};
use serde_json::Value;

use super::SyncToken;
use crate::{
    Homeserver, Result,
    rooms::{
        Pdu,
        event_filter::matches,
        history::{self, MessagesQuery, Prefetched},
        state_view::{entries_in_group, state_events},
        timeline::{StreamToken, parse},
        visibility::Readable,
    },
    storage::{self, state::StateEntry, sync as queries},
};

/// What the sync reads for every room.
pub(super) struct Window<'a> {
    pub(super) hs: &'a Homeserver,
    pub(super) user: &'a UserId,
    pub(super) since: Option<SyncToken>,
    pub(super) timeline_filter: RoomEventFilter,
    pub(super) state_filter: &'a RoomEventFilter,
    pub(super) lazy: bool,
    /// Member events the device has (lazy-loading without redundant members).
    pub(super) known_members: &'a HashSet<String>,
    pub(super) limit: usize,
}

/// A joined or left room whose section this sync fills.
pub(super) struct Pending {
    pub(super) room_id: OwnedRoomId,
    /// For a left room, the leave (or ban), shown when nothing else is readable.
    pub(super) left: Option<Pdu>,
    /// The stream position the room is read up to.
    pub(super) upto: i64,
    /// Whether its full state is sent.
    pub(super) full: bool,
    /// What the user may read, when known without reading the room.
    pub(super) readable: Option<Readable>,
    /// The fields the section adds (`account_data`, `ephemeral`).
    pub(super) extra: Vec<(&'static str, Value)>,
}

/// A room's timeline and the state before it, not served yet.
pub(super) struct RoomPage {
    pub(super) events: Vec<Arc<Pdu>>,
    /// Of `events`, the redacted ones, as read with them.
    pub(super) redactions: HashMap<String, String>,
    pub(super) limited: bool,
    /// The stream position before the timeline (its `prev_batch`).
    pub(super) start: i64,
    pub(super) state: Vec<Arc<Pdu>>,
    /// Whether the room's summary is sent.
    pub(super) summary: bool,
    /// Whether events may relate to the timeline's (else none has bundled aggregations).
    pub(super) related: bool,
}

/// The timeline of one room, before the state before it is read.
pub(super) struct Timeline {
    pub(super) events: Vec<Arc<Pdu>>,
    pub(super) redactions: HashMap<String, String>,
    pub(super) limited: bool,
    pub(super) start: i64,
    /// The state group at `start`.
    pub(super) group: Option<i64>,
    pub(super) related: bool,
}

impl Window<'_> {
    /// The pages of `pending` rooms, read for all of them at once: the newest events of every
    /// room, what the user may read of each, the state groups and state events in a few
    /// queries; only what those do not answer is read room by room.
    pub(super) async fn pages(&self, pending: &[Pending]) -> Result<Vec<RoomPage>> {
        let per_room = history::rows_to_read(self.limit, &self.timeline_filter);
        // The timelines never reach below the previous sync (see `timeline`).
        let after = self.since.map_or(0, |s| s.events);
        let mut rows: HashMap<String, Vec<storage::events::StoredEvent>> = HashMap::new();
        // The newest events in memory answer for most rooms of a woken sync.
        let recent = self.hs.db().events().recent();
        let mut rooms: Vec<(&RoomId, i64, i64)> = Vec::new();
        for p in pending {
            match recent.window(&p.room_id, after, p.upto, per_room) {
                Some(events) => {
                    rows.insert(p.room_id.to_string(), events);
                }
                None => rooms.push((&*p.room_id, after, p.upto)),
            }
        }
        if !rooms.is_empty() {
            let mut conn = self.hs.db().pool().acquire().await?;
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
        let groups: Vec<(&RoomId, i64)> = pending
            .iter()
            .zip(&timelines)
            .filter_map(|(room, timeline)| Some((&*room.room_id, timeline.group?)))
            .collect();
        cache.groups_from_heads(&groups);
        let groups: Vec<i64> = groups.into_iter().map(|(_, group)| group).collect();
        cache.load_state_groups(self.hs.db().pool(), &groups).await?;
        let mut states = Vec::with_capacity(pending.len());
        for (room, timeline) in pending.iter().zip(&timelines) {
            states.push(self.state_before(&room.room_id, room.full, timeline).await?);
        }
        {
            let wanted: Vec<(i64, &str)> = states
                .iter()
                .flat_map(|s| s.entries.iter().map(|e| (e.event_nid, e.event_id.as_str())))
                .collect();
            cache.load_events(self.hs.db().pool(), &wanted).await?;
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
                related: timeline.related,
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
        // An event relating to another is newer than it: when the rows read ahead reach down to
        // the timeline's first event, every event relating to the timeline (up to `upto`) is
        // among them.
        let oldest_row = prefetched.rows.last().and_then(|row| row.stream_ordering);
        let covered = positions.first().is_none_or(|first| oldest_row.is_some_and(|oldest| oldest <= *first));
        let related = !covered || prefetched.rows.iter().any(|row| row.json.contains("\"m.relates_to\""));
        // The state after a message is the state before it: an incremental sync's timeline that
        // starts with one needs no query for the state before the timeline.
        let after_first_message =
            events.first().filter(|pdu| !pdu.is_state()).and_then(|_| prefetched.state_group_of(start + 1));
        let group = match (prefetched.state_group_at(start), after_first_message) {
            (Some(group), _) => group,
            (None, Some(group)) => Some(group),
            (None, None) => storage::history::state_group_at(self.hs.db().pool(), room_id, start).await?,
        };
        Ok(Timeline { events, redactions, limited, start, group, related })
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
            let gap = storage::history::state_events_between(pool, room_id, lower, timeline.start).await?;
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
            let members = match self.hs.room_cache().head_members(room_id, group, senders.iter().copied()) {
                Some(members) => members,
                None => {
                    entries_in_group(self.hs, group, |kind, key| {
                        kind == "m.room.member" && senders.contains(key)
                    })
                    .await?
                }
            };
            state.entries = members
                .into_iter()
                .filter(|e| !have.contains(&e.event_id) && !in_timeline.contains(&e.event_id))
                .filter(|e| !self.known_members.contains(&e.event_id))
                .collect();
        }
        Ok(state)
    }
}

/// State before a timeline: events already read, and state group entries whose events are not.
#[derive(Default)]
pub(super) struct StateBefore {
    pub(super) events: Vec<Pdu>,
    pub(super) entries: Vec<StateEntry>,
}

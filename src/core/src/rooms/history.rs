//! Reading a room's history as one user may see it (spec: Client-Server API › Getting events for
//! a room): single events, `/messages` pages and `/context` around an event. Every event served
//! passes the user's [`Readable`] ranges; filters are applied while paging.

use std::{collections::HashMap, sync::Arc};

use ruma::{RoomId, UserId, api::client::filter::RoomEventFilter};

use super::{
    Pdu, backfill,
    event_filter::{drops_events, matches},
    gap,
    state_view::{state_at, state_in_group},
    timeline::{StreamToken, parse},
    visibility::Readable,
};
use crate::{Error, Homeserver, Result, storage::events};

pub use super::prefetched::Prefetched;

/// Most rows looked at for one page; a page cut short by it still carries an `end` token.
const MAX_SCANNED: usize = 5_000;
/// Largest page of `/messages` and `/context`.
const MAX_LIMIT: usize = 1_000;
/// Fewest events one backfill asks for.
const MIN_BACKFILL: usize = 20;
/// Most backfills one `/messages` page waits for.
const MAX_BACKFILLS: usize = 3;

/// What `user` may read of `room_id`: 403 for unknown rooms and rooms they may read nothing of.
/// Cached per (user, room) until the room's state changes (see [`super::cache`]).
pub async fn readable(hs: &Homeserver, user: &UserId, room_id: &RoomId) -> Result<Readable> {
    let cache = hs.room_cache();
    let readable = match cache.readable(user, room_id) {
        Some(readable) => Some(readable),
        None => {
            let stamp = cache.stamp(room_id);
            let loaded = Readable::load(hs, user, room_id).await?;
            if let (Some(stamp), Some(readable)) = (stamp, &loaded) {
                cache.put_readable(user, room_id, stamp, readable.clone());
            }
            loaded
        }
    };
    match readable {
        Some(readable) if !readable.is_empty() => Ok(readable),
        _ => Err(Error::forbidden("You are not allowed to read this room")),
    }
}

/// One event, if `user` may see it; 404 otherwise, whether the room or event exists or not.
pub async fn event(hs: &Homeserver, user: &UserId, room_id: &RoomId, event_id: &str) -> Result<Pdu> {
    let not_found = || Error::not_found("Event not found");
    let readable = Readable::load(hs, user, room_id).await?.ok_or_else(not_found)?;
    let found = find(hs, room_id, event_id).await?.ok_or_else(not_found)?;
    if !readable.contains(found.position) {
        return Err(not_found());
    }
    Ok(Arc::unwrap_or_clone(found.pdu))
}

/// A `/messages` request.
#[derive(Clone, Debug)]
pub struct MessagesQuery<'a> {
    /// Where to start (default: the newest event backwards, the oldest forwards).
    pub from: Option<StreamToken>,
    /// Where to stop.
    pub to: Option<StreamToken>,
    /// `dir=b`.
    pub backwards: bool,
    /// Most events to return.
    pub limit: usize,
    /// Which events to return; `lazy_load_members` fills [`Page::state`].
    pub filter: &'a RoomEventFilter,
}

/// A page of `/messages`.
#[derive(Clone, Debug)]
pub struct Page {
    /// Events in the order asked for (shared with the event cache).
    pub events: Vec<Arc<Pdu>>,
    /// Their stream positions.
    pub positions: Vec<i64>,
    /// With lazy-loading: the member events of the events' senders.
    pub state: Vec<Pdu>,
    /// Where the page started.
    pub start: StreamToken,
    /// Where the next page starts; `None` when there is nothing further the user may read.
    pub end: Option<StreamToken>,
    /// Of `events`, the redacted ones (event ID → the redaction's ID), as read with them.
    pub redactions: HashMap<String, String>,
}

/// Pages through the part of a room's timeline `user` may read (403 if none). Paging backwards
/// past the earliest event this server has, or across a gap in the timeline (`rooms::gap`: a
/// join through another server after no local user was in the room), when the user may read
/// what is missing there, fetches that history from the room's servers first (spec:
/// Server-Server API › Backfilling).
pub async fn messages(
    hs: &Homeserver,
    user: &UserId,
    room_id: &RoomId,
    query: MessagesQuery<'_>,
) -> Result<Page> {
    let mut readable = readable(hs, user, room_id).await?;
    let mut page = page(hs, &readable, room_id, query.clone()).await?;
    let wanted = query.limit.clamp(1, MAX_LIMIT);
    let mut rounds = 0;
    if !query.backwards {
        return Ok(page);
    }
    loop {
        // The page read positions above `below`.
        let below = page.end.or(query.to).map_or(i64::MIN, |token| token.0);
        let crossed = gap::crossed(hs, room_id, &readable, page.start, below).await?;
        let filled = match crossed {
            Some(gap) if rounds == MAX_BACKFILLS => {
                // More history may be missing there: the client pages on from the gap.
                cut_at(&mut page, gap.next_free);
                false
            }
            Some(gap) => match gap::fill(hs, room_id, &gap, wanted.max(MIN_BACKFILL)).await? {
                gap::Filled::Some => true,
                gap::Filled::Closed => continue,
                gap::Filled::Failed => false,
            },
            // A page that stopped at its `to` token needs nothing older.
            None if query.to.is_some() || page.end.is_some() => false,
            None if rounds == MAX_BACKFILLS => {
                // More history may be there: the client pages on from the oldest event returned.
                let oldest = page.positions.last().map_or(page.start.0, |p| p - 1);
                page.end = Some(StreamToken(oldest));
                false
            }
            None => {
                let batch = (wanted - page.events.len()).max(MIN_BACKFILL);
                backfill::fill(hs, room_id, &readable, batch).await?
            }
        };
        if !filled {
            break;
        }
        readable = self::readable(hs, user, room_id).await?;
        page = self::page(hs, &readable, room_id, query.clone()).await?;
        rounds += 1;
    }
    Ok(page)
}

/// Ends `page` at the gap whose unfilled part starts at `position`: its events below are left
/// for the next page, which starts there.
fn cut_at(page: &mut Page, position: i64) {
    let keep = page.positions.iter().take_while(|p| **p > position).count();
    page.events.truncate(keep);
    page.positions.truncate(keep);
    page.end = Some(StreamToken(position));
}

/// Pages through the `readable` part of a room's timeline (for callers that already know what
/// the user may read, such as `/sync` for a user joined throughout its window).
pub async fn page(
    hs: &Homeserver,
    readable: &Readable,
    room_id: &RoomId,
    query: MessagesQuery<'_>,
) -> Result<Page> {
    page_from(hs, readable, room_id, query, None).await
}

/// [`page`], reading what it can from `prefetched` rows of the room.
pub async fn page_from(
    hs: &Homeserver,
    readable: &Readable,
    room_id: &RoomId,
    query: MessagesQuery<'_>,
    prefetched: Option<&Prefetched<'_>>,
) -> Result<Page> {
    let now = hs.db().events().upto();
    let start = query.from.unwrap_or(StreamToken(if query.backwards { now } else { i64::MIN }));
    let to = query.to.map(|t| t.0);
    let scan = Scan { hs, room_id, readable, filter: query.filter, to, now, prefetched };
    let limit = query.limit.clamp(1, MAX_LIMIT);
    let found = scan.run(start.0, query.backwards, limit).await?;
    let state = match found.events.first() {
        Some(first) if !query.filter.lazy_load_options.is_disabled() => {
            members_of_senders(hs, room_id, first.state_group, &found.events).await?
        }
        _ => Vec::new(),
    };
    let redactions = found
        .events
        .iter()
        .filter_map(|f| Some((f.pdu.event_id.to_string(), f.redacted_by.clone()?)))
        .collect();
    Ok(Page {
        redactions,
        positions: found.events.iter().map(|f| f.position).collect(),
        events: found.events.into_iter().map(|f| f.pdu).collect(),
        state,
        start,
        end: (!found.exhausted).then_some(StreamToken(found.next)),
    })
}

/// How many rows a page reads at once for `wanted` more events: one more, to know whether any
/// are left, or more when `filter` may drop some.
pub fn rows_to_read(wanted: usize, filter: &RoomEventFilter) -> usize {
    let floor = if drops_events(filter) { 64 } else { 1 };
    (wanted.min(MAX_LIMIT) + 1).max(floor)
}

/// Events around one event (spec: `GET /rooms/{roomId}/context/{eventId}`).
#[derive(Clone, Debug)]
pub struct Context {
    /// The event asked about.
    pub event: Pdu,
    /// Events before it, newest first.
    pub before: Vec<Pdu>,
    /// Events after it, oldest first.
    pub after: Vec<Pdu>,
    /// Token to page backwards from the oldest of `before`.
    pub start: StreamToken,
    /// Token to page forwards from the newest of `after`.
    pub end: StreamToken,
    /// The state at the last event returned, filtered like the events.
    pub state: Vec<Pdu>,
}

/// The events around `event_id` that `user` may read: 403 if they may read nothing of the room,
/// 404 if not that event. `limit` is shared between the events before and after it.
pub async fn context(
    hs: &Homeserver,
    user: &UserId,
    room_id: &RoomId,
    event_id: &str,
    limit: usize,
    filter: &RoomEventFilter,
) -> Result<Context> {
    let readable = readable(hs, user, room_id).await?;
    let not_found = || Error::not_found("Event not found");
    let found = find(hs, room_id, event_id).await?.ok_or_else(not_found)?;
    if !readable.contains(found.position) {
        return Err(not_found());
    }
    let limit = limit.min(MAX_LIMIT);
    let around = around(hs, &readable, room_id, found.position, limit / 2, limit - limit / 2, filter).await?;

    // The state at the last event returned (after it, as for every event with a state group;
    // backfilled history has none: `state_view::state_at` works it out).
    let last = around.last_position.unwrap_or(found.position);
    let lazy = !filter.lazy_load_options.is_disabled();
    let all = around.before.iter().chain(std::iter::once(&*found.pdu)).chain(&around.after);
    let senders: Vec<&UserId> = all.map(|pdu| &*pdu.sender).collect();
    let mut state = state_at(hs, room_id, last, |kind, key| {
        !lazy || kind != "m.room.member" || senders.iter().any(|s| s.as_str() == key)
    })
    .await?;
    state.retain(|pdu| matches(filter, pdu));
    Ok(Context {
        event: Arc::unwrap_or_clone(found.pdu),
        before: around.before,
        after: around.after,
        start: around.start,
        end: around.end,
        state,
    })
}

/// The events on either side of one event.
#[derive(Clone, Debug)]
pub struct Around {
    /// Events before it, newest first.
    pub before: Vec<Pdu>,
    /// Events after it, oldest first.
    pub after: Vec<Pdu>,
    /// Token to page backwards from the oldest of `before`.
    pub start: StreamToken,
    /// Token to page forwards from the newest of `after`.
    pub end: StreamToken,
    /// The stream position of the newest of `after`, if there is one.
    pub last_position: Option<i64>,
}

/// Up to `before` events before the event at stream position `position` and `after` events
/// after it, of those `readable` and passing `filter` (as `/context` and search results show).
pub async fn around(
    hs: &Homeserver,
    readable: &Readable,
    room_id: &RoomId,
    position: i64,
    before: usize,
    after: usize,
    filter: &RoomEventFilter,
) -> Result<Around> {
    let now = hs.db().events().upto();
    let scan = Scan { hs, room_id, readable, filter, to: None, now, prefetched: None };
    let before = scan.run(position - 1, true, before.min(MAX_LIMIT)).await?;
    let after = scan.run(position, false, after.min(MAX_LIMIT)).await?;
    Ok(Around {
        last_position: after.events.last().map(|f| f.position),
        start: StreamToken(before.next),
        end: StreamToken(after.next),
        before: before.events.into_iter().map(|f| Arc::unwrap_or_clone(f.pdu)).collect(),
        after: after.events.into_iter().map(|f| Arc::unwrap_or_clone(f.pdu)).collect(),
    })
}

/// An event with its place in the stream.
struct Found {
    pdu: Arc<Pdu>,
    position: i64,
    state_group: Option<i64>,
    /// The redaction that took effect on it, when it was read.
    redacted_by: Option<String>,
}

/// A timeline event of `room_id` by ID (outliers, which have no stream position, are not).
async fn find(hs: &Homeserver, room_id: &RoomId, event_id: &str) -> Result<Option<Found>> {
    match events::get(hs.db().pool(), event_id).await? {
        Some(row) if row.room_id == room_id.as_str() => match row.stream_ordering {
            Some(position) => {
                let pdu = Arc::new(parse(&row, room_id)?);
                Ok(Some(Found { pdu, position, state_group: row.state_group, redacted_by: row.redacted_by }))
            }
            None => Ok(None),
        },
        _ => Ok(None),
    }
}

/// The member events, in the state after the event with `state_group`, of the senders of `found`.
async fn members_of_senders(
    hs: &Homeserver,
    room_id: &RoomId,
    state_group: Option<i64>,
    found: &[Found],
) -> Result<Vec<Pdu>> {
    let Some(group) = state_group.filter(|group| *group > 0) else {
        return members_among_auth_events(hs, room_id, found).await;
    };
    state_in_group(hs, room_id, group, |kind, key| {
        kind == "m.room.member" && found.iter().any(|f| f.pdu.sender.as_str() == key)
    })
    .await
}

/// For events with no state known after them (backfilled history): each sender's member event
/// among the auth events of their newest event there, which is their membership at it.
async fn members_among_auth_events(hs: &Homeserver, room_id: &RoomId, found: &[Found]) -> Result<Vec<Pdu>> {
    let mut members: Vec<Pdu> = Vec::new();
    for f in found {
        if members.iter().any(|m| m.state_key.as_deref() == Some(f.pdu.sender.as_str())) {
            continue;
        }
        for id in &f.pdu.auth_events {
            let Some(auth) = super::timeline::event_by_id(hs, room_id, id.as_str()).await? else { continue };
            if auth.kind == ruma::events::TimelineEventType::RoomMember
                && auth.state_key.as_deref() == Some(f.pdu.sender.as_str())
            {
                members.push(auth);
                break;
            }
        }
    }
    Ok(members)
}

/// Paging through the readable, matching events of one room.
struct Scan<'a> {
    hs: &'a Homeserver,
    room_id: &'a RoomId,
    readable: &'a Readable,
    filter: &'a RoomEventFilter,
    /// The `to` token: backwards, stop above it; forwards, stop at it.
    to: Option<i64>,
    /// The newest stream position when the request began.
    now: i64,
    /// Rows read ahead, if any.
    prefetched: Option<&'a Prefetched<'a>>,
}

/// What one scan found.
struct Scanned {
    events: Vec<Found>,
    /// The token after the last position looked at.
    next: i64,
    /// Whether nothing readable is left in that direction.
    exhausted: bool,
}

impl Scan<'_> {
    /// Up to `limit` events from token `from` (backwards: at or below it; forwards: above it).
    /// Only readable ranges are queried, so gaps the user may not see cost nothing.
    async fn run(&self, from: i64, backwards: bool, limit: usize) -> Result<Scanned> {
        // Backfilled events sit below 0 (`rooms::backfill`); the floor keeps `low - 1` in range.
        let floor = self.to.map_or(i64::MIN, |t| t).saturating_add(1).max(i64::MIN + 1);
        let ceiling = self.to.map_or(self.now, |t| t.min(self.now));
        let (mut cursor, mut events, mut scanned) = (from, Vec::new(), 0);
        loop {
            let window = if backwards {
                self.readable.at_or_below(cursor).map(|(low, high)| (low.max(floor), high))
            } else {
                self.readable.above(cursor).map(|(low, high)| (low, high.min(ceiling)))
            };
            let Some((low, high)) = window.filter(|(low, high)| low <= high) else {
                return Ok(Scanned { events, next: cursor, exhausted: true });
            };
            if events.len() >= limit || scanned >= MAX_SCANNED {
                return Ok(Scanned { events, next: cursor, exhausted: false });
            }
            let batch = rows_to_read(limit - events.len(), self.filter);
            let (after, before) = (low - 1, high.saturating_add(1));
            let prefetched =
                self.prefetched.filter(|_| backwards).and_then(|p| p.page_backwards(after, before, batch));
            let rows = match prefetched {
                Some(rows) => std::borrow::Cow::Borrowed(rows),
                None => std::borrow::Cow::Owned(
                    events::timeline_page(
                        self.hs.db().pool(),
                        self.room_id,
                        after,
                        before,
                        backwards,
                        i64::try_from(batch).unwrap_or(i64::MAX),
                    )
                    .await?,
                ),
            };
            let window_done = rows.len() < batch;
            for row in rows.iter() {
                if events.len() >= limit {
                    return Ok(Scanned { events, next: cursor, exhausted: false });
                }
                let Some(position) = row.stream_ordering else { continue };
                cursor = if backwards { position - 1 } else { position };
                scanned += 1;
                let pdu = self.hs.room_cache().parsed(row, self.room_id)?;
                if matches(self.filter, &pdu) {
                    let redacted_by = row.redacted_by.clone();
                    events.push(Found { pdu, position, state_group: row.state_group, redacted_by });
                }
            }
            if window_done {
                cursor = if backwards { low - 1 } else { high };
            }
        }
    }
}

//! `POST /search`, category `room_events` (spec: Client-Server API › Server Side Search): full-text
//! search over the events a user may see in the rooms they are or were in.
//!
//! What the user may see is decided as on every read path: [`Readable`] per room (history
//! visibility and their membership over time), turned into ranges of stream positions that the
//! index query keeps, so a page holds exactly `limit` visible results and paging skips nothing.
//! Ignored users' events are left out; a forgotten room is not searched.

use std::collections::{BTreeMap, HashMap, HashSet};

use ruma::{
    DeviceId, OwnedEventId, OwnedRoomId, OwnedUserId, UserId,
    api::client::{
        filter::RoomEventFilter,
        search::search_events::v3::{
            Criteria, EventContext, GroupingKey, OrderBy, ResultGroup, ResultGroupMap,
            ResultGroupMapsByGroupingKey, SearchKeys,
        },
    },
};
use serde_json::Value;

use super::{
    count::{Counted, estimate_count, lowest_position},
    index,
    rank::{self, Scored},
    token::{Cursor, Order, Token},
};
use crate::{
    Error, Homeserver, Result,
    rooms::{
        Pdu, event_filter, history, state_view::state_at, timeline::parse, transaction_ids,
        visibility::Readable,
    },
    storage::{
        Backend,
        events::{self, StoredEvent},
        rooms,
        search::{self, Query, RoomScope, WholeRooms, WordMatch},
        sync,
    },
};

/// Results per page unless the filter's `limit` says otherwise.
const DEFAULT_LIMIT: usize = 10;
/// Most results per page.
const MAX_LIMIT: usize = 100;
/// Most words of a search term used; the rest are ignored.
const MAX_WORDS: usize = 16;
/// The newest matches looked at whole: `rank` order ranks the newest this many (every score
/// costs reading the event, and a word in a large share of a big index has far more matches than
/// a request can score; fewer matches are all ranked), and `count` counts them exactly and
/// estimates beyond (the spec's count is "an approximate count") from how far back in the
/// stream they reach.
const WINDOW: i64 = 2_000;
/// How many indexed words a query word may name (those it begins) before it is matched as a
/// prefix instead. A prefix match costs the index a pass over the postings of every word it
/// matches (in the millions for a common word), named words are walked newest first, as far as
/// needed. SQLite walks an `OR` of a hundred words about as fast as the prefix; PostgreSQL
/// evaluates a `tsquery` per row and scans GIN per named word, where an `OR` of 64 words cost
/// 2–14 times the prefix match (at 1M messages), while up to three named words cost less than
/// the prefix (a frequent word that begins one other: 2.6 ms named against 13 ms as a prefix in
/// one room, 21 against 26 in ten) and from five on, often more.
fn most_terms(backend: Backend) -> usize {
    match backend {
        Backend::Sqlite => 100,
        Backend::Postgres => 3,
    }
}

/// A search request, as parsed at the edge.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// The `room_events` criteria.
    pub criteria: &'a Criteria,
    /// The context to return with each result, when the request asked for it.
    pub context: Option<&'a EventContext>,
    /// The `next_batch` query parameter.
    pub next_batch: Option<&'a str>,
}

/// The `room_events` results.
#[derive(Clone, Debug, Default)]
pub struct Results {
    /// How many events match in all.
    pub count: u64,
    /// The words searched for, to highlight.
    pub highlights: Vec<String>,
    /// This page's results, in the order asked for.
    pub results: Vec<Found>,
    /// Where the next page starts; `None` when there is none.
    pub next_batch: Option<String>,
    /// This page's results grouped as asked.
    pub groups: ResultGroupMapsByGroupingKey,
    /// With `include_state`: the state the user may see of each room with a result.
    pub state: BTreeMap<OwnedRoomId, Vec<Value>>,
}

/// One result.
#[derive(Clone, Debug)]
pub struct Found {
    /// How well it matches; higher is closer.
    pub rank: f64,
    /// The event, in the client format.
    pub event: Value,
    /// The events around it, when asked for.
    pub context: Option<FoundContext>,
}

/// The events around a result.
#[derive(Clone, Debug)]
pub struct FoundContext {
    /// Events before it, newest first.
    pub before: Vec<Value>,
    /// Events after it, oldest first.
    pub after: Vec<Value>,
    /// `/messages` token at the oldest of `before`.
    pub start: String,
    /// `/messages` token at the newest of `after`.
    pub end: String,
    /// With `include_profile`: the senders' display names and avatars as of these events.
    pub profiles: BTreeMap<OwnedUserId, Profile>,
}

/// A sender's profile in a room at some point.
#[derive(Clone, Debug, Default)]
pub struct Profile {
    /// Display name.
    pub displayname: Option<String>,
    /// Avatar.
    pub avatar_url: Option<String>,
}

/// Runs a search for `user` (served as `device_id` sees events).
pub async fn search(
    hs: &Homeserver,
    user: &UserId,
    device_id: &DeviceId,
    request: Request<'_>,
) -> Result<Results> {
    let criteria = request.criteria;
    let types = searched_types(criteria)?;
    let order = match &criteria.order_by {
        None | Some(OrderBy::Rank) => Order::Rank,
        Some(OrderBy::Recent) => Order::Recent,
        Some(other) => return Err(Error::invalid_param(format!("Unknown order_by {other}"))),
    };
    let groupings = grouping_keys(criteria)?;
    let token = request.next_batch.map(Token::parse).transpose()?;
    if token.is_some_and(|t| t.order != order) {
        return Err(Error::invalid_param("next_batch was made for another order_by"));
    }
    let words = query_words(&criteria.search_term);
    let upto = token.map_or_else(|| hs.db().events().upto(), |t| t.upto);
    let filter = &criteria.filter;

    let readable = searched_rooms(hs, user, filter, upto).await?;
    let mut results = Results { highlights: words.clone(), ..Results::default() };
    if words.is_empty() || types.is_empty() || readable.is_empty() {
        return Ok(results);
    }
    let ignored = crate::account_data::ignored_users(hs, user).await?;
    let mut not_senders: Vec<String> = filter.not_senders.iter().map(ToString::to_string).collect();
    not_senders.extend(ignored.iter().map(ToString::to_string));
    let senders: Option<Vec<String>> =
        filter.senders.as_ref().map(|s| s.iter().map(ToString::to_string).collect());
    let (whole, partial) = scopes(hs, &readable, upto).await?;
    let (pool, backend) = (hs.db().pool(), hs.db().backend());
    let matches = search::word_matches(pool, &words, most_terms(backend)).await?;
    if matches.contains(&WordMatch::Terms(Vec::new())) {
        // A word no event holds: nothing matches.
        return Ok(results);
    }
    let query = Query {
        words: &matches,
        types: &types,
        whole: &whole,
        partial: &partial,
        senders: senders.as_deref(),
        not_senders: &not_senders,
        upto,
    };

    let limit = filter
        .limit
        .map_or(DEFAULT_LIMIT, |l| usize::try_from(u64::from(l)).unwrap_or(MAX_LIMIT))
        .clamp(1, MAX_LIMIT);
    let after = token.map(|t| t.after);
    let (mut page, counted) = match order {
        Order::Rank => {
            let window = search::newest_words(pool, backend, &query, None, WINDOW).await?;
            let counted = Counted::of(window.iter().map(|w| w.stream_ordering));
            (rank::best_after(rank::score(&window, &words), after, limit), counted)
        }
        Order::Recent => {
            let window = search::newest_positions(pool, backend, &query, None, WINDOW).await?;
            let before = after.map(|a| a.stream_ordering);
            let full = window.len() >= usize::try_from(WINDOW).unwrap_or(usize::MAX);
            let positions = match page_in_window(&window, before, limit + 1, full) {
                Ok(positions) => positions,
                Err(before) => {
                    let page_size = i64::try_from(limit + 1).unwrap_or(i64::MAX);
                    search::newest_positions(pool, backend, &query, before, page_size).await?
                }
            };
            let page = search::words_at(pool, backend, &positions).await?;
            (rank::score(&page, &words), Counted::of(window.into_iter()))
        }
    };
    if page.len() > limit {
        page.truncate(limit);
        results.next_batch = page.last().map(|last| {
            let after = Cursor { score: last.score, stream_ordering: last.stream_ordering };
            Token { order, upto, after }.to_string()
        });
    }
    let hits = load_hits(hs, &page).await?;
    results.count = estimate_count(counted, WINDOW, lowest_position(&whole, &partial), upto);

    let found = parse_hits(&hits, filter)?;
    let pdus: Vec<Pdu> = found.iter().map(|f| f.pdu.clone()).collect();
    let served = transaction_ids::client_events_for_device(hs, user, device_id, &pdus).await?;
    let mut context_filter = RoomEventFilter::default();
    context_filter.not_senders = ignored.to_vec();
    for (found, event) in found.iter().zip(served) {
        let context = match request.context {
            Some(wanted) => {
                let readable = readable.get(&found.pdu.room_id).cloned().unwrap_or_default();
                Some(context_of(hs, user, device_id, &readable, found, wanted, &context_filter).await?)
            }
            None => None,
        };
        results.results.push(Found { rank: found.score, event, context });
    }
    results.groups = group(&pdus, &groupings);
    if criteria.include_state == Some(true) {
        for room_id in pdus.iter().map(|p| &p.room_id).collect::<HashSet<_>>() {
            let state = crate::rooms::state_view::state(hs, user, room_id).await?;
            let served = transaction_ids::client_events_for_device(hs, user, device_id, &state).await?;
            results.state.insert(room_id.clone(), served);
        }
    }
    Ok(results)
}

/// The `take` newest positions of `window` (the newest matches, newest first; `full` when there
/// may be more) below `before`, or, when the page reaches past the window's end, where to query
/// for it instead.
fn page_in_window(
    window: &[i64],
    before: Option<i64>,
    take: usize,
    full: bool,
) -> std::result::Result<Vec<i64>, Option<i64>> {
    let page: Vec<i64> =
        window.iter().copied().filter(|p| before.is_none_or(|b| *p < b)).take(take).collect();
    if page.len() < take && full { Err(before.or(window.last().copied())) } else { Ok(page) }
}

/// A result's event and its score.
struct Hit {
    score: f64,
    event: StoredEvent,
}

/// The events of a page of results, in the page's order.
async fn load_hits(hs: &Homeserver, page: &[Scored]) -> Result<Vec<Hit>> {
    let positions: Vec<i64> = page.iter().map(|s| s.stream_ordering).collect();
    let mut loaded: HashMap<i64, StoredEvent> = events::get_by_positions(hs.db().pool(), &positions)
        .await?
        .into_iter()
        .filter_map(|event| Some((event.stream_ordering?, event)))
        .collect();
    Ok(page
        .iter()
        .filter_map(|s| loaded.remove(&s.stream_ordering).map(|event| Hit { score: s.score, event }))
        .collect())
}

/// The event types the keys and the filter's `types` / `not_types` leave to search.
fn searched_types(criteria: &Criteria) -> Result<Vec<&'static str>> {
    let keys: Vec<&str> = match &criteria.keys {
        None => index::KEYS.iter().map(|(key, _)| *key).collect(),
        Some(keys) => keys.iter().map(SearchKeys::as_str).collect(),
    };
    let mut types = Vec::new();
    for key in keys {
        let (_, kind) = index::KEYS
            .iter()
            .find(|(k, _)| *k == key)
            .ok_or_else(|| Error::invalid_param(format!("Unknown search key {key}")))?;
        let filter = &criteria.filter;
        let allowed = filter.types.as_ref().is_none_or(|t| t.iter().any(|p| event_filter::glob(p, kind)))
            && !filter.not_types.iter().any(|p| event_filter::glob(p, kind));
        if allowed && !types.contains(kind) {
            types.push(*kind);
        }
    }
    Ok(types)
}

/// The grouping keys asked for; 400 for unknown ones.
fn grouping_keys(criteria: &Criteria) -> Result<Vec<GroupingKey>> {
    criteria
        .groupings
        .group_by
        .iter()
        .filter_map(|g| g.key.clone())
        .map(|key| match key {
            GroupingKey::RoomId | GroupingKey::Sender => Ok(key),
            other => Err(Error::invalid_param(format!("Unknown grouping key {other}"))),
        })
        .collect()
}

/// The distinct words of a search term, at most [`MAX_WORDS`].
fn query_words(term: &str) -> Vec<String> {
    let mut seen = HashSet::new();
    index::words(term).into_iter().filter(|w| seen.insert(w.clone())).take(MAX_WORDS).collect()
}

/// The rooms `user` may search as of stream position `upto` (every room with a membership
/// event of theirs, narrowed by the filter's `rooms` / `not_rooms`), with what they may read.
async fn searched_rooms(
    hs: &Homeserver,
    user: &UserId,
    filter: &RoomEventFilter,
    upto: i64,
) -> Result<HashMap<OwnedRoomId, Readable>> {
    let memberships = sync::memberships_at(hs.db().pool(), user, upto).await?;
    let room_ids: Vec<OwnedRoomId> = memberships
        .into_iter()
        .map(|row| row.room_id)
        .filter(|room_id| {
            !filter.not_rooms.contains(room_id) && filter.rooms.as_ref().is_none_or(|r| r.contains(room_id))
        })
        .collect();
    let mut rooms = Readable::load_many(hs, user, &room_ids).await?;
    rooms.retain(|_, readable| !readable.is_empty());
    Ok(rooms)
}

/// The rooms searched, as the index query wants them: those readable in full up to `upto`
/// (named the shorter way round: when the user reads most rooms of the server, as every room but
/// the others) and those readable in part, with their ranges.
async fn scopes(
    hs: &Homeserver,
    readable: &HashMap<OwnedRoomId, Readable>,
    upto: i64,
) -> Result<(WholeRooms, Vec<RoomScope>)> {
    let mut whole = Vec::new();
    let mut partial = Vec::new();
    for (room_id, readable) in readable {
        match readable.ranges() {
            [(low, high)] if *low <= 1 && *high >= upto => whole.push(room_id.to_string()),
            ranges => partial.push(RoomScope {
                room_id: room_id.to_string(),
                ranges: ranges.iter().map(|&(low, high)| (low.max(1), high.min(upto))).collect(),
            }),
        }
    }
    let pool = hs.db().pool();
    // Read after `upto` was fixed: every room with an event up to there is listed.
    let known = usize::try_from(rooms::count(pool).await?).unwrap_or(usize::MAX);
    if known.saturating_sub(whole.len()) >= whole.len() {
        return Ok((WholeRooms::Only(whole), partial));
    }
    let whole: HashSet<String> = whole.into_iter().collect();
    let others = rooms::all_ids(pool).await?.into_iter().filter(|r| !whole.contains(r)).collect();
    Ok((WholeRooms::AllBut(others), partial))
}

/// A hit as an event, with its place in the stream.
struct Parsed {
    pdu: Pdu,
    score: f64,
    position: i64,
}

/// Parses the hits, dropping those the rest of the filter (`contains_url`) refuses.
fn parse_hits(hits: &[Hit], filter: &RoomEventFilter) -> Result<Vec<Parsed>> {
    let mut found = Vec::with_capacity(hits.len());
    for hit in hits {
        let room_id = OwnedRoomId::try_from(hit.event.room_id.as_str())
            .map_err(|e| Error::Internal(anyhow::anyhow!("stored room ID: {e}")))?;
        let pdu = parse(&hit.event, &room_id)?;
        if event_filter::matches(filter, &pdu) {
            found.push(Parsed { pdu, score: hit.score, position: hit.event.stream_ordering.unwrap_or(0) });
        }
    }
    Ok(found)
}

/// The events around one result, with the senders' profiles if asked for.
async fn context_of(
    hs: &Homeserver,
    user: &UserId,
    device_id: &DeviceId,
    readable: &Readable,
    found: &Parsed,
    wanted: &EventContext,
    filter: &RoomEventFilter,
) -> Result<FoundContext> {
    let limit = |n: ruma::UInt| usize::try_from(u64::from(n)).unwrap_or(usize::MAX);
    let room_id = &found.pdu.room_id;
    let around = history::around(
        hs,
        readable,
        room_id,
        found.position,
        limit(wanted.before_limit),
        limit(wanted.after_limit),
        filter,
    )
    .await?;
    let mut profiles = BTreeMap::new();
    if wanted.include_profile {
        let last = around.last_position.unwrap_or(found.position);
        let senders: HashSet<&str> = around
            .before
            .iter()
            .chain(std::iter::once(&found.pdu))
            .chain(&around.after)
            .map(|p| p.sender.as_str())
            .collect();
        let members =
            state_at(hs, room_id, last, |kind, key| kind == "m.room.member" && senders.contains(key)).await?;
        for member in members {
            let Some(user_id) = member.state_key.as_deref().and_then(|k| OwnedUserId::try_from(k).ok())
            else {
                continue;
            };
            let content = member.content_value();
            let field = |name: &str| content.get(name).and_then(Value::as_str).map(str::to_owned);
            profiles.insert(
                user_id,
                Profile { displayname: field("displayname"), avatar_url: field("avatar_url") },
            );
        }
    }
    let before_count = around.before.len();
    let mut pdus = around.before;
    pdus.extend(around.after);
    let mut served = transaction_ids::client_events_for_device(hs, user, device_id, &pdus).await?;
    let after = served.split_off(before_count);
    Ok(FoundContext {
        before: served,
        after,
        start: around.start.to_string(),
        end: around.end.to_string(),
        profiles,
    })
}

/// This page's results grouped by room or sender: each group lists its results in order, and
/// groups are ordered by their best result. Paging within a group is not offered (the spec
/// allows that: no group `next_batch`).
fn group(pdus: &[Pdu], keys: &[GroupingKey]) -> ResultGroupMapsByGroupingKey {
    fn groups<K: Ord + Clone>(pdus: &[Pdu], key: impl Fn(&Pdu) -> &K) -> BTreeMap<K, ResultGroup> {
        let mut map: BTreeMap<K, ResultGroup> = BTreeMap::new();
        let mut next_order = 1u32;
        for pdu in pdus {
            let group = map.entry(key(pdu).clone()).or_insert_with(|| {
                let mut group = ResultGroup::new();
                group.order = Some(next_order.into());
                next_order += 1;
                group
            });
            group.results.push(OwnedEventId::clone(&pdu.event_id));
        }
        map
    }
    keys.iter()
        .map(|key| match key {
            GroupingKey::Sender => ResultGroupMap::Sender(groups(pdus, |p| &p.sender)),
            _ => ResultGroupMap::RoomId(groups(pdus, |p| &p.room_id)),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{page_in_window, query_words};

    #[test]
    fn recent_pages_come_from_the_window_until_it_ends() {
        let window = [9, 7, 5, 3];
        assert_eq!(page_in_window(&window, None, 2, true), Ok(vec![9, 7]));
        assert_eq!(page_in_window(&window, Some(7), 2, true), Ok(vec![5, 3]));
        // Past the end of a full window: query below the cursor.
        assert_eq!(page_in_window(&window, Some(5), 2, true), Err(Some(5)));
        assert_eq!(page_in_window(&window, Some(2), 2, true), Err(Some(2)));
        // Every match is in the window: a short page is the last.
        assert_eq!(page_in_window(&window, Some(5), 2, false), Ok(vec![3]));
        assert_eq!(page_in_window(&[], None, 2, false), Ok(vec![]));
    }

    #[test]
    fn search_terms_become_distinct_lower_case_words() {
        assert_eq!(query_words("Tea, TEA and  biscuits!"), ["tea", "and", "biscuits"]);
        assert!(query_words("!!!").is_empty());
        assert_eq!(query_words(&"w ".repeat(40)).len(), 1);
    }
}

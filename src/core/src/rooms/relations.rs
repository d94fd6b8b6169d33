//! Relationships between events (spec: Client-Server API › Forming relationships between
//! events, Threading, Event annotations): indexing `m.relates_to` as events are stored, the
//! checks on locally sent children, and paging through children and thread roots.

use ruma::{EventId, RoomId, UserId};
use serde_json::Value;

use super::{
    Pdu, RoomHead, history,
    timeline::{self, StreamToken},
};
use crate::{
    Error, Homeserver, Result,
    storage::{
        Conn, events,
        relations::{self, ChildFilter, NewRelation},
    },
};

/// How many levels of relations `recurse=true` follows (the spec asks for at least 3).
pub const RECURSION_DEPTH: u32 = 3;

/// The `m.relates_to` of an event content: `(rel_type, parent event ID, annotation key)`.
/// Replies (`m.in_reply_to` without `rel_type`) are not relations in this sense.
pub fn relates_to(content: &Value) -> Option<(&str, &str, Option<&str>)> {
    let relation = content.get("m.relates_to")?;
    let rel_type = relation.get("rel_type")?.as_str()?;
    let parent = relation.get("event_id")?.as_str()?;
    EventId::parse(parent).ok()?;
    Some((rel_type, parent, relation.get("key").and_then(Value::as_str)))
}

/// Whether the event's content may carry a relation: a cheap test that spares parsing the
/// content of the vast majority of events.
fn may_relate(pdu: &Pdu) -> bool {
    pdu.content.get().contains("m.relates_to")
}

/// Records the relation of a newly stored event (part of persisting it).
pub async fn index(conn: &mut Conn, pdu: &Pdu, event_nid: i64) -> Result<()> {
    if !may_relate(pdu) {
        return Ok(());
    }
    let content = pdu.content_value();
    if let Some((rel_type, parent_id, key)) = relates_to(&content) {
        // A relation across rooms is invalid and ignored (spec: Forming relationships). A
        // parent not seen yet is taken on trust.
        if events::get(&mut *conn, parent_id).await?.is_some_and(|p| p.room_id != pdu.room_id.as_str()) {
            return Ok(());
        }
        let relation = NewRelation { event_nid, room_id: &pdu.room_id, parent_id, rel_type, key };
        relations::insert(conn, &relation).await?;
    }
    Ok(())
}

/// The rules the server applies to children its own users send: the parent must be in the same
/// room, a thread cannot start from an event that is itself a relation (400 `M_UNKNOWN`), and a
/// user annotates an event with a given key once (400 `M_DUPLICATE_ANNOTATION`).
pub async fn check_local(conn: &mut Conn, head: &RoomHead, pdu: &Pdu) -> Result<()> {
    if !may_relate(pdu) {
        return Ok(());
    }
    let content = pdu.content_value();
    let Some((rel_type, parent_id, key)) = relates_to(&content) else { return Ok(()) };
    if let Some(parent) = events::get(&mut *conn, parent_id).await?
        && parent.room_id != head.room_id.as_str()
    {
        return Err(Error::bad_request("Relations must be in the same room"));
    }
    match (rel_type, key) {
        ("m.thread", _) if relations::rel_type_of(&mut *conn, parent_id).await?.is_some() => {
            Err(Error::bad_request("Cannot start a thread from an event with a relation"))
        }
        ("m.annotation", Some(key)) => {
            let kind = pdu.kind.to_string();
            if relations::has_annotation(&mut *conn, parent_id, pdu.sender.as_str(), &kind, key).await? {
                Err(Error::matrix(
                    http::StatusCode::BAD_REQUEST,
                    ruma::api::error::ErrorKind::DuplicateAnnotation,
                    "You already sent this annotation",
                ))
            } else {
                Ok(())
            }
        }
        _ => Ok(()),
    }
}

/// What `/relations` asked for.
#[derive(Clone, Debug, Default)]
pub struct RelationsQuery {
    /// Only children with this `rel_type`.
    pub rel_type: Option<String>,
    /// Only children of this event type.
    pub event_type: Option<String>,
    /// Where to start.
    pub from: Option<StreamToken>,
    /// Where to stop.
    pub to: Option<StreamToken>,
    /// Newest first (the default) or oldest first.
    pub backwards: bool,
    /// Page size.
    pub limit: usize,
    /// Whether to include children of children.
    pub recurse: bool,
}

/// A page of `/relations`.
#[derive(Clone, Debug)]
pub struct RelationsPage {
    /// The children, in the order asked for.
    pub events: Vec<Pdu>,
    /// Where the next page starts, if there is one.
    pub next: Option<StreamToken>,
    /// How deep the server followed relations, when asked to recurse.
    pub recursion_depth: Option<u32>,
}

/// The children of `parent` the viewer may see (404 when the parent is unknown or hidden).
pub async fn children(
    hs: &Homeserver,
    viewer: &UserId,
    room_id: &RoomId,
    parent: &EventId,
    query: &RelationsQuery,
) -> Result<RelationsPage> {
    history::event(hs, viewer, room_id, parent.as_str()).await?;
    let readable =
        history::readable(hs, viewer, room_id).await.map_err(|_| Error::not_found("Event not found"))?;

    let filter =
        ChildFilter { room_id, rel_type: query.rel_type.as_deref(), event_type: query.event_type.as_deref() };
    let mut conn = hs.db().pool().acquire().await?;
    let mut parents = vec![parent.to_string()];
    if query.recurse {
        // Levels 1..=N are the children of levels 0..N: expand the parent set N-1 times. Only
        // events passing the filter carry the recursion on, as the spec requires.
        let mut level = parents.clone();
        for _ in 1..RECURSION_DEPTH {
            let found = relations::child_ids(&mut conn, &level, filter).await?;
            level = found.into_iter().filter(|id| !parents.contains(id)).collect();
            if level.is_empty() {
                break;
            }
            parents.extend(level.iter().cloned());
        }
    }

    let limit = query.limit.clamp(1, 1000);
    let (after, before) = match (query.backwards, query.from) {
        (true, from) => (query.to.map_or(0, |t| t.0), from.map_or(i64::MAX, |t| t.0 + 1)),
        (false, from) => (from.map_or(0, |t| t.0), query.to.map_or(i64::MAX, |t| t.0 + 1)),
    };
    let fetch = i64::try_from(limit).unwrap_or(1000) + 1;
    let mut rows =
        relations::children(&mut conn, &parents, filter, (after, before), query.backwards, fetch).await?;
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next = match rows.last().and_then(|r| r.stream_ordering) {
        Some(last) if more => Some(StreamToken(if query.backwards { last - 1 } else { last })),
        _ => None,
    };
    // Children in history the viewer may not see are left out (spec: Aggregations of child events).
    let events = rows
        .iter()
        .filter(|row| row.stream_ordering.is_some_and(|p| readable.contains(p)))
        .map(|row| timeline::parse(row, room_id))
        .collect::<Result<Vec<_>>>()?;
    Ok(RelationsPage { events, next, recursion_depth: query.recurse.then_some(RECURSION_DEPTH) })
}

/// A page of thread roots, most recently active thread first, and the token of the next page.
/// With `participated`, only threads the viewer started or sent into.
pub async fn threads(
    hs: &Homeserver,
    viewer: &UserId,
    room_id: &RoomId,
    participated: bool,
    from: Option<StreamToken>,
    limit: usize,
) -> Result<(Vec<Pdu>, Option<StreamToken>)> {
    let readable = history::readable(hs, viewer, room_id).await?;
    let limit = limit.clamp(1, 100);
    let fetch = i64::try_from(limit).unwrap_or(100) + 1;
    let participant = participated.then_some(viewer.as_str());
    let before = from.map_or(i64::MAX, |t| t.0);
    let mut roots = relations::thread_roots(hs.db().pool(), room_id, participant, before, fetch).await?;
    let more = roots.len() > limit;
    roots.truncate(limit);
    let next = roots.last().filter(|_| more).map(|(_, latest)| StreamToken(*latest));
    let mut events = Vec::with_capacity(roots.len());
    for (root_id, _) in &roots {
        match events::get(hs.db().pool(), root_id).await? {
            Some(row)
                if row.room_id == room_id.as_str()
                    && row.stream_ordering.is_some_and(|p| readable.contains(p)) =>
            {
                events.push(timeline::parse(&row, room_id)?);
            }
            _ => {}
        }
    }
    Ok((events, next))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn relations_need_a_rel_type_and_a_valid_parent() {
        let thread = json!({ "m.relates_to": { "rel_type": "m.thread", "event_id": "$root" } });
        assert_eq!(relates_to(&thread), Some(("m.thread", "$root", None)));
        let reaction =
            json!({ "m.relates_to": { "rel_type": "m.annotation", "event_id": "$a", "key": "👍" } });
        assert_eq!(relates_to(&reaction), Some(("m.annotation", "$a", Some("👍"))));
        let reply = json!({ "m.relates_to": { "m.in_reply_to": { "event_id": "$root" } } });
        assert_eq!(relates_to(&reply), None);
        let bad_parent = json!({ "m.relates_to": { "rel_type": "m.thread", "event_id": "root" } });
        assert_eq!(relates_to(&bad_parent), None);
    }
}

//! Serving a room's graph to other servers (spec: Server-Server API › Retrieving events,
//! Backfilling and retrieving missing events): who may read it (a server with a member joined,
//! or any for a world-readable room; then per event, what its users could see), single events,
//! and walks back through `prev_events` for `/get_missing_events` and `/backfill`.

use std::{
    collections::{HashSet, VecDeque},
    sync::Arc,
};

use ruma::{CanonicalJsonObject, EventId, OwnedEventId, RoomId, ServerName, canonical_json::redact};

use super::{Pdu, RoomHead, auth, visibility::Readable};
use crate::{
    Error, Homeserver, Result,
    storage::{device_lists, events},
};

/// Most events one walk returns.
pub const MAX_EVENTS: usize = 100;

/// 403 unless `server` has a member joined to the room, or the room is world-readable, and the
/// room's ACL allows it.
pub async fn check_server_may_read(hs: &Homeserver, room_id: &RoomId, server: &ServerName) -> Result<()> {
    super::server_acl::check(hs, room_id, server).await?;
    let mut conn = hs.db().pool().acquire().await?;
    let members = device_lists::joined_members(&mut conn, room_id).await?;
    if members.iter().any(|user| user.server_name() == server) {
        return Ok(());
    }
    let head = RoomHead::current(hs, &mut conn, room_id).await?;
    if let Some(id) = head.state_event_id("m.room.history_visibility", "") {
        let loaded = auth::load(hs, &mut conn, &head, &[id]).await?;
        let world_readable = loaded.values().any(|pdu| {
            pdu.content_value().get("history_visibility").and_then(|v| v.as_str()) == Some("world_readable")
        });
        if world_readable {
            return Ok(());
        }
    }
    Err(Error::forbidden("Your server is not in this room"))
}

/// Which events of a room one server may see (spec: a server may see an event if any of its
/// users could, by history visibility), on top of [`check_server_may_read`]'s gate.
pub struct ServerView {
    readable: Readable,
}

impl ServerView {
    /// What the users of `server` may read of `room_id`, after [`check_server_may_read`] (403).
    pub async fn load(hs: &Homeserver, room_id: &RoomId, server: &ServerName) -> Result<ServerView> {
        check_server_may_read(hs, room_id, server).await?;
        Ok(ServerView { readable: Readable::load_for_server(hs, room_id, server).await? })
    }

    /// Of `pdus`, which the server may see, in order. Events in no timeline here (the state
    /// and auth chain of the room, known as outliers) are state any server in the room gets.
    pub async fn visible(&self, hs: &Homeserver, pdus: &[Arc<Pdu>]) -> Result<Vec<bool>> {
        let ids: Vec<&str> = pdus.iter().map(|pdu| pdu.event_id.as_str()).collect();
        let mut conn = hs.db().pool().acquire().await?;
        let positions = events::positions_of(&mut conn, &ids).await?;
        Ok(ids
            .iter()
            .map(|id| positions.get(*id).copied().flatten().is_none_or(|p| self.readable.contains(p)))
            .collect())
    }

    /// 403 unless the server may see `pdu`.
    pub async fn check(&self, hs: &Homeserver, pdu: &Arc<Pdu>) -> Result<()> {
        match self.visible(hs, std::slice::from_ref(pdu)).await?.first() {
            Some(true) => Ok(()),
            _ => Err(Error::forbidden("Your server may not see this event")),
        }
    }

    /// `pdus` as the server may see them: those it may not, redacted (as Synapse answers
    /// `/backfill` and `/get_missing_events`), so the graph stays whole.
    pub async fn redact_hidden(
        &self,
        hs: &Homeserver,
        room_id: &RoomId,
        pdus: Vec<Arc<Pdu>>,
    ) -> Result<Vec<CanonicalJsonObject>> {
        let rules = super::remote::rules(hs, room_id).await?;
        let visible = self.visible(hs, &pdus).await?;
        pdus.iter()
            .zip(visible)
            .map(|(pdu, visible)| match visible {
                true => Ok(pdu.json.clone()),
                false => redact(pdu.json.clone(), &rules.redaction, None)
                    .map_err(|e| Error::Internal(anyhow::anyhow!("redacting {}: {e}", pdu.event_id))),
            })
            .collect()
    }
}

/// The event `event_id` of `room_id`; 404 when unknown, rejected or of another room.
pub async fn event_in_room(hs: &Homeserver, room_id: &RoomId, event_id: &EventId) -> Result<Arc<Pdu>> {
    let mut conn = hs.db().pool().acquire().await?;
    let head = RoomHead::current(hs, &mut conn, room_id).await?;
    if !events::rejected_among(&mut conn, &[event_id.as_str()]).await?.is_empty() {
        return Err(Error::not_found("Unknown event"));
    }
    auth::load(hs, &mut conn, &head, &[event_id.as_str()])
        .await?
        .remove(event_id)
        .filter(|pdu| pdu.room_id == room_id)
        .ok_or_else(|| Error::not_found("Unknown event"))
}

/// The event `event_id`, of whichever room; 404 when unknown.
pub async fn event(hs: &Homeserver, event_id: &EventId) -> Result<Arc<Pdu>> {
    let row = events::get(hs.db().pool(), event_id.as_str())
        .await?
        .ok_or_else(|| Error::not_found("Unknown event"))?;
    let room_id =
        RoomId::parse(&row.room_id).map_err(|e| Error::Internal(anyhow::anyhow!("stored room ID: {e}")))?;
    event_in_room(hs, &room_id, event_id).await
}

/// Events reached walking back through `prev_events` from `from` (which are included when
/// `include_from`), not past `stop` nor below `min_depth`, at most `limit` (≤ [`MAX_EVENTS`]),
/// the nearest to `from` first.
pub async fn walk_back(
    hs: &Homeserver,
    room_id: &RoomId,
    from: &[OwnedEventId],
    stop: &[OwnedEventId],
    (limit, min_depth): (usize, u64),
    include_from: bool,
) -> Result<Vec<Arc<Pdu>>> {
    let mut conn = hs.db().pool().acquire().await?;
    let head = RoomHead::current(hs, &mut conn, room_id).await?;
    let limit = limit.min(MAX_EVENTS);
    let mut seen: HashSet<OwnedEventId> = stop.iter().cloned().collect();
    let mut queue: VecDeque<(OwnedEventId, bool)> =
        from.iter().map(|id| (id.clone(), include_from)).collect();
    let mut found = Vec::new();
    while let Some((id, keep)) = queue.pop_front() {
        if found.len() >= limit {
            break;
        }
        if !seen.insert(id.clone()) {
            continue;
        }
        let Some(pdu) = auth::load(hs, &mut conn, &head, &[id.as_str()]).await?.remove(&id) else { continue };
        if pdu.room_id != room_id || u64::from(pdu.depth) < min_depth {
            continue;
        }
        queue.extend(pdu.prev_events.iter().map(|prev| (prev.clone(), true)));
        if keep {
            found.push(pdu);
        }
    }
    Ok(found)
}

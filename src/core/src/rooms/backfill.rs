//! Backfilling a room joined through another server (spec: Server-Server API › Backfilling and
//! retrieving missing events): when a local user pages back past the earliest event this server
//! has, the servers in the room are asked (through the [`RemoteRooms`] port) for the events
//! before it. Each one returned is checked against its auth events (its signatures and content
//! hash were checked by federation) and taken into the timeline *below* every event there:
//! backfill positions descend from -1 (`WriteTx::backfill_stream_orderings`), so `/messages`
//! pages into them in order and `/sync`, which never reads below 1, never shows them as new.
//!
//! Backfilled events have no state group (the state at them is not known here; lazy-loaded
//! members come from their auth events) and change neither the room's state nor its forward
//! extremities. Outliers the join brought (the room's state and auth chain) join the timeline
//! at their place when they come back in a backfill.
//!
//! [`RemoteRooms`]: crate::remote_rooms::RemoteRooms

use std::collections::HashSet;

use ruma::{OwnedEventId, OwnedServerName, RoomId};

use super::{
    Pdu,
    append::{RoomWriter, Standing, store},
    auth,
    timeline::parse,
    visibility::Readable,
};
use crate::{
    Homeserver, Result,
    storage::{Conn, backfill, device_lists, events, gaps},
};

/// How many of a room's earliest events are looked at for prev events this server lacks.
const EDGE: i64 = 20;
/// Most events one backfill asks for.
pub const MAX_BATCH: usize = 100;

/// The history missing below a room's timeline.
#[derive(Clone, Debug)]
struct Gap {
    /// The room's earliest timeline event.
    earliest: String,
    /// The prev events of its earliest events this server lacks (the `v` of `/backfill`).
    from: Vec<OwnedEventId>,
    /// Whom to ask: the server the room was joined through, then those with joined members.
    servers: Vec<OwnedServerName>,
}

/// Fetches up to `limit` events of history before the earliest event of `room_id` and takes
/// them in, for a reader who may read what is `readable`; whether any were. Rooms not joined
/// through another server, rooms whose history here reaches their create event, rooms whose
/// servers had nothing older the last time (until their earliest event changes), and readers
/// who may read nothing before the earliest event ask no one.
pub async fn fill(hs: &Homeserver, room_id: &RoomId, readable: &Readable, limit: usize) -> Result<bool> {
    let (Some(remote), Some(gap)) = (hs.remote_rooms(), gap(hs, room_id, readable).await?) else {
        return Ok(false);
    };
    let limit = limit.clamp(1, MAX_BATCH);
    let pdus = match remote.backfill(room_id, &gap.servers, &gap.from, limit).await {
        Ok(pdus) => pdus,
        Err(e) => {
            // Nobody answered: the history may still come another time.
            tracing::info!(%room_id, error = %e, "backfill failed");
            return Ok(false);
        }
    };
    if take_in(hs, room_id, &pdus, Place::Below).await? > 0 {
        return Ok(true);
    }
    // Nothing new from us; a backfill for another reader may have taken the same events in.
    let pool = hs.db().pool();
    let earliest = backfill::earliest(pool, room_id, 1).await?;
    if earliest.first().is_some_and(|row| row.event_id != gap.earliest) {
        return Ok(true);
    }
    backfill::set_exhausted(pool, room_id, &gap.earliest).await?;
    Ok(false)
}

/// The gap below `room_id`'s timeline, if there is one to fill that the reader may read.
async fn gap(hs: &Homeserver, room_id: &RoomId, readable: &Readable) -> Result<Option<Gap>> {
    let pool = hs.db().pool();
    let Some(room) = backfill::get(pool, room_id).await? else { return Ok(None) };
    let earliest = backfill::earliest(pool, room_id, EDGE).await?;
    let Some(first) = earliest.first() else { return Ok(None) };
    let below = first.stream_ordering.map_or(i64::MIN, |p| p.saturating_sub(1));
    if room.exhausted_at.as_deref() == Some(first.event_id.as_str()) || readable.at_or_below(below).is_none()
    {
        return Ok(None);
    }
    let mut conn = pool.acquire().await?;
    let prevs = missing_prevs(&mut conn, room_id, &earliest).await?;
    if prevs.is_empty() {
        return Ok(None);
    }
    let servers = servers_to_ask(hs, &mut conn, room_id, Some(room.joined_via)).await?;
    Ok(Some(Gap { earliest: first.event_id.clone(), from: prevs, servers }))
}

/// Of the prev events of `rows` (events of `room_id`), those not in the timeline here (nor
/// rejected): the `v` of a `/backfill` for what lies below them.
pub(super) async fn missing_prevs(
    conn: &mut Conn,
    room_id: &RoomId,
    rows: &[events::StoredEvent],
) -> Result<Vec<OwnedEventId>> {
    let mut prevs: Vec<OwnedEventId> = Vec::new();
    for row in rows {
        for prev in parse(row, room_id)?.prev_events {
            if !prevs.contains(&prev) {
                prevs.push(prev);
            }
        }
    }
    let ids: Vec<&str> = prevs.iter().map(|id| id.as_str()).collect();
    let settled = backfill::settled_among(conn, &ids).await?;
    prevs.retain(|id| !settled.iter().any(|s| s == id.as_str()));
    Ok(prevs)
}

/// Whom to ask for a room's history: `first` (the server it was joined through), then the
/// servers with members joined.
pub(super) async fn servers_to_ask(
    hs: &Homeserver,
    conn: &mut Conn,
    room_id: &RoomId,
    first: Option<String>,
) -> Result<Vec<OwnedServerName>> {
    let mut servers: Vec<OwnedServerName> =
        first.and_then(|server| OwnedServerName::try_from(server).ok()).into_iter().collect();
    for user in device_lists::joined_members(conn, room_id).await? {
        let server = user.server_name();
        if server != hs.server_name() && !servers.iter().any(|s| s == server) {
            servers.push(server.to_owned());
        }
    }
    Ok(servers)
}

/// Where backfilled events go in the timeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// Below the room's earliest event, at backfill positions (below 0).
    Below,
    /// Into the block of the gap below the event at this stream position, downwards from its
    /// next free position (`rooms::gap`); the newest events when the block cannot hold them all.
    Gap(i64),
}

/// Takes backfilled `pdus` (signatures and hashes checked) of `room_id` into the timeline at
/// `place`, oldest lowest; returns how many joined it. Events of other rooms, events
/// already in the timeline and events whose auth events this server lacks are skipped; events
/// their auth events do not authorise are stored as rejected.
pub async fn take_in(hs: &Homeserver, room_id: &RoomId, pdus: &[Pdu], place: Place) -> Result<usize> {
    let mut batch: Vec<&Pdu> = Vec::with_capacity(pdus.len());
    let mut seen = HashSet::new();
    for pdu in pdus {
        if pdu.room_id == room_id && seen.insert(&pdu.event_id) {
            batch.push(pdu);
        }
    }
    // Oldest first: an event's auth events come before it.
    batch.sort_by_key(|pdu| (pdu.depth, pdu.origin_server_ts));

    let mut writer = RoomWriter::open(hs, room_id).await?;
    let (tx, head) = writer.parts();
    let ids: Vec<&str> = batch.iter().map(|pdu| pdu.event_id.as_str()).collect();
    let settled = backfill::settled_among(tx, &ids).await?;
    batch.retain(|pdu| !settled.iter().any(|s| s == pdu.event_id.as_str()));
    // The lowest positions for the oldest events.
    let mut positions = match place {
        Place::Below => tx.backfill_stream_orderings(batch.len()),
        Place::Gap(at) => {
            let Some(gap) = gaps::open_at(&mut **tx, room_id, at).await? else { return Ok(0) };
            let fits = batch.len().min(gap.room_left());
            batch.drain(..batch.len() - fits);
            super::gap::take_positions(tx, room_id, &gap, fits).await?
        }
    };
    let mut below = super::RoomHead { state_group: None, ..head.clone() };
    let mut taken = 0;
    for pdu in batch {
        let position = positions.pop().expect("one position per event");
        let mut wanted: Vec<&str> = pdu.auth_events.iter().map(|id| id.as_str()).collect();
        if let Some(create) = head.state_event_id("m.room.create", "") {
            wanted.push(create);
        }
        let auth_events = auth::load(hs, tx, head, &wanted).await?;
        if pdu.auth_events.iter().any(|id| !auth_events.contains_key(id)) {
            tracing::info!(event_id = %pdu.event_id, "a backfilled event's auth events are unknown here");
            continue;
        }
        let cited: Vec<&str> = pdu.auth_events.iter().map(|id| id.as_str()).collect();
        let verdict = match events::rejected_among(tx, &cited).await?.as_slice() {
            [] => auth::check(&head.rules.authorization, pdu, &auth_events, &auth::by_key(&auth_events)),
            rejected => Err(format!("its auth events {rejected:?} were rejected")),
        };
        let outlier = events::get(&mut **tx, pdu.event_id.as_str()).await?;
        match (verdict, outlier) {
            (Ok(()), Some(row)) => {
                backfill::promote(tx, row.event_nid, position).await?;
                crate::search::index::record(hs, tx, &[(position, pdu)]).await?;
                taken += 1;
            }
            (Ok(()), None) => {
                store(hs, tx, &mut below, pdu, Standing::Backfilled(position)).await?;
                taken += 1;
            }
            (Err(reason), None) => {
                tracing::info!(event_id = %pdu.event_id, %reason, "a backfilled event is rejected");
                store(hs, tx, &mut below, pdu, Standing::Rejected).await?;
            }
            // An outlier of the room's state stays one.
            (Err(reason), Some(_)) => {
                tracing::info!(event_id = %pdu.event_id, %reason, "a backfilled outlier is not authorised");
            }
        }
    }
    writer.commit().await?;
    if taken > 0 {
        // Membership and visibility changes may have joined the timeline.
        hs.room_cache().invalidate_readable();
    }
    Ok(taken)
}

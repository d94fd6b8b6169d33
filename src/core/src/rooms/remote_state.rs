//! Crossing a gap in a room's graph with the state another server reports (spec: Server-Server
//! API › Retrieving events, and Checks performed on receipt of a PDU). When an event's prev
//! event is unknown here and `/get_missing_events` did not bring it, federation fetches that
//! prev event (`/event`), the IDs of the state before it (`/state_ids`) and the events of that
//! state and its auth chain this server lacks (`/event`, or `/state` for many). Here they are
//! checked before any becomes the state the event is authorised against: each fetched event
//! against its own auth events (ones the rules refuse are stored rejected, ones lacking an auth
//! event dropped); every event of the state must then be held here, valid and not rejected —
//! one that is not (forged, dropped for its signatures, unauthorised) refuses the whole answer,
//! since a state missing a key would authorise more than the real one — and the prev event is
//! checked against its auth events and that state. It is stored as an outlier whose state
//! group is the state after it (a rejected one: the state before it, since a rejected event
//! changes no state).

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use ruma::{OwnedEventId, events::TimelineEventType};

use super::{
    Pdu, RoomHead,
    append::{RoomWriter, Standing, store},
    auth, fork,
    head::StateMap,
    remote_join::{authorised, store_outliers},
};
use crate::{
    Error, Homeserver, Result,
    storage::{WriteTx, events},
};

/// Of `ids`, those this server does not hold (the events of a reported state to fetch).
pub async fn unknown_among(hs: &Homeserver, ids: &[OwnedEventId]) -> Result<Vec<OwnedEventId>> {
    let mut conn = hs.db().pool().acquire().await?;
    let strs: Vec<&str> = ids.iter().map(|id| id.as_str()).collect();
    let known = events::positions_of(&mut conn, &strs).await?;
    Ok(ids.iter().filter(|id| !known.contains_key(id.as_str())).cloned().collect())
}

/// Stores `prev` with `state_ids`, the state before it as the sending server reported it;
/// `fetched` are the events of that state, its auth chain and `prev`'s auth events this server
/// lacked (signatures and hashes checked by the caller). 403 when the state cannot be trusted:
/// an event of it missing, rejected, unauthorised, of another room or not a state event, or two
/// for one key. Events after `prev` can then be received.
pub async fn store_with_state(
    hs: &Homeserver,
    prev: &Pdu,
    state_ids: &[OwnedEventId],
    fetched: &[Pdu],
) -> Result<()> {
    let mut writer = RoomWriter::open(hs, &prev.room_id).await?;
    let (tx, head) = writer.parts();
    if events::get(&mut **tx, prev.event_id.as_str())
        .await?
        .is_some_and(|row| row.state_group.is_some_and(|g| g > 0))
    {
        return Ok(());
    }
    let rules = head.rules.authorization.clone();

    // Events held here that the answer names (the create event always counts), minus rejected.
    let mut wanted: Vec<&str> = state_ids.iter().chain(&prev.auth_events).map(|id| id.as_str()).collect();
    wanted.extend(fetched.iter().flat_map(|pdu| pdu.auth_events.iter().map(|id| id.as_str())));
    wanted.extend(head.state_event_id("m.room.create", ""));
    wanted.sort_unstable();
    wanted.dedup();
    let mut known = auth::load(hs, tx, head, &wanted).await?;
    known.retain(|_, pdu| pdu.room_id == head.room_id);
    let rejected: HashSet<String> = events::rejected_among(tx, &wanted).await?.into_iter().collect();
    known.retain(|id, _| !rejected.contains(id.as_str()));

    // Fetched events, each checked against its own auth events: kept as outliers, or rejected.
    let new: Vec<&Pdu> = fetched
        .iter()
        .filter(|pdu| pdu.room_id == head.room_id && !known.contains_key(&pdu.event_id))
        .collect();
    let valid = authorised(&rules, new.iter().copied(), known.clone());
    let (kept, refused): (Vec<&Pdu>, Vec<&Pdu>) =
        new.into_iter().partition(|pdu| valid.contains(&pdu.event_id));
    store_refused(hs, tx, head, &refused, (&known, &valid)).await?;
    let kept: Vec<Pdu> = kept.into_iter().cloned().collect();
    let (_, stored) = store_outliers(tx, head, &kept, &[], &prev.event_id).await?;
    known.extend(stored);

    let map = match state_map(tx, head, state_ids, &known).await? {
        Ok(map) => map,
        Err(reason) => {
            // What was rejected stays so.
            writer.commit().await?;
            return Err(Error::forbidden(format!(
                "The state at {} cannot be trusted: {reason}",
                prev.event_id
            )));
        }
    };
    let before_events: HashMap<OwnedEventId, Arc<Pdu>> =
        state_ids.iter().filter_map(|id| Some((id.clone(), known.get(id)?.clone()))).collect();
    let mut before = RoomHead { state_group: None, chain_len: 0, state: Arc::new(map), ..head.clone() };

    // The prev event itself: against its auth events, then against the state before it.
    let verdict = match prev.auth_events.iter().find(|id| !known.contains_key(*id)) {
        Some(id) => Err(format!("its auth event {id} is unknown or rejected")),
        None => auth::check(&rules, prev, &known, &auth::by_key(&known_of(prev, &known)))
            .and_then(|()| auth::check(&rules, prev, &known, &auth::by_key(&before_events))),
    };
    if let Err(reason) = verdict {
        tracing::info!(event_id = %prev.event_id, %reason, "a fetched prev event is rejected");
        before.state_group = Some(fork::snapshot(tx, &prev.room_id, &before.state).await?);
        if events::get(&mut **tx, prev.event_id.as_str()).await?.is_none() {
            store(hs, tx, &mut before, prev, Standing::Rejected).await?;
        }
        return writer.commit().await;
    }
    let nid = match events::get(&mut **tx, prev.event_id.as_str()).await? {
        Some(row) => row.event_nid,
        None => store(hs, tx, &mut before.clone(), prev, Standing::Outlier).await?,
    };
    // The state after it: its own entry added for a state event.
    if let Some(key) = &prev.state_key {
        Arc::make_mut(&mut before.state)
            .insert((prev.kind.to_string(), key.clone()), (nid, prev.event_id.to_string()));
    }
    let after = fork::snapshot(tx, &prev.room_id, &before.state).await?;
    events::set_state_group(tx, nid, after).await?;
    writer.commit().await
}

/// `pdu`'s auth events (and the create event) among `known`.
fn known_of(pdu: &Pdu, known: &HashMap<OwnedEventId, Arc<Pdu>>) -> HashMap<OwnedEventId, Arc<Pdu>> {
    known
        .iter()
        .filter(|(id, event)| pdu.auth_events.contains(id) || event.kind == TimelineEventType::RoomCreate)
        .map(|(id, event)| (id.clone(), event.clone()))
        .collect()
}

/// Stores the fetched events the auth rules refused on their auth events (all of them held here
/// and valid: `known` or `valid`) as rejected, so that they are not fetched again and events
/// citing them are rejected in turn. One refused for lack of an auth event (it may not have
/// come through this time) is only dropped.
async fn store_refused(
    hs: &Homeserver,
    tx: &mut WriteTx,
    head: &RoomHead,
    refused: &[&Pdu],
    (known, valid): (&HashMap<OwnedEventId, Arc<Pdu>>, &HashSet<OwnedEventId>),
) -> Result<()> {
    let mut seen = HashSet::new();
    for pdu in refused {
        let cited = pdu.auth_events.iter().all(|id| known.contains_key(id) || valid.contains(id));
        if cited
            && seen.insert(&pdu.event_id)
            && events::get(&mut **tx, pdu.event_id.as_str()).await?.is_none()
        {
            let mut outlier = RoomHead { state_group: None, ..head.clone() };
            store(hs, tx, &mut outlier, pdu, Standing::Rejected).await?;
        }
    }
    Ok(())
}

/// The state map of `state_ids` (events of `known`, interned as stored), or why it cannot be
/// used.
async fn state_map(
    tx: &mut WriteTx,
    head: &RoomHead,
    state_ids: &[OwnedEventId],
    known: &HashMap<OwnedEventId, Arc<Pdu>>,
) -> Result<std::result::Result<StateMap, String>> {
    let strs: Vec<&str> = state_ids.iter().map(|id| id.as_str()).collect();
    let nids: HashMap<String, i64> = events::nids_of(tx, &strs).await?;
    let mut map = StateMap::new();
    for id in state_ids {
        let (Some(pdu), Some(nid)) = (known.get(id), nids.get(id.as_str())) else {
            return Ok(Err(format!("{id} is unknown, forged or rejected")));
        };
        let Some(key) = &pdu.state_key else { return Ok(Err(format!("{id} is no state event"))) };
        if map.insert((pdu.kind.to_string(), key.clone()), (*nid, id.to_string())).is_some() {
            return Ok(Err(format!("two events for ({}, {key})", pdu.kind)));
        }
    }
    if !map.contains_key(&("m.room.create".to_owned(), String::new())) {
        return Ok(Err("it has no create event".to_owned()));
    }
    let create = head.state_event_id("m.room.create", "");
    if create.is_some_and(|create| {
        map.get(&("m.room.create".to_owned(), String::new())).is_none_or(|(_, id)| id != create)
    }) {
        return Ok(Err("its create event is not the room's".to_owned()));
    }
    Ok(Ok(map))
}

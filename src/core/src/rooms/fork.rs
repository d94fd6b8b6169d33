//! The state of a room where its graph forks (spec: Server-Server API › Room State
//! Resolution): the state before an event is the resolution (v2, `resolve`) of the states after
//! its prev events, and a room with several forward extremities has the resolution of their
//! states as its current state.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use imbl::ordmap::DiffItem;
use ruma::{OwnedEventId, RoomId, events::StateEventType, state_res};

use super::{Pdu, RoomHead, append, auth, head::StateMap, resolve};
use crate::{
    Error, Homeserver, Result,
    storage::{Conn, WriteTx, events, state, unread_log::UnreadNote},
};

/// The state before an event, as a head to build it on, or the prev events this server lacks.
pub enum StateBefore {
    /// The state after the prev events (resolved when they differ). When the prev events are
    /// the room's extremities, this is the room's head itself (its state map shared).
    Known(RoomHead),
    /// Prev events unknown here, or known only as outliers (without state).
    Missing(Vec<OwnedEventId>),
}

/// The state before an event whose prev events are `prev_events`, in the room whose head is
/// `head`.
pub async fn state_before(
    hs: &Homeserver,
    conn: &mut Conn,
    head: &RoomHead,
    prev_events: &[OwnedEventId],
) -> Result<StateBefore> {
    let same = head.prev_events.len() == prev_events.len()
        && head.prev_events.iter().all(|(_, id)| prev_events.iter().any(|p| p.as_str() == id));
    if same {
        return Ok(StateBefore::Known(head.clone()));
    }
    let mut missing = Vec::new();
    let mut prevs = Vec::with_capacity(prev_events.len());
    let mut groups = Vec::new();
    for id in prev_events {
        match events::get(&mut *conn, id.as_str()).await? {
            Some(row) if row.room_id == head.room_id.as_str() && row.state_group.is_some_and(|g| g > 0) => {
                prevs.push((row.event_nid, row.event_id));
                groups.extend(row.state_group);
            }
            _ => missing.push(id.clone()),
        }
    }
    if !missing.is_empty() || prev_events.is_empty() {
        return Ok(StateBefore::Missing(missing));
    }
    groups.sort_unstable();
    groups.dedup();
    let mut before = match groups.as_slice() {
        [group] => at_group(hs, conn, head, *group).await?,
        _ => {
            let mut states = Vec::with_capacity(groups.len());
            for group in &groups {
                states.push(group_state(hs, conn, *group).await?);
            }
            let resolved = resolve_states(hs, conn, head, &states).await?;
            with_snapshot(conn, head, resolved).await?
        }
    };
    before.prev_events = prevs;
    Ok(StateBefore::Known(before))
}

/// The room's head after an event stored off the extremities, on `after` (the state after it):
/// the resolution of `head`'s state with `after`'s.
pub async fn resolve_heads(
    hs: &Homeserver,
    conn: &mut Conn,
    head: &RoomHead,
    after: &RoomHead,
) -> Result<RoomHead> {
    let resolved = resolve_states(hs, conn, head, &[(*head.state).clone(), (*after.state).clone()]).await?;
    if resolved == *after.state {
        return Ok(after.clone());
    }
    if resolved == *head.state {
        return Ok(head.clone());
    }
    with_snapshot(conn, head, resolved).await
}

/// Brings the `current_state` table from `old`'s state to `new`'s (`position`: the event that
/// caused the change, for the membership runs `current_state` keeps).
pub async fn update_current_state(
    hs: &Homeserver,
    tx: &mut WriteTx,
    old: &RoomHead,
    new: &RoomHead,
    position: (i64, i64),
) -> Result<()> {
    if Arc::ptr_eq(&old.state, &new.state) {
        return Ok(());
    }
    // Memberships may move without their own events: unread counts from below start again.
    tx.note_unread(UnreadNote::Barrier(new.room_id.clone(), position.1));
    // The entries that differ (the maps share what did not change, which the diff skips).
    let mut changed = Vec::new();
    let mut removed = Vec::new();
    for item in old.state.diff(&new.state) {
        match item {
            DiffItem::Add(key, (nid, id)) | DiffItem::Update { new: (key, (nid, id)), .. } => {
                changed.push((key, *nid, id.as_str()));
            }
            DiffItem::Remove(key, _) => removed.push(key),
        }
    }
    // Loaded and written a few hundred at a time: a join through another server brings the
    // room's whole state.
    let ids: Vec<&str> = changed.iter().map(|(_, _, id)| *id).collect();
    let pdus = auth::load(hs, tx, new, &ids).await?;
    let mut memberships = Vec::with_capacity(changed.len());
    for (_, _, id) in &changed {
        let pdu = OwnedEventId::try_from(*id)
            .ok()
            .and_then(|id| pdus.get(&id))
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("state event {id} not stored")))?;
        memberships.push(append::membership_of(pdu));
    }
    let entries: Vec<state::CurrentEntry<'_>> = changed
        .iter()
        .zip(&memberships)
        .map(|(((kind, key), nid, _), membership)| state::CurrentEntry {
            kind,
            state_key: key,
            position: (*nid, position.1),
            membership: membership.as_deref(),
        })
        .collect();
    state::set_current_many(tx, &new.room_id, &entries).await?;
    for (kind, key) in removed {
        state::delete_current(&mut **tx, &new.room_id, kind, key).await?;
    }
    Ok(())
}

/// `head` with the state of `group`.
async fn at_group(hs: &Homeserver, conn: &mut Conn, head: &RoomHead, group: i64) -> Result<RoomHead> {
    let state = group_state(hs, conn, group).await?;
    Ok(RoomHead {
        depth: 0,
        state_group: Some(group),
        chain_len: state::chain_len(conn, group).await?,
        state: Arc::new(state),
        ..head.clone()
    })
}

/// `head` with `state`, written as a new full snapshot.
async fn with_snapshot(conn: &mut Conn, head: &RoomHead, state: StateMap) -> Result<RoomHead> {
    let group = snapshot(conn, &head.room_id, &state).await?;
    Ok(RoomHead { depth: 0, state_group: Some(group), chain_len: 0, state: Arc::new(state), ..head.clone() })
}

/// Writes `state` as a full snapshot group; returns its ID.
pub async fn snapshot(conn: &mut Conn, room_id: &RoomId, state: &StateMap) -> Result<i64> {
    let keys: Vec<(&str, &str)> = state.keys().map(|(kind, key)| (kind.as_str(), key.as_str())).collect();
    let key_nids = state::intern_keys(conn, &keys).await?;
    let entries: Vec<(i64, i64)> = key_nids.into_iter().zip(state.values().map(|(nid, _)| *nid)).collect();
    Ok(state::insert_group(conn, room_id, None, &entries).await?)
}

async fn group_state(hs: &Homeserver, conn: &mut Conn, group: i64) -> Result<StateMap> {
    Ok(hs
        .room_cache()
        .state_group(conn, group)
        .await?
        .iter()
        .map(|e| ((e.kind.clone(), e.state_key.clone()), (e.event_nid, e.event_id.clone())))
        .collect())
}

/// State resolution v2 over `states`, loading the events they name and their auth chains.
async fn resolve_states(
    hs: &Homeserver,
    conn: &mut Conn,
    head: &RoomHead,
    states: &[StateMap],
) -> Result<StateMap> {
    let mut nids: HashMap<String, i64> = HashMap::new();
    let mut maps = Vec::with_capacity(states.len());
    for state in states {
        let mut map = state_res::StateMap::new();
        for ((kind, key), (nid, id)) in state {
            nids.insert(id.clone(), *nid);
            let id = OwnedEventId::try_from(id.as_str())
                .map_err(|e| Error::Internal(anyhow::anyhow!("stored event ID: {e}")))?;
            map.insert((StateEventType::from(kind.as_str()), key.clone()), id);
        }
        maps.push(map);
    }
    // Every event the states name and its auth chain.
    let mut events: HashMap<OwnedEventId, Pdu> = HashMap::new();
    let mut seen: HashSet<OwnedEventId> = HashSet::new();
    let mut todo: Vec<OwnedEventId> = maps.iter().flat_map(|m| m.values().cloned()).collect();
    while !todo.is_empty() {
        todo.retain(|id| seen.insert(id.clone()));
        let ids: Vec<&str> = todo.iter().map(|id| id.as_str()).collect();
        let loaded = auth::load(hs, conn, head, &ids).await?;
        todo = loaded.values().flat_map(|pdu| pdu.auth_events.iter().cloned()).collect();
        events.extend(loaded.into_iter().map(|(id, pdu)| (id, (*pdu).clone())));
    }
    let rules = head.rules.clone();
    let resolved = tokio::task::spawn_blocking(move || resolve::resolve(&rules, &maps, &events))
        .await
        .map_err(|e| Error::Internal(e.into()))?
        .map_err(|e| Error::Internal(anyhow::anyhow!("resolving the state of {}: {e}", head.room_id)))?;
    let mut state = StateMap::new();
    for ((kind, key), id) in resolved {
        let nid = match nids.get(id.as_str()) {
            Some(nid) => *nid,
            None => events::get(&mut *conn, id.as_str())
                .await?
                .map(|row| row.event_nid)
                .ok_or_else(|| Error::Internal(anyhow::anyhow!("resolved state names unknown {id}")))?,
        };
        state.insert((kind.to_string(), key), (nid, id.to_string()));
    }
    Ok(state)
}

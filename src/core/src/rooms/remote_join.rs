//! Storing a room joined through another server (spec: Server-Server API › Joining Rooms): the
//! resident server's `send_join` answer gives the room's state before the join and its auth
//! chain. Those their own auth events authorise are stored as outliers (events in no timeline),
//! the state as a full snapshot, and the join event on top of it as the first event of the
//! room's timeline here.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use ruma::{
    CanonicalJsonObject, EventId, OwnedEventId, OwnedRoomId, RoomVersionId, ServerName,
    events::TimelineEventType, room_version_rules::AuthorizationRules,
};

use super::{
    Pdu, RoomHead,
    append::persist,
    auth, build, fork, gap,
    head::{StateMap, rules_for},
};
use crate::{
    Error, Homeserver, Result,
    storage::{WriteTx, backfill, events, rooms},
    time::now_ms,
};

/// Signs an event template a resident server handed out (`make_join`, `make_leave`) for a
/// room of `version`: content hash, our signature, event ID.
pub fn sign_template(
    hs: &Homeserver,
    version: &RoomVersionId,
    mut object: CanonicalJsonObject,
) -> Result<Pdu> {
    let room_id = object
        .get("room_id")
        .and_then(|id| id.as_str())
        .and_then(|id| OwnedRoomId::try_from(id).ok())
        .ok_or_else(|| Error::bad_json("The template has no room_id"))?;
    let head = RoomHead::empty(room_id.clone(), version.clone())?;
    // What the resident server may have signed or hashed is replaced.
    object.remove("signatures");
    object.remove("hashes");
    let (event_id, _) = build::hash_and_sign(hs, &head, &mut object)?;
    Pdu::from_canonical(event_id, object, Some(&room_id)).map_err(Error::bad_json)
}

/// Stores `join` (our user's join, as the resident server `via` returned it) with `state`, the
/// room's state before it, and `auth_chain`. Signatures and hashes were checked by the caller;
/// the join must be authorised by that state (403 otherwise). A room new here is recorded for
/// backfill (`rooms::backfill`), with `via` as the first server to ask.
pub async fn persist_join(
    hs: &Homeserver,
    via: &ServerName,
    version: &RoomVersionId,
    join: &Pdu,
    state: &[Pdu],
    auth_chain: &[Pdu],
) -> Result<()> {
    let room_id = &join.room_id;
    let _lock = hs.room_locks().lock(room_id).await;
    let mut tx = hs.db().begin().await?;
    let known = rooms::version(&mut *tx, room_id).await?;
    if known.as_ref().is_some_and(|known| known != version) {
        return Err(Error::bad_request("The room's version changed"));
    }
    let old = match known {
        Some(_) => RoomHead::load(&mut tx, room_id).await?,
        None => RoomHead::empty(room_id.clone(), version.clone())?,
    };

    let authorised = authorised(&old.rules.authorization, auth_chain.iter().chain(state), HashMap::new());
    let keep = |pdus: &[Pdu]| -> Vec<Pdu> {
        pdus.iter().filter(|pdu| authorised.contains(&pdu.event_id)).cloned().collect()
    };
    let (state, auth_chain) = (keep(state), keep(auth_chain));
    let (map, all) = store_outliers(&mut tx, &old, &state, &auth_chain, &join.event_id).await?;
    let create = map
        .get(&("m.room.create".to_owned(), String::new()))
        .and_then(|(_, id)| all.get(id.as_str()))
        .filter(|create| create.kind == TimelineEventType::RoomCreate)
        .ok_or_else(|| Error::bad_request("The room's state has no valid create event"))?
        .clone();
    let created_as =
        create.content_value().get("room_version").and_then(|v| v.as_str()).unwrap_or("1").to_owned();
    if created_as != version.as_str() {
        return Err(Error::bad_request("The room's create event names another room version"));
    }

    // The join must be authorised by the state it claims to follow.
    let mut head = RoomHead {
        room_id: room_id.clone(),
        version: version.clone(),
        rules: rules_for(version)?,
        prev_events: Vec::new(),
        depth: 0,
        state_group: None,
        chain_len: 0,
        state: Arc::new(map),
    };
    let state_events: HashMap<OwnedEventId, Arc<Pdu>> = state
        .iter()
        .filter_map(|pdu| Some((pdu.event_id.clone(), all.get(&pdu.event_id)?.clone())))
        .collect();
    auth::check(&head.rules.authorization, join, &all, &auth::by_key(&state_events)).map_err(|reason| {
        Error::forbidden(format!("The join is not authorised by the room's state: {reason}"))
    })?;

    if known.is_none() {
        rooms::insert(&mut tx, room_id, version, &create.sender, now_ms()).await?;
        let visibility = head.state_event_id("m.room.history_visibility", "");
        backfill::insert(&mut *tx, room_id, via.as_str(), visibility).await?;
    }
    head.state_group = Some(fork::snapshot(&mut tx, room_id, &head.state).await?);
    // Members of other servers joined before anything this server counts (push counts only
    // look at local members' runs of `join`, which the join event below starts).
    fork::update_current_state(hs, &mut tx, &old, &head, (0, 0)).await?;
    // A room known here: what its servers wrote while no local user was in it is missing below
    // the join, and gets room in the timeline for when a local user pages back to it.
    let block = match known {
        Some(_) => gap::reserve(&mut tx, join).await?,
        None => None,
    };
    let position = persist(hs, &mut tx, &mut head, join).await?;
    if let Some(block) = block {
        gap::record(&mut tx, join, position, block).await?;
    }
    tx.commit().await?;
    hs.room_cache().set_head(head);
    Ok(())
}

/// Of `candidates`, the events their own auth events authorise (spec: Checks performed on
/// receipt of a PDU, applied to a room's state and auth chain as another server handed them
/// over: a `send_join` answer, the state at an event): taken oldest first, an event is dropped
/// when an auth event of it is neither in `known` (events this server holds, not rejected) nor
/// among the candidates kept, or the auth rules refuse it on them. Without a valid create event
/// nothing is kept.
pub(super) fn authorised<'a>(
    rules: &AuthorizationRules,
    candidates: impl IntoIterator<Item = &'a Pdu>,
    known: HashMap<OwnedEventId, Arc<Pdu>>,
) -> HashSet<OwnedEventId> {
    let mut events: Vec<&Pdu> = candidates.into_iter().collect();
    events.sort_by_key(|pdu| pdu.depth);
    let mut create: Option<Arc<Pdu>> =
        known.values().find(|pdu| pdu.kind == TimelineEventType::RoomCreate).cloned();
    let mut kept = known;
    let mut taken = HashSet::new();
    for pdu in events {
        if taken.contains(&pdu.event_id) {
            continue;
        }
        let mut auth: HashMap<OwnedEventId, Arc<Pdu>> = HashMap::new();
        for id in &pdu.auth_events {
            if let Some(event) = kept.get(id) {
                auth.insert(id.clone(), event.clone());
            }
        }
        if auth.len() < pdu.auth_events.len() {
            tracing::info!(event_id = %pdu.event_id, "dropping a fetched event: its auth events were");
            continue;
        }
        // The create event is every event's auth event, cited or not (v12).
        if let Some(create) = &create {
            auth.insert(create.event_id.clone(), create.clone());
        }
        match auth::check(rules, pdu, &auth, &auth::by_key(&auth)) {
            Ok(()) => {
                let pdu = Arc::new(pdu.clone());
                if pdu.kind == TimelineEventType::RoomCreate && create.is_none() {
                    create = Some(pdu.clone());
                }
                taken.insert(pdu.event_id.clone());
                kept.insert(pdu.event_id.clone(), pdu);
            }
            Err(reason) => {
                tracing::info!(event_id = %pdu.event_id, %reason, "dropping an unauthorised fetched event");
            }
        }
    }
    taken
}

/// Stores the events of `state` and `auth_chain` this server lacks (`skip` aside) as outliers;
/// returns the state map of `state` and every event by ID. Known events are looked up and new
/// ones written a few hundred per statement: a room's whole state can be ten thousand events.
pub(super) async fn store_outliers(
    tx: &mut WriteTx,
    head: &RoomHead,
    state: &[Pdu],
    auth_chain: &[Pdu],
    skip: &EventId,
) -> Result<(StateMap, HashMap<OwnedEventId, Arc<Pdu>>)> {
    let mut all: HashMap<OwnedEventId, Arc<Pdu>> = HashMap::new();
    for pdu in auth_chain.iter().chain(state) {
        if pdu.room_id == head.room_id && pdu.event_id != skip {
            all.entry(pdu.event_id.clone()).or_insert_with(|| Arc::new(pdu.clone()));
        }
    }
    let ids: Vec<&str> = all.keys().map(|id| id.as_str()).collect();
    let mut nids: HashMap<String, i64> =
        events::get_by_ids(tx, &ids).await?.into_iter().map(|row| (row.event_id, row.event_nid)).collect();
    let new: Vec<(&Pdu, String)> = all
        .values()
        .filter(|pdu| !nids.contains_key(pdu.event_id.as_str()))
        .map(|pdu| Ok((&**pdu, serde_json::to_string(&pdu.json).map_err(|e| Error::Internal(e.into()))?)))
        .collect::<Result<_>>()?;
    let kinds: Vec<String> = new.iter().map(|(pdu, _)| pdu.kind.to_string()).collect();
    let rows: Vec<events::NewEvent<'_>> = new
        .iter()
        .zip(&kinds)
        .map(|((pdu, json), kind)| events::NewEvent {
            event_id: pdu.event_id.as_str(),
            room_id: &pdu.room_id,
            kind,
            state_key: pdu.state_key.as_deref(),
            sender: pdu.sender.as_str(),
            depth: i64::from(pdu.depth),
            origin_server_ts: i64::from(pdu.origin_server_ts.get()),
            stream_ordering: None,
            // Outliers have no state after them (`store`'s convention for them).
            state_group: Some(0),
            json,
        })
        .collect();
    nids.extend(events::insert_outliers(tx, &rows).await?);
    let mut map = StateMap::new();
    for pdu in state {
        if let (Some(key), Some(nid)) = (&pdu.state_key, nids.get(pdu.event_id.as_str())) {
            map.insert((pdu.kind.to_string(), key.clone()), (*nid, pdu.event_id.to_string()));
        }
    }
    Ok((map, all))
}

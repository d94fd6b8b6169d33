//! Authorising events against the auth rules of their room version (ruma-state-res).

use std::{collections::HashMap, sync::Arc};

use ruma::{OwnedEventId, events::StateEventType, room_version_rules::AuthorizationRules, state_res};

use super::{Pdu, RoomHead};
use crate::{
    Error, Homeserver, Result,
    storage::{Conn, events},
};

/// Checks a locally built event against the state in `head` (the state before it).
/// Failure is 403 `M_FORBIDDEN` naming the rule that failed.
pub async fn check_local(hs: &Homeserver, conn: &mut Conn, head: &RoomHead, pdu: &Pdu) -> Result<()> {
    let mut wanted: Vec<&str> = pdu.auth_events.iter().map(|id| id.as_str()).collect();
    if let Some(create) = head.state_event_id("m.room.create", "") {
        wanted.push(create);
    }
    let auth_events = load(hs, conn, head, &wanted).await?;
    check(&head.rules.authorization, pdu, &auth_events, &by_key(&auth_events))
        .map_err(|reason| Error::forbidden(format!("Event not authorised: {reason}")))
}

/// State events by `(type, state_key)`.
pub type ByKey<'a> = HashMap<(StateEventType, String), &'a Pdu>;

/// Indexes the state events among `events` by `(type, state_key)`.
pub fn by_key(events: &HashMap<OwnedEventId, Arc<Pdu>>) -> ByKey<'_> {
    events.values().filter_map(|e| Some(((e.kind.to_string().into(), e.state_key.clone()?), &**e))).collect()
}

/// Runs the auth rules: the state-independent ones over `auth_events` (which must hold the
/// event's auth events and the create event), the state-dependent ones against `state`.
pub fn check(
    rules: &AuthorizationRules,
    pdu: &Pdu,
    auth_events: &HashMap<OwnedEventId, Arc<Pdu>>,
    state: &ByKey<'_>,
) -> std::result::Result<(), String> {
    state_res::check_state_independent_auth_rules(rules, pdu, |id| auth_events.get(id).map(|e| &**e))
        .and_then(|()| {
            state_res::check_state_dependent_auth_rules(rules, pdu, |kind, key| {
                state.get(&(kind.clone(), key.to_owned())).copied()
            })
        })
}

/// Loads events of the room by ID.
pub async fn load(
    hs: &Homeserver,
    conn: &mut Conn,
    head: &RoomHead,
    ids: &[&str],
) -> Result<HashMap<OwnedEventId, Arc<Pdu>>> {
    let mut found = HashMap::with_capacity(ids.len());
    let mut missing = Vec::new();
    for id in ids {
        match OwnedEventId::try_from(*id).ok().and_then(|id| hs.room_cache().event(&id)) {
            Some(pdu) => {
                found.insert(pdu.event_id.clone(), pdu);
            }
            None => missing.push(*id),
        }
    }
    // In a few statements: a `send_join` answer loads the whole state of the room.
    for row in events::get_by_ids(conn, &missing).await? {
        let id = &row.event_id;
        let event_id = OwnedEventId::try_from(row.event_id.as_str())
            .map_err(|e| Error::Internal(anyhow::anyhow!("stored event ID: {e}")))?;
        let pdu = Pdu::from_stored(event_id.clone(), &row.json, &head.room_id)
            .map_err(|e| Error::Internal(anyhow::anyhow!("stored event {id}: {e}")))?;
        let pdu = Arc::new(pdu);
        hs.room_cache().put_event(pdu.clone());
        found.insert(event_id, pdu);
    }
    Ok(found)
}

//! The resident server's side of membership over federation (spec: Server-Server API › Joining
//! Rooms, Leaving Rooms): `make_*` hands out an event template built on the room's head,
//! `send_*` receives the signed event and answers with the room's state and auth chain.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use http::StatusCode;
use ruma::{
    CanonicalJsonObject, EventId, OwnedEventId, RoomId, RoomVersionId, UserId, api::error::ErrorKind,
    events::TimelineEventType,
};
use serde_json::json;

use super::{
    NewEvent, Pdu, RoomHead, auth, build,
    fork::{self, StateBefore},
    remote::{self, Received},
};
use crate::{Error, Homeserver, Result, storage::Conn};

/// An `m.room.member` template for `user` with `membership` on top of the room's head, and the
/// room's version. 404 for rooms this server is not in, 400 `M_INCOMPATIBLE_ROOM_VERSION` when
/// the asking server does not support the version, 403 when the auth rules would refuse it.
pub async fn template(
    hs: &Homeserver,
    room_id: &RoomId,
    user: &UserId,
    membership: &str,
    supported: Option<&[RoomVersionId]>,
) -> Result<(RoomVersionId, CanonicalJsonObject)> {
    let mut conn = hs.db().pool().acquire().await?;
    let head = RoomHead::current(hs, &mut conn, room_id).await?;
    if supported.is_some_and(|versions| !versions.contains(&head.version)) {
        return Err(Error::matrix(
            StatusCode::BAD_REQUEST,
            ErrorKind::IncompatibleRoomVersion(ruma::api::error::IncompatibleRoomVersionErrorData::new(
                head.version.clone(),
            )),
            "Your server does not support this room's version",
        ));
    }
    if !super::membership::has_local_member(hs, room_id).await? {
        return Err(Error::not_found("This server is not in the room"));
    }
    let event =
        NewEvent::state(TimelineEventType::RoomMember, user.as_str(), json!({ "membership": membership }));
    let template = build::template(&head, user, &event)?;
    // Refuse early what the auth rules would reject once signed.
    let placeholder = OwnedEventId::try_from("$template").map_err(|e| Error::Internal(e.into()))?;
    let pdu =
        Pdu::from_canonical(placeholder, template.object.clone(), Some(room_id)).map_err(Error::bad_json)?;
    auth::check_local(hs, &mut conn, &head, &pdu).await?;
    Ok((head.version.clone(), template.object))
}

/// Receives a signed `m.room.member` event with `membership` for its own sender (send_join,
/// send_leave), sent by `origin`, and sends it on to the room's other servers. 400 for anything
/// else; 403 when it is not authorised.
pub async fn receive(hs: &Homeserver, origin: &ruma::ServerName, pdu: &Pdu, membership: &str) -> Result<()> {
    let own = pdu.kind == TimelineEventType::RoomMember
        && pdu.state_key.as_deref() == Some(pdu.sender.as_str())
        && pdu.sender.server_name() == origin;
    let content = pdu.content_value();
    if !own || content.get("membership").and_then(|m| m.as_str()) != Some(membership) {
        return Err(Error::bad_json(format!("Expected a {membership} of the sending server's user")));
    }
    // The resident server passes the membership on to the other servers in the room (the
    // sending server may not know them).
    match remote::append_own(hs, pdu, Some(origin)).await? {
        Received::Accepted | Received::Known => Ok(()),
        Received::Rejected(reason) | Received::SoftFailed(reason) => Err(Error::forbidden(reason)),
        Received::Missing(ids) => Err(Error::bad_request(format!("Unknown prev or auth events: {ids:?}"))),
    }
}

/// The room's state before `event_id` and the auth chain of that state (and of the event), as
/// `send_join` and `/state` answer.
pub async fn state_before(
    hs: &Homeserver,
    room_id: &RoomId,
    event_id: &EventId,
) -> Result<(Vec<Arc<Pdu>>, Vec<Arc<Pdu>>)> {
    let mut conn = hs.db().pool().acquire().await?;
    let head = RoomHead::current(hs, &mut conn, room_id).await?;
    let event = super::remote_history::event_in_room(hs, room_id, event_id).await?;
    let before = match fork::state_before(hs, &mut conn, &head, &event.prev_events).await? {
        StateBefore::Known(before) => before,
        StateBefore::Missing(_) => return Err(Error::not_found("The state before this event is unknown")),
    };
    let ids: Vec<&str> = before.state.values().map(|(_, id)| id.as_str()).collect();
    let state: Vec<Arc<Pdu>> = auth::load(hs, &mut conn, &head, &ids).await?.into_values().collect();
    let roots: Vec<OwnedEventId> =
        state.iter().map(|pdu| pdu.event_id.clone()).chain(event.auth_events.iter().cloned()).collect();
    let chain = auth_chain(hs, &mut conn, &head, &roots).await?;
    Ok((state, chain))
}

/// The auth chain of `roots` in `room_id` (for `/event_auth`).
pub async fn auth_chain_of(
    hs: &Homeserver,
    room_id: &RoomId,
    roots: &[OwnedEventId],
) -> Result<Vec<Arc<Pdu>>> {
    let mut conn = hs.db().pool().acquire().await?;
    let head = RoomHead::current(hs, &mut conn, room_id).await?;
    let mut chain = auth_chain(hs, &mut conn, &head, roots).await?;
    let ids: Vec<&str> = roots.iter().map(|id| id.as_str()).collect();
    chain.extend(auth::load(hs, &mut conn, &head, &ids).await?.into_values());
    chain.sort_by(|a, b| a.event_id.cmp(&b.event_id));
    chain.dedup_by(|a, b| a.event_id == b.event_id);
    Ok(chain)
}

/// The auth chain of `roots`: every event reachable through `auth_events`, roots excluded
/// unless another root reaches them.
pub async fn auth_chain(
    hs: &Homeserver,
    conn: &mut Conn,
    head: &RoomHead,
    roots: &[OwnedEventId],
) -> Result<Vec<Arc<Pdu>>> {
    let mut chain: HashMap<OwnedEventId, Arc<Pdu>> = HashMap::new();
    let mut seen: HashSet<OwnedEventId> = HashSet::new();
    let mut todo: Vec<OwnedEventId> = {
        let ids: Vec<&str> = roots.iter().map(|id| id.as_str()).collect();
        auth::load(hs, conn, head, &ids).await?.values().flat_map(|pdu| pdu.auth_events.clone()).collect()
    };
    while !todo.is_empty() {
        todo.retain(|id| seen.insert(id.clone()));
        let ids: Vec<&str> = todo.iter().map(|id| id.as_str()).collect();
        let loaded = auth::load(hs, conn, head, &ids).await?;
        todo = loaded.values().flat_map(|pdu| pdu.auth_events.iter().cloned()).collect();
        chain.extend(loaded);
    }
    Ok(chain.into_values().collect())
}

/// The servers with members joined to the room now (ours included).
pub async fn servers_in_room(hs: &Homeserver, room_id: &RoomId) -> Result<Vec<String>> {
    let mut conn = hs.db().pool().acquire().await?;
    let mut servers: Vec<String> = crate::storage::device_lists::joined_members(&mut conn, room_id)
        .await?
        .iter()
        .map(|user| user.server_name().to_string())
        .collect();
    servers.sort_unstable();
    servers.dedup();
    Ok(servers)
}

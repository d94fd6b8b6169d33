//! Invites across servers (spec: Server-Server API › Inviting to a room): a local user inviting
//! a user of another server has that server countersign the invite first; an invite of a local
//! user to a room this server is not in is recorded with the stripped state it came with, so
//! `/sync` shows it, and so are the leave that rejects it and a knock made through another
//! server.

use std::sync::Arc;

use ruma::{
    CanonicalJsonObject, OwnedEventId, OwnedServerName, OwnedUserId, RoomId, RoomVersionId, UserId,
    events::TimelineEventType,
};
use serde_json::Value;

use super::{
    NewEvent, Pdu, RoomHead,
    append::{Standing, set_current, store},
    auth, build,
    remote::{self, Received},
};
use crate::{
    Error, Homeserver, Result,
    storage::{events, remote_invites, state},
};

/// The state types an invite shows of its room (spec: Client-Server API › Stripped state).
pub const STRIPPED_STATE: [&str; 7] = [
    "m.room.create",
    "m.room.join_rules",
    "m.room.name",
    "m.room.avatar",
    "m.room.canonical_alias",
    "m.room.encryption",
    "m.room.topic",
];

/// `sender` invites `target`, a user of another server, with `content`: the invite is built on
/// the room's head and authorised, countersigned by the target's server (which learns of it
/// that way), then appended and sent to the other servers in the room.
pub async fn invite(
    hs: &Homeserver,
    sender: &UserId,
    room_id: &RoomId,
    target: &UserId,
    content: Value,
) -> Result<OwnedEventId> {
    let Some(remote) = hs.remote_rooms() else {
        return Err(Error::forbidden("This server does not federate"));
    };
    let mut conn = hs.db().pool().acquire().await?;
    let head = RoomHead::current(hs, &mut conn, room_id).await?;
    let event = NewEvent::state(TimelineEventType::RoomMember, target.as_str(), content);
    let pdu = build::build(hs, &head, sender, &event)?;
    auth::check_local(hs, &mut conn, &head, &pdu).await?;
    let stripped = stripped_pdus(hs, &mut conn, &head, Some(sender)).await?;
    drop(conn);
    let signed = remote.invite(&pdu.json, &head.version, stripped).await?;
    let signed = Pdu::from_federation(signed, &head.rules).map_err(Error::bad_json)?;
    if signed.event_id != pdu.event_id {
        return Err(Error::Internal(anyhow::anyhow!("the invitee's server changed the invite")));
    }
    // The invitee's server has it already: it countersigned it.
    match remote::append_own(hs, &signed, Some(target.server_name())).await? {
        Received::Accepted | Received::Known => Ok(signed.event_id),
        Received::Rejected(reason) | Received::SoftFailed(reason) => Err(Error::forbidden(reason)),
        Received::Missing(_) => Err(Error::Internal(anyhow::anyhow!("the invite's prev events are gone"))),
    }
}

/// The stripped state PDUs of the room whose head is `head`, and `member`'s member event.
async fn stripped_pdus(
    hs: &Homeserver,
    conn: &mut crate::storage::Conn,
    head: &RoomHead,
    member: Option<&UserId>,
) -> Result<Vec<CanonicalJsonObject>> {
    let mut ids: Vec<&str> = STRIPPED_STATE.iter().filter_map(|kind| head.state_event_id(kind, "")).collect();
    ids.extend(member.and_then(|member| head.state_event_id("m.room.member", member.as_str())));
    Ok(auth::load(hs, conn, head, &ids).await?.into_values().map(|pdu| pdu.json.clone()).collect())
}

/// The room's stripped state, as PDUs (what `send_knock` answers), with `member`'s event.
pub async fn stripped_state(
    hs: &Homeserver,
    room_id: &RoomId,
    member: &UserId,
) -> Result<Vec<CanonicalJsonObject>> {
    let mut conn = hs.db().pool().acquire().await?;
    let head = RoomHead::current(hs, &mut conn, room_id).await?;
    stripped_pdus(hs, &mut conn, &head, Some(member)).await
}

/// Records `pdu`, a membership event for a local user of a room this server is not in (an
/// invite received over federation, the leave rejecting it, a knock) in a room of `version`, at
/// the next stream position and in the room's current state, with the `stripped` state an
/// invite or knock came with.
pub async fn record(hs: &Homeserver, version: &RoomVersionId, pdu: &Pdu, stripped: &[Value]) -> Result<()> {
    let target = pdu
        .state_key
        .as_deref()
        .and_then(|key| OwnedUserId::try_from(key).ok())
        .filter(|_| pdu.kind == TimelineEventType::RoomMember)
        .ok_or_else(|| Error::bad_json("Not a membership event"))?;
    let _lock = hs.room_locks().lock(&pdu.room_id).await;
    let mut tx = hs.db().begin().await?;
    if events::get(&mut *tx, pdu.event_id.as_str()).await?.is_some() {
        return Ok(());
    }
    let position = tx.next_stream_ordering();
    let mut head = RoomHead::empty(pdu.room_id.clone(), version.clone())?;
    let nid = store(hs, &mut tx, &mut head, pdu, Standing::Timeline(position)).await?;
    set_current(&mut tx, pdu, target.as_str(), (nid, position)).await?;
    let json = serde_json::to_string(stripped).map_err(|e| Error::Internal(e.into()))?;
    remote_invites::insert(&mut *tx, pdu.event_id.as_str(), &pdu.room_id, &json).await?;
    tx.commit().await?;
    if pdu.is_state() {
        hs.room_cache().put_event(Arc::new(pdu.clone()));
    }
    Ok(())
}

/// The server of whoever invited `user` to the room, if their current membership is an invite.
pub async fn inviter_server(
    hs: &Homeserver,
    room_id: &RoomId,
    user: &UserId,
) -> Result<Option<OwnedServerName>> {
    let pool = hs.db().pool();
    if state::membership(pool, room_id, user.as_str()).await?.as_deref() != Some("invite") {
        return Ok(None);
    }
    let Some(id) = state::current_event_id(pool, room_id, "m.room.member", user.as_str()).await? else {
        return Ok(None);
    };
    let Some(row) = events::get(pool, &id).await? else { return Ok(None) };
    let pdu = super::timeline::parse(&row, room_id)?;
    Ok(Some(pdu.sender.server_name().to_owned()))
}

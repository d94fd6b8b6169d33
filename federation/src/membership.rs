//! Membership over federation, the resident server's side (spec: Server-Server API › Joining
//! Rooms, Leaving Rooms): `make_join` / `make_leave` hand out a template, `send_join` /
//! `send_leave` (v2) take the signed event in; `send_join` answers with the room's state and
//! auth chain.

use hearth_core::{
    Error,
    rooms::{Pdu, remote_invite, remote_membership, server_acl},
};
use ruma::{
    CanonicalJsonObject, EventId, RoomId, ServerName, UserId,
    api::federation::membership::{
        RawStrippedState, create_join_event, create_knock_event, create_leave_event, prepare_join_event,
        prepare_knock_event, prepare_leave_event,
    },
};
use serde_json::value::RawValue;

use crate::{FedResult, FedRuma, Federation, ingest};

/// `GET /_matrix/federation/v1/make_join/{roomId}/{userId}`
/// <https://spec.matrix.org/latest/server-server-api/#get_matrixfederationv1make_joinroomiduserid>
pub async fn make_join(
    fed: Federation,
    req: FedRuma<prepare_join_event::v1::Request>,
) -> FedResult<prepare_join_event::v1::Response> {
    let body = req.body;
    own_user(&req.origin, &body.user_id)?;
    server_acl::check(fed.hs(), &body.room_id, &req.origin).await?;
    let (version, template) =
        remote_membership::template(fed.hs(), &body.room_id, &body.user_id, "join", Some(&body.ver)).await?;
    let mut response = prepare_join_event::v1::Response::new(to_raw(&template)?);
    response.room_version = Some(version);
    Ok(response)
}

/// `PUT /_matrix/federation/v2/send_join/{roomId}/{eventId}`
/// <https://spec.matrix.org/latest/server-server-api/#put_matrixfederationv2send_joinroomideventid>
pub async fn send_join(
    fed: Federation,
    req: FedRuma<create_join_event::v2::Request>,
) -> FedResult<create_join_event::v2::Response> {
    let body = req.body;
    server_acl::check(fed.hs(), &body.room_id, &req.origin).await?;
    let pdu = signed_event(&fed, &body.room_id, &body.event_id, &body.pdu).await?;
    remote_membership::receive(fed.hs(), &req.origin, &pdu, "join").await?;
    let (state, auth_chain) = remote_membership::state_before(fed.hs(), &body.room_id, &pdu.event_id).await?;
    let mut room_state = create_join_event::v2::RoomState::new();
    room_state.state = state.iter().map(|pdu| to_raw(&pdu.json)).collect::<Result<_, _>>()?;
    room_state.auth_chain = auth_chain.iter().map(|pdu| to_raw(&pdu.json)).collect::<Result<_, _>>()?;
    room_state.servers_in_room = Some(remote_membership::servers_in_room(fed.hs(), &body.room_id).await?);
    Ok(create_join_event::v2::Response::new(room_state))
}

/// `GET /_matrix/federation/v1/make_leave/{roomId}/{userId}`
/// <https://spec.matrix.org/latest/server-server-api/#get_matrixfederationv1make_leaveroomiduserid>
pub async fn make_leave(
    fed: Federation,
    req: FedRuma<prepare_leave_event::v1::Request>,
) -> FedResult<prepare_leave_event::v1::Response> {
    let body = req.body;
    own_user(&req.origin, &body.user_id)?;
    let (version, template) =
        remote_membership::template(fed.hs(), &body.room_id, &body.user_id, "leave", None).await?;
    Ok(prepare_leave_event::v1::Response::new(Some(version), to_raw(&template)?))
}

/// `PUT /_matrix/federation/v2/send_leave/{roomId}/{eventId}`
/// <https://spec.matrix.org/latest/server-server-api/#put_matrixfederationv2send_leaveroomideventid>
pub async fn send_leave(
    fed: Federation,
    req: FedRuma<create_leave_event::v2::Request>,
) -> FedResult<create_leave_event::v2::Response> {
    let body = req.body;
    let pdu = signed_event(&fed, &body.room_id, &body.event_id, &body.pdu).await?;
    remote_membership::receive(fed.hs(), &req.origin, &pdu, "leave").await?;
    Ok(create_leave_event::v2::Response::new())
}

/// `GET /_matrix/federation/v1/make_knock/{roomId}/{userId}`
/// <https://spec.matrix.org/latest/server-server-api/#get_matrixfederationv1make_knockroomiduserid>
pub async fn make_knock(
    fed: Federation,
    req: FedRuma<prepare_knock_event::v1::Request>,
) -> FedResult<prepare_knock_event::v1::Response> {
    let body = req.body;
    own_user(&req.origin, &body.user_id)?;
    server_acl::check(fed.hs(), &body.room_id, &req.origin).await?;
    let (version, template) =
        remote_membership::template(fed.hs(), &body.room_id, &body.user_id, "knock", Some(&body.ver)).await?;
    Ok(prepare_knock_event::v1::Response::new(version, to_raw(&template)?))
}

/// `PUT /_matrix/federation/v1/send_knock/{roomId}/{eventId}`
/// <https://spec.matrix.org/latest/server-server-api/#put_matrixfederationv1send_knockroomideventid>
pub async fn send_knock(
    fed: Federation,
    req: FedRuma<create_knock_event::v1::Request>,
) -> FedResult<create_knock_event::v1::Response> {
    let body = req.body;
    server_acl::check(fed.hs(), &body.room_id, &req.origin).await?;
    let pdu = signed_event(&fed, &body.room_id, &body.event_id, &body.pdu).await?;
    remote_membership::receive(fed.hs(), &req.origin, &pdu, "knock").await?;
    let stripped = remote_invite::stripped_state(fed.hs(), &body.room_id, &pdu.sender).await?;
    let state = stripped.iter().map(|o| to_raw(o).map(RawStrippedState::Pdu)).collect::<Result<_, _>>()?;
    Ok(create_knock_event::v1::Response::new(state))
}

/// A server may only ask templates for its own users (403).
fn own_user(origin: &ServerName, user: &UserId) -> Result<(), Error> {
    if user.server_name() == origin {
        Ok(())
    } else {
        Err(Error::forbidden("A server may only act for its own users"))
    }
}

/// Parses and verifies an event sent for `room_id` under `event_id` (400 when it is not that
/// event, 403 when its signatures fail).
async fn signed_event(
    fed: &Federation,
    room_id: &RoomId,
    event_id: &EventId,
    raw: &RawValue,
) -> Result<Pdu, Error> {
    let object: CanonicalJsonObject = serde_json::from_str(raw.get())
        .map_err(|e| Error::bad_json(format!("The event is not canonical JSON: {e}")))?;
    let rules = hearth_core::rooms::remote::rules(fed.hs(), room_id).await?;
    if ingest::event_id(&object, &rules).map_err(Error::bad_json)? != event_id {
        return Err(Error::bad_request("The event's ID does not match the path"));
    }
    let pdu = ingest::verify(fed, object, &rules).await.map_err(Error::forbidden)?;
    if pdu.room_id != room_id {
        return Err(Error::bad_request("The event is for another room"));
    }
    Ok(pdu)
}

/// Canonical JSON as a raw JSON value for a response.
pub(crate) fn to_raw(object: &CanonicalJsonObject) -> Result<Box<RawValue>, Error> {
    serde_json::value::to_raw_value(object).map_err(|e| Error::Internal(e.into()))
}

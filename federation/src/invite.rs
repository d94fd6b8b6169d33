//! Invites between servers (spec: Server-Server API › Inviting to a room, `PUT
//! /_matrix/federation/v2/invite`): countersigning invites of our users, and asking another
//! server to countersign an invite of its user.

use hearth_core::{
    Error, Result,
    rooms::{Pdu, head::ROOM_VERSIONS, membership, remote_invite},
};
use ruma::{
    CanonicalJsonObject, RoomVersionId, ServerName,
    api::{
        error::{ErrorKind, IncompatibleRoomVersionErrorData},
        federation::membership::{RawStrippedState, create_invite},
    },
    events::TimelineEventType,
    signatures::Verified,
};
use serde_json::Value;

use crate::{FedResult, FedRuma, Federation, ingest, membership::to_raw};

/// `PUT /_matrix/federation/v2/invite/{roomId}/{eventId}`
/// <https://spec.matrix.org/latest/server-server-api/#put_matrixfederationv2inviteroomideventid>
pub async fn invite(
    fed: Federation,
    req: FedRuma<create_invite::v2::Request>,
) -> FedResult<create_invite::v2::Response> {
    let body = req.body;
    if !ROOM_VERSIONS.contains(&body.room_version) {
        return Err(Error::matrix(
            http::StatusCode::BAD_REQUEST,
            ErrorKind::IncompatibleRoomVersion(IncompatibleRoomVersionErrorData::new(
                body.room_version.clone(),
            )),
            "This server does not support the room's version",
        )
        .into());
    }
    let rules = hearth_core::rooms::head::rules_for(&body.room_version)?;
    let object: CanonicalJsonObject = serde_json::from_str(body.event.get())
        .map_err(|e| Error::bad_json(format!("The invite is not JSON: {e}")))?;
    if ingest::event_id(&object, &rules).map_err(Error::bad_json)? != body.event_id {
        return Err(Error::bad_json("The event's ID does not match the path").into());
    }
    let pdu = ingest::verify(&fed, object, &rules).await.map_err(Error::forbidden)?;
    check_invite(&fed, &req.origin, &pdu, &body.room_id)?;

    let mut signed = pdu.json.clone();
    ruma::signatures::hash_and_sign_event(
        fed.hs().server_name().as_str(),
        fed.hs().signing_key(),
        &mut signed,
        &rules.redaction,
    )
    .map_err(|e| Error::Internal(anyhow::anyhow!("countersigning an invite: {e}")))?;
    // In a room one of our users is joined to, the invite also arrives as a PDU.
    if !membership::has_local_member(fed.hs(), &body.room_id).await? {
        let stripped: Vec<Value> = body.invite_room_state.iter().filter_map(stripped_event).collect();
        let pdu = Pdu::from_federation(signed.clone(), &rules).map_err(Error::bad_json)?;
        remote_invite::record(fed.hs(), &body.room_version, &pdu, &stripped).await?;
    }
    Ok(create_invite::v2::Response::new(to_raw(&signed)?))
}

/// An invite of one of our users, sent by a user of the asking server, for this room (400, 403).
fn check_invite(fed: &Federation, origin: &ServerName, pdu: &Pdu, room_id: &ruma::RoomId) -> Result<()> {
    let invitee = pdu.state_key.as_deref().and_then(|key| ruma::UserId::parse(key).ok());
    let is_invite = pdu.kind == TimelineEventType::RoomMember
        && pdu.content_value().get("membership").and_then(Value::as_str) == Some("invite");
    if !is_invite || pdu.room_id != room_id {
        return Err(Error::bad_json("Not an invite to this room"));
    }
    if invitee.is_none_or(|user| user.server_name() != fed.hs().server_name()) {
        return Err(Error::bad_json("The invitee is not a user of this server"));
    }
    if pdu.sender.server_name() != origin {
        return Err(Error::forbidden("The inviter is not a user of the sending server"));
    }
    Ok(())
}

/// A stripped state event as `/sync` shows it, from a full PDU or a legacy stripped event.
pub(crate) fn stripped_event(state: &RawStrippedState) -> Option<Value> {
    #[allow(deprecated)] // still accepted from servers older than Matrix 1.16
    let raw = match state {
        RawStrippedState::Pdu(raw) => raw.get(),
        RawStrippedState::Stripped(raw) => raw.json().get(),
        _ => return None,
    };
    serde_json::from_str(raw).ok()
}

/// Asks the invitee's server to countersign `invite` (an event of a room of `version`).
pub async fn countersign(
    fed: &Federation,
    invite: &CanonicalJsonObject,
    version: &RoomVersionId,
    stripped_state: Vec<CanonicalJsonObject>,
) -> Result<CanonicalJsonObject> {
    let rules = hearth_core::rooms::head::rules_for(version)?;
    let pdu = Pdu::from_federation(invite.clone(), &rules).map_err(Error::bad_json)?;
    let invitee = pdu
        .state_key
        .as_deref()
        .and_then(|key| ruma::UserId::parse(key).ok())
        .ok_or_else(|| Error::bad_json("An invite needs a user as state key"))?;
    let server = invitee.server_name();
    let stripped =
        stripped_state.iter().map(|o| to_raw(o).map(RawStrippedState::Pdu)).collect::<Result<_>>()?;
    let request = create_invite::v2::Request::new(
        pdu.room_id.clone(),
        pdu.event_id.clone(),
        version.clone(),
        to_raw(invite)?,
        stripped,
    );
    let answer = fed.client().send(server, request).await?;
    let signed: CanonicalJsonObject = serde_json::from_str(answer.event.get())
        .map_err(|e| Error::bad_json(format!("The countersigned invite is not JSON: {e}")))?;
    let countersigned = signed
        .get("signatures")
        .and_then(|s| s.as_object())
        .is_some_and(|signatures| signatures.contains_key(server.as_str()));
    let verified = fed.keys().verify_event(&signed, &rules).await;
    if !countersigned || !matches!(verified, Ok(Verified::All)) {
        return Err(Error::forbidden(format!("{server} did not countersign the invite")));
    }
    Ok(signed)
}

//! Redactions (spec: Client-Server API › Redactions; Room versions › Redactions): sending one,
//! the server's own permission check for local senders, and applying a stored redaction to its
//! target. The target's signed JSON is kept; clients are served its redacted form (`serve`).

use ruma::{DeviceId, EventId, OwnedEventId, RoomId, UserId, events::TimelineEventType};
use serde_json::json;

use super::{NewEvent, Pdu, RoomHead, power, timeline};
use crate::{
    Error, Homeserver, Result,
    storage::{Conn, events, redactions, relations, search},
};

/// Redacts `event_id` once per `(user, device, txn_id)`, as `PUT /redact` does.
#[allow(clippy::too_many_arguments)]
pub async fn redact(
    hs: &Homeserver,
    sender: &UserId,
    device_id: &DeviceId,
    room_id: &RoomId,
    event_id: &EventId,
    txn_id: &str,
    reason: Option<&str>,
) -> Result<OwnedEventId> {
    let mut content = json!({});
    if let Some(reason) = reason {
        content["reason"] = json!(reason);
    }
    let event = NewEvent {
        kind: TimelineEventType::RoomRedaction,
        state_key: None,
        content,
        redacts: Some(event_id.to_owned()),
    };
    timeline::send_with_txn(hs, sender, device_id, room_id, txn_id, &event).await
}

/// The check the auth rules leave to the sender's server. A redaction of another user's event
/// passes the auth rules whenever both senders share a server, so this server must refuse its
/// own users who lack the `redact` power level (403). An unknown target is 404 unless the
/// sender could redact anyone's event; a target in another room is 400.
pub async fn check_local(hs: &Homeserver, conn: &mut Conn, head: &RoomHead, pdu: &Pdu) -> Result<()> {
    let target_id = pdu.redacts.as_ref().ok_or_else(|| Error::bad_json("A redaction needs `redacts`"))?;
    let Some(row) = events::get(&mut *conn, target_id.as_str()).await? else {
        return if may_redact_others(hs, conn, head, &pdu.sender).await? {
            Ok(())
        } else {
            Err(Error::not_found("Event not found"))
        };
    };
    if row.room_id != head.room_id.as_str() {
        return Err(Error::bad_request("Cannot redact an event from another room"));
    }
    let target = timeline::parse(&row, &head.room_id)?;
    if target.sender == pdu.sender || may_redact_others(hs, conn, head, &pdu.sender).await? {
        Ok(())
    } else {
        Err(Error::forbidden("You don't have permission to redact this event"))
    }
}

async fn may_redact_others(hs: &Homeserver, conn: &mut Conn, head: &RoomHead, user: &UserId) -> Result<bool> {
    Ok(power::levels(hs, conn, head).await?.user_can_redact_event_of_other(user))
}

/// Applies a just-stored redaction to its target (part of persisting it), when the room
/// version's rules allow: the target is known, in the same room, and either sent from the
/// redaction sender's server or the redaction sender holds the `redact` power level at `head`
/// (the state before the redaction). The target's relation to its parent is broken and it
/// leaves the search index.
pub async fn apply(hs: &Homeserver, conn: &mut Conn, head: &RoomHead, pdu: &Pdu) -> Result<()> {
    let Some(target_id) = &pdu.redacts else { return Ok(()) };
    let Some(row) = events::get(&mut *conn, target_id.as_str()).await? else { return Ok(()) };
    if row.room_id != pdu.room_id.as_str() || row.event_id == pdu.event_id.as_str() {
        return Ok(());
    }
    let target = timeline::parse(&row, &pdu.room_id)?;
    let same_server = target.sender.server_name() == pdu.sender.server_name();
    if !same_server && !may_redact_others(hs, conn, head, &pdu.sender).await? {
        return Ok(());
    }
    redactions::mark(conn, row.event_nid, pdu.event_id.as_str()).await?;
    if let Some(position) = row.stream_ordering {
        search::remove(conn, hs.db().backend(), position).await?;
    }
    relations::remove(conn, row.event_nid).await?;
    Ok(())
}

//! Reading and writing a room's timeline: sending with transaction IDs, single events, state,
//! and the stream tokens pagination uses. These reads do not apply history visibility: what a
//! user may read goes through [`super::history`] and [`super::state_view`].

use ruma::{DeviceId, EventId, OwnedEventId, OwnedRoomId, RoomId, UserId};
use serde_json::Value;

use super::{NewEvent, Pdu, RoomHead, append::RoomWriter};
use crate::{
    Error, Homeserver, Result,
    storage::{events, rooms, state, txns},
};

/// A position between events in the global stream: everything at or below `n` is before it.
/// Serialised as `s<n>`; sync tokens extend it with more `_`-separated parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamToken(pub i64);

impl StreamToken {
    /// Parses `s<n>` (ignoring any further `_` parts); `M_INVALID_PARAM` otherwise.
    pub fn parse(token: &str) -> Result<StreamToken> {
        token
            .strip_prefix('s')
            .and_then(|rest| rest.split('_').next())
            .and_then(|n| n.parse().ok())
            .map(StreamToken)
            .ok_or_else(|| Error::invalid_param("Invalid pagination token"))
    }
}

impl std::fmt::Display for StreamToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s{}", self.0)
    }
}

/// Sends a message-like or state event once per `(user, device, endpoint, txn_id)`: a repeated
/// transaction returns the first event's ID and sends nothing.
pub async fn send_with_txn(
    hs: &Homeserver,
    sender: &UserId,
    device_id: &DeviceId,
    room_id: &RoomId,
    txn_id: &str,
    event: &NewEvent,
) -> Result<OwnedEventId> {
    // Transaction IDs are unique per device and endpoint (spec: Transaction identifiers): the
    // scope is the endpoint with its path parameters, as `PUT /redact/{eventId}` or
    // `PUT /send/{eventType}` in this room.
    // Sending is activity (spec: Presence, `last_active_ago`).
    crate::presence::active(hs, sender).await?;
    let scope = match (&event.redacts, event.kind == ruma::events::TimelineEventType::RoomRedaction) {
        (Some(target), true) => format!("redact {room_id} {target}"),
        _ => format!("send {room_id} {}", event.kind),
    };
    if event.state_key.is_none() && event.kind != ruma::events::TimelineEventType::RoomRedaction {
        return super::send_queue::send(
            hs,
            room_id.to_owned(),
            sender.to_owned(),
            device_id.to_owned(),
            scope,
            txn_id.to_owned(),
            event.clone(),
        )
        .await;
    }
    let mut writer = RoomWriter::open(hs, room_id).await?;
    if let Some(existing) = txns::get(&mut *writer.tx, sender, device_id, &scope, txn_id).await? {
        return OwnedEventId::try_from(existing)
            .map_err(|e| Error::Internal(anyhow::anyhow!("stored event ID: {e}")));
    }
    let pdu = writer.append(sender, event).await?;
    txns::insert(&mut *writer.tx, sender, device_id, &scope, txn_id, pdu.event_id.as_str()).await?;
    writer.commit().await?;
    Ok(pdu.event_id)
}

/// Fails with 403 unless `user` may read the room now: a current member, or anyone when the
/// history is world-readable. (Events and state are served through [`super::history`] and
/// [`super::state_view`], which also let a user who left read up to their leave.)
pub async fn ensure_can_read(hs: &Homeserver, user: &UserId, room_id: &RoomId) -> Result<()> {
    if rooms::version(hs.db().pool(), room_id).await?.is_none() {
        return Err(Error::forbidden("You are not in this room"));
    }
    if state::membership(hs.db().pool(), room_id, user.as_str()).await?.as_deref() == Some("join") {
        return Ok(());
    }
    if history_visibility(hs, room_id).await?.as_deref() == Some("world_readable") {
        return Ok(());
    }
    Err(Error::forbidden("You are not in this room"))
}

async fn history_visibility(hs: &Homeserver, room_id: &RoomId) -> Result<Option<String>> {
    let Some(pdu) = current_state_event(hs, room_id, "m.room.history_visibility", "").await? else {
        return Ok(None);
    };
    Ok(pdu.content_value().get("history_visibility").and_then(Value::as_str).map(str::to_owned))
}

/// The current state event at `(type, state_key)`.
pub async fn current_state_event(
    hs: &Homeserver,
    room_id: &RoomId,
    kind: &str,
    state_key: &str,
) -> Result<Option<Pdu>> {
    match state::current_event_id(hs.db().pool(), room_id, kind, state_key).await? {
        Some(id) => event_by_id(hs, room_id, &id).await,
        None => Ok(None),
    }
}

/// Every current state event of a room.
pub async fn current_state(hs: &Homeserver, room_id: &RoomId) -> Result<Vec<Pdu>> {
    let mut conn = hs.db().pool().acquire().await?;
    let head = RoomHead::load(&mut conn, room_id).await?;
    let nids: Vec<i64> = head.state.values().map(|(nid, _)| *nid).collect();
    let rows = events::get_by_nids(&mut conn, &nids).await?;
    rows.into_iter().map(|row| parse(&row, room_id)).collect()
}

/// One event of a room by ID.
pub async fn event_by_id(hs: &Homeserver, room_id: &RoomId, event_id: &str) -> Result<Option<Pdu>> {
    match events::get(hs.db().pool(), event_id).await? {
        Some(row) if row.room_id == room_id.as_str() => parse(&row, room_id).map(Some),
        _ => Ok(None),
    }
}

/// Where a timeline event is: its room and its position in the global stream. `None` for an
/// unknown event or an outlier. Says nothing about who may see it: callers check that.
pub async fn locate(hs: &Homeserver, event_id: &EventId) -> Result<Option<(OwnedRoomId, i64)>> {
    let Some(row) = events::get(hs.db().pool(), event_id.as_str()).await? else {
        return Ok(None);
    };
    let room_id = OwnedRoomId::try_from(row.room_id.as_str())
        .map_err(|e| Error::Internal(anyhow::anyhow!("stored room ID: {e}")))?;
    Ok(row.stream_ordering.map(|position| (room_id, position)))
}

/// Parses a stored event row of `room_id`.
pub(crate) fn parse(row: &events::StoredEvent, room_id: &RoomId) -> Result<Pdu> {
    let event_id = OwnedEventId::try_from(row.event_id.as_str())
        .map_err(|e| Error::Internal(anyhow::anyhow!("stored event ID: {e}")))?;
    Pdu::from_stored(event_id, &row.json, room_id)
        .map_err(|e| Error::Internal(anyhow::anyhow!("stored event {}: {e}", row.event_id)))
}

/// The current `m.room.member` events of a room.
pub async fn members(hs: &Homeserver, room_id: &RoomId) -> Result<Vec<Pdu>> {
    let mut state = current_state(hs, room_id).await?;
    state.retain(|pdu| pdu.kind == ruma::events::TimelineEventType::RoomMember);
    Ok(state)
}

/// The event closest to `ts` (spec: `GET /timestamp_to_event`): the last sent at or before it
/// when `backwards`, else the first at or after it; 404 `M_NOT_FOUND` when there is none.
pub async fn event_near_ts(
    hs: &Homeserver,
    user: &UserId,
    room_id: &RoomId,
    ts: i64,
    backwards: bool,
) -> Result<(OwnedEventId, i64)> {
    super::history::readable(hs, user, room_id).await?;
    let (event_id, ts) = events::closest_to_ts(hs.db().pool(), room_id, ts, backwards)
        .await?
        .ok_or_else(|| Error::not_found("No event found in that direction"))?;
    let event_id = OwnedEventId::try_from(event_id)
        .map_err(|e| Error::Internal(anyhow::anyhow!("stored event ID: {e}")))?;
    Ok((event_id, ts))
}

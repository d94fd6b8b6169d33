//! Building a local PDU: prev_events from the room's extremities, auth_events selected per the
//! spec, depth, content hash, our ed25519 signature and the reference-hash event ID.

use http::StatusCode;
use ruma::{
    CanonicalJsonObject, CanonicalJsonValue, OwnedEventId, UserId, api::error::ErrorKind,
    events::TimelineEventType, signatures,
};
use serde_json::{Value, value::to_raw_value};

use super::{NewEvent, Pdu, RoomHead};
use crate::{Error, Homeserver, Result, time::now_ms};

/// Largest PDU the spec allows, in bytes of canonical JSON.
pub const MAX_PDU_BYTES: usize = 65_536;

/// Builds and signs a PDU from `sender` on top of `head`.
pub fn build(hs: &Homeserver, head: &RoomHead, sender: &UserId, event: &NewEvent) -> Result<Pdu> {
    let Template { mut object, raw_content, auth_ids, prev_ids, origin_server_ts } =
        template(head, sender, event)?;
    let (event_id, room_id) = hash_and_sign(hs, head, &mut object)?;
    let ts = ruma::MilliSecondsSinceUnixEpoch(ruma::UInt::try_from(origin_server_ts).unwrap_or_default());
    Ok(Pdu::from_parts(
        event_id,
        room_id,
        object.contains_key("room_id"),
        sender.to_owned(),
        ts,
        event.kind.clone(),
        raw_content,
        event.state_key.clone(),
        prev_ids,
        auth_ids,
        event.redacts.clone(),
        ruma::UInt::try_from(head.depth + 1).unwrap_or_default(),
        object,
    ))
}

/// An event built on a head but not yet hashed and signed (what `make_join` hands out).
pub struct Template {
    /// The event's JSON without `hashes` and `signatures`.
    pub object: CanonicalJsonObject,
    /// Its content.
    pub raw_content: Box<serde_json::value::RawValue>,
    /// Its auth events.
    pub auth_ids: Vec<OwnedEventId>,
    /// Its prev events.
    pub prev_ids: Vec<OwnedEventId>,
    /// Its timestamp.
    pub origin_server_ts: i64,
}

/// Builds the unsigned event `sender` would send on top of `head`: prev events, the auth events
/// the version's rules ask for, depth and timestamp.
pub fn template(head: &RoomHead, sender: &UserId, event: &NewEvent) -> Result<Template> {
    // From v11 on, a redaction names its target in `content.redacts` (and no longer at the top).
    let mut content_value = event.content.clone();
    if let (Some(redacts), true, Value::Object(map)) =
        (&event.redacts, head.rules.redaction.content_field_redacts, &mut content_value)
    {
        map.insert("redacts".to_owned(), Value::String(redacts.to_string()));
    }
    let content = to_canonical(&content_value)?;
    let raw_content = to_raw_value(&content_value).map_err(|e| Error::bad_json(e.to_string()))?;
    let auth_types = ruma::state_res::auth_types_for_event(
        &event.kind,
        sender,
        event.state_key.as_deref(),
        &raw_content,
        &head.rules.authorization,
    )
    .map_err(Error::bad_json)?;
    let auth_ids: Vec<OwnedEventId> = auth_types
        .iter()
        .filter_map(|(kind, key)| head.state_event_id(&kind.to_string(), key))
        .map(event_id_of)
        .collect::<Result<_>>()?;
    let prev_ids: Vec<OwnedEventId> =
        head.prev_events.iter().map(|(_, id)| event_id_of(id)).collect::<Result<_>>()?;
    let auth_events: Vec<CanonicalJsonValue> =
        auth_ids.iter().map(|id| CanonicalJsonValue::String(id.to_string())).collect();

    let is_create = event.kind == TimelineEventType::RoomCreate;
    let mut object = CanonicalJsonObject::new();
    if !(is_create && head.rules.authorization.room_create_event_id_as_room_id) {
        object.insert("room_id".to_owned(), CanonicalJsonValue::String(head.room_id.to_string()));
    }
    object.insert("sender".to_owned(), CanonicalJsonValue::String(sender.to_string()));
    let origin_server_ts = now_ms();
    object.insert(
        "origin_server_ts".to_owned(),
        CanonicalJsonValue::Integer(ruma::Int::new_saturating(origin_server_ts)),
    );
    object.insert("type".to_owned(), CanonicalJsonValue::String(event.kind.to_string()));
    object.insert("content".to_owned(), content);
    if let Some(state_key) = &event.state_key {
        object.insert("state_key".to_owned(), CanonicalJsonValue::String(state_key.clone()));
    }
    if let Some(redacts) = &event.redacts
        && !head.rules.redaction.content_field_redacts
    {
        object.insert("redacts".to_owned(), CanonicalJsonValue::String(redacts.to_string()));
    }
    let prev: Vec<CanonicalJsonValue> =
        prev_ids.iter().map(|id| CanonicalJsonValue::String(id.to_string())).collect();
    object.insert("prev_events".to_owned(), CanonicalJsonValue::Array(prev));
    object.insert("auth_events".to_owned(), CanonicalJsonValue::Array(auth_events));
    object.insert("depth".to_owned(), CanonicalJsonValue::Integer(ruma::Int::new_saturating(head.depth + 1)));
    Ok(Template { object, raw_content, auth_ids, prev_ids, origin_server_ts })
}

/// Adds the content hash and our signature to an event of a room with `head`'s version, and
/// derives its event ID (and for a v12 create event, the room ID) from the reference hash.
/// 413 `M_TOO_LARGE` when the event exceeds [`MAX_PDU_BYTES`].
pub fn hash_and_sign(
    hs: &Homeserver,
    head: &RoomHead,
    object: &mut CanonicalJsonObject,
) -> Result<(OwnedEventId, ruma::OwnedRoomId)> {
    signatures::hash_and_sign_event(
        hs.server_name().as_str(),
        hs.signing_key(),
        object,
        &head.rules.redaction,
    )
    .map_err(|e| match e {
        // ruma-signatures refuses to hash an event over the limit.
        signatures::JsonError::PduTooLarge => too_large(),
        e => Error::Internal(anyhow::anyhow!("signing event: {e}")),
    })?;
    let size = serde_json::to_vec(&*object).map_or(usize::MAX, |bytes| bytes.len());
    if size > MAX_PDU_BYTES {
        return Err(too_large());
    }
    let hash = signatures::reference_hash(object, &head.rules).map_err(|e| match e {
        signatures::JsonError::PduTooLarge => too_large(),
        e => Error::Internal(anyhow::anyhow!("hashing event: {e}")),
    })?;
    let event_id = OwnedEventId::try_from(format!("${hash}"))
        .map_err(|e| Error::Internal(anyhow::anyhow!("event ID from hash: {e}")))?;
    let room_id = if object.contains_key("room_id") {
        head.room_id.clone()
    } else {
        ruma::OwnedRoomId::try_from(format!("!{hash}"))
            .map_err(|e| Error::Internal(anyhow::anyhow!("room ID from hash: {e}")))?
    };
    Ok((event_id, room_id))
}

fn event_id_of(id: &str) -> Result<OwnedEventId> {
    OwnedEventId::try_from(id).map_err(|e| Error::Internal(anyhow::anyhow!("event ID {id}: {e}")))
}

/// 413 `M_TOO_LARGE` for an event over [`MAX_PDU_BYTES`].
fn too_large() -> Error {
    Error::matrix(
        StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::TooLarge,
        format!("Events are limited to {MAX_PDU_BYTES} bytes"),
    )
}

/// Converts client JSON to canonical JSON: floats and integers beyond ±(2^53−1) are refused
/// with `M_BAD_JSON`, as every room version from 6 on requires.
pub fn to_canonical(value: &Value) -> Result<CanonicalJsonValue> {
    CanonicalJsonValue::try_from(value.clone())
        .map_err(|e| Error::bad_json(format!("Event content is not canonical JSON: {e}")))
}

//! A persistent data unit: one signed room event as it travels between servers, parsed just
//! enough for auth and state resolution while its canonical JSON is kept byte for byte.

use ruma::{
    CanonicalJsonObject, MilliSecondsSinceUnixEpoch, OwnedEventId, OwnedRoomId, OwnedUserId, RoomId, UInt,
    UserId, events::TimelineEventType, room_version_rules::RoomVersionRules,
};
use serde::Deserialize;
use serde_json::{Value, value::RawValue};

/// A parsed PDU.
#[derive(Clone, Debug)]
pub struct Pdu {
    /// The event ID (a reference hash in every supported room version).
    pub event_id: OwnedEventId,
    /// The room, even for v12 create events whose JSON has no `room_id`.
    pub room_id: OwnedRoomId,
    /// Whether the JSON carries `room_id` (all events but v12 create events).
    has_room_id: bool,
    /// Who sent it.
    pub sender: OwnedUserId,
    /// When the sending server created it.
    pub origin_server_ts: MilliSecondsSinceUnixEpoch,
    /// The event type.
    pub kind: TimelineEventType,
    /// The content, as sent.
    pub content: Box<RawValue>,
    /// The state key, for state events.
    pub state_key: Option<String>,
    /// The events this one follows.
    pub prev_events: Vec<OwnedEventId>,
    /// The events that authorise this one.
    pub auth_events: Vec<OwnedEventId>,
    /// For redactions: the redacted event.
    pub redacts: Option<OwnedEventId>,
    /// Depth in the DAG.
    pub depth: UInt,
    /// Whether it failed authorisation when received.
    pub rejected: bool,
    /// The full canonical JSON, as signed.
    pub json: CanonicalJsonObject,
}

#[derive(Deserialize)]
struct Fields {
    room_id: Option<OwnedRoomId>,
    sender: OwnedUserId,
    origin_server_ts: MilliSecondsSinceUnixEpoch,
    #[serde(rename = "type")]
    kind: TimelineEventType,
    content: Box<RawValue>,
    state_key: Option<String>,
    #[serde(default)]
    prev_events: Vec<OwnedEventId>,
    #[serde(default)]
    auth_events: Vec<OwnedEventId>,
    redacts: Option<OwnedEventId>,
    depth: UInt,
}

#[derive(Deserialize)]
struct RedactsInContent {
    redacts: Option<OwnedEventId>,
}

impl Pdu {
    /// Parses canonical JSON. `room_id` is required except for v12 create events, whose room ID
    /// the caller derives from the event ID.
    pub fn from_canonical(
        event_id: OwnedEventId,
        json: CanonicalJsonObject,
        room_id: Option<&RoomId>,
    ) -> Result<Pdu, String> {
        let value = serde_json::to_value(&json).map_err(|e| e.to_string())?;
        let fields: Fields = serde_json::from_value(value).map_err(|e| format!("malformed PDU: {e}"))?;
        Pdu::from_fields(event_id, fields, json, room_id)
    }

    fn from_fields(
        event_id: OwnedEventId,
        fields: Fields,
        json: CanonicalJsonObject,
        room_id: Option<&RoomId>,
    ) -> Result<Pdu, String> {
        let has_room_id = fields.room_id.is_some();
        let room_id =
            fields.room_id.or_else(|| room_id.map(ToOwned::to_owned)).ok_or("PDU without room_id")?;
        let redacts = fields.redacts.or_else(|| {
            (fields.kind == TimelineEventType::RoomRedaction)
                .then(|| serde_json::from_str::<RedactsInContent>(fields.content.get()).ok()?.redacts)
                .flatten()
        });
        Ok(Pdu {
            event_id,
            room_id,
            has_room_id,
            sender: fields.sender,
            origin_server_ts: fields.origin_server_ts,
            kind: fields.kind,
            content: fields.content,
            state_key: fields.state_key,
            prev_events: fields.prev_events,
            auth_events: fields.auth_events,
            redacts,
            depth: fields.depth,
            rejected: false,
            json,
        })
    }

    /// Parses an event received from another server: its ID is its reference hash under the
    /// room version's rules (and so is a v12 create event's room ID).
    pub fn from_federation(json: CanonicalJsonObject, rules: &RoomVersionRules) -> Result<Pdu, String> {
        let hash = ruma::signatures::reference_hash(&json, rules).map_err(|e| e.to_string())?;
        let event_id = OwnedEventId::try_from(format!("${hash}")).map_err(|e| e.to_string())?;
        let room_id = OwnedRoomId::try_from(format!("!{hash}")).map_err(|e| e.to_string())?;
        Pdu::from_canonical(event_id, json, Some(&room_id))
    }

    /// A PDU this server just built: the fields are known, nothing needs parsing.
    #[allow(clippy::too_many_arguments)] // one argument per PDU field
    pub fn from_parts(
        event_id: OwnedEventId,
        room_id: OwnedRoomId,
        has_room_id: bool,
        sender: OwnedUserId,
        origin_server_ts: MilliSecondsSinceUnixEpoch,
        kind: TimelineEventType,
        content: Box<RawValue>,
        state_key: Option<String>,
        prev_events: Vec<OwnedEventId>,
        auth_events: Vec<OwnedEventId>,
        redacts: Option<OwnedEventId>,
        depth: UInt,
        json: CanonicalJsonObject,
    ) -> Pdu {
        Pdu {
            event_id,
            room_id,
            has_room_id,
            sender,
            origin_server_ts,
            kind,
            content,
            state_key,
            prev_events,
            auth_events,
            redacts,
            depth,
            rejected: false,
            json,
        }
    }

    /// Parses the stored text of a PDU.
    pub fn from_stored(event_id: OwnedEventId, json: &str, room_id: &RoomId) -> Result<Pdu, String> {
        // Two passes over the text: the typed fields, and the object kept for serving.
        let fields: Fields = serde_json::from_str(json).map_err(|e| format!("malformed PDU: {e}"))?;
        let object: CanonicalJsonObject = serde_json::from_str(json).map_err(|e| e.to_string())?;
        Pdu::from_fields(event_id, fields, object, Some(room_id))
    }

    /// Whether this is a state event.
    pub fn is_state(&self) -> bool {
        self.state_key.is_some()
    }

    /// The content as a JSON value.
    pub fn content_value(&self) -> Value {
        serde_json::from_str(self.content.get()).unwrap_or(Value::Null)
    }

    /// The event in the client-server format (spec: Client-Server API › Room Event Format):
    /// the PDU's federation-only fields removed, `event_id` and `room_id` present.
    pub fn to_client_value(&self) -> Value {
        let mut event = serde_json::Map::new();
        event.insert("event_id".to_owned(), Value::String(self.event_id.to_string()));
        event.insert("room_id".to_owned(), Value::String(self.room_id.to_string()));
        event.insert("sender".to_owned(), Value::String(self.sender.to_string()));
        event.insert("type".to_owned(), Value::String(self.kind.to_string()));
        event.insert("origin_server_ts".to_owned(), Value::from(u64::from(self.origin_server_ts.0)));
        event.insert("content".to_owned(), self.content_value());
        if let Some(state_key) = &self.state_key {
            event.insert("state_key".to_owned(), Value::String(state_key.clone()));
        }
        if let Some(redacts) = &self.redacts {
            event.insert("redacts".to_owned(), Value::String(redacts.to_string()));
        }
        if let Some(unsigned) = self.json.get("unsigned") {
            event.insert("unsigned".to_owned(), serde_json::to_value(unsigned).unwrap_or_default());
        }
        Value::Object(event)
    }
}

impl ruma::state_res::Event for Pdu {
    type Id = OwnedEventId;

    fn event_id(&self) -> &OwnedEventId {
        &self.event_id
    }

    fn room_id(&self) -> Option<&RoomId> {
        self.has_room_id.then_some(&*self.room_id)
    }

    fn sender(&self) -> &UserId {
        &self.sender
    }

    fn origin_server_ts(&self) -> MilliSecondsSinceUnixEpoch {
        self.origin_server_ts
    }

    fn event_type(&self) -> &TimelineEventType {
        &self.kind
    }

    fn content(&self) -> &RawValue {
        &self.content
    }

    fn state_key(&self) -> Option<&str> {
        self.state_key.as_deref()
    }

    fn prev_events(&self) -> Box<dyn DoubleEndedIterator<Item = &OwnedEventId> + '_> {
        Box::new(self.prev_events.iter())
    }

    fn auth_events(&self) -> Box<dyn DoubleEndedIterator<Item = &OwnedEventId> + '_> {
        Box::new(self.auth_events.iter())
    }

    fn redacts(&self) -> Option<&OwnedEventId> {
        self.redacts.as_ref()
    }

    fn rejected(&self) -> bool {
        self.rejected
    }
}

//! Room creation and single events (spec: Client-Server API › Rooms).

use hearth_core::{
    Error, Homeserver,
    rooms::{
        create::{self, CreateRoom, Preset},
        timeline,
    },
};
use ruma::{
    api::client::room::{
        Visibility,
        create_room::{self, v3::RoomPreset},
        get_room_event,
    },
    serde::Raw,
};
use serde_json::{Map, Value};

use crate::{convert::client_event, error::Result, ruma_wrapper::Ruma};

/// `POST /_matrix/client/v3/createRoom`
/// <https://spec.matrix.org/latest/client-server-api/#post_matrixclientv3createroom>
pub async fn create_room(
    hs: Homeserver,
    req: Ruma<create_room::v3::Request>,
) -> Result<create_room::v3::Response> {
    let body = req.body;
    let preset = match body.preset {
        None => None,
        Some(RoomPreset::PrivateChat) => Some(Preset::PrivateChat),
        Some(RoomPreset::TrustedPrivateChat) => Some(Preset::TrustedPrivateChat),
        Some(RoomPreset::PublicChat) => Some(Preset::PublicChat),
        Some(other) => return Err(Error::bad_json(format!("Unknown preset {other}")).into()),
    };
    let mut initial_state = Vec::with_capacity(body.initial_state.len());
    for event in &body.initial_state {
        let value: Value = json_of(event)?;
        let kind = value
            .get("type")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::bad_json("initial_state event without type"))?;
        let state_key = value.get("state_key").and_then(Value::as_str).unwrap_or_default();
        let content = value.get("content").cloned().unwrap_or_else(|| Value::Object(Map::new()));
        initial_state.push((kind.to_owned(), state_key.to_owned(), content));
    }
    let request = CreateRoom {
        preset,
        public: body.visibility == Visibility::Public,
        room_version: body.room_version,
        creation_content: body.creation_content.as_ref().map(object_of).transpose()?,
        power_level_content_override: body
            .power_level_content_override
            .as_ref()
            .map(object_of)
            .transpose()?,
        initial_state,
        name: body.name,
        topic: body.topic,
        room_alias_name: body.room_alias_name,
        invite: body.invite,
        is_direct: body.is_direct,
    };
    let room_id = create::create_room(&hs, &req.auth.user_id, request).await?;
    Ok(create_room::v3::Response::new(room_id))
}

/// `GET /_matrix/client/v3/rooms/{roomId}/event/{eventId}`
/// <https://spec.matrix.org/latest/client-server-api/#get_matrixclientv3roomsroomideventeventid>
pub async fn get_event(
    hs: Homeserver,
    req: Ruma<get_room_event::v3::Request>,
) -> Result<get_room_event::v3::Response> {
    let body = req.body;
    let not_found = || Error::not_found("Event not found");
    timeline::ensure_can_read(&hs, &req.auth.user_id, &body.room_id).await.map_err(|_| not_found())?;
    let pdu =
        timeline::event_by_id(&hs, &body.room_id, body.event_id.as_str()).await?.ok_or_else(not_found)?;
    Ok(get_room_event::v3::Response::new(client_event(&pdu)))
}

fn json_of<T>(raw: &Raw<T>) -> Result<Value> {
    serde_json::from_str(raw.json().get()).map_err(|e| Error::bad_json(e.to_string()).into())
}

fn object_of<T>(raw: &Raw<T>) -> Result<Map<String, Value>> {
    match json_of(raw)? {
        Value::Object(map) => Ok(map),
        _ => Err(Error::bad_json("Expected a JSON object").into()),
    }
}

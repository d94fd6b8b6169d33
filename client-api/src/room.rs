//! Room creation and single events (spec: Client-Server API › Rooms).

use hearth_core::{
    Error, Homeserver,
    rooms::{
        create::{self, CreateRoom, Preset},
        history, transaction_ids,
    },
};
use ruma::{
    api::client::room::{
        Visibility,
        create_room::{self, v3::RoomPreset},
        get_event_by_timestamp, get_room_event, upgrade_room,
    },
    serde::Raw,
};
use serde_json::{Map, Value};

use crate::{convert::raw, error::Result, ruma_wrapper::Ruma};

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
    let (body, user) = (req.body, req.auth);
    let pdu = history::event(&hs, &user.user_id, &body.room_id, body.event_id.as_str()).await?;
    let mut served =
        transaction_ids::client_events_for_device(&hs, &user.user_id, &user.device_id, &[pdu]).await?;
    let event = served.pop().ok_or_else(|| Error::not_found("Event not found"))?;
    Ok(get_room_event::v3::Response::new(raw(&event)))
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

/// `POST /_matrix/client/v3/rooms/{roomId}/upgrade`
/// <https://spec.matrix.org/latest/client-server-api/#post_matrixclientv3roomsroomidupgrade>
pub async fn upgrade(
    hs: Homeserver,
    req: Ruma<upgrade_room::v3::Request>,
) -> Result<upgrade_room::v3::Response> {
    let body = req.body;
    if !crate::discovery::ROOM_VERSIONS.contains(&body.new_version) {
        return Err(Error::matrix(
            http::StatusCode::BAD_REQUEST,
            ruma::api::error::ErrorKind::UnsupportedRoomVersion,
            format!("Room version {} is not supported", body.new_version),
        )
        .into());
    }
    let replacement = hearth_core::rooms::upgrade::upgrade(
        &hs,
        &req.auth.user_id,
        &body.room_id,
        body.new_version,
        body.additional_creators,
    )
    .await?;
    Ok(upgrade_room::v3::Response::new(replacement))
}

/// `GET /_matrix/client/v1/rooms/{roomId}/timestamp_to_event`
/// <https://spec.matrix.org/latest/client-server-api/#get_matrixclientv1roomsroomidtimestamp_to_event>
pub async fn timestamp_to_event(
    hs: Homeserver,
    req: Ruma<get_event_by_timestamp::v1::Request>,
) -> Result<get_event_by_timestamp::v1::Response> {
    let body = req.body;
    let ts = i64::from(body.ts.get());
    let backwards = body.dir == ruma::api::Direction::Backward;
    let (event_id, found_ts) =
        hearth_core::rooms::timeline::event_near_ts(&hs, &req.auth.user_id, &body.room_id, ts, backwards)
            .await?;
    let found_ts = ruma::MilliSecondsSinceUnixEpoch(ruma::UInt::try_from(found_ts).unwrap_or_default());
    Ok(get_event_by_timestamp::v1::Response::new(event_id, found_ts))
}

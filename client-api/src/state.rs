//! Room state (spec: Client-Server API › Room state).

use hearth_core::{
    Error, Homeserver,
    rooms::{NewEvent, append::send, serve, state_view},
};
use ruma::api::client::state::{
    get_state_event_for_key::{self, v3::StateEventFormat},
    get_state_events, send_state_event,
};
use serde_json::{Value, value::to_raw_value};

use crate::{convert::raw, error::Result, ruma_wrapper::Ruma};

/// `GET /_matrix/client/v3/rooms/{roomId}/state`
/// <https://spec.matrix.org/latest/client-server-api/#get_matrixclientv3roomsroomidstate>
pub async fn get_all(
    hs: Homeserver,
    req: Ruma<get_state_events::v3::Request>,
) -> Result<get_state_events::v3::Response> {
    let (room_id, user) = (&req.body.room_id, &req.auth.user_id);
    let state = state_view::state(&hs, user, room_id).await?;
    let served = serve::client_events(&hs, user, &state).await?;
    Ok(get_state_events::v3::Response::new(served.iter().map(raw).collect()))
}

/// `GET /_matrix/client/v3/rooms/{roomId}/state/{eventType}/{stateKey}`
/// <https://spec.matrix.org/latest/client-server-api/#get_matrixclientv3roomsroomidstateeventtypestatekey>
pub async fn get_one(
    hs: Homeserver,
    req: Ruma<get_state_event_for_key::v3::Request>,
) -> Result<get_state_event_for_key::v3::Response> {
    let (body, user) = (req.body, req.auth.user_id);
    let kind = body.event_type.to_string();
    let pdu = state_view::state_event(&hs, &user, &body.room_id, &kind, &body.state_key)
        .await?
        .ok_or_else(|| Error::not_found("State event not found"))?;
    let mut value = serve::client_event(&hs, &user, &pdu).await?;
    if !matches!(body.format, StateEventFormat::Event) {
        value = value.get_mut("content").map(Value::take).unwrap_or_default();
    }
    let raw = to_raw_value(&value).map_err(|e| Error::Internal(e.into()))?;
    Ok(get_state_event_for_key::v3::Response::new(raw))
}

/// `PUT /_matrix/client/v3/rooms/{roomId}/state/{eventType}/{stateKey}`
/// <https://spec.matrix.org/latest/client-server-api/#put_matrixclientv3roomsroomidstateeventtypestatekey>
pub async fn put(
    hs: Homeserver,
    req: Ruma<send_state_event::v3::Request>,
) -> Result<send_state_event::v3::Response> {
    let body = req.body;
    let content: Value =
        serde_json::from_str(body.body.json().get()).map_err(|e| Error::bad_json(e.to_string()))?;
    if !content.is_object() {
        return Err(Error::bad_json("State content must be a JSON object").into());
    }
    let event = NewEvent::state(body.event_type.to_string(), body.state_key, content);
    let pdu = send(&hs, &body.room_id, &req.auth.user_id, &event).await?;
    Ok(send_state_event::v3::Response::new(pdu.event_id))
}

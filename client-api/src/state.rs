//! Room state (spec: Client-Server API › Room state).

use hearth_core::{
    Error, Homeserver,
    rooms::{NewEvent, append::send, timeline},
};
use ruma::api::client::state::{
    get_state_event_for_key::{self, v3::StateEventFormat},
    get_state_events, send_state_event,
};
use serde_json::{Value, value::to_raw_value};

use crate::{convert::client_event, error::Result, ruma_wrapper::Ruma};

/// `GET /_matrix/client/v3/rooms/{roomId}/state`
/// <https://spec.matrix.org/latest/client-server-api/#get_matrixclientv3roomsroomidstate>
pub async fn get_all(
    hs: Homeserver,
    req: Ruma<get_state_events::v3::Request>,
) -> Result<get_state_events::v3::Response> {
    timeline::ensure_can_read(&hs, &req.auth.user_id, &req.body.room_id).await?;
    let state = timeline::current_state(&hs, &req.body.room_id).await?;
    Ok(get_state_events::v3::Response::new(state.iter().map(client_event).collect()))
}

/// `GET /_matrix/client/v3/rooms/{roomId}/state/{eventType}/{stateKey}`
/// <https://spec.matrix.org/latest/client-server-api/#get_matrixclientv3roomsroomidstateeventtypestatekey>
pub async fn get_one(
    hs: Homeserver,
    req: Ruma<get_state_event_for_key::v3::Request>,
) -> Result<get_state_event_for_key::v3::Response> {
    let body = req.body;
    timeline::ensure_can_read(&hs, &req.auth.user_id, &body.room_id).await?;
    let pdu =
        timeline::current_state_event(&hs, &body.room_id, &body.event_type.to_string(), &body.state_key)
            .await?
            .ok_or_else(|| Error::not_found("State event not found"))?;
    let value = match body.format {
        StateEventFormat::Event => pdu.to_client_value(),
        _ => pdu.content_value(),
    };
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

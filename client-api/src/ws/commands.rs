//! Client → server frames of the simple vocabulary. Each acts exactly like its client-API call
//! (same core function, same permission checks, same rate limits, same errors), and is answered
//! by one `result` frame or one `error` frame carrying the client's `request_id`.

use std::time::Duration;

use hearth_core::{
    Error, Homeserver,
    accounts::User,
    receipts,
    rooms::{NewEvent, membership as room_membership, timeline},
    typing,
};
use ruma::{
    EventId, OwnedRoomId, RoomId,
    api::{
        client::{
            membership::join_room_by_id,
            receipt::create_receipt::{self, v3::ReceiptType},
            typing::create_typing_event,
        },
        error::ErrorKind,
    },
    events::receipt::ReceiptThread,
};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::{error::ApiError, membership::resolve_room, ruma_wrapper::rate_limit};

/// How long `typing_indicator` shows the user typing unless the frame says otherwise (the
/// spec's clients renew every 20–30 s).
const DEFAULT_TYPING_TIMEOUT: Duration = Duration::from_secs(30);

/// A parsed client frame.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum ClientFrame {
    /// `PUT /rooms/{conversation_id}/send/m.room.message/{txn}`.
    SendMessage {
        conversation_id: String,
        /// The body text, or a whole `m.room.message` content object.
        content: Value,
        /// The `msgtype`; `m.text` by default.
        message_type: Option<String>,
    },
    /// `POST /join/{conversation_id}` (a room ID or alias).
    JoinConversation { conversation_id: String },
    /// `PUT /rooms/{conversation_id}/typing/{me}`.
    TypingIndicator { conversation_id: String, is_typing: bool, timeout_ms: Option<u64> },
    /// `POST /rooms/{room}/receipt/m.read/{message_id}`; the room is found from the event unless
    /// given.
    ReadReceipt { message_id: String, conversation_id: Option<String> },
    /// The client has processed everything up to this `next_batch` (see the connection).
    Ack { next_batch: String },
}

const TYPES: [&str; 5] = ["send_message", "join_conversation", "typing_indicator", "read_receipt", "ack"];

/// A client frame's text parsed: the frame and its `request_id` (any JSON value, echoed), or
/// the error frame to answer with.
pub(super) fn parse(text: &str) -> Result<(ClientFrame, Value), Value> {
    let value: Value = serde_json::from_str(text).map_err(|e| {
        error_frame(&Error::matrix(bad_request(), ErrorKind::NotJson, e.to_string()), &Value::Null)
    })?;
    let request_id = value.get("request_id").cloned().unwrap_or(Value::Null);
    let kind = value.get("type").and_then(Value::as_str).unwrap_or_default();
    if !TYPES.contains(&kind) {
        let error =
            Error::matrix(bad_request(), ErrorKind::Unrecognized, format!("Unknown frame type {kind:?}"));
        return Err(error_frame(&error, &request_id));
    }
    match serde_json::from_value(value) {
        Ok(frame) => Ok((frame, request_id)),
        Err(e) => Err(error_frame(&Error::bad_json(e.to_string()), &request_id)),
    }
}

fn bad_request() -> axum::http::StatusCode {
    axum::http::StatusCode::BAD_REQUEST
}

/// Runs a command frame (anything but `ack`) for `user`; the `result` or `error` frame.
pub(super) async fn run(hs: &Homeserver, user: &User, frame: ClientFrame, request_id: &Value) -> Value {
    match execute(hs, user, frame, request_id).await {
        Ok(mut fields) => {
            fields.insert("type".to_owned(), json!("result"));
            fields.insert("request_id".to_owned(), request_id.clone());
            Value::Object(fields)
        }
        Err(ApiError(error)) => error_frame(&error, request_id),
    }
}

async fn execute(
    hs: &Homeserver,
    user: &User,
    frame: ClientFrame,
    request_id: &Value,
) -> Result<Map<String, Value>, ApiError> {
    match frame {
        ClientFrame::SendMessage { conversation_id, content, message_type } => {
            let room_id = room_id(&conversation_id)?;
            let event =
                NewEvent::message("m.room.message".to_owned(), message_content(content, message_type)?);
            // A client's `request_id` is the transaction ID: a frame resent after a reconnect
            // sends the message once.
            let txn_id = match request_id {
                Value::String(id) => format!("ws-{id}"),
                Value::Number(id) => format!("ws-{id}"),
                _ => format!("ws-{}", uuid::Uuid::new_v4()),
            };
            let event_id =
                timeline::send_with_txn(hs, &user.user_id, &user.device_id, &room_id, &txn_id, &event)
                    .await?;
            Ok(fields([("message_id", json!(event_id)), ("conversation_id", json!(room_id))]))
        }
        ClientFrame::JoinConversation { conversation_id } => {
            rate_limit::<join_room_by_id::v3::Request>(hs, user)?;
            let room_id = resolve_room(hs, &conversation_id).await?;
            room_membership::join(hs, &user.user_id, &room_id, Map::new(), &[]).await?;
            Ok(fields([("conversation_id", json!(room_id))]))
        }
        ClientFrame::TypingIndicator { conversation_id, is_typing, timeout_ms } => {
            rate_limit::<create_typing_event::v3::Request>(hs, user)?;
            let room_id = room_id(&conversation_id)?;
            let timeout = timeout_ms.map_or(DEFAULT_TYPING_TIMEOUT, Duration::from_millis);
            let timeout = is_typing.then_some(timeout);
            typing::set(hs, &user.user_id, &user.user_id, &room_id, timeout).await?;
            Ok(Map::new())
        }
        ClientFrame::ReadReceipt { message_id, conversation_id } => {
            rate_limit::<create_receipt::v3::Request>(hs, user)?;
            let event_id =
                EventId::parse(&message_id).map_err(|_| Error::invalid_param("Invalid message_id"))?;
            let room_id = match conversation_id {
                Some(conversation_id) => room_id(&conversation_id)?,
                None => room_of(hs, user, &event_id).await?,
            };
            let (read, unthreaded) = (ReceiptType::Read, ReceiptThread::Unthreaded);
            receipts::create(hs, &user.user_id, &room_id, &read, &event_id, &unthreaded).await?;
            Ok(fields([("conversation_id", json!(room_id))]))
        }
        ClientFrame::Ack { .. } => Err(Error::bad_request("ack is not a command").into()),
    }
}

/// The room of an event the user may act on: 404 also when the event is in a room the user is
/// not joined to, so a guessed event ID tells nothing about rooms one cannot see.
async fn room_of(hs: &Homeserver, user: &User, event_id: &EventId) -> Result<OwnedRoomId, ApiError> {
    let not_found = || Error::not_found("Event not found");
    let (room_id, _) = timeline::locate(hs, event_id).await?.ok_or_else(not_found)?;
    let membership = room_membership::membership_of(hs, &room_id, &user.user_id).await?;
    if membership.as_deref() != Some("join") {
        return Err(not_found().into());
    }
    Ok(room_id)
}

/// The content of a `send_message`: a string is the body of a message of `message_type`
/// (`m.text` by default), an object is the content itself (`msgtype` set from `message_type`
/// when given).
fn message_content(content: Value, message_type: Option<String>) -> Result<Value, ApiError> {
    match content {
        Value::String(body) => {
            Ok(json!({ "msgtype": message_type.as_deref().unwrap_or("m.text"), "body": body }))
        }
        Value::Object(mut object) => {
            if let Some(message_type) = message_type {
                object.insert("msgtype".to_owned(), json!(message_type));
            }
            Ok(Value::Object(object))
        }
        _ => Err(Error::bad_json("content must be a string or an object").into()),
    }
}

fn room_id(conversation_id: &str) -> Result<OwnedRoomId, ApiError> {
    RoomId::parse(conversation_id).map_err(|_| Error::invalid_param("Invalid conversation_id").into())
}

fn fields<const N: usize>(pairs: [(&str, Value); N]) -> Map<String, Value> {
    pairs.into_iter().map(|(key, value)| (key.to_owned(), value)).collect()
}

/// `{"type":"error","errcode","error","request_id"}`; internal errors are logged here, once,
/// and reach the client as an opaque `M_UNKNOWN`.
pub(super) fn error_frame(error: &Error, request_id: &Value) -> Value {
    let (errcode, message) = match error {
        Error::Matrix { kind, message, .. } => (kind.errcode().to_string(), message.clone()),
        Error::Uiaa(_) => {
            ("M_FORBIDDEN".to_owned(), "Interactive authentication is not available here".to_owned())
        }
        Error::Internal(internal) => {
            tracing::error!(error = format!("{internal:#}"), "internal error in a WebSocket command");
            ("M_UNKNOWN".to_owned(), "Internal server error".to_owned())
        }
    };
    json!({ "type": "error", "errcode": errcode, "error": message, "request_id": request_id })
}

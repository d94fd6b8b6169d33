//! Sending events and paging through history (spec: Client-Server API › Sending events,
//! Getting events for a room).

use hearth_core::{
    Error, Homeserver,
    rooms::{
        NewEvent,
        history::{self, MessagesQuery},
        serve::Redactions,
        timeline::{self, StreamToken},
        transaction_ids,
    },
};
use ruma::api::{
    Direction,
    client::message::{get_message_events, send_message_event},
};
use serde_json::Value;

use crate::{convert::raw, error::Result, ruma_wrapper::Ruma};

/// `PUT /_matrix/client/v3/rooms/{roomId}/send/{eventType}/{txnId}`
/// <https://spec.matrix.org/latest/client-server-api/#put_matrixclientv3roomsroomidsendeventtypetxnid>
pub async fn send(
    hs: Homeserver,
    req: Ruma<send_message_event::v3::Request>,
) -> Result<send_message_event::v3::Response> {
    let (body, user) = (req.body, req.auth);
    let content: Value =
        serde_json::from_str(body.body.json().get()).map_err(|e| Error::bad_json(e.to_string()))?;
    if !content.is_object() {
        return Err(Error::bad_json("Event content must be a JSON object").into());
    }
    let event = NewEvent::message(body.event_type.to_string(), content);
    let event_id = timeline::send_with_txn(
        &hs,
        &user.user_id,
        &user.device_id,
        &body.room_id,
        body.txn_id.as_str(),
        &event,
    )
    .await?;
    Ok(send_message_event::v3::Response::new(event_id))
}

/// `GET /_matrix/client/v3/rooms/{roomId}/messages`
/// <https://spec.matrix.org/latest/client-server-api/#get_matrixclientv3roomsroomidmessages>
pub async fn messages(
    hs: Homeserver,
    req: Ruma<get_message_events::v3::Request>,
) -> Result<get_message_events::v3::Response> {
    let (body, user) = (req.body, req.auth);
    let query = MessagesQuery {
        from: body.from.as_deref().map(StreamToken::parse).transpose()?,
        to: body.to.as_deref().map(StreamToken::parse).transpose()?,
        backwards: body.dir == Direction::Backward,
        limit: usize::try_from(u64::from(body.limit)).unwrap_or(usize::MAX),
        filter: &body.filter,
    };
    let page = history::messages(&hs, &user.user_id, &body.room_id, query).await?;
    let known = Redactions::Known(&page.redactions);
    let chunk = transaction_ids::client_events_for_device_with(
        &hs,
        &user.user_id,
        &user.device_id,
        &page.events,
        known,
    )
    .await?;
    let state =
        transaction_ids::client_events_for_device(&hs, &user.user_id, &user.device_id, &page.state).await?;
    let mut response = get_message_events::v3::Response::new();
    response.start = page.start.to_string();
    response.end = page.end.map(|t| t.to_string());
    response.chunk = chunk.iter().map(raw).collect();
    response.state = state.iter().map(raw).collect();
    Ok(response)
}

//! Events around an event (spec: Client-Server API › Getting events for a room › context).

use hearth_core::{
    Homeserver,
    rooms::{history, transaction_ids},
};
use ruma::api::client::context::get_context;

use crate::{convert::raw, error::Result, ruma_wrapper::Ruma};

/// `GET /_matrix/client/v3/rooms/{roomId}/context/{eventId}`
/// <https://spec.matrix.org/latest/client-server-api/#get_matrixclientv3roomsroomidcontexteventid>
///
/// `state` is the room state after the last event returned, as the spec asks.
pub async fn get_context(
    hs: Homeserver,
    req: Ruma<get_context::v3::Request>,
) -> Result<get_context::v3::Response> {
    let (body, user) = (req.body, req.auth);
    let limit = usize::try_from(u64::from(body.limit)).unwrap_or(usize::MAX);
    let context =
        history::context(&hs, &user.user_id, &body.room_id, body.event_id.as_str(), limit, &body.filter)
            .await?;
    // One pass serves them all: the event, then before, after and state, split again below.
    let (before, after, state) = (context.before.len(), context.after.len(), context.state.len());
    let mut pdus = vec![context.event];
    pdus.extend(context.before);
    pdus.extend(context.after);
    pdus.extend(context.state);
    let served =
        transaction_ids::client_events_for_device(&hs, &user.user_id, &user.device_id, &pdus).await?;
    let mut served = served.iter();
    let mut response = get_context::v3::Response::new();
    response.start = Some(context.start.to_string());
    response.end = Some(context.end.to_string());
    response.event = served.next().map(raw);
    response.events_before = served.by_ref().take(before).map(raw).collect();
    response.events_after = served.by_ref().take(after).map(raw).collect();
    response.state = served.by_ref().take(state).map(raw).collect();
    Ok(response)
}

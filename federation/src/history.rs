//! Serving a room's history to other servers (spec: Server-Server API › Retrieving events,
//! Backfilling and retrieving missing events). Each endpoint answers only servers with a
//! member joined to the room (or any server for a world-readable room), only about events of
//! the room named, and only as the asking server's users could see them by history visibility
//! (`ServerView`): single events and the state at them are 403, walks through the graph carry
//! the events it may not see redacted.

use std::sync::Arc;

use hearth_core::rooms::{
    Pdu,
    remote_history::{self, ServerView},
    remote_membership,
};
use ruma::{
    CanonicalJsonObject, EventId, MilliSecondsSinceUnixEpoch, RoomId, ServerName,
    api::federation::{
        authorization::get_event_authorization,
        backfill::get_backfill,
        event::{get_event, get_missing_events, get_room_state, get_room_state_ids},
    },
};
use serde_json::value::RawValue;

use crate::{FedResult, FedRuma, Federation, membership::to_raw};

/// `GET /_matrix/federation/v1/event/{eventId}`
/// <https://spec.matrix.org/latest/server-server-api/#get_matrixfederationv1eventeventid>
pub async fn event(
    fed: Federation,
    req: FedRuma<get_event::v1::Request>,
) -> FedResult<get_event::v1::Response> {
    let pdu = remote_history::event(fed.hs(), &req.body.event_id).await?;
    ServerView::load(fed.hs(), &pdu.room_id, &req.origin).await?.check(fed.hs(), &pdu).await?;
    Ok(get_event::v1::Response::new(
        fed.hs().server_name().to_owned(),
        MilliSecondsSinceUnixEpoch::now(),
        to_raw(&pdu.json)?,
    ))
}

/// `GET /_matrix/federation/v1/state/{roomId}?event_id=`
/// <https://spec.matrix.org/latest/server-server-api/#get_matrixfederationv1stateroomid>
pub async fn state(
    fed: Federation,
    req: FedRuma<get_room_state::v1::Request>,
) -> FedResult<get_room_state::v1::Response> {
    let body = req.body;
    visible_event(&fed, &req.origin, &body.room_id, &body.event_id).await?;
    let (state, chain) = remote_membership::state_before(fed.hs(), &body.room_id, &body.event_id).await?;
    Ok(get_room_state::v1::Response::new(raws(&chain)?, raws(&state)?))
}

/// `GET /_matrix/federation/v1/state_ids/{roomId}?event_id=`
/// <https://spec.matrix.org/latest/server-server-api/#get_matrixfederationv1state_idsroomid>
pub async fn state_ids(
    fed: Federation,
    req: FedRuma<get_room_state_ids::v1::Request>,
) -> FedResult<get_room_state_ids::v1::Response> {
    let body = req.body;
    visible_event(&fed, &req.origin, &body.room_id, &body.event_id).await?;
    let (state, chain) = remote_membership::state_before(fed.hs(), &body.room_id, &body.event_id).await?;
    let ids = |pdus: &[Arc<Pdu>]| pdus.iter().map(|pdu| pdu.event_id.clone()).collect();
    Ok(get_room_state_ids::v1::Response::new(ids(&chain), ids(&state)))
}

/// `GET /_matrix/federation/v1/event_auth/{roomId}/{eventId}`
/// <https://spec.matrix.org/latest/server-server-api/#get_matrixfederationv1event_authroomideventid>
pub async fn event_auth(
    fed: Federation,
    req: FedRuma<get_event_authorization::v1::Request>,
) -> FedResult<get_event_authorization::v1::Response> {
    let body = req.body;
    let event = visible_event(&fed, &req.origin, &body.room_id, &body.event_id).await?;
    let chain = remote_membership::auth_chain_of(fed.hs(), &body.room_id, &event.auth_events).await?;
    Ok(get_event_authorization::v1::Response::new(raws(&chain)?))
}

/// `POST /_matrix/federation/v1/get_missing_events/{roomId}`
/// <https://spec.matrix.org/latest/server-server-api/#post_matrixfederationv1get_missing_eventsroomid>
pub async fn missing_events(
    fed: Federation,
    req: FedRuma<get_missing_events::v1::Request>,
) -> FedResult<get_missing_events::v1::Response> {
    let body = req.body;
    let view = ServerView::load(fed.hs(), &body.room_id, &req.origin).await?;
    let limit = usize::try_from(body.limit).unwrap_or(remote_history::MAX_EVENTS);
    let bounds = (limit, u64::from(body.min_depth));
    let mut events = remote_history::walk_back(
        fed.hs(),
        &body.room_id,
        &body.latest_events,
        &body.earliest_events,
        bounds,
        false,
    )
    .await?;
    // Oldest first, as the asking server will take them in.
    events.sort_by_key(|pdu| pdu.depth);
    let events = view.redact_hidden(fed.hs(), &body.room_id, events).await?;
    Ok(get_missing_events::v1::Response::new(objects_to_raws(&events)?))
}

/// `GET /_matrix/federation/v1/backfill/{roomId}?v=&limit=`
/// <https://spec.matrix.org/latest/server-server-api/#get_matrixfederationv1backfillroomid>
pub async fn backfill(
    fed: Federation,
    req: FedRuma<get_backfill::v1::Request>,
) -> FedResult<get_backfill::v1::Response> {
    let body = req.body;
    let view = ServerView::load(fed.hs(), &body.room_id, &req.origin).await?;
    let limit = usize::try_from(body.limit).unwrap_or(remote_history::MAX_EVENTS);
    let events = remote_history::walk_back(fed.hs(), &body.room_id, &body.v, &[], (limit, 0), true).await?;
    let events = view.redact_hidden(fed.hs(), &body.room_id, events).await?;
    Ok(get_backfill::v1::Response::new(
        fed.hs().server_name().to_owned(),
        MilliSecondsSinceUnixEpoch::now(),
        objects_to_raws(&events)?,
    ))
}

/// The event `event_id` of `room_id`, if `origin` may see it (403 otherwise; 404 when not an
/// event of that room).
async fn visible_event(
    fed: &Federation,
    origin: &ServerName,
    room_id: &RoomId,
    event_id: &EventId,
) -> Result<Arc<Pdu>, hearth_core::Error> {
    let view = ServerView::load(fed.hs(), room_id, origin).await?;
    let event = remote_history::event_in_room(fed.hs(), room_id, event_id).await?;
    view.check(fed.hs(), &event).await?;
    Ok(event)
}

fn raws(pdus: &[Arc<Pdu>]) -> Result<Vec<Box<RawValue>>, hearth_core::Error> {
    pdus.iter().map(|pdu| to_raw(&pdu.json)).collect()
}

fn objects_to_raws(objects: &[CanonicalJsonObject]) -> Result<Vec<Box<RawValue>>, hearth_core::Error> {
    objects.iter().map(to_raw).collect()
}

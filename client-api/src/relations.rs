//! Child events of an event (spec: Client-Server API › Relationships API).

use hearth_core::{
    Homeserver,
    accounts::User,
    rooms::{
        relations::{self, RelationsQuery},
        timeline::StreamToken,
        transaction_ids,
    },
};
use ruma::{
    EventId, RoomId, UInt,
    api::{
        Direction,
        client::relations::{
            get_relating_events, get_relating_events_with_rel_type,
            get_relating_events_with_rel_type_and_event_type,
        },
    },
    serde::Raw,
};

use crate::{convert::raw, error::Result, ruma_wrapper::Ruma};

/// Page size when the client gives none (as Synapse).
const DEFAULT_LIMIT: usize = 5;

/// `GET /_matrix/client/v1/rooms/{roomId}/relations/{eventId}`
/// <https://spec.matrix.org/latest/client-server-api/#get_matrixclientv1roomsroomidrelationseventid>
pub async fn get(
    hs: Homeserver,
    req: Ruma<get_relating_events::v1::Request>,
) -> Result<get_relating_events::v1::Response> {
    let b = req.body;
    let query = query(None, None, b.from, b.to, b.dir, b.limit, b.recurse)?;
    let page = page(&hs, &req.auth, &b.room_id, &b.event_id, &query).await?;
    let mut response = get_relating_events::v1::Response::new(page.chunk);
    (response.next_batch, response.prev_batch, response.recursion_depth) = page.tokens;
    Ok(response)
}

/// `GET /_matrix/client/v1/rooms/{roomId}/relations/{eventId}/{relType}`
/// <https://spec.matrix.org/latest/client-server-api/#get_matrixclientv1roomsroomidrelationseventidreltype>
pub async fn get_with_rel_type(
    hs: Homeserver,
    req: Ruma<get_relating_events_with_rel_type::v1::Request>,
) -> Result<get_relating_events_with_rel_type::v1::Response> {
    let b = req.body;
    let query = query(Some(b.rel_type.to_string()), None, b.from, b.to, b.dir, b.limit, b.recurse)?;
    let page = page(&hs, &req.auth, &b.room_id, &b.event_id, &query).await?;
    let mut response = get_relating_events_with_rel_type::v1::Response::new(page.chunk);
    (response.next_batch, response.prev_batch, response.recursion_depth) = page.tokens;
    Ok(response)
}

/// `GET /_matrix/client/v1/rooms/{roomId}/relations/{eventId}/{relType}/{eventType}`
/// <https://spec.matrix.org/latest/client-server-api/#get_matrixclientv1roomsroomidrelationseventidreltypeeventtype>
pub async fn get_with_rel_type_and_event_type(
    hs: Homeserver,
    req: Ruma<get_relating_events_with_rel_type_and_event_type::v1::Request>,
) -> Result<get_relating_events_with_rel_type_and_event_type::v1::Response> {
    let b = req.body;
    let (rel_type, event_type) = (Some(b.rel_type.to_string()), Some(b.event_type.to_string()));
    let query = query(rel_type, event_type, b.from, b.to, b.dir, b.limit, b.recurse)?;
    let page = page(&hs, &req.auth, &b.room_id, &b.event_id, &query).await?;
    let mut response = get_relating_events_with_rel_type_and_event_type::v1::Response::new(page.chunk);
    (response.next_batch, response.prev_batch, response.recursion_depth) = page.tokens;
    Ok(response)
}

/// The served chunk and `(next_batch, prev_batch, recursion_depth)`.
struct Served<T> {
    chunk: Vec<Raw<T>>,
    tokens: (Option<String>, Option<String>, Option<UInt>),
}

#[allow(clippy::too_many_arguments)]
fn query(
    rel_type: Option<String>,
    event_type: Option<String>,
    from: Option<String>,
    to: Option<String>,
    dir: Direction,
    limit: Option<UInt>,
    recurse: bool,
) -> Result<RelationsQuery> {
    Ok(RelationsQuery {
        rel_type,
        event_type,
        from: from.as_deref().map(StreamToken::parse).transpose()?,
        to: to.as_deref().map(StreamToken::parse).transpose()?,
        backwards: dir == Direction::Backward,
        limit: limit.map_or(DEFAULT_LIMIT, |l| usize::try_from(u64::from(l)).unwrap_or(usize::MAX)),
        recurse,
    })
}

async fn page<T>(
    hs: &Homeserver,
    user: &User,
    room_id: &RoomId,
    parent: &EventId,
    query: &RelationsQuery,
) -> Result<Served<T>> {
    let page = relations::children(hs, &user.user_id, room_id, parent, query).await?;
    let served =
        transaction_ids::client_events_for_device(hs, &user.user_id, &user.device_id, &page.events).await?;
    Ok(Served {
        chunk: served.iter().map(raw).collect(),
        tokens: (
            page.next.map(|t| t.to_string()),
            query.from.map(|t| t.to_string()),
            page.recursion_depth.map(UInt::from),
        ),
    })
}

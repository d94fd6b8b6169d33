//! The public room directory across servers (spec: Server-Server API › Public Room Directory):
//! ours for other servers, and other servers' for our clients.

use hearth_core::{
    Error,
    rooms::directory::{self, Page, Query},
};
use ruma::{
    ServerName, UInt,
    api::federation::directory::{
        get_public_rooms::v1 as public_rooms, get_public_rooms_filtered::v1 as filtered,
    },
    directory::{Filter, PublicRoomsChunk},
};

use crate::{FedResult, FedRuma, Federation};

/// `GET /_matrix/federation/v1/publicRooms`: a page of our published rooms.
/// <https://spec.matrix.org/latest/server-server-api/#get_matrixfederationv1publicrooms>
pub async fn get_public_rooms(
    fed: Federation,
    req: FedRuma<public_rooms::Request>,
) -> FedResult<public_rooms::Response> {
    let body = req.body;
    let query = Query { limit: body.limit.map(u64::from), since: body.since, search: None };
    let page = directory::public_rooms(fed.hs(), &query).await?;
    let mut response = public_rooms::Response::new();
    response.total_room_count_estimate = Some(UInt::new_saturating(page.total));
    (response.chunk, response.next_batch, response.prev_batch) =
        (page.chunk, page.next_batch, page.prev_batch);
    Ok(response)
}

/// `POST /_matrix/federation/v1/publicRooms`: a page of our published rooms, searched.
/// <https://spec.matrix.org/latest/server-server-api/#post_matrixfederationv1publicrooms>
pub async fn get_public_rooms_filtered(
    fed: Federation,
    req: FedRuma<filtered::Request>,
) -> FedResult<filtered::Response> {
    let body = req.body;
    let query = Query {
        limit: body.limit.map(u64::from),
        since: body.since,
        search: body.filter.generic_search_term,
    };
    let page = directory::public_rooms(fed.hs(), &query).await?;
    let mut response = filtered::Response::new();
    response.total_room_count_estimate = Some(UInt::new_saturating(page.total));
    (response.chunk, response.next_batch, response.prev_batch) =
        (page.chunk, page.next_batch, page.prev_batch);
    Ok(response)
}

/// A page's rooms, `next_batch`, `prev_batch` and count, as the responses carry them.
pub fn parts(page: Page) -> (Vec<PublicRoomsChunk>, Option<String>, Option<String>, Option<UInt>) {
    (page.chunk, page.next_batch, page.prev_batch, Some(UInt::new_saturating(page.total)))
}

/// A page of `server`'s directory, asked over federation.
pub async fn public_rooms_of(fed: &Federation, server: &ServerName, query: Query) -> Result<Page, Error> {
    let mut request = filtered::Request::new();
    request.limit = query.limit.map(UInt::new_saturating);
    request.since = query.since;
    let mut filter = Filter::new();
    filter.generic_search_term = query.search;
    request.filter = filter;
    let answer = fed.client().send(server, request).await?;
    Ok(Page {
        total: answer.total_room_count_estimate.map_or(0, u64::from),
        chunk: answer.chunk,
        next_batch: answer.next_batch,
        prev_batch: answer.prev_batch,
    })
}

//! The room directory (spec: Client-Server API › Listing rooms).

use hearth_core::{
    Error, Homeserver,
    rooms::directory::{self, Query},
};
use ruma::{
    ServerName, UInt,
    api::client::{
        directory::{get_public_rooms, get_public_rooms_filtered, get_room_visibility, set_room_visibility},
        room::Visibility,
    },
};

use crate::{error::Result, ruma_wrapper::Ruma};

/// `GET /_matrix/client/v3/directory/list/room/{roomId}`
/// <https://spec.matrix.org/latest/client-server-api/#get_matrixclientv3directorylistroomroomid>
pub async fn get_visibility(
    hs: Homeserver,
    req: Ruma<get_room_visibility::v3::Request>,
) -> Result<get_room_visibility::v3::Response> {
    let published = directory::is_published(&hs, &req.body.room_id).await?;
    let visibility = if published { Visibility::Public } else { Visibility::Private };
    Ok(get_room_visibility::v3::Response::new(visibility))
}

/// `PUT /_matrix/client/v3/directory/list/room/{roomId}`
/// <https://spec.matrix.org/latest/client-server-api/#put_matrixclientv3directorylistroomroomid>
pub async fn set_visibility(
    hs: Homeserver,
    req: Ruma<set_room_visibility::v3::Request>,
) -> Result<set_room_visibility::v3::Response> {
    let published = match req.body.visibility {
        Visibility::Public => true,
        Visibility::Private => false,
        other => return Err(Error::invalid_param(format!("Unknown visibility {other}")).into()),
    };
    directory::set_published(&hs, &req.auth, &req.body.room_id, published).await?;
    Ok(set_room_visibility::v3::Response::new())
}

/// `GET /_matrix/client/v3/publicRooms`
/// <https://spec.matrix.org/latest/client-server-api/#get_matrixclientv3publicrooms>
pub async fn public_rooms(
    hs: Homeserver,
    req: Ruma<get_public_rooms::v3::Request>,
) -> Result<get_public_rooms::v3::Response> {
    let body = req.body;
    ensure_ours(&hs, body.server.as_deref())?;
    let query = Query { limit: body.limit.map(u64::from), since: body.since, search: None };
    let page = directory::public_rooms(&hs, &query).await?;
    let total = Some(UInt::new_saturating(page.total));
    let mut response = get_public_rooms::v3::Response::new(page.chunk);
    (response.next_batch, response.prev_batch, response.total_room_count_estimate) =
        (page.next_batch, page.prev_batch, total);
    Ok(response)
}

/// `POST /_matrix/client/v3/publicRooms`
/// <https://spec.matrix.org/latest/client-server-api/#post_matrixclientv3publicrooms>
pub async fn public_rooms_filtered(
    hs: Homeserver,
    req: Ruma<get_public_rooms_filtered::v3::Request>,
) -> Result<get_public_rooms_filtered::v3::Response> {
    let body = req.body;
    ensure_ours(&hs, body.server.as_deref())?;
    let query = Query {
        limit: body.limit.map(u64::from),
        since: body.since,
        search: body.filter.generic_search_term,
    };
    let page = directory::public_rooms(&hs, &query).await?;
    let mut response = get_public_rooms_filtered::v3::Response::new();
    response.total_room_count_estimate = Some(UInt::new_saturating(page.total));
    (response.chunk, response.next_batch, response.prev_batch) =
        (page.chunk, page.next_batch, page.prev_batch);
    Ok(response)
}

/// Other servers' directories would be fetched over federation, which is not wired up yet.
fn ensure_ours(hs: &Homeserver, server: Option<&ServerName>) -> Result<()> {
    match server {
        Some(server) if server != hs.server_name() => {
            Err(Error::invalid_param("Room directories of other servers are not available").into())
        }
        _ => Ok(()),
    }
}

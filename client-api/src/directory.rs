//! The room directory (spec: Client-Server API › Listing rooms).

use hearth_core::{
    Error, Homeserver,
    rooms::directory::{self, Page, Query},
};
use hearth_federation::{Federation, directory as fed_directory};
use ruma::{
    ServerName,
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
    fed: Federation,
    req: Ruma<get_public_rooms::v3::Request>,
) -> Result<get_public_rooms::v3::Response> {
    let body = req.body;
    let query = Query { limit: body.limit.map(u64::from), since: body.since, search: None };
    let mut response = get_public_rooms::v3::Response::new(Vec::new());
    (response.chunk, response.next_batch, response.prev_batch, response.total_room_count_estimate) =
        fed_directory::parts(page(&fed, body.server.as_deref(), query).await?);
    Ok(response)
}

/// `POST /_matrix/client/v3/publicRooms`
/// <https://spec.matrix.org/latest/client-server-api/#post_matrixclientv3publicrooms>
pub async fn public_rooms_filtered(
    fed: Federation,
    req: Ruma<get_public_rooms_filtered::v3::Request>,
) -> Result<get_public_rooms_filtered::v3::Response> {
    let body = req.body;
    let query = Query {
        limit: body.limit.map(u64::from),
        since: body.since,
        search: body.filter.generic_search_term,
    };
    let mut response = get_public_rooms_filtered::v3::Response::new();
    (response.chunk, response.next_batch, response.prev_batch, response.total_room_count_estimate) =
        fed_directory::parts(page(&fed, body.server.as_deref(), query).await?);
    Ok(response)
}

/// A page of our directory, or of `server`'s, asked over federation.
async fn page(fed: &Federation, server: Option<&ServerName>, query: Query) -> Result<Page> {
    match server {
        Some(server) if server != fed.hs().server_name() => {
            Ok(fed_directory::public_rooms_of(fed, server, query).await?)
        }
        _ => Ok(directory::public_rooms(fed.hs(), &query).await?),
    }
}

//! Room aliases (spec: Client-Server API › Room aliases), including the list of a room's local
//! aliases, which the spec documents in the same section.

use hearth_core::{Error, Homeserver, rooms::aliases};
use hearth_federation::Federation;
use ruma::{
    OwnedRoomAliasId, OwnedRoomId, OwnedServerName,
    api::{
        client::{
            alias::{create_alias, delete_alias, get_alias},
            room::aliases as room_aliases,
        },
        federation::query::get_room_information::v1 as directory_query,
    },
};

use crate::{error::Result, ruma_wrapper::Ruma};

/// `PUT /_matrix/client/v3/directory/room/{roomAlias}`
/// <https://spec.matrix.org/latest/client-server-api/#put_matrixclientv3directoryroomroomalias>
pub async fn create(
    hs: Homeserver,
    req: Ruma<create_alias::v3::Request>,
) -> Result<create_alias::v3::Response> {
    aliases::create(&hs, &req.auth, &req.body.room_alias, &req.body.room_id).await?;
    Ok(create_alias::v3::Response::new())
}

/// `GET /_matrix/client/v3/directory/room/{roomAlias}`
/// <https://spec.matrix.org/latest/client-server-api/#get_matrixclientv3directoryroomroomalias>
pub async fn get(fed: Federation, req: Ruma<get_alias::v3::Request>) -> Result<get_alias::v3::Response> {
    let (room_id, servers) = resolve(&fed, req.body.room_alias).await?;
    Ok(get_alias::v3::Response::new(room_id, servers))
}

/// The room an alias names and servers in it: ours answers for its aliases, another server's
/// aliases are asked of that server (`/_matrix/federation/v1/query/directory`).
pub async fn resolve(
    fed: &Federation,
    alias: OwnedRoomAliasId,
) -> Result<(OwnedRoomId, Vec<OwnedServerName>)> {
    let hs = fed.hs();
    if alias.server_name() == hs.server_name() {
        let room_id = aliases::resolve(hs, &alias).await?;
        return Ok((room_id, vec![hs.server_name().to_owned()]));
    }
    let server = alias.server_name().to_owned();
    let found =
        fed.client().send(&server, directory_query::Request::new(alias)).await.map_err(Error::from)?;
    Ok((found.room_id, found.servers))
}

/// `DELETE /_matrix/client/v3/directory/room/{roomAlias}`
/// <https://spec.matrix.org/latest/client-server-api/#delete_matrixclientv3directoryroomroomalias>
pub async fn delete(
    hs: Homeserver,
    req: Ruma<delete_alias::v3::Request>,
) -> Result<delete_alias::v3::Response> {
    aliases::delete(&hs, &req.auth, &req.body.room_alias).await?;
    Ok(delete_alias::v3::Response::new())
}

/// `GET /_matrix/client/v3/rooms/{roomId}/aliases`
/// <https://spec.matrix.org/latest/client-server-api/#get_matrixclientv3roomsroomidaliases>
pub async fn room_aliases(
    hs: Homeserver,
    req: Ruma<room_aliases::v3::Request>,
) -> Result<room_aliases::v3::Response> {
    let found = aliases::local_aliases(&hs, &req.auth, &req.body.room_id).await?;
    Ok(room_aliases::v3::Response::new(found))
}
